#!/usr/bin/env bash
# Proves: the sidecar can be stopped (SIGTERM) or killed (kill -9) and
# restarted while the application keeps writing (and checkpointing with the
# default autocheckpoint, so the WAL resets while nobody watches), and the
# store still restores to exactly the source, with a contiguous history.
# Then the sidecar is killed at four more random (seeded) points in a row.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store"
start_writer main --db "$db" --workload mixed --conns 2 --txns 50000 --rate 500 --seed 31
w=$WRITER_PID

sleep 2
stop_sidecar sigterm_midrun_exit0
sleep 1.5                        # writer continues, sidecar down
start_sidecar "$db" "$store"
sleep 2
kill9_sidecar
sleep 1.5                        # down again, after an unclean exit
start_sidecar "$db" "$store"
RANDOM=3
for i in 1 2 3 4; do
  sleep "0.$((3 + RANDOM % 7))"
  kill9_sidecar
  sleep 0.5
  start_sidecar "$db" "$store"
done
sleep 1
check_eq writer_still_running_during_restarts 0 "$(kill -0 "$w" 2>/dev/null; echo $?)" \
  "(the writer finished too early to overlap the restarts)"
stop_writer "$w"
if [ "$WRITER_COMMITS" -gt 0 ]; then pass writer_committed
else fail writer_committed "the writer committed nothing"; fi
stop_sidecar final_sigterm_exit0

check_restore final "$store" "$db"
check_contiguous store_contiguous "$store"
check_ls ls_contiguous "$store"

finish
