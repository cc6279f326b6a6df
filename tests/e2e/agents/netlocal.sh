#!/bin/sh
# A local agent (tests/e2e/test_agent_net.py) that tries the agent listener
# with its own token: its task is "URL CAFILE".  The daemon refuses it
# there; the agent socket still works.
set -u
set -- $1
SWITCHBOARD_URL=$1 SWITCHBOARD_CA_FILE=$2 "$SWITCHBOARD_BIN" agent progress "over tls"
echo "tls rc=$?"
"$SWITCHBOARD_BIN" agent done "socket still works"
