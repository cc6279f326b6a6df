/*
 * bench/jscan — CPU of the claude stream parser per MB of stream-json.
 *
 *	build/default/bench/jscan [-m megabytes] [-o] [-s]
 *
 * Feeds claude_stream_line the same turn bench/stream-claude replays
 * (assistant text, tool_use Read/Edit/Bash, tool_result with file contents)
 * until `megabytes` (default 200) have gone through, and, as the reference
 * from the same run, json_loadb + json_decref of every line: what the
 * driver cost before jscan, when every line was built whole.  Prints CPU ms
 * per MB of each and the share of a core 50 agents x 1 MB/s would take on
 * parsing alone.  -o runs the driver alone (for perf).  -s writes the lines
 * with ", " and ": " between members, as bench/stream-claude's Python
 * json.dumps does (Claude Code's own lines are compact, the default).
 * Numbers only; it never fails on speed.
 */
#include "orchestrator/driver.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct buf	 chunk;
static size_t		 dump_flags = JSON_COMPACT;

static void
add_line(json_t *j)
{
	char	*s = json_dumps(j, dump_flags);

	buf_adds(&chunk, s);
	buf_adds(&chunk, "\n");
	free(s);
	json_decref(j);
}

static json_t *
assistant(int n, json_t *block)
{
	char	 id[32];

	snprintf(id, sizeof id, "msg_%05d", n);
	return json_pack("{s:s, s:s, s:n, s:{s:s, s:s, s:s, s:s, s:[o], s:n,"
	    " s:{s:i, s:i}}}", "type", "assistant", "session_id",
	    "2b1f2a52-1c55-4c53-9d0b-2f0f9c1b1a11", "parent_tool_use_id",
	    "message", "id", id, "type", "message", "role", "assistant",
	    "model", "claude-sonnet-4-5", "content", block, "stop_reason",
	    "usage", "input_tokens", 1200, "output_tokens", 80);
}

static json_t *
tool_result(int n, const char *text)
{
	char	 id[32];

	snprintf(id, sizeof id, "toolu_%05d", n);
	return json_pack("{s:s, s:s, s:n, s:{s:s, s:[{s:s, s:s, s:s}]}}",
	    "type", "user", "session_id",
	    "2b1f2a52-1c55-4c53-9d0b-2f0f9c1b1a11", "parent_tool_use_id",
	    "message", "role", "user", "content", "type", "tool_result",
	    "tool_use_id", id, "content", text);
}

static void
make_turn(void)
{
	struct buf	 src = { 0 }, ok = { 0 };
	char		 t[160], p[64];
	int		 i, n;

	for (i = 0; i < 40; i++)
		buf_printf(&src, "static int f%d(int x) { return x * %d; }\n",
		    i, i);
	for (i = 0; i < 10; i++)
		buf_adds(&ok, "ok 1 - login\nok 2 - logout\n");
	buf_add(&src, "", 1);
	buf_add(&ok, "", 1);
	for (n = 0; n < 8; n++) {
		snprintf(t, sizeof t, "Looking at src/mod%d.c to see how the "
		    "login state is kept before changing it.", n);
		snprintf(p, sizeof p, "/w/src/mod%d.c", n);
		add_line(assistant(n, json_pack("{s:s, s:s}", "type", "text",
		    "text", t)));
		add_line(assistant(n, json_pack("{s:s, s:s, s:s, s:{s:s}}",
		    "type", "tool_use", "id", "toolu_r", "name", "Read",
		    "input", "file_path", p)));
		add_line(tool_result(n, src.data));
		add_line(assistant(n, json_pack("{s:s, s:s, s:s, s:{s:s, s:s,"
		    " s:s}}", "type", "tool_use", "id", "toolu_e", "name",
		    "Edit", "input", "file_path", p, "old_string",
		    "return x * 3;", "new_string", "return x * 3 + 1;")));
		add_line(assistant(n, json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}",
		    "type", "tool_use", "id", "toolu_b", "name", "Bash", "input",
		    "command", "make test", "description", "Run the tests")));
		add_line(tool_result(n, ok.data));
	}
	buf_free(&src);
	buf_free(&ok);
}

static double
cpu_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
sink(void *arg, enum drv_event ev, const char *text)
{
	(*(size_t *)arg) += strlen(text);
}

/* ms of CPU per MB for one pass style (0: the driver, 1: jansson whole). */
static double
run(int style, size_t total)
{
	size_t			 done = 0, n, shown = 0;
	const char		*p, *nl, *end = chunk.data + chunk.len;
	struct drv_stream	 st = { .emit = sink, .arg = &shown };
	json_t			*j;
	double			 t0 = cpu_now();

	while (done < total) {
		for (p = chunk.data; p < end; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(end - p));
			n = (size_t)(nl - p);
			if (style == 0) {
				if (claude_stream_line(&st, p, n) != 0)
					abort();
			} else {
				if ((j = json_loadb(p, n,
				    JSON_REJECT_DUPLICATES, NULL)) == NULL)
					abort();
				json_decref(j);
			}
		}
		done += chunk.len;
	}
	drv_stream_free(&st);
	return (cpu_now() - t0) * 1000 / ((double)done / (1 << 20));
}

int
main(int argc, char **argv)
{
	size_t	 mb = 200;
	double	 ours, ref;
	int	 ch, only = 0;

	while ((ch = getopt(argc, argv, "m:os")) != -1)
		if (ch == 'm')
			mb = (size_t)atoi(optarg);
		else if (ch == 'o')
			only = 1;	/* the driver alone, for perf */
		else if (ch == 's')
			dump_flags = 0;	/* ", " and ": ", like Python's */
	make_turn();
	if (only) {
		printf("driver with jscan %.2f ms/MB\n", run(0, mb << 20));
		buf_free(&chunk);
		return 0;
	}
	run(0, chunk.len * 10);		/* warm up */
	ref = run(1, mb << 20);
	ours = run(0, mb << 20);
	printf("claude stream, %zu MB (a turn of %zu bytes): jansson whole "
	    "%.2f ms/MB, driver with jscan %.2f ms/MB\n", mb, chunk.len, ref,
	    ours);
	printf("FIGURE\tstream parsing: CPU per MB of stream-json\t%.2f ms "
	    "(jansson whole: %.2f ms, %.1fx)\tbench/jscan: claude_stream_line on"
	    " bench/stream-claude's turn vs json_loadb of every line, %zu MB, "
	    "process CPU time\t-\t-\n", ours, ref, ref / ours, mb);
	printf("FIGURE\tstream parsing: 50 agents x 1 MB/s, parsing alone\t"
	    "%.1f%% of a core (jansson whole: %.1f%%)\t50 x ms/MB / 1000\t"
	    "< 15%% (whole daemon)\t-\n", 50 * ours / 10, 50 * ref / 10);
	buf_free(&chunk);
	return 0;
}
