#!/usr/bin/env bash
# Proves: with a fault-injecting proxy between walship and the store (random
# 500/503, requests applied but answered 5xx or never answered, connections
# reset mid-request and mid-response, truncated GET bodies, slow answers),
# and the store down (connections refused) for 20 s in the middle of the
# run, the sidecar survives, catches up once the store is back, exits 0 on
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

# faulty_case CASE TARGET-URL STORE-FN [store options...]: STORE-FN PROXY-URL
# prints the store URL that goes through the proxy at PROXY-URL.
faulty_case() {
  local case=$1 target=$2 storefn=$3 seed=$4; shift 4
  local db=$WORK/$case.db down=$WORK/$case.down store w opts
  # Replication (shipping every 100 ms): faults on 1 request in 5.
  start_fault_proxy "$case" "$target" --seed "$seed" --rate 0.2 \
    --kinds "$FAULT_KINDS" --slow-max 1.5 --max-faults 400 --down-file "$down"
  local replog=$FAULT_LOG
  store=$($storefn "$FAULT_URL")
  opts=("$@")
  [ "$case" = s3 ] && opts+=(--endpoint "$FAULT_URL")
  make_db "$db" || return
  start_sidecar "$db" "$store" --sync-interval 100ms "${opts[@]}" || return
  start_writer "$case" --db "$db" --workload mixed --conns 2 --txns 100000 \
    --rate 120 --checkpoint-every 300 --seed "$seed"
  w=$WRITER_PID
  sleep 4
  : >"$down"                     # the store goes away
  sleep "$DOWN_S"
  if kill -0 "$SIDECAR_PID" 2>/dev/null; then pass "${case}_sidecar_survives_store_down"
  else fail "${case}_sidecar_survives_store_down" "replicate exited while the store was down: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"; fi
  rm -f "$down"                  # and comes back
  sleep 6
  stop_writer "$w"
  if [ "$WRITER_COMMITS" -gt 1000 ]; then pass "${case}_writer_committed"
  else fail "${case}_writer_committed" "only $WRITER_COMMITS commits"; fi
  stop_sidecar "${case}_sigterm_after_outage_exit0"
  local nf
  nf=$(grep -c 'fault=' "$replog")
  if [ "$nf" -ge 5 ]; then pass "${case}_faults_injected_during_replication"
  else fail "${case}_faults_injected_during_replication" "only $nf faults in $replog"; fi

  # Restore and ls through a proxy that faults 1 request in 5 (truncated bodies
  # above all); --max-retries keeps a streak of faults from failing it.
  start_fault_proxy "${case}_restore" "$target" --seed "$((seed + 1))" --rate 0.2 \
    --kinds cut,cut,cut,error,drop,slow --slow-max 0.5 --max-faults 300
  local rlog=$FAULT_LOG
  store=$($storefn "$FAULT_URL")
  opts=("$@")
  [ "$case" = s3 ] && opts+=(--endpoint "$FAULT_URL")
  check_restore "$case" "$store" "$db" --max-retries 20 "${opts[@]}"
  check_remote_history "${case}_ls_contiguous" "$store" --max-retries 20 "${opts[@]}"
  if grep -q 'fault=cut' "$rlog"; then pass "${case}_restore_saw_truncated_gets"
  else fail "${case}_restore_saw_truncated_gets" "no GET was truncated: $(grep -c . "$rlog") requests"; fi
}

s3_store() { echo "s3://$WS_S3_BUCKET/faulty"; }
http_store() { echo "$1/faulty"; }

faulty_case s3 "$WS_S3_ENDPOINT" s3_store 41
faulty_case http "$WS_HTTP_URL" http_store 51

# The faults never made the S3 client send a badly signed request.
bad=$(grep -E -- '-> (400|403|411) ' "$S3_PROXY_LOG" | head -n 3)
check_eq s3_no_request_refused_by_sigv4_proxy "" "$bad"

finish
