/*
 * lws — the one libwebsockets context, joined to our libuv loop as a foreign
 * loop, shared by the WebSocket client (ws.c) and the HTTP server (httpd.c).
 *
 * The context is created lazily on first use with explicit vhosts: a client
 * vhost that never listens, and listening vhosts made on request.  It needs
 * lws's libuv event-lib plugin at run time (Debian package
 * libwebsockets-evlib-uv, dlopen'ed by lws itself; without it context
 * creation fails).
 *
 * Decision worth knowing: with a foreign loop, destroying the context takes
 * two steps with loop turns in between.  lws_context_destroy() only starts
 * closing lws's uv handles; their close callbacks live in the plugin, so the
 * context may be finished (which unloads the plugin) only once every one of
 * them has run, or libuv calls into unmapped code.  lws_shutdown() starts the
 * first step and leaves an idle handle that finishes the second, so the loop
 * must turn after it (loop_run or uv_run) before loop_free().
 */
#ifndef SB_LWS_H
#define SB_LWS_H

#include <libwebsockets.h>

/*
 * The client vhost (creating the context first if needed), serving the
 * protocols given by its first caller; NULL on failure or while shutting down.
 */
struct lws_vhost	*lws_client_vhost(const struct lws_protocols *);

/*
 * Another client vhost, from a filled-in info (its own protocols and TLS
 * files: orchestrator/k8s-exec.c); NULL on failure.
 */
struct lws_vhost	*lws_client_vhost_info(struct lws_context_creation_info *);

/* The context the vhosts above belong to, or NULL before first use. */
struct lws_context	*lws_the_context(void);

/*
 * "127.0.0.1:8080", ":8080", "[::1]:8080" → host (NULL = any, else
 * malloc'd) and port; -1 when it is none of these.
 */
int			 lws_parse_listen(const char *, char **host, int *port);

/*
 * A listening vhost on iface (NULL = any) and port (0 = ephemeral) serving
 * protocols.  finalize(arg) runs when lws frees the vhost (after
 * lws_vhost_destroy() or at shutdown).  NULL with *cause on failure.
 */
struct lws_vhost	*lws_listen_vhost(const char *name, const char *iface,
			    int port, const struct lws_protocols *,
			    void (*finalize)(struct lws_vhost *, void *),
			    void *arg, char **cause);

/*
 * The same from a filled-in info (TLS, raw sockets: orchestrator/agentnet.c);
 * FAIL_UPON_UNABLE_TO_BIND is added to its options.
 */
struct lws_vhost	*lws_listen_vhost_info(struct lws_context_creation_info *,
			    char **cause);

/*
 * Starts destroying the context: every connection is closed now (their
 * callbacks run), the rest completes on later loop turns.  Idempotent; also
 * registered as a loop shutdown hook when the context is created.
 */
void			 lws_shutdown(void);

/* 1 while a context exists or is still being torn down. */
int			 lws_busy(void);

#endif
