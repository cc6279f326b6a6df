#include "bot/mcp.h"
#include "bot/cli.h"
#include "bot/agentconn.h"
#include "bot/ctl-client.h"
#include "bot/ctl-tls.h"
#include "bot/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MCP_VERSION_LATEST	"2025-06-18"
#define MCP_SERVER_VERSION	"0.1.0"
#define MCP_MAX_LINE		(4 * 1024 * 1024)

static const char *const versions[] = { "2025-06-18", "2025-03-26",
    "2024-11-05" };

struct mcp {
	mcp_call_fn	 call;
	void		*arg;
	int		 initialized;
	int		 approve;	/* the approve tool is served */
};

struct mcp *
mcp_new(mcp_call_fn call, void *arg)
{
	struct mcp	*m = xcalloc(1, sizeof *m);

	m->call = call;
	m->arg = arg;
	return m;
}

void
mcp_enable_approve(struct mcp *m, int on)
{
	m->approve = on;
}

void
mcp_free(struct mcp *m)
{
	free(m);
}

static char *
dump(json_t *j)
{
	char	*s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

/* id is borrowed; NULL = null. */
static char *
error_reply(const json_t *id, int code, const char *msg)
{
	return dump(json_pack("{s:s, s:O?, s:{s:i, s:s}}", "jsonrpc", "2.0",
	    "id", id != NULL ? id : json_null(), "error", "code", code,
	    "message", msg));
}

static char *
result_reply(const json_t *id, json_t *result)
{
	return dump(json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id,
	    "result", result));
}

static json_t *
text_result(const char *text, int is_error)
{
	return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text",
	    "text", text, "isError", is_error);
}

static json_t *
tool_schema(const char *name, const char *desc, json_t *props,
    const char *const *required)
{
	json_t	*req = json_array();

	for (; *required != NULL; required++)
		json_array_append_new(req, json_string(*required));
	return json_pack("{s:s, s:s, s:{s:s, s:o, s:o, s:b}}", "name", name,
	    "description", desc, "inputSchema", "type", "object",
	    "properties", props, "required", req, "additionalProperties", 1);
}

static json_t *
tools_list(int approve)
{
	static const char *const r_text[] = { "text", NULL };
	static const char *const r_q[] = { "question", NULL };
	static const char *const r_sum[] = { "summary", NULL };
	static const char *const r_tool[] = { "tool_name", NULL };
	json_t	*tools = json_array();

	json_array_append_new(tools, tool_schema("report_progress",
	    "Show a short progress line on this task's status card in the chat"
	    " thread.  Cheap; use it at each milestone.",
	    json_pack("{s:{s:s, s:s}}", "text", "type", "string",
	    "description", "One line, what you are doing now."), r_text));
	json_array_append_new(tools, tool_schema("ask_user",
	    "Ask the person in the chat thread a question and wait for the"
	    " answer (this can take minutes or hours).  Returns the answer"
	    " text.  Offer choices when the answer is one of a few options.",
	    json_pack("{s:{s:s}, s:{s:s, s:{s:s}, s:i}, s:{s:s, s:s}}",
	    "question", "type", "string",
	    "choices", "type", "array", "items", "type", "string",
	    "maxItems", 10,
	    "timeout_s", "type", "integer", "description",
	    "Give up after this many seconds; 0 or absent = wait."), r_q));
	json_array_append_new(tools, tool_schema("finish",
	    "Report the final summary of the task (shown with the result).",
	    json_pack("{s:{s:s}}", "summary", "type", "string"), r_sum));
	if (approve)
		json_array_append_new(tools, tool_schema("approve",
	    "Permission prompt: asks the person whether a tool use may run."
	    " Called by Claude Code (--permission-prompt-tool), not by the"
	    " model.",
	    json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", "tool_name", "type",
	    "string", "input", "type", "object", "tool_use_id", "type",
	    "string"), r_tool));
	return json_pack("{s:o}", "tools", tools);
}

/* A required non-empty string argument, or NULL. */
static const char *
arg_str(const json_t *args, const char *key)
{
	const char	*s = json_string_value(json_object_get(args, key));

	return s != NULL && *s != '\0' ? s : NULL;
}

/*
 * Runs one tool.  Returns the result object, or NULL with *code and *msg for
 * a protocol error (unknown tool, bad arguments).
 */
static json_t *
call_tool(struct mcp *m, const char *name, const json_t *args, int *code,
    const char **msg)
{
	json_t		*req, *reply = NULL, *v, *out;
	const char	*s;
	char		*cause = NULL, *text;
	size_t		 i;
	int		 rc, approve = 0;

	*code = MCP_INVALID_PARAMS;
	if (strcmp(name, "report_progress") == 0) {
		if ((s = arg_str(args, "text")) == NULL)
			return *msg = "'text' must be a non-empty string", NULL;
		req = json_pack("{s:s, s:s}", "op", "progress", "text", s);
	} else if (strcmp(name, "finish") == 0) {
		if ((s = arg_str(args, "summary")) == NULL)
			return *msg = "'summary' must be a non-empty string",
			    NULL;
		req = json_pack("{s:s, s:s}", "op", "done", "summary", s);
	} else if (strcmp(name, "ask_user") == 0) {
		if ((s = arg_str(args, "question")) == NULL)
			return *msg = "'question' must be a non-empty string",
			    NULL;
		req = json_pack("{s:s, s:s}", "op", "ask", "question", s);
		v = json_object_get(args, "choices");
		if (v != NULL && !json_is_null(v)) {
			if (!json_is_array(v)) {
				json_decref(req);
				return *msg = "'choices' must be an array of"
				    " strings", NULL;
			}
			for (i = 0; i < json_array_size(v); i++)
				if (!json_is_string(json_array_get(v, i))) {
					json_decref(req);
					return *msg = "'choices' must be an"
					    " array of strings", NULL;
				}
			json_object_set(req, "choices", v);
		}
		v = json_object_get(args, "timeout_s");
		if (v != NULL && !json_is_null(v)) {
			if (!json_is_integer(v) || json_integer_value(v) < 0) {
				json_decref(req);
				return *msg = "'timeout_s' must be a"
				    " non-negative integer", NULL;
			}
			json_object_set(req, "timeout", v);
		}
	} else if (strcmp(name, "approve") == 0 && m->approve) {
		if ((s = arg_str(args, "tool_name")) == NULL)
			return *msg = "'tool_name' must be a non-empty string",
			    NULL;
		v = json_object_get(args, "input");
		if (v != NULL && !json_is_object(v))
			return *msg = "'input' must be an object", NULL;
		req = json_pack("{s:s, s:s, s:o}", "op", "approve",
		    "tool_name", s, "input", v != NULL ? json_incref(v) :
		    json_object());
		approve = 1;
	} else {
		*msg = "Unknown tool";
		return NULL;
	}
	if (req == NULL)
		return *msg = "arguments must be UTF-8 strings", NULL;

	rc = m->call(m->arg, req, &reply, &cause);
	json_decref(req);
	if (approve) {
		/* Claude Code wants a decision, never a tool error. */
		if (rc == 0 && json_is_string(json_object_get(reply,
		    "behavior")))
			v = json_pack("{s:O, s:O*, s:O*}", "behavior",
			    json_object_get(reply, "behavior"),
			    "updatedInput", json_object_get(reply,
			    "updatedInput"), "message", json_object_get(reply,
			    "message"));
		else {
			text = xasprintf("switchboard could not ask: %s",
			    cause != NULL ? cause : "bad reply");
			v = json_pack("{s:s, s:s}", "behavior", "deny",
			    "message", text);
			free(text);
		}
		text = json_dumps(v, JSON_COMPACT);
		json_decref(v);
		out = text_result(text, 0);
		free(text);
	} else if (rc == 0) {
		s = json_string_value(json_object_get(reply, "answer"));
		out = text_result(s != NULL ? s : "ok", 0);
	} else {
		if (strcmp(name, "ask_user") == 0 && rc == CTL_REFUSED &&
		    (strcmp(cause, "cancelled") == 0 ||
		    strcmp(cause, "expired") == 0))
			text = xasprintf("the question was %s without an"
			    " answer", cause);
		else
			text = xasprintf("switchboard: %s", cause != NULL ?
			    cause : "failed");
		out = text_result(text, 1);
		free(text);
	}
	free(cause);
	json_decref(reply);
	return out;
}

static char *
on_initialize(struct mcp *m, const json_t *id, const json_t *params)
{
	const char	*want = json_string_value(json_object_get(params,
	    "protocolVersion"));
	const char	*use = MCP_VERSION_LATEST;
	size_t		 i;

	for (i = 0; want != NULL && i < nitems(versions); i++)
		if (strcmp(want, versions[i]) == 0)
			use = versions[i];
	m->initialized = 1;
	return result_reply(id, json_pack("{s:s, s:{s:{s:b}}, s:{s:s, s:s},"
	    " s:s}", "protocolVersion", use, "capabilities", "tools",
	    "listChanged", 0, "serverInfo", "name", "switchboard", "version",
	    MCP_SERVER_VERSION, "instructions",
	    "You run as a switchboard subagent for a person in a chat thread."
	    " Use report_progress for milestones, ask_user when you need a"
	    " decision, finish with a short summary at the end."));
}

char *
mcp_handle(struct mcp *m, const char *line, size_t len)
{
	json_t		*j, *params, *args;
	const json_t	*id;
	const char	*method, *name, *msg = NULL;
	char		*out;
	size_t		 i;
	int		 code;

	for (i = 0; i < len && strchr(" \t\r\n", line[i]) != NULL; i++)
		;
	if (i == len)
		return NULL;		/* blank line: nothing to answer */
	if ((j = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return error_reply(NULL, MCP_PARSE_ERROR, "Parse error");
	if (!json_is_object(j)) {
		/* Batches are gone from MCP (2025-06-18); one object a line. */
		json_decref(j);
		return error_reply(NULL, MCP_INVALID_REQUEST, "Invalid Request");
	}
	id = json_object_get(j, "id");
	if (id != NULL && !json_is_string(id) && !json_is_integer(id)) {
		json_decref(j);
		return error_reply(NULL, MCP_INVALID_REQUEST,
		    "Invalid Request: id must be a string or an integer");
	}
	method = json_string_value(json_object_get(j, "method"));
	if (method == NULL && id != NULL && (json_object_get(j, "result") ||
	    json_object_get(j, "error"))) {
		json_decref(j);		/* a response: we sent no requests */
		return NULL;
	}
	if (!json_is_string(json_object_get(j, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(j, "jsonrpc")), "2.0") != 0 ||
	    method == NULL) {
		out = error_reply(id, MCP_INVALID_REQUEST, "Invalid Request");
		json_decref(j);
		return out;
	}
	if (id == NULL) {
		/* Notifications (initialized, cancelled...): never answered. */
		json_decref(j);
		return NULL;
	}
	params = json_object_get(j, "params");
	if (params != NULL && !json_is_object(params)) {
		out = error_reply(id, MCP_INVALID_PARAMS,
		    "Invalid params: params must be an object");
		json_decref(j);
		return out;
	}
	if (strcmp(method, "initialize") == 0)
		out = on_initialize(m, id, params);
	else if (strcmp(method, "ping") == 0)
		out = result_reply(id, json_object());
	else if (strcmp(method, "tools/list") == 0)
		out = result_reply(id, tools_list(m->approve));
	else if (strcmp(method, "tools/call") == 0) {
		name = json_string_value(json_object_get(params, "name"));
		args = json_object_get(params, "arguments");
		if (name == NULL)
			out = error_reply(id, MCP_INVALID_PARAMS,
			    "Invalid params: 'name' must be a string");
		else if (args != NULL && !json_is_object(args))
			out = error_reply(id, MCP_INVALID_PARAMS,
			    "Invalid params: 'arguments' must be an object");
		else {
			json_t *res = call_tool(m, name, args, &code, &msg);

			if (res == NULL) {
				char *t = xasprintf("%s: %s", strcmp(msg,
				    "Unknown tool") == 0 ? "Unknown tool" :
				    "Invalid params", strcmp(msg,
				    "Unknown tool") == 0 ? name : msg);
				out = error_reply(id, code, t);
				free(t);
			} else
				out = result_reply(id, res);
		}
	} else
		out = error_reply(id, MCP_METHOD_NOT_FOUND, "Method not found");
	json_decref(j);
	return out;
}

/* ---- the agent socket (or listener) backend ----------------------------- */

static int
daemon_call(void *arg, json_t *req, json_t **reply, char **cause)
{
	const char	*op = json_string_value(json_object_get(req, "op"));

	/* Questions wait for a person; everything else is quick. */
	return agentconn_call(arg, req, reply, strcmp(op, "ask") == 0 ||
	    strcmp(op, "approve") == 0 ? -1 : 30000, cause);
}

int
mcp_main(int argc, char **argv)
{
	struct agentconn *ac;
	struct mcp	*m;
	char		*line = NULL, *out, *cause = NULL;
	size_t		 cap = 0;
	ssize_t		 n;

	if (argc > 1) {
		fprintf(stderr, "usage: switchboard mcp\n  a stdio MCP server"
		    " for agents (Claude Code, Codex) that switchboard"
		    " started\n");
		return strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0 ? EXIT_OK : EXIT_USAGE;
	}
	if ((ac = agentconn_env(&ctl_tls_net, &cause)) == NULL) {
		fprintf(stderr, "switchboard mcp: %s\n", cause);
		free(cause);
		return EXIT_USAGE;
	}
	m = mcp_new(daemon_call, ac);
	mcp_enable_approve(m, getenv("SWITCHBOARD_MCP_APPROVE") != NULL &&
	    strcmp(getenv("SWITCHBOARD_MCP_APPROVE"), "1") == 0);
	while ((n = getline(&line, &cap, stdin)) != -1) {
		if (n > MCP_MAX_LINE)
			out = error_reply(NULL, MCP_PARSE_ERROR,
			    "Parse error: message too large");
		else
			out = mcp_handle(m, line, (size_t)n);
		if (out != NULL) {
			fputs(out, stdout);
			fputc('\n', stdout);
			fflush(stdout);
			free(out);
		}
	}
	free(line);
	mcp_free(m);
	agentconn_free(ac);
	return EXIT_OK;
}
