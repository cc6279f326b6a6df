/*
 * ws client against tests/fakes/ws-test-server.py (python3-websockets),
 * started per test on 127.0.0.1 with an ephemeral port.
 */
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/util.h"
#include "bot/ws.h"
#include "tests/unit/t.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SERVER	"tests/fakes/ws-test-server.py"

static int	 baseline_handles;

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

struct server {
	pid_t	 pid;
	int	 port;
};

static pid_t	 live_server;	/* killed if a failed test skipped its stop */

/* Starts the fake; its first stdout line is the port. */
static int
server_start(struct server *s, const char *cert, const char *key)
{
	char	 line[32];
	FILE	*f;
	int	 fds[2];

	if (pipe(fds) != 0)
		return -1;
	if ((s->pid = fork()) == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		if (cert != NULL)
			execl("/usr/bin/python3", "python3", SERVER, "--tls",
			    cert, key, (char *)NULL);
		else
			execl("/usr/bin/python3", "python3", SERVER,
			    (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	live_server = s->pid;
	f = fdopen(fds[0], "r");
	s->port = 0;
	if (fgets(line, sizeof line, f) != NULL)
		s->port = atoi(line);
	fclose(f);
	return s->port > 0 ? 0 : -1;
}

static void
server_stop(struct server *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
		live_server = 0;
	}
}

struct rec {
	struct ws_conn	*conn;
	int		 opened;
	int		 closed;
	int		 code;
	char		 reason[256];
	int		 ntext;
	char		*text[8];
	size_t		 len[8];
	uint64_t	 open_ms, close_ms;
	/* What to do on open / after n messages. */
	const char	*send[4];
	size_t		 send_len[4];
	int		 close_after;
};

static void
rec_free(struct rec *r)
{
	int	 i;

	for (i = 0; i < r->ntext; i++)
		free(r->text[i]);
}

static void
on_open(struct ws_conn *c, void *arg)
{
	struct rec	*r = arg;
	int		 i;

	r->opened = 1;
	r->open_ms = now_ms();
	for (i = 0; i < 4 && r->send[i] != NULL; i++)
		ws_send_text(c, r->send[i], r->send_len[i] != 0 ?
		    r->send_len[i] : strlen(r->send[i]));
}

static void
on_text(struct ws_conn *c, const char *s, size_t len, void *arg)
{
	struct rec	*r = arg;

	if (r->ntext < 8) {
		r->text[r->ntext] = xstrndup(s, len);
		r->len[r->ntext] = len;
		r->ntext++;
	}
	if (r->close_after != 0 && r->ntext == r->close_after)
		ws_close(c, 1000, "done");
}

static void
on_close(struct ws_conn *c, int code, const char *reason, void *arg)
{
	struct rec	*r = arg;

	r->closed++;
	r->code = code;
	snprintf(r->reason, sizeof r->reason, "%s", reason);
	r->close_ms = now_ms();
	uv_stop(loop_uv());
}

static const struct ws_callbacks cbs = { on_open, on_text, on_close };

static void
guard(void *arg)
{
	*(int *)arg = 1;
	uv_stop(loop_uv());
}

/* Runs the loop until on_close or 5 s. */
static void
run_until_closed(struct rec *r)
{
	struct loop_timer	*t;
	int			 expired = 0;

	t = loop_timer_once(5000, guard, &expired);
	while (!r->closed && !expired)
		uv_run(loop_uv(), UV_RUN_DEFAULT);
	if (!expired)
		loop_timer_cancel(t);
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
	if (live_server > 0) {
		kill(live_server, SIGTERM);
		waitpid(live_server, NULL, 0);
	}
		printf("FAIL %s: not run, an earlier failure left lws "
		    "running\n", t_cur_name);
		fflush(stdout);
		_exit(1);
	}
	dirty = 1;
	CHECK(loop_init() == 0);
	baseline_handles = open_handles();
}

static void
teardown(void)
{
	lws_shutdown();
	uv_run(loop_uv(), UV_RUN_DEFAULT);
	CHECK(!lws_busy());
	CHECK_INT(open_handles(), baseline_handles);
	loop_free();
	dirty = 0;
}

static struct ws_conn *
connect_to(struct rec *r, int port, const char *path, unsigned ping_ms,
    unsigned dead_ms, size_t max_message)
{
	struct ws_opts	 o;
	char		 url[128], *cause = NULL;

	snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", port, path);
	memset(&o, 0, sizeof o);
	o.url = url;
	o.ping_ms = ping_ms;
	o.dead_ms = dead_ms;
	o.max_message = max_message;
	r->conn = ws_connect(&o, &cbs, r, &cause);
	free(cause);
	return r->conn;
}

TEST(ws_echo_round_trips_several_messages_including_200k)
{
	struct server	 s;
	struct rec	 r;
	char		*big;
	size_t		 i, n = 200 * 1024;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	big = xmalloc(n);
	for (i = 0; i < n; i++)
		big[i] = 'a' + i % 26;
	memset(&r, 0, sizeof r);
	r.send[0] = "hello";
	r.send[1] = big;
	r.send_len[1] = n;
	r.send[2] = "world";
	r.close_after = 3;
	CHECK(connect_to(&r, s.port, "/echo", 0, 0, 0) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	CHECK(r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.ntext, 3);
	CHECK_STR(r.text[0], "hello");
	CHECK_INT(r.len[1], n);
	CHECK(memcmp(r.text[1], big, n) == 0);
	CHECK_STR(r.text[2], "world");
	CHECK_INT(r.code, 1000);
	CHECK_STR(r.reason, "done");
	free(big);
	rec_free(&r);
	teardown();
}

TEST(ws_server_drop_reports_1006_with_reason)
{
	struct server	 s;
	struct rec	 r;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	memset(&r, 0, sizeof r);
	r.send[0] = "bye?";
	CHECK(connect_to(&r, s.port, "/drop", 0, 0, 0) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	CHECK(r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1006);
	CHECK_STR(r.reason, "connection closed without a close frame");
	teardown();
}

TEST(ws_server_close_code_and_reason_are_surfaced)
{
	struct server	 s;
	struct rec	 r;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	memset(&r, 0, sizeof r);
	CHECK(connect_to(&r, s.port, "/close", 0, 0, 0) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	CHECK(r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 4001);
	CHECK_STR(r.reason, "bye");
	teardown();
}

TEST(ws_deaf_server_is_detected_within_dead_ms)
{
	struct server	 s;
	struct rec	 r;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	memset(&r, 0, sizeof r);
	CHECK(connect_to(&r, s.port, "/deaf", 100, 400, 0) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	CHECK(r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1006);
	CHECK_STR(r.reason, "no traffic for 400 ms");
	CHECK(r.close_ms - r.open_ms >= 390);
	CHECK(r.close_ms - r.open_ms < 1000);
	teardown();
}

TEST(ws_pongs_keep_a_quiet_connection_alive)
{
	struct server	 s;
	struct rec	 r;
	struct loop_timer *t;
	int		 expired = 0;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	memset(&r, 0, sizeof r);
	/* /echo is silent unless spoken to, but it answers pings. */
	CHECK(connect_to(&r, s.port, "/echo", 100, 400, 0) != NULL);
	t = loop_timer_once(1200, guard, &expired);
	while (!r.closed && !expired)
		uv_run(loop_uv(), UV_RUN_DEFAULT);
	if (!expired)
		loop_timer_cancel(t);
	CHECK(r.opened);
	CHECK_INT(r.closed, 0);
	ws_close(r.conn, 1000, "enough");
	run_until_closed(&r);
	server_stop(&s);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1000);
	teardown();
}

TEST(ws_connection_refused_reports_code_0)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof sin;
	struct rec		 r;
	int			 fd, port;

	setup();
	/* A port that was free a moment ago and has no listener now. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
	port = ntohs(sin.sin_port);
	close(fd);
	memset(&r, 0, sizeof r);
	CHECK(connect_to(&r, port, "/echo", 0, 0, 0) != NULL);
	CHECK_INT(r.closed, 0);		/* never inside ws_connect */
	run_until_closed(&r);
	CHECK(!r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 0);
	CHECK(r.reason[0] != '\0');
	teardown();
}

TEST(ws_oversize_message_closes_1009)
{
	struct server	 s;
	struct rec	 r;
	char		 msg[2000];

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	memset(msg, 'z', sizeof msg);
	memset(&r, 0, sizeof r);
	r.send[0] = msg;
	r.send_len[0] = sizeof msg;
	CHECK(connect_to(&r, s.port, "/echo", 0, 0, 1000) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	CHECK(r.opened);
	CHECK_INT(r.ntext, 0);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1009);
	teardown();
}

TEST(ws_oversize_message_is_drained_then_closed_1009_and_endless_one_dropped)
{
	struct server	 s;
	struct rec	 r;
	char		*msg;
	size_t		 n = 40000;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	msg = xmalloc(n);
	memset(msg, 'z', n);
	/* 40,000 bytes against a limit of 1,000: past 16x, dropped at once. */
	memset(&r, 0, sizeof r);
	r.send[0] = msg;
	r.send_len[0] = n;
	CHECK(connect_to(&r, s.port, "/echo", 0, 0, 1000) != NULL);
	run_until_closed(&r);
	CHECK(r.opened);
	CHECK_INT(r.ntext, 0);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1009);
	CHECK(strstr(r.reason, "still coming") != NULL);
	rec_free(&r);
	/* 5,000 against 1,000: drained whole, then a clean 1009 close. */
	memset(&r, 0, sizeof r);
	r.send[0] = msg;
	r.send_len[0] = 5000;
	CHECK(connect_to(&r, s.port, "/echo", 0, 0, 1000) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	CHECK(r.opened);
	CHECK_INT(r.ntext, 0);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1009);
	CHECK(strstr(r.reason, "message of 5000 bytes") != NULL);
	free(msg);
	rec_free(&r);
	teardown();
}

static void
shutdown_on_open(struct ws_conn *c, void *arg)
{
	on_open(c, arg);
	lws_shutdown();		/* as the daemon's shutdown hook would */
}

TEST(ws_lws_shutdown_closes_an_open_connection_exactly_once)
{
	static const struct ws_callbacks scbs = { shutdown_on_open, on_text,
	    on_close };
	struct server	 s;
	struct ws_opts	 o;
	struct rec	 r;
	char		 url[128], *cause = NULL;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo", s.port);
	memset(&o, 0, sizeof o);
	o.url = url;
	memset(&r, 0, sizeof r);
	CHECK(ws_connect(&o, &scbs, &r, &cause) != NULL);
	run_until_closed(&r);
	CHECK(r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 1006);
	/* New connections are refused while lws is being torn down. */
	CHECK(ws_connect(&o, &cbs, &r, &cause) == NULL);
	free(cause);
	uv_run(loop_uv(), UV_RUN_DEFAULT);
	server_stop(&s);
	CHECK_INT(r.closed, 1);
	teardown();
}

/* Turns the loop for ms (lws keeps it alive, so UV_RUN_DEFAULT alone would not return). */
static void
run_for(uint64_t ms)
{
	int	 expired = 0;

	loop_timer_once(ms, guard, &expired);
	while (!expired)
		uv_run(loop_uv(), UV_RUN_DEFAULT);
}

TEST(ws_close_before_open_reports_code_0_once)
{
	struct server	 s;
	struct rec	 r;

	setup();
	CHECK(server_start(&s, NULL, NULL) == 0);
	memset(&r, 0, sizeof r);
	CHECK(connect_to(&r, s.port, "/echo", 0, 0, 0) != NULL);
	ws_close(r.conn, 1000, "changed my mind");
	CHECK_INT(r.closed, 0);		/* never from inside ws_close */
	/* Let lws finish with the dropped attempt: no second on_close. */
	run_for(300);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 0);
	CHECK_STR(r.reason, "changed my mind");
	server_stop(&s);
	CHECK(!r.opened);
	CHECK_INT(r.closed, 1);
	teardown();
}

TEST(ws_bad_url_fails_immediately)
{
	struct ws_opts	 o;
	struct rec	 r;
	char		*cause = NULL;

	setup();
	memset(&o, 0, sizeof o);
	memset(&r, 0, sizeof r);
	o.url = "http://127.0.0.1:1/x";
	CHECK(ws_connect(&o, &cbs, &r, &cause) == NULL);
	CHECK(cause != NULL && strstr(cause, "ws://") != NULL);
	free(cause);
	CHECK_INT(r.closed, 0);
	teardown();
}

/* Self-signed cert for wss://; the test is skipped-as-failed if openssl is missing. */
static int
make_cert(char *dir, char *cert, char *key, size_t sz)
{
	char	 cmd[512];

	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cert, sz, "%s/cert.pem", dir);
	snprintf(key, sz, "%s/key.pem", dir);
	snprintf(cmd, sizeof cmd, "openssl req -x509 -newkey rsa:2048 -nodes "
	    "-subj /CN=localhost -days 1 -keyout %s -out %s 2>/dev/null",
	    key, cert);
	return system(cmd) == 0 ? 0 : -1;
}

TEST(wss_verifies_certificates_unless_insecure)
{
	char		 dir[] = "/tmp/sb-ws-tls.XXXXXX", cert[128], key[128];
	char		 url[128], *cause = NULL, cmd[256];
	struct server	 s;
	struct ws_opts	 o;
	struct rec	 r;

	setup();
	CHECK(make_cert(dir, cert, key, sizeof cert) == 0);
	CHECK(server_start(&s, cert, key) == 0);
	snprintf(url, sizeof url, "wss://127.0.0.1:%d/echo", s.port);
	memset(&o, 0, sizeof o);
	o.url = url;

	/* Verification on: a self-signed peer never opens. */
	memset(&r, 0, sizeof r);
	CHECK(ws_connect(&o, &cbs, &r, &cause) != NULL);
	run_until_closed(&r);
	CHECK(!r.opened);
	CHECK_INT(r.closed, 1);
	CHECK_INT(r.code, 0);

	memset(&r, 0, sizeof r);
	o.insecure = 1;
	r.send[0] = "over tls";
	r.close_after = 1;
	CHECK(ws_connect(&o, &cbs, &r, &cause) != NULL);
	run_until_closed(&r);
	server_stop(&s);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	CHECK(r.opened);
	CHECK_INT(r.ntext, 1);
	CHECK_STR(r.text[0], "over tls");
	CHECK_INT(r.code, 1000);
	rec_free(&r);
	teardown();
}

static void
kill_leftover_server(void)
{
	if (live_server > 0) {
		kill(live_server, SIGTERM);
		waitpid(live_server, NULL, 0);
	}
}

int
main(void)
{
	atexit(kill_leftover_server);
	RUN(ws_echo_round_trips_several_messages_including_200k);
	RUN(ws_server_drop_reports_1006_with_reason);
	RUN(ws_server_close_code_and_reason_are_surfaced);
	RUN(ws_deaf_server_is_detected_within_dead_ms);
	RUN(ws_pongs_keep_a_quiet_connection_alive);
	RUN(ws_connection_refused_reports_code_0);
	RUN(ws_oversize_message_closes_1009);
	RUN(ws_oversize_message_is_drained_then_closed_1009_and_endless_one_dropped);
	RUN(ws_lws_shutdown_closes_an_open_connection_exactly_once);
	RUN(ws_close_before_open_reports_code_0_once);
	RUN(ws_bad_url_fails_immediately);
	RUN(wss_verifies_certificates_unless_insecure);
	return t_done();
}
