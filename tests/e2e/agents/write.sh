#!/bin/sh
# Writes a file from its task: "FILE TEXT" puts TEXT (plus a newline) in
# FILE; "big FILE N" writes N numbered lines.  Says what it does on stdout
# and stderr, so `log #N` has both.
set -eu
set -- $1
if [ "$1" = big ]; then
	i=1
	: > "$2"
	while [ "$i" -le "$3" ]; do
		echo "line $i of a long file" >> "$2"
		i=$((i + 1))
	done
	echo "wrote $3 lines to $2"
	exit 0
fi
f=$1
shift
echo "$*" > "$f"
echo "stdout: wrote $f"
echo "stderr: done with $f" >&2
