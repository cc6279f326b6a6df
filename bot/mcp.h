/*
 * mcp — `switchboard mcp`, the stdio MCP server that Claude Code and Codex
 * start for a subagent: JSON-RPC 2.0, one message per line, tools
 * report_progress, ask_user, finish and approve, each one a request on the
 * agent socket (SWITCHBOARD_SOCKET, SWITCHBOARD_AGENT_TOKEN).
 *
 * The decision worth knowing: the server is sequential.  ask_user blocks
 * until the person answers (minutes, hours) and nothing else is read
 * meanwhile; the clients send one tool call at a time to a server in
 * practice, and a blocking CLI process is the simplest thing that cannot
 * lose an answer.  The protocol handling (mcp_handle) is separate from the
 * transport and the socket (a call function), so tests and the fuzzer drive
 * it without either.
 */
#ifndef SB_MCP_H
#define SB_MCP_H

#include <jansson.h>
#include <stddef.h>

#define MCP_PARSE_ERROR		(-32700)
#define MCP_INVALID_REQUEST	(-32600)
#define MCP_METHOD_NOT_FOUND	(-32601)
#define MCP_INVALID_PARAMS	(-32602)

/*
 * One agent-socket request (op, fields; no token) → 0 with *reply (the
 * caller's to decref), CTL_REFUSED with *cause (the daemon said no), or -1
 * with *cause (unreachable).  Like ctl_call.
 */
typedef int	(*mcp_call_fn)(void *arg, json_t *request, json_t **reply,
		    char **cause);

struct mcp;

struct mcp	*mcp_new(mcp_call_fn, void *arg);
/*
 * Lists and serves the approve tool (the permission prompt tool of Claude
 * Code).  Off by default: a CLI that pre-approves the server's tools (Codex
 * with default_tools_approval_mode) would let the model approve its own
 * tool uses.  `switchboard mcp` turns it on for SWITCHBOARD_MCP_APPROVE=1.
 */
void		 mcp_enable_approve(struct mcp *, int);
void		 mcp_free(struct mcp *);
/* One line in; the reply line (malloc'd, no newline) or NULL if none is due. */
char		*mcp_handle(struct mcp *, const char *line, size_t len);

/* `switchboard mcp`: serves stdin/stdout until EOF. */
int		 mcp_main(int argc, char **argv);

#endif
