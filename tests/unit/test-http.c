/*
 * test-http — the curl-multi-on-libuv client against tests/fakes/http-test-server.py
 * (spawned once, killed at the end).  Each test runs on a private uv loop and
 * ends with http_shutdown + uv_loop_close == 0, so a handle left open fails it;
 * leaks are LSan's job in the ASan build.
 */
#include "bot/http.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVER	"tests/fakes/http-test-server.py"

static pid_t		 server_pid = -1;
static int		 http_port, https_port;
static uv_loop_t	 loop;
static int		 live;
static uv_timer_t	 guard;

/* One finished request as its callback saw it (res/error are borrowed). */
struct result {
	int		 calls;
	long		 status;
	char		*body;
	size_t		 body_len;
	char		*error;
	char		*hdr[4];	/* values of the names asked for */
	const char	*want[4];
	long long	 retry_after;
	double		 total_s;
};

static char *
url(const char *path)
{
	static char	 u[256];

	snprintf(u, sizeof u, "http://127.0.0.1:%d%s", http_port, path);
	return u;
}

static int
server_start(void)
{
	char	 path[4096], line[128];
	int	 fds[2];
	FILE	*f;
	ssize_t	 n;

	/* Run from the source tree (tests/run.sh does) or find it via the binary. */
	if (access(SERVER, R_OK) == 0)
		snprintf(path, sizeof path, "%s", SERVER);
	else {
		n = readlink("/proc/self/exe", path, sizeof path - 64);
		if (n < 0)
			return -1;
		path[n] = '\0';
		*strrchr(path, '/') = '\0';
		strcat(path, "/../../../" SERVER);
	}
	if (pipe(fds) != 0)
		return -1;
	if ((server_pid = fork()) == 0) {
		/* Dies with us even if a test crashes. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", path, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	if ((f = fdopen(fds[0], "r")) == NULL)
		return -1;
	if (fgets(line, sizeof line, f) == NULL ||
	    sscanf(line, "%d %d", &http_port, &https_port) != 2) {
		fclose(f);
		return -1;
	}
	/* Keep the pipe open: the server must not get EPIPE on a stray print. */
	return 0;
}

static void
server_stop(void)
{
	if (server_pid > 0) {
		kill(server_pid, SIGTERM);
		waitpid(server_pid, NULL, 0);
	}
}

static void
teardown_now(void)
{
	http_shutdown();
	if (!uv_is_closing((uv_handle_t *)&guard))
		uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void
setup(void)
{
	/* A failed CHECK skipped the previous teardown; do it now. */
	if (live) {
		teardown_now();
		uv_loop_close(&loop);
	}
	uv_loop_init(&loop);
	uv_timer_init(&loop, &guard);
	http_init(&loop);
	live = 1;
}

/* Returns what uv_loop_close says: 0 when http left no handle behind. */
static int
teardown(void)
{
	teardown_now();
	live = 0;
	return uv_loop_close(&loop);
}

static void
guard_fired(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/*
 * Runs the loop until nothing keeps it alive — which, when http drops its
 * references as the last request finishes, is exactly "all done".  The guard
 * does not hold the loop; it only stops a hang.  Returns elapsed ms.
 */
static uint64_t
run(void)
{
	uint64_t	 t0 = now_ms();

	uv_timer_start(&guard, guard_fired, 10000, 0);
	uv_unref((uv_handle_t *)&guard);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_timer_stop(&guard);
	return now_ms() - t0;
}

static void
result_free(struct result *r)
{
	size_t	 i;

	free(r->body);
	free(r->error);
	for (i = 0; i < nitems(r->hdr); i++)
		free(r->hdr[i]);
	memset(r, 0, sizeof *r);
}

static void
on_done(const struct http_response *res, const char *error, void *arg)
{
	struct result	*r = arg;
	const char	*v;
	size_t		 i;

	r->calls++;
	if (error != NULL) {
		r->error = xstrdup(error);
		return;
	}
	r->status = res->status;
	r->body = xmalloc(res->body_len + 1);
	memcpy(r->body, res->body, res->body_len + 1);	/* with its NUL */
	r->body_len = res->body_len;
	r->retry_after = http_retry_after_ms(res);
	r->total_s = res->total_s;
	for (i = 0; i < nitems(r->want) && r->want[i] != NULL; i++) {
		if ((v = http_response_header(res, r->want[i])) != NULL)
			r->hdr[i] = xstrdup(v);
	}
}

static void
get(const char *path, struct result *r)
{
	struct http_request_opts	 o = { .url = url(path) };

	CHECK(http_request(&o, on_done, r) != NULL);
}

TEST(http_200_delivers_status_body_and_headers)
{
	struct result	 r = { .want = { "x-test", "CONTENT-LENGTH" } };

	setup();
	get("/ok", &r);
	CHECK_INT(http_inflight(), 1);
	run();
	CHECK_INT(http_inflight(), 0);
	CHECK_INT(r.calls, 1);
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 200);
	CHECK_INT(r.body_len, 5);
	CHECK_STR(r.body, "hello");
	CHECK_STR(r.hdr[0], "yes");
	CHECK_STR(r.hdr[1], "5");
	CHECK_INT(r.retry_after, -1);
	CHECK(r.total_s > 0);
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_echo_keeps_method_headers_and_binary_body)
{
	static const char		 bin[] = "a\0b\0\0c\xff";
	const char *const		 hdrs[] = { "X-Echo: abc", NULL };
	struct result			 r = { .want = { "X-Method", "X-Echo",
					    "X-User-Agent", "X-Body-Len" } };
	struct result			 g = { .want = { "X-Method", "X-Body-Len" } };
	struct http_request_opts	 o = {
		.method = "PUT", .headers = hdrs,
		.body = bin, .body_len = sizeof bin - 1,
	};
	char				*body;

	setup();
	/* The caller's buffers may go away once http_request returns. */
	body = xmalloc(sizeof bin);
	memcpy(body, bin, sizeof bin);
	o.body = body;
	o.url = url("/echo");
	CHECK(http_request(&o, on_done, &r) != NULL);
	memset(body, 'X', sizeof bin);
	free(body);
	get("/echo", &g);
	run();
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.hdr[0], "PUT");
	CHECK_STR(r.hdr[1], "abc");
	CHECK_STR(r.hdr[2], "switchboard/0.1");
	CHECK_STR(r.hdr[3], "7");
	CHECK_INT(r.body_len, sizeof bin - 1);
	CHECK(memcmp(r.body, bin, sizeof bin - 1) == 0);
	CHECK(g.error == NULL);
	CHECK_STR(g.hdr[0], "GET");
	CHECK_STR(g.hdr[1], "0");
	result_free(&r);
	result_free(&g);
	CHECK_INT(teardown(), 0);
}

/*
 * Easy handles are reused (http.c keeps spares): a request after another
 * has none of its method, headers or body.
 */
TEST(http_a_request_after_another_has_nothing_of_it)
{
	const char *const		 hdrs[] = { "X-Echo: abc", NULL };
	struct result			 r = { .want = { "X-Method" } };
	struct result			 g = { .want = { "X-Method", "X-Echo",
					    "X-Body-Len" } };
	struct http_request_opts	 o = {
		.method = "PUT", .headers = hdrs, .body = "abc", .body_len = 3,
	};

	setup();
	o.url = url("/echo");
	CHECK(http_request(&o, on_done, &r) != NULL);
	run();
	CHECK_STR(r.hdr[0], "PUT");
	get("/echo", &g);
	run();
	CHECK(g.error == NULL);
	CHECK_STR(g.hdr[0], "GET");
	/* The server echoes "" when absent (curl's header API: "\r"). */
	CHECK(g.hdr[1] == NULL || strstr(g.hdr[1], "abc") == NULL);
	CHECK_STR(g.hdr[2], "0");
	result_free(&r);
	result_free(&g);
	CHECK_INT(teardown(), 0);
}

TEST(http_post_is_the_method_when_asked)
{
	struct result			 r = { .want = { "X-Method" } };
	struct http_request_opts	 o = { .method = "POST", .body = "k=v",
					    .body_len = 3 };

	setup();
	o.url = url("/echo");
	CHECK(http_request(&o, on_done, &r) != NULL);
	run();
	CHECK(r.error == NULL);
	CHECK_STR(r.hdr[0], "POST");
	CHECK_STR(r.body, "k=v");
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_429_exposes_retry_after)
{
	struct result	 r = { 0 };

	setup();
	get("/429", &r);
	run();
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 429);
	CHECK_INT(r.retry_after, 7000);
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_500_is_a_response_not_an_error)
{
	struct result	 r = { 0 };

	setup();
	get("/500", &r);
	run();
	CHECK_INT(r.calls, 1);
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 500);
	CHECK_STR(r.body, "boom");
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_timeout_is_an_error_and_fast)
{
	struct result			 r = { 0 };
	struct http_request_opts	 o = { .timeout_ms = 300 };
	uint64_t			 ms;

	setup();
	o.url = url("/slow");
	CHECK(http_request(&o, on_done, &r) != NULL);
	ms = run();
	CHECK_INT(r.calls, 1);
	CHECK(r.error != NULL);
	CHECK(strcasestr(r.error, "timeout") != NULL ||
	    strcasestr(r.error, "timed out") != NULL);
	CHECK(ms >= 250 && ms < 1500);
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_connection_refused_is_an_error)
{
	struct result			 r = { 0 };
	struct http_request_opts	 o = { 0 };
	struct sockaddr_in		 sin = { .sin_family = AF_INET };
	socklen_t			 len = sizeof sin;
	char				 u[64];
	int				 s;

	/* Bound but not listening: the port is ours and refuses connects. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&sin, &len) == 0);
	snprintf(u, sizeof u, "http://127.0.0.1:%d/", ntohs(sin.sin_port));
	o.url = u;
	setup();
	CHECK(http_request(&o, on_done, &r) != NULL);
	CHECK(run() < 2000);
	close(s);
	CHECK_INT(r.calls, 1);
	CHECK(r.error != NULL);
	CHECK(strcasestr(r.error, "connect") != NULL);
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_body_over_max_body_is_an_error)
{
	struct result			 cl = { 0 }, chunked = { 0 }, whole = { 0 };
	struct http_request_opts	 o = { .max_body = 100000 };

	setup();
	/* Content-Length says too much, and a chunked body that grows too big. */
	o.url = url("/big");
	CHECK(http_request(&o, on_done, &cl) != NULL);
	o.url = url("/big-chunked");
	CHECK(http_request(&o, on_done, &chunked) != NULL);
	/* The same 1 MiB fits under the default cap. */
	get("/big", &whole);
	run();
	CHECK_INT(cl.calls, 1);
	CHECK_STR(cl.error, "response too large");
	CHECK_INT(chunked.calls, 1);
	CHECK_STR(chunked.error, "response too large");
	CHECK(whole.error == NULL);
	CHECK_INT(whole.body_len, 1024 * 1024);
	CHECK((unsigned char)whole.body[255] == 255);
	result_free(&cl);
	result_free(&chunked);
	result_free(&whole);
	CHECK_INT(teardown(), 0);
}

TEST(http_headers_are_those_of_the_final_response)
{
	const char *const		 hdrs[] = { "Expect: 100-continue", NULL };
	struct result			 r = { .want = { "X-Interim", "X-Final" } };
	struct http_request_opts	 o = { .method = "POST", .headers = hdrs,
					    .body = "abc", .body_len = 3 };

	setup();
	o.url = url("/continue");
	CHECK(http_request(&o, on_done, &r) != NULL);
	run();
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "abc");
	CHECK(r.hdr[0] == NULL);	/* only on the 100 Continue */
	CHECK_STR(r.hdr[1], "1");
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_redirect_is_delivered_not_followed)
{
	struct result	 r = { .want = { "Location", "X-Test" } };

	setup();
	get("/redirect", &r);
	run();
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 302);
	CHECK_STR(r.hdr[0], "/ok");
	CHECK(r.hdr[1] == NULL);
	CHECK_STR(r.body, "moved");
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_followed_redirect_reports_only_the_last_response)
{
	struct result			 r = { .want = { "X-Redirect", "X-Test" } };
	struct http_request_opts	 o = { .follow_redirects = 1 };

	setup();
	o.url = url("/redirect");
	CHECK(http_request(&o, on_done, &r) != NULL);
	run();
	CHECK(r.error == NULL);
	CHECK_INT(r.status, 200);
	CHECK_STR(r.body, "hello");
	CHECK(r.hdr[0] == NULL);	/* was on the 302 */
	CHECK_STR(r.hdr[1], "yes");
	result_free(&r);
	CHECK_INT(teardown(), 0);
}

TEST(http_tls_is_verified_unless_insecure)
{
	struct result			 strict = { 0 }, lax = { 0 };
	struct http_request_opts	 o = { 0 };
	char				 u[64];

	CHECK(https_port != 0);	/* the server needs the openssl CLI */
	snprintf(u, sizeof u, "https://127.0.0.1:%d/ok", https_port);
	o.url = u;
	setup();
	CHECK(http_request(&o, on_done, &strict) != NULL);
	o.insecure = 1;
	CHECK(http_request(&o, on_done, &lax) != NULL);
	run();
	CHECK_INT(strict.calls, 1);
	CHECK(strict.error != NULL);	/* self-signed */
	CHECK(lax.error == NULL);
	CHECK_INT(lax.status, 200);
	CHECK_STR(lax.body, "hello");
	result_free(&strict);
	result_free(&lax);
	CHECK_INT(teardown(), 0);
}

/* ---- re-entrancy ---- */

struct pair {
	struct http_req	**other;
	struct http_req	*self;
	int		*calls;
	int		 cancel_self;
};

static void
cancel_other(const struct http_response *res, const char *error, void *arg)
{
	struct pair	*p = arg;

	(*p->calls)++;
	if (p->cancel_self)
		http_cancel(p->self);	/* a no-op: it is finishing */
	http_cancel(*p->other);
}

static void
must_not_run(const struct http_response *res, const char *error, void *arg)
{
	(*(int *)arg)++;
}

TEST(http_cancel_from_another_callback_suppresses_its_callback)
{
	struct http_request_opts	 fast = { 0 }, slow = { 0 };
	struct http_req			*b;
	int				 acalls = 0, bcalls = 0;
	struct pair			 p = { .other = &b,
					    .calls = &acalls, .cancel_self = 1 };

	setup();
	fast.url = xstrdup(url("/ok"));
	slow.url = url("/slow");
	b = http_request(&slow, must_not_run, &bcalls);
	p.self = http_request(&fast, cancel_other, &p);
	CHECK_INT(http_inflight(), 2);
	/* Returning well before /slow answers proves b's handles went too. */
	CHECK(run() < 1500);
	free((char *)fast.url);
	CHECK_INT(acalls, 1);
	CHECK_INT(bcalls, 0);
	CHECK_INT(http_inflight(), 0);
	CHECK_INT(teardown(), 0);
}

static struct http_req	*race[2];
static int		 race_calls[2];

static void
race_done(const struct http_response *res, const char *error, void *arg)
{
	int	 i = (int)(intptr_t)arg;

	race_calls[i]++;
	/*
	 * Both often finish in one socket_action pass, so the other's DONE
	 * message may already be queued: it must be dropped, not delivered.
	 */
	http_cancel(race[1 - i]);
	race[1 - i] = NULL;
}

TEST(http_first_to_finish_cancels_the_other_exactly_one_callback)
{
	struct http_request_opts	 o = { 0 };
	int				 round;

	setup();
	for (round = 0; round < 6; round++) {
		/*
		 * Two answers racing, then two timeouts that expire in the
		 * same timer pass: there both DONE messages are queued before
		 * the first callback runs, so the cancel hits a finished one.
		 */
		o.url = url(round % 2 ? "/slow" : "/ok");
		o.timeout_ms = round % 2 ? 200 : 0;
		race_calls[0] = race_calls[1] = 0;
		race[0] = http_request(&o, race_done, (void *)0);
		race[1] = http_request(&o, race_done, (void *)1);
		run();
		CHECK_INT(race_calls[0] + race_calls[1], 1);
		CHECK_INT(http_inflight(), 0);
	}
	CHECK_INT(teardown(), 0);
}

struct chain {
	int		 hops;
	struct result	 last;
};

static void
chain_next(const struct http_response *res, const char *error, void *arg)
{
	struct chain			*c = arg;
	struct http_request_opts	 o = { 0 };

	if (error != NULL || ++c->hops == 3) {
		on_done(res, error, &c->last);
		return;
	}
	o.url = url("/ok");
	http_request(&o, chain_next, c);
}

TEST(http_callback_may_start_new_requests)
{
	struct chain			 c = { 0 };
	struct http_request_opts	 o = { 0 };

	setup();
	o.url = url("/ok");
	CHECK(http_request(&o, chain_next, &c) != NULL);
	run();
	CHECK_INT(c.hops, 3);
	CHECK_INT(c.last.calls, 1);
	CHECK_INT(c.last.status, 200);
	result_free(&c.last);
	CHECK_INT(teardown(), 0);
}

static struct result	 many[20];

TEST(http_20_concurrent_requests_all_complete)
{
	struct http_request_opts	 o = { .method = "POST" };
	char				 bodies[20][16];
	int				 i;

	setup();
	o.url = url("/echo");
	for (i = 0; i < 20; i++) {
		memset(&many[i], 0, sizeof many[i]);
		o.body_len = snprintf(bodies[i], sizeof bodies[i], "req-%d", i);
		o.body = bodies[i];
		CHECK(http_request(&o, on_done, &many[i]) != NULL);
	}
	CHECK_INT(http_inflight(), 20);
	run();
	CHECK_INT(http_inflight(), 0);
	for (i = 0; i < 20; i++) {
		CHECK_INT(many[i].calls, 1);
		CHECK(many[i].error == NULL);
		CHECK_STR(many[i].body, bodies[i]);
		result_free(&many[i]);
	}
	CHECK_INT(teardown(), 0);
}

static void
shutdown_now(uv_timer_t *t)
{
	http_shutdown();
	uv_close((uv_handle_t *)t, NULL);
}

TEST(http_shutdown_with_requests_in_flight_calls_nothing_frees_all)
{
	struct http_request_opts	 o = { 0 };
	uv_timer_t			 t;
	int				 calls = 0, i;

	setup();
	o.url = url("/slow");
	for (i = 0; i < 5; i++)
		CHECK(http_request(&o, must_not_run, &calls) != NULL);
	o.url = url("/drip");
	CHECK(http_request(&o, must_not_run, &calls) != NULL);
	uv_timer_init(&loop, &t);
	uv_timer_start(&t, shutdown_now, 200, 0);
	/* Ends by itself once shutdown closed every handle. */
	CHECK(run() < 1500);
	CHECK_INT(calls, 0);
	CHECK_INT(http_inflight(), 0);
	CHECK_INT(teardown(), 0);
}

static void
shutdown_in_callback(const struct http_response *res, const char *error,
    void *arg)
{
	(*(int *)arg)++;
	http_shutdown();
}

TEST(http_shutdown_from_a_callback_drops_the_rest)
{
	struct http_request_opts	 o = { 0 };
	int				 calls = 0, others = 0;

	setup();
	o.url = url("/slow");
	CHECK(http_request(&o, must_not_run, &others) != NULL);
	CHECK(http_request(&o, must_not_run, &others) != NULL);
	o.url = url("/ok");
	CHECK(http_request(&o, shutdown_in_callback, &calls) != NULL);
	CHECK(run() < 1500);
	CHECK_INT(calls, 1);
	CHECK_INT(others, 0);
	CHECK_INT(http_inflight(), 0);
	CHECK_INT(teardown(), 0);
}

TEST(http_retry_after_reads_delta_seconds_and_http_dates)
{
	struct http_header	 h = { "retry-after", NULL };
	struct http_response	 res = { .headers = &h, .nheaders = 1 };
	char			 date[64];
	time_t			 t;
	long long		 ms;

	h.value = "120";
	CHECK_INT(http_retry_after_ms(&res), 120000);
	h.value = "0";
	CHECK_INT(http_retry_after_ms(&res), 0);

	t = time(NULL) + 120;
	strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
	h.value = date;
	ms = http_retry_after_ms(&res);
	CHECK(ms > 117000 && ms <= 120000);

	/* A date already past means "retry now", not "never". */
	h.value = "Wed, 21 Oct 2015 07:28:00 GMT";
	CHECK_INT(http_retry_after_ms(&res), 0);

	h.value = "soon";
	CHECK_INT(http_retry_after_ms(&res), -1);
	h.value = "-5";
	CHECK_INT(http_retry_after_ms(&res), -1);
	res.nheaders = 0;
	CHECK_INT(http_retry_after_ms(&res), -1);
}

/* ---- streaming (on_data) ---- */

struct stream {
	struct buf		 got;
	int			 chunks;
	int			 cancel_self, nest;
	struct http_req		*self;
	struct result		 inner, done;
};

static void
on_chunk(const char *p, size_t n, void *arg)
{
	struct stream	*s = arg;

	s->chunks++;
	buf_add(&s->got, p, n);
	if (s->nest) {
		/* Would be a recursive curl call if run inside curl. */
		s->nest = 0;
		get("/ok", &s->inner);
	}
	if (s->cancel_self)
		http_cancel(s->self);
}

static void
stream_done(const struct http_response *res, const char *error, void *arg)
{
	on_done(res, error, &((struct stream *)arg)->done);
}

TEST(http_stream_gives_a_2xx_body_to_on_data_outside_curl)
{
	struct stream			 s = { .nest = 1 };
	struct http_request_opts	 o = { .url = url("/ok"),
	    .on_data = on_chunk };

	setup();
	CHECK((s.self = http_request(&o, stream_done, &s)) != NULL);
	run();
	CHECK_STR(s.got.data, "hello");
	CHECK_INT(s.done.calls, 1);
	CHECK_INT(s.done.status, 200);
	CHECK_INT(s.done.body_len, 0);	/* nothing buffered twice */
	CHECK_INT(s.inner.calls, 1);	/* started from on_data */
	CHECK_INT(s.inner.status, 200);
	buf_free(&s.got);
	result_free(&s.done);
	result_free(&s.inner);
	CHECK_INT(teardown(), 0);
}

TEST(http_stream_on_data_may_cancel_its_own_request)
{
	struct stream			 s = { .cancel_self = 1 };
	struct http_request_opts	 o = { .url = url("/drip"),
	    .on_data = on_chunk };
	uint64_t			 ms;

	setup();
	CHECK((s.self = http_request(&o, stream_done, &s)) != NULL);
	ms = run();
	CHECK_INT(s.chunks, 1);
	CHECK_INT(s.done.calls, 0);
	CHECK(ms < 2500);	/* not the 3 s of the whole drip */
	buf_free(&s.got);
	CHECK_INT(teardown(), 0);
}

TEST(http_stream_non_2xx_is_buffered_not_streamed)
{
	struct stream			 s = { 0 };
	struct http_request_opts	 o = { .url = url("/500"),
	    .on_data = on_chunk };

	setup();
	CHECK((s.self = http_request(&o, stream_done, &s)) != NULL);
	run();
	CHECK_INT(s.chunks, 0);
	CHECK_INT(s.done.calls, 1);
	CHECK_INT(s.done.status, 500);
	CHECK(s.done.body_len > 0);
	result_free(&s.done);
	CHECK_INT(teardown(), 0);
}

int
main(void)
{
	if (server_start() != 0) {
		printf("FAIL http_test_server_starts: cannot run " SERVER "\n");
		server_stop();
		return 1;
	}
	RUN(http_200_delivers_status_body_and_headers);
	RUN(http_echo_keeps_method_headers_and_binary_body);
	RUN(http_a_request_after_another_has_nothing_of_it);
	RUN(http_post_is_the_method_when_asked);
	RUN(http_429_exposes_retry_after);
	RUN(http_500_is_a_response_not_an_error);
	RUN(http_timeout_is_an_error_and_fast);
	RUN(http_connection_refused_is_an_error);
	RUN(http_body_over_max_body_is_an_error);
	RUN(http_headers_are_those_of_the_final_response);
	RUN(http_redirect_is_delivered_not_followed);
	RUN(http_followed_redirect_reports_only_the_last_response);
	RUN(http_tls_is_verified_unless_insecure);
	RUN(http_cancel_from_another_callback_suppresses_its_callback);
	RUN(http_first_to_finish_cancels_the_other_exactly_one_callback);
	RUN(http_callback_may_start_new_requests);
	RUN(http_20_concurrent_requests_all_complete);
	RUN(http_shutdown_with_requests_in_flight_calls_nothing_frees_all);
	RUN(http_shutdown_from_a_callback_drops_the_rest);
	RUN(http_retry_after_reads_delta_seconds_and_http_dates);
	RUN(http_stream_gives_a_2xx_body_to_on_data_outside_curl);
	RUN(http_stream_on_data_may_cancel_its_own_request);
	RUN(http_stream_non_2xx_is_buffered_not_streamed);
	if (live)
		teardown();
	server_stop();
	return t_done();
}
