/*
 * httpd — the HTTP server (webhooks, Slack Events API, /healthz, /metrics) on
 * libwebsockets, on the libuv loop.
 *
 * Handlers see the raw body exactly as received (signature checks need the
 * exact bytes) and answer synchronously: "ack first, work later" means the
 * handler records the event durably, fills the response and schedules the
 * work on the loop.  Bodies over the limit get 413 before the handler runs.
 *
 * WebSocket endpoints share the listener: a route made with httpd_ws_route()
 * gets the upgrade handshake (to accept or refuse on its headers), whole
 * text messages, and a "writable" turn per frame, the libwebsockets way.
 */
#ifndef SB_HTTPD_H
#define SB_HTTPD_H

#include <stddef.h>

struct httpd_request {
	const char	*method;	/* "GET", "POST", ... */
	const char	*path;		/* without the query */
	const char	*query;		/* after '?', or "" */
	const char	*body;		/* raw bytes, NUL-terminated for convenience */
	size_t		 body_len;
	const char	*peer;		/* "127.0.0.1" */
	void		*priv;		/* httpd's */
};

/* Header value (case-insensitive name), or NULL.  Borrowed from the request. */
const char *httpd_header(const struct httpd_request *, const char *name);

struct httpd_response {
	int		 status;	/* 200 when left 0 */
	const char	*content_type;	/* "text/plain" when NULL */
	char		*body;		/* malloc'd; httpd frees it */
	size_t		 body_len;	/* strlen(body) when 0 and body != NULL */
	/* "Name: value" lines separated by '\n', or NULL, e.g. Retry-After */
	const char	*extra_header;
};

typedef void (*httpd_handler)(const struct httpd_request *,
    struct httpd_response *, void *arg);

/* Register before or after start.  Exact path match; method NULL = any. */
void	 httpd_route(const char *method, const char *path, httpd_handler,
	    void *arg);
/*
 * Removes every route with that path.  WebSocket connections of a removed
 * route are closed and get no further callbacks.
 */
void	 httpd_unroute(const char *path);

/*
 * listen "127.0.0.1:8080" (or ":8080", "[::1]:8080").  Port 0 picks one;
 * httpd_port() tells which.  -1 with *cause on failure (port in use).
 */
int	 httpd_start(const char *listen, size_t max_body, char **cause);
int	 httpd_port(void);
/* While set, GET /healthz answers 503 with "status":"failing". */
/* Stops listening and forgets every route.  Also run as a shutdown hook. */
void	 httpd_stop(void);

/* ---- WebSocket endpoints ------------------------------------------------ */

struct httpd_ws;	/* one connection; owned by httpd */

struct httpd_ws_handler {
	/*
	 * The upgrade request (headers through httpd_header()).  0 accepts,
	 * -1 refuses: the connection is dropped without a handshake.
	 * Mandatory.
	 */
	int	(*open)(struct httpd_ws *, const struct httpd_request *,
		    void *arg);
	/* One whole text or binary message, borrowed.  Mandatory. */
	void	(*message)(struct httpd_ws *, const char *, size_t, void *arg);
	/* The socket takes one frame now (after httpd_ws_want_write). */
	void	(*writable)(struct httpd_ws *, void *arg);
	/* The connection is gone; the handle is invalid after this. */
	void	(*close)(struct httpd_ws *, void *arg);
};

/* Exact path match (query ignored); the handler struct must outlive it. */
void	 httpd_ws_route(const char *path, const struct httpd_ws_handler *,
	    void *arg);
void	 httpd_ws_set_data(struct httpd_ws *, void *);
void	*httpd_ws_data(const struct httpd_ws *);
/* Asks for one writable callback. */
void	 httpd_ws_want_write(struct httpd_ws *);
/* Sends one text frame; only from inside writable.  -1: drop the peer. */
int	 httpd_ws_send(struct httpd_ws *, const char *, size_t);
/* Closes at the next writable turn; close() still runs. */
void	 httpd_ws_close(struct httpd_ws *);
/* Connections open on this listener, over every WebSocket route. */
int	 httpd_ws_count(void);

#endif
