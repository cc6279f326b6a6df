#!/bin/sh
# The agent of tests/e2e/test_agent_net.py, run as a pod by the fake
# cluster's kubelet: no agent socket, only SWITCHBOARD_URL, the token file
# and the CA file.  It talks back over TLS with switchboard-agent (which
# hands such calls to the full binary) and, with "approve" in its task, asks
# for a tool approval through `switchboard mcp`.
set -u
echo "pod $HOSTNAME: socket=${SWITCHBOARD_SOCKET:-none} url=$SWITCHBOARD_URL"
switchboard-agent progress "first step in the pod" || echo "progress failed: $?"
case "$1" in
*approve*)
	printf '%s\n' \
	    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}' \
	    '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"approve","arguments":{"tool_name":"Bash","input":{"command":"make deploy"}}}}' |
	    SWITCHBOARD_MCP_APPROVE=1 switchboard mcp > mcp.out
	echo "mcp rc=$?"
	grep -o '\\"behavior\\":\\"[a-z]*\\"' mcp.out || cat mcp.out
	;;
esac
a=$(switchboard-agent ask "Which region for $1?" --choice eu-west --choice us-east)
rc=$?
echo "answer: $a (rc=$rc)"
switchboard-agent progress "got $a"
switchboard-agent done "chose $a"
echo "$a" > region.txt
