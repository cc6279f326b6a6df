/*
 * matrix — lifecycle, authentication and the request helper.  The /sync loop
 * lives in matrix-sync.c, outbound ops in matrix-send.c.
 *
 * Authentication tries, in order: the token of an earlier password login
 * (store kv), the configured access_token, then a password login that passes
 * the stored device_id, so the homeserver keeps the same device and the
 * txnIds we already used stay meaningful across a re-login or a restart.
 */
#include "adapters/matrix-int.h"
#include "config/config.h"
#include "bot/log.h"
#include "bot/store.h"
#include "bot/util.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MATRIX_MAX_THREADS	256

struct matrix_call {
	struct matrix		*m;
	struct http_req		*req;
	matrix_cb		 cb;
	void			(*drop)(void *);
	void			*arg;
	struct matrix_call	*next;
};

enum matrix_auth_step {
	AUTH_STORED,		/* token of an earlier password login */
	AUTH_CONFIGURED,	/* adapters.matrix.access_token */
	AUTH_PASSWORD,		/* /login */
};

static const struct adapter_caps matrix_caps = {
	.threads = 1,
	.edits = 1,
	.reactions = 1,
	.buttons = 0,
	.reaction_choices = 1,
	.max_text = MATRIX_MAX_TEXT,
	/* The homeserver's 429s pace us (matrix-send.c), not a constant. */
	.min_interval_ms = 0,
	.order_per_thread = 1,
};

static void	 matrix_auth_try(struct matrix *, enum matrix_auth_step);

/* ---- pure helpers ------------------------------------------------------ */

char *
matrix_txn_id(const char *prefix, uint64_t id, int part)
{
	const char	*dash = *prefix != '\0' ? "-" : "";

	if (part == 0)
		return xasprintf("sb-%s%s%" PRIu64, prefix, dash, id);
	return xasprintf("sb-%s%s%" PRIu64 "-k%d", prefix, dash, id, part);
}

/*
 * The state dir's txnId prefix, made once.  A state dir that already synced
 * without one keeps "" so rows in flight across the upgrade keep their
 * txnIds; a fresh state dir (the case that needs it) gets 64 random bits.
 */
static char *
matrix_txn_prefix(void)
{
	unsigned char	 rnd[8];
	char		*v, *since;
	size_t		 i;

	if ((v = store_kv_get(MATRIX_KV_TXN_PREFIX)) != NULL)
		return v;
	since = store_kv_get(MATRIX_KV_SINCE);
	if (since != NULL && *since != '\0')
		v = xstrdup("");
	else if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0)
		fatalx("matrix: no randomness for the txnId prefix");
	else {
		v = xcalloc(1, 2 * sizeof rnd + 1);
		for (i = 0; i < sizeof rnd; i++)
			snprintf(v + 2 * i, 3, "%02x", rnd[i]);
	}
	free(since);
	store_kv_set(MATRIX_KV_TXN_PREFIX, v);
	return v;
}

char *
matrix_path_escape(const char *s)
{
	char	*e, *r;

	/* curl ignores the handle for escaping; encodes all but A-Za-z0-9-._~ */
	if ((e = curl_easy_escape(NULL, s, (int)strlen(s))) == NULL)
		fatalx("curl_easy_escape: out of memory");
	r = xstrdup(e);
	curl_free(e);
	return r;
}

/* ---- threads ------------------------------------------------------------- */

void
matrix_thread_note(struct matrix *m, const char *room, const char *root,
    const char *latest)
{
	struct matrix_thread	*t, **pp;

	for (pp = &m->threads; (t = *pp) != NULL; pp = &t->next) {
		if (strcmp(t->room, room) == 0 && strcmp(t->root, root) == 0) {
			*pp = t->next;
			free(t->latest);
			t->latest = xstrdup(latest);
			t->next = m->threads;
			m->threads = t;
			return;
		}
	}
	t = xcalloc(1, sizeof *t);
	t->room = xstrdup(room);
	t->root = xstrdup(root);
	t->latest = xstrdup(latest);
	t->next = m->threads;
	m->threads = t;
	/* Bounded: forgetting only costs a fallback to the root. */
	if (++m->nthreads > MATRIX_MAX_THREADS) {
		for (pp = &m->threads; (*pp)->next != NULL; pp = &(*pp)->next)
			;
		t = *pp;
		*pp = NULL;
		free(t->room);
		free(t->root);
		free(t->latest);
		free(t);
		m->nthreads--;
	}
}

const char *
matrix_thread_latest(struct matrix *m, const char *room, const char *root)
{
	struct matrix_thread	*t;

	for (t = m->threads; t != NULL; t = t->next)
		if (strcmp(t->room, room) == 0 && strcmp(t->root, root) == 0)
			return t->latest;
	return root;
}

/*
 * Thread root of one of our messages, durable: a reply to it from a client
 * that does not send m.thread (old clients, Element's "Reply" in the main
 * timeline) belongs to that thread's conversation.  Key per event id, which
 * the spec makes globally unique.
 */
void
matrix_root_set(const char *event_id, const char *root)
{
	char	*k = xasprintf("matrix.root.%s", event_id);

	store_kv_set(k, root);
	free(k);
}

char *
matrix_root_of(struct matrix *m, const char *room, const char *event_id)
{
	struct matrix_thread	*t;
	char			*k, *v;

	/*
	 * A question's message is out before its pre-reactions, and the op
	 * (with the durable record) is done only after them: a quick reply
	 * finds the thread among the latest messages we know of.
	 */
	for (t = m->threads; t != NULL; t = t->next)
		if (strcmp(t->latest, event_id) == 0 &&
		    strcmp(t->room, room) == 0)
			return xstrdup(t->root);
	k = xasprintf("matrix.root.%s", event_id);
	v = store_kv_get(k);
	free(k);
	if (v != NULL && *v == '\0') {
		free(v);
		v = NULL;
	}
	return v;
}

/* ---- people and answers ---------------------------------------------------- */

#define MATRIX_MAX_NAMES	512
#define MATRIX_MAX_QUOTES	64

struct matrix_name {
	char			*user;
	char			*name;
	struct matrix_name	*next;
};

void
matrix_name_note(struct matrix *m, const char *user, const char *name)
{
	struct matrix_name	*n, **pp;

	for (pp = &m->names; (n = *pp) != NULL; pp = &n->next)
		if (strcmp(n->user, user) == 0) {
			*pp = n->next;
			m->nnames--;
			free(n->user);
			free(n->name);
			free(n);
			break;
		}
	if (name == NULL || *name == '\0')
		return;
	n = xcalloc(1, sizeof *n);
	n->user = xstrdup(user);
	n->name = xstrdup(name);
	n->next = m->names;
	m->names = n;
	if (++m->nnames > MATRIX_MAX_NAMES) {
		for (pp = &m->names; (*pp)->next != NULL; pp = &(*pp)->next)
			;
		n = *pp;
		*pp = NULL;
		free(n->user);
		free(n->name);
		free(n);
		m->nnames--;
	}
}

const char *
matrix_name_get(struct matrix *m, const char *user)
{
	struct matrix_name	*n;

	for (n = m->names; n != NULL; n = n->next)
		if (strcmp(n->user, user) == 0)
			return n->name;
	return NULL;
}

static void
matrix_quote_free(struct matrix_quote *q)
{
	free(q->room);
	free(q->thread);
	free(q->event_id);
	free(q);
}

struct matrix_quote *
matrix_quote_note(struct matrix *m, const char *room, const char *thread,
    const char *event_id, uint64_t lo, uint64_t hi)
{
	struct matrix_quote	*q, *n, **pp;

	q = xcalloc(1, sizeof *q);
	q->room = xstrdup(room);
	q->thread = xstrdup(thread);
	q->event_id = xstrdup(event_id);
	q->lo = lo;
	q->hi = hi;
	q->next = m->quotes;
	m->quotes = q;
	if (++m->nquotes > MATRIX_MAX_QUOTES) {
		for (pp = &m->quotes; (*pp)->next != NULL; pp = &(*pp)->next)
			;
		n = *pp;
		*pp = NULL;
		matrix_quote_free(n);
		m->nquotes--;
	}
	return q;
}

const char *
matrix_quote_for(struct matrix *m, const char *room, const char *thread,
    uint64_t id)
{
	struct matrix_quote	*q;

	for (q = m->quotes; q != NULL; q = q->next)
		if (id > q->lo && id <= q->hi && strcmp(q->room, room) == 0 &&
		    strcmp(q->thread, thread) == 0)
			return q->event_id;
	return NULL;
}

/* ---- requests ------------------------------------------------------------ */

static void
matrix_free(struct matrix *m)
{
	struct matrix_thread	*t;
	struct matrix_quote	*q;

	while (m->names != NULL)
		matrix_name_note(m, m->names->user, NULL);
	while ((q = m->quotes) != NULL) {
		m->quotes = q->next;
		matrix_quote_free(q);
	}
	while ((t = m->threads) != NULL) {
		m->threads = t->next;
		free(t->room);
		free(t->root);
		free(t->latest);
		free(t);
	}
	matrix_sync_free(m);
	free(m->hs);
	free(m->user_id);
	free(m->token);
	free(m->device_id);
	free(m->since);
	free(m->txn_prefix);
	free(m->display_name);
	free(m);
}

/* Ends a callback: a destroy() that came in meanwhile frees now. */
static void
matrix_unbusy(struct matrix *m)
{
	if (--m->busy == 0 && m->destroyed)
		matrix_free(m);
}

static void
matrix_on_http(const struct http_response *res, const char *error, void *arg)
{
	struct matrix_call	*c = arg, **pp;
	struct matrix		*m = c->m;
	struct matrix_reply	 r;
	json_error_t		 jerr;
	json_t			*v;
	long long		 ra;

	for (pp = &m->calls; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	memset(&r, 0, sizeof r);
	r.retry_ms = -1;
	if (res == NULL)
		r.error = error != NULL ? error : "no response";
	else {
		r.status = res->status;
		r.body = json_loadb(res->body, res->body_len, 0, &jerr);
		if (r.body != NULL && !json_is_object(r.body)) {
			json_decref(r.body);
			r.body = NULL;
		}
		r.errcode = json_string_value(json_object_get(r.body,
		    "errcode"));
		if (res->status == 429) {
			/*
			 * Spec (Rate limiting, v1.10): a Retry-After header,
			 * and the deprecated retry_after_ms.  Newer Synapse
			 * sends both, the header rounded up to seconds: then
			 * the milliseconds are the server's own figure.  If
			 * they disagree otherwise, the longer wait wins.
			 */
			v = json_object_get(r.body, "retry_after_ms");
			if (json_is_integer(v) && json_integer_value(v) >= 0)
				r.retry_ms = json_integer_value(v);
			ra = http_retry_after_ms(res);
			if (ra > r.retry_ms && (r.retry_ms < 0 ||
			    ra > (r.retry_ms + 999) / 1000 * 1000))
				r.retry_ms = ra;
			if (r.retry_ms < 0)
				r.retry_ms = 5000;
		}
		if (res->status >= 300 && r.errcode == NULL)
			r.error = "HTTP error";
		else if (res->status >= 300)
			r.error = json_string_value(json_object_get(r.body,
			    "error"));
		if (res->status >= 300 && r.error == NULL)
			r.error = r.errcode;
	}
	m->busy++;
	c->cb(m, &r, c->arg);
	json_decref(r.body);
	free(c);
	matrix_unbusy(m);
}

void
matrix_call(struct matrix *m, const char *method, const char *path,
    json_t *body, long timeout_ms, matrix_cb cb, void (*drop)(void *),
    void *arg)
{
	struct http_request_opts	 o;
	struct matrix_call		*c;
	const char			*hdrs[3];
	char				*url, *auth = NULL, *data = NULL;
	size_t				 n = 0;

	url = xasprintf("%s%s", m->hs, path);
	if (m->token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", m->token);
		hdrs[n++] = auth;
	}
	if (body != NULL) {
		hdrs[n++] = "Content-Type: application/json";
		if ((data = json_dumps(body, JSON_COMPACT)) == NULL)
			fatalx("json_dumps: out of memory");
		json_decref(body);
	}
	hdrs[n] = NULL;
	memset(&o, 0, sizeof o);
	o.method = method;
	o.url = url;
	o.headers = hdrs;
	o.body = data;
	o.body_len = data != NULL ? strlen(data) : 0;
	o.timeout_ms = timeout_ms;
	o.max_body = 32 << 20;

	c = xcalloc(1, sizeof *c);
	c->m = m;
	c->cb = cb;
	c->drop = drop;
	c->arg = arg;
	c->next = m->calls;
	m->calls = c;
	/* Without the query: filters are long and say nothing new. */
	log_debug("matrix: %s %.*s", method, (int)strcspn(path, "?"), path);
	c->req = http_request(&o, matrix_on_http, c);
	free(url);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	free(data);
}

/*
 * Like matrix_call, with a body that is not JSON (media uploads): the bytes
 * (copied) and their content type.
 */
void
matrix_call_raw(struct matrix *m, const char *method, const char *path,
    const char *content_type, const void *data, size_t len, long timeout_ms,
    matrix_cb cb, void (*drop)(void *), void *arg)
{
	struct http_request_opts	 o;
	struct matrix_call		*c;
	const char			*hdrs[3];
	char				*url, *auth = NULL, *ct;
	size_t				 n = 0;

	url = xasprintf("%s%s", m->hs, path);
	if (m->token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", m->token);
		hdrs[n++] = auth;
	}
	ct = xasprintf("Content-Type: %s", content_type);
	hdrs[n++] = ct;
	hdrs[n] = NULL;
	memset(&o, 0, sizeof o);
	o.method = method;
	o.url = url;
	o.headers = hdrs;
	o.body = data;
	o.body_len = len;
	o.timeout_ms = timeout_ms;
	c = xcalloc(1, sizeof *c);
	c->m = m;
	c->cb = cb;
	c->drop = drop;
	c->arg = arg;
	c->next = m->calls;
	m->calls = c;
	log_debug("matrix: %s %.*s (%zu bytes)", method,
	    (int)strcspn(path, "?"), path, len);
	c->req = http_request(&o, matrix_on_http, c);
	free(url);
	free(ct);
	if (auth != NULL) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
}

static void
matrix_cancel_all(struct matrix *m)
{
	struct matrix_call	*c;

	while ((c = m->calls) != NULL) {
		m->calls = c->next;
		http_cancel(c->req);
		if (c->drop != NULL)
			c->drop(c->arg);
		free(c);
	}
}

void
matrix_set_state(struct matrix *m, const char *state)
{
	if (m->hdr.state != NULL && strcmp(m->hdr.state, state) == 0)
		return;
	m->hdr.state = state;
	chat_on_state(&m->hdr, state);
}

long long
matrix_backoff_next(struct matrix *m)
{
	long long	 d;

	if (m->backoff_ms == 0)
		m->backoff_ms = MATRIX_BACKOFF_MIN_MS;
	else if ((m->backoff_ms *= 2) > MATRIX_BACKOFF_MAX_MS)
		m->backoff_ms = MATRIX_BACKOFF_MAX_MS;
	/* Jitter: half fixed, half random, so restarts do not stampede. */
	d = m->backoff_ms / 2 + random() % (m->backoff_ms / 2 + 1);
	return d;
}

/* ---- authentication ------------------------------------------------------ */

static void
matrix_set_token(struct matrix *m, const char *token)
{
	if (m->token != NULL) {
		explicit_bzero(m->token, strlen(m->token));
		free(m->token);
	}
	m->token = token != NULL ? xstrdup(token) : NULL;
}

static void
matrix_on_profile(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	const char	*name;

	/* 404: no display name set; pills then carry the user id. */
	if (r->status != 200 || (name = json_string_value(json_object_get(
	    r->body, "displayname"))) == NULL)
		return;
	free(m->display_name);
	m->display_name = xstrdup(name);
	log_debug("matrix: our display name is \"%s\"", name);
}

static void
matrix_authed(struct matrix *m)
{
	char	*uid, *path;

	m->logging_in = 0;
	m->backoff_ms = 0;
	/* Sends need no sync; the first long-poll may hold for 30 s. */
	m->connected = 1;
	matrix_set_state(m, "connected");
	log_info("matrix: signed in as %s (device %s)", m->user_id,
	    m->device_id != NULL ? m->device_id : "?");
	/*
	 * The display name people's clients put in the body of a mention
	 * (spec, User and room mentions: the anchor text is the display name).
	 * GET /v3/profile/{userId}/displayname → {"displayname"}.
	 */
	uid = matrix_path_escape(m->user_id);
	path = xasprintf("/_matrix/client/v3/profile/%s/displayname", uid);
	matrix_call(m, "GET", path, NULL, 0, matrix_on_profile, NULL, NULL);
	free(path);
	free(uid);
	matrix_sync_start(m);
}

static void
matrix_give_up(struct matrix *m, const char *why)
{
	m->logging_in = 0;
	log_warnx("matrix: %s; the adapter stops (fix the credentials and "
	    "restart)", why);
	matrix_sync_stop(m);
	m->connected = 0;
	matrix_set_state(m, "unauthorized");
}

static void
matrix_auth_retry(void *arg)
{
	struct matrix	*m = arg;

	m->sync_timer = NULL;
	m->busy++;
	matrix_auth_try(m, (enum matrix_auth_step)m->auth_step);
	matrix_unbusy(m);
}

static void
matrix_auth_later(struct matrix *m, enum matrix_auth_step step,
    const struct matrix_reply *r)
{
	long long	 ms;

	ms = r->retry_ms >= 0 ? r->retry_ms : matrix_backoff_next(m);
	log_warnx("matrix: sign-in failed (%s), retrying in %lld ms",
	    r->error != NULL ? r->error : "?", ms);
	m->auth_step = step;
	m->sync_timer = loop_timer_once((uint64_t)ms, matrix_auth_retry, m);
}

static int
matrix_rejected(const struct matrix_reply *r)
{
	return r->status == 401 || r->status == 403;
}

static void
matrix_on_whoami(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	enum matrix_auth_step	 step = (enum matrix_auth_step)(intptr_t)arg;
	const char		*uid = NULL, *dev = NULL;

	if (m->stopping)
		return;
	if (r->status == 200 && json_unpack(r->body, "{s:s, s?:s}",
	    "user_id", &uid, "device_id", &dev) == 0) {
		if (strcmp(uid, m->user_id) != 0)
			log_warnx("matrix: the token belongs to %s, not the "
			    "configured %s; using %s", uid, m->user_id, uid);
		free(m->user_id);
		m->user_id = xstrdup(uid);
		if (dev != NULL) {
			free(m->device_id);
			m->device_id = xstrdup(dev);
		}
		m->token_from_login = step == AUTH_STORED;
		matrix_authed(m);
		return;
	}
	if (matrix_rejected(r)) {
		log_warnx("matrix: %s access token rejected (%s)",
		    step == AUTH_STORED ? "stored" : "configured",
		    r->errcode != NULL ? r->errcode : "?");
		if (step == AUTH_STORED)
			store_kv_set(MATRIX_KV_TOKEN, "");
		matrix_auth_try(m, step + 1);
		return;
	}
	matrix_auth_later(m, step, r);
}

static void
matrix_on_login(struct matrix *m, const struct matrix_reply *r, void *arg)
{
	const char	*tok = NULL, *dev = NULL, *uid = NULL;

	if (m->stopping)
		return;
	if (r->status == 200 && json_unpack(r->body, "{s:s, s:s, s?:s}",
	    "access_token", &tok, "device_id", &dev, "user_id", &uid) == 0) {
		matrix_set_token(m, tok);
		free(m->device_id);
		m->device_id = xstrdup(dev);
		if (uid != NULL) {
			free(m->user_id);
			m->user_id = xstrdup(uid);
		}
		m->token_from_login = 1;
		store_begin();
		store_kv_set(MATRIX_KV_DEVICE, dev);
		store_kv_set(MATRIX_KV_TOKEN, tok);
		store_commit();
		matrix_authed(m);
		return;
	}
	if (r->status == 403 || r->status == 401 || r->status == 400) {
		matrix_give_up(m, r->errcode != NULL &&
		    strcmp(r->errcode, "M_FORBIDDEN") == 0 ?
		    "password login refused (M_FORBIDDEN: wrong user or "
		    "password)" : "password login refused");
		return;
	}
	matrix_auth_later(m, AUTH_PASSWORD, r);
}

static void
matrix_auth_try(struct matrix *m, enum matrix_auth_step step)
{
	const char	*pw = m->cfg->matrix.password;
	const char	*ct = m->cfg->matrix.access_token;
	char		*v;
	json_t		*body;

	m->logging_in = 1;
	matrix_set_state(m, "connecting");
	if (step == AUTH_STORED) {
		/* Only a password login stores a token: it needs the password. */
		v = store_kv_get(MATRIX_KV_TOKEN);
		if (v != NULL && *v != '\0' && pw != NULL) {
			matrix_set_token(m, v);
			explicit_bzero(v, strlen(v));
			free(v);
			matrix_call(m, "GET", "/_matrix/client/v3/account/whoami",
			    NULL, 0, matrix_on_whoami, NULL,
			    (void *)AUTH_STORED);
			return;
		}
		free(v);
		step = AUTH_CONFIGURED;
	}
	if (step == AUTH_CONFIGURED) {
		if (ct != NULL && *ct != '\0') {
			matrix_set_token(m, ct);
			matrix_call(m, "GET", "/_matrix/client/v3/account/whoami",
			    NULL, 0, matrix_on_whoami, NULL,
			    (void *)AUTH_CONFIGURED);
			return;
		}
		step = AUTH_PASSWORD;
	}
	if (pw == NULL || *pw == '\0') {
		matrix_give_up(m, "the access token was rejected "
		    "(M_UNKNOWN_TOKEN) and no password is configured");
		return;
	}
	matrix_set_token(m, NULL);
	body = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s}",
	    "type", "m.login.password",
	    "identifier", "type", "m.id.user", "user", m->cfg->matrix.user_id,
	    "password", pw,
	    "initial_device_display_name", "Switchboard");
	/* The same device across logins keeps txnIds idempotent. */
	if (m->device_id != NULL)
		json_object_set_new(body, "device_id",
		    json_string(m->device_id));
	log_info("matrix: logging in as %s with a password%s%s",
	    m->cfg->matrix.user_id, m->device_id != NULL ? ", device " : "",
	    m->device_id != NULL ? m->device_id : "");
	matrix_call(m, "POST", "/_matrix/client/v3/login", body, 0,
	    matrix_on_login, NULL, NULL);
}

void
matrix_auth_lost(struct matrix *m, const char *why)
{
	if (m->logging_in || m->stopping)
		return;
	log_warnx("matrix: %s", why);
	m->connected = 0;
	matrix_sync_stop(m);
	if (m->token_from_login)
		store_kv_set(MATRIX_KV_TOKEN, "");
	/* A token that just failed is not tried again: password or stop. */
	matrix_auth_try(m, AUTH_PASSWORD);
}

/* ---- adapter_ops --------------------------------------------------------- */

static struct adapter *
matrix_create(const struct config *cfg, char **cause)
{
	struct matrix	*m;
	char		*v;

	if (cfg->matrix.homeserver == NULL || cfg->matrix.user_id == NULL) {
		*cause = xstrdup("matrix: homeserver and user_id are required");
		return NULL;
	}
	m = xcalloc(1, sizeof *m);
	m->hdr.ops = &matrix_ops;
	m->hdr.state = "created";
	m->hdr.refs = 1;
	m->cfg = cfg;
	m->hs = xstrdup(cfg->matrix.homeserver);
	m->user_id = xstrdup(cfg->matrix.user_id);
	if ((v = store_kv_get(MATRIX_KV_DEVICE)) != NULL && *v != '\0')
		m->device_id = v;
	else
		free(v);
	m->txn_prefix = matrix_txn_prefix();
	return &m->hdr;
}

static int
matrix_start(struct adapter *a, char **cause)
{
	struct matrix	*m = (struct matrix *)a;

	if (m->started) {
		*cause = xstrdup("matrix: already started");
		return -1;
	}
	m->started = 1;
	matrix_auth_try(m, AUTH_STORED);
	return 0;
}

static void
matrix_stop(struct adapter *a)
{
	struct matrix	*m = (struct matrix *)a;

	if (m->stopping)
		return;
	m->stopping = 1;
	/*
	 * Intake stops now; sends already accepted go on so the outbox can
	 * flush (destroy cancels whatever is still in flight).
	 */
	matrix_sync_stop(m);
	if (m->sync_timer != NULL) {
		loop_timer_cancel(m->sync_timer);
		m->sync_timer = NULL;
	}
	matrix_set_state(m, "stopped");
}

static void
matrix_destroy(struct adapter *a)
{
	struct matrix	*m = (struct matrix *)a;

	if (m == NULL)
		return;
	if (!m->stopping)
		matrix_stop(a);
	matrix_sync_stop(m);
	matrix_cancel_all(m);
	matrix_send_free(m);
	m->destroyed = 1;
	if (m->busy == 0)
		matrix_free(m);
}

static const struct adapter_caps *
matrix_caps_get(struct adapter *a)
{
	return &matrix_caps;
}

static const char *
matrix_self_id(struct adapter *a)
{
	return ((struct matrix *)a)->user_id;
}

const struct adapter_ops matrix_ops = {
	.name = "matrix",
	.create = matrix_create,
	.start = matrix_start,
	.stop = matrix_stop,
	.destroy = matrix_destroy,
	.caps = matrix_caps_get,
	.send = matrix_send,
	.self_id = matrix_self_id,
};
