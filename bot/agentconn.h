/*
 * agentconn — how a process an agent runs reaches the daemon, as its
 * environment says: SWITCHBOARD_URL (tls://HOST:PORT: an agent in a pod,
 * with SWITCHBOARD_CA_FILE) or else SWITCHBOARD_SOCKET (the agent socket on
 * this host); the token from SWITCHBOARD_AGENT_TOKEN or else the file
 * named by SWITCHBOARD_AGENT_TOKEN_FILE (a pod's mounted secret).  Shared
 * by `switchboard agent` (agentcmd.c) and `switchboard mcp` (mcp.c).
 *
 * The TLS side comes from the caller (bot/ctl-tls.c in the full binary), so
 * that switchboard-agent links no TLS library: it hands calls with
 * SWITCHBOARD_URL set to the full binary instead.
 */
#ifndef SB_AGENTCONN_H
#define SB_AGENTCONN_H

#include <jansson.h>

struct ctl_io;

/* The network transport: ctl_tls_connect and ctl_tls_close. */
struct agentconn_net {
	int	(*connect)(const char *url, const char *cafile,
		    const char *token, int timeout_ms, struct ctl_io **,
		    char **cause);
	void	(*close)(struct ctl_io *);
};

struct agentconn;

/*
 * From the environment; net may be NULL (then SWITCHBOARD_URL is an
 * error).  NULL with *cause when the environment is not an agent's.
 */
struct agentconn *agentconn_env(const struct agentconn_net *net,
		    char **cause);
/* 1 when it talks over the network. */
int		 agentconn_remote(const struct agentconn *);
/*
 * ctl_call with the token set: connects on first use; after a failed call
 * (-1) the connection is dropped and the next call makes a new one.
 * Returns as ctl_call (CTL_REFUSED also when the daemon refused the token
 * at connection time).
 */
int		 agentconn_call(struct agentconn *, json_t *request,
		    json_t **reply, int timeout_ms, char **cause);
void		 agentconn_free(struct agentconn *);

#endif
