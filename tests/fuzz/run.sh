#!/usr/bin/env bash
# `make fuzz`: run each libFuzzer target (build/fuzz/fuzz_NAME) for
# FUZZ_SECONDS (default 60) on a working corpus under build/fuzz/corpus/NAME,
# seeded from the checked-in tests/fuzz/corpus/NAME (which stays small: add
# only inputs that found a bug, or new seeds from tests/fuzz/make-seeds.sh).
# Crashes land in build/fuzz/crashes/NAME/; reproduce one with
#     build/fuzz/fuzz_NAME build/fuzz/crashes/NAME/crash-...
# and, once fixed, copy it into tests/fuzz/corpus/NAME/ so `make test`
# replays it.  Prints one line per target with the executions run; exits
# non-zero if any target found a crash.  FUZZ_JOBS (default 1) runs that
# many fuzzing processes per target.
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 1
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
[ $# -gt 0 ] || set -- wal codec s3xml httplist
bad=0
for t in "$@"; do
  bin=build/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: $bin missing (make fuzz builds it; needs clang)" >&2; exit 1; }
  work=build/fuzz/corpus/$t crashes=build/fuzz/crashes/$t log=build/fuzz/$t.log
  mkdir -p "$work" "$crashes"
  [ -d "tests/fuzz/corpus/$t" ] && cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null
  dict=(); [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  # -jobs makes libFuzzer write fuzz-N.log into the current directory: do
  # that only when asked for, and inside build/fuzz
  par=(); [ "$jobs" -gt 1 ] && par=(-jobs="$jobs" -workers="$jobs")
  ( cd build/fuzz && TMPDIR=${TMPDIR:-/tmp} "./fuzz_$t" "${dict[@]/#-dict=/-dict=../../}" \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 "${par[@]}" \
      -print_final_stats=1 -artifact_prefix="crashes/$t/" "corpus/$t" ) >"$log" 2>&1
  rc=$?
  execs=$(cat "$log" build/fuzz/fuzz-*.log 2>/dev/null | grep 'stat::number_of_executed_units' |
          awk '{s += $2} END {print s + 0}')
  rm -f build/fuzz/fuzz-*.log
  n=$(ls "$work" | wc -l)
  if [ $rc != 0 ] || ls "$crashes" | grep -q .; then
    echo "fuzz $t: FOUND A CRASH (exit $rc) after $execs runs: $(ls "$crashes" | head -n 3 | tr '\n' ' ')— see $log"
    bad=1
  else
    echo "fuzz $t: ${secs}s, $execs runs, corpus $n inputs, no crash"
  fi
done
exit $bad
