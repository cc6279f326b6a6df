#!/bin/sh
# Dumps its environment and arguments to files in its worktree, then exits.
env > env.txt
printf '%s\n' "$@" > args.txt
pwd > pwd.txt
"$SWITCHBOARD_BIN" agent done "dumped"
