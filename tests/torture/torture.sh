#!/usr/bin/env bash
# The sidecar-crash torture campaign (docs/reliability.md defines what it
# proves).  A seeded writer (writer.py) commits continuously and records
# "seq hash" after each commit; meanwhile the sidecar is kill -9'ed at random
# moments (during reads, compression, uploads, snapshots, checkpoints) and
# restarted, TRIALS times, with small --snapshot-interval/--checkpoint-frames
# so those paths run often, and the writer checkpoints (every mode) on its
# own.  Then a clean final sync, and the checks:
#   - the store's history is contiguous from its first snapshot;
#   - the latest restore is exactly the writer's last commit;
#   - a restore to each of RESTORES sampled TXIDs (every object boundary
#     first, then random ones) yields a database whose seq the writer
#     committed and whose content hash is what the writer recorded for it,
#     with seq strictly increasing in TXID;
#   - KILL_RESTORES restores killed -9 at random moments leave the output
#     path absent or holding a complete database that passes the same check.
# Every random choice comes from SEED (printed first); a failure prints the
# command that reruns the same campaign.
#
# usage: tests/torture/torture.sh [--long]
#   default (short, inside `make test`): 12 kills, 25 restores, 4 killed
#   restores, < 60 s.  --long (`make torture`): 300 kills, 200 restores,
#   40 killed restores.  Env: SEED, TRIALS, RESTORES, KILL_RESTORES override.
. "$(dirname "$0")/../integration/lib.sh"

mode=short
[ "${1:-}" = --long ] && mode=long
if [ $mode = long ]; then def_trials=300 def_restores=200 def_kr=40
else def_trials=12 def_restores=25 def_kr=4; fi
SEED=${SEED:-$(( $(date +%s%N) % 1000000007 ))}
TRIALS=${TRIALS:-$def_trials} RESTORES=${RESTORES:-$def_restores} KILL_RESTORES=${KILL_RESTORES:-$def_kr}
RANDOM=$SEED
repro="SEED=$SEED TRIALS=$TRIALS RESTORES=$RESTORES KILL_RESTORES=$KILL_RESTORES bash tests/torture/torture.sh $([ $mode = long ] && echo --long)"
echo "torture: seed $SEED, $TRIALS kill -9 trials, $RESTORES restores, $KILL_RESTORES killed restores"
echo "torture: reproduce with: $repro"
PY=$(dirname "$0")/writer.py
DB=$WORK/app.db STORE=$WORK/store LOG=$WORK/commits.log
reported=0
# The first failure keeps the work directory (store, commits.log, every
# sidecar log) for the post-mortem.
tfail() {
  fail "$@"
  [ $reported = 1 ] || echo "torture: FAILED; reproduce with: $repro; evidence kept in $WORK"
  reported=1 WS_KEEP_WORK=1
}

# A random duration in ms in [lo, hi).
rnd_ms() { echo $(( $1 + RANDOM % ($2 - $1) )); }
ms_sleep() { local ms=$1; sleep "$(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))"; }

python3 "$PY" run "$DB" "$LOG" --seed "$SEED" --rate 150 --ckpt-every 97 >"$WORK/writer.log" 2>&1 &
WPID=$!
_BG_NAME[$WPID]=writer
for ((i = 0; i < 300; i++)); do [ -s "$LOG" ] && break; sleep 0.1; done

kills=0 died=0
for ((i = 1; i <= TRIALS; i++)); do
  opts=(--sync-interval "$(( RANDOM % 3 == 0 ? 0 : RANDOM % 300 ))ms" --poll-interval 50ms
        --snapshot-interval "$(( 1 + RANDOM % 4 ))s" --checkpoint-frames "$(( 20 + RANDOM % 200 ))"
        --compress-level "$(( RANDOM % 10 ))" --log-level debug)
  _SEQ=$((_SEQ + 1))
  SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
  "$WALSHIP" replicate "${opts[@]}" "$DB" "$STORE" >"$SIDECAR_LOG" 2>&1 &
  SIDECAR_PID=$!
  ms_sleep "$(rnd_ms 20 1200)"
  if ! kill -0 "$SIDECAR_PID" 2>/dev/null; then
    # a failure, but the campaign goes on: later trials may find more
    wait "$SIDECAR_PID"; rc=$?; SIDECAR_PID=""
    died=$((died + 1))
    tfail "trial_$i" "sidecar exited $rc before the kill: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"
    continue
  fi
  kill9_sidecar
  kills=$((kills + 1))
done
echo "torture: $kills sidecar kills, $died sidecar starts that failed on their own"
kill -0 $WPID 2>/dev/null || tfail writer_alive "the writer died: $(tail -n 3 "$WORK/writer.log" | tr '\n' '|')"
kill -TERM $WPID; wait $WPID; unset "_BG_NAME[$WPID]"
commits=$(wc -l <"$LOG")
echo "torture: writer committed $commits transactions"

# Final clean sync: everything committed must reach the store.
start_sidecar "$DB" "$STORE" --sync-interval 0 --poll-interval 50ms && sleep 1 && stop_sidecar final_sync_exit0
check_contiguous store_contiguous "$STORE"

# hash_check NAME DB [TXID]: DB's seq and hash are a recorded commit
# (sets GOT_SEQ).
hash_check() {
  local name=$1 db=$2 line seq h want
  line=$(python3 "$PY" hash "$db" 2>&1) || { tfail "$name" "cannot read $db: $line"; return 1; }
  seq=${line%% *} h=${line#* }
  want=$(awk -v s="$seq" '$1 == s {print $2; exit}' "$LOG")
  GOT_SEQ=$seq
  if [ -z "$want" ]; then tfail "$name" "restored seq $seq was never committed (writer's last: $commits)"; return 1; fi
  if [ "$want" != "$h" ]; then tfail "$name" "seq $seq: hash $h, the writer recorded $want"; return 1; fi
}

run_cmd "$WALSHIP" restore "$STORE" -o "$WORK/latest.db"
if [ "$LAST_RC" != 0 ]; then tfail latest_restore "exit $LAST_RC: $(last_out)"
else
  hash_check latest_hash "$WORK/latest.db" && check_eq latest_is_last_commit "$commits" "$GOT_SEQ"
fi

# TXIDs to restore: every object's last TXID first, then random ones.
mapfile -t ends < <(store_objects_sorted "$STORE" | cut -d' ' -f1 | sort -nu)
lo=$(store_objects_sorted "$STORE" | awk '$2 == 1 {print $1; exit}')
hi=${ends[-1]}
samples=("${ends[@]}")
while [ ${#samples[@]} -lt "$RESTORES" ] && [ "$hi" -gt "$lo" ]; do
  samples+=($(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1) )))
done
mapfile -t samples < <(printf '%s\n' "${samples[@]}" | sort -nu | head -n "$RESTORES")
bad=0 verified=0 prev_seq=-1 prev_t=0 jumps=0
for t in "${samples[@]}"; do
  [ "$t" -ge "$lo" ] || continue
  out=$WORK/at.db
  rm -f "$out" "$out"-*
  run_cmd "$WALSHIP" restore --txid "$t" "$STORE" -o "$out"
  if [ "$LAST_RC" != 0 ]; then tfail "restore_txid_$t" "exit $LAST_RC: $(last_out)"; bad=$((bad + 1)); continue; fi
  hash_check "restore_txid_$t" "$out" || { bad=$((bad + 1)); continue; }
  if [ "$GOT_SEQ" -le "$prev_seq" ]; then
    tfail "order_txid_$t" "txid $t restores seq $GOT_SEQ, txid $prev_t restored seq $prev_seq"
    bad=$((bad + 1))
  fi
  [ $(( GOT_SEQ - prev_seq )) -gt $(( t - prev_t )) ] && [ $prev_seq -ge 0 ] && jumps=$((jumps + 1))
  prev_seq=$GOT_SEQ prev_t=$t
  verified=$((verified + 1))
done
echo "torture: $verified TXIDs restored and verified ($lo..$hi; $jumps sample intervals where commits were folded into a snapshot)"
[ $bad = 0 ] && [ $verified -gt 0 ] && pass sampled_restores_verified
[ $verified -gt 0 ] || tfail sampled_restores_verified "no TXID sample was restorable"

# kill -9 during restore: OUT is absent or a complete verified database.
kr_absent=0 kr_complete=0
for ((i = 1; i <= KILL_RESTORES; i++)); do
  out=$WORK/killed.db
  rm -f "$out" "$out"-*
  "$WALSHIP" restore --skip-integrity-check "$STORE" -o "$out" >"$WORK/kr.log" 2>&1 &
  rp=$!
  ms_sleep "$(rnd_ms 1 150)"
  kill -9 $rp 2>/dev/null; wait $rp 2>/dev/null
  if [ ! -e "$out" ]; then kr_absent=$((kr_absent + 1)); continue; fi
  if hash_check "killed_restore_$i" "$out" && [ "$(integrity "$out")" = ok ]; then
    kr_complete=$((kr_complete + 1))
  else
    tfail "killed_restore_$i" "a restore killed -9 left $out that is not a complete database: $(integrity "$out")"
  fi
done
stale=$(ls -A "$WORK" | grep -c '^\.killed\.db\.walship-restore-')
echo "torture: $KILL_RESTORES restores killed: $kr_absent left nothing, $kr_complete left a complete verified database; $stale temp files left next to the output"
[ $((kr_absent + kr_complete)) = "$KILL_RESTORES" ] && pass killed_restores
echo "torture: summary seed=$SEED kills=$kills died=$died commits=$commits verified_txids=$verified killed_restores=$KILL_RESTORES"
finish
