/*
 * The inbox (orchestrator/inbox.c) on a real store with the loop stepped by
 * hand: group commit (one transaction for everything queued in a turn, done
 * callbacks after it), dedup keys, the backlog seen by the insert hook,
 * processing in order with the work's writes, replay after a crash, and a
 * store that refuses commits (nothing acked, nothing acted on).
 */
#include "orchestrator/inbox.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/metrics.h"
#include "bot/store.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char	 dir[64];
static int	 done_rc[16], ndone;
static size_t	 ahead[16];
static int	 ninsert;
static int	 fail_work;	/* the handler's work fails (store error) */
static int	 later_n = -1;	/* the work of event n is for later */
static int	 no_inline;	/* the kind's inline_ok says no */
static int	 done_at_hook = -1;	/* ndone when the work's hook ran */
static int	 work_at_done = -1;	/* rows of done when the first ack went */

static int	count(const char *);

static void
on_done(int rc, void *arg)
{
	done_rc[(intptr_t)arg] = rc;
	if (ndone++ == 0)
		work_at_done = count("SELECT count(*) FROM done");
}

/* What the work starts (a spawn, say): a commit hook. */
static void
work_committed(void *arg)
{
	done_at_hook = ndone;
}

static void
on_insert(json_t *p, size_t n, void *arg)
{
	if (ninsert < 16)
		ahead[ninsert] = n;
	ninsert++;
}

/* The work: one row in a table of its own, in the row's transaction. */
static int
work(json_t *p, void *arg)
{
	sqlite3_stmt	*st;

	if (fail_work)
		return -1;
	if (json_integer_value(json_object_get(p, "n")) == later_n &&
	    inbox_work_later())
		return 0;	/* stops: an agent would start here */
	st = store_stmt("INSERT INTO done (n) VALUES (?)");
	store_bind_int(st, 1, json_integer_value(json_object_get(p, "n")));
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		return -1;
	}
	sqlite3_reset(st);
	store_hook(work_committed, NULL, NULL);
	return 0;
}

static int
inline_ok(json_t *p, void *arg)
{
	return !no_inline;
}

static int
count(const char *sql)
{
	sqlite3_stmt	*st = store_stmt(sql);
	int		 n;

	n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_reset(st);
	return n;
}

static void
open_all(void)
{
	char	*cause = NULL;

	CHECK(loop_init() == 0);
	CHECK(store_open(dir, &cause) == 0);
	CHECK(store_exec("CREATE TABLE IF NOT EXISTS done (n INTEGER)") == 0);
	inbox_kind("t", work, on_insert, NULL);
	inbox_kind_inline("t", inline_ok);
}

static void
close_all(void)
{
	inbox_reset();
	loop_free();
	store_close();
	metrics_reset();
}

static void
setup(void)
{
	strcpy(dir, "/tmp/sb-inbox-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	memset(done_rc, 0x7f, sizeof done_rc);
	ndone = ninsert = fail_work = no_inline = 0;
	later_n = -1;
	done_at_hook = work_at_done = -1;
	open_all();
}

static void
teardown(void)
{
	char	 cmd[128];

	close_all();
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

static void
turns(int n)
{
	while (n-- > 0)
		uv_run(loop_uv(), UV_RUN_NOWAIT);
}

static void
put(int n, const char *key)
{
	struct inbox_key	 k = { "test", key, 3600 };

	inbox_put("t", json_pack("{s:i}", "n", n), key != NULL ? &k : NULL,
	    key != NULL ? 1 : 0, on_done, (void *)(intptr_t)n);
}

static int
commits(void)
{
	char	*m = metrics_render(), *p;
	int	 n = -1;

	if ((p = strstr(m, "\nswitchboard_inbox_commits_total ")) != NULL)
		n = atoi(p + strlen("\nswitchboard_inbox_commits_total "));
	free(m);
	return n;
}

TEST(inbox_one_commit_for_a_turns_events_then_done_then_work_in_order)
{
	setup();
	put(0, "a");
	put(1, "b");
	put(2, "a");		/* a duplicate key in the same batch */
	put(3, NULL);
	CHECK_INT(ndone, 0);	/* nothing is recorded before the flush */
	CHECK_INT(count("SELECT count(*) FROM inbox"), 0);
	uv_run(loop_uv(), UV_RUN_NOWAIT);	/* the group commit */
	CHECK_INT(ndone, 4);
	CHECK_INT(commits(), 1);
	CHECK_INT(done_rc[0], 1);
	CHECK_INT(done_rc[1], 1);
	CHECK_INT(done_rc[2], 0);
	CHECK_INT(done_rc[3], 1);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 3);
	CHECK_INT(count("SELECT count(*) FROM done"), 0);
	/* The insert hook saw the rows ahead of each. */
	CHECK_INT(ninsert, 3);
	CHECK_INT(ahead[0], 0);
	CHECK_INT(ahead[2], 2);
	CHECK_INT(inbox_backlog(), 3);
	turns(4);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 0);
	CHECK_INT(count("SELECT count(*) FROM done"), 3);
	CHECK_INT(count("SELECT min(rowid) FROM done WHERE n = 0"), 1);
	CHECK_INT(count("SELECT min(rowid) FROM done WHERE n = 3"), 3);
	CHECK_INT(inbox_backlog(), 0);
	teardown();
}

TEST(inbox_rows_left_by_a_crash_are_worked_on_once_after_restart)
{
	int	 i;

	setup();
	for (i = 0; i < 10; i++)
		put(i, NULL);
	CHECK(inbox_flush() == 0);
	/* "Crash" before any processing: the rows are all there. */
	close_all();
	open_all();
	CHECK_INT(count("SELECT count(*) FROM inbox"), 10);
	inbox_kick();
	turns(4);
	CHECK_INT(count("SELECT count(*) FROM done"), 10);
	CHECK_INT(count("SELECT count(DISTINCT n) FROM done"), 10);
	/* A second restart finds nothing to redo. */
	close_all();
	open_all();
	inbox_kick();
	turns(4);
	CHECK_INT(count("SELECT count(*) FROM done"), 10);
	teardown();
}

TEST(inbox_a_store_that_cannot_commit_acks_nothing_and_acts_on_nothing)
{
	char	*h;

	setup();
	CHECK(store_exec("PRAGMA query_only = 1") == 0);
	put(0, "k0");
	CHECK(inbox_flush() == -1);
	CHECK_INT(ndone, 1);
	CHECK_INT(done_rc[0], -1);	/* not recorded: do not ack */
	CHECK(inbox_store_failing());
	h = health_render();
	CHECK(strstr(h, "cannot commit") != NULL);
	free(h);
	CHECK(store_exec("PRAGMA query_only = 0") == 0);
	/* The sender redelivers; now it is recorded, and the key is new. */
	put(1, "k0");
	CHECK(inbox_flush() == 0);
	CHECK_INT(done_rc[1], 1);
	CHECK(!inbox_store_failing());
	/* Work that fails is rolled back and its row kept for later. */
	fail_work = 1;
	turns(3);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 1);
	CHECK_INT(count("SELECT count(*) FROM done"), 0);
	fail_work = 0;
	inbox_reset();		/* drops the retry timer */
	inbox_kind("t", work, on_insert, NULL);
	inbox_kick();
	turns(3);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 0);
	CHECK_INT(count("SELECT count(*) FROM done"), 1);
	teardown();
}

TEST(inbox_a_lone_event_is_worked_on_in_the_commit_that_records_it)
{
	setup();
	put(0, "a");
	uv_run(loop_uv(), UV_RUN_NOWAIT);
	CHECK_INT(commits(), 1);
	CHECK_INT(ndone, 1);
	CHECK_INT(done_rc[0], 1);
	/* Recorded and worked on at once: no row was left for later. */
	CHECK_INT(work_at_done, 1);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 0);
	CHECK_INT(ninsert, 1);
	CHECK_INT(ahead[0], 0);
	/* What the work starts waits for the loop turn that sends the ack. */
	CHECK_INT(done_at_hook, -1);
	turns(1);
	CHECK_INT(done_at_hook, 1);
	/* Its key was recorded in that commit: a redelivery is a duplicate. */
	put(1, "a");
	turns(2);
	CHECK_INT(done_rc[1], 0);
	CHECK_INT(count("SELECT count(*) FROM done"), 1);
	teardown();
}

TEST(inbox_a_lone_event_never_overtakes_waiting_rows)
{
	setup();
	put(0, NULL);
	put(1, NULL);
	CHECK(inbox_flush() == 0);	/* two at once: rows */
	put(2, NULL);
	CHECK(inbox_flush() == 0);	/* alone, but rows wait: a row too */
	CHECK_INT(count("SELECT count(*) FROM inbox"), 3);
	CHECK_INT(count("SELECT count(*) FROM done"), 0);
	turns(4);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 0);
	CHECK_INT(count("SELECT min(rowid) FROM done WHERE n = 0"), 1);
	CHECK_INT(count("SELECT min(rowid) FROM done WHERE n = 2"), 3);
	teardown();
}

/*
 * The lone event put now is recorded and acked before its work, which runs
 * from its row in later turns (fail_work cleared first).
 */
static void
goes_by_its_row(void)
{
	put(0, "a");
	CHECK(inbox_flush() == 0);
	CHECK_INT(done_rc[0], 1);	/* recorded: acked */
	CHECK_INT(commits(), 1);
	CHECK_INT(work_at_done, 0);	/* before its work */
	CHECK_INT(count("SELECT count(*) FROM inbox"), 1);
	CHECK(!inbox_store_failing());
	fail_work = 0;
	turns(3);
	CHECK_INT(count("SELECT count(*) FROM inbox"), 0);
	CHECK_INT(count("SELECT count(*) FROM done"), 1);
}

TEST(inbox_a_lone_event_whose_work_fails_is_recorded_for_later)
{
	setup();
	fail_work = 1;
	goes_by_its_row();
	teardown();
}

TEST(inbox_a_lone_event_of_a_kind_not_quick_is_recorded_first)
{
	setup();
	no_inline = 1;
	goes_by_its_row();
	teardown();
}

TEST(inbox_work_that_is_for_later_runs_from_its_row_after_the_ack)
{
	setup();
	later_n = 0;
	CHECK(!inbox_work_later());	/* no work running */
	goes_by_its_row();
	teardown();
}

int
main(void)
{
	log_init("error", 0, NULL);
	RUN(inbox_one_commit_for_a_turns_events_then_done_then_work_in_order);
	RUN(inbox_rows_left_by_a_crash_are_worked_on_once_after_restart);
	RUN(inbox_a_store_that_cannot_commit_acks_nothing_and_acts_on_nothing);
	RUN(inbox_a_lone_event_is_worked_on_in_the_commit_that_records_it);
	RUN(inbox_a_lone_event_never_overtakes_waiting_rows);
	RUN(inbox_a_lone_event_whose_work_fails_is_recorded_for_later);
	RUN(inbox_a_lone_event_of_a_kind_not_quick_is_recorded_first);
	RUN(inbox_work_that_is_for_later_runs_from_its_row_after_the_ack);
	return t_done();
}
