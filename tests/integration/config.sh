#!/usr/bin/env bash
# Proves: the replicate configuration file (docs/config.md) is validated
# strictly — every bad file is refused with exit 2 and a message naming
# FILE:LINE and the key; ${VAR} and ${VAR:-default} are expanded; `config
# check` prints the effective configuration with secrets masked; a file
# holding a literal secret draws a warning only when world-readable; flags
# override the file (--log-format json over log-format: text, --metrics and
# --control off over metrics: and control:); metrics: and control: start the
# endpoint and the socket where they say; a one-database file replicates and
# restores.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db
make_db "$db" || finish
run_writer fill --db "$db" --txns 50 --seed 5

# ---------------------------------------------------------- good file
export WS_T_DEST=$WORK/store
export WS_T_SECRET=env-secret-value-123
unset WS_T_UNSET
cat >"$WORK/good.yml" <<YML
# a comment
log-format: text
sync-interval: 250ms          # default for every database
metrics: 127.0.0.1:9464
control: $WORK/ctl.sock
aws:
  access-key-id: AKIDEXAMPLE
  secret-access-key: \${WS_T_SECRET}
databases:
  - path: $db
    name: app
    snapshot-interval: \${WS_T_UNSET:-2h}
    wal-max: 32MiB
    destinations:
      - url: \${WS_T_DEST}
        retention: 3d
      - url: http://user:pa55word@127.0.0.1:9/dav
        name: web
        max-retries: 3
YML
check_rc check_good_exit0 0 "$WALSHIP" config check -c "$WORK/good.yml"
out=$(cat "$LAST_OUT")
grep -q "url: \"$WORK/store\"" <<<"$out" && pass env_expanded \
  || fail env_expanded "no expanded url in: $(head -c 600 <<<"$out")"
grep -q 'snapshot-interval: 2h' <<<"$out" && pass env_default_used \
  || fail env_default_used "$(grep snapshot <<<"$out")"
grep -q 'sync-interval: 250ms' <<<"$out" && pass top_level_default_inherited \
  || fail top_level_default_inherited "$(grep sync <<<"$out")"
grep -q 'wal-max: 32MiB' <<<"$out" && pass size_printed || fail size_printed "$(grep wal-max <<<"$out")"
grep -q '^metrics: "127.0.0.1:9464"' <<<"$out" && grep -q "^control: \"$WORK/ctl.sock\"" <<<"$out" &&
  pass metrics_control_printed || fail metrics_control_printed "$(grep -E '^(metrics|control)' <<<"$out")"
if grep -q 'env-secret-value-123\|pa55word' <<<"$out"; then
  fail secrets_masked "a secret is printed: $(grep -n 'secret\|pa55' <<<"$out")"
elif grep -q 'secret-access-key: "\*\*\*\*\*\*\*\*"' <<<"$out" &&
     grep -q 'user:\*\*\*\*\*\*\*\*@127.0.0.1' <<<"$out"; then
  pass secrets_masked
else fail secrets_masked "no masked values in: $(grep -n 'secret\|user' <<<"$out")"; fi
check_rc check_reparses_own_output 0 bash -c "
  '$WALSHIP' config check -c '$WORK/good.yml' >'$WORK/eff.yml' &&
  '$WALSHIP' config check -c '$WORK/eff.yml'"

# the documented example and the shipped example are valid
sed -n '/^```yaml/,/^```/p' "$WS_ROOT/docs/config.md" | sed '1d;$d' >"$WORK/doc.yml"
check_rc docs_config_example_valid 0 env AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s \
  "$WALSHIP" config check -c "$WORK/doc.yml"
check_rc examples_walship_yml_valid 0 env WALSHIP_BUCKET=b \
  "$WALSHIP" config check -c "$WS_ROOT/examples/walship.yml"

# ---------------------------------------------------------- bad files
# bad NAME LINE KEY: the file $WORK/NAME.yml (written by the caller) is
# refused by `config check` and by `replicate -c`, naming NAME.yml:LINE: and KEY.
bad() {
  local name=$1 line=$2 key=$3 f=$WORK/$1.yml cmd
  for cmd in "config check" "replicate --once"; do
    # shellcheck disable=SC2086
    run_cmd "$WALSHIP" $cmd -c "$f"
    local msg
    msg=$(tail -n 1 "$LAST_OUT")
    if [ "$LAST_RC" != 2 ]; then
      fail "bad_${name}_${cmd%% *}" "exit $LAST_RC, want 2: $msg"
    elif ! grep -q "$name.yml:$line:[0-9]*: .*$key" <<<"$msg"; then
      fail "bad_${name}_${cmd%% *}" "message lacks $name.yml:$line: and '$key': $msg"
    else pass "bad_${name}_${cmd%% *}"; fi
  done
}
hdr="databases:
  - path: $db"
printf '%s\n' "bogus: 1" "$hdr" "    destinations: [{url: $WORK/s}]" >"$WORK/unknown_top.yml"
bad unknown_top 1 bogus
printf '%s\n' "$hdr" "    sync-intervall: 1s" "    destinations: [{url: $WORK/s}]" >"$WORK/unknown_db.yml"
bad unknown_db 3 sync-intervall
printf '%s\n' "$hdr" "    destinations:" "      - url: $WORK/s" "        regoin: x" >"$WORK/unknown_dest.yml"
bad unknown_dest 5 regoin
printf '%s\n' "$hdr" "    sync-interval: 5 parsecs" "    destinations: [{url: $WORK/s}]" >"$WORK/bad_duration.yml"
bad bad_duration 3 sync-interval
printf '%s\n' "$hdr" "    compress-level: 12" "    destinations: [{url: $WORK/s}]" >"$WORK/bad_level.yml"
bad bad_level 3 compress-level
printf '%s\n' "$hdr" "    wal-max: lots" "    destinations: [{url: $WORK/s}]" >"$WORK/bad_size.yml"
bad bad_size 3 wal-max
printf '%s\n' "$hdr" "    destinations:" "      - url: \${WS_T_NOT_SET_ANYWHERE}" >"$WORK/unset_env.yml"
bad unset_env 4 'url: environment variable WS_T_NOT_SET_ANYWHERE is not set'
printf '%s\n' "$hdr" "    destinations:" "      - url: $WORK/s" "        sync-interval: 1s" >"$WORK/dest_sync.yml"
bad dest_sync 5 'sync-interval: is a database setting'
printf '%s\n' "$hdr" "    destinations: [{url: $WORK/s}]" "    destinations: [{url: $WORK/t}]" >"$WORK/dup_key.yml"
bad dup_key 4 'destinations: given twice'
printf '%s\n' "$hdr" "    destinations:" "      - url: $WORK/s" "        insecure: maybe" >"$WORK/bad_bool.yml"
bad bad_bool 5 insecure
printf '%s\n' "log-level: chatty" "$hdr" "    destinations: [{url: $WORK/s}]" >"$WORK/bad_loglevel.yml"
bad bad_loglevel 1 log-level
printf '%s\n' "$hdr" "    destinations: []" >"$WORK/no_dest.yml"
bad no_dest 3 destinations
printf '%s\n' "log-level: info" >"$WORK/no_dbs.yml"
bad no_dbs 1 databases
printf '%s\n' "$hdr" "    destinations: [{url: $WORK/s}" >"$WORK/syntax.yml"
bad syntax 4 'flow'
printf '%s\n' "metrics: 9090" "$hdr" "    destinations: [{url: $WORK/s}]" >"$WORK/bad_metrics.yml"
bad bad_metrics 1 'metrics: want HOST:PORT'
printf '%s\n' "$hdr" "    destinations: [{url: $WORK/s}]" "metrics: 127.0.0.1:99999" >"$WORK/bad_port.yml"
bad bad_port 4 'metrics: want HOST:PORT'
printf '%s\n' "metrics-allow-remote: perhaps" "$hdr" "    destinations: [{url: $WORK/s}]" >"$WORK/bad_remote.yml"
bad bad_remote 1 metrics-allow-remote
printf '%s\n' "control: $WORK/one.sock" "$hdr" "    destinations: [{url: $WORK/s}]" \
  "  - path: $WORK/other.db" "    destinations: [{url: $WORK/s2}]" >"$WORK/ctl_two_dbs.yml"
bad ctl_two_dbs 1 'control: a socket path serves one database'
printf '%s\n' "control: [a, b]" "$hdr" "    destinations: [{url: $WORK/s}]" >"$WORK/ctl_list.yml"
bad ctl_list 1 'control: expected a single value'
printf '%s\n' "$hdr" "    destinations: [{url: $WORK/s}]" "  - path: $db" \
  "    destinations: [{url: $WORK/s2}]" >"$WORK/dup_db.yml"
run_cmd "$WALSHIP" replicate --once -c "$WORK/dup_db.yml"
if [ "$LAST_RC" = 2 ] && grep -q "listed twice" "$LAST_OUT"; then pass bad_duplicate_db
else fail bad_duplicate_db "exit $LAST_RC: $(last_out)"; fi
check_rc missing_file_exit2 2 "$WALSHIP" config check -c "$WORK/nope.yml"
check_rc config_and_positional_exit2 2 "$WALSHIP" replicate -c "$WORK/good.yml" "$db" "$WORK/s"

# ---------------------------------------------------------- replicate from a file
cat >"$WORK/one.yml" <<YML
log-format: text
aws:
  access-key-id: AKIDEXAMPLE
  secret-access-key: literal-secret-in-file
databases:
  - path: $db
    destinations:
      - url: $WORK/one
YML
chmod 644 "$WORK/one.yml"
check_rc once_from_file_exit0 0 "$WALSHIP" replicate --once -c "$WORK/one.yml"
grep -q 'world-readable' "$LAST_OUT" && pass warns_world_readable_secret \
  || fail warns_world_readable_secret "no warning: $(last_out)"
grep -q 'literal-secret-in-file' "$LAST_OUT" && fail secret_not_logged "$(last_out)" \
  || pass secret_not_logged
check_restore from_file "$WORK/one" "$db"
chmod 600 "$WORK/one.yml"
run_writer more --db "$db" --txns 20 --seed 6
check_rc once_private_file_exit0 0 "$WALSHIP" replicate --once --log-format json -c "$WORK/one.yml"
grep -q 'world-readable' "$LAST_OUT" && fail no_warning_when_private "$(last_out)" \
  || pass no_warning_when_private
# the file says text, the flag says json: every line is a JSON object
if [ -s "$LAST_OUT" ] && python3 -c '
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert {"time", "level", "component", "msg"} <= set(o), o
' "$LAST_OUT" 2>"$WORK/json.err"; then pass flag_overrides_file_log_format_json
else fail flag_overrides_file_log_format_json "$(head -c 300 "$WORK/json.err") $(last_out)"; fi
grep -q '"txid":[0-9]' "$LAST_OUT" && pass json_fields_typed \
  || fail json_fields_typed "no numeric txid field: $(last_out 2)"
check_restore from_file_again "$WORK/one" "$db"

# ---------------------------------------------------------- metrics and control from the file
cat >"$WORK/obs.yml" <<YML
metrics: 127.0.0.2:0
control: $WORK/obs.sock
databases:
  - path: $db
    destinations: [{url: $WORK/obs}]
YML
_SEQ=$((_SEQ + 1)); SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
"$WALSHIP" replicate -c "$WORK/obs.yml" >"$SIDECAR_LOG" 2>&1 &
SIDECAR_PID=$!
wait_for_log 'control: listening' "$SIDECAR_LOG" 10 || fail obs_started "$(tail -n 3 "$SIDECAR_LOG")"
grep -q 'metrics: listening url=http://127.0.0.2:[1-9]' "$SIDECAR_LOG" && pass file_metrics_address \
  || fail file_metrics_address "$(grep metrics "$SIDECAR_LOG")"
grep -q "control: listening path=$WORK/obs.sock " "$SIDECAR_LOG" && pass file_control_path \
  || fail file_control_path "$(grep control: "$SIDECAR_LOG")"
check_rc status_uses_file_control 0 "$WALSHIP" status -c "$WORK/obs.yml"
stop_sidecar obs_sigterm_exit0
# flags win: --metrics another address, --control off
_SEQ=$((_SEQ + 1)); SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
"$WALSHIP" replicate -c "$WORK/obs.yml" --metrics 127.0.0.1:0 --control off >"$SIDECAR_LOG" 2>&1 &
SIDECAR_PID=$!
wait_for_log 'metrics: listening' "$SIDECAR_LOG" 10 || fail obs_flags_started "$(tail -n 3 "$SIDECAR_LOG")"
wait_for_log 'ship: snapshot durable|ship: resum|ship: durable' "$SIDECAR_LOG" 10 >/dev/null
grep -q 'metrics: listening url=http://127.0.0.1:[1-9]' "$SIDECAR_LOG" && pass flag_overrides_file_metrics \
  || fail flag_overrides_file_metrics "$(grep metrics "$SIDECAR_LOG")"
if grep -q 'control: listening' "$SIDECAR_LOG" || [ -e "$WORK/obs.sock" ]; then
  fail flag_control_off_overrides_file "$(grep control: "$SIDECAR_LOG")"
else pass flag_control_off_overrides_file; fi
stop_sidecar obs_flags_sigterm_exit0

finish
