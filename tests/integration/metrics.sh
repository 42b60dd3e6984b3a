#!/usr/bin/env bash
# Proves: `replicate --metrics 127.0.0.1:0` serves Prometheus text on
# GET /metrics while the sidecar runs under load, and what it says agrees
# with the store: once caught up, walship_durable_txid is the newest TXID in
# the store (and in `walship ls`), the snapshot TXID is the store's snapshot,
# the lag is 0, and each upload is counted once in the upload histogram.
# A non-loopback address is refused unless allowed; other paths are 404.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish

# scrape URL: the body on stdout; non-zero if not 200
scrape() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    sys.stdout.write(r.read().decode())
    sys.exit(0 if r.status == 200 else 1)
except urllib.error.HTTPError as e:
    print("HTTP", e.code); sys.exit(e.code // 100)
except Exception as e:
    print("error", e); sys.exit(1)
PY
}
# metric NAME FILE: the value of the sample NAME{...} (first match)
metric() { awk -v n="$1" '$1 ~ "^"n"[{ ]" || $1 == n {print $2; exit}' "$2"; }

check_rc non_loopback_refused 2 "$WALSHIP" replicate --metrics 0.0.0.0:0 "$db" "$store"
if grep -q "loopback" "$LAST_OUT"; then pass non_loopback_message
else fail non_loopback_message "$(last_out)"; fi

start_sidecar "$db" "$store" --metrics 127.0.0.1:0 --sync-interval 200ms || finish
if ! wait_for_log 'metrics: listening url=' "$SIDECAR_LOG" 10; then
  fail metrics_listening "no 'listening' line: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"
  finish
fi
url=$(sed -n 's/.*metrics: listening url=\(http[^ ]*\).*/\1/p' "$SIDECAR_LOG" | head -n 1)
case $url in http://127.0.0.1:*/metrics) pass metrics_on_loopback ;;
  *) fail metrics_on_loopback "url '$url'" ;; esac

start_writer load --db "$db" --workload mixed --txns 600 --rate 300 --seed 7
w=$WRITER_PID
sleep 1
if scrape "$url" >"$WORK/during.txt"; then pass scrape_during_load
else fail scrape_during_load "$(head -c 300 "$WORK/during.txt")"; fi
for m in walship_up walship_durable_txid walship_seen_txid walship_lag_transactions \
         walship_lag_seconds walship_wal_bytes walship_uploaded_bytes_total \
         walship_objects_total walship_errors_total walship_snapshot_age_seconds \
         walship_sync_duration_seconds_count walship_checkpoint_duration_seconds_count \
         walship_barriers_total walship_barrier_busy_total walship_checkpoint_yields_total \
         walship_write_brakes_total walship_cycle_barriers_total; do
  [ -n "$(metric "$m" "$WORK/during.txt")" ] || missing+="$m "
done
check_eq all_families_present "" "${missing:-}"
grep -q '^# TYPE walship_sync_duration_seconds histogram' "$WORK/during.txt" &&
  pass histogram_typed || fail histogram_typed "no TYPE line"
check_eq up_is_1 1 "$(metric walship_up "$WORK/during.txt")"
d1=$(metric walship_durable_txid "$WORK/during.txt")
wait_writer "$w"

# caught up: wait makes the last commit durable, then the numbers must agree
check_rc wait_caught_up 0 "$WALSHIP" wait --timeout 30s "$db"
scrape "$url" >"$WORK/after.txt" || fail scrape_after "$(head -c 300 "$WORK/after.txt")"
max=$(store_max_txid "$store")
check_eq durable_is_store_max "$max" "$(metric walship_durable_txid "$WORK/after.txt")"
check_eq seen_is_durable "$max" "$(metric walship_seen_txid "$WORK/after.txt")"
check_eq lag_transactions_0 0 "$(metric walship_lag_transactions "$WORK/after.txt")"
check_eq lag_seconds_0 0 "$(metric walship_lag_seconds "$WORK/after.txt")"
if [ -n "$d1" ] && [ "$d1" -le "$max" ]; then pass durable_monotonic
else fail durable_monotonic "during=$d1 after=$max"; fi
run_cmd "$WALSHIP" ls "$store"
check_eq ls_newest_is_durable "$max" \
  "$(awk '$1 == "snap" || $1 == "seg" {split($2, r, "-"); t = r[length(r)]} END {print t + 0}' "$LAST_OUT")"
snap=$(store_objects_sorted "$store" | awk '$2 == 1 {t = $1} END {print t}')
check_eq snapshot_txid_is_store_snapshot "$snap" "$(metric walship_snapshot_txid "$WORK/after.txt")"
objs=$(metric walship_objects_total "$WORK/after.txt")
check_eq upload_histogram_counts_objects "$objs" \
  "$(metric walship_sync_duration_seconds_count "$WORK/after.txt")"
inf=$(grep '^walship_sync_duration_seconds_bucket{.*le="+Inf"}' "$WORK/after.txt" | awk '{print $2}')
check_eq histogram_inf_bucket_is_count "$objs" "$inf"
nstore=$(store_objects "$store" | wc -l)
if [ -n "$objs" ] && [ "$objs" -ge 2 ] && [ "$objs" -le "$nstore" ]; then pass objects_total_matches_store
else fail objects_total_matches_store "objects_total=$objs store holds $nstore"; fi
bytes=$(metric walship_uploaded_bytes_total "$WORK/after.txt")
sbytes=$(cat "$store"/snap/*.snap "$store"/seg/*.seg 2>/dev/null | wc -c)
check_eq uploaded_bytes_is_store_bytes "$sbytes" "$bytes"

code=$(scrape "${url%/metrics}/nope" | tail -n 1)
check_eq other_path_404 "HTTP 404" "$code"

stop_sidecar
check_restore final "$store" "$db"
finish
