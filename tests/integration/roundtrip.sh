#!/usr/bin/env bash
# Proves: what the sidecar ships while a 2-connection mixed writer runs
# restores to exactly the source database, with --sync-interval 0 and with the
# default 1 s batching; the sidecar leaves the application's data untouched
# (same content as an identical writer run without it); SIGTERM exits 0; an
# empty store restores to nothing with --if-replica-exists.  An inserting
# writer's new pages (the database growing) ship as deltas onto zeros, and
# restore rebuilds them, also after compaction.
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

# Growth: every new leaf of an inserting writer is a page past the state's
# end, zeros in the state model; shipped whole it was ~3 % of the records
# and half the bytes to deflate at 1000 tx/s.  Count the segments' records
# (bench/segstat.py reads the format directly), then restore the latest
# state from the store and from a compacted copy.
growth() {
  local db=$WORK/grow.db store=$WORK/grow.store out p d
  mkdir -p "$store"
  make_db "$db" || return
  start_sidecar "$db" "$store" --sync-interval 200ms || return
  run_writer grow --db "$db" --workload insert --txns 3000 --rate 1000 --seed 12
  stop_sidecar grow_sigterm_exit0
  out=$(python3 "$WS_ROOT/bench/segstat.py" "$store")
  p=$(sed -n 's/^P=\([0-9]*\) .*/\1/p' <<<"$out"); d=$(sed -n 's/.* D=\([0-9]*\) .*/\1/p' <<<"$out")
  echo "growth: $out"
  if [ -n "$p" ] && [ -n "$d" ] && [ "$d" -ge 3000 ] && [ $((p * 100)) -le "$d" ]; then
    pass growth_pages_ship_as_deltas
  else fail growth_pages_ship_as_deltas "segment records: ${out:-none} (whole pages should be under 1 %)"; fi
  check_restore grow "$store" "$db"
  cp -r "$store" "$WORK/grow.compacted"
  run_cmd "$WALSHIP" compact --now +72h --log-level warn "$WORK/grow.compacted"
  check_eq grow_compact_exit0 0 "$LAST_RC"
  # (the merged objects carry the zero-based deltas on: the case needs some)
  local merged
  merged=$("$WALSHIP" ls "$WORK/grow.compacted" 2>/dev/null | awk 'NR > 1 && $1 == "merged"' | wc -l)
  if [ "$merged" -ge 1 ]; then pass grow_compacted_has_merged_objects
  else fail grow_compacted_has_merged_objects "ls shows $merged merged objects"; fi
  check_restore grow_compacted "$WORK/grow.compacted" "$db"
}
growth

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
