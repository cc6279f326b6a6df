/*
 * driver-codex — the OpenAI Codex CLI, headless:
 *
 *	codex exec --json [--model M] -c mcp_servers.switchboard.…=… [ARGS...]
 *	    [resume THREAD_ID] -- PROMPT
 *
 * Codex reads MCP servers from its config; the -c overrides add
 * `switchboard mcp` for this run only, and pass SWITCHBOARD_SOCKET/
 * AGENT_TOKEN/AGENT_ID through by name (env_vars), so the token never
 * appears on a command line.  tool_timeout_sec is raised to a day because
 * Codex's default (60 s) would cut every ask_user short.
 * default_tools_approval_mode = "approve": `codex exec` runs with approval
 * policy "never", under which every MCP tool call fails ("MCP tool call
 * requires approval, but approval policy is never"; Codex 0.171.0).
 * -s SANDBOX (default workspace-write): exec's default sandbox is
 * read-only, so the agent could not write its worktree.
 *
 * The stream (PROTOCOLS.md): thread.started (thread id → session, for
 * `codex exec resume`), item.started/updated/completed (command execution,
 * file change, agent message, todo list, MCP tool call → card steps; the
 * last agent message is the summary), turn.completed (usage), turn.failed
 * and error (→ failure).
 */
#include "orchestrator/driver.h"
#include "orchestrator/jscan.h"
#include "orchestrator/sandbox.h"
#include "orchestrator/agent.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/util.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define CODEX_TOOL_TIMEOUT	"86400"
#define CODEX_SANDBOX		"workspace-write"

/* ---- the stream parser (no agent needed) ------------------------------- */

static void
emit(struct drv_stream *st, enum drv_event ev, const char *text)
{
	if (st->emit != NULL)
		st->emit(st->arg, ev, text);
}

static const char *
str_of(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void
emit_first_line(struct drv_stream *st, const char *text)
{
	const char	*p = text, *nl;
	char		*line;

	while (*p == '\n' || *p == ' ' || *p == '\r' || *p == '\t')
		p++;
	if (*p == '\0')
		return;
	nl = strchr(p, '\n');
	line = nl != NULL ? xstrndup(p, (size_t)(nl - p)) : xstrdup(p);
	utf8_truncate(line, 160);
	emit(st, DRV_PROGRESS, line);
	free(line);
}

static void
todo_step(struct drv_stream *st, const json_t *item)
{
	const json_t	*items = json_object_get(item, "items"), *t;
	const char	*next = NULL;
	size_t		 i, done = 0;
	char		*s;

	json_array_foreach(items, i, t) {
		if (json_is_true(json_object_get(t, "completed")))
			done++;
		else if (next == NULL)
			next = str_of(t, "text");
	}
	s = xasprintf("Plan: %zu/%zu done%s%s", done, json_array_size(items),
	    next != NULL ? " · next: " : "", next != NULL ? next : "");
	emit_first_line(st, s);
	free(s);
}

static void
file_step(struct drv_stream *st, const json_t *item)
{
	const json_t	*ch = json_object_get(item, "changes"), *c;
	const char	*kind, *path;
	struct buf	 b = { 0 };
	size_t		 i;
	char		*red;

	json_array_foreach(ch, i, c) {
		if ((path = str_of(c, "path")) == NULL)
			continue;
		kind = str_of(c, "kind");
		/* Codex 0.171 reports absolute paths. */
		buf_printf(&b, "%s%s %s", b.len > 0 ? ", " : "",
		    kind != NULL && strcmp(kind, "add") == 0 ? "Add" :
		    kind != NULL && strcmp(kind, "delete") == 0 ? "Delete" :
		    "Edit", driver_relative(path, st->cwd));
		if (b.len > 200)
			break;
	}
	if (b.len == 0)
		buf_adds(&b, "Edit files");
	buf_add(&b, "", 1);
	red = driver_redact(b.data);
	emit_first_line(st, red);
	free(red);
	buf_free(&b);
}

/*
 * A failed MCP tool call: {"status":"failed","error":{"message":…}}.  Shown
 * on the card; a failed call of switchboard's own tools (an unanswered
 * question, a lost socket) also fails the run, so it never passes as done
 * with the error text as the answer.
 */
static void
mcp_failed(struct drv_stream *st, const json_t *item)
{
	const char	*server = str_of(item, "server");
	const char	*tool = str_of(item, "tool"), *msg;
	const json_t	*err = json_object_get(item, "error");
	char		*s;

	if (!json_is_object(err) && (str_of(item, "status") == NULL ||
	    strcmp(str_of(item, "status"), "failed") != 0))
		return;
	msg = str_of(err, "message");
	s = xasprintf("%s: %s failed: %s", server != NULL ? server : "mcp",
	    tool != NULL ? tool : "tool", msg != NULL ? msg : "unknown error");
	emit_first_line(st, s);
	if (server != NULL && strcmp(server, "switchboard") == 0 &&
	    st->own_failure == NULL)
		st->own_failure = s;
	else
		free(s);
}

static void
on_item(struct drv_stream *st, const char *phase, const json_t *item)
{
	const char	*type = str_of(item, "type"), *v;
	char		*s;
	json_t		*in;

	if (type == NULL)
		return;
	if (strcmp(type, "command_execution") == 0) {
		if (strcmp(phase, "item.started") == 0) {
			in = json_pack("{s:s?}", "command", str_of(item,
			    "command"));
			s = driver_tool_step("Bash", in, NULL);
			json_decref(in);
			emit(st, DRV_PROGRESS, s);
			free(s);
		} else if (strcmp(phase, "item.completed") == 0) {
			st->turns++;
			if (json_is_integer(json_object_get(item, "exit_code")) &&
			    json_integer_value(json_object_get(item,
			    "exit_code")) != 0) {
				s = xasprintf("Command failed (exit %lld)",
				    (long long)json_integer_value(
				    json_object_get(item, "exit_code")));
				emit(st, DRV_PROGRESS, s);
				free(s);
			}
		}
	} else if (strcmp(type, "file_change") == 0) {
		if (strcmp(phase, "item.completed") == 0) {
			st->turns++;
			file_step(st, item);
		}
	} else if (strcmp(type, "agent_message") == 0) {
		if (strcmp(phase, "item.completed") == 0 &&
		    (v = str_of(item, "text")) != NULL) {
			st->turns++;
			free(st->last_text);
			st->last_text = xstrdup(v);
			emit_first_line(st, v);
		}
	} else if (strcmp(type, "todo_list") == 0)
		todo_step(st, item);
	else if (strcmp(type, "mcp_tool_call") == 0) {
		v = str_of(item, "server");
		/* Our own tools report themselves through the socket. */
		if (strcmp(phase, "item.started") == 0 && v != NULL &&
		    strcmp(v, "switchboard") != 0) {
			s = xasprintf("mcp__%s__%s", v, str_of(item, "tool") ?
			    str_of(item, "tool") : "tool");
			emit_first_line(st, s + 5);
			free(s);
		}
		if (strcmp(phase, "item.completed") == 0) {
			st->turns++;
			mcp_failed(st, item);
		}
	} else if (strcmp(type, "web_search") == 0) {
		if (strcmp(phase, "item.started") == 0 &&
		    (v = str_of(item, "query")) != NULL) {
			s = xasprintf("Search the web: %s", v);
			emit_first_line(st, s);
			free(s);
		}
	} else if (strcmp(type, "error") == 0 &&
	    (v = str_of(item, "message")) != NULL) {
		/* A non-fatal error item: worth a step, not a failure. */
		s = xasprintf("warning: %s", v);
		emit_first_line(st, s);
		free(s);
	}
}

static void
on_turn_completed(struct drv_stream *st, const json_t *j)
{
	const json_t	*u = json_object_get(j, "usage");
	struct buf	 b = { 0 };

	st->ended = 1;
	if (json_is_integer(json_object_get(u, "input_tokens")))
		st->input_tokens += json_integer_value(json_object_get(u,
		    "input_tokens"));
	if (json_is_integer(json_object_get(u, "output_tokens")))
		st->output_tokens += json_integer_value(json_object_get(u,
		    "output_tokens"));
	if (st->last_text != NULL)
		buf_printf(&b, "%s\n", st->last_text);
	buf_printf(&b, "— %lld tokens in / %lld out", st->input_tokens,
	    st->output_tokens);
	emit(st, DRV_SUMMARY, b.data);
	buf_free(&b);
	if (st->own_failure != NULL)
		emit(st, DRV_FAIL, st->own_failure);
}

/*
 * What of a line is used: the top-level members below and, of an item, the
 * members on_item reads.  jscan checks the whole line and finds them; only
 * they go through jansson, so a command's aggregated_output is never built.
 */
static const char *const codex_top[] = { "type", "thread_id", "usage",
    "error", "message", "item" };
#define CODEX_ITEM	5		/* codex_top[CODEX_ITEM] */
static const char *const codex_item[] = { "type", "command", "exit_code",
    "changes", "text", "items", "server", "tool", "status", "error",
    "query", "message" };

int
codex_stream_line(struct drv_stream *st, const char *line, size_t len)
{
	struct jscan_field	 f[nitems(codex_top)];
	json_t			*j, *err, *jv;
	const char		*type, *v;
	char			*s;
	size_t			 i;

	for (i = 0; i < nitems(codex_top); i++)
		f[i].key = codex_top[i];
	if (jscan(line, len, f, nitems(codex_top)) != '{')
		return -1;
	j = json_object();
	for (i = 0; i < nitems(codex_top); i++) {
		if (f[i].val == NULL)
			continue;
		if (i == CODEX_ITEM)
			jv = *f[i].val == '{' ? jscan_pick(f[i].val, f[i].len,
			    codex_item, nitems(codex_item)) : json_null();
		else
			jv = jscan_value(f[i].val, f[i].len);
		if (jv == NULL) {	/* a number jansson refuses */
			json_decref(j);
			return -1;
		}
		json_object_set_new(j, codex_top[i], jv);
	}
	if ((type = json_string_value(json_object_get(j, "type"))) == NULL) {
		json_decref(j);
		return -1;
	}
	if (strcmp(type, "thread.started") == 0) {
		if ((v = str_of(j, "thread_id")) != NULL && *v != '\0')
			emit(st, DRV_SESSION, v);
	} else if (strncmp(type, "item.", 5) == 0) {
		if (json_is_object(json_object_get(j, "item")))
			on_item(st, type, json_object_get(j, "item"));
	} else if (strcmp(type, "turn.completed") == 0)
		on_turn_completed(st, j);
	else if (strcmp(type, "turn.failed") == 0) {
		err = json_object_get(j, "error");
		v = str_of(err, "message");
		s = xasprintf("turn.failed: %s", v != NULL ? v : "unknown");
		emit(st, DRV_FAIL, s);
		free(s);
	} else if (strcmp(type, "error") == 0) {
		v = str_of(j, "message");
		s = xasprintf("error: %s", v != NULL ? v : "unknown");
		emit(st, DRV_FAIL, s);
		free(s);
	}
	json_decref(j);
	return 0;
}

/* ---- the driver ---------------------------------------------------------- */

struct codex {
	struct drv_stream	 st;
	int			 stopping;
};

static void
codex_free(void *arg)
{
	struct codex	*c = arg;

	drv_stream_free(&c->st);
	free(c);
}

static struct codex *
codex_data(struct agent *a)
{
	struct codex	*c;

	if ((c = agent_driver_data(a)) == NULL) {
		c = xcalloc(1, sizeof *c);
		agent_set_driver_data(a, c, codex_free);
	}
	c->st.emit = driver_emit_to_agent;
	c->st.arg = a;
	return c;
}

static void
push(char ***v, size_t *n, char *s)	/* takes s */
{
	*v = xrealloc(*v, (*n + 2) * sizeof **v);
	(*v)[(*n)++] = s;
	(*v)[*n] = NULL;
}

/* A TOML basic string: JSON's escaping is a subset TOML accepts. */
static char *
toml_str(const char *s)
{
	json_t	*j = json_string(s);
	char	*out;

	out = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : xstrdup("\"\"");
	json_decref(j);
	return out;
}

static char **
codex_argv(const struct agent *ca, const struct cfg_agent *cfg,
    const char *prompt, int followup, char **cause)
{
	/* The runtime owns the agent; argv only resets this driver's state. */
	struct agent	*a = (struct agent *)ca;
	struct codex	*c = codex_data(a);
	char		**argv = NULL, *q;
	size_t		  n = 0, i;

	drv_stream_free(&c->st);
	memset(&c->st, 0, sizeof c->st);
	codex_data(a);
	c->stopping = 0;
	if (agent_worktree(a) != NULL)
		c->st.cwd = xstrdup(agent_worktree(a));

	if (cfg->ncommand > 0)
		for (i = 0; i < cfg->ncommand; i++)
			push(&argv, &n, xstrdup(cfg->command[i]));
	else
		push(&argv, &n, xstrdup("codex"));
	push(&argv, &n, xstrdup("exec"));
	push(&argv, &n, xstrdup("--json"));
	if (cfg->model != NULL) {
		push(&argv, &n, xstrdup("--model"));
		push(&argv, &n, xstrdup(cfg->model));
	}
	q = toml_str(driver_self_exe());
	push(&argv, &n, xstrdup("-c"));
	push(&argv, &n, xasprintf("mcp_servers.switchboard.command=%s", q));
	free(q);
	push(&argv, &n, xstrdup("-c"));
	push(&argv, &n, xstrdup("mcp_servers.switchboard.args=[\"mcp\"]"));
	push(&argv, &n, xstrdup("-c"));
	push(&argv, &n, xstrdup("mcp_servers.switchboard.env_vars=["
	    "\"SWITCHBOARD_SOCKET\",\"SWITCHBOARD_AGENT_TOKEN\","
	    "\"SWITCHBOARD_AGENT_ID\"]"));
	push(&argv, &n, xstrdup("-c"));
	push(&argv, &n, xstrdup("mcp_servers.switchboard.tool_timeout_sec="
	    CODEX_TOOL_TIMEOUT));
	push(&argv, &n, xstrdup("-c"));
	push(&argv, &n, xstrdup("mcp_servers.switchboard."
	    "default_tools_approval_mode=\"approve\""));
	/*
	 * Codex's own sandbox cannot start inside ours (measured with 0.171:
	 * every command and patch then fails quietly and the run still ends
	 * "done"), and ours already holds the run to its worktree: inside
	 * it, Codex runs its commands without one of its own.
	 */
	push(&argv, &n, xstrdup("-s"));
	push(&argv, &n, xstrdup(cfg->codex_sandbox != NULL ? cfg->codex_sandbox :
	    cfg->sandbox && sandbox_available(NULL) ? "danger-full-access" :
	    CODEX_SANDBOX));
	for (i = 0; i < cfg->nargs; i++)
		push(&argv, &n, xstrdup(cfg->args[i]));
	if (followup && agent_session(a) != NULL) {
		push(&argv, &n, xstrdup("resume"));
		push(&argv, &n, xstrdup(agent_session(a)));
	}
	push(&argv, &n, xstrdup("--"));
	push(&argv, &n, xstrdup(prompt));
	return argv;
}

static void
codex_on_line(struct agent *a, const char *line, size_t len)
{
	struct codex		*c = codex_data(a);
	const struct cfg_agent	*cfg;
	char			*why;

	if (len == 0)
		return;
	if (codex_stream_line(&c->st, line, len) != 0) {
		log_debug("agent %lld: not a codex event: %.*s",
		    (long long)agent_id(a), len > 120 ? 120 : (int)len, line);
		return;
	}
	if (c->stopping || (cfg = agent_config(a)) == NULL)
		return;
	if (cfg->max_turns > 0 && c->st.turns > cfg->max_turns) {
		why = xasprintf("budget: max_turns %d reached", cfg->max_turns);
		c->stopping = 1;
		agent_stop(a, why);
		free(why);
	}
}

static int
codex_followup_running(struct agent *a, const char *text)
{
	/* exec reads no more input: the text starts `codex exec resume`. */
	return -1;
}

/* The tail of an exec --json run: messages, commands, errors. */
static char *
codex_line_text(const json_t *j)
{
	const char	*type = str_of(j, "type"), *it, *v;
	const json_t	*item = json_object_get(j, "item");

	if (type == NULL)
		return NULL;
	if (strcmp(type, "turn.failed") == 0 &&
	    (v = str_of(json_object_get(j, "error"), "message")) != NULL)
		return xasprintf("turn failed: %s", v);
	if (strcmp(type, "error") == 0 && (v = str_of(j, "message")) != NULL)
		return xasprintf("error: %s", v);
	if (strcmp(type, "item.completed") != 0 && strcmp(type,
	    "item.started") != 0)
		return NULL;
	if ((it = str_of(item, "type")) == NULL)
		return NULL;
	if (strcmp(it, "agent_message") == 0 && strcmp(type,
	    "item.completed") == 0 && (v = str_of(item, "text")) != NULL)
		return xstrdup(v);
	if (strcmp(it, "command_execution") == 0 && strcmp(type,
	    "item.started") == 0 && (v = str_of(item, "command")) != NULL)
		return driver_redact(v);
	if (strcmp(it, "error") == 0 && (v = str_of(item, "message")) != NULL)
		return xasprintf("warning: %s", v);
	if (strcmp(it, "mcp_tool_call") == 0 && strcmp(type,
	    "item.started") == 0)
		return xasprintf("%s: %s…", str_of(item, "server") ?
		    str_of(item, "server") : "mcp", str_of(item, "tool") ?
		    str_of(item, "tool") : "tool");
	return NULL;
}

static char *
codex_human_tail(const char *raw)
{
	return driver_tail_lines(raw, codex_line_text);
}

const struct agent_driver driver_codex = {
	.name = "codex",
	.human_tail = codex_human_tail,
	.tested_version = "0.171.0",
	.argv = codex_argv,
	.on_line = codex_on_line,
	.followup_running = codex_followup_running,
};
