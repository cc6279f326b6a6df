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

#define WEB_CHANNEL	"web"		/* threads opened elsewhere */
#define WEB_SELF	"switchboard"
#define WEB_KV_NEXT	"web.next_id"
#define WEB_TOKEN_FILE	"web-token"
#define WEB_COOKIE	"sb_web"
#define WEB_MAX_MSGS	20000		/* retained message states */
#define WEB_MAX_TEXT	65536
#define WEB_BATCH	(256 * 1024)	/* bytes of replay per frame */
#define WEB_HASH	4096
#define WEB_CARD_LOG	200		/* step lines kept per card */

struct web_msg {
	uint64_t	 id;
	uint64_t	 seq;		/* of its last change */
	json_t		*obj;		/* the state pages get */
	char		*json;		/* obj at seq, serialised once for all */
	size_t		 json_len;
	json_t		*log;		/* card: every "• step" line seen */
	char		*channel;	/* of its thread */
	struct web_msg	*prev, *next;	/* by seq, oldest first */
	struct web_msg	*hnext;
};

struct web_frame {
	char		*data;
	struct web_frame *next;
};

struct web_conn {
	struct web		*w;
	struct httpd_ws		*ws;
	uint64_t		 id;		/* for replies that come later */
	uint64_t		 cursor;	/* page has every change <= this */
	int			 hello;
	struct web_frame	*out, **out_tail;
	struct web_conn		*next;
};

struct web {
	struct adapter		 hdr;		/* first: the core casts */
	const struct config	*cfg;
	char			*token;
	char			 cookie[2 * SHA256_DIGEST_LENGTH + 1];
	char			 epoch[17];
	uint64_t		 next_id;
	uint64_t		 seq;
	uint64_t		 lost_seq;	/* last change evicted */
	struct web_msg		*head, *tail;
	struct web_msg		*hash[WEB_HASH];
	size_t			 nmsgs;
	struct web_conn		*conns;
	uint64_t		 next_conn;
	int			 started;
	int			 stopping;
	int			 destroyed;
	unsigned		 pending;	/* deferred reports, diff jobs */
};

static const struct adapter_caps web_caps = {
	.threads = 1,
	.edits = 1,
	.reactions = 1,
	.buttons = 1,
	.reaction_choices = 0,
	.max_text = WEB_MAX_TEXT,
	.min_interval_ms = 0,
};

static void	web_settle(struct web *);

/* ---- the message log ----------------------------------------------------- */

static struct web_msg *
web_msg_find(struct web *w, uint64_t id)
{
	struct web_msg	*m;

	for (m = w->hash[id % WEB_HASH]; m != NULL; m = m->hnext)
		if (m->id == id)
			return m;
	return NULL;
}

static struct web_msg *
web_msg_lookup(struct web *w, const char *id)
{
	long long	 n = id != NULL ? parse_uint(id) : -1;

	return n > 0 ? web_msg_find(w, (uint64_t)n) : NULL;
}

static void
web_unlink(struct web *w, struct web_msg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		w->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		w->tail = m->prev;
	m->prev = m->next = NULL;
}

static void
web_msg_free(struct web_msg *m)
{
	json_decref(m->obj);
	json_decref(m->log);
	free(m->channel);
	free(m->json);
	free(m);
}

static void
web_conn_push(struct web_conn *c, char *data)
{
	struct web_frame	*f;

	f = xcalloc(1, sizeof *f);
	f->data = data;
	*c->out_tail = f;
	c->out_tail = &f->next;
	httpd_ws_want_write(c->ws);
}

static void
web_conn_push_json(struct web_conn *c, json_t *j)
{
	char	*s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (s != NULL)
		web_conn_push(c, s);
}

static void
web_evict(struct web *w)
{
	struct web_msg	*m = w->head, **pp;
	struct web_conn	*c;

	web_unlink(w, m);
	for (pp = &w->hash[m->id % WEB_HASH]; *pp != m; pp = &(*pp)->hnext)
		;
	*pp = m->hnext;
	w->nmsgs--;
	w->lost_seq = m->seq;
	/* A page that had not seen this change never will: start it over. */
	for (c = w->conns; c != NULL; c = c->next) {
		if (c->hello && c->cursor < m->seq) {
			c->cursor = 0;
			web_conn_push_json(c, json_pack("{s:s, s:s, s:b}",
			    "type", "welcome", "epoch", w->epoch,
			    "reset", 1));
		}
	}
	web_msg_free(m);
}

/*
 * The message changed: new seq, serialised once, moved to the tail, and
 * every page that said hello is woken to send it.
 */
static void
web_changed(struct web *w, struct web_msg *m)
{
	struct web_conn	*c;

	m->seq = ++w->seq;
	json_object_set_new(m->obj, "seq", json_integer((json_int_t)m->seq));
	free(m->json);
	m->json = json_dumps(m->obj, JSON_COMPACT);
	m->json_len = m->json != NULL ? strlen(m->json) : 0;
	if (m->prev != NULL || m->next != NULL || w->head == m)
		web_unlink(w, m);
	m->prev = w->tail;
	if (w->tail != NULL)
		w->tail->next = m;
	else
		w->head = m;
	w->tail = m;
	for (c = w->conns; c != NULL; c = c->next)
		if (c->hello)
			httpd_ws_want_write(c->ws);
}

static uint64_t
web_next_id(struct web *w)
{
	uint64_t	 id = w->next_id++;
	char		 v[32];

	/* Persisted before the id is used, so a restart never reuses it. */
	snprintf(v, sizeof v, "%" PRIu64, w->next_id);
	if (store_kv_set(WEB_KV_NEXT, v) == -1)
		log_warnx("web: cannot persist %s", WEB_KV_NEXT);
	return id;
}

/* A new message in thread (0: it opens its own). */
static struct web_msg *
web_msg_new(struct web *w, uint64_t thread, const char *channel,
    const char *author, const char *text, const char *reply_to)
{
	struct web_msg	*m;
	char		 sid[32], sthread[32];

	while (w->nmsgs >= WEB_MAX_MSGS)
		web_evict(w);
	m = xcalloc(1, sizeof *m);
	m->id = web_next_id(w);
	snprintf(sid, sizeof sid, "%" PRIu64, m->id);
	snprintf(sthread, sizeof sthread, "%" PRIu64,
	    thread != 0 ? thread : m->id);
	m->obj = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o}",
	    "id", sid, "thread", sthread, "author", author,
	    "ts", (json_int_t)wall_ms(), "text", text, "reactions",
	    json_object());
	if (reply_to != NULL)
		json_object_set_new(m->obj, "reply_to", json_string(reply_to));
	/*
	 * A thread the page opens is a channel of its own ("web-7"): the
	 * outbox serialises ops per channel, so one shared channel would
	 * make every card in every thread wait for each other's edits.
	 */
	m->channel = channel != NULL ? xstrdup(channel) :
	    xasprintf(WEB_CHANNEL "-%" PRIu64, m->id);
	m->hnext = w->hash[m->id % WEB_HASH];
	w->hash[m->id % WEB_HASH] = m;
	w->nmsgs++;
	return m;
}

/* Bot message text and buttons, as the op says. */
static void
web_msg_set(struct web_msg *m, const struct chat_op *op)
{
	const char *const	*ch;
	json_t			*a;

	json_object_set_new(m->obj, "text", json_string(op->text != NULL ?
	    op->text : ""));
	if (op->question != NULL)
		json_object_set_new(m->obj, "question",
		    json_string(op->question));
	if (op->choices != NULL && op->choices[0] != NULL) {
		a = json_array();
		for (ch = op->choices; *ch != NULL; ch++)
			json_array_append_new(a, json_string(*ch));
		json_object_set_new(m->obj, "choices", a);
	} else if (op->kind == CHAT_OP_EDIT && op->closed)
		json_object_del(m->obj, "choices");
	if (op->kind == CHAT_OP_EDIT) {
		json_object_set_new(m->obj, "closed", json_boolean(op->closed));
		json_object_set_new(m->obj, "edited",
		    json_integer((json_int_t)wall_ms()));
	}
}

static void
web_msg_file(struct web_msg *m, const struct chat_op *op)
{
	json_t	*content;
	char	*fixed;
	size_t	 i;

	json_object_set_new(m->obj, "text", json_string(op->title != NULL ?
	    op->title : op->filename));
	if ((content = json_stringn(op->data, op->data_len)) == NULL) {
		fixed = xmalloc(op->data_len + 1);
		for (i = 0; i < op->data_len; i++)
			fixed[i] = (op->data[i] & 0x80) || op->data[i] == '\0' ?
			    '?' : op->data[i];
		fixed[op->data_len] = '\0';
		content = json_string(fixed);
		free(fixed);
	}
	json_object_set_new(m->obj, "file", json_pack("{s:s, s:I, s:o}",
	    "name", op->filename, "size", (json_int_t)op->data_len,
	    "content", content));
}

/* Cards show the last few steps; the agent view wants all of them. */
static void
web_card_remember(struct web_msg *m, const char *text)
{
	const char	*p, *nl;
	char		*line;
	size_t		 i, n;
	int		 seen;

	if (text == NULL || text[0] != '#')
		return;
	if (m->log == NULL)
		m->log = json_array();
	for (p = text; (p = strstr(p, "\n• ")) != NULL; p = nl) {
		p += 1;
		nl = strchr(p, '\n');
		n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		line = xstrndup(p + strlen("• "), n - strlen("• "));
		/* Steps repeat across edits; a card shows a sliding window. */
		seen = 0;
		for (i = json_array_size(m->log); i-- > 0 &&
		    json_array_size(m->log) - i <= 8;)
			if (strcmp(json_string_value(json_array_get(m->log, i)),
			    line) == 0)
				seen = 1;
		if (!seen)
			json_array_append_new(m->log, json_string(line));
		free(line);
		if (json_array_size(m->log) > WEB_CARD_LOG)
			json_array_remove(m->log, 0);
		if (nl == NULL)
			break;
	}
}

json_t *
web_card_log(struct web *w, const char *msg_id)
{
	struct web_msg	*m = w != NULL ? web_msg_lookup(w, msg_id) : NULL;

	return m != NULL ? m->log : NULL;
}

const char *
web_card_text(struct web *w, const char *msg_id)
{
	struct web_msg	*m = w != NULL ? web_msg_lookup(w, msg_id) : NULL;

	return m != NULL ? json_string_value(json_object_get(m->obj, "text")) :
	    NULL;
}

static void
web_react(struct web_msg *m, const char *emoji, const char *who)
{
	json_t	*r = json_object_get(m->obj, "reactions"), *users;
	size_t	 i;

	if ((users = json_object_get(r, emoji)) == NULL) {
		users = json_array();
		json_object_set_new(r, emoji, users);
	}
	for (i = 0; i < json_array_size(users); i++)
		if (strcmp(json_string_value(json_array_get(users, i)),
		    who) == 0)
			return;
	json_array_append_new(users, json_string(who));
}

/* ---- the token and the cookie ---------------------------------------------- */

static char *
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
static void
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

static void
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

static void
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

static void
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

static const struct httpd_ws_handler web_ws_handler = {
	.open = web_ws_open,
	.message = web_ws_message,
	.writable = web_ws_writable,
	.close = web_ws_close,
};

/* ---- adapter_ops ----------------------------------------------------------- */

struct web_report {
	struct web	*w;
	struct chat_op	*op;
	char		*ref;
	const char	*error;
};

static void
web_report_run(void *arg)
{
	struct web_report	*r = arg;
	struct web		*w = r->w;

	if (r->error != NULL)
		chat_op_failed(r->op, -1, 1, r->error);
	else
		chat_op_done(r->op, r->ref);
	free(r->ref);
	free(r);
	/* The upcall may have destroyed the adapter: settle frees then. */
	w->pending--;
	web_settle(w);
}

/* Never from inside send(): the outbox is still in its call. */
static void
web_report(struct web *w, struct chat_op *op, char *ref, const char *error)
{
	struct web_report	*r;

	r = xcalloc(1, sizeof *r);
	r->w = w;
	r->op = op;
	r->ref = ref;
	r->error = error;
	w->pending++;
	loop_defer(web_report_run, r);
}

static void
web_free(struct web *w)
{
	struct web_msg	*m;
	struct web_conn	*c;

	while ((m = w->head) != NULL) {
		w->head = m->next;
		web_msg_free(m);
	}
	while ((c = w->conns) != NULL) {
		w->conns = c->next;
		web_conn_free(c);
	}
	free(w->token);
	free(w);
}

static void
web_settle(struct web *w)
{
	if (w->destroyed && w->pending == 0)
		web_free(w);
}

static struct adapter *
web_create(const struct config *cfg, char **cause)
{
	struct web	*w;
	unsigned char	 rnd[8];
	char		*v;
	long long	 n;

	w = xcalloc(1, sizeof *w);
	w->hdr.ops = &web_ops;
	w->hdr.state = "created";
	w->hdr.refs = 1;
	w->cfg = cfg;
	if ((w->token = web_token_load(cfg->state_dir, cause)) == NULL) {
		free(w);
		return NULL;
	}
	web_cookie_make(w);
	if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0)
		fatalx("web: no randomness");
	hex_encode(rnd, sizeof rnd, w->epoch);
	w->next_id = 1;
	if ((v = store_kv_get(WEB_KV_NEXT)) != NULL) {
		if ((n = parse_uint(v)) > 0)
			w->next_id = (uint64_t)n;
		free(v);
	}
	return &w->hdr;
}

static int
web_start(struct adapter *a, char **cause)
{
	struct web		*w = (struct web *)a;
	const struct web_asset	*as;
	const char		*listen = w->cfg->http_listen, *colon;
	char			*host;

	if (httpd_port() < 0) {
		*cause = xstrdup("web: the HTTP server is not listening "
		    "(http.listen)");
		return -1;
	}
	httpd_route("GET", "/", web_page, w);
	for (as = web_assets; as->path != NULL; as++)
		if (strcmp(as->path, "/index.html") != 0)
			httpd_route("GET", as->path, web_static, w);
	httpd_ws_route("/ws", &web_ws_handler, w);
	w->started = 1;
	colon = strrchr(listen, ':');
	host = colon != NULL && colon != listen ? xstrndup(listen,
	    (size_t)(colon - listen)) : xstrdup("localhost");
	/*
	 * Like Jupyter: the way in, once per start, on stderr (the console
	 * owns stdout, and the log must never hold a secret).
	 */
	fprintf(stderr, "switchboard: web chat at http://%s:%d/?token=%s\n",
	    host, httpd_port(), w->token);
	fflush(stderr);
	log_info("web: serving the web chat at http://%s:%d/", host,
	    httpd_port());
	free(host);
	w->hdr.state = "connected";
	chat_on_state(a, "connected");
	return 0;
}

static void
web_unroute(struct web *w)
{
	const struct web_asset	*as;

	/* Detaches our WebSockets too: no callbacks reach us after this. */
	httpd_unroute("/ws");
	httpd_unroute("/");
	for (as = web_assets; as->path != NULL; as++)
		httpd_unroute(as->path);
}

static void
web_stop(struct adapter *a)
{
	struct web	*w = (struct web *)a;

	if (w->stopping)
		return;
	/* Pages stay open to watch shutdown; new input is refused. */
	w->stopping = 1;
	w->hdr.state = "stopped";
	chat_on_state(a, "stopped");
}

static void
web_destroy(struct adapter *a)
{
	struct web	*w = (struct web *)a;

	if (w == NULL)
		return;
	if (w->started)
		web_unroute(w);
	w->destroyed = 1;
	web_settle(w);
}

static const struct adapter_caps *
web_caps_get(struct adapter *a)
{
	return &web_caps;
}

static int
web_send(struct adapter *a, struct chat_op *op)
{
	struct web	*w = (struct web *)a;
	struct web_msg	*m;
	long long	 t = 0;

	if (!w->started || w->destroyed)
		return -1;
	switch (op->kind) {
	case CHAT_OP_POST:
		if (op->thread != NULL && (t = parse_uint(op->thread)) <= 0)
			break;
		m = web_msg_new(w, (uint64_t)t, op->channel != NULL ?
		    op->channel : WEB_CHANNEL, WEB_SELF, "", NULL);
		web_msg_set(m, op);
		web_card_remember(m, op->text);
		web_changed(w, m);
		web_report(w, op, xasprintf("%" PRIu64, m->id), NULL);
		return 0;
	case CHAT_OP_UPLOAD:
		/*
		 * A file in the thread (a long diff, a log): the page shows
		 * its text in a <pre>; bytes that are not UTF-8 are replaced,
		 * jansson would refuse them.
		 */
		if (op->thread != NULL && (t = parse_uint(op->thread)) <= 0)
			break;
		m = web_msg_new(w, (uint64_t)t, op->channel != NULL ?
		    op->channel : WEB_CHANNEL, WEB_SELF, "", NULL);
		web_msg_file(m, op);
		web_changed(w, m);
		web_report(w, op, xasprintf("%" PRIu64, m->id), NULL);
		return 0;
	case CHAT_OP_EDIT:
	case CHAT_OP_REACT:
		/* Evicted or from before a restart: nothing left to change. */
		if ((m = web_msg_lookup(w, op->target)) == NULL) {
			web_report(w, op, NULL, NULL);
			return 0;
		}
		if (op->kind == CHAT_OP_EDIT) {
			web_msg_set(m, op);
			web_card_remember(m, op->text);
		} else
			web_react(m, op->emoji != NULL ? op->emoji : "?",
			    WEB_SELF);
		web_changed(w, m);
		web_report(w, op, NULL, NULL);
		return 0;
	}
	web_report(w, op, NULL, "web: op without a target or of unknown kind");
	return 0;
}

static const char *
web_self_id(struct adapter *a)
{
	return WEB_SELF;
}

const struct adapter_ops web_ops = {
	.name = "web",
	.create = web_create,
	.start = web_start,
	.stop = web_stop,
	.destroy = web_destroy,
	.caps = web_caps_get,
	.send = web_send,
	.self_id = web_self_id,
};
