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

# Blocking checkpoints from two processes under an unthrottled writer: the
# app's two connections TRUNCATE every 50 commits, another process 100
# times a second.  A checkpoint can read our read mark while we are behind
# and then retry only that slot's lock; re-pinning at the end kept the slot
# held (both our connections land on the slot with the current mark), and
# it waited out its whole busy timeout: 5 s, in about half of such runs.
# The sidecar now lets go of the slot, guarded (ws_pin_yield).  No app
# checkpoint may wait its full busy timeout, and nothing may be lost.
stale_mark() {
  local db=$WORK/stale.db store=$WORK/stale.store ck c n w
  make_db "$db" || return
  mkdir -p "$store"
  start_sidecar "$db" "$store" --log-level debug || return
  start_writer stale_truncator --db "$db" --workload checkpoint --checkpoint-mode truncate \
    --rate 100 --duration 600 --busy-timeout 5000
  ck=$WRITER_PID
  run_writer stale --db "$db" --workload insert --conns 2 --rate 0 --duration 5 --seed 23 \
    --checkpoint-every 50 --checkpoint-mode truncate --busy-timeout 5000
  c=$WRITER_COMMITS
  stop_writer "$ck"
  stop_sidecar stale_sigterm_exit0
  n=$(grep -c 'read slot released' "$SIDECAR_LOG")
  # the longest checkpoint call of either process
  w=$(cat "$WORK/writer.stale.log" "$WORK/writer.stale_truncator.log" |
      sed -n 's/.*ckpt_ms_max=\([0-9.]*\).*/\1/p' | sort -g | tail -n 1)
  echo "stale_mark: $c commits, longest app checkpoint ${w:-?} ms, slot released $n times"
  if awk -v w="${w:-99999}" 'BEGIN{exit !(w < 4900)}'; then pass stale_no_checkpoint_times_out
  else fail stale_no_checkpoint_times_out "an app checkpoint waited ${w:-?} ms (its busy timeout is 5000)"; fi
  check_restore stale "$store" "$db"
  check_contiguous stale_store_contiguous "$store"
}
stale_mark

finish
