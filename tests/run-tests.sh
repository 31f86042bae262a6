#!/usr/bin/env bash
# Run zenmon's tests: every unit test binary, then every integration test
# binary (these start a real zenmond and need root and BPF). Prints each
# binary's cmocka output and ends with one line: "N passed, N failed".
# With $ZM_FUZZ_BUILD set (make test sets it), the fuzzers in it run after
# the unit tests, $FUZZ_SECONDS each, one test apiece (tests/fuzz/run-fuzz.sh).
#
#   tests/run-tests.sh [--unit|--integration] [BUILD_DIR]
#
# Under CI=true a skipped test is a failure: CI must prove every capability.
set -uo pipefail

which=all
case "${1:-}" in
--unit) which=unit; shift ;;
--integration) which=integration; shift ;;
esac
build=${1:-build}
export ZM_BUILD=$build

passed=0 failed=0 skipped=0
failed_bins=()

# Pins survive an agent's exit by design (its programs stay attached), so a
# test agent killed with its test (a timeout, a crash) leaves a pin dir whose
# programs would run on every exit from then on. The dir names carry the
# pid of the test that made them: sweep those whose test is gone.
for dir in /sys/fs/bpf/zm-it-*; do
	[ -d "$dir" ] || continue
	pid=${dir##*/zm-it-}
	pid=${pid%%-*}
	case "$pid" in ''|*[!0-9]*) continue ;; esac
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "run-tests: removing $dir, left by test process $pid (gone)"
		rm -rf "$dir"
	fi
done

run_one() {
	local bin="$*" out rc p f s
	out=$(mktemp)
	echo "== $bin"
	timeout --kill-after=10 600 "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | tail -n 1)
	p=${p:-0} f=${f:-0} s=${s:-0}
	# A binary that died (signal, sanitizer, timeout) before its summary
	# counts as one failure at least.
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "run-tests: $bin exited with status $rc" >&2
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	[ "$f" -eq 0 ] || failed_bins+=("$bin")
	rm -f "$out"
}

if [ "$which" != integration ]; then
	for t in "$build"/tests/test_*; do
		[ -x "$t" ] && run_one "$t"
	done
	for t in ${ZM_FUZZ_BUILD:+"$ZM_FUZZ_BUILD"/fuzz_*}; do
		[ -x "$t" ] && run_one tests/fuzz/run-fuzz.sh "$t"
	done
fi

if [ "$which" != unit ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "run-tests: integration tests need root (they load BPF programs and start zenmond): run make test as root" >&2
		if [ "${CI:-}" = true ]; then
			failed=$((failed + 1))
		else
			skipped=$((skipped + 1))
		fi
	else
		for t in "$build"/tests/it_*; do
			[ -x "$t" ] && run_one "$t"
		done
	fi
fi

echo
[ ${#failed_bins[@]} -eq 0 ] || echo "failed: ${failed_bins[*]}"
if [ "$skipped" -gt 0 ] && [ "${CI:-}" = true ]; then
	echo "run-tests: $skipped test(s) skipped under CI=true: a missing capability is a failure here" >&2
	failed=$((failed + skipped))
	skipped=0
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ] && [ $((passed + failed)) -gt 0 ]
