#!/usr/bin/env bash
# Proves: a database larger than 4 GiB (5.5 GiB: 90000 pages of 64 KiB,
# made sparse by bigdb.py so it takes no time to create) is snapshotted,
# its transactions that write pages past the 4 GiB offset are shipped, and
# it restores exactly (content hash, page count, integrity check).  Run by
# `make torture` (it moves ~11 GiB through zlib and the disk: about 3 min
# on a busy 2-core machine), not by `make test`.
. "$(dirname "$0")/../integration/lib.sh"
DB=$WORK/big.db STORE=$WORK/store
python3 "$(dirname "$0")/bigdb.py" "$DB" 90000 || { fail setup "bigdb.py failed"; finish; }
t0=$SECONDS
start_sidecar "$DB" "$STORE" --sync-interval 0 || finish
wait_for_log 'snapshot durable' "$SIDECAR_LOG" 600 && pass big_snapshot || fail big_snapshot "no snapshot in 600 s"
echo "snapshot of 5.5 GiB: $((SECONDS - t0)) s"
for i in 1 2 3 4 5; do   # new pages come off the freelist, past 4 GiB
  sqlite3 "$DB" "INSERT INTO t(v) VALUES (hex(randomblob(100000)) || '$i')" || fail "big_insert_$i" "sqlite3 failed"
done
sqlite3 "$DB" "UPDATE t SET v = v || 'x' WHERE id = 1"
high=$(sqlite3 "$DB" "SELECT max(pageno) FROM dbstat" 2>/dev/null)
echo "highest used page: ${high:-?} (4 GiB = page 65537)"
sleep 2
stop_sidecar big_sigterm_exit0
t1=$SECONDS
check_restore big "$STORE" "$DB"
echo "restore of 5.5 GiB: $((SECONDS - t1)) s"
check_eq big_page_count 90000 "$(sqlite3 -readonly "$RESTORED" 'PRAGMA page_count')"
check_eq big_size_bytes 5898240000 "$(stat -c %s "$RESTORED")"
finish
