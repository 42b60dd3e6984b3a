#!/usr/bin/env bash
# Fetch the SQLite amalgamation walship is built against into DIR (default
# build/sqlite): sqlite3.c and sqlite3.h, never committed.
#
# Why not Debian's libsqlite3: 3.40 there is built without the sqlite_dbpage
# virtual table, which follow replicas need to write raw pages inside
# ordinary SQLite transactions (docs/DESIGN.md, "Follow replicas").  The npm
# package better-sqlite3 carries the amalgamation; we take it from the npm
# registry with npm's own client, pinned to one version and one tarball hash.
# (v13 needs Node 22; the 12.x line installs on Debian 12's Node.)
set -euo pipefail
VERSION=12.11.1                 # better-sqlite3; carries SQLite 3.53.2
TGZ_SHA256=ebf0ed75a7a59dbcb3b24bbd014ef49d9f15bc328e4adcbf516f2a8fadfa2835
dir=${1:-build/sqlite}

if [ -f "$dir/sqlite3.c" ] && [ -f "$dir/sqlite3.h" ] && [ "$(cat "$dir/.version" 2>/dev/null)" = "$VERSION" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-sqlite: npm is missing (make deps installs it)" >&2; exit 1; }
mkdir -p "$dir"
work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "  FETCH   better-sqlite3@$VERSION (SQLite amalgamation) -> $dir" >&2
(cd "$work" && npm pack --silent "better-sqlite3@$VERSION" >/dev/null)
tgz="$work/better-sqlite3-$VERSION.tgz"
[ -f "$tgz" ] || { echo "fetch-sqlite: npm pack produced no $tgz" >&2; exit 1; }
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$TGZ_SHA256" ]; then
  echo "fetch-sqlite: better-sqlite3-$VERSION.tgz has sha256 $got, expected $TGZ_SHA256; refusing it" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$work" package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
# Each file lands by rename, the version stamp last: an interrupted fetch
# is redone, never half used.
mv "$work/package/deps/sqlite3/sqlite3.h" "$dir/sqlite3.h"
mv "$work/package/deps/sqlite3/sqlite3.c" "$dir/sqlite3.c"
echo "$VERSION" >"$work/version" && mv "$work/version" "$dir/.version"
