/*
 * test-ctl — the JSON-lines server on our loop against two kinds of peer:
 * a raw non-blocking socket in this process (the loop stepped by hand, for
 * byte-exact framing cases) and the blocking ctl-client in a forked child.
 */
#include "bot/ctl.h"
#include "bot/ctl-client.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static char			 dir[64];
static char			 sockpath[128];
static struct ctl_server	*srv;

/* Requests the "hold" handler keeps, and what happened to them. */
#define NHELD	8
static struct ctl_req		*held[NHELD];
static int			 held_selfreply[NHELD];
static int			 nheld, ngone, nhandled;

static void
setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/sb-ctl-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sockpath, sizeof sockpath, "%s/ctl.sock", dir);
	memset(held, 0, sizeof held);
	memset(held_selfreply, 0, sizeof held_selfreply);
	nheld = ngone = nhandled = 0;
	CHECK(loop_init() == 0);
	srv = NULL;
}

static void
rm_dir(void)
{
	char	 lock[160];

	snprintf(lock, sizeof lock, "%s.lock", sockpath);
	unlink(sockpath);
	unlink(lock);
	rmdir(dir);
}

/* Closes the server; the loop must then run dry on its own. */
static void
finish(void)
{
	if (srv != NULL)
		ctl_close(srv);
	srv = NULL;
	CHECK_INT(uv_run(loop_uv(), UV_RUN_DEFAULT), 0);
	CHECK(!uv_loop_alive(loop_uv()));
	loop_free();
	rm_dir();
}

/* ---- handlers ---- */

static void
h_echo(struct ctl_req *req, const json_t *r, void *arg)
{
	nhandled++;
	ctl_reply(req, json_pack("{s:O?,s:i,s:i}", "text",
	    json_object_get(r, "text"), "pid", (int)ctl_req_pid(req),
	    "uid", (int)ctl_req_uid(req)));
}

static void
h_fail(struct ctl_req *req, const json_t *r, void *arg)
{
	ctl_reply_error(req, "no such agent #%d", 3);
}

static void
held_gone(struct ctl_req *req, void *arg)
{
	int	 i = (int)(intptr_t)arg;

	CHECK(held[i] == req);
	CHECK(ctl_req_gone(req));
	ngone++;
	if (held_selfreply[i]) {
		ctl_reply_error(req, "cancelled");
		held[i] = NULL;
	}
}

static void
h_hold(struct ctl_req *req, const json_t *r, void *arg)
{
	int	 i = nheld++;

	nhandled++;
	held[i] = req;
	held_selfreply[i] = json_is_true(json_object_get(r, "selfreply"));
	ctl_req_on_gone(req, held_gone, (void *)(intptr_t)i);
}

struct later {
	struct ctl_req	*req;
	int		 ms;
};

static void
later_fire(void *arg)
{
	struct later	*l = arg;

	ctl_reply(l->req, json_pack("{s:i}", "ms", l->ms));
	free(l);
}

static void
h_later(struct ctl_req *req, const json_t *r, void *arg)
{
	struct later	*l = xcalloc(1, sizeof *l);

	l->req = req;
	l->ms = (int)json_integer_value(json_object_get(r, "ms"));
	loop_timer_once((uint64_t)l->ms, later_fire, l);
}

static void
h_big(struct ctl_req *req, const json_t *r, void *arg)
{
	size_t	 n = (size_t)json_integer_value(json_object_get(r, "size"));
	char	*s = xmalloc(n + 1);

	nhandled++;
	memset(s, 'b', n);
	s[n] = '\0';
	ctl_reply(req, json_pack("{s:s}", "data", s));
	free(s);
}

static void
h_shutdown(struct ctl_req *req, const json_t *r, void *arg)
{
	nhandled++;
	ctl_reply(req, NULL);
	ctl_close(srv);
	srv = NULL;
}

static void
start_server(void)
{
	char	*cause = NULL;

	srv = ctl_listen(sockpath, &cause);
	if (srv == NULL)
		printf("# ctl_listen: %s\n", cause);
	CHECK(srv != NULL);
	ctl_on(srv, "echo", h_echo, NULL);
	ctl_on(srv, "fail", h_fail, NULL);
	ctl_on(srv, "hold", h_hold, NULL);
	ctl_on(srv, "later", h_later, NULL);
	ctl_on(srv, "big", h_big, NULL);
	ctl_on(srv, "shutdown", h_shutdown, NULL);
}

/* ---- raw in-process peer ---- */

struct raw {
	int		 fd;
	struct buf	 in;
};

static void
step(void)
{
	uv_run(loop_uv(), UV_RUN_NOWAIT);
}

static void
raw_open(struct raw *r)
{
	struct sockaddr_un	 sun;

	memset(r, 0, sizeof *r);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sockpath);
	r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	CHECK(r->fd != -1);
	CHECK(connect(r->fd, (struct sockaddr *)&sun, sizeof sun) == 0);
}

static void
raw_close(struct raw *r)
{
	if (r->fd != -1)
		close(r->fd);
	r->fd = -1;
	buf_free(&r->in);
}

static void
raw_send(struct raw *r, const char *p, size_t len)
{
	uint64_t	 deadline = now_ms() + 5000;
	ssize_t		 n;

	while (len > 0) {
		CHECK(now_ms() < deadline);
		n = send(r->fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else {
			CHECK(errno == EAGAIN);
			step();
		}
	}
	step();
}

static void
raw_sends(struct raw *r, const char *s)
{
	raw_send(r, s, strlen(s));
}

/*
 * The next line, stepping the loop while waiting; NULL on EOF (*eof = 1) or
 * when timeout_ms passes with no full line.
 */
static char *
raw_line(struct raw *r, int timeout_ms, int *eof)
{
	uint64_t	 deadline = now_ms() + (uint64_t)timeout_ms;
	char		 tmp[65536], *nl, *line;
	ssize_t		 n;
	size_t		 len;

	if (eof != NULL)
		*eof = 0;
	for (;;) {
		if (r->in.len > 0 &&
		    (nl = memchr(r->in.data, '\n', r->in.len)) != NULL) {
			len = (size_t)(nl - r->in.data);
			line = xstrndup(r->in.data, len);
			memmove(r->in.data, nl + 1, r->in.len - len - 1);
			r->in.len -= len + 1;
			return line;
		}
		n = recv(r->fd, tmp, sizeof tmp, 0);
		if (n > 0) {
			buf_add(&r->in, tmp, (size_t)n);
			continue;
		}
		if (n == 0 || errno == ECONNRESET) {
			if (eof != NULL)
				*eof = 1;
			return NULL;
		}
		if (now_ms() >= deadline)
			return NULL;
		step();
		usleep(200);
	}
}

/* The next line as JSON (owned by the caller), or fail the test. */
static json_t *
raw_reply(struct raw *r)
{
	char	*line;
	json_t	*j;

	line = raw_line(r, 3000, NULL);
	CHECK(line != NULL);
	j = json_loads(line, 0, NULL);
	free(line);
	CHECK(json_is_object(j));
	return j;
}

static void
wait_until(int *counter, int want)
{
	uint64_t	 deadline = now_ms() + 3000;

	while (*counter < want && now_ms() < deadline) {
		step();
		usleep(200);
	}
	CHECK_INT(*counter, want);
}

#define JINT(j, k)	json_integer_value(json_object_get((j), (k)))
#define JSTR(j, k)	json_string_value(json_object_get((j), (k)))

/* ---- forked blocking client ---- */

static pid_t		 child_pid;
static int		 child_status;
static int		 child_done;
static uv_timer_t	 reap_timer;

static void
reap(uv_timer_t *t)
{
	int	 st;

	if (waitpid(child_pid, &st, WNOHANG) != child_pid)
		return;
	child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	child_done = 1;
	uv_close((uv_handle_t *)t, NULL);
	ctl_close(srv);
	srv = NULL;
}

/* Runs fn in a child while the loop serves it; fn's return is the status. */
static int
run_child(int (*fn)(void))
{
	fflush(stdout);
	fflush(stderr);
	if ((child_pid = fork()) == 0) {
		alarm(10);	/* a hung child must not hang the suite */
		_exit(fn());
	}
	CHECK(child_pid > 0);
	child_done = 0;
	uv_timer_init(loop_uv(), &reap_timer);
	uv_timer_start(&reap_timer, reap, 5, 5);
	uv_run(loop_uv(), UV_RUN_DEFAULT);
	CHECK(child_done);
	return child_status;
}

#define CHILD_CHECK(n, expr) do {					\
	if (!(expr)) {							\
		fprintf(stderr, "child check %d failed: %s\n", n, #expr); \
		return n;						\
	}								\
} while (0)

/* ---- tests ---- */

static int
child_round_trip(void)
{
	char		*cause = NULL;
	json_t		*req, *rep = NULL;
	json_int_t	 id1;
	int		 fd;

	fd = ctl_connect(sockpath, &cause);
	CHILD_CHECK(1, fd != -1);
	req = json_pack("{s:s,s:s}", "op", "echo", "text", "h\xc3\xa9llo\nworld");
	CHILD_CHECK(2, ctl_call(fd, req, &rep, 2000, &cause) == 0);
	id1 = JINT(req, "id");
	CHILD_CHECK(3, JINT(rep, "id") == id1);
	CHILD_CHECK(4, JINT(rep, "v") == 1);
	CHILD_CHECK(5, json_is_true(json_object_get(rep, "ok")));
	CHILD_CHECK(6, strcmp(JSTR(rep, "text"), "h\xc3\xa9llo\nworld") == 0);
	/* SO_PEERCRED saw this process. */
	CHILD_CHECK(7, JINT(rep, "pid") == getpid());
	CHILD_CHECK(8, JINT(rep, "uid") == (json_int_t)getuid());
	json_decref(rep);
	CHILD_CHECK(9, ctl_call(fd, req, &rep, 2000, &cause) == 0);
	CHILD_CHECK(10, JINT(req, "id") != id1);
	CHILD_CHECK(11, JINT(rep, "id") == JINT(req, "id"));
	json_decref(rep);
	json_decref(req);
	ctl_disconnect(fd);
	return 0;
}

TEST(ctl_call_round_trip_echoes_id_and_peer_credentials)
{
	setup();
	start_server();
	CHECK_INT(run_child(child_round_trip), 0);
	finish();
}

static int
child_refused(void)
{
	char	*cause = NULL;
	json_t	*req, *rep = NULL;
	int	 fd;

	fd = ctl_connect(sockpath, &cause);
	CHILD_CHECK(1, fd != -1);
	req = json_pack("{s:s}", "op", "frobnicate");
	CHILD_CHECK(2, ctl_call(fd, req, &rep, 2000, &cause) == CTL_REFUSED);
	CHILD_CHECK(3, rep == NULL);
	CHILD_CHECK(4, strcmp(cause, "unknown op") == 0);
	free(cause);
	cause = NULL;
	json_decref(req);
	req = json_pack("{s:s}", "op", "fail");
	CHILD_CHECK(5, ctl_call(fd, req, &rep, 2000, &cause) == CTL_REFUSED);
	CHILD_CHECK(6, strcmp(cause, "no such agent #3") == 0);
	json_decref(req);
	free(cause);
	ctl_disconnect(fd);
	return 0;
}

TEST(ctl_call_returns_refused_with_the_daemon_error_text)
{
	setup();
	start_server();
	CHECK_INT(run_child(child_refused), 0);
	finish();
}

static int
child_skip(void)
{
	const char	*early = "{\"v\":1,\"id\":777,\"op\":\"later\",\"ms\":20}\n";
	char		*cause = NULL;
	json_t		*req, *rep = NULL;
	int		 fd;

	fd = ctl_connect(sockpath, &cause);
	CHILD_CHECK(1, fd != -1);
	/* Its reply arrives first, while ctl_call waits for its own. */
	CHILD_CHECK(2, write(fd, early, strlen(early)) == (ssize_t)strlen(early));
	req = json_pack("{s:s,s:i}", "op", "later", "ms", 150);
	CHILD_CHECK(3, ctl_call(fd, req, &rep, 3000, &cause) == 0);
	CHILD_CHECK(4, JINT(rep, "ms") == 150);
	CHILD_CHECK(5, JINT(rep, "id") == JINT(req, "id"));
	json_decref(rep);
	json_decref(req);
	ctl_disconnect(fd);
	return 0;
}

TEST(ctl_call_skips_replies_to_other_ids)
{
	setup();
	start_server();
	CHECK_INT(run_child(child_skip), 0);
	finish();
}

TEST(ctl_call_times_out_when_the_daemon_does_not_answer)
{
	char		*cause = NULL;
	json_t		*req, *rep = NULL;
	uint64_t	 t0, dt;
	int		 fd;

	setup();
	start_server();
	/* The loop is not stepped: the connection sits in the backlog. */
	fd = ctl_connect(sockpath, &cause);
	CHECK(fd != -1);
	req = json_pack("{s:s}", "op", "echo");
	t0 = now_ms();
	CHECK_INT(ctl_call(fd, req, &rep, 150, &cause), -1);
	dt = now_ms() - t0;
	CHECK(dt >= 150 && dt < 2000);
	CHECK(rep == NULL);
	CHECK(strstr(cause, "timed out") != NULL);
	free(cause);
	json_decref(req);
	ctl_disconnect(fd);
	finish();
}

TEST(ctl_connect_without_daemon_says_so_clearly)
{
	struct sockaddr_un	 sun;
	char			*cause = NULL, want[256];
	int			 fd;

	setup();
	snprintf(want, sizeof want, "no daemon at %s (is switchboard serve "
	    "running?)", sockpath);
	/* No file at all. */
	CHECK_INT(ctl_connect(sockpath, &cause), -1);
	CHECK_STR(cause, want);
	free(cause);
	cause = NULL;
	/* A socket file nobody listens on (daemon crashed). */
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sockpath);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
	close(fd);
	CHECK_INT(ctl_connect(sockpath, &cause), -1);
	CHECK_STR(cause, want);
	free(cause);
	cause = NULL;
	unlink(sockpath);
	/* Permission denied cannot be provoked as root. */
	if (geteuid() != 0) {
		start_server();
		CHECK(chmod(sockpath, 0) == 0);
		CHECK_INT(ctl_connect(sockpath, &cause), -1);
		CHECK(strncmp(cause, "permission denied on ", 21) == 0);
		free(cause);
	}
	finish();
}

TEST(ctl_deferred_reply_comes_after_a_later_immediate_one)
{
	struct raw	 r;
	json_t		*j;

	setup();
	start_server();
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"hold\"}\n"
	    "{\"v\":1,\"id\":2,\"op\":\"echo\",\"text\":\"now\"}\n");
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 2);
	CHECK_STR(JSTR(j, "text"), "now");
	json_decref(j);
	CHECK_INT(nheld, 1);
	CHECK_INT(ctl_req_id(held[0]), 1);
	CHECK_STR(ctl_req_op(held[0]), "hold");
	CHECK_INT(ctl_req_pid(held[0]), getpid());
	ctl_reply(held[0], json_pack("{s:s}", "answer", "GitHub"));
	held[0] = NULL;
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 1);
	CHECK(json_is_true(json_object_get(j, "ok")));
	CHECK_STR(JSTR(j, "answer"), "GitHub");
	json_decref(j);
	raw_close(&r);
	finish();
}

TEST(ctl_partial_lines_and_several_lines_per_read_are_framed)
{
	struct raw	 r;
	json_t		*j;
	char		*line;
	int		 i;

	setup();
	start_server();
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"ec");
	line = raw_line(&r, 50, NULL);
	CHECK(line == NULL);		/* half a line: nothing yet */
	CHECK_INT(nhandled, 0);
	raw_sends(&r, "ho\"}\n\r\n\n{\"v\":1,\"id\":2,\"op\":\"echo\"}\r\n"
	    "{\"v\":1,\"id\":3,");
	raw_sends(&r, "\"op\":\"echo\"}\n");
	for (i = 1; i <= 3; i++) {
		j = raw_reply(&r);
		CHECK_INT(JINT(j, "id"), i);
		CHECK(json_is_true(json_object_get(j, "ok")));
		json_decref(j);
	}
	CHECK_INT(nhandled, 3);	/* blank lines are not requests */
	raw_close(&r);
	finish();
}

TEST(ctl_malformed_json_gets_an_error_and_the_connection_stays)
{
	struct raw	 r;
	json_t		*j;

	setup();
	start_server();
	raw_open(&r);
	raw_sends(&r, "{not json\n");
	j = raw_reply(&r);
	CHECK(json_is_null(json_object_get(j, "id")));
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK_STR(JSTR(j, "error"), "malformed JSON");
	CHECK_INT(JINT(j, "v"), 1);
	json_decref(j);
	/* Valid JSON, bad envelope: no id to echo either. */
	raw_sends(&r, "[1,2]\n{\"v\":1,\"op\":\"echo\"}\n");
	j = raw_reply(&r);
	CHECK(json_is_null(json_object_get(j, "id")));
	CHECK(json_is_false(json_object_get(j, "ok")));
	json_decref(j);
	j = raw_reply(&r);
	CHECK(json_is_null(json_object_get(j, "id")));
	CHECK(json_is_false(json_object_get(j, "ok")));
	json_decref(j);
	raw_sends(&r, "{\"v\":1,\"id\":5,\"op\":\"echo\",\"text\":\"still here\"}\n");
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 5);
	CHECK_STR(JSTR(j, "text"), "still here");
	json_decref(j);
	raw_close(&r);
	finish();
}

TEST(ctl_unknown_op_and_wrong_version_are_errors_with_the_id)
{
	struct raw	 r;
	json_t		*j;

	setup();
	start_server();
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":3,\"op\":\"frobnicate\"}\n"
	    "{\"v\":2,\"id\":4,\"op\":\"echo\"}\n"
	    "{\"id\":5,\"op\":\"echo\"}\n"
	    "{\"v\":1,\"id\":6}\n");
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 3);
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK_STR(JSTR(j, "error"), "unknown op");
	json_decref(j);
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 4);
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK(strstr(JSTR(j, "error"), "version") != NULL);
	json_decref(j);
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 5);
	CHECK(json_is_false(json_object_get(j, "ok")));
	json_decref(j);
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 6);
	CHECK(json_is_false(json_object_get(j, "ok")));
	json_decref(j);
	CHECK_INT(nhandled, 0);
	raw_close(&r);
	finish();
}

/* {"v":1,"id":ID,"op":"echo","pad":"aaa…"} of exactly len bytes. */
static char *
padded_request(int id, size_t len)
{
	char	*head, *s;
	size_t	 hlen, pad;

	head = xasprintf("{\"v\":1,\"id\":%d,\"op\":\"echo\",\"pad\":\"", id);
	hlen = strlen(head);
	pad = len - hlen - 2;
	s = xmalloc(len + 2);
	memcpy(s, head, hlen);
	memset(s + hlen, 'a', pad);
	memcpy(s + hlen + pad, "\"}\n", 4);
	free(head);
	return s;
}

TEST(ctl_line_of_exactly_one_mib_is_accepted)
{
	struct raw	 r;
	json_t		*j;
	char		*req;

	setup();
	start_server();
	raw_open(&r);
	req = padded_request(9, CTL_MAX_LINE);
	CHECK_INT(strlen(req), CTL_MAX_LINE + 1);
	raw_sends(&r, req);
	free(req);
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 9);
	CHECK(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	raw_close(&r);
	finish();
}

static void
expect_too_long_then_eof(struct raw *r)
{
	json_t	*j;
	char	*line;
	int	 eof;

	j = raw_reply(r);
	CHECK(json_is_null(json_object_get(j, "id")));
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK_STR(JSTR(j, "error"), "line too long");
	json_decref(j);
	line = raw_line(r, 3000, &eof);
	CHECK(line == NULL);
	CHECK(eof);
}

TEST(ctl_line_over_one_mib_gets_an_error_and_the_connection_closes)
{
	struct raw	 r;
	char		*req, *junk;

	setup();
	start_server();
	/* One byte over, newline included: the complete-line path. */
	raw_open(&r);
	req = padded_request(10, CTL_MAX_LINE + 1);
	raw_sends(&r, req);
	free(req);
	expect_too_long_then_eof(&r);
	raw_close(&r);
	/* No newline at all: must not buffer forever. */
	raw_open(&r);
	junk = xmalloc(CTL_MAX_LINE + 4096);
	memset(junk, 'x', CTL_MAX_LINE + 4096);
	raw_send(&r, junk, CTL_MAX_LINE + 4096);
	free(junk);
	expect_too_long_then_eof(&r);
	raw_close(&r);
	CHECK_INT(nhandled, 0);
	finish();
}

TEST(ctl_peer_gone_while_pending_calls_on_gone_and_later_reply_is_ignored)
{
	struct raw	 r;

	setup();
	start_server();
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"hold\"}\n"
	    "{\"v\":1,\"id\":2,\"op\":\"hold\",\"selfreply\":true}\n"
	    "{\"v\":1,\"id\":3,\"op\":\"hold\"}\n");
	wait_until(&nheld, 3);
	CHECK(!ctl_req_gone(held[0]));
	raw_close(&r);		/* the agent was killed during "ask" */
	wait_until(&ngone, 3);
	CHECK(held[1] == NULL);	/* answered from inside on_gone */
	CHECK(ctl_req_gone(held[0]));
	CHECK_INT(ctl_req_id(held[2]), 3);
	/* Late answers: discarded, and ASan sees no use after free. */
	ctl_reply(held[0], json_pack("{s:s}", "answer", "too late"));
	ctl_reply_error(held[2], "cancelled");
	held[0] = held[2] = NULL;
	step();
	finish();
}

TEST(ctl_on_gone_registered_after_the_peer_left_fires_at_once)
{
	struct raw	 r;
	struct ctl_req	*req;

	setup();
	start_server();
	ctl_on(srv, "hold", h_hold, NULL);
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"hold\"}\n");
	wait_until(&nheld, 1);
	req = held[0];
	raw_close(&r);
	wait_until(&ngone, 1);
	/* A second registration on a gone request must not wait forever. */
	ctl_req_on_gone(req, held_gone, (void *)0);
	CHECK_INT(ngone, 2);
	ctl_reply(req, NULL);
	held[0] = NULL;
	finish();
}

TEST(ctl_close_with_pending_requests_calls_on_gone_and_the_loop_ends)
{
	struct raw	 r;
	struct stat	 st;
	char		*line;
	int		 eof;

	setup();
	start_server();
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"hold\"}\n");
	wait_until(&nheld, 1);
	ctl_close(srv);
	srv = NULL;
	CHECK_INT(ngone, 1);
	CHECK(stat(sockpath, &st) == -1 && errno == ENOENT);
	ctl_reply(held[0], NULL);	/* ignored */
	held[0] = NULL;
	line = raw_line(&r, 3000, &eof);
	CHECK(line == NULL);
	CHECK(eof);
	raw_close(&r);
	finish();
}

TEST(ctl_close_from_inside_a_handler_is_safe)
{
	struct raw	 r;
	json_t		*j;
	char		*line;
	int		 eof;

	setup();
	start_server();
	raw_open(&r);
	/* Both lines arrive in one read; the second must not be run. */
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"shutdown\"}\n"
	    "{\"v\":1,\"id\":2,\"op\":\"echo\"}\n");
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 1);
	CHECK(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	line = raw_line(&r, 3000, &eof);
	CHECK(line == NULL);
	CHECK(eof);
	CHECK_INT(nhandled, 1);
	CHECK(srv == NULL);
	raw_close(&r);
	finish();
}

TEST(ctl_socket_is_0600_even_under_a_permissive_umask)
{
	struct stat	 st;
	mode_t		 old, during;

	setup();
	old = umask(0);
	start_server();
	during = umask(old);
	CHECK_INT(during, 0);		/* our umask is given back */
	CHECK(stat(sockpath, &st) == 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_INT(st.st_mode & 0777, 0600);
	finish();
}

TEST(ctl_second_listen_on_a_live_path_is_refused_as_already_running)
{
	struct sockaddr_un	 sun;
	struct ctl_server	*again;
	struct raw		 r;
	char			*cause = NULL;
	json_t			*j;
	int			 fd;

	setup();
	start_server();
	again = ctl_listen(sockpath, &cause);
	CHECK(again == NULL);
	CHECK(strstr(cause, "already running") != NULL);
	free(cause);
	cause = NULL;
	/* The first one still serves. */
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"echo\"}\n");
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 1);
	json_decref(j);
	raw_close(&r);
	finish();

	/* A listener that holds no lock (not us) is probed and respected. */
	setup();
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sockpath);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
	CHECK(listen(fd, 4) == 0);
	again = ctl_listen(sockpath, &cause);
	close(fd);
	CHECK(again == NULL);
	CHECK(strstr(cause, "already running") != NULL);
	free(cause);
	finish();
}

TEST(ctl_stale_socket_file_is_replaced_and_other_files_are_not)
{
	struct sockaddr_un	 sun;
	struct raw		 r;
	struct stat		 st;
	char			*cause = NULL;
	json_t			*j;
	int			 fd;

	setup();
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, sockpath);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
	close(fd);			/* the file stays: a crashed daemon */
	start_server();
	raw_open(&r);
	raw_sends(&r, "{\"v\":1,\"id\":1,\"op\":\"echo\"}\n");
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 1);
	json_decref(j);
	raw_close(&r);
	finish();

	/* A regular file in the way is somebody's data: refuse, keep it. */
	setup();
	fd = open(sockpath, O_CREAT | O_WRONLY, 0644);
	CHECK(fd != -1);
	close(fd);
	CHECK(ctl_listen(sockpath, &cause) == NULL);
	CHECK(strstr(cause, "not a socket") != NULL);
	free(cause);
	CHECK(stat(sockpath, &st) == 0 && S_ISREG(st.st_mode));
	finish();
}

TEST(ctl_connections_past_the_limit_get_an_error_and_eof)
{
	struct raw	 r[4];
	json_t		*j;
	char		*line;
	int		 i, eof;

	setup();
	start_server();
	ctl_set_max_conns(srv, 2);
	for (i = 0; i < 3; i++) {
		raw_open(&r[i]);
		step();
	}
	j = raw_reply(&r[2]);
	CHECK_STR(JSTR(j, "error"), "too many connections");
	json_decref(j);
	line = raw_line(&r[2], 3000, &eof);
	CHECK(line == NULL && eof);
	raw_close(&r[2]);
	for (i = 0; i < 2; i++) {
		raw_sends(&r[i], "{\"v\":1,\"id\":7,\"op\":\"echo\"}\n");
		j = raw_reply(&r[i]);
		CHECK(json_is_true(json_object_get(j, "ok")));
		json_decref(j);
	}
	/* A slot freed is a slot again. */
	raw_close(&r[0]);
	for (i = 0; i < 20; i++)
		step();
	raw_open(&r[3]);
	raw_sends(&r[3], "{\"v\":1,\"id\":8,\"op\":\"echo\"}\n");
	j = raw_reply(&r[3]);
	CHECK(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	raw_close(&r[1]);
	raw_close(&r[3]);
	finish();
}

/* Keys handed out in connection order; the pid and uid are the caller's. */
static const int64_t	 admit_keys[] = { 1, 1, 1, 2, -1 };
static int		 admit_n;
static pid_t		 admit_pid;

static int64_t
admit_script(pid_t pid, uid_t uid, void *arg)
{
	admit_pid = pid;
	return admit_keys[admit_n++];
}

TEST(ctl_admit_caps_connections_per_key_and_refuses_minus_one)
{
	struct raw	 r[5];
	json_t		*j;
	char		*line;
	int		 i, eof;

	setup();
	start_server();
	admit_n = 0;
	ctl_set_admit(srv, admit_script, NULL, 2);
	for (i = 0; i < 5; i++) {
		raw_open(&r[i]);
		step();
	}
	CHECK_INT(admit_n, 5);
	CHECK_INT(admit_pid, getpid());
	/* Key 1 is full after two; key 2 still has room. */
	j = raw_reply(&r[2]);
	CHECK_STR(JSTR(j, "error"), "too many connections");
	json_decref(j);
	line = raw_line(&r[2], 3000, &eof);
	CHECK(line == NULL && eof);
	j = raw_reply(&r[4]);
	CHECK_STR(JSTR(j, "error"), "permission denied");
	json_decref(j);
	for (i = 0; i < 4; i++) {
		if (i == 2)
			continue;
		raw_sends(&r[i], "{\"v\":1,\"id\":7,\"op\":\"echo\"}\n");
		j = raw_reply(&r[i]);
		CHECK(json_is_true(json_object_get(j, "ok")));
		json_decref(j);
	}
	for (i = 0; i < 5; i++)
		raw_close(&r[i]);
	finish();
}

TEST(ctl_peer_that_does_not_read_pauses_its_input_and_loses_nothing)
{
	struct raw	 r;
	struct buf	 reqs = { NULL, 0, 0 };
	json_t		*j;
	uint64_t	 t0;
	int		 i, n = 30, size = 300 * 1024;

	setup();
	start_server();
	raw_open(&r);
	for (i = 1; i <= n; i++)
		buf_printf(&reqs, "{\"v\":1,\"id\":%d,\"op\":\"big\","
		    "\"size\":%d}\n", i, size);
	raw_send(&r, reqs.data, reqs.len);
	buf_free(&reqs);
	for (t0 = now_ms(); now_ms() - t0 < 200;) {
		step();
		usleep(1000);
	}
	/* ~9 MB of answers are due; the server stopped taking requests. */
	CHECK(nhandled > 0 && nhandled < n);
	for (i = 1; i <= n; i++) {
		j = raw_reply(&r);
		CHECK_INT(JINT(j, "id"), i);
		CHECK_INT(strlen(JSTR(j, "data")), size);
		json_decref(j);
	}
	CHECK_INT(nhandled, n);
	raw_close(&r);
	finish();
}

TEST(ctl_reply_over_one_mib_becomes_an_error_with_the_id)
{
	struct raw	 r;
	json_t		*j;
	char		*req;

	setup();
	start_server();
	raw_open(&r);
	req = xasprintf("{\"v\":1,\"id\":4,\"op\":\"big\",\"size\":%d}\n",
	    CTL_MAX_LINE + 1);
	raw_sends(&r, req);
	free(req);
	j = raw_reply(&r);
	CHECK_INT(JINT(j, "id"), 4);
	CHECK(json_is_false(json_object_get(j, "ok")));
	CHECK_STR(JSTR(j, "error"), "reply too large");
	json_decref(j);
	raw_close(&r);
	finish();
}

int
main(void)
{
	log_init("error", 0, NULL);
	alarm(60);		/* a hung loop fails the binary, not the suite */
	RUN(ctl_call_round_trip_echoes_id_and_peer_credentials);
	RUN(ctl_call_returns_refused_with_the_daemon_error_text);
	RUN(ctl_call_skips_replies_to_other_ids);
	RUN(ctl_call_times_out_when_the_daemon_does_not_answer);
	RUN(ctl_connect_without_daemon_says_so_clearly);
	RUN(ctl_deferred_reply_comes_after_a_later_immediate_one);
	RUN(ctl_partial_lines_and_several_lines_per_read_are_framed);
	RUN(ctl_malformed_json_gets_an_error_and_the_connection_stays);
	RUN(ctl_unknown_op_and_wrong_version_are_errors_with_the_id);
	RUN(ctl_line_of_exactly_one_mib_is_accepted);
	RUN(ctl_line_over_one_mib_gets_an_error_and_the_connection_closes);
	RUN(ctl_peer_gone_while_pending_calls_on_gone_and_later_reply_is_ignored);
	RUN(ctl_on_gone_registered_after_the_peer_left_fires_at_once);
	RUN(ctl_close_with_pending_requests_calls_on_gone_and_the_loop_ends);
	RUN(ctl_close_from_inside_a_handler_is_safe);
	RUN(ctl_socket_is_0600_even_under_a_permissive_umask);
	RUN(ctl_second_listen_on_a_live_path_is_refused_as_already_running);
	RUN(ctl_stale_socket_file_is_replaced_and_other_files_are_not);
	RUN(ctl_connections_past_the_limit_get_an_error_and_eof);
	RUN(ctl_admit_caps_connections_per_key_and_refuses_minus_one);
	RUN(ctl_peer_that_does_not_read_pauses_its_input_and_loses_nothing);
	RUN(ctl_reply_over_one_mib_becomes_an_error_with_the_id);
	return t_done();
}
