#!/usr/bin/env bash
# Proves: databases with page sizes 512, 1024, 4096 and 65536 round-trip
# exactly, with blobs spanning overflow pages and VACUUMs that rewrite (and
# shrink) the whole file; the restored page size is the source's.
. "$(dirname "$0")/lib.sh"

for ps in 512 1024 4096 65536; do
  db=$WORK/p$ps.db store=$WORK/p$ps.store
  txns=400; [ "$ps" = 65536 ] && txns=150    # 64 KiB pages: blobs up to 192 KiB
  mkdir -p "$store"
  make_db "$db" "$ps" || continue
  start_sidecar "$db" "$store" --sync-interval 0 || continue
  run_writer "mixed$ps" --db "$db" --workload mixed --txns "$txns" --rate 200 \
    --vacuum-every 40 --seed "$ps"
  run_writer "vacuum$ps" --db "$db" --workload vacuum --txns 100 --vacuum-every 25 --seed 7
  stop_sidecar "p${ps}_sigterm_exit0"
  check_eq "p${ps}_source_page_size" "$ps" "$(sqlite3 -readonly "$db" 'PRAGMA page_size')"
  check_restore "p$ps" "$store" "$db" || continue
  check_eq "p${ps}_restored_page_size" "$ps" "$(sqlite3 -readonly "$RESTORED" 'PRAGMA page_size')"
done

finish
