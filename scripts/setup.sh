#!/bin/sh
# Installs what rtp-bench needs on a Debian bookworm machine (as root) and builds it. Safe to run again:
# it installs only what is missing. Debian packages: rtpengine-daemon (the system under test); iproute2 (network
# namespaces for the local mesh); iptables (the tests drop packets on purpose, inside namespaces of their own, and
# count them); redis-server (--redis starts one per run, on the run's own loopback address: the Debian service
# that apt may start on 127.0.0.1:6379 is not used; `systemctl disable --now redis-server` stops it); prometheus
# (the --metrics-listen test starts its own server on a free loopback port, with a config and storage of its own, to
# scrape a real run: the Debian service it may start on :9090 is not used; `systemctl disable --now prometheus` stops
# it). Node packages: exactly what package-lock.json pins.
set -eu
cd "$(dirname "$0")/.."

missing=""
command -v rtpengine >/dev/null 2>&1 || missing="$missing rtpengine-daemon"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v iptables >/dev/null 2>&1 || missing="$missing iptables"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
if [ -n "$missing" ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "rtp-bench setup: these Debian packages are missing:$missing; run this as root or: sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
  fi
  echo "rtp-bench setup: apt-get install$missing"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm ci wipes node_modules; skip it when the installed tree already matches the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
# The native media I/O (workers/native) is optional: without it the media threads use Node's dgram, which costs about
# three times the CPU per packet. A failed build is reported, not fatal. Its log goes to a new file of its own (mktemp:
# a name nobody can guess or plant in advance), kept only when the build failed.
build_log="$(mktemp "${TMPDIR:-/tmp}/rtp-bench-native-build.XXXXXXXX")"
if npm run build:native --silent >"$build_log" 2>&1; then
  rm -f "$build_log"
else
  echo "rtp-bench setup: the native media I/O addon did not build (see $build_log); media threads will use Node's dgram" >&2
fi
