#!/usr/bin/env bash
# Proves: `replicate --exec CMD` runs the application as its child and exits
# with the child's status (0, 3, 128+9 when killed by SIGKILL), after
# shipping everything the child committed (the last commits land after
# SIGTERM, during the app's own shutdown, and a long sync interval means
# only the final sync can have shipped them); SIGUSR1 and SIGHUP reach the
# child, SIGTERM is forwarded to it rather than acted on; a database the
# application creates only after start is picked up once it appears.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db
make_db "$db" || finish

# ---------------------------------------------------------- exit codes
check_rc exit0_passed_through 0 "$WALSHIP" replicate --exec "true" "$db" "$WORK/s0"
check_rc exit3_passed_through 3 "$WALSHIP" replicate --exec \
  "bash -c '\"$WRITER\" --db \"$db\" --txns 30 --seed 3 >/dev/null; exit 3'" "$db" "$WORK/s3"
check_restore exit3_shipped "$WORK/s3" "$db"
check_rc killed_by_sigkill_137 137 "$WALSHIP" replicate --exec 'sh -c "kill -KILL \$\$"' \
  "$db" "$WORK/s9"
check_rc exec_with_once_is_usage 2 "$WALSHIP" replicate --once --exec true "$db" "$WORK/sx"

# ---------------------------------------------------------- signals
app=$WORK/app.sh out=$WORK/app.out adb=$WORK/new.db
cat >"$app" <<'APP'
#!/usr/bin/env bash
db=$1 out=$2 writer=$3
trap 'echo USR1 >>"$out"' USR1
trap 'echo HUP >>"$out"' HUP
term=""
trap 'term=1' TERM
sleep 0.5                                  # the sidecar starts before the database exists
"$writer" --db "$db" --txns 0 >/dev/null   # the app creates it
echo ready >>"$out"
while [ -z "$term" ]; do "$writer" --db "$db" --txns 5 --seed $RANDOM >/dev/null; sleep 0.1; done
"$writer" --db "$db" --txns 7 --seed 99 >/dev/null   # commits during shutdown
echo TERM >>"$out"
exit 7
APP
: >"$out"
slog=$WORK/sidecar.exec.log
"$WALSHIP" replicate --sync-interval 1h --snapshot-interval 0 \
  --exec "bash '$app' '$adb' '$out' '$WRITER'" "$adb" "$WORK/sa" >"$slog" 2>&1 &
pid=$!
if wait_for_log '^ready' "$out" 30; then pass app_started
else fail app_started "$(tail -n 3 "$slog" | tr '\n' '|')"; fi
wait_for_log 'snapshot durable' "$slog" 30 && pass database_created_by_app_picked_up \
  || fail database_created_by_app_picked_up "$(tail -n 3 "$slog" | tr '\n' '|')"
kill -USR1 "$pid"
wait_for_log '^USR1' "$out" 30 && pass usr1_forwarded || fail usr1_forwarded "$(cat "$out")"
kill -HUP "$pid"
wait_for_log '^HUP' "$out" 30 && pass hup_forwarded || fail hup_forwarded "$(cat "$out")"
sleep 0.5
kill -TERM "$pid"
for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  kill -9 "$pid"; fail sigterm_forwarded_exit7 "still running 60 s after SIGTERM"
else
  wait "$pid"; rc=$?
  check_eq sigterm_forwarded_exit7 7 "$rc" "$(tail -n 3 "$slog" | tr '\n' '|')"
fi
grep -q '^TERM' "$out" && pass app_saw_term || fail app_saw_term "$(cat "$out")"
check_restore exec_final_sync "$WORK/sa" "$adb"

finish
