#!/usr/bin/env bash
# Proves: `walship restore --follow` keeps a replica current while the source
# is written continuously, and another process reading the replica with
# plain SQLite in a loop (PRAGMA integrity_check + invariants the writer
# keeps in every transaction) never sees an error or a half-applied
# transaction — across kill -9 of the follower at random points (it resumes
# from its recorded position) and across a replaced source database (new
# lineage: the follower recovers from the gap snapshot).  At the end the
# replica's content equals the source's.  Also: a replica written by someone
# else is refused on restart; an existing non-replica file is refused.
. "$(dirname "$0")/lib.sh"

db=$WORK/app.db store=$WORK/store rep=$WORK/replica.db
mkdir -p "$store"

# The writer: every transaction moves money between accounts (the sum stays
# 5000) and adds a log row with a random-size pad while meta.n counts the
# rows; every 60 transactions it deletes a third of the log, every 400 it
# VACUUMs (the database shrinks).  A torn or half-applied state breaks one
# of the invariants or the integrity check.
cat >"$WORK/writer.py" <<'EOF'
import random, sqlite3, sys, time
db, n, rate, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
c = sqlite3.connect(db, isolation_level=None, timeout=30)
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE IF NOT EXISTS acct(id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)")
c.execute("CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
c.execute("CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, at INTEGER, pad BLOB)")
c.execute("CREATE INDEX IF NOT EXISTS log_at ON log(at)")
if c.execute("SELECT count(*) FROM acct").fetchone()[0] == 0:
    c.execute("BEGIN IMMEDIATE")
    c.executemany("INSERT INTO acct VALUES (?, 100)", [(i,) for i in range(50)])
    c.execute("INSERT INTO meta VALUES ('n', 0)")
    c.execute("COMMIT")
for i in range(n):
    c.execute("BEGIN IMMEDIATE")
    a, b, amt = rnd.randrange(50), rnd.randrange(50), rnd.randrange(1, 40)
    c.execute("UPDATE acct SET bal = bal - ? WHERE id = ?", (amt, a))
    c.execute("UPDATE acct SET bal = bal + ? WHERE id = ?", (amt, b))
    c.execute("INSERT INTO log(at, pad) VALUES (?, randomblob(?))", (i, rnd.randrange(50, 9000)))
    d = 0
    if i % 60 == 59:
        d = c.execute("DELETE FROM log WHERE id % 3 = ?", (i % 3,)).rowcount
    c.execute("UPDATE meta SET v = v + 1 - ? WHERE k = 'n'", (d,))
    c.execute("COMMIT")
    if i % 400 == 399:
        c.execute("VACUUM")
    time.sleep(1.0 / rate)
print("writer: commits=%d" % n)
EOF

# The reader: plain SQLite (Python's, i.e. Debian's libsqlite3), read-only,
# reopening now and then; any error or broken invariant is recorded.
cat >"$WORK/reader.py" <<'EOF'
import os, sqlite3, sys, time
rep, stopfile = sys.argv[1], sys.argv[2]
checks = errors = 0
first = ""
def check(c):
    r = [x[0] for x in c.execute("PRAGMA integrity_check")]
    if r != ["ok"]:
        return "integrity_check: %s" % r[:3]
    c.execute("BEGIN")
    s = c.execute("SELECT sum(bal), count(*) FROM acct").fetchone()
    n = c.execute("SELECT v FROM meta WHERE k = 'n'").fetchone()
    cnt = c.execute("SELECT count(*) FROM log").fetchone()[0]
    c.execute("COMMIT")
    if s != (5000, 50) or n is None or n[0] != cnt:
        return "invariant: acct=%s meta.n=%s log rows=%d" % (s, n, cnt)
    return ""
c = None
while not os.path.exists(stopfile):
    if not os.path.exists(rep):
        time.sleep(0.05)
        continue
    try:
        if c is None or checks % 10 == 0:
            if c is not None:
                c.close()
            c = sqlite3.connect("file:%s?mode=ro" % rep, uri=True, timeout=10,
                                isolation_level=None)
        e = check(c)
    except Exception as ex:
        e = "%s: %s" % (type(ex).__name__, ex)
        c = None
    checks += 1
    if e:
        errors += 1
        if not first:
            first = e
print("reader: checks=%d errors=%d first=%s" % (checks, errors, first or "-"))
EOF

FOLLOW_PID="" FOLLOW_N=0 FOLLOW_LOG=""
start_follow() {
  FOLLOW_N=$((FOLLOW_N + 1))
  FOLLOW_LOG=$WORK/follow.$FOLLOW_N.log
  "$WALSHIP" restore --follow --poll-interval 200ms "$store" -o "$rep" >"$FOLLOW_LOG" 2>&1 &
  FOLLOW_PID=$!
  _BG_NAME[$FOLLOW_PID]=follow
}
kill9_follow() {
  kill -9 "$FOLLOW_PID" 2>/dev/null; wait "$FOLLOW_PID" 2>/dev/null
  unset "_BG_NAME[$FOLLOW_PID]"
}
# The TXID the replica's state file says was applied last.
replica_txid() { tail -n 1 "$rep-walship-follow" 2>/dev/null | cut -d' ' -f2; }
# wait_caught_up NAME: until the replica is at the store's newest TXID.
wait_caught_up() {
  local want="?" end=$((SECONDS + 30))
  while [ $SECONDS -lt $end ] && kill -0 "$FOLLOW_PID" 2>/dev/null; do
    want=$(store_max_txid "$store")
    [ "$(replica_txid)" = "$want" ] && { pass "$1"; return 0; }
    sleep 0.2
  done
  fail "$1" "replica at txid $(replica_txid), store at $want: $(tail -n 3 "$FOLLOW_LOG" | tr '\n' '|')"
  return 1
}

python3 "$WORK/writer.py" "$db" 0 1 1 >/dev/null || { fail setup "writer cannot create $db"; finish; }
start_sidecar "$db" "$store" --sync-interval 100ms || finish
python3 "$WORK/writer.py" "$db" 1200 250 1 >"$WORK/writer.1.log" 2>&1 &
wpid=$!
_BG_NAME[$wpid]=writer1
sleep 2                               # a history to catch up on
python3 "$WORK/reader.py" "$rep" "$WORK/stop-reader" >"$WORK/reader.log" 2>&1 &
rpid=$!
_BG_NAME[$rpid]=reader
start_follow
wait_for_log "created at txid" "$FOLLOW_LOG" 20 && pass replica_created ||
  fail replica_created "$(tail -n 3 "$FOLLOW_LOG" | tr '\n' '|')"

# kill -9 at random (seeded) points while both the writer and the follower
# work; each restart must resume from the recorded position.
RANDOM=7
resumed=0
for i in 1 2 3 4; do
  sleep "0.$((1 + RANDOM % 9))"
  kill9_follow
  start_follow
  wait_for_log "resuming replica .* at txid=[0-9]+ \(checksum verified\)" "$FOLLOW_LOG" 15 &&
    resumed=$((resumed + 1))
done
check_eq resumes_after_kill9 4 "$resumed" "($(tail -n 2 "$FOLLOW_LOG" | tr '\n' '|'))"
wait "$wpid"; unset "_BG_NAME[$wpid]"
wait_caught_up caught_up_first_history
check_eq lag_in_log_line 1 "$(grep -cm1 'lag_txids=[0-9]* lag_s=' "$WORK"/follow.*.log | awk -F: '{s += $NF} END {print (s > 0)}')"

# A new history: the source database is replaced while the sidecar is down;
# the sidecar writes a gap snapshot with a new lineage, and the follower
# (running throughout) switches to it.
stop_sidecar sidecar_stop_before_replace
rm -f "$db" "$db-wal" "$db-shm"
python3 "$WORK/writer.py" "$db" 120 1000 2 >/dev/null || fail setup "writer cannot recreate $db"
start_sidecar "$db" "$store" --sync-interval 100ms || finish
python3 "$WORK/writer.py" "$db" 600 250 3 >"$WORK/writer.2.log" 2>&1 &
wpid=$!
_BG_NAME[$wpid]=writer2
wait_for_log "history does not continue from the replica's txid" "$FOLLOW_LOG" 20 &&
  pass new_lineage_detected || fail new_lineage_detected "$(tail -n 3 "$FOLLOW_LOG" | tr '\n' '|')"
sleep 0.5
kill9_follow                           # once more, in the new history
start_follow
wait "$wpid"; unset "_BG_NAME[$wpid]"
stop_sidecar sidecar_final_stop
wait_caught_up caught_up_new_lineage

touch "$WORK/stop-reader"
wait "$rpid"; unset "_BG_NAME[$rpid]"
read -r _ checks errors first < <(sed -n 's/^reader: checks=\([0-9]*\) errors=\([0-9]*\) first=\(.*\)/x \1 \2 \3/p' "$WORK/reader.log")
echo "follow: $(cat "$WORK/reader.log")"
check_eq reader_never_saw_an_error 0 "${errors:-missing}" "(first: ${first:-} $(tail -n 2 "$WORK/reader.log" | tr '\n' '|'))"
if [ "${checks:-0}" -ge 50 ]; then pass reader_checked_often
else fail reader_checked_often "only ${checks:-0} reader checks"; fi

# A new history that is nothing but its gap snapshot: the source changes
# while no sidecar runs (its WAL checkpointed away), one `replicate --once`.
python3 "$WORK/writer.py" "$db" 30 1000 4 >/dev/null || fail setup "writer phase 3"
check_rc replicate_once_gap_snapshot 0 "$WALSHIP" replicate --once "$db" "$store"
wait_caught_up caught_up_lone_snapshot

kill -TERM "$FOLLOW_PID"; wait "$FOLLOW_PID"; frc=$?; unset "_BG_NAME[$FOLLOW_PID]"
check_eq follow_sigterm_exit0 0 "$frc" "($(tail -n 2 "$FOLLOW_LOG" | tr '\n' '|'))"
a=$(content_hash "$db"); b=$(content_hash "$rep")
if [ -n "$a" ] && [ "$a" = "$b" ]; then pass replica_equals_source
else fail replica_equals_source "source $a, replica $b"; fi
check_eq replica_integrity ok "$(integrity "$rep")"

# Someone else writes the replica while the follower runs: it notices
# (PRAGMA data_version), re-proves its position, and stops (exit 3); a new
# start refuses too.
start_follow
wait_for_log "resuming replica" "$FOLLOW_LOG" 15 || fail resume_before_foreign_write "$(tail -n 2 "$FOLLOW_LOG" | tr '\n' '|')"
sqlite3 "$rep" "UPDATE acct SET bal = bal WHERE id = 0; INSERT INTO log(at) VALUES (-1)"
for ((i = 0; i < 150; i++)); do kill -0 "$FOLLOW_PID" 2>/dev/null || break; sleep 0.1; done
kill -9 "$FOLLOW_PID" 2>/dev/null
wait "$FOLLOW_PID"; frc=$?; unset "_BG_NAME[$FOLLOW_PID]"
check_eq foreign_write_while_running_exit3 3 "$frc" "($(tail -n 2 "$FOLLOW_LOG" | tr '\n' '|'))"
grep -q "changed outside walship" "$FOLLOW_LOG" && pass foreign_write_noticed ||
  fail foreign_write_noticed "$(tail -n 2 "$FOLLOW_LOG" | tr '\n' '|')"
WS_CMD_TIMEOUT=20 check_rc foreign_write_refused 3 "$WALSHIP" restore --follow "$store" -o "$rep"
grep -q "holds neither txid" "$LAST_OUT" && pass foreign_write_message ||
  fail foreign_write_message "$(last_out 2)"

# A file that is not a follow replica is refused without --force (exit 4).
cp "$db" "$WORK/plain.db"
WS_CMD_TIMEOUT=20 check_rc plain_file_refused 4 "$WALSHIP" restore --follow "$store" -o "$WORK/plain.db"

finish
