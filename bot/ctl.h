/*
 * ctl — the unix-socket JSON-lines server on the loop, shared by the control
 * socket (CLI: status, agents, cancel) and the agent socket (progress, ask,
 * done).
 *
 * One JSON object per line, at most CTL_MAX_LINE bytes.  A request is
 * {"v":1,"id":N,"op":"name",...}; every reply echoes the id and carries
 * "ok":true or "ok":false with "error".  Replies may leave out of order: a
 * handler can keep its struct ctl_req and answer minutes later (an agent's
 * "ask") while other requests on the same connection are answered at once.
 *
 * The decision worth knowing: a ctl_req belongs to the handler until it calls
 * ctl_reply or ctl_reply_error on it, exactly once, and stays valid until
 * then even if the peer hangs up.  When the peer goes (or the server closes)
 * the owner hears it through the on_gone callback; its reply is then simply
 * discarded.  So there is no moment at which the owner holds a freed request,
 * and a request nobody answers shows up as a leak under LSan, not a crash.
 */
#ifndef SB_CTL_H
#define SB_CTL_H

#include <jansson.h>
#include <sys/types.h>

#define CTL_VERSION	1
#define CTL_MAX_LINE	(1024 * 1024)	/* bytes, without the newline */
#define CTL_MAX_CONNS	256

struct ctl_server;
struct ctl_req;

/*
 * Called once per well-formed request whose op was registered.  request is
 * borrowed for the duration of the call (json_incref to keep it).  The handler
 * answers now or later; see the ownership rule above.
 */
typedef void	(*ctl_handler)(struct ctl_req *, const json_t *request,
		    void *arg);
/* The peer hung up or the server closed while the request was pending. */
typedef void	(*ctl_gone_cb)(struct ctl_req *, void *arg);

/*
 * Binds path (mode 0600 from the first instant: the umask is tightened around
 * bind) and listens on the loop.  A stale socket file left by a dead daemon is
 * replaced; a live one is refused with cause "... already running ...".  A
 * lock file path.lock, held for the server's life, makes two daemons starting
 * at once unable to steal each other's socket.  NULL + cause on failure.
 */
struct ctl_server *ctl_listen(const char *path, char **cause);

/* Registers (or replaces) the handler for op. */
void		 ctl_on(struct ctl_server *, const char *op, ctl_handler,
		    void *arg);
/* Default CTL_MAX_CONNS; connections past it get an error line and EOF. */
void		 ctl_set_max_conns(struct ctl_server *, unsigned);

/*
 * Who may connect, decided when a connection is accepted, from the peer's
 * SO_PEERCRED pid and uid: a key >= 0 puts it in a group of which at most
 * per_key connections are open at once (so one peer cannot take the whole
 * CTL_MAX_CONNS from the others); -1 refuses it ("permission denied").
 */
typedef int64_t	(*ctl_admit_fn)(pid_t, uid_t, void *arg);
void		 ctl_set_admit(struct ctl_server *, ctl_admit_fn, void *arg,
		    unsigned per_key);

/*
 * Connections of another transport (orchestrator/agentnet.c: TLS for agents
 * in pods) share a server's ops, limits and framing.  The transport moves
 * bytes and tells the server what happened; the server calls it back:
 * send() queues one reply line (line is stolen), queued() says how many
 * bytes wait unsent, pause() stops (1) or resumes (0) taking input while
 * the peer does not read its replies, close() ends the connection (flush:
 * after what is queued) — never re-entrantly: the transport finishes it
 * from its own callbacks and then calls ctl_conn_gone().
 */
struct ctl_conn;
struct ctl_transport {
	const char	*name;
	void		 (*send)(void *arg, char *line, size_t len);
	size_t		 (*queued)(void *arg);
	void		 (*pause)(void *arg, int on);
	void		 (*close)(void *arg, int flush);
};

/*
 * A new connection in group key (like an admit key: per_key of them at
 * once).  Never NULL unless the server is closing; past the limits it is
 * refused at once (an error line, then close()).
 */
struct ctl_conn	*ctl_conn_attach(struct ctl_server *,
		    const struct ctl_transport *, void *arg, int64_t key);
/* Bytes from the peer. */
void		 ctl_conn_input(struct ctl_conn *, const void *, size_t);
/* Some of the queued bytes went out: input paused for them may resume. */
void		 ctl_conn_drained(struct ctl_conn *);
/*
 * The peer is gone, or close() has finished: pending requests hear of it
 * and the connection is freed (the transport's arg is never used again).
 */
void		 ctl_conn_gone(struct ctl_conn *);

/*
 * Stops listening, unlinks the socket (if it is still ours), releases the
 * lock (the lock file itself stays: unlinking it would let two daemons lock
 * two different files) and closes every connection.  Replies already handed
 * to ctl_reply are in the kernel unless the peer stopped reading.  Pending
 * requests get their on_gone callback now; their owners still reply (the
 * reply is dropped).  Memory is released from libuv close callbacks, so this
 * is safe to call from inside a handler or an on_gone callback; the pointer
 * must not be used afterwards.
 */
void		 ctl_close(struct ctl_server *);

/*
 * Answers req and releases it.  fields (stolen, may be NULL) are merged into
 * the reply; "v", "id" and "ok":true are set over them.  A no-op apart from
 * freeing when the peer is gone.
 */
void		 ctl_reply(struct ctl_req *, json_t *fields);
void		 ctl_reply_error(struct ctl_req *, const char *fmt, ...)
		    __attribute__((format(printf, 2, 3)));

/*
 * Asks to hear when the peer goes while req is pending.  Called at most once;
 * called immediately if the peer is already gone.  The callback may reply to
 * req (and to any other request).
 */
void		 ctl_req_on_gone(struct ctl_req *, ctl_gone_cb, void *arg);
int		 ctl_req_gone(const struct ctl_req *);

/* Borrowed from req; valid until it is answered. */
const char	*ctl_req_op(const struct ctl_req *);
json_int_t	 ctl_req_id(const struct ctl_req *);
/* The peer's credentials (SO_PEERCRED) taken when it connected. */
pid_t		 ctl_req_pid(const struct ctl_req *);
uid_t		 ctl_req_uid(const struct ctl_req *);
/* The group its connection was admitted in (admit key, or attach key). */
int64_t		 ctl_req_key(const struct ctl_req *);
/* 1 if it came over another transport (no peer credentials). */
int		 ctl_req_remote(const struct ctl_req *);

#endif
