#!/bin/sh
# Attack: leave children that outlive a cancel: one in a session of its own
# (setsid), one double-forked (re-parented to init).  sleep $1 and
# sleep $(($1 + 1)) mark them.  Then waits to be cancelled.
setsid sleep "$1" </dev/null >/dev/null 2>&1 &
sh -c "sleep $(($1 + 1)) </dev/null >/dev/null 2>&1 &"
sleep 0.3
"$SWITCHBOARD_BIN" agent progress "children left"
while :; do sleep 1; done
