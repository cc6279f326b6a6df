/* Rendering is pure text: cards, questions, results, splitting. */
#include "orchestrator/render.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>

TEST(render_split_keeps_chunks_within_limit_and_never_splits_utf8)
{
	struct buf	 b = { 0 };
	char		**parts, *joined;
	size_t		 n, i;
	int		 k;

	for (k = 0; k < 300; k++)
		buf_adds(&b, "é€😀 line\n");	/* multi-byte sequences */
	n = render_split(b.data, 100, &parts);
	CHECK(n > 1);
	joined = xstrdup("");
	for (i = 0; i < n; i++) {
		CHECK(strlen(parts[i]) <= 100);
		/* no chunk starts with a continuation byte */
		CHECK(((unsigned char)parts[i][0] & 0xc0) != 0x80);
		joined = xrealloc(joined, strlen(joined) + strlen(parts[i]) + 1);
		strcat(joined, parts[i]);
		free(parts[i]);
	}
	free(parts);
	CHECK_STR(joined, b.data);	/* nothing lost, nothing doubled */
	free(joined);
	buf_free(&b);
}

TEST(render_split_prefers_a_line_break)
{
	char	**parts;
	size_t	  n;

	n = render_split("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    80, &parts);
	CHECK_INT(n, 2);
	CHECK(parts[0][strlen(parts[0]) - 1] == '\n');
	CHECK(parts[1][0] == 'b');
	free(parts[0]); free(parts[1]); free(parts);
}

TEST(render_oneline_collapses_whitespace_and_bounds_length)
{
	char	*s;

	s = render_oneline("  Edit\tsrc/login.c\n\n  now\x01", 100);
	CHECK_STR(s, "Edit src/login.c now");
	free(s);
	s = render_oneline("0123456789abcdef", 10);
	CHECK(strlen(s) <= 12);
	CHECK(strstr(s, "…") != NULL);
	free(s);
}

TEST(render_oneline_of_a_long_text_cuts_at_a_character)
{
	char	 in[700], want[260], *s;
	size_t	 i;

	/* A space run just before the cut; the rest never walked. */
	memset(in, 'b', sizeof in);
	memcpy(in, "a \n\t ", 5);
	in[sizeof in - 1] = '\0';
	s = render_oneline(in, 200);
	memset(want, 'b', sizeof want);
	memcpy(want, "a ", 2);
	strcpy(want + 199, "…");
	CHECK_STR(s, want);
	free(s);
	/* Two-byte characters: cut before the one the limit splits. */
	for (i = 0; i + 2 < sizeof in; i += 2)
		memcpy(in + i, "\xc3\xa9", 2);
	in[i] = '\0';
	s = render_oneline(in, 200);
	CHECK(strlen(s) == 198 + strlen("…"));
	CHECK(strcmp(s + 198, "…") == 0);
	free(s);
	s = render_oneline("  ", 0);
	CHECK_STR(s, "");
	free(s);
}

TEST(render_card_shows_state_elapsed_branch_steps_and_files)
{
	const char		*steps[] = { "one", "two", NULL };
	const char		*files[] = { "a.c", "b.c", NULL };
	struct render_card	 c = { .id = 3, .name = "claude", .state = "running",
				    .branch = "sb/3-x", .elapsed_s = 65,
				    .steps = steps, .files = files,
				    .waiting = "q5" };
	char			*s;

	s = render_card(&c);
	CHECK_STR(s, "#3 claude · running · 1m05s · `sb/3-x`\n"
	    "waiting for an answer to q5\n• one\n• two\nfiles: a.c b.c");
	free(s);
}

TEST(render_result_shows_failure_tail_and_signal)
{
	struct render_result	 r = { .id = 2, .state = "failed",
				    .branch = "sb/2-y", .exit_code = 0,
				    .term_signal = 9, .tail = "boom" };
	char			*s;

	s = render_result(&r);
	CHECK(strstr(s, "#2 failed (killed by signal 9) on `sb/2-y`") != NULL);
	CHECK(strstr(s, "output tail:\nboom") != NULL);
	free(s);
}

int
main(void)
{
	RUN(render_split_keeps_chunks_within_limit_and_never_splits_utf8);
	RUN(render_split_prefers_a_line_break);
	RUN(render_oneline_collapses_whitespace_and_bounds_length);
	RUN(render_oneline_of_a_long_text_cuts_at_a_character);
	RUN(render_card_shows_state_elapsed_branch_steps_and_files);
	RUN(render_result_shows_failure_tail_and_signal);
	return t_done();
}
