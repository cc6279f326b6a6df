/*
 * llm-openai — Chat Completions: POST {base_url}/v1/chat/completions with
 * Authorization: Bearer (left out when no key is configured: local servers).
 *
 * The one provider for OpenAI and for every server that copies its API
 * (Ollama, llama.cpp server, vLLM, OpenRouter), so only the common subset is
 * used: "max_tokens" (not the newer max_completion_tokens, which the local
 * servers do not all read), function tools, and tool messages.  Tool call
 * arguments arrive as a JSON *string*; a model that writes invalid JSON there
 * gets a tool error back rather than a failed turn.
 */
#include "orchestrator/llm.h"
#include "config/config.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static char **
openai_headers(const struct cfg_brain *b)
{
	char	**h = xcalloc(3, sizeof *h);
	int	  n = 0;

	h[n++] = xstrdup("Content-Type: application/json");
	if (b->api_key != NULL)
		h[n++] = xasprintf("Authorization: Bearer %s", b->api_key);
	return h;
}

static json_t *
openai_messages(const struct llm_request *req)
{
	json_t		*msgs = json_array(), *m, *v, *calls, *out;
	const char	*role, *text;
	char		*sys, *args;
	size_t		 i, j;

	sys = xasprintf("%s%s%s", req->system, req->system_tail != NULL ?
	    "\n\n" : "", req->system_tail != NULL ? req->system_tail : "");
	json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system",
	    "content", sys));
	free(sys);
	json_array_foreach(req->messages, i, m) {
		role = json_string_value(json_object_get(m, "role"));
		text = json_string_value(json_object_get(m, "text"));
		if (role == NULL)
			role = "user";
		if (strcmp(role, "tool") == 0) {
			json_array_foreach(json_object_get(m, "results"), j, v)
				json_array_append_new(msgs, json_pack(
				    "{s:s, s:O, s:O}", "role", "tool",
				    "tool_call_id", json_object_get(v, "id"),
				    "content", json_object_get(v, "content")));
			continue;
		}
		if (strcmp(role, "assistant") != 0) {
			json_array_append_new(msgs, json_pack("{s:s, s:s}",
			    "role", "user", "content", text != NULL ? text :
			    ""));
			continue;
		}
		out = json_pack("{s:s}", "role", "assistant");
		json_object_set_new(out, "content", text != NULL &&
		    *text != '\0' ? json_string(text) : json_null());
		calls = json_array();
		json_array_foreach(json_object_get(m, "calls"), j, v) {
			args = json_dumps(json_object_get(v, "input"),
			    JSON_COMPACT);
			json_array_append_new(calls, json_pack(
			    "{s:O, s:s, s:{s:O, s:s}}", "id",
			    json_object_get(v, "id"), "type", "function",
			    "function", "name", json_object_get(v, "name"),
			    "arguments", args != NULL ? args : "{}"));
			free(args);
		}
		if (json_array_size(calls) > 0)
			json_object_set_new(out, "tool_calls", calls);
		else
			json_decref(calls);
		json_array_append_new(msgs, out);
	}
	return msgs;
}

static json_t *
openai_body(const struct cfg_brain *b, const struct llm_request *req)
{
	json_t	*tools, *t;
	size_t	 i;

	tools = json_array();
	json_array_foreach(req->tools, i, t)
		json_array_append_new(tools, json_pack("{s:s, s:{s:O, s:O, s:O}}",
		    "type", "function", "function", "name",
		    json_object_get(t, "name"), "description",
		    json_object_get(t, "description"), "parameters",
		    json_object_get(t, "schema")));
	return json_pack("{s:s, s:i, s:o, s:o}", "model", b->model,
	    "max_tokens", b->max_tokens, "messages", openai_messages(req),
	    "tools", tools);
}

static int
openai_parse(const char *text, size_t len, struct llm_reply *r, char **cause)
{
	json_error_t	 err;
	json_t		*root, *msg, *calls, *c, *input, *usage;
	const char	*content, *id, *name, *args, *stop = NULL;
	char		 gen[32];
	size_t		 i;

	memset(r, 0, sizeof *r);
	if ((root = json_loadb(text, len, 0, &err)) == NULL) {
		*cause = xasprintf("not JSON: %s", err.text);
		return -1;
	}
	msg = json_object_get(json_array_get(json_object_get(root, "choices"),
	    0), "message");
	if (!json_is_object(msg)) {
		*cause = xstrdup("no choices[0].message");
		json_decref(root);
		return -1;
	}
	json_unpack(json_array_get(json_object_get(root, "choices"), 0),
	    "{s?s}", "finish_reason", &stop);
	content = json_string_value(json_object_get(msg, "content"));
	r->text = xstrdup(content != NULL ? content : "");
	r->calls = json_array();
	calls = json_object_get(msg, "tool_calls");
	json_array_foreach(calls, i, c) {
		id = json_string_value(json_object_get(c, "id"));
		name = json_string_value(json_object_get(json_object_get(c,
		    "function"), "name"));
		args = json_string_value(json_object_get(json_object_get(c,
		    "function"), "arguments"));
		if (name == NULL) {
			*cause = xstrdup("tool call without a function name");
			json_decref(root);
			llm_reply_free(r);
			return -1;
		}
		/* Some local servers leave ids out; the reply needs one. */
		if (id == NULL || *id == '\0') {
			snprintf(gen, sizeof gen, "call_%zu", i);
			id = gen;
		}
		input = args != NULL ? json_loads(args, 0, NULL) : json_object();
		if (!json_is_object(input)) {
			json_decref(input);
			input = json_pack("{s:s}", "__invalid_json__",
			    args != NULL ? args : "");
		}
		json_array_append_new(r->calls, json_pack("{s:s, s:s, s:o}",
		    "id", id, "name", name, "input", input));
	}
	usage = json_object_get(root, "usage");
	r->tokens_in = (long)json_integer_value(json_object_get(usage,
	    "prompt_tokens"));
	r->tokens_out = (long)json_integer_value(json_object_get(usage,
	    "completion_tokens"));
	r->stop = stop != NULL ? xstrdup(stop) : NULL;
	json_decref(root);
	return 0;
}

static char *
openai_error(const char *text, size_t len)
{
	json_t		*root;
	const char	*msg = NULL;
	char		*out = NULL;

	if ((root = json_loadb(text, len, 0, NULL)) == NULL)
		return NULL;
	/* {"error":{"message":…}} (OpenAI, vLLM) or {"error":"…"} (Ollama) */
	if (json_unpack(root, "{s:{s:s}}", "error", "message", &msg) == 0 ||
	    json_unpack(root, "{s:s}", "error", &msg) == 0)
		out = xstrdup(msg);
	json_decref(root);
	return out;
}

const struct llm_provider llm_openai = {
	.name = "openai",
	.path = "/v1/chat/completions",
	.headers = openai_headers,
	.body = openai_body,
	.parse = openai_parse,
	.error = openai_error,
};
