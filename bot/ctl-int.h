/*
 * ctl-int — what ctl.c (connections, framing, replies) and ctl-unix.c (the
 * unix socket listener: bind, lock, peer credentials) share.  Not for other
 * files: they see bot/ctl.h.
 */
#ifndef SB_CTL_INT_H
#define SB_CTL_INT_H

#include "bot/ctl.h"
#include "bot/util.h"

#include <sys/queue.h>
#include <sys/types.h>

#include <uv.h>

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
	int64_t			 key;
	int			 remote;
	ctl_gone_cb		 on_gone;
	void			*gone_arg;
	TAILQ_ENTRY(ctl_req)	 entry;		/* on conn->pending */
};

struct ctl_conn {
	uv_pipe_t		 pipe;		/* data = this; unused when x */
	uv_shutdown_t		 shutdown;
	const struct ctl_transport *x;		/* NULL: the unix socket */
	void			*xarg;
	int			 xclosed;	/* x->close called */
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

void	ctl_server_maybe_free(struct ctl_server *);
/* flush: send what is queued, then EOF; else close at once (ctl.c). */
void	ctl_conn_close(struct ctl_conn *, int flush);
void	ctl_conn_alloc(uv_handle_t *, size_t, uv_buf_t *);
void	ctl_conn_read(uv_stream_t *, ssize_t, const uv_buf_t *);
/* An error line that belongs to no handler. */
void	ctl_conn_error(struct ctl_conn *, const json_t *id, const char *);
/* Refuses c (error line, close) past the limits: 1. */
int	ctl_conn_over_limits(struct ctl_conn *);

#endif
