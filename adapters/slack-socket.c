/*
 * slack-socket — Socket Mode: apps.connections.open with the app-level token,
 * a WebSocket to the URL it returns (single-use: a fresh one per connection),
 * hello, envelopes acked once recorded, disconnects by reason, dead sockets.
 *
 * At most two sockets exist at a time (Slack allows ten): the live one and,
 * during a refresh, its replacement.  On refresh_requested or warning the
 * old socket keeps delivering (any envelope may come on any socket) until
 * the new one has said hello; only then is the old one closed, so nothing is
 * missed in between.
 */
#include "adapters/slack.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"
#include "bot/ws.h"
#include "config/config.h"
#include "orchestrator/inbox.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SOCK_MAX		2	/* never near Slack's 10 */
#define SOCK_BASE_MS		1000
#define SOCK_CAP_MS		60000
#define SOCK_MAX_MESSAGE	(4 * 1024 * 1024)

struct slack_sock {
	struct slack		*s;
	struct ws_conn		*ws;
	unsigned		 id;
	int			 hello;		/* Slack said hello on it */
	int			 retiring;	/* replace, then close */
	struct slack_sock	*next;
};

static unsigned	 sock_ids;

static void	 sock_open(struct slack *);

static void
sock_unlink(struct slack_sock *k)
{
	struct slack_sock	**pp;

	for (pp = &k->s->socks; *pp != NULL; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			k->s->nsocks--;
			return;
		}
}

/* A live socket that is not being replaced. */
static int
sock_have_live(struct slack *s)
{
	struct slack_sock	*k;

	for (k = s->socks; k != NULL; k = k->next)
		if (k->hello && !k->retiring)
			return 1;
	return 0;
}

static void
sock_retry_fire(void *arg)
{
	struct slack	*s = arg;

	s->sock_timer = NULL;
	sock_open(s);
}

static void
sock_schedule(struct slack *s)
{
	uint64_t	 wait;

	if (s->stopping || s->halted || s->sock_timer != NULL ||
	    s->sock_opening || loop_stopping())
		return;
	wait = slack_backoff_ms(s->sock_attempt++, SOCK_BASE_MS, SOCK_CAP_MS);
	log_info("slack: reconnecting in %" PRIu64 " ms", wait);
	if (!sock_have_live(s))
		slack_set_state(s, "reconnecting");
	s->sock_timer = loop_timer_once(wait, sock_retry_fire, s);
}

/* An ack waiting for the group commit of what its envelope carried. */
struct sock_ack {
	struct slack	*s;
	unsigned	 sock;		/* by id: the socket may close first */
	char		*envelope_id;
};

static void
sock_ack_send(int rc, void *arg)
{
	struct sock_ack		*a = arg;
	struct slack		*s = a->s;
	struct slack_sock	*k;
	json_t			*ack;
	char			*t;

	for (k = s->socks; k != NULL; k = k->next)
		if (k->id == a->sock)
			break;
	if (rc == -1)
		log_warnx("slack: envelope %s not recorded, not acked (Slack"
		    " redelivers it)", a->envelope_id);
	else if (s->destroyed || k == NULL)
		log_info("slack: socket %u gone before envelope %s was acked"
		    " (Slack redelivers it; it is a duplicate then)", a->sock,
		    a->envelope_id);
	else {
		ack = json_pack("{s:s}", "envelope_id", a->envelope_id);
		t = json_dumps(ack, JSON_COMPACT);
		if (ws_send_text(k->ws, t, strlen(t)) != 0)
			log_warnx("slack: socket %u: cannot ack %s (closed)",
			    k->id, a->envelope_id);
		free(t);
		json_decref(ack);
	}
	free(a->envelope_id);
	free(a);
	s->pending--;
	slack_settle(s);
}

/*
 * The ack leaves right after the group commit that records the envelope's
 * event (orchestrator/inbox.c): never before, so a crash cannot lose an
 * acked event, and never after any work, so a backlog cannot delay it.
 */
static void
sock_ack(struct slack_sock *k, const char *envelope_id)
{
	struct sock_ack	*a;

	a = xcalloc(1, sizeof *a);
	a->s = k->s;
	a->sock = k->id;
	a->envelope_id = xstrdup(envelope_id);
	k->s->pending++;
	inbox_after_commit(sock_ack_send, a);
}

static void
sock_hello(struct slack_sock *k)
{
	struct slack		*s = k->s;
	struct slack_sock	*o;

	k->hello = 1;
	s->sock_opening = 0;
	s->sock_attempt = 0;
	log_info("slack: socket %u connected", k->id);
	/* The new one is up: now the one it replaces may go. */
	for (o = s->socks; o != NULL; o = o->next)
		if (o != k) {
			o->retiring = 1;
			ws_close(o->ws, 1000, "replaced");
		}
	slack_set_state(s, "connected");
}

static void
sock_disconnect(struct slack_sock *k, const char *reason)
{
	struct slack	*s = k->s;

	log_info("slack: socket %u: disconnect (%s)", k->id,
	    reason != NULL ? reason : "no reason");
	if (reason != NULL && strcmp(reason, "link_disabled") == 0) {
		slack_halt(s, "stopped: link_disabled", "Socket Mode was "
		    "turned off for the app (disconnect link_disabled)");
		return;
	}
	if (reason != NULL && strcmp(reason, "too_many_websockets") == 0) {
		k->retiring = 1;
		ws_close(k->ws, 1000, "too many websockets");
		if (!sock_have_live(s))
			sock_schedule(s);
		return;
	}
	/* refresh_requested, warning, anything new: replace, then close. */
	k->retiring = 1;
	sock_open(s);
}

static void
sock_on_text(struct ws_conn *ws, const char *data, size_t len, void *arg)
{
	struct slack_sock	*k = arg;
	struct slack		*s = k->s;
	char			*what;

	switch (slack_inbound_frame(s, data, len, s->stopping || s->halted,
	    &what)) {
	case SLACK_FRAME_HELLO:
		sock_hello(k);
		break;
	case SLACK_FRAME_DISCONNECT:
		sock_disconnect(k, what);
		break;
	case SLACK_FRAME_ACK:
		sock_ack(k, what);
		break;
	case SLACK_FRAME_NOACK:
	case SLACK_FRAME_SKIP:
		break;
	}
	free(what);
}

static void
sock_on_close(struct ws_conn *ws, int code, const char *reason, void *arg)
{
	struct slack_sock	*k = arg;
	struct slack		*s = k->s;

	log_info("slack: socket %u closed (%d %s)", k->id, code,
	    reason != NULL ? reason : "");
	sock_unlink(k);
	if (!k->hello)
		s->sock_opening = 0;	/* it never came up */
	/* Nothing live and nothing on its way: back off, then reconnect. */
	if (!s->stopping && !s->halted && !s->destroyed &&
	    !sock_have_live(s) && !s->sock_opening)
		sock_schedule(s);
	free(k);
	slack_settle(s);
}

static void
sock_url_done(struct slack *s, long status, json_t *reply,
    long long retry_ms, const char *error, void *arg)
{
	static const struct ws_callbacks cbs = {
		.on_text = sock_on_text,
		.on_close = sock_on_close,
	};
	struct ws_opts		 o;
	struct slack_sock	*k;
	const char		*url = NULL, *e = error;
	char			*cause = NULL, *why;
	unsigned		 dead;

	s->sock_opening = 0;
	if (s->stopping || s->halted || s->destroyed)
		return;
	if (e == NULL && reply == NULL)
		e = status == 429 ? "ratelimited" : "not a JSON reply";
	if (e == NULL && !json_is_true(json_object_get(reply, "ok")))
		e = json_string_value(json_object_get(reply, "error"));
	if (e == NULL && (url = json_string_value(json_object_get(reply,
	    "url"))) == NULL)
		e = "no url in the reply";
	if (e != NULL) {
		if (slack_auth_error(e)) {
			why = xasprintf("apps.connections.open: %s: the app "
			    "token is not valid", e);
			slack_halt(s, "stopped: invalid_auth", why);
			free(why);
			return;
		}
		log_warnx("slack: apps.connections.open failed: %s", e);
		sock_schedule(s);
		return;
	}

	dead = (unsigned)s->cfg->slack.socket_timeout_ms;
	memset(&o, 0, sizeof o);
	o.url = url;
	o.dead_ms = dead;
	o.ping_ms = dead / 3 > 0 ? dead / 3 : 1;
	o.max_message = SOCK_MAX_MESSAGE;
	k = xcalloc(1, sizeof *k);
	k->s = s;
	k->id = ++sock_ids;
	if ((k->ws = ws_connect(&o, &cbs, k, &cause)) == NULL) {
		/* The URL is never logged: it carries a ticket. */
		log_warnx("slack: socket: %s", cause);
		free(cause);
		free(k);
		sock_schedule(s);
		return;
	}
	k->next = s->socks;
	s->socks = k;
	s->nsocks++;
	s->sock_opening = 1;	/* until its hello (or close) */
	log_debug("slack: socket %u opening", k->id);
}

static void
sock_open(struct slack *s)
{
	if (s->stopping || s->halted || s->destroyed || s->sock_opening)
		return;
	if (s->nsocks >= SOCK_MAX) {
		log_warnx("slack: %u sockets open already, not opening another",
		    s->nsocks);
		return;
	}
	loop_timer_cancel(s->sock_timer);
	s->sock_timer = NULL;
	s->sock_opening = 1;
	slack_api(s, "apps.connections.open", 1, json_object(),
	    sock_url_done, NULL);
}

void
slack_socket_start(struct slack *s)
{
	sock_open(s);
}

void
slack_socket_stop(struct slack *s)
{
	struct slack_sock	*k;

	loop_timer_cancel(s->sock_timer);
	s->sock_timer = NULL;
	for (k = s->socks; k != NULL; k = k->next) {
		k->retiring = 1;
		ws_close(k->ws, 1000, "shutting down");
	}
}
