#!/usr/bin/env bash
# Runs every unit binary and every end-to-end script for each build dir given
# (e.g. build/default build/asan) and prints one summary line at the end:
#   N passed, N failed
# The builds run side by side (SB_TEST_SERIAL=1: one after the other): the
# end-to-end tests mostly wait on daemons and fakes, not on the CPU, so two
# builds at once take little more than one.  Each build's lines are printed
# together when it is done.
# Each test prints "PASS name" or "FAIL name: why"; a binary or script that
# dies without saying so counts as one failure of its own.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
passed=0
failed=0
failures=()
logdir=$(mktemp -d /tmp/sb-test-logs.XXXXXX)

run_one() {	# label, command...
	local label=$1; shift
	local out="$logdir/$(echo "$label" | tr '/ ' '__').log"
	local start=$SECONDS
	timeout -k 5 300 "$@" >"$out" 2>&1
	local rc=$?
	local p f
	p=$(grep -c '^PASS ' "$out")
	f=$(grep -c '^FAIL ' "$out")
	passed=$((passed + p))
	failed=$((failed + f))
	grep '^FAIL ' "$out" | sed "s|^|  [$label] |"
	[ "$rc" -ne 0 ] || [ "$f" -gt 0 ] && echo "$label $out" >>"$logdir/failed.list"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		failed=$((failed + 1))
		echo "  [$label] FAIL exited $rc without a FAIL line; last lines:"
		tail -n 20 "$out" | sed 's/^/      /'
	elif [ "$f" -gt 0 ]; then
		echo "  [$label] log: $out"
	fi
	printf '%-40s %3d passed %3d failed  (%ds)\n' "$label" "$p" "$f" $((SECONDS - start))
}

run_build() {	# build dir: its lines on stdout, "passed failed" in $logdir/<variant>.count
	local build=$1 variant t passed=0 failed=0
	variant=$(basename "$build")
	export SWITCHBOARD_BIN="$PWD/$build/switchboard"
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
	# Leaks inside system libraries we cannot fix (see the file).
	export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=24
	for t in "$build"/tests/test-*; do
		[ -x "$t" ] || continue
		case "$t" in *.d) continue;; esac
		run_one "$variant/$(basename "$t")" "$t"
	done
	for t in tests/e2e/test_*.py; do
		[ -f "$t" ] || continue
		run_one "$variant/e2e/$(basename "$t" .py)" "$PY" "$t"
	done
	echo "$passed $failed" >"$logdir/$variant.count"
}

pids=()
for build in "$@"; do
	variant=$(basename "$build")
	if [ "${SB_TEST_SERIAL:-0}" = 1 ]; then
		run_build "$build" >"$logdir/$variant.out"
		cat "$logdir/$variant.out"
	else
		run_build "$build" >"$logdir/$variant.out" &
		pids+=($!)
	fi
done
for p in "${pids[@]}"; do
	wait "$p"
done
passed=0
failed=0
for build in "$@"; do
	variant=$(basename "$build")
	[ "${SB_TEST_SERIAL:-0}" = 1 ] || cat "$logdir/$variant.out"
	if [ -f "$logdir/$variant.count" ]; then
		read -r p f <"$logdir/$variant.count"
		passed=$((passed + p))
		failed=$((failed + f))
	else
		echo "  [$variant] FAIL its runner died"
		failed=$((failed + 1))
	fi
done
# CI shows only the tail of what we print: say again what failed, with the
# end of its log, just above the summary, where a red run is read.
if [ -s "$logdir/failed.list" ]; then
	echo
	echo "failures:"
	while read -r label out; do
		echo "  [$label]"
		grep '^FAIL ' "$out" | sed 's/^/    /'
		echo "    last lines of its log:"
		tail -n 30 "$out" | cut -c1-300 | sed 's/^/      /'
	done <"$logdir/failed.list"
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
