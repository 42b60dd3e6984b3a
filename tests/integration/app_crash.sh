#!/usr/bin/env bash
# Proves: when the application is killed (kill -9) in the middle of its
# transactions, the store holds exactly what it committed: after SQLite's own
# recovery of the source, the restore equals it.  Done three times, the
# application restarting after each crash while the sidecar keeps running.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 0 || finish
RANDOM=7                                  # reproducible crash points
for round in 1 2 3; do
  start_writer "crash$round" --db "$db" --workload mixed --conns 2 --duration 60 \
    --autocheckpoint 100 --seed "$round"
  w=$WRITER_PID
  sleep "$((1 + RANDOM % 2)).$((RANDOM % 10))"
  kill -9 "$w"; wait "$w" 2>/dev/null; unset "_BG_NAME[$w]"
done
run_writer after --db "$db" --workload mixed --txns 300 --seed 9
check_eq writer_after_crashes_committed 300 "$WRITER_COMMITS"
stop_sidecar sigterm_exit0
check_restore final "$store" "$db"
check_contiguous store_contiguous "$store"

finish
