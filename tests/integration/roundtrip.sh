#!/usr/bin/env bash
# Proves: what the sidecar ships while a 2-connection mixed writer runs
# restores to exactly the source database, with --sync-interval 0 and with the
# default 1 s batching; the sidecar leaves the application's data untouched
# (same content as an identical writer run without it); SIGTERM exits 0; an
# empty store restores to nothing with --if-replica-exists.
. "$(dirname "$0")/lib.sh"

WOPTS=(--workload mixed --conns 2 --txns 3000 --rate 1000 --seed 11)

# Reference: the same deterministic writer run without any sidecar.
make_db "$WORK/ref.db" && run_writer ref --db "$WORK/ref.db" "${WOPTS[@]}"
REF_HASH=$(content_hash "$WORK/ref.db")

roundtrip() { # CASE STORE-ARG [replicate options...]
  local case=$1 store=$2; shift 2
  local db=$WORK/$case.db
  make_db "$db" || return
  start_sidecar "$db" "$store" "$@" || return
  run_writer "$case" --db "$db" "${WOPTS[@]}"
  check_eq "${case}_writer_committed" 3000 "$WRITER_COMMITS"
  stop_sidecar "${case}_sigterm_exit0"
  check_eq "${case}_source_untouched_by_sidecar" "$REF_HASH" "$(content_hash "$db")"
  check_restore "$case" "$store" "$db"
  check_contiguous "${case}_store_contiguous" "${store#file://}"
}

mkdir -p "$WORK/store0" "$WORK/store1"
roundtrip sync0 "$WORK/store0" --sync-interval 0
roundtrip sync1s "file://$WORK/store1"

# Empty store: nothing to restore is not an error with --if-replica-exists.
mkdir -p "$WORK/empty" "$WORK/emptyout"
check_rc empty_if_replica_exists_exit0 0 \
  "$WALSHIP" restore --if-replica-exists "$WORK/empty" -o "$WORK/emptyout/x.db"
check_eq empty_if_replica_exists_creates_nothing "" "$(ls -A "$WORK/emptyout")"
run_cmd "$WALSHIP" restore "$WORK/empty" -o "$WORK/emptyout/x.db"
if [ "$LAST_RC" != 0 ]; then pass empty_without_flag_fails
else fail empty_without_flag_fails "restore of an empty store exited 0"; fi
check_eq empty_without_flag_creates_nothing "" "$(ls -A "$WORK/emptyout")"

finish
