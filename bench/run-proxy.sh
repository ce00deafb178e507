#!/bin/sh
# One command for the reverse-proxy comparison: tether proxy, nginx (upstream keepalive and
# default), HAProxy (http-reuse safe) in front of the same backend; each proxy pinned to CPU 0,
# wrk and the backend to CPU 1; rewrites the proxy section of docs/BENCHMARKS.md. Options go to
# bench/proxy_cpu.py (--help); e.g.
#   bench/run-proxy.sh --duration 5
set -e
cd "$(dirname "$0")/.."
[ -x build/tether ] || make -j2 >/dev/null
exec python3 bench/proxy_cpu.py "$@"
