#!/bin/sh
# Never finishes on its own and ignores SIGTERM: only SIGKILL ends it.
trap '' TERM
"$SWITCHBOARD_BIN" agent progress "hanging"
while :; do sleep 1; done
