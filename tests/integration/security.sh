#!/usr/bin/env bash
# Proves: client-side encryption (docs/SECURITY.md).  With a key file the
# replicate -> restore round trip gives exactly the source on a directory,
# S3 (s3rver behind the SigV4-verifying proxy) and HTTP (nginx WebDAV), and
# `ls` shows a contiguous history; a known plaintext string is in the
# store's files without encryption (the control, compress level 0) and in
# none of them with it, on every store; the key never shows in `ps`; the key
# from $WALSHIP_ENCRYPTION_KEY works the same.  Key rotation mid-history
# restores with both keys, and with only the new key fails naming the old
# key id.  Compaction writes encrypted merged objects that restore exactly.
# Missing key, wrong key, a flipped ciphertext byte, two objects' bytes
# swapped, a truncated object: each is refused with exit 3, a message naming
# the object (and key id), and no output file.
. "$(dirname "$0")/lib.sh"
. "$WS_ROOT/tests/servers/servers.sh"

MARK=walship-plaintext-marker-7f3a9c
KEY1=$WORK/key1 KEY2=$WORK/key2 RING=$WORK/ring
( umask 077
  echo "k1 $(openssl rand -hex 32)" >"$KEY1"
  echo "k2 $(openssl rand -base64 32)" >"$KEY2"
  { echo "# current key first"; cat "$KEY2" "$KEY1"; } >"$RING" )

start_s3
start_nginx
S3_OPTS=(--endpoint "$WS_S3_ENDPOINT")
WOPTS=(--workload mixed --conns 2 --txns 1500 --rate 1000 --seed 31)

# put_marker DB: a row holding the marker, as the application would.
put_marker() {
  sqlite3 -cmd ".timeout 10000" "$1" "CREATE TABLE IF NOT EXISTS secret(t); INSERT INTO secret VALUES ('$MARK $MARK $MARK');" >/dev/null
}

# marker_in DIR: number of files under DIR holding the marker bytes.
marker_in() { grep -rlF -- "$MARK" "$1" 2>/dev/null | wc -l; }

# roundtrip CASE STORE SERVER-DIR [store options...]
roundtrip() {
  local case=$1 store=$2 sdir=$3; shift 3
  local db=$WORK/$case.db
  make_db "$db" || return
  start_sidecar "$db" "$store" --compress-level 0 --encryption-key-file "$KEY1" "$@" || return
  put_marker "$db"
  run_writer "$case" --db "$db" "${WOPTS[@]}"
  put_marker "$db"
  if ps -o args= -p "$SIDECAR_PID" | grep -qF -- "$(cut -d' ' -f2 "$KEY1")"; then
    fail "${case}_key_not_in_ps" "the key shows in ps"
  else pass "${case}_key_not_in_ps"; fi
  stop_sidecar "${case}_sigterm_exit0"
  check_eq "${case}_marker_rows_in_source" 2 "$(sqlite3 "$db" 'SELECT count(*) FROM secret')"
  check_restore "$case" "$store" "$db" --encryption-key-file "$KEY1" "$@"
  check_remote_history "${case}_ls_contiguous" "$store" --encryption-key-file "$KEY1" "$@"
  check_eq "${case}_no_plaintext_in_store" 0 "$(marker_in "$sdir")"
}

mkdir -p "$WORK/fs"
roundtrip file "$WORK/fs" "$WORK/fs"
roundtrip s3 "s3://$WS_S3_BUCKET/enc" "$SRV_DIR/s3" "${S3_OPTS[@]}"
roundtrip http "$WS_HTTP_URL/enc" "$NGINX_DATA/enc"

# The control: the same kind of database unencrypted does show the marker,
# so the checks above could fail.
make_db "$WORK/plain.db" && put_marker "$WORK/plain.db"
run_cmd "$WALSHIP" replicate --once --compress-level 0 "$WORK/plain.db" "$WORK/plainstore"
if [ "$(marker_in "$WORK/plainstore")" -gt 0 ]; then pass control_plaintext_visible_unencrypted
else fail control_plaintext_visible_unencrypted "marker not found in an unencrypted store: the check proves nothing"; fi

# The key from the environment, same format as the file.
make_db "$WORK/env.db" && run_writer env --db "$WORK/env.db" --txns 200 --seed 32
WALSHIP_ENCRYPTION_KEY=$(cat "$KEY2") run_cmd "$WALSHIP" replicate --once "$WORK/env.db" "$WORK/envstore"
check_eq env_key_replicate_exit0 0 "$LAST_RC" "$(last_out)"
WALSHIP_ENCRYPTION_KEY=$(cat "$KEY2") check_restore env "$WORK/envstore" "$WORK/env.db"
run_cmd "$WALSHIP" restore --encryption-key-file "$KEY2" "$WORK/envstore" -o "$WORK/env2.db"
check_eq env_store_readable_with_the_same_key_in_a_file 0 "$LAST_RC" "$(last_out)"

# ---- key rotation mid-history: k1, then the ring with k2 first.
db=$WORK/rot.db
make_db "$db"
start_sidecar "$db" "$WORK/rot" --encryption-key-file "$KEY1" &&
  run_writer rot1 --db "$db" --txns 300 --seed 33 && stop_sidecar rot_k1_sigterm_exit0
start_sidecar "$db" "$WORK/rot" --encryption-key-file "$RING" &&
  run_writer rot2 --db "$db" --txns 300 --seed 34 && stop_sidecar rot_k2_sigterm_exit0
check_restore rot "$WORK/rot" "$db" --encryption-key-file "$RING"
first=$(find "$WORK/rot/snap" -type f | sort | head -n 1)
check_eq rot_old_objects_carry_k1 k1 "$(dd if="$first" bs=1 skip=24 count=2 2>/dev/null)"
last=$(find "$WORK/rot/seg" -type f | sort | tail -n 1)
check_eq rot_new_objects_carry_k2 k2 "$(dd if="$last" bs=1 skip=24 count=2 2>/dev/null)"

# refused: exit code, message pattern, no output file.  refused NAME RC ERE STORE [restore opts]
refused() {
  local name=$1 rc=$2 re=$3 store=$4; shift 4
  rm -f "$WORK/out.db"
  run_cmd "$WALSHIP" restore "$@" "$store" -o "$WORK/out.db"
  if [ "$LAST_RC" != "$rc" ]; then fail "$name" "exit $LAST_RC, want $rc: $(last_out)"
  elif ! grep -qE -- "$re" "$LAST_OUT"; then fail "$name" "message does not match /$re/: $(last_out)"
  elif [ -e "$WORK/out.db" ]; then fail "$name" "an output file was left"
  else pass "$name"; fi
}
refused rot_only_new_key_names_old_key_id 3 "encrypted with key id 'k1'.*\('k2'\)" \
  "$WORK/rot" --encryption-key-file "$KEY2"
refused missing_key_names_key_id 3 "snap/0+1\.snap is encrypted \(key id 'k1'\), but no encryption key is configured" "$WORK/rot"
wrong=$WORK/wrong; (umask 077; echo "k1 $(openssl rand -hex 32)" >"$wrong")
refused wrong_key_named 3 "snap/[0-9a-f]+\.snap: chunk 0 fails authentication with key id 'k1'" \
  "$WORK/fs" --encryption-key-file "$wrong"

# ---- compaction through the encrypting store: merged objects are encrypted
# too and the latest state still restores exactly (done on a copy, so the
# tampering below works on plain segments).
cp -a "$WORK/fs" "$WORK/fsc"
run_cmd "$WALSHIP" compact --now +48h --encryption-key-file "$KEY1" "$WORK/fsc"
check_eq compact_encrypted_exit0 0 "$LAST_RC" "$(last_out)"
merged=$(find "$WORK/fsc/seg" -name '*.L*.seg' | head -n 1)
if [ -n "$merged" ] && [ "$(head -c 4 "$merged")" = WSE1 ]; then pass compact_merged_object_encrypted
else fail compact_merged_object_encrypted "merged object '${merged:-none}' is missing or not encrypted"; fi
check_restore compacted "$WORK/fsc" "$WORK/file.db" --encryption-key-file "$KEY1"

# ---- tampering, each on a fresh copy of the file store.
tamper() { rm -rf "$WORK/t"; cp -a "$WORK/fs" "$WORK/t"; }
segs=($(cd "$WORK/fs" && find seg -type f -size +2k | sort))
a=${segs[1]} b=${segs[2]}
tamper; sz=$(stat -c %s "$WORK/t/$a")
printf '\x55' | dd of="$WORK/t/$a" bs=1 seek=$((sz / 2)) conv=notrunc 2>/dev/null
cmp -s "$WORK/fs/$a" "$WORK/t/$a" && fail flip_setup "the byte flip changed nothing"
refused flipped_byte_named 3 "object $a: chunk [0-9]+ fails authentication" "$WORK/t" \
  --encryption-key-file "$KEY1"
tamper; cp "$WORK/fs/$b" "$WORK/t/$a"; cp "$WORK/fs/$a" "$WORK/t/$b"
refused swapped_objects_named 3 "object ($a|$b): chunk 0 fails authentication" "$WORK/t" \
  --encryption-key-file "$KEY1"
tamper; truncate -s $(($(stat -c %s "$WORK/t/$a") - 100)) "$WORK/t/$a"
refused truncated_object_named 3 "object $a.*(truncated|fails authentication)" "$WORK/t" \
  --encryption-key-file "$KEY1"
tamper; truncate -s 40 "$WORK/t/$a"
refused truncated_to_header_named 3 "object $a (is truncated|)" "$WORK/t" --encryption-key-file "$KEY1"

finish
