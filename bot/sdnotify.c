#include "bot/sdnotify.h"
#include "bot/log.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct sockaddr_un	 sd_addr;
static socklen_t		 sd_addrlen;	/* 0 = not under systemd */
static int			 sd_fd = -1;
static int			 sd_warned;
static unsigned long long	 sd_watchdog_usec;
static uv_timer_t		 sd_timer;
static int			 sd_timer_on;

void
sdnotify_reset(void)
{
	sdnotify_watchdog_stop();
	if (sd_fd != -1)
		close(sd_fd);
	sd_fd = -1;
	sd_addrlen = 0;
	sd_warned = 0;
	sd_watchdog_usec = 0;
}

void
sdnotify_init(void)
{
	const char	*path = getenv("NOTIFY_SOCKET");
	const char	*usec = getenv("WATCHDOG_USEC");
	const char	*pid = getenv("WATCHDOG_PID");
	size_t		 len;

	sdnotify_reset();
	if (path != NULL && (path[0] == '/' || path[0] == '@') &&
	    (len = strlen(path)) < sizeof sd_addr.sun_path) {
		memset(&sd_addr, 0, sizeof sd_addr);
		sd_addr.sun_family = AF_UNIX;
		memcpy(sd_addr.sun_path, path, len);
		/* Abstract names have no terminating NUL in the length. */
		if (path[0] == '@') {
			sd_addr.sun_path[0] = '\0';
			sd_addrlen = offsetof(struct sockaddr_un, sun_path) + len;
		} else
			sd_addrlen = offsetof(struct sockaddr_un, sun_path) +
			    len + 1;
		sd_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (sd_fd == -1) {
			log_warn("sdnotify: socket");
			sd_addrlen = 0;
		}
	} else if (path != NULL)
		log_warnx("sdnotify: NOTIFY_SOCKET is not a usable socket"
		    " address; not notifying systemd");
	/* WATCHDOG_PID names the process meant; a child of ours is not. */
	if (usec != NULL && (pid == NULL || strtol(pid, NULL, 10) == getpid()))
		sd_watchdog_usec = strtoull(usec, NULL, 10);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

int
sdnotify(const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;
	int	 n;

	if (sd_addrlen == 0)
		return 1;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof msg)
		return -1;
	if (sendto(sd_fd, msg, n, MSG_NOSIGNAL, (struct sockaddr *)&sd_addr,
	    sd_addrlen) != n) {
		if (!sd_warned++)
			log_warn("sdnotify: cannot notify systemd");
		return -1;
	}
	return 0;
}

unsigned long long
sdnotify_watchdog_usec(void)
{
	return sd_watchdog_usec;
}

static void
sdnotify_ping(uv_timer_t *t)
{
	sdnotify("WATCHDOG=1");
}

void
sdnotify_watchdog_start(uv_loop_t *loop)
{
	uint64_t	 ms;

	if (sd_addrlen == 0 || sd_watchdog_usec == 0 || sd_timer_on)
		return;
	/* Half the interval, as sd_watchdog_enabled(3) advises. */
	ms = sd_watchdog_usec / 2000;
	if (ms == 0)
		ms = 1;
	uv_timer_init(loop, &sd_timer);
	uv_timer_start(&sd_timer, sdnotify_ping, ms, ms);
	/* The ping alone must not keep a stopping loop alive. */
	uv_unref((uv_handle_t *)&sd_timer);
	sd_timer_on = 1;
}

void
sdnotify_watchdog_stop(void)
{
	if (!sd_timer_on)
		return;
	uv_timer_stop(&sd_timer);
	uv_close((uv_handle_t *)&sd_timer, NULL);
	sd_timer_on = 0;
}
