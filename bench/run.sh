#!/usr/bin/env bash
# bench/run.sh — walship's benchmark harness (`make bench`; run from the repo
# root after `make`).  Every scenario runs side by side with its baseline in
# this one run, so the ratios hold even on a noisy machine; absolute numbers
# do not travel.  Results go to stdout and to $BENCH_OUT/results.txt
# (default build/bench), with per-commit lag files for plots.
#
#   (a) lag: bench/lagprobe at 100 tx/s with the default 1 s sync interval
#       and with --sync-interval 0, and at 1000 tx/s with --sync-interval 0;
#       LAG_REPS runs each: median of the per-run figures and pooled
#       percentiles over all commits
#   (b) writer overhead and footprint: unthrottled ws-writer (insert) alone
#       vs with walship vs with the baselines (bench/copy_loop.sh: .backup +
#       gzip, VACUUM INTO, ATTACH + INSERT OR REPLACE, each every 1 s),
#       alternating rounds; peak WAL, sidecar CPU, peak RSS,
#       shipped-during-burst, SIGTERM->exit
#   (b2) writer overhead at a fixed 1000 tx/s: the writer's own CPU per
#       1000 commits alone vs with walship (1 s and --sync-interval 0);
#       (b2p) the same as a paired measurement, two writers at once
#   (c2) restore time vs database size (RESTORE_SIZES_MB), raw bound dd
#   (c) restore of a ~100 MB database of random 4000-byte blobs, short history
#       (one snapshot) and long history (snapshot + segments), vs cp, cp+fsync,
#       gzip -dc of a gzip -1 copy, cat of the store objects; VACUUM INTO
#   (d) store bytes / database size after 10,000 small updates of a ~10 MB db
#   (b3) the unthrottled burst at 1 KiB and 64 KiB pages; (b4) a --wal-max
#       sweep of it; (b5) with four writer connections; (b6) blob and update
#       workloads (bench/workloads.sh, WL_ROUNDS=3)
#   (c4) a ~1 GB database with 100,000 transactions after the snapshot,
#       restored as shipped and after compaction, vs a snapshot and dd
#
# Knobs (environment): LAG_S=10 LAG_REPS=5 BURST_S=8 ROUNDS=5 BASE_ROUNDS=3
#   FIXED_S=8 B2_WARM_S=4 B2P_ROUNDS=8 RESTORE_REPS=5 BIG_ROWS=25000 (4000-byte blobs) SMALL_ROWS=85000
#   UPDATES=10000 RESTORE_SIZES_MB="10 100 1000"
# Plots (gnuplot, bench/deps.sh installs it): $BENCH_OUT/lag-cdf.png and
# $BENCH_OUT/restore-size.png.
#   BENCH_TMP=/tmp (scratch; removed at exit) BENCH_OUT=build/bench
set -euo pipefail
cd "$(dirname "$0")/.."
LAG_S=${LAG_S:-10} LAG_REPS=${LAG_REPS:-5} BURST_S=${BURST_S:-8} ROUNDS=${ROUNDS:-5}
BASE_ROUNDS=${BASE_ROUNDS:-3} FIXED_S=${FIXED_S:-8} B2_WARM_S=${B2_WARM_S:-4} RESTORE_REPS=${RESTORE_REPS:-5}
B2P_ROUNDS=${B2P_ROUNDS:-8}
RESTORE_SIZES_MB=${RESTORE_SIZES_MB:-10 100 1000}
BIG_ROWS=${BIG_ROWS:-25000} SMALL_ROWS=${SMALL_ROWS:-85000} UPDATES=${UPDATES:-10000}
RATIO_BIG_ROWS=${RATIO_BIG_ROWS:-850000}
# (d) also on a ~100 MB database (RATIO_BIG_ROWS), the size TARGETS.md's peer figure implies
LAG_REPS_10K=${LAG_REPS_10K:-3}             # (a) at 10,000 tx/s: fewer runs (each is 100,000 commits)
LONG1G_ROWS=${LONG1G_ROWS:-250000}          # (c4) ~1 GB with 100,000 transactions after the snapshot; 0 skips
OUT=${BENCH_OUT:-build/bench}
for b in build/walship build/tools/ws-writer; do
  [ -x "$b" ] || { echo "bench: $b is missing; run make first" >&2; exit 1; }
done
for t in sqlite3 gzip cc awk; do
  command -v $t >/dev/null || { echo "bench: $t is required" >&2; exit 1; }
done
mkdir -p "$OUT"
T=$(mktemp -d "${BENCH_TMP:-/tmp}/walship-bench.XXXXXX")
BGPIDS=()
cleanup() {
  for p in "${BGPIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
exec > >(tee "$OUT/results.txt") 2>&1

# Private copies: other people may rebuild build/ while we run.
BIN=$T/bin
mkdir -p "$BIN"
cp build/walship build/tools/ws-writer "$BIN/"
CCF="-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow"
cc $CCF -o "$BIN/lagprobe" bench/lagprobe.c -lsqlite3 -lpthread
cc $CCF -o "$BIN/wsmon" bench/wsmon.c
W=$BIN/walship WR=$BIN/ws-writer

# ------------------------------------------------------------------ helpers
. bench/lib.sh

hdr "machine"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo ?)$(git diff --quiet HEAD -- src cli include 2>/dev/null || echo ' (+local changes in src/cli/include)')"
echo "walship binary: build/walship sha256 $(sha256sum build/walship | cut -c1-12), built $(date -u -r build/walship +%Y-%m-%dT%H:%M:%SZ)"
echo "nproc: $(nproc)  cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')  kernel: $(uname -r)"
echo "sqlite3: $(sqlite3 --version | cut -d' ' -f1)  scratch: $T ($(df --output=source "$T" | tail -1), rotational=$(cat /sys/block/$(basename "$(df --output=source "$T" | tail -1)")/queue/rotational 2>/dev/null || echo ?))"
echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "settings: LAG_S=$LAG_S LAG_REPS=$LAG_REPS BURST_S=$BURST_S ROUNDS=$ROUNDS BASE_ROUNDS=$BASE_ROUNDS FIXED_S=$FIXED_S B2_WARM_S=$B2_WARM_S B2P_ROUNDS=$B2P_ROUNDS RESTORE_REPS=$RESTORE_REPS BIG_ROWS=$BIG_ROWS SMALL_ROWS=$SMALL_ROWS RATIO_BIG_ROWS=$RATIO_BIG_ROWS UPDATES=$UPDATES RESTORE_SIZES_MB='$RESTORE_SIZES_MB'"
load() { echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg)"; }

# ------------------------------------------------------------- (a) lag
hdr "(a) replication lag: commit -> durable in the store (lagprobe, one INSERT per txn, synchronous=NORMAL)"
lag_run() { # lag_run NAME RATE SYNC [ENV=VAL]: LAG_REPS runs, then the summary
  local d=$T/lag-$1 i f out env=(env)
  [ -n "${4:-}" ] && env+=("$4")
  echo "--- $1: rate=$2 tx/s --sync-interval $3, ${LAG_S}s x $LAG_REPS runs${4:+ ($4)}"
  echo "cmd: lagprobe --db DB --store STORE --rate $2 --duration $LAG_S -- walship replicate --log-level debug --sync-interval $3 DB STORE"
  : >"$OUT/lag-$1.txt"
  local P50="" P90="" P99="" MX="" CPU="" RSS=""
  for i in $(seq 1 "$LAG_REPS"); do
    mkdir -p "$d"
    out=$("${env[@]}" "$BIN/lagprobe" --db "$d/app.db" --store "$d/store" --rate "$2" --duration "$LAG_S" \
      --raw "$d/raw.txt" --log "$d/sidecar.log" -- \
      "$W" replicate --log-level debug --sync-interval "$3" "$d/app.db" "$d/store")
    f=$(grep 'lag_durable_ms' <<<"$out")
    P50+=" $(kv p50 <<<"$f")" P90+=" $(kv p90 <<<"$f")" P99+=" $(kv p99 <<<"$f")" MX+=" $(kv max <<<"$f")"
    CPU+=" $(grep -o 'cpu_ms_per_1000tx=[0-9.]*' <<<"$out" | cut -d= -f2)"
    RSS+=" $(grep -o 'maxrss_kib=[0-9]*' <<<"$out" | cut -d= -f2)"
    echo "run $i: $(load) $(grep -E 'lag_durable|sidecar exit' <<<"$out" | sed 's/lagprobe: //' | tr '\n' ' ')store_objects=$(nobj "$d/store") store_bytes=$(objbytes "$d/store")"
    awk -v r="$i" '$1 != "#" {print r, $0}' "$d/raw.txt" >>"$OUT/lag-$1.txt" # run k commit_s lag_ms commit_ms
    rm -rf "$d"
  done
  echo "summary $1: durable lag ms, median of $LAG_REPS runs: p50=$(median <<<"$P50") p90=$(median <<<"$P90") p99=$(median <<<"$P99") max=$(median <<<"$MX");" \
    "worst run: p99=$(maxof <<<"$P99") max=$(maxof <<<"$MX"); sidecar CPU ms/1000 tx median=$(median <<<"$CPU") (runs:$CPU); peak RSS KiB max=$(maxof <<<"$RSS")"
  echo "pooled $1 (all commits of all runs): $(awk '{print $4}' "$OUT/lag-$1.txt" | pctl)"
}
lag_run 100tps-sync1s 100 1s
lag_run 100tps-sync1s-wholepages 100 1s WALSHIP_NO_DELTA=1
lag_run 100tps-sync0 100 0
lag_run 1000tps-sync0 1000 0
LAG_REPS=$LAG_REPS_10K lag_run 10000tps-sync0 10000 0

# ------------------------------------- (b) writer overhead, (e) backup baseline
hdr "(b) writer overhead + footprint, (e) baselines every 1 s: unthrottled insert writer, ${BURST_S}s, $ROUNDS alternating rounds (baselines in the first $BASE_ROUNDS)"
echo "writer cmd: ws-writer --db DB --duration $BURST_S --rate 0 --workload insert --synchronous normal --seed R (fresh db each run; default 1000-page autocheckpoint)"
echo "walship cmd: wsmon --wal DB-wal -- walship replicate DB STORE   (defaults: 1s sync, 1000 checkpoint frames, 16MiB wal-max, zlib 1)"
echo "backup cmd:  wsmon --wal DB-wal -- bash bench/copy_loop.sh backup DB DIR 1   (sqlite3 DB .backup + gzip -1, every 1 s)"
echo "vacuum cmd:  wsmon --wal DB-wal -- bash bench/copy_loop.sh vacuum DB DIR 1   (VACUUM INTO a new file, every 1 s)"
echo "attach cmd:  wsmon --wal DB-wal -- bash bench/copy_loop.sh attach DB DIR 1   (ATTACH + INSERT OR REPLACE ... SELECT * per table into one replica, every 1 s)"
echo "none cmd:    wsmon --wal DB-wal   (samples the WAL only)"
declare -A TPS=()
burst() { # burst MODE ROUND
  local m=$1 r=$2 d=$T/burst-$1-$2 mon
  mkdir -p "$d"
  local psopt=() ps=${BURST_PS:-4096} wsx wrx
  [ -n "${BURST_PS:-}" ] && psopt=(--page-size "$BURST_PS")
  read -r -a wsx <<<"${BURST_WS_ARGS:-}"; read -r -a wrx <<<"${BURST_WR_ARGS:-}"
  "$WR" --db "$d/app.db" --txns 0 "${psopt[@]}" >/dev/null
  case $m in
    none) "$BIN/wsmon" --wal "$d/app.db-wal" >"$d/mon.txt" 2>"$d/side.log" & mon=$!
      BGPIDS+=("$mon") ;;
    walship) "$BIN/wsmon" --wal "$d/app.db-wal" -- "$W" replicate "${wsx[@]}" "$d/app.db" "$d/store" >"$d/mon.txt" 2>"$d/side.log" & mon=$!
      BGPIDS+=("$mon"); wait_log "$d/side.log" "snapshot durable" 30 ;;
    backup|vacuum|attach) "$BIN/wsmon" --wal "$d/app.db-wal" -- bash bench/copy_loop.sh "$m" "$d/app.db" "$d/bk" 1 >"$d/mon.txt" 2>"$d/side.log" & mon=$!
      BGPIDS+=("$mon"); wait_log "$d/side.log" "backup n=0" 30 ;;
  esac
  "$WR" --db "$d/app.db" --duration "$BURST_S" --rate 0 --workload insert --synchronous normal --seed "$r" "${psopt[@]}" "${wrx[@]}" >"$d/writer.txt"
  local shipped_at_end=""
  [ $m = walship ] && shipped_at_end=$(( $(last_txid "$d/store") - 1 ))
  kill -TERM "$mon"; wait "$mon" || true
  local wl ml commits el tps
  wl=$(cat "$d/writer.txt"); ml=$(cat "$d/mon.txt")
  commits=$(kv commits <<<"$wl"); el=$(kv elapsed <<<"$wl")
  tps=$(awk -v c="$commits" -v e="$el" 'BEGIN{printf "%.0f", c/e}')
  TPS[$m]="${TPS[$m]:-} $tps"
  local cpu; cpu=$(awk -v u="$(kv cpu_user_ms <<<"$ml")" -v s="$(kv cpu_sys_ms <<<"$ml")" 'BEGIN{printf "%.1f", u+s}')
  printf 'round=%s %s mode=%-7s tx/s=%s commits=%s peak_wal_MiB=%.1f' "$r" "$(load)" "$m" "$tps" "$commits" \
    "$(awk -v b="$(kv peak_wal_bytes <<<"$ml")" 'BEGIN{print b/1048576}')"
  if [ $m != none ]; then
    printf ' cpu_ms=%s cpu_ms_per_1000tx=%s maxrss_MiB=%.1f term_to_exit_ms=%s exit=%s' "$cpu" \
      "$(awk -v c="$cpu" -v n="$commits" 'BEGIN{printf "%.2f", c*1000/n}')" \
      "$(awk -v k="$(kv maxrss_kib <<<"$ml")" 'BEGIN{print k/1024}')" "$(kv term_to_exit_ms <<<"$ml")" "$(kv exit <<<"$ml")"
  fi
  if [ $m = walship ]; then
    local final; final=$(grep -o 'stopped: durable txid=[0-9]*' "$d/side.log" | grep -o '[0-9]*$' || echo 0)
    printf ' shipped_during_burst=%.1f%% final_txid=%s expected=%s store_MB=%.1f objects=%s' \
      "$(awk -v a="$shipped_at_end" -v c="$commits" 'BEGIN{print 100*a/c}')" "$final" $((commits + 1)) \
      "$(awk -v b="$(objbytes "$d/store")" 'BEGIN{print b/1e6}')" "$(nobj "$d/store")"
    printf ' store_KB_per_1000tx=%.1f' "$(awk -v b="$(objbytes "$d/store")" -v c="$commits" 'BEGIN{print b/c}')"
    local pages; pages=$(seg_pages "$d/store")
    printf ' page_size=%s shipped_page_MB=%.1f ship_MB_per_cpu_s=%.1f' "$ps" "$(awk -v p="$pages" -v s="$ps" 'BEGIN{print p*s/1e6}')" \
      "$(awk -v p="$pages" -v s="$ps" -v c="$cpu" 'BEGIN{if (c>0) printf "%.1f", p*s/1e6/(c/1000); else print "NA"}')"
    printf ' write_barriers=%s' "$(grep -c 'write barrier' "$d/side.log" || true)"
    # how long each barrier held the app's write lock (median / max, ms)
    printf ' barrier_held_ms=%s' "$(grep -o 'held_ms=[0-9]*' "$d/side.log" | cut -d= -f2 | sort -n |
      awk '{v[NR]=$1} END{if (NR) printf "%s/%s", v[int((NR+1)/2)], v[NR]; else print "-"}')"
    grep -E ' (WARN|ERROR) ' "$d/side.log" | head -3 | sed 's/^/\n  sidecar: /' | tr -d '\n' || true
  fi
  if [ $m = backup ] || [ $m = vacuum ] || [ $m = attach ]; then
    local nb bb mx
    nb=$(grep -c '^backup ' "$d/side.log" || true)
    bb=$(grep -o 'bytes=[0-9]*' "$d/side.log" | cut -d= -f2 | awk '{s+=$1} END{print s+0}')
    mx=$(grep -o 'seconds=[0-9.]*' "$d/side.log" | cut -d= -f2 | sort -g | tail -1)
    printf ' copies=%s bytes_moved_MB=%.1f moved_KB_per_1000tx=%.1f max_copy_s=%s' "$nb" \
      "$(awk -v b="$bb" 'BEGIN{print b/1e6}')" "$(awk -v b="$bb" -v c="$commits" 'BEGIN{print b/c}')" "$mx"
  fi
  echo
  rm -rf "$d"
}
for r in $(seq 1 "$ROUNDS"); do
  modes="none walship"; [ "$r" -le "$BASE_ROUNDS" ] && modes="none walship backup vacuum attach"
  for m in $modes; do burst "$m" "$r"; done
done
for m in none walship backup vacuum attach; do
  echo "median tx/s $m: $(median <<<"${TPS[$m]}")  (runs:${TPS[$m]})"
done
for m in walship backup vacuum attach; do
  echo "ratio $m/none: $(div "$(median <<<"${TPS[$m]}")" "$(median <<<"${TPS[none]}")")  (medians; per-round ratios are in the lines above)"
done
echo "--- idle sidecar: no writes for ${BURST_S}s after the snapshot (cost of standing by)"
d=$T/idle; mkdir -p "$d"
"$WR" --db "$d/app.db" --txns 1000 >/dev/null
"$BIN/wsmon" --wal "$d/app.db-wal" -- "$W" replicate "$d/app.db" "$d/store" >"$d/mon.txt" 2>"$d/side.log" & mon=$!
BGPIDS+=("$mon"); wait_log "$d/side.log" "snapshot durable" 30
sleep "$BURST_S"; kill -TERM "$mon"; wait "$mon" || true
echo "idle: $(cat "$d/mon.txt") (includes the startup snapshot of a $(fsize "$d/app.db")-byte db)"
rm -rf "$d"

# ------------------------------------- (b2) writer overhead at 1000 tx/s
hdr "(b3) keeping up at other page sizes: the same unthrottled insert burst, ${BURST_S}s, one round each (walship defaults)"
for BURST_PS in 1024 65536; do
  burst none "ps$BURST_PS"
  burst walship "ps$BURST_PS"
done
unset BURST_PS

hdr "(b4) --wal-max sweep: the same unthrottled 4 KiB insert burst, ${BURST_S}s, one round each (16MiB, the default, is in (b))"
burst none wmref
for wm in 8MiB 32MiB 64MiB 0; do BURST_WS_ARGS="--wal-max $wm" burst walship "wm$wm"; done

hdr "(b5) four writer connections (ws-writer --conns 4, one process, turns per transaction), unthrottled, ${BURST_S}s"
BURST_WR_ARGS="--conns 4" burst none conns4
BURST_WR_ARGS="--conns 4" burst walship conns4

hdr "(b6) other shapes of load: overflow-page blobs and hot-page UPDATEs, unthrottled (bench/workloads.sh)"
WL_S=$BURST_S bash bench/workloads.sh "$W"

hdr "(b2) writer overhead at a fixed 1000 tx/s: the writer's own CPU, $((FIXED_S + B2_WARM_S))s, $ROUNDS alternating rounds"
echo "writer cmd: wsmon --wal DB-wal -- ws-writer --db DB --duration $((FIXED_S + B2_WARM_S)) --warmup $B2_WARM_S --rate 1000 --workload insert --synchronous normal --seed R"
echo "(writer_cpu: the whole run's user+sys CPU from wait4(), microseconds; steady: the last ${FIXED_S}s only, from the writer's CLOCK_PROCESS_CPUTIME_ID)"
echo "modes: none; walship = walship replicate DB STORE (defaults); walship0 = walship replicate --sync-interval 0 DB STORE"
declare -A WCPU=() WCPUS=()
fixed() { # fixed MODE ROUND
  local m=$1 r=$2 d=$T/fixed-$1-$2 sc="" wl
  mkdir -p "$d"
  "$WR" --db "$d/app.db" --txns 0 >/dev/null
  case $m in
    walship) "$W" replicate "$d/app.db" "$d/store" 2>"$d/side.log" & sc=$! ;;
    walship0) "$W" replicate --sync-interval 0 "$d/app.db" "$d/store" 2>"$d/side.log" & sc=$! ;;
  esac
  if [ -n "$sc" ]; then BGPIDS+=("$sc"); wait_log "$d/side.log" "snapshot durable" 30; fi
  "$BIN/wsmon" --wal "$d/app.db-wal" -- "$WR" --db "$d/app.db" --duration "$((FIXED_S + B2_WARM_S))" \
    --warmup "$B2_WARM_S" --rate 1000 --workload insert --synchronous normal --seed "$r" >"$d/writer.txt" 2>&1
  [ -n "$sc" ] && { kill -TERM "$sc"; wait "$sc" || true; }
  wl=$(cat "$d/writer.txt")
  local c u sy per
  c=$(kv commits <<<"$wl")
  u=$(awk -v m="$(kv cpu_user_ms <<<"$wl")" 'BEGIN{printf "%.4f", m/1000}')
  sy=$(awk -v m="$(kv cpu_sys_ms <<<"$wl")" 'BEGIN{printf "%.4f", m/1000}')
  per=$(awk -v u="$u" -v s="$sy" -v c="$c" 'BEGIN{printf "%.1f", (u+s)*1e6/c}')
  WCPU[$m]="${WCPU[$m]:-} $per"
  local st
  st=$(awk -v m="$(kv steady_cpu_ms <<<"$wl")" -v c="$(kv steady_commits <<<"$wl")" 'BEGIN{printf "%.2f", m*1000/c}')
  WCPUS[$m]="${WCPUS[$m]:-} $st"
  echo "round=$r $(load) mode=$m commits=$c tx/s=$(awk -v c="$c" -v e="$(kv elapsed <<<"$wl")" 'BEGIN{printf "%.0f", c/e}') writer_user_s=$u writer_sys_s=$sy writer_cpu_ms_per_1000tx=$per steady_cpu_ms_per_1000tx=$st"
  rm -rf "$d"
}
for r in $(seq 1 "$ROUNDS"); do
  for m in none walship walship0; do fixed "$m" "$r"; done
done
b2_summary() { # b2_summary ARRAY-NAME LABEL RATIO-SUFFIX: medians per mode, ratios to none
  local -n a=$1
  local m
  for m in none walship walship0; do
    echo "median ${2}writer CPU ms/1000 tx $m: $(median <<<"${a[$m]}")  (runs:${a[$m]})"
  done
  for m in walship walship0; do
    echo "${2}writer CPU ratio $m/none: $(div "$(median <<<"${a[$m]}")" "$(median <<<"${a[none]}")")$3"
  done
}
b2_summary WCPU "" "  (>1 = the writer works harder next to the sidecar)"
# the same after the first B2_WARM_S seconds (WAL file growth, cold caches),
# from the writer's own CLOCK_PROCESS_CPUTIME_ID (ns), not 10 ms ticks
b2_summary WCPUS "steady " ""

# (b2p) The same figure with most of the machine's noise taken out: two
# writers at once, each on its own database, one of them next to the
# sidecar; the other database swaps in every round.  Both see the same
# moment of this VM (its CPU time per commit drifts by +-10 % between runs a
# minute apart, which sequential rounds cannot separate from a 3 % effect),
# so each round gives one ratio.  What the ratio leaves out: the sidecar's
# own CPU and cache use, which slow both writers alike (reported as sidecar
# CPU in (b)): it is the cost of sharing the database, a lower bound of (b2).
hdr "(b2p) writer overhead at 1000 tx/s, paired: two writers at once, one next to the sidecar, $B2P_ROUNDS rounds"
echo "each writer: ws-writer --db DB --duration $((FIXED_S + B2_WARM_S)) --warmup $B2_WARM_S --rate 1000 --workload insert --synchronous normal --seed R; ratio = steady CPU per commit (last ${FIXED_S}s) next to the sidecar / alone, same round"
declare -A PR=()
paired() { # paired MODE ROUND
  local m=$1 r=$2 d=$T/pair w o sc a ca b cb ratio
  rm -rf "$d"; mkdir -p "$d/a" "$d/b"
  "$WR" --db "$d/a/app.db" --txns 0 >/dev/null
  "$WR" --db "$d/b/app.db" --txns 0 >/dev/null
  if [ $((r % 2)) = 1 ]; then w=a o=b; else w=b o=a; fi
  local args=(); [ "$m" = walship0 ] && args=(--sync-interval 0)
  "$W" replicate "${args[@]}" "$d/$w/app.db" "$d/$w/store" 2>"$d/side.log" & sc=$!
  BGPIDS+=("$sc")
  wait_log "$d/side.log" "snapshot durable" 30
  local wargs=(--duration "$((FIXED_S + B2_WARM_S))" --warmup "$B2_WARM_S" --rate 1000 --workload insert
               --synchronous normal --seed "$r")
  # which writer starts first alternates too, apart from the databases'
  # roles (rounds 1, 4, 5, 8, ...: the sidecar's first): with the sidecar's
  # always first, a control with no sidecar at all gave x0.964 (s14)
  local p1 p2
  if [ $(( (r / 2) % 2 )) = 0 ]; then
    "$WR" --db "$d/$w/app.db" "${wargs[@]}" >"$d/w.txt" 2>&1 & p1=$!
    "$WR" --db "$d/$o/app.db" "${wargs[@]}" >"$d/o.txt" 2>&1 & p2=$!
  else
    "$WR" --db "$d/$o/app.db" "${wargs[@]}" >"$d/o.txt" 2>&1 & p2=$!
    "$WR" --db "$d/$w/app.db" "${wargs[@]}" >"$d/w.txt" 2>&1 & p1=$!
  fi
  wait "$p1"; wait "$p2"  # each: a failed writer stops the bench here, not in awk
  kill -TERM "$sc"; wait "$sc" || true
  a=$(kv steady_cpu_ms <"$d/w.txt"); ca=$(kv steady_commits <"$d/w.txt")
  b=$(kv steady_cpu_ms <"$d/o.txt"); cb=$(kv steady_commits <"$d/o.txt")
  ratio=$(awk -v a="$a" -v ca="$ca" -v b="$b" -v cb="$cb" 'BEGIN{printf "%.4f", (a/ca)/(b/cb)}')
  PR[$m]="${PR[$m]:-} $ratio"
  echo "round=$r $(load) mode=$m sidecar_db=$w with_ms_per_1000tx=$(awk -v a="$a" -v c="$ca" 'BEGIN{printf "%.2f", a*1000/c}') alone_ms_per_1000tx=$(awk -v a="$b" -v c="$cb" 'BEGIN{printf "%.2f", a*1000/c}') commits=$ca/$cb ratio=$ratio"
  rm -rf "$d"
}
for r in $(seq 1 "$B2P_ROUNDS"); do
  for m in walship walship0; do paired "$m" "$r"; done
done
for m in walship walship0; do
  echo "paired writer CPU ratio $m/alone: median $(median <<<"${PR[$m]:-}")  (rounds:${PR[$m]:-})"
done

# ------------------------------------------------------------- (c) restore
hdr "(c) restore of a ~100 MB database of random 4000-byte blobs (warm page cache)"
d=$T/restore
mkdir -p "$d"
mkbig() { sqlite3 "$1" "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
  CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB);
  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<$BIG_ROWS)
  INSERT INTO b(v) SELECT randomblob(4000) FROM c;" >/dev/null; }
mkbig "$d/big.db"
DBB=$(fsize "$d/big.db")
echo "database: $BIG_ROWS rows, $DBB bytes ($(awk -v b="$DBB" 'BEGIN{printf "%.1f", b/1e6}') MB)"
S_SNAP=""; timed S_SNAP "$BIN/wsmon" --interval-ms 5 --wal "$d/big.db-wal" -- "$W" replicate --once --log-level warn "$d/big.db" "$d/short" >"$d/once.mon"
echo "short history: walship replicate --once DB STORE (the snapshot) took$S_SNAP s: $(cat "$d/once.mon"); objects=$(nobj "$d/short") bytes=$(objbytes "$d/short")"
"$W" restore "$d/short" -o "$d/out.db" --skip-integrity-check --log-level warn >/dev/null
echo "sanity: short-history restore is byte-identical to the source file: $(cmp -s "$d/big.db" "$d/out.db" && echo yes || echo NO)"
rm -f "$d/out.db"

# Long history: the short store, then the sidecar (--sync-interval 0) ships
# UPDATES/... 250 transactions that each rewrite ~100 random rows (~0.4 MB of
# pages), 20 ms apart: ~100 MB of segments on top of the 100 MB snapshot.
cp -r "$d/short" "$d/long"
"$BIN/wsmon" --wal "$d/big.db-wal" -- "$W" replicate --sync-interval 0 --log-level info "$d/big.db" "$d/long" \
  >"$d/long.mon" 2>"$d/long.log" & sc=$!
BGPIDS+=("$sc")
wait_log "$d/long.log" "continuing\|snapshot durable" 30
{
  # a busy timeout, as apps sharing a WAL database should have: this part
  # measures restore, not lock errors (those are (d)'s figure)
  echo "PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;"
  for _ in $(seq 1 250); do
    echo "UPDATE b SET v = randomblob(4000) WHERE id IN (SELECT abs(random()) % $BIG_ROWS + 1 FROM"
    echo "  (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<100) SELECT x FROM c));"
    echo ".shell sleep 0.02"
  done
} | sqlite3 "$d/big.db"
kill -TERM "$sc"; wait "$sc" || true
echo "long history: $(ls "$d/long/snap" | wc -l) snapshot + $(ls "$d/long/seg" | wc -l) segments ($(seg_pages "$d/long") page images), bytes=$(objbytes "$d/long"), $(grep -o 'stopped: durable txid=[0-9]*' "$d/long.log")"
echo "long-history sidecar on the 100 MB db: $(cat "$d/long.mon")"
sqlite3 "$d/big.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
# The same long history after compaction (--now: every window complete).
cp -r "$d/long" "$d/compacted"
x=""; timed x "$W" compact --now +72h --log-level warn "$d/compacted" >"$d/compact.out"
echo "compaction of the long history: walship compact --now +72h STORE took$x s: $(cat "$d/compact.out")"
echo "plan for latest, long: $("$W" restore --dry-run "$d/long" | tail -n 1)"
echo "plan for latest, compacted: $("$W" restore --dry-run "$d/compacted" | tail -n 1)"
"$W" restore "$d/compacted" -o "$d/out.db" --skip-integrity-check --log-level warn >/dev/null
echo "sanity: compacted-history restore is byte-identical to the source file: $(cmp -s "$d/big.db" "$d/out.db" && echo yes || echo NO)"
rm -f "$d/out.db"
"$W" restore "$d/long" -o "$d/out.db" --skip-integrity-check --log-level warn >/dev/null
echo "sanity: long-history restore is byte-identical to the source file: $(cmp -s "$d/big.db" "$d/out.db" && echo yes || echo NO)"
# Many: 100,000 single-row transactions after a fresh snapshot of the same
# database (ws-writer's insert workload, unthrottled, default 1 s interval),
# and the same after compaction.
"$BIN/wsmon" --wal "$d/big.db-wal" -- "$W" replicate --log-level info "$d/big.db" "$d/many" \
  >"$d/many.mon" 2>"$d/many.log" & sc=$!
BGPIDS+=("$sc")
wait_log "$d/many.log" "snapshot durable" 60
"$WR" --db "$d/big.db" --txns 100000 --rate 0 --workload insert --synchronous normal --seed 7 >"$d/many.writer"
kill -TERM "$sc"; wait "$sc" || true
echo "many history: ws-writer --txns 100000 --rate 0 --workload insert --synchronous normal next to walship replicate (defaults): $(cat "$d/many.writer" | tr '\n' ' ')"
echo "many history: $(ls "$d/many/snap" | wc -l) snapshot + $(ls "$d/many/seg" | wc -l) segments ($(seg_pages "$d/many") page records), bytes=$(objbytes "$d/many") (snapshot $(objbytes "$d/many/snap")), $(grep -o 'stopped: durable txid=[0-9]*' "$d/many.log")"
sqlite3 "$d/big.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
cp -r "$d/many" "$d/manycompacted"
"$W" compact --now +72h --log-level warn "$d/manycompacted" >/dev/null
echo "plan for latest, many: $("$W" restore --dry-run "$d/many" | tail -n 1)"
echo "plan for latest, many compacted: $("$W" restore --dry-run "$d/manycompacted" | tail -n 1)"
for h in many manycompacted; do
  rm -f "$d/out.db"
  "$W" restore "$d/$h" -o "$d/out.db" --skip-integrity-check --log-level warn >/dev/null
  echo "sanity: $h-history restore equals the source: $([ "$(sqlite3 "$d/big.db" .sha3sum)" = "$(sqlite3 "$d/out.db" .sha3sum)" ] && echo yes || echo NO)"
done
for h in short long compacted many manycompacted; do
  rm -f "$d/out.db"
  /usr/bin/time -f "user_s=%U sys_s=%S maxrss_kib=%M" -o "$d/time.txt" "$W" restore "$d/$h" -o "$d/out.db" --log-level warn >/dev/null
  echo "restore $h (with integrity_check), /usr/bin/time: $(cat "$d/time.txt")"
done
rm -f "$d/out.db"
echo "cmd: walship restore STORE -o OUT [--skip-integrity-check]  (OUT removed between runs; $RESTORE_REPS runs each)"
RT_shortskip="" RT_shortcheck="" RT_longskip="" RT_longcheck="" RT_compactedskip="" RT_compactedcheck=""
RT_manyskip="" RT_manycheck="" RT_manycompactedskip="" RT_manycompactedcheck=""
for i in $(seq 1 "$RESTORE_REPS"); do
  for h in short long compacted many manycompacted; do
    for mode in skip check; do
      rm -f "$d/out.db"
      v=RT_$h$mode
      flag=(); [ $mode = skip ] && flag=(--skip-integrity-check)
      x=""; timed x "$W" restore "$d/$h" -o "$d/out.db" "${flag[@]}" --log-level warn >/dev/null
      printf -v "$v" '%s %s' "${!v}" "$x"
    done
  done
done
CP="" DD="" GZD="" CAT="" GZC="" VAC=""
gzip -1 -c "$d/big.db" >"$d/big.gz"  # warm-up; timed below
for i in $(seq 1 "$RESTORE_REPS"); do
  rm -f "$d/o"; timed CP cp "$d/big.db" "$d/o"
  rm -f "$d/o"; timed DD dd if="$d/big.db" of="$d/o" bs=1M conv=fsync status=none
  rm -f "$d/o"; timed GZC sh -c "gzip -1 -c '$d/big.db' > '$d/big.gz'"
  rm -f "$d/o"; timed GZD sh -c "gzip -dc '$d/big.gz' > '$d/o'"
  rm -f "$d/o"; timed CAT sh -c "cat '$d'/short/snap/* > '$d/o'"
  rm -f "$d/o"; timed VAC sqlite3 "$d/big.db" "VACUUM INTO '$d/o'"
done
rm -f "$d/o"
mCP=$(median <<<"$CP") mDD=$(median <<<"$DD") mGZD=$(median <<<"$GZD")
row() { printf '%-52s median=%7.3fs  runs:%s  x cp=%s  x cp+fsync=%s  x gzip-dc=%s\n' "$1" "$(median <<<"$2")" "$2" \
  "$(div "$(median <<<"$2")" "$mCP")" "$(div "$(median <<<"$2")" "$mDD")" "$(div "$(median <<<"$2")" "$mGZD")"; }
row "cp DB OUT" "$CP"
row "dd conv=fsync (cp + fsync)" "$DD"
row "cat STORE/snap/* > OUT (read+write store bytes)" "$CAT"
row "gzip -dc DB.gz > OUT (gzip -1 copy: $(fsize "$d/big.gz") B)" "$GZD"
row "gzip -1 -c DB > DB.gz (compress, for reference)" "$GZC"
row "walship restore short --skip-integrity-check" "$RT_shortskip"
row "walship restore short (with integrity_check)" "$RT_shortcheck"
row "walship restore long --skip-integrity-check" "$RT_longskip"
row "walship restore long (with integrity_check)" "$RT_longcheck"
row "walship restore long+compacted --skip-integrity-check" "$RT_compactedskip"
row "walship restore long+compacted (with integrity_check)" "$RT_compactedcheck"
row "walship restore many (100,000 txns) --skip-integrity-check" "$RT_manyskip"
row "walship restore many (with integrity_check)" "$RT_manycheck"
row "walship restore many+compacted --skip-integrity-check" "$RT_manycompactedskip"
row "walship restore many+compacted (with integrity_check)" "$RT_manycompactedcheck"
row "sqlite3 DB 'VACUUM INTO OUT' (baseline copy)" "$VAC"
echo "long/short restore ratio (skip): $(div "$(median <<<"$RT_longskip")" "$(median <<<"$RT_shortskip")")"
echo "compacted/short restore ratio (skip): $(div "$(median <<<"$RT_compactedskip")" "$(median <<<"$RT_shortskip")")"
echo "many/short restore ratio (skip): $(div "$(median <<<"$RT_manyskip")" "$(median <<<"$RT_shortskip")")"
echo "many+compacted/short restore ratio (skip): $(div "$(median <<<"$RT_manycompactedskip")" "$(median <<<"$RT_shortskip")")"
echo "short restore / raw bound (dd conv=fsync), skip / with check: $(div "$(median <<<"$RT_shortskip")" "$mDD") / $(div "$(median <<<"$RT_shortcheck")" "$mDD")"
rm -rf "$d"

# ------------------------------------------------------ (d) store / db size
# Each size twice in this run: as shipped (page deltas) and with whole pages
# (WALSHIP_NO_DELTA=1), on copies of one database with the same UPDATE ids.
hdr "(d) store bytes / database size after $UPDATES small updates (one UPDATE of a 100-byte random blob per txn, unthrottled, busy_timeout 10 s)"
echo "cmd: walship replicate DB STORE (defaults; 'whole pages' = WALSHIP_NO_DELTA=1); sqlite3 DB < .timeout 10000 + $UPDATES x 'UPDATE kv SET v=randomblob(100) WHERE id=K;' (K: the same pseudo-random ids for both)"
ratio_run() { # ratio_run ROWS VARIANT
  local rows=$1 variant=$2 d=$T/ratio-$1-$2 env=()
  [ "$variant" = wholepages ] && env=(env WALSHIP_NO_DELTA=1)
  mkdir -p "$d"
  cp "$T/ratio-$rows.db" "$d/app.db"
  "${env[@]}" "$W" replicate "$d/app.db" "$d/store" 2>"$d/side.log" & sc=$!
  BGPIDS+=("$sc")
  wait_log "$d/side.log" "snapshot durable" 120
  SNAPB=$(objbytes "$d/store")
  { echo ".timeout 10000"; echo "PRAGMA synchronous=NORMAL;"
    awk -v n="$UPDATES" -v r="$rows" 'BEGIN{s=12345; for(i=0;i<n;i++){s=(s*1103515245+12345)%2147483648; printf "UPDATE kv SET v = randomblob(100) WHERE id = %d;\n", s%r+1}}'
  } | sqlite3 "$d/app.db" 2>"$d/cli.err" || true
  LOCKERR=$(grep -c 'database is locked' "$d/cli.err" || true)
  kill -TERM "$sc"; wait "$sc" || echo "bench: sidecar exited $?"
  DBB=$(fsize "$d/app.db") STB=$(objbytes "$d/store")
  SEGP=$(seg_pages "$d/store")
  echo "--- rows=$rows $variant: db_bytes=$DBB snapshot_bytes=$SNAPB store_bytes=$STB objects=$(nobj "$d/store") $(grep -o 'stopped: durable txid=[0-9]*' "$d/side.log") (expected $((UPDATES + 1))) lock_errors=$LOCKERR"
  echo "store/db ratio rows=$rows $variant: $(div "$STB" "$DBB")  segment bytes per update: $(awk -v s="$STB" -v n="$SNAPB" -v u="$UPDATES" 'BEGIN{printf "%.0f", (s-n)/u}')  page records in segments: $SEGP"
  rm -rf "$d"
}
for rows in $SMALL_ROWS $RATIO_BIG_ROWS; do
  sqlite3 "$T/ratio-$rows.db" "PRAGMA journal_mode=WAL; CREATE TABLE kv(id INTEGER PRIMARY KEY, v BLOB);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<$rows)
    INSERT INTO kv(v) SELECT randomblob(100) FROM c;" >/dev/null
  ratio_run "$rows" deltas
  ratio_run "$rows" wholepages
  rm -f "$T/ratio-$rows.db"*
done

# ----------------------------------------- (f) lag and requests against S3
hdr "(f) lag and requests against the local S3 server (s3rver behind the SigV4 proxy, 127.0.0.1)"
bash bench/s3.sh "$BIN" || echo "bench: (f) failed"

# ------------------------------------------- (c2) restore time vs db size
hdr "(c2) restore time vs database size (random 4000-byte blobs, one snapshot, warm page cache)"
echo "cmd: walship replicate --once DB STORE; walship restore STORE -o OUT [--skip-integrity-check]; raw bound dd if=DB of=OUT bs=1M conv=fsync ($RESTORE_REPS runs each, medians)"
: >"$OUT/restore-size.txt"
for mb in $RESTORE_SIZES_MB; do
  d=$T/size-$mb; mkdir -p "$d"
  rows=$((mb * 1000000 / 4105))
  # journal off while loading: only the final file matters, and it is faster
  sqlite3 "$d/db" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<$rows)
    INSERT INTO b(v) SELECT randomblob(4000) FROM c; PRAGMA journal_mode=WAL;" >/dev/null
  sz=$(fsize "$d/db")
  x=""; timed x "$W" replicate --once --log-level warn "$d/db" "$d/st"
  DDv="" SKv="" DFv=""
  for i in $(seq 1 "$RESTORE_REPS"); do
    rm -f "$d/o"; timed DDv dd if="$d/db" of="$d/o" bs=1M conv=fsync status=none
    rm -f "$d/o"; timed SKv "$W" restore "$d/st" -o "$d/o" --skip-integrity-check --log-level warn
    same=$(cmp -s "$d/db" "$d/o" && echo yes || echo NO)
    rm -f "$d/o"; timed DFv "$W" restore "$d/st" -o "$d/o" --log-level warn
  done
  rm -f "$d/o"
  mDD=$(median <<<"$DDv") mSK=$(median <<<"$SKv") mDF=$(median <<<"$DFv")
  echo "size=${mb}MB db_bytes=$sz store_bytes=$(objbytes "$d/st") snapshot_s=$x $(load) byte_identical=$same"
  echo "  dd conv=fsync median=${mDD}s (runs:$DDv); restore --skip-integrity-check median=${mSK}s (runs:$SKv) x dd=$(div "$mSK" "$mDD"); restore default median=${mDF}s (runs:$DFv) x dd=$(div "$mDF" "$mDD")"
  echo "  best of $RESTORE_REPS (this VM's disk has a slow mode that takes any run to ~2 s at 1 GB): restore --skip-integrity-check x dd=$(div "$(minof <<<"$SKv")" "$(minof <<<"$DDv")"); restore default x dd=$(div "$(minof <<<"$DFv")" "$(minof <<<"$DDv")")"
  echo "$(awk -v b="$sz" 'BEGIN{printf "%.1f", b/1e6}') $mDD $mSK $mDF" >>"$OUT/restore-size.txt"
  rm -rf "$d"
done

hdr "(c4) a ~1 GB database with a long history: ${LONG1G_ROWS} rows, then 100,000 single-row transactions after the snapshot, as shipped and compacted"
if [ "$LONG1G_ROWS" -gt 0 ]; then
  d=$T/long1g; mkdir -p "$d"
  sqlite3 "$d/db" "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; CREATE TABLE b(id INTEGER PRIMARY KEY, v BLOB);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<$LONG1G_ROWS)
    INSERT INTO b(v) SELECT randomblob(4000) FROM c; PRAGMA journal_mode=WAL;" >/dev/null
  "$BIN/wsmon" --wal "$d/db-wal" -- "$W" replicate --log-level info "$d/db" "$d/many" >"$d/many.mon" 2>"$d/many.log" & sc=$!
  BGPIDS+=("$sc")
  wait_log "$d/many.log" "snapshot durable" 120
  "$WR" --db "$d/db" --txns 100000 --rate 0 --workload insert --synchronous normal --seed 11 >"$d/many.writer"
  kill -TERM "$sc"; wait "$sc" || true
  sqlite3 "$d/db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
  echo "db_bytes=$(fsize "$d/db"); writer: $(tr '\n' ' ' <"$d/many.writer"); sidecar: $(cat "$d/many.mon")"
  echo "many: $(ls "$d/many/snap" | wc -l) snapshot + $(ls "$d/many/seg" | wc -l) segments, bytes=$(objbytes "$d/many"), $(grep -o 'stopped: durable txid=[0-9]*' "$d/many.log")"
  "$W" replicate --once --log-level warn "$d/db" "$d/short"
  cp -r "$d/many" "$d/manycompacted"
  x=""; timed x "$W" compact --now +72h --log-level warn "$d/manycompacted" >/dev/null
  echo "compaction took$x s; plan many: $("$W" restore --dry-run "$d/many" | tail -n 1); plan compacted: $("$W" restore --dry-run "$d/manycompacted" | tail -n 1)"
  src=$(sqlite3 "$d/db" .sha3sum)
  for h in many manycompacted; do
    rm -f "$d/o"; "$W" restore "$d/$h" -o "$d/o" --skip-integrity-check --log-level warn >/dev/null
    echo "sanity: $h restore equals the source: $([ "$src" = "$(sqlite3 "$d/o" .sha3sum)" ] && echo yes || echo NO)"
  done
  DDv="" SHv="" MAv="" MCv=""
  for i in $(seq 1 "$RESTORE_REPS"); do
    rm -f "$d/o"; timed DDv dd if="$d/db" of="$d/o" bs=1M conv=fsync status=none
    rm -f "$d/o"; timed SHv "$W" restore "$d/short" -o "$d/o" --skip-integrity-check --log-level warn >/dev/null
    rm -f "$d/o"; timed MAv "$W" restore "$d/many" -o "$d/o" --skip-integrity-check --log-level warn >/dev/null
    rm -f "$d/o"; timed MCv "$W" restore "$d/manycompacted" -o "$d/o" --skip-integrity-check --log-level warn >/dev/null
  done
  rm -f "$d/o"
  mDD=$(median <<<"$DDv") mSH=$(median <<<"$SHv") mMA=$(median <<<"$MAv") mMC=$(median <<<"$MCv")
  echo "cmd: walship restore STORE -o OUT --skip-integrity-check; dd if=DB of=OUT bs=1M conv=fsync ($RESTORE_REPS runs each, medians) $(load)"
  echo "  dd median=${mDD}s (runs:$DDv); short median=${mSH}s (runs:$SHv) x dd=$(div "$mSH" "$mDD")"
  echo "  many median=${mMA}s (runs:$MAv) x short=$(div "$mMA" "$mSH") x dd=$(div "$mMA" "$mDD"); many compacted median=${mMC}s (runs:$MCv) x short=$(div "$mMC" "$mSH") x dd=$(div "$mMC" "$mDD")"
  echo "  best of $RESTORE_REPS: short x dd=$(div "$(minof <<<"$SHv")" "$(minof <<<"$DDv")"); many x dd=$(div "$(minof <<<"$MAv")" "$(minof <<<"$DDv")"); many compacted x dd=$(div "$(minof <<<"$MCv")" "$(minof <<<"$DDv")")"
  rm -rf "$d"
fi

# ---------------------------------------------------------------- plots
hdr "plots"
bash bench/plots.sh "$OUT"

hdr "done"
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
