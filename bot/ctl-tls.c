#include "bot/ctl-tls.h"
#include "bot/agentconn.h"
#include "bot/ctl-client.h"
#include "bot/util.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct ctl_tls {
	struct ctl_io	 io;		/* io.arg = this */
	SSL_CTX		*ctx;
	SSL		*ssl;
};

int
ctl_tls_parse_url(const char *url, char **host, char **port, char **cause)
{
	const char	*h, *end, *colon;
	long long	 n;

	*host = *port = NULL;
	if (strncmp(url, "tls://", 6) != 0)
		goto bad;
	h = url + 6;
	if (*h == '[') {
		if ((end = strchr(h, ']')) == NULL || end[1] != ':')
			goto bad;
		colon = end + 1;
		h++;
	} else {
		if ((colon = strrchr(h, ':')) == NULL ||
		    memchr(h, '/', (size_t)(colon - h)) != NULL)
			goto bad;
		end = colon;
	}
	n = parse_uint(colon + 1);
	if (end == h || n <= 0 || n > 65535)
		goto bad;
	*host = xstrndup(h, (size_t)(end - h));
	*port = xstrdup(colon + 1);
	return 0;
bad:
	*cause = xasprintf("SWITCHBOARD_URL \"%s\" is not tls://HOST:PORT",
	    url);
	return -1;
}

/* SSL's answer as send/recv's: -1 with errno EAGAIN and what to poll for. */
static ssize_t
tls_result(struct ctl_tls *t, int n, short *events)
{
	if (n > 0)
		return n;
	switch (SSL_get_error(t->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET;	/* EOF without close_notify */
		return -1;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

static ssize_t
tls_send(struct ctl_io *io, const void *p, size_t len, short *events)
{
	struct ctl_tls	*t = io->arg;

	ERR_clear_error();
	return tls_result(t, SSL_write(t->ssl, p, (int)len), events);
}

static ssize_t
tls_recv(struct ctl_io *io, void *p, size_t len, int peek, short *events)
{
	struct ctl_tls	*t = io->arg;

	ERR_clear_error();
	return tls_result(t, peek ? SSL_peek(t->ssl, p, (int)len) :
	    SSL_read(t->ssl, p, (int)len), events);
}

/* 1 ready, 0 timed out, -1 error. */
static int
tls_wait(int fd, short events, uint64_t deadline)
{
	struct pollfd	 pfd = { .fd = fd, .events = events };
	uint64_t	 now;
	int		 n;

	for (;;) {
		if ((now = now_ms()) >= deadline)
			return 0;
		if ((n = poll(&pfd, 1, (int)(deadline - now))) > 0)
			return 1;
		if (n == -1 && errno != EINTR)
			return -1;
	}
}

/* A connected non-blocking TCP socket to host:port, or -1 with *cause. */
static int
tls_dial(const char *host, const char *port, uint64_t deadline, char **cause)
{
	struct addrinfo	 hints, *res, *ai;
	socklen_t	 len;
	int		 fd = -1, rc, err = 0;

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		*cause = xasprintf("cannot resolve %s: %s", host,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			len = sizeof err;
			if ((rc = tls_wait(fd, POLLOUT, deadline)) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
			    &len) == 0 && err == 0)
				break;
			if (rc == 0)
				err = ETIMEDOUT;
		} else
			err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		*cause = xasprintf("cannot connect to %s:%s: %s (is the"
		    " daemon's agent_listener reachable?)", host, port,
		    strerror(err));
	return fd;
}

static void
tls_free(struct ctl_tls *t)
{
	if (t->ssl != NULL)
		SSL_free(t->ssl);
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	if (t->io.fd != -1)
		close(t->io.fd);
	free(t);
}

/* The TLS handshake, with the certificate and the name checked. */
static int
tls_handshake(struct ctl_tls *t, const char *host, const char *port,
    const char *cafile, uint64_t deadline, char **cause)
{
	unsigned char	 ip[16];
	X509_VERIFY_PARAM *vp;
	long		 vr;
	short		 events = POLLIN;
	int		 n, w;

	t->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	/* The CA file may be the daemon's own (self-signed or leaf) cert. */
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(t->ctx),
	    X509_V_FLAG_PARTIAL_CHAIN);
	if (cafile != NULL && *cafile != '\0') {
		if (SSL_CTX_load_verify_locations(t->ctx, cafile, NULL) != 1) {
			ERR_clear_error();
			*cause = xasprintf("cannot read the CA file %s"
			    " (SWITCHBOARD_CA_FILE)", cafile);
			return -1;
		}
	} else
		SSL_CTX_set_default_verify_paths(t->ctx);
	t->ssl = SSL_new(t->ctx);
	SSL_set_fd(t->ssl, t->io.fd);
	vp = SSL_get0_param(t->ssl);
	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(vp, host);
	else {
		SSL_set_tlsext_host_name(t->ssl, host);
		SSL_set1_host(t->ssl, host);
	}
	for (;;) {
		ERR_clear_error();
		if ((n = SSL_connect(t->ssl)) == 1)
			return 0;
		if (tls_result(t, n, &events) == -1 && errno == EAGAIN) {
			if ((w = tls_wait(t->io.fd, events, deadline)) == 1)
				continue;
			*cause = xasprintf("TLS handshake with %s:%s %s", host,
			    port, w == 0 ? "timed out" : "failed");
			return -1;
		}
		break;
	}
	if ((vr = SSL_get_verify_result(t->ssl)) != X509_V_OK)
		*cause = xasprintf("certificate verification failed for %s:%s:"
		    " %s (checked against %s)", host, port,
		    X509_verify_cert_error_string(vr), cafile != NULL &&
		    *cafile != '\0' ? cafile : "the system's CAs");
	else
		*cause = xasprintf("TLS handshake with %s:%s failed: %s", host,
		    port, errno == EPROTO ? "protocol error" :
		    strerror(errno));
	ERR_clear_error();
	return -1;
}

int
ctl_tls_connect(const char *url, const char *cafile, const char *token,
    int timeout_ms, struct ctl_io **out, char **cause)
{
	struct ctl_tls	*t;
	json_t		*hello, *reply = NULL;
	char		*host, *port;
	uint64_t	 deadline = now_ms() + (uint64_t)timeout_ms;
	int		 rc;

	*out = NULL;
	if (ctl_tls_parse_url(url, &host, &port, cause) != 0)
		return -1;
	/* A daemon that hangs up must give us EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	t = xcalloc(1, sizeof *t);
	t->io.send = tls_send;
	t->io.recv = tls_recv;
	t->io.arg = t;
	if ((t->io.fd = tls_dial(host, port, deadline, cause)) == -1 ||
	    tls_handshake(t, host, port, cafile, deadline, cause) != 0) {
		free(host);
		free(port);
		tls_free(t);
		return -1;
	}
	free(host);
	free(port);
	hello = json_pack("{s:s, s:s}", "op", "hello", "token", token);
	rc = ctl_call_io(&t->io, hello, &reply, timeout_ms, cause);
	json_decref(hello);
	json_decref(reply);
	if (rc != 0) {
		tls_free(t);
		return rc;
	}
	*out = &t->io;
	return 0;
}

void
ctl_tls_close(struct ctl_io *io)
{
	struct ctl_tls	*t;

	if (io == NULL)
		return;
	t = io->arg;
	/* One close_notify, no waiting for the daemon's. */
	if (t->ssl != NULL)
		SSL_shutdown(t->ssl);
	tls_free(t);
}

const struct agentconn_net ctl_tls_net = {
	.connect = ctl_tls_connect,
	.close = ctl_tls_close,
};
