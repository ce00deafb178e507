#!/usr/bin/env python3
"""The reverse-proxy comparison: tether proxy, nginx with upstream keep-alive, nginx with its
default short upstream connections and HAProxy with `http-reuse safe`, each in front of the
same backend (`tether serve --echo`, a fresh one per row). The proxy is pinned to CPU 0, wrk
and the backend to CPU 1. Per row: req/s, proxy CPU per request (utime+stime of the proxy
process from /proc/PID/stat over the run), upstream connections opened during the steady run
(the backend's accepted counter from its /_tether/status) and TIME_WAIT on the upstream leg at
the end (sock_diag on the backend's port, via `tether conns`). Rewrites the marked proxy
section of docs/BENCHMARKS.md.

    bench/run-proxy.sh [--duration 5] [--connections 32] [--proxies tether,nginx-ka,...]
                       [--no-docs]

Every run is bounded (wrk -d); every process started here is ended here by PID. Standard
library only."""
import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import run_peers as rp  # noqa: E402  (the peers harness: process and /proc helpers)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TETHER = rp.TETHER
CLK_TCK = rp.CLK_TCK
LOAD_CPU = rp.LOAD_CPU  # the proxy runs on rp.SERVER_CPU
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
BEGIN, END = "<!-- proxy:begin -->", "<!-- proxy:end -->"
PROXIES = ["tether", "nginx-ka", "nginx-default", "haproxy", "floor"]
TITLES = {
    "tether": "tether proxy (--upstream-keepalive 32)",
    "nginx-ka": "nginx, upstream keepalive 32",
    "nginx-default": "nginx, default upstream (HTTP/1.0, close)",
    "haproxy": "HAProxy, http-reuse safe",
    "floor": "proxy floor (relay only: 4 syscalls/request)",
}

NGINX = """worker_processes 1;
pid {d}/nginx-{name}.pid;
error_log {d}/nginx-{name}.err;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  upstream backend {{ server 127.0.0.1:{backend};{keepalive} }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{ proxy_pass http://backend;{http11} }}
  }}
}}
"""
NGINX_KA = ("\n    keepalive 32;",
            "\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";")

HAPROXY = """global
  maxconn 8192
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse safe
frontend f
  bind 127.0.0.1:{port}
  default_backend b
backend b
  server s1 127.0.0.1:{backend}
"""


log, free_port, cpu_ticks, raise_nofile = rp.log, rp.free_port, rp.cpu_ticks, rp.raise_nofile


def backend_accepted(port):
    """Connections the backend accepted so far (its /_tether/status)."""
    req = urllib.request.Request("http://127.0.0.1:%d/_tether/status" % port,
                                 headers={"Host": "localhost"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())["connections"]["accepted"]


def time_wait(port):
    """TIME_WAIT sockets on the backend's port, both sides (sock_diag via `tether conns`)."""
    server, client = rp.time_wait(port)
    return None if server is None else server + client


def run_wrk(port, conns, duration):
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % conns, "-d%ds" % duration,
            "--timeout", "5s", "http://127.0.0.1:%d/" % port]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                         preexec_fn=raise_nofile).stdout
    res = {"cmd": shlex.join(argv[3:])}
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] += int(m.group(1)) if m else 0
    return res


def proxy_argv(name, port, backend, workdir):
    if name == "tether":
        return [TETHER, "proxy", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                "--upstream", "http://127.0.0.1:%d" % backend, "--upstream-keepalive", "32",
                "--keepalive-requests", "0", "--max-connections", "16384"]
    if name.startswith("nginx"):
        ka, http11 = NGINX_KA if name == "nginx-ka" else ("", "")
        conf = os.path.join(workdir, name + ".conf")
        with open(conf, "w") as f:
            f.write(NGINX.format(d=workdir, name=name, backend=backend, port=port, keepalive=ka,
                                 http11=http11))
        return ["nginx", "-p", workdir, "-e", os.path.join(workdir, name + ".early.log"), "-c",
                conf, "-g", "daemon off;"]
    if name == "floor":
        exe = os.path.join(workdir, "proxy_floor")
        if not os.path.exists(exe):
            subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "peers", "proxy_floor.c")],
                           check=True)
        return [exe, str(port), str(backend)]
    if name == "haproxy":
        conf = os.path.join(workdir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(HAPROXY.format(port=port, backend=backend))
        return ["haproxy", "-f", conf]
    raise SystemExit("unknown proxy %s" % name)


def measure(name, args, workdir):
    """One row: a fresh backend (so TIME_WAIT of earlier rows does not count), the proxy, a
    warm-up, then the measured wrk run."""
    bport, pport = free_port(), free_port()
    # run_peers' Server pins to its server CPU (0): the backend re-pins itself to CPU 1
    backend = rp.Server("backend-" + name,
                        ["taskset", "-c", LOAD_CPU, TETHER, "serve", "--listen",
                         "127.0.0.1:%d" % bport, "--workers", "1", "--echo", "--status",
                         "--keepalive-requests", "0", "--max-connections", "16384"],
                        bport, workdir)
    proxy = rp.Server(name, proxy_argv(name, pport, bport, workdir), pport, workdir)
    try:
        backend.start()
        try:
            proxy.start()
        except RuntimeError as e:
            return {"error": "did not start: %s" % e}
        run_wrk(pport, args.connections, 1)  # warm-up: pools filled, caches hot
        time.sleep(0.3)
        a0, tw0, t0 = backend_accepted(bport), time_wait(bport), cpu_ticks(proxy.measure_pid)
        res = run_wrk(pport, args.connections, args.duration)
        t1 = cpu_ticks(proxy.measure_pid)
        time.sleep(0.3)  # let the last closes finish their FIN exchange
        a1, tw1 = backend_accepted(bport), time_wait(bport)
        n = res["requests"]
        res["cpu_us_per_req"] = (t1 - t0) * 1e6 / CLK_TCK / n if n else None
        res["opened"] = max(a1 - a0 - 1, 0)  # less the status query's own connection
        res["opened_pct"] = 100.0 * res["opened"] / n if n else None
        res["tw_start"], res["tw_end"] = tw0, tw1
        return res
    finally:
        proxy.stop()
        backend.stop()


def machine():
    """run_peers' machine facts, with HAProxy's version instead of h2o's."""
    info = rp.machine()
    info["versions"].pop("h2o", None)
    try:
        p = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, timeout=10)
        info["versions"]["haproxy"] = (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        info["versions"]["haproxy"] = "?"
    return info


def median_run(runs):
    """The run with the median CPU per request, with the range over all runs added (a failed
    run stands for the proxy when every run failed)."""
    good = sorted((r for r in runs if r.get("cpu_us_per_req")), key=lambda r: r["cpu_us_per_req"])
    if not good:
        return runs[0]
    r = dict(good[(len(good) - 1) // 2])
    r["cpu_range"] = (good[0]["cpu_us_per_req"], good[-1]["cpu_us_per_req"])
    r["nruns"] = len(good)
    return r


def render(results, info, args, started, elapsed):
    L = []
    L.append("Generated by `bench/run-proxy.sh %s` on %s (%.0f s). Machine: %s, %d cores, "
             "Linux %s; load average at start %s."
             % (" ".join(args.argv), started, elapsed, info["cpu"], info["ncpu"], info["kernel"],
                " ".join(info["load"])))
    L.append("")
    L.append("Versions: " + "; ".join("%s: %s" % kv for kv in info["versions"].items()) + ".")
    L.append("")
    L.append("Setup: each proxy with one worker pinned to CPU 0; the backend (`tether serve "
             "--workers 1 --echo --keepalive-requests 0`, a fresh one per row, answering GET with "
             "13 bytes) and `wrk -t1 -c%d` pinned to CPU 1; loopback; a 1 s warm-up, then %d s "
             "measured. Proxy CPU = utime+stime delta of the proxy process (nginx: its worker) "
             "over the run, divided by the requests wrk completed. Upstream connections opened = "
             "the backend's accepted counter over the measured run. TIME_WAIT = sockets in "
             "TIME_WAIT on the backend's port (both sides, sock_diag) at the start and the end of "
             "the measured run (the harness's own status queries leave one or two). The backend "
             "shares CPU 1 with wrk, so req/s is bounded by both; CPU per request is the proxy's "
             "own. Each proxy ran %d times, interleaved with the others; each row is its run with "
             "the median CPU per request, and the range is over all its runs."
             % (args.connections, args.duration, args.rounds)
             + (" **The load average was above 1 at the start: other work shared the machine and "
                "the numbers are provisional.**" if float(info["load"][0]) > 1.0 else ""))
    L.append("")
    L.append("| proxy | req/s | proxy CPU µs/req (range) | CPU × nginx-keepalive | upstream "
             "connections opened (% of requests) | upstream TIME_WAIT start → end | errors |")
    L.append("|---|---|---|---|---|---|---|")
    base = results.get("nginx-ka", {}).get("cpu_us_per_req")
    for name in args.proxies:
        r = results.get(name)
        if r is None:
            continue
        if "error" in r:
            L.append("| %s | %s | — | — | — | — | — |" % (TITLES[name], r["error"]))
            continue
        cpu = r.get("cpu_us_per_req")
        rng = " (%.1f–%.1f)" % r["cpu_range"] if r.get("nruns", 0) > 1 else ""
        L.append("| %s | %.1fk | %s | %s | %d (%s) | %s → %s | %d |" % (
            TITLES[name], r["rps"] / 1e3, "%.2f%s" % (cpu, rng) if cpu else "—",
            "%.2f×" % (cpu / base) if cpu and base else "—", r["opened"],
            "%.2f%%" % r["opened_pct"] if r["opened_pct"] is not None else "—",
            r["tw_start"], r["tw_end"], r["errors"]))
    L.append("")
    L.append("Goals (issue 14): tether's CPU per request ≤ 0.8× nginx-keepalive's; upstream "
             "connections opened ≤ 1% of the requests; no TIME_WAIT growth on the upstream leg.")
    return "\n".join(L)


def write_doc(text):
    with open(DOC) as f:
        doc = f.read()
    block = BEGIN + "\n" + text + "\n" + END
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n## Reverse proxy (issue 14)\n\n" + block + "\n"
    with open(DOC, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5, help="seconds per measured run (1..60)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (1..1000)")
    ap.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated subset")
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of each proxy, interleaved; the row is the median-CPU run (1..9)")
    ap.add_argument("--no-docs", action="store_true", help="print the table only")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.proxies = [p for p in args.proxies.split(",") if p]
    if not 1 <= args.duration <= 60 or not 1 <= args.connections <= 1000 or \
            not 1 <= args.rounds <= 9:
        ap.error("--duration 1..60, --connections 1..1000 and --rounds 1..9")
    for p in args.proxies:
        if p not in PROXIES:
            ap.error("unknown proxy %s (known: %s)" % (p, ", ".join(PROXIES)))
    raise_nofile()
    info = machine()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t0 = time.time()
    results = {}
    with tempfile.TemporaryDirectory(prefix="tt-proxy-bench-") as workdir:
        os.makedirs(os.path.join(workdir, "tmp"))
        os.makedirs(os.path.join(workdir, "logs"))
        os.chmod(workdir, 0o755)
        runs = {name: [] for name in args.proxies}
        for rnd in range(args.rounds):
            order = args.proxies[rnd % len(args.proxies):] + args.proxies[:rnd % len(args.proxies)]
            for name in order:  # interleaved, each round starting elsewhere
                log("proxy-bench: round %d %s ..." % (rnd + 1, name))
                r = measure(name, args, workdir)
                log("proxy-bench: %s %s" % (name, json.dumps(r)))
                runs[name].append(r)
        results = {name: median_run(rs) for name, rs in runs.items()}
    text = render(results, info, args, started, time.time() - t0)
    print(text)
    if not args.no_docs:
        write_doc(text)


if __name__ == "__main__":
    main()
