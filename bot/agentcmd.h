/*
 * agentcmd — `switchboard agent progress|ask|done …`, the client side of the
 * agent socket that any script running as an agent calls.
 *
 * It lives apart from the CLI so that a small executable, switchboard-agent
 * (agent-main.c: libc and jansson only), can carry it: agents call it many
 * times a second, and the full binary costs ~16 ms a call just to load its
 * 48 shared libraries.  The daemon points agents' SWITCHBOARD_BIN at the
 * small one when it is installed beside it.
 */
#ifndef SB_AGENTCMD_H
#define SB_AGENTCMD_H

/* agentcmd_main: bad arguments; the caller prints its usage, exits 2. */
#define AGENTCMD_USAGE	(-1)

/*
 * argv[0] is "agent" (or the program), argv[1] the op; net is the TLS
 * transport for SWITCHBOARD_URL (agentconn.h), NULL in switchboard-agent.
 * Returns an exit
 * code of cli.h (with a message on stderr where it is not 0), or
 * AGENTCMD_USAGE.
 */
struct agentconn_net;
int	agentcmd_main(int argc, char **argv, const struct agentconn_net *);

#endif
