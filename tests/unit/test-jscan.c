/*
 * test-jscan — the validating scanner agrees with jansson on what is JSON,
 * finds the members asked for, and the drivers built on it show the same
 * things while skipping what they do not show.
 */
#include "tests/unit/t.h"
#include "orchestrator/jscan.h"
#include "orchestrator/driver.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdlib.h>

/* jansson's verdict on s, as any value (JSON_DECODE_ANY). */
static int
jansson_ok(const char *s, size_t n)
{
	json_t	*j = json_loadb(s, n, JSON_DECODE_ANY, NULL);

	json_decref(j);
	return j != NULL;
}

static int
jscan_ok(const char *s, size_t n)
{
	return jscan(s, n, NULL, 0) != -1;
}

static const char *const valid[] = {
	"{}", "[]", " { } ", "\t[\r\n]\n", "0", "-0", "1.5", "-1.5e10",
	"1E+2", "2e-3", "true", "false", "null", "\"\"", "\"a\"",
	"{\"a\":1,\"b\":[1,2,{\"c\":null}],\"d\":{\"e\":\"f\"}}",
	"[[[[[]]]]]", "[1,\"x\",true,false,null,{},[]]",
	"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"",
	"\"\\u0041\\u00e9\\u20AC\"", "\"\\ud83d\\ude00\"",
	"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
	"{\"k\\u0065y\":1}", "{\"a\" : 1 , \"b\" :2}",
};

static const char *const invalid[] = {
	"", " ", "{", "}", "[", "]", "{,}", "[,]", "[1,]", "{\"a\":1,}",
	"{\"a\"}", "{\"a\":}", "{a:1}", "{'a':1}", "[1 2]", "{\"a\":1 \"b\":2}",
	"01", "-", "1.", ".5", "1e", "1e+", "+1", "-01", "0x10", "NaN",
	"Infinity", "tru", "truex", "nul", "nulll", "falsy", "\"abc",
	"\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\u0000\"", "\"\\ud800\"",
	"\"\\ud800\\u0041\"", "\"\\udc00\"", "\"a\tb\"", "\"a\nb\"",
	"\"\xc3\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"",
	"\"\xf4\x90\x80\x80\"", "\"\xff\"", "\"\x80\"", "{} {}", "[] x",
	"[1]]", "{\"a\":1}}", "\xef\xbb\xbf{}",
};

TEST(jscan_accepts_what_jansson_accepts)
{
	size_t	 i;

	for (i = 0; i < nitems(valid); i++) {
		CHECK(jansson_ok(valid[i], strlen(valid[i])));
		if (!jscan_ok(valid[i], strlen(valid[i]))) {
			printf("# refused: %s\n", valid[i]);
			CHECK(0);
		}
	}
}

TEST(jscan_refuses_what_jansson_refuses)
{
	size_t	 i;

	for (i = 0; i < nitems(invalid); i++) {
		CHECK(!jansson_ok(invalid[i], strlen(invalid[i])));
		if (jscan_ok(invalid[i], strlen(invalid[i]))) {
			printf("# accepted: %s\n", invalid[i]);
			CHECK(0);
		}
	}
	/* A NUL byte is not whitespace, inside a string or out. */
	CHECK(!jscan_ok("{}\0", 3));
	CHECK(!jscan_ok("\"a\0b\"", 5));
}

TEST(jscan_every_cut_of_a_line_is_invalid)
{
	const char	*line = "{\"type\":\"assistant\",\"message\":{\"id\":"
	    "\"m1\",\"content\":[{\"type\":\"text\",\"text\":\"h\\u00e9 "
	    "\xe2\x82\xac\"},{\"n\":-1.5e3,\"t\":true,\"f\":false,\"z\":null}]}}";
	size_t		 n = strlen(line), i;

	CHECK(jscan(line, n, NULL, 0) == '{');
	for (i = 0; i < n; i++)
		if (jscan_ok(line, i)) {
			printf("# prefix of %zu accepted\n", i);
			CHECK(0);
		}
}

/*
 * Strings are checked sixteen and eight bytes a step: a byte that ends or
 * breaks a run (a quote, an escape, a control byte, UTF-8, good or bad)
 * must be seen at every offset in a step and near the end of the text,
 * and a checked text's rescan must end the string where jansson does.
 */
TEST(jscan_strings_agree_with_jansson_at_every_offset)
{
	static const char *const odd[] = { "\"", "\\n", "\\\"", "\\u00e9",
	    "\\ud83d\\ude00", "\x01", "\x1f", "\x7f", "\xc3\xa9",
	    "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xff", "\xed\xa0\x80",
	    "\\x", "\\u0000", "\\" };
	struct jscan_field	 f[1] = { { .key = "k" } };
	char			 s[96];
	size_t			 i, pre, post, n;
	int			 ok, r;

	for (i = 0; i < nitems(odd); i++)
		for (pre = 0; pre < 34; pre++)
			for (post = 0; post < 20; post += 3) {
				n = (size_t)snprintf(s, sizeof s,
				    "{\"k\":\"%.*s%s%.*s\"}", (int)pre,
				    "abcdefghijklmnopqrstuvwxyz0123456789",
				    odd[i], (int)post, "ABCDEFGHIJKLMNOPQRST");
				ok = jansson_ok(s, n);
				r = jscan(s, n, f, 1);
				if ((r == '{') != ok) {
					printf("# %s: %s\n", ok ? "refused" :
					    "accepted", s);
					CHECK(0);
					continue;
				}
				/* The member's span ends where the object does. */
				if (ok && (f[0].val == NULL ||
				    f[0].val + f[0].len != s + n - 1 ||
				    jscan_known(s, n, f, 1) != '{' ||
				    f[0].val + f[0].len != s + n - 1)) {
					printf("# span: %s\n", s);
					CHECK(0);
				}
			}
}

/*
 * jscan_pick does not check its text: a key holding NUL bytes must not
 * make the compare read past the end of a shorter name (ASan).
 */
/*
 * jscan_sub_rows finds in the line's one pass what jscan_next_pick finds
 * walking the content array afterwards: the same spans for each object
 * element, an element naming a wanted key twice left out, elements that
 * are no objects skipped, and -1 when there are more than room for.
 */
TEST(jscan_sub_rows_finds_what_next_pick_finds)
{
	static const char *const lines[] = {
	    "{\"message\":{\"id\":\"m\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"hi\"},{\"type\":\"tool_use\",\"name\":\"Read\","
	    "\"input\":{\"type\":\"deep\",\"a\":[{\"name\":1}]}}]}}",
	    "{\"message\": {\"content\": [ {}, 1, \"s\", [{\"type\": 2}],"
	    " {\"type\": \"a\", \"type\": \"b\"}, {\"name\": \"n\"} ] }}",
	    "{\"message\":{\"content\":[{\"type\":1},{\"type\":2},"
	    "{\"type\":3}]}}",
	    "{\"message\":{\"content\":[{\"type\":1},{\"type\":2},"
	    "{\"type\":3},{\"type\":4}]}}",
	    "{\"message\":{\"content\":[{\"type\":1},{\"type\":2}]},"
	    "\"content\":[{\"type\":9}]}",
	    "{\"message\":{\"content\":{\"type\":1}}}",
	    "{\"message\":{\"x\":[{\"type\":1}],\"content\":[]}}",
	    "{\"content\":[{\"type\":1}],\"message\":{\"content\":"
	    "[{\"t\\u0079pe\":\"e\"}]}}",
	};
	struct jscan_field	 f[1] = { { .key = "message" } };
	struct jscan_field	 sf[2] = { { .key = "id" }, { .key = "content" } };
	struct jscan_field	 rows[3 * 3], w[3];
	const char		*e;
	size_t			 i, j, pos, elen;
	int			 dup, nrows, r, k;

	for (i = 0; i < nitems(lines); i++) {
		rows[0].key = "type";
		rows[1].key = "name";
		rows[2].key = "input";
		CHECK(jscan_sub_rows(lines[i], strlen(lines[i]), f, 1, 0, sf,
		    2, &dup, 1, rows, 3, 3, &nrows) == '{');
		if (sf[1].val == NULL || *sf[1].val != '[') {
			CHECK(nrows == 0);
			continue;
		}
		w[0].key = "type";
		w[1].key = "name";
		w[2].key = "input";
		pos = 0;
		k = 0;
		while ((r = jscan_next_pick(sf[1].val, sf[1].len, &pos, &e,
		    &elen, w, 3)) > 0) {
			if (r != 1)
				continue;
			if (k == 3) {		/* a fourth: no room */
				k = -1;
				break;
			}
			for (j = 0; j < 3; j++)
				if (rows[k * 3 + j].val != w[j].val ||
				    rows[k * 3 + j].len != w[j].len) {
					printf("# line %zu row %d field %zu\n",
					    i, k, j);
					CHECK(0);
				}
			k++;
		}
		CHECK(nrows == k);
	}
}

TEST(jscan_pick_reads_no_name_past_its_end)
{
	static const char	 s[] = "{\"a\0\0\0\":1}";
	json_t			*j;

	j = jscan_pick(s, sizeof s - 1, (const char *const[]){ "a" }, 1);
	CHECK(j == NULL || json_object_get(j, "a") == NULL);
	json_decref(j);
}

TEST(jscan_finds_top_level_members_only)
{
	const char		*s = "{\"inner\":{\"type\":\"no\",\"x\":[{\"type\":"
	    "1}]},\"type\" : \"yes\" ,\"n\":-12.5e1,\"arr\":[1,[2]],"
	    "\"obj\":{\"a\":{}}}";
	struct jscan_field	 f[5] = { { .key = "type" }, { .key = "n" },
	    { .key = "arr" }, { .key = "obj" }, { .key = "missing" } };

	CHECK(jscan(s, strlen(s), f, 5) == '{');
	CHECK(f[0].val != NULL);
	CHECK(f[0].len == 5 && memcmp(f[0].val, "\"yes\"", 5) == 0);
	CHECK(f[1].len == 7 && memcmp(f[1].val, "-12.5e1", 7) == 0);
	CHECK(f[2].len == 7 && memcmp(f[2].val, "[1,[2]]", 7) == 0);
	CHECK(f[3].len == 8 && memcmp(f[3].val, "{\"a\":{}}", 8) == 0);
	CHECK(f[4].val == NULL);
	/* Not an object: no members, but still valid. */
	CHECK(jscan("[{\"type\":1}]", 12, f, 1) == '[');
	CHECK(f[0].val == NULL);
	CHECK(jscan("\"s\"", 3, f, 1) == '"');
	CHECK(jscan("-1", 2, f, 1) == '-');
}

TEST(jscan_escaped_keys_match_and_duplicates_are_refused)
{
	struct jscan_field	 f = { .key = "type" };
	const char		*esc = "{\"typ\\u0065\":\"x\"}";
	const char		*dup = "{\"type\":\"a\",\"typ\\u0065\":\"b\"}";
	const char		*other = "{\"x\":1,\"x\":2,\"type\":\"a\"}";

	CHECK(jscan(esc, strlen(esc), &f, 1) == '{');
	CHECK(f.val != NULL && f.len == 3);
	/* Two "type"s: which one jansson would keep is not ours to guess. */
	CHECK(jscan(dup, strlen(dup), &f, 1) == -1);
	CHECK(f.val == NULL);
	/* Duplicates of members not asked for are not looked for. */
	CHECK(jscan(other, strlen(other), &f, 1) == '{');
}

TEST(jscan_nesting_is_bounded_like_jansson)
{
	size_t	 n = JSCAN_MAX_DEPTH + 1, i;
	char	*s = xmalloc(2 * n + 1);

	/* JSCAN_MAX_DEPTH levels are fine, one more is not. */
	for (i = 0; i < n - 1; i++) {
		s[i] = '[';
		s[2 * (n - 1) - 1 - i] = ']';
	}
	CHECK(jscan_ok(s, 2 * (n - 1)));
	CHECK(jansson_ok(s, 2 * (n - 1)));
	for (i = 0; i < n; i++) {
		s[i] = '[';
		s[2 * n - 1 - i] = ']';
	}
	CHECK(!jscan_ok(s, 2 * n));
	CHECK(!jansson_ok(s, 2 * n));
	/* Mixed objects and arrays: the closer must match the opener. */
	CHECK(!jscan_ok("[{\"a\":[}]]", 10));
	CHECK(!jscan_ok("{\"a\":[1}", 8));
	free(s);
}

TEST(jscan_known_finds_the_same_spans)
{
	const char		*s = "{\"a\":\"x\\\\\",\"b\":[\"\\\"]\",{}],"
	    "\"c\":\"\\\\\\\"\",\"d\":1}";
	struct jscan_field	 f[4] = { { .key = "a" }, { .key = "b" },
	    { .key = "c" }, { .key = "d" } }, g[4];

	memcpy(g, f, sizeof f);
	CHECK(jscan(s, strlen(s), f, 4) == '{');
	CHECK(jscan_known(s, strlen(s), g, 4) == '{');
	CHECK(f[0].val != NULL && f[3].val != NULL);
	CHECK(memcmp(f, g, sizeof f) == 0);
	/* "x\\" ends at its quote; "\\\"" does not end early. */
	CHECK(f[0].len == 5 && f[2].len == 6);
	CHECK(f[3].len == 1 && *f[3].val == '1');
}

TEST(jscan_next_walks_an_array)
{
	const char	*s = " [ 1 , {\"a\":[2,3]} ,\"x\" ] ";
	const char	*v;
	size_t		 pos = 0, n;

	CHECK(jscan_next(s, strlen(s), &pos, &v, &n) == 1);
	CHECK(n == 1 && *v == '1');
	CHECK(jscan_next(s, strlen(s), &pos, &v, &n) == 1);
	CHECK(n == 11 && memcmp(v, "{\"a\":[2,3]}", 11) == 0);
	CHECK(jscan_next(s, strlen(s), &pos, &v, &n) == 1);
	CHECK(n == 3 && memcmp(v, "\"x\"", 3) == 0);
	CHECK(jscan_next(s, strlen(s), &pos, &v, &n) == 0);
	pos = 0;
	CHECK(jscan_next("[]", 2, &pos, &v, &n) == 0);
	pos = 0;
	CHECK(jscan_next("{}", 2, &pos, &v, &n) == -1);
	pos = 0;
	CHECK(jscan_next("[1 2]", 5, &pos, &v, &n) == 1);
	CHECK(jscan_next("[1 2]", 5, &pos, &v, &n) == -1);
}

TEST(jscan_next_pick_finds_each_objects_members_in_one_pass)
{
	const char		*s = "[{\"t\":\"a\",\"x\":{\"t\":1}},7,"
	    "{\"t\":1,\"t\":2},{\"u\":[{\"t\":3}]}]";
	struct jscan_field	 f[2] = { { .key = "t" }, { .key = "u" } };
	const char		*v;
	size_t			 pos = 0, n;

	CHECK(jscan_next_pick(s, strlen(s), &pos, &v, &n, f, 2) == 1);
	CHECK(f[0].len == 3 && memcmp(f[0].val, "\"a\"", 3) == 0);
	CHECK(f[1].val == NULL);
	/* Not an object; a wanted key twice: skipped, the walk goes on. */
	CHECK(jscan_next_pick(s, strlen(s), &pos, &v, &n, f, 2) == 2);
	CHECK(n == 1 && *v == '7' && f[0].val == NULL);
	CHECK(jscan_next_pick(s, strlen(s), &pos, &v, &n, f, 2) == 2);
	CHECK(f[0].val == NULL && f[1].val == NULL);
	CHECK(jscan_next_pick(s, strlen(s), &pos, &v, &n, f, 2) == 1);
	CHECK(f[0].val == NULL && f[1].len == 9);
	CHECK(jscan_next_pick(s, strlen(s), &pos, &v, &n, f, 2) == 0);
}

TEST(jscan_sub_finds_one_members_members_in_the_same_pass)
{
	const char		*s = "{\"other\":{\"id\":1},\"message\":{\"x\":"
	    "{\"id\":2},\"id\":\"m1\",\"content\":[{\"id\":3}]},\"t\":4}";
	struct jscan_field	 f[2] = { { .key = "t" }, { .key = "message" } };
	struct jscan_field	 sf[2] = { { .key = "id" }, { .key = "content" } };
	int			 dup;

	CHECK(jscan_sub(s, strlen(s), f, 2, 1, sf, 2, &dup) == '{');
	CHECK(dup == 0 && f[0].len == 1 && *f[0].val == '4');
	CHECK(sf[0].len == 4 && memcmp(sf[0].val, "\"m1\"", 4) == 0);
	CHECK(sf[1].len == 10 && memcmp(sf[1].val, "[{\"id\":3}]", 10) == 0);
	/* A name twice under the member: flagged, the line still accepted. */
	s = "{\"message\":{\"id\":1,\"id\":2},\"t\":0}";
	CHECK(jscan_sub(s, strlen(s), f, 2, 1, sf, 2, &dup) == '{');
	CHECK(dup == 1 && sf[0].val == NULL && f[0].val != NULL);
	/* Not an object: nothing under it. */
	s = "{\"message\":[{\"id\":1}]}";
	CHECK(jscan_sub(s, strlen(s), f, 2, 1, sf, 2, &dup) == '{');
	CHECK(dup == 0 && sf[0].val == NULL && f[1].len == 10);
	/* Not JSON: nothing at all. */
	s = "{\"message\":{\"id\":1},}";
	CHECK(jscan_sub(s, strlen(s), f, 2, 1, sf, 2, &dup) == -1);
	CHECK(f[1].val == NULL && sf[0].val == NULL);
}

TEST(jscan_pick_builds_only_the_named_members)
{
	const char		*s = "{\"big\":\"xxxxxxxx\",\"a\":{\"b\":[1]},"
	    "\"s\":\"t\\u00e9\"}";
	const char *const	 keys[] = { "a", "s", "none" };
	json_t			*o;

	CHECK((o = jscan_pick(s, strlen(s), keys, 3)) != NULL);
	CHECK(json_object_size(o) == 2);
	CHECK(json_object_get(o, "big") == NULL);
	CHECK(json_integer_value(json_array_get(json_object_get(
	    json_object_get(o, "a"), "b"), 0)) == 1);
	CHECK_STR(json_string_value(json_object_get(o, "s")), "t\xc3\xa9");
	json_decref(o);
	CHECK(jscan_pick("[1]", 3, keys, 3) == NULL);
	CHECK(jscan_pick("{\"a\":", 5, keys, 3) == NULL);
}

TEST(jscan_object_checks_the_whole_text)
{
	const char		*s = "{\"big\":[1,{}],\"a\":\"x\"}";
	const char *const	 keys[] = { "a", "none" };
	json_t			*o;

	CHECK((o = jscan_object(s, strlen(s), keys, 2)) != NULL);
	CHECK(json_object_size(o) == 1);
	CHECK_STR(json_string_value(json_object_get(o, "a")), "x");
	json_decref(o);
	/* Refused where an unread member is bad (jscan_pick does not look). */
	s = "{\"big\":[1,],\"a\":\"x\"}";
	CHECK(jscan_object(s, strlen(s), keys, 2) == NULL);
	s = "{\"big\":\"\xff\",\"a\":\"x\"}";
	CHECK(jscan_object(s, strlen(s), keys, 2) == NULL);
	s = "{\"a\":\"x\",\"a\":\"y\"}";
	CHECK(jscan_object(s, strlen(s), keys, 2) == NULL);
	CHECK(jscan_object("[1]", 3, keys, 2) == NULL);
}

/* ---- the drivers on top of it ------------------------------------------ */

struct rec {
	int	 nprogress, nsummary, nsession, nfail;
	char	*last;
};

static void
rec_emit(void *arg, enum drv_event ev, const char *text)
{
	struct rec	*r = arg;

	if (ev == DRV_PROGRESS) {
		r->nprogress++;
		free(r->last);
		r->last = xstrdup(text);
	} else if (ev == DRV_SUMMARY)
		r->nsummary++;
	else if (ev == DRV_SESSION)
		r->nsession++;
	else
		r->nfail++;
}

static char *
big_string(size_t n)
{
	char	*s = xmalloc(n + 1);

	memset(s, 'a', n);
	s[n] = '\0';
	return s;
}

TEST(claude_tool_result_lines_are_checked_but_show_nothing)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };
	char			*big = big_string(1 << 20), *line;

	line = xasprintf("{\"type\":\"user\",\"message\":{\"role\":\"user\","
	    "\"content\":[{\"type\":\"tool_result\",\"content\":\"%s\"}]}}",
	    big);
	CHECK(claude_stream_line(&st, line, strlen(line)) == 0);
	CHECK(r.nprogress == 0 && r.nsummary == 0);
	/* Cut short or broken, it is still not JSON. */
	CHECK(claude_stream_line(&st, line, strlen(line) - 1) == -1);
	line[strlen(line) - 10] = '\x01';
	CHECK(claude_stream_line(&st, line, strlen(line)) == -1);
	free(line);
	free(big);
	drv_stream_free(&st);
	free(r.last);
}

TEST(claude_large_write_shows_its_step_without_the_content)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };
	char			*big = big_string(1 << 20), *line;

	line = xasprintf("{\"type\":\"assistant\",\"message\":{\"id\":\"m1\","
	    "\"content\":[{\"type\":\"tool_use\",\"name\":\"Write\","
	    "\"input\":{\"content\":\"%s\",\"file_path\":\"/w/x.c\"}},"
	    "{\"type\":\"text\",\"text\":\"done \\u00e9\\nmore\"}]}}", big);
	CHECK(claude_stream_line(&st, line, strlen(line)) == 0);
	CHECK(r.nprogress == 2);
	CHECK_STR(r.last, "done \xc3\xa9");
	CHECK(st.turns == 1);
	free(line);
	free(big);
	drv_stream_free(&st);
	free(r.last);
}

/*
 * The blocks are found in the line's own pass, up to a few; a message with
 * more is walked again: every block shows either way, in order, and one
 * naming a member twice shows nothing.
 */
TEST(claude_every_block_shows_however_many)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };
	struct buf		 b = { 0 };
	int			 n, i;

	for (n = 1; n <= 7; n += 3) {
		buf_reset(&b);
		buf_adds(&b, "{\"type\":\"assistant\",\"message\":{\"id\":"
		    "\"m\",\"content\":[{\"type\":\"text\",\"type\":\"text\","
		    "\"text\":\"twice\"}");
		for (i = 0; i < n; i++)
			buf_printf(&b, ",{\"type\":\"tool_use\",\"name\":"
			    "\"Bash\",\"input\":{\"command\":\"step %d\"}}", i);
		buf_adds(&b, "]}}");
		r.nprogress = 0;
		CHECK(claude_stream_line(&st, b.data, b.len) == 0);
		CHECK(r.nprogress == n);
		buf_reset(&b);
		buf_printf(&b, "Run: step %d", n - 1);
		CHECK_STR(r.last, b.data);
	}
	buf_free(&b);
	drv_stream_free(&st);
	free(r.last);
}

TEST(codex_command_output_is_skipped_exit_code_kept)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };
	char			*big = big_string(1 << 20), *line;

	line = xasprintf("{\"type\":\"item.completed\",\"item\":{\"id\":"
	    "\"item_1\",\"type\":\"command_execution\",\"command\":\"make\","
	    "\"aggregated_output\":\"%s\",\"exit_code\":2,\"status\":"
	    "\"failed\"}}", big);
	CHECK(codex_stream_line(&st, line, strlen(line)) == 0);
	CHECK(r.nprogress == 1);
	CHECK_STR(r.last, "Command failed (exit 2)");
	CHECK(st.turns == 1);
	CHECK(codex_stream_line(&st, line, strlen(line) - 2) == -1);
	free(line);
	free(big);
	drv_stream_free(&st);
	free(r.last);
}

int
main(void)
{
	RUN(jscan_accepts_what_jansson_accepts);
	RUN(jscan_refuses_what_jansson_refuses);
	RUN(jscan_every_cut_of_a_line_is_invalid);
	RUN(jscan_strings_agree_with_jansson_at_every_offset);
	RUN(jscan_sub_rows_finds_what_next_pick_finds);
	RUN(jscan_pick_reads_no_name_past_its_end);
	RUN(jscan_finds_top_level_members_only);
	RUN(jscan_escaped_keys_match_and_duplicates_are_refused);
	RUN(jscan_nesting_is_bounded_like_jansson);
	RUN(jscan_known_finds_the_same_spans);
	RUN(jscan_next_walks_an_array);
	RUN(jscan_next_pick_finds_each_objects_members_in_one_pass);
	RUN(jscan_sub_finds_one_members_members_in_the_same_pass);
	RUN(jscan_pick_builds_only_the_named_members);
	RUN(jscan_object_checks_the_whole_text);
	RUN(claude_tool_result_lines_are_checked_but_show_nothing);
	RUN(claude_large_write_shows_its_step_without_the_content);
	RUN(claude_every_block_shows_however_many);
	RUN(codex_command_output_is_skipped_exit_code_kept);
	return t_done();
}
