#include "bot/ctl-client.h"
#include "bot/ctl.h"
#include "bot/util.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Ids only need to be unique on one connection; one counter per process. */
static json_int_t	ctl_next_id = 1;

int
ctl_connect(const char *path, char **cause)
{
	struct sockaddr_un	 sun;
	int			 fd;

	if (strlen(path) >= sizeof sun.sun_path) {
		*cause = xasprintf("socket path too long: %s", path);
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	/* Non-blocking: a wedged daemon with a full backlog must not hang us. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		*cause = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		return fd;
	switch (errno) {
	case ENOENT:
	case ENOTDIR:
	case ECONNREFUSED:
		*cause = xasprintf("no daemon at %s (is switchboard serve "
		    "running?)", path);
		break;
	case EACCES:
	case EPERM:
		*cause = xasprintf("permission denied on %s (is the daemon "
		    "running as another user?)", path);
		break;
	case EAGAIN:
		*cause = xasprintf("daemon at %s is not accepting connections "
		    "(busy or hung)", path);
		break;
	default:
		*cause = xasprintf("connect %s: %s", path, strerror(errno));
		break;
	}
	close(fd);
	return -1;
}

void
ctl_disconnect(int fd)
{
	if (fd != -1)
		close(fd);
}

/* 1 ready, 0 deadline passed, -1 error.  deadline 0 = none. */
static int
ctl_wait(int fd, short events, uint64_t deadline)
{
	struct pollfd	 pfd;
	uint64_t	 now;
	int		 ms, n;

	for (;;) {
		ms = -1;
		if (deadline != 0) {
			if ((now = now_ms()) >= deadline)
				return 0;
			ms = (int)(deadline - now);
		}
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		if ((n = poll(&pfd, 1, ms)) > 0)
			return 1;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

static ssize_t
plain_send(struct ctl_io *io, const void *p, size_t len, short *events)
{
	*events = POLLOUT;
	/* MSG_NOSIGNAL: a CLI that has not ignored SIGPIPE must live. */
	return send(io->fd, p, len, MSG_NOSIGNAL);
}

static ssize_t
plain_recv(struct ctl_io *io, void *p, size_t len, int peek, short *events)
{
	*events = POLLIN;
	return recv(io->fd, p, len, peek ? MSG_PEEK : 0);
}

static int
ctl_send_all(struct ctl_io *io, const char *p, size_t len, uint64_t deadline,
    char **cause)
{
	ssize_t	 n;
	short	 events;

	while (len > 0) {
		n = io->send(io, p, len, &events);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			switch (ctl_wait(io->fd, events, deadline)) {
			case 1:
				continue;
			case 0:
				*cause = xstrdup("timed out sending to the "
				    "daemon");
				return -1;
			}
		}
		if (errno == EPIPE || errno == ECONNRESET) {
			*cause = xstrdup("daemon closed the connection");
			return -2;
		}
		*cause = xasprintf("send: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads one line (without its newline) into line. */
static int
ctl_read_line(struct ctl_io *io, struct buf *line, uint64_t deadline,
    char **cause)
{
	char	 tmp[64 * 1024], *nl;
	ssize_t	 n;
	size_t	 take;
	short	 events;

	buf_reset(line);
	for (;;) {
		n = io->recv(io, tmp, sizeof tmp, 1, &events);
		if (n > 0) {
			nl = memchr(tmp, '\n', (size_t)n);
			take = nl != NULL ? (size_t)(nl - tmp) + 1 : (size_t)n;
			/* The bytes are there: this cannot come up short. */
			if (io->recv(io, tmp, take, 0, &events) !=
			    (ssize_t)take) {
				*cause = xasprintf("recv: %s", strerror(errno));
				return -1;
			}
			buf_add(line, tmp, nl != NULL ? take - 1 : take);
			if (line->len > CTL_MAX_LINE) {
				*cause = xasprintf("reply from the daemon "
				    "longer than %d bytes", CTL_MAX_LINE);
				return -1;
			}
			if (nl != NULL)
				return 0;
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			*cause = xstrdup("daemon closed the connection");
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			*cause = xasprintf("recv: %s", strerror(errno));
			return -1;
		}
		switch (ctl_wait(io->fd, events, deadline)) {
		case 0:
			*cause = xstrdup("timed out waiting for the daemon");
			return -1;
		case -1:
			*cause = xasprintf("poll: %s", strerror(errno));
			return -1;
		}
	}
}

int
ctl_call(int fd, json_t *request, json_t **reply, int timeout_ms,
    char **cause)
{
	struct ctl_io	 io = { .fd = fd, .send = plain_send,
	    .recv = plain_recv };

	return ctl_call_io(&io, request, reply, timeout_ms, cause);
}

int
ctl_call_io(struct ctl_io *io, json_t *request, json_t **reply,
    int timeout_ms, char **cause)
{
	struct buf	 line = { NULL, 0, 0 };
	json_t		*msg = NULL, *jid;
	json_int_t	 id = ctl_next_id++;
	uint64_t	 deadline = 0;
	const char	*error;
	char		*out;
	size_t		 len;
	int		 rv = -1;

	*reply = NULL;
	if (timeout_ms >= 0)
		deadline = now_ms() + (uint64_t)timeout_ms;
	json_object_set_new(request, "v", json_integer(CTL_VERSION));
	json_object_set_new(request, "id", json_integer(id));
	if ((out = json_dumps(request, JSON_COMPACT)) == NULL) {
		*cause = xstrdup("cannot serialise the request");
		return -1;
	}
	if ((len = strlen(out)) > CTL_MAX_LINE) {
		*cause = xasprintf("request too large (%zu bytes, max %d)",
		    len, CTL_MAX_LINE);
		free(out);
		return -1;
	}
	out = xrealloc(out, len + 2);
	out[len++] = '\n';
	out[len] = '\0';
	rv = ctl_send_all(io, out, len, deadline, cause);
	free(out);
	if (rv == -2) {
		/*
		 * The daemon hung up before reading us: it may have said why
		 * first ("permission denied", "too many connections").  That
		 * line, if any, is the answer.
		 */
		char	*why = NULL;

		if (ctl_read_line(io, &line, now_ms() + 1000, &why) == 0 &&
		    (msg = json_loadb(line.data, line.len, 0, NULL)) != NULL &&
		    json_is_false(json_object_get(msg, "ok")) &&
		    (error = json_string_value(json_object_get(msg,
		    "error"))) != NULL) {
			free(*cause);
			*cause = xstrdup(error);
			rv = CTL_REFUSED;
		} else
			rv = -1;
		free(why);
		json_decref(msg);
		buf_free(&line);
		return rv;
	}
	if (rv != 0)
		return -1;

	for (;;) {
		if (ctl_read_line(io, &line, deadline, cause) != 0) {
			rv = -1;
			break;
		}
		msg = json_loadb(line.data, line.len, 0, NULL);
		if (!json_is_object(msg)) {
			*cause = xstrdup("malformed reply from the daemon");
			rv = -1;
			break;
		}
		jid = json_object_get(msg, "id");
		/*
		 * A null id is about the connection (our line was too long,
		 * too many connections): it answers us too.
		 */
		if ((json_is_integer(jid) && json_integer_value(jid) == id) ||
		    (json_is_null(jid) &&
		    json_is_false(json_object_get(msg, "ok")))) {
			if (json_is_true(json_object_get(msg, "ok"))) {
				*reply = msg;
				msg = NULL;
				rv = 0;
			} else {
				error = json_string_value(
				    json_object_get(msg, "error"));
				*cause = xstrdup(error != NULL ? error :
				    "request failed");
				rv = CTL_REFUSED;
			}
			break;
		}
		json_decref(msg);
		msg = NULL;
	}
	json_decref(msg);
	buf_free(&line);
	return rv;
}
