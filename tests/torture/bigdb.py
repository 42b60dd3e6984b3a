#!/usr/bin/env python3
"""Make a valid SQLite database larger than 4 GiB in seconds, as a sparse
file: 64 KiB pages, a small table, and NPAGES - (a few) pages on the
freelist.  The freelist leaves are never written (holes, read as zeros,
which SQLite allows for free pages); the trunk pages listing them are real.
The first trunk lists the highest pages, so the next pages SQLite allocates
lie past the 4 GiB offset.  Leaves the database in WAL mode.

usage: bigdb.py DB [NPAGES]   (default 90000 pages = 5.5 GiB)"""
import os
import sqlite3
import struct
import sys

db = sys.argv[1]
npages = int(sys.argv[2]) if len(sys.argv) > 2 else 90000
ps = 65536
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA page_size=%d" % ps)
c.execute("PRAGMA journal_mode=DELETE")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
c.execute("INSERT INTO t(v) VALUES ('below 4 GiB')")
c.close()

with open(db, "r+b") as f:
    hdr = bytearray(f.read(100))
    used = struct.unpack(">I", hdr[28:32])[0]
    per_trunk = ps // 4 - 2
    pending = (1 << 30) // ps + 1   # holds the lock bytes: never used
    free = [p for p in range(used + 1, npages + 1) if p != pending]
    ntrunk = -(-len(free) // (per_trunk + 1))
    trunks, leaves = free[:ntrunk], free[ntrunk:]
    leaves.reverse()  # the first trunk gets the highest page numbers
    for i, tp in enumerate(trunks):
        mine = leaves[i * per_trunk:(i + 1) * per_trunk]
        nxt = trunks[i + 1] if i + 1 < len(trunks) else 0
        page = struct.pack(">II", nxt, len(mine)) + b"".join(struct.pack(">I", p) for p in mine)
        f.seek((tp - 1) * ps)
        f.write(page.ljust(ps, b"\0"))
    f.truncate(npages * ps)  # the leaves: a hole
    struct.pack_into(">I", hdr, 28, npages)          # database size in pages
    struct.pack_into(">I", hdr, 32, trunks[0])       # first freelist trunk
    struct.pack_into(">I", hdr, 36, len(free))       # freelist pages
    f.seek(0)
    f.write(hdr)

c = sqlite3.connect(db, isolation_level=None)
assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
c.execute("PRAGMA journal_mode=WAL")
c.close()
print("%s: %d pages of %d bytes (%.2f GiB), %d free" % (db, npages, ps, npages * ps / 2**30, len(free)))
