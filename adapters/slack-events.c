/*
 * slack-events — the Events API over HTTP: POST /slack/events and
 * POST /slack/interactive on our httpd, each signed with Slack's v0 scheme.
 *
 * The signature covers the raw body exactly as received, so it is checked
 * before anything is parsed; a bad or stale one gets 401, is counted in
 * /metrics and does nothing else.  A good event is recorded and answered
 * 200 at once (Slack wants 2xx within 3 s and retries otherwise); the work
 * runs on the next loop turn.  Slack's retries (X-Slack-Retry-Num) carry the
 * same event_id and are dropped by the dedup.
 */
#include "adapters/slack.h"
#include "bot/httpd.h"
#include "bot/log.h"
#include "bot/metrics.h"
#include "bot/util.h"
#include "config/config.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_PATH		"/slack/events"
#define INTERACTIVE_PATH	"/slack/interactive"

static struct metric	*m_bad_sig, *m_events;

char *
slack_signature(const char *secret, const char *ts, const char *body,
    size_t len)
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;
	char		 hex[2 * EVP_MAX_MD_SIZE + 1];
	struct buf	 base = { 0 };
	char		*r;

	buf_printf(&base, "v0:%s:", ts);
	buf_add(&base, body, len);
	HMAC(EVP_sha256(), secret, (int)strlen(secret),
	    (const unsigned char *)base.data, base.len, mac, &maclen);
	buf_free(&base);
	hex_encode(mac, maclen, hex);
	r = xasprintf("v0=%s", hex);
	explicit_bzero(mac, sizeof mac);
	return r;
}

int
slack_signature_check(const char *secret, const char *ts, const char *sig,
    const char *body, size_t len, int64_t now, char **cause)
{
	long long	 t;
	char		*want;
	int		 ok;

	if (ts == NULL || sig == NULL) {
		*cause = xstrdup("no X-Slack-Request-Timestamp or "
		    "X-Slack-Signature");
		return -1;
	}
	if ((t = parse_uint(ts)) < 0) {
		*cause = xstrdup("bad X-Slack-Request-Timestamp");
		return -1;
	}
	/* Outside the window it could be a replay of a request we saw. */
	if (t > now + SLACK_SIG_WINDOW_S || t < now - SLACK_SIG_WINDOW_S) {
		*cause = xasprintf("timestamp %lld is %lld s away from now",
		    t, (long long)(t - now));
		return -1;
	}
	want = slack_signature(secret, ts, body, len);
	ok = ct_equal(want, strlen(want), sig, strlen(sig));
	free(want);
	if (!ok) {
		*cause = xstrdup("signature mismatch");
		return -1;
	}
	return 0;
}

/* 0 if the request is Slack's; else fills a 401 and counts it. */
static int
events_verify(struct slack *s, const struct httpd_request *req,
    struct httpd_response *resp)
{
	char	*cause = NULL;

	if (slack_signature_check(s->cfg->slack.signing_secret,
	    httpd_header(req, "X-Slack-Request-Timestamp"),
	    httpd_header(req, "X-Slack-Signature"), req->body, req->body_len,
	    wall_s(), &cause) == 0)
		return 0;
	metrics_inc(m_bad_sig);
	log_warnx("slack: %s %s from %s refused: %s", req->method, req->path,
	    req->peer, cause);
	free(cause);
	resp->status = 401;
	resp->body = xstrdup("bad signature\n");
	return -1;
}

static void
events_text(struct httpd_response *resp, int status, const char *text)
{
	resp->status = status;
	resp->body = xstrdup(text);
}

static void
events_retry_note(const struct httpd_request *req)
{
	const char	*n = httpd_header(req, "X-Slack-Retry-Num");

	if (n != NULL)
		log_info("slack: Slack retry %s (%s)", n,
		    httpd_header(req, "X-Slack-Retry-Reason") != NULL ?
		    httpd_header(req, "X-Slack-Retry-Reason") : "no reason");
}

static void
events_post(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	struct slack	*s = arg;
	json_t		*body;
	json_error_t	 jerr;
	const char	*type, *challenge;

	if (events_verify(s, req, resp) != 0)
		return;
	metrics_inc(m_events);
	events_retry_note(req);
	if ((body = json_loadb(req->body, req->body_len, 0, &jerr)) == NULL ||
	    !json_is_object(body)) {
		log_warnx("slack: malformed event body skipped");
		json_decref(body);
		events_text(resp, 400, "malformed JSON\n");
		return;
	}
	type = json_string_value(json_object_get(body, "type"));
	if (type != NULL && strcmp(type, "url_verification") == 0) {
		challenge = json_string_value(json_object_get(body,
		    "challenge"));
		log_info("slack: url_verification answered");
		events_text(resp, 200, challenge != NULL ? challenge : "");
		json_decref(body);
		return;
	}
	/* Before auth.test we cannot tell our own messages: Slack retries. */
	if (!s->ready || s->stopping || s->halted) {
		events_text(resp, 503, "not ready\n");
		json_decref(body);
		return;
	}
	if (slack_inbound_event(s, body) != 0)
		events_text(resp, 500, "cannot record the event\n");
	else
		events_text(resp, 200, "");
	json_decref(body);
}

static void
events_interactive(const struct httpd_request *req,
    struct httpd_response *resp, void *arg)
{
	struct slack	*s = arg;
	json_t		*payload;
	json_error_t	 jerr;
	char		*form;

	if (events_verify(s, req, resp) != 0)
		return;
	metrics_inc(m_events);
	events_retry_note(req);
	if ((form = slack_form_value(req->body, req->body_len, "payload"))
	    == NULL) {
		log_warnx("slack: interactive request without a payload field");
		events_text(resp, 400, "no payload\n");
		return;
	}
	payload = json_loads(form, 0, &jerr);
	free(form);
	if (payload == NULL) {
		log_warnx("slack: malformed interactive payload skipped (%s)",
		    jerr.text);
		events_text(resp, 400, "malformed payload\n");
		return;
	}
	if (!s->ready || s->stopping || s->halted)
		events_text(resp, 503, "not ready\n");
	else if (slack_inbound_interactive(s, payload) != 0)
		events_text(resp, 500, "cannot record the action\n");
	else
		events_text(resp, 200, "");
	json_decref(payload);
}

void
slack_events_start(struct slack *s)
{
	m_bad_sig = metrics_counter("switchboard_slack_bad_signature_total",
	    "", "Slack requests refused for a bad or stale signature");
	m_events = metrics_counter("switchboard_slack_requests_total", "",
	    "Signed Slack requests received over HTTP");
	httpd_route("POST", EVENTS_PATH, events_post, s);
	httpd_route("POST", INTERACTIVE_PATH, events_interactive, s);
	s->routed = 1;
}

void
slack_events_stop(struct slack *s)
{
	if (!s->routed)
		return;
	s->routed = 0;
	httpd_unroute(EVENTS_PATH);
	httpd_unroute(INTERACTIVE_PATH);
}
