#!/usr/bin/env bash
# Deterministic reproduction of the torture campaign's one data-loss
# finding (docs/reliability.md; fixed in 9122660, this is its regression
# test, run by `make torture` since it needs gdb).
#
# A sidecar restarts while the WAL holds commits it never shipped, all of
# them already backfilled into the database file (the app checkpointed while
# no sidecar ran) but the WAL not yet reset.  attach() sees the same cycle
# with the chain intact and says "continuing WAL cycle at frame N"; its pin
# lands on slot 0 (everything backfilled), which does not stop a reset.  The
# app's next write resets the WAL before the first sync; sync_once() then
# takes the new cycle for "a reset under our pin: the old cycle was fully
# shipped" — it was not — and ships the new cycle's commits as a segment
# onto the state after frame N.  The commits after N are lost from the
# history, and the segment (reported durable) fails restore's checksum:
#   restore: seg/...-....seg: txid 4: database checksum mismatch after apply
# (When the new cycle is still empty, the same race ends a starting sidecar
# with exit 3 "changed outside the WAL" or "frame N is not a valid commit".)
# gdb stops the sidecar at its second WAL-header read (its first sync) to
# place the app's write in that window every time.
#
# Prints PASS when the latest restore equals the source; FAIL otherwise.
set -u
W=${WALSHIP:-$(cd "$(dirname "$0")/../.." && pwd)/build/walship}
command -v gdb >/dev/null || { echo "FAIL repro_reset_after_attach/setup: gdb missing"; exit 1; }
D=$(mktemp -d "${TMPDIR:-/tmp}/walship-repro.XXXXXX"); cd "$D" || exit 1
wait_file() { local i; for ((i = 0; i < 1500; i++)); do [ -e "$1" ] && return 0; sleep 0.02; done; return 1; }
# The app: one connection open throughout (closing the last one would
# checkpoint and delete the WAL); phases driven by flag files.
python3 - <<'PY' >app.log 2>&1 &
import sqlite3, time, os
def wait(f):
    while not os.path.exists(f): time.sleep(0.01)
c = sqlite3.connect("a.db", isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
c.execute("CREATE TABLE u(id INTEGER PRIMARY KEY, v TEXT)")
for i in range(20): c.execute("INSERT INTO t(v) VALUES (?)", ("a%d" % i * 50,))
open("A", "w").close(); wait("shipped")
# no sidecar running: commit to other pages, backfill everything, no reset yet
for i in range(5): c.execute("INSERT INTO u(v) VALUES (?)", ("b%d" % i * 50,))
print("checkpoint", c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall(), flush=True)
open("ready", "w").close(); wait("go")
for i in range(3): c.execute("INSERT INTO t(v) VALUES (?)", ("c%d" % i * 50,))  # resets the WAL
open("done", "w").close(); wait("end")
PY
app=$!
wait_file A || { echo "FAIL repro_reset_after_attach/setup: app did not start"; exit 1; }
"$W" replicate --once --checkpoint-frames 0 a.db store >once.log 2>&1 || { cat once.log; exit 1; }
touch shipped; wait_file ready
gdb -q -batch -ex 'break ws_wal_header' -ex 'ignore 1 1' -ex 'run' \
  -ex 'shell touch go; while [ ! -e done ]; do sleep 0.05; done' -ex 'delete' \
  -ex 'continue' --args "$W" replicate --once --checkpoint-frames 0 a.db store >gdb.log 2>&1
grep -E "continuing|new WAL|durable|snapshot|replicate:" gdb.log | cut -c25-220
touch end; wait $app
out=$("$W" restore store -o r.db 2>&1); rc=$?
echo "$out" | tail -n 1
a=$(sqlite3 -readonly a.db .sha3sum); b=$(sqlite3 -readonly r.db .sha3sum 2>/dev/null)
if [ $rc = 0 ] && [ "$a" = "$b" ]; then echo "PASS repro_reset_after_attach/latest_restore_equals_source"; rm -rf "$D"; exit 0; fi
echo "FAIL repro_reset_after_attach/latest_restore_equals_source: restore exit $rc (evidence in $D)"
exit 1
