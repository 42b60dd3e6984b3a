#!/usr/bin/env bash
# Proves the cycle barrier (docs/DESIGN.md, "Not starving the app"): next to
# a writer that never pauses long enough for the sidecar's checkpoint (1000
# small inserts a second, SQLite's own autocheckpoint on), the WAL restarts
# about once per sync instead of running on to --wal-max, and the store
# restores exactly.  Its guards: none with --wal-max 0; none for a store
# whose commits are slow (there the lock would span an upload); and under
# an app reader that keeps the WAL from restarting, at most one, not one
# per sync.  Sizes and counts only, no timing.
#   Without the cycle barrier the WAL file reached ~20 MB here (16 MiB
# --wal-max: the ordinary barrier, every ~4.5 s); with it ~4.4 MB, the
# first cycle ~6.7 MB (docs/benchmarks.md S14).
. "$(dirname "$0")/lib.sh"

WOPTS=(--workload insert --duration 5 --rate 1000 --synchronous normal)
# the bound: three times SQLite's 1000-frame autocheckpoint with 4 KiB pages (a
# cycle runs ~1100 frames, the first ~1600; under CPU load a sync may miss one)
BOUND=$((3 * 1000 * (4096 + 24) + 32))

cycles() { grep -c 'write barrier: cycle' "$SIDECAR_LOG"; }

steady() {
  local db=$WORK/steady.db store=$WORK/steady.store wmax n busy
  make_db "$db" || return
  start_sidecar "$db" "$store" --log-level debug || return
  wait_for_log 'snapshot durable' "$SIDECAR_LOG" 30
  start_size_sampler "$db-wal"
  run_writer steady --db "$db" "${WOPTS[@]}" --seed 61
  wmax=$(stop_size_sampler)
  busy=$(sed -n 's/^writer: .* busy=\([0-9]*\).*/\1/p' "$WORK/writer.steady.log")
  stop_sidecar steady_sigterm_exit0
  n=$(cycles)
  echo "steady: largest -wal $wmax bytes, $n cycle barriers, $WRITER_COMMITS commits, busy=$busy"
  # ~5 syncs; each after the first ends its cycle with one
  if [ "$n" -ge 2 ]; then pass steady_cycle_barriers
  else fail steady_cycle_barriers "$n cycle barriers in 5 s at 1000 tx/s"; fi
  if [ "$wmax" -gt 0 ] && [ "$wmax" -lt "$BOUND" ]; then pass steady_wal_restarts_each_cycle
  else fail steady_wal_restarts_each_cycle "largest -wal seen: $wmax bytes (bound $BOUND)"; fi
  check_eq steady_writer_never_busy 0 "${busy:-?}"
  check_restore steady "$store" "$db"
}
steady

# --wal-max 0: the user asked that writers are never held.
walmax0() {
  local db=$WORK/walmax0.db store=$WORK/walmax0.store
  make_db "$db" || return
  start_sidecar "$db" "$store" --log-level debug --wal-max 0 || return
  wait_for_log 'snapshot durable' "$SIDECAR_LOG" 30
  run_writer walmax0 --db "$db" "${WOPTS[@]}" --seed 62
  stop_sidecar walmax0_sigterm_exit0
  check_eq walmax0_no_barrier 0 "$(grep -c 'write barrier:' "$SIDECAR_LOG")"
  check_restore walmax0 "$store" "$db"
}
walmax0

# A store whose commits take ~60 ms (two 30 ms fsyncs per object,
# tests/preload/slowsync.so): the tail's upload would be the writers' wait.
slowstore() {
  local db=$WORK/slow.db store=$WORK/slow.store so=$PRELOAD_DIR/slowsync.so n
  if ldd "$WALSHIP" 2>/dev/null | grep -q libasan; then
    echo "slowstore: skipped under ASan (its runtime must be the first preloaded library)"
    return
  fi
  if [ ! -f "$so" ]; then fail slowstore_no_cycle_barrier "no $so (make all builds it)"; return; fi
  make_db "$db" || return
  mkdir -p "$store"
  WS_SLOW_SYNC_MS=30 WS_SLOW_SYNC_PREFIX=$store LD_PRELOAD=$so \
    start_sidecar "$db" "$store" --log-level debug || return
  wait_for_log 'snapshot durable' "$SIDECAR_LOG" 30
  run_writer slowstore --db "$db" "${WOPTS[@]}" --seed 63
  stop_sidecar slowstore_sigterm_exit0
  n=$(cycles)
  echo "slowstore: $n cycle barriers"
  check_eq slowstore_no_cycle_barrier 0 "$n"
  check_restore slowstore "$store" "$db"
}
slowstore

# Two app readers in turn, each renewing its read transaction every 10 ms
# and beginning the next before the other ends, always hold a slot >= 1: the
# WAL cannot restart.  A cycle barrier may still backfill everything (a
# reader that began during it sees its end); then the WAL does not restart,
# and the next sync sees the same cycle.  Exactly one is taken: after it,
# none for 10 s (the case runs 5).
reader() {
  local db=$WORK/reader.db store=$WORK/reader.store n rpid rt
  make_db "$db" || return
  start_sidecar "$db" "$store" --log-level debug || return
  wait_for_log 'snapshot durable' "$SIDECAR_LOG" 30
  cat >"$WORK/reader.py" <<'PY'
import os, sqlite3, sys, time
c = [sqlite3.connect(sys.argv[1], isolation_level=None) for _ in range(2)]
c[0].execute("BEGIN"); c[0].execute("SELECT count(*) FROM sqlite_master").fetchone()
n, i = 0, 0
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
    j = 1 - i
    c[j].execute("BEGIN"); c[j].execute("SELECT count(*) FROM sqlite_master").fetchone()
    c[i].execute("COMMIT")
    i, n = j, n + 1
print("reader: transactions=%d" % n)
PY
  python3 "$WORK/reader.py" "$db" "$WORK/stop-reader" >"$WORK/reader.log" 2>&1 &
  rpid=$!
  _BG_NAME[$rpid]=reader
  run_writer reader --db "$db" "${WOPTS[@]}" --seed 64
  touch "$WORK/stop-reader"
  wait "$rpid"
  unset "_BG_NAME[$rpid]"
  stop_sidecar reader_sigterm_exit0
  rt=$(sed -n 's/^reader: transactions=\([0-9]*\)/\1/p' "$WORK/reader.log")
  n=$(cycles)
  echo "reader: $n cycle barriers, reader transactions ${rt:-?}"
  if [ "${rt:-0}" -ge 100 ]; then pass reader_ran
  else fail reader_ran "reader: $(tail -n 2 "$WORK/reader.log" | tr '\n' '|')"; fi
  check_eq reader_one_cycle_barrier 1 "$n"
  check_restore reader "$store" "$db"
}
reader

# The app also runs TRUNCATE checkpoints (every 50 commits), which wait
# for our reader: no cycle barrier while one waits, and nothing may be
# lost across the resets they and the cycle barriers make (the pin that
# leaves read-lock 0 without a sync, DESIGN.md).
truncating() {
  local db=$WORK/trunc.db store=$WORK/trunc.store
  make_db "$db" || return
  start_sidecar "$db" "$store" --log-level debug || return
  wait_for_log 'snapshot durable' "$SIDECAR_LOG" 30
  run_writer trunc --db "$db" "${WOPTS[@]}" --seed 65 --checkpoint-every 50 --checkpoint-mode truncate
  stop_sidecar trunc_sigterm_exit0
  echo "truncating: $(cycles) cycle barriers, $WRITER_COMMITS commits"
  check_restore trunc "$store" "$db"
}
truncating

finish
