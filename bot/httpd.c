#include "bot/httpd.h"

#include <jansson.h>
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/metrics.h"
#include "bot/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define HTTPD_CHUNK	16384

struct route {
	char		*method;	/* NULL = any */
	char		*path;
	httpd_handler	 fn;		/* NULL for a WebSocket route */
	const struct httpd_ws_handler *ws;
	void		*arg;
	struct route	*next;
};

struct httpd_ws {
	struct lws			*wsi;
	char				*path;		/* of its route */
	const struct httpd_ws_handler	*h;		/* NULL: detached */
	void				*arg;
	void				*data;
	int				 closing;
	struct httpd_ws			*next;
};

struct hdr {
	char		*name;		/* as asked for */
	char		*value;		/* NULL: asked, not present */
	struct hdr	*next;
};

/*
 * Per-connection state, allocated and zeroed by lws (per_session_data_size).
 * A keep-alive connection carries several requests, so everything here is
 * reset between them.
 */
struct session {
	struct lws		*wsi;
	char			*method;
	char			*path;
	char			*query;
	char			 peer[64];
	struct buf		 body;
	unsigned long long	 content_length;
	int			 has_body;
	int			 too_big;	/* answer 413 at the end */
	int			 responded;	/* headers are out */
	int			 close_after;	/* unread body left: drop conn */
	char			*out;		/* response body */
	size_t			 out_len, out_off;
	struct hdr		*hdrs;
	struct httpd_ws		*ws;		/* after an accepted upgrade */
};

static struct route	*routes;
static struct httpd_ws	*wss;		/* open WebSocket connections */
static int		 nwss;
static struct lws_vhost	*vhost;
static int		 listen_port = -1;
static size_t		 max_body = 1 << 20;

static const char *const method_names[] = {
	/* Indexed by LWSHUMETH_*, as lws_http_get_uri_and_method() answers. */
	"GET", "POST", "OPTIONS", "PUT", "PATCH", "DELETE", "CONNECT", "HEAD",
};

void
httpd_route(const char *method, const char *path, httpd_handler fn, void *arg)
{
	struct route	*r, **pp;

	r = xcalloc(1, sizeof *r);
	r->method = method != NULL ? xstrdup(method) : NULL;
	r->path = xstrdup(path);
	r->fn = fn;
	r->arg = arg;
	for (pp = &routes; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = r;
}

static void
route_free(struct route *r)
{
	free(r->method);
	free(r->path);
	free(r);
}

static void
ws_detach(struct httpd_ws *ws)
{
	if (ws->h == NULL)
		return;
	ws->h = NULL;
	httpd_ws_close(ws);
}

void
httpd_unroute(const char *path)
{
	struct route	*r, **pp;
	struct httpd_ws	*ws;

	for (ws = wss; ws != NULL; ws = ws->next)
		if (strcmp(ws->path, path) == 0)
			ws_detach(ws);

	pp = &routes;
	while ((r = *pp) != NULL) {
		if (strcmp(r->path, path) == 0) {
			*pp = r->next;
			route_free(r);
		} else
			pp = &r->next;
	}
}

static void
session_reset(struct session *s)
{
	struct hdr	*h;

	free(s->method);
	free(s->path);
	free(s->query);
	free(s->out);
	buf_free(&s->body);
	while ((h = s->hdrs) != NULL) {
		s->hdrs = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
	s->method = s->path = s->query = s->out = NULL;
	s->out_len = s->out_off = 0;
	s->content_length = 0;
	s->has_body = s->too_big = s->responded = s->close_after = 0;
	s->peer[0] = '\0';
}

/* Copies header token tok, or NULL if the request has none. */
static char *
header_token(struct lws *wsi, int tok)
{
	char	*v;
	int	 len;

	len = lws_hdr_total_length(wsi, tok);
	if (len <= 0)
		return NULL;
	v = xmalloc(len + 1);
	if (lws_hdr_copy(wsi, v, len + 1, tok) < 0) {
		free(v);
		return NULL;
	}
	return v;
}

/*
 * lws parses about a hundred well-known headers into tokens and keeps the
 * rest as "custom" headers under their lower-cased names, so a lookup tries
 * the token table first and the custom store second.
 */
static char *
header_lookup(struct lws *wsi, const char *name)
{
	char		*lname, *v = NULL;
	const char	*ts;
	size_t		 i, nlen;
	int		 tok, len;

	nlen = strlen(name);
	lname = xmalloc(nlen + 2);
	for (i = 0; i < nlen; i++)
		lname[i] = tolower((unsigned char)name[i]);
	lname[nlen] = ':';
	lname[nlen + 1] = '\0';

	for (tok = 0; tok < WSI_TOKEN_COUNT; tok++) {
		ts = (const char *)lws_token_to_string(tok);
		if (ts != NULL && strcmp(ts, lname) == 0) {
			v = header_token(wsi, tok);
			goto out;
		}
	}
	len = lws_hdr_custom_length(wsi, lname, (int)nlen + 1);
	if (len >= 0) {
		v = xmalloc(len + 1);
		if (lws_hdr_custom_copy(wsi, v, len + 1, lname,
		    (int)nlen + 1) < 0) {
			free(v);
			v = NULL;
		}
	}
out:
	free(lname);
	return v;
}

const char *
httpd_header(const struct httpd_request *req, const char *name)
{
	struct session	*s = req->priv;
	struct hdr	*h;

	for (h = s->hdrs; h != NULL; h = h->next) {
		if (strcasecmp(h->name, name) == 0)
			return h->value;
	}
	/* Cached for the request's life: the pointer is borrowed. */
	h = xcalloc(1, sizeof *h);
	h->name = xstrdup(name);
	h->value = header_lookup(s->wsi, name);
	h->next = s->hdrs;
	s->hdrs = h;
	return h->value;
}

static void
count_status(int status)
{
	char	 labels[32];

	snprintf(labels, sizeof labels, "code=\"%dxx\"", status / 100);
	metrics_inc(metrics_counter("switchboard_http_requests_total", labels,
	    "HTTP requests answered, by status class."));
}

/*
 * Sends the status line and headers now and queues body (taken) for
 * LWS_CALLBACK_HTTP_WRITEABLE.  -1 means the connection must be closed.
 */
static int
respond(struct session *s, int status, const char *ctype, char *body,
    size_t len, const char *extra)
{
	unsigned char	 hbuf[LWS_PRE + 4096];
	unsigned char	*start = hbuf + LWS_PRE, *p = start;
	unsigned char	*end = hbuf + sizeof hbuf - 1;
	const char	*colon, *v, *eol;
	char		*name;
	size_t		 vlen;
	int		 rc;

	s->responded = 1;
	s->out = body;
	s->out_len = len;
	s->out_off = 0;
	count_status(status);
	if (lws_add_http_common_headers(s->wsi, status, ctype, len, &p, end))
		return -1;
	/* "Name: value" lines; lws wants each name with its colon. */
	while (extra != NULL && (colon = strchr(extra, ':')) != NULL) {
		name = xstrndup(extra, colon - extra + 1);
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		eol = strchr(v, '\n');
		vlen = eol != NULL ? (size_t)(eol - v) : strlen(v);
		rc = lws_add_http_header_by_name(s->wsi,
		    (const unsigned char *)name, (const unsigned char *)v,
		    (int)vlen, &p, end);
		free(name);
		if (rc)
			return -1;
		extra = eol != NULL ? eol + 1 : NULL;
	}
	if (s->close_after && lws_add_http_header_by_token(s->wsi,
	    WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(s->wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(s->wsi);
	return 0;
}

static int
respond_text(struct session *s, int status, const char *text)
{
	return respond(s, status, "text/plain", xstrdup(text), strlen(text),
	    NULL);
}

static int
dispatch(struct session *s)
{
	struct httpd_request	 req;
	struct httpd_response	 resp;
	struct route		*r, *hit = NULL;
	int			 path_known = 0;

	for (r = routes; r != NULL && hit == NULL; r = r->next) {
		if (strcmp(r->path, s->path) != 0)
			continue;
		path_known = 1;
		if (r->fn == NULL)	/* WebSocket only */
			continue;
		if (r->method == NULL || strcmp(r->method, s->method) == 0)
			hit = r;
	}
	if (hit == NULL)
		return path_known ? respond_text(s, 405, "method not allowed\n") :
		    respond_text(s, 404, "not found\n");

	memset(&req, 0, sizeof req);
	req.method = s->method;
	req.path = s->path;
	req.query = s->query != NULL ? s->query : "";
	req.body = s->body.data != NULL ? s->body.data : "";
	req.body_len = s->body.len;
	req.peer = s->peer;
	req.priv = s;
	memset(&resp, 0, sizeof resp);
	hit->fn(&req, &resp, hit->arg);

	if (resp.status == 0)
		resp.status = 200;
	if (resp.body != NULL && resp.body_len == 0)
		resp.body_len = strlen(resp.body);
	return respond(s, resp.status,
	    resp.content_type != NULL ? resp.content_type : "text/plain",
	    resp.body, resp.body_len, resp.extra_header);
}

static int
on_request(struct lws *wsi, struct session *s, const char *uri, size_t ulen)
{
	char		*uri_ptr, *cl;
	int		 m, uri_len;
	long long	 n;

	session_reset(s);
	s->wsi = wsi;
	m = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
	if (m < 0 || (size_t)m >= nitems(method_names))
		return respond_text(s, 400, "bad request\n");
	s->method = xstrdup(method_names[m]);
	s->path = xstrndup(uri, ulen);
	s->query = header_token(wsi, WSI_TOKEN_HTTP_URI_ARGS);
	lws_get_peer_simple(wsi, s->peer, sizeof s->peer);

	if ((cl = header_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH)) != NULL) {
		n = parse_uint(cl);
		free(cl);
		if (n < 0) {
			s->close_after = 1;
			return respond_text(s, 400, "bad content-length\n");
		}
		s->content_length = n;
		s->has_body = n > 0;
	}
	/*
	 * lws 4.1 does not de-chunk request bodies (it neither delivers them
	 * nor completes the request), so a chunked body would hang or reach a
	 * handler empty.  Webhook senders use Content-Length; ask for it.
	 */
	if ((cl = header_token(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING)) != NULL) {
		free(cl);
		s->close_after = 1;
		return respond_text(s, 411, "content-length required\n");
	}
	/*
	 * Refuse before reading a byte of an announced oversize body.  The
	 * body is still on the wire, so the connection cannot be reused.
	 */
	if (s->content_length > max_body) {
		s->close_after = 1;
		return respond_text(s, 413, "payload too large\n");
	}
	if (s->has_body)
		return 0;	/* dispatched on LWS_CALLBACK_HTTP_BODY_COMPLETION */
	return dispatch(s);
}

static int
on_writeable(struct lws *wsi, struct session *s)
{
	static unsigned char	 stage[LWS_PRE + HTTPD_CHUNK];
	size_t			 n;
	int			 last;

	if (!s->responded)
		return 0;
	n = s->out_len - s->out_off;
	if (n > HTTPD_CHUNK)
		n = HTTPD_CHUNK;
	last = s->out_off + n == s->out_len;
	/* lws may write framing into the LWS_PRE bytes before the data. */
	if (n > 0)
		memcpy(stage + LWS_PRE, s->out + s->out_off, n);
	if (lws_write(wsi, stage + LWS_PRE, n,
	    last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	s->out_off += n;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (s->close_after)
		return -1;
	session_reset(s);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- WebSocket ------------------------------------------------------------ */

void
httpd_ws_route(const char *path, const struct httpd_ws_handler *h, void *arg)
{
	struct route	*r, **pp;

	r = xcalloc(1, sizeof *r);
	r->method = xstrdup("GET");
	r->path = xstrdup(path);
	r->ws = h;
	r->arg = arg;
	for (pp = &routes; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = r;
}

void
httpd_ws_set_data(struct httpd_ws *ws, void *data)
{
	ws->data = data;
}

void *
httpd_ws_data(const struct httpd_ws *ws)
{
	return ws->data;
}

void
httpd_ws_want_write(struct httpd_ws *ws)
{
	lws_callback_on_writable(ws->wsi);
}

int
httpd_ws_send(struct httpd_ws *ws, const char *data, size_t len)
{
	static unsigned char	*stage;
	static size_t		 cap;

	/* lws writes the frame header into the LWS_PRE bytes before data. */
	if (LWS_PRE + len > cap) {
		cap = LWS_PRE + len + 4096;
		stage = xrealloc(stage, cap);
	}
	memcpy(stage + LWS_PRE, data, len);
	if (lws_write(ws->wsi, stage + LWS_PRE, len, LWS_WRITE_TEXT) <
	    (int)len)
		return -1;
	return 0;
}

void
httpd_ws_close(struct httpd_ws *ws)
{
	ws->closing = 1;
	lws_callback_on_writable(ws->wsi);
}

int
httpd_ws_count(void)
{
	return nwss;
}

/*
 * The upgrade request: lws asks before the handshake, with the headers
 * parsed, so a route can refuse on its cookie and Origin.
 */
static int
ws_filter(struct lws *wsi, struct session *s)
{
	struct httpd_request	 req;
	struct httpd_ws		*ws;
	struct route		*r;
	char			*uri, *q;
	int			 rc;

	session_reset(s);
	s->wsi = wsi;
	if ((uri = header_token(wsi, WSI_TOKEN_GET_URI)) == NULL)
		return -1;
	if ((q = strchr(uri, '?')) != NULL)
		*q = '\0';
	for (r = routes; r != NULL; r = r->next)
		if (r->ws != NULL && strcmp(r->path, uri) == 0)
			break;
	if (r == NULL) {
		free(uri);
		return -1;
	}
	s->method = xstrdup("GET");
	s->path = uri;
	s->query = header_token(wsi, WSI_TOKEN_HTTP_URI_ARGS);
	lws_get_peer_simple(wsi, s->peer, sizeof s->peer);

	ws = xcalloc(1, sizeof *ws);
	ws->wsi = wsi;
	ws->path = xstrdup(r->path);
	ws->h = r->ws;
	ws->arg = r->arg;
	memset(&req, 0, sizeof req);
	req.method = s->method;
	req.path = s->path;
	req.query = s->query != NULL ? s->query : "";
	req.body = "";
	req.peer = s->peer;
	req.priv = s;
	rc = r->ws->open(ws, &req, r->arg);
	session_reset(s);
	if (rc != 0) {
		count_status(403);
		free(ws->path);
		free(ws);
		return -1;
	}
	count_status(101);
	ws->next = wss;
	wss = ws;
	nwss++;
	s->ws = ws;
	return 0;
}

static int
ws_receive(struct lws *wsi, struct session *s, const char *in, size_t len)
{
	struct httpd_ws	*ws = s->ws;

	if (ws == NULL || ws->closing)
		return 0;
	if (s->body.len + len > max_body) {
		log_warnx("httpd: WebSocket message over %zu bytes from %s; "
		    "closing", max_body, s->peer);
		return -1;
	}
	buf_add(&s->body, in, len);
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return 0;
	buf_add(&s->body, "", 1);	/* NUL-terminated for convenience */
	if (ws->h != NULL)
		ws->h->message(ws, s->body.data, s->body.len - 1, ws->arg);
	buf_reset(&s->body);
	return 0;
}

static void
ws_closed(struct session *s)
{
	struct httpd_ws	*ws = s->ws, **pp;

	if (ws == NULL)
		return;
	s->ws = NULL;
	for (pp = &wss; *pp != NULL; pp = &(*pp)->next)
		if (*pp == ws) {
			*pp = ws->next;
			nwss--;
			break;
		}
	if (ws->h != NULL && ws->h->close != NULL)
		ws->h->close(ws, ws->arg);
	free(ws->path);
	free(ws);
}

static int
httpd_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct session	*s = user;

	switch (reason) {
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return s != NULL ? ws_filter(wsi, s) : -1;
	case LWS_CALLBACK_ESTABLISHED:
		return 0;
	case LWS_CALLBACK_RECEIVE:
		return ws_receive(wsi, s, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (s->ws == NULL || s->ws->closing)
			return -1;
		if (s->ws->h != NULL && s->ws->h->writable != NULL)
			s->ws->h->writable(s->ws, s->ws->arg);
		return s->ws != NULL && s->ws->closing ? -1 : 0;
	case LWS_CALLBACK_CLOSED:
		ws_closed(s);
		session_reset(s);
		return 0;
	case LWS_CALLBACK_HTTP:
		return on_request(wsi, s, in, len) == 0 ? 0 : -1;
	case LWS_CALLBACK_HTTP_BODY:
		if (s->responded || s->too_big)
			return 0;
		if (s->body.len + len > max_body) {
			/*
			 * lws stops at Content-Length, which was checked, so
			 * this is a safety net: drain the rest, then 413.
			 */
			s->too_big = 1;
			buf_free(&s->body);
			return 0;
		}
		buf_add(&s->body, in, len);
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (s->responded)
			return 0;
		if (s->too_big)
			return respond_text(s, 413, "payload too large\n") == 0 ?
			    0 : -1;
		return dispatch(s) == 0 ? 0 : -1;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(wsi, s);
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (s != NULL) {
			ws_closed(s);
			session_reset(s);
		}
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols httpd_protocols[] = {
	{ "http", httpd_callback, sizeof(struct session), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* 503 while the daemon cannot do its job (bot/metrics.h health_fail). */
static void
healthz(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	resp->content_type = "application/json";
	resp->body = health_render_status(&resp->status);
}

static void
metrics_page(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	resp->content_type = "text/plain; version=0.0.4";
	resp->body = metrics_render();
}

static void
vhost_gone(struct lws_vhost *vh, void *arg)
{
	/* lws frees the vhost itself (context teardown): forget it. */
	if (vh == vhost) {
		vhost = NULL;
		listen_port = -1;
	}
}

static void
httpd_stop_hook(void *arg)
{
	httpd_stop();
}

int
httpd_start(const char *listen, size_t limit, char **cause)
{
	char	*host, *why;
	int	 port;

	if (vhost != NULL) {
		*cause = xasprintf("%s: already listening", listen);
		return -1;
	}
	if (lws_parse_listen(listen, &host, &port) != 0) {
		*cause = xasprintf("%s: bad listen address (want host:port)",
		    listen);
		return -1;
	}
	max_body = limit;
	vhost = lws_listen_vhost("httpd", host, port, httpd_protocols,
	    vhost_gone, NULL, &why);
	free(host);
	if (vhost == NULL) {
		*cause = xasprintf("%s: %s", listen, why);
		free(why);
		return -1;
	}
	listen_port = lws_get_vhost_listen_port(vhost);
	httpd_route("GET", "/healthz", healthz, NULL);
	httpd_route("GET", "/metrics", metrics_page, NULL);
	loop_on_shutdown(httpd_stop_hook, NULL);
	log_info("httpd: listening on %s (port %d)", listen, listen_port);
	return 0;
}

int
httpd_port(void)
{
	return listen_port;
}

void
httpd_stop(void)
{
	struct route	*r;
	struct httpd_ws	*ws;

	/* Their handlers may be gone by the time lws reports the close. */
	for (ws = wss; ws != NULL; ws = ws->next)
		ws->h = NULL;
	if (vhost != NULL) {
		lws_vhost_destroy(vhost);	/* closes its connections */
		vhost = NULL;
	}
	listen_port = -1;
	while ((r = routes) != NULL) {
		routes = r->next;
		route_free(r);
	}
}
