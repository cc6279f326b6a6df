#!/bin/sh
# Works for a while, reporting progress, then finishes with a change.
set -eu
sb=$SWITCHBOARD_BIN
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$sb" agent progress "working $i"
	sleep 0.5
done
echo "slow result" > slow.txt
"$sb" agent done "slow finished"
