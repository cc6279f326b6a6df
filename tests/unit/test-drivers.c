/*
 * The claude and codex stream parsers on recorded lines, the step/redaction
 * rules, and the MCP server's JSON-RPC handling (with a fake socket), all
 * without a running agent or daemon.
 */
#include "orchestrator/driver.h"
#include "bot/ctl-client.h"
#include "bot/mcp.h"
#include "bot/util.h"
#include "config/config.h"
#include "tests/unit/t.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct rec {
	char	*progress[32];
	int	 nprogress;
	char	*session, *summary, *fail;
	int	 nsession;
};

static void
rec_emit(void *arg, enum drv_event ev, const char *text)
{
	struct rec	*r = arg;

	switch (ev) {
	case DRV_PROGRESS:
		if (r->nprogress < 32)
			r->progress[r->nprogress++] = xstrdup(text);
		break;
	case DRV_SESSION:
		free(r->session);
		r->session = xstrdup(text);
		r->nsession++;
		break;
	case DRV_SUMMARY:
		free(r->summary);
		r->summary = xstrdup(text);
		break;
	case DRV_FAIL:
		free(r->fail);
		r->fail = xstrdup(text);
		break;
	}
}

static void
rec_free(struct rec *r, struct drv_stream *st)
{
	int	 i;

	for (i = 0; i < r->nprogress; i++)
		free(r->progress[i]);
	free(r->session);
	free(r->summary);
	free(r->fail);
	drv_stream_free(st);
}

static int
feed(int (*fn)(struct drv_stream *, const char *, size_t),
    struct drv_stream *st, const char *line)
{
	return fn(st, line, strlen(line));
}

/* Recorded from `claude -p --output-format stream-json --verbose` runs. */
static const char *claude_init =
    "{\"type\":\"system\",\"subtype\":\"init\",\"cwd\":\"/w/1\","
    "\"session_id\":\"0b1c-aa\",\"tools\":[\"Bash\",\"Edit\"],"
    "\"mcp_servers\":[{\"name\":\"switchboard\",\"status\":\"connected\"}],"
    "\"model\":\"claude-sonnet-4-5\",\"permissionMode\":\"default\"}";
static const char *claude_text =
    "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_01\",\"type\":"
    "\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\","
    "\"text\":\"\\n  Looking at the login code.\\nMore detail.\"}]},"
    "\"parent_tool_use_id\":null,\"session_id\":\"0b1c-aa\"}";
static const char *claude_edit =
    "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_01\",\"content\":"
    "[{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Edit\",\"input\":"
    "{\"file_path\":\"/w/1/src/login.c\",\"old_string\":\"a\","
    "\"new_string\":\"b\"}}]},\"session_id\":\"0b1c-aa\"}";
static const char *claude_bash =
    "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_02\",\"content\":"
    "[{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"Bash\",\"input\":"
    "{\"command\":\"AWS_SECRET_ACCESS_KEY=abc123 make test\"}}]}}";
static const char *claude_own_tool =
    "{\"type\":\"assistant\",\"message\":{\"id\":\"msg_03\",\"content\":"
    "[{\"type\":\"tool_use\",\"id\":\"toolu_3\",\"name\":"
    "\"mcp__switchboard__ask_user\",\"input\":{\"question\":\"?\"}}]}}";
static const char *claude_user =
    "{\"type\":\"user\",\"message\":{\"role\":\"user\",\"content\":[{"
    "\"tool_use_id\":\"toolu_2\",\"type\":\"tool_result\",\"content\":"
    "\"ok\"}]}}";
static const char *claude_result =
    "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
    "\"duration_ms\":9000,\"num_turns\":4,\"result\":\"Fixed the login.\","
    "\"session_id\":\"0b1c-aa\",\"total_cost_usd\":0.0571,\"usage\":{"
    "\"input_tokens\":100,\"cache_read_input_tokens\":900,"
    "\"output_tokens\":50}}";

TEST(claude_stream_success_gives_session_steps_and_summary_with_cost)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };

	CHECK_INT(feed(claude_stream_line, &st, claude_init), 0);
	CHECK_STR(r.session, "0b1c-aa");
	CHECK_INT(feed(claude_stream_line, &st, claude_text), 0);
	CHECK_INT(feed(claude_stream_line, &st, claude_edit), 0);
	CHECK_INT(feed(claude_stream_line, &st, claude_bash), 0);
	CHECK_INT(feed(claude_stream_line, &st, claude_own_tool), 0);
	CHECK_INT(feed(claude_stream_line, &st, claude_user), 0);
	CHECK_INT(feed(claude_stream_line, &st, claude_result), 0);
	CHECK_INT(r.nprogress, 3);
	CHECK_STR(r.progress[0], "Looking at the login code.");
	CHECK_STR(r.progress[1], "Edit src/login.c");
	CHECK_STR(r.progress[2], "Run: AWS_SECRET_ACCESS_KEY=*** make test");
	/* msg_01 twice is one turn; msg_02 and msg_03 are two more. */
	CHECK_INT(st.turns, 3);
	CHECK(st.cost_usd > 0.0570 && st.cost_usd < 0.0572);
	CHECK_INT(st.input_tokens, 1000);
	CHECK_INT(st.output_tokens, 50);
	CHECK_STR(r.summary, "Fixed the login.\n— 4 turns · $0.0571 · 1000 tokens"
	    " in / 50 out");
	CHECK(r.fail == NULL);
	CHECK_INT(st.ended, 1);
	rec_free(&r, &st);
}

TEST(claude_stream_error_max_turns_is_a_failure_with_reason)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };

	CHECK_INT(feed(claude_stream_line, &st, "{\"type\":\"result\","
	    "\"subtype\":\"error_max_turns\",\"is_error\":true,\"num_turns\":"
	    "10,\"session_id\":\"s\",\"total_cost_usd\":0.2}"), 0);
	CHECK_STR(r.fail, "error_max_turns: Claude Code reached its turn limit"
	    " after 10 turns");
	CHECK(r.summary != NULL);
	rec_free(&r, &st);
	memset(&r, 0, sizeof r);
	memset(&st, 0, sizeof st);
	st.emit = rec_emit;
	st.arg = &r;
	/* An API error comes as subtype success with is_error. */
	CHECK_INT(feed(claude_stream_line, &st, "{\"type\":\"result\","
	    "\"subtype\":\"success\",\"is_error\":true,\"result\":"
	    "\"API Error: 529 overloaded\"}"), 0);
	CHECK_STR(r.fail, "error: API Error: 529 overloaded");
	rec_free(&r, &st);
	memset(&r, 0, sizeof r);
	memset(&st, 0, sizeof st);
	st.emit = rec_emit;
	st.arg = &r;
	CHECK_INT(feed(claude_stream_line, &st, "{\"type\":\"result\","
	    "\"subtype\":\"error_during_execution\",\"is_error\":true}"), 0);
	CHECK_STR(r.fail, "error_during_execution");
	rec_free(&r, &st);
}

TEST(claude_stream_ignores_garbage_without_events)
{
	static const char *const junk[] = { "", "not json", "{\"type\":",
	    "[1,2,3]", "{\"no_type\":1}", "{\"type\":42}", "\"string\"",
	    "{\"type\":\"assistant\",\"message\":7}",
	    "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":7},"
	    "{\"type\":\"tool_use\"},{\"type\":\"text\",\"text\":null}]}}",
	    "{\"type\":\"result\",\"usage\":[],\"total_cost_usd\":\"x\","
	    "\"subtype\":\"success\"}", NULL };
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };
	int			 i;

	for (i = 0; i < 7; i++)
		CHECK_INT(feed(claude_stream_line, &st, junk[i]), -1);
	for (; junk[i] != NULL; i++)
		CHECK_INT(feed(claude_stream_line, &st, junk[i]), 0);
	CHECK(r.session == NULL && r.fail == NULL);
	CHECK_INT(r.nprogress, 1);		/* the nameless tool_use */
	CHECK_STR(r.progress[0], "tool");
	CHECK(st.cost_usd == 0);
	rec_free(&r, &st);
}

TEST(codex_stream_items_turns_usage_and_summary)
{
	static const char *const lines[] = {
	    "{\"type\":\"thread.started\",\"thread_id\":\"0199a213-81c0\"}",
	    "{\"type\":\"turn.started\"}",
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_0\",\"type\":"
	    "\"reasoning\",\"text\":\"**Scanning**\"}}",
	    "{\"type\":\"item.started\",\"item\":{\"id\":\"item_1\",\"type\":"
	    "\"command_execution\",\"command\":\"bash -lc ls\","
	    "\"aggregated_output\":\"\",\"exit_code\":null,\"status\":"
	    "\"in_progress\"}}",
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":"
	    "\"command_execution\",\"command\":\"bash -lc ls\","
	    "\"aggregated_output\":\"x\",\"exit_code\":2,\"status\":"
	    "\"failed\"}}",
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_2\",\"type\":"
	    "\"file_change\",\"changes\":[{\"path\":\"a.c\",\"kind\":\"update\"},"
	    "{\"path\":\"b.c\",\"kind\":\"add\"}],\"status\":\"completed\"}}",
	    "{\"type\":\"item.updated\",\"item\":{\"id\":\"item_3\",\"type\":"
	    "\"todo_list\",\"items\":[{\"text\":\"one\",\"completed\":true},"
	    "{\"text\":\"two\",\"completed\":false}]}}",
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_4\",\"type\":"
	    "\"agent_message\",\"text\":\"All done.\\nDetails.\"}}",
	    "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":24763,"
	    "\"cached_input_tokens\":24448,\"output_tokens\":122}}",
	    NULL };
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };
	int			 i;

	for (i = 0; lines[i] != NULL; i++)
		CHECK_INT(feed(codex_stream_line, &st, lines[i]), 0);
	CHECK_STR(r.session, "0199a213-81c0");
	CHECK_INT(r.nprogress, 5);
	CHECK_STR(r.progress[0], "Run: bash -lc ls");
	CHECK_STR(r.progress[1], "Command failed (exit 2)");
	CHECK_STR(r.progress[2], "Edit a.c, Add b.c");
	CHECK_STR(r.progress[3], "Plan: 1/2 done · next: two");
	CHECK_STR(r.progress[4], "All done.");
	CHECK_INT(st.turns, 3);
	CHECK_STR(r.summary, "All done.\nDetails.\n— 24763 tokens in / 122 out");
	CHECK(r.fail == NULL);
	rec_free(&r, &st);
}

TEST(codex_stream_turn_failed_and_error_are_failures_garbage_ignored)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };

	CHECK_INT(feed(codex_stream_line, &st, "Reading prompt from stdin..."),
	    -1);
	CHECK_INT(feed(codex_stream_line, &st, "{\"type\":\"item.completed\","
	    "\"item\":{\"type\":\"error\",\"message\":\"hiccup\"}}"), 0);
	CHECK(r.fail == NULL);
	CHECK_STR(r.progress[0], "warning: hiccup");
	CHECK_INT(feed(codex_stream_line, &st, "{\"type\":\"turn.failed\","
	    "\"error\":{\"message\":\"stream disconnected\"}}"), 0);
	CHECK_STR(r.fail, "turn.failed: stream disconnected");
	CHECK_INT(feed(codex_stream_line, &st, "{\"type\":\"error\","
	    "\"message\":\"quota\"}"), 0);
	CHECK_STR(r.fail, "error: quota");
	CHECK_INT(feed(codex_stream_line, &st, "{\"type\":\"item.started\","
	    "\"item\":\"x\"}"), 0);
	rec_free(&r, &st);
}

TEST(redaction_masks_assignments_flags_and_token_words)
{
	char	*s;

	s = driver_redact("GITHUB_TOKEN=ghp_abcdefghijklmnop make x=1 y");
	CHECK_STR(s, "GITHUB_TOKEN=*** make x=1 y");
	free(s);
	s = driver_redact("curl -H 'Authorization: Bearer abc.def' "
	    "--api-key=k123 --password hunter2 sk-ant-api03-aaaaaaaaaa");
	CHECK_STR(s, "curl -H 'Authorization: Bearer *** --api-key=*** "
	    "--password *** ***");
	free(s);
	s = driver_redact("git log 3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f");
	CHECK_STR(s, "git log 3f4e2a1b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f");
	free(s);
	s = driver_redact("echo aB3dE6gH9jK2mN5pQ8sT1vW4yZ7");
	CHECK_STR(s, "echo ***");
	free(s);
}

TEST(tool_steps_are_short_relative_and_named)
{
	json_t	*in;
	char	*s, long_cmd[400];

	in = json_pack("{s:s}", "file_path", "/wt/7/docs/a.md");
	s = driver_tool_step("Write", in, "/wt/7");
	CHECK_STR(s, "Write docs/a.md");
	free(s);
	json_decref(in);
	memset(long_cmd, 'x', sizeof long_cmd - 1);
	long_cmd[sizeof long_cmd - 1] = '\0';
	memcpy(long_cmd, "make ", 5);
	in = json_pack("{s:s}", "command", long_cmd);
	s = driver_tool_step("Bash", in, NULL);
	CHECK(strlen(s) <= 123);
	CHECK(strncmp(s, "Run: make ", 10) == 0);
	free(s);
	json_decref(in);
	s = driver_tool_step("mcp__github__create_issue", NULL, NULL);
	CHECK_STR(s, "github: create_issue");
	free(s);
	s = driver_tool_step("Frobnicate", NULL, NULL);
	CHECK_STR(s, "Frobnicate");
	free(s);
}

/* ---- MCP ----------------------------------------------------------------- */

struct fake_sock {
	json_t	*last;		/* the last request */
	int	 rc;
	json_t	*reply;
	const char *cause;
};

static int
fake_call(void *arg, json_t *req, json_t **reply, char **cause)
{
	struct fake_sock	*f = arg;

	json_decref(f->last);
	f->last = json_deep_copy(req);
	if (f->rc != 0) {
		*cause = xstrdup(f->cause);
		*reply = NULL;
		return f->rc;
	}
	*reply = json_deep_copy(f->reply);
	return 0;
}

static json_t *
handle(struct mcp *m, const char *line)
{
	char	*out = mcp_handle(m, line, strlen(line));
	json_t	*j;

	if (out == NULL)
		return NULL;
	j = json_loads(out, 0, NULL);
	free(out);
	return j;
}

static long long
err_code(json_t *j)
{
	return json_integer_value(json_object_get(json_object_get(j, "error"),
	    "code"));
}

TEST(mcp_initialize_list_and_jsonrpc_errors)
{
	struct fake_sock	 f = { 0 };
	struct mcp		*m = mcp_new(fake_call, &f);
	json_t			*j, *tools, *t;
	size_t			 i;
	int			 seen = 0;

	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
	    "\"params\":{\"protocolVersion\":\"2024-11-05\",\"capabilities\":{},"
	    "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
	CHECK(j != NULL);
	CHECK_INT(json_integer_value(json_object_get(j, "id")), 1);
	t = json_object_get(j, "result");
	CHECK_STR(json_string_value(json_object_get(t, "protocolVersion")),
	    "2024-11-05");
	CHECK(json_is_object(json_object_get(json_object_get(t,
	    "capabilities"), "tools")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(t,
	    "serverInfo"), "name")), "switchboard");
	json_decref(j);
	/* An unknown version gets ours; notifications get no reply. */
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":"
	    "\"initialize\",\"params\":{\"protocolVersion\":\"1999-01-01\"}}");
	CHECK_STR(json_string_value(json_object_get(json_object_get(j,
	    "result"), "protocolVersion")), "2025-06-18");
	CHECK_STR(json_string_value(json_object_get(j, "id")), "a");
	json_decref(j);
	CHECK(handle(m, "{\"jsonrpc\":\"2.0\",\"method\":"
	    "\"notifications/initialized\"}") == NULL);
	CHECK(handle(m, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}") == NULL);
	CHECK(handle(m, "   \r\n") == NULL);

	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
	tools = json_object_get(json_object_get(j, "result"), "tools");
	json_array_foreach(tools, i, t) {
		CHECK_STR(json_string_value(json_object_get(json_object_get(t,
		    "inputSchema"), "type")), "object");
		if (strcmp(json_string_value(json_object_get(t, "name")),
		    "ask_user") == 0)
			seen = 1;
	}
	/* approve is not offered unless enabled (the CLI's prompt tool). */
	CHECK_INT(json_array_size(tools), 3);
	CHECK(seen);
	json_decref(j);
	mcp_enable_approve(m, 1);
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
	CHECK_INT(json_array_size(json_object_get(json_object_get(j,
	    "result"), "tools")), 4);
	json_decref(j);
	mcp_enable_approve(m, 0);

	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":3,");
	CHECK_INT(err_code(j), MCP_PARSE_ERROR);
	CHECK(json_is_null(json_object_get(j, "id")));
	json_decref(j);
	j = handle(m, "[{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}]");
	CHECK_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = handle(m, "{\"jsonrpc\":\"1.0\",\"id\":4,\"method\":\"ping\"}");
	CHECK_INT(err_code(j), MCP_INVALID_REQUEST);
	CHECK_INT(json_integer_value(json_object_get(j, "id")), 4);
	json_decref(j);
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}");
	CHECK_INT(err_code(j), MCP_INVALID_REQUEST);
	json_decref(j);
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/x\"}");
	CHECK_INT(err_code(j), MCP_METHOD_NOT_FOUND);
	json_decref(j);
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"rm_rf\",\"arguments\":{}}}");
	CHECK_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"ask_user\",\"arguments\":{\"choices\":"
	    "[1]}}}");
	CHECK_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}");
	CHECK(json_is_object(json_object_get(j, "result")));
	json_decref(j);
	CHECK(f.last == NULL);		/* nothing reached the socket */
	mcp_free(m);
}

static const char *
result_text(json_t *j, int *is_error)
{
	json_t	*res = json_object_get(j, "result");

	*is_error = json_is_true(json_object_get(res, "isError"));
	return json_string_value(json_object_get(json_array_get(
	    json_object_get(res, "content"), 0), "text"));
}

TEST(mcp_tools_map_to_socket_ops_and_errors_to_is_error)
{
	struct fake_sock	 f = { 0 };
	struct mcp		*m = mcp_new(fake_call, &f);
	json_t			*j, *d;
	int			 is_error;

	f.reply = json_pack("{s:s, s:s}", "answer", "Google", "answered_by",
	    "slack:U1");
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"ask_user\",\"arguments\":{\"question\":"
	    "\"Which?\",\"choices\":[\"GitHub\",\"Google\"],\"timeout_s\":60}}}");
	CHECK_STR(result_text(j, &is_error), "Google");
	CHECK_INT(is_error, 0);
	CHECK_STR(json_string_value(json_object_get(f.last, "op")), "ask");
	CHECK_STR(json_string_value(json_object_get(f.last, "question")),
	    "Which?");
	CHECK_INT(json_array_size(json_object_get(f.last, "choices")), 2);
	CHECK_INT(json_integer_value(json_object_get(f.last, "timeout")), 60);
	json_decref(j);

	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"report_progress\",\"arguments\":{\"text\":"
	    "\"half way\"}}}");
	CHECK_STR(json_string_value(json_object_get(f.last, "op")), "progress");
	json_decref(j);

	f.rc = CTL_REFUSED;
	f.cause = "cancelled";
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"ask_user\",\"arguments\":{\"question\":"
	    "\"Q\"}}}");
	CHECK_STR(result_text(j, &is_error), "the question was cancelled"
	    " without an answer");
	CHECK_INT(is_error, 1);
	json_decref(j);

	/* Not enabled: the model cannot call approve (Codex pre-approves). */
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"approve\",\"arguments\":{\"tool_name\":"
	    "\"Bash\",\"input\":{\"command\":\"ls\"}}}}");
	CHECK_INT(err_code(j), MCP_INVALID_PARAMS);
	json_decref(j);
	mcp_enable_approve(m, 1);

	/* approve never errors: an unreachable daemon is a deny. */
	f.rc = -1;
	f.cause = "no daemon";
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"approve\",\"arguments\":{\"tool_name\":"
	    "\"Bash\",\"input\":{\"command\":\"ls\"}}}}");
	d = json_loads(result_text(j, &is_error), 0, NULL);
	CHECK_INT(is_error, 0);
	CHECK_STR(json_string_value(json_object_get(d, "behavior")), "deny");
	json_decref(d);
	json_decref(j);

	f.rc = 0;
	json_decref(f.reply);
	f.reply = json_pack("{s:s, s:{s:s}}", "behavior", "allow",
	    "updatedInput", "command", "ls");
	j = handle(m, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\","
	    "\"params\":{\"name\":\"approve\",\"arguments\":{\"tool_name\":"
	    "\"Bash\",\"input\":{\"command\":\"ls\"}}}}");
	d = json_loads(result_text(j, &is_error), 0, NULL);
	CHECK_STR(json_string_value(json_object_get(d, "behavior")), "allow");
	CHECK_STR(json_string_value(json_object_get(json_object_get(d,
	    "updatedInput"), "command")), "ls");
	CHECK(json_object_get(d, "message") == NULL);
	CHECK_STR(json_string_value(json_object_get(f.last, "tool_name")),
	    "Bash");
	json_decref(d);
	json_decref(j);

	json_decref(f.reply);
	json_decref(f.last);
	mcp_free(m);
}

TEST(usd_amounts_keep_three_significant_digits)
{
	char	b[32];

	driver_fmt_usd(b, sizeof b, 0.008);
	CHECK_STR(b, "$0.008");
	driver_fmt_usd(b, sizeof b, 0.00432);
	CHECK_STR(b, "$0.00432");
	driver_fmt_usd(b, sizeof b, 0.0123);
	CHECK_STR(b, "$0.0123");
	driver_fmt_usd(b, sizeof b, 0.5);
	CHECK_STR(b, "$0.50");
	driver_fmt_usd(b, sizeof b, 12.345);
	CHECK_STR(b, "$12.35");
	driver_fmt_usd(b, sizeof b, 0);
	CHECK_STR(b, "$0.00");
}

/* Claude Code 2.1.332: a resumed run reports the session's total. */
TEST(claude_resumed_run_shows_its_own_cost_and_denials)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r,
	    .cost_base = 0.00432 };

	CHECK_INT(feed(claude_stream_line, &st,
	    "{\"type\":\"system\",\"subtype\":\"permission_denied\","
	    "\"tool_name\":\"mcp__switchboard__ask_user\",\"tool_use_id\":"
	    "\"toolu_1\",\"message\":\"Claude requested permissions to use"
	    " mcp__switchboard__ask_user, but you haven't granted it yet.\"}"),
	    0);
	CHECK_INT(feed(claude_stream_line, &st,
	    "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
	    "\"num_turns\":2,\"result\":\"ok\",\"total_cost_usd\":0.00648,"
	    "\"usage\":{\"input_tokens\":10,\"output_tokens\":5}}"), 0);
	CHECK_INT(st.denials, 1);
	CHECK_INT(r.nprogress, 1);
	CHECK_STR(r.progress[0], "Denied: switchboard: ask_user");
	CHECK(st.cost_usd > 0.00647 && st.cost_usd < 0.00649);
	CHECK_STR(r.summary, "ok\n— 2 turns · $0.00216 · 10 tokens in / 5 out");
	rec_free(&r, &st);
}

TEST(codex_paths_relative_and_failed_own_tool_fails_the_run)
{
	struct rec		 r = { 0 };
	struct drv_stream	 st = { .emit = rec_emit, .arg = &r };

	st.cwd = xstrdup("/s/worktrees/4");
	/* Observed from codex 0.171.0 exec --json. */
	CHECK_INT(feed(codex_stream_line, &st,
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":"
	    "\"file_change\",\"changes\":[{\"path\":\"/s/worktrees/4/hello.txt\","
	    "\"kind\":\"add\"},{\"path\":\"/etc/x\",\"kind\":\"update\"}],"
	    "\"status\":\"completed\"}}"), 0);
	CHECK_INT(feed(codex_stream_line, &st,
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":"
	    "\"mcp_tool_call\",\"server\":\"switchboard\",\"tool\":"
	    "\"report_progress\",\"arguments\":{\"text\":\"hello\"},\"result\":"
	    "null,\"error\":{\"message\":\"MCP tool call requires approval, but"
	    " approval policy is never\"},\"status\":\"failed\"}}"), 0);
	CHECK(r.fail == NULL);
	CHECK_INT(feed(codex_stream_line, &st,
	    "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":2000,"
	    "\"cached_input_tokens\":0,\"output_tokens\":200}}"), 0);
	CHECK_INT(r.nprogress, 2);
	CHECK_STR(r.progress[0], "Add hello.txt, Edit /etc/x");
	CHECK_STR(r.progress[1], "switchboard: report_progress failed: MCP tool"
	    " call requires approval, but approval policy is never");
	CHECK_STR(r.fail, "switchboard: report_progress failed: MCP tool call"
	    " requires approval, but approval policy is never");
	rec_free(&r, &st);
}

TEST(codex_tail_is_human_text_not_json)
{
	char	*t;
	const char *raw =
	    "\"type\":\"reasoning\",\"text\":\"x\"}}\n"
	    "Reading additional input from stdin...\n"
	    "{\"type\":\"thread.started\",\"thread_id\":\"01a2\"}\n"
	    "{\"type\":\"item.started\",\"item\":{\"id\":\"item_0\",\"type\":"
	    "\"command_execution\",\"command\":\"/bin/bash -lc 'make test'\","
	    "\"aggregated_output\":\"\",\"exit_code\":null,\"status\":"
	    "\"in_progress\"}}\n"
	    "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_1\",\"type\":"
	    "\"agent_message\",\"text\":\"Waiting for your answer.\"}}\n"
	    "{\"type\":\"item.started\",\"item\":{\"id\":\"item_2\",\"type\":"
	    "\"mcp_tool_call\",\"server\":\"switchboard\",\"tool\":\"ask_user\","
	    "\"status\":\"in_progress\"}}\n";

	t = driver_codex.human_tail(raw);
	CHECK_STR(t, "Reading additional input from stdin...\n"
	    "/bin/bash -lc 'make test'\nWaiting for your answer.\n"
	    "switchboard: ask_user…\n");
	free(t);
	t = driver_claude.human_tail("{\"type\":\"assistant\",\"message\":{"
	    "\"content\":[{\"type\":\"text\",\"text\":\"Asking.\"}]}}\n"
	    "{\"type\":\"user\",\"message\":{}}\n");
	CHECK_STR(t, "Asking.\n");
	free(t);
}

TEST(version_output_compares_with_the_tested_version)
{
	CHECK(driver_version_cmp("2.1.332 (Claude Code)", "2.1.332") == 0);
	CHECK(driver_version_cmp("2.1.99 (Claude Code)", "2.1.332") < 0);
	CHECK(driver_version_cmp("2.2.0 (Claude Code)", "2.1.332") > 0);
	CHECK(driver_version_cmp("codex-cli 0.171.0", "0.171.0") == 0);
	CHECK(driver_version_cmp("codex-cli 0.98.1", "0.171.0") < 0);
	CHECK(driver_version_cmp("codex-cli 1.0.0", "0.171.0") > 0);
	CHECK(driver_version_cmp("no version here", "0.171.0") < 0);
	CHECK_STR(driver_claude.tested_version, "2.1.332");
	CHECK_STR(driver_codex.tested_version, "0.171.0");
	CHECK(driver_claude.stdin_pipe == 0 && driver_codex.stdin_pipe == 0);
}

static char **
cmd_argv(const char *const *tmpl, const char *task, int followup,
    char **cause)
{
	struct cfg_agent	 ca = { 0 };

	ca.name = (char *)"tool";
	ca.driver = (char *)"command";
	ca.command = (char **)tmpl;
	while (tmpl[ca.ncommand] != NULL)
		ca.ncommand++;
	*cause = NULL;
	return driver_command.argv(NULL, &ca, task, followup, cause);
}

TEST(command_task_starting_with_dash_is_never_an_option)
{
	static const char *const bare[] = { "/bin/tool", "{task}", NULL };
	static const char *const lead[] = { "/bin/tool", "{task} now", NULL };
	static const char *const ended[] = { "/bin/tool", "-v", "--",
	    "{task}", NULL };
	static const char *const inside[] = { "/bin/tool", "--message={task}",
	    NULL };
	char	**argv, *cause;

	/* Where it would begin an argument, not after "--": refused. */
	CHECK((argv = cmd_argv(bare, "--upload-pack=evil", 0, &cause)) == NULL);
	CHECK(cause != NULL && strstr(cause, "starts with '-'") != NULL &&
	    strstr(cause, "agent 'tool'") != NULL);
	free(cause);
	CHECK((argv = cmd_argv(lead, "-rf", 1, &cause)) == NULL);
	CHECK(cause != NULL && strstr(cause, "follow-up") != NULL);
	free(cause);

	/* Asked before an agent is made, too. */
	{
		struct cfg_agent ca = { 0 };

		ca.name = (char *)"tool";
		ca.command = (char **)bare;
		ca.ncommand = 2;
		CHECK(driver_command.task_ok(&ca, "-rf", &cause) == -1);
		CHECK(cause != NULL && strstr(cause, "the task starts") != NULL);
		free(cause);
		CHECK(driver_command.task_ok(&ca, "fix -rf", &cause) == 0);
		ca.command = (char **)ended;
		ca.ncommand = 4;
		CHECK(driver_command.task_ok(&ca, "-rf", &cause) == 0);
	}

	/* The same task after "--" or inside an element: passed unchanged. */
	CHECK((argv = cmd_argv(ended, "-rf", 0, &cause)) != NULL);
	CHECK_STR(argv[2], "--");
	CHECK_STR(argv[3], "-rf");
	CHECK(argv[4] == NULL);
	driver_argv_free(argv);
	CHECK((argv = cmd_argv(inside, "-rf", 0, &cause)) != NULL);
	CHECK_STR(argv[1], "--message=-rf");
	driver_argv_free(argv);

	/* Nothing is inserted for an ordinary task. */
	CHECK((argv = cmd_argv(bare, "fix -rf handling", 0, &cause)) != NULL);
	CHECK_STR(argv[1], "fix -rf handling");
	CHECK(argv[2] == NULL);
	driver_argv_free(argv);
}

int
main(void)
{
	RUN(claude_stream_success_gives_session_steps_and_summary_with_cost);
	RUN(claude_stream_error_max_turns_is_a_failure_with_reason);
	RUN(claude_stream_ignores_garbage_without_events);
	RUN(codex_stream_items_turns_usage_and_summary);
	RUN(codex_stream_turn_failed_and_error_are_failures_garbage_ignored);
	RUN(redaction_masks_assignments_flags_and_token_words);
	RUN(tool_steps_are_short_relative_and_named);
	RUN(mcp_initialize_list_and_jsonrpc_errors);
	RUN(mcp_tools_map_to_socket_ops_and_errors_to_is_error);
	RUN(usd_amounts_keep_three_significant_digits);
	RUN(claude_resumed_run_shows_its_own_cost_and_denials);
	RUN(codex_paths_relative_and_failed_own_tool_fails_the_run);
	RUN(codex_tail_is_human_text_not_json);
	RUN(version_output_compares_with_the_tested_version);
	RUN(command_task_starting_with_dash_is_never_an_option);
	return t_done();
}
