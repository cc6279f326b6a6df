/*
 * httpd on the real loop: requests come from /usr/bin/curl in a child process
 * (uv_spawn) while the test runs the loop, so the server side is exercised
 * exactly as in the daemon.
 */
#include "bot/httpd.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/metrics.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

static int	 baseline_handles;
static const char *url_host = "127.0.0.1";	/* what curl connects to */

static void
count_open(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		(*(int *)arg)++;
}

static int
open_handles(void)
{
	int	 n = 0;

	uv_walk(loop_uv(), count_open, &n);
	return n;
}

static int	 dirty;	/* a test is between setup and teardown */

static void
setup(void)
{
	/*
	 * A failed CHECK skips teardown, leaving the loop and lws (and
	 * callbacks into the dead test's stack) behind.  Carrying on would
	 * only hang or crash, so stop here; the FAIL line is already out.
	 */
	if (dirty) {
		printf("FAIL %s: not run, an earlier failure left lws "
		    "running\n", t_cur_name);
		fflush(stdout);
		_exit(1);
	}
	dirty = 1;
	CHECK(loop_init() == 0);
	baseline_handles = open_handles();
}

/* Shut down, then prove lws left nothing behind on the loop. */
static void
teardown(void)
{
	httpd_stop();
	lws_shutdown();
	uv_run(loop_uv(), UV_RUN_DEFAULT);
	CHECK(!lws_busy());
	CHECK_INT(open_handles(), baseline_handles);
	loop_free();
	dirty = 0;
	metrics_reset();
}

struct child {
	uv_process_t	 proc;
	int		 done;
	int64_t		 status;
};

static void
child_exit(uv_process_t *p, int64_t status, int sig)
{
	struct child	*c = p->data;

	c->done = 1;
	c->status = status;
	uv_close((uv_handle_t *)p, NULL);
	uv_stop(p->loop);
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE	*f;
	char	*s;
	long	 n;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = xmalloc(n + 1);
	if (fread(s, 1, n, f) != (size_t)n)
		n = 0;
	s[n] = '\0';
	fclose(f);
	if (lenp != NULL)
		*lenp = n;
	return s;
}

struct reply {
	int	 status;
	char	*body;
	size_t	 body_len;
	char	*headers;
};

static void
reply_free(struct reply *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof *r);
}

/*
 * Runs curl with extra args against path on our port while the loop turns;
 * fills r with status, body and response headers.
 */
static int
curl(struct reply *r, const char *path, const char *const *extra)
{
	char			 url[256], out[] = "/tmp/sb-httpd-out.XXXXXX";
	char			 body[] = "/tmp/sb-httpd-body.XXXXXX";
	char			 hdrs[] = "/tmp/sb-httpd-hdrs.XXXXXX";
	const char		*argv[32];
	uv_process_options_t	 opts;
	uv_stdio_container_t	 stdio[3];
	struct child		 c;
	char			*code;
	int			 fd, fb, fh, n = 0, i;

	memset(r, 0, sizeof *r);
	fd = mkstemp(out);
	fb = mkstemp(body);
	fh = mkstemp(hdrs);
	close(fb);
	close(fh);
	snprintf(url, sizeof url, "http://%s:%d%s", url_host, httpd_port(),
	    path);
	argv[n++] = "/usr/bin/curl";
	argv[n++] = "-sS";
	argv[n++] = "--max-time";
	argv[n++] = "5";
	argv[n++] = "-o";
	argv[n++] = body;
	argv[n++] = "-D";
	argv[n++] = hdrs;
	argv[n++] = "-w";
	argv[n++] = "%{http_code}";
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		argv[n++] = extra[i];
	argv[n++] = url;
	argv[n] = NULL;

	memset(&opts, 0, sizeof opts);
	memset(&c, 0, sizeof c);
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = fd;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	opts.file = argv[0];
	opts.args = (char **)argv;
	opts.exit_cb = child_exit;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	c.proc.data = &c;
	if (uv_spawn(loop_uv(), &c.proc, &opts) != 0)
		return -1;
	while (!c.done)
		uv_run(loop_uv(), UV_RUN_DEFAULT);
	close(fd);
	code = slurp(out, NULL);
	r->status = code != NULL ? atoi(code) : -1;
	free(code);
	r->body = slurp(body, &r->body_len);
	r->headers = slurp(hdrs, NULL);
	unlink(out);
	unlink(body);
	unlink(hdrs);
	return 0;
}

/* What the echo handler saw. */
static char	*seen_body, *seen_sig, *seen_ctype, *seen_query;
static size_t	 seen_len;

static void
seen_free(void)
{
	free(seen_body);
	free(seen_sig);
	free(seen_ctype);
	free(seen_query);
	seen_body = seen_sig = seen_ctype = seen_query = NULL;
	seen_len = 0;
}

static void
echo_handler(const struct httpd_request *req, struct httpd_response *resp,
    void *arg)
{
	const char	*v;

	seen_free();
	seen_body = xmalloc(req->body_len + 1);
	memcpy(seen_body, req->body, req->body_len + 1);
	seen_len = req->body_len;
	if ((v = httpd_header(req, "X-Hub-Signature-256")) != NULL)
		seen_sig = xstrdup(v);
	if ((v = httpd_header(req, "Content-Type")) != NULL)
		seen_ctype = xstrdup(v);
	seen_query = xstrdup(req->query);
	resp->status = 202;
	resp->content_type = "application/json";
	resp->body = xstrdup("{\"ok\":true}");
	resp->extra_header = "Retry-After: 7";
}

static void
start(size_t max_body)
{
	char	*cause = NULL;

	CHECK(httpd_start("127.0.0.1:0", max_body, &cause) == 0);
	CHECK(cause == NULL);
	CHECK(httpd_port() > 0);
}

TEST(httpd_route_gets_raw_binary_body_and_custom_header)
{
	static const char	 bin[] = "a\0b\r\n\0\xff{c}";
	char			 path[] = "/tmp/sb-httpd-bin.XXXXXX";
	char			 at[64];
	struct reply		 r;
	int			 fd;

	setup();
	start(4096);
	httpd_route("POST", "/hook", echo_handler, NULL);
	fd = mkstemp(path);
	CHECK(write(fd, bin, sizeof bin - 1) == (ssize_t)(sizeof bin - 1));
	close(fd);
	snprintf(at, sizeof at, "@%s", path);
	const char *args[] = { "--data-binary", at, "-H",
	    "X-Hub-Signature-256: sha256=deadbeef", "-H",
	    "Content-Type: application/octet-stream", NULL };
	CHECK(curl(&r, "/hook?a=1", args) == 0);
	unlink(path);
	CHECK_INT(r.status, 202);
	CHECK_STR(r.body, "{\"ok\":true}");
	CHECK(strstr(r.headers, "Retry-After: 7") != NULL ||
	    strstr(r.headers, "retry-after: 7") != NULL);
	CHECK(strcasestr(r.headers, "content-type: application/json") != NULL);
	CHECK_INT(seen_len, sizeof bin - 1);
	CHECK(memcmp(seen_body, bin, seen_len) == 0);
	CHECK_STR(seen_sig, "sha256=deadbeef");
	CHECK_STR(seen_ctype, "application/octet-stream");
	CHECK_STR(seen_query, "a=1");
	reply_free(&r);
	seen_free();
	teardown();
}

TEST(httpd_unknown_path_is_404_and_wrong_method_is_405)
{
	struct reply	 r;

	setup();
	start(4096);
	httpd_route("POST", "/hook", echo_handler, NULL);
	CHECK(curl(&r, "/nope", NULL) == 0);
	CHECK_INT(r.status, 404);
	reply_free(&r);
	CHECK(curl(&r, "/hook", NULL) == 0);	/* GET on a POST route */
	CHECK_INT(r.status, 405);
	CHECK(seen_body == NULL);
	reply_free(&r);
	httpd_unroute("/hook");
	CHECK(curl(&r, "/hook", NULL) == 0);
	CHECK_INT(r.status, 404);
	reply_free(&r);
	teardown();
}

TEST(httpd_body_over_limit_is_413_without_running_handler)
{
	static char	 big[300 * 1024];
	char		 path[] = "/tmp/sb-httpd-big.XXXXXX", at[64];
	struct reply	 r;
	int		 fd;

	setup();
	start(1024);
	httpd_route("POST", "/hook", echo_handler, NULL);
	memset(big, 'x', sizeof big);
	fd = mkstemp(path);
	CHECK(write(fd, big, sizeof big) == (ssize_t)sizeof big);
	close(fd);
	snprintf(at, sizeof at, "@%s", path);
	const char *args[] = { "--data-binary", at, NULL };
	CHECK(curl(&r, "/hook", args) == 0);
	CHECK_INT(r.status, 413);
	CHECK(seen_body == NULL);
	reply_free(&r);
	/* Just over the limit, in one segment. */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, big, 1025) == 1025);
	close(fd);
	CHECK(curl(&r, "/hook", args) == 0);
	CHECK_INT(r.status, 413);
	CHECK(seen_body == NULL);
	reply_free(&r);
	/* Exactly at the limit still goes through. */
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(write(fd, big, 1024) == 1024);
	close(fd);
	CHECK(curl(&r, "/hook", args) == 0);
	CHECK_INT(r.status, 202);
	CHECK_INT(seen_len, 1024);
	reply_free(&r);
	unlink(path);
	seen_free();
	teardown();
}

TEST(httpd_healthz_reports_uptime_and_component_state)
{
	struct reply	 r;

	setup();
	health_set("slack", "connected");
	health_set("matrix", "down");
	health_set("matrix", "syncing");
	start(4096);
	CHECK(curl(&r, "/healthz", NULL) == 0);
	CHECK_INT(r.status, 200);
	CHECK(strcasestr(r.headers, "content-type: application/json") != NULL);
	CHECK(strstr(r.body, "\"status\":\"ok\"") != NULL);
	CHECK(strstr(r.body, "\"uptime_s\":") != NULL);
	CHECK(strstr(r.body, "\"slack\":\"connected\"") != NULL);
	CHECK(strstr(r.body, "\"matrix\":\"syncing\"") != NULL);
	reply_free(&r);
	teardown();
}

TEST(httpd_metrics_exposes_counters_and_counts_requests_by_class)
{
	struct reply	 r;
	struct metric	*m;

	setup();
	m = metrics_counter("switchboard_test_events_total", "",
	    "Events seen by the test.");
	metrics_add(m, 3);
	start(4096);
	CHECK(curl(&r, "/nope", NULL) == 0);
	CHECK_INT(r.status, 404);
	reply_free(&r);
	CHECK(curl(&r, "/metrics", NULL) == 0);
	CHECK_INT(r.status, 200);
	CHECK(strcasestr(r.headers,
	    "content-type: text/plain; version=0.0.4") != NULL);
	CHECK(strstr(r.body, "# HELP switchboard_test_events_total Events seen "
	    "by the test.\n# TYPE switchboard_test_events_total counter\n"
	    "switchboard_test_events_total 3\n") != NULL);
	CHECK(strstr(r.body,
	    "switchboard_http_requests_total{code=\"4xx\"} 1\n") != NULL);
	reply_free(&r);
	teardown();
}

TEST(httpd_port_in_use_fails_with_clear_cause)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof sin;
	char			 listen_on[64], *cause = NULL;
	int			 s;

	setup();
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(s, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(listen(s, 1) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&sin, &sl) == 0);
	snprintf(listen_on, sizeof listen_on, "127.0.0.1:%d",
	    ntohs(sin.sin_port));
	CHECK(httpd_start(listen_on, 4096, &cause) == -1);
	CHECK(cause != NULL);
	char want[128];
	snprintf(want, sizeof want, "%s: address already in use", listen_on);
	CHECK_STR(cause, want);
	free(cause);
	CHECK_INT(httpd_port(), -1);
	close(s);
	teardown();
}

TEST(httpd_bad_listen_address_is_refused)
{
	char	*cause = NULL;

	setup();
	CHECK(httpd_start("8080", 4096, &cause) == -1);
	CHECK(strstr(cause, "bad listen address") != NULL);
	free(cause);
	cause = NULL;
	CHECK(httpd_start("[::1:80", 4096, &cause) == -1);
	free(cause);
	teardown();
}

TEST(httpd_chunked_body_is_refused_with_411)
{
	char		 path[] = "/tmp/sb-httpd-chunk.XXXXXX", at[64];
	struct reply	 r;
	int		 fd;

	setup();
	start(1024);
	httpd_route("POST", "/hook", echo_handler, NULL);
	fd = mkstemp(path);
	CHECK(write(fd, "hello", 5) == 5);
	close(fd);
	snprintf(at, sizeof at, "@%s", path);
	const char *args[] = { "--data-binary", at, "-H",
	    "Transfer-Encoding: chunked", NULL };
	CHECK(curl(&r, "/hook", args) == 0);
	unlink(path);
	CHECK_INT(r.status, 411);
	CHECK(seen_body == NULL);
	reply_free(&r);
	teardown();
}

TEST(httpd_listens_on_ipv6_loopback_and_on_any_address)
{
	struct reply	 r;
	char		*cause = NULL;

	setup();
	CHECK(httpd_start("[::1]:0", 4096, &cause) == 0);
	url_host = "[::1]";
	CHECK(curl(&r, "/healthz", NULL) == 0);
	url_host = "127.0.0.1";
	CHECK_INT(r.status, 200);
	reply_free(&r);
	httpd_stop();
	CHECK_INT(httpd_port(), -1);
	CHECK(httpd_start(":0", 4096, &cause) == 0);
	CHECK(curl(&r, "/healthz", NULL) == 0);
	CHECK_INT(r.status, 200);
	reply_free(&r);
	teardown();
}

static void
start_shutdown(void *arg)
{
	loop_shutdown("test");
}

TEST(httpd_loop_shutdown_stops_httpd_and_lws_so_the_loop_ends)
{
	struct reply	 r;
	uint64_t	 t0;

	setup();
	start(4096);
	CHECK(curl(&r, "/healthz", NULL) == 0);
	CHECK_INT(r.status, 200);
	reply_free(&r);
	/* The daemon's path: shutdown hooks only, no explicit teardown. */
	loop_timer_once(10, start_shutdown, NULL);
	t0 = now_ms();
	CHECK_INT(loop_run(), 0);
	CHECK(now_ms() - t0 < 2000);
	CHECK(!lws_busy());
	CHECK_INT(httpd_port(), -1);
	loop_free();
	metrics_reset();
	dirty = 0;
}

int
main(void)
{
	RUN(httpd_route_gets_raw_binary_body_and_custom_header);
	RUN(httpd_unknown_path_is_404_and_wrong_method_is_405);
	RUN(httpd_body_over_limit_is_413_without_running_handler);
	RUN(httpd_healthz_reports_uptime_and_component_state);
	RUN(httpd_metrics_exposes_counters_and_counts_requests_by_class);
	RUN(httpd_port_in_use_fails_with_clear_cause);
	RUN(httpd_bad_listen_address_is_refused);
	RUN(httpd_chunked_body_is_refused_with_411);
	RUN(httpd_listens_on_ipv6_loopback_and_on_any_address);
	RUN(httpd_loop_shutdown_stops_httpd_and_lws_so_the_loop_ends);
	return t_done();
}
