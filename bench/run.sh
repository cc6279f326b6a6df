#!/usr/bin/env bash
# Runs every benchmark of a build and prints their details, then ONE table
# (figure, value, method, target, verdict) assembled from the lines each
# benchmark prints as FIGURE<TAB>figure<TAB>value<TAB>method<TAB>target<TAB>verdict.
# Numbers, not pass/fail: nothing here ever fails on speed.
#
#	bench/run.sh [build-dir] [benchmark...]
#
# Benchmarks: the C binaries in build/bench/ and bench/*.py (run with
# /usr/bin/python3 against the build's switchboard binary).  Naming some
# runs only those (e.g. `bench/run.sh build/default chat memory`).
set -u
build=${1:-build/default}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
export BENCH_BUILD=$PWD/$build SWITCHBOARD_BIN=$PWD/$build/switchboard
# The worktree benchmark's defaults take minutes; BENCH_WORKTREE_ARGS overrides.
wt_args=${BENCH_WORKTREE_ARGS:--n 3}
figures=$(mktemp)
trap 'rm -f "$figures"' EXIT

selected() {
	local name=$1; shift
	[ ${#sel[@]} -eq 0 ] && return 0
	for s in "${sel[@]}"; do [ "$s" = "$name" ] && return 0; done
	return 1
}
sel=("$@")

run_one() {
	local name=$1; shift
	echo "== $name"
	# Details go to the terminal; FIGURE lines are kept for the table.
	"$@" | tee -a "$figures" | grep -v '^FIGURE' ||
		echo "(benchmark $name exited ${PIPESTATUS[0]})"
	echo
}

for b in "$build"/bench/*; do
	[ -x "$b" ] || continue
	case "$b" in *.d|*.o) continue;; esac
	name=$(basename "$b")
	selected "$name" || continue
	if [ "$name" = worktree ]; then
		# shellcheck disable=SC2086
		run_one "$name" "$b" $wt_args
	else
		run_one "$name" "$b"
	fi
done
for p in bench/*.py; do
	name=$(basename "$p" .py)
	[ "$name" = benchlib ] && continue
	selected "$name" || continue
	run_one "$name" /usr/bin/python3 "$p"
done

echo "== summary ($(nproc) cores, $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ))"
grep '^FIGURE' "$figures" | cut -f2- | awk -F'\t' '
	BEGIN { OFS = " | "; print "figure", "value", "method", "target", "verdict";
		print "---", "---", "---", "---", "---" }
	{ print $1, $2, $3, ($4 == "" ? "-" : $4), ($5 == "" ? "-" : $5) }' |
	sed 's/^/| /; s/$/ |/'
exit 0
