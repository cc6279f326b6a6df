/*
 * web — the web chat adapter: the adapter vtable and the message log pages
 * replay from (every message state, by sequence number, bounded).  The
 * HTTP, WebSocket and sign-in side is web-http.c; the dashboard and agent
 * view web-api.c.
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


static const struct adapter_caps web_caps = {
	.threads = 1,
	.edits = 1,
	.reactions = 1,
	.buttons = 1,
	.reaction_choices = 0,
	.max_text = WEB_MAX_TEXT,
	.min_interval_ms = 0,
};

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

struct web_msg *
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

void
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
void
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
struct web_msg *
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

void
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

void
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
