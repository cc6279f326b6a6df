#include "orchestrator/webhook.h"
#include "orchestrator/agent.h"
#include "orchestrator/conversation.h"
#include "orchestrator/inbox.h"
#include "orchestrator/render.h"
#include "config/config.h"
#include "bot/http.h"
#include "bot/httpd.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DELIVERY_MAX	200	/* bytes of a delivery / generic id */
#define THREAD_KEY_MAX	200
#define AGENTS_SCAN	64

struct job {
	char			*hook;		/* webhook name */
	struct webhook_event	 ev;
};

/* A write-back comment in flight; freed by its callback or at shutdown. */
struct comment {
	struct http_req	*req;
	char		*what;		/* "owner/repo#12", for the log */
	struct comment	*next;
};

static const struct config	*cfg;
static char			**paths;	/* routes we registered */
static size_t			 npaths;
static struct comment		*comments;
static int			 hooked;

void
webhook_event_free(struct webhook_event *ev)
{
	free(ev->key);
	free(ev->headline);
	free(ev->url);
	free(ev->task);
	free(ev->by);
	free(ev->gh_repo);
	memset(ev, 0, sizeof *ev);
}

/* ---- signatures ---------------------------------------------------------- */

void
webhook_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 n = 0, i;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (i = 0; i < n && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[64] = '\0';
}

void
webhook_hmac_hex(const char *secret, const void *data, size_t len,
    char out[65])
{
	unsigned char	 mac[EVP_MAX_MD_SIZE];
	unsigned int	 maclen = 0;

	if (HMAC(EVP_sha256(), secret, (int)strlen(secret), data, len, mac,
	    &maclen) == NULL || maclen != 32)
		fatalx("webhook: HMAC-SHA256 failed");
	hex_encode(mac, maclen, out);
}

static int
sig_matches(const char *secret, const void *data, size_t len,
    const char *header)
{
	char	 want[7 + 65];

	memcpy(want, "sha256=", 7);
	webhook_hmac_hex(secret, data, len, want + 7);
	/* Compare the whole header, in constant time for equal lengths. */
	return ct_equal(header, strlen(header), want, strlen(want));
}

int
webhook_github_verify(const char *secret, const char *header,
    const char *body, size_t len)
{
	if (header == NULL || secret == NULL)
		return 0;
	return sig_matches(secret, body, len, header);
}

int
webhook_generic_verify(const char *secret, const char *ts, const char *sig,
    const char *body, size_t len, int64_t now, const char **reason)
{
	struct buf	 b = { 0 };
	long long	 t;
	int		 ok;

	if (ts == NULL || sig == NULL || secret == NULL) {
		*reason = "missing_signature";
		return -1;
	}
	/* The timestamp is under the MAC, so a replay cannot freshen it. */
	if ((t = parse_uint(ts)) < 0 || t > now + WEBHOOK_WINDOW_S ||
	    t < now - WEBHOOK_WINDOW_S) {
		*reason = "stale";
		return -1;
	}
	buf_printf(&b, "%s.", ts);
	buf_add(&b, body, len);
	ok = sig_matches(secret, b.data, b.len, sig);
	buf_free(&b);
	if (!ok) {
		*reason = "bad_signature";
		return -1;
	}
	return 0;
}

/* ---- answers and metrics ------------------------------------------------- */

static void
count(const char *metric, const char *help, const struct cfg_webhook *w,
    const char *reason)
{
	char	*labels;

	if (reason != NULL)
		labels = xasprintf("webhook=\"%s\",reason=\"%s\"", w->name,
		    reason);
	else
		labels = xasprintf("webhook=\"%s\"", w->name);
	metrics_inc(metrics_counter(metric, labels, help));
	free(labels);
}

static void
answer(struct httpd_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
answer(struct httpd_response *resp, int status, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	resp->status = status;
	resp->body = xasprintf("%s\n", s);
	free(s);
}

static void
reject(struct httpd_response *resp, const struct cfg_webhook *w, int status,
    const char *reason, const char *peer)
{
	count("switchboard_webhook_rejected_total",
	    "Webhook requests refused (no action), by reason.", w, reason);
	log_info("webhook %s: %d (%s) from %s", w->name, status, reason, peer);
	answer(resp, status, "%s", status == 401 ? "unauthorized" :
	    reason);
}

/*
 * GitHub sends application/json when the hook is set up so; the
 * form-encoded variant (payload=...) is refused rather than parsed, so that
 * one body format is verified and read.
 */
static int
is_json(const char *ctype)
{
	size_t	 n = strlen("application/json");

	return ctype != NULL && strncasecmp(ctype, "application/json", n) == 0 &&
	    (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* ---- the work, on the next loop turn ------------------------------------- */

static void	comment_post(const struct cfg_webhook *, const char *repo,
		    int64_t n, const char *text);

static struct agent *
latest_agent(struct conversation *c)
{
	struct agent	*v[AGENTS_SCAN];
	int		 n;

	n = agent_list(c, v, AGENTS_SCAN);
	if (n <= 0)
		return NULL;
	return v[(n < AGENTS_SCAN ? n : AGENTS_SCAN) - 1];
}

static void
start_agent(const struct cfg_webhook *w, struct conversation *c,
    const struct webhook_event *ev)
{
	struct agent	*a;
	json_t		*o;
	char		*cause = NULL, *k, *v, *text;

	if ((a = agent_start(c, w->agent, ev->task, ev->by, &cause)) == NULL) {
		conversation_say(c, "Could not start an agent: %s", cause);
		free(cause);
		return;
	}
	if (w->github.token == NULL || ev->gh_repo == NULL ||
	    ev->gh_number <= 0)
		return;
	/* Remembered durably: the agent may end after a restart. */
	k = xasprintf("webhook:agent:%lld", (long long)agent_id(a));
	o = json_pack("{s:s, s:s, s:I}", "hook", w->name, "repo", ev->gh_repo,
	    "number", (json_int_t)ev->gh_number);
	v = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	store_kv_set(k, v);
	free(k);
	free(v);
	text = xasprintf("Switchboard started #%lld (agent `%s`, repo `%s`) "
	    "for this; the work is discussed in %s channel `%s`.",
	    (long long)agent_id(a), w->agent, w->repo, c->adapter, c->channel);
	comment_post(w, ev->gh_repo, ev->gh_number, text);
	free(text);
}

static void
job_free(struct job *j)
{
	webhook_event_free(&j->ev);
	free(j->hook);
	free(j);
}

static void
job_run(void *arg)
{
	struct job			*j = arg;
	const struct cfg_webhook	*w;
	const struct webhook_event	*ev = &j->ev;
	struct conversation		*c = NULL;
	struct agent			*a;
	char				*mapkey = NULL, *v, *text;
	int64_t				 next;

	if (loop_stopping() || cfg == NULL ||
	    (w = config_webhook(cfg, j->hook)) == NULL || !w->enabled) {
		log_warnx("webhook %s: event dropped (shutting down or "
		    "webhook gone)", j->hook);
		job_free(j);
		return;
	}
	if (ev->key != NULL) {
		mapkey = xasprintf("webhook:%s:%s", w->name, ev->key);
		if ((v = store_kv_get(mapkey)) != NULL) {
			c = conversation_by_id(strtoll(v, NULL, 10));
			free(v);
		}
	}
	if (c != NULL) {
		if ((a = latest_agent(c)) != NULL) {
			conversation_say(c, "%s — follow-up for #%lld%s%s",
			    ev->headline, (long long)agent_id(a),
			    ev->url != NULL ? "\n" : "",
			    ev->url != NULL ? ev->url : "");
			agent_followup(a, ev->task, ev->by);
		} else {
			conversation_say(c, "%s — starting #%lld%s%s",
			    ev->headline, (long long)agent_next_id(),
			    ev->url != NULL ? "\n" : "",
			    ev->url != NULL ? ev->url : "");
			start_agent(w, c, ev);
		}
		goto out;
	}

	/* The opening message names the agent that start_agent() creates. */
	next = agent_next_id();
	text = xasprintf("%s — starting #%lld%s%s", ev->headline,
	    (long long)next, ev->url != NULL ? "\n" : "",
	    ev->url != NULL ? ev->url : "");
	c = conversation_open(w->target_adapter, w->target_channel, text,
	    ev->by, w->repo, w->agent);
	free(text);
	if (c == NULL) {
		log_warnx("webhook %s: cannot open a thread for %s", w->name,
		    ev->headline);
		goto out;
	}
	if (mapkey != NULL) {
		v = xasprintf("%lld", (long long)c->id);
		store_kv_set(mapkey, v);
		free(v);
	}
	start_agent(w, c, ev);
out:
	free(mapkey);
	job_free(j);
}

/* ---- the inbox: recorded before the answer, worked on from the row ---- */

static json_t *
event_json(const struct cfg_webhook *w, const struct webhook_event *ev)
{
	return json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:I}",
	    "hook", w->name, "key", ev->key, "headline", ev->headline,
	    "url", ev->url, "task", ev->task, "by", ev->by,
	    "gh_repo", ev->gh_repo, "number", (json_int_t)ev->gh_number);
}

static char *
dupj(json_t *o, const char *key)
{
	const char	*v = json_string_value(json_object_get(o, key));

	return v != NULL ? xstrdup(v) : NULL;
}

/* A recorded event's work, from its inbox row (inside its transaction). */
static int
webhook_process(json_t *p, void *arg)
{
	struct job	*j;

	j = xcalloc(1, sizeof *j);
	j->hook = dupj(p, "hook");
	j->ev.key = dupj(p, "key");
	j->ev.headline = dupj(p, "headline");
	j->ev.url = dupj(p, "url");
	j->ev.task = dupj(p, "task");
	j->ev.by = dupj(p, "by");
	j->ev.gh_repo = dupj(p, "gh_repo");
	j->ev.gh_number = json_integer_value(json_object_get(p, "number"));
	if (j->hook == NULL || j->ev.headline == NULL || j->ev.task == NULL) {
		log_warnx("webhook: inbox row without hook, headline or task;"
		    " dropped");
		job_free(j);
		return 0;
	}
	job_run(j);
	return 0;
}

static void
record_done(int rc, void *arg)
{
	*(int *)arg = rc;
}

/*
 * The event goes into the inbox with its dedup keys and is committed
 * before the answer: once the sender hears "accepted", a crash cannot lose
 * it (the row is worked on after a restart), and a failure to record it is
 * a 503 the sender may redeliver.  The work (thread, agent) runs from the
 * row afterwards, so the answer never waits for it.
 *
 * Keys: the delivery id, and for GitHub a digest of the signed body as
 * well: the delivery id is not signed, so the same body and signature
 * under a fresh id is a replay, not a new event.
 */
static void
accept_event(struct httpd_response *resp, const struct cfg_webhook *w,
    const char *id, const char *body, size_t body_len,
    struct webhook_event *ev)
{
	struct inbox_key	 keys[2];
	char			*source, *bsource = NULL, digest[65];
	size_t			 nkeys = 1;
	int			 rc = -1;

	if (loop_stopping()) {
		webhook_event_free(ev);
		answer(resp, 503, "shutting down; retry later");
		return;
	}
	source = xasprintf("webhook:%s", w->name);
	keys[0] = (struct inbox_key){ source, id, WEBHOOK_DEDUP_TTL };
	if (body != NULL) {
		bsource = xasprintf("webhook:%s:body", w->name);
		webhook_sha256_hex(body, body_len, digest);
		keys[nkeys++] = (struct inbox_key){ bsource, digest,
		    WEBHOOK_DEDUP_TTL };
	}
	inbox_put("webhook", event_json(w, ev), keys, nkeys, record_done, &rc);
	if (inbox_flush() != 0)
		rc = -1;
	free(source);
	free(bsource);
	if (rc == -1) {
		log_warnx("webhook %s: delivery %s could not be recorded",
		    w->name, id);
		answer(resp, 503, "cannot record the delivery; retry");
	} else if (rc == 0) {
		count("switchboard_webhook_duplicates_total",
		    "Webhook deliveries seen before and dropped.", w, NULL);
		log_info("webhook %s: delivery %s seen before, dropped",
		    w->name, id);
		answer(resp, 200, "duplicate delivery, ignored");
	} else {
		log_info("webhook %s: delivery %s accepted: %s", w->name, id,
		    ev->headline);
		count("switchboard_webhook_accepted_total",
		    "Webhook events acted on.", w, NULL);
		answer(resp, 202, "accepted");
	}
	webhook_event_free(ev);
}

static void
ignored(struct httpd_response *resp, const struct cfg_webhook *w,
    const char *why)
{
	count("switchboard_webhook_ignored_total",
	    "Webhook events verified but not acted on.", w, NULL);
	log_info("webhook %s: ignored: %s", w->name, why);
	answer(resp, 200, "ignored: %s", why);
}

static int
id_ok(const char *id)
{
	return id != NULL && *id != '\0' && strlen(id) <= DELIVERY_MAX;
}

static void
on_github(const struct httpd_request *req, struct httpd_response *resp,
    const struct cfg_webhook *w)
{
	const char		*sig, *event, *delivery;
	struct webhook_event	 ev;
	json_error_t		 jerr;
	json_t			*p;
	char			*why = NULL;
	int			 rc;

	if ((sig = httpd_header(req, "X-Hub-Signature-256")) == NULL) {
		reject(resp, w, 401, "missing_signature", req->peer);
		return;
	}
	if (!webhook_github_verify(w->secret, sig, req->body, req->body_len)) {
		reject(resp, w, 401, "bad_signature", req->peer);
		return;
	}
	if (!is_json(httpd_header(req, "Content-Type"))) {
		reject(resp, w, 415, "content_type", req->peer);
		return;
	}
	if ((event = httpd_header(req, "X-GitHub-Event")) == NULL) {
		reject(resp, w, 400, "no_event", req->peer);
		return;
	}
	if (strcmp(event, "ping") == 0) {
		log_info("webhook %s: ping", w->name);
		answer(resp, 200, "pong");
		return;
	}
	delivery = httpd_header(req, "X-GitHub-Delivery");
	if (!id_ok(delivery)) {
		reject(resp, w, 400, "no_delivery", req->peer);
		return;
	}
	p = json_loadb(req->body, req->body_len, 0, &jerr);
	if (!json_is_object(p)) {
		json_decref(p);
		reject(resp, w, 400, "malformed", req->peer);
		return;
	}
	rc = webhook_github_map(w, event, p, &ev, &why);
	json_decref(p);
	if (rc == 0)
		ignored(resp, w, why);
	else if (rc < 0) {
		log_info("webhook %s: %s event unusable: %s", w->name, event,
		    why);
		reject(resp, w, 400, "malformed", req->peer);
	} else
		accept_event(resp, w, delivery, req->body, req->body_len, &ev);
	free(why);
}

/* A string or integer field at a dotted path, as a malloc'd string. */
static char *
field(const json_t *o, const char *path)
{
	const json_t	*v = o;
	const char	*p = path, *dot;
	char		*name;
	size_t		 n;

	while (v != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		name = xstrndup(p, n);
		v = json_object_get(v, name);
		free(name);
		p += n + (dot != NULL);
	}
	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	return NULL;
}

static void
on_generic(const struct httpd_request *req, struct httpd_response *resp,
    const struct cfg_webhook *w)
{
	const char		*sig, *reason;
	struct webhook_event	 ev;
	json_error_t		 jerr;
	json_t			*p;
	char			*task, *thread, *id, *title;

	sig = httpd_header(req, w->generic.signature_header);
	if (webhook_generic_verify(w->secret,
	    httpd_header(req, w->generic.timestamp_header), sig, req->body,
	    req->body_len, wall_s(), &reason) != 0) {
		reject(resp, w, 401, reason, req->peer);
		return;
	}
	if (!is_json(httpd_header(req, "Content-Type"))) {
		reject(resp, w, 415, "content_type", req->peer);
		return;
	}
	p = json_loadb(req->body, req->body_len, 0, &jerr);
	if (!json_is_object(p)) {
		json_decref(p);
		reject(resp, w, 400, "malformed", req->peer);
		return;
	}
	task = field(p, w->generic.task_field);
	thread = field(p, w->generic.thread_field);
	/* Without an id, the signature (over time and body) is one. */
	if ((id = field(p, w->generic.id_field)) == NULL)
		id = xstrdup(sig);
	json_decref(p);
	if (task == NULL || *task == '\0' || !id_ok(id) ||
	    (thread != NULL && (strlen(thread) > THREAD_KEY_MAX ||
	    *thread == '\0'))) {
		reject(resp, w, 400, "malformed", req->peer);
		goto out;
	}
	memset(&ev, 0, sizeof ev);
	utf8_truncate(task, WEBHOOK_TASK_MAX);
	title = render_oneline(task, 120);
	ev.headline = xasprintf("Webhook %s: %s", w->name, title);
	free(title);
	ev.task = task;
	task = NULL;
	ev.key = thread;
	thread = NULL;
	ev.by = xasprintf("webhook:%s", w->name);
	accept_event(resp, w, id, NULL, 0, &ev);
out:
	free(task);
	free(thread);
	free(id);
}

static void
on_request(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	const struct cfg_webhook	*w = NULL;
	size_t				 i;

	/* By path, not by a pointer kept in the route: configs are reloaded. */
	for (i = 0; cfg != NULL && i < cfg->nwebhooks; i++)
		if (cfg->webhooks[i].enabled &&
		    strcmp(cfg->webhooks[i].path, req->path) == 0)
			w = &cfg->webhooks[i];
	if (w == NULL) {
		answer(resp, 404, "not found");
		return;
	}
	if (strcmp(w->kind, "github") == 0)
		on_github(req, resp, w);
	else
		on_generic(req, resp, w);
}

/* ---- write-back ---------------------------------------------------------- */

static void
comment_done(const struct http_response *res, const char *error, void *arg)
{
	struct comment	*cm = arg, **pp;

	for (pp = &comments; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cm) {
			*pp = cm->next;
			break;
		}
	if (error != NULL)
		log_warnx("webhook: comment on %s failed: %s", cm->what, error);
	else if (res->status != 201 && res->status != 200)
		log_warnx("webhook: comment on %s failed: HTTP %ld", cm->what,
		    res->status);
	else
		log_info("webhook: commented on %s", cm->what);
	if (error != NULL || (res->status != 201 && res->status != 200))
		metrics_inc(metrics_counter(
		    "switchboard_webhook_writeback_failed_total", "",
		    "GitHub comments that could not be posted."));
	free(cm->what);
	free(cm);
}

static void
comment_post(const struct cfg_webhook *w, const char *repo, int64_t n,
    const char *text)
{
	struct http_request_opts	 o = { 0 };
	struct comment			*cm;
	const char			*hdrs[6];
	json_t				*j;
	char				*url, *auth, *body;

	url = xasprintf("%s/repos/%s/issues/%lld/comments", w->github.api_url,
	    repo, (long long)n);
	auth = xasprintf("Authorization: Bearer %s", w->github.token);
	j = json_pack("{s:s}", "body", text);
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	hdrs[0] = auth;
	hdrs[1] = "Accept: application/vnd.github+json";
	hdrs[2] = "X-GitHub-Api-Version: 2022-11-28";
	hdrs[3] = "User-Agent: switchboard";
	hdrs[4] = "Content-Type: application/json";
	hdrs[5] = NULL;
	o.method = "POST";
	o.url = url;
	o.headers = hdrs;
	o.body = body;
	o.body_len = strlen(body);
	o.timeout_ms = 30000;
	cm = xcalloc(1, sizeof *cm);
	cm->what = xasprintf("%s#%lld", repo, (long long)n);
	cm->next = comments;
	comments = cm;
	cm->req = http_request(&o, comment_done, cm);
	explicit_bzero(auth, strlen(auth));
	free(auth);
	free(url);
	free(body);
}

static void
on_agent_end(struct agent *a, void *arg)
{
	const struct cfg_webhook	*w;
	json_t				*v = NULL;
	const char			*hook, *repo, *summary;
	json_int_t			 n;
	char				*k, *s, *text;

	if (cfg == NULL)
		return;
	k = xasprintf("webhook:agent:%lld", (long long)agent_id(a));
	s = store_kv_get(k);
	free(k);
	if (s == NULL)
		return;
	v = json_loads(s, 0, NULL);
	free(s);
	if (json_unpack(v, "{s:s, s:s, s:I}", "hook", &hook, "repo", &repo,
	    "number", &n) != 0 || (w = config_webhook(cfg, hook)) == NULL ||
	    w->github.token == NULL) {
		json_decref(v);
		return;
	}
	summary = agent_summary(a);
	text = xasprintf("Switchboard #%lld %s on branch `%s`.%s%s",
	    (long long)agent_id(a), agent_state_name(agent_state(a)),
	    agent_branch(a) != NULL ? agent_branch(a) : "-",
	    summary != NULL ? "\n\n" : "", summary != NULL ? summary : "");
	comment_post(w, repo, n, text);
	free(text);
	json_decref(v);
}

/* ---- set-up ---------------------------------------------------------------- */

static void
unroute_all(void)
{
	size_t	 i;

	for (i = 0; i < npaths; i++) {
		httpd_unroute(paths[i]);
		free(paths[i]);
	}
	free(paths);
	paths = NULL;
	npaths = 0;
}

static void
on_shutdown(void *arg)
{
	struct comment	*cm;

	while ((cm = comments) != NULL) {
		comments = cm->next;
		if (cm->req != NULL)
			http_cancel(cm->req);
		free(cm->what);
		free(cm);
	}
	unroute_all();
	cfg = NULL;
}

void
webhook_configure(const struct config *c)
{
	size_t	 i;

	unroute_all();
	cfg = c;
	paths = xcalloc(c->nwebhooks + 1, sizeof *paths);
	for (i = 0; i < c->nwebhooks; i++) {
		if (!c->webhooks[i].enabled)
			continue;
		httpd_route("POST", c->webhooks[i].path, on_request, NULL);
		paths[npaths++] = xstrdup(c->webhooks[i].path);
		log_info("webhook %s: %s POST %s -> %s/%s",
		    c->webhooks[i].name, c->webhooks[i].kind,
		    c->webhooks[i].path, c->webhooks[i].target_adapter,
		    c->webhooks[i].target_channel);
	}
	inbox_kind("webhook", webhook_process, NULL, NULL);
	inbox_kick();
	if (!hooked) {
		hooked = 1;
		agent_on_end(on_agent_end, NULL);
		loop_on_shutdown(on_shutdown, NULL);
	}
}
