#!/usr/bin/env bash
# Proves: compaction (merged segments in levels) and retention never change
# what a restore inside the window produces.
#  A. History with inserts, updates and VACUUMs (the database shrinks and
#     grows back): restores to a sample of TXIDs before compaction are the
#     reference; after `walship compact` (all levels) the same TXIDs restore
#     to the same content, latest equals the source, and the plan for latest
#     reads far fewer objects.
#  B. Retention: burst 1, compaction, a boundary time T, burst 2; a pass
#     with the window starting at T deletes burst 1's segments and keeps
#     every TXID of burst 2 and T's own state restorable, exactly.
#  C. The sidecar's background maintenance (short windows via test knobs)
#     during continuous writes: restores of recent points keep succeeding
#     and the final state equals the source.
. "$(dirname "$0")/lib.sh"

ls_count() { "$WALSHIP" ls "$1" 2>/dev/null | awk -v k="$2" 'NR > 1 && $1 == k' | wc -l; }
plan_objects() { "$WALSHIP" restore --dry-run "$@" 2>/dev/null | sed -n 's/^plan: \([0-9]*\) objects.*/\1/p'; }

# ---------------------------------------------------------------- A
db=$WORK/a.db store=$WORK/astore
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 0 --no-compaction --retention off || finish
run_writer a1 --db "$db" --workload mixed --txns 200 --rate 400 --seed 11
run_writer a2 --db "$db" --workload vacuum --vacuum-every 20 --txns 60 --rate 300 --seed 12
run_writer a3 --db "$db" --workload update --txns 150 --rate 400 --seed 13
run_writer a4 --db "$db" --workload blob --txns 30 --rate 200 --seed 14
stop_sidecar a_sigterm_exit0
max=$(store_max_txid "$store")
samples="2 3 $((max / 4)) $((max / 3)) $((max / 2)) $((max - 7)) $((max - 1)) $max"
RANDOM=42
for _ in 1 2 3 4 5 6; do samples="$samples $((2 + RANDOM % (max - 2)))"; done
declare -A ref
for t in $samples; do
  run_cmd "$WALSHIP" restore --txid "$t" "$store" -o "$WORK/ref$t.db"
  ref[$t]=$(content_hash "$WORK/ref$t.db")
  rm -f "$WORK/ref$t.db"
done
before=$(plan_objects "$store")
run_cmd "$WALSHIP" compact --now +48h "$store"
check_eq a_compact_exit0 0 "$LAST_RC" "$(last_out)"
merged=$(ls_count "$store" merged)
if [ "$merged" -ge 1 ]; then pass a_merged_objects_written
else fail a_merged_objects_written "ls shows $merged merged objects: $(last_out)"; fi
after=$(plan_objects "$store")
if [ "$after" -ge 1 ] && [ "$after" -le 4 ] && [ "$before" -gt $((after * 3)) ]; then pass a_latest_plan_shrinks
else fail a_latest_plan_shrinks "objects in the plan for latest: $before before, $after after"; fi
bad=""
for t in $samples; do
  run_cmd "$WALSHIP" restore --txid "$t" "$store" -o "$WORK/c$t.db"
  h=$(content_hash "$WORK/c$t.db")
  [ "$LAST_RC" = 0 ] && [ "$h" = "${ref[$t]}" ] || bad="$bad txid$t(rc=$LAST_RC)"
  rm -f "$WORK/c$t.db"
done
check_eq a_every_sample_restores_identically "" "$bad"
run_cmd "$WALSHIP" restore "$store" -o "$WORK/alatest.db"
check_eq a_latest_equals_source "$(content_hash "$db")" "$(content_hash "$WORK/alatest.db")"
run_cmd "$WALSHIP" compact --now +48h "$store"
if grep -q "merged=0 " "$LAST_OUT"; then pass a_second_pass_merges_nothing
else fail a_second_pass_merges_nothing "$(last_out)"; fi

# ---------------------------------------------------------------- B
db=$WORK/b.db store=$WORK/bstore
mkdir -p "$store"
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 0 --no-compaction --retention off || finish
run_writer b1 --db "$db" --workload insert --txns 150 --rate 400 --seed 21
sleep 1
run_cmd "$WALSHIP" compact --now +48h "$store"
check_eq b_compact_burst1_exit0 0 "$LAST_RC" "$(last_out)"
sleep 1.1
tsec=$(date -u +%s)          # every burst-1 capture precedes this second
sleep 1.1
run_writer b2 --db "$db" --workload insert --txns 120 --rate 400 --seed 22
stop_sidecar b_sigterm_exit0
w0=151                       # snapshot is txid 1, burst 1 is txids 2..151
max=$(store_max_txid "$store")
check_eq b_history_is_one_txid_per_commit 271 "$max"
declare -A bref
bsamples="$w0 $((w0 + 1)) $((w0 + 2)) 180 200 $((max - 1)) $max"
for t in $bsamples; do
  run_cmd "$WALSHIP" restore --txid "$t" "$store" -o "$WORK/bref$t.db"
  bref[$t]=$(content_hash "$WORK/bref$t.db")
  rm -f "$WORK/bref$t.db"
done
now=$(date -u -d "@$((tsec + 600))" +%Y-%m-%dT%H:%M:%SZ)
n0=$("$WALSHIP" ls "$store" 2>/dev/null | tail -n +2 | wc -l)
run_cmd "$WALSHIP" compact --no-compaction --retention 10m --now "$now" --dry-run "$store"
n1=$("$WALSHIP" ls "$store" 2>/dev/null | tail -n +2 | wc -l)
if [ "$LAST_RC" = 0 ] && grep -qE "deleted=[1-9]" "$LAST_OUT" && [ "$n0" = "$n1" ]; then
  pass b_dry_run_deletes_nothing
else fail b_dry_run_deletes_nothing "rc=$LAST_RC objects $n0 -> $n1: $(last_out)"; fi
run_cmd "$WALSHIP" compact --no-compaction --retention 10m --now "$now" "$store"
n2=$("$WALSHIP" ls "$store" 2>/dev/null | tail -n +2 | wc -l)
old_l0=0
for f in "$store"/seg/*-*.seg; do
  b=$(basename "$f" .seg)
  case $b in *.*) continue ;; esac            # merged: kept as the chain
  [ $((16#${b#*-})) -le $w0 ] && old_l0=$((old_l0 + 1))
done
if [ "$LAST_RC" = 0 ] && grep -q "window_from_txid=$((w0 + 1))" "$LAST_OUT" &&
   [ "$n2" -lt "$n0" ] && [ "$old_l0" = 0 ]; then pass b_retention_deletes_burst1_segments
else fail b_retention_deletes_burst1_segments "rc=$LAST_RC objects $n0 -> $n2, $old_l0 burst-1 segments left: $(last_out)"; fi
bad=""
for t in $bsamples; do
  run_cmd "$WALSHIP" restore --txid "$t" "$store" -o "$WORK/bk$t.db"
  h=$(content_hash "$WORK/bk$t.db")
  [ "$LAST_RC" = 0 ] && [ "$h" = "${bref[$t]}" ] || bad="$bad txid$t(rc=$LAST_RC)"
  rm -f "$WORK/bk$t.db"
done
check_eq b_window_and_boundary_restore_identically "" "$bad"
run_cmd "$WALSHIP" restore --txid 100 "$store" -o "$WORK/bold.db"
if [ "$LAST_RC" = 3 ] && [ ! -e "$WORK/bold.db" ]; then pass b_txid_before_window_refused_cleanly
else fail b_txid_before_window_refused_cleanly "rc=$LAST_RC: $(last_out)"; fi
run_cmd "$WALSHIP" compact --no-compaction --retention 10m --now "$now" "$store"
if grep -q "deleted=0 " "$LAST_OUT"; then pass b_second_pass_deletes_nothing
else fail b_second_pass_deletes_nothing "$(last_out)"; fi

# ---------------------------------------------------------------- C
db=$WORK/c.db store=$WORK/cstore
mkdir -p "$store"
make_db "$db" || finish
WALSHIP_MAINT_PERIOD_MS=700 WALSHIP_COMPACT_WINDOW_MS=1000 \
  start_sidecar "$db" "$store" --sync-interval 100ms --snapshot-interval 2s --retention 5s || finish
start_writer c --db "$db" --workload mixed --duration 9 --rate 150 --seed 31; writer=$WRITER_PID
bad="" n=0
sleep 2
for _ in 1 2 3 4 5 6; do
  sleep 1.2
  when=$(date -u -d "@$(( $(date +%s) - 1 ))" +%Y-%m-%dT%H:%M:%SZ)   # 4 s inside the window
  rm -f "$WORK"/cpit.db*
  run_cmd "$WALSHIP" restore --timestamp "$when" "$store" -o "$WORK/cpit.db"
  n=$((n + 1))
  [ "$LAST_RC" = 0 ] && [ "$(integrity "$WORK/cpit.db")" = ok ] || bad="$bad $when(rc=$LAST_RC:$(last_out 1))"
done
wait_writer "$writer"
sleep 2
stop_sidecar c_sigterm_exit0
check_eq c_restores_inside_window_during_maintenance "" "$bad"
if grep -qE "maint: .*deleted=[1-9]" "$SIDECAR_LOG" && grep -qE "maint: .*merged=[1-9]" "$SIDECAR_LOG"; then
  pass c_background_maintenance_ran
else fail c_background_maintenance_ran "no maint line with merges and deletes in $SIDECAR_LOG"; fi
run_cmd "$WALSHIP" restore "$store" -o "$WORK/clatest.db"
check_eq c_latest_equals_source "$(content_hash "$db")" "$(content_hash "$WORK/clatest.db")"
finish
