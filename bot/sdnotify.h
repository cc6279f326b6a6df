/*
 * sdnotify — tell systemd (Type=notify) that we are ready, reloading or
 * stopping, and keep its watchdog fed, without libsystemd.
 *
 * The protocol is one datagram of "KEY=VALUE\n" lines to the AF_UNIX socket
 * named by $NOTIFY_SOCKET ('@' at the start means the abstract namespace).
 * sdnotify_init() reads and then unsets NOTIFY_SOCKET, WATCHDOG_USEC and
 * WATCHDOG_PID so agents never inherit them.  Without NOTIFY_SOCKET every
 * call is a no-op: the same binary runs under systemd and from a terminal.
 * The watchdog ping is a timer on the event loop, so a wedged loop (the thing
 * that matters) stops the pings and systemd restarts the service.
 */
#ifndef SB_SDNOTIFY_H
#define SB_SDNOTIFY_H

#include <uv.h>

/* Reads the environment; call once, before any child is spawned. */
void	sdnotify_init(void);
/* 0 sent; 1 not under systemd; -1 the send failed (logged once). */
int	sdnotify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* WATCHDOG=1 every WATCHDOG_USEC/2 if systemd asked for it. */
void	sdnotify_watchdog_start(uv_loop_t *);
void	sdnotify_watchdog_stop(void);
/* Microseconds systemd wants a ping within; 0 = no watchdog. */
unsigned long long sdnotify_watchdog_usec(void);
/* Forgets the socket (tests). */
void	sdnotify_reset(void);

#endif
