#include "orchestrator/agentnet.h"
#include "orchestrator/agentsock.h"
#include "bot/ctl.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/lws.h"
#include "bot/util.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <stdlib.h>
#include <string.h>

#define NET_PROTOCOL	"sb-agent"
#define HELLO_MAX	4096	/* bytes of the first line, newline included */
#define HELLO_TIMEOUT	5	/* seconds from accept to a hello */
#define NET_CHUNK	16384	/* bytes per lws_write */

/* One connection; lws allocates and zeroes it (per_session_data_size). */
struct netconn {
	struct lws	*wsi;
	struct ctl_conn	*conn;		/* after the hello */
	struct buf	 hello;		/* the first line as it comes */
	struct buf	 out;		/* not yet written */
	size_t		 out_off;
	int		 closing;	/* hang up once out is written */
	int		 paused;
	char		 peer[64];
};

static struct {
	struct lws_vhost	*vh;
	struct ctl_server	*srv;
	int			 port;
	/* PEM, read by the vhost's TLS set-up during lws_create_vhost. */
	const char		*cert, *key;
} net = { .port = -1 };

/* ---- the ctl transport ---------------------------------------------------- */

static void
nc_send(void *arg, char *line, size_t len)
{
	struct netconn	*nc = arg;

	buf_add(&nc->out, line, len);
	free(line);
	lws_callback_on_writable(nc->wsi);
}

static size_t
nc_queued(void *arg)
{
	struct netconn	*nc = arg;

	return nc->out.len - nc->out_off;
}

static void
nc_pause(void *arg, int on)
{
	struct netconn	*nc = arg;

	nc->paused = on;
	lws_rx_flow_control(nc->wsi, on ? 0 : 1);
}

/* After what is queued (flush) or now; lws closes it from its own loop. */
static void
nc_close(void *arg, int flush)
{
	struct netconn	*nc = arg;

	nc->closing = 1;
	if (flush && nc->out.len > nc->out_off)
		lws_callback_on_writable(nc->wsi);
	else
		lws_set_timeout(nc->wsi, PENDING_TIMEOUT_USER_OK,
		    LWS_TO_KILL_ASYNC);
}

static const struct ctl_transport nc_transport = {
	.name = "tls", .send = nc_send, .queued = nc_queued,
	.pause = nc_pause, .close = nc_close,
};

/* ---- the connection ----------------------------------------------------- */

static void
nc_refuse(struct netconn *nc, char *line)
{
	nc_send(nc, line, strlen(line));
	nc_send(nc, xstrdup("\n"), 1);
	nc_close(nc, 1);
}

/* Bytes before the hello: wait for its line, then let the protocol have it. */
static void
nc_hello(struct netconn *nc, const char *data, size_t len)
{
	char	*nl, *reply;
	size_t	 n;
	int64_t	 agent;

	buf_add(&nc->hello, data, len);
	if ((nl = memchr(nc->hello.data, '\n', nc->hello.len)) == NULL) {
		if (nc->hello.len >= HELLO_MAX) {
			log_warnx("agent listener: %s refused: no hello in its"
			    " first %d bytes", nc->peer, HELLO_MAX);
			nc_refuse(nc, xstrdup("{\"v\":1,\"id\":null,\"ok\":false,"
			    "\"error\":\"first line too long\"}"));
		}
		return;
	}
	n = (size_t)(nl - nc->hello.data);
	if (n + 1 > HELLO_MAX) {
		log_warnx("agent listener: %s refused: no hello in its first %d"
		    " bytes", nc->peer, HELLO_MAX);
		nc_refuse(nc, xstrdup("{\"v\":1,\"id\":null,\"ok\":false,"
		    "\"error\":\"first line too long\"}"));
		return;
	}
	if ((agent = agentsock_hello(nc->hello.data, n, nc->peer, &reply)) < 0) {
		nc_refuse(nc, reply);
		return;
	}
	lws_set_timeout(nc->wsi, NO_PENDING_TIMEOUT, 0);
	nc_send(nc, reply, strlen(reply));
	nc_send(nc, xstrdup("\n"), 1);
	if (net.srv != NULL)
		nc->conn = ctl_conn_attach(net.srv, &nc_transport, nc, agent);
	/* What came after the hello is the protocol's. */
	if (nc->conn != NULL && !nc->closing && nc->hello.len > n + 1)
		ctl_conn_input(nc->conn, nc->hello.data + n + 1,
		    nc->hello.len - n - 1);
	else if (nc->conn == NULL)
		nc_close(nc, 1);
	buf_free(&nc->hello);
}

static int
nc_writable(struct netconn *nc)
{
	unsigned char	 stage[LWS_PRE + NET_CHUNK];
	size_t		 n = nc->out.len - nc->out_off;

	if (n > NET_CHUNK)
		n = NET_CHUNK;
	if (n > 0) {
		memcpy(stage + LWS_PRE, nc->out.data + nc->out_off, n);
		if (lws_write(nc->wsi, stage + LWS_PRE, n, LWS_WRITE_RAW) <
		    (int)n)
			return -1;
		nc->out_off += n;
	}
	if (nc->out_off == nc->out.len) {
		buf_reset(&nc->out);
		nc->out_off = 0;
		if (nc->closing)
			return -1;
	} else
		lws_callback_on_writable(nc->wsi);
	if (nc->conn != NULL)
		ctl_conn_drained(nc->conn);
	return 0;
}

static void
nc_gone(struct netconn *nc)
{
	struct ctl_conn	*c = nc->conn;

	nc->conn = NULL;
	if (c != NULL)
		ctl_conn_gone(c);
	buf_free(&nc->hello);
	buf_free(&nc->out);
}

/*
 * The vhost's SSL_CTX is being made: our certificate chain and key, from
 * memory (env: or file: references), which lws can only take one
 * certificate of.  agentnet_start checked them already.
 */
static int
load_certs(SSL_CTX *ctx, const char *cert, const char *key, char **cause)
{
	EVP_PKEY	*pk = NULL;
	X509		*x;
	BIO		*b;
	int		 rc = -1;

	b = BIO_new_mem_buf(cert, -1);
	if ((x = PEM_read_bio_X509_AUX(b, NULL, NULL, NULL)) == NULL) {
		*cause = xstrdup("agent_listener.cert holds no PEM certificate");
		goto out;
	}
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		*cause = xstrdup("agent_listener.cert is not usable");
		goto out;
	}
	X509_free(x);
	SSL_CTX_clear_chain_certs(ctx);
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		SSL_CTX_add0_chain_cert(ctx, x);
	BIO_free(b);
	b = BIO_new_mem_buf(key, -1);
	if ((pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL) {
		*cause = xstrdup("agent_listener.key holds no PEM private key");
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pk) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		*cause = xstrdup("agent_listener.key does not match"
		    " agent_listener.cert");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	rc = 0;
out:
	EVP_PKEY_free(pk);
	BIO_free(b);
	ERR_clear_error();
	return rc;
}

static int
nc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct netconn	*nc = user;
	char		*cause = NULL;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		if (net.cert == NULL)
			return 0;
		if (load_certs(user, net.cert, net.key, &cause) != 0) {
			log_warnx("agent listener: %s", cause);
			free(cause);
			return 1;
		}
		return 0;
	case LWS_CALLBACK_RAW_ADOPT:
		nc->wsi = wsi;
		lws_get_peer_simple(wsi, nc->peer, sizeof nc->peer);
		/* An IPv4 peer on a dual-stack socket: say 10.1.2.3. */
		if (strncmp(nc->peer, "::ffff:", 7) == 0 &&
		    strchr(nc->peer + 7, '.') != NULL)
			memmove(nc->peer, nc->peer + 7, strlen(nc->peer + 7) + 1);
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, HELLO_TIMEOUT);
		log_debug("agent listener: connection from %s", nc->peer);
		return 0;
	case LWS_CALLBACK_RAW_RX:
		if (nc->closing)
			return 0;
		if (nc->conn != NULL)
			ctl_conn_input(nc->conn, in, len);
		else
			nc_hello(nc, in, len);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE:
		return nc_writable(nc);
	case LWS_CALLBACK_RAW_CLOSE:
		log_debug("agent listener: %s closed", nc->peer);
		nc_gone(nc);
		return 0;
	default:
		return 0;
	}
}

static const struct lws_protocols net_protocols[] = {
	{ NET_PROTOCOL, nc_callback, sizeof(struct netconn), 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
vhost_gone(struct lws_vhost *vh, void *arg)
{
	if (vh == net.vh) {
		net.vh = NULL;
		net.port = -1;
	}
}

static void
stop_hook(void *arg)
{
	agentnet_stop();
}

int
agentnet_start(struct ctl_server *srv, const char *listen,
    const char *cert_pem, const char *key_pem, char **cause)
{
	struct lws_context_creation_info	 info;
	SSL_CTX					*check;
	char					*host, *why = NULL;
	int					 port, rc;

	if (lws_parse_listen(listen, &host, &port) != 0) {
		*cause = xasprintf("agent_listener.listen \"%s\": want"
		    " HOST:PORT", listen);
		return -1;
	}
	/* Say what is wrong with the PEMs before lws says "cannot listen". */
	check = SSL_CTX_new(TLS_server_method());
	rc = load_certs(check, cert_pem, key_pem, &why);
	SSL_CTX_free(check);
	if (rc != 0) {
		free(host);
		*cause = why;
		return -1;
	}
	memset(&info, 0, sizeof info);
	info.vhost_name = "agents";
	info.iface = host;
	info.port = port;
	info.protocols = net_protocols;
	info.finalize = vhost_gone;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
	    LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX |
	    LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = NET_PROTOCOL;
	net.cert = cert_pem;
	net.key = key_pem;
	net.srv = srv;
	net.vh = lws_listen_vhost_info(&info, &why);
	net.cert = net.key = NULL;
	free(host);
	if (net.vh == NULL) {
		*cause = xasprintf("agent_listener.listen %s: %s", listen, why);
		free(why);
		return -1;
	}
	net.port = lws_get_vhost_listen_port(net.vh);
	loop_on_shutdown(stop_hook, NULL);
	log_info("agent listener: TLS on %s (port %d)", listen, net.port);
	return 0;
}

int
agentnet_port(void)
{
	return net.port;
}

void
agentnet_stop(void)
{
	if (net.vh != NULL) {
		lws_vhost_destroy(net.vh);	/* closes its connections */
		net.vh = NULL;
	}
	net.srv = NULL;		/* ctl_close() frees it once they are gone */
	net.port = -1;
}
