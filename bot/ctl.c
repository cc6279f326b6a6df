#include "bot/ctl.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <sys/file.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A peer that sends requests but does not read its replies: past WQ_HIGH
 * bytes queued in libuv we stop reading and parsing its input (the kernel
 * then pushes back on it), and resume below WQ_LOW.  Deferred replies can
 * still pile up while paused; past WQ_LIMIT the peer is dropped.
 */
#define CTL_WQ_HIGH	(1024 * 1024)
#define CTL_WQ_LOW	(256 * 1024)
#define CTL_WQ_LIMIT	(64 * 1024 * 1024)

struct ctl_op {
	char			*name;
	ctl_handler		 fn;
	void			*arg;
	LIST_ENTRY(ctl_op)	 entry;
};

struct ctl_conn;

struct ctl_req {
	struct ctl_conn		*conn;		/* NULL once the peer is gone */
	json_int_t		 id;
	char			*op;
	pid_t			 pid;
	uid_t			 uid;
	ctl_gone_cb		 on_gone;
	void			*gone_arg;
	TAILQ_ENTRY(ctl_req)	 entry;		/* on conn->pending */
};

struct ctl_conn {
	uv_pipe_t		 pipe;		/* data = this */
	uv_shutdown_t		 shutdown;
	struct ctl_server	*srv;
	unsigned		 num;		/* for the log */
	pid_t			 pid;
	uid_t			 uid;
	int64_t			 key;		/* the admit callback's group */
	struct buf		 in;		/* input not yet parsed */
	size_t			 scan;		/* in.data[0..scan) holds no '\n' */
	int			 closing;	/* input over, requests detached */
	int			 shutting;	/* uv_shutdown in flight */
	int			 paused;	/* output backlog: input stopped */
	TAILQ_HEAD(, ctl_req)	 pending;
	LIST_ENTRY(ctl_conn)	 entry;
};

struct ctl_server {
	uv_pipe_t		 listener;	/* data = this */
	char			*path;		/* NULL until the socket is ours */
	dev_t			 dev;
	ino_t			 ino;
	int			 lockfd;
	int			 closing;
	int			 listener_closed;
	unsigned		 nconns;
	unsigned		 max_conns;
	unsigned		 next_num;
	ctl_admit_fn		 admit;
	void			*admit_arg;
	unsigned		 per_key;
	LIST_HEAD(, ctl_op)	 ops;
	LIST_HEAD(, ctl_conn)	 conns;
	/* One read buffer will do: libuv hands each read to us before the next. */
	char			 rbuf[64 * 1024];
};

static void	conn_close(struct ctl_conn *, int);
static void	conn_process(struct ctl_conn *);

static void
server_maybe_free(struct ctl_server *srv)
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
listener_closed(uv_handle_t *h)
{
	struct ctl_server	*srv = h->data;

	srv->listener_closed = 1;
	server_maybe_free(srv);
}

static void
conn_closed(uv_handle_t *h)
{
	struct ctl_conn		*c = h->data;
	struct ctl_server	*srv = c->srv;

	log_debug("ctl: connection %u closed", c->num);
	LIST_REMOVE(c, entry);
	srv->nconns--;
	buf_free(&c->in);
	free(c);
	server_maybe_free(srv);
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
static void
conn_close(struct ctl_conn *c, int flush)
{
	uv_handle_t	*h = (uv_handle_t *)&c->pipe;

	if (!c->closing) {
		c->closing = 1;
		if (!uv_is_closing(h))
			uv_read_stop((uv_stream_t *)&c->pipe);
		conn_detach(c);		/* may re-enter conn_close */
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

static void
conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct ctl_conn	*c = h->data;

	b->base = c->srv->rbuf;
	b->len = sizeof c->srv->rbuf;
}

static void
conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
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
		conn_close(c, 0);
		return;
	}
	buf_add(&c->in, b->base, (size_t)n);
	conn_process(c);
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
		conn_close(c, 0);
		return;
	}
	if (c->paused && !c->closing &&
	    uv_stream_get_write_queue_size(s) <= CTL_WQ_LOW) {
		c->paused = 0;
		conn_process(c);
		if (!c->closing && !c->paused)
			uv_read_start(s, conn_alloc, conn_read);
	}
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
	size_t		 len, queued;
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

	w = xcalloc(1, sizeof *w);
	w->data = line;
	b = uv_buf_init(line, (unsigned)len);
	if ((r = uv_write(w, s, &b, 1, conn_written)) != 0) {
		log_debug("ctl: connection %u: write: %s", c->num,
		    uv_strerror(r));
		free(line);
		free(w);
		conn_close(c, 0);
		return;
	}
	queued = uv_stream_get_write_queue_size(s);
	if (queued > CTL_WQ_LIMIT) {
		log_warnx("ctl: connection %u (pid %d) reads no replies "
		    "(%zu bytes queued), dropping it", c->num, (int)c->pid,
		    queued);
		conn_close(c, 0);
	} else if (queued > CTL_WQ_HIGH && !c->paused && !c->closing) {
		log_debug("ctl: connection %u: %zu bytes queued, pausing "
		    "input", c->num, queued);
		c->paused = 1;
		uv_read_stop(s);
	}
}

/* An error that belongs to no handler: bad line, bad envelope, refusal. */
static void
conn_error(struct ctl_conn *c, const json_t *id, const char *text)
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
		conn_error(c, NULL, "malformed JSON");
		return;
	}
	if (!json_is_object(req)) {
		conn_error(c, NULL, "request is not a JSON object");
		goto out;
	}
	id = json_object_get(req, "id");
	if (!json_is_integer(id)) {
		conn_error(c, NULL, "request has no integer id");
		goto out;
	}
	v = json_object_get(req, "v");
	if (!json_is_integer(v) || json_integer_value(v) != CTL_VERSION) {
		conn_error(c, id, "unsupported protocol version (want 1)");
		goto out;
	}
	name = json_object_get(req, "op");
	if (!json_is_string(name)) {
		conn_error(c, id, "request has no op");
		goto out;
	}
	if ((op = op_find(c->srv, json_string_value(name))) == NULL) {
		conn_error(c, id, "unknown op");
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
		conn_error(c, NULL, "line too long");
		conn_close(c, 1);
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

static void
on_connection(uv_stream_t *ls, int status)
{
	struct ctl_server	*srv = ls->data;
	struct ctl_conn		*c;
	struct ucred		 cred;
	socklen_t		 credlen = sizeof cred;
	uv_os_fd_t		 fd;
	int			 r;

	if (status < 0) {
		log_warnx("ctl: %s: accept: %s", srv->path,
		    uv_strerror(status));
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->srv = srv;
	c->num = ++srv->next_num;
	c->pid = -1;
	c->uid = (uid_t)-1;
	TAILQ_INIT(&c->pending);
	uv_pipe_init(ls->loop, &c->pipe, 0);
	c->pipe.data = c;
	LIST_INSERT_HEAD(&srv->conns, c, entry);
	srv->nconns++;
	if ((r = uv_accept(ls, (uv_stream_t *)&c->pipe)) != 0) {
		log_warnx("ctl: %s: accept: %s", srv->path, uv_strerror(r));
		conn_close(c, 0);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
	}
	log_debug("ctl: %s: connection %u from pid %d uid %d", srv->path,
	    c->num, (int)c->pid, (int)c->uid);

	/* Refused connections still closing do not count. */
	if (ctl_open_conns(srv) > srv->max_conns) {
		log_warnx("ctl: %s: %u connections, refusing pid %d",
		    srv->path, srv->max_conns, (int)c->pid);
		conn_error(c, NULL, "too many connections");
		conn_close(c, 1);
		return;
	}
	/* The 0600 mode should make this impossible; check anyway. */
	if (c->uid != geteuid() && c->uid != 0) {
		log_warnx("ctl: %s: refusing uid %d", srv->path, (int)c->uid);
		conn_error(c, NULL, "permission denied");
		conn_close(c, 1);
		return;
	}
	if (srv->admit != NULL) {
		struct ctl_conn	*o;
		unsigned	 same = 0;

		if ((c->key = srv->admit(c->pid, c->uid, srv->admit_arg)) < 0) {
			log_warnx("ctl: %s: refusing pid %d", srv->path,
			    (int)c->pid);
			conn_error(c, NULL, "permission denied");
			conn_close(c, 1);
			return;
		}
		LIST_FOREACH(o, &srv->conns, entry)
			if (o != c && !o->closing && o->key == c->key)
				same++;
		if (same >= srv->per_key) {
			log_warnx("ctl: %s: pid %d already has %u connections"
			    " in its group %lld, refusing", srv->path,
			    (int)c->pid, same, (long long)c->key);
			conn_error(c, NULL, "too many connections");
			conn_close(c, 1);
			return;
		}
	}
	if ((r = uv_read_start((uv_stream_t *)&c->pipe, conn_alloc,
	    conn_read)) != 0) {
		log_warnx("ctl: connection %u: read: %s", c->num,
		    uv_strerror(r));
		conn_close(c, 0);
	}
}

/*
 * Is something accepting connections at path?  1 yes, 0 no (stale), -1 we
 * cannot tell (cause set).
 */
static int
probe_live(const char *path, char **cause)
{
	struct sockaddr_un	 sun;
	int			 fd, live;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		live = 1;
	else if (errno == EAGAIN)	/* backlog full: very much alive */
		live = 1;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		live = 0;
	else {
		*cause = xasprintf("connect %s: %s", path, strerror(errno));
		live = -1;
	}
	close(fd);
	return live;
}

static void
server_fail(struct ctl_server *srv)
{
	srv->closing = 1;
	if (srv->lockfd != -1)
		close(srv->lockfd);
	uv_close((uv_handle_t *)&srv->listener, listener_closed);
}

struct ctl_server *
ctl_listen(const char *path, char **cause)
{
	struct ctl_server	*srv;
	struct sockaddr_un	 sun;
	struct stat		 st;
	char			*lockpath;
	mode_t			 old;
	int			 r, lockfd, live;

	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = xasprintf("socket path too long (max %zu bytes): %s",
		    sizeof sun.sun_path - 1, path);
		return NULL;
	}

	/*
	 * The lock closes the race between "nobody listens here" and our
	 * bind: without it two daemons starting together could each unlink
	 * the other's fresh socket.
	 */
	lockpath = xasprintf("%s.lock", path);
	lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (lockfd == -1) {
		*cause = xasprintf("open %s: %s", lockpath, strerror(errno));
		free(lockpath);
		return NULL;
	}
	if (flock(lockfd, LOCK_EX | LOCK_NB) == -1) {
		if (errno == EWOULDBLOCK)
			*cause = xasprintf("switchboard already running "
			    "(%s is locked)", lockpath);
		else
			*cause = xasprintf("lock %s: %s", lockpath,
			    strerror(errno));
		free(lockpath);
		close(lockfd);
		return NULL;
	}
	free(lockpath);

	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*cause = xasprintf("%s exists and is not a socket",
			    path);
			close(lockfd);
			return NULL;
		}
		if ((live = probe_live(path, cause)) != 0) {
			if (live == 1)
				*cause = xasprintf("switchboard already "
				    "running (a daemon listens on %s)", path);
			close(lockfd);
			return NULL;
		}
		if (unlink(path) == -1 && errno != ENOENT) {
			*cause = xasprintf("remove stale socket %s: %s", path,
			    strerror(errno));
			close(lockfd);
			return NULL;
		}
		log_info("ctl: replaced stale socket %s", path);
	} else if (errno != ENOENT) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		close(lockfd);
		return NULL;
	}

	srv = xcalloc(1, sizeof *srv);
	srv->lockfd = lockfd;
	srv->max_conns = CTL_MAX_CONNS;
	LIST_INIT(&srv->ops);
	LIST_INIT(&srv->conns);
	uv_pipe_init(loop_uv(), &srv->listener, 0);
	srv->listener.data = srv;

	/* chmod after bind would leave a window where others may connect. */
	old = umask(0177);
	r = uv_pipe_bind(&srv->listener, path);
	umask(old);
	if (r != 0) {
		*cause = xasprintf("bind %s: %s", path, uv_strerror(r));
		server_fail(srv);
		return NULL;
	}
	srv->path = xstrdup(path);
	if (chmod(path, 0600) == -1 || stat(path, &st) == -1) {
		*cause = xasprintf("%s: %s", path, strerror(errno));
		goto fail;
	}
	srv->dev = st.st_dev;
	srv->ino = st.st_ino;
	if ((r = uv_listen((uv_stream_t *)&srv->listener, 128,
	    on_connection)) != 0) {
		*cause = xasprintf("listen %s: %s", path, uv_strerror(r));
		goto fail;
	}
	log_info("ctl: listening on %s", path);
	return srv;

fail:
	unlink(path);
	server_fail(srv);
	return NULL;
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

void
ctl_close(struct ctl_server *srv)
{
	struct ctl_conn	*c;
	struct stat	 st;

	if (srv == NULL || srv->closing)
		return;
	srv->closing = 1;
	log_info("ctl: closing %s", srv->path);
	/* A successor may already have replaced our file: leave theirs. */
	if (stat(srv->path, &st) == 0 && st.st_dev == srv->dev &&
	    st.st_ino == srv->ino)
		unlink(srv->path);
	/* Only after the unlink, so a successor never finds our socket. */
	close(srv->lockfd);
	srv->lockfd = -1;
	uv_close((uv_handle_t *)&srv->listener, listener_closed);
	/* conn_close unlinks nothing from the list: that waits for libuv. */
	LIST_FOREACH(c, &srv->conns, entry)
		conn_close(c, 0);
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
	return r->conn != NULL ? r->conn->key : -1;
}
