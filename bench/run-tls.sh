#!/bin/sh
# One command for the TLS benchmarks (issue 13): tether and nginx over https with the same ECDSA
# P-256 test certificate, one worker each pinned to CPU 0, wrk / `tether bench` / clientbench
# pinned to CPU 1; rewrites the tls section of docs/BENCHMARKS.md. Options go to
# bench/peers/run_tls.py (--help); e.g.
#   bench/run-tls.sh --duration 5          # about 2-3 minutes
#   bench/run-tls.sh --duration 2 --idle 2000 --no-docs
set -e
cd "$(dirname "$0")/.."
[ -x build/tether ] || make -j2 >/dev/null
exec python3 bench/peers/run_tls.py "$@"
