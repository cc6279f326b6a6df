/*
 * driver-claude — Claude Code, headless:
 *
 *	claude -p --output-format stream-json --verbose --mcp-config FILE
 *	    [--permission-mode M] [--model M]
 *	    [--permission-prompt-tool mcp__switchboard__approve] [ARGS...]
 *	    [--resume SESSION] -- PROMPT
 *
 * The prompt comes last, after "--", so a task that starts with '-' is never
 * read as an option.  FILE (state_dir/mcp/agent-ID.json, 0600, outside the
 * worktree so it is never committed) points Claude Code at `switchboard mcp`
 * with the agent's socket and token; the agent then has report_progress,
 * ask_user, finish and, with approvals = "chat", the approve tool Claude Code
 * calls when a tool use needs permission.
 *
 * The stream is one JSON object per line (PROTOCOLS.md): system/init carries
 * the session id (the first one is kept: a resumed run may report another),
 * assistant messages carry text and tool_use blocks (→ card steps), result
 * carries the summary, cost, turns and usage, or an error subtype.  A
 * follow-up to a running agent waits for the next turn (--resume).
 */
#include "orchestrator/driver.h"
#include "orchestrator/jscan.h"
#include "orchestrator/agent.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/util.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define TEXT_STEP_MAX	160
/* A day: a question may wait that long for a person (ms, for the CLI). */
#define CLAUDE_MCP_TIMEOUT_MS	(24LL * 3600 * 1000)
/*
 * Switchboard's own tools run without asking: asking the person whether the
 * agent may ask the person is absurd, and without approvals the CLI denies
 * them silently.  Never `approve`: the permission prompt tool must not be
 * pre-allowed, it is not the model's to call.
 */
#define CLAUDE_OWN_TOOLS	"mcp__switchboard__ask_user," \
				"mcp__switchboard__report_progress," \
				"mcp__switchboard__finish"

/* ---- the stream parser (no agent needed) ------------------------------- */

static void
emit(struct drv_stream *st, enum drv_event ev, const char *text)
{
	if (st->emit != NULL)
		st->emit(st->arg, ev, text);
}

/* First non-empty line of text, for the card. */
static void
emit_text(struct drv_stream *st, const char *text)
{
	const char	*p = text, *nl;
	char		*line;

	while (*p == '\n' || *p == ' ' || *p == '\r' || *p == '\t')
		p++;
	if (*p == '\0')
		return;
	nl = strchr(p, '\n');
	line = nl != NULL ? xstrndup(p, (size_t)(nl - p)) : xstrdup(p);
	utf8_truncate(line, TEXT_STEP_MAX);
	emit(st, DRV_PROGRESS, line);
	free(line);
}

/* " — 3 turns · $0.0123 · 1200 tokens in / 340 out" */
static char *
stats(const struct drv_stream *st, long long turns)
{
	struct buf	 b = { 0 };
	char		 usd[32];

	buf_adds(&b, "—");
	if (turns > 0)
		buf_printf(&b, " %lld turn%s ·", turns, turns == 1 ? "" : "s");
	/* A resumed run reports the session's total: show this run's part. */
	if (st->cost_usd - st->cost_base > 0) {
		driver_fmt_usd(usd, sizeof usd, st->cost_usd - st->cost_base);
		buf_printf(&b, " %s ·", usd);
	}
	buf_printf(&b, " %lld tokens in / %lld out", st->input_tokens,
	    st->output_tokens);
	return buf_steal(&b);
}

static long long
int_of(const json_t *o, const char *key)
{
	const json_t	*v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return 0;
}

/*
 * {"type":"system","subtype":"permission_denied","tool_name","tool_use_id",
 * "message"} (Claude Code 2.1): a tool use the CLI refused by itself.  The
 * model is told and goes on; the person should see it on the card.
 */
static void
on_denied(struct drv_stream *st, const json_t *j)
{
	const char	*tool = json_string_value(json_object_get(j,
	    "tool_name"));
	const char	*p;
	char		*line;

	st->denials++;
	if (tool == NULL)
		tool = "a tool";
	if (strncmp(tool, "mcp__", 5) == 0 &&
	    (p = strstr(tool + 5, "__")) != NULL)
		line = xasprintf("Denied: %.*s: %s", (int)(p - tool - 5),
		    tool + 5, p + 2);
	else
		line = xasprintf("Denied: %s", tool);
	utf8_truncate(line, TEXT_STEP_MAX);
	emit(st, DRV_PROGRESS, line);
	free(line);
}

static void
on_result(struct drv_stream *st, const json_t *j)
{
	const char	*sub = json_string_value(json_object_get(j, "subtype"));
	const char	*res = json_string_value(json_object_get(j, "result"));
	const json_t	*usage = json_object_get(j, "usage"), *v;
	long long	 turns = int_of(j, "num_turns");
	char		*s, *text, *why;
	int		 is_error = json_is_true(json_object_get(j, "is_error"));

	st->ended = 1;
	if (json_is_number(v = json_object_get(j, "total_cost_usd")) &&
	    json_number_value(v) >= 0)
		st->cost_usd = json_number_value(v);
	if (json_is_object(usage)) {
		st->input_tokens = int_of(usage, "input_tokens") +
		    int_of(usage, "cache_creation_input_tokens") +
		    int_of(usage, "cache_read_input_tokens");
		st->output_tokens = int_of(usage, "output_tokens");
	}
	s = stats(st, turns);
	text = xasprintf("%s%s%s", res != NULL ? res : "",
	    res != NULL && *res != '\0' ? "\n" : "", s);
	emit(st, DRV_SUMMARY, text);
	free(text);
	free(s);
	if (sub != NULL && strcmp(sub, "success") == 0 && !is_error)
		return;
	if (sub != NULL && strcmp(sub, "error_max_turns") == 0)
		why = xasprintf("error_max_turns: Claude Code reached its turn"
		    " limit after %lld turns", turns);
	else if (sub != NULL && strcmp(sub, "success") != 0)
		why = xasprintf("%s%s%s", sub, res != NULL ? ": " : "",
		    res != NULL ? res : "");
	else
		why = xasprintf("error: %s", res != NULL ? res : "unknown");
	emit(st, DRV_FAIL, why);
	free(why);
}

/*
 * What of a line is used: the top-level members below, and of an assistant
 * message its id and content blocks' type/text/name and the few input
 * members a step shows.  jscan checks the whole line and finds them; only
 * they go through jansson, so a tool_result's file contents or a Write's new
 * file is never built.  A "user" line (tool results) shows nothing at all.
 */
/* Most lines are assistant and user lines: their members' names first. */
static const char *const claude_top[] = { "type", "message", "session_id",
    "subtype", "cwd", "tool_name", "result", "usage", "num_turns",
    "total_cost_usd", "is_error" };
#define CLAUDE_MESSAGE	1		/* claude_top[CLAUDE_MESSAGE] */
static const char *const claude_block[] = { "type", "text", "name",
    "input" };
#define CLAUDE_NBLOCK	nitems(claude_block)
#define CLAUDE_ROWS	4	/* blocks found in the line's pass, at most */
static const char *const claude_input[] = { "file_path", "notebook_path",
    "command", "pattern", "url", "query", "description", "todos" };

/*
 * A tool_use block's step (f: its type, text, name and input spans).  Only
 * the one input member the step shows is looked for and read: building the
 * input's members as a jansson object cost more than the rest of the step.
 */
static void
on_tool_use(struct drv_stream *st, const struct jscan_field *f)
{
	struct jscan_field	 in[2] = { { 0 }, { 0 } };
	enum drv_tool		 kind;
	json_t			*hname, *harg = NULL, *input;
	const char		*name = NULL, *arg = NULL, *key, *key2;
	char			 nbuf[128], abuf[512], *step;

	hname = NULL;
	if (f[2].val != NULL)
		name = jscan_str(f[2].val, f[2].len, nbuf, sizeof nbuf, &hname);
	/* Our own tools report themselves through the socket. */
	if (name != NULL && strncmp(name, "mcp__switchboard__", 18) == 0) {
		json_decref(hname);
		return;
	}
	if ((kind = driver_tool_kind(name, &key, &key2)) == DRV_TOOL_TODO) {
		input = f[3].val == NULL ? NULL : *f[3].val == '{' ?
		    jscan_pick(f[3].val, f[3].len, claude_input,
		    nitems(claude_input)) : json_null();
		step = driver_tool_step(name, input, st->cwd);
		json_decref(input);
	} else {
		in[0].key = key;
		in[1].key = key2;
		if (key != NULL && f[3].val != NULL && *f[3].val == '{' &&
		    jscan_known(f[3].val, f[3].len, in, key2 != NULL ? 2 : 1) ==
		    '{') {
			if (in[0].val != NULL)
				arg = jscan_str(in[0].val, in[0].len, abuf,
				    sizeof abuf, &harg);
			if (arg == NULL && in[1].val != NULL) {
				json_decref(harg);
				arg = jscan_str(in[1].val, in[1].len, abuf,
				    sizeof abuf, &harg);
			}
		}
		step = driver_tool_step_of(name, kind, arg, st->cwd);
		json_decref(harg);
	}
	emit(st, DRV_PROGRESS, step);
	free(step);
	json_decref(hname);
}

/* A content block (f: its type, text, name and input spans). */
static void
on_block(struct drv_stream *st, const struct jscan_field *f)
{
	json_t		*htype = NULL, *htext;
	const char	*t = NULL, *v;
	char		 tbuf[32], vbuf[512];

	if (f[0].val != NULL)
		t = jscan_str(f[0].val, f[0].len, tbuf, sizeof tbuf, &htype);
	if (t == NULL)
		;
	else if (strcmp(t, "text") == 0) {
		v = NULL;
		htext = NULL;
		if (f[1].val != NULL)
			v = jscan_str(f[1].val, f[1].len, vbuf, sizeof vbuf,
			    &htext);
		if (v != NULL)
			emit_text(st, v);
		json_decref(htext);
	} else if (strcmp(t, "tool_use") == 0)
		on_tool_use(st, f);
	json_decref(htype);
}

/*
 * An assistant message straight from its spans (mf: its id and content;
 * rows: the first nrows content blocks' members; all found by the line's
 * own scan, nrows -1 when the blocks were too many and are walked again):
 * the id, and of each content block the type, text, name and the input's
 * one member its step shows, each read in place when it is a plain string
 * (jscan_str), else decoded by jansson.  Building the message as a jansson
 * tree (message, content array, a block object each) and freeing it was a
 * third of the daemon's instructions with 50 streaming agents (callgrind,
 * bench/agents); a jansson string per member was still a tenth, and
 * walking the content array again an eighth.
 */
static void
on_assistant_spans(struct drv_stream *st, const struct jscan_field *mf,
    const struct jscan_field *rows, int nrows)
{
	struct jscan_field	 f[CLAUDE_NBLOCK];
	json_t			*hid = NULL;
	const char		*ids = NULL, *e;
	char			 ibuf[128];
	size_t			 pos = 0, elen, i;
	int			 r;

	/* One API response may arrive as several events with one id. */
	if (mf[0].val != NULL)
		ids = jscan_str(mf[0].val, mf[0].len, ibuf, sizeof ibuf, &hid);
	if (ids == NULL || st->last_msg_id == NULL ||
	    strcmp(ids, st->last_msg_id) != 0) {
		st->turns++;
		free(st->last_msg_id);
		st->last_msg_id = ids != NULL ? xstrdup(ids) : NULL;
	}
	json_decref(hid);
	if (mf[1].val == NULL || *mf[1].val != '[')
		return;
	/* The blocks the line's own scan found, unless there were many. */
	if (nrows >= 0) {
		for (r = 0; r < nrows; r++)
			on_block(st, &rows[r * CLAUDE_NBLOCK]);
		return;
	}
	for (i = 0; i < CLAUDE_NBLOCK; i++)
		f[i].key = claude_block[i];
	while ((r = jscan_next_pick(mf[1].val, mf[1].len, &pos, &e, &elen, f,
	    nitems(f))) > 0)
		if (r == 1)
			on_block(st, f);
}

int
claude_stream_line(struct drv_stream *st, const char *line, size_t len)
{
	struct jscan_field	 f[nitems(claude_top)];
	struct jscan_field	 mf[2] = { { .key = "id" }, { .key = "content" } };
	struct jscan_field	 rows[CLAUDE_ROWS * CLAUDE_NBLOCK];
	json_t			*j, *v;
	const char		*type, *sub, *sid, *cwd;
	size_t			 i;
	int			 dup, nrows;

	for (i = 0; i < nitems(claude_top); i++)
		f[i].key = claude_top[i];
	for (i = 0; i < CLAUDE_NBLOCK; i++)
		rows[i].key = claude_block[i];
	/*
	 * An assistant message's id and content, and the content blocks'
	 * members, are found in the one pass.
	 */
	if (jscan_sub_rows(line, len, f, nitems(claude_top), CLAUDE_MESSAGE,
	    mf, 2, &dup, 1, rows, CLAUDE_NBLOCK, CLAUDE_ROWS, &nrows) != '{' ||
	    f[0].val == NULL)
		return -1;
	if (f[0].len == 6 && memcmp(f[0].val, "\"user\"", 6) == 0)
		return 0;	/* tool results: nothing to show */
	if (f[0].len == 11 && memcmp(f[0].val, "\"assistant\"", 11) == 0) {
		/* (A message naming id or content twice shows nothing.) */
		if (f[CLAUDE_MESSAGE].val != NULL &&
		    *f[CLAUDE_MESSAGE].val == '{' && !dup)
			on_assistant_spans(st, mf, rows, nrows);
		return 0;
	}
	/* The message is an assistant line's only (above). */
	j = json_object();
	for (i = 0; i < nitems(claude_top); i++) {
		if (f[i].val == NULL || i == CLAUDE_MESSAGE)
			continue;
		if ((v = jscan_value(f[i].val, f[i].len)) == NULL) {
			/* a number jansson refuses */
			json_decref(j);
			return -1;
		}
		json_object_set_new(j, claude_top[i], v);
	}
	if ((type = json_string_value(json_object_get(j, "type"))) == NULL) {
		json_decref(j);
		return -1;
	}
	if (strcmp(type, "system") == 0) {
		sub = json_string_value(json_object_get(j, "subtype"));
		if (sub != NULL && strcmp(sub, "permission_denied") == 0)
			on_denied(st, j);
		sid = json_string_value(json_object_get(j, "session_id"));
		cwd = json_string_value(json_object_get(j, "cwd"));
		if (sub != NULL && strcmp(sub, "init") == 0) {
			if (sid != NULL && *sid != '\0')
				emit(st, DRV_SESSION, sid);
			if (cwd != NULL) {
				free(st->cwd);
				st->cwd = xstrdup(cwd);
			}
		}
	} else if (strcmp(type, "result") == 0)
		on_result(st, j);
	/* "user" (tool results) and newer event types: nothing to show. */
	json_decref(j);
	return 0;
}

/* ---- the driver ---------------------------------------------------------- */

/*
 * Cost: a resumed run's total_cost_usd is the session's total so far (0.00432,
 * then 0.00648 after a 2-turn resume; observed with Claude Code 2.1.332),
 * while usage and num_turns are this run's.  So a budget is earlier
 * sessions + the current session's reported total, and the card shows the
 * difference to the total before this run.
 */
struct claude {
	struct drv_stream	 st;
	double			 earlier;	/* USD of sessions no longer
						 * resumed */
	char			*mcp_path;
	int			 stopping;
	double			 added;		/* of this run, agent_add_cost'ed */
};

static void
claude_free(void *arg)
{
	struct claude	*c = arg;

	drv_stream_free(&c->st);
	/* Holds a token that dies with the agent: no reason to keep it. */
	if (c->mcp_path != NULL)
		unlink(c->mcp_path);
	free(c->mcp_path);
	free(c);
}

static struct claude *
claude_data(struct agent *a)
{
	struct claude	*c;

	if ((c = agent_driver_data(a)) == NULL) {
		c = xcalloc(1, sizeof *c);
		agent_set_driver_data(a, c, claude_free);
	}
	c->st.emit = driver_emit_to_agent;
	c->st.arg = a;
	return c;
}

const char *
driver_self_exe(void)
{
	static char	 path[4096];
	size_t		 len = sizeof path;

	if (path[0] == '\0' && uv_exepath(path, &len) != 0)
		snprintf(path, sizeof path, "switchboard");
	return path;
}

/* Writes state_dir/mcp/agent-ID.json (0600); its path or NULL + cause. */
static char *
write_mcp_config(const struct agent *a, int approve, char **cause)
{
	json_t	*j;
	char	*dir, *path, *text, id[32];
	size_t	 len;
	ssize_t	 n;
	int	 fd;

	dir = xasprintf("%s/mcp", agent_state_dir());
	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		*cause = xasprintf("mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	path = xasprintf("%s/agent-%lld.json", dir, (long long)agent_id(a));
	free(dir);
	snprintf(id, sizeof id, "%lld", (long long)agent_id(a));
	/*
	 * "timeout" (ms) per server overrides MCP_TOOL_TIMEOUT in Claude Code
	 * (checked with 2.1.332): without it a question pending for long is
	 * cut off by the CLI's default.  SWITCHBOARD_MCP_APPROVE lists the
	 * approve tool only when Claude Code calls it as the permission
	 * prompt tool; otherwise the model could call it as an ordinary tool.
	 */
	j = json_pack("{s:{s:{s:s, s:s, s:[s], s:I, s:{s:s, s:s, s:s, s:s}}}}",
	    "mcpServers", "switchboard", "type", "stdio", "command",
	    driver_self_exe(), "args", "mcp", "timeout",
	    (json_int_t)CLAUDE_MCP_TIMEOUT_MS, "env",
	    "SWITCHBOARD_SOCKET", agent_socket_path(),
	    "SWITCHBOARD_AGENT_TOKEN", agent_token(a),
	    "SWITCHBOARD_AGENT_ID", id,
	    "SWITCHBOARD_MCP_APPROVE", approve ? "1" : "0");
	text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1 || fchmod(fd, 0600) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		goto fail;
	}
	len = strlen(text);
	if ((n = write(fd, text, len)) != (ssize_t)len) {
		*cause = xasprintf("%s: %s", path, n < 0 ? strerror(errno) :
		    "short write");
		goto fail;
	}
	close(fd);
	free(text);
	return path;
fail:
	if (fd != -1)
		close(fd);
	free(text);
	free(path);
	return NULL;
}

static void
push(char ***v, size_t *n, const char *s)
{
	*v = xrealloc(*v, (*n + 2) * sizeof **v);
	(*v)[(*n)++] = xstrdup(s);
	(*v)[*n] = NULL;
}

static char **
claude_argv(const struct agent *ca, const struct cfg_agent *cfg,
    const char *prompt, int followup, char **cause)
{
	/* The runtime owns the agent; argv only sets up this driver's state. */
	struct agent	*a = (struct agent *)ca;
	struct claude	*c = claude_data(a);
	char		**argv = NULL;
	size_t		  n = 0, i;

	char		  usd[32], max[32];
	double		  session;
	int		  resume = followup && agent_session(a) != NULL;

	/* A new run: this run's counters start at zero. */
	session = c->st.cost_usd > c->st.cost_base ? c->st.cost_usd :
	    c->st.cost_base;
	drv_stream_free(&c->st);
	memset(&c->st, 0, sizeof c->st);
	claude_data(a);
	if (resume)
		c->st.cost_base = session;	/* reported again, cumulative */
	else
		c->earlier += session;
	c->stopping = 0;
	c->added = 0;
	if (cfg->max_cost_usd > 0 &&
	    c->earlier + c->st.cost_base >= cfg->max_cost_usd) {
		driver_fmt_usd(max, sizeof max, cfg->max_cost_usd);
		driver_fmt_usd(usd, sizeof usd, c->earlier + c->st.cost_base);
		*cause = xasprintf("budget: max_cost_usd %s already spent"
		    " (%s)", max, usd);
		return NULL;
	}
	free(c->mcp_path);
	if ((c->mcp_path = write_mcp_config(a, cfg->approvals_chat,
	    cause)) == NULL)
		return NULL;

	if (cfg->ncommand > 0)
		for (i = 0; i < cfg->ncommand; i++)
			push(&argv, &n, cfg->command[i]);
	else
		push(&argv, &n, "claude");
	push(&argv, &n, "-p");
	push(&argv, &n, "--output-format");
	push(&argv, &n, "stream-json");
	push(&argv, &n, "--verbose");
	push(&argv, &n, "--mcp-config");
	push(&argv, &n, c->mcp_path);
	push(&argv, &n, "--allowedTools");
	push(&argv, &n, CLAUDE_OWN_TOOLS);
	if (cfg->permission_mode != NULL) {
		push(&argv, &n, "--permission-mode");
		push(&argv, &n, cfg->permission_mode);
	}
	if (cfg->model != NULL) {
		push(&argv, &n, "--model");
		push(&argv, &n, cfg->model);
	}
	if (cfg->approvals_chat) {
		push(&argv, &n, "--permission-prompt-tool");
		push(&argv, &n, "mcp__switchboard__approve");
	}
	for (i = 0; i < cfg->nargs; i++)
		push(&argv, &n, cfg->args[i]);
	if (resume) {
		push(&argv, &n, "--resume");
		push(&argv, &n, agent_session(a));
	}
	push(&argv, &n, "--");
	push(&argv, &n, prompt);
	return argv;
}

static void
claude_on_line(struct agent *a, const char *line, size_t len)
{
	struct claude		*c = claude_data(a);
	const struct cfg_agent	*cfg;
	char			*why, usd[32], max[32];

	if (len == 0)
		return;
	if (claude_stream_line(&c->st, line, len) != 0) {
		log_debug("agent %lld: not a stream-json event: %.*s",
		    (long long)agent_id(a), len > 120 ? 120 : (int)len, line);
		return;
	}
	/* This run's cost is the session's total less what came before it. */
	if (c->st.cost_usd - c->st.cost_base > c->added) {
		agent_add_cost(a, c->st.cost_usd - c->st.cost_base - c->added);
		c->added = c->st.cost_usd - c->st.cost_base;
	}
	if (c->stopping || (cfg = agent_config(a)) == NULL)
		return;
	why = NULL;
	if (cfg->max_turns > 0 && c->st.turns > cfg->max_turns)
		why = xasprintf("budget: max_turns %d reached", cfg->max_turns);
	else if (cfg->max_cost_usd > 0 &&
	    c->earlier + c->st.cost_usd > cfg->max_cost_usd) {
		driver_fmt_usd(max, sizeof max, cfg->max_cost_usd);
		driver_fmt_usd(usd, sizeof usd, c->earlier + c->st.cost_usd);
		why = xasprintf("budget: max_cost_usd %s reached (%s)", max,
		    usd);
	}
	if (why != NULL) {
		c->stopping = 1;
		agent_stop(a, why);
		free(why);
	}
}

static int
claude_followup_running(struct agent *a, const char *text)
{
	/* -p reads no more input: the text starts the next turn (--resume). */
	return -1;
}

/* The tail of a stream-json run: what the model said, errors, the result. */
static char *
claude_line_text(const json_t *j)
{
	const char	*type = json_string_value(json_object_get(j, "type"));
	const json_t	*c, *blk;
	struct buf	 b = { 0 };
	size_t		 i;

	if (type == NULL)
		return NULL;
	if (strcmp(type, "result") == 0 &&
	    json_is_string(json_object_get(j, "result")))
		return xasprintf("result: %s", json_string_value(
		    json_object_get(j, "result")));
	if (strcmp(type, "system") == 0 && json_is_string(json_object_get(j,
	    "message")))
		return xstrdup(json_string_value(json_object_get(j,
		    "message")));
	if (strcmp(type, "assistant") != 0)
		return NULL;
	c = json_object_get(json_object_get(j, "message"), "content");
	json_array_foreach(c, i, blk) {
		if (json_is_string(json_object_get(blk, "text")))
			buf_printf(&b, "%s%s", b.len > 0 ? "\n" : "",
			    json_string_value(json_object_get(blk, "text")));
	}
	return b.data != NULL ? buf_steal(&b) : NULL;
}

static char *
claude_human_tail(const char *raw)
{
	return driver_tail_lines(raw, claude_line_text);
}

const struct agent_driver driver_claude = {
	.name = "claude",
	.human_tail = claude_human_tail,
	.tested_version = "2.1.332",
	.argv = claude_argv,
	.on_line = claude_on_line,
	.followup_running = claude_followup_running,
	/* Claude Code ends a turn cleanly on SIGINT, like Ctrl-C. */
	.stop_signal = SIGINT,
};
