#!/usr/bin/env bash
# Section (f) of bench/run.sh: lag and request counts against the local S3
# server (s3rver behind the SigV4-checking proxy, both on 127.0.0.1, started
# and stopped by tests/servers/servers.sh).  Requests are counted from the
# proxy's log, which sees every request the sidecar or restore sends.
# usage: bash bench/s3.sh BIN_DIR   (BIN_DIR holds walship and lagprobe)
# Knobs: S3_LAG_S (default 30) seconds per run, S3_RATE (100) tx/s.
set -uo pipefail
T_NAME=bench-s3
. "$(dirname "$0")/../tests/integration/lib.sh"
. "$WS_ROOT/tests/servers/servers.sh"
BIN=${1:?usage: bench/s3.sh BIN_DIR}
S3_LAG_S=${S3_LAG_S:-30} S3_RATE=${S3_RATE:-100}
start_s3 >/dev/null
OPTS=(--endpoint "$WS_S3_ENDPOINT")

# count REQ-REGEX FROM-LINE: requests in the proxy log after line FROM
count() { tail -n +"$(($2 + 1))" "$S3_PROXY_LOG" | grep -cE "$1" || true; }
requests() { # requests FROM-LINE: one line of counts by kind
  local from=$1
  echo "PUT=$(count ' PUT /' "$from") (of which multipart parts $(count ' PUT /.*partNumber=' "$from"))" \
    "GET=$(count ' GET /[^ ]*/[^?]* ->' "$from") LIST=$(count ' GET /[^ ]*\?list-type=2' "$from")" \
    "HEAD=$(count ' HEAD /' "$from") POST=$(count ' POST /' "$from") DELETE=$(count ' DELETE /' "$from")"
}

for sync in 1s 0; do
  d=$WORK/lag-$sync prefix=lag-$sync
  mkdir -p "$d"
  from=$(wc -l <"$S3_PROXY_LOG")
  echo "--- rate=$S3_RATE tx/s --sync-interval $sync, ${S3_LAG_S}s, store s3://$WS_S3_BUCKET/$prefix"
  echo "cmd: lagprobe --db DB --store SCRATCH --rate $S3_RATE --duration $S3_LAG_S -- walship replicate --log-level debug --sync-interval $sync --endpoint PROXY DB s3://BUCKET/$prefix"
  out=$("$BIN/lagprobe" --db "$d/app.db" --store "$d/scratch" --rate "$S3_RATE" --duration "$S3_LAG_S" \
    -- "$BIN/walship" replicate --log-level debug --sync-interval "$sync" "${OPTS[@]}" \
    "$d/app.db" "s3://$WS_S3_BUCKET/$prefix" 2>&1)
  grep -E 'lag_durable|sidecar exit' <<<"$out" | sed 's/^/  /'
  echo "  requests while replicating (startup, snapshot and the final sync included): $(requests "$from")"
  puts=$(count ' PUT /' "$from")
  echo "  PUTs per hour at this rate (extrapolated from ${S3_LAG_S}s): $((puts * 3600 / S3_LAG_S))"
  from=$(wc -l <"$S3_PROXY_LOG")
  s=$(date +%s.%N)
  "$BIN/walship" restore "${OPTS[@]}" "s3://$WS_S3_BUCKET/$prefix" -o "$d/out.db" >"$d/restore.log" 2>&1 \
    || echo "  restore failed: $(tail -n 2 "$d/restore.log")"
  e=$(date +%s.%N)
  echo "  restore: $(awk -v s="$s" -v e="$e" 'BEGIN{printf "%.3f", e-s}') s, $(grep -o 'restored .*' "$d/restore.log" | tail -1)"
  echo "  requests of the restore: $(requests "$from")"
  if [ "$(sqlite3 "$d/app.db" .sha3sum)" = "$(sqlite3 "$d/out.db" .sha3sum)" ]; then
    echo "  restore equals the source: yes"
  else
    echo "  restore equals the source: NO"
  fi
  rm -rf "$d"
done
