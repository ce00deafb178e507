#!/bin/sh
# One command for the peer comparison: nginx, h2o, tether (and floor.c) on loopback, each pinned
# to CPU 0, wrk and `tether bench` pinned to CPU 1; rewrites the peers section of
# docs/BENCHMARKS.md. Options go to bench/peers/run_peers.py (--help); e.g.
#   bench/run-peers.sh --duration 3 --idle 10000
set -e
cd "$(dirname "$0")/.."
[ -x build/tether ] || make -j2 >/dev/null
exec python3 bench/peers/run_peers.py "$@"
