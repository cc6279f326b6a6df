#include "bot/loop.h"
#include "bot/log.h"
#include "bot/util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct hook {
	loop_fn		 fn;
	void		*arg;
	struct hook	*next;
};

struct deferred {
	loop_fn			 fn;
	void			*arg;
	struct deferred		*next;
};

struct loop_timer {
	uv_timer_t	 timer;
	loop_fn		 fn;
	void		*arg;
};

static uv_loop_t	 the_loop;
static int		 loop_ready;
static uv_signal_t	 sig_int, sig_term, sig_hup;
static uv_timer_t	 grace_timer;
static uv_idle_t	 defer_idle;
static struct hook	*shutdown_hooks, *reload_hooks;
static struct deferred	*defer_head, **defer_tail = &defer_head;
static int		 stopping;
static int		 forced;
static unsigned		 grace_ms = 4000;

static void
hook_add(struct hook **list, loop_fn fn, void *arg)
{
	struct hook	*h, **pp;

	h = xcalloc(1, sizeof *h);
	h->fn = fn;
	h->arg = arg;
	for (pp = list; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = h;
}

static void
hooks_free(struct hook **list)
{
	struct hook	*h;

	while ((h = *list) != NULL) {
		*list = h->next;
		free(h);
	}
}

void
loop_on_shutdown(loop_fn fn, void *arg)
{
	hook_add(&shutdown_hooks, fn, arg);
}

void
loop_on_reload(loop_fn fn, void *arg)
{
	hook_add(&reload_hooks, fn, arg);
}

static void
grace_expired(uv_timer_t *t)
{
	log_warnx("shutdown: grace period over, stopping the loop");
	forced = 1;
	uv_stop(t->loop);
}

void
loop_shutdown(const char *why)
{
	struct hook	*h;

	if (stopping)
		return;
	stopping = 1;
	log_info("shutting down (%s)", why);
	uv_timer_start(&grace_timer, grace_expired, grace_ms, 0);
	/* Signal handles would keep the loop alive forever. */
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
	for (h = shutdown_hooks; h != NULL; h = h->next)
		h->fn(h->arg);
}

int
loop_stopping(void)
{
	return stopping;
}

void
loop_set_grace_ms(unsigned ms)
{
	grace_ms = ms;
}

static void
on_signal(uv_signal_t *s, int signum)
{
	struct hook	*h;

	switch (signum) {
	case SIGINT:
	case SIGTERM:
		loop_shutdown(signum == SIGINT ? "SIGINT" : "SIGTERM");
		break;
	case SIGHUP:
		log_info("SIGHUP: reloading");
		for (h = reload_hooks; h != NULL; h = h->next)
			h->fn(h->arg);
		break;
	}
}

static void
on_defer(uv_idle_t *idle)
{
	struct deferred	*d, *list;

	/* Detach first: callbacks may defer more work for the next turn. */
	list = defer_head;
	defer_head = NULL;
	defer_tail = &defer_head;
	while ((d = list) != NULL) {
		list = d->next;
		d->fn(d->arg);
		free(d);
	}
	if (defer_head == NULL)
		uv_idle_stop(idle);
}

void
loop_defer(loop_fn fn, void *arg)
{
	struct deferred	*d;

	d = xcalloc(1, sizeof *d);
	d->fn = fn;
	d->arg = arg;
	*defer_tail = d;
	defer_tail = &d->next;
	uv_idle_start(&defer_idle, on_defer);
}

static void
timer_fire(uv_timer_t *t)
{
	struct loop_timer	*lt = t->data;

	lt->fn(lt->arg);
	loop_close_free((uv_handle_t *)&lt->timer);
}

struct loop_timer *
loop_timer_once(uint64_t ms, loop_fn fn, void *arg)
{
	struct loop_timer	*lt;

	lt = xcalloc(1, sizeof *lt);
	lt->fn = fn;
	lt->arg = arg;
	uv_timer_init(&the_loop, &lt->timer);
	lt->timer.data = lt;
	uv_timer_start(&lt->timer, timer_fire, ms, 0);
	return lt;
}

void
loop_timer_cancel(struct loop_timer *lt)
{
	if (lt == NULL)
		return;
	uv_timer_stop(&lt->timer);
	loop_close_free((uv_handle_t *)&lt->timer);
}

static void
free_on_close(uv_handle_t *h)
{
	free(h);
}

void
loop_close_free(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, free_on_close);
}

int
loop_init(void)
{
	if (uv_loop_init(&the_loop) != 0)
		return -1;
	uv_signal_init(&the_loop, &sig_int);
	uv_signal_init(&the_loop, &sig_term);
	uv_signal_init(&the_loop, &sig_hup);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_hup, on_signal, SIGHUP);
	/* Signals never keep the loop alive; listeners and children do. */
	uv_unref((uv_handle_t *)&sig_int);
	uv_unref((uv_handle_t *)&sig_term);
	uv_unref((uv_handle_t *)&sig_hup);
	uv_timer_init(&the_loop, &grace_timer);
	uv_unref((uv_handle_t *)&grace_timer);
	uv_idle_init(&the_loop, &defer_idle);
	signal(SIGPIPE, SIG_IGN);
	stopping = forced = 0;
	loop_ready = 1;
	return 0;
}

uv_loop_t *
loop_uv(void)
{
	return &the_loop;
}

int
loop_run(void)
{
	uv_run(&the_loop, UV_RUN_DEFAULT);
	return forced ? -1 : 0;
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

void
loop_free(void)
{
	int	 i;

	if (!loop_ready)
		return;
	/* Run what is still deferred; it may free objects. */
	while (defer_head != NULL)
		on_defer(&defer_idle);
	/*
	 * Let closes already under way finish first: libwebsockets closes its
	 * handles over several turns and asserts if we close them for it.
	 */
	for (i = 0; i < 50; i++)
		uv_run(&the_loop, UV_RUN_NOWAIT);
	/*
	 * Handles still open here belong to modules that did not close in
	 * time; their memory is theirs.  Close them so uv_loop_close works.
	 */
	uv_walk(&the_loop, close_walk, NULL);
	uv_run(&the_loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&the_loop) != 0)
		log_warnx("loop: handles still open at exit");
	hooks_free(&shutdown_hooks);
	hooks_free(&reload_hooks);
	loop_ready = 0;
}
