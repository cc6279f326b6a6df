#!/bin/sh
# Attack: post as another agent.  Uses a token given to it in ./stolen
# (written by the test, as if read from /proc/PID/environ) and any token it
# can read from other processes itself; exit codes go to borrow.txt.
i=0
while [ ! -s stolen ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
found=0
for f in /proc/[0-9]*/environ; do
	t=$(tr '\0' '\n' < "$f" 2>/dev/null | sed -n 's/^SWITCHBOARD_AGENT_TOKEN=//p')
	[ -n "$t" ] && [ "$t" != "$SWITCHBOARD_AGENT_TOKEN" ] && found=$((found + 1))
done
echo "found $found" > borrow.txt
SWITCHBOARD_AGENT_TOKEN=$(cat stolen) "$SWITCHBOARD_BIN" agent progress \
    "pwned by the attacker" 2>> borrow.txt
echo "progress $?" >> borrow.txt
SWITCHBOARD_AGENT_TOKEN=$(cat stolen) "$SWITCHBOARD_BIN" agent done \
    "pwned summary" 2>> borrow.txt
echo "done $?" >> borrow.txt
"$SWITCHBOARD_BIN" agent done "tried"
