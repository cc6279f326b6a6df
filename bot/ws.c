#include "bot/ws.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/metrics.h"
#include "bot/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ws_msg {
	struct ws_msg	*next;
	uint64_t	 queued_ns;	/* uv_hrtime() at ws_send_text */
	size_t		 len;
	unsigned char	 data[];	/* LWS_PRE headroom, then the text */
};

/*
 * A conn is attached to its wsi (lws opaque user data) until on_close;
 * finishing detaches it, so whatever lws still does with the wsi afterwards
 * (close handshake, context teardown) can no longer reach it.  It is freed
 * once its two timers have closed, i.e. after the current loop iteration.
 */
struct ws_conn {
	struct lws		*wsi;
	struct ws_callbacks	 cb;
	void			*arg;

	unsigned		 ping_ms;
	unsigned		 dead_ms;
	size_t			 max_message;

	uv_timer_t		 ping_timer;
	uv_timer_t		 dead_timer;
	int			 handles;	/* timers not yet closed */

	struct buf		 rx;		/* message being reassembled */
	size_t			 drained;	/* bytes of an oversize message */
	int			 oversize;	/* draining it, then 1009 */
	struct ws_msg		*q_head, **q_tail;
	int			 want_ping;

	int			 open;
	int			 done;		/* on_close delivered or queued */
	int			 defer_close;	/* on_close on the next turn */
	int			 close_code;	/* ws_close() pending */
	char			*close_reason;
	int			 peer_code;	/* from the peer's close frame */
	char			*peer_reason;

	int			 final_code;	/* for a deferred on_close */
	char			*final_reason;
};

static int	ws_callback(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);

/*
 * 64 KB reads (lws's default is 4 KB): a burst of Socket Mode envelopes is
 * then read a hundred at a time, so one inbox commit acks them all instead
 * of a handful per loop turn, each turn also running a batch of work.
 */
#define WS_RX_BUFFER	65536

static const struct lws_protocols ws_protocols[] = {
	{ "sb-ws", ws_callback, 0, WS_RX_BUFFER, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
ws_handle_closed(uv_handle_t *h)
{
	struct ws_conn	*c = h->data;
	struct ws_msg	*m;

	if (--c->handles > 0)
		return;
	while ((m = c->q_head) != NULL) {
		c->q_head = m->next;
		free(m);
	}
	buf_free(&c->rx);
	free(c->close_reason);
	free(c->peer_reason);
	free(c->final_reason);
	free(c);
}

static void
ws_release(struct ws_conn *c)
{
	uv_close((uv_handle_t *)&c->ping_timer, ws_handle_closed);
	uv_close((uv_handle_t *)&c->dead_timer, ws_handle_closed);
}

static void
ws_deliver_deferred(void *arg)
{
	struct ws_conn	*c = arg;

	if (c->cb.on_close != NULL)
		c->cb.on_close(c, c->final_code, c->final_reason, c->arg);
	ws_release(c);
}

/*
 * The one way out: detach from the wsi, report once, free later.  With
 * kill set the wsi is also dropped (lws would otherwise keep it open).
 */
static void
ws_finish(struct ws_conn *c, int code, const char *reason, int kill)
{
	struct lws	*wsi = c->wsi;

	if (c->done)
		return;
	c->done = 1;
	c->open = 0;
	c->wsi = NULL;
	if (wsi != NULL) {
		lws_set_opaque_user_data(wsi, NULL);
		if (kill)
			lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
			    LWS_TO_KILL_ASYNC);
	}
	uv_timer_stop(&c->ping_timer);
	uv_timer_stop(&c->dead_timer);
	log_debug("ws: closed %d %s", code, reason);
	if (c->defer_close) {
		/* The caller is below us on the stack (ws_connect, ws_close). */
		c->final_code = code;
		c->final_reason = xstrdup(reason);
		loop_defer(ws_deliver_deferred, c);
		return;
	}
	if (c->cb.on_close != NULL)
		c->cb.on_close(c, code, reason, c->arg);
	ws_release(c);
}

static void
ws_dead(uv_timer_t *t)
{
	struct ws_conn	*c = t->data;
	char		*why;

	why = xasprintf("no traffic for %u ms", c->dead_ms);
	log_warnx("ws: %s, dropping the connection", why);
	ws_finish(c, 1006, why, 1);
	free(why);
}

static void
ws_alive(struct ws_conn *c)
{
	uv_timer_start(&c->dead_timer, ws_dead, c->dead_ms, 0);
}

static void
ws_ping(uv_timer_t *t)
{
	struct ws_conn	*c = t->data;

	if (c->wsi == NULL)
		return;
	c->want_ping = 1;
	lws_callback_on_writable(c->wsi);
}

/*
 * A message over max_message is drained, not refused on the spot: lws 4.1.6
 * corrupts its heap when the receive callback returns -1 in the middle of a
 * fragmented message (one 5 MB frame from the peer aborted the daemon).  So
 * the rest of it is read and thrown away, and the close (1009) is asked for
 * from the writeable callback, the path lws expects.  (4.1.6 then ends the
 * TCP connection without writing our close frame: the peer sees EOF.)  A peer that keeps
 * one message going past DRAIN_FACTOR times the limit is dropped without a
 * close frame (an asynchronous kill: lws closes the wsi from its own
 * timer, never under this callback).
 */
#define DRAIN_FACTOR	16

static int
ws_on_receive(struct ws_conn *c, struct lws *wsi, const char *in, size_t len)
{
	char	*why;
	int	 end;

	ws_alive(c);
	/* A message ends with the final fragment's last byte. */
	end = lws_is_final_fragment(wsi) &&
	    lws_remaining_packet_payload(wsi) == 0;
	if (!c->oversize && c->rx.len + len > c->max_message) {
		c->oversize = 1;
		c->drained = c->rx.len;
		buf_free(&c->rx);
		log_warnx("ws: message over %zu bytes, draining it",
		    c->max_message);
	}
	if (c->oversize) {
		c->drained += len;
		if (c->drained / DRAIN_FACTOR > c->max_message) {
			why = xasprintf("message over %zu bytes and still "
			    "coming", c->max_message);
			ws_finish(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why, 1);
			free(why);
			return 0;
		}
		if (!end)
			return 0;
		c->oversize = 0;
		why = xasprintf("message of %zu bytes over %zu", c->drained,
		    c->max_message);
		c->drained = 0;
		ws_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why);
		free(why);
		return 0;
	}
	buf_add(&c->rx, in, len);
	if (!end)
		return 0;
	if (lws_frame_is_binary(wsi))
		log_debug("ws: ignoring a binary message (%zu bytes)",
		    c->rx.len);
	else if (c->cb.on_text != NULL)
		c->cb.on_text(c, c->rx.data != NULL ? c->rx.data : "",
		    c->rx.len, c->arg);
	buf_reset(&c->rx);
	return 0;
}

/*
 * Time from ws_send_text to the frame's write, for /metrics and bench: for
 * an ack this is the gap between the commit of its event and the ack
 * leaving.  Buckets are cumulative, as Prometheus histograms are.
 */
static const double	 delay_le[] = { 0.0005, 0.001, 0.002, 0.005, 0.01,
			    0.05, 0.1, 0.5, 1 };
static struct metric	*m_delay[nitems(delay_le) + 1], *m_delay_sum;
static struct metric	*m_delay_count, *m_delay_max;

/* Per connection: registration is idempotent and survives metrics_reset. */
static void
ws_metrics(void)
{
	char	 le[32];
	size_t	 i;

	for (i = 0; i < nitems(delay_le); i++) {
		snprintf(le, sizeof le, "le=\"%g\"", delay_le[i]);
		m_delay[i] = metrics_counter(
		    "switchboard_ws_send_delay_seconds_bucket", le,
		    "Text frames by time from queued to written");
	}
	m_delay[i] = metrics_counter(
	    "switchboard_ws_send_delay_seconds_bucket", "le=\"+Inf\"",
	    "Text frames by time from queued to written");
	m_delay_sum = metrics_counter(
	    "switchboard_ws_send_delay_seconds_sum", "",
	    "Sum of the times from queued to written");
	m_delay_count = metrics_counter(
	    "switchboard_ws_send_delay_seconds_count", "",
	    "Text frames written");
	m_delay_max = metrics_gauge(
	    "switchboard_ws_send_delay_seconds_max", "",
	    "Longest time from queued to written so far");
}

static void
ws_sent(const struct ws_msg *m)
{
	double	 d = (double)(uv_hrtime() - m->queued_ns) / 1e9;
	size_t	 i;

	for (i = 0; i < nitems(delay_le); i++)
		if (d <= delay_le[i])
			metrics_inc(m_delay[i]);
	metrics_inc(m_delay[nitems(delay_le)]);
	metrics_add(m_delay_sum, d);
	metrics_inc(m_delay_count);
	if (d > metrics_value(m_delay_max))
		metrics_set(m_delay_max, d);
}

static int
ws_on_writeable(struct ws_conn *c, struct lws *wsi)
{
	unsigned char	 ping[LWS_PRE];
	struct ws_msg	*m;
	char		*why;
	int		 code;

	if (c->close_code != 0) {
		code = c->close_code;
		why = xstrdup(c->close_reason != NULL ? c->close_reason : "");
		lws_close_reason(wsi, code, (unsigned char *)why, strlen(why));
		ws_finish(c, code, why, 0);
		free(why);
		return -1;
	}
	/*
	 * Everything the socket takes now, not one frame per callback: each
	 * callback costs a loop iteration, so a burst of 1,000 acks queued
	 * behind each other used to leave over hundreds of milliseconds
	 * (Slack's deadline is 3 s for every one of them).  lws buffers what
	 * the kernel does not take; once it holds something the pipe is
	 * choked and the rest waits for the next callback.  (Asking whether
	 * it is choked is a poll(2): only while something is left to write.)
	 */
	do {
		if (c->want_ping) {
			c->want_ping = 0;
			if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING)
			    < 0)
				return -1;
		} else if ((m = c->q_head) != NULL) {
			c->q_head = m->next;
			if (c->q_head == NULL)
				c->q_tail = &c->q_head;
			ws_sent(m);
			if (lws_write(wsi, m->data + LWS_PRE, m->len,
			    LWS_WRITE_TEXT) < (int)m->len) {
				free(m);
				return -1;
			}
			free(m);
		}
	} while ((c->q_head != NULL || c->want_ping) &&
	    !lws_send_pipe_choked(wsi));
	if (c->q_head != NULL || c->want_ping)
		lws_callback_on_writable(wsi);
	return 0;
}

static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_conn	*c;
	const unsigned char *p = in;

	c = wsi != NULL ? lws_get_opaque_user_data(wsi) : NULL;
	if (c == NULL)
		return 0;	/* not ours (any more) */

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->open = 1;
		ws_alive(c);
		uv_timer_start(&c->ping_timer, ws_ping, c->ping_ms, c->ping_ms);
		if (c->cb.on_open != NULL)
			c->cb.on_open(c, c->arg);
		if (c->wsi != NULL && (c->q_head != NULL || c->close_code != 0))
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		return ws_on_receive(c, wsi, in, len);
	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		ws_alive(c);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		return ws_on_writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		/* Payload: 2-byte big-endian code, then a UTF-8 reason. */
		if (len >= 2) {
			c->peer_code = p[0] << 8 | p[1];
			free(c->peer_reason);
			c->peer_reason = xstrndup((const char *)p + 2, len - 2);
		} else
			c->peer_code = 1005;	/* no status present */
		return 0;	/* lws answers the close */
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		ws_finish(c, 0, in != NULL ? (const char *)in :
		    "connection failed", 0);
		return 0;
	case LWS_CALLBACK_CLIENT_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		if (c->peer_code != 0)
			ws_finish(c, c->peer_code, c->peer_reason != NULL ?
			    c->peer_reason : "", 0);
		else if (!c->open)
			ws_finish(c, 0, "connection closed before the "
			    "handshake completed", 0);
		else
			ws_finish(c, 1006, "connection closed without a close "
			    "frame", 0);
		return 0;
	default:
		return 0;
	}
}

struct ws_conn *
ws_connect(const struct ws_opts *opts, const struct ws_callbacks *cb,
    void *arg, char **cause)
{
	struct lws_client_connect_info	 i;
	struct lws_vhost		*vh;
	struct ws_conn			*c;
	const char			*prot, *ads, *upath;
	char				*copy, *path, *host;
	int				 port, tls;
	struct lws			*wsi;

	copy = xstrdup(opts->url);
	/* lws_parse_uri cuts the copy in place and drops the path's '/'. */
	if (lws_parse_uri(copy, &prot, &ads, &port, &upath) != 0 ||
	    *ads == '\0') {
		*cause = xasprintf("%s: bad URL", opts->url);
		free(copy);
		return NULL;
	}
	if (strcmp(prot, "ws") == 0)
		tls = 0;
	else if (strcmp(prot, "wss") == 0)
		tls = 1;
	else {
		*cause = xasprintf("%s: not a ws:// or wss:// URL", opts->url);
		free(copy);
		return NULL;
	}
	if ((vh = lws_client_vhost(ws_protocols)) == NULL) {
		*cause = xstrdup("libwebsockets is not available");
		free(copy);
		return NULL;
	}

	ws_metrics();
	c = xcalloc(1, sizeof *c);
	c->cb = *cb;
	c->arg = arg;
	c->ping_ms = opts->ping_ms != 0 ? opts->ping_ms : 10000;
	c->dead_ms = opts->dead_ms != 0 ? opts->dead_ms : 30000;
	c->max_message = opts->max_message != 0 ? opts->max_message : 1 << 20;
	c->q_tail = &c->q_head;
	uv_timer_init(loop_uv(), &c->ping_timer);
	uv_timer_init(loop_uv(), &c->dead_timer);
	c->ping_timer.data = c->dead_timer.data = c;
	c->handles = 2;

	path = xasprintf("/%s", upath);
	if ((tls && port == 443) || (!tls && port == 80))
		host = xstrdup(ads);
	else
		host = xasprintf("%s:%d", ads, port);

	memset(&i, 0, sizeof i);
	i.context = lws_the_context();
	i.vhost = vh;
	i.address = ads;
	i.port = port;
	i.path = path;
	i.host = host;
	i.origin = host;
	i.protocol = NULL;		/* no subprotocol */
	i.local_protocol_name = ws_protocols[0].name;
	i.ietf_version_or_minus_one = -1;
	i.opaque_user_data = c;
	if (tls) {
		i.ssl_connection = LCCSCF_USE_SSL;
		if (opts->insecure)
			i.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
			    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
			    LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}

	/*
	 * lws may report a failure from inside this call; on_close is
	 * deferred so the caller always gets its pointer first.  lws copies what it needs from i before returning.
	 */
	c->defer_close = 1;
	wsi = lws_client_connect_via_info(&i);
	if (!c->done) {
		if (wsi == NULL)
			ws_finish(c, 0, "cannot start the connection", 0);
		else
			c->wsi = wsi;
	}
	c->defer_close = 0;
	free(path);
	free(host);
	free(copy);
	return c;
}

int
ws_send_text(struct ws_conn *c, const char *s, size_t len)
{
	struct ws_msg	*m;

	if (c == NULL || !c->open || c->done || c->close_code != 0)
		return -1;
	m = xmalloc(sizeof *m + LWS_PRE + len);
	m->next = NULL;
	m->queued_ns = uv_hrtime();
	m->len = len;
	memcpy(m->data + LWS_PRE, s, len);
	/*
	 * A queue that holds something has asked for the writeable callback
	 * already, and that callback asks again while any is left: asking per
	 * message cost two epoll_ctl calls each (lws restarts its uv_poll).
	 */
	if (c->q_head == NULL)
		lws_callback_on_writable(c->wsi);
	*c->q_tail = m;
	c->q_tail = &m->next;
	return 0;
}

void
ws_close(struct ws_conn *c, int code, const char *reason)
{
	if (c == NULL || c->done || c->close_code != 0)
		return;
	if (reason == NULL)
		reason = "";
	if (!c->open) {
		/* Nothing to say goodbye to: drop the attempt. */
		c->defer_close = 1;
		ws_finish(c, 0, reason[0] != '\0' ? reason :
		    "closed before it opened", 1);
		return;
	}
	c->close_code = code != 0 ? code : LWS_CLOSE_STATUS_NORMAL;
	c->close_reason = xstrdup(reason);
	/* Control frame payloads are limited to 125 bytes, code included. */
	utf8_truncate(c->close_reason, 123);
	lws_callback_on_writable(c->wsi);
}
