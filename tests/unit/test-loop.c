#include "bot/loop.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <signal.h>
#include <stdlib.h>

static int	order[8], norder;

static void
record(void *arg)
{
	order[norder++] = (int)(intptr_t)arg;
}

static void
defer_more(void *arg)
{
	record(arg);
	loop_defer(record, (void *)(intptr_t)99);
}

TEST(loop_timers_fire_in_deadline_order)
{
	norder = 0;
	CHECK(loop_init() == 0);
	loop_timer_once(30, record, (void *)3);
	loop_timer_once(10, record, (void *)1);
	loop_timer_once(20, record, (void *)2);
	struct loop_timer *t = loop_timer_once(15, record, (void *)7);
	loop_timer_cancel(t);
	uv_run(loop_uv(), UV_RUN_DEFAULT);
	CHECK_INT(norder, 3);
	CHECK_INT(order[0], 1);
	CHECK_INT(order[1], 2);
	CHECK_INT(order[2], 3);
	loop_free();
}

TEST(loop_defer_runs_on_next_turn_in_order)
{
	norder = 0;
	CHECK(loop_init() == 0);
	loop_defer(record, (void *)1);
	loop_defer(defer_more, (void *)2);
	CHECK_INT(norder, 0);	/* nothing runs before the loop turns */
	uv_run(loop_uv(), UV_RUN_NOWAIT);
	CHECK_INT(norder, 2);
	uv_run(loop_uv(), UV_RUN_NOWAIT);
	CHECK_INT(norder, 3);
	CHECK_INT(order[2], 99);
	loop_free();
}

static void
on_shutdown(void *arg)
{
	record(arg);
}

static void
send_term(void *arg)
{
	kill(getpid(), SIGTERM);
}

TEST(loop_sigterm_runs_shutdown_hooks_and_returns)
{
	uint64_t	 t0;

	norder = 0;
	CHECK(loop_init() == 0);
	loop_on_shutdown(on_shutdown, (void *)5);
	loop_timer_once(10, send_term, NULL);
	t0 = now_ms();
	CHECK_INT(loop_run(), 0);
	CHECK(now_ms() - t0 < 2000);
	CHECK(loop_stopping());
	CHECK_INT(norder, 1);
	CHECK_INT(order[0], 5);
	loop_free();
}

static uv_timer_t	 stubborn;

static void
stubborn_cb(uv_timer_t *t)
{
}

TEST(loop_grace_period_bounds_a_stuck_shutdown)
{
	uint64_t	 t0;

	CHECK(loop_init() == 0);
	loop_set_grace_ms(200);
	/* A module that never closes its handle must not hold the exit. */
	uv_timer_init(loop_uv(), &stubborn);
	uv_timer_start(&stubborn, stubborn_cb, 50, 50);
	loop_timer_once(10, send_term, NULL);
	t0 = now_ms();
	CHECK_INT(loop_run(), -1);
	CHECK(now_ms() - t0 < 1500);
	loop_free();
}

int
main(void)
{
	RUN(loop_timers_fire_in_deadline_order);
	RUN(loop_defer_runs_on_next_turn_in_order);
	RUN(loop_sigterm_runs_shutdown_hooks_and_returns);
	RUN(loop_grace_period_bounds_a_stuck_shutdown);
	return t_done();
}
