#!/usr/bin/env bash
# bench/ckpt_ab.sh OLD_WALSHIP NEW_WALSHIP — an app that runs blocking
# checkpoints (TRUNCATE) next to two walship binaries side by side in one run
# (alternating) and alone: how long the sidecar's reader makes them wait.
#   steady  one connection at 1000 tx/s for CK_S seconds (default 5), a
#           wal_checkpoint(TRUNCATE) every 50 commits: each checkpoint call's
#           duration (p50/p99/max), how many completed
#   flood   the same unthrottled on two connections, plus a second process
#           running wal_checkpoint(TRUNCATE) 100 times a second: the writer's
#           commits (the wait the sidecar adds), checkpoints completed, and
#           the second process's checkpoint calls (p99, longest)
# For walship also: barriers taken, barriers not taken (a lock stayed busy),
# peak -wal size, and whether the store restores to the source.  The barrier
# takes the write lock, then the checkpoint lock; an app's RESTART/TRUNCATE
# takes them in the other order, and must also wait for the sidecar's reader
# to reach the WAL's end and then slot 0 (docs/DESIGN.md).  CK_ROUNDS rounds
# (default 3; alone, old, new in turn, old and new swapped in even rounds);
# medians at the end.  CK_WS_ARGS: more sidecar options (e.g. "--wal-max
# 4MiB" for more barriers).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=$(realpath "$1") NEW=$(realpath "$2")
ROUNDS=${CK_ROUNDS:-3} SECS=${CK_S:-5} WS_ARGS=${CK_WS_ARGS:-} SCENS=${CK_SCENARIOS:-steady flood}
WR=$PWD/build/tools/ws-writer
. bench/lib.sh
bench_scratch ckab
declare -A R=()
note() { R[$1]="${R[$1]:-} $2"; }

one() { # one SCENARIO(steady|flood) MODE(alone|old|new) ROUND
  local sc=$1 m=$2 r=$3 d=$T/c mon bin tk=""
  rm -rf "$d"; mkdir -p "$d"
  "$WR" --db "$d/db" --txns 0 >/dev/null
  if [ "$m" = alone ]; then
    "$T/wsmon" --wal "$d/db-wal" >"$d/mon" 2>/dev/null & mon=$!
  else
    bin=$OLD; [ "$m" = new ] && bin=$NEW
    "$T/wsmon" --wal "$d/db-wal" -- "$bin" replicate --log-level debug $WS_ARGS "$d/db" "$d/store" \
      >"$d/mon" 2>"$d/log" & mon=$!
    wait_log "$d/log" "snapshot durable" 30
  fi
  if [ "$sc" = steady ]; then
    "$WR" --db "$d/db" --duration "$SECS" --rate 1000 --workload insert --checkpoint-every 50 \
      --checkpoint-mode truncate --busy-timeout 5000 --synchronous normal --seed "$r" >"$d/w" 2>&1
  else
    "$WR" --db "$d/db" --workload checkpoint --checkpoint-mode truncate --duration "$SECS" --rate 100 \
      --busy-timeout 5000 >"$d/tk" 2>&1 & tk=$!
    "$WR" --db "$d/db" --duration "$SECS" --conns 2 --rate 0 --workload insert --checkpoint-every 50 \
      --checkpoint-mode truncate --busy-timeout 5000 --synchronous normal --seed "$r" >"$d/w" 2>&1
    wait "$tk" || true
  fi
  kill -TERM "$mon"; wait "$mon" || true
  local c ck calls p taken=- nt=- eq=- extra="" cpu=-
  c=$(kv commits <"$d/w"); ck=$(kv checkpoints <"$d/w"); calls=$(kv ckpt_calls <"$d/w")
  p=$(kv peak_wal_bytes <"$d/mon")
  if [ -n "$tk" ]; then
    extra=" truncator_checkpoints=$(kv checkpoints <"$d/tk")/$(kv ckpt_calls <"$d/tk") truncator_ckpt_ms_p99=$(kv ckpt_ms_p99 <"$d/tk") truncator_max=$(kv ckpt_ms_max <"$d/tk")"
    note "$sc-tmax-$m" "$(kv ckpt_ms_max <"$d/tk")"
  fi
  if [ "$m" != alone ]; then
    taken=$(grep -c 'INFO ship: write barrier: wal_bytes' "$d/log" || true)
    nt=$(grep -c 'write barrier not taken\|write lock busy' "$d/log" || true)
    cpu=$(awk -v u="$(kv cpu_user_ms <"$d/mon")" -v s="$(kv cpu_sys_ms <"$d/mon")" 'BEGIN{printf "%.0f", u+s}')
    "$NEW" restore "$d/store" -o "$d/r.db" >/dev/null 2>&1 &&
      [ "$(sqlite3 "$d/db" .dump | md5sum)" = "$(sqlite3 "$d/r.db" .dump | md5sum)" ] && eq=yes || eq=NO
  fi
  echo "$sc round=$r mode=$m commits=$c checkpoints=$ck/$calls ckpt_ms_p50=$(kv ckpt_ms_p50 <"$d/w")" \
    "p99=$(kv ckpt_ms_p99 <"$d/w") max=$(kv ckpt_ms_max <"$d/w")$extra" \
    "peak_wal_MB=$(awk -v p="$p" 'BEGIN{printf "%.1f", p/1e6}') barriers=$taken not_taken=$nt sidecar_cpu_ms=$cpu restore_equal=$eq"
  note "$sc-c-$m" "$c"; note "$sc-p50-$m" "$(kv ckpt_ms_p50 <"$d/w")"; note "$sc-p99-$m" "$(kv ckpt_ms_p99 <"$d/w")"
}

echo "ckpt_ab: old=$OLD ($(sha256sum "$OLD" | cut -c1-12)) new=$NEW ($(sha256sum "$NEW" | cut -c1-12)) rounds=$ROUNDS loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "cmd: steady: ws-writer --duration $SECS --rate 1000 --workload insert --checkpoint-every 50 --checkpoint-mode truncate --busy-timeout 5000"
echo "cmd: flood: ws-writer --duration $SECS --conns 2 --rate 0 (otherwise the same) + ws-writer --workload checkpoint --checkpoint-mode truncate --duration $SECS --rate 100"
echo "cmd: walship replicate --log-level debug $WS_ARGS DB STORE; checkpoints=completed/calls; ckpt_ms = each call's duration"
for r in $(seq 1 "$ROUNDS"); do
  for sc in $SCENS; do
    one "$sc" alone "$r"
    if [ $((r % 2)) = 1 ]; then one "$sc" old "$r"; one "$sc" new "$r"; else one "$sc" new "$r"; one "$sc" old "$r"; fi
  done
done
for sc in $SCENS; do
  for m in alone old new; do
    echo "median $sc $m: commits $(median <<<"${R[$sc-c-$m]}") checkpoint ms p50 $(median <<<"${R[$sc-p50-$m]}") p99 $(median <<<"${R[$sc-p99-$m]}")  (commits:${R[$sc-c-$m]}; p99:${R[$sc-p99-$m]})"
    if [ -n "${R[$sc-tmax-$m]:-}" ]; then echo "  truncator's longest checkpoint, ms, $sc $m:${R[$sc-tmax-$m]}"; fi
  done
done
