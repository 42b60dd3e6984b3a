#!/usr/bin/env bash
# Proves `walship status` and `walship snapshot`:
#   - status of a running sidecar shows the durable TXID the store holds,
#     lag 0 once caught up, and `--json` carries the same numbers;
#   - snapshot asks the running sidecar for a snapshot, returns once a new
#     snap/ object is in the store (its name printed), and status shows it;
#   - failed uploads (the store's seg/ replaced by a file) are counted by
#     kind and the last error is shown; the sidecar catches up after repair;
#   - a second sidecar on the database is refused without taking over the
#     first one's control socket;
#   - status and snapshot without a running sidecar exit 1 naming it;
#   - with two destinations, status shows a line and counters for each: the
#     failing one's errors are its own (the other has none), and after
#     repair what it received equals what its store holds;
#   - a snapshot of a 50 MB database logs progress lines (bytes, rate, ETA).
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 200ms || finish
wait_for_log 'control: listening' "$SIDECAR_LOG" 10 || fail control_listening "$(tail -n 3 "$SIDECAR_LOG")"
run_writer w1 --db "$db" --workload mixed --txns 200 --seed 3
check_rc wait_caught_up 0 "$WALSHIP" wait --timeout 30s "$db"
max=$(store_max_txid "$store")

# jget FILE KEY: a top-level field of the JSON status
jget() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(str(v).lower() if isinstance(v,bool) else v)' "$1" "$2" 2>&1; }

check_rc status_exit0 0 "$WALSHIP" status "$db"
if grep -qE "^  durable +txid $max " "$LAST_OUT"; then pass status_durable_is_store_max
else fail status_durable_is_store_max "store max $max: $(last_out 10)"; fi
if grep -qE "^  lag +0 transactions, 0.000s" "$LAST_OUT"; then pass status_lag_0
else fail status_lag_0 "$(last_out 10)"; fi
grep -qE "^  errors +none" "$LAST_OUT" && pass status_no_errors || fail status_no_errors "$(last_out 10)"

run_cmd "$WALSHIP" status --json "$db"
cp "$LAST_OUT" "$WORK/s1.json"
check_eq json_durable "$max" "$(jget "$WORK/s1.json" durable_txid)"
check_eq json_running true "$(jget "$WORK/s1.json" running)"
check_eq json_lag 0 "$(jget "$WORK/s1.json" lag_transactions)"

# ---- snapshot on demand
nsnap=$(ls "$store/snap" | wc -l)
run_cmd "$WALSHIP" snapshot --timeout 60s "$db"
check_eq snapshot_exit0 0 "$LAST_RC" "($(last_out))"
name=$(awk '{print $1}' "$LAST_OUT")
if [ -n "$name" ] && [ -f "$store/$name" ]; then pass snapshot_object_in_store
else fail snapshot_object_in_store "printed '$(last_out)', store snap/: $(ls "$store/snap" | tr '\n' ' ')"; fi
check_eq snapshot_one_more $((nsnap + 1)) "$(ls "$store/snap" | wc -l)"
check_eq snapshot_at_durable "$(printf 'snap/%016x.snap' "$max")" "$name"
# --progress asks for progress lines (how many depends on the snapshot's
# length; the protocol itself is unit-tested): the answer is the same
run_cmd "$WALSHIP" snapshot --progress --timeout 60s "$db"
check_eq snapshot_progress_exit0 0 "$LAST_RC" "($(last_out))"
check_eq snapshot_progress_same_answer "$name txid=$max" "$(grep -v '^walship: snapshot: progress ' "$LAST_OUT")"
run_cmd "$WALSHIP" status "$db"
if grep -qE "^  snapshot +txid $max, .*$name" "$LAST_OUT"; then pass status_shows_snapshot
else fail status_shows_snapshot "$(last_out 10)"; fi
check_restore after_snapshot "$store" "$db"

# ---- upload errors are counted and shown
mv "$store/seg" "$store/seg.away" && : >"$store/seg"
run_writer w2 --db "$db" --workload insert --txns 30 --seed 4
for i in $(seq 1 100); do   # until the sidecar has failed at least once
  "$WALSHIP" status --json "$db" >"$WORK/s2.json" 2>&1
  [ "$(jget "$WORK/s2.json" errors_total)" -gt 0 ] 2>/dev/null && break
  sleep 0.1
done
if [ "$(jget "$WORK/s2.json" errors_total)" -gt 0 ] 2>/dev/null; then pass errors_counted
else fail errors_counted "$(head -c 400 "$WORK/s2.json")"; fi
err=$(jget "$WORK/s2.json" last_error)
case $err in *seg*) pass last_error_names_store_path ;;
  *) fail last_error_names_store_path "last_error '$err'" ;; esac
if [ "$(jget "$WORK/s2.json" lag_transactions)" -gt 0 ] 2>/dev/null; then pass lag_while_failing
else fail lag_while_failing "$(head -c 400 "$WORK/s2.json")"; fi
run_cmd "$WALSHIP" status "$db"
if grep -qE "^  errors +[1-9][0-9]* since start; last at .*seg" "$LAST_OUT"; then pass status_shows_error
else fail status_shows_error "$(last_out 10)"; fi
rm -f "$store/seg" && mv "$store/seg.away" "$store/seg"
check_rc wait_after_repair 0 "$WALSHIP" wait --timeout 60s "$db"
run_cmd "$WALSHIP" status --json "$db"
cp "$LAST_OUT" "$WORK/s3.json"
check_eq caught_up_after_repair "$(store_max_txid "$store")" "$(jget "$WORK/s3.json" durable_txid)"

# ---- a second sidecar is refused and leaves the socket alone
check_rc second_sidecar_refused 1 timeout 10 "$WALSHIP" replicate "$db" "$WORK/store2"
check_rc status_after_second 0 "$WALSHIP" status "$db"

stop_sidecar
check_rc status_no_sidecar_exit1 1 "$WALSHIP" status "$db"
grep -q "no walship sidecar is running for $db" "$LAST_OUT" && pass status_no_sidecar_message ||
  fail status_no_sidecar_message "$(last_out)"
check_rc snapshot_no_sidecar_exit1 1 "$WALSHIP" snapshot "$db"
check_rc status_usage_no_db 2 "$WALSHIP" status
check_restore final "$store" "$db"

# ---- two destinations: one line and one set of counters each; a failing
# destination's errors are its own, and what it received is what it holds
db2=$WORK/two.db
make_db "$db2" || finish
cat >"$WORK/two.yml" <<YML
databases:
  - path: $db2
    destinations:
      - {url: $WORK/near, name: near}
      - {url: $WORK/far, name: far}
YML
_SEQ=$((_SEQ + 1)); SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
"$WALSHIP" replicate -c "$WORK/two.yml" --sync-interval 200ms >"$SIDECAR_LOG" 2>&1 &
SIDECAR_PID=$!
wait_for_log "snapshot durable" "$SIDECAR_LOG" 30 || fail two_attached "$(tail -n 3 "$SIDECAR_LOG")"
# djget FILE INDEX KEY: a field of one destination of the JSON status
djget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dests"][int(sys.argv[2])][sys.argv[3]])' "$@" 2>&1; }
run_writer w3a --db "$db2" --workload insert --txns 10 --seed 6
check_rc two_wait_first 0 "$WALSHIP" wait --timeout 30s "$db2"   # far/seg exists now
mv "$WORK/far/seg" "$WORK/far/seg.away" && : >"$WORK/far/seg"
run_writer w3 --db "$db2" --workload insert --txns 30 --seed 5
for i in $(seq 1 100); do
  "$WALSHIP" status --json "$db2" >"$WORK/s4.json" 2>&1
  [ "$(djget "$WORK/s4.json" 1 errors_total)" -gt 0 ] 2>/dev/null && break
  sleep 0.1
done
check_eq two_dest_names "near far" "$(djget "$WORK/s4.json" 0 name) $(djget "$WORK/s4.json" 1 name)"
if [ "$(djget "$WORK/s4.json" 1 errors_total)" -gt 0 ] 2>/dev/null; then pass far_errors_counted
else fail far_errors_counted "$(head -c 600 "$WORK/s4.json")"; fi
check_eq near_no_errors 0 "$(djget "$WORK/s4.json" 0 errors_total)"
case $(djget "$WORK/s4.json" 1 last_error) in *far/seg*) pass far_last_error_names_its_path ;;
  *) fail far_last_error_names_its_path "$(djget "$WORK/s4.json" 1 last_error)" ;; esac
run_cmd "$WALSHIP" status "$db2"
if grep -qE "^  dest far: uploaded [0-9]+ objects, .*; errors [1-9][0-9]*, last at .*far/seg" "$LAST_OUT" &&
  grep -qE "^  dest near: uploaded [0-9]+ objects, .*; errors none$" "$LAST_OUT"; then pass status_dest_lines
else fail status_dest_lines "$(last_out 14)"; fi
rm -f "$WORK/far/seg" && mv "$WORK/far/seg.away" "$WORK/far/seg"
check_rc two_wait_after_repair 0 "$WALSHIP" wait --timeout 60s "$db2"
run_cmd "$WALSHIP" status --json "$db2"
cp "$LAST_OUT" "$WORK/s5.json"
far_bytes=$(find "$WORK/far/snap" "$WORK/far/seg" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
check_eq far_bytes_are_its_store "$far_bytes" "$(djget "$WORK/s5.json" 1 uploaded_bytes)"
check_eq far_objects_are_its_store "$(find "$WORK/far/snap" "$WORK/far/seg" -type f | wc -l)" \
  "$(djget "$WORK/s5.json" 1 objects)"
check_eq two_durable_is_far_max "$(store_max_txid "$WORK/far")" "$(jget "$WORK/s5.json" durable_txid)"
stop_sidecar two_sigterm_exit0
check_restore two_far "$WORK/far" "$db2"

# ---- a long snapshot logs its progress (a 50 MB database, no compression,
# a progress line every millisecond instead of every 5 s)
big=$WORK/big.db
sqlite3 "$big" "PRAGMA journal_mode=WAL; CREATE TABLE t(b);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 12800)
  INSERT INTO t SELECT randomblob(4000) FROM c;" >/dev/null
total=$(( $(sqlite3 "$big" 'PRAGMA page_count') * $(sqlite3 "$big" 'PRAGMA page_size') ))
run_cmd env WALSHIP_PROGRESS_INTERVAL=1 "$WALSHIP" replicate --once --compress-level 0 "$big" "$WORK/bigstore"
check_eq big_once_exit0 0 "$LAST_RC" "($(last_out))"
grep 'snapshot progress' "$LAST_OUT" >"$WORK/progress.txt"
if [ "$(wc -l <"$WORK/progress.txt")" -ge 2 ]; then pass snapshot_progress_lines
else fail snapshot_progress_lines "$(wc -l <"$WORK/progress.txt") lines: $(last_out 5)"; fi
check_eq progress_total_is_db_size "$total" \
  "$(sed -n 's/.* total_bytes=\([0-9]*\) .*/\1/p' "$WORK/progress.txt" | sort -u | tr '\n' ' ' | sed 's/ $//')"
# done_bytes grows, stays within the total; every line has a rate and an ETA
if awk -v t="$total" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["done_bytes"] + 0 <= prev || v["done_bytes"] + 0 > t || v["rate_mib_s"] == "" || v["eta_s"] == "") exit 1
    prev = v["done_bytes"] + 0 }' "$WORK/progress.txt"; then pass progress_grows_with_rate_eta
else fail progress_grows_with_rate_eta "$(head -n 3 "$WORK/progress.txt")"; fi
check_restore big "$WORK/bigstore" "$big"
finish
