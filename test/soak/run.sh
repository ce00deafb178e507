#!/bin/sh
# `make soak`: the long reliability runs, bounded in time and count.
#   SOAK_SECONDS (default 600): length of the chaos run; the slowloris dribble adds ~1 minute.
# Each part prints one JSON line; the exit status is non-zero if any part found a problem.
set -u
cd "$(dirname "$0")/../.."
SOAK_SECONDS=${SOAK_SECONDS:-600}
export TETHER_BIN=${TETHER_BIN:-$PWD/build/tether}
fail=0
echo "== soak: slowloris dribble (1,000 connections, 1 byte/s, header timeout 10 s, 2 rounds)"
timeout 300 python3 test/soak/slowloris.py --conns 1000 --header-timeout 10 --rounds 2 || fail=1
echo "== soak: chaos for ${SOAK_SECONDS}s (2 processes x 12 threads, plus wrk -t1 -c32 keep-alive load)"
timeout $((SOAK_SECONDS + 600)) python3 test/soak/chaos.py --seconds "$SOAK_SECONDS" --procs 2 --threads 12 --wrk \
    || fail=1
if [ $fail = 0 ]; then echo "soak: passed"; else echo "soak: FAILED"; fi
exit $fail
