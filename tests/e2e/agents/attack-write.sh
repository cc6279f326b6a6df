#!/bin/sh
# Attack: write to each path given; writes.txt says OK or DENIED per path.
: > writes.txt
for p in "$@"; do
	if (echo "written by an agent" >> "$p") 2>/dev/null; then
		echo "OK $p" >> writes.txt
	else
		echo "DENIED $p" >> writes.txt
	fi
done
"$SWITCHBOARD_BIN" agent done "tried"
