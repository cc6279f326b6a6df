/*
 * agentsock — the agent socket: how subagents talk back.
 *
 * JSON lines on a unix socket (0600) in state_dir, {"v":1,"id":N,"token":T,
 * "op":…}; the reply echoes id.  Ops: progress {text}, ask {question,
 * choices?, timeout?} (the reply waits until the question is answered,
 * cancelled or expired), done {summary}, approve {tool_name, input} (Claude
 * Code's permission prompt: auto_allow/auto_deny decide first, then "allow
 * for this session" answers, else a question with Allow / Deny / Allow for
 * this session; the reply is {"behavior":"allow","updatedInput":…} or
 * {"behavior":"deny","message":…}; every decision is logged with who made
 * it).  The token picks the agent; a wrong one is refused.  Transport and framing are bot/ctl's.
 */
#ifndef SB_AGENTSOCK_H
#define SB_AGENTSOCK_H

#include <stddef.h>
#include <stdint.h>

struct ctl_server;

/* Registers the ops on srv (a ctl server listening on the agent socket). */
void	 agentsock_init(struct ctl_server *srv);

/*
 * The first line of a network connection from peer ("10.1.2.3"): the agent
 * it proves to be (> 0) with *reply the line that says so, or -1 with *reply
 * the refusal (id null; the caller hangs up).  Refusals are logged; the
 * token never is.  *reply is malloc'd, without newline.
 */
int64_t	 agentsock_hello(const char *line, size_t len, const char *peer,
	    char **reply);

#endif
