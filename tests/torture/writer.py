#!/usr/bin/env python3
"""The torture campaign's application: commits seeded random transactions
to a WAL-mode database and records, after each commit, the commit's
sequence number and the content hash of the database it left.

The sequence number lives in the database too (table meta, one row), so a
restored database names the commit it claims to be, and the torture check
is exact: its hash must equal the hash the writer recorded for that seq.

  writer.py run DB LOG --seed N [--rate TX/S] [--ckpt-every N]
      until SIGTERM/SIGINT (finishes the transaction in flight); LOG gets
      "seq hash" lines, fsync'ed per line; prints "writer: commits=N".
  writer.py hash DB      prints "seq hash" of DB (read-only).
"""
import hashlib
import os
import random
import signal
import sqlite3
import sys
import time


def content(c):
    """seq and sha256 of every row of every table, in a fixed order."""
    h = hashlib.sha256()
    seq = c.execute("SELECT seq FROM meta").fetchone()[0]
    h.update(b"meta %d\n" % seq)
    for row in c.execute("SELECT id, k, hex(b) FROM t ORDER BY id"):
        h.update(repr(row).encode())
    return seq, h.hexdigest()


def run(db, log, seed, rate, ckpt_every):
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    rnd = random.Random(seed)
    c = sqlite3.connect(db, isolation_level=None, timeout=30)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=NORMAL")
    c.execute("BEGIN IMMEDIATE")
    c.execute("CREATE TABLE IF NOT EXISTS meta(seq INTEGER)")
    c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, k INTEGER, b BLOB)")
    if c.execute("SELECT count(*) FROM meta").fetchone()[0] == 0:
        c.execute("INSERT INTO meta VALUES (0)")
    c.execute("COMMIT")
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    n, t0 = 0, time.monotonic()
    while not stop:
        if rate > 0:
            delay = t0 + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        c.execute("BEGIN IMMEDIATE")
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            rid = rnd.randint(1, 400)
            if op < 0.5:
                c.execute("INSERT OR REPLACE INTO t VALUES (?, ?, ?)",
                          (rid, rnd.randint(0, 1 << 40), rnd.randbytes(rnd.choice((8, 100, 700, 3000)))))
            elif op < 0.8:
                c.execute("UPDATE t SET k = k + 1 WHERE id % 7 = ?", (rid % 7,))
            else:
                c.execute("DELETE FROM t WHERE id = ?", (rid,))
        c.execute("UPDATE meta SET seq = seq + 1")
        seq, h = content(c)
        c.execute("COMMIT")
        os.write(fd, b"%d %s\n" % (seq, h.encode()))
        os.fsync(fd)
        n += 1
        if ckpt_every and n % ckpt_every == 0:
            mode = rnd.choice(("PASSIVE", "FULL", "RESTART", "TRUNCATE"))
            # briefly: the sidecar's pin makes the blocking modes wait
            c.execute("PRAGMA busy_timeout=50")
            c.execute("PRAGMA wal_checkpoint(%s)" % mode).fetchall()
            c.execute("PRAGMA busy_timeout=30000")
    c.close()
    print("writer: commits=%d" % n, flush=True)


def main():
    a = sys.argv[1:]
    if len(a) >= 2 and a[0] == "hash":
        # immutable: no -wal/-shm appear next to a restored file
        c = sqlite3.connect("file:%s?mode=ro&immutable=1" % a[1], uri=True)
        print("%d %s" % content(c))
        return
    if len(a) < 3 or a[0] != "run":
        sys.exit(__doc__)
    opts = dict(zip(a[3::2], a[4::2]))
    run(a[1], a[2], int(opts.get("--seed", "1")), float(opts.get("--rate", "0")),
        int(opts.get("--ckpt-every", "0")))


if __name__ == "__main__":
    main()
