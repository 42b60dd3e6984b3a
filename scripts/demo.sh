#!/usr/bin/env bash
# `make demo`: a 30-second tour.  Creates a sample database in a temp dir,
# replicates it to a local directory store while a writer runs, stops the
# sidecar, lists the store, restores it and compares content hashes.
# Exits non-zero unless the restored database matches the source.
# DEMO_KEEP=1 keeps the demo directory.
set -euo pipefail
cd "$(dirname "$0")/.."
WALSHIP=$PWD/build/walship
WRITER=$PWD/build/tools/ws-writer
for b in "$WALSHIP" "$WRITER"; do
  [ -x "$b" ] || { echo "demo: $b is missing; run make first" >&2; exit 1; }
done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/walship-demo.XXXXXX")
SIDECAR=""
cleanup() {
  [ -n "$SIDECAR" ] && kill -9 "$SIDECAR" 2>/dev/null || true
  if [ "${DEMO_KEEP:-0}" = 1 ]; then echo "demo files kept in $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
if [ -t 1 ]; then B=$'\033[1m' G=$'\033[32m' R=$'\033[31m' N=$'\033[0m'; else B="" G="" R="" N=""; fi
step() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }

DB=$DIR/app.db STORE=$DIR/store OUT=$DIR/restored.db
step "creating a sample WAL-mode database: $DB"
"$WRITER" --db "$DB" --txns 200 --seed 1 >/dev/null

step "starting the sidecar: walship replicate $DB $STORE"
"$WALSHIP" replicate "$DB" "$STORE" 2>"$DIR/sidecar.log" &
SIDECAR=$!
sleep 1

step "the application writes for 5 seconds (2 connections, ~200 tx/s, blobs, schema changes)"
"$WRITER" --db "$DB" --conns 2 --duration 5 --rate 200 --seed 2 --vacuum-every 400

step "stopping the sidecar (SIGTERM: it ships what is committed, then exits)"
kill -TERM "$SIDECAR"
rc=0; wait "$SIDECAR" || rc=$?
SIDECAR=""
echo "sidecar exit status: $rc; its last log lines:"
tail -n 3 "$DIR/sidecar.log" | sed 's/^/  /'
[ "$rc" = 0 ] || { echo "demo: the sidecar did not exit cleanly" >&2; exit 1; }

step "walship ls $STORE"
"$WALSHIP" ls "$STORE" >"$DIR/ls.txt"
head -n 20 "$DIR/ls.txt"
n=$(wc -l <"$DIR/ls.txt")
[ "$n" -le 20 ] || echo "  ... ($((n - 20)) more lines)"

step "walship restore $STORE -o $OUT"
"$WALSHIP" restore "$STORE" -o "$OUT" 2>/dev/null

step "comparing content hashes (sqlite3 .sha3sum)"
src=$(sqlite3 -readonly "$DB" .sha3sum)
dst=$(sqlite3 -readonly "$OUT" .sha3sum)
echo "  source:   $src"
echo "  restored: $dst"
echo "  integrity_check: $(sqlite3 -readonly "$OUT" 'PRAGMA integrity_check')"
if [ "$src" = "$dst" ]; then
  printf '\n%sMATCH%s\n' "$G" "$N"
else
  printf '\n%sMISMATCH%s\n' "$R" "$N"
  exit 1
fi
