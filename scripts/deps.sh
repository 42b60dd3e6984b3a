#!/usr/bin/env bash
# Install the Debian packages walship builds and tests with, if missing.
# Idempotent and quiet when everything is there already.
set -euo pipefail
# libcurl: HTTP/TLS/SigV4 for the remote stores; expat: S3 XML listings;
# json-c: the HTTP store's JSON directory listings; libssl: SHA-256/MD5 of
# upload bodies (libcrypto); libmicrohttpd: the opt-in /metrics endpoint;
# libyaml: the replicate configuration file (cli/config.c); libdeflate: the
# codec's block compression and CRC-32 (zlib-compatible streams, less CPU).
pkgs=(build-essential libsqlite3-dev zlib1g-dev libdeflate-dev sqlite3 libcurl4-openssl-dev
      libexpat1-dev libjson-c-dev libssl-dev libmicrohttpd-dev libyaml-dev python3
      openssl)  # openssl: security.sh makes its test keys with `openssl rand`
# The store tests' servers (tests/servers/): nginx (its dav and autoindex
# modules) for the HTTP store; node + npm to run s3rver for the S3 store.
# Keep a node that is already on PATH (it may not come from Debian).
pkgs+=(nginx)
# gdb: tests/torture/repro_reset_after_attach.sh places a write in a window
# of microseconds with a breakpoint (a data-loss regression test).
pkgs+=(gdb)
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "walship: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "walship: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# Installing nginx would start the system service on port 80: the tests run
# their own private instance, so forbid service starts during the install
# (policy-rc.d exit 101 = action forbidden), unless a policy already exists.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
fi
apt-get install -y -qq "${missing[@]}" >/dev/null
