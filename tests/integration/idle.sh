#!/usr/bin/env bash
# Proves: an idle sidecar sleeps on file events (it does not poll four times
# a second), yet an app's blocking checkpoint never waits for it: the app
# keeps one connection open (no close to wake anyone), goes quiet, and runs
# wal_checkpoint(TRUNCATE) with a 5 s busy timeout
#   - with frames still to backfill (its backfill writes wake the sidecar),
#   - after its own PASSIVE checkpoint backfilled everything (nothing is
#     written: the sidecar must already have moved its pin off that WAL),
#   - at --sync-interval 0 after two commits 50 ms apart (the second ship
#     does not move the pin: moves are rationed to one per 100 ms, so the
#     pin is left behind the WAL's end, where a checkpoint waits for it
#     before writing anything).
# The sidecar runs with --poll-interval 10s, so a TRUNCATE answered within
# 5 s is the event and re-pin rules at work, not a poll tick.  And a
# `walship wait --now` on that idle sidecar is answered at once (the
# control request wakes the loop), not at its next look.
. "$(dirname "$0")/lib.sh"

cat >"$WORK/app.py" <<'EOF'
import sqlite3, sys, time
db, mode = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA busy_timeout=5000")
for i in range(2 if mode == "behind" else 50):
    c.execute("INSERT INTO t VALUES(randomblob(100))")
    if mode == "behind":
        time.sleep(0.05)
if mode == "passive":
    time.sleep(2.5)
    c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
time.sleep(3.3)
busy, log, done = c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
print("busy=%d log=%d checkpointed=%d" % (busy, log, done))
EOF

# voluntary context switches of every thread of PID
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s + 0}'; }

for mode in frames passive behind; do
  db=$WORK/$mode.db store=$WORK/$mode.store iv=1s
  [ "$mode" = behind ] && iv=0
  sqlite3 "$db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(x);' >/dev/null
  start_sidecar "$db" "$store" --poll-interval 10s --sync-interval "$iv" || continue
  out=$(python3 "$WORK/app.py" "$db" "$mode" 2>&1)
  case "$out" in
    busy=0*) pass "${mode}_app_truncate_not_busy" ;;
    *) fail "${mode}_app_truncate_not_busy" "$out; $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')" ;;
  esac
  if [ "$mode" = frames ]; then
    # idle now (the TRUNCATE emptied the WAL); the sidecar looks every 10 s
    sqlite3 "$db" 'INSERT INTO t VALUES(1);'
    sleep 3
    if timeout 5 "$WALSHIP" wait --now "$db" >"$WORK/wait.out" 2>&1; then pass wait_now_answered_idle
    else fail wait_now_answered_idle "no answer within 5 s (rc $?): $(tr '\n' ' ' <"$WORK/wait.out")"; fi
  fi
  stop_sidecar "${mode}_sigterm_exit0"
  check_restore "$mode" "$store" "$db"
done

# Idle with the default poll interval: about one wake-up a second (the
# long idle sleep), where polling alone made four, plus the other threads'.
db=$WORK/quiet.db store=$WORK/quiet.store
make_db "$db"
# (no lease renewal, with its two fsyncs, inside the window)
WALSHIP_LEASE_TTL_MS=600000 start_sidecar "$db" "$store" && {
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
