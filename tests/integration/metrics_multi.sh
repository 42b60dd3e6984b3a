#!/usr/bin/env bash
# Proves: one `replicate -c FILE --metrics` process serves every database's
# series on one endpoint, each labelled with its db and its destinations
# (a fan-out as "name1 + name2"); each database has its own control socket,
# so `wait` and `status -c FILE` reach each; the durable TXID of a
# two-destination database is the newest TXID of *both* stores.
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
check_eq one_help_per_family 1 "$(grep -c '^# HELP walship_durable_txid ' "$WORK/m.txt")"

run_cmd "$WALSHIP" status -c "$WORK/w.yml"
check_eq status_both_exit0 0 "$LAST_RC" "($(last_out))"
check_eq status_lists_both 2 "$(grep -cE '^/.* -> ' "$LAST_OUT")"

stop_sidecar
check_eq sockets_removed "no no" \
  "$([ -e "$a-walship.sock" ] && echo yes || echo no) $([ -e "$b-walship.sock" ] && echo yes || echo no)"
check_restore a_near "$WORK/a1" "$a"
check_restore b "$WORK/b1" "$b"
finish
