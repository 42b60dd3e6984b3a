#!/usr/bin/env bash
# Proves: frames past the wal-index's mxFrame are never shipped, even when
# they pass the checksum chain and end in a commit frame.  Such frames are
# what a writer killed between writing its commit frame and publishing it in
# the wal-index leaves behind: no connection ever sees them, and the next
# writer overwrites them (SQLite recovers them only when the wal-index itself
# is rebuilt, and the sidecar's connections keep it alive).  A sidecar that
# shipped them recorded a transaction the database never had, and then lost
# its place in the WAL when the next commit overwrote them.
#
# The killed writer is simulated: a frame continuing the valid chain, with a
# commit mark, is appended to the WAL file without touching the -shm.
#
# Second case: a committed, unshipped frame whose bytes change on disk (the
# chain breaks below mxFrame) is a corrupt WAL: the final sync fails naming
# it and the sidecar exits non-zero, instead of reporting everything durable
# with the commits after it silently left out.
. "$(dirname "$0")/lib.sh"

# inject_orphan WAL: append one frame after the last valid one (the page of
# the last frame with its cells' bytes changed, the chain continued, a commit
# mark); prints its frame number.
inject_orphan() {
  python3 - "$1" <<'EOF'
import struct, sys
M = 0xffffffff
with open(sys.argv[1], 'r+b') as f:
    hdr = f.read(32)
    magic, _, ps, _, s1, s2, c1, c2 = struct.unpack('>8I', hdr)
    e = '>' if magic & 1 else '<'
    def ck(data, a, b):
        w = struct.unpack(e + '%dI' % (len(data) // 4), data)
        for i in range(0, len(w), 2):
            a = (a + w[i] + b) & M
            b = (b + w[i + 1] + a) & M
        return a, b
    a, b = ck(hdr[:24], 0, 0)
    assert (a, b) == (c1, c2), 'WAL header checksum'
    fs, n, last, size = 24 + ps, 0, None, 0
    while True:
        f.seek(32 + n * fs)
        fr = f.read(fs)
        if len(fr) < fs:
            break
        pg, commit, x1, x2, k1, k2 = struct.unpack('>6I', fr[:24])
        if (x1, x2) != (s1, s2) or ck(fr[:8] + fr[24:], a, b) != (k1, k2):
            break
        a, b = k1, k2
        n, last = n + 1, fr
        if commit:
            size = commit
    assert last is not None and size, 'no committed frame in the WAL'
    pg = struct.unpack('>I', last[:4])[0]
    page = bytearray(last[24:])
    for i in range(ps // 2, ps - 16):   # the cell content area of a leaf
        page[i] ^= 0x5a
    head = struct.pack('>4I', pg, size, s1, s2)
    k1, k2 = ck(head[:8] + bytes(page), a, b)
    f.seek(32 + n * fs)
    f.write(head + struct.pack('>2I', k1, k2) + bytes(page))
    f.flush()
    print(n + 1)
EOF
}

db=$WORK/app.db store=$WORK/store
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 100ms || finish
run_writer before --db "$db" --workload insert --txns 20 --seed 1
sleep 1

orphan=$(inject_orphan "$db-wal")
check_eq orphan_frame_written yes "$([ -n "$orphan" ] && [ "$orphan" -gt 0 ] && echo yes || echo "no: $orphan")"
sleep 1.5        # ~15 syncs with the orphan frame in the WAL
run_writer after --db "$db" --workload insert --txns 20 --seed 2
sleep 1
stop_sidecar sigterm_exit0

check_eq one_history 1 "$(ls "$store/snap" | wc -l)" "snapshots: $(ls "$store/snap" | tr '\n' ' ')"
check_eq no_gap_logged 0 "$(grep -ciE 'new history|changed outside|gap' "$SIDECAR_LOG")" \
  "$(grep -iE 'new history|changed outside|gap' "$SIDECAR_LOG" | head -n 2 | tr '\n' '|')"
# every commit of the writers, and nothing else: the schema's, then 20 + 20
check_eq txids_are_the_commits "$(( $(store_objects_sorted "$store" | head -n 1 | cut -d' ' -f1) + 40 ))" \
  "$(store_max_txid "$store")"
check_contiguous store_contiguous "$store"
check_restore final "$store" "$db"

# ---- the orphan frame is already there when the sidecar starts: its first
# snapshot is the published state, and the next writer's commits continue it
db=$WORK/s.db store=$WORK/sstore
make_db "$db" || finish
# a connection that keeps the WAL and the wal-index alive between writers
python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1]); c.execute("SELECT count(*) FROM sqlite_master").fetchall()
time.sleep(60)' "$db" &
holder=$!
sleep 0.3
run_writer s1 --db "$db" --workload insert --txns 20 --seed 4
orphan=$(inject_orphan "$db-wal")
check_eq start_orphan_written yes "$([ -n "$orphan" ] && [ "$orphan" -gt 0 ] && echo yes || echo "no: $orphan")"
start_sidecar "$db" "$store" --sync-interval 100ms || finish
run_writer s2 --db "$db" --workload insert --txns 20 --seed 5
sleep 1
stop_sidecar start_sigterm_exit0
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
check_eq start_one_history 1 "$(ls "$store/snap" | wc -l)" "snapshots: $(ls "$store/snap" | tr '\n' ' ')"
check_eq start_txids_are_the_commits "$(( $(store_objects_sorted "$store" | head -n 1 | cut -d' ' -f1) + 20 ))" \
  "$(store_max_txid "$store")"
check_eq start_no_error_logged 0 "$(grep -ciE 'corrupt|sync failed' "$SIDECAR_LOG")" \
  "$(grep -iE 'corrupt|sync failed' "$SIDECAR_LOG" | head -n 2 | tr '\n' '|')"
check_restore start "$store" "$db"

# ---- the -shm is removed under the sidecar (an operator's mistake): the
# app's next connection makes a new one, which the sidecar's peeks must
# follow, or the scan's bound stays at the old file's mxFrame for ever
db=$WORK/m.db store=$WORK/mstore
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 100ms || finish
run_writer m1 --db "$db" --workload insert --txns 10 --seed 6
sleep 0.5
rm -f "$db-shm"
run_writer m2 --db "$db" --workload insert --txns 10 --seed 7
sleep 3              # the -shm check runs every 2 s
stop_sidecar shm_sigterm_exit0
check_eq shm_reattached 1 "$(grep -c 'shm was removed or replaced' "$SIDECAR_LOG")"
check_restore shm "$store" "$db"

# ---- a committed frame corrupted before it was shipped
db=$WORK/c.db store=$WORK/cstore
make_db "$db" || finish
start_sidecar "$db" "$store" --sync-interval 1h || finish
run_writer c1 --db "$db" --workload insert --txns 20 --seed 3
python3 - "$db-wal" <<'EOF2'
import sys
with open(sys.argv[1], 'r+b') as f:
    f.seek(0, 2)
    ps = int.from_bytes(open(sys.argv[1], 'rb').read(12)[8:12], 'big')
    off = 32 + 9 * (24 + ps) + 24 + ps - 100  # near the end of frame 10's page
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xff]))
EOF2
kill -TERM "$SIDECAR_PID"; wait "$SIDECAR_PID"; rc=$?; SIDECAR_PID=""
check_eq corrupt_final_sync_fails yes "$([ "$rc" != 0 ] && echo yes || echo "no: exit $rc")"
check_eq corrupt_named 1 "$(grep -c 'frame 10 fails the WAL checksum chain.*WAL is corrupt' "$SIDECAR_LOG")" \
  "$(tail -n 2 "$SIDECAR_LOG" | tr '\n' '|')"

finish
