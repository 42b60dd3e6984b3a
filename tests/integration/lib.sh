# Shared helpers for the integration scripts; source it first:
#     . "$(dirname "$0")/lib.sh"
#
# Every check prints one line, "PASS <script>/<check>" or
# "FAIL <script>/<check>: <reason>", which tests/run.sh counts; a script ends
# with `finish`, which exits non-zero if any check failed (or none ran).
# Invariants: all files live under $WORK, removed on exit (kept with
# WS_KEEP_WORK=1); every process started through these helpers is killed on
# exit, however the script ends; nothing listens on or talks to the network.

set -u -o pipefail

WS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WALSHIP=${WALSHIP:-$WS_ROOT/build/walship}
WRITER=${WRITER:-$WS_ROOT/build/tools/ws-writer}
T_NAME=$(basename "$0" .sh)
T_PASSES=0
T_FAILS=0
SIDECAR_PID=""     # the running sidecar, if any
SIDECAR_LOG=""     # its log (stdout+stderr)
SIDECAR_RC=""      # exit status of the last sidecar stopped
WRITER_COMMITS=0   # commits= of the last writer waited for
LAST_RC=0          # exit status of the last run_cmd
LAST_OUT=""        # file holding its stdout+stderr
declare -A _BG_NAME=() _BG_LOG=()
_SEQ=0

WORK=$(mktemp -d "${TMPDIR:-/tmp}/walship-$T_NAME.XXXXXX")

_cleanup() {
  local p f
  for p in $SIDECAR_PID "${!_BG_NAME[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$T_FAILS" -gt 0 ]; then   # the sidecar's view, for the CI log
    for f in "$WORK"/sidecar.*.log; do
      [ -s "$f" ] || continue
      echo "--- tail of $(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [ "${WS_KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2
  else rm -rf "$WORK"; fi
}
trap _cleanup EXIT
trap 'exit 143' TERM INT HUP

# ------------------------------------------------------------ reporting
pass() { T_PASSES=$((T_PASSES + 1)); echo "PASS $T_NAME/$1"; }
fail() {
  local name=$1; shift
  T_FAILS=$((T_FAILS + 1))
  echo "FAIL $T_NAME/$name: $(printf '%s' "$*" | tr '\n' '|' | cut -c1-600)"
}
check_eq() { # NAME EXPECTED ACTUAL [CONTEXT]
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3' ${4:-}"; fi
}
finish() {
  [ $((T_PASSES + T_FAILS)) -gt 0 ] || fail script "no check ran"
  [ "$T_FAILS" -eq 0 ]
  exit $?
}

# Run a command with a time limit (default 120 s; WS_CMD_TIMEOUT), its output
# in a file; sets LAST_RC and LAST_OUT.  Never fails the script by itself.
run_cmd() {
  _SEQ=$((_SEQ + 1))
  LAST_OUT=$WORK/cmd.$_SEQ.out
  timeout -k 5 "${WS_CMD_TIMEOUT:-120}" "$@" >"$LAST_OUT" 2>&1
  LAST_RC=$?
  return $LAST_RC
}
last_out() { tail -n "${1:-3}" "$LAST_OUT" 2>/dev/null | tr '\n' '|'; }

# check_rc NAME EXPECTED-RC COMMAND...: the command exits with EXPECTED-RC.
check_rc() {
  local name=$1 want=$2; shift 2
  run_cmd "$@"
  if [ "$LAST_RC" = "$want" ]; then pass "$name"
  else fail "$name" "exit $LAST_RC, want $want: $* => $(last_out)"; fi
}

# ------------------------------------------------------------ prerequisites
_need() {
  if [ ! -x "$1" ]; then
    fail setup "$1 is missing (run make)"
    exit 1
  fi
}
_need "$WALSHIP"
_need "$WRITER"
# test shims (tests/preload), next to the writer
PRELOAD_DIR=$(dirname "$WRITER")
# Run private copies: the tree is shared, and a rebuild of build/walship in
# the middle of a script must not change (or briefly remove) the binary.
mkdir -p "$WORK/bin"
if cp "$WALSHIP" "$WORK/bin/walship" && cp "$WRITER" "$WORK/bin/ws-writer"; then
  WALSHIP=$WORK/bin/walship WRITER=$WORK/bin/ws-writer
else
  fail setup "cannot copy the binaries into $WORK/bin"; exit 1
fi
command -v sqlite3 >/dev/null || { fail setup "sqlite3 CLI missing"; exit 1; }

# ------------------------------------------------------------ sidecar
# start_sidecar DB STORE [replicate options...]: start it in the background.
# Returns non-zero (and records a FAIL) if it is not running half a second later.
start_sidecar() {
  local db=$1 store=$2; shift 2
  _SEQ=$((_SEQ + 1))
  SIDECAR_LOG=$WORK/sidecar.$_SEQ.log
  "$WALSHIP" replicate "$@" "$db" "$store" >"$SIDECAR_LOG" 2>&1 &
  SIDECAR_PID=$!
  sleep 0.5
  if ! kill -0 "$SIDECAR_PID" 2>/dev/null; then
    wait "$SIDECAR_PID"; SIDECAR_RC=$?; SIDECAR_PID=""
    fail "sidecar_start_$_SEQ" "replicate exited $SIDECAR_RC at startup: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"
    return 1
  fi
}

# stop_sidecar [CHECK-NAME]: SIGTERM, wait (60 s at most), assert exit 0.
stop_sidecar() {
  local name=${1:-sidecar_sigterm_exit0} pid=$SIDECAR_PID i
  if [ -z "$pid" ]; then fail "$name" "no sidecar running"; return 1; fi
  SIDECAR_PID=""
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 600; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"; wait "$pid" 2>/dev/null; SIDECAR_RC=hung
    fail "$name" "still running 60 s after SIGTERM (killed)"
    return 1
  fi
  wait "$pid"; SIDECAR_RC=$?
  if [ "$SIDECAR_RC" = 0 ]; then pass "$name"; return 0; fi
  fail "$name" "exit $SIDECAR_RC after SIGTERM: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"
  return 1
}

kill9_sidecar() {
  [ -n "$SIDECAR_PID" ] || return 0
  kill -9 "$SIDECAR_PID" 2>/dev/null
  wait "$SIDECAR_PID" 2>/dev/null
  SIDECAR_PID=""
}

# wait_for_log PATTERN FILE [TIMEOUT-S]: 0 once an ERE matches a line of FILE.
wait_for_log() {
  local end=$((SECONDS + ${3:-30}))
  while [ $SECONDS -lt $end ]; do
    grep -qE -- "$1" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------ writer
# run_writer NAME WRITER-OPTIONS...: run ws-writer in the foreground; a
# non-zero exit is a FAIL.  Sets WRITER_COMMITS.
run_writer() {
  local name=$1; shift
  local log=$WORK/writer.$name.log
  timeout -k 5 "${WS_WRITER_TIMEOUT:-200}" "$WRITER" "$@" >"$log" 2>&1
  _writer_done "$name" $? "$log"
}
# start_writer NAME WRITER-OPTIONS...: in the background; sets WRITER_PID.
start_writer() {
  local name=$1; shift
  local log=$WORK/writer.$name.log
  "$WRITER" "$@" >"$log" 2>&1 &
  WRITER_PID=$!
  _BG_NAME[$WRITER_PID]=$name
  _BG_LOG[$WRITER_PID]=$log
}
# wait_writer PID: wait for a background writer; a non-zero exit is a FAIL.
wait_writer() {
  local pid=$1 rc
  wait "$pid"; rc=$?
  _writer_done "${_BG_NAME[$pid]}" $rc "${_BG_LOG[$pid]}"
  rc=$?
  unset "_BG_NAME[$pid]" "_BG_LOG[$pid]"
  return $rc
}
# stop_writer PID: SIGTERM (it finishes its transaction and reports), wait.
stop_writer() { kill -TERM "$1" 2>/dev/null; wait_writer "$1"; }
_writer_done() {
  WRITER_COMMITS=$(sed -n 's/^writer: commits=\([0-9]*\).*/\1/p' "$3" | tail -n 1)
  WRITER_COMMITS=${WRITER_COMMITS:-0}
  if [ "$2" != 0 ]; then
    fail "writer_$1" "ws-writer exited $2: $(tail -n 3 "$3" | tr '\n' '|')"
    return 1
  fi
}
# make_db DB [PAGE-SIZE]: a new WAL database with the writer's schema.
make_db() { run_writer "create_$(basename "$1")" --db "$1" --page-size "${2:-4096}" --txns 0; }

# ------------------------------------------------------------ databases
content_hash() { sqlite3 -readonly "$1" .sha3sum 2>&1; }
integrity() { sqlite3 -readonly "$1" 'PRAGMA integrity_check' 2>&1 | head -n 5 | tr '\n' ' ' | sed 's/ $//'; }
# One line describing a database, to make a mismatch report useful.
db_summary() {
  sqlite3 -readonly "$1" "SELECT 'pages=' || (SELECT page_count FROM pragma_page_count)
    || ' page_size=' || (SELECT page_size FROM pragma_page_size)
    || ' kv=' || (SELECT count(*) FROM kv) || ' blobs=' || (SELECT count(*) FROM blobs)
    || ' tables=' || (SELECT count(*) FROM sqlite_schema)" 2>&1 | tr '\n' ' '
}

# check_restore NAME STORE SRC-DB [restore options...]: restore the latest
# state and check it equals SRC-DB (content hash) and passes integrity_check.
# The restored file is left at $WORK/NAME.restored.db (RESTORED).
check_restore() {
  local name=$1 store=$2 src=$3; shift 3
  RESTORED=$WORK/$name.restored.db
  rm -f "$RESTORED"
  run_cmd "$WALSHIP" restore "$@" "$store" -o "$RESTORED"
  if [ "$LAST_RC" != 0 ]; then
    fail "${name}_restore" "restore exited $LAST_RC: $(last_out 4)"
    return 1
  fi
  pass "${name}_restore"
  local a b
  a=$(content_hash "$src"); b=$(content_hash "$RESTORED")
  if [ -n "$a" ] && [ "$a" = "$b" ]; then pass "${name}_content_equal"
  else fail "${name}_content_equal" "source [$(db_summary "$src")] $a; restored [$(db_summary "$RESTORED")] $b"; fi
  check_eq "${name}_integrity" ok "$(integrity "$RESTORED")"
}

# ------------------------------------------------------------ file store
# Objects of a file store as "last kind first" lines in plan order (kind 0 =
# segment, 1 = snapshot), TXIDs in decimal.
store_objects() {
  local f b
  for f in "$1"/snap/*.snap; do
    [ -e "$f" ] || continue
    b=$(basename "$f" .snap)
    echo "$((16#$b)) 1 $((16#$b))"
  done
  for f in "$1"/seg/*.seg; do
    [ -e "$f" ] || continue
    b=$(basename "$f" .seg)
    b=${b%%.*}               # merged segments: F-L.Ln.seg
    echo "$((16#${b#*-})) 0 $((16#${b%-*}))"
  done
}
store_objects_sorted() { store_objects "$1" | sort -n -k1,1 -k2,2; }
store_max_txid() { store_objects_sorted "$1" | tail -n 1 | cut -d' ' -f1; }

# check_contiguous NAME STORE: from the first snapshot on, every segment
# starts at most one past what the snapshots and segments before it reach.
check_contiguous() {
  local name=$1 store=$2 last kind first pos="" gaps="" n=0
  while read -r last kind first; do
    n=$((n + 1))
    if [ -z "$pos" ]; then
      [ "$kind" = 1 ] || gaps+="segment $first-$last before any snapshot; "
      pos=$last
      continue
    fi
    if [ "$kind" = 0 ] && [ "$first" -gt $((pos + 1)) ]; then
      gaps+="missing $((pos + 1))-$((first - 1)); "
    fi
    [ "$last" -gt "$pos" ] && pos=$last
  done < <(store_objects_sorted "$store")
  if [ "$n" = 0 ]; then fail "$name" "store $store holds no objects"
  elif [ -n "$gaps" ]; then fail "$name" "$gaps"
  else pass "$name"; fi
}

# check_ls NAME STORE: `walship ls` succeeds, mentions the newest TXID and
# reports no gap.
check_ls() {
  local name=$1 store=$2 max hex
  max=$(store_max_txid "$store")
  run_cmd "$WALSHIP" ls "$store"
  if [ "$LAST_RC" != 0 ]; then fail "$name" "ls exited $LAST_RC: $(last_out)"; return 1; fi
  hex=$(printf '%016x' "${max:-0}")
  if ! grep -qwE -- "($max|$hex)" "$LAST_OUT"; then
    fail "$name" "ls does not show the newest txid $max: $(last_out)"
  elif grep -qi 'gap' "$LAST_OUT"; then
    fail "$name" "ls reports a gap: $(grep -i gap "$LAST_OUT" | head -n 2)"
  else pass "$name"; fi
}

# Background sampler of a file's size: start_size_sampler FILE; stop_size_sampler
# prints the largest size seen (0 if the file never existed).
start_size_sampler() {
  SAMPLER_OUT=$WORK/sampler.$((_SEQ += 1))
  echo 0 >"$SAMPLER_OUT"
  ( max=0
    while :; do
      s=$(stat -c %s "$1" 2>/dev/null || echo 0)
      if [ "$s" -gt "$max" ]; then max=$s; echo "$max" >"$SAMPLER_OUT"; fi
      sleep 0.05
    done ) &
  SAMPLER_PID=$!
  _BG_NAME[$SAMPLER_PID]=sampler
}
stop_size_sampler() {
  kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null
  unset "_BG_NAME[$SAMPLER_PID]"
  cat "$SAMPLER_OUT"
}

# ------------------------------------------------------------ remote stores
# (the servers themselves: tests/servers/servers.sh)

# run_cmd_err COMMAND...: run_cmd with stderr apart, in LAST_ERR.
run_cmd_err() {
  _SEQ=$((_SEQ + 1))
  LAST_OUT=$WORK/cmd.$_SEQ.out LAST_ERR=$WORK/cmd.$_SEQ.err
  timeout -k 5 "${WS_CMD_TIMEOUT:-120}" "$@" >"$LAST_OUT" 2>"$LAST_ERR"
  LAST_RC=$?
  return $LAST_RC
}

# ls_mirror DIR STORE [ls options...]: `walship ls` of any store, mirrored as
# empty files named like its objects under DIR, so that the file-store
# helpers (store_objects, check_contiguous) apply to remote stores.  Returns
# non-zero (LAST_OUT says why) if ls fails or lists an unreadable object.
ls_mirror() {
  local dir=$1 store=$2 name; shift 2
  rm -rf "$dir"; mkdir -p "$dir"
  run_cmd "$WALSHIP" ls "$@" "$store" || return 1
  awk '$1 == "snap" || $1 == "seg"' "$LAST_OUT" | grep -q '?' && return 1
  while read -r name; do
    case $name in snap/*.snap | seg/*.seg) ;; *) continue ;; esac
    mkdir -p "$dir/$(dirname "$name")" && : >"$dir/$name"
  done < <(awk '$1 == "snap" || $1 == "seg" {print $NF}' "$LAST_OUT")
}

# check_remote_history NAME STORE [ls options...]: `walship ls` succeeds,
# shows readable objects and no gap, and they form a contiguous history.
check_remote_history() {
  local name=$1 store=$2; shift 2
  if ! ls_mirror "$WORK/$name.mirror" "$store" "$@"; then
    fail "$name" "ls exited $LAST_RC or listed an unreadable object: $(last_out 4)"
    return 1
  fi
  if grep -qi 'gap' "$LAST_OUT"; then
    fail "$name" "ls reports a gap: $(grep -i gap "$LAST_OUT" | head -n 2)"
    return 1
  fi
  check_contiguous "$name" "$WORK/$name.mirror"
}
