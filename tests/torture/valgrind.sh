#!/usr/bin/env bash
# `make valgrind`: a replicate -> ls -> restore run of the normal build
# under valgrind's memcheck.  Fails on any memory error and on any
# "definitely" or "possibly" lost block (still-reachable blocks at exit,
# e.g. libcurl's and OpenSSL's global state, are not leaks).  Uses the
# file store plus, when the test servers are available, nothing else: the
# remote stores' leak paths are covered by `make asan` (LeakSanitizer).
. "$(dirname "$0")/../integration/lib.sh"
command -v valgrind >/dev/null || { fail setup "valgrind is not installed (apt-get install valgrind)"; finish; }
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,possible
    --show-leak-kinds=definite,possible --track-fds=no)
DB=$WORK/app.db STORE=$WORK/store
make_db "$DB"
run_writer seed --db "$DB" --txns 200 --seed 7
# the sidecar under valgrind, with writes going on, several syncs and a
# checkpoint, then SIGTERM (final sync, clean exit: all memory freed)
_SEQ=$((_SEQ + 1)); SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
"${VG[@]}" --log-file="$WORK/vg.replicate.%p" "$WALSHIP" replicate --sync-interval 200ms \
  --checkpoint-frames 100 --snapshot-interval 3s "$DB" "$STORE" >"$SIDECAR_LOG" 2>&1 &
SIDECAR_PID=$!
wait_for_log 'snapshot durable' "$SIDECAR_LOG" 120 || fail replicate_started "no snapshot in 120 s: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"
run_writer load --db "$DB" --duration 5 --rate 50 --seed 8
sleep 4
stop_sidecar replicate_valgrind_clean
vg_check() {  # NAME: the valgrind logs of that step are empty
  local f bad=""
  for f in "$WORK"/vg."$1".*; do [ -s "$f" ] && bad+="$(head -c 1500 "$f" | tr '\n' '|')"; done
  if [ -z "$bad" ]; then pass "$1_no_leak_or_error"; else fail "$1_no_leak_or_error" "$bad"; fi
}
vg_check replicate
check_rc ls_valgrind 0 "${VG[@]}" --log-file="$WORK/vg.ls.%p" "$WALSHIP" ls "$STORE"
vg_check ls
check_rc restore_valgrind 0 "${VG[@]}" --log-file="$WORK/vg.restore.%p" "$WALSHIP" restore "$STORE" -o "$WORK/r.db"
vg_check restore
check_eq restored_content "$(content_hash "$DB")" "$(content_hash "$WORK/r.db")"
# a restore that fails (gap) must not leak either
seg1=$(ls "$STORE"/seg/*.seg | head -n 1)
b=$(basename "$seg1" .seg)
rm -f "$seg1"
run_cmd "${VG[@]}" --log-file="$WORK/vg.restorefail.%p" "$WALSHIP" restore --txid "$((16#${b#*-}))" "$STORE" -o "$WORK/r2.db"
[ "$LAST_RC" != 0 ] && [ "$LAST_RC" != 99 ] && pass restore_gap_refused || fail restore_gap_refused "exit $LAST_RC: $(last_out)"
vg_check restorefail
finish
