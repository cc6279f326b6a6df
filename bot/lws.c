/*
 * Needs lws's libuv event-lib plugin at run time: Debian package
 * libwebsockets-evlib-uv (libwebsockets-evlib_uv.so, loaded by lws when
 * LWS_SERVER_OPTION_LIBUV is set).
 */
#include "bot/lws.h"
#include "bot/log.h"
#include "bot/loop.h"
#include "bot/util.h"

#include <stdlib.h>
#include <string.h>

static struct lws_context	*ctx;		/* lws NULLs it when done */
static struct lws_vhost		*client_vh;
static uv_idle_t		*finisher;	/* set while tearing down */

static void
lws_log_emit(int level, const char *line)
{
	const char	*p;
	size_t		 len;

	/* lws prefixes "[date time:ms] E: "; our logger has its own. */
	if (line[0] == '[' && (p = strstr(line, "] ")) != NULL) {
		line = p + 2;
		if (line[0] != '\0' && line[1] == ':' && line[2] == ' ')
			line += 3;
	}
	len = strlen(line);
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	log_warnx("lws: %.*s", (int)len, line);
}

static void
lws_shutdown_hook(void *arg)
{
	(void)arg;
	lws_shutdown();
}

static int
lws_ensure(void)
{
	struct lws_context_creation_info	 info;
	void					*foreign[1];

	if (ctx != NULL)
		return finisher != NULL ? -1 : 0;

	/* lws's own chatter is notices; keep errors and warnings only. */
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

	memset(&info, 0, sizeof info);
	info.options = LWS_SERVER_OPTION_LIBUV |
	    LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	/* Only read during creation, so a stack array is enough. */
	foreign[0] = loop_uv();
	info.foreign_loops = foreign;
	info.pcontext = &ctx;
	/* Webhook signatures and tokens ride in headers; 4 KiB is tight. */
	info.max_http_header_data = 16384;
	/*
	 * Each read takes at most this much (default 4 KiB, three Socket Mode
	 * envelopes): a burst read 64 KiB at a time is recorded, and acked,
	 * in a few large group commits instead of one per three events.
	 */
	info.pt_serv_buf_size = 65536;
	info.port = CONTEXT_PORT_NO_LISTEN;
	ctx = lws_create_context(&info);
	if (ctx == NULL) {
		log_warnx("lws: cannot create context (is the libuv event-lib "
		    "plugin, libwebsockets-evlib-uv, installed?)");
		return -1;
	}
	loop_on_shutdown(lws_shutdown_hook, NULL);
	return 0;
}

struct lws_vhost *
lws_client_vhost(const struct lws_protocols *protocols)
{
	struct lws_context_creation_info	 info;

	if (lws_ensure() != 0)
		return NULL;
	if (client_vh != NULL)
		return client_vh;

	memset(&info, 0, sizeof info);
	info.vhost_name = "client";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	/* Client TLS needs the vhost's SSL_CTX; peers are verified. */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	client_vh = lws_create_vhost(ctx, &info);
	if (client_vh == NULL)
		log_warnx("lws: cannot create the client vhost");
	return client_vh;
}

struct lws_vhost *
lws_client_vhost_info(struct lws_context_creation_info *info)
{
	if (lws_ensure() != 0)
		return NULL;
	info->port = CONTEXT_PORT_NO_LISTEN;
	info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	return lws_create_vhost(ctx, info);
}

/*
 * lws reports a failed bind only as NULL.  Binding the same address with
 * libuv (which sets SO_REUSEADDR like lws) recovers the reason.
 */
static char *
lws_probe_listen(const char *iface, int port)
{
	struct sockaddr_storage	 ss;
	uv_tcp_t		*h;
	int			 rc;

	memset(&ss, 0, sizeof ss);
	if (iface == NULL)
		rc = uv_ip6_addr("::", port, (struct sockaddr_in6 *)&ss);
	else if (strchr(iface, ':') != NULL)
		rc = uv_ip6_addr(iface, port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(iface, port, (struct sockaddr_in *)&ss);
	if (rc != 0)
		return xstrdup("bad address");
	h = xcalloc(1, sizeof *h);
	uv_tcp_init(loop_uv(), h);
	rc = uv_tcp_bind(h, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)h, 1, NULL);
	loop_close_free((uv_handle_t *)h);
	if (rc != 0)
		return xstrdup(uv_strerror(rc));
	return xstrdup("cannot listen");
}

int
lws_parse_listen(const char *listen, char **host, int *port)
{
	const char	*colon, *close;
	long long	 n;

	*host = NULL;
	if (listen[0] == '[') {
		if ((close = strchr(listen, ']')) == NULL || close[1] != ':')
			return -1;
		*host = xstrndup(listen + 1, close - listen - 1);
		colon = close + 1;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL)
			return -1;
		if (colon != listen)
			*host = xstrndup(listen, colon - listen);
	}
	n = parse_uint(colon + 1);
	if (n < 0 || n > 65535 || (*host != NULL && **host == '\0')) {
		free(*host);
		*host = NULL;
		return -1;
	}
	*port = (int)n;
	return 0;
}

struct lws_vhost *
lws_listen_vhost_info(struct lws_context_creation_info *info, char **cause)
{
	struct lws_vhost	*vh;

	if (lws_ensure() != 0) {
		*cause = xstrdup("libwebsockets context unavailable");
		return NULL;
	}
	/* Otherwise lws keeps going without the listener it could not bind. */
	info->options |= LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
	vh = lws_create_vhost(ctx, info);
	if (vh == NULL)
		*cause = lws_probe_listen(info->iface, info->port);
	return vh;
}

struct lws_vhost *
lws_listen_vhost(const char *name, const char *iface, int port,
    const struct lws_protocols *protocols,
    void (*finalize)(struct lws_vhost *, void *), void *arg, char **cause)
{
	struct lws_context_creation_info	 info;

	memset(&info, 0, sizeof info);
	info.vhost_name = name;
	info.iface = iface;
	info.port = port;
	info.protocols = protocols;
	info.finalize = finalize;
	info.finalize_arg = arg;
	return lws_listen_vhost_info(&info, cause);
}

static void
count_closing(uv_handle_t *h, void *arg)
{
	if (uv_is_closing(h))
		(*(int *)arg)++;
}

static void
lws_finish(uv_idle_t *idle)
{
	int	 closing = 0;

	/*
	 * Close callbacks run at the end of a loop iteration and some of
	 * lws's schedule further closes; wait until none is pending.
	 */
	uv_walk(idle->loop, count_closing, &closing);
	if (closing > 0)
		return;
	if (ctx != NULL)
		lws_context_destroy(ctx);	/* second step: frees, ctx = NULL */
	if (ctx != NULL)
		return;
	uv_idle_stop(idle);
	loop_close_free((uv_handle_t *)idle);
	finisher = NULL;
	log_debug("lws: context destroyed");
}

void
lws_shutdown(void)
{
	if (ctx == NULL || finisher != NULL)
		return;
	client_vh = NULL;
	lws_context_destroy(ctx);	/* first step: closes every wsi */
	if (ctx == NULL)
		return;
	finisher = xcalloc(1, sizeof *finisher);
	uv_idle_init(loop_uv(), finisher);
	uv_idle_start(finisher, lws_finish);
}

struct lws_context *
lws_the_context(void)
{
	return finisher != NULL ? NULL : ctx;
}

int
lws_busy(void)
{
	return ctx != NULL;
}
