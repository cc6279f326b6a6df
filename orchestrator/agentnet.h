/*
 * agentnet — the agent protocol over TLS, for agents that do not run on the
 * daemon's host (the kubernetes runner's pods).
 *
 * A raw TCP listener with TLS (a libwebsockets vhost on our loop, config
 * agent_listener) whose connections carry exactly the JSON lines of the
 * agent socket, into the same ctl server, ops and limits (agentsock.c).
 * The one addition is the first line, which must be a hello with the
 * agent's token (agentsock_hello); until it has come, within a few seconds
 * and a few KiB, nothing reaches the protocol.  A refused peer gets one
 * error line and is hung up on.
 */
#ifndef SB_AGENTNET_H
#define SB_AGENTNET_H

struct ctl_server;

/*
 * Listens on listen ("HOST:PORT"; port 0 = any free one) with the PEM
 * certificate chain and key (the key is not kept), feeding srv.  0, or -1
 * with *cause.
 */
int	agentnet_start(struct ctl_server *srv, const char *listen,
	    const char *cert_pem, const char *key_pem, char **cause);
/* The port it listens on, or -1. */
int	agentnet_port(void);
/* Stops listening and closes every connection. Idempotent. */
void	agentnet_stop(void);

#endif
