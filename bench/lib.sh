# bench/lib.sh — helpers shared by bench/run.sh, bench/ab.sh and
# bench/workloads.sh (sourced, not run).
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b-a}'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END{if(NR==0){print "NA"; exit}
  printf "%.3f", NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
minof() { tr ' ' '\n' | grep . | sort -g | head -1; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -1; }
pctl() { sort -g | awk 'function q(f,  i) { i = int(NR * f) + 1; if (i > NR) i = NR; return v[i] }
  {v[NR]=$1} END{if(NR==0){print "n=0"; exit}
  printf "n=%d p50=%.2f p90=%.2f p99=%.2f p99.9=%.2f max=%.2f", NR, q(0.5), q(0.9), q(0.99), q(0.999), v[NR]}'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN{if (b==0 || a=="NA" || b=="NA") print "NA"; else printf "%.3f", a/b}'; }
kv() { grep -o "$1=[^ ]*" | head -1 | cut -d= -f2; } # kv KEY <<< "line with KEY=val"
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
objbytes() { find "$1" -type f \( -name '*.seg' -o -name '*.snap' \) -printf '%s\n' | awk '{s+=$1} END{print s+0}'; }
nobj() { find "$1" -type f \( -name '*.seg' -o -name '*.snap' \) | wc -l; }
seg_pages() { # page records in all segments of store $1 (header npages, offset 40, u64 BE)
  local f t=0
  for f in "$1"/seg/*.seg; do
    [ -e "$f" ] || continue
    t=$((t + 16#$(od -An -tx1 -j40 -N8 "$f" | tr -d ' \n')))
  done
  echo $t
}
last_txid() { # highest TXID durable in store $1, from the object names
  local n
  n=$(ls "$1/seg" 2>/dev/null | grep -E '^[0-9a-f]{16}-[0-9a-f]{16}\.seg$' | sort | tail -1 || true)
  if [ -n "$n" ]; then echo $((16#${n:17:16})); else echo 1; fi
}
wait_log() { # wait_log FILE PATTERN SECONDS
  local i=0
  until grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -le $(($3 * 50)) ] || { echo "bench: timeout waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1; }
    sleep 0.02
  done
}
# timed VAR CMD...: run CMD, append its wall seconds to the list in VAR
timed() { local v=$1 s; shift; s=$(now); "$@"; printf -v "$v" '%s %s' "${!v}" "$(since "$s")"; }
hdr() { printf '\n=== %s ===\n' "$*"; }
# bench_scratch NAME: a scratch directory $T removed at exit (with every
# child process), and bench/wsmon built into it as $T/wsmon.
bench_scratch() {
  T=$(mktemp -d "${BENCH_TMP:-/tmp}/walship-$1.XXXXXX")
  trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$T"' EXIT
  cc -O2 -o "$T/wsmon" bench/wsmon.c
}
