#!/usr/bin/env bash
# Proves: two writer processes with three connections each, writing at once
# (lock contention, SQLITE_BUSY retries, default autocheckpoint), are shipped
# completely: the restore equals the source.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 0
start_writer a --db "$db" --workload mixed --conns 3 --txns 3000 --rate 800 --seed 41
wa=$WRITER_PID
start_writer b --db "$db" --workload mixed --conns 3 --txns 3000 --rate 800 --seed 42
wb=$WRITER_PID
wait_writer "$wa"; check_eq writer_a_committed 3000 "$WRITER_COMMITS"
wait_writer "$wb"; check_eq writer_b_committed 3000 "$WRITER_COMMITS"
stop_sidecar sigterm_exit0
check_restore final "$store" "$db"
check_contiguous store_contiguous "$store"

finish
