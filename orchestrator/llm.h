/*
 * llm — one model call: a neutral transcript and tool list in, neutral
 * content (text, tool calls, usage) out, over bot/http.c's curl multi.
 *
 * The neutral shapes are jansson values so the transcript can be stored as
 * it is and handed to either provider:
 *
 *	message	{"role":"user","text":"..."}
 *		{"role":"assistant","text":"...","calls":[CALL...]}
 *		{"role":"tool","results":[{"id":"...","content":"...",
 *		    "is_error":false}...]}
 *	call	{"id":"...","name":"...","input":{...}}
 *	tool	{"name":"...","description":"...","schema":{JSON Schema}}
 *
 * A provider (struct llm_provider: anthropic, openai) turns these into its
 * wire format and its reply back; llm_call() owns the HTTP exchange and the
 * retries: 429, 529, 5xx and transport errors (timeouts, refused
 * connections) are retried with exponential back-off that honours
 * Retry-After, at most LLM_ATTEMPTS times; a 4xx or a malformed reply is not
 * retried.  The callback then gets a short reason fit for the person ("HTTP
 * 401: invalid x-api-key"), never the key.
 */
#ifndef SB_LLM_H
#define SB_LLM_H

#include <jansson.h>
#include <stddef.h>

struct cfg_brain;
struct http_response;

#define LLM_ATTEMPTS	4		/* tries of one call, in all */

struct llm_request {
	/*
	 * The system prompt in two parts: what changes rarely (cached by
	 * providers that cache a prefix) and what is rebuilt each turn
	 * (agents, questions, the time).
	 */
	const char	*system;
	const char	*system_tail;	/* may be NULL */
	json_t		*messages;	/* neutral, borrowed */
	json_t		*tools;		/* neutral, borrowed */
};

struct llm_reply {
	char		*text;		/* "" when none */
	json_t		*calls;		/* array of neutral calls, maybe empty */
	long		 tokens_in;	/* as the provider reports them */
	long		 tokens_out;
	char		*stop;		/* provider's stop reason, may be NULL */
};

void	 llm_reply_free(struct llm_reply *);

struct llm_provider {
	const char	*name;
	/* The URL path after base_url ("/v1/messages"). */
	const char	*path;
	/*
	 * Headers ("Name: value", NULL-terminated, malloc'd with each string)
	 * and the JSON body of the request.  Mandatory.
	 */
	char		**(*headers)(const struct cfg_brain *);
	json_t		*(*body)(const struct cfg_brain *,
			    const struct llm_request *);
	/* A 2xx body → reply.  0, or -1 with *cause (malloc'd). */
	int		 (*parse)(const char *body, size_t len,
			    struct llm_reply *, char **cause);
	/* The error message of a non-2xx body, or NULL (malloc'd). */
	char		*(*error)(const char *body, size_t len);
};

extern const struct llm_provider llm_anthropic;
extern const struct llm_provider llm_openai;
const struct llm_provider *llm_provider_lookup(const char *name);

/*
 * reply is NULL iff error is non-NULL; both borrowed for the callback.
 * ms_model is the time spent waiting on the provider (all attempts and
 * back-off), so our own cost per turn can be told apart from the model's.
 */
typedef void (*llm_cb)(const struct llm_reply *reply, const char *error,
    double ms_model, void *arg);

struct llm_call;

/*
 * Starts a call; the request is serialised at once, so req may go away.
 * The brain is copied too (a reload may free it meanwhile).
 */
struct llm_call	*llm_call(const struct cfg_brain *, const struct llm_request *,
		    llm_cb, void *arg);
/* The callback will not run. */
void		 llm_cancel(struct llm_call *);

/* Back-off before attempt n (1-based retry count), honouring Retry-After. */
long long	 llm_backoff_ms(int retry, long long retry_after_ms);
/* 1 if a status is worth retrying (429, 529, 5xx). */
int		 llm_retryable(long status);

/* Estimated tokens of a string (bytes / 4, rounded up). */
size_t		 llm_estimate_tokens(const char *);

#endif
