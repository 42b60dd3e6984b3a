#!/usr/bin/env bash
# Proves: one `replicate -c` process replicates two databases, each to two
# destinations at once (file + file, file + S3), while both are written to;
# SIGTERM ends it with exit 0 after a final sync, and each database restores
# from EACH of its destinations to exactly the source.  SIGHUP reopens the
# log file (moved away as logrotate does) and reloads the configuration:
# the database whose settings changed restarts from the position in its
# stores ("resuming store history"), the unchanged one keeps running.  A
# second instance on the same database is refused with a clear message.
# A final sync that fails (one database's store broken) exits non-zero while
# the other database is still shipped completely.
. "$(dirname "$0")/lib.sh"
. "$WS_ROOT/tests/servers/servers.sh"

start_s3 || finish
a=$WORK/a.db b=$WORK/b.db
make_db "$a" || finish
make_db "$b" || finish
mkdir -p "$WORK/a1" "$WORK/a2" "$WORK/b1"

write_cfg() { # SYNC-INTERVAL-OF-A
  cat >"$WORK/walship.yml" <<YML
sync-interval: 200ms
aws:
  access-key-id: \${AWS_ACCESS_KEY_ID}
  secret-access-key: \${AWS_SECRET_ACCESS_KEY}
databases:
  - path: $a
    name: a
    sync-interval: $1
    destinations:
      - url: $WORK/a1
      - url: file://$WORK/a2
  - path: $b
    name: b
    destinations:
      - url: $WORK/b1
      - url: s3://$WS_S3_BUCKET/multi/b
        endpoint: $WS_S3_ENDPOINT
        addressing: path
YML
}
write_cfg 300ms
log=$WORK/sidecar.log
"$WALSHIP" replicate -c "$WORK/walship.yml" --log-file "$log" >"$WORK/sidecar.out" 2>&1 &
pid=$!
start_writer wa --db "$a" --workload mixed --txns 100000 --rate 50 --seed 11
wa=$WRITER_PID
start_writer wb --db "$b" --workload mixed --txns 100000 --rate 50 --seed 12
wb=$WRITER_PID

if wait_for_log 'durable txid=.* db=a$' "$log" 30 && wait_for_log 'durable txid=.* db=b$' "$log" 30
then pass both_databases_ship
else fail both_databases_ship "$(tail -n 5 "$log" | tr '\n' '|')"; fi

# a second sidecar on the same database
run_cmd "$WALSHIP" replicate --once "$a" "$WORK/other"
if [ "$LAST_RC" != 0 ] && grep -q "another walship is already replicating $a" "$LAST_OUT"
then pass second_instance_refused
else fail second_instance_refused "exit $LAST_RC: $(last_out)"; fi

# logrotate + reload: a's sync interval changes, b's settings do not
sleep 1
mv "$log" "$log.1"
write_cfg 100ms
kill -HUP "$pid"
if wait_for_log 'configuration reloaded .* unchanged=1 restarted=1 stopped=0 started=0' "$log" 30
then pass reload_restarts_only_the_changed_database
else fail reload_restarts_only_the_changed_database "$(tail -n 5 "$log" "$log.1" 2>&1 | tr '\n' '|')"; fi
if wait_for_log 'resuming store history at txid=[1-9].* db=a$' "$log" 30
then pass reload_resumes_from_store_position
else fail reload_resumes_from_store_position "$(grep 'db=a' "$log" | head -n 5 | tr '\n' '|')"; fi
grep -q 'resuming store history.* db=b$' "$log" && \
  fail unchanged_database_not_restarted "$(grep 'db=b' "$log" | head -n 3 | tr '\n' '|')" || \
  pass unchanged_database_not_restarted
if wait_for_log 'durable txid=.* db=a$' "$log" 30; then pass log_file_reopened_on_hup
else fail log_file_reopened_on_hup "no new lines for a in the reopened log"; fi

# a broken reload keeps the running configuration
echo "bogus: [" >>"$WORK/walship.yml"
kill -HUP "$pid"
if wait_for_log 'reload failed, keeping the running configuration: .*walship.yml:[0-9]+' "$log" 30
then pass bad_reload_keeps_running
else fail bad_reload_keeps_running "$(tail -n 3 "$log" | tr '\n' '|')"; fi

sleep 1
stop_writer "$wa"
stop_writer "$wb"
kill -TERM "$pid"
for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  kill -9 "$pid"; fail sigterm_exit0 "still running 60 s after SIGTERM"
else
  wait "$pid"; rc=$?
  check_eq sigterm_exit0 0 "$rc" "$(tail -n 3 "$log" | tr '\n' '|')"
fi
grep -q 'stopped: durable txid=.* db=a$' "$log" && grep -q 'stopped: durable txid=.* db=b$' "$log" \
  && pass final_sync_both || fail final_sync_both "$(tail -n 4 "$log" | tr '\n' '|')"

check_restore a_from_a1 "$WORK/a1" "$a"
check_restore a_from_a2 "file://$WORK/a2" "$a"
check_restore b_from_b1 "$WORK/b1" "$b"
check_restore b_from_s3 "s3://$WS_S3_BUCKET/multi/b" "$b" --endpoint "$WS_S3_ENDPOINT"
check_contiguous a1_contiguous "$WORK/a1"
check_contiguous a2_contiguous "$WORK/a2"
check_contiguous b1_contiguous "$WORK/b1"
check_eq a_destinations_hold_the_same_newest "$(store_max_txid "$WORK/a1")" \
  "$(store_max_txid "$WORK/a2")"

# one database whose final sync fails makes the exit status non-zero; the
# other one is still shipped completely
c=$WORK/c.db d=$WORK/d.db
make_db "$c" || finish
make_db "$d" || finish
mkdir -p "$WORK/c1" "$WORK/d1"
cat >"$WORK/fail.yml" <<YML
sync-interval: 1h
databases:
  - path: $c
    destinations: [{url: $WORK/c1}]
  - path: $d
    destinations: [{url: $WORK/d1}]
YML
"$WALSHIP" replicate -c "$WORK/fail.yml" >"$WORK/fail.log" 2>&1 &
pid=$!
wait_for_log "snapshot durable.* db=$c\$" "$WORK/fail.log" 30 &&
  wait_for_log "snapshot durable.* db=$d\$" "$WORK/fail.log" 30 || fail fail_setup "$(tail -n 3 "$WORK/fail.log")"
rm -rf "$WORK/c1/seg" && : >"$WORK/c1/seg"      # c's store can no longer take segments
run_writer c_more --db "$c" --txns 20 --seed 21
run_writer d_more --db "$d" --txns 20 --seed 22
kill -TERM "$pid"
wait "$pid"; rc=$?
if [ "$rc" != 0 ] && grep -q "walship: replicate: $c: final sync failed" "$WORK/fail.log"; then
  pass failed_final_sync_exit_nonzero
else fail failed_final_sync_exit_nonzero "exit $rc: $(tail -n 3 "$WORK/fail.log" | tr '\n' '|')"; fi
check_restore d_despite_c "$WORK/d1" "$d"

finish
