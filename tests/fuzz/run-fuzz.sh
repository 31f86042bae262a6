#!/usr/bin/env bash
# Run one libFuzzer target for a bounded time and report it as one test, in
# cmocka's words, so that tests/run-tests.sh counts it like any test binary.
#
#   tests/fuzz/run-fuzz.sh BUILD-FUZZ/fuzz_NAME [SECONDS]
#
# SECONDS defaults to $FUZZ_SECONDS, else 30. The fuzzer starts from a
# scratch copy of tests/fuzz/corpus/NAME (what it finds is not written into
# the repository) and fails on any crash, sanitizer report, leak or hang
# (libFuzzer exits nonzero). Its full output goes to BUILD-FUZZ/NAME.log;
# here the tail, or more of it on a failure, with the input that failed
# (kept in BUILD-FUZZ/artifacts/) and how to replay it.
set -uo pipefail

bin=${1:?usage: run-fuzz.sh FUZZER [SECONDS]}
secs=${2:-${FUZZ_SECONDS:-30}}
name=$(basename "$bin")
seeds="$(cd "$(dirname "$0")" && pwd)/corpus/${name#fuzz_}"
outdir=$(dirname "$bin")
log="$outdir/$name.log"
artifacts="$outdir/artifacts"

echo "[==========] Running 1 test(s)."
echo "[ RUN      ] $name ($secs s)"
if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
	echo "run-fuzz: $bin or its seed corpus $seeds is missing (make fuzz-build)" >&2
	echo "[  FAILED  ] 1 test(s), listed below:"
	echo "[  FAILED  ] $name"
	exit 1
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/zm-fuzz-$name-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cp "$seeds"/* "$scratch"/
mkdir -p "$artifacts"

# -timeout: one input taking this long is a hang. -max_len: room for frames
# of several records and text replies longer than one record.
"$bin" -max_total_time="$secs" -error_exitcode=77 -timeout=20 -rss_limit_mb=4096 \
	-max_len=131072 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
	"$scratch" >"$log" 2>&1
rc=$?

if [ "$rc" -eq 0 ]; then
	grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log"
	echo "[       OK ] $name"
	echo "[==========] 1 test(s) run."
	echo "[  PASSED  ] 1 test(s)."
	exit 0
fi
tail -n 80 "$log"
found=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
echo "run-fuzz: $name failed (exit status $rc); the whole output is in $log" >&2
[ -n "$found" ] && echo "run-fuzz: the input is $found; replay it with: $bin $found" >&2
echo "[  FAILED  ] $name"
echo "[==========] 1 test(s) run."
echo "[  FAILED  ] 1 test(s), listed below:"
echo "[  FAILED  ] $name"
exit 1
