/*
 * The outbox against a scripted adapter: order per channel, pacing,
 * Retry-After as a floor, permanent failures, edits that wait for their
 * post, coalesced edits, splitting, and rows surviving a restart.
 */
#include "orchestrator/outbox.h"
#include "orchestrator/outbox-pace.h"
#include "adapters/adapter.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sent {
	enum chat_op_kind	 kind;
	char			 text[256];
	char			 target[64];
	char			 thread[64];
	uint64_t		 at_ms;
};

static struct sent	 sent[64];
static int		 nsent;
static int		 fail_next;	/* 0 none, 1 retry(ms), 2 permanent */
static long long	 fail_retry_ms;
static int		 next_ref = 100;
static int		 hold;		/* keep ops in held[] until released */
static struct pending	*held[64];
static int		 nheld;
static struct adapter_caps caps = { .threads = 1, .edits = 1,
    .max_text = 1000, .min_interval_ms = 0 };

struct fake {
	struct adapter	 hdr;
};

struct pending {
	struct chat_op	*op;
	char		 ref[32];
};

static void	complete(void *);

static void
complete(void *arg)
{
	struct pending	*p = arg;
	struct chat_op	*op = p->op;
	char		 ref[32];

	snprintf(ref, sizeof ref, "%s", p->ref);
	free(p);
	if (fail_next == 1) {
		fail_next = 0;
		chat_op_failed(op, fail_retry_ms, 0, "ratelimited");
	} else if (fail_next == 2) {
		fail_next = 0;
		chat_op_failed(op, -1, 1, "channel_not_found");
	} else
		chat_op_done(op, op->kind == CHAT_OP_POST ? ref : NULL);
}

static int
fake_send(struct adapter *a, struct chat_op *op)
{
	struct sent	*s = &sent[nsent++];
	struct pending	*p = xcalloc(1, sizeof *p);

	s->kind = op->kind;
	snprintf(s->text, sizeof s->text, "%s", op->text ? op->text : "");
	snprintf(s->target, sizeof s->target, "%s", op->target ? op->target : "");
	snprintf(s->thread, sizeof s->thread, "%s", op->thread ? op->thread : "");
	s->at_ms = now_ms();
	snprintf(p->ref, sizeof p->ref, "%d", next_ref++);
	p->op = op;
	if (hold)
		held[nheld++] = p;
	else
		loop_defer(complete, p);	/* never from inside send() */
	return 0;
}

static const struct adapter_caps *
fake_caps(struct adapter *a)
{
	return &caps;
}

static const struct adapter_ops fake_ops = {
	.name = "fake", .send = fake_send, .caps = fake_caps,
};

static struct fake	 the_fake = { .hdr = { .ops = &fake_ops } };
static char		 dir[64];

/* metrics are not under test here */
static void
setup(void)
{
	char	*cause = NULL;

	nsent = 0;
	fail_next = 0;
	next_ref = 100;
	hold = nheld = 0;
	caps.min_interval_ms = 0;
	caps.budgets = NULL;
	caps.nbudgets = 0;
	caps.per_method_limits = 0;
	caps.order_per_thread = 0;
	strcpy(dir, "/tmp/sb-outbox-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	CHECK(loop_init() == 0);
	CHECK(store_open(dir, &cause) == 0);
	outbox_register("fake", &the_fake.hdr);
	outbox_init();
}

static void
teardown(int remove)
{
	char	 cmd[128];

	outbox_shutdown();
	loop_free();
	store_close();
	if (remove) {
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		CHECK(system(cmd) == 0);
	}
}

static void
pump_until(int n, uint64_t max_ms)
{
	uint64_t	 dl = now_ms() + max_ms;

	while (nsent < n && now_ms() < dl)
		uv_run(loop_uv(), UV_RUN_ONCE);
	/* let the last completion land */
	uv_run(loop_uv(), UV_RUN_NOWAIT);
	uv_run(loop_uv(), UV_RUN_NOWAIT);
}

TEST(outbox_sends_in_order_and_edit_targets_the_posted_ref)
{
	setup();
	outbox_post("fake", "C1", "T1", NULL, "a1.card", "card v1", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "hello", NULL, NULL);
	outbox_edit("fake", "C1", "T1", "a1.card", "card v2", NULL, NULL, 0);
	pump_until(3, 2000);
	CHECK_INT(nsent, 3);
	CHECK_STR(sent[0].text, "card v1");
	CHECK_STR(sent[1].text, "hello");
	CHECK(sent[2].kind == CHAT_OP_EDIT);
	CHECK_STR(sent[2].target, "100");	/* the ref the post produced */
	CHECK_INT(outbox_pending(), 0);
	teardown(1);
}

TEST(outbox_pending_edits_of_one_message_coalesce_to_the_latest)
{
	setup();
	caps.min_interval_ms = 200;	/* keeps the edits queued */
	outbox_post("fake", "C1", "T1", NULL, "k", "v0", NULL, NULL);
	outbox_edit("fake", "C1", "T1", "k", "v1", NULL, NULL, 0);
	outbox_edit("fake", "C1", "T1", "k", "v2", NULL, NULL, 0);
	outbox_edit("fake", "C1", "T1", "k", "v3", NULL, NULL, 0);
	pump_until(4, 1500);
	CHECK_INT(nsent, 2);
	CHECK_STR(sent[1].text, "v3");
	teardown(1);
}

TEST(outbox_paces_a_channel_by_min_interval)
{
	setup();
	caps.min_interval_ms = 150;
	outbox_post("fake", "C1", "T1", NULL, NULL, "one", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "two", NULL, NULL);
	outbox_post("fake", "C2", "T9", NULL, NULL, "other channel", NULL, NULL);
	pump_until(3, 2000);
	CHECK_INT(nsent, 3);
	/* the other channel is not held up by C1's pacing */
	CHECK_STR(sent[1].text, "other channel");
	CHECK(sent[2].at_ms - sent[0].at_ms >= 140);
	teardown(1);
}

TEST(outbox_retry_after_is_a_floor_and_order_is_kept)
{
	setup();
	fail_next = 1;
	fail_retry_ms = 400;
	outbox_post("fake", "C1", "T1", NULL, NULL, "first", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "second", NULL, NULL);
	pump_until(3, 3000);
	CHECK_INT(nsent, 3);
	CHECK_STR(sent[0].text, "first");
	CHECK_STR(sent[1].text, "first");	/* retried before "second" */
	CHECK_STR(sent[2].text, "second");
	CHECK(sent[1].at_ms - sent[0].at_ms >= 400);
	teardown(1);
}

TEST(outbox_permanent_failure_is_dropped_and_its_edits_fail_too)
{
	sqlite3_stmt	*st;

	setup();
	fail_next = 2;
	outbox_post("fake", "C1", "T1", NULL, "gone", "never", NULL, NULL);
	outbox_edit("fake", "C1", "T1", "gone", "edit of never", NULL, NULL, 0);
	outbox_post("fake", "C1", "T1", NULL, NULL, "after", NULL, NULL);
	pump_until(2, 2000);
	CHECK_INT(nsent, 2);
	CHECK_STR(sent[1].text, "after");
	st = store_stmt("SELECT count(*) FROM outbox WHERE status = 'failed'");
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_INT(sqlite3_column_int(st, 0), 2);
	sqlite3_reset(st);
	teardown(1);
}

TEST(outbox_splits_long_plain_text_and_cuts_keyed_messages)
{
	char	*big;

	setup();
	big = xmalloc(2501);
	memset(big, 'x', 2500);
	big[2500] = '\0';
	outbox_post("fake", "C1", "T1", NULL, NULL, big, NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, "card", big, NULL, NULL);
	pump_until(4, 2000);
	CHECK_INT(nsent, 4);	/* 1000 + 1000 + 500, then one cut card */
	CHECK_INT(strlen(sent[0].text), 255);	/* the recorder keeps 255 */
	CHECK(strstr(sent[3].text, "x") != NULL);
	free(big);
	teardown(1);
}

TEST(outbox_rows_survive_a_restart_and_go_out_once)
{
	char	*cause = NULL;

	setup();
	outbox_unregister("fake");	/* adapter down: nothing can go out */
	outbox_post("fake", "C1", "T1", NULL, NULL, "kept", NULL, NULL);
	uv_run(loop_uv(), UV_RUN_NOWAIT);
	CHECK_INT(nsent, 0);
	teardown(0);

	CHECK(loop_init() == 0);
	CHECK(store_open(dir, &cause) == 0);
	outbox_register("fake", &the_fake.hdr);
	outbox_init();
	pump_until(1, 2000);
	CHECK_INT(nsent, 1);
	CHECK_STR(sent[0].text, "kept");
	pump_until(2, 300);
	CHECK_INT(nsent, 1);
	CHECK_INT(outbox_pending(), 0);
	teardown(1);
}

TEST(outbox_paces_posts_but_not_reactions_or_edits)
{
	setup();
	caps.per_method_limits = 1;	/* Slack */
	caps.min_interval_ms = 300;
	outbox_post("fake", "C1", "T1", NULL, "k", "first", NULL, NULL);
	outbox_react("fake", "C1", "T1", "42", "👀");
	outbox_edit("fake", "C1", "T1", "k", "first, edited", NULL, NULL, 0);
	outbox_post("fake", "C1", "T1", NULL, NULL, "second", NULL, NULL);
	pump_until(4, 2000);
	CHECK_INT(nsent, 4);
	CHECK(sent[1].kind == CHAT_OP_REACT);
	CHECK(sent[2].kind == CHAT_OP_EDIT);
	/* the reaction and the edit go right away, in order */
	CHECK(sent[2].at_ms - sent[0].at_ms < 150);
	/* the next post waits out the interval since the last post */
	CHECK_STR(sent[3].text, "second");
	CHECK(sent[3].at_ms - sent[0].at_ms >= 290);
	teardown(1);
}

TEST(outbox_reactions_and_edits_pass_a_paced_backlog_of_posts)
{
	uint64_t	 t0;
	int		 i, react = -1, edit = -1;

	setup();
	caps.per_method_limits = 1;	/* Slack */
	caps.min_interval_ms = 300;
	outbox_post("fake", "C1", "T1", NULL, "k", "first", NULL, NULL);
	for (i = 0; i < 5; i++)
		outbox_post("fake", "C1", "T2", NULL, NULL, "backlog", NULL,
		    NULL);
	pump_until(1, 1000);
	t0 = now_ms();
	outbox_react("fake", "C1", "T3", "42", "👀");
	outbox_edit("fake", "C1", "T1", "k", "first, edited", NULL, NULL, 0);
	pump_until(4, 1000);
	for (i = 0; i < nsent; i++) {
		if (sent[i].kind == CHAT_OP_REACT)
			react = i;
		if (sent[i].kind == CHAT_OP_EDIT)
			edit = i;
	}
	CHECK(react > 0 && edit > 0);
	/* both went while posts were still waiting out their interval */
	CHECK(sent[react].at_ms - t0 < 200);
	CHECK(sent[edit].at_ms - t0 < 200);
	CHECK(outbox_pending() >= 4);
	CHECK_STR(sent[edit].target, "100");
	teardown(1);
}

TEST(outbox_without_per_method_limits_keeps_one_op_in_flight_in_order)
{
	setup();
	/* Matrix-like: one limit for every send, so a 429 holds them all. */
	fail_next = 1;
	fail_retry_ms = 400;
	outbox_post("fake", "C1", "T1", NULL, NULL, "first", NULL, NULL);
	outbox_react("fake", "C1", "T1", "42", "👀");
	pump_until(3, 2000);
	CHECK_INT(nsent, 3);
	CHECK_STR(sent[1].text, "first");	/* the retry, then the 👀 */
	CHECK(sent[2].kind == CHAT_OP_REACT);
	CHECK(sent[2].at_ms - sent[0].at_ms >= 400);
	teardown(1);
}

TEST(outbox_an_edit_waiting_for_its_post_does_not_hold_reactions)
{
	setup();
	caps.per_method_limits = 1;	/* Slack */
	caps.min_interval_ms = 400;
	outbox_post("fake", "C1", "T1", NULL, NULL, "first", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, "k", "second", NULL, NULL);
	outbox_edit("fake", "C1", "T1", "k", "second, edited", NULL, NULL, 0);
	outbox_react("fake", "C1", "T2", "42", "👀");
	pump_until(2, 300);
	CHECK_INT(nsent, 2);
	CHECK(sent[1].kind == CHAT_OP_REACT);
	pump_until(4, 2000);
	CHECK_INT(nsent, 4);
	CHECK_STR(sent[2].text, "second");
	CHECK(sent[3].kind == CHAT_OP_EDIT);	/* right after its post */
	CHECK(sent[3].at_ms - sent[2].at_ms < 200);
	teardown(1);
}

/* Releases every held op (completions run on the next turns). */
static void
release(void)
{
	int	 i, n = nheld;

	nheld = 0;
	for (i = 0; i < n; i++)
		loop_defer(complete, held[i]);
}

TEST(outbox_order_per_thread_keeps_thread_order_only)
{
	int	 i;

	setup();
	caps.order_per_thread = 1;
	hold = 1;
	outbox_post("fake", "C1", "T1", NULL, NULL, "t1 first", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "t1 second", NULL, NULL);
	outbox_react("fake", "C1", "T1", "42", "👀");
	outbox_post("fake", "C1", "T2", NULL, NULL, "t2 first", NULL, NULL);
	outbox_post("fake", "C1", NULL, NULL, "c9.root", "new thread", NULL,
	    NULL);
	outbox_post("fake", "C1", "c9.root", NULL, NULL, "in c9", NULL, NULL);
	for (i = 0; i < 20; i++)
		uv_run(loop_uv(), UV_RUN_NOWAIT);
	/* One op per thread and the reaction, all at once. */
	CHECK_INT(nsent, 4);
	CHECK_INT(outbox_inflight(), 4);
	CHECK_STR(sent[0].text, "t1 first");
	CHECK(sent[1].kind == CHAT_OP_REACT);
	CHECK_STR(sent[2].text, "t2 first");
	CHECK_STR(sent[3].text, "new thread");
	hold = 0;
	release();
	pump_until(6, 2000);
	CHECK_INT(nsent, 6);
	CHECK_STR(sent[4].text, "t1 second");
	CHECK_STR(sent[5].text, "in c9");
	/* The root key resolved to the root's platform id: it was sent first. */
	CHECK_STR(sent[5].thread, "103");
	CHECK_INT(outbox_pending(), 0);
	teardown(1);
}

/* ---- pacing: the bucket arithmetic ------------------------------------ */

TEST(pace_bucket_spends_its_burst_then_refills_at_the_documented_rate)
{
	struct pace_bucket	 b;
	uint64_t		 t = 1000;
	int			 i;

	pace_init(&b, 60, 4, t);		/* 1/s, burst 4 */
	b.calm_until = UINT64_MAX;		/* no probing here */
	for (i = 0; i < 4; i++) {
		CHECK_INT(pace_wait(&b, t), 0);
		CHECK_INT(pace_take(&b, t), 0);
		pace_ok(&b, 0, t);
	}
	/* Empty: the next token is a second away, then one a second. */
	CHECK_INT(pace_wait(&b, t), 1000);
	CHECK_INT(pace_wait(&b, t + 400), 600);
	CHECK_INT(pace_wait(&b, t + 1000), 0);
	CHECK_INT(pace_take(&b, t + 1000), 0);
	CHECK_INT(pace_wait(&b, t + 1000), 1000);
	/* Idle for a minute: full again, but not past the burst. */
	CHECK_INT(pace_wait(&b, t + 61000), 0);
	for (i = 0; i < 4; i++)
		CHECK_INT(pace_take(&b, t + 61000), 0);
	CHECK(pace_wait(&b, t + 61000) > 0);
}

TEST(pace_bucket_counts_a_full_buckets_refill_from_the_answer)
{
	struct pace_bucket	 b;
	uint64_t		 t = 1000;

	pace_init(&b, 60, 2, t);
	b.calm_until = UINT64_MAX;
	/*
	 * Full: Slack's bucket starts refilling when the call lands, up to
	 * the 300 ms round trip later than ours: 1 token left, not 1.3.
	 */
	CHECK_INT(pace_take(&b, t), 0);
	pace_ok(&b, 0, t + 300);
	CHECK(b.tokens > 0.99 && b.tokens < 1.01);
	/* Not full: counted from the send, as before. */
	CHECK_INT(pace_take(&b, t + 300), 0);
	pace_ok(&b, 0, t + 600);
	CHECK_INT(pace_wait(&b, t + 600), 700);
}

TEST(pace_bucket_probes_one_at_a_time_and_doubles_its_burst_when_taken)
{
	struct pace_bucket	 b;
	uint64_t		 t = 1000;
	int			 i, probe;

	pace_init(&b, 60, 4, t);
	for (i = 0; i < 4; i++)
		pace_take(&b, t);
	/* Empty, but ops in flight: wait for their answers or a token. */
	CHECK_INT(pace_wait(&b, t), 1000);
	for (i = 0; i < 4; i++)
		pace_ok(&b, 0, t);
	/* Empty, nothing in flight: one op may probe... */
	CHECK_INT(pace_wait(&b, t), 0);
	probe = pace_take(&b, t);
	CHECK_INT(probe, 1);
	/* ...and no second one while it is out. */
	CHECK(pace_wait(&b, t) > 0);
	pace_ok(&b, probe, t + 5);
	/* Taken: the burst is 8, and the 4 new tokens go at once. */
	CHECK(b.cap == 8);
	for (i = 0; i < 4; i++)
		CHECK_INT(pace_take(&b, t + 5), 0);
	/* Learning stops at PACE_CAP_MAX. */
	for (i = 0; i < 20; i++) {
		b.tokens = 0;
		pace_ok(&b, pace_take(&b, t + 5), t + 5);
	}
	CHECK(b.cap == PACE_CAP_MAX);
}

TEST(pace_bucket_429_holds_for_exactly_retry_after_and_resets_the_burst)
{
	struct pace_bucket	 b;
	uint64_t		 t = 1000;
	int			 probe;

	pace_init(&b, 60, 4, t);
	b.cap = 64;				/* learned earlier */
	b.tokens = 0;
	probe = pace_take(&b, t);
	CHECK_INT(probe, 1);
	pace_limited(&b, probe, 2000, t + 10);
	/* Nothing before the Retry-After, to the millisecond. */
	CHECK_INT(pace_wait(&b, t + 10), 2000);
	CHECK_INT(pace_wait(&b, t + 2009), 1);
	/* Then the documented burst and rate, and no probe for a minute. */
	CHECK(b.cap == 4);
	CHECK_INT(pace_wait(&b, t + 2010), 0);	/* 2 s of refill: 2 tokens */
	CHECK_INT(pace_take(&b, t + 2010), 0);
	CHECK_INT(pace_take(&b, t + 2010), 0);
	CHECK_INT(pace_wait(&b, t + 2010), 1000);
	pace_ok(&b, 0, t + 2010);
	pace_ok(&b, 0, t + 2010);
	/* Empty and nothing out: still no probe until the calm is over. */
	b.tokens = 0;
	b.last_ms = t + 30000;
	CHECK(pace_wait(&b, t + 30000) > 0);
	b.tokens = 0;
	b.last_ms = t + 2010 + PACE_CALM_MS;
	CHECK_INT(pace_wait(&b, t + 2010 + PACE_CALM_MS), 0);
	CHECK_INT(pace_take(&b, t + 2010 + PACE_CALM_MS), 1);
}

TEST(pace_bucket_429_within_budget_halves_the_rate_which_recovers)
{
	struct pace_bucket	 b;
	uint64_t		 t = 1000;

	pace_init(&b, 60, 1, t);
	b.calm_until = UINT64_MAX;
	CHECK_INT(pace_take(&b, t), 0);		/* within budget */
	pace_limited(&b, 0, 1000, t);		/* the platform is stricter */
	CHECK(b.scale == 0.5);
	/* Half the rate: the token that took 1 s now takes ~2 s. */
	CHECK(pace_wait(&b, t + 1000) > 900);
	pace_limited(&b, 0, 0, t + 1000);
	pace_limited(&b, 0, 0, t + 1000);
	pace_limited(&b, 0, 0, t + 1000);
	CHECK(b.scale == PACE_SCALE_MIN);	/* a floor */
	/* Linear recovery back to the documented rate. */
	pace_wait(&b, t + 1000 + PACE_RECOVER_MS);
	CHECK(b.scale == 1);
}

static const struct adapter_budget test_budgets[] = {
	{ CHAT_OP_POST, BUDGET_CHANNEL, 60, 3, "post" },
	{ CHAT_OP_POST, BUDGET_WORKSPACE, 600, 5, "post" },
};

TEST(outbox_budget_lets_a_burst_go_then_paces_and_holds_a_retry_after)
{
	int	 i;

	setup();
	caps.per_method_limits = 1;
	caps.budgets = test_budgets;
	caps.nbudgets = nitems(test_budgets);
	for (i = 0; i < 3; i++)
		outbox_post("fake", "C1", "T1", NULL, NULL, "c1", NULL, NULL);
	outbox_post("fake", "C2", "T2", NULL, NULL, "c2", NULL, NULL);
	/* C1's burst of 3 at once; C2 has its own channel budget. */
	pump_until(4, 500);
	CHECK_INT(nsent, 4);
	CHECK(sent[3].at_ms - sent[0].at_ms < 200);
	/* Past the burst, one probe; the platform says 429, 700 ms. */
	fail_next = 1;
	fail_retry_ms = 700;
	outbox_post("fake", "C1", "T1", NULL, NULL, "probe", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "after", NULL, NULL);
	pump_until(5, 500);
	CHECK_INT(nsent, 5);
	CHECK_STR(sent[4].text, "probe");
	/* Nothing to C1 before the Retry-After, then the documented 1/s. */
	pump_until(7, 4000);
	CHECK_INT(nsent, 7);
	CHECK_STR(sent[5].text, "probe");
	CHECK(sent[5].at_ms - sent[4].at_ms >= 700);
	CHECK_STR(sent[6].text, "after");
	/*
	 * At 1/s, no two posts within a second of the 429: measured from the
	 * 429, not between the two, since a load that delays the probe's
	 * resend lets the bucket refill meanwhile (as Slack's does).
	 */
	CHECK(sent[6].at_ms - sent[4].at_ms >= 1000);
	teardown(1);
}

static const struct adapter_budget react_budget[] = {
	{ CHAT_OP_REACT, BUDGET_WORKSPACE, 60, 1, "react" },
};

TEST(outbox_a_reaction_out_of_budget_does_not_hold_an_edit)
{
	int	 i;

	setup();
	caps.per_method_limits = 1;
	caps.budgets = react_budget;
	caps.nbudgets = nitems(react_budget);
	outbox_post("fake", "C1", "T1", NULL, "k", "card", NULL, NULL);
	pump_until(1, 1000);
	hold = 1;
	outbox_react("fake", "C1", "T1", "41", "👀");	/* its one token */
	outbox_react("fake", "C1", "T1", "42", "👀");	/* out of budget */
	outbox_edit("fake", "C1", "T1", "k", "card, edited", NULL, NULL, 0);
	for (i = 0; i < 20; i++)
		uv_run(loop_uv(), UV_RUN_NOWAIT);
	CHECK_INT(nsent, 3);
	CHECK(sent[1].kind == CHAT_OP_REACT);
	CHECK(sent[2].kind == CHAT_OP_EDIT);
	hold = 0;
	release();
	pump_until(4, 3000);
	CHECK_INT(nsent, 4);
	CHECK(sent[3].kind == CHAT_OP_REACT);
	CHECK_STR(sent[3].target, "42");
	teardown(1);
}

/* Lookups of a lane's head row (lane_head's SELECTs), by SQLite's trace. */
static int	 nlookups;

static int
count_lookups(unsigned type, void *arg, void *p, void *x)
{
	const char	*sql = sqlite3_sql(p);

	if (sql != NULL && strncmp(sql, "SELECT id, thread, op, msg_key,", 31)
	    == 0)
		nlookups++;
	return 0;
}

/*
 * A command event's 👀 and reply in a channel used before: each row is
 * looked up once, when it goes; the kicks after the reaction went and
 * after both were answered know their queue is empty (five of seven
 * lookups found nothing).
 */
TEST(outbox_kicks_of_an_empty_queue_run_no_lookup)
{
	setup();
	caps.per_method_limits = 1;	/* Slack */
	/* The channel's first: a new lane looks for rows of a past run. */
	outbox_post("fake", "C1", "T1", NULL, NULL, "first", NULL, NULL);
	outbox_react("fake", "C1", "T1", "41", "👀");
	pump_until(2, 2000);
	CHECK_INT(nsent, 2);
	nsent = 0;
	sqlite3_trace_v2(store_db(), SQLITE_TRACE_STMT, count_lookups, NULL);
	nlookups = 0;
	CHECK(store_begin() == 0);
	outbox_react("fake", "C1", "T1", "42", "👀");
	CHECK(store_commit() == 0);
	pump_until(1, 2000);
	CHECK(store_begin() == 0);
	outbox_post("fake", "C1", "T1", NULL, NULL, "reply", NULL, NULL);
	CHECK(store_commit() == 0);
	pump_until(2, 2000);
	CHECK_INT(nsent, 2);
	CHECK_INT(outbox_pending(), 0);
	CHECK_INT(nlookups, 2);
	sqlite3_trace_v2(store_db(), 0, NULL, NULL);
	teardown(1);
}

/*
 * What the lanes know of empty queues never strands a row: rows left by a
 * past run in both queues, a row whose insert was rolled back, a retried
 * one, and one added while another is in flight all go out.
 */
TEST(outbox_no_row_is_stranded_by_a_queue_known_empty)
{
	char	*cause = NULL;

	setup();
	caps.per_method_limits = 1;
	outbox_unregister("fake");	/* adapter down: nothing can go out */
	outbox_post("fake", "C1", "T1", NULL, NULL, "p1", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "p2", NULL, NULL);
	outbox_react("fake", "C1", "T1", "41", "👀");
	outbox_react("fake", "C1", "T1", "42", "👀");
	outbox_post("fake", "C1", "T1", NULL, NULL, "p3", NULL, NULL);
	teardown(0);

	CHECK(loop_init() == 0);
	CHECK(store_open(dir, &cause) == 0);
	outbox_register("fake", &the_fake.hdr);
	outbox_init();
	pump_until(5, 3000);
	CHECK_INT(nsent, 5);
	CHECK_INT(outbox_pending(), 0);

	CHECK(store_begin() == 0);
	outbox_react("fake", "C1", "T1", "43", "👀");
	store_rollback();
	fail_next = 1;
	fail_retry_ms = 100;
	outbox_react("fake", "C1", "T1", "44", "👀");
	pump_until(6, 2000);
	hold = 1;
	outbox_post("fake", "C1", "T1", NULL, NULL, "p4", NULL, NULL);
	pump_until(8, 2000);	/* the retried 👀 and p4, held */
	outbox_post("fake", "C1", "T1", NULL, NULL, "p5", NULL, NULL);
	uv_run(loop_uv(), UV_RUN_NOWAIT);
	hold = 0;
	release();
	pump_until(9, 2000);
	CHECK_INT(nsent, 9);
	CHECK_STR(sent[8].text, "p5");
	CHECK_INT(outbox_pending(), 0);
	teardown(1);
}

/* outbox_on_post: which rows, and inside which transaction. */
static uint64_t	 on_post_ids[8];
static int	 non_post, on_post_in_tx;

static void
on_post_fn(void *arg, uint64_t id)
{
	on_post_ids[non_post++] = id;
	on_post_in_tx = store_in_transaction();
}

/*
 * An adapter's attempt marker goes in the commit of the row it is for when
 * the row goes out as soon as that commits: an idle queue's post in a
 * synced transaction.  Not a post behind another one, nor in a lazy
 * transaction (its commit is not synced), nor a reaction.
 */
TEST(outbox_on_post_runs_in_the_rows_transaction_when_it_goes_at_once)
{
	uint64_t	 id;

	setup();
	caps.per_method_limits = 1;	/* Slack */
	outbox_on_post("fake", on_post_fn, NULL);
	/* The channel's first: a new lane looks for rows of a past run. */
	outbox_post("fake", "C1", "T1", NULL, NULL, "first", NULL, NULL);
	pump_until(1, 2000);
	non_post = 0;
	CHECK(store_begin() == 0);
	outbox_react("fake", "C1", "T1", "42", "👀");
	id = outbox_post("fake", "C1", "T1", NULL, NULL, "reply", NULL, NULL);
	outbox_post("fake", "C1", "T1", NULL, NULL, "second", NULL, NULL);
	CHECK(store_commit() == 0);
	CHECK_INT(non_post, 1);
	CHECK(on_post_ids[0] == id);
	CHECK(on_post_in_tx);
	pump_until(4, 2000);
	CHECK_INT(nsent, 4);
	CHECK(store_begin_lazy() == 0);
	outbox_post("fake", "C1", "T1", NULL, NULL, "lazy", NULL, NULL);
	CHECK(store_commit() == 0);
	CHECK_INT(non_post, 1);
	pump_until(5, 2000);
	outbox_on_post("fake", NULL, NULL);
	teardown(1);
}

int
main(void)
{
	RUN(outbox_sends_in_order_and_edit_targets_the_posted_ref);
	RUN(outbox_pending_edits_of_one_message_coalesce_to_the_latest);
	RUN(outbox_paces_a_channel_by_min_interval);
	RUN(outbox_paces_posts_but_not_reactions_or_edits);
	RUN(outbox_retry_after_is_a_floor_and_order_is_kept);
	RUN(outbox_permanent_failure_is_dropped_and_its_edits_fail_too);
	RUN(outbox_splits_long_plain_text_and_cuts_keyed_messages);
	RUN(outbox_rows_survive_a_restart_and_go_out_once);
	RUN(outbox_reactions_and_edits_pass_a_paced_backlog_of_posts);
	RUN(outbox_an_edit_waiting_for_its_post_does_not_hold_reactions);
	RUN(outbox_without_per_method_limits_keeps_one_op_in_flight_in_order);
	RUN(outbox_order_per_thread_keeps_thread_order_only);
	RUN(pace_bucket_spends_its_burst_then_refills_at_the_documented_rate);
	RUN(pace_bucket_counts_a_full_buckets_refill_from_the_answer);
	RUN(pace_bucket_probes_one_at_a_time_and_doubles_its_burst_when_taken);
	RUN(pace_bucket_429_holds_for_exactly_retry_after_and_resets_the_burst);
	RUN(pace_bucket_429_within_budget_halves_the_rate_which_recovers);
	RUN(outbox_budget_lets_a_burst_go_then_paces_and_holds_a_retry_after);
	RUN(outbox_a_reaction_out_of_budget_does_not_hold_an_edit);
	RUN(outbox_kicks_of_an_empty_queue_run_no_lookup);
	RUN(outbox_no_row_is_stranded_by_a_queue_known_empty);
	RUN(outbox_on_post_runs_in_the_rows_transaction_when_it_goes_at_once);
	return t_done();
}
