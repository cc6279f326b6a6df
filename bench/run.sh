#!/usr/bin/env bash
# Runs every benchmark binary of a build and prints their tables.  Numbers,
# not pass/fail: nothing here ever fails on speed.
set -u
build=${1:-build/default}
cd "$(dirname "$0")/.."
for b in "$build"/bench/*; do
	[ -x "$b" ] || continue
	case "$b" in *.d) continue;; esac
	echo "== $(basename "$b")"
	"$b" || echo "(benchmark $(basename "$b") exited $?)"
	echo
done
