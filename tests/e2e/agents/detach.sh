#!/bin/sh
# Leaves a grandchild in a session of its own holding stdout open, then
# exits: the agent's turn must still settle.  The grandchild says when it
# is in its own session: exiting before that would let the daemon's
# SIGTERM to our process group take it too (a loaded machine is slow to
# run it), and then nothing would hold the output.
ready=$(mktemp)
rm -f "$ready"
setsid sh -c 'touch "$1"; sleep 5' sh "$ready" &
n=0
while [ ! -e "$ready" ] && [ $n -lt 1000 ]; do
	sleep 0.01
	n=$((n + 1))
done
rm -f "$ready"
echo "left a detached child behind"
"$SWITCHBOARD_BIN" agent done "exited, child still around"
