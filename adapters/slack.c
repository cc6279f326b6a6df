/*
 * slack — the adapter_ops, auth.test, the Web API, and ops mapped to
 * chat.postMessage / chat.update / reactions.add.  Inbound mapping is in
 * slack-inbound.c; transports in slack-socket.c and slack-events.c.
 */
#include "adapters/slack.h"
#include "bot/http.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "orchestrator/chat.h"
#include "orchestrator/jscan.h"
#include "orchestrator/outbox.h"
#include "config/config.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLACK_AUTH_BASE_MS	1000
#define SLACK_AUTH_CAP_MS	300000
#define SLACK_API_TIMEOUT_MS	20000
#define SLACK_LOOKBACK		100	/* messages per page read back */
#define SLACK_LOOKBACK_PAGES	100	/* pages (a thread of 10,000) */

/*
 * Slack's documented rate limits (docs "Rate limits"; each method's page
 * gives its tier), per app per workspace.  chat.postMessage is "special":
 * about one message per second per channel with short bursts allowed,
 * under a workspace-wide limit of several hundred a minute.
 * chat.update and reactions.add are Tier 3 (50+ a minute, "sporadic
 * bursts are welcome"); the external upload's methods are Tier 4 (100+).
 * The bursts are ours: the docs give none.  The outbox starts from these
 * and learns what the workspace really allows (outbox-pace.h).
 */
static const struct adapter_budget slack_budgets[] = {
	{ CHAT_OP_POST, BUDGET_CHANNEL, 60, 4, "chat.postMessage" },
	{ CHAT_OP_POST, BUDGET_WORKSPACE, 300, 30, "chat.postMessage" },
	{ CHAT_OP_EDIT, BUDGET_WORKSPACE, 50, 10, "chat.update" },
	{ CHAT_OP_REACT, BUDGET_WORKSPACE, 50, 10, "reactions.add" },
	{ CHAT_OP_UPLOAD, BUDGET_WORKSPACE, 100, 10,
	    "files.completeUploadExternal" },
};

static const struct adapter_caps slack_caps = {
	.threads = 1,
	.edits = 1,
	.reactions = 1,
	.buttons = 1,
	.reaction_choices = 0,
	.max_text = SLACK_MAX_TEXT,
	.budgets = slack_budgets,
	.nbudgets = nitems(slack_budgets),
	/* Per method: reactions and edits pass posts waiting for budget. */
	.per_method_limits = 1,
};

struct slack_call {
	struct slack		*s;
	struct http_req		*req;
	slack_api_cb		 cb;
	void			*arg;
	char			*method;
	const char *const	*keys;	/* the reply's members read, or NULL */
	struct slack_call	*next;
};

/*
 * One op on its way: a POST may take two calls (a look-up, then the post).
 * One op is one message: the core splits long text to caps.max_text.
 */
struct slack_send {
	struct slack		*s;
	struct chat_op		*op;
	char			*text;		/* clipped, then escaped */
	int			 posting;	/* past the look-up */
	unsigned		 pages;		/* of the look-up so far */
	const char		*refuse;	/* report this permanent error */
};


static void	 slack_auth_test(struct slack *);
static void	 slack_free(struct slack *);

uint64_t
slack_backoff_ms(unsigned attempt, uint64_t base, uint64_t cap)
{
	uint64_t	 d = base;

	while (attempt-- > 0 && d < cap)
		d *= 2;
	if (d > cap)
		d = cap;
	/* Jitter so that many clients (or sockets) do not retry in step. */
	return d / 2 + (uint64_t)random() % (d / 2 + 1);
}

int
slack_auth_error(const char *e)
{
	return e != NULL && (strcmp(e, "invalid_auth") == 0 ||
	    strcmp(e, "not_authed") == 0 ||
	    strcmp(e, "account_inactive") == 0 ||
	    strcmp(e, "token_revoked") == 0 ||
	    strcmp(e, "token_expired") == 0);
}

/* ---- state ------------------------------------------------------------- */

void
slack_set_state(struct slack *s, const char *state)
{
	if (s->hdr.state != NULL && strcmp(s->hdr.state, state) == 0)
		return;
	s->hdr.state = state;
	chat_on_state(&s->hdr, state);
}

void
slack_halt(struct slack *s, const char *state, const char *why)
{
	if (s->halted || s->stopping)
		return;
	s->halted = 1;
	log_warnx("slack: %s; the Slack adapter is stopped (fix it and "
	    "restart)", why);
	loop_timer_cancel(s->auth_timer);
	s->auth_timer = NULL;
	slack_socket_stop(s);
	slack_events_stop(s);
	s->stopped_sent = 1;
	slack_set_state(s, state);
}

/*
 * Reports "stopped" once everything is closed after stop(), and frees once
 * destroyed and nothing holds the struct.  Touches nothing after
 * chat_on_state, which may destroy the adapter.
 */
void
slack_settle(struct slack *s)
{
	if (s->nsocks > 0 || s->pending > 0 || s->calls != NULL ||
	    s->sock_opening)
		return;
	if (s->destroyed) {
		slack_free(s);
		return;
	}
	if (s->stopping && !s->stopped_sent) {
		s->stopped_sent = 1;
		slack_set_state(s, "stopped");
	}
}

/* ---- Web API --------------------------------------------------------------- */

static void
slack_call_unlink(struct slack_call *c)
{
	struct slack_call	**pp;

	for (pp = &c->s->calls; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			return;
		}
}

/* The members a callback reads of a reply (ok and error, for the log). */
static const char *const reply_simple[] = { "ok", "error", NULL };
static const char *const reply_post[] = { "ok", "error", "ts", NULL };

/*
 * A reply as its callback reads it: with keys, only those members built
 * (chat.postMessage answers with the whole message, which nothing reads;
 * building it was a tenth of an event's cost), the text checked by jscan
 * as jansson would; anything jscan refuses is built whole as before.
 */
static json_t *
reply_decode(const struct http_response *res, const char *const *keys)
{
	struct jscan_field	 f[4];
	json_t			*reply, *v;
	json_error_t		 jerr;
	size_t			 i, n;

	for (n = 0; keys != NULL && keys[n] != NULL && n < nitems(f); n++) {
		f[n].key = keys[n];
		f[n].val = NULL;
	}
	if (n > 0 && res->body != NULL &&
	    jscan(res->body, res->body_len, f, n) == '{') {
		reply = json_object();
		for (i = 0; i < n; i++) {
			if (f[i].val == NULL)
				continue;
			if ((v = jscan_value(f[i].val, f[i].len)) == NULL) {
				json_decref(reply);
				goto whole;
			}
			json_object_set_new(reply, keys[i], v);
		}
		return reply;
	}
whole:
	reply = json_loadb(res->body, res->body_len, 0, &jerr);
	if (reply != NULL && !json_is_object(reply)) {
		json_decref(reply);
		reply = NULL;
	}
	return reply;
}

static void
slack_api_done(const struct http_response *res, const char *error, void *arg)
{
	struct slack_call	*c = arg;
	struct slack		*s = c->s;
	json_t			*reply = NULL;
	long long		 retry = -1;

	slack_call_unlink(c);
	if (res != NULL) {
		reply = reply_decode(res, c->keys);
		if (res->status == 429)
			retry = http_retry_after_ms(res);
		log_debug("slack: %s → %ld%s%s", c->method, res->status,
		    reply != NULL && !json_is_true(json_object_get(reply,
		    "ok")) ? " " : "", reply != NULL && !json_is_true(
		    json_object_get(reply, "ok")) && json_string_value(
		    json_object_get(reply, "error")) != NULL ?
		    json_string_value(json_object_get(reply, "error")) : "");
	} else
		log_debug("slack: %s: %s", c->method, error);
	c->cb(s, res != NULL ? res->status : 0, reply, retry, error, c->arg);
	json_decref(reply);
	free(c->method);
	free(c);
	slack_settle(s);
}

static void	slack_api_keys(struct slack *, const char *, int, json_t *,
		    const char *const *, slack_api_cb, void *);

void
slack_api(struct slack *s, const char *method, int app, json_t *body,
    slack_api_cb cb, void *arg)
{
	slack_api_keys(s, method, app, body, NULL, cb, arg);
}

/* slack_api for a callback that reads only keys of the reply. */
static void
slack_api_keys(struct slack *s, const char *method, int app, json_t *body,
    const char *const *keys, slack_api_cb cb, void *arg)
{
	struct http_request_opts	 o;
	struct slack_call		*c;
	const char			*hdrs[3];
	char				*url, *auth, *data;

	url = xasprintf("%s%s", s->cfg->slack.api_url, method);
	auth = xasprintf("Authorization: Bearer %s", app ?
	    s->cfg->slack.app_token : s->cfg->slack.bot_token);
	data = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	hdrs[0] = auth;
	hdrs[1] = "Content-Type: application/json; charset=utf-8";
	hdrs[2] = NULL;

	memset(&o, 0, sizeof o);
	o.method = "POST";
	o.url = url;
	o.headers = hdrs;
	o.body = data;
	o.body_len = strlen(data);
	o.timeout_ms = SLACK_API_TIMEOUT_MS;

	c = xcalloc(1, sizeof *c);
	c->s = s;
	c->cb = cb;
	c->arg = arg;
	c->method = xstrdup(method);
	c->keys = keys;
	c->next = s->calls;
	s->calls = c;
	c->req = http_request(&o, slack_api_done, c);
	/* The token is in auth: wipe it before freeing. */
	explicit_bzero(auth, strlen(auth));
	free(auth);
	free(url);
	free(data);
}

/*
 * A request that is not a JSON Web API call (a form-encoded method, the
 * bytes of an upload), on the same list as slack_api's so destroy cancels
 * it.  auth: send the bot token.  The reply reaches cb as for slack_api;
 * a body that is not JSON comes as reply NULL.
 */
static void
slack_call_raw(struct slack *s, const char *what, const char *url, int auth,
    const char *content_type, const char *body, size_t len, slack_api_cb cb,
    void *arg)
{
	struct http_request_opts	 o;
	struct slack_call		*c;
	const char			*hdrs[3];
	char				*a = NULL, *ct;
	size_t				 n = 0;

	if (auth) {
		a = xasprintf("Authorization: Bearer %s",
		    s->cfg->slack.bot_token);
		hdrs[n++] = a;
	}
	ct = xasprintf("Content-Type: %s", content_type);
	hdrs[n++] = ct;
	hdrs[n] = NULL;
	memset(&o, 0, sizeof o);
	o.method = "POST";
	o.url = url;
	o.headers = hdrs;
	o.body = body;
	o.body_len = len;
	o.timeout_ms = SLACK_API_TIMEOUT_MS * 3;	/* a file takes longer */
	c = xcalloc(1, sizeof *c);
	c->s = s;
	c->cb = cb;
	c->arg = arg;
	c->method = xstrdup(what);
	c->next = s->calls;
	s->calls = c;
	c->req = http_request(&o, slack_api_done, c);
	if (a != NULL) {
		explicit_bzero(a, strlen(a));
		free(a);
	}
	free(ct);
}

/* Cancels every call; their callbacks hear "adapter destroyed". */
static void
slack_api_cancel_all(struct slack *s)
{
	struct slack_call	*c;

	while ((c = s->calls) != NULL) {
		s->calls = c->next;
		http_cancel(c->req);
		c->cb(s, 0, NULL, -1, "adapter destroyed", c->arg);
		free(c->method);
		free(c);
	}
}

static const char *
strj(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static const char *
reply_error(json_t *reply)
{
	const char	*e;

	if (reply == NULL)
		return "not a JSON reply";
	if (json_is_true(json_object_get(reply, "ok")))
		return NULL;
	e = json_string_value(json_object_get(reply, "error"));
	return e != NULL ? e : "ok:false without an error";
}

/* ---- auth.test -------------------------------------------------------------- */

static void
slack_auth_retry(void *arg)
{
	struct slack	*s = arg;

	s->auth_timer = NULL;
	slack_auth_test(s);
}

static void
slack_auth_done(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	const char	*e = error != NULL ? error : reply_error(reply);
	uint64_t	 wait;
	char		*why;

	if (s->stopping || s->halted || s->destroyed)
		return;
	if (e == NULL && status == 200) {
		free(s->bot_user);
		free(s->bot_id);
		free(s->team);
		s->bot_user = xstrdup(json_string_value(json_object_get(reply,
		    "user_id")) ? json_string_value(json_object_get(reply,
		    "user_id")) : "");
		s->bot_id = json_string_value(json_object_get(reply,
		    "bot_id")) != NULL ? xstrdup(json_string_value(
		    json_object_get(reply, "bot_id"))) : NULL;
		s->team = json_string_value(json_object_get(reply,
		    "team_id")) != NULL ? xstrdup(json_string_value(
		    json_object_get(reply, "team_id"))) : NULL;
		s->ready = 1;
		s->auth_attempt = 0;
		log_info("slack: authenticated as %s (bot %s) in team %s",
		    s->bot_user, s->bot_id != NULL ? s->bot_id : "?",
		    s->team != NULL ? s->team : "?");
		if (s->socket_mode)
			slack_socket_start(s);
		else
			slack_set_state(s, "connected");
		return;
	}
	if (slack_auth_error(e)) {
		why = xasprintf("auth.test: %s: the bot token is not valid", e);
		if (strcmp(e, "invalid_auth") == 0)
			slack_halt(s, "stopped: invalid_auth", why);
		else if (strcmp(e, "not_authed") == 0)
			slack_halt(s, "stopped: not_authed", why);
		else if (strcmp(e, "account_inactive") == 0)
			slack_halt(s, "stopped: account_inactive", why);
		else
			slack_halt(s, "stopped: token_revoked", why);
		free(why);
		return;
	}
	wait = slack_backoff_ms(s->auth_attempt++, SLACK_AUTH_BASE_MS,
	    SLACK_AUTH_CAP_MS);
	if (status == 429 && retry_ms > (long long)wait)
		wait = (uint64_t)retry_ms;
	log_warnx("slack: auth.test failed (%s%s%ld), retry in %" PRIu64 " ms",
	    e != NULL ? e : "", e != NULL ? ", HTTP " : "HTTP ", status, wait);
	slack_set_state(s, "reconnecting");
	s->auth_timer = loop_timer_once(wait, slack_auth_retry, s);
}

static void
slack_auth_test(struct slack *s)
{
	slack_api(s, "auth.test", 0, json_object(), slack_auth_done, NULL);
}

/* ---- outbound ----------------------------------------------------------------- */

static void
slack_send_free(struct slack_send *x)
{
	free(x->text);
	free(x);
}

static int
post_is_clean(struct slack *s, uint64_t id)
{
	unsigned	 i;

	for (i = 0; i < s->nclean && i < nitems(s->clean_posts); i++)
		if (s->clean_posts[i] == id)
			return 1;
	return 0;
}

static void
post_mark_clean(struct slack *s, uint64_t id)
{
	if (!post_is_clean(s, id))
		s->clean_posts[s->nclean++ % nitems(s->clean_posts)] = id;
}

/* An attempt is under way: what it leaves in Slack is not known. */
static void
post_unmark_clean(struct slack *s, uint64_t id)
{
	unsigned	 i;

	for (i = 0; i < s->nclean && i < nitems(s->clean_posts); i++)
		if (s->clean_posts[i] == id)
			s->clean_posts[i] = 0;
}

/*
 * The attempt marker of a post row that goes out as soon as it commits,
 * written in the transaction that inserts the row (outbox_on_post): durable
 * with the row, before any attempt, without a commit and fsync of its own
 * per post.  Once committed the row is clean: marked, nothing posted.
 */
struct premark {
	struct slack	*s;
	uint64_t	 id;
};

static void
premark_committed(void *arg)
{
	struct premark	*p = arg;

	post_mark_clean(p->s, p->id);
	free(p);
}

static void
slack_premark(void *arg, uint64_t id)
{
	struct premark	*p;
	char		 k[32];

	snprintf(k, sizeof k, "%" PRIu64, id);
	if (store_seen_add("slack.post", k, SLACK_SEEN_TTL_S) != 1)
		return;
	p = xmalloc(sizeof *p);
	p->s = arg;
	p->id = id;
	store_hook(premark_committed, free, p);
}

/*
 * Reports a failed call: 429 honours Retry-After; 5xx, network errors and
 * Slack's transient errors back off; anything else Slack said is permanent.
 */
static void
slack_op_fail(struct slack_send *x, long status, json_t *reply,
    long long retry_ms, const char *error)
{
	struct slack	*s = x->s;
	struct chat_op	*op = x->op;	/* freed by chat_op_*: report last */
	const char	*e;
	char		*why;

	if (error != NULL) {
		chat_op_failed(op, -1, 0, error);
		return;
	}
	/*
	 * Slack refused the post itself: nothing of this row is there.  (A
	 * refused look-up says nothing about an earlier attempt.)
	 */
	if (op->kind == CHAT_OP_POST && x->posting &&
	    (status == 429 || (status < 500 && reply != NULL)))
		post_mark_clean(s, op->id);
	if (status == 429) {
		chat_op_failed(op, retry_ms >= 0 ? retry_ms : 1000, 0,
		    "ratelimited");
		return;
	}
	if (status >= 500 || reply == NULL) {
		why = xasprintf("HTTP %ld", status);
		chat_op_failed(op, -1, 0, why);
		free(why);
		return;
	}
	e = reply_error(reply);
	if (strcmp(e, "ratelimited") == 0 || strcmp(e, "internal_error") == 0 ||
	    strcmp(e, "fatal_error") == 0 ||
	    strcmp(e, "service_unavailable") == 0 ||
	    strcmp(e, "request_timeout") == 0 ||
	    strcmp(e, "team_added_to_org") == 0) {
		chat_op_failed(op, -1, 0, e);
		return;
	}
	if (slack_auth_error(e)) {
		/* Kept for after the token is fixed; the adapter stops. */
		why = xasprintf("the bot token was refused (%s)", e);
		chat_op_failed(op, -1, 0, e);
		slack_halt(s, "stopped: invalid_auth", why);
		free(why);
		return;
	}
	chat_op_failed(op, -1, 1, e);
}

static json_t *
post_metadata(uint64_t id)
{
	return json_pack("{s:s, s:{s:I}}", "event_type", "switchboard",
	    "event_payload", "outbox_id", (json_int_t)id);
}

static void
slack_post_done(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	struct slack_send	*x = arg;
	const char		*ts;

	if (error != NULL || status != 200 || reply_error(reply) != NULL ||
	    (ts = strj(reply, "ts")) == NULL)
		slack_op_fail(x, status, reply, retry_ms, error);
	else
		chat_op_done(x->op, ts);
	slack_send_free(x);
}

static void
slack_post_now(struct slack_send *x)
{
	struct chat_op	*op = x->op;
	json_t		*body;

	x->posting = 1;
	body = json_pack("{s:s, s:s, s:o}", "channel", op->channel, "text",
	    x->text, "metadata", post_metadata(op->id));
	if (op->thread != NULL)
		json_object_set_new(body, "thread_ts", json_string(op->thread));
	/* A question: the buttons under its sections. */
	if (op->choices != NULL && op->choices[0] != NULL &&
	    op->question != NULL)
		json_object_set_new(body, "blocks", slack_blocks_question(
		    x->text, op->question, op->choices, 0));
	slack_api_keys(x->s, "chat.postMessage", 0, body, reply_post,
	    slack_post_done, x);
}

static void	slack_lookup(struct slack_send *, const char *cursor);

/* Finds this op's message if it is in Slack already (our metadata). */
static void
slack_lookup_done(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	struct slack_send	*x = arg;
	json_t			*msgs, *m, *meta;
	json_int_t		 id;
	const char		*ts, *found = NULL, *cursor;
	size_t			 i;

	if (error != NULL || status == 429 || status >= 500) {
		slack_op_fail(x, status, reply, retry_ms, error);
		slack_send_free(x);
		return;
	}
	msgs = json_object_get(reply, "messages");
	json_array_foreach(msgs, i, m) {
		meta = json_object_get(json_object_get(m, "metadata"),
		    "event_payload");
		ts = strj(m, "ts");
		if (ts != NULL && json_unpack(meta, "{s:I}", "outbox_id",
		    &id) == 0 && (uint64_t)id == x->op->id) {
			found = ts;
			break;
		}
	}
	if (found != NULL) {
		log_info("slack: row %" PRIu64 " was posted before (%s), "
		    "not posting it again", x->op->id, found);
		chat_op_done(x->op, found);
		slack_send_free(x);
		return;
	}
	/*
	 * Not on this page: replies come oldest first, so in a thread longer
	 * than a page the post we look for is on a later one.
	 */
	cursor = strj(json_object_get(reply, "response_metadata"),
	    "next_cursor");
	if (json_is_true(json_object_get(reply, "has_more")) &&
	    cursor != NULL && *cursor != '\0' &&
	    ++x->pages < SLACK_LOOKBACK_PAGES) {
		slack_lookup(x, cursor);
		return;
	}
	if (reply_error(reply) != NULL)
		log_info("slack: cannot read back row %" PRIu64 " (%s); "
		    "posting it", x->op->id, reply_error(reply));
	slack_post_now(x);
}

static void
slack_post(struct slack_send *x)
{
	struct chat_op	*op = x->op;
	char		 id[32];
	int		 r;

	/*
	 * Its marker durable and the last attempt known to have posted
	 * nothing (or none made: slack_premark): post, and this attempt is
	 * not known clean any more.  The first attempt of this row ever:
	 * post.  Otherwise look for it in Slack first.
	 */
	if (post_is_clean(x->s, op->id)) {
		post_unmark_clean(x->s, op->id);
		slack_post_now(x);
		return;
	}
	snprintf(id, sizeof id, "%" PRIu64, op->id);
	r = store_seen_add("slack.post", id, SLACK_SEEN_TTL_S);
	if (r != 0) {
		slack_post_now(x);
		return;
	}
	slack_lookup(x, NULL);
}

/* One page of the thread (or the channel), from cursor (NULL: the start). */
static void
slack_lookup(struct slack_send *x, const char *cursor)
{
	struct chat_op	*op = x->op;
	json_t		*body;

	if (op->thread != NULL)
		body = json_pack("{s:s, s:s, s:b, s:i}", "channel", op->channel,
		    "ts", op->thread, "include_all_metadata", 1, "limit",
		    SLACK_LOOKBACK);
	else
		body = json_pack("{s:s, s:b, s:i}", "channel", op->channel,
		    "include_all_metadata", 1, "limit", SLACK_LOOKBACK);
	if (cursor != NULL)
		json_object_set_new(body, "cursor", json_string(cursor));
	slack_api(x->s, op->thread != NULL ? "conversations.replies" :
	    "conversations.history", 0, body, slack_lookup_done, x);
}

static void
slack_simple_done(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	struct slack_send	*x = arg;
	const char		*e = reply != NULL ? reply_error(reply) : NULL;

	if (error == NULL && status == 200 && reply != NULL && (e == NULL ||
	    (x->op->kind == CHAT_OP_REACT && strcmp(e, "already_reacted")
	    == 0)))
		chat_op_done(x->op, NULL);
	else
		slack_op_fail(x, status, reply, retry_ms, error);
	slack_send_free(x);
}

static void
slack_report_done(void *arg)
{
	struct slack_send	*x = arg;
	struct slack		*s = x->s;

	if (x->refuse != NULL)
		chat_op_failed(x->op, -1, 1, x->refuse);
	else
		chat_op_done(x->op, NULL);
	slack_send_free(x);
	s->pending--;
	slack_settle(s);
}

/* ---- file uploads --------------------------------------------------------------- */

/*
 * Slack's external upload, three calls (docs "files.getUploadURLExternal"):
 * files.getUploadURLExternal (form-encoded: filename, length) → upload_url
 * + file_id; POST the bytes to upload_url (HTTP 200); then
 * files.completeUploadExternal with files=[{id, title}], channel_id and
 * thread_ts shares it in the thread.  The op's ref is the file id.  Until
 * completed a file is shared nowhere, so a retry after a failure in the
 * first two steps leaves at most an orphan upload Slack discards.
 */
struct slack_upload {
	struct slack_send	*x;
	char			*file_id;
};

static void
slack_upload_free(struct slack_upload *u)
{
	slack_send_free(u->x);
	free(u->file_id);
	free(u);
}

static void
slack_upload_completed(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	struct slack_upload	*u = arg;

	if (error != NULL || status != 200 || reply_error(reply) != NULL)
		slack_op_fail(u->x, status, reply, retry_ms, error);
	else
		chat_op_done(u->x->op, u->file_id);
	slack_upload_free(u);
}

static void
slack_upload_sent(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	struct slack_upload	*u = arg;
	struct chat_op		*op = u->x->op;
	json_t			*body;
	char			*why;

	if (error != NULL || status != 200) {
		why = error != NULL ? xstrdup(error) :
		    xasprintf("upload: HTTP %ld", status);
		chat_op_failed(op, status == 429 && retry_ms >= 0 ? retry_ms :
		    -1, 0, why);
		free(why);
		slack_upload_free(u);
		return;
	}
	body = json_pack("{s:[{s:s, s:s}], s:s}", "files", "id", u->file_id,
	    "title", op->title != NULL ? op->title : op->filename,
	    "channel_id", op->channel);
	if (op->thread != NULL)
		json_object_set_new(body, "thread_ts", json_string(op->thread));
	slack_api(s, "files.completeUploadExternal", 0, body,
	    slack_upload_completed, u);
}

static void
slack_upload_got_url(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	struct slack_upload	*u = arg;
	struct chat_op		*op = u->x->op;
	const char		*url, *id;

	if (error != NULL || status != 200 || reply_error(reply) != NULL ||
	    (url = strj(reply, "upload_url")) == NULL ||
	    (id = strj(reply, "file_id")) == NULL) {
		slack_op_fail(u->x, status, reply, retry_ms, error);
		slack_upload_free(u);
		return;
	}
	u->file_id = xstrdup(id);
	slack_call_raw(s, "upload", url, 0, "application/octet-stream",
	    op->data, op->data_len, slack_upload_sent, u);
}

static void
slack_upload(struct slack_send *x)
{
	struct chat_op		*op = x->op;
	struct slack_upload	*u;
	char			*name, *form, *url;

	u = xcalloc(1, sizeof *u);
	u->x = x;
	/* This method takes a form, not JSON (its docs list only that). */
	name = curl_easy_escape(NULL, op->filename != NULL ? op->filename :
	    "file", 0);
	form = xasprintf("filename=%s&length=%zu", name != NULL ? name : "file",
	    op->data_len);
	curl_free(name);
	url = xasprintf("%sfiles.getUploadURLExternal", x->s->cfg->slack.api_url);
	slack_call_raw(x->s, "files.getUploadURLExternal", url, 1,
	    "application/x-www-form-urlencoded", form, strlen(form),
	    slack_upload_got_url, u);
	free(url);
	free(form);
}

static int
slack_send(struct adapter *a, struct chat_op *op)
{
	struct slack		*s = (struct slack *)a;
	struct slack_send	*x;
	const char		*name;
	json_t			*body;
	char			*clipped;

	/*
	 * stop() ends intake only: the outbox flushes what shutdown says
	 * ("interrupted...") through here until destroy().
	 */
	if (!s->ready || s->halted || s->destroyed)
		return -1;
	x = xcalloc(1, sizeof *x);
	x->s = s;
	x->op = op;
	/*
	 * The core splits long text and cuts keyed messages to max_text
	 * bytes, so this clip is only a guard.  It counts the characters a
	 * reader sees, before escaping, so it never cuts an &entity; and
	 * the escaped text (at most 5 times as long) stays far inside
	 * Slack's hard limit of 40,000.
	 */
	clipped = slack_text_clip(op->text != NULL ? op->text : "",
	    SLACK_MAX_TEXT);
	x->text = slack_text_escape(clipped);
	free(clipped);
	switch (op->kind) {
	case CHAT_OP_POST:
		slack_post(x);
		return 0;
	case CHAT_OP_UPLOAD:
		if (op->data_len == 0)
			break;	/* Slack refuses length 0 (missing_argument) */
		slack_upload(x);
		return 0;
	case CHAT_OP_EDIT:
		if (op->target == NULL)
			break;
		body = json_pack("{s:s, s:s, s:s}", "channel", op->channel,
		    "ts", op->target, "text", x->text);
		/* Blocks replace the old ones: closed drops the buttons. */
		if (op->question != NULL && (op->closed ||
		    (op->choices != NULL && op->choices[0] != NULL)))
			json_object_set_new(body, "blocks",
			    slack_blocks_question(x->text, op->question,
			    op->choices, op->closed));
		slack_api_keys(s, "chat.update", 0, body, reply_simple,
		    slack_simple_done, x);
		return 0;
	case CHAT_OP_REACT:
		if (op->target == NULL)
			break;
		if ((name = slack_emoji_name(op->emoji)) == NULL) {
			log_info("slack: no Slack name for reaction %s, "
			    "skipped", op->emoji != NULL ? op->emoji : "?");
			break;
		}
		body = json_pack("{s:s, s:s, s:s}", "channel", op->channel,
		    "timestamp", op->target, "name", name);
		slack_api_keys(s, "reactions.add", 0, body, reply_simple,
		    slack_simple_done, x);
		return 0;
	}
	/*
	 * Nothing to do on Slack: an unknown emoji counts as done (a missing
	 * decoration is no reason to retry); anything else is refused for good.
	 * Either way reported from the loop, never from inside send().
	 */
	if (op->kind != CHAT_OP_REACT || op->target == NULL)
		x->refuse = "slack: op without a target or of unknown kind";
	s->pending++;
	loop_defer(slack_report_done, x);
	return 0;
}

/* ---- adapter_ops ---------------------------------------------------------------- */

static void
slack_free(struct slack *s)
{
	free(s->bot_user);
	free(s->bot_id);
	free(s->team);
	slack_threads_free(s);
	free(s);
}

static struct adapter *
slack_create(const struct config *cfg, char **cause)
{
	struct slack	*s;

	if (cfg->slack.bot_token == NULL || *cfg->slack.bot_token == '\0') {
		*cause = xstrdup("slack: bot_token is not set");
		return NULL;
	}
	s = xcalloc(1, sizeof *s);
	s->hdr.ops = &slack_ops;
	s->hdr.state = "created";
	s->hdr.refs = 1;
	s->cfg = cfg;
	s->socket_mode = strcmp(cfg->slack.mode, "events") != 0;
	if (s->socket_mode && (cfg->slack.app_token == NULL ||
	    *cfg->slack.app_token == '\0')) {
		*cause = xstrdup("slack: socket mode needs app_token");
		free(s);
		return NULL;
	}
	return &s->hdr;
}

static int
slack_start(struct adapter *a, char **cause)
{
	struct slack	*s = (struct slack *)a;

	if (s->started) {
		*cause = xstrdup("slack: already started");
		return -1;
	}
	s->started = 1;
	s->hdr.state = "starting";
	outbox_on_post(a->ops->name, slack_premark, s);
	if (!s->socket_mode)
		slack_events_start(s);
	slack_auth_test(s);
	return 0;
}

static void
slack_stop_settle(void *arg)
{
	struct slack	*s = arg;

	s->pending--;
	slack_settle(s);
}

static void
slack_stop(struct adapter *a)
{
	struct slack	*s = (struct slack *)a;

	if (s->stopping)
		return;
	s->stopping = 1;
	loop_timer_cancel(s->auth_timer);
	s->auth_timer = NULL;
	slack_socket_stop(s);
	slack_events_stop(s);
	if (!s->stopped_sent)
		s->hdr.state = "stopping";
	/* "stopped" comes from the loop, never from inside stop(). */
	s->pending++;
	loop_defer(slack_stop_settle, s);
}

static void
slack_destroy(struct adapter *a)
{
	struct slack	*s = (struct slack *)a;

	if (s == NULL)
		return;
	if (!s->started) {
		slack_free(s);
		return;
	}
	if (!s->stopping)
		slack_stop(a);
	s->destroyed = 1;
	outbox_on_post(a->ops->name, NULL, NULL);
	chat_inbox_forget(a);
	/* Ops in flight are reported (the outbox keeps them for next time). */
	slack_api_cancel_all(s);
	slack_settle(s);
}

static const struct adapter_caps *
slack_caps_get(struct adapter *a)
{
	return &slack_caps;
}

static const char *
slack_self_id(struct adapter *a)
{
	struct slack	*s = (struct slack *)a;

	return s->bot_user;
}

const struct adapter_ops slack_ops = {
	.name = "slack",
	.create = slack_create,
	.start = slack_start,
	.stop = slack_stop,
	.destroy = slack_destroy,
	.caps = slack_caps_get,
	.send = slack_send,
	.self_id = slack_self_id,
	.thread_exists = slack_thread_exists,
};
