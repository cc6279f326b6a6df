#include "bot/http.h"
#include "bot/log.h"
#include "bot/util.h"

#include <curl/curl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_USER_AGENT		"switchboard/0.1"
#define HTTP_TIMEOUT_MS		30000L
#define HTTP_CONNECT_MS		10000L
#define HTTP_MAX_BODY		(16 * 1024 * 1024)

struct http_req {
	CURL			*easy;
	struct curl_slist	*hdrs;
	char			*body;		/* our copy of the request body */
	struct buf		 resp;
	size_t			 max_body;
	int			 too_large;
	int			 in_cb;		/* its callback is running */
	int			 cancelled;	/* http_cancel during on_data */
	void			(*on_data)(const char *, size_t, void *);
	struct buf		 chunk;		/* streamed bytes not yet delivered */
	char			 errbuf[CURL_ERROR_SIZE];
	http_cb			 cb;
	void			*arg;
	struct http_req		*prev, *next;	/* in flight */
};

/* One per socket curl asks us to watch, hung on it with curl_multi_assign. */
struct http_sock {
	uv_poll_t		 poll;
	curl_socket_t		 fd;
	int			 events;	/* being watched, UV_* */
	struct http_sock	*prev, *next;
};

static uv_loop_t	*http_loop;
static CURLM		*http_multi;
static uv_timer_t	*http_timer;
static struct http_req	*http_reqs;
static struct http_sock	*http_socks;
static size_t		 http_count;

static void	http_check_done(void);

/*
 * Easy handles of finished requests, reset, for the next ones: a
 * curl_easy_init and a curl_easy_cleanup per request were ~15K
 * instructions each (callgrind, two Web API calls per Slack command).
 * curl_easy_reset drops every option (and so every pointer into the
 * finished request) and keeps only caches: DNS, TLS sessions.
 */
#define HTTP_SPARE	8
static CURL		*http_spare[HTTP_SPARE];
static size_t		 http_nspare;

static CURL *
easy_get(void)
{
	CURL	*e;

	if (http_nspare > 0)
		return http_spare[--http_nspare];
	if ((e = curl_easy_init()) == NULL)
		fatalx("http_request: curl_easy_init failed");
	return e;
}

/* e is in no multi handle. */
static void
easy_put(CURL *e)
{
	if (e == NULL)
		return;
	if (http_multi != NULL && http_nspare < HTTP_SPARE) {
		curl_easy_reset(e);
		http_spare[http_nspare++] = e;
	} else
		curl_easy_cleanup(e);
}

/*
 * The loop should stay alive while a request is in flight (graceful shutdown
 * waits for them) but not for curl's bookkeeping once everything is done, so
 * our handles are referenced only while http_count > 0.
 */
static void
http_ref_handle(uv_handle_t *h)
{
	if (http_count > 0)
		uv_ref(h);
	else
		uv_unref(h);
}

static void
http_update_refs(void)
{
	struct http_sock	*s;

	if (http_timer != NULL)
		http_ref_handle((uv_handle_t *)http_timer);
	for (s = http_socks; s != NULL; s = s->next)
		http_ref_handle((uv_handle_t *)&s->poll);
}

static void
http_on_timer(uv_timer_t *t)
{
	int	 running;

	curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done();
}

/*
 * curl's CURLMOPT_TIMERFUNCTION.  Never call curl_multi_socket_action from
 * here: curl calls this from inside itself (curl_multi_add_handle among
 * others), so even "now" (0) goes through the uv timer, which runs it on the
 * next loop turn.
 */
static int
http_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	if (timeout_ms < 0)
		uv_timer_stop(http_timer);
	else
		uv_timer_start(http_timer, http_on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static void
http_on_poll(uv_poll_t *p, int status, int events)
{
	struct http_sock	*s = p->data;
	int			 flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	/* s may be closed by http_sock_cb under this call; fd is copied. */
	curl_multi_socket_action(http_multi, s->fd, flags, &running);
	http_check_done();
}

static void
http_timer_free(uv_handle_t *h)
{
	free(h);
}

static void
http_sock_free(uv_handle_t *h)
{
	free(h->data);
}

static void
http_sock_close(struct http_sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		http_socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	/*
	 * uv_close stops polling at once, before curl closes the fd; the
	 * memory goes on the next turn.  curl may reuse the fd number for a
	 * new socket meanwhile, which gets a new http_sock of its own.
	 */
	uv_close((uv_handle_t *)&s->poll, http_sock_free);
}

/* curl's CURLMOPT_SOCKETFUNCTION: which events to watch on which socket. */
static int
http_sock_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct http_sock	*s = sockp;
	int			 events = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(http_multi, fd, NULL);
			http_sock_close(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->fd = fd;
		if (uv_poll_init_socket(http_loop, &s->poll, fd) != 0) {
			log_warnx("http: cannot poll socket %d", (int)fd);
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->next = http_socks;
		if (http_socks != NULL)
			http_socks->prev = s;
		http_socks = s;
		curl_multi_assign(http_multi, fd, s);
		http_ref_handle((uv_handle_t *)&s->poll);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	/*
	 * libuv's uv_poll_start takes the fd out of epoll and puts it back
	 * (two epoll_ctl calls) even when nothing changed, which curl asks
	 * for again and again on a kept-alive connection.
	 */
	if (events != s->events || !uv_is_active((uv_handle_t *)&s->poll)) {
		uv_poll_start(&s->poll, events, http_on_poll);
		s->events = events;
	}
	return 0;
}

static size_t
http_write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;

	n *= size;
	if (r->on_data != NULL) {
		long	 code = 0;

		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 300) {
			/* Delivered by http_flush_streams, outside curl. */
			buf_add(&r->chunk, p, n);
			return n;
		}
	}
	if (r->resp.len + n > r->max_body) {
		r->too_large = 1;
		return 0;	/* curl aborts with CURLE_WRITE_ERROR */
	}
	buf_add(&r->resp, p, n);
	return n;
}

static void
http_unlink(struct http_req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		http_reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
	http_count--;
}

static void
http_req_free(struct http_req *r)
{
	easy_put(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->body);
	buf_free(&r->resp);
	buf_free(&r->chunk);
	free(r);
}

/*
 * Headers of the final response only: curl's header API keeps 1xx and
 * CONNECT responses apart by origin, and request -1 is the last response of
 * the transfer, so nothing from a 100 Continue, a proxy or an earlier
 * redirect leaks in.  It also trims values and unfolds continuation lines.
 */
static void
http_collect_headers(struct http_req *r, struct http_response *res)
{
	struct curl_header	*h = NULL;
	size_t			 n = 0;

	while ((h = curl_easy_nextheader(r->easy, CURLH_HEADER, -1, h)) != NULL)
		n++;
	if (n == 0)
		return;
	res->headers = xcalloc(n, sizeof *res->headers);
	while ((h = curl_easy_nextheader(r->easy, CURLH_HEADER, -1, h)) != NULL &&
	    res->nheaders < n) {
		res->headers[res->nheaders].name = xstrdup(h->name);
		res->headers[res->nheaders].value = xstrdup(h->value);
		res->nheaders++;
	}
}

static char *
http_error(struct http_req *r, CURLcode rc)
{
	if (r->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return xstrdup("response too large");
	if (r->errbuf[0] != '\0')
		return xasprintf("%s: %s", curl_easy_strerror(rc), r->errbuf);
	return xstrdup(curl_easy_strerror(rc));
}

static void
http_finish(struct http_req *r, CURLcode rc)
{
	struct http_response	 res;
	char			*error = NULL;
	size_t			 i;

	memset(&res, 0, sizeof res);
	if (rc != CURLE_OK)
		error = http_error(r, rc);
	else {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
		curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &res.total_s);
		if (r->resp.data == NULL)
			buf_add(&r->resp, "", 0);
		res.body = r->resp.data;
		res.body_len = r->resp.len;
		http_collect_headers(r, &res);
	}
	/*
	 * Everything needed is copied out, so the easy handle goes before the
	 * callback: that one may even call http_shutdown, after which no curl
	 * object should outlive curl_global_cleanup (it frees the spares).
	 */
	easy_put(r->easy);
	r->easy = NULL;
	r->in_cb = 1;
	r->cb(error != NULL ? NULL : &res, error, r->arg);
	free(error);
	for (i = 0; i < res.nheaders; i++) {
		free(res.headers[i].name);
		free(res.headers[i].value);
	}
	free(res.headers);
	http_req_free(r);
}

/*
 * Delivers finished transfers.  A callback may start requests, cancel others
 * (curl_multi_remove_handle also drops their queued DONE message, so they are
 * never read here afterwards) or even shut the module down; each message is
 * therefore read only after the previous callback has returned.
 */
/*
 * Streamed bytes go to on_data here, after curl returned: a callback may then
 * use curl (start, cancel) freely.  One request at a time, rescanning the
 * list after each, since a callback may cancel any request.
 */
static void
http_flush_streams(void)
{
	struct http_req	*r;
	struct buf	 b;

	for (;;) {
		for (r = http_reqs; r != NULL; r = r->next)
			if (r->on_data != NULL && r->chunk.len > 0 && !r->in_cb)
				break;
		if (r == NULL)
			return;
		b = r->chunk;
		memset(&r->chunk, 0, sizeof r->chunk);
		r->in_cb = 1;
		r->on_data(b.data, b.len, r->arg);
		buf_free(&b);
		r->in_cb = 0;
		if (r->cancelled)
			http_cancel(r);
	}
}

static void
http_check_done(void)
{
	CURLMsg		*m;
	struct http_req	*r;
	CURLcode	 rc;
	int		 left;

	http_flush_streams();
	while (http_multi != NULL &&
	    (m = curl_multi_info_read(http_multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		curl_multi_remove_handle(http_multi, r->easy);
		http_unlink(r);
		http_update_refs();
		if (r->on_data != NULL && r->chunk.len > 0) {
			/* Its last bytes first; it may cancel itself there. */
			r->in_cb = 1;
			r->on_data(r->chunk.data, r->chunk.len, r->arg);
			r->in_cb = 0;
			buf_reset(&r->chunk);
			if (r->cancelled) {
				http_req_free(r);
				continue;
			}
		}
		http_finish(r, rc);
	}
}

static void
http_set_method(struct http_req *r, const struct http_request_opts *o)
{
	const char	*method = o->method != NULL ? o->method : "GET";
	int		 post = strcmp(method, "POST") == 0;

	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
		return;
	}
	if (o->body != NULL || post) {
		/* Copied because the caller's buffer may go away; may hold NULs. */
		r->body = xmalloc(o->body_len + 1);
		if (o->body_len > 0)
			memcpy(r->body, o->body, o->body_len);
		r->body[o->body_len] = '\0';
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)o->body_len);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	}
	if (!post && (r->body != NULL || strcmp(method, "GET") != 0))
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
}

struct http_req *
http_request(const struct http_request_opts *o, http_cb cb, void *arg)
{
	struct http_req		*r;
	const char *const	*h;
	CURLMcode		 mc;

	if (http_multi == NULL)
		fatalx("http_request: http_init was not called");
	r = xcalloc(1, sizeof *r);
	r->cb = cb;
	r->arg = arg;
	r->max_body = o->max_body != 0 ? o->max_body : HTTP_MAX_BODY;
	r->easy = easy_get();

	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_URL, o->url);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	/* Threaded resolver and no SIGALRM: a daemon with its own signals. */
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, HTTP_USER_AGENT);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	if (o->follow_redirects) {
		curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(r->easy, CURLOPT_MAXREDIRS, 5L);
	}
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS,
	    o->timeout_ms > 0 ? o->timeout_ms : HTTP_TIMEOUT_MS);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS,
	    o->connect_timeout_ms > 0 ? o->connect_timeout_ms : HTTP_CONNECT_MS);
	/* Lets curl refuse early when Content-Length already says too much. */
	curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)r->max_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	if (o->insecure) {
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	if (o->ca_file != NULL)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, o->ca_file);
	if (o->client_cert != NULL) {
		curl_easy_setopt(r->easy, CURLOPT_SSLCERT, o->client_cert);
		curl_easy_setopt(r->easy, CURLOPT_SSLKEY, o->client_key);
	}
	r->on_data = o->on_data;
	for (h = o->headers; h != NULL && *h != NULL; h++) {
		/* curl_slist_append copies; NULL only when out of memory. */
		r->hdrs = curl_slist_append(r->hdrs, *h);
		if (r->hdrs == NULL)
			fatalx("http_request: out of memory");
	}
	if (r->hdrs != NULL)
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	http_set_method(r, o);

	/* Nothing is delivered from here: the first socket_action is a timer. */
	if ((mc = curl_multi_add_handle(http_multi, r->easy)) != CURLM_OK)
		fatalx("http_request: %s", curl_multi_strerror(mc));
	r->next = http_reqs;
	if (http_reqs != NULL)
		http_reqs->prev = r;
	http_reqs = r;
	http_count++;
	http_update_refs();
	return r;
}

void
http_cancel(struct http_req *r)
{
	if (r == NULL)
		return;
	/* Its own callback is running: it is freed when that returns. */
	if (r->in_cb) {
		r->cancelled = 1;
		return;
	}
	curl_multi_remove_handle(http_multi, r->easy);
	http_unlink(r);
	http_update_refs();
	http_req_free(r);
}

size_t
http_inflight(void)
{
	return http_count;
}

int
http_init(uv_loop_t *loop)
{
	if (http_multi != NULL)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("http: curl_global_init failed");
		return -1;
	}
	if ((http_multi = curl_multi_init()) == NULL) {
		log_warnx("http: curl_multi_init failed");
		curl_global_cleanup();
		return -1;
	}
	http_loop = loop;
	http_timer = xcalloc(1, sizeof *http_timer);
	uv_timer_init(loop, http_timer);
	uv_unref((uv_handle_t *)http_timer);
	curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, http_sock_cb);
	curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
	return 0;
}

void
http_shutdown(void)
{
	struct http_req	*r;

	if (http_multi == NULL)
		return;
	while ((r = http_reqs) != NULL) {
		curl_multi_remove_handle(http_multi, r->easy);
		http_unlink(r);
		http_req_free(r);
	}
	while (http_nspare > 0)
		curl_easy_cleanup(http_spare[--http_nspare]);
	/* Closing cached connections may still call http_sock_cb. */
	curl_multi_cleanup(http_multi);
	http_multi = NULL;
	while (http_socks != NULL)
		http_sock_close(http_socks);
	uv_close((uv_handle_t *)http_timer, http_timer_free);
	http_timer = NULL;
	http_loop = NULL;
	curl_global_cleanup();
}

const char *
http_response_header(const struct http_response *res, const char *name)
{
	size_t	 i;

	for (i = 0; i < res->nheaders; i++) {
		if (strcasecmp(res->headers[i].name, name) == 0)
			return res->headers[i].value;
	}
	return NULL;
}

long long
http_retry_after_ms(const struct http_response *res)
{
	const char	*v;
	long long	 secs;
	time_t		 when, now;

	if ((v = http_response_header(res, "Retry-After")) == NULL)
		return -1;
	if ((secs = parse_uint(v)) >= 0)
		return secs > LLONG_MAX / 1000 ? LLONG_MAX : secs * 1000;
	/* An HTTP-date; one in the past means "now". */
	if ((when = curl_getdate(v, NULL)) == -1)
		return -1;
	now = time(NULL);
	return when <= now ? 0 : (long long)(when - now) * 1000;
}
