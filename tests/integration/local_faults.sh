#!/usr/bin/env bash
# Proves: local faults end in a one-line error naming the thing and the
# cause (a non-zero exit where they are fatal) and never in a wrong
# database, and the sidecar resumes without a gap once the fault is gone:
#   - the restore target's file system full (ENOSPC): restore fails, OUT and
#     its temp file are gone; the file store's file system full: the
#     sidecar reports it, keeps the database pinned without spinning while
#     it backs off, and catches up when space returns;
#   - a read-only store directory: replicate says so; ls and restore work;
#   - the store directory removed while the sidecar runs;
#   - the database deleted, or replaced by another database, while the
#     sidecar runs; the application switching it out of WAL mode;
#   - a WAL with big-endian checksums (magic 0x377f0683, crafted by
#     tests/fuzz/wal_be.py: SQLite on x86 never writes one);
#   - the page sizes pagesizes.sh leaves out (2048, 8192, 16384, 32768).
# Full disks and read-only stores need a small file system: a tmpfs mount
# (root in a container with CAP_SYS_ADMIN, as here and on a plain Debian
# CI VM).  Where mounting is refused the script falls back to `ulimit -f`
# with SIGXFSZ ignored, so write() fails with EFBIG instead of ENOSPC (same
# error path), and skips the read-only case (root ignores permission bits).
. "$(dirname "$0")/lib.sh"
PYDIR=$WS_ROOT/tests/fuzz

# cpu_ms PID: on-CPU milliseconds of all the process's threads so far
cpu_ms() { awk '{s += $1} END {printf "%d", s / 1e6}' /proc/"$1"/task/*/schedstat 2>/dev/null || echo 0; }

MNT=()
cleanup_mounts() { local m; for m in "${MNT[@]}"; do umount -l "$m" 2>/dev/null; done; }
trap 'cleanup_mounts; _cleanup' EXIT
# small_fs DIR SIZE: a tmpfs of SIZE at DIR; non-zero if mounting is refused.
small_fs() {
  mkdir -p "$1"
  [ "$(id -u)" = 0 ] && mount -t tmpfs -o "size=$2" tmpfs "$1" 2>/dev/null || return 1
  MNT+=("$1")
}
# one_line NAME FILE PATTERN: FILE's error line matches the ERE PATTERN.
one_line() {
  if grep -qE -- "$3" "$2"; then pass "$1"
  else fail "$1" "no line matching /$3/: $(tail -n 3 "$2" | tr '\n' '|')"; fi
}

DB=$WORK/app.db STORE=$WORK/store
make_db "$DB"
run_writer seed --db "$DB" --workload blob --txns 300 --seed 3   # a few MiB
start_sidecar "$DB" "$STORE" --sync-interval 0 && stop_sidecar base_sigterm_exit0
SRC_HASH=$(content_hash "$DB")

# ---------------------------------------------------- restore target full
if small_fs "$WORK/full" 512k; then
  check_rc restore_enospc_exit 1 "$WALSHIP" restore "$STORE" -o "$WORK/full/out.db"
  [ "$LAST_RC" = 0 ] || one_line restore_enospc_message "$LAST_OUT" "full/\.?out\.db[^ ]*: No space left on device"
  check_eq restore_enospc_leaves_nothing "" "$(ls -A "$WORK/full")"
else
  echo "note: cannot mount a tmpfs here; restore target full via ulimit -f (EFBIG)"
  mkdir -p "$WORK/full"
  run_cmd bash -c 'trap "" XFSZ; ulimit -f 512; exec "$@"' _ "$WALSHIP" restore "$STORE" -o "$WORK/full/out.db"
  [ "$LAST_RC" != 0 ] && pass restore_efbig_exit || fail restore_efbig_exit "exit 0"
  one_line restore_efbig_message "$LAST_OUT" "full/\.?out\.db[^ ]*: File too large"
  check_eq restore_efbig_leaves_nothing "" "$(ls -A "$WORK/full")"
fi

# ------------------------------------------------------- file store full
if small_fs "$WORK/sfull" 3m; then
  db=$WORK/sf.db
  make_db "$db"
  start_sidecar "$db" "$WORK/sfull/store" --sync-interval 0 --checkpoint-frames 50
  run_writer sf_fill --db "$db" --workload blob --txns 400 --seed 5
  if wait_for_log "No space left on device" "$SIDECAR_LOG" 30; then
    pass store_enospc_reported
    one_line store_enospc_names_path "$SIDECAR_LOG" "sfull/store/[^ ]*: No space left on device"
    kill -0 "$SIDECAR_PID" 2>/dev/null && pass store_enospc_sidecar_alive || fail store_enospc_sidecar_alive "sidecar exited: $(tail -n 2 "$SIDECAR_LOG" | tr '\n' '|')"
    # Backing off must not spin: the sync interval's clamp once made every
    # wait 0 until the retry was due (2989 ms of CPU in these 3 s).
    c0=$(cpu_ms "$SIDECAR_PID"); sleep 3; c1=$(cpu_ms "$SIDECAR_PID")
    if [ $((c1 - c0)) -lt 300 ]; then pass store_enospc_backoff_idle
    else fail store_enospc_backoff_idle "the sidecar used $((c1 - c0)) ms of CPU in 3 s of backing off"; fi
    mount -o remount,size=256m "$WORK/sfull"
    run_writer sf_more --db "$db" --workload mixed --txns 50 --seed 6
    sleep 3
  else
    fail store_enospc_reported "no ENOSPC in the sidecar log: $(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"
  fi
  [ -n "$SIDECAR_PID" ] && stop_sidecar store_enospc_recovered_exit0
  check_contiguous store_enospc_contiguous "$WORK/sfull/store"
  check_restore store_enospc "$WORK/sfull/store" "$db"
else
  echo "note: cannot mount a tmpfs here; the store-full case is skipped"
fi

# ----------------------------------------------------- read-only store
if small_fs "$WORK/ro" 64m; then
  cp -a "$STORE" "$WORK/ro/store"
  mount -o remount,ro "$WORK/ro"
  run_writer ro_more --db "$DB" --txns 20 --seed 9
  _SEQ=$((_SEQ + 1)); log=$WORK/sidecar.ro.log
  run_cmd "$WALSHIP" replicate --once "$DB" "$WORK/ro/store"
  [ "$LAST_RC" != 0 ] && pass ro_store_replicate_fails || fail ro_store_replicate_fails "exit 0: $(last_out)"
  one_line ro_store_message "$LAST_OUT" "ro/store.*: Read-only file system"
  check_rc ro_store_ls 0 "$WALSHIP" ls "$WORK/ro/store"
  rm -f "$WORK/ro.db"
  check_rc ro_store_restore 0 "$WALSHIP" restore "$WORK/ro/store" -o "$WORK/ro.db"
  check_eq ro_store_restore_content "$SRC_HASH" "$(content_hash "$WORK/ro.db")"
else
  echo "note: cannot mount a tmpfs here; the read-only store case is skipped (root ignores modes)"
fi

# ------------------------------------- store directory removed while running
# Regression: the sidecar recreated the directory and went on shipping
# segments (reported durable) into a store without a snapshot: nothing in
# it could be restored.  Now each put checks the root is the same
# directory; the failure is loud, and a restart begins a new history.
db=$WORK/sr.db store=$WORK/sr.store
make_db "$db"
run_writer sr_seed --db "$db" --txns 50 --seed 16
start_sidecar "$db" "$store" --sync-interval 0
sleep 1
rm -rf "$store"
run_writer sr_more --db "$db" --txns 30 --seed 17
if wait_for_log "store root .*sr\.store was removed or replaced while in use" "$SIDECAR_LOG" 20; then
  pass store_removed_reported
else fail store_removed_reported "$(tail -n 3 "$SIDECAR_LOG" | tr '\n' '|')"; fi
kill -TERM "$SIDECAR_PID"; wait "$SIDECAR_PID"; SIDECAR_RC=$?; SIDECAR_PID=""
[ "$SIDECAR_RC" != 0 ] && pass store_removed_final_sync_fails || fail store_removed_final_sync_fails "exit 0 although nothing reached the store"
check_eq store_removed_nothing_claimed "" "$(ls "$store"/seg 2>/dev/null)"
start_sidecar "$db" "$store" --sync-interval 0 && stop_sidecar store_removed_restart_exit0
check_restore store_removed_restart "$store" "$db"

# ------------------------------------------ database deleted while running
db=$WORK/del.db store=$WORK/del.store
make_db "$db"
run_writer del_seed --db "$db" --txns 100 --seed 11
start_sidecar "$db" "$store" --sync-interval 0
sleep 1
h_before=$(content_hash "$db")
rm -f "$db" "$db-wal" "$db-shm"
sleep 2
if kill -0 "$SIDECAR_PID" 2>/dev/null; then
  one_line deleted_db_reported "$SIDECAR_LOG" "del\.db[^ ]*: .*(No such file|deleted|replaced|vanished|gone)"
  kill -TERM "$SIDECAR_PID"; wait "$SIDECAR_PID"; SIDECAR_RC=$?; SIDECAR_PID=""
else
  wait "$SIDECAR_PID"; SIDECAR_RC=$?; SIDECAR_PID=""
  [ "$SIDECAR_RC" != 0 ] && pass deleted_db_fatal_exit || fail deleted_db_fatal_exit "exit 0"
  one_line deleted_db_reported "$SIDECAR_LOG" "del\.db[^ ]*: .*(No such file|deleted|replaced|vanished|gone)"
fi
rm -f "$WORK/del.r.db"
check_rc deleted_db_restore 0 "$WALSHIP" restore "$store" -o "$WORK/del.r.db"
check_eq deleted_db_restore_is_last_state "$h_before" "$(content_hash "$WORK/del.r.db")"

# ----------------------------------------- database replaced while running
db=$WORK/rep.db store=$WORK/rep.store other=$WORK/other.db
make_db "$db"; make_db "$other"
run_writer rep_seed --db "$db" --txns 100 --seed 12
run_writer other_seed --db "$other" --txns 150 --seed 13
start_sidecar "$db" "$store" --sync-interval 0
sleep 1
h_old=$(content_hash "$db") h_new=$(content_hash "$other")
mv "$other" "$db"; rm -f "$db-wal" "$db-shm"
run_writer rep_after --db "$db" --txns 10 --seed 14
h_new=$(content_hash "$db")
sleep 2
if [ -n "$SIDECAR_PID" ] && kill -0 "$SIDECAR_PID" 2>/dev/null; then
  kill -TERM "$SIDECAR_PID"; wait "$SIDECAR_PID"; SIDECAR_RC=$?
else wait "$SIDECAR_PID"; SIDECAR_RC=$?; fi
SIDECAR_PID=""
echo "replaced db: sidecar exit $SIDECAR_RC; $(grep -iE 'replac|changed|inode|new history|snapshot' "$SIDECAR_LOG" | tail -n 2 | tr '\n' '|')"
rm -f "$WORK/rep.r.db"
run_cmd "$WALSHIP" restore "$store" -o "$WORK/rep.r.db"
h_r=$(content_hash "$WORK/rep.r.db")
if [ "$LAST_RC" != 0 ]; then fail replaced_db_restore "exit $LAST_RC: $(last_out)"
elif [ "$h_r" = "$h_new" ] || [ "$h_r" = "$h_old" ]; then pass replaced_db_restore_old_or_new
else fail replaced_db_restore_old_or_new "restored [$(db_summary "$WORK/rep.r.db")] is neither the old nor the new database"; fi
[ "$h_r" = "$h_new" ] && pass replaced_db_followed || fail replaced_db_followed "the store still ends at the replaced database's state (sidecar exit $SIDECAR_RC)"

# ------------------------------------------------- app leaves WAL mode
# While the sidecar runs, SQLite refuses the switch (leaving WAL mode needs
# the only connection; the sidecar's pin is one): the app keeps WAL mode and
# nothing is lost.  Switched while the sidecar was down, the database is
# refused at start with one line and exit 3 (never replicated half-way).
db=$WORK/jm.db store=$WORK/jm.store
make_db "$db"
run_writer jm_seed --db "$db" --txns 50 --seed 15
start_sidecar "$db" "$store" --sync-interval 0
sleep 1
jm=$(sqlite3 "$db" 'PRAGMA journal_mode=DELETE' 2>&1 | tail -n 1)
check_eq not_wal_refused_while_running wal "$(sqlite3 "$db" 'PRAGMA journal_mode' 2>&1)" "(the switch answered: $jm)"
sqlite3 "$db" "INSERT INTO kv(k, v, note) VALUES (1, 2, 'after the refused switch')"
sleep 1
stop_sidecar not_wal_running_sidecar_exit0
check_restore not_wal_running "$store" "$db"
jm=$(sqlite3 "$db" 'PRAGMA journal_mode=DELETE' 2>&1)
sqlite3 "$db" "INSERT INTO kv(k, v, note) VALUES (3, 4, 'in DELETE mode')"
check_rc not_wal_at_start_exit3 3 "$WALSHIP" replicate "$db" "$store"
one_line not_wal_at_start_message "$LAST_OUT" "jm\.db is not in WAL mode \(journal_mode=delete\)"
check_eq not_wal_store_unchanged "$(content_hash "$RESTORED")" "$(rm -f "$WORK/jm2.db"; "$WALSHIP" restore "$store" -o "$WORK/jm2.db" >/dev/null 2>&1; content_hash "$WORK/jm2.db")"

# --------------------------------------------- big-endian-checksum WAL
db=$WORK/be.db store=$WORK/be.store
python3 - "$db" <<'PY'
import shutil, sqlite3, sys
db = sys.argv[1]
c = sqlite3.connect(db, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
for i in range(50):
    c.execute("INSERT INTO t(v) VALUES (?)", ("be-%d-" % i * 30,))
shutil.copy(db + "-wal", db + ".le-wal")   # while open: the WAL is whole
c.close()
PY
# the database as the last checkpoint left it (empty), its WAL big-endian
python3 - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1] + ".base", isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.close()
PY
cp "$db.base" "$db"; rm -f "$db-wal" "$db-shm"
python3 "$PYDIR/wal_be.py" "$db.le-wal" "$db-wal"
magic=$(od -An -tx1 -N4 "$db-wal" | tr -d ' ')
check_eq be_wal_magic 377f0683 "$magic"
be_rows=$(sqlite3 -readonly "$db" 'SELECT count(*) FROM t' 2>&1)
check_eq be_wal_sqlite_reads_it 50 "$be_rows"
h_be=$(content_hash "$db")
check_rc be_wal_replicate_once 0 "$WALSHIP" replicate --once "$db" "$store"
rm -f "$WORK/be.r.db"
check_rc be_wal_restore 0 "$WALSHIP" restore "$store" -o "$WORK/be.r.db"
check_eq be_wal_restore_content "$h_be" "$(content_hash "$WORK/be.r.db")"

# ------------------------------------- the page sizes pagesizes.sh leaves out
for ps in 2048 8192 16384 32768; do
  db=$WORK/p$ps.db store=$WORK/p$ps.store
  make_db "$db" "$ps" || continue
  start_sidecar "$db" "$store" --sync-interval 0 || continue
  run_writer "p$ps" --db "$db" --workload mixed --txns 80 --rate 200 --vacuum-every 30 --seed "$ps"
  stop_sidecar "p${ps}_sigterm_exit0"
  check_restore "p$ps" "$store" "$db"
  check_eq "p${ps}_restored_page_size" "$ps" "$(sqlite3 -readonly "$RESTORED" 'PRAGMA page_size')"
done

finish
