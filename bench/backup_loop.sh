#!/usr/bin/env bash
# Baseline for bench/run.sh: `sqlite3 DB .backup` + `gzip -1` on a timer.
#   backup_loop.sh DB OUTDIR INTERVAL_S
# Every INTERVAL_S seconds (a fixed schedule; a backup that overruns starts
# the next one at once) it writes OUTDIR/N.db.gz and logs to stderr
#   backup n=N seconds=S bytes=B
# Its RPO is the interval plus the time of one backup.  On SIGTERM it
# finishes the backup in progress and exits 0.
set -uo pipefail
db=$1 out=$2 interval=$3
mkdir -p "$out"
stop=0
trap 'stop=1' TERM INT
start=$EPOCHREALTIME
i=0
while [ $stop = 0 ]; do
  s=$EPOCHREALTIME
  sqlite3 "$db" ".backup '$out/tmp.db'" && gzip -1 -c "$out/tmp.db" >"$out/$i.db.gz"
  rm -f "$out/tmp.db"
  e=$EPOCHREALTIME
  echo "backup n=$i seconds=$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.3f", b-a}')" \
       "bytes=$(stat -c %s "$out/$i.db.gz" 2>/dev/null || echo 0)" >&2
  i=$((i + 1))
  wait_s=$(awk -v t0="$start" -v n="$i" -v iv="$interval" -v now="$EPOCHREALTIME" \
    'BEGIN{w=t0+n*iv-now; printf "%.3f", (w > 0 ? w : 0)}')
  [ $stop = 0 ] || break
  sleep "$wait_s" & wait $! 2>/dev/null
done
exit 0
