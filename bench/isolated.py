#!/usr/bin/env python3
"""bench/isolated.py WALSHIP... -- how long an isolated commit takes to reach
the store, for each binary given, side by side in one run.

For each binary and each interval of ISO_INTERVALS (default "0 1s"): a fresh
WAL database (Python's sqlite3: synchronous=FULL, so the app fsyncs its commit
before publishing it in the wal-index), `walship replicate --sync-interval IV`
into a file store, then ISO_N (default 6) single-row commits ISO_GAP seconds
(default 2) apart; for each, the milliseconds from just before the COMMIT to a
new segment file in the store (polled every 0.5 ms).  Binaries alternate per
interval.  Session 15 (docs/benchmarks.md S15): the scan bound at mxFrame left
such a commit waiting for the loop's next tick (~1 s) until the chase.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time


def one(binp, iv, n, gap, root):
    d = os.path.join(root, "iso")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    db = sqlite3.connect(os.path.join(d, "db"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t(x)")
    seg = os.path.join(d, "st", "seg")
    with open(os.path.join(d, "log"), "w") as log:
        sc = subprocess.Popen([binp, "replicate", "--sync-interval", iv,
                               os.path.join(d, "db"), os.path.join(d, "st")], stderr=log)
        try:
            time.sleep(1.5)

            def nseg():
                try:
                    return len(os.listdir(seg))
                except FileNotFoundError:
                    return 0

            out = []
            for _ in range(n):
                time.sleep(gap)
                n0, t0 = nseg(), time.monotonic()
                db.execute("INSERT INTO t VALUES(randomblob(100))")
                while nseg() == n0 and time.monotonic() - t0 < 5:
                    time.sleep(0.0005)
                out.append((time.monotonic() - t0) * 1000)
        finally:
            sc.terminate()
            sc.wait()
    db.close()
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    n = int(os.environ.get("ISO_N", "6"))
    gap = float(os.environ.get("ISO_GAP", "2"))
    root = tempfile.mkdtemp(prefix="walship-iso.", dir=os.environ.get("BENCH_TMP"))
    try:
        for iv in os.environ.get("ISO_INTERVALS", "0 1s").split():
            for binp in sys.argv[1:]:
                ms = one(os.path.realpath(binp), iv, n, gap, root)
                s = sorted(ms)
                print("binary=%s interval=%s commit_to_segment_ms=%s median=%.1f"
                      % (binp, iv, " ".join("%.1f" % x for x in ms), s[len(s) // 2]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
