/*
 * ctl-client — the blocking side of the ctl protocol, for CLI processes
 * (`switchboard status`, `switchboard agent ask ...`), never for the daemon's
 * loop.
 *
 * One request at a time per call; ctl_call stamps "v" and a fresh "id" on the
 * request and reads lines until the reply with that id, skipping replies to
 * other ids.  Lines are read with MSG_PEEK up to their newline, so no bytes
 * of the next line are ever held in this process and a plain fd is all the
 * state there is.  After ctl_call returns -1 (timeout included: half a line
 * may have been read) the connection is in an unknown state: disconnect.
 */
#ifndef SB_CTL_CLIENT_H
#define SB_CTL_CLIENT_H

#include <jansson.h>
#include <sys/types.h>

/* ctl_call: the daemon answered "ok":false; cause is its "error" text. */
#define CTL_REFUSED	(-2)

/*
 * Connects to the daemon's socket; the fd or -1 with a cause a person can act
 * on ("no daemon at PATH (is switchboard serve running?)", "permission
 * denied on PATH ...").
 */
int	ctl_connect(const char *path, char **cause);

/*
 * Sends request (its "v" and "id" are set here; not stolen) and waits up to
 * timeout_ms (-1 = forever) for the reply.  0: *reply is the whole reply
 * object with "ok":true, the caller's to json_decref.  CTL_REFUSED: the
 * daemon said no (also for errors about the connection itself, like "line
 * too long", whose id is null).  -1: timeout, EOF, I/O or a malformed reply.
 * *reply is NULL unless 0 is returned.
 */
int	ctl_call(int fd, json_t *request, json_t **reply, int timeout_ms,
	    char **cause);

void	ctl_disconnect(int fd);

/*
 * ctl_call over another transport (bot/ctl-tls.c: TLS to the agent
 * listener).  fd is non-blocking; send and recv answer like send(2) and
 * recv(2) (peek: leave the bytes to be read again, as MSG_PEEK), and when
 * they return -1 with errno EAGAIN, *events says what to poll fd for.
 */
struct ctl_io {
	int	 fd;
	ssize_t	(*send)(struct ctl_io *, const void *, size_t, short *events);
	ssize_t	(*recv)(struct ctl_io *, void *, size_t, int peek,
		    short *events);
	void	*arg;
};
int	ctl_call_io(struct ctl_io *, json_t *request, json_t **reply,
	    int timeout_ms, char **cause);

#endif
