#!/usr/bin/env bash
# Proves `walship wait`:
#   - `wait --now` returns only once the last transaction committed before it
#     was called is in the store: a restore made right after it returns equals
#     the source (the writer had stopped), with a 2 s sync interval so the
#     commits are not shipped yet when wait starts;
#   - under a running writer, the TXID wait reports is in the store when it
#     returns;
#   - `--txid N` of a durable transaction returns 0; an impossible TXID times
#     out with exit 5; a wait cut short by the sidecar stopping exits 1;
#   - with no sidecar running, wait exits 1 naming the problem, and the
#     control socket is gone after a clean stop.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 2s || finish
wait_for_log 'control: listening' "$SIDECAR_LOG" 10 || fail control_listening "$(tail -n 3 "$SIDECAR_LOG")"

# ---- quiescent: everything the writer committed must be durable on return
run_writer burst --db "$db" --workload mixed --txns 300 --seed 5
before=$(store_max_txid "$store")
run_cmd "$WALSHIP" wait --now --timeout 60s "$db"
check_eq wait_now_exit0 0 "$LAST_RC" "($(last_out))"
got=$(sed -n 's/^durable txid=\([0-9]*\)$/\1/p' "$LAST_OUT")
after=$(store_max_txid "$store")     # read the store right away
if [ -n "$got" ] && [ "$after" -ge "$got" ]; then pass wait_now_txid_in_store
else fail wait_now_txid_in_store "wait said '$got', store holds up to $after"; fi
echo "store max before wait: $before, reported: $got, after: $after"
check_restore right_after_wait "$store" "$db"

# ---- waiters ride the sync cadence: no object of their own
nobj() { store_objects "$store" | wc -l; }
waiters() { # N: run N `wait --now` at once; echo how many exited 0
  local i ok=0 pids=()
  for ((i = 0; i < $1; i++)); do
    "$WALSHIP" wait --timeout 60s "$db" >/dev/null 2>&1 & pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" && ok=$((ok + 1)); done
  echo "$ok"
}
n0=$(nobj)
check_eq idle_waiters_all_durable 5 "$(waiters 5)"
check_eq idle_waiters_no_upload "$n0" "$(nobj)"
run_writer small --db "$db" --workload insert --txns 20 --seed 6
check_eq busy_waiters_all_durable 5 "$(waiters 5)"
check_eq busy_waiters_one_object $((n0 + 1)) "$(nobj)"
before=$(store_max_txid "$store")

# ---- a running writer: the reported TXID is in the store on return
start_writer live --db "$db" --workload mixed --txns 100000 --rate 200 --seed 9
w=$WRITER_PID
sleep 1
run_cmd "$WALSHIP" wait --timeout 60s "$db"
after=$(store_max_txid "$store")
got=$(sed -n 's/^durable txid=\([0-9]*\)$/\1/p' "$LAST_OUT")
check_eq wait_live_exit0 0 "$LAST_RC" "($(last_out))"
if [ -n "$got" ] && [ "$got" -gt "$before" ] && [ "$after" -ge "$got" ]; then
  pass wait_live_txid_in_store
else fail wait_live_txid_in_store "wait said '$got', store holds up to $after (before $before)"; fi
stop_writer "$w"

# ---- explicit TXIDs
check_rc wait_txid_durable_exit0 0 "$WALSHIP" wait --txid 1 --timeout 10s "$db"
check_rc wait_impossible_txid_exit5 5 "$WALSHIP" wait --txid 999999999 --timeout 1s "$db"
if grep -q "timed out" "$LAST_OUT"; then pass wait_timeout_message
else fail wait_timeout_message "$(last_out)"; fi
check_rc wait_usage_both 2 "$WALSHIP" wait --now --txid 3 "$db"

# ---- the sidecar stops while a wait is pending
"$WALSHIP" wait --txid 999999999 "$db" >"$WORK/pending.out" 2>&1 &
wp=$!
_BG_NAME[$wp]=pending_wait
sleep 0.5
stop_sidecar
wait "$wp"; rc=$?
unset "_BG_NAME[$wp]"
check_eq wait_sidecar_stopped_exit1 1 "$rc" "($(tr '\n' '|' <"$WORK/pending.out"))"
if grep -q "stopped" "$WORK/pending.out"; then pass wait_sidecar_stopped_message
else fail wait_sidecar_stopped_message "$(cat "$WORK/pending.out")"; fi

# ---- no sidecar
check_eq socket_removed_on_stop no "$([ -e "$db-walship.sock" ] && echo yes || echo no)"
check_rc wait_no_sidecar_exit1 1 "$WALSHIP" wait --timeout 5s "$db"
if grep -q "no walship sidecar is running" "$LAST_OUT"; then pass wait_no_sidecar_message
else fail wait_no_sidecar_message "$(last_out)"; fi

# ---- --control PATH
sock=$WORK/ctl.sock
start_sidecar "$db" "$store" --control "$sock" || finish
wait_for_log 'control: listening' "$SIDECAR_LOG" 10
check_rc wait_control_path 0 "$WALSHIP" wait --control "$sock" --timeout 30s
check_eq control_path_used no "$([ -e "$db-walship.sock" ] && echo yes || echo no)"
stop_sidecar control_path_sigterm
finish
