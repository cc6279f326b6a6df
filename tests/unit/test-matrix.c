/*
 * test-matrix — the Matrix adapter's pure parts: event classification,
 * mention stripping, HTML, txnIds, path escaping, choice rendering.  The
 * sync loop and sends are covered end to end (tests/e2e/test_matrix.py).
 */
#include "adapters/matrix.h"
#include "bot/util.h"
#include "t.h"

#include <jansson.h>
#include <stdlib.h>

#define SELF	"@bot:example.org"

/* Parses one event from JSON text into *e. */
static void
parse(const char *text, struct matrix_ev *e, json_t **keep)
{
	json_error_t	 err;

	*keep = json_loads(text, 0, &err);
	matrix_ev_parse(*keep, SELF, NULL, e);
}

TEST(thread_reply_gives_root_and_no_reply_when_falling_back)
{
	struct matrix_ev	 e;
	json_t			*j;

	parse("{\"type\":\"m.room.message\",\"event_id\":\"$b\",\"sender\":"
	    "\"@alice:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"hi\","
	    "\"m.relates_to\":{\"rel_type\":\"m.thread\",\"event_id\":\"$root\","
	    "\"is_falling_back\":true,\"m.in_reply_to\":{\"event_id\":\"$x\"}}}}",
	    &e, &j);
	CHECK_INT(e.kind, MATRIX_EV_MESSAGE);
	CHECK_STR(e.thread, "$root");
	CHECK(e.reply_to == NULL);
	CHECK_STR(e.text, "hi");
	CHECK_STR(e.event_id, "$b");
	CHECK(!e.mentioned);
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(real_reply_in_thread_sets_reply_to_and_strips_fallback)
{
	struct matrix_ev	 e;
	json_t			*j;

	parse("{\"type\":\"m.room.message\",\"event_id\":\"$b\",\"sender\":"
	    "\"@alice:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":"
	    "\"> <@bot:example.org> Which?\\n> more\\n\\nGoogle\","
	    "\"m.relates_to\":{\"rel_type\":\"m.thread\",\"event_id\":\"$root\","
	    "\"is_falling_back\":false,\"m.in_reply_to\":{\"event_id\":\"$q\"}}}}",
	    &e, &j);
	CHECK_INT(e.kind, MATRIX_EV_MESSAGE);
	CHECK_STR(e.reply_to, "$q");
	CHECK_STR(e.text, "Google");
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(top_level_mention_by_localpart_is_stripped_and_flagged)
{
	struct matrix_ev	 e;
	json_t			*j;

	parse("{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
	    "\"@alice:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":"
	    "\"Bot: fix the login page\"}}", &e, &j);
	CHECK_INT(e.kind, MATRIX_EV_MESSAGE);
	CHECK(e.thread == NULL);
	CHECK(e.mentioned);
	CHECK_STR(e.text, "fix the login page");
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(m_mentions_user_ids_counts_as_mention)
{
	struct matrix_ev	 e;
	json_t			*j;

	parse("{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
	    "\"@alice:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":"
	    "\"Switchboard please\",\"m.mentions\":{\"user_ids\":"
	    "[\"@bot:example.org\"]}}}", &e, &j);
	CHECK(e.mentioned);
	CHECK_STR(e.text, "Switchboard please");
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(mention_inside_a_longer_word_is_not_a_mention)
{
	char	*s;
	int	 found;

	s = matrix_strip_mention("the robot said hi", SELF, NULL, &found);
	CHECK(!found);
	CHECK_STR(s, "the robot said hi");
	free(s);
	s = matrix_strip_mention("ask @bot:example.org later", SELF, NULL,
	    &found);
	CHECK(found);
	CHECK_STR(s, "ask @bot:example.org later");
	free(s);
	s = matrix_strip_mention("@bot:example.org, go", SELF, NULL, &found);
	CHECK(found);
	CHECK_STR(s, "go");
	free(s);
}

TEST(element_pill_with_display_name_is_stripped)
{
	struct matrix_ev	 e;
	json_error_t		 err;
	json_t			*j;

	/* Element: the pill's text, the display name, leads the body. */
	j = json_loads("{\"type\":\"m.room.message\",\"event_id\":\"$a\","
	    "\"sender\":\"@alice:x\",\"content\":{\"msgtype\":\"m.text\","
	    "\"body\":\"Code Bot: status\",\"format\":"
	    "\"org.matrix.custom.html\",\"formatted_body\":\"<a href="
	    "\\\"https://matrix.to/#/@bot:example.org\\\">Code Bot</a>: "
	    "status\",\"m.relates_to\":{\"rel_type\":\"m.thread\","
	    "\"event_id\":\"$root\",\"is_falling_back\":true}}}", 0, &err);
	CHECK(j != NULL);
	matrix_ev_parse(j, SELF, NULL, &e);
	CHECK_INT(e.kind, MATRIX_EV_MESSAGE);
	CHECK(e.mentioned);
	CHECK_STR(e.text, "status");
	matrix_ev_clear(&e);
	json_decref(j);

	/* No HTML, only m.mentions: the profile's display name is known. */
	j = json_loads("{\"type\":\"m.room.message\",\"event_id\":\"$a\","
	    "\"sender\":\"@alice:x\",\"content\":{\"msgtype\":\"m.text\","
	    "\"body\":\"code bot, help\",\"m.mentions\":{\"user_ids\":"
	    "[\"@bot:example.org\"]}}}", 0, &err);
	CHECK(j != NULL);
	matrix_ev_parse(j, SELF, "Code Bot", &e);
	CHECK(e.mentioned);
	CHECK_STR(e.text, "help");
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(pill_name_is_read_from_the_anchor_for_our_id_only)
{
	char	*s;

	s = matrix_pill_name("<a href=\"https://matrix.to/#/@carol:x\">Carol"
	    "</a> and <a href='https://matrix.to/#/@bot:example.org'>R&amp;D "
	    "Bot</a>: go", SELF);
	CHECK_STR(s, "R&D Bot");
	free(s);
	s = matrix_pill_name("<a href=\"https://matrix.to/#/%40bot%3Aexample.org"
	    "\">Bot</a>", SELF);
	CHECK_STR(s, "Bot");
	free(s);
	CHECK(matrix_pill_name("<a href=\"https://matrix.to/#/@bot:example.org"
	    "x\">No</a>", SELF) == NULL);
	CHECK(matrix_pill_name("<a href=\"https://matrix.to/#/@bot:example.org"
	    "\">unterminated", SELF) == NULL);
	CHECK(matrix_pill_name(NULL, SELF) == NULL);
}

TEST(notices_edits_own_events_and_malformed_are_ignored)
{
	static const char *const cases[] = {
		/* m.notice (other bots) */
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
		"\"@o:x\",\"content\":{\"msgtype\":\"m.notice\",\"body\":\"bot: x\"}}",
		/* an edit */
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
		"\"@o:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"* bot: x\","
		"\"m.relates_to\":{\"rel_type\":\"m.replace\",\"event_id\":\"$z\"}}}",
		/* our own */
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
		"\"@bot:example.org\",\"content\":{\"msgtype\":\"m.text\","
		"\"body\":\"bot: x\"}}",
		/* no event_id, no sender, wrong types */
		"{\"type\":\"m.room.message\",\"sender\":\"@o:x\",\"content\":{}}",
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"content\":{}}",
		"{\"type\":7,\"event_id\":\"$a\",\"sender\":\"@o:x\"}",
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
		"\"@o:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":5}}",
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
		"\"@o:x\",\"content\":[]}",
		"{\"type\":\"m.room.message\",\"event_id\":\"$a\",\"sender\":"
		"\"@o:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"x\","
		"\"m.relates_to\":{\"rel_type\":\"m.thread\"}}}",
		"{\"type\":\"m.reaction\",\"event_id\":\"$a\",\"sender\":\"@o:x\","
		"\"content\":{\"m.relates_to\":{\"rel_type\":\"m.annotation\"}}}",
		"[]",
		"null",
	};
	struct matrix_ev	 e;
	json_t			*j;
	size_t			 i;

	for (i = 0; i < nitems(cases); i++) {
		parse(cases[i], &e, &j);
		if (e.kind != MATRIX_EV_IGNORE)
			printf("case %zu not ignored\n", i);
		CHECK_INT(e.kind, MATRIX_EV_IGNORE);
		CHECK(e.why != NULL);
		matrix_ev_clear(&e);
		json_decref(j);
	}
}

TEST(reaction_gives_target_and_normalised_keycap)
{
	struct matrix_ev	 e;
	json_t			*j;

	/* "2⃣" without U+FE0F, as some clients send it. */
	parse("{\"type\":\"m.reaction\",\"event_id\":\"$r\",\"sender\":"
	    "\"@alice:x\",\"content\":{\"m.relates_to\":{\"rel_type\":"
	    "\"m.annotation\",\"event_id\":\"$q\",\"key\":\"2\\u20e3\"}}}",
	    &e, &j);
	CHECK_INT(e.kind, MATRIX_EV_REACTION);
	CHECK_STR(e.target, "$q");
	CHECK_STR(e.key, "2️⃣");
	CHECK_STR(e.key, matrix_choice_key(1));
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(encryption_events_are_recognised_even_from_anyone)
{
	struct matrix_ev	 e;
	json_t			*j;

	parse("{\"type\":\"m.room.encryption\",\"event_id\":\"$e\",\"sender\":"
	    "\"@bot:example.org\",\"state_key\":\"\",\"content\":{}}", &e, &j);
	CHECK_INT(e.kind, MATRIX_EV_ENCRYPTION);
	matrix_ev_clear(&e);
	json_decref(j);
	parse("{\"type\":\"m.room.encrypted\",\"event_id\":\"$f\",\"sender\":"
	    "\"@o:x\",\"content\":{\"ciphertext\":\"...\"}}", &e, &j);
	CHECK_INT(e.kind, MATRIX_EV_ENCRYPTION);
	matrix_ev_clear(&e);
	json_decref(j);
}

TEST(oversized_body_is_truncated_on_a_character_boundary)
{
	struct matrix_ev	 e;
	json_t			*ev;
	char			*big;
	size_t			 n = 100000;

	big = xmalloc(n + 1);
	memset(big, 'a', n);
	memcpy(big + 16383, "é", 2);	/* straddles the 16384-byte limit */
	big[n] = '\0';
	ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "type",
	    "m.room.message", "event_id", "$a", "sender", "@o:x", "content",
	    "msgtype", "m.text", "body", big);
	matrix_ev_parse(ev, SELF, NULL, &e);
	CHECK_INT(e.kind, MATRIX_EV_MESSAGE);
	CHECK_INT(strlen(e.text), 16383);	/* the é is not split */
	CHECK(e.text[16382] == 'a');
	matrix_ev_clear(&e);
	json_decref(ev);
	free(big);
}

TEST(html_escapes_and_marks_code_and_bold)
{
	char	*h;

	h = matrix_html("a <b> & \"c\" 'd'\nrun `make <all>` *now*", NULL,
	    NULL);
	CHECK_STR(h, "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;<br>"
	    "run <code>make &lt;all&gt;</code> <strong>now</strong>");
	free(h);
	/* Unclosed or spaced markers stay literal. */
	h = matrix_html("2 * 3 * 4 and `open", NULL, NULL);
	CHECK_STR(h, "2 * 3 * 4 and `open");
	free(h);
	h = matrix_html("", NULL, NULL);
	CHECK_STR(h, "");
	free(h);
}

TEST(txn_id_derives_from_prefix_row_id_and_part)
{
	char	*t;

	t = matrix_txn_id("9f3a", 42, 0);
	CHECK_STR(t, "sb-9f3a-42");
	free(t);
	t = matrix_txn_id("9f3a", 42, 2);
	CHECK_STR(t, "sb-9f3a-42-k2");
	free(t);
	t = matrix_txn_id("9f3a", 18446744073709551615ULL, 0);
	CHECK_STR(t, "sb-9f3a-18446744073709551615");
	free(t);
	/* A state dir from before prefixes keeps its txnIds. */
	t = matrix_txn_id("", 42, 1);
	CHECK_STR(t, "sb-42-k1");
	free(t);
}

static const char *
alice_name(void *arg, const char *user)
{
	return strcmp(user, "@alice:example.org") == 0 ? "Alice <A>" : NULL;
}

TEST(people_are_shown_by_display_name_and_as_pills)
{
	char	*t;

	t = matrix_body("answered by matrix:@alice:example.org: Google",
	    alice_name, NULL);
	CHECK_STR(t, "answered by Alice <A>: Google");
	free(t);
	/* Unknown: the localpart; a port is part of the server name. */
	t = matrix_body("Sorry, matrix:@bob:example.org:8448 is not allowed.",
	    alice_name, NULL);
	CHECK_STR(t, "Sorry, bob is not allowed.");
	free(t);
	t = matrix_body("by matrix:@carol:example.org.", NULL, NULL);
	CHECK_STR(t, "by carol.");
	free(t);
	/* Not a person: no '@', no server, inside a word. */
	t = matrix_body("matrix: hi, matrix:@x, xmatrix:@a:b", NULL, NULL);
	CHECK_STR(t, "matrix: hi, matrix:@x, xmatrix:@a:b");
	free(t);
	t = matrix_html("by matrix:@alice:example.org: `x`", alice_name, NULL);
	CHECK_STR(t, "by <a href=\"https://matrix.to/#/@alice:example.org\">"
	    "Alice &lt;A&gt;</a>: <code>x</code>");
	free(t);
}

TEST(path_escape_encodes_room_and_event_id_characters)
{
	char	*s;

	s = matrix_path_escape("!abc:example.org");
	CHECK_STR(s, "%21abc%3Aexample.org");
	free(s);
	s = matrix_path_escape("$ev/+=#?x");
	CHECK_STR(s, "%24ev%2F%2B%3D%23%3Fx");
	free(s);
}

TEST(choice_line_uses_keycaps_and_stops_at_ten)
{
	const char *const	 two[] = { "GitHub", "Google", NULL };
	const char *const	 none[] = { NULL };
	const char		*many[13];
	char			*s;
	size_t			 i;

	s = matrix_choice_line(two);
	CHECK_STR(s, "1️⃣ GitHub  2️⃣ Google");
	free(s);
	CHECK(matrix_choice_line(none) == NULL);
	CHECK(matrix_choice_line(NULL) == NULL);
	for (i = 0; i < 12; i++)
		many[i] = "x";
	many[12] = NULL;
	s = matrix_choice_line(many);
	CHECK(strstr(s, "🔟 x") != NULL);
	CHECK(strstr(s, "🔟 x  ") == NULL);
	free(s);
	CHECK(matrix_choice_key(10) == NULL);
}

/*
 * A poor man's fuzzer (the libFuzzer target is fuzz/fuzz-matrix-event.c):
 * seeds mutated by byte flips, insertions and truncation; whatever loads
 * as JSON must classify without a crash or a leak (ASan build).
 */
TEST(mutated_events_never_crash_the_parser)
{
	static const char *const seeds[] = {
		"{\"type\":\"m.room.message\",\"event_id\":\"$b\",\"sender\":"
		"\"@a:x\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"> q\\n\\nbot: x\","
		"\"m.mentions\":{\"user_ids\":[\"@bot:example.org\"]},"
		"\"formatted_body\":\"<a href=\\\"https://matrix.to/#/@bot:example.org\\\">\","
		"\"m.relates_to\":{\"rel_type\":\"m.thread\",\"event_id\":\"$r\","
		"\"is_falling_back\":false,\"m.in_reply_to\":{\"event_id\":\"$x\"}}}}",
		"{\"type\":\"m.reaction\",\"event_id\":\"$r\",\"sender\":\"@a:x\","
		"\"content\":{\"m.relates_to\":{\"rel_type\":\"m.annotation\","
		"\"event_id\":\"$q\",\"key\":\"1\\u20e3\"}}}",
	};
	struct matrix_ev	 e;
	json_error_t		 err;
	json_t			*j;
	char			 buf[1024];
	size_t			 i, n, k, len;
	unsigned		 seed = 12345;
	int			 parsed = 0;

	for (i = 0; i < 20000; i++) {
		len = strlen(seeds[i % nitems(seeds)]);
		memcpy(buf, seeds[i % nitems(seeds)], len);
		for (k = 0; k < 1 + i % 4; k++) {
			seed = seed * 1103515245 + 12345;
			n = (seed >> 8) % len;
			switch ((seed >> 4) % 4) {
			case 0:		/* flip a byte */
				buf[n] = (char)(seed >> 16);
				break;
			case 1:		/* truncate */
				len = n + 1;
				break;
			case 2:		/* duplicate a byte */
				if (len + 1 < sizeof buf) {
					memmove(buf + n + 1, buf + n, len - n);
					len++;
				}
				break;
			default:	/* swap in a quote or a brace */
				buf[n] = "\"{}[]:,0"[(seed >> 20) % 8];
			}
		}
		if ((j = json_loadb(buf, len, 0, &err)) == NULL)
			continue;
		parsed++;
		matrix_ev_parse(j, SELF, NULL, &e);
		CHECK(e.kind != MATRIX_EV_IGNORE || e.why != NULL);
		CHECK(e.kind != MATRIX_EV_MESSAGE || e.text != NULL);
		matrix_ev_clear(&e);
		json_decref(j);
	}
	CHECK(parsed > 100);	/* the mutations left enough valid JSON */
}

int
main(void)
{
	RUN(thread_reply_gives_root_and_no_reply_when_falling_back);
	RUN(real_reply_in_thread_sets_reply_to_and_strips_fallback);
	RUN(top_level_mention_by_localpart_is_stripped_and_flagged);
	RUN(m_mentions_user_ids_counts_as_mention);
	RUN(mention_inside_a_longer_word_is_not_a_mention);
	RUN(element_pill_with_display_name_is_stripped);
	RUN(pill_name_is_read_from_the_anchor_for_our_id_only);
	RUN(notices_edits_own_events_and_malformed_are_ignored);
	RUN(reaction_gives_target_and_normalised_keycap);
	RUN(encryption_events_are_recognised_even_from_anyone);
	RUN(oversized_body_is_truncated_on_a_character_boundary);
	RUN(html_escapes_and_marks_code_and_bold);
	RUN(txn_id_derives_from_prefix_row_id_and_part);
	RUN(people_are_shown_by_display_name_and_as_pills);
	RUN(path_escape_encodes_room_and_event_id_characters);
	RUN(choice_line_uses_keycaps_and_stops_at_ten);
	RUN(mutated_events_never_crash_the_parser);
	return t_done();
}
