#include "bot/ctl.h"
#include "bot/ctl-int.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void	conn_process(struct ctl_conn *);
static void	conn_backlog(struct ctl_conn *);

void
ctl_server_maybe_free(struct ctl_server *srv)
{
	struct ctl_op	*op;

	if (!srv->closing || !srv->listener_closed || srv->nconns != 0)
		return;
	while ((op = LIST_FIRST(&srv->ops)) != NULL) {
		LIST_REMOVE(op, entry);
		free(op->name);
		free(op);
	}
	free(srv->path);
	free(srv);
}

static void
conn_free(struct ctl_conn *c)
{
	struct ctl_server	*srv = c->srv;

	log_debug("ctl: connection %u closed", c->num);
	LIST_REMOVE(c, entry);
	srv->nconns--;
	buf_free(&c->in);
	free(c);
	ctl_server_maybe_free(srv);
}

static void
conn_closed(uv_handle_t *h)
{
	conn_free(h->data);
}

static void
conn_shut(uv_shutdown_t *req, int status)
{
	if (!uv_is_closing((uv_handle_t *)req->handle))
		uv_close((uv_handle_t *)req->handle, conn_closed);
}

/*
 * Every pending request loses its peer.  Each is unlinked before its owner
 * hears of it, because on_gone may answer it (freeing it), answer another
 * request of this connection, or close the whole server.
 */
static void
conn_detach(struct ctl_conn *c)
{
	struct ctl_req	*r;
	ctl_gone_cb	 cb;

	while ((r = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, r, entry);
		r->conn = NULL;
		if ((cb = r->on_gone) != NULL) {
			r->on_gone = NULL;
			cb(r, r->gone_arg);	/* r may be gone now */
		}
	}
}

/*
 * flush: send what is queued, then EOF (after an error line we want read);
 * otherwise close at once.  Either way no more input is taken.  The memory
 * stays until libuv's close callback, so callers up the stack may still look
 * at c->closing.
 */
void
ctl_conn_close(struct ctl_conn *c, int flush)
{
	uv_handle_t	*h = (uv_handle_t *)&c->pipe;

	if (!c->closing) {
		c->closing = 1;
		if (c->x == NULL && !uv_is_closing(h))
			uv_read_stop((uv_stream_t *)&c->pipe);
		conn_detach(c);		/* may re-enter ctl_conn_close */
	}
	if (c->x != NULL) {
		/* The transport frees c later, through ctl_conn_gone(). */
		if (!c->xclosed) {
			c->xclosed = 1;
			c->x->close(c->xarg, flush);
		}
		return;
	}
	if (uv_is_closing(h))
		return;
	if (flush) {
		if (c->shutting)
			return;
		c->shutting = 1;
		if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->pipe,
		    conn_shut) == 0)
			return;
	}
	uv_close(h, conn_closed);
}

void
ctl_conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct ctl_conn	*c = h->data;

	b->base = c->srv->rbuf;
	b->len = sizeof c->srv->rbuf;
}

void
ctl_conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct ctl_conn	*c = s->data;

	if (n == 0)
		return;
	if (n < 0) {
		/*
		 * EOF means gone: our clients never half-close, and an agent
		 * killed during "ask" must be noticed now, not when the
		 * answer fails to write.
		 */
		if (n != UV_EOF)
			log_debug("ctl: connection %u: %s", c->num,
			    uv_strerror((int)n));
		if (c->in.len != 0)
			log_debug("ctl: connection %u: %zu bytes without "
			    "newline at EOF dropped", c->num, c->in.len);
		ctl_conn_close(c, 0);
		return;
	}
	buf_add(&c->in, b->base, (size_t)n);
	conn_process(c);
}

static size_t
conn_queued(struct ctl_conn *c)
{
	if (c->x != NULL)
		return c->x->queued(c->xarg);
	return uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe);
}

/* The backlog that paused c's input has drained: take input again. */
static void
conn_maybe_resume(struct ctl_conn *c)
{
	if (!c->paused || c->closing || conn_queued(c) > CTL_WQ_LOW)
		return;
	c->paused = 0;
	conn_process(c);
	if (c->closing || c->paused)
		return;
	if (c->x != NULL)
		c->x->pause(c->xarg, 0);
	else
		uv_read_start((uv_stream_t *)&c->pipe, ctl_conn_alloc, ctl_conn_read);
}

static void
conn_written(uv_write_t *w, int status)
{
	struct ctl_conn	*c = w->handle->data;
	uv_stream_t	*s = w->handle;

	free(w->data);
	free(w);
	if (uv_is_closing((uv_handle_t *)s))
		return;
	if (status < 0) {
		log_debug("ctl: connection %u: write: %s", c->num,
		    uv_strerror(status));
		ctl_conn_close(c, 0);
		return;
	}
	conn_maybe_resume(c);
}

/* Queues one reply line; reply is stolen. */
static void
conn_send(struct ctl_conn *c, json_t *reply)
{
	uv_stream_t	*s = (uv_stream_t *)&c->pipe;
	uv_write_t	*w;
	uv_buf_t	 b;
	json_t		*small;
	char		*line;
	size_t		 len;
	int		 r;

	/* After uv_shutdown libuv refuses writes; nobody would read them. */
	if (c->closing) {
		json_decref(reply);
		return;
	}
	line = json_dumps(reply, JSON_COMPACT);
	if (line != NULL && strlen(line) > CTL_MAX_LINE) {
		log_warnx("ctl: connection %u: reply of %zu bytes too large",
		    c->num, strlen(line));
		free(line);
		small = json_pack("{s:i,s:O?,s:b,s:s}", "v", CTL_VERSION,
		    "id", json_object_get(reply, "id"), "ok", 0,
		    "error", "reply too large");
		line = json_dumps(small, JSON_COMPACT);
		json_decref(small);
	}
	json_decref(reply);
	if (line == NULL)
		fatalx("ctl: cannot serialise a reply");
	len = strlen(line);
	line = xrealloc(line, len + 2);
	line[len++] = '\n';
	line[len] = '\0';

	if (c->x != NULL) {
		c->x->send(c->xarg, line, len);
		conn_backlog(c);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->data = line;
	b = uv_buf_init(line, (unsigned)len);
	if ((r = uv_write(w, s, &b, 1, conn_written)) != 0) {
		log_debug("ctl: connection %u: write: %s", c->num,
		    uv_strerror(r));
		free(line);
		free(w);
		ctl_conn_close(c, 0);
		return;
	}
	conn_backlog(c);
}

/* Replies pile up unread: pause input, or drop a peer that reads nothing. */
static void
conn_backlog(struct ctl_conn *c)
{
	size_t	 queued = conn_queued(c);

	if (queued > CTL_WQ_LIMIT) {
		log_warnx("ctl: connection %u (pid %d) reads no replies "
		    "(%zu bytes queued), dropping it", c->num, (int)c->pid,
		    queued);
		ctl_conn_close(c, 0);
	} else if (queued > CTL_WQ_HIGH && !c->paused && !c->closing) {
		log_debug("ctl: connection %u: %zu bytes queued, pausing "
		    "input", c->num, queued);
		c->paused = 1;
		if (c->x != NULL)
			c->x->pause(c->xarg, 1);
		else
			uv_read_stop((uv_stream_t *)&c->pipe);
	}
}

/* An error that belongs to no handler: bad line, bad envelope, refusal. */
void
ctl_conn_error(struct ctl_conn *c, const json_t *id, const char *text)
{
	conn_send(c, json_pack("{s:i,s:O?,s:b,s:s}", "v", CTL_VERSION,
	    "id", id, "ok", 0, "error", text));
}

static struct ctl_op *
op_find(struct ctl_server *srv, const char *name)
{
	struct ctl_op	*op;

	LIST_FOREACH(op, &srv->ops, entry) {
		if (strcmp(op->name, name) == 0)
			return op;
	}
	return NULL;
}

static void
conn_line(struct ctl_conn *c, const char *line, size_t len)
{
	struct ctl_req	*r;
	struct ctl_op	*op;
	json_error_t	 err;
	json_t		*req, *id, *v, *name;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return;
	if ((req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err)) ==
	    NULL) {
		/* err.text quotes the input, which may hold a token. */
		log_debug("ctl: connection %u: malformed JSON at column %d",
		    c->num, err.column);
		ctl_conn_error(c, NULL, "malformed JSON");
		return;
	}
	if (!json_is_object(req)) {
		ctl_conn_error(c, NULL, "request is not a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	if (!json_is_integer(id)) {
		ctl_conn_error(c, NULL, "request has no integer id");
		goto out;
	}
	v = json_object_get(req, "v");
	if (!json_is_integer(v) || json_integer_value(v) != CTL_VERSION) {
		ctl_conn_error(c, id, "unsupported protocol version (want 1)");
		goto out;
	}
	name = json_object_get(req, "op");
	if (!json_is_string(name)) {
		ctl_conn_error(c, id, "request has no op");
		goto out;
	}
	if ((op = op_find(c->srv, json_string_value(name))) == NULL) {
		ctl_conn_error(c, id, "unknown op");
		goto out;
	}
	log_debug("ctl: connection %u: %s id %lld", c->num, op->name,
	    (long long)json_integer_value(id));

	r = xcalloc(1, sizeof *r);
	r->conn = c;
	r->id = json_integer_value(id);
	r->op = xstrdup(op->name);
	r->pid = c->pid;
	r->uid = c->uid;
	r->key = c->key;
	r->remote = c->x != NULL;
	TAILQ_INSERT_TAIL(&c->pending, r, entry);
	op->fn(r, req, op->arg);	/* may answer, close c, close srv */
out:
	json_decref(req);
}

/*
 * Runs every complete line in c->in, stopping early when a handler closed
 * the connection or the output backlog paused it (the rest waits in c->in).
 */
static void
conn_process(struct ctl_conn *c)
{
	char	*nl;
	size_t	 off = 0, len;

	while (!c->closing && !c->paused && c->scan < c->in.len) {
		nl = memchr(c->in.data + c->scan, '\n', c->in.len - c->scan);
		if (nl == NULL) {
			c->scan = c->in.len;
			break;
		}
		len = (size_t)(nl - c->in.data) - off;
		c->scan = (size_t)(nl - c->in.data) + 1;
		if (len > CTL_MAX_LINE) {
			c->scan = off;
			break;
		}
		conn_line(c, c->in.data + off, len);
		off = c->scan;
	}
	if (c->closing)
		return;
	if (off > 0) {
		memmove(c->in.data, c->in.data + off, c->in.len - off);
		c->in.len -= off;
		c->in.data[c->in.len] = '\0';
		c->scan -= off;
	}
	/*
	 * Too long: either a complete line over the limit, or this much
	 * without a newline yet.  Say so and hang up; resyncing after a line
	 * we did not read would be guesswork.
	 */
	if (!c->paused && (c->in.len > CTL_MAX_LINE &&
	    (c->scan == c->in.len || c->scan == 0))) {
		log_warnx("ctl: connection %u (pid %d): line over %d bytes, "
		    "closing", c->num, (int)c->pid, CTL_MAX_LINE);
		ctl_conn_error(c, NULL, "line too long");
		ctl_conn_close(c, 1);
		return;
	}
	/* Do not keep a megabyte per idle connection. */
	if (c->in.len == 0 && c->in.cap > sizeof c->srv->rbuf)
		buf_free(&c->in);
}

static unsigned
ctl_open_conns(struct ctl_server *srv)
{
	struct ctl_conn	*o;
	unsigned	 n = 0;

	LIST_FOREACH(o, &srv->conns, entry)
		if (!o->closing)
			n++;
	return n;
}

/*
 * Past CTL_MAX_CONNS, or past per_key in c's group (so one peer cannot take
 * every connection from the others): c gets an error line and EOF, and 1 is
 * returned.  Refused connections still closing do not count.
 */
int
ctl_conn_over_limits(struct ctl_conn *c)
{
	struct ctl_server	*srv = c->srv;
	struct ctl_conn		*o;
	unsigned		 same = 0;

	if (ctl_open_conns(srv) > srv->max_conns) {
		log_warnx("ctl: %s: %u connections, refusing connection %u",
		    srv->path, srv->max_conns, c->num);
		ctl_conn_error(c, NULL, "too many connections");
		ctl_conn_close(c, 1);
		return 1;
	}
	if (srv->admit == NULL)
		return 0;
	LIST_FOREACH(o, &srv->conns, entry)
		if (o != c && !o->closing && o->key == c->key)
			same++;
	if (same >= srv->per_key) {
		log_warnx("ctl: %s: connection %u: already %u connections in its"
		    " group %lld, refusing", srv->path, c->num, same,
		    (long long)c->key);
		ctl_conn_error(c, NULL, "too many connections");
		ctl_conn_close(c, 1);
		return 1;
	}
	return 0;
}

struct ctl_conn *
ctl_conn_attach(struct ctl_server *srv, const struct ctl_transport *x,
    void *xarg, int64_t key)
{
	struct ctl_conn	*c;

	if (srv->closing)
		return NULL;
	c = xcalloc(1, sizeof *c);
	c->srv = srv;
	c->num = ++srv->next_num;
	c->pid = -1;
	c->uid = (uid_t)-1;
	c->key = key;
	c->x = x;
	c->xarg = xarg;
	TAILQ_INIT(&c->pending);
	LIST_INSERT_HEAD(&srv->conns, c, entry);
	srv->nconns++;
	log_debug("ctl: connection %u over %s, group %lld", c->num, x->name,
	    (long long)key);
	(void)ctl_conn_over_limits(c);	/* if so, close() was called */
	return c;
}

void
ctl_conn_input(struct ctl_conn *c, const void *data, size_t len)
{
	if (c->closing)
		return;
	buf_add(&c->in, data, len);
	conn_process(c);
}

void
ctl_conn_drained(struct ctl_conn *c)
{
	conn_maybe_resume(c);
}

void
ctl_conn_gone(struct ctl_conn *c)
{
	c->xclosed = 1;		/* nothing more goes to the transport */
	if (!c->closing) {
		c->closing = 1;
		conn_detach(c);
	}
	conn_free(c);
}

void
ctl_on(struct ctl_server *srv, const char *name, ctl_handler fn, void *arg)
{
	struct ctl_op	*op;

	if ((op = op_find(srv, name)) == NULL) {
		op = xcalloc(1, sizeof *op);
		op->name = xstrdup(name);
		LIST_INSERT_HEAD(&srv->ops, op, entry);
	}
	op->fn = fn;
	op->arg = arg;
}

void
ctl_set_max_conns(struct ctl_server *srv, unsigned n)
{
	srv->max_conns = n;
}

void
ctl_set_admit(struct ctl_server *srv, ctl_admit_fn fn, void *arg,
    unsigned per_key)
{
	srv->admit = fn;
	srv->admit_arg = arg;
	srv->per_key = per_key;
}

static void
req_finish(struct ctl_req *r, json_t *reply)
{
	struct ctl_conn	*c = r->conn;

	if (c != NULL) {
		TAILQ_REMOVE(&c->pending, r, entry);
		conn_send(c, reply);
	} else
		json_decref(reply);
	free(r->op);
	free(r);
}

void
ctl_reply(struct ctl_req *r, json_t *fields)
{
	json_t	*reply;

	reply = json_object();
	if (fields != NULL && json_object_update_new(reply, fields) != 0)
		log_warnx("ctl: %s: reply fields are not an object", r->op);
	json_object_set_new(reply, "v", json_integer(CTL_VERSION));
	json_object_set_new(reply, "id", json_integer(r->id));
	json_object_set_new(reply, "ok", json_true());
	req_finish(r, reply);
}

void
ctl_reply_error(struct ctl_req *r, const char *fmt, ...)
{
	va_list	 ap;
	char	*text;
	json_t	*error;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	if ((error = json_string(text)) == NULL)	/* not UTF-8 */
		error = json_string("error (text not UTF-8)");
	free(text);
	req_finish(r, json_pack("{s:i,s:I,s:b,s:o}", "v", CTL_VERSION,
	    "id", r->id, "ok", 0, "error", error));
}

void
ctl_req_on_gone(struct ctl_req *r, ctl_gone_cb cb, void *arg)
{
	if (r->conn == NULL) {
		cb(r, arg);
		return;
	}
	r->on_gone = cb;
	r->gone_arg = arg;
}

int
ctl_req_gone(const struct ctl_req *r)
{
	return r->conn == NULL;
}

const char *
ctl_req_op(const struct ctl_req *r)
{
	return r->op;
}

json_int_t
ctl_req_id(const struct ctl_req *r)
{
	return r->id;
}

pid_t
ctl_req_pid(const struct ctl_req *r)
{
	return r->pid;
}

uid_t
ctl_req_uid(const struct ctl_req *r)
{
	return r->uid;
}

int64_t
ctl_req_key(const struct ctl_req *r)
{
	return r->key;
}

int
ctl_req_remote(const struct ctl_req *r)
{
	return r->remote;
}
