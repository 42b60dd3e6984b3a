#!/usr/bin/env bash
# Proves: an idle sidecar sleeps on file events (it does not poll four times
# a second), yet an app's blocking checkpoint never waits for it: the app
# keeps one connection open (no close to wake anyone), goes quiet, and runs
# wal_checkpoint(TRUNCATE) with a 5 s busy timeout
#   - with frames still to backfill (its backfill writes wake the sidecar),
#   - after its own PASSIVE checkpoint backfilled everything (nothing is
#     written: the sidecar must already have moved its pin off that WAL).
# The sidecar runs with --poll-interval 10s, so a TRUNCATE answered within
# 5 s is the event and re-pin rules at work, not a poll tick.
. "$(dirname "$0")/lib.sh"

cat >"$WORK/app.py" <<'EOF'
import sqlite3, sys, time
db, mode = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA busy_timeout=5000")
for i in range(50):
    c.execute("INSERT INTO t VALUES(randomblob(100))")
if mode == "passive":
    time.sleep(2.5)
    c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
time.sleep(3.3)
busy, log, done = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
print("busy=%d log=%d checkpointed=%d" % (busy, log, done))
EOF

# voluntary context switches of every thread of PID
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s + 0}'; }

for mode in frames passive; do
  db=$WORK/$mode.db store=$WORK/$mode.store
  sqlite3 "$db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(x);' >/dev/null
  start_sidecar "$db" "$store" --poll-interval 10s || continue
  out=$(python3 "$WORK/app.py" "$db" "$mode" 2>&1)
  case "$out" in
    busy=0*) pass "${mode}_app_truncate_not_busy" ;;
    *) fail "${mode}_app_truncate_not_busy" "$out; $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')" ;;
  esac
  stop_sidecar "${mode}_sigterm_exit0"
  check_restore "$mode" "$store" "$db"
done

# Idle with the default poll interval: about one wake-up a second (the
# long idle sleep), where polling alone made four, plus the other threads'.
db=$WORK/quiet.db store=$WORK/quiet.store
make_db "$db"
start_sidecar "$db" "$store" && {
  run_writer quiet --db "$db" --txns 200 --rate 0 --seed 3
  sleep 3      # shipped, re-pinned, settled
  a=$(switches "$SIDECAR_PID"); sleep 4; b=$(switches "$SIDECAR_PID")
  n=$((b - a))
  if [ "$n" -le 9 ]; then pass idle_wakeups_few
  else fail idle_wakeups_few "$n voluntary context switches in 4 s of idle (polling every 250 ms makes 16+)"; fi
  stop_sidecar quiet_sigterm_exit0
  check_restore quiet "$store" "$db"
}

finish
