/*
 * The unix socket side of ctl (bot/ctl.h): binding with the umask tightened,
 * the lock file, replacing a stale socket, accepting with the peer's
 * credentials (SO_PEERCRED) and closing.  Connections and framing are
 * ctl.c's.
 */
#include "bot/ctl.h"
#include "bot/ctl-int.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
listener_closed(uv_handle_t *h)
{
	struct ctl_server	*srv = h->data;

	srv->listener_closed = 1;
	ctl_server_maybe_free(srv);
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
		ctl_conn_close(c, 0);
		return;
	}
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &credlen) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
	}
	log_debug("ctl: %s: connection %u from pid %d uid %d", srv->path,
	    c->num, (int)c->pid, (int)c->uid);

	/* The 0600 mode should make this impossible; check anyway. */
	if (c->uid != geteuid() && c->uid != 0) {
		log_warnx("ctl: %s: refusing uid %d", srv->path, (int)c->uid);
		ctl_conn_error(c, NULL, "permission denied");
		ctl_conn_close(c, 1);
		return;
	}
	if (srv->admit != NULL &&
	    (c->key = srv->admit(c->pid, c->uid, srv->admit_arg)) < 0) {
		log_warnx("ctl: %s: refusing pid %d", srv->path, (int)c->pid);
		ctl_conn_error(c, NULL, "permission denied");
		ctl_conn_close(c, 1);
		return;
	}
	if (ctl_conn_over_limits(c) != 0)
		return;
	if ((r = uv_read_start((uv_stream_t *)&c->pipe, ctl_conn_alloc,
	    ctl_conn_read)) != 0) {
		log_warnx("ctl: connection %u: read: %s", c->num,
		    uv_strerror(r));
		ctl_conn_close(c, 0);
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
	/* ctl_conn_close unlinks nothing from the list: that waits for libuv. */
	LIST_FOREACH(c, &srv->conns, entry)
		ctl_conn_close(c, 0);
}
