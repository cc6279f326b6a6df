#include "orchestrator/llm.h"
#include "config/config.h"
#include "bot/http.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS	500
#define BACKOFF_MAX_MS	30000
/*
 * A Retry-After longer than this is not waited out: the person would sit
 * in silence.  The turn fails with the reason instead and commands work.
 */
#define RETRY_AFTER_MAX_MS 60000

struct llm_call {
	const struct llm_provider *prov;
	char		*url;
	char		**headers;
	char		*body;
	long		 timeout_ms;
	int		 attempt;	/* 1-based */
	uint64_t	 started_ms;
	struct http_req	*req;
	struct loop_timer *timer;
	llm_cb		 cb;
	void		*arg;
};

const struct llm_provider *
llm_provider_lookup(const char *name)
{
	if (strcmp(name, "anthropic") == 0)
		return &llm_anthropic;
	if (strcmp(name, "openai") == 0)
		return &llm_openai;
	return NULL;
}

void
llm_reply_free(struct llm_reply *r)
{
	free(r->text);
	json_decref(r->calls);
	free(r->stop);
	memset(r, 0, sizeof *r);
}

size_t
llm_estimate_tokens(const char *s)
{
	return s == NULL ? 0 : (strlen(s) + 3) / 4;
}

int
llm_retryable(long status)
{
	/* 529 is Anthropic's "overloaded"; 408 a server-side timeout. */
	return status == 408 || status == 429 || status >= 500;
}

long long
llm_backoff_ms(int retry, long long retry_after_ms)
{
	long long	 ms = BACKOFF_BASE_MS;

	while (--retry > 0 && ms < BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	/* Never earlier than the server asked. */
	if (retry_after_ms > ms)
		ms = retry_after_ms;
	return ms;
}

static void
call_free(struct llm_call *c)
{
	size_t	 i;

	for (i = 0; c->headers != NULL && c->headers[i] != NULL; i++)
		free(c->headers[i]);
	free(c->headers);
	free(c->url);
	free(c->body);
	free(c);
}

static void	attempt(struct llm_call *);
static void	done(const struct http_response *, const char *, void *);

/* http_request refused to start: a transport error, reported off-stack. */
static void
start_failed(void *arg)
{
	struct llm_call	*c = arg;

	c->timer = NULL;
	done(NULL, "cannot start the HTTP request", c);
}

static void
retry_fired(void *arg)
{
	struct llm_call	*c = arg;

	c->timer = NULL;
	attempt(c);
}

static void
finish(struct llm_call *c, const struct llm_reply *r, const char *error)
{
	double	 ms = (double)(now_ms() - c->started_ms);

	c->cb(r, error, ms, c->arg);
	call_free(c);
}

/* Retries after ms if attempts are left; 0 if scheduled. */
static int
retry_later(struct llm_call *c, long long ms, const char *why)
{
	if (c->attempt >= LLM_ATTEMPTS || ms > RETRY_AFTER_MAX_MS)
		return -1;
	log_info("llm: %s; retry %d of %d in %lld ms", why, c->attempt,
	    LLM_ATTEMPTS - 1, ms);
	c->attempt++;
	c->timer = loop_timer_once((uint64_t)ms, retry_fired, c);
	return 0;
}

static void
done(const struct http_response *res, const char *error, void *arg)
{
	struct llm_call		*c = arg;
	struct llm_reply	 r = { 0 };
	char			*why = NULL, *msg, *reason;
	long long		 ra;

	c->req = NULL;
	if (error != NULL) {
		reason = xasprintf("%s", error);
		if (retry_later(c, llm_backoff_ms(c->attempt, -1), reason) ==
		    0) {
			free(reason);
			return;
		}
		finish(c, NULL, reason);
		free(reason);
		return;
	}
	if (res->status < 200 || res->status > 299) {
		msg = c->prov->error(res->body, res->body_len);
		reason = xasprintf("HTTP %ld%s%s", res->status,
		    msg != NULL ? ": " : "", msg != NULL ? msg : "");
		free(msg);
		utf8_truncate(reason, 300);
		ra = http_retry_after_ms(res);
		if (llm_retryable(res->status) && retry_later(c,
		    llm_backoff_ms(c->attempt, ra), reason) == 0) {
			free(reason);
			return;
		}
		finish(c, NULL, reason);
		free(reason);
		return;
	}
	if (c->prov->parse(res->body, res->body_len, &r, &why) != 0) {
		reason = xasprintf("malformed reply from the model: %s", why);
		free(why);
		finish(c, NULL, reason);
		free(reason);
		return;
	}
	finish(c, &r, NULL);
	llm_reply_free(&r);
}

static void
attempt(struct llm_call *c)
{
	struct http_request_opts o = { 0 };

	o.method = "POST";
	o.url = c->url;
	o.headers = (const char *const *)c->headers;
	o.body = c->body;
	o.body_len = strlen(c->body);
	o.timeout_ms = c->timeout_ms;
	o.max_body = 4 * 1024 * 1024;
	c->req = http_request(&o, done, c);
	if (c->req == NULL)
		c->timer = loop_timer_once(0, start_failed, c);
}

struct llm_call *
llm_call(const struct cfg_brain *b, const struct llm_request *req, llm_cb cb,
    void *arg)
{
	struct llm_call	*c;
	json_t		*body;

	c = xcalloc(1, sizeof *c);
	if ((c->prov = llm_provider_lookup(b->provider)) == NULL)
		fatalx("llm: unknown provider %s", b->provider);
	c->url = xasprintf("%s%s", b->base_url, c->prov->path);
	c->headers = c->prov->headers(b);
	body = c->prov->body(b, req);
	c->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	c->timeout_ms = (long)b->timeout * 1000;
	c->attempt = 1;
	c->started_ms = now_ms();
	c->cb = cb;
	c->arg = arg;
	attempt(c);
	return c;
}

void
llm_cancel(struct llm_call *c)
{
	if (c == NULL)
		return;
	if (c->req != NULL)
		http_cancel(c->req);
	loop_timer_cancel(c->timer);
	call_free(c);
}
