#!/usr/bin/env bash
# bench/cpu_ab.sh OLD_WALSHIP NEW_WALSHIP — the sidecar's own CPU, two binaries
# side by side in one run, alternating: the writer (build/tools/ws-writer, one
# INSERT per transaction) runs CPU_S+7 seconds at each rate of CPU_RATES
# (default "100 1000") next to `walship replicate --sync-interval CPU_IV`
# (default 1s); the sidecar's on-CPU time over a CPU_S (default 10) second
# window starting 5 s in (so start-up and the first snapshot are excluded) is
# read from /proc/PID/task/*/schedstat (all threads), and reported per 1000
# transactions.  The rate "idle" is a writer that makes 200 commits and stops:
# the sidecar's CPU over the window is then reported per second of idling.
# CPU_ROUNDS rounds (default 4); medians at the end.  With
# CPU_STRACE=1 each run is also counted by `strace -f -c` over the window
# (slower; the counts, not the times, are the point): syscalls per 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "$1") NEW=$(realpath "$2")
ROUNDS=${CPU_ROUNDS:-4} RATES=${CPU_RATES:-"100 1000"} IV=${CPU_IV:-1s} S=${CPU_S:-10}
WR=$PWD/build/tools/ws-writer
. bench/lib.sh
bench_scratch cpu
declare -A R=()

cpu_ns() { awk '{s += $1} END {print s}' /proc/"$1"/task/*/schedstat; }

one() { # one RATE old|new
  local rate=$1 m=$2 bin=$OLD d=$T/r sc wr a b st=""
  [ "$m" = new ] && bin=$NEW
  rm -rf "$d"; mkdir -p "$d"
  "$WR" --db "$d/db" --txns 0 >/dev/null
  "$bin" replicate --sync-interval "$IV" "$d/db" "$d/store" 2>"$d/log" & sc=$!
  wait_log "$d/log" "snapshot durable" 30
  if [ "$rate" = idle ]; then
    "$WR" --db "$d/db" --txns 200 --rate 0 --workload insert --seed 1 >"$d/w" 2>&1 & wr=$!
  else
    "$WR" --db "$d/db" --duration $((S + 7)) --rate "$rate" --workload insert \
      --synchronous normal --seed 1 >"$d/w" 2>&1 & wr=$!
  fi
  sleep 5
  if [ "${CPU_STRACE:-0}" = 1 ]; then
    timeout "$S" strace -f -c -p "$sc" -o "$T/strace" 2>/dev/null || true
    st=" syscalls=$(awk '$NF == "total" {print $(NF-2)}' "$T/strace")"
  else
    a=$(cpu_ns "$sc"); sleep "$S"; b=$(cpu_ns "$sc")
  fi
  wait "$wr"; kill -TERM "$sc"; wait "$sc" || true
  if [ -z "$st" ]; then
    local per unit=sidecar_cpu_ms_per_1000tx
    if [ "$rate" = idle ]; then
      unit=sidecar_cpu_ms_per_s
      per=$(awk -v a="$a" -v b="$b" -v s="$S" 'BEGIN{printf "%.3f", (b-a)/1e6/s}')
    else
      per=$(awk -v a="$a" -v b="$b" -v r="$rate" -v s="$S" 'BEGIN{printf "%.1f", (b-a)/1e6/(r*s)*1000}')
    fi
    echo "rate=$rate mode=$m $unit=$per objects=$(nobj "$d/store")"
    R[$rate-$m]="${R[$rate-$m]:-} $per"
  else
    echo "rate=$rate mode=$m$st objects=$(nobj "$d/store")"
  fi
}

echo "cpu_ab: old=$OLD ($(sha256sum "$OLD" | cut -c1-12)) new=$NEW ($(sha256sum "$NEW" | cut -c1-12))" \
  "interval=$IV window=${S}s rounds=$ROUNDS loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  ord="old new"; [ $((r % 2)) = 0 ] && ord="new old"   # run order, swapped every other round
  for rate in $RATES; do for m in $ord; do one "$rate" "$m"; done; done
done
[ "${CPU_STRACE:-0}" = 1 ] && exit 0
echo "--- medians over $ROUNDS rounds (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
for rate in $RATES; do for m in old new; do
  u="ms per 1000 tx"; [ "$rate" = idle ] && u="ms per s idle"
  echo "rate=$rate $m: sidecar CPU $(median <<<"${R[$rate-$m]}") $u (runs:${R[$rate-$m]})"
done; done
