#!/usr/bin/env bash
# bench/workloads.sh [WALSHIP] — the load generator's other shapes, unthrottled,
# alone vs next to the sidecar (defaults), alternating, WL_ROUNDS rounds of
# WL_S seconds (default 3 x 8 s; WL_WS_ARGS: more arguments for replicate):
#   blob    inserts of 1-3 page blobs (overflow pages)
#   update  UPDATEs of random rows of a small hot table (the same pages again
#           and again: what page deltas are for)
# Per run: commits, peak -wal size, shipped during the burst, store bytes per
# MB of page images shipped, and a restore of the store compared with the
# database (.sha3sum).  Medians at the end.  `make bench` runs it as (b6).
set -euo pipefail
cd "$(dirname "$0")/.."
W=$(realpath "${1:-build/walship}")
ROUNDS=${WL_ROUNDS:-3} S=${WL_S:-8}
WR=$PWD/build/tools/ws-writer
. bench/lib.sh
bench_scratch wl
declare -A R=()

run() { # run WORKLOAD MODE(alone|walship) ROUND
  local wl=$1 m=$2 r=$3 d=$T/r mon
  rm -rf "$d"; mkdir -p "$d"
  "$WR" --db "$d/db" --txns 0 >/dev/null
  if [ "$wl" = update ]; then # a hot table to update: 20,000 rows first
    "$WR" --db "$d/db" --txns 20000 --rate 0 --workload insert --seed 9 >/dev/null
  fi
  if [ "$m" = alone ]; then
    "$T/wsmon" --wal "$d/db-wal" >"$d/mon" 2>/dev/null & mon=$!
  else
    "$T/wsmon" --wal "$d/db-wal" -- "$W" replicate ${WL_WS_ARGS:-} "$d/db" "$d/store" >"$d/mon" 2>"$d/log" & mon=$!
    wait_log "$d/log" "snapshot durable" 30
  fi
  "$WR" --db "$d/db" --duration "$S" --rate 0 --workload "$wl" --synchronous normal --seed "$r" >"$d/w"
  local durable=""  # highest TXID in the store when the writer stopped
  [ "$m" = walship ] && durable=$(last_txid "$d/store")
  kill -TERM "$mon"; wait "$mon" || true
  local c p line
  c=$(kv commits <"$d/w"); p=$(kv peak_wal_bytes <"$d/mon")
  R[$wl-$m]="${R[$wl-$m]:-} $c"
  line="workload=$wl mode=$m round=$r commits=$c busy=$(kv busy <"$d/w") peak_wal_MB=$(awk -v p="$p" 'BEGIN{printf "%.1f", p/1e6}')"
  if [ "$m" = walship ]; then
    local sb pages same
    sb=$(find "$d/store" -type f -name '*.seg' -printf '%s\n' | awk '{s+=$1} END{print s+0}')
    pages=$(seg_pages "$d/store")
    "$W" restore "$d/store" -o "$d/out" --log-level warn >/dev/null
    same=$([ "$(sqlite3 "$d/db" .sha3sum)" = "$(sqlite3 "$d/out" .sha3sum)" ] && echo yes || echo NO)
    line="$line shipped_during_burst=$(awk -v a="$durable" -v c="$c" 'BEGIN{printf "%.1f%%", 100*(a-1)/c}') segment_bytes=$sb page_records=$pages"
    line="$line segment_bytes_per_page=$(awk -v b="$sb" -v p="$pages" 'BEGIN{if (p) printf "%.0f", b/p; else print "-"}') barriers=$(grep -c 'write barrier: wal_bytes' "$d/log" || true) restore_equal=$same"
    case " ${WL_WS_ARGS:-} " in *" debug "*|*"=debug "*) # logged at debug only
      line="$line barrier_busy=$(grep -c 'write barrier not taken' "$d/log" || true)" ;; esac
    R[$wl-wal]="${R[$wl-wal]:-} $(awk -v p="$p" 'BEGIN{printf "%.1f", p/1e6}')"
    # a WAL past 64 MB is a keep-up failure: keep the sidecar's log for a look
    if [ "${p:-0}" -gt 64000000 ]; then
      mkdir -p "${BENCH_OUT:-build/bench}"
      cp "$d/log" "${BENCH_OUT:-build/bench}/wl-$wl-round$r-sidecar.log"
      line="$line sidecar_log=${BENCH_OUT:-build/bench}/wl-$wl-round$r-sidecar.log"
    fi
  fi
  echo "$line"
}

echo "workloads: walship=$W ($(sha256sum "$W" | cut -c1-12)) rounds=$ROUNDS seconds=$S loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cmd: ws-writer --db DB --duration $S --rate 0 --workload W --synchronous normal --seed R; walship replicate DB STORE"
for r in $(seq 1 "$ROUNDS"); do
  for wl in blob update; do for m in alone walship; do run "$wl" "$m" "$r"; done; done
done
for wl in blob update; do
  a=$(median <<<"${R[$wl-alone]}") b=$(median <<<"${R[$wl-walship]}")
  echo "median $wl: alone $a, with walship $b commits (x alone $(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", b/a}')), peak WAL $(median <<<"${R[$wl-wal]}") MB (runs:${R[$wl-wal]})"
done
