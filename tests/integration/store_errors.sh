#!/usr/bin/env bash
# Proves the remote-store failure contract: a wrong secret or an unknown
# access key (refused by the SigV4 proxy with 403), a wrong region, and a
# missing bucket make replicate, restore and ls exit 1 with one error line
# that says what is wrong (access denied / credentials, region, no such
# bucket) and names the bucket, and no secret in any output; a store whose
# endpoint refuses connections makes restore and ls exit 1 in bounded time
# with a message naming the endpoint, and the sidecar either exits the same
# way or keeps retrying and still stops on SIGTERM; an empty remote store
# restores to nothing, and is not an error with --if-replica-exists.
. "$(dirname "$0")/lib.sh"
. "$WS_ROOT/tests/servers/servers.sh"

start_s3
start_nginx
S3=(--endpoint "$WS_S3_ENDPOINT")
GOOD_SECRET=$AWS_SECRET_ACCESS_KEY

# A small store to restore from, written with the right credentials.
db=$WORK/app.db
make_db "$db" && run_writer app --db "$db" --workload mixed --txns 200 --seed 71
run_cmd "$WALSHIP" replicate --once "${S3[@]}" "$db" "s3://$WS_S3_BUCKET/app"
check_eq setup_replicate_once_exit0 0 "$LAST_RC" "($(last_out))"

# error_lines: the lines of LAST_ERR that report an error (the CLI's own
# "walship: ..." lines, or log lines at level ERROR).
error_lines() { grep -E '^walship: | ERROR ' "$LAST_ERR"; }

# check_one_error NAME PATTERN WORD: the last command failed with exit 1
# (runtime failure: not a usage error, not a timeout) and exactly one error
# line, matching the ERE PATTERN (case insensitive) and containing WORD; no
# output holds a secret.
check_one_error() {
  local name=$1 pat=$2 word=$3 n line
  if [ "$LAST_RC" != 1 ]; then
    fail "${name}_exit1" "exit $LAST_RC: $(tail -n 3 "$LAST_ERR" | tr '\n' '|')"
    return
  fi
  pass "${name}_exit1"
  n=$(error_lines | wc -l)
  line=$(error_lines | head -n 1)
  if [ "$n" != 1 ]; then
    fail "${name}_one_error_line" "$n error lines: $(tr '\n' '|' <"$LAST_ERR" | cut -c1-400)"
  elif ! grep -qiE -- "$pat" <<<"$line"; then
    fail "${name}_one_error_line" "does not say /$pat/: $line"
  elif ! grep -qF -- "$word" <<<"$line"; then
    fail "${name}_one_error_line" "does not name '$word': $line"
  else pass "${name}_one_error_line"; fi
  if grep -qF -- "$GOOD_SECRET" "$LAST_OUT" "$LAST_ERR" ||
     grep -qF -- "${AWS_SECRET_ACCESS_KEY:-}" "$LAST_OUT" "$LAST_ERR"; then
    fail "${name}_no_secret_in_output" "a secret appears in the output"
  else pass "${name}_no_secret_in_output"; fi
}

DENIED='access denied|denied|credential|signature|forbidden|403|InvalidAccessKeyId|SignatureDoesNotMatch'
UNREACHABLE='connect|refused|unreachable|reach'
WS_CMD_TIMEOUT=60

# ---- wrong secret (the proxy answers 403 SignatureDoesNotMatch)
before=$(grep -c 'SignatureDoesNotMatch' "$S3_PROXY_LOG")
export AWS_SECRET_ACCESS_KEY=wrong-secret-for-this-test
run_cmd_err "$WALSHIP" replicate "${S3[@]}" "$db" "s3://$WS_S3_BUCKET/denied"
check_one_error wrong_secret_replicate "$DENIED" "$WS_S3_BUCKET"
run_cmd_err "$WALSHIP" restore "${S3[@]}" "s3://$WS_S3_BUCKET/app" -o "$WORK/denied.db"
check_one_error wrong_secret_restore "$DENIED" "$WS_S3_BUCKET"
check_eq wrong_secret_restore_creates_nothing "" "$(ls "$WORK"/denied.db* 2>/dev/null)"
run_cmd_err "$WALSHIP" ls "${S3[@]}" "s3://$WS_S3_BUCKET/app"
check_one_error wrong_secret_ls "$DENIED" "$WS_S3_BUCKET"
after=$(grep -c 'SignatureDoesNotMatch' "$S3_PROXY_LOG")
if [ "$after" -gt "$before" ]; then pass wrong_secret_refused_by_proxy_403
else fail wrong_secret_refused_by_proxy_403 "the SigV4 proxy logged no SignatureDoesNotMatch"; fi
export AWS_SECRET_ACCESS_KEY=$GOOD_SECRET

# ---- unknown access key id (403 InvalidAccessKeyId)
AWS_ACCESS_KEY_ID=NOSUCHKEY run_cmd_err "$WALSHIP" restore "${S3[@]}" "s3://$WS_S3_BUCKET/app" -o "$WORK/denied2.db"
check_one_error unknown_key_restore "$DENIED" "$WS_S3_BUCKET"
if grep -q 'InvalidAccessKeyId' "$S3_PROXY_LOG"; then pass unknown_key_refused_by_proxy_403
else fail unknown_key_refused_by_proxy_403 "the SigV4 proxy logged no InvalidAccessKeyId"; fi

# ---- a region other than the bucket's (400 AuthorizationHeaderMalformed)
run_cmd_err "$WALSHIP" restore "${S3[@]}" --region eu-west-1 "s3://$WS_S3_BUCKET/app" -o "$WORK/region.db"
check_one_error wrong_region_restore 'region|AuthorizationHeaderMalformed' "$WS_S3_BUCKET"

# ---- missing bucket (s3rver: 404 NoSuchBucket)
NB=walship-no-such-bucket
run_cmd_err "$WALSHIP" replicate "${S3[@]}" "$db" "s3://$NB/x"
check_one_error missing_bucket_replicate 'bucket' "$NB"
run_cmd_err "$WALSHIP" restore "${S3[@]}" "s3://$NB/x" -o "$WORK/nb.db"
check_one_error missing_bucket_restore 'bucket' "$NB"
run_cmd_err "$WALSHIP" ls "${S3[@]}" "s3://$NB/x"
check_one_error missing_bucket_ls 'bucket' "$NB"

# ---- an endpoint that refuses connections: bounded, and named
CLOSED=$(free_port)
WS_CMD_TIMEOUT=90 run_cmd_err "$WALSHIP" restore --max-retries 3 \
  --endpoint "http://127.0.0.1:$CLOSED" "s3://$WS_S3_BUCKET/app" -o "$WORK/closed.db"
check_one_error closed_port_s3_restore "$UNREACHABLE" "127.0.0.1:$CLOSED"
WS_CMD_TIMEOUT=90 run_cmd_err "$WALSHIP" restore --max-retries 3 \
  "http://127.0.0.1:$CLOSED/app" -o "$WORK/closed2.db"
check_one_error closed_port_http_restore "$UNREACHABLE" "127.0.0.1:$CLOSED"
WS_CMD_TIMEOUT=90 run_cmd_err "$WALSHIP" ls --max-retries 3 "http://127.0.0.1:$CLOSED/app"
check_one_error closed_port_http_ls "$UNREACHABLE" "127.0.0.1:$CLOSED"

# The sidecar against a store that is down at startup: either it exits
# non-zero naming the endpoint, or it keeps retrying; either way SIGTERM
# stops it.
"$WALSHIP" replicate --max-retries 3 "$db" "http://127.0.0.1:$CLOSED/app" \
  >"$WORK/closed-sidecar.log" 2>&1 &
SIDECAR_PID=$! SIDECAR_LOG=$WORK/closed-sidecar.log
for ((i = 0; i < 300; i++)); do kill -0 "$SIDECAR_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SIDECAR_PID" 2>/dev/null; then
  pass closed_port_sidecar_retries
  pid=$SIDECAR_PID; SIDECAR_PID=""
  kill -TERM "$pid"
  for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"; fail closed_port_sidecar_stops_on_sigterm "still running 60 s after SIGTERM"
  else pass closed_port_sidecar_stops_on_sigterm; fi
  wait "$pid" 2>/dev/null
else
  wait "$SIDECAR_PID"; rc=$?; SIDECAR_PID=""
  if [ "$rc" = 1 ] && grep -F "127.0.0.1:$CLOSED" "$WORK/closed-sidecar.log" | grep -qiE "$UNREACHABLE"; then
    pass closed_port_sidecar_exits_naming_endpoint
  else fail closed_port_sidecar_exits_naming_endpoint "exit $rc: $(tail -n 3 "$WORK/closed-sidecar.log" | tr '\n' '|')"; fi
fi

# ---- an empty remote store
for store in "s3://$WS_S3_BUCKET/empty" "$WS_HTTP_URL/empty"; do
  kind=${store%%:*}
  opts=(); [ "$kind" = s3 ] && opts=("${S3[@]}")
  mkdir -p "$WORK/emptyout"
  run_cmd "$WALSHIP" restore "${opts[@]}" "$store" -o "$WORK/emptyout/x.db"
  if [ "$LAST_RC" != 0 ]; then pass "${kind}_empty_store_restore_fails"
  else fail "${kind}_empty_store_restore_fails" "restore of an empty store exited 0"; fi
  check_rc "${kind}_empty_if_replica_exists_exit0" 0 \
    "$WALSHIP" restore --if-replica-exists "${opts[@]}" "$store" -o "$WORK/emptyout/x.db"
  check_eq "${kind}_empty_creates_nothing" "" "$(ls -A "$WORK/emptyout")"
done

# What each command said, for the CI log when something failed.
if [ "$T_FAILS" -gt 0 ]; then
  for f in "$WORK"/cmd.*.err; do echo "--- $(basename "$f")"; head -n 5 "$f"; done
fi
finish
