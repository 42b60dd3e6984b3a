#!/usr/bin/env bash
# Proves: with the application's autocheckpoint disabled and a writer that
# keeps writing, the sidecar keeps the -wal file bounded while ~30 MB are
# written: (a) with --wal-max 16MiB (and the default --checkpoint-frames
# 1000), under 24 MiB; (b) with --wal-max 8MiB, under 20 MiB (the file runs past
# the limit by what is written while a barrier waits for the write lock).  PASSIVE checkpoints
# alone cannot promise this (docs/DESIGN.md); the write barrier does.  Both
# stores restore to exactly the source.
# A control run without the sidecar shows the same workload grows the WAL
# past the limit, so the bound is the sidecar's doing.  Sizes only, no timing.
. "$(dirname "$0")/lib.sh"

LIMIT=$((24 * 1024 * 1024))   # the control run must exceed the larger bound
WOPTS=(--workload blob --txns 2000 --rate 400 --autocheckpoint 0 --seed 51)

# Control: no sidecar.
make_db "$WORK/control.db"
start_size_sampler "$WORK/control.db-wal"
run_writer control --db "$WORK/control.db" "${WOPTS[@]}"
cmax=$(stop_size_sampler)
echo "control: largest -wal $cmax bytes"
if [ "$cmax" -gt "$LIMIT" ]; then pass control_wal_grows_without_sidecar
else fail control_wal_grows_without_sidecar "max WAL $cmax bytes <= $LIMIT: the workload does not test the bound"; fi

bounded() { # CASE LIMIT [replicate options...]
  local case=$1 LIMIT=$2; shift 2
  local db=$WORK/$case.db store=$WORK/$case.store wmax bytes
  mkdir -p "$store"
  make_db "$db" || return
  start_sidecar "$db" "$store" "$@" || return
  start_size_sampler "$db-wal"
  run_writer "$case" --db "$db" "${WOPTS[@]}"
  wmax=$(stop_size_sampler)
  if [ "$wmax" -gt 0 ] && [ "$wmax" -lt "$LIMIT" ]; then pass "${case}_wal_stays_bounded"
  else fail "${case}_wal_stays_bounded" "largest -wal seen: $wmax bytes (limit $LIMIT)"; fi
  bytes=$(sqlite3 -readonly "$db" 'SELECT page_count * page_size FROM pragma_page_count, pragma_page_size')
  if [ "${bytes:-0}" -gt $((25 * 1024 * 1024)) ]; then pass "${case}_wrote_about_30mb"
  else fail "${case}_wrote_about_30mb" "database is only ${bytes:-?} bytes"; fi
  stop_sidecar "${case}_sigterm_exit0"
  check_restore "$case" "$store" "$db"
}

bounded wal16 $((24 * 1024 * 1024)) --wal-max 16MiB
bounded wal_max $((20 * 1024 * 1024)) --wal-max 8MiB

finish
