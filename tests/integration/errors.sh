#!/usr/bin/env bash
# Proves the failure contract: a database not in WAL mode is refused (and left
# as it is); restore refuses an existing output without --force and with
# --force replaces it entirely (no stale -wal applied); a missing segment, a
# flipped byte in a segment and a truncated snapshot are refused with exit 3
# and a message naming the problem, leaving nothing in the output directory;
# --help exits 0 and usage errors exit 2.
. "$(dirname "$0")/lib.sh"

empty_dir() { [ -z "$(ls -A "$1" 2>/dev/null)" ]; }

# ---- not in WAL mode
nw=$WORK/rollback.db
sqlite3 "$nw" 'PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES(1);' >/dev/null
mkdir -p "$WORK/nwstore"
WS_CMD_TIMEOUT=20 run_cmd "$WALSHIP" replicate "$nw" "$WORK/nwstore"
check_eq notwal_exit3 3 "$LAST_RC" "($(last_out))"
if grep -qi 'wal' "$LAST_OUT"; then pass notwal_message_mentions_wal
else fail notwal_message_mentions_wal "$(last_out)"; fi
check_eq notwal_journal_mode_unchanged delete "$(sqlite3 "$nw" 'PRAGMA journal_mode')"
check_eq notwal_store_untouched "" "$(find "$WORK/nwstore" -type f | head -n 3)"

# ---- a store with several segments
db=$WORK/app.db store=$WORK/store
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 0 || finish
# A second sidecar on the same database must refuse (it would interleave TXIDs).
check_rc second_sidecar_refused 1 timeout 10 "$WALSHIP" replicate "$db" "$WORK/store2"
if grep -q "already replicating" "$LAST_OUT"; then pass second_sidecar_message
else fail second_sidecar_message "$(last_out)"; fi
run_writer app --db "$db" --workload mixed --txns 150 --rate 50 --seed 61
stop_sidecar sigterm_exit0

# ---- refusing and forcing an existing output
out=$WORK/out/app.db
mkdir -p "$WORK/out"
check_rc restore_ok 0 "$WALSHIP" restore "$store" -o "$out"
echo junk >"$WORK/out/marker"
cp "$out" "$WORK/before.db"
check_rc existing_out_exit4 4 "$WALSHIP" restore "$store" -o "$out"
check_eq existing_out_untouched "" "$(cmp "$out" "$WORK/before.db" 2>&1)"
# Turn OUT into a different database with a live -wal left behind by a crash.
rm -f "$out"
start_writer stale --db "$out" --workload insert --autocheckpoint 0 --rate 100 --duration 60 --seed 62
wpid=$WRITER_PID
sleep 1
kill -9 "$wpid"; wait "$wpid" 2>/dev/null; unset "_BG_NAME[$wpid]"
if [ -s "$out-wal" ]; then pass stale_wal_setup; else fail stale_wal_setup "no $out-wal left by the killed writer"; fi
check_rc force_exit0 0 "$WALSHIP" restore --force "$store" -o "$out"
check_eq force_result_equals_source "$(content_hash "$db")" "$(content_hash "$out")" \
  "(a stale $out-wal must not be applied)"
check_eq force_integrity ok "$(integrity "$out")"

# ---- choose two adjacent segments S, T (T continues S) such that no
# snapshot lies in [S.first, T.last]: restoring to T.last needs S.
S="" T="" TARGET=""
mapfile -t segs < <(store_objects_sorted "$store" | awk '$2 == 0')
mapfile -t snaps < <(store_objects_sorted "$store" | awk '$2 == 1 {print $1}')
for ((i = ${#segs[@]} - 2; i >= 0; i--)); do
  read -r sl _ sf <<<"${segs[i]}"
  read -r tl _ tf <<<"${segs[i + 1]}"
  [ "$tf" = $((sl + 1)) ] || continue
  ok=1
  for sn in "${snaps[@]}"; do
    if [ "$sn" -ge "$sf" ] && [ "$sn" -le "$tl" ]; then ok=0; fi
  done
  if [ $ok = 1 ]; then S="$sf $sl"; T="$tf $tl"; TARGET=$tl; break; fi
done
if [ -z "$S" ]; then
  fail corruption_setup "no two adjacent segments without a snapshot between them: $(store_objects_sorted "$store" | tr '\n' ',')"
  finish
fi
pass corruption_setup
seg_name() { printf '%016x-%016x.seg' $1 $2; }
SNAME=$(seg_name $S) TNAME=$(seg_name $T)
TOPT=()
[ "$TARGET" = "$(store_max_txid "$store")" ] || TOPT=(--txid "$TARGET")

# refused_restore CASE STORE WHAT-MUST-BE-NAMED...: exit 3, a message naming
# one of the given strings, and an empty output directory.
refused_restore() {
  local case=$1 st=$2 o=$WORK/$1.out; shift 2
  mkdir -p "$o"
  run_cmd "$WALSHIP" restore "${TOPT[@]}" "$st" -o "$o/r.db"
  check_eq "${case}_exit3" 3 "$LAST_RC" "($(last_out))"
  local want found=0
  for want in "$@"; do grep -qiwF -- "$want" "$LAST_OUT" && found=1; done
  if [ $found = 1 ]; then pass "${case}_message_names_it"
  else fail "${case}_message_names_it" "none of [$*] in: $(last_out)"; fi
  if empty_dir "$o"; then pass "${case}_leaves_nothing"
  else fail "${case}_leaves_nothing" "left in the output dir: $(ls -A "$o" | tr '\n' ' ')"; fi
}

read -r sf sl <<<"$S"
cp -r "$store" "$WORK/gap"
rm "$WORK/gap/seg/$SNAME"
refused_restore gap "$WORK/gap" "$sf" "$(printf '%016x' "$sf")"

cp -r "$store" "$WORK/flip"
f=$WORK/flip/seg/$TNAME
off=$(( $(stat -c %s "$f") / 2 ))
b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
printf "\\x$(printf %02x $((b ^ 0xff)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
refused_restore flipped_byte "$WORK/flip" "$TNAME"

cp -r "$store" "$WORK/trunc"
snap=""
for sn in "${snaps[@]}"; do [ "$sn" -le "$TARGET" ] && snap=$sn; done
sfile=$WORK/trunc/snap/$(printf '%016x' "${snap:-0}").snap
if [ -f "$sfile" ]; then
  truncate -s $(( $(stat -c %s "$sfile") / 2 )) "$sfile"
  refused_restore truncated_snapshot "$WORK/trunc" "$(basename "$sfile")"
else
  fail truncated_snapshot_setup "no snapshot at or before txid $TARGET"
fi

# ---- help and usage
check_rc help_exit0 0 "$WALSHIP" --help
if grep -q replicate "$LAST_OUT"; then pass help_lists_commands; else fail help_lists_commands "$(last_out)"; fi
check_rc restore_help_exit0 0 "$WALSHIP" restore --help
if grep -q -- '--force' "$LAST_OUT"; then pass restore_help_lists_options; else fail restore_help_lists_options "$(last_out)"; fi
check_rc unknown_option_exit2 2 "$WALSHIP" restore --no-such-option "$store" -o "$WORK/u.db"
WS_CMD_TIMEOUT=20 check_rc replicate_unknown_option_exit2 2 "$WALSHIP" replicate --no-such-option "$db" "$store"
check_rc unknown_command_exit2 2 "$WALSHIP" no-such-command
check_rc no_command_exit2 2 "$WALSHIP"
check_rc restore_missing_output_exit2 2 "$WALSHIP" restore "$store"

finish
