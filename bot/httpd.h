/*
 * httpd — the HTTP server (webhooks, Slack Events API, /healthz, /metrics) on
 * libwebsockets, on the libuv loop.
 *
 * Handlers see the raw body exactly as received (signature checks need the
 * exact bytes) and answer synchronously: "ack first, work later" means the
 * handler records the event durably, fills the response and schedules the
 * work on the loop.  Bodies over the limit get 413 before the handler runs.
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
	const char	*extra_header;	/* one "Name: value" or NULL, e.g. Retry-After */
};

typedef void (*httpd_handler)(const struct httpd_request *,
    struct httpd_response *, void *arg);

/* Register before or after start.  Exact path match; method NULL = any. */
void	 httpd_route(const char *method, const char *path, httpd_handler,
	    void *arg);
/* Removes every route with that path. */
void	 httpd_unroute(const char *path);

/*
 * listen "127.0.0.1:8080" (or ":8080", "[::1]:8080").  Port 0 picks one;
 * httpd_port() tells which.  -1 with *cause on failure (port in use).
 */
int	 httpd_start(const char *listen, size_t max_body, char **cause);
int	 httpd_port(void);
/* While set, GET /healthz answers 503 with "status":"failing". */
void	 httpd_health_failing(int);
/* Stops listening and forgets every route.  Also run as a shutdown hook. */
void	 httpd_stop(void);

#endif
