#!/usr/bin/env bash
# The test runner behind `make test` (and `make unit`, which passes --unit-only).
#
# Runs every build/tests/test_* binary, then every tests/integration/*.sh in
# turn, each under a time limit, and counts their "PASS name" / "FAIL name: ..."
# lines.  A program that exits non-zero without printing a FAIL line, times
# out, or prints no result at all counts as one failure named after it.
# Output of each program goes to build/test-logs/<name>.log; the tail of the
# log of anything that failed is printed for CI.  The last line is always
# "N passed, N failed"; the exit status is non-zero if anything failed.
#
# After them, the short run of tests/torture/torture.sh, as "torture".
# Between the two, every fuzz replay driver (build/asan/fuzz/replay_NAME,
# made by `make fuzz-replay`) replays its checked-in corpus tests/fuzz/corpus/NAME
# under ASan+UBSan, as "fuzz_replay_NAME".
#
# Environment: WS_UNIT_TIMEOUT (default 120 s), WS_IT_TIMEOUT (default 300 s),
# WS_ONLY=<regex> to run only the matching programs, WS_BUILD=<dir> to test
# another build tree (default build; `make asan` uses build/asan): its unit
# tests, and its walship and ws-writer for the integration scripts.
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
BUILD=${WS_BUILD:-build}
BUILD=${BUILD%/}
LOGDIR=$BUILD/test-logs
export WALSHIP=$PWD/$BUILD/walship WRITER=$PWD/$BUILD/tools/ws-writer
UNIT_TIMEOUT=${WS_UNIT_TIMEOUT:-120}
IT_TIMEOUT=${WS_IT_TIMEOUT:-300}
ONLY=${WS_ONLY:-}
unit_only=0
case "${1:-}" in
  --unit-only) unit_only=1 ;;
  "") ;;
  *) echo "usage: tests/run.sh [--unit-only]" >&2; exit 2 ;;
esac

passed=0
failed=0
tpid=""
interrupted() {
  if [ -n "$tpid" ]; then kill -TERM -- "-$tpid" 2>/dev/null; kill -TERM "$tpid" 2>/dev/null; wait "$tpid"; fi
  echo "interrupted; $passed passed, $failed failed so far" >&2
  exit 130
}
trap interrupted INT TERM
mkdir -p "$LOGDIR"
suite_t0=$SECONDS

# run_one NAME TIMEOUT COMMAND...: run, stream its PASS/FAIL lines, count them.
run_one() {
  local name=$1 limit=$2; shift 2
  local log=$LOGDIR/$name.log rc np nf t0=$SECONDS
  echo "== $name"
  rm -f "$log"
  # timeout leads its own process group and signals all of it, so a
  # script's background processes stop with it (its EXIT trap runs on
  # SIGTERM).  Run in the background so that ^C can be passed on (below).
  timeout -k 15 "$limit" "$@" >"$log" 2>&1 &
  tpid=$!
  wait "$tpid"
  rc=$?
  tpid=""
  grep -E '^(PASS|FAIL) ' "$log" 2>/dev/null
  np=$(grep -cE '^PASS ' "$log" 2>/dev/null); np=${np:-0}
  nf=$(grep -cE '^FAIL ' "$log" 2>/dev/null); nf=${nf:-0}
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "FAIL $name: timed out after ${limit}s"
    nf=$((nf + 1))
  elif [ "$rc" != 0 ] && [ "$nf" = 0 ]; then
    echo "FAIL $name: exited $rc without reporting a failure"
    nf=1
  elif [ "$np" = 0 ] && [ "$nf" = 0 ]; then
    echo "FAIL $name: reported no result"
    nf=1
  fi
  passed=$((passed + np))
  failed=$((failed + nf))
  echo "   $name: $((SECONDS - t0))s"   # the suite must stay under 10 minutes
  if [ "$nf" != 0 ]; then
    echo "---- last 50 lines of $log"
    tail -n 50 "$log"
    echo "----"
  fi
}

selected() { [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]; }

shopt -s nullglob
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  name=$(basename "$t")
  selected "$name" || continue
  run_one "$name" "$UNIT_TIMEOUT" "$t"
done

# The corpus replays: a sanitizer report or abort() fails the driver.
for t in build/asan/fuzz/replay_*; do
  [ -x "$t" ] || continue
  name=${t##*/replay_}
  [ -d "tests/fuzz/corpus/$name" ] || continue
  selected "fuzz_replay_$name" || continue
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    run_one "fuzz_replay_$name" "$UNIT_TIMEOUT" bash -c '"$1" "$2" && echo "PASS fuzz_replay/$3"' \
      replay "$t" "tests/fuzz/corpus/$name" "$name"
done

if [ $unit_only = 0 ]; then
  for s in tests/integration/*.sh; do
    name=$(basename "$s" .sh)
    [ "$name" = lib ] && continue
    selected "$name" || continue
    run_one "$name" "$IT_TIMEOUT" bash "$s"
  done
  # The short torture run (`make torture` runs the long one).
  if selected torture; then run_one torture "$IT_TIMEOUT" bash tests/torture/torture.sh; fi
  # Regression test of the torture campaign's data-loss finding; it needs
  # gdb to place a write in a window of a few microseconds.
  if selected repro_reset_after_attach; then
    if command -v gdb >/dev/null; then
      run_one repro_reset_after_attach "$IT_TIMEOUT" bash tests/torture/repro_reset_after_attach.sh
    else echo "== repro_reset_after_attach: skipped (no gdb)"; fi
  fi
fi

echo "suite took $((SECONDS - suite_t0))s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
