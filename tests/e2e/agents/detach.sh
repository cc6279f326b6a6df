#!/bin/sh
# Leaves a grandchild in a session of its own holding stdout open, then
# exits: the agent's turn must still settle.
setsid sh -c 'sleep 5' &
echo "left a detached child behind"
"$SWITCHBOARD_BIN" agent done "exited, child still around"
