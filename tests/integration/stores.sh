#!/usr/bin/env bash
# Proves: the replicate -> restore round trip gives exactly the source
# database on every kind of store: a directory, S3 (s3rver behind a proxy
# that verifies every SigV4 signature and payload hash, so a signing bug
# fails here) and HTTP (stock nginx WebDAV with JSON listings).  Per store:
# a 3-connection mixed writer with checkpoints while the sidecar is stopped
# with SIGTERM and restarted mid-run; restore equal + integrity_check;
# `walship ls` lists a contiguous history whose objects really are in the
# server's storage.  --path-style/--region/--storage-class are honoured.
# On s3rver, which ignores conditional PUTs, the sidecar's lease probe says
# so and the lease fences by read-back: a second sidecar still refuses;
# restore and ls send no probe.
# A >= 20 MiB blob database, whose snapshot exceeds the 8 MiB S3 part size
# (multipart upload), restores equal, as does the TXID of that snapshot.
. "$(dirname "$0")/lib.sh"
. "$WS_ROOT/tests/servers/servers.sh"

start_s3
start_nginx
S3_OPTS=(--endpoint "$WS_S3_ENDPOINT")
S3_STORE=s3://$WS_S3_BUCKET/some/prefix
HTTP_STORE=$WS_HTTP_URL/some/prefix
mkdir -p "$WORK/filestore"

WOPTS=(--workload mixed --conns 3 --txns 3000 --rate 800 --checkpoint-every 400 --seed 21)

# roundtrip CASE STORE [store options...]
roundtrip() {
  local case=$1 store=$2; shift 2
  local db=$WORK/$case.db w
  make_db "$db" || return
  start_sidecar "$db" "$store" "$@" || return
  start_writer "$case" --db "$db" "${WOPTS[@]}"
  w=$WRITER_PID
  sleep 1.5
  stop_sidecar "${case}_sigterm_midrun_exit0"
  sleep 0.5                      # the writer goes on without a sidecar
  start_sidecar "$db" "$store" "$@" || { wait_writer "$w"; return; }
  wait_writer "$w"
  check_eq "${case}_writer_committed" 3000 "$WRITER_COMMITS"
  stop_sidecar "${case}_sigterm_exit0"
  check_restore "$case" "$store" "$db" "$@"
  check_remote_history "${case}_ls_contiguous" "$store" "$@"
}

# objects_in_server CASE: how many objects the server's own storage holds
# under some/prefix (s3rver keeps one "<key>._S3rver_object" file per key).
objects_in_server() {
  case $1 in
    s3) find "$SRV_DIR/s3/data/$WS_S3_BUCKET/some/prefix" -name '*._S3rver_object' 2>/dev/null | wc -l ;;
    http) find "$NGINX_DATA/some/prefix" -type f 2>/dev/null | wc -l ;;
    file) find "$WORK/filestore" -type f | wc -l ;;
  esac
}
check_objects_stored() { # CASE: ls and the server's storage agree
  local n
  n=$(find "$WORK/${1}_ls_contiguous.mirror" -type f | wc -l)
  if [ "$n" -gt 0 ] && [ "$n" = "$(objects_in_server "$1")" ]; then pass "${1}_objects_in_server_storage"
  else fail "${1}_objects_in_server_storage" "ls lists $n objects, the server holds $(objects_in_server "$1")"; fi
}

roundtrip file "$WORK/filestore"
check_objects_stored file
roundtrip s3 "$S3_STORE" "${S3_OPTS[@]}"
check_objects_stored s3

# ---- the lease on s3rver, which ignores If-None-Match and If-Match on PUT:
# each of the two sidecar starts probed once (PUT, PUT If-None-Match: *
# answered 200, DELETE: no If-Match step after that), said so at info and
# fenced by read-back; the restore and ls that roundtrip ran after them
# probed nothing; no probe object is left; a second sidecar refuses.
probe_puts=$(grep -c " PUT /$WS_S3_BUCKET/some/prefix/lease/probe-" "$S3_PROXY_LOG")
probe_dels=$(grep -c " DELETE /$WS_S3_BUCKET/some/prefix/lease/probe-" "$S3_PROXY_LOG")
check_eq s3_probe_once_per_sidecar_none_for_restore_ls "4 2" "$probe_puts $probe_dels"
if grep -q "s3 store ignores conditional writes (If-None-Match); lease uses read-back fencing" \
  "$SIDECAR_LOG"; then pass s3_probe_found_conditions_ignored
else fail s3_probe_found_conditions_ignored "$(grep lease "$SIDECAR_LOG" | head -n 3 | tr '\n' '|')"; fi
check_eq s3_probe_left_no_object "" \
  "$(find "$SRV_DIR/s3/data/$WS_S3_BUCKET/some/prefix/lease" -name 'probe-*' 2>/dev/null)"
fdb=$WORK/s3fence.db
make_db "$fdb" && run_writer s3fence --db "$fdb" --txns 20 --seed 25
cp "$fdb" "$WORK/s3fence2.db"
if start_sidecar "$fdb" "s3://$WS_S3_BUCKET/fence" "${S3_OPTS[@]}" --sync-interval 0; then
  run_cmd "$WALSHIP" replicate "${S3_OPTS[@]}" --sync-interval 0 "$WORK/s3fence2.db" \
    "s3://$WS_S3_BUCKET/fence"
  check_eq s3_second_sidecar_refused_exit1 1 "$LAST_RC" "$(last_out)"
  if grep -q "written by another sidecar (owner [^ ]*:$SIDECAR_PID:" "$LAST_OUT"; then
    pass s3_second_sidecar_names_owner
  else fail s3_second_sidecar_names_owner "$(last_out)"; fi
  stop_sidecar s3_fence_sigterm_exit0
fi
roundtrip http "$HTTP_STORE"
check_objects_stored http

# Every S3 request went through the verifying proxy, and it refused none.
if grep -q ' ok ' "$S3_PROXY_LOG"; then pass s3_requests_signature_verified
else fail s3_requests_signature_verified "the SigV4 proxy saw no verified request"; fi
bad=$(grep -E -- '-> (400|403|411) ' "$S3_PROXY_LOG" | head -n 3)
check_eq s3_no_request_refused_by_sigv4_proxy "" "$bad"

# ---- explicit S3 options: --path-style, --region, --storage-class (its
# x-amz-storage-class header must be signed, and s3rver keeps it).
sc_db=$WORK/sc.db
make_db "$sc_db" && run_writer sc --db "$sc_db" --txns 50 --seed 22
run_cmd "$WALSHIP" replicate --once "${S3_OPTS[@]}" --path-style --region us-east-1 \
  --storage-class STANDARD_IA "$sc_db" "s3://$WS_S3_BUCKET/sc"
check_eq s3_storage_class_once_exit0 0 "$LAST_RC" "($(last_out))"
meta=$(find "$SRV_DIR/s3/data/$WS_S3_BUCKET/sc" -name '*._S3rver_metadata.json' | head -n 1)
if [ -n "$meta" ] && grep -q '"x-amz-storage-class": *"STANDARD_IA"' "$meta"; then
  pass s3_storage_class_stored
else fail s3_storage_class_stored "no STANDARD_IA in ${meta:-any metadata file}"; fi
check_restore s3_sc "s3://$WS_S3_BUCKET/sc" "$sc_db" "${S3_OPTS[@]}" --path-style

# ---- a blob-heavy database: a snapshot larger than the 8 MiB S3 part size.
big=$WORK/big.db
make_db "$big" 65536 && run_writer big --db "$big" --workload blob --txns 100 --seed 23
size=$(stat -c %s "$big")
if [ "$size" -ge $((20 << 20)) ]; then pass big_db_over_20MiB
else fail big_db_over_20MiB "the blob database is only $size bytes"; fi
big_case() { # CASE STORE [store options...]
  local case=$1 store=$2 mid; shift 2
  run_cmd "$WALSHIP" replicate --once "$@" "$big" "$store"
  check_eq "${case}_big_snapshot_once_exit0" 0 "$LAST_RC" "($(last_out))"
  mid=$(content_hash "$big")
  run_writer "${case}_big_more" --db "$big" --workload blob --txns 20 --seed 24
  run_cmd "$WALSHIP" replicate --once "$@" "$big" "$store"
  check_eq "${case}_big_segments_once_exit0" 0 "$LAST_RC" "($(last_out))"
  check_restore "${case}_big" "$store" "$big" "$@"
  check_remote_history "${case}_big_ls_contiguous" "$store" "$@"
  # The state the first --once shipped: its snapshot alone (the second
  # --once may have started a new history: the writer's exit resets the WAL).
  local snap
  snap=$(store_objects_sorted "$WORK/${case}_big_ls_contiguous.mirror" | awk '$2 == 1 {print $1; exit}')
  if [ -z "$snap" ]; then fail "${case}_big_snapshot_listed" "ls lists no snapshot"; return; fi
  rm -f "$WORK/${case}_big_snap.db"
  run_cmd "$WALSHIP" restore --txid "$snap" "$@" "$store" -o "$WORK/${case}_big_snap.db"
  check_eq "${case}_big_restore_snapshot_txid_exit0" 0 "$LAST_RC" "($(last_out))"
  check_eq "${case}_big_snapshot_txid_content" "$mid" "$(content_hash "$WORK/${case}_big_snap.db")"
}
big_case s3 "s3://$WS_S3_BUCKET/big" "${S3_OPTS[@]}"
if grep -q 'uploads' "$S3_PROXY_LOG"; then pass s3_big_used_multipart_upload
else fail s3_big_used_multipart_upload "no ?uploads request in the SigV4 proxy log"; fi
big_case http "$WS_HTTP_URL/big"

finish
