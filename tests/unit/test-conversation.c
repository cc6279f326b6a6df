/*
 * The conversation cache: unreferenced conversations beyond the keep leave
 * memory on the next loop turn, least recently used first; held ones stay
 * (the same struct for every lookup); evicted ones load again from the
 * store with the same fields; a holder that outlives the cache frees last.
 */
#include "orchestrator/conversation.h"
#include "bot/loop.h"
#include "bot/store.h"
#include "bot/util.h"
#include "tests/unit/t.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char	 dir[64];

static void	teardown(void);

static void
setup(void)
{
	char	*cause = NULL;

	if (store_db() != NULL)		/* a failed test left its state */
		teardown();
	snprintf(dir, sizeof dir, "/tmp/sb-conv.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	CHECK(loop_init() == 0);
	CHECK(store_open(dir, &cause) == 0);
}

static void
teardown(void)
{
	char	*cmd;

	conversation_free_all();
	loop_free();
	store_close();
	cmd = xasprintf("rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	free(cmd);
}

/* The next loop turn: where deferred work (the trim) runs. */
static void
turn(void)
{
	uv_run(loop_uv(), UV_RUN_NOWAIT);
}

static struct conversation *
make(const char *thread)
{
	return conversation_create("console", "c", thread, "console:me", "r",
	    "ask", 0);
}

TEST(unreferenced_ones_beyond_the_keep_leave_memory_held_ones_stay)
{
	struct conversation	*held, *c;
	int64_t			 id3 = 0;
	char			 t[16];
	int			 i;

	setup();
	conversation_set_keep(2);
	held = make("1");
	conversation_hold(held);
	for (i = 2; i <= 6; i++) {
		snprintf(t, sizeof t, "%d", i);
		CHECK((c = make(t)) != NULL);
		if (i == 3)
			id3 = c->id;
	}
	/* Not under the caller: only on the next turn. */
	CHECK(conversation_count() == 6);
	turn();
	CHECK(conversation_count() == 3);	/* held + keep */
	CHECK(conversation_by_id(held->id) == held);
	CHECK(conversation_find("console", "c", "1") == held);
	CHECK_STR(held->thread, "1");

	/* 3 left memory; it comes back from its row, fields and all. */
	CHECK((c = conversation_find("console", "c", "3")) != NULL);
	CHECK(c->id == id3);
	CHECK_STR(c->starter, "console:me");
	CHECK_STR(c->repo, "r");
	CHECK_STR(c->agent, "ask");
	CHECK(conversation_by_id(id3) == c);
	CHECK(conversation_count() == 4);
	turn();
	/* 3 was used last: 5, the least recently used, went instead. */
	CHECK(conversation_count() == 3);
	CHECK(conversation_find("console", "c", "3") == c);
	CHECK(conversation_by_id(id3) == c);

	/* Released, the held one is an ordinary cached one. */
	conversation_release(held);
	turn();
	CHECK(conversation_count() == 2);
	teardown();
}

TEST(keep_zero_drops_every_unreferenced_one_by_id_too)
{
	struct conversation	*a, *b;
	int64_t			 ida;

	setup();
	conversation_set_keep(0);
	a = make("10");
	b = make("11");
	ida = a->id;
	conversation_hold(b);
	turn();
	CHECK(conversation_count() == 1);
	CHECK((a = conversation_by_id(ida)) != NULL);
	CHECK_STR(a->thread, "10");
	CHECK(conversation_by_id(b->id) == b);
	turn();
	CHECK(conversation_count() == 1);
	conversation_release(b);
	turn();
	CHECK(conversation_count() == 0);
	teardown();
}

TEST(a_holder_that_outlives_the_cache_frees_it_last)
{
	struct conversation	*c;

	setup();
	c = make("20");
	conversation_hold(c);
	conversation_free_all();	/* shutdown: agents go on a later turn */
	CHECK_STR(c->thread, "20");
	conversation_release(c);	/* freed now; LSan: no leak */
	teardown();
}

int
main(void)
{
	RUN(unreferenced_ones_beyond_the_keep_leave_memory_held_ones_stay);
	RUN(keep_zero_drops_every_unreferenced_one_by_id_too);
	RUN(a_holder_that_outlives_the_cache_frees_it_last);
	return t_done();
}
