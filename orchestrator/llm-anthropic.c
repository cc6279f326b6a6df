/*
 * llm-anthropic — the Messages API: POST {base_url}/v1/messages with
 * x-api-key and anthropic-version: 2023-06-01.
 *
 * The API wants roles to alternate, starting with "user", and every
 * tool_result block to answer a tool_use of the assistant message right
 * before it.  The neutral transcript keeps tool results as their own
 * "tool" messages and may hold several user notes in a row, so the
 * conversion merges consecutive user-side messages (tool results first,
 * then text) into one; trimming (transcript.c) never separates a tool_use
 * from its results.  The system prompt's stable part and the tools carry
 * cache_control, so a long conversation pays for them once per cache life.
 */
#include "orchestrator/llm.h"
#include "config/config.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static char **
anthropic_headers(const struct cfg_brain *b)
{
	char	**h = xcalloc(5, sizeof *h);
	int	  n = 0;

	h[n++] = xstrdup("Content-Type: application/json");
	h[n++] = xstrdup("anthropic-version: 2023-06-01");
	if (b->api_key != NULL)
		h[n++] = xasprintf("x-api-key: %s", b->api_key);
	return h;
}

static json_t *
cache_ephemeral(void)
{
	return json_pack("{s:s}", "type", "ephemeral");
}

/* Appends blocks to the last message if it has role, else a new message. */
static void
add_blocks(json_t *msgs, const char *role, json_t *blocks)
{
	json_t	*last;
	size_t	 n = json_array_size(msgs);

	if (json_array_size(blocks) == 0) {
		json_decref(blocks);
		return;
	}
	last = n > 0 ? json_array_get(msgs, n - 1) : NULL;
	if (last != NULL && strcmp(json_string_value(json_object_get(last,
	    "role")), role) == 0) {
		json_array_extend(json_object_get(last, "content"), blocks);
		json_decref(blocks);
		return;
	}
	json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role,
	    "content", blocks));
}

static json_t *
anthropic_messages(const json_t *neutral)
{
	json_t		*msgs = json_array(), *m, *blocks, *v;
	const char	*role, *text;
	size_t		 i, j;

	json_array_foreach(neutral, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		text = json_string_value(json_object_get(m, "text"));
		blocks = json_array();
		if (role == NULL)
			role = "user";
		if (strcmp(role, "tool") == 0) {
			json_array_foreach(json_object_get(m, "results"), j, v)
				json_array_append_new(blocks, json_pack(
				    "{s:s, s:O, s:O, s:b}", "type",
				    "tool_result", "tool_use_id",
				    json_object_get(v, "id"), "content",
				    json_object_get(v, "content"), "is_error",
				    json_is_true(json_object_get(v,
				    "is_error"))));
			add_blocks(msgs, "user", blocks);
			continue;
		}
		if (text != NULL && *text != '\0')
			json_array_append_new(blocks, json_pack("{s:s, s:s}",
			    "type", "text", "text", text));
		if (strcmp(role, "assistant") == 0) {
			json_array_foreach(json_object_get(m, "calls"), j, v)
				json_array_append_new(blocks, json_pack(
				    "{s:s, s:O, s:O, s:O}", "type", "tool_use",
				    "id", json_object_get(v, "id"), "name",
				    json_object_get(v, "name"), "input",
				    json_object_get(v, "input")));
			add_blocks(msgs, "assistant", blocks);
		} else
			add_blocks(msgs, "user", blocks);
	}
	/* The first message must be the user's. */
	if (json_array_size(msgs) == 0 || strcmp(json_string_value(
	    json_object_get(json_array_get(msgs, 0), "role")), "user") != 0)
		json_array_insert_new(msgs, 0, json_pack("{s:s, s:[{s:s, s:s}]}",
		    "role", "user", "content", "type", "text", "text",
		    "(earlier conversation left out)"));
	return msgs;
}

static json_t *
anthropic_body(const struct cfg_brain *b, const struct llm_request *req)
{
	json_t	*body, *sys, *tools, *t;
	size_t	 i;

	sys = json_array();
	json_array_append_new(sys, json_pack("{s:s, s:s, s:o}", "type", "text",
	    "text", req->system, "cache_control", cache_ephemeral()));
	if (req->system_tail != NULL && *req->system_tail != '\0')
		json_array_append_new(sys, json_pack("{s:s, s:s}", "type",
		    "text", "text", req->system_tail));
	tools = json_array();
	json_array_foreach(req->tools, i, t)
		json_array_append_new(tools, json_pack("{s:O, s:O, s:O}",
		    "name", json_object_get(t, "name"), "description",
		    json_object_get(t, "description"), "input_schema",
		    json_object_get(t, "schema")));
	if (json_array_size(tools) > 0)
		json_object_set_new(json_array_get(tools,
		    json_array_size(tools) - 1), "cache_control",
		    cache_ephemeral());
	body = json_pack("{s:s, s:i, s:o, s:o, s:o}", "model", b->model,
	    "max_tokens", b->max_tokens, "system", sys, "tools", tools,
	    "messages", anthropic_messages(req->messages));
	return body;
}

static int
anthropic_parse(const char *text, size_t len, struct llm_reply *r,
    char **cause)
{
	json_error_t	 err;
	json_t		*root, *content, *b, *usage;
	struct buf	 out = { 0 };
	const char	*type, *t, *id, *name, *stop = NULL;
	size_t		 i;

	memset(r, 0, sizeof *r);
	if ((root = json_loadb(text, len, 0, &err)) == NULL) {
		*cause = xasprintf("not JSON: %s", err.text);
		return -1;
	}
	if (!json_is_array(content = json_object_get(root, "content"))) {
		*cause = xstrdup("no content array");
		json_decref(root);
		return -1;
	}
	r->calls = json_array();
	json_array_foreach(content, i, b) {
		type = json_string_value(json_object_get(b, "type"));
		if (type == NULL)
			continue;
		if (strcmp(type, "text") == 0 &&
		    (t = json_string_value(json_object_get(b, "text"))) != NULL)
			buf_printf(&out, "%s%s", out.len > 0 ? "\n" : "", t);
		else if (strcmp(type, "tool_use") == 0) {
			id = json_string_value(json_object_get(b, "id"));
			name = json_string_value(json_object_get(b, "name"));
			if (id == NULL || name == NULL ||
			    !json_is_object(json_object_get(b, "input"))) {
				*cause = xstrdup("tool_use without id, name or"
				    " input");
				goto fail;
			}
			json_array_append_new(r->calls, json_pack(
			    "{s:s, s:s, s:O}", "id", id, "name", name, "input",
			    json_object_get(b, "input")));
		}
	}
	usage = json_object_get(root, "usage");
	r->tokens_in = (long)(json_integer_value(json_object_get(usage,
	    "input_tokens")) + json_integer_value(json_object_get(usage,
	    "cache_creation_input_tokens")) + json_integer_value(
	    json_object_get(usage, "cache_read_input_tokens")));
	r->tokens_out = (long)json_integer_value(json_object_get(usage,
	    "output_tokens"));
	json_unpack(root, "{s?s}", "stop_reason", &stop);
	r->stop = stop != NULL ? xstrdup(stop) : NULL;
	r->text = out.data != NULL ? buf_steal(&out) : xstrdup("");
	json_decref(root);
	return 0;
fail:
	buf_free(&out);
	json_decref(root);
	llm_reply_free(r);
	return -1;
}

static char *
anthropic_error(const char *text, size_t len)
{
	json_t		*root;
	const char	*msg = NULL;
	char		*out = NULL;

	if ((root = json_loadb(text, len, 0, NULL)) == NULL)
		return NULL;
	if (json_unpack(root, "{s:{s:s}}", "error", "message", &msg) == 0)
		out = xstrdup(msg);
	json_decref(root);
	return out;
}

const struct llm_provider llm_anthropic = {
	.name = "anthropic",
	.path = "/v1/messages",
	.headers = anthropic_headers,
	.body = anthropic_body,
	.parse = anthropic_parse,
	.error = anthropic_error,
};
