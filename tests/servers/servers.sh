# Test servers for the remote-store integration scripts; source it after
# tests/integration/lib.sh:
#     . "$(dirname "$0")/lib.sh"
#     . "$WS_ROOT/tests/servers/servers.sh"
#
#   start_s3           s3rver (npm, pinned in package.json) with the bucket
#                      $WS_S3_BUCKET, behind sigv4_proxy.py; exports
#                      WS_S3_ENDPOINT (the proxy), AWS_ACCESS_KEY_ID,
#                      AWS_SECRET_ACCESS_KEY, AWS_REGION; S3_PROXY_LOG.
#   start_nginx        a private nginx with WebDAV + JSON autoindex; exports
#                      WS_HTTP_URL (no trailing slash); NGINX_DATA (its root).
#   start_fault_proxy NAME TARGET-URL [fault_proxy.py options...]
#                      exports FAULT_URL and FAULT_LOG.
#   stop_servers       stops everything started here (also run at exit).
#
# Invariants: every server listens on 127.0.0.1 only, on a port chosen free
# (the proxies bind port 0 and report it), keeps its files under
# $WORK/servers, and is stopped by stop_servers, which this file chains in
# front of lib.sh's EXIT cleanup; s3rver and the proxies also end
# themselves after SRV_MAX_TIME (900 s).  Readiness waits are bounded.  The
# environment is made hermetic: no HTTP proxy, no AWS profile, shared
# credentials file or endpoint override.

SRV_ROOT=$WS_ROOT/tests/servers
SRV_DIR=$WORK/servers
mkdir -p "$SRV_DIR"
declare -A _SRV_PIDS=()      # pid -> name, for stop_servers
WS_S3_BUCKET=walship-test
export PYTHONDONTWRITEBYTECODE=1
SRV_MAX_TIME=${SRV_MAX_TIME:-900}

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY \
      AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION \
      AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
export AWS_SHARED_CREDENTIALS_FILE=$SRV_DIR/no-credentials
export AWS_CONFIG_FILE=$SRV_DIR/no-config

trap 'stop_servers; _cleanup' EXIT

_srv_fail() { fail "servers_$1" "$2"; exit 1; }

# free_port: a port nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# port_open PORT: something accepts connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# _srv_wait NAME PID PORT LOG: up to 20 s for PORT to accept; fails the
# script (with the log's tail) if PID dies first or time runs out.
_srv_wait() {
  local name=$1 pid=$2 port=$3 log=$4 i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || _srv_fail "$name" "exited at startup: $(tail -n 5 "$log" | tr '\n' '|')"
    port_open "$port" && return 0
    sleep 0.1
  done
  _srv_fail "$name" "not listening on $port after 20 s: $(tail -n 5 "$log" | tr '\n' '|')"
}

# _srv_ready_port NAME PID READY-FILE LOG: sets READY_PORT to the port a
# proxy reports once bound.
_srv_ready_port() {
  local name=$1 pid=$2 ready=$3 log=$4 i
  for ((i = 0; i < 200; i++)); do
    if [ -s "$ready" ]; then READY_PORT=$(cat "$ready"); return 0; fi
    kill -0 "$pid" 2>/dev/null || { _srv_fail "$name" "exited at startup: $(tail -n 5 "$log" | tr '\n' '|')"; }
    sleep 0.1
  done
  _srv_fail "$name" "did not report its port after 20 s"
}

# ------------------------------------------------------------ s3rver
# Installs node_modules from the lock file when s3rver is missing.
_s3rver_install() {
  local want have
  want=$(sed -n 's/.*"s3rver": *"\([^"]*\)".*/\1/p' "$SRV_ROOT/package.json")
  have=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
    "$SRV_ROOT/node_modules/s3rver/package.json" 2>/dev/null | head -n 1)
  [ -n "$have" ] && [ "$have" = "$want" ] && return 0
  command -v npm >/dev/null || _srv_fail s3rver_install "npm is missing (run scripts/deps.sh)"
  echo "servers: installing s3rver $want with npm ci" >&2
  (cd "$SRV_ROOT" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) \
    >"$SRV_DIR/npm.log" 2>&1 \
    || _srv_fail s3rver_install "npm ci failed: $(tail -n 5 "$SRV_DIR/npm.log" | tr '\n' '|')"
}

start_s3() {
  _s3rver_install
  local port dir=$SRV_DIR/s3 pid ppid pport try i
  mkdir -p "$dir/data"
  for try in 1 2 3; do   # a free port can be taken before s3rver binds it
    port=$(free_port)
    # --openssl-legacy-provider: s3rver's paginated listing answers 500
    # without it.  timeout: it ends by itself even if this script is killed.
    NODE_OPTIONS=--openssl-legacy-provider timeout --foreground "$SRV_MAX_TIME" \
      node "$SRV_ROOT/node_modules/s3rver/bin/s3rver.js" \
        -d "$dir/data" -a 127.0.0.1 -p "$port" --silent \
        --configure-bucket "$WS_S3_BUCKET" >"$dir/s3rver.log" 2>&1 &
    pid=$!
    _SRV_PIDS[$pid]=s3rver
    for ((i = 0; i < 200; i++)); do
      port_open "$port" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && break
    unset "_SRV_PIDS[$pid]"; wait "$pid" 2>/dev/null
    [ "$try" = 3 ] && _srv_fail s3rver "exited at startup: $(tail -n 5 "$dir/s3rver.log" | tr '\n' '|')"
  done
  _srv_wait s3rver "$pid" "$port" "$dir/s3rver.log"
  S3RVER_PORT=$port
  # s3rver knows only the access key id S3RVER (it checks no V4 signature);
  # the secret is the proxy's, distinct from the key id so that signing
  # with the wrong one of the two is caught.
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=walship/Test+Secret=0123456789
  export AWS_REGION=us-east-1
  S3_PROXY_LOG=$dir/sigv4.log
  python3 "$SRV_ROOT/sigv4_proxy.py" --upstream "$port" \
    --access-key "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" \
    --region "$AWS_REGION" --log "$S3_PROXY_LOG" --ready-file "$dir/sigv4.port" \
    --max-time "$SRV_MAX_TIME" >"$dir/sigv4.out" 2>&1 &
  ppid=$!
  _SRV_PIDS[$ppid]=sigv4_proxy
  _srv_ready_port sigv4_proxy "$ppid" "$dir/sigv4.port" "$dir/sigv4.out"
  pport=$READY_PORT
  _srv_wait sigv4_proxy "$ppid" "$pport" "$dir/sigv4.out"
  export WS_S3_ENDPOINT=http://127.0.0.1:$pport
}

# ------------------------------------------------------------ nginx
start_nginx() {
  local dir=$SRV_DIR/nginx port pid try
  command -v nginx >/dev/null || _srv_fail nginx "nginx is missing (run scripts/deps.sh)"
  mkdir -p "$dir/data" "$dir/tmp"
  for try in 1 2 3; do   # a free port can be taken before nginx binds it
    port=$(free_port)
    sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$port#g" "$SRV_ROOT/nginx.conf.in" >"$dir/nginx.conf"
    nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/nginx.out" 2>&1 \
      || _srv_fail nginx "bad config: $(tail -n 3 "$dir/nginx.out" | tr '\n' '|')"
    nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >>"$dir/nginx.out" 2>&1 &
    pid=$!
    _SRV_PIDS[$pid]=nginx
    sleep 0.2
    if kill -0 "$pid" 2>/dev/null; then break; fi
    unset "_SRV_PIDS[$pid]"; wait "$pid" 2>/dev/null
    [ "$try" = 3 ] && _srv_fail nginx "exited at startup: $(tail -n 5 "$dir/error.log" | tr '\n' '|')"
  done
  _srv_wait nginx "$pid" "$port" "$dir/error.log"
  NGINX_DATA=$dir/data
  export WS_HTTP_URL=http://127.0.0.1:$port
}

# ------------------------------------------------------------ fault proxy
# start_fault_proxy NAME TARGET-URL [options]: TARGET-URL is http://127.0.0.1:PORT.
start_fault_proxy() {
  local name=$1 target=$2 dir=$SRV_DIR/fault-$1 pid port tport; shift 2
  tport=${target##*:}; tport=${tport%%/*}
  mkdir -p "$dir"
  FAULT_LOG=$dir/requests.log
  python3 "$SRV_ROOT/fault_proxy.py" --upstream "$tport" --log "$FAULT_LOG" \
    --ready-file "$dir/port" --max-time "$SRV_MAX_TIME" "$@" >"$dir/out" 2>&1 &
  pid=$!
  _SRV_PIDS[$pid]=fault_proxy_$name
  _srv_ready_port "fault_proxy_$name" "$pid" "$dir/port" "$dir/out"
  port=$READY_PORT
  _srv_wait "fault_proxy_$name" "$pid" "$port" "$dir/out"
  FAULT_URL=http://127.0.0.1:$port
}

# ------------------------------------------------------------ stop
# stop_server PID: SIGTERM, up to 10 s, then SIGKILL (with nginx's workers).
stop_server() {
  local pid=$1 i kids
  kids=$(pgrep -P "$pid" 2>/dev/null | tr '\n' ' ')
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    # shellcheck disable=SC2086
    [ -n "$kids" ] && kill -KILL $kids 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  unset "_SRV_PIDS[$pid]"
}

stop_servers() {
  local p
  for p in "${!_SRV_PIDS[@]}"; do stop_server "$p"; done
  return 0
}
