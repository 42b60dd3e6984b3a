#!/usr/bin/env bash
# bench/ab.sh OLD_WALSHIP NEW_WALSHIP — two walship binaries side by side in
# one run, alternating, against the same writer (build/tools/ws-writer, the
# "app") and the same machine state:
#   flood  unthrottled insert writer for AB_FLOOD_S seconds at 1 KiB, 4 KiB and
#          64 KiB pages: commits (the writer's speed), peak -wal file size,
#          write barriers; and the writer alone
#   fixed  the writer at 1000 tx/s for AB_FIXED_S seconds: its own CPU (user +
#          sys from wait4(), microseconds) alone, next to each binary with the
#          default 1 s interval and with --sync-interval 0
#   lag    bench/lagprobe at each rate of AB_LAG_RATES (default "1000 10000")
#          for AB_LAG_S seconds with --sync-interval 0: commit -> durable p99,
#          and the objects made (AB_LAG_RATES="" skips it)
# AB_ROUNDS rounds (default 3; old runs before new in odd rounds, after it in
# even ones); medians at the end.  Run after `make`; uses
# bench/wsmon.c (built here).  Output: one line per run, then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "$1") NEW=$(realpath "$2")
ROUNDS=${AB_ROUNDS:-3} FLOOD_S=${AB_FLOOD_S:-8} FIXED_S=${AB_FIXED_S:-5}
WR=$PWD/build/tools/ws-writer
. bench/lib.sh
bench_scratch ab
LAG_RATES=${AB_LAG_RATES-"1000 10000"} LAG_S=${AB_LAG_S:-5}
[ -n "$LAG_RATES" ] && cc -std=c11 -D_GNU_SOURCE -O2 -o "$T/lagprobe" bench/lagprobe.c -lsqlite3 -lpthread
declare -A R=()
note() { R[$1]="${R[$1]:-} $2"; }

flood() { # flood PS MODE(alone|old|new)
  local ps=$1 m=$2 d=$T/f mon bin
  rm -rf "$d"; mkdir -p "$d"
  "$WR" --db "$d/db" --page-size "$ps" --txns 0 >/dev/null
  if [ "$m" = alone ]; then
    "$T/wsmon" --wal "$d/db-wal" >"$d/mon" 2>/dev/null & mon=$!
  else
    bin=$OLD; [ "$m" = new ] && bin=$NEW
    "$T/wsmon" --wal "$d/db-wal" -- "$bin" replicate "$d/db" "$d/store" >"$d/mon" 2>"$d/log" & mon=$!
    wait_log "$d/log" "snapshot durable" 30
  fi
  "$WR" --db "$d/db" --page-size "$ps" --duration "$FLOOD_S" --rate 0 --workload insert \
    --synchronous normal --seed 1 >"$d/w"
  kill -TERM "$mon"; wait "$mon" || true
  local c p b
  c=$(kv commits <"$d/w"); p=$(kv peak_wal_bytes <"$d/mon")
  b=$( [ "$m" = alone ] && echo - || grep -c 'write barrier' "$d/log" || true)
  echo "flood ps=$ps mode=$m commits=$c peak_wal_MB=$(awk -v p="$p" 'BEGIN{printf "%.1f", p/1e6}') barriers=$b"
  note "flood-$ps-$m-commits" "$c"; note "flood-$ps-$m-wal" "$(awk -v p="$p" 'BEGIN{printf "%.1f", p/1e6}')"
}

fixed() { # fixed MODE(alone|old|new) INTERVAL
  local m=$1 iv=$2 d=$T/x sc="" bin
  rm -rf "$d"; mkdir -p "$d"
  "$WR" --db "$d/db" --txns 0 >/dev/null
  if [ "$m" != alone ]; then
    bin=$OLD; [ "$m" = new ] && bin=$NEW
    "$bin" replicate --sync-interval "$iv" "$d/db" "$d/store" 2>"$d/log" & sc=$!
    wait_log "$d/log" "snapshot durable" 30
  fi
  "$T/wsmon" --wal "$d/db-wal" -- "$WR" --db "$d/db" --duration "$FIXED_S" --rate 1000 --workload insert \
    --synchronous normal --seed 1 >"$d/w" 2>&1
  [ -n "$sc" ] && { kill -TERM "$sc"; wait "$sc" || true; }
  local c cpu
  c=$(kv commits <"$d/w")
  cpu=$(awk -v u="$(kv cpu_user_ms <"$d/w")" -v s="$(kv cpu_sys_ms <"$d/w")" -v c="$c" 'BEGIN{printf "%.1f", (u+s)*1000/c}')
  echo "fixed 1000tx/s mode=$m interval=$iv commits=$c writer_cpu_ms_per_1000tx=$cpu"
  note "fixed-$m-$iv" "$cpu"
}

lag() { # lag RATE MODE(old|new)
  local rate=$1 m=$2 d=$T/l bin=$OLD out f
  [ "$m" = new ] && bin=$NEW
  rm -rf "$d"; mkdir -p "$d"
  out=$("$T/lagprobe" --db "$d/app.db" --store "$d/store" --rate "$rate" --duration "$LAG_S" \
    --log "$d/log" -- "$bin" replicate --log-level debug --sync-interval 0 "$d/app.db" "$d/store")
  f=$(grep 'lag_durable_ms' <<<"$out")
  echo "lag $rate tx/s sync 0 mode=$m p50=$(kv p50 <<<"$f") p99=$(kv p99 <<<"$f") max=$(kv max <<<"$f") objects=$(nobj "$d/store")"
  note "lag-$rate-$m" "$(kv p99 <<<"$f")"
}

echo "ab: old=$OLD ($(sha256sum "$OLD" | cut -c1-12)) new=$NEW ($(sha256sum "$NEW" | cut -c1-12)) rounds=$ROUNDS loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  # old and new swap places every other round: run order alone moved a flood's
  # commits by 2-3 % in session 7 (docs/benchmarks.md S7.2)
  ord="old new"; [ $((r % 2)) = 0 ] && ord="new old"
  for ps in 1024 4096 65536; do for m in alone $ord; do flood "$ps" "$m"; done; done
  fixed alone 1s
  for iv in 1s 0; do for m in $ord; do fixed "$m" "$iv"; done; done
  for rate in $LAG_RATES; do for m in $ord; do lag "$rate" "$m"; done; done
done
echo "--- medians over $ROUNDS rounds (loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
for ps in 1024 4096 65536; do
  a=$(median <<<"${R[flood-$ps-alone-commits]}")
  for m in old new; do
    c=$(median <<<"${R[flood-$ps-$m-commits]}")
    echo "flood ps=$ps $m: commits $c (x alone $(awk -v c="$c" -v a="$a" 'BEGIN{printf "%.3f", c/a}')), peak WAL $(median <<<"${R[flood-$ps-$m-wal]}") MB (runs:${R[flood-$ps-$m-wal]})"
  done
done
a=$(median <<<"${R[fixed-alone-1s]}")
echo "fixed alone: writer CPU $a ms per 1000 tx (runs:${R[fixed-alone-1s]})"
for iv in 1s 0; do for m in old new; do
  c=$(median <<<"${R[fixed-$m-$iv]}")
  echo "fixed $m interval=$iv: writer CPU $c ms per 1000 tx (x alone $(awk -v c="$c" -v a="$a" 'BEGIN{printf "%.3f", c/a}'); runs:${R[fixed-$m-$iv]})"
done; done
for rate in $LAG_RATES; do for m in old new; do
  echo "lag $rate tx/s sync 0 $m: p99 $(median <<<"${R[lag-$rate-$m]}") ms (runs:${R[lag-$rate-$m]})"
done; done
