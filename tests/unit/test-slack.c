/*
 * Unit tests of the Slack adapter's parsers and builders: mrkdwn escaping and
 * Slack's inbound markup, splitting to limits, Block Kit for questions, the
 * v0 request signature (Slack's documented vector), form decoding, and the
 * inbound dedup/filter rules with the core's upcalls stubbed.
 */
#include "tests/unit/t.h"
#include "adapters/slack.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- stubs of the core (the archive then leaves chat.o out) ------------- */

struct seen {
	enum chat_event_kind	 kind;
	char			*channel, *thread, *msg_id, *sender, *text;
	char			*question, *choice, *emoji, *target;
	int			 mentioned;
};
static struct seen	 seen[16];
static int		 nseen;

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
chat_on_event(struct adapter *a, const struct chat_event *ev)
{
	struct seen	*s;

	if (nseen >= (int)nitems(seen))
		return;
	s = &seen[nseen++];
	s->kind = ev->kind;
	s->channel = dup_or_null(ev->channel);
	s->thread = dup_or_null(ev->thread);
	s->msg_id = dup_or_null(ev->msg_id);
	s->sender = dup_or_null(ev->sender);
	s->text = dup_or_null(ev->text);
	s->question = dup_or_null(ev->question);
	s->choice = dup_or_null(ev->choice);
	s->emoji = dup_or_null(ev->emoji);
	s->target = dup_or_null(ev->target);
	s->mentioned = ev->mentioned;
}

void
chat_on_state(struct adapter *a, const char *state)
{
}

void
chat_op_done(struct chat_op *op, const char *ref)
{
}

void
chat_op_failed(struct chat_op *op, long long retry_ms, int permanent,
    const char *error)
{
}

/* The inbox times first replies through the outbox; no outbox here. */
uint64_t
chat_op_last_id(void)
{
	return 0;
}

void
outbox_time_reply(uint64_t id, uint64_t arrival_ms)
{
}

/* Slack's post markers go in with its rows; no outbox, no rows. */
void
outbox_on_post(const char *name, void (*fn)(void *, uint64_t), void *arg)
{
}

static void
seen_reset(void)
{
	int	 i;

	for (i = 0; i < nseen; i++) {
		free(seen[i].channel);
		free(seen[i].thread);
		free(seen[i].msg_id);
		free(seen[i].sender);
		free(seen[i].text);
		free(seen[i].question);
		free(seen[i].choice);
		free(seen[i].emoji);
		free(seen[i].target);
	}
	memset(seen, 0, sizeof seen);
	nseen = 0;
}

/* ---- text ------------------------------------------------------------------ */

TEST(escape_turns_amp_lt_gt_into_entities_and_keeps_code_spans)
{
	char	*s = slack_text_escape("a < b && `x>y` • ok");

	CHECK_STR(s, "a &lt; b &amp;&amp; `x&gt;y` • ok");
	free(s);
}

TEST(decode_handles_entities_mentions_channels_and_links)
{
	char	*s;

	s = slack_text_decode("&lt;b&gt; &amp;amp; <@U1> <@U2|bob> "
	    "<#C1|general> <#C2> <!here> <https://x.io/?a=1&amp;b=2|site> "
	    "<https://y.io>", NULL);
	CHECK_STR(s, "<b> &amp; @U1 @bob #general #C2 @here "
	    "site (https://x.io/?a=1&b=2) https://y.io");
	free(s);
}

TEST(decode_strips_the_bot_mention_only)
{
	char	*s = slack_text_decode("<@UBOT> fix <@U9> login", "UBOT");

	CHECK_STR(s, " fix @U9 login");
	free(s);
	s = slack_text_decode("unclosed <@UBOT", "UBOT");
	CHECK_STR(s, "unclosed <@UBOT");
	free(s);
}

TEST(mentions_matches_whole_user_id)
{
	CHECK(slack_text_mentions("hi <@UBOT> x", "UBOT"));
	CHECK(slack_text_mentions("hi <@UBOT|bot>", "UBOT"));
	CHECK(!slack_text_mentions("hi <@UBOTX>", "UBOT"));
	CHECK(!slack_text_mentions("hi @UBOT", "UBOT"));
}

TEST(split_keeps_pieces_within_limit_without_cutting_entities_or_utf8)
{
	struct buf	 b = { 0 };
	char		**v;
	size_t		 n, i, total = 0;
	int		 k;

	for (k = 0; k < 3000; k++)
		buf_adds(&b, "é&amp;");		/* 6 chars, 7 bytes */
	n = slack_text_split(b.data, 4000, &v);
	CHECK(n >= 5);
	for (i = 0; i < n; i++) {
		CHECK(slack_text_chars(v[i]) <= 4000);
		/* Cut after a whole "é" or a whole "&amp;", nowhere else. */
		CHECK(v[i][strlen(v[i]) - 1] == ';' ||
		    (unsigned char)v[i][strlen(v[i]) - 1] == 0xa9);
		total += strlen(v[i]);
	}
	CHECK_INT(total, b.len);
	slack_text_free_pieces(v, n);
	buf_free(&b);
}

TEST(split_prefers_newlines)
{
	char	**v;
	size_t	  n;
	char	  s[200];

	memset(s, 'a', sizeof s);
	s[90] = '\n';
	s[179] = '\0';
	n = slack_text_split(s, 100, &v);
	CHECK_INT(n, 2);
	CHECK_INT(strlen(v[0]), 91);
	slack_text_free_pieces(v, n);
}

TEST(clip_counts_characters_and_adds_ellipsis)
{
	char	*s = slack_text_clip("ééééé", 3);

	CHECK_STR(s, "éé…");
	free(s);
	s = slack_text_clip("abc", 3);
	CHECK_STR(s, "abc");
	free(s);
}

/* ---- blocks ----------------------------------------------------------------- */

TEST(question_blocks_have_a_section_and_one_button_per_choice)
{
	const char *const	 ch[] = { "GitHub", "Google", NULL };
	json_t			*b = slack_blocks_question("Which?", "q5", ch, 0);
	json_t			*els;
	char			*q = NULL;

	CHECK_INT(json_array_size(b), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(b, 0),
	    "type")), "section");
	els = json_object_get(json_array_get(b, 1), "elements");
	CHECK_INT(json_array_size(els), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(els, 1),
	    "action_id")), "sbq:q5:1");
	CHECK_STR(json_string_value(json_object_get(json_array_get(els, 1),
	    "value")), "Google");
	CHECK(slack_action_parse("sbq:q5:1", &q) == 0);
	CHECK_STR(q, "q5");
	free(q);
	CHECK(slack_action_parse("other:q5:1", &q) == -1);
	CHECK(slack_action_parse("sbq:q5:x", &q) == -1);
	json_decref(b);

	b = slack_blocks_question("Which?", "q5", ch, 1);
	CHECK_INT(json_array_size(b), 1);	/* closed: no buttons */
	json_decref(b);
}

TEST(question_blocks_respect_slack_limits)
{
	const char	*ch[61];
	struct buf	 t = { 0 };
	char		 longc[200];
	json_t		*b, *blk, *el, *els;
	size_t		 i, j, k;

	memset(longc, 'x', sizeof longc);
	longc[199] = '\0';
	for (i = 0; i < 60; i++)
		ch[i] = longc;
	ch[60] = NULL;
	for (i = 0; i < 200000; i++)
		buf_adds(&t, "y");
	b = slack_blocks_question(t.data, "q1", ch, 0);
	CHECK(json_array_size(b) <= SLACK_MAX_BLOCKS);
	json_array_foreach(b, i, blk) {
		if (strcmp(json_string_value(json_object_get(blk, "type")),
		    "section") == 0) {
			CHECK(slack_text_chars(json_string_value(json_object_get(
			    json_object_get(blk, "text"), "text"))) <=
			    SLACK_MAX_SECTION);
			continue;
		}
		els = json_object_get(blk, "elements");
		CHECK(json_array_size(els) <= SLACK_MAX_BUTTONS);
		json_array_foreach(els, j, el) {
			k = slack_text_chars(json_string_value(json_object_get(
			    json_object_get(el, "text"), "text")));
			CHECK(k <= SLACK_MAX_BUTTON);
			CHECK(strlen(json_string_value(json_object_get(el,
			    "action_id"))) <= 255);
		}
	}
	json_decref(b);
	buf_free(&t);
}

TEST(emoji_names_for_what_the_core_sends)
{
	CHECK_STR(slack_emoji_name("👀"), "eyes");
	CHECK_STR(slack_emoji_name("1️⃣"), "one");
	CHECK_STR(slack_emoji_name("🔟"), "keycap_ten");
	CHECK_STR(slack_emoji_name("✅"), "white_check_mark");
	CHECK(slack_emoji_name("🦄") == NULL);
}

/* ---- signatures and forms --------------------------------------------------- */

/* The example in Slack's "Verifying requests from Slack" (checked with Python's hmac). */
static const char *const doc_secret = "8f742231b10e8888abcd99yyyzzz85a5";
static const char *const doc_ts = "1531420618";
static const char *const doc_body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id="
    "T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name="
    "foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F"
    "T1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
    "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
static const char *const doc_sig =
    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

TEST(signature_matches_slacks_documented_example)
{
	char	*s = slack_signature(doc_secret, doc_ts, doc_body,
	    strlen(doc_body)), *cause = NULL;

	CHECK_STR(s, doc_sig);
	free(s);
	CHECK(slack_signature_check(doc_secret, doc_ts, doc_sig, doc_body,
	    strlen(doc_body), 1531420618 + 299, &cause) == 0);
}

TEST(signature_rejects_forged_stale_and_missing)
{
	char	*cause = NULL;
	char	 bad[80];

	strcpy(bad, doc_sig);
	bad[10] = bad[10] == '0' ? '1' : '0';
	CHECK(slack_signature_check(doc_secret, doc_ts, bad, doc_body,
	    strlen(doc_body), 1531420618, &cause) == -1);
	free(cause);
	cause = NULL;
	/* One byte of body changed. */
	CHECK(slack_signature_check(doc_secret, doc_ts, doc_sig, doc_body,
	    strlen(doc_body) - 1, 1531420618, &cause) == -1);
	free(cause);
	cause = NULL;
	CHECK(slack_signature_check(doc_secret, doc_ts, doc_sig, doc_body,
	    strlen(doc_body), 1531420618 + 301, &cause) == -1);
	CHECK(strstr(cause, "away") != NULL);
	free(cause);
	cause = NULL;
	CHECK(slack_signature_check(doc_secret, doc_ts, doc_sig, doc_body,
	    strlen(doc_body), 1531420618 - 301, &cause) == -1);
	free(cause);
	cause = NULL;
	CHECK(slack_signature_check(doc_secret, NULL, doc_sig, doc_body,
	    strlen(doc_body), 1531420618, &cause) == -1);
	free(cause);
	cause = NULL;
	CHECK(slack_signature_check("other", doc_ts, doc_sig, doc_body,
	    strlen(doc_body), 1531420618, &cause) == -1);
	free(cause);
}

TEST(form_value_decodes_plus_and_percent)
{
	const char	*body = "a=1&payload=%7B%22x%22%3A+%22a%26b%22%7D&z=";
	char		*v = slack_form_value(body, strlen(body), "payload");

	CHECK_STR(v, "{\"x\": \"a&b\"}");
	free(v);
	v = slack_form_value(body, strlen(body), "z");
	CHECK_STR(v, "");
	free(v);
	CHECK(slack_form_value(body, strlen(body), "missing") == NULL);
	CHECK(slack_form_value("payload=%zz", 11, "payload") == NULL);
	CHECK(slack_form_value("payload=%7", 10, "payload") == NULL);
	CHECK(slack_form_value("payload=a%00b", 13, "payload") == NULL);
}

/* ---- inbound ------------------------------------------------------------------ */

static char	 tmpdir[] = "/tmp/sb-test-slack.XXXXXX";

static struct slack *
fake_slack(void)
{
	struct slack	*s = xcalloc(1, sizeof *s);

	s->hdr.ops = &slack_ops;
	s->ready = 1;
	s->bot_user = xstrdup("UBOT");
	s->bot_id = xstrdup("BBOT");
	return s;
}

static void
fake_free(struct slack *s)
{
	free(s->bot_user);
	free(s->bot_id);
	free(s);
}

static int
feed(struct slack *s, const char *event_id, const char *event_json)
{
	json_error_t	 jerr;
	json_t		*ev = json_loads(event_json, 0, &jerr), *p;
	int		 r;

	if (ev == NULL) {
		printf("# bad test JSON: %s\n", jerr.text);
		return -2;
	}
	p = json_pack("{s:s, s:s, s:o}", "type", "event_callback",
	    "event_id", event_id, "event", ev);
	r = slack_inbound_event(s, p);
	json_decref(p);
	return r;
}

/* Group commit, then processing: each a loop turn of its own. */
static void
turn(void)
{
	int	 i;

	for (i = 0; i < 8; i++)
		uv_run(loop_uv(), UV_RUN_NOWAIT);
}

static int
inbox_rows(void)
{
	sqlite3_stmt	*st = store_stmt("SELECT count(*) FROM inbox");
	int		 n;

	n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

TEST(message_and_app_mention_of_one_message_are_handled_once)
{
	struct slack	*s = fake_slack();

	seen_reset();
	CHECK(feed(s, "Ev1", "{\"type\":\"message\",\"channel\":\"C1\","
	    "\"user\":\"U1\",\"text\":\"<@UBOT> fix &lt;it&gt;\","
	    "\"ts\":\"100.1\",\"channel_type\":\"channel\"}") == 0);
	CHECK(feed(s, "Ev2", "{\"type\":\"app_mention\",\"channel\":\"C1\","
	    "\"user\":\"U1\",\"text\":\"<@UBOT> fix &lt;it&gt;\","
	    "\"ts\":\"100.1\"}") == 0);
	/*
	 * Recorded (the Events API answer follows this commit), one inbox
	 * row for the two events; the core gets it from the row later.
	 */
	CHECK_INT(nseen, 0);
	CHECK_INT(inbox_rows(), 1);
	turn();
	CHECK_INT(nseen, 1);
	CHECK_INT(inbox_rows(), 0);
	CHECK(seen[0].kind == CHAT_EV_MESSAGE);
	CHECK_STR(seen[0].text, " fix <it>");
	CHECK_STR(seen[0].msg_id, "100.1");
	CHECK(seen[0].thread == NULL);
	CHECK(seen[0].mentioned);
	/* A redelivery of either is dropped too. */
	CHECK(feed(s, "Ev1", "{\"type\":\"message\",\"channel\":\"C1\","
	    "\"user\":\"U1\",\"text\":\"other\",\"ts\":\"100.9\"}") == 0);
	turn();
	CHECK_INT(nseen, 1);
	fake_free(s);
}

TEST(own_edited_and_join_messages_are_ignored)
{
	struct slack	*s = fake_slack();

	seen_reset();
	feed(s, "Eo1", "{\"type\":\"message\",\"channel\":\"C1\",\"user\":"
	    "\"UBOT\",\"text\":\"mine\",\"ts\":\"200.1\"}");
	feed(s, "Eo2", "{\"type\":\"message\",\"channel\":\"C1\",\"user\":"
	    "\"U7\",\"bot_id\":\"BBOT\",\"text\":\"mine\",\"ts\":\"200.2\"}");
	feed(s, "Eo3", "{\"type\":\"message\",\"subtype\":\"message_changed\","
	    "\"channel\":\"C1\",\"message\":{\"user\":\"U1\"},\"ts\":\"200.3\"}");
	feed(s, "Eo4", "{\"type\":\"message\",\"subtype\":\"channel_join\","
	    "\"channel\":\"C1\",\"user\":\"U1\",\"ts\":\"200.4\"}");
	feed(s, "Eo5", "{\"type\":\"message\",\"subtype\":\"message_deleted\","
	    "\"channel\":\"C1\",\"ts\":\"200.5\"}");
	turn();
	CHECK_INT(nseen, 0);
	fake_free(s);
}

TEST(thread_reply_broadcast_and_dm_are_mapped)
{
	struct slack	*s = fake_slack();

	seen_reset();
	feed(s, "Et1", "{\"type\":\"message\",\"channel\":\"C1\",\"user\":"
	    "\"U1\",\"text\":\"more\",\"ts\":\"300.2\",\"thread_ts\":\"300.1\"}");
	feed(s, "Et2", "{\"type\":\"message\",\"subtype\":\"thread_broadcast\","
	    "\"channel\":\"C1\",\"text\":\"also\",\"ts\":\"300.3\","
	    "\"thread_ts\":\"300.1\",\"root\":{\"user\":\"U2\"}}");
	feed(s, "Et3", "{\"type\":\"message\",\"channel\":\"D1\",\"user\":"
	    "\"U1\",\"text\":\"hello\",\"ts\":\"300.4\",\"channel_type\":\"im\"}");
	turn();
	CHECK_INT(nseen, 3);
	CHECK_STR(seen[0].thread, "300.1");
	CHECK(!seen[0].mentioned);
	CHECK_STR(seen[1].sender, "U2");
	CHECK_STR(seen[1].thread, "300.1");
	CHECK(seen[2].mentioned);
	fake_free(s);
}

TEST(block_actions_click_is_delivered_once)
{
	struct slack	*s = fake_slack();
	json_error_t	 jerr;
	json_t		*p;

	seen_reset();
	p = json_loads("{\"type\":\"block_actions\",\"user\":{\"id\":\"U1\"},"
	    "\"channel\":{\"id\":\"C1\"},\"message\":{\"ts\":\"400.2\","
	    "\"thread_ts\":\"400.1\"},\"actions\":[{\"action_id\":\"sbq:q3:1\","
	    "\"value\":\"Google\",\"action_ts\":\"401.5\"}]}", 0, &jerr);
	CHECK(p != NULL);
	CHECK(slack_inbound_interactive(s, p) == 0);
	CHECK(slack_inbound_interactive(s, p) == 0);
	json_decref(p);
	turn();
	CHECK_INT(nseen, 1);
	CHECK(seen[0].kind == CHAT_EV_CLICK);
	CHECK_STR(seen[0].question, "q3");
	CHECK_STR(seen[0].choice, "Google");
	CHECK_STR(seen[0].thread, "400.1");
	CHECK_STR(seen[0].sender, "U1");
	fake_free(s);
}

TEST(malformed_payloads_are_skipped_without_crashing)
{
	struct slack	*s = fake_slack();
	json_t		*p;

	seen_reset();
	CHECK(slack_inbound_event(s, NULL) == 0);
	p = json_pack("{s:s}", "type", "event_callback");
	CHECK(slack_inbound_event(s, p) == 0);
	json_decref(p);
	p = json_pack("{s:s, s:s, s:[]}", "type", "event_callback",
	    "event_id", "Em1", "event");
	CHECK(slack_inbound_event(s, p) == 0);
	json_decref(p);
	p = json_pack("{s:s, s:i}", "type", "block_actions", "actions", 3);
	CHECK(slack_inbound_interactive(s, p) == 0);
	json_decref(p);
	CHECK(feed(s, "Em2", "{\"type\":\"message\",\"channel\":7,\"user\":"
	    "\"U1\",\"text\":null,\"ts\":\"1\"}") == 0);
	turn();
	CHECK_INT(nseen, 0);
	fake_free(s);
}

static enum slack_frame
frame(struct slack *s, const char *data, int refuse, char **arg)
{
	return slack_inbound_frame(s, data, strlen(data), refuse, arg);
}

TEST(frames_malformed_invalid_utf8_and_unknown_are_skipped_or_acked)
{
	struct slack	*s = fake_slack();
	char		*arg;

	seen_reset();
	CHECK(frame(s, "{not json", 0, &arg) == SLACK_FRAME_SKIP);
	CHECK(arg == NULL);
	CHECK(frame(s, "[1,2]", 0, &arg) == SLACK_FRAME_SKIP);
	CHECK(frame(s, "", 0, &arg) == SLACK_FRAME_SKIP);
	/*
	 * Invalid UTF-8 and an escaped NUL (jansson refuses both as they
	 * are): acked, not lost; see invalid_utf8_and_nul_are_acked_...
	 */
	CHECK(frame(s, "{\"type\":\"events_api\",\"envelope_id\":\"e0\","
	    "\"payload\":{\"x\":\"\xff\xfe\"}}", 0, &arg) ==
	    SLACK_FRAME_ACK);
	free(arg);
	CHECK(frame(s, "{\"envelope_id\":\"e0\",\"payload\":\"a\\u0000b\"}",
	    0, &arg) == SLACK_FRAME_ACK);
	free(arg);
	CHECK(frame(s, "{\"type\":\"hello\",\"num_connections\":1}", 0,
	    &arg) == SLACK_FRAME_HELLO);
	CHECK(frame(s, "{\"type\":\"disconnect\",\"reason\":\"warning\"}", 0,
	    &arg) == SLACK_FRAME_DISCONNECT);
	CHECK_STR(arg, "warning");
	free(arg);
	CHECK(frame(s, "{\"type\":\"disconnect\",\"reason\":7}", 0, &arg) ==
	    SLACK_FRAME_DISCONNECT);
	CHECK(arg == NULL);
	/* Unknown envelope types and broken payloads are acked all the same:
	 * Slack would only send them again. */
	CHECK(frame(s, "{\"type\":\"slash_commands\",\"envelope_id\":\"e1\","
	    "\"payload\":{}}", 0, &arg) == SLACK_FRAME_ACK);
	CHECK_STR(arg, "e1");
	free(arg);
	CHECK(frame(s, "{\"envelope_id\":\"e2\"}", 0, &arg) ==
	    SLACK_FRAME_ACK);
	free(arg);
	CHECK(frame(s, "{\"type\":\"events_api\",\"envelope_id\":\"e3\","
	    "\"payload\":[]}", 0, &arg) == SLACK_FRAME_ACK);
	free(arg);
	CHECK(frame(s, "{\"type\":\"interactive\",\"envelope_id\":\"e4\","
	    "\"payload\":{\"type\":\"view_submission\"}}", 0, &arg) ==
	    SLACK_FRAME_ACK);
	free(arg);
	CHECK(frame(s, "{\"type\":\"weird\",\"x\":1}", 0, &arg) ==
	    SLACK_FRAME_SKIP);
	/* Stopping: not ours to take, so not acked (Slack redelivers). */
	CHECK(frame(s, "{\"type\":\"events_api\",\"envelope_id\":\"e5\","
	    "\"payload\":{}}", 1, &arg) == SLACK_FRAME_NOACK);
	CHECK(arg == NULL);
	turn();
	CHECK_INT(nseen, 0);
	fake_free(s);
}

TEST(invalid_utf8_and_nul_in_a_message_are_acked_sanitized_and_delivered)
{
	struct slack	*s = fake_slack();
	char		*arg;

	seen_reset();
	CHECK(frame(s, "{\"type\":\"events_api\",\"envelope_id\":\"eu\","
	    "\"payload\":{\"type\":\"event_callback\",\"event_id\":\"EvU\","
	    "\"event\":{\"type\":\"app_mention\",\"channel\":\"C1\","
	    "\"user\":\"U1\",\"ts\":\"600.1\",\"text\":\"<@UBOT> a\xff"
	    "b\xc0\xaf" "c\"}}}", 0, &arg) == SLACK_FRAME_ACK);
	CHECK_STR(arg, "eu");
	free(arg);
	CHECK(frame(s, "{\"type\":\"events_api\",\"envelope_id\":\"en\","
	    "\"payload\":{\"type\":\"event_callback\",\"event_id\":\"EvN\","
	    "\"event\":{\"type\":\"app_mention\",\"channel\":\"C1\","
	    "\"user\":\"U1\",\"ts\":\"600.2\",\"text\":\"<@UBOT> x"
	    "\\u0000y\"}}}", 0, &arg) == SLACK_FRAME_ACK);
	CHECK_STR(arg, "en");
	free(arg);
	turn();
	CHECK_INT(nseen, 2);
	CHECK_STR(seen[0].text, " a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd" "c");
	CHECK_STR(seen[1].text, " x");		/* C strings end at the NUL */
	fake_free(s);
}

TEST(huge_message_in_a_frame_is_recorded_acked_and_delivered)
{
	struct slack	*s = fake_slack();
	struct buf	 b = { 0 };
	char		*arg;
	size_t		 i;

	seen_reset();
	buf_adds(&b, "{\"type\":\"events_api\",\"envelope_id\":\"eh\","
	    "\"payload\":{\"type\":\"event_callback\",\"event_id\":\"EvH\","
	    "\"event\":{\"type\":\"app_mention\",\"channel\":\"C1\","
	    "\"user\":\"U1\",\"ts\":\"500.1\",\"text\":\"<@UBOT> ");
	for (i = 0; i < 200000; i++)
		buf_adds(&b, "&amp;é");
	buf_adds(&b, "\"}}}");
	CHECK(slack_inbound_frame(s, b.data, b.len, 0, &arg) ==
	    SLACK_FRAME_ACK);
	CHECK_STR(arg, "eh");
	free(arg);
	turn();
	CHECK_INT(nseen, 1);
	CHECK(nseen == 1 && strlen(seen[0].text) == 1 + 200000 * 3);
	buf_free(&b);
	fake_free(s);
}

TEST(backoff_grows_to_cap_with_jitter)
{
	uint64_t	 d;
	unsigned	 i;

	for (i = 0; i < 20; i++) {
		d = slack_backoff_ms(i, 1000, 60000);
		CHECK(d <= 60000);
		CHECK(d >= (i < 6 ? (1000ull << i) / 2 : 30000));
	}
}

int
main(void)
{
	char	*cause = NULL;

	if (mkdtemp(tmpdir) == NULL || loop_init() != 0 ||
	    store_open(tmpdir, &cause) != 0) {
		printf("FAIL setup: %s\n", cause != NULL ? cause : "mkdtemp");
		return 1;
	}
	RUN(escape_turns_amp_lt_gt_into_entities_and_keeps_code_spans);
	RUN(decode_handles_entities_mentions_channels_and_links);
	RUN(decode_strips_the_bot_mention_only);
	RUN(mentions_matches_whole_user_id);
	RUN(split_keeps_pieces_within_limit_without_cutting_entities_or_utf8);
	RUN(split_prefers_newlines);
	RUN(clip_counts_characters_and_adds_ellipsis);
	RUN(question_blocks_have_a_section_and_one_button_per_choice);
	RUN(question_blocks_respect_slack_limits);
	RUN(emoji_names_for_what_the_core_sends);
	RUN(signature_matches_slacks_documented_example);
	RUN(signature_rejects_forged_stale_and_missing);
	RUN(form_value_decodes_plus_and_percent);
	RUN(message_and_app_mention_of_one_message_are_handled_once);
	RUN(own_edited_and_join_messages_are_ignored);
	RUN(thread_reply_broadcast_and_dm_are_mapped);
	RUN(block_actions_click_is_delivered_once);
	RUN(malformed_payloads_are_skipped_without_crashing);
	RUN(frames_malformed_invalid_utf8_and_unknown_are_skipped_or_acked);
	RUN(invalid_utf8_and_nul_in_a_message_are_acked_sanitized_and_delivered);
	RUN(huge_message_in_a_frame_is_recorded_acked_and_delivered);
	RUN(backoff_grows_to_cap_with_jitter);
	seen_reset();
	store_close();
	loop_free();
	{
		char *cmd = xasprintf("rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmpdir);
		free(cmd);
	}
	return t_done();
}
