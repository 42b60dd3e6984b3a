#!/usr/bin/env bash
# Proves: a checkpoint never destroys an unshipped frame.  The writer runs a
# checkpoint of every mode (PASSIVE, FULL, RESTART, TRUNCATE in turn) every 7
# commits, while a second process hammers wal_checkpoint(TRUNCATE) and a
# third opens short-lived sqlite3 CLI connections that do the same (and
# checkpoint on close); the store must still restore to exactly the source.
# Run with --sync-interval 0 and with the default 1 s.
. "$(dirname "$0")/lib.sh"

case_run() { # CASE [replicate options...]
  local case=$1; shift
  local db=$WORK/$case.db store=$WORK/$case.store ck cli
  make_db "$db" || return
  mkdir -p "$store"
  start_sidecar "$db" "$store" "$@" || return
  # A separate process checkpointing with TRUNCATE ~200 times a second.
  start_writer "${case}_truncator" --db "$db" --workload checkpoint \
    --checkpoint-mode truncate --rate 200 --duration 600 --busy-timeout 100
  ck=$WRITER_PID
  # sqlite3 CLI connections that come and go, each running a TRUNCATE.
  ( while :; do
      sqlite3 "$db" 'PRAGMA busy_timeout=100; PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null 2>&1
      sleep 0.05
    done ) &
  cli=$!
  _BG_NAME[$cli]=cli_loop
  run_writer "$case" --db "$db" --workload mixed --conns 2 --txns 5000 --rate 1000 \
    --seed 21 --checkpoint-every 7 --checkpoint-mode cycle
  check_eq "${case}_writer_committed" 5000 "$WRITER_COMMITS"
  local wck
  wck=$(sed -n 's/.*checkpoints=\([0-9]*\).*/\1/p' "$WORK/writer.$case.log")
  if [ "${wck:-0}" -gt 0 ]; then pass "${case}_writer_checkpoints_ran"
  else fail "${case}_writer_checkpoints_ran" "no checkpoint of the writer completed: $(cat "$WORK/writer.$case.log")"; fi
  kill "$cli" 2>/dev/null; wait "$cli" 2>/dev/null; unset "_BG_NAME[$cli]"
  stop_writer "$ck"
  # The app's own TRUNCATE checkpoints must not be starved by the sidecar.
  wck=$(sed -n 's/.*checkpoints=\([0-9]*\).*/\1/p' "$WORK/writer.${case}_truncator.log")
  if [ "${wck:-0}" -gt 0 ]; then pass "${case}_app_truncate_checkpoints_complete"
  else fail "${case}_app_truncate_checkpoints_complete" "$(tr '\n' ' ' <"$WORK/writer.${case}_truncator.log")"; fi
  stop_sidecar "${case}_sigterm_exit0"
  check_restore "$case" "$store" "$db"
  check_contiguous "${case}_store_contiguous" "$store"
}

case_run sync0 --sync-interval 0
case_run sync1s --sync-interval 1s

finish
