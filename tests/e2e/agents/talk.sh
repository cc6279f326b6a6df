#!/bin/sh
# Fails unless both calls on the agent socket succeed.
"$SWITCHBOARD_BIN" agent progress "talking" || exit 7
"$SWITCHBOARD_BIN" agent done "talked fine" || exit 8
