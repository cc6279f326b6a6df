/*
 * loop — the one libuv loop, signals, shutdown and reload hooks, deferred calls.
 *
 * Everything in Switchboard runs on this loop in one thread: libwebsockets as a
 * foreign loop, curl multi through its socket/timer callbacks, child processes,
 * pipes and timers as libuv handles.  Shutdown is cooperative: SIGINT/SIGTERM
 * call every shutdown hook once (stop intake, flush, close sockets); the loop
 * then ends when no handle is left, or is stopped hard after the grace period so
 * the daemon always exits within a bounded time.
 */
#ifndef SB_LOOP_H
#define SB_LOOP_H

#include <uv.h>

typedef void (*loop_fn)(void *arg);

int		 loop_init(void);		/* -1 on failure */
uv_loop_t	*loop_uv(void);
/* Runs until shutdown completes.  Returns 0 after a clean shutdown. */
int		 loop_run(void);
/* Closes every remaining handle and frees the loop (after loop_run). */
void		 loop_free(void);

/* Hooks run in registration order on shutdown / SIGHUP. */
void		 loop_on_shutdown(loop_fn, void *);
void		 loop_on_reload(loop_fn, void *);
/* Starts a graceful shutdown (idempotent); grace_ms bounds it. */
void		 loop_shutdown(const char *why);
int		 loop_stopping(void);
void		 loop_set_grace_ms(unsigned);

/*
 * Calls fn(arg) on the next loop turn.  Used to free objects that event
 * callbacks share: never free under a callback that may still touch them.
 */
void		 loop_defer(loop_fn, void *);

/* Convenience one-shot timer that frees itself; returns a handle for cancel. */
struct loop_timer;
struct loop_timer *loop_timer_once(uint64_t ms, loop_fn, void *);
void		 loop_timer_cancel(struct loop_timer *);

/* Close a handle and free() it once libuv is done with it. */
void		 loop_close_free(uv_handle_t *);

#endif
