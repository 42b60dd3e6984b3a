#!/usr/bin/env bash
# bench/plots.sh OUT: PNG plots of bench/run.sh's data in OUT (gnuplot):
#   OUT/lag-cdf.png       CDF of commit -> durable lag, all commits of all runs
#                         (from OUT/lag-*.txt: run k commit_s lag_ms commit_ms)
#   OUT/restore-size.png  restore time vs database size (OUT/restore-size.txt:
#                         MB dd_s walship_skip_s walship_default_s)
set -euo pipefail
out=$1
command -v gnuplot >/dev/null || { echo "gnuplot not installed (bash bench/deps.sh installs it): no plots"; exit 0; }
for n in 100tps-sync1s 100tps-sync0 1000tps-sync0; do
  # sorted lags with their cumulative fraction
  awk '{print $4}' "$out/lag-$n.txt" | sort -g | awk '{v[NR]=$1} END{for (i=1;i<=NR;i++) print v[i], i/NR}' >"$out/lag-$n.cdf"
done
gnuplot <<GP
set terminal pngcairo size 900,520 font ",10" noenhanced
set output "$out/lag-cdf.png"
set title "walship: commit -> durable in a local file store (CDF over all commits of all runs)"
set logscale x
set xlabel "lag, ms (log scale)"
set ylabel "fraction of commits"
set key top left
set grid
plot "$out/lag-100tps-sync0.cdf" using 1:2 with lines lw 2 title "100 tx/s, --sync-interval 0", \
     "$out/lag-1000tps-sync0.cdf" using 1:2 with lines lw 2 title "1000 tx/s, --sync-interval 0", \
     "$out/lag-100tps-sync1s.cdf" using 1:2 with lines lw 2 title "100 tx/s, --sync-interval 1s (default)"
set output "$out/restore-size.png"
set title "restore time vs database size (one snapshot, warm page cache; medians)"
set logscale xy
set xrange [5:2000]
set xlabel "database size, MB (log scale)"
set ylabel "seconds (log scale)"
set key top left
plot "$out/restore-size.txt" using 1:2 with linespoints lw 2 title "dd conv=fsync (raw bound: read + write + fsync)", \
     "$out/restore-size.txt" using 1:3 with linespoints lw 2 title "walship restore --skip-integrity-check", \
     "$out/restore-size.txt" using 1:4 with linespoints lw 2 title "walship restore (default: with integrity_check)"
GP
echo "wrote $out/lag-cdf.png $out/restore-size.png"
