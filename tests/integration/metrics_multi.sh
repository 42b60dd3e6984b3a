#!/usr/bin/env bash
# Proves: one `replicate -c FILE --metrics` process serves every database's
# series on one endpoint, each labelled with its db and its destinations
# (a fan-out as "name1 + name2"); each database has its own control socket,
# so `wait` and `status -c FILE` reach each; the durable TXID of a
# two-destination database is the newest TXID of *both* stores; and each
# destination has its own bytes/objects/upload-time/error series whose
# counts match what that store holds (status shows one line per destination).
. "$(dirname "$0")/lib.sh"

a=$WORK/a.db b=$WORK/b.db
make_db "$a" || finish
make_db "$b" || finish
cat >"$WORK/w.yml" <<YML
databases:
  - path: $a
    destinations:
      - {url: $WORK/a1, name: near}
      - {url: $WORK/a2, name: far}
  - path: $b
    destinations:
      - {url: $WORK/b1}
YML
_SEQ=$((_SEQ + 1)); SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
"$WALSHIP" replicate -c "$WORK/w.yml" --metrics 127.0.0.1:0 --sync-interval 200ms >"$SIDECAR_LOG" 2>&1 &
SIDECAR_PID=$!
wait_for_log 'metrics: listening url=' "$SIDECAR_LOG" 10 || { fail started "$(tail -n 3 "$SIDECAR_LOG")"; finish; }
url=$(sed -n 's/.*metrics: listening url=\(http[^ ]*\).*/\1/p' "$SIDECAR_LOG" | head -n 1)
wait_for_log "control: listening path=$b-walship.sock" "$SIDECAR_LOG" 10 || fail control_b "$(tail -n 3 "$SIDECAR_LOG")"

wait_for_log "snapshot durable.* db=$a\$" "$SIDECAR_LOG" 30 &&
  wait_for_log "snapshot durable.* db=$b\$" "$SIDECAR_LOG" 30 || fail attached "$(tail -n 3 "$SIDECAR_LOG")"
run_writer wa --db "$a" --workload mixed --txns 150 --seed 1
run_writer wb --db "$b" --workload mixed --txns 60 --seed 2
check_rc wait_a 0 "$WALSHIP" wait --timeout 30s "$a"
check_rc wait_b 0 "$WALSHIP" wait --timeout 30s "$b"

python3 - "$url" >"$WORK/m.txt" <<'PY' || fail scrape "$(head -c 300 "$WORK/m.txt")"
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
PY
val() { grep -F "walship_durable_txid{db=\"$1\",dest=\"$2\"}" "$WORK/m.txt" | awk '{print $NF}'; }
check_eq a_durable_is_both_stores "$(store_max_txid "$WORK/a1") $(store_max_txid "$WORK/a2")" \
  "$(val "$a" "near + far") $(val "$a" "near + far")"
check_eq b_durable_is_its_store "$(store_max_txid "$WORK/b1")" "$(val "$b" "$WORK/b1")"
check_eq two_up_series 2 "$(grep -c '^walship_up{' "$WORK/m.txt")"
# per destination: what each store holds is what its series say it received
store_bytes() { find "$1/snap" "$1/seg" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
store_count() { find "$1/snap" "$1/seg" -type f 2>/dev/null | wc -l; }
m() { grep -F "$1{db=\"$2\",dest=\"$3\"}" "$WORK/m.txt" | awk '{print $NF}'; }
for d in near:a1 far:a2; do
  n=${d%%:*} s=$WORK/${d#*:}
  check_eq "${n}_bytes_are_its_store" "$(store_bytes "$s")" "$(m walship_uploaded_bytes_total "$a" "$n")"
  check_eq "${n}_objects_are_its_store" "$(store_count "$s")" "$(m walship_objects_total "$a" "$n")"
  check_eq "${n}_sync_histogram_counts_objects" "$(store_count "$s")" \
    "$(m walship_sync_duration_seconds_count "$a" "$n")"
  check_eq "${n}_store_errors_series" 0 \
    "$(grep -F "walship_errors_total{db=\"$a\",dest=\"$n\",kind=\"store\"}" "$WORK/m.txt" | awk '{print $NF}')"
done
check_eq fanout_has_no_joined_bytes_series 0 \
  "$(grep -cF "walship_uploaded_bytes_total{db=\"$a\",dest=\"near + far\"}" "$WORK/m.txt")"
check_eq single_dest_bytes_are_its_store "$(store_bytes "$WORK/b1")" \
  "$(m walship_uploaded_bytes_total "$b" "$WORK/b1")"
check_eq single_dest_one_bytes_series 1 "$(grep -c "^walship_uploaded_bytes_total{db=\"$b\"" "$WORK/m.txt")"
check_eq one_help_per_family 1 "$(grep -c '^# HELP walship_durable_txid ' "$WORK/m.txt")"

run_cmd "$WALSHIP" status -c "$WORK/w.yml"
check_eq status_both_exit0 0 "$LAST_RC" "($(last_out))"
check_eq status_lists_both 2 "$(grep -cE '^/.* -> ' "$LAST_OUT")"
check_eq status_dest_lines "near far" "$(sed -n 's/^  dest \([a-z]*\): uploaded .*/\1/p' "$LAST_OUT" | tr '\n' ' ' | sed 's/ $//')"
check_eq status_near_objects "$(store_count "$WORK/a1")" \
  "$(sed -n 's/^  dest near: uploaded \([0-9]*\) objects.*/\1/p' "$LAST_OUT")"

stop_sidecar
check_eq sockets_removed "no no" \
  "$([ -e "$a-walship.sock" ] && echo yes || echo no) $([ -e "$b-walship.sock" ] && echo yes || echo no)"
check_restore a_near "$WORK/a1" "$a"
check_restore b "$WORK/b1" "$b"
finish
