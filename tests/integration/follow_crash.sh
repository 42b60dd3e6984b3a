#!/usr/bin/env bash
# Proves: a follower that dies in either crash window of its position
# protocol resumes at the right TXID and ends equal to the source:
#   - after the state file names the pending position, before COMMIT
#     (the replica still holds the committed one: resume there);
#   - after COMMIT, before the next state write (the replica holds the
#     pending one: resume there).
# The windows are hit deterministically with the WALSHIP_FOLLOW_CRASH hook
# (src/follow.c), which makes the process _exit(70) at that point.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store rep=$WORK/replica.db
mkdir -p "$store"
make_db "$db" || finish
run_writer seed --db "$db" --workload mixed --txns 200 --seed 3 || finish
check_rc ship_first 0 "$WALSHIP" replicate --once "$db" "$store"

# Each batch is shipped by `replicate --once` after the writer closed the
# database (its WAL checkpointed away), so it arrives as a gap snapshot: a
# new history, applied through the same commit path as segments.

# the state file: line 3 committed, line 4 pending (when present)
field() { sed -n "${1}p" "$rep-walship-follow" | cut -d' ' -f2; }

follow_until_exit() { # LOGNAME ENV...: run the follower until it exits (15 s at most)
  local log=$WORK/$1.log; shift
  env "$@" "$WALSHIP" restore --follow --poll-interval 100ms "$store" -o "$rep" >"$log" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$pid" 2>/dev/null
  wait "$pid"
}

# Build the replica, then stop cleanly.
"$WALSHIP" restore --follow --poll-interval 100ms "$store" -o "$rep" >"$WORK/create.log" 2>&1 &
fp=$!
wait_for_log "created at txid" "$WORK/create.log" 20 && pass replica_created ||
  fail replica_created "$(tail -n 2 "$WORK/create.log" | tr '\n' '|')"
kill -TERM "$fp"; wait "$fp"

for window in state commit; do
  run_writer "w_$window" --db "$db" --workload update --txns 150 --seed "${#window}" || finish
  check_rc "ship_$window" 0 "$WALSHIP" replicate --once "$db" "$store"
  before=$(field 3)
  follow_until_exit "crash_$window" WALSHIP_FOLLOW_CRASH=$window
  check_eq "${window}_window_exit70" 70 "$?" "($(tail -n 2 "$WORK/crash_$window.log" | tr '\n' '|'))"
  committed=$(field 3) pending=$(field 4)
  if [ -n "$pending" ] && [ "$pending" -gt "$committed" ]; then pass "${window}_window_left_pending"
  else fail "${window}_window_left_pending" "state file: committed=$committed pending=$pending (before: $before)"; fi
  want=$committed
  [ "$window" = commit ] && want=$pending
  "$WALSHIP" restore --follow --poll-interval 100ms "$store" -o "$rep" >"$WORK/resume_$window.log" 2>&1 &
  fp=$!
  wait_for_log "resuming replica .* at txid=" "$WORK/resume_$window.log" 20
  got=$(sed -n 's/.*resuming replica .* at txid=\([0-9]*\).*/\1/p' "$WORK/resume_$window.log" | head -n 1)
  check_eq "${window}_window_resumes_at_txid" "$want" "$got" "($(tail -n 2 "$WORK/resume_$window.log" | tr '\n' '|'))"
  last=$(store_max_txid "$store")
  for ((i = 0; i < 150; i++)); do [ "$(tail -n 1 "$rep-walship-follow" | cut -d' ' -f2)" = "$last" ] && break; sleep 0.1; done
  kill -TERM "$fp"; wait "$fp"
  check_eq "${window}_window_sigterm_exit0" 0 "$?"
  a=$(content_hash "$db"); b=$(content_hash "$rep")
  if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "${window}_window_replica_equals_source"
  else fail "${window}_window_replica_equals_source" "source $a, replica $b"; fi
  check_eq "${window}_window_integrity" ok "$(integrity "$rep")"
done

finish
