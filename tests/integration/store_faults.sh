#!/usr/bin/env bash
# Proves: with a fault-injecting proxy between walship and the store (random
# 500/503, requests applied but answered 5xx or never answered, connections
# reset mid-request and mid-response, truncated GET bodies, slow answers),
# and the store down (connections refused) for 20 s in the middle of the
# run, the sidecar survives, catches up by itself once the store is back
# (a direct restore equals the source while it still runs), exits 0 on
# SIGTERM, and the restore — itself through the faulty proxy, so its GETs
# get truncated and retried — is exactly the source database, with a
# contiguous history in `walship ls`.  For S3 (proxy -> SigV4 proxy ->
# s3rver) and HTTP (proxy -> nginx).
. "$(dirname "$0")/lib.sh"
. "$WS_ROOT/tests/servers/servers.sh"

DOWN_S=${WS_FAULT_DOWN_S:-20}
FAULT_KINDS=error,error_after,drop,drop_after,cut,reqcut,slow
start_s3
start_nginx

# store_via CASE BASE-URL: sets STORE and OPTS to reach the case's store
# through BASE-URL (the store itself, or a fault proxy in front of it).
store_via() {
  case $1 in
    s3) STORE=s3://$WS_S3_BUCKET/faulty OPTS=(--endpoint "$2") ;;
    http) STORE=$2/faulty OPTS=() ;;
  esac
}

# wait_caught_up NAME SRC-DB CASE STORE-URL: up to 60 s for a restore from
# STORE-URL (the store itself) to equal SRC-DB while the sidecar still runs.
wait_caught_up() {
  local name=$1 src=$2 want got="" end=$((SECONDS + 60))
  want=$(content_hash "$src")
  store_via "$3" "$4"
  while [ $SECONDS -lt $end ]; do
    rm -f "$WORK/$name.probe.db" "$WORK/$name.probe.db-wal" "$WORK/$name.probe.db-shm"
    run_cmd "$WALSHIP" restore "${OPTS[@]}" "$STORE" -o "$WORK/$name.probe.db"
    got=$(content_hash "$WORK/$name.probe.db")
    [ "$LAST_RC" = 0 ] && [ "$got" = "$want" ] && { pass "$name"; return 0; }
    sleep 2
  done
  fail "$name" "the store has not caught up 60 s after the outage (last restore: exit $LAST_RC, $(last_out 1))"
}

# faulty_case CASE TARGET-URL SEED
faulty_case() {
  local case=$1 target=$2 seed=$3
  local db=$WORK/$case.db down=$WORK/$case.down w nf
  # Replication (shipping every 100 ms): faults on 1 request in 5.
  start_fault_proxy "$case" "$target" --seed "$seed" --rate 0.2 \
    --kinds "$FAULT_KINDS" --slow-max 1.5 --max-faults 400 --down-file "$down"
  local replog=$FAULT_LOG
  store_via "$case" "$FAULT_URL"
  make_db "$db" || return
  start_sidecar "$db" "$STORE" --sync-interval 100ms "${OPTS[@]}" || return
  start_writer "$case" --db "$db" --workload mixed --conns 2 --txns 100000 \
    --rate 120 --checkpoint-every 300 --seed "$seed"
  w=$WRITER_PID
  sleep 4
  : >"$down"                     # the store goes away
  sleep "$DOWN_S"
  if kill -0 "$SIDECAR_PID" 2>/dev/null; then pass "${case}_sidecar_survives_store_down"
  else fail "${case}_sidecar_survives_store_down" "replicate exited while the store was down: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"; fi
  rm -f "$down"                  # and comes back
  sleep 4
  stop_writer "$w"
  if [ "$WRITER_COMMITS" -gt 1000 ]; then pass "${case}_writer_committed"
  else fail "${case}_writer_committed" "only $WRITER_COMMITS commits"; fi
  # Catching up is the sidecar's own doing, not its SIGTERM flush.
  wait_caught_up "${case}_catches_up_after_outage" "$db" "$case" "$target"
  stop_sidecar "${case}_sigterm_after_outage_exit0"
  nf=$(grep -c 'fault=' "$replog")
  if [ "$nf" -ge 5 ]; then pass "${case}_faults_injected_during_replication"
  else fail "${case}_faults_injected_during_replication" "only $nf faults in $replog"; fi

  # Restore and ls through a proxy that faults 1 request in 5 (truncated
  # bodies above all); --max-retries keeps a streak of faults from failing it.
  start_fault_proxy "${case}_restore" "$target" --seed "$((seed + 1))" --rate 0.2 \
    --kinds cut,cut,cut,error,drop,slow --slow-max 0.5 --max-faults 300
  local rlog=$FAULT_LOG
  store_via "$case" "$FAULT_URL"
  check_restore "$case" "$STORE" "$db" --max-retries 20 "${OPTS[@]}"
  check_remote_history "${case}_ls_contiguous" "$STORE" --max-retries 20 "${OPTS[@]}"
  if grep -q 'fault=cut' "$rlog"; then pass "${case}_restore_saw_truncated_gets"
  else fail "${case}_restore_saw_truncated_gets" "no GET was truncated: $(grep -c . "$rlog") requests"; fi
}

faulty_case s3 "$WS_S3_ENDPOINT" 41
faulty_case http "$WS_HTTP_URL" 51

# The faults never made the S3 client send a badly signed request.
bad=$(grep -E -- '-> (400|403|411) ' "$S3_PROXY_LOG" | head -n 3)
check_eq s3_no_request_refused_by_sigv4_proxy "" "$bad"

finish
