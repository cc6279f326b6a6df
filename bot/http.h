/*
 * http — asynchronous HTTP client on libcurl's multi interface, driven by the
 * libuv loop through CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION.
 *
 * Never blocks.  A request is described by struct http_request_opts (copied, so
 * the caller's buffers may go away after http_request returns) and finishes by
 * exactly one call to its callback — with a response (any HTTP status, 429 and
 * 5xx included) or with an error string (connect refused, timeout, TLS...), or
 * not at all if it was cancelled first.  TLS verification is on unless the
 * caller turns it off explicitly (tests against self-signed fakes only).
 */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <stddef.h>
#include <uv.h>

struct http_header {
	char	*name;		/* as received; compare case-insensitively */
	char	*value;		/* leading/trailing whitespace trimmed */
};

struct http_response {
	long			 status;	/* HTTP status code */
	char			*body;		/* NUL-terminated, may hold NULs */
	size_t			 body_len;
	struct http_header	*headers;	/* of the final response */
	size_t			 nheaders;
	double			 total_s;	/* transfer time */
};

/* First header with that name (case-insensitive), or NULL.  Borrowed. */
const char *http_response_header(const struct http_response *, const char *);

/*
 * Retry-After as milliseconds: the header (delta-seconds or HTTP-date), or
 * -1 when absent or unparsable.
 */
long long http_retry_after_ms(const struct http_response *);

/*
 * res is NULL iff error is non-NULL.  Both are borrowed for the duration of
 * the callback only.  The callback may start new requests.
 */
typedef void (*http_cb)(const struct http_response *res, const char *error,
    void *arg);

struct http_request_opts {
	const char		*method;	/* "GET" when NULL */
	const char		*url;
	const char *const	*headers;	/* "Name: value", NULL-terminated; may be NULL */
	const char		*body;		/* may be NULL */
	size_t			 body_len;
	long			 timeout_ms;	/* whole transfer; 0 = 30 s default */
	long			 connect_timeout_ms; /* 0 = 10 s default */
	size_t			 max_body;	/* response cap; 0 = 16 MiB */
	int			 insecure;	/* 1 = skip TLS verification (tests) */
	int			 follow_redirects; /* 1 = follow up to 5; 0 = deliver 3xx */
	/* TLS against a private CA / with a client certificate (files). */
	const char		*ca_file;	/* NULL = the system's CAs */
	const char		*client_cert, *client_key;
	/*
	 * Streaming (watches, followed logs): a 2xx body goes to on_data as
	 * it comes, never buffered, and the final callback gets an empty
	 * body; other statuses are buffered as usual.  on_data runs on the
	 * loop outside curl, so it may start or cancel requests (its own
	 * included: then nothing more is called).
	 */
	void			(*on_data)(const char *, size_t, void *arg);
};

struct http_req;

int	 http_init(uv_loop_t *);
/*
 * Cancels everything in flight without calling callbacks, frees all and
 * closes the uv handles; every struct http_req is invalid afterwards.
 */
void	 http_shutdown(void);
/* Number of requests in flight (graceful shutdown waits for them). */
size_t	 http_inflight(void);

/* Returns a handle valid until the callback has run or http_cancel. */
struct http_req *http_request(const struct http_request_opts *, http_cb, void *);
/* The callback will not be called.  Safe from inside other callbacks. */
void	 http_cancel(struct http_req *);

#endif
