#include "adapters/console.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONSOLE_CHANNEL		"console"
#define CONSOLE_SELF		"switchboard"
#define CONSOLE_ME		"me"
#define CONSOLE_KV_NEXT		"console.next_id"
#define CONSOLE_MAX_LINE	65536
#define CONSOLE_CHUNK		65536
#define CONSOLE_USAGE							\
	"new TEXT | t<N> TEXT | reply <msg-id> TEXT | "			\
	"click <question-id> <choice> | react <msg-id> <emoji> | "	\
	"as <user> <command> | quit"

enum console_io {
	CONSOLE_IO_NONE,
	CONSOLE_IO_STREAM,	/* tty or pipe: a libuv stream */
	CONSOLE_IO_FILE,	/* regular file (or anything else for output) */
};

union console_stream {
	uv_handle_t	 handle;
	uv_stream_t	 stream;
	uv_tty_t	 tty;
	uv_pipe_t	 pipe;
};

struct console {
	struct adapter		 hdr;		/* first: the core casts */

	uint64_t		 next_id;
	/* Thread root of every id handed out since base (0 = not known). */
	uint64_t		 base;
	uint64_t		*threads;
	size_t			 nthreads;

	int			 started;
	int			 stopping;
	int			 stopped_sent;
	int			 destroyed;
	/*
	 * Callbacks still to come that touch this struct: open handles, the
	 * file read in flight, writes, deferred reports.  The struct is freed
	 * only when destroyed and this is 0, so destroy() may be called from
	 * inside any upcall.
	 */
	unsigned		 pending;

	enum console_io		 in_io;
	union console_stream	 in;
	int			 in_open;	/* stream handle not yet closed */
	int			 in_fd;		/* FILE: our dup of 0, or -1 */
	int			 in_flags;	/* fd 0's status flags at start */
	uv_fs_t			 in_req;
	int			 in_reading;	/* in_req in flight */
	char			*in_chunk;
	struct buf		 line;
	int			 skipping;	/* discarding a too long line */

	enum console_io		 out_io;
	union console_stream	 out;
	int			 out_open;
	int			 out_fd;	/* FILE: our dup of 1, or -1 */
	int			 out_flags;
	unsigned		 nwrites;	/* uv_writes in flight */
};

/* One line (or several) on its way to stdout, maybe finishing an op. */
struct console_write {
	uv_write_t		 req;
	struct console		*c;
	struct chat_op		*op;
	char			*ref;		/* POST: the new message id */
	char			*data;
	const char		*error;		/* report failure instead */
	int			 permanent;
};

static const struct adapter_caps console_caps = {
	.threads = 1,
	.edits = 1,
	.reactions = 1,
	.buttons = 1,
	.reaction_choices = 0,
	.max_text = 65536,
	.min_interval_ms = 0,
};

static void	 console_settle(struct console *);
static void	 console_read_file(struct console *);

/* ---- message ids ------------------------------------------------------- */

static uint64_t
console_next_id(struct console *c)
{
	uint64_t	 id = c->next_id++;
	char		 v[32];

	/* Persisted before the id is shown, so a crash never reuses it. */
	snprintf(v, sizeof v, "%" PRIu64, c->next_id);
	if (store_kv_set(CONSOLE_KV_NEXT, v) == -1)
		log_warnx("console: cannot persist %s", CONSOLE_KV_NEXT);
	return id;
}

static void
console_map(struct console *c, uint64_t id, uint64_t thread)
{
	size_t	 i, n;

	if (id < c->base)
		return;
	i = id - c->base;
	if (i >= c->nthreads) {
		n = c->nthreads == 0 ? 64 : c->nthreads;
		while (n <= i)
			n *= 2;
		c->threads = xrealloc(c->threads, n * sizeof *c->threads);
		memset(c->threads + c->nthreads, 0,
		    (n - c->nthreads) * sizeof *c->threads);
		c->nthreads = n;
	}
	c->threads[i] = thread;
}

static uint64_t
console_thread_of(struct console *c, uint64_t id)
{
	if (id < c->base || id - c->base >= c->nthreads)
		return 0;
	return c->threads[id - c->base];
}

/* A message id typed by a person: one this console has handed out. */
static long long
console_parse_id(struct console *c, const char *s)
{
	long long	 v = parse_uint(s);

	if (v <= 0 || (uint64_t)v >= c->next_id)
		return -1;
	return v;
}

/*
 * "t<N>" must name a thread: a message that started one in this run, or a
 * thread the store has a conversation for (from before a restart).  Anything
 * else would open a conversation on an arbitrary number, and "t9 status"
 * would start an agent on a task named "status".
 */
static int
console_is_thread(struct console *c, uint64_t n)
{
	char	 sn[32];

	if (console_thread_of(c, n) != 0)
		return console_thread_of(c, n) == n;
	snprintf(sn, sizeof sn, "%" PRIu64, n);
	return chat_thread_known(&c->hdr, CONSOLE_CHANNEL, sn);
}

/* ---- output -------------------------------------------------------------- */

static void
console_write_free(struct console_write *w)
{
	free(w->ref);
	free(w->data);
	free(w);
}

/*
 * Reports the op (if any) and drops the write's hold on the console.  The
 * hold is released after the upcall: the core may stop or destroy the
 * adapter from inside chat_op_done.
 */
static void
console_write_finish(struct console_write *w, int status)
{
	struct console	*c = w->c;

	if (w->op != NULL) {
		if (w->error != NULL)
			chat_op_failed(w->op, -1, w->permanent, w->error);
		else if (status < 0)
			/* Cancelled only when the loop is torn down: retry later. */
			chat_op_failed(w->op, -1, status != UV_ECANCELED,
			    uv_strerror(status));
		else
			chat_op_done(w->op, w->ref);
	} else if (status < 0)
		log_warnx("console: stdout: %s", uv_strerror(status));
	console_write_free(w);
	c->pending--;
	console_settle(c);
}

static void
console_deferred_finish(void *arg)
{
	console_write_finish(arg, 0);
}

static void
console_on_close(uv_handle_t *h)
{
	struct console	*c = h->data;

	c->pending--;
	console_settle(c);
}

/*
 * libuv made the fd non-blocking, and a pipe's flags are shared with every
 * process holding it (our parent's shell, our own stderr after 2>&1): put
 * them back before letting go.
 */
static void
console_stream_close(union console_stream *u, int flags)
{
	uv_os_fd_t	 fd;

	if (uv_fileno(&u->handle, &fd) == 0)
		fcntl(fd, F_SETFL, flags);
	uv_close(&u->handle, console_on_close);
}

static void
console_close_out(struct console *c)
{
	if (c->out_io == CONSOLE_IO_STREAM && c->out_open) {
		c->out_open = 0;
		console_stream_close(&c->out, c->out_flags);
	} else if (c->out_io == CONSOLE_IO_FILE && c->out_fd != -1) {
		close(c->out_fd);
		c->out_fd = -1;
	}
}

static void
console_on_write(uv_write_t *req, int status)
{
	struct console_write	*w = req->data;
	struct console		*c = w->c;

	c->nwrites--;
	if (c->destroyed && c->nwrites == 0)
		console_close_out(c);
	console_write_finish(w, status);
}

static int
console_write_all(int fd, const char *p, size_t n)
{
	ssize_t	 r;

	while (n > 0) {
		if ((r = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Writes data (taken) to stdout.  op, if not NULL, is reported from the loop
 * once the write has completed, with ref (taken) on success; with data NULL
 * the op is refused (permanently) the same way.
 */
static void
console_emit(struct console *c, char *data, struct chat_op *op, char *ref)
{
	struct console_write	*w;
	uv_buf_t		 b;
	int			 rc;

	w = xcalloc(1, sizeof *w);
	w->c = c;
	w->op = op;
	w->ref = ref;
	w->data = data;
	w->req.data = w;
	c->pending++;

	if (data != NULL && c->out_io == CONSOLE_IO_STREAM && c->out_open) {
		b = uv_buf_init(w->data, strlen(w->data));
		rc = uv_write(&w->req, &c->out.stream, &b, 1, console_on_write);
		if (rc == 0) {
			c->nwrites++;
			return;
		}
		w->error = uv_strerror(rc);
		w->permanent = 1;
	} else if (data != NULL && c->out_io == CONSOLE_IO_FILE &&
	    c->out_fd != -1) {
		/* A regular file does not block for long: write in place. */
		if (console_write_all(c->out_fd, w->data,
		    strlen(w->data)) == -1) {
			log_warn("console: stdout");
			w->error = "write to stdout failed";
			w->permanent = 1;
		}
	} else if (data == NULL) {
		w->error = "console: op without a target or of unknown kind";
		w->permanent = 1;
	} else {
		w->error = "no stdout";
		w->permanent = 1;
	}
	if (op == NULL && w->error != NULL) {
		log_warnx("console: %s", w->error);
		w->error = NULL;
	}
	/* Never report from inside send(): the outbox is still in its call. */
	loop_defer(console_deferred_finish, w);
}

static void
console_say(struct console *c, const char *fmt, ...)
{
	va_list		 ap;
	char		*s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	console_emit(c, xasprintf("%s\n", s), NULL, NULL);
	free(s);
}

/* Text, continuation lines indented by 4 spaces; a final newline dropped. */
static void
console_add_text(struct buf *b, const char *text)
{
	const char	*p = text, *nl;
	size_t		 n = strlen(text);

	while (n > 0 && text[n - 1] == '\n')
		n--;
	for (;;) {
		nl = memchr(p, '\n', n - (size_t)(p - text));
		if (nl == NULL) {
			buf_add(b, p, n - (size_t)(p - text));
			break;
		}
		buf_add(b, p, (size_t)(nl - p));
		buf_adds(b, "\n    ");
		p = nl + 1;
	}
	buf_adds(b, "\n");
}

static void
console_add_choices(struct buf *b, const struct chat_op *op)
{
	const char *const	*ch;

	if (op->choices == NULL || op->choices[0] == NULL)
		return;
	if (op->question != NULL)
		buf_printf(b, "    [choices %s: ", op->question);
	else
		buf_adds(b, "    [choices: ");
	for (ch = op->choices; *ch != NULL; ch++)
		buf_printf(b, "%s%s", ch == op->choices ? "" : " | ", *ch);
	buf_adds(b, "]\n");
}

/*
 * An uploaded file: a header line, then every line of the content behind
 * "    | " so a reader (or a test) can tell the file from the chat.  Bytes
 * that would garble a terminal (controls other than tab) print as '?'.
 */
static void
console_add_file(struct buf *b, const struct chat_op *op)
{
	const char	*p = op->data, *end = op->data + op->data_len;

	buf_printf(b, "📎 %s (%zu bytes)%s%s\n", op->filename != NULL ?
	    op->filename : "file", op->data_len, op->title != NULL ? ": " : "",
	    op->title != NULL ? op->title : "");
	while (p < end) {
		buf_adds(b, "    | ");
		for (; p < end && *p != '\n'; p++)
			buf_add(b, (unsigned char)*p < 0x20 && *p != '\t' ?
			    "?" : p, 1);
		buf_adds(b, "\n");
		if (p < end)
			p++;
	}
	buf_adds(b, "    |--\n");
}

/* The thread a message is in, for edits and reactions. */
static const char *
console_thread_label(struct console *c, const char *target,
    const struct chat_op *op, char *tmp, size_t len)
{
	long long	 id = parse_uint(target);
	uint64_t	 t;

	if (id > 0 && (t = console_thread_of(c, (uint64_t)id)) != 0) {
		snprintf(tmp, len, "%" PRIu64, t);
		return tmp;
	}
	if (op->thread != NULL)
		return op->thread;
	return "?";
}

/* ---- input --------------------------------------------------------------- */

static char *
console_word(char **pp)
{
	char	*p = *pp, *w;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return NULL;
	w = p;
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	if (*p != '\0')
		*p++ = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	*pp = p;
	return w;
}

static void
console_user_message(struct console *c, const char *sender, uint64_t thread,
    const char *reply_to, const char *text)
{
	struct chat_event	 ev;
	uint64_t		 id, root;
	char			 sid[32], sthread[32];

	id = console_next_id(c);
	root = thread != 0 ? thread : id;
	console_map(c, id, root);
	snprintf(sid, sizeof sid, "%" PRIu64, id);
	snprintf(sthread, sizeof sthread, "%" PRIu64, root);
	/* Echo first, so the core's 👀 on this message prints after it. */
	console_say(c, "[t%s] %s console:%s: %s", sthread, sid, sender, text);

	memset(&ev, 0, sizeof ev);
	ev.kind = CHAT_EV_MESSAGE;
	ev.channel = CONSOLE_CHANNEL;
	ev.thread = thread != 0 ? sthread : NULL;
	ev.msg_id = sid;
	ev.sender = sender;
	ev.sender_name = sender;
	ev.text = text;
	ev.reply_to = reply_to;
	ev.mentioned = 1;	/* a terminal is a DM with the bot */
	chat_on_event(&c->hdr, &ev);
}

/* One command from a user; line is modifiable.  0, or -1 if it is unknown. */
static int
console_command(struct console *c, const char *sender, char *line)
{
	struct chat_event	 ev;
	char			*p = line, *cmd, *arg, sthread[32];
	long long		 n;
	uint64_t		 t;

	if ((cmd = console_word(&p)) == NULL)
		return -1;
	if (strcmp(cmd, "new") == 0) {
		if (*p == '\0')
			console_say(c, "! usage: new TEXT");
		else
			console_user_message(c, sender, 0, NULL, p);
		return 0;
	}
	if (cmd[0] == 't' && (n = parse_uint(cmd + 1)) != -1) {
		if (console_parse_id(c, cmd + 1) == -1 ||
		    !console_is_thread(c, (uint64_t)n))
			console_say(c, "! no thread %s", cmd);
		else if (*p == '\0')
			console_say(c, "! usage: t<N> TEXT");
		else
			console_user_message(c, sender, (uint64_t)n, NULL, p);
		return 0;
	}
	if (strcmp(cmd, "reply") == 0) {
		if ((arg = console_word(&p)) == NULL || *p == '\0')
			console_say(c, "! usage: reply <msg-id> TEXT");
		else if ((n = console_parse_id(c, arg)) == -1 ||
		    (t = console_thread_of(c, (uint64_t)n)) == 0)
			console_say(c, "! unknown message %s (use t<N> TEXT)",
			    arg);
		else
			console_user_message(c, sender, t, arg, p);
		return 0;
	}

	memset(&ev, 0, sizeof ev);
	ev.channel = CONSOLE_CHANNEL;
	ev.sender = sender;
	ev.sender_name = sender;
	if (strcmp(cmd, "click") == 0) {
		if ((arg = console_word(&p)) == NULL || *p == '\0') {
			console_say(c, "! usage: click <question-id> <choice>");
			return 0;
		}
		ev.kind = CHAT_EV_CLICK;
		ev.question = arg;
		ev.choice = p;
		chat_on_event(&c->hdr, &ev);
		return 0;
	}
	if (strcmp(cmd, "react") == 0) {
		if ((arg = console_word(&p)) == NULL || *p == '\0' ||
		    strchr(p, ' ') != NULL) {
			console_say(c, "! usage: react <msg-id> <emoji>");
			return 0;
		}
		ev.kind = CHAT_EV_REACTION;
		ev.target = arg;
		ev.emoji = p;
		if ((n = parse_uint(arg)) > 0 &&
		    (t = console_thread_of(c, (uint64_t)n)) != 0) {
			snprintf(sthread, sizeof sthread, "%" PRIu64, t);
			ev.thread = sthread;
		}
		chat_on_event(&c->hdr, &ev);
		return 0;
	}
	return -1;
}

static void
console_line(struct console *c, char *line)
{
	char		*p, *end, *copy, *rest, *user;
	const char	*sender = CONSOLE_ME;
	int		 rc = -1;

	p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		*--end = '\0';
	if (*p == '\0')
		return;

	if (strcmp(p, "quit") == 0) {
		log_info("console: quit");
		loop_shutdown("quit");
		return;
	}
	/* Parsed in a copy: the "unknown" line shows the input as typed. */
	rest = copy = xstrdup(p);
	if (strncmp(rest, "as", 2) == 0 && (rest[2] == ' ' || rest[2] == '\t')) {
		rest += 3;
		if ((user = console_word(&rest)) == NULL || *rest == '\0') {
			console_say(c, "! usage: as <user> <command>");
			free(copy);
			return;
		}
		if (strncmp(user, "console:", 8) == 0 && user[8] != '\0')
			user += 8;
		sender = user;
	}
	rc = console_command(c, sender, rest);
	free(copy);
	if (rc == 0)
		return;
	utf8_truncate(p, 200);
	console_say(c, "! unknown input: %s (try: %s)", p, CONSOLE_USAGE);
}

/*
 * Splits input into lines.  Lines are handed on one by one; a command may
 * stop the adapter (quit → shutdown hooks), so the rest is then dropped.
 */
static void
console_feed(struct console *c, const char *p, size_t n)
{
	const char	*nl;
	size_t		 len;
	char		*line;

	while (n > 0 && !c->stopping) {
		nl = memchr(p, '\n', n);
		len = nl != NULL ? (size_t)(nl - p) : n;
		if (!c->skipping) {
			if (c->line.len + len > CONSOLE_MAX_LINE) {
				console_say(c, "! line longer than %d bytes, "
				    "ignored", CONSOLE_MAX_LINE);
				buf_reset(&c->line);
				c->skipping = 1;
			} else
				buf_add(&c->line, p, len);
		}
		if (nl == NULL)
			break;
		p = nl + 1;
		n -= len + 1;
		if (c->skipping) {
			c->skipping = 0;
			continue;
		}
		line = buf_steal(&c->line);
		console_line(c, line);
		free(line);
	}
}

/* End of stdin: a last line without newline still counts. */
static void
console_feed_eof(struct console *c)
{
	char	*line;

	if (!c->skipping && c->line.len > 0 && !c->stopping) {
		line = buf_steal(&c->line);
		console_line(c, line);
		free(line);
	}
	buf_free(&c->line);
	c->skipping = 0;
}

static void
console_close_in(struct console *c)
{
	if (c->in_io == CONSOLE_IO_STREAM && c->in_open) {
		c->in_open = 0;
		uv_read_stop(&c->in.stream);
		console_stream_close(&c->in, c->in_flags);
	} else if (c->in_io == CONSOLE_IO_FILE && c->in_fd != -1) {
		if (c->in_reading) {
			/* Closed by the read callback, cancelled or not. */
			uv_cancel((uv_req_t *)&c->in_req);
			return;
		}
		close(c->in_fd);
		c->in_fd = -1;
	}
}

static void
console_in_eof(struct console *c, const char *why)
{
	console_feed_eof(c);
	if (c->stopping)
		return;
	/* The daemon goes on: the bot may still be talking. */
	log_info("console: %s on stdin, no longer reading", why);
	console_close_in(c);
}

static void
console_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct console	*c = h->data;

	/* One buffer is enough: each read is consumed before the next. */
	*b = uv_buf_init(c->in_chunk, CONSOLE_CHUNK);
}

static void
console_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct console	*c = s->data;

	if (nread > 0)
		console_feed(c, b->base, (size_t)nread);
	else if (nread == UV_EOF)
		console_in_eof(c, "end of input");
	else if (nread < 0) {
		log_warnx("console: stdin: %s", uv_strerror((int)nread));
		console_in_eof(c, "read error");
	}
}

static void
console_on_file_read(uv_fs_t *req)
{
	struct console	*c = req->data;
	ssize_t		 r = req->result;

	uv_fs_req_cleanup(req);
	c->in_reading = 0;
	if (c->stopping || r == UV_ECANCELED)
		console_close_in(c);
	else if (r > 0) {
		console_feed(c, c->in_chunk, (size_t)r);
		if (!c->stopping)
			console_read_file(c);
	} else {
		if (r < 0)
			log_warnx("console: stdin: %s", uv_strerror((int)r));
		console_in_eof(c, r == 0 ? "end of file" : "read error");
	}
	c->pending--;
	console_settle(c);
}

static void
console_read_file(struct console *c)
{
	uv_buf_t	 b;
	int		 rc;

	b = uv_buf_init(c->in_chunk, CONSOLE_CHUNK);
	c->in_req.data = c;
	/* Offset -1: read on from the current position, like read(2). */
	rc = uv_fs_read(loop_uv(), &c->in_req, c->in_fd, &b, 1, -1,
	    console_on_file_read);
	if (rc < 0) {
		log_warnx("console: stdin: %s", uv_strerror(rc));
		console_in_eof(c, "read error");
		return;
	}
	c->in_reading = 1;
	c->pending++;
}

/* ---- stdio setup --------------------------------------------------------- */

/*
 * A stream handle on a duplicate of fd, so closing it leaves the process's
 * stdio alone.  For a tty libuv reopens the device and keeps our duplicate
 * as a spare, which we close here.
 */
static int
console_stream_open(union console_stream *u, int fd, int *flags,
    int readable, struct console *c)
{
	uv_handle_type	 type = uv_guess_handle(fd);
	uv_os_fd_t	 hfd;
	int		 dfd, rc;

	if ((*flags = fcntl(fd, F_GETFL)) == -1 ||
	    (dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1)
		return -errno;
	if (type == UV_TTY) {
		if ((rc = uv_tty_init(loop_uv(), &u->tty, dfd, readable)) != 0) {
			close(dfd);
			return rc;
		}
		if (uv_fileno(&u->handle, &hfd) == 0 && hfd != dfd)
			close(dfd);
	} else {
		uv_pipe_init(loop_uv(), &u->pipe, 0);
		if ((rc = uv_pipe_open(&u->pipe, dfd)) != 0) {
			close(dfd);
			/* Initialised handles must be closed. */
			u->handle.data = c;
			c->pending++;
			uv_close(&u->handle, console_on_close);
			return rc;
		}
	}
	u->handle.data = c;
	c->pending++;
	return 0;
}

static void
console_open_in(struct console *c)
{
	uv_handle_type	 type = uv_guess_handle(0);
	int		 rc;

	switch (type) {
	case UV_TTY:
	case UV_NAMED_PIPE:
		if ((rc = console_stream_open(&c->in, 0, &c->in_flags, 1,
		    c)) != 0) {
			log_warnx("console: stdin: %s", uv_strerror(rc));
			return;
		}
		c->in_io = CONSOLE_IO_STREAM;
		c->in_open = 1;
		if ((rc = uv_read_start(&c->in.stream, console_alloc,
		    console_on_read)) != 0) {
			log_warnx("console: stdin: %s", uv_strerror(rc));
			console_close_in(c);
		}
		break;
	case UV_FILE:
		if ((c->in_fd = fcntl(0, F_DUPFD_CLOEXEC, 3)) == -1) {
			log_warn("console: stdin");
			return;
		}
		c->in_io = CONSOLE_IO_FILE;
		console_read_file(c);
		break;
	default:
		log_warnx("console: stdin is not a terminal, pipe or file; "
		    "not reading");
		break;
	}
}

static int
console_open_out(struct console *c, char **cause)
{
	uv_handle_type	 type = uv_guess_handle(1);
	int		 rc;

	if (type == UV_TTY || type == UV_NAMED_PIPE) {
		if ((rc = console_stream_open(&c->out, 1, &c->out_flags, 0,
		    c)) != 0) {
			*cause = xasprintf("stdout: %s", uv_strerror(rc));
			return -1;
		}
		c->out_io = CONSOLE_IO_STREAM;
		c->out_open = 1;
		return 0;
	}
	/* A file, or a socket libuv will not take as a pipe: plain write(). */
	if ((c->out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3)) == -1) {
		*cause = xasprintf("stdout: %s", strerror(errno));
		return -1;
	}
	c->out_io = CONSOLE_IO_FILE;
	return 0;
}

/* ---- adapter_ops ----------------------------------------------------------- */

static void
console_free(struct console *c)
{
	buf_free(&c->line);
	free(c->in_chunk);
	free(c->threads);
	free(c);
}

/*
 * Runs after every callback that may have been the last: reports "stopped"
 * once everything is closed, frees once destroyed.  Touches nothing after
 * chat_on_state, which may destroy (and so free) the adapter.
 */
static void
console_settle(struct console *c)
{
	if (c->pending > 0)
		return;
	if (c->destroyed) {
		console_free(c);
		return;
	}
	if (c->stopping && !c->stopped_sent) {
		c->stopped_sent = 1;
		c->hdr.state = "stopped";
		chat_on_state(&c->hdr, "stopped");
	}
}

static void
console_stop_settle(void *arg)
{
	struct console	*c = arg;

	c->pending--;
	/* Intake is closed: that is what "stopped" means; output lives on. */
	if (!c->destroyed && !c->stopped_sent) {
		c->stopped_sent = 1;
		c->hdr.state = "stopped";
		chat_on_state(&c->hdr, "stopped");
	}
	console_settle(c);
}

static struct adapter *
console_create(const struct config *cfg, char **cause)
{
	struct console	*c;
	char		*v;
	long long	 n;

	c = xcalloc(1, sizeof *c);
	c->hdr.ops = &console_ops;
	c->hdr.state = "created";
	c->hdr.refs = 1;
	c->in_fd = c->out_fd = -1;
	c->next_id = 1;
	if ((v = store_kv_get(CONSOLE_KV_NEXT)) != NULL) {
		if ((n = parse_uint(v)) > 0)
			c->next_id = (uint64_t)n;
		else
			log_warnx("console: ignoring bad %s", CONSOLE_KV_NEXT);
		free(v);
	}
	c->base = c->next_id;
	return &c->hdr;
}

static int
console_start(struct adapter *a, char **cause)
{
	struct console	*c = (struct console *)a;

	if (c->started) {
		*cause = xstrdup("console: already started");
		return -1;
	}
	c->in_chunk = xmalloc(CONSOLE_CHUNK);
	if (console_open_out(c, cause) == -1)
		return -1;
	c->started = 1;
	console_open_in(c);
	c->hdr.state = "connected";
	chat_on_state(a, "connected");
	return 0;
}

static void
console_stop(struct adapter *a)
{
	struct console	*c = (struct console *)a;

	if (c->stopping)
		return;
	c->stopping = 1;
	c->hdr.state = "stopping";
	/*
	 * Intake stops here; output stays open until destroy(), so the
	 * outbox can still flush what shutdown says ("interrupted...").
	 */
	console_close_in(c);
	/* "stopped" comes from the loop, never from inside stop(). */
	c->pending++;
	loop_defer(console_stop_settle, c);
}

static void
console_destroy(struct adapter *a)
{
	struct console	*c = (struct console *)a;

	if (c == NULL)
		return;
	if (!c->started && !c->stopping) {
		console_free(c);
		return;
	}
	if (!c->stopping)
		console_stop(a);
	c->destroyed = 1;
	/* Output already queued is flushed first (the last write closes). */
	if (c->nwrites == 0)
		console_close_out(c);
	console_settle(c);
}

static const struct adapter_caps *
console_caps_get(struct adapter *a)
{
	return &console_caps;
}

static int
console_send(struct adapter *a, struct chat_op *op)
{
	struct console	*c = (struct console *)a;
	struct buf	 b = { 0 };
	const char	*thread;
	char		 tmp[32], *ref;
	long long	 t;
	uint64_t	 id;

	if (!c->started || c->destroyed)
		return -1;
	switch (op->kind) {
	case CHAT_OP_POST:
		id = console_next_id(c);
		ref = xasprintf("%" PRIu64, id);
		/* A post without a thread opens one: its id is the thread's. */
		thread = op->thread != NULL ? op->thread : ref;
		if ((t = parse_uint(thread)) > 0)
			console_map(c, id, (uint64_t)t);
		buf_printf(&b, "[t%s] %s %s: ", thread, ref, CONSOLE_SELF);
		console_add_text(&b, op->text != NULL ? op->text : "");
		console_add_choices(&b, op);
		console_emit(c, buf_steal(&b), op, ref);
		return 0;
	case CHAT_OP_UPLOAD:
		id = console_next_id(c);
		ref = xasprintf("%" PRIu64, id);
		thread = op->thread != NULL ? op->thread : ref;
		if ((t = parse_uint(thread)) > 0)
			console_map(c, id, (uint64_t)t);
		buf_printf(&b, "[t%s] %s %s: ", thread, ref, CONSOLE_SELF);
		console_add_file(&b, op);
		console_emit(c, buf_steal(&b), op, ref);
		return 0;
	case CHAT_OP_EDIT:
	case CHAT_OP_REACT:
		if (op->target == NULL)
			break;
		thread = console_thread_label(c, op->target, op, tmp,
		    sizeof tmp);
		if (op->kind == CHAT_OP_REACT) {
			buf_printf(&b, "[t%s] +%s %s\n", thread,
			    op->emoji != NULL ? op->emoji : "?", op->target);
		} else {
			buf_printf(&b, "[t%s] ~%s ", thread, op->target);
			console_add_text(&b,
			    op->text != NULL ? op->text : "");
			if (!op->closed)
				console_add_choices(&b, op);
		}
		console_emit(c, buf_steal(&b), op, NULL);
		return 0;
	}
	/* Accepted so the outbox hears about it once, and never retries. */
	console_emit(c, NULL, op, NULL);
	return 0;
}

static const char *
console_self_id(struct adapter *a)
{
	return CONSOLE_SELF;
}

const struct adapter_ops console_ops = {
	.name = "console",
	.create = console_create,
	.start = console_start,
	.stop = console_stop,
	.destroy = console_destroy,
	.caps = console_caps_get,
	.send = console_send,
	.self_id = console_self_id,
};
