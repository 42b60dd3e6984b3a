#!/usr/bin/env bash
# Bench-only dependencies (not needed by make all / make test): gnuplot for
# the plots in docs/benchmarks.md.  Installs it as root if missing; otherwise
# says how, and bench/run.sh then skips the plots.
set -euo pipefail
dpkg-query -W -f='${Status}' gnuplot-nox 2>/dev/null | grep -q 'install ok installed' && exit 0
command -v gnuplot >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "walship bench: gnuplot missing (sudo apt-get install gnuplot-nox); plots will be skipped" >&2
  exit 0
fi
echo "walship bench: installing gnuplot-nox" >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null
