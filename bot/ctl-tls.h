/*
 * ctl-tls — the client side of the agent listener (orchestrator/agentnet.h):
 * the agent protocol over TLS, for `switchboard agent` and `switchboard mcp`
 * in a pod (SWITCHBOARD_URL=tls://HOST:PORT).
 *
 * Blocking, like ctl-client, whose ctl_call_io it feeds.  The certificate is
 * always verified, against cafile (SWITCHBOARD_CA_FILE, which may hold the
 * daemon's own certificate: partial chains are accepted) or the system's
 * CAs, and the name or IP address of the URL must be in it.  Only the full
 * binary links OpenSSL; switchboard-agent hands network calls to it.
 */
#ifndef SB_CTL_TLS_H
#define SB_CTL_TLS_H

struct ctl_io;

/*
 * "tls://HOST:PORT" or "tls://[V6]:PORT" → host and port (malloc'd).  -1
 * with *cause when it is not that.
 */
int	 ctl_tls_parse_url(const char *url, char **host, char **port,
	    char **cause);

/*
 * Connects to url, verifies the daemon and says hello with token (the
 * first line the listener wants).  0 with *out (for ctl_call_io); -1 when the daemon cannot
 * be reached or verified; CTL_REFUSED when it refused the token (cause is
 * its error text, e.g. "unknown or expired agent token").
 */
int	 ctl_tls_connect(const char *url, const char *cafile,
	    const char *token, int timeout_ms, struct ctl_io **out,
	    char **cause);
void	 ctl_tls_close(struct ctl_io *);

/* The two above, for agentconn.h. */
extern const struct agentconn_net ctl_tls_net;

#endif
