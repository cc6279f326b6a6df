#!/bin/sh
# Attack: use the control socket next to the agent socket to list and
# cancel agents (#$1 is someone else's).  Results go to ctl.txt.
state=$(dirname "$SWITCHBOARD_SOCKET")
"$SWITCHBOARD_BIN" status -s "$state" > ctl.txt 2>&1
echo "status $?" >> ctl.txt
"$SWITCHBOARD_BIN" cancel -s "$state" "$1" >> ctl.txt 2>&1
echo "cancel $?" >> ctl.txt
"$SWITCHBOARD_BIN" agent done "tried"
