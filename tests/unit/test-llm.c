/*
 * test-llm — the providers' request building and reply parsing, back-off,
 * and transcript trimming (pure parts of llm*.c and transcript.c).
 */
#include "tests/unit/t.h"
#include "orchestrator/llm.h"
#include "orchestrator/transcript.h"
#include "config/config.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static struct cfg_brain brain = {
	.name = "main", .provider = "anthropic", .model = "m",
	.api_key = "sk-x", .base_url = "http://x", .max_tokens = 100,
	.context_tokens = 1000, .timeout = 5, .max_tool_rounds = 8,
};

/* user, user(note), assistant+2 calls, tool results, user, assistant text */
static json_t *
sample(void)
{
	return json_loads("["
	    "{\"role\":\"user\",\"text\":\"console:me: build a login page\"},"
	    "{\"role\":\"user\",\"text\":\"[event] something\"},"
	    "{\"role\":\"assistant\",\"text\":\"On it.\",\"calls\":["
	    " {\"id\":\"a\",\"name\":\"start_agent\",\"input\":{\"task\":\"t\"}},"
	    " {\"id\":\"b\",\"name\":\"list_agents\",\"input\":{}}]},"
	    "{\"role\":\"tool\",\"results\":["
	    " {\"id\":\"a\",\"content\":\"{\\\"agent\\\":1}\",\"is_error\":false},"
	    " {\"id\":\"b\",\"content\":\"{}\",\"is_error\":true}]},"
	    "{\"role\":\"user\",\"text\":\"console:me: thanks\"},"
	    "{\"role\":\"assistant\",\"text\":\"\",\"calls\":[]}"
	    "]", 0, NULL);
}

static json_t *
tools(void)
{
	return json_loads("[{\"name\":\"list_agents\",\"description\":\"d\","
	    "\"schema\":{\"type\":\"object\",\"properties\":{}}}]", 0, NULL);
}

TEST(anthropic_merges_user_side_and_puts_tool_results_first)
{
	struct llm_request	 r = { .system = "S", .system_tail = "T" };
	json_t			*body, *msgs, *m1, *c;

	r.messages = sample();
	r.tools = tools();
	body = llm_anthropic.body(&brain, &r);
	msgs = json_object_get(body, "messages");
	/* user(2 texts), assistant, user(results + text); empty dropped */
	CHECK_INT(json_array_size(msgs), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0),
	    "role")), "user");
	CHECK_INT(json_array_size(json_object_get(json_array_get(msgs, 0),
	    "content")), 2);
	m1 = json_array_get(msgs, 1);
	CHECK_STR(json_string_value(json_object_get(m1, "role")), "assistant");
	c = json_object_get(m1, "content");
	CHECK_INT(json_array_size(c), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1),
	    "type")), "tool_use");
	c = json_object_get(json_array_get(msgs, 2), "content");
	CHECK_INT(json_array_size(c), 3);
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 0),
	    "type")), "tool_result");
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 1),
	    "tool_use_id")), "b");
	CHECK(json_is_true(json_object_get(json_array_get(c, 1), "is_error")));
	CHECK_STR(json_string_value(json_object_get(json_array_get(c, 2),
	    "type")), "text");
	/* Cache marks on the stable system part and the last tool only. */
	c = json_object_get(body, "system");
	CHECK_INT(json_array_size(c), 2);
	CHECK(json_object_get(json_array_get(c, 0), "cache_control") != NULL);
	CHECK(json_object_get(json_array_get(c, 1), "cache_control") == NULL);
	CHECK(json_object_get(json_array_get(json_object_get(body, "tools"), 0),
	    "cache_control") != NULL);
	CHECK(json_object_get(json_array_get(json_object_get(body, "tools"), 0),
	    "input_schema") != NULL);
	json_decref(body);
	json_decref(r.messages);
	json_decref(r.tools);
}

TEST(anthropic_transcript_starting_with_assistant_gets_a_user_first)
{
	struct llm_request	 r = { .system = "S" };
	json_t			*body, *msgs;

	r.messages = json_loads("[{\"role\":\"assistant\",\"text\":\"hi\"}]",
	    0, NULL);
	r.tools = json_array();
	body = llm_anthropic.body(&brain, &r);
	msgs = json_object_get(body, "messages");
	CHECK_INT(json_array_size(msgs), 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0),
	    "role")), "user");
	json_decref(body);
	json_decref(r.messages);
	json_decref(r.tools);
}

TEST(openai_has_system_first_and_one_tool_message_per_result)
{
	struct llm_request	 r = { .system = "S", .system_tail = "T" };
	json_t			*body, *msgs, *m, *tc;

	r.messages = sample();
	r.tools = tools();
	body = llm_openai.body(&brain, &r);
	msgs = json_object_get(body, "messages");
	/* system, user, user, assistant, tool, tool, user, assistant */
	CHECK_INT(json_array_size(msgs), 8);
	CHECK_STR(json_string_value(json_object_get(json_array_get(msgs, 0),
	    "content")), "S\n\nT");
	m = json_array_get(msgs, 3);
	tc = json_object_get(m, "tool_calls");
	CHECK_INT(json_array_size(tc), 2);
	CHECK_STR(json_string_value(json_object_get(json_object_get(
	    json_array_get(tc, 0), "function"), "arguments")), "{\"task\":\"t\"}");
	m = json_array_get(msgs, 5);
	CHECK_STR(json_string_value(json_object_get(m, "role")), "tool");
	CHECK_STR(json_string_value(json_object_get(m, "tool_call_id")), "b");
	/* An assistant reply without calls has no tool_calls key. */
	m = json_array_get(msgs, 7);
	CHECK(json_object_get(m, "tool_calls") == NULL);
	CHECK(json_is_null(json_object_get(m, "content")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(body, "tools"), 0), "function"),
	    "name")), "list_agents");
	json_decref(body);
	json_decref(r.messages);
	json_decref(r.tools);
}

TEST(headers_carry_the_key_only_as_the_provider_wants)
{
	char	**h;
	size_t	  i;

	h = llm_anthropic.headers(&brain);
	CHECK_STR(h[1], "anthropic-version: 2023-06-01");
	CHECK_STR(h[2], "x-api-key: sk-x");
	for (i = 0; h[i] != NULL; i++)
		free(h[i]);
	free(h);
	brain.api_key = NULL;
	h = llm_openai.headers(&brain);
	CHECK(h[1] == NULL);	/* a local server: no Authorization */
	for (i = 0; h[i] != NULL; i++)
		free(h[i]);
	free(h);
	brain.api_key = "sk-x";
	h = llm_openai.headers(&brain);
	CHECK_STR(h[1], "Authorization: Bearer sk-x");
	for (i = 0; h[i] != NULL; i++)
		free(h[i]);
	free(h);
}

TEST(anthropic_reply_parses_text_calls_and_usage)
{
	const char *in = "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
	    "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"list_agents\","
	    "\"input\":{}},{\"type\":\"text\",\"text\":\"b\"}],"
	    "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":10,"
	    "\"cache_read_input_tokens\":5,\"output_tokens\":7}}";
	struct llm_reply	 r;
	char			*cause = NULL;

	CHECK(llm_anthropic.parse(in, strlen(in), &r, &cause) == 0);
	CHECK_STR(r.text, "a\nb");
	CHECK_INT(json_array_size(r.calls), 1);
	CHECK_STR(json_string_value(json_object_get(json_array_get(r.calls, 0),
	    "id")), "t1");
	CHECK_INT(r.tokens_in, 15);
	CHECK_INT(r.tokens_out, 7);
	CHECK_STR(r.stop, "tool_use");
	llm_reply_free(&r);
}

TEST(anthropic_malformed_replies_are_errors)
{
	const char *bad[] = { "not json", "{\"content\":3}",
	    "{\"content\":[{\"type\":\"tool_use\",\"name\":\"x\"}]}" };
	struct llm_reply	 r;
	char			*cause;
	size_t			 i;

	for (i = 0; i < nitems(bad); i++) {
		cause = NULL;
		CHECK(llm_anthropic.parse(bad[i], strlen(bad[i]), &r,
		    &cause) == -1);
		CHECK(cause != NULL);
		free(cause);
	}
}

TEST(openai_reply_parses_calls_and_survives_bad_arguments)
{
	const char *in = "{\"choices\":[{\"message\":{\"role\":\"assistant\","
	    "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"follow_up\",\"arguments\":"
	    "\"{\\\"agent\\\":2,\\\"text\\\":\\\"go\\\"}\"}},{\"type\":"
	    "\"function\",\"function\":{\"name\":\"list_agents\",\"arguments\":"
	    "\"{oops\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":"
	    "{\"prompt_tokens\":11,\"completion_tokens\":3}}";
	struct llm_reply	 r;
	char			*cause = NULL;
	json_t			*c;

	CHECK(llm_openai.parse(in, strlen(in), &r, &cause) == 0);
	CHECK_STR(r.text, "");
	CHECK_INT(json_array_size(r.calls), 2);
	c = json_array_get(r.calls, 0);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(c,
	    "input"), "agent")), 2);
	c = json_array_get(r.calls, 1);
	CHECK_STR(json_string_value(json_object_get(c, "id")), "call_1");
	CHECK(json_object_get(json_object_get(c, "input"), "__invalid_json__")
	    != NULL);
	CHECK_INT(r.tokens_in, 11);
	CHECK_STR(r.stop, "tool_calls");
	llm_reply_free(&r);
}

TEST(error_messages_are_extracted_from_both_shapes)
{
	const char	*a = "{\"type\":\"error\",\"error\":{\"type\":"
	    "\"authentication_error\",\"message\":\"invalid x-api-key\"}}";
	const char	*o = "{\"error\":\"model not found\"}";
	char		*s;

	s = llm_anthropic.error(a, strlen(a));
	CHECK_STR(s, "invalid x-api-key");
	free(s);
	s = llm_openai.error(o, strlen(o));
	CHECK_STR(s, "model not found");
	free(s);
	CHECK(llm_openai.error("<html>", 6) == NULL);
}

TEST(backoff_doubles_and_never_beats_retry_after)
{
	CHECK_INT(llm_backoff_ms(1, -1), 500);
	CHECK_INT(llm_backoff_ms(2, -1), 1000);
	CHECK_INT(llm_backoff_ms(3, -1), 2000);
	CHECK_INT(llm_backoff_ms(30, -1), 30000);
	CHECK_INT(llm_backoff_ms(1, 7000), 7000);
	CHECK(llm_retryable(429) && llm_retryable(529) && llm_retryable(503));
	CHECK(!llm_retryable(400) && !llm_retryable(401) && !llm_retryable(404));
}

TEST(trim_drops_whole_exchanges_oldest_first)
{
	/* ex1: person assistant tool assistant | ex2: note person assistant */
	const char	*k[] = { "person", "assistant", "tool", "assistant",
			    "note", "person", "assistant" };
	size_t		 t[] = { 10, 10, 10, 10, 10, 10, 10 };

	CHECK_INT(transcript_cut(k, t, 7, 1000), 0);
	CHECK_INT(transcript_cut(k, t, 7, 70), 0);
	/* 69 does not hold all: ex1 goes whole, never half a pair */
	CHECK_INT(transcript_cut(k, t, 7, 69), 4);
	CHECK_INT(transcript_cut(k, t, 7, 30), 4);
	/* Even when the last exchange alone is too big, it is kept. */
	CHECK_INT(transcript_cut(k, t, 7, 5), 4);
	CHECK_INT(transcript_cut(k, t, 0, 5), 0);
}

TEST(trim_never_starts_at_a_tool_result)
{
	const char	*k[] = { "person", "assistant", "tool", "assistant",
			    "tool", "assistant" };
	size_t		 t[] = { 1, 1, 1, 1, 1, 1 };

	/* One exchange: nothing to cut at but its start. */
	CHECK_INT(transcript_cut(k, t, 6, 2), 0);
}

int
main(void)
{
	RUN(anthropic_merges_user_side_and_puts_tool_results_first);
	RUN(anthropic_transcript_starting_with_assistant_gets_a_user_first);
	RUN(openai_has_system_first_and_one_tool_message_per_result);
	RUN(headers_carry_the_key_only_as_the_provider_wants);
	RUN(anthropic_reply_parses_text_calls_and_usage);
	RUN(anthropic_malformed_replies_are_errors);
	RUN(openai_reply_parses_calls_and_survives_bad_arguments);
	RUN(error_messages_are_extracted_from_both_shapes);
	RUN(backoff_doubles_and_never_beats_retry_after);
	RUN(trim_drops_whole_exchanges_oldest_first);
	RUN(trim_never_starts_at_a_tool_result);
	return t_done();
}
