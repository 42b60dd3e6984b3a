#!/usr/bin/env bash
# Regenerate the seed corpora tests/fuzz/corpus/{wal,codec,s3xml,httplist,config}
# from real objects: a small WAL written by SQLite (512-byte pages, a few
# transactions; also as a big-endian-checksum WAL), the snapshot and a
# segment walship ships from it to a file store, and S3 / nginx listings of
# that store's object names.  Each seed carries the target's control bytes
# (see the fuzz_*.c headers) in a few variants.  Keeps every file small;
# the regression inputs (crash-* / regress-*) in the corpora are kept.
# usage: tests/fuzz/make-seeds.sh  (after `make all`)
set -euo pipefail
cd "$(dirname "$0")/../.."
C=tests/fuzz/corpus
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p $C/wal $C/codec $C/s3xml $C/httplist $C/config
rm -f $C/{wal,codec,s3xml,httplist,config}/seed-*   # other targets' seeds are theirs

# A WAL as SQLite writes it, copied while the connection is still open.
python3 - "$W/db" <<'PY'
import shutil, sqlite3, sys
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA page_size=512"); c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
for i in range(4):
    c.execute("BEGIN"); c.execute("INSERT INTO t(v) VALUES (?)", ("x" * (40 * i),)); c.execute("COMMIT")
shutil.copy(db + "-wal", db + ".wal-copy")
c.close()
PY
python3 tests/fuzz/wal_be.py "$W/db.wal-copy" "$W/be.wal"
for f in 00 01 03 13 33; do
  { printf "\\x$f"; cat "$W/db.wal-copy"; } >$C/wal/seed-le-$f
done
{ printf '\x03'; cat "$W/be.wal"; } >$C/wal/seed-be-03
{ printf '\x03'; head -c 600 "$W/db.wal-copy"; } >$C/wal/seed-le-torn

# Snapshot + segments: replicate a small database for a moment.
rm -f "$W/db"*
python3 - "$W/db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA page_size=512"); c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
c.execute("INSERT INTO t(v) VALUES ('seed')")
PY
build/walship replicate --sync-interval 0 --poll-interval 50ms --log-level error "$W/db" "$W/store" &
pid=$!
sleep 1
python3 - "$W/db" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for i in range(3):
    c.execute("BEGIN"); c.execute("INSERT INTO t(v) VALUES (?)", ("row%d" % i * 20,)); c.execute("COMMIT")
    time.sleep(0.3)
PY
sleep 1
kill -TERM $pid; wait $pid
n=0
for o in "$W"/store/snap/*.snap "$W"/store/seg/*.seg; do
  [ -e "$o" ] || continue
  n=$((n + 1))
  { printf '\x00\x00'; cat "$o"; } >$C/codec/seed-$n-whole
  { printf '\x01\x03'; cat "$o"; } >$C/codec/seed-$n-fix-split
  [ $n -ge 4 ] && break
done
# A segment of 'D' (delta) records: UPDATEs of rows on the replicated pages.
build/walship replicate --sync-interval 0 --poll-interval 50ms --log-level error "$W/db" "$W/store2" &
pid=$!
sleep 1
python3 - "$W/db" <<'PY'
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
for i in range(2):
    c.execute("UPDATE t SET v = ? WHERE id = ?", ("upd%d" % i, i + 1)); time.sleep(0.3)
PY
sleep 1
kill -TERM $pid; wait $pid
o=$(ls "$W"/store2/seg/*.seg | tail -1)
{ printf '\x00\x00'; cat "$o"; } >$C/codec/seed-delta-whole
{ printf '\x01\x05'; cat "$o"; } >$C/codec/seed-delta-fix-split
# The same names as S3 and nginx would list them.
names=$(cd "$W/store" && find . -type f -printf '%P %s\n' | sort)
{ echo '<?xml version="1.0" encoding="UTF-8"?>'
  echo '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>db1/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>'
  while read -r n s; do
    echo "<Contents><Key>db1/$n</Key><LastModified>2026-11-28T10:00:00.000Z</LastModified><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>$s</Size><StorageClass>STANDARD</StorageClass></Contents>"
  done <<<"$names"
  echo '</ListBucketResult>'; } >$C/s3xml/seed-list
printf '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>db1/seg/x.seg</Key><RequestId>4442587FB7D0A2F9</RequestId></Error>' >$C/s3xml/seed-error
printf '<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>bkt</Bucket><Key>db1/snap/a.snap</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId></InitiateMultipartUploadResult>' >$C/s3xml/seed-initiate
printf '<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>http://127.0.0.1/bkt/db1/snap/a.snap</Location><Bucket>bkt</Bucket><Key>db1/snap/a.snap</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag></CompleteMultipartUploadResult>' >$C/s3xml/seed-complete
printf '<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Deleted><Key>db1/seg/a.seg</Key></Deleted><Error><Key>db1/seg/b.seg</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>' >$C/s3xml/seed-delete
# nginx autoindex_format json: the root lists directories, seg/ lists files.
printf '\x00[\n{ "name":"seg", "type":"directory", "mtime":"Sat, 28 Nov 2026 10:00:00 GMT" },\n{ "name":"snap", "type":"directory", "mtime":"Sat, 28 Nov 2026 10:00:00 GMT" },\n{ "name":"lost+found", "type":"other", "mtime":"Sat, 28 Nov 2026 10:00:00 GMT" }\n]\n' >$C/httplist/seed-root
{ printf '\x03[\n'; sep=""
  while read -r n s; do
    case $n in seg/*) printf '%s{ "name":"%s", "type":"file", "mtime":"Sat, 28 Nov 2026 10:00:00 GMT", "size":%s }' "$sep" "${n#seg/}" "$s"; sep=$',\n' ;; esac
  done <<<"$names"
  printf '\n]\n'; } >$C/httplist/seed-seg
# Configuration files: the shipped example and a few shapes of our own.
cp examples/walship.yml $C/config/seed-example
cat >$C/config/seed-small <<'YML'
log-level: info
databases:
  - path: ${WS_FUZZ_VAR}
    sync-interval: 250ms
    wal-max: 16MiB
    destinations:
      - url: file:///tmp/fuzz-store
      - url: s3://bucket/prefix
        region: us-east-1
YML
printf 'databases: [ {path: "/a.db", destinations: [ {url: "http://127.0.0.1:1/x"} ]} ]\n' >$C/config/seed-flow
printf 'databases:\n  - path: /a.db\n    bogus: 1\n' >$C/config/seed-bad-key
du -sh $C
ls $C/* | head -40
