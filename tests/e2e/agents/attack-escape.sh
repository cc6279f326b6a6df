#!/bin/sh
# Attack: leave children that outlive a cancel: one in a session of its own
# (setsid), one double-forked (re-parented to init).  sleep $1 and
# sleep $(($1 + 1)) mark them.  Each says when it is in place (a loaded
# machine is slow to run them), then this waits to be cancelled.
a=$(mktemp) b=$(mktemp)
rm -f "$a" "$b"
setsid sh -c 'touch "$2"; exec sleep "$1"' sh "$1" "$a" </dev/null >/dev/null 2>&1 &
sh -c 'sh -c '\''touch "$2"; exec sleep "$1"'\'' sh "$1" "$2" </dev/null >/dev/null 2>&1 &' \
    sh "$(($1 + 1))" "$b"
n=0
while { [ ! -e "$a" ] || [ ! -e "$b" ]; } && [ $n -lt 1000 ]; do
	sleep 0.01
	n=$((n + 1))
done
rm -f "$a" "$b"
"$SWITCHBOARD_BIN" agent progress "children left"
while :; do sleep 1; done
