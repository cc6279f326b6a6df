/*
 * ws — WebSocket client on libwebsockets, running on the libuv loop.
 *
 * ws:// and wss://, text frames both ways, pings on an interval and a
 * dead-connection timer: when neither a frame nor a pong has arrived for
 * dead_ms, the connection is closed and on_close reports why.  Close codes
 * and reasons from the peer are surfaced as they came.  Reconnecting is the
 * caller's policy (adapters), never done here.
 */
#ifndef SB_WS_H
#define SB_WS_H

#include <stddef.h>

struct ws_conn;

struct ws_callbacks {
	void	(*on_open)(struct ws_conn *, void *arg);
	/* One complete message (fragments reassembled).  Borrowed. */
	void	(*on_text)(struct ws_conn *, const char *, size_t, void *arg);
	/*
	 * Called exactly once per ws_connect, also when the connection never
	 * opened.  code: the peer's close code, 1006 for an abnormal end,
	 * 0 if it never connected.  reason: human-readable, borrowed.
	 * The conn is freed after this returns.
	 */
	void	(*on_close)(struct ws_conn *, int code, const char *reason,
		    void *arg);
};

struct ws_opts {
	const char	*url;		/* ws://host:port/path or wss://... */
	unsigned	 ping_ms;	/* ping interval; 0 = 10 s */
	unsigned	 dead_ms;	/* silence limit; 0 = 30 s */
	size_t		 max_message;	/* 0 = 1 MiB; larger → close 1009 */
	int		 insecure;	/* skip TLS verification (tests) */
};

/* NULL with *cause set on immediate failure (bad URL). */
struct ws_conn *ws_connect(const struct ws_opts *, const struct ws_callbacks *,
	    void *arg, char **cause);
/* Queues a text frame.  -1 if the connection is not open. */
int	 ws_send_text(struct ws_conn *, const char *, size_t);
/* Starts a clean close; on_close follows. */
void	 ws_close(struct ws_conn *, int code, const char *reason);

#endif
