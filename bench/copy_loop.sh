#!/usr/bin/env bash
# Baselines for bench/run.sh: the SQLite-only ways to keep a copy, on a timer.
#   copy_loop.sh MODE DB OUTDIR INTERVAL_S
#   MODE backup  `sqlite3 DB .backup` + `gzip -1`  -> OUTDIR/N.db.gz
#        vacuum  `VACUUM INTO` a new file, renamed -> OUTDIR/copy.db
#        attach  one replica OUTDIR/replica.db kept up to date with
#                `ATTACH DB; INSERT OR REPLACE INTO main.T SELECT * FROM src.T`
#                for every table (created on the first round by VACUUM INTO)
# Every INTERVAL_S seconds (a fixed schedule; a copy that overruns starts the
# next one at once) it makes one copy and logs to stderr
#   backup n=N seconds=S bytes=B
# where B is the bytes written for that copy (the .gz; the new file; the
# growth of the replica's -wal, i.e. the pages the copy rewrote).  Its RPO is
# the interval plus the time of one copy.  On SIGTERM it finishes the copy in
# progress and exits 0.
set -uo pipefail
mode=$1 db=$2 out=$3 interval=$4
mkdir -p "$out"
stop=0
trap 'stop=1' TERM INT
start=$EPOCHREALTIME
i=0
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
copy_attach() {
  local r=$out/replica.db sql t
  if [ ! -e "$r" ]; then
    sqlite3 "$db" "VACUUM INTO '$r'" && sqlite3 "$r" "PRAGMA journal_mode=WAL" >/dev/null
    size "$r"; return
  fi
  sql="PRAGMA synchronous=NORMAL; ATTACH '$db' AS src; BEGIN;"
  for t in $(sqlite3 "$r" "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%'"); do
    sql+=" INSERT OR REPLACE INTO main.\"$t\" SELECT * FROM src.\"$t\";"
  done
  sql+=" COMMIT;"
  # Before the connection closes (and checkpoints), the replica's -wal holds
  # exactly the pages this copy rewrote.
  printf '%s\n.shell stat -c %%s %q\n' "PRAGMA wal_autocheckpoint=0; $sql" "$r-wal" | sqlite3 "$r" | tail -1
}
while [ $stop = 0 ]; do
  s=$EPOCHREALTIME
  case $mode in
    backup) sqlite3 "$db" ".backup '$out/tmp.db'" && gzip -1 -c "$out/tmp.db" >"$out/$i.db.gz"
      rm -f "$out/tmp.db"; b=$(size "$out/$i.db.gz"); rm -f "$out/$((i - 1)).db.gz" ;;
    vacuum) rm -f "$out/tmp.db"; sqlite3 "$db" "VACUUM INTO '$out/tmp.db'" && mv "$out/tmp.db" "$out/copy.db"
      b=$(size "$out/copy.db") ;;
    attach) b=$(copy_attach) ;;
    *) echo "copy_loop: unknown mode $mode" >&2; exit 2 ;;
  esac
  e=$EPOCHREALTIME
  echo "backup n=$i seconds=$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.3f", b-a}') bytes=${b:-0}" >&2
  i=$((i + 1))
  wait_s=$(awk -v t0="$start" -v n="$i" -v iv="$interval" -v now="$EPOCHREALTIME" \
    'BEGIN{w=t0+n*iv-now; printf "%.3f", (w > 0 ? w : 0)}')
  [ $stop = 0 ] || break
  sleep "$wait_s" & wait $! 2>/dev/null
done
exit 0
