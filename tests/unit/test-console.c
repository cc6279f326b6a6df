/*
 * The console adapter driven through real pipes (and files) on fds 0 and 1:
 * lines in, events up; ops down, lines out.  The chat_* upcalls and the kv
 * store are recorders defined here, so neither the core nor SQLite is linked.
 */
#include "adapters/adapter.h"
#include "adapters/console.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

/* ---- recorders --------------------------------------------------------- */

struct rec_event {
	enum chat_event_kind	 kind;
	char			*channel, *thread, *msg_id, *sender, *text;
	char			*reply_to, *question, *choice, *target, *emoji;
	int			 mentioned;
};

struct rec_done {
	struct chat_op		*op;
	char			*ref;
	int			 failed, permanent;
};

static struct rec_event	 events[64];
static int		 nevents;
static const char	*states[16];
static int		 nstates;
static struct rec_done	 dones[64];
static int		 ndones;
static int		 in_send;	/* set around send() */
static int		 reported_in_send;

static char		*kv_key[8], *kv_val[8];

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

void
chat_on_event(struct adapter *a, const struct chat_event *ev)
{
	struct rec_event	*r;

	if (nevents == (int)nitems(events))
		return;
	r = &events[nevents++];
	r->kind = ev->kind;
	r->channel = dup_or_null(ev->channel);
	r->thread = dup_or_null(ev->thread);
	r->msg_id = dup_or_null(ev->msg_id);
	r->sender = dup_or_null(ev->sender);
	r->text = dup_or_null(ev->text);
	r->reply_to = dup_or_null(ev->reply_to);
	r->question = dup_or_null(ev->question);
	r->choice = dup_or_null(ev->choice);
	r->target = dup_or_null(ev->target);
	r->emoji = dup_or_null(ev->emoji);
	r->mentioned = ev->mentioned;
}

/*
 * As the core: a conversation exists for every thread a message started
 * (the recorded events stand in for the store across a recreate).
 */
int
chat_thread_known(struct adapter *a, const char *channel, const char *thread)
{
	int	 i;

	for (i = 0; i < nevents; i++)
		if (events[i].kind == CHAT_EV_MESSAGE &&
		    events[i].thread == NULL &&
		    strcmp(events[i].msg_id, thread) == 0)
			return 1;
	return 0;
}

void
chat_on_state(struct adapter *a, const char *state)
{
	if (nstates < (int)nitems(states))
		states[nstates++] = state;
}

void
chat_op_done(struct chat_op *op, const char *ref)
{
	if (in_send)
		reported_in_send = 1;
	dones[ndones].op = op;
	dones[ndones].ref = dup_or_null(ref);
	ndones++;
}

void
chat_op_failed(struct chat_op *op, long long retry_ms, int permanent,
    const char *error)
{
	if (in_send)
		reported_in_send = 1;
	dones[ndones].op = op;
	dones[ndones].failed = 1;
	dones[ndones].permanent = permanent;
	ndones++;
}

char *
store_kv_get(const char *key)
{
	size_t	 i;

	for (i = 0; i < nitems(kv_key); i++)
		if (kv_key[i] != NULL && strcmp(kv_key[i], key) == 0)
			return xstrdup(kv_val[i]);
	return NULL;
}

int
store_kv_set(const char *key, const char *value)
{
	size_t	 i;

	for (i = 0; i < nitems(kv_key); i++)
		if (kv_key[i] != NULL && strcmp(kv_key[i], key) == 0) {
			free(kv_val[i]);
			kv_val[i] = xstrdup(value);
			return 0;
		}
	for (i = 0; i < nitems(kv_key); i++)
		if (kv_key[i] == NULL) {
			kv_key[i] = xstrdup(key);
			kv_val[i] = xstrdup(value);
			return 0;
		}
	return -1;
}

static void
kv_clear(void)
{
	size_t	 i;

	for (i = 0; i < nitems(kv_key); i++) {
		free(kv_key[i]);
		free(kv_val[i]);
		kv_key[i] = kv_val[i] = NULL;
	}
}

static void
recorders_clear(void)
{
	struct rec_event	*r;
	int			 i;

	for (i = 0; i < nevents; i++) {
		r = &events[i];
		free(r->channel); free(r->thread); free(r->msg_id);
		free(r->sender); free(r->text); free(r->reply_to);
		free(r->question); free(r->choice); free(r->target);
		free(r->emoji);
	}
	memset(events, 0, sizeof events);
	nevents = 0;
	for (i = 0; i < ndones; i++)
		free(dones[i].ref);
	memset(dones, 0, sizeof dones);
	ndones = 0;
	nstates = 0;
	in_send = reported_in_send = 0;
}

/* ---- fixture: fds 0/1 on pipes or files, the loop stepped by hand ------- */

static int		 saved0 = -1, saved1 = -1;
static int		 in_w = -1, out_r = -1;	/* the test's ends */
static int		 loop_live;
static struct buf	 out;			/* everything read from stdout */

static void
fx_end(void)
{
	if (saved0 != -1) {
		dup2(saved0, 0);
		close(saved0);
		saved0 = -1;
	}
	if (saved1 != -1) {
		dup2(saved1, 1);
		close(saved1);
		saved1 = -1;
	}
	if (in_w != -1)
		close(in_w);
	if (out_r != -1)
		close(out_r);
	in_w = out_r = -1;
	if (loop_live)
		loop_free();
	loop_live = 0;
	buf_free(&out);
	recorders_clear();
	kv_clear();
}

static void
fx_begin(int in_fd, int out_fd)
{
	fx_end();		/* whatever a failed test left behind */
	CHECK(loop_init() == 0);
	loop_live = 1;
	saved0 = dup(0);
	saved1 = dup(1);
	CHECK(dup2(in_fd, 0) == 0);
	CHECK(dup2(out_fd, 1) == 1);
	close(in_fd);
	close(out_fd);
}

static void
fx_begin_pipes(void)
{
	int	 pin[2], pout[2];

	CHECK(pipe(pin) == 0 && pipe(pout) == 0);
	fx_begin(pin[0], pout[1]);
	in_w = pin[1];
	out_r = pout[0];
	fcntl(in_w, F_SETFL, O_NONBLOCK);
	fcntl(out_r, F_SETFL, O_NONBLOCK);
}

/* One loop step, then whatever stdout has for us. */
static void
pump(void)
{
	char	 b[65536];
	ssize_t	 n;
	int	 busy;

	busy = uv_run(loop_uv(), UV_RUN_NOWAIT);
	while (out_r != -1 && (n = read(out_r, b, sizeof b)) > 0)
		buf_add(&out, b, (size_t)n);
	if (busy)
		usleep(500);
}

#define WAIT(cond) do {							\
	uint64_t t_dl_ = now_ms() + 3000;				\
	while (!(cond) && now_ms() < t_dl_)				\
		pump();							\
} while (0)

/* Writes to stdin of the adapter, stepping the loop when the pipe is full. */
static void
feed(const char *s)
{
	size_t	 n = strlen(s);
	ssize_t	 r;
	uint64_t dl = now_ms() + 3000;

	while (n > 0 && now_ms() < dl) {
		if ((r = write(in_w, s, n)) > 0) {
			s += r;
			n -= (size_t)r;
		} else
			pump();
	}
	CHECK(n == 0);
}

/* Number of whole output lines equal to line. */
static int
out_count(const char *line)
{
	const char	*p = out.data != NULL ? out.data : "", *nl;
	size_t		 len = strlen(line);
	int		 n = 0;

	while ((nl = strchr(p, '\n')) != NULL) {
		if ((size_t)(nl - p) == len && memcmp(p, line, len) == 0)
			n++;
		p = nl + 1;
	}
	return n;
}

static int
out_has(const char *line)
{
	return out_count(line) > 0;
}

/* Number of output lines starting with prefix. */
static int
out_prefixed(const char *prefix)
{
	const char	*p = out.data != NULL ? out.data : "", *nl;
	int		 n = 0;

	while ((nl = strchr(p, '\n')) != NULL) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		p = nl + 1;
	}
	return n;
}

static int
last_state_is(const char *s)
{
	return nstates > 0 && strcmp(states[nstates - 1], s) == 0;
}

static struct adapter *
console_up(void)
{
	struct adapter	*a;
	char		*cause = NULL;

	a = console_ops.create(NULL, &cause);
	CHECK(a != NULL);
	CHECK(console_ops.start(a, &cause) == 0);
	CHECK(cause == NULL);
	return a;
}

static void
console_down(struct adapter *a)
{
	console_ops.stop(a);
	WAIT(last_state_is("stopped"));
	CHECK(last_state_is("stopped"));
	console_ops.destroy(a);
	uv_run(loop_uv(), UV_RUN_DEFAULT);
}

static int
send_op(struct adapter *a, struct chat_op *op)
{
	int	 rc;

	in_send = 1;
	rc = console_ops.send(a, op);
	in_send = 0;
	return rc;
}

/* ---- tests ------------------------------------------------------------- */

TEST(console_new_opens_thread_with_root_id_and_echoes)
{
	struct adapter	*a;
	char		*v;

	fx_begin_pipes();
	a = console_up();
	CHECK(last_state_is("connected"));
	CHECK_STR(a->state, "connected");
	feed("new hello\n");
	WAIT(nevents == 1 && out_has("[t1] 1 console:me: hello"));
	CHECK_INT(nevents, 1);
	CHECK_INT(events[0].kind, CHAT_EV_MESSAGE);
	CHECK_STR(events[0].channel, "console");
	CHECK(events[0].thread == NULL);
	CHECK_STR(events[0].msg_id, "1");
	CHECK_STR(events[0].sender, "me");
	CHECK_STR(events[0].text, "hello");
	CHECK(events[0].reply_to == NULL);
	CHECK_INT(events[0].mentioned, 1);
	CHECK(out_has("[t1] 1 console:me: hello"));
	v = store_kv_get("console.next_id");
	CHECK_STR(v, "2");
	free(v);
	console_down(a);
	fx_end();
}

TEST(console_thread_reply_click_react_and_as_map_to_events)
{
	struct adapter	*a;

	fx_begin_pipes();
	a = console_up();
	feed("new hello\n  t1 more  \nclick q5 GitHub Pro\nreact 1 👍\n"
	    "as bob new hi\nas console:eve t1 me too\nreply 2 answer\n");
	WAIT(nevents == 7);
	CHECK_INT(nevents, 7);

	CHECK_STR(events[1].thread, "1");
	CHECK_STR(events[1].msg_id, "2");
	CHECK_STR(events[1].text, "more");
	CHECK(out_has("[t1] 2 console:me: more"));

	CHECK_INT(events[2].kind, CHAT_EV_CLICK);
	CHECK_STR(events[2].question, "q5");
	CHECK_STR(events[2].choice, "GitHub Pro");
	CHECK_STR(events[2].sender, "me");

	CHECK_INT(events[3].kind, CHAT_EV_REACTION);
	CHECK_STR(events[3].target, "1");
	CHECK_STR(events[3].emoji, "👍");
	CHECK_STR(events[3].thread, "1");

	CHECK_INT(events[4].kind, CHAT_EV_MESSAGE);
	CHECK_STR(events[4].sender, "bob");
	CHECK(events[4].thread == NULL);
	CHECK_STR(events[4].msg_id, "3");
	CHECK(out_has("[t3] 3 console:bob: hi"));

	CHECK_STR(events[5].sender, "eve");
	CHECK_STR(events[5].thread, "1");
	CHECK_STR(events[5].text, "me too");

	CHECK_STR(events[6].reply_to, "2");
	CHECK_STR(events[6].thread, "1");
	CHECK_STR(events[6].msg_id, "5");
	CHECK(out_has("[t1] 5 console:me: answer"));
	/* Clicks and reactions are not messages: no echo, no "!" line. */
	CHECK_INT(out_prefixed("!"), 0);
	console_down(a);
	fx_end();
}

TEST(console_bad_input_gets_a_bang_line_never_silence)
{
	struct adapter	*a;

	fx_begin_pipes();
	a = console_up();
	feed("frobnicate now\n\n   \nnew\nt9 nope\nt1\nreply 9 x\n"
	    "click q5\nreact 1\nas bob\nas bob quit\nT1 x\n");
	WAIT(out_prefixed("! ") == 10);
	CHECK_INT(out_prefixed("! "), 10);
	CHECK_INT(out_prefixed("! unknown input: frobnicate now (try: new TEXT"),
	    1);
	CHECK_INT(out_prefixed("! no thread t9"), 1);
	CHECK_INT(out_prefixed("! unknown input: as bob quit"), 1);
	CHECK_INT(nevents, 0);
	CHECK(!loop_stopping());
	console_down(a);
	fx_end();
}

TEST(console_rejects_lines_over_64k_and_keeps_going)
{
	struct adapter	*a;
	char		*big;

	fx_begin_pipes();
	a = console_up();
	/* Exactly 65536 bytes is still a line. */
	big = xmalloc(65536 + 2);
	memcpy(big, "new ", 4);
	memset(big + 4, 'x', 65536 - 4);
	strcpy(big + 65536, "\n");
	feed(big);
	WAIT(nevents == 1);
	CHECK_INT(nevents, 1);
	CHECK_INT(strlen(events[0].text), 65536 - 4);
	/* One more byte is not. */
	big[65536] = 'x';
	big[65537] = '\0';
	feed(big);
	free(big);
	feed("\nnew after\n");
	WAIT(nevents == 2);
	CHECK_INT(nevents, 2);
	CHECK_STR(events[1].text, "after");
	CHECK_INT(out_prefixed("! line longer than 65536 bytes"), 1);
	console_down(a);
	fx_end();
}

TEST(console_ops_print_in_the_fixed_format_and_complete_after_write)
{
	struct adapter		*a;
	const char *const	 choices[] = { "GitHub", "Google", NULL };
	struct chat_op		 post = { .id = 1, .kind = CHAT_OP_POST,
				    .channel = "console", .text = "Started #1" };
	struct chat_op		 multi = { .id = 2, .kind = CHAT_OP_POST,
				    .channel = "console", .thread = "1",
				    .text = "a\nb\n\nc\n" };
	struct chat_op		 ask = { .id = 3, .kind = CHAT_OP_POST,
				    .channel = "console", .thread = "1",
				    .text = "Which provider?", .choices = choices,
				    .question = "q5" };
	struct chat_op		 edit = { .id = 4, .kind = CHAT_OP_EDIT,
				    .channel = "console", .thread = "1",
				    .target = "3", .text = "Which provider? GitHub",
				    .choices = choices, .question = "q5",
				    .closed = 1 };
	struct chat_op		 react = { .id = 5, .kind = CHAT_OP_REACT,
				    .channel = "console", .thread = "1",
				    .target = "1", .emoji = "👀" };
	struct chat_op		 foreign = { .id = 6, .kind = CHAT_OP_EDIT,
				    .channel = "console", .thread = "7",
				    .target = "99", .text = "x" };
	struct chat_op		 bad = { .id = 8, .kind = CHAT_OP_EDIT,
				    .channel = "console", .text = "no target" };
	struct chat_op		 mapped = { .id = 7, .kind = CHAT_OP_REACT,
				    .channel = "console", .target = "2",
				    .emoji = "✅" };

	fx_begin_pipes();
	a = console_up();
	CHECK_INT(send_op(a, &post), 0);
	CHECK_INT(ndones, 0);		/* never from inside send() */
	WAIT(ndones == 1);
	CHECK_INT(ndones, 1);
	CHECK(dones[0].op == &post && !dones[0].failed);
	CHECK_STR(dones[0].ref, "1");
	CHECK(out_has("[t1] 1 switchboard: Started #1"));

	CHECK_INT(send_op(a, &multi), 0);
	CHECK_INT(send_op(a, &ask), 0);
	CHECK_INT(send_op(a, &edit), 0);
	CHECK_INT(send_op(a, &react), 0);
	CHECK_INT(send_op(a, &foreign), 0);
	CHECK_INT(send_op(a, &mapped), 0);
	CHECK_INT(send_op(a, &bad), 0);
	WAIT(ndones == 8);
	CHECK_INT(ndones, 8);
	CHECK(dones[7].op == &bad && dones[7].failed && dones[7].permanent);
	CHECK(!reported_in_send);
	CHECK_STR(dones[1].ref, "2");
	CHECK_STR(dones[2].ref, "3");
	CHECK(dones[3].ref == NULL && !dones[3].failed);
	CHECK(dones[4].ref == NULL && !dones[4].failed);
	CHECK(strstr(out.data, "[t1] 2 switchboard: a\n    b\n    \n    c\n"
	    "[t1] 3 switchboard: Which provider?\n"
	    "    [choices q5: GitHub | Google]\n"
	    "[t1] ~3 Which provider? GitHub\n"
	    "[t1] +👀 1\n") != NULL);
	CHECK_INT(out_prefixed("    [choices"), 1);	/* closed: none */
	CHECK(out_has("[t7] ~99 x"));
	CHECK(out_has("[t1] +✅ 2"));		/* thread from the map */
	console_down(a);
	fx_end();
}

TEST(console_message_ids_continue_from_kv_after_recreate)
{
	struct adapter	*a;
	struct chat_op	 post = { .kind = CHAT_OP_POST, .channel = "console",
			    .thread = "1", .text = "hi" };

	fx_begin_pipes();
	a = console_up();
	feed("new one\n");
	WAIT(nevents == 1);
	CHECK_INT(send_op(a, &post), 0);
	WAIT(ndones == 1);
	CHECK_STR(dones[0].ref, "2");
	console_down(a);

	a = console_up();
	feed("new two\n");
	WAIT(nevents == 2);
	CHECK_INT(nevents, 2);
	CHECK_STR(events[1].msg_id, "3");
	CHECK(out_has("[t3] 3 console:me: two"));
	/* After a restart, ids from before are still threads. */
	feed("t1 back\n");
	WAIT(nevents == 3);
	CHECK_STR(events[2].thread, "1");
	CHECK_STR(events[2].msg_id, "4");
	/*
	 * Message 2 (the bot's reply) is no thread, before or after a restart:
	 * "t2 status" is an error, not a new conversation named "status".
	 */
	feed("t2 status\n");
	WAIT(out_has("! no thread t2"));
	console_down(a);
	a = console_up();
	feed("t2 status\n");
	feed("t4 status\n");
	WAIT(out_count("! no thread t2") == 2);
	WAIT(out_has("! no thread t4"));
	CHECK_INT(nevents, 3);
	console_down(a);
	fx_end();
}

TEST(console_quit_starts_loop_shutdown)
{
	struct adapter	*a;

	fx_begin_pipes();
	a = console_up();
	CHECK(!loop_stopping());
	feed("quit\n");
	WAIT(loop_stopping());
	CHECK(loop_stopping());
	CHECK_INT(nevents, 0);
	console_down(a);
	fx_end();
}

TEST(console_eof_on_stdin_stops_reading_but_keeps_running)
{
	struct adapter	*a;
	struct chat_op	 post = { .kind = CHAT_OP_POST, .channel = "console",
			    .text = "still here" };

	fx_begin_pipes();
	a = console_up();
	feed("new first\nnew tail without newline");
	close(in_w);
	in_w = -1;
	WAIT(nevents == 2);
	CHECK_INT(nevents, 2);
	CHECK_STR(events[1].text, "tail without newline");
	pump();
	CHECK(!loop_stopping());
	CHECK_STR(a->state, "connected");
	CHECK_INT(send_op(a, &post), 0);
	WAIT(ndones == 1);
	CHECK(!dones[0].failed);
	CHECK(out_has("[t3] 3 switchboard: still here"));
	console_down(a);
	fx_end();
}

TEST(console_stop_flushes_output_restores_stdio_and_reports_stopped_later)
{
	struct adapter	*a;
	struct chat_op	 big = { .kind = CHAT_OP_POST, .channel = "console" };
	struct chat_op	 post = { .kind = CHAT_OP_POST, .channel = "console",
			    .text = "last words" };
	char		*text;
	int		 fl;

	fx_begin_pipes();
	a = console_up();
	/* More than the pipe holds, so writes are still queued at stop. */
	text = xmalloc(100001);
	memset(text, 'y', 100000);
	text[100000] = '\0';
	big.text = text;
	CHECK_INT(send_op(a, &big), 0);
	CHECK_INT(send_op(a, &post), 0);
	console_ops.stop(a);
	CHECK(!last_state_is("stopped"));	/* never from inside stop() */
	/* Intake is closed, output is not: shutdown messages still go out. */
	CHECK_INT(send_op(a, &post), 0);
	WAIT(last_state_is("stopped"));
	free(text);
	CHECK(last_state_is("stopped"));
	WAIT(ndones == 3);
	CHECK_INT(ndones, 3);
	CHECK(!dones[0].failed && !dones[1].failed && !dones[2].failed);
	CHECK(out_has("[t2] 2 switchboard: last words"));
	CHECK(out_has("[t3] 3 switchboard: last words"));
	console_ops.destroy(a);
	uv_run(loop_uv(), UV_RUN_DEFAULT);
	/* Our own stdio is open and blocking again. */
	CHECK((fl = fcntl(0, F_GETFL)) != -1 && !(fl & O_NONBLOCK));
	CHECK((fl = fcntl(1, F_GETFL)) != -1 && !(fl & O_NONBLOCK));
	CHECK(write(1, "x", 1) == 1);
	fx_end();
}

TEST(console_destroy_right_after_stop_frees_later_without_upcalls)
{
	struct adapter	*a;
	struct chat_op	 post = { .kind = CHAT_OP_POST, .channel = "console",
			    .text = "bye" };

	fx_begin_pipes();
	a = console_up();
	CHECK_INT(send_op(a, &post), 0);
	console_ops.stop(a);
	console_ops.destroy(a);
	uv_run(loop_uv(), UV_RUN_DEFAULT);	/* ASan: no leak, no UAF */
	CHECK(!last_state_is("stopped"));	/* the core forgot it already */
	CHECK_INT(ndones, 1);			/* but the op was reported */
	fx_end();
}

TEST(console_reads_stdin_file_and_writes_stdout_file)
{
	struct adapter	*a;
	struct chat_op	 post = { .kind = CHAT_OP_POST, .channel = "console",
			    .thread = "1", .text = "ok" };
	char		 inpath[] = "/tmp/sb-console-in.XXXXXX";
	char		 outpath[] = "/tmp/sb-console-out.XXXXXX";
	const char	*input = "new from file\nt1 second\n";
	char		 got[4096];
	ssize_t		 n;
	int		 ifd, ofd, rfd;

	CHECK((ifd = mkstemp(inpath)) != -1);
	CHECK((ofd = mkstemp(outpath)) != -1);
	unlink(inpath);
	CHECK((rfd = open(outpath, O_RDONLY)) != -1);
	unlink(outpath);
	CHECK(write(ifd, input, strlen(input)) == (ssize_t)strlen(input));
	lseek(ifd, 0, SEEK_SET);
	fx_begin(ifd, ofd);
	a = console_up();
	WAIT(nevents == 2);
	CHECK_INT(nevents, 2);
	CHECK_STR(events[0].text, "from file");
	CHECK_STR(events[1].thread, "1");
	CHECK_INT(send_op(a, &post), 0);
	CHECK_INT(ndones, 0);
	WAIT(ndones == 1);
	CHECK(!dones[0].failed);
	CHECK_STR(dones[0].ref, "3");
	CHECK(!loop_stopping());
	console_down(a);
	n = read(rfd, got, sizeof got - 1);
	close(rfd);
	CHECK(n > 0);
	got[n] = '\0';
	CHECK_STR(got, "[t1] 1 console:me: from file\n"
	    "[t1] 2 console:me: second\n"
	    "[t1] 3 switchboard: ok\n");
	fx_end();
}

/* Open fds of this process that refer to path. */
static int
count_fds_on(const char *path)
{
	char	 proc[64], link[256];
	ssize_t	 n;
	int	 fd, count = 0;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
		if ((n = readlink(proc, link, sizeof link - 1)) <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, path) == 0)
			count++;
	}
	return count;
}

TEST(console_on_a_terminal_reads_and_writes_the_tty_without_leaking_fds)
{
	struct adapter	*a;
	struct chat_op	 post = { .kind = CHAT_OP_POST, .channel = "console",
			    .thread = "1", .text = "on the tty" };
	struct termios	 tio;
	char		 pts[64];
	int		 master, slave;

	CHECK((master = posix_openpt(O_RDWR | O_NOCTTY)) != -1);
	CHECK(grantpt(master) == 0 && unlockpt(master) == 0);
	snprintf(pts, sizeof pts, "%s", ptsname(master));
	CHECK((slave = open(pts, O_RDWR | O_NOCTTY)) != -1);
	/* No echo: the master then reads only what the console writes. */
	CHECK(tcgetattr(slave, &tio) == 0);
	tio.c_lflag &= ~(tcflag_t)ECHO;
	tio.c_oflag &= ~(tcflag_t)OPOST;
	CHECK(tcsetattr(slave, TCSANOW, &tio) == 0);
	fx_begin(dup(slave), slave);
	CHECK(uv_guess_handle(0) == UV_TTY && uv_guess_handle(1) == UV_TTY);
	in_w = dup(master);
	out_r = master;
	fcntl(out_r, F_SETFL, O_NONBLOCK);
	a = console_up();
	feed("new hello tty\n");
	WAIT(nevents == 1 && out_has("[t1] 1 console:me: hello tty"));
	CHECK_INT(nevents, 1);
	CHECK_STR(events[0].text, "hello tty");
	CHECK(out_has("[t1] 1 console:me: hello tty"));
	CHECK_INT(send_op(a, &post), 0);
	WAIT(ndones == 1 && out_has("[t1] 2 switchboard: on the tty"));
	CHECK(!dones[0].failed);
	CHECK(out_has("[t1] 2 switchboard: on the tty"));
	console_down(a);
	/* libuv reopened the tty twice; only fds 0 and 1 may remain. */
	CHECK_INT(count_fds_on(pts), 2);
	CHECK(isatty(0) && isatty(1));
	fx_end();
}

/* The registry itself is tested in test-registry.c, with every adapter. */
TEST(console_caps_are_as_specified)
{
	const struct adapter_caps	*caps;
	struct adapter			*a;
	char				*cause = NULL;

	CHECK((a = console_ops.create(NULL, &cause)) != NULL);
	caps = console_ops.caps(a);
	CHECK(caps->threads && caps->edits && caps->reactions && caps->buttons);
	CHECK_INT(caps->max_text, 65536);
	CHECK_INT(caps->min_interval_ms, 0);
	CHECK_STR(console_ops.self_id(a), "switchboard");
	console_ops.destroy(a);		/* never started: freed at once */
}

int
main(void)
{
	FILE	*f;

	/*
	 * The tests put pipes on fd 1; the harness's PASS/FAIL lines go to a
	 * copy of the real stdout so a failure is never lost in a pipe.
	 */
	fflush(stdout);
	if ((f = fdopen(dup(1), "w")) != NULL)
		stdout = f;
	RUN(console_new_opens_thread_with_root_id_and_echoes);
	RUN(console_thread_reply_click_react_and_as_map_to_events);
	RUN(console_bad_input_gets_a_bang_line_never_silence);
	RUN(console_rejects_lines_over_64k_and_keeps_going);
	RUN(console_ops_print_in_the_fixed_format_and_complete_after_write);
	RUN(console_message_ids_continue_from_kv_after_recreate);
	RUN(console_quit_starts_loop_shutdown);
	RUN(console_eof_on_stdin_stops_reading_but_keeps_running);
	RUN(console_stop_flushes_output_restores_stdio_and_reports_stopped_later);
	RUN(console_destroy_right_after_stop_frees_later_without_upcalls);
	RUN(console_reads_stdin_file_and_writes_stdout_file);
	RUN(console_on_a_terminal_reads_and_writes_the_tty_without_leaking_fds);
	RUN(console_caps_are_as_specified);
	fx_end();
	return t_done();
}
