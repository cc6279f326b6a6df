/*
 * web-http — the web chat's way in: the access token and the session
 * cookie, the page and its static files over HTTP, and the WebSocket each
 * page talks over (hello and replay, posts, clicks, reactions, dashboard
 * and diff requests).  The message log it serves is web.c's.
 */
#include "adapters/web.h"
#include "adapters/web-int.h"
#include "bot/httpd.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- the token and the cookie ---------------------------------------------- */

char *
web_token_load(const char *state_dir, char **cause)
{
	unsigned char	 rnd[32];
	char		*path, hex[2 * sizeof rnd + 1], buf[256];
	ssize_t		 n;
	int		 fd;

	path = xasprintf("%s/%s", state_dir, WEB_TOKEN_FILE);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
			n--;
		if (n < 16) {
			*cause = xasprintf("%s: too short for a token", path);
			free(path);
			return NULL;
		}
		buf[n] = '\0';
		free(path);
		return xstrdup(buf);
	}
	if (errno != ENOENT) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0) {
		*cause = xstrdup("web: no randomness for the access token");
		free(path);
		return NULL;
	}
	hex_encode(rnd, sizeof rnd, hex);
	/* O_EXCL with 0600: never readable by others, never overwritten. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600)) == -1 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex)
	    || write(fd, "\n", 1) != 1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		free(path);
		return NULL;
	}
	close(fd);
	log_info("web: access token created in %s", path);
	free(path);
	return xstrdup(hex);
}

/* The cookie is a hash of the token, so a leaked cookie is not the token. */
void
web_cookie_make(struct web *w)
{
	unsigned char	 md[SHA256_DIGEST_LENGTH];
	char		*in;

	in = xasprintf("switchboard web cookie:%s", w->token);
	SHA256((const unsigned char *)in, strlen(in), md);
	free(in);
	hex_encode(md, sizeof md, w->cookie);
}

/* Value of name in a Cookie or query string ("a=1; b=2", "a=1&b=2"). */
static char *
web_param(const char *s, const char *name, const char *sep)
{
	size_t		 nlen = strlen(name), vlen;
	const char	*p = s;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		vlen = strcspn(p, sep);
		if (vlen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=')
			return xstrndup(p + nlen + 1, vlen - nlen - 1);
		p += vlen;
		if (*p != '\0')
			p++;
	}
	return NULL;
}

static int
web_cookie_ok(struct web *w, const struct httpd_request *req)
{
	char	*v;
	int	 ok;

	if ((v = web_param(httpd_header(req, "cookie"), WEB_COOKIE, ";"))
	    == NULL)
		return 0;
	ok = ct_equal(v, strlen(v), w->cookie, strlen(w->cookie));
	free(v);
	return ok;
}

/* The page's own origin only: http://HOST as the request names it. */
static int
web_origin_ok(const struct httpd_request *req)
{
	const char	*origin = httpd_header(req, "origin");
	const char	*host = httpd_header(req, "host");

	if (origin == NULL || host == NULL)
		return 0;
	return (strncmp(origin, "http://", 7) == 0 &&
	    strcmp(origin + 7, host) == 0) ||
	    (strncmp(origin, "https://", 8) == 0 &&
	    strcmp(origin + 8, host) == 0);
}

/* ---- HTTP ------------------------------------------------------------------ */

#define WEB_HEADERS							\
	"X-Content-Type-Options: nosniff\n"				\
	"Referrer-Policy: no-referrer\n"				\
	"Cache-Control: no-store\n"					\
	"X-Frame-Options: DENY"

static const struct web_asset *
web_asset(const char *path)
{
	const struct web_asset	*a;

	for (a = web_assets; a->path != NULL; a++)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}

void
web_page(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	static char		 headers[1024];
	struct web		*w = arg;
	const struct web_asset	*a = web_asset("/index.html");
	const char		*host = httpd_header(req, "host");
	char			*t;
	int			 ok;

	resp->extra_header = WEB_HEADERS;
	if ((t = web_param(req->query, "token", "&")) != NULL) {
		ok = ct_equal(t, strlen(t), w->token, strlen(w->token));
		free(t);
		if (!ok) {
			resp->status = 403;
			resp->body = xstrdup("wrong token\n");
			log_info("web: wrong token from %s", req->peer);
			return;
		}
		/* Drops the token from the address bar and the history. */
		snprintf(headers, sizeof headers, "Location: /\nSet-Cookie: "
		    WEB_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/; "
		    "Max-Age=2592000\n" WEB_HEADERS, w->cookie);
		resp->extra_header = headers;
		resp->status = 303;
		resp->body = xstrdup("signed in\n");
		return;
	}
	if (!web_cookie_ok(w, req)) {
		resp->status = 401;
		resp->body = xstrdup("Switchboard web chat: open the address "
		    "printed at start (it ends with ?token=...), or take the "
		    "token from state_dir/web-token.\n");
		return;
	}
	/* connect-src names ws: explicitly; older engines do not count it
	 * as 'self'. */
	snprintf(headers, sizeof headers, "Content-Security-Policy: "
	    "default-src 'none'; script-src 'self'; style-src 'self'; "
	    "img-src 'self'; connect-src 'self' ws://%s wss://%s; "
	    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'\n"
	    WEB_HEADERS, host != NULL ? host : "localhost",
	    host != NULL ? host : "localhost");
	resp->extra_header = headers;
	resp->content_type = a->type;
	resp->body = xmalloc(a->len + 1);
	memcpy(resp->body, a->data, a->len);
	resp->body[a->len] = '\0';
	resp->body_len = a->len;
}

void
web_static(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	const struct web_asset	*a = web_asset(req->path);

	resp->extra_header = WEB_HEADERS;
	if (a == NULL) {
		resp->status = 404;
		resp->body = xstrdup("not found\n");
		return;
	}
	resp->content_type = a->type;
	resp->body = xmalloc(a->len + 1);
	memcpy(resp->body, a->data, a->len);
	resp->body_len = a->len;
}

/* ---- WebSocket: pages ------------------------------------------------------ */

static struct web_conn *
web_conn_by_id(struct web *w, uint64_t id)
{
	struct web_conn	*c;

	for (c = w->conns; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

void
web_conn_free(struct web_conn *c)
{
	struct web_frame	*f;

	while ((f = c->out) != NULL) {
		c->out = f->next;
		free(f->data);
		free(f);
	}
	free(c);
}

static int
web_ws_open(struct httpd_ws *ws, const struct httpd_request *req, void *arg)
{
	struct web	*w = arg;
	struct web_conn	*c;

	if (!web_origin_ok(req)) {
		log_info("web: WebSocket from %s refused: origin %s is not "
		    "this page's", req->peer,
		    httpd_header(req, "origin") != NULL ?
		    httpd_header(req, "origin") : "(none)");
		return -1;
	}
	if (!web_cookie_ok(w, req)) {
		log_info("web: WebSocket from %s refused: not signed in",
		    req->peer);
		return -1;
	}
	c = xcalloc(1, sizeof *c);
	c->w = w;
	c->ws = ws;
	c->id = ++w->next_conn;
	c->out_tail = &c->out;
	c->next = w->conns;
	w->conns = c;
	httpd_ws_set_data(ws, c);
	return 0;
}

static void
web_ws_close(struct httpd_ws *ws, void *arg)
{
	struct web	*w = arg;
	struct web_conn	*c = httpd_ws_data(ws), **pp;

	if (c == NULL)
		return;
	for (pp = &w->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	web_conn_free(c);
}

/* Sends one frame: a queued reply first, then the changes after cursor. */
static void
web_ws_writable(struct httpd_ws *ws, void *arg)
{
	struct web		*w = arg;
	struct web_conn		*c = httpd_ws_data(ws);
	struct web_frame	*f;
	struct web_msg		*m;
	struct buf		 b = { 0 };
	int			 rc, first;

	if (c == NULL)
		return;
	if ((f = c->out) != NULL) {
		if ((c->out = f->next) == NULL)
			c->out_tail = &c->out;
		rc = httpd_ws_send(ws, f->data, strlen(f->data));
		free(f->data);
		free(f);
		if (rc != 0)
			httpd_ws_close(ws);
		else if (c->out != NULL || (c->hello && w->tail != NULL &&
		    w->tail->seq > c->cursor))
			httpd_ws_want_write(ws);
		return;
	}
	if (!c->hello || w->tail == NULL || w->tail->seq <= c->cursor)
		return;
	/* Seq grows towards the tail; live pages are a step or two behind. */
	for (m = w->tail; m->prev != NULL && m->prev->seq > c->cursor;
	    m = m->prev)
		;
	buf_adds(&b, "{\"type\":\"msgs\",\"items\":[");
	for (first = 1; m != NULL && b.len < WEB_BATCH; m = m->next) {
		if (m->json == NULL)
			continue;
		if (!first)
			buf_adds(&b, ",");
		first = 0;
		buf_add(&b, m->json, m->json_len);
		c->cursor = m->seq;
	}
	buf_adds(&b, "]}");
	rc = httpd_ws_send(ws, b.data, b.len);
	buf_free(&b);
	if (rc != 0)
		httpd_ws_close(ws);
	else if (w->tail->seq > c->cursor)
		httpd_ws_want_write(ws);
}

static void
web_hello(struct web *w, struct web_conn *c, json_t *msg)
{
	json_t		*j = json_object_get(msg, "last");
	const char	*epoch = json_string_value(json_object_get(msg,
			    "epoch"));
	json_int_t	 last = json_is_integer(j) ? json_integer_value(j) : 0;
	char		*author;
	int		 reset;

	/*
	 * Resume only from a cursor this process handed out and whose
	 * changes are all still here; otherwise the page starts over.
	 */
	reset = last < 0 || epoch == NULL || strcmp(epoch, w->epoch) != 0 ||
	    (uint64_t)last > w->seq || (last > 0 &&
	    (uint64_t)last < w->lost_seq);
	c->cursor = reset ? 0 : (uint64_t)last;
	c->hello = 1;
	author = xasprintf("web:%s", w->cfg->web.user);
	web_conn_push_json(c, json_pack("{s:s, s:s, s:b, s:s, s:s}",
	    "type", "welcome", "epoch", w->epoch, "reset", reset,
	    "user", author, "self", WEB_SELF));
	free(author);
}

static void
web_error(struct web_conn *c, const char *text)
{
	web_conn_push_json(c, json_pack("{s:s, s:s}", "type", "error",
	    "text", text));
}

static void
web_post(struct web *w, struct web_conn *c, json_t *msg)
{
	const char		*text, *thread, *reply_to;
	struct web_msg		*m, *root = NULL, *to = NULL;
	struct chat_event	 ev;
	char			 sid[32], *author;

	text = json_string_value(json_object_get(msg, "text"));
	thread = json_string_value(json_object_get(msg, "thread"));
	reply_to = json_string_value(json_object_get(msg, "reply_to"));
	if (text == NULL || text[strspn(text, " \t\r\n")] == '\0') {
		web_error(c, "empty message");
		return;
	}
	if (strlen(text) > WEB_MAX_TEXT) {
		web_error(c, "message too long");
		return;
	}
	if (thread != NULL && (root = web_msg_lookup(w, thread)) == NULL) {
		web_error(c, "no such thread");
		return;
	}
	if (reply_to != NULL && ((to = web_msg_lookup(w, reply_to)) == NULL ||
	    root == NULL || strcmp(json_string_value(json_object_get(to->obj,
	    "thread")), thread) != 0)) {
		web_error(c, "no such message in this thread");
		return;
	}
	author = xasprintf("web:%s", w->cfg->web.user);
	m = web_msg_new(w, root != NULL ? root->id : 0,
	    root != NULL ? root->channel : NULL, author, text, reply_to);
	free(author);
	/* Before the message itself: the page opens the new thread. */
	snprintf(sid, sizeof sid, "%" PRIu64, m->id);
	web_conn_push_json(c, json_pack("{s:s, s:s, s:s, s:s?}", "type",
	    "posted", "id", sid, "thread", json_string_value(json_object_get(
	    m->obj, "thread")), "nonce", json_string_value(json_object_get(msg,
	    "nonce"))));
	web_changed(w, m);

	memset(&ev, 0, sizeof ev);
	ev.kind = CHAT_EV_MESSAGE;
	ev.channel = m->channel;
	ev.thread = thread;
	ev.msg_id = sid;
	ev.sender = w->cfg->web.user;
	ev.sender_name = w->cfg->web.user;
	ev.text = text;
	ev.reply_to = reply_to;
	ev.mentioned = 1;	/* the page is a conversation with the bot */
	chat_on_event(&w->hdr, &ev);
}

static void
web_click(struct web *w, struct web_conn *c, json_t *msg)
{
	struct chat_event	 ev;
	struct web_msg		*m;
	const char		*q, *choice;

	m = web_msg_lookup(w, json_string_value(json_object_get(msg, "msg")));
	choice = json_string_value(json_object_get(msg, "choice"));
	if (m == NULL || choice == NULL || (q = json_string_value(
	    json_object_get(m->obj, "question"))) == NULL) {
		web_error(c, "no such question");
		return;
	}
	memset(&ev, 0, sizeof ev);
	ev.kind = CHAT_EV_CLICK;
	ev.channel = m->channel;
	ev.thread = json_string_value(json_object_get(m->obj, "thread"));
	ev.sender = w->cfg->web.user;
	ev.sender_name = w->cfg->web.user;
	ev.question = q;	/* from our message: a page cannot aim elsewhere */
	ev.choice = choice;
	chat_on_event(&w->hdr, &ev);
}

static void
web_user_react(struct web *w, struct web_conn *c, json_t *msg)
{
	struct chat_event	 ev;
	struct web_msg		*m;
	const char		*emoji;
	char			*who;

	m = web_msg_lookup(w, json_string_value(json_object_get(msg, "msg")));
	emoji = json_string_value(json_object_get(msg, "emoji"));
	if (m == NULL || emoji == NULL || *emoji == '\0' ||
	    strlen(emoji) > 32) {
		web_error(c, "cannot react to that");
		return;
	}
	who = xasprintf("web:%s", w->cfg->web.user);
	web_react(m, emoji, who);
	free(who);
	web_changed(w, m);
	memset(&ev, 0, sizeof ev);
	ev.kind = CHAT_EV_REACTION;
	ev.channel = m->channel;
	ev.thread = json_string_value(json_object_get(m->obj, "thread"));
	ev.sender = w->cfg->web.user;
	ev.target = json_string_value(json_object_get(m->obj, "id"));
	ev.emoji = emoji;
	chat_on_event(&w->hdr, &ev);
}

struct web_diff_wait {
	struct web	*w;
	uint64_t	 conn;
};

static void
web_diff_done(json_t *reply, void *arg)
{
	struct web_diff_wait	*dw = arg;
	struct web		*w = dw->w;
	struct web_conn		*c;

	/* The page may have gone (or the adapter stopped) meanwhile. */
	if (!w->destroyed && (c = web_conn_by_id(w, dw->conn)) != NULL)
		web_conn_push_json(c, reply);
	else
		json_decref(reply);
	free(dw);
	w->pending--;
	web_settle(w);
}

static void
web_ws_message(struct httpd_ws *ws, const char *data, size_t len, void *arg)
{
	struct web		*w = arg;
	struct web_conn		*c = httpd_ws_data(ws);
	struct web_diff_wait	*dw;
	json_t			*msg, *r;
	const char		*type;
	json_int_t		 id;

	if (c == NULL)
		return;
	if ((msg = json_loadb(data, len, 0, NULL)) == NULL ||
	    (type = json_string_value(json_object_get(msg, "type"))) == NULL) {
		web_error(c, "not a JSON message with a type");
		json_decref(msg);
		return;
	}
	id = json_integer_value(json_object_get(msg, "id"));
	if (strcmp(type, "hello") == 0)
		web_hello(w, c, msg);
	else if (strcmp(type, "agents") == 0)
		web_conn_push_json(c, json_pack("{s:s, s:o}", "type", "agents",
		    "items", web_api_agents(w->cfg, 500)));
	else if (strcmp(type, "agent") == 0) {
		if ((r = web_api_agent(w, w->cfg, id)) == NULL)
			web_error(c, "no such agent");
		else
			web_conn_push_json(c, r);
	} else if (strcmp(type, "diff") == 0) {
		dw = xcalloc(1, sizeof *dw);
		dw->w = w;
		dw->conn = c->id;
		w->pending++;
		web_api_diff(w->cfg, id, web_diff_done, dw);
	} else if (w->stopping)
		web_error(c, "switchboard is stopping");
	else if (strcmp(type, "post") == 0)
		web_post(w, c, msg);
	else if (strcmp(type, "click") == 0)
		web_click(w, c, msg);
	else if (strcmp(type, "react") == 0)
		web_user_react(w, c, msg);
	else
		web_error(c, "unknown message type");
	json_decref(msg);
}

const struct httpd_ws_handler web_ws_handler = {
	.open = web_ws_open,
	.message = web_ws_message,
	.writable = web_ws_writable,
	.close = web_ws_close,
};

