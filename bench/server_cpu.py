#!/usr/bin/env python3
"""Server CPU per request: tether serve --echo (one worker) against floor.c, side by side.

    python3 bench/server_cpu.py [--duration 5] [--conns 100] [--rounds 3] [--floor PATH] [--nginx]

In the close mode floor.c is replaced by close_floor.c closing client-first (the floor of
tether's design), and --nginx adds nginx with `listen ... deferred` next to the peers' config.
--uring adds close_floor_uring.c (the same floor on io_uring; needs liburing-dev).

Each server is pinned to CPU 0 and wrk -t1 to CPU 1; server CPU = utime+stime from
/proc/PID/stat over the run. Modes: keep-alive, Connection: close, pipelined x16 (the peers'
pipeline.lua). Rounds interleave the servers; medians are printed. Loopback only, bounded."""
import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.environ.get("TETHER_PEERS", os.path.join(ROOT, "..", "shared", "peers"))  # the shared reference configs
TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start")


def tw_server(port):
    n = 0
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        p = line.split()
        if int(p[1].split(":")[1], 16) == port and p[3] == "06":
            n += 1
    return n


def nginx_cmd(port, deferred=False):
    """nginx 1-worker as configured in the peers folder (master off: one process to measure)."""
    d = "/tmp/tether-nginx-%d" % port
    for sub in ("run", "logs", "www"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    conf = open(os.path.join(PEERS, "nginx-w1.conf")).read().replace("PEERS", d)
    conf = conf.replace("master_process on", "master_process off").replace("127.0.0.1:18081",
                                                                           "127.0.0.1:%d" % port)
    if deferred:
        conf = conf.replace("backlog=4096;", "backlog=4096 deferred;")
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(conf)
    return ["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d]


def run(cmd, port, mode, duration, conns, path="/"):
    proc = subprocess.Popen(["taskset", "-c", "0"] + cmd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        w = ["taskset", "-c", "1", "wrk", "-t1", "-c%d" % conns, "-d%d" % duration]
        if mode == "close":
            w += ["-H", "Connection: close"]
        if mode == "pipe16":
            w += ["-s", os.path.join(PEERS, "pipeline.lua")]
        w.append("http://127.0.0.1:%d%s" % (port, path))
        if mode == "pipe16":
            w += ["--", "16"]
        c0 = cpu_s(proc.pid)
        out = subprocess.run(w, capture_output=True, text=True, timeout=duration + 30).stdout
        c1 = cpu_s(proc.pid)
        m = re.search(r"(\d+) requests in", out)
        reqs = int(m.group(1)) if m else 0
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        tw = tw_server(port)
        return rps, (c1 - c0) * 1e6 / max(reqs, 1), tw
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--conns", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default="keepalive,close,pipe16")
    ap.add_argument("--floor", default="/tmp/tether-floor")
    ap.add_argument("--close-floor", default="/tmp/tether-close-floor")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "tether"))
    ap.add_argument("--nginx", action="store_true", help="also run nginx (peers config)")
    ap.add_argument("--uring", action="store_true",
                    help="close mode: also the io_uring floor (bench/peers/close_floor_uring.c)")
    args = ap.parse_args()
    if not os.path.exists(args.floor):
        subprocess.run(["gcc", "-O2", "-o", args.floor, os.path.join(PEERS, "floor.c")], check=True)
    subprocess.run(["gcc", "-O2", "-o", args.close_floor,  # one file: rebuilt every run
                    os.path.join(ROOT, "bench", "peers", "close_floor.c")], check=True)
    servers = {
        "floor": lambda p: [args.floor, str(p)],
        "tether": lambda p: [args.bin, "serve", "--echo", "--workers", "1", "--listen",
                             "127.0.0.1:%d" % p],
    }
    if args.nginx:
        servers["nginx"] = nginx_cmd
        servers["nginx-deferred"] = lambda p: nginx_cmd(p, deferred=True)
    servers["close-floor"] = lambda p: [args.close_floor, str(p), "client-first"]
    if args.uring:
        exe = args.close_floor + "-uring"
        subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(ROOT, "bench", "peers",
                                                              "close_floor_uring.c"), "-luring"],
                       check=True)
        servers["close-floor-uring"] = lambda p: [exe, str(p), "client-first"]
    for mode in args.modes.split(","):
        res = {k: [] for k in servers}
        for _ in range(args.rounds):
            for name, mk in servers.items():
                if (name == "floor" and mode == "close") or (name.startswith("close-floor") and
                                                             mode != "close"):
                    continue  # floor ignores Connection: close; close-floor knows nothing else
                if name == "nginx-deferred" and mode != "close":
                    continue
                port = free_port()
                path = "/plaintext" if name.startswith("nginx") else "/"
                res[name].append(run(mk(port), port, mode, args.duration, args.conns, path))
        print("== %s c%d, %d x %ds (medians)" % (mode, args.conns, args.rounds, args.duration))
        for name, rs in res.items():
            if not rs:
                continue
            rps = statistics.median(r[0] for r in rs)
            us = statistics.median(r[1] for r in rs)
            tw = max(r[2] for r in rs)
            print("  %-14s %10.0f req/s  %6.2f us CPU/req  server TIME_WAIT %d" % (name, rps, us, tw))
        if res.get("nginx") and res.get("close-floor-uring"):
            print("  close-floor-uring/nginx CPU per request: %.2fx" %
                  (statistics.median(r[1] for r in res["close-floor-uring"]) /
                   statistics.median(r[1] for r in res["nginx"])))
        if res.get("nginx") and res["tether"]:
            print("  tether/nginx CPU per request: %.2fx" %
                  (statistics.median(r[1] for r in res["tether"]) /
                   statistics.median(r[1] for r in res["nginx"])))
        for ref in ("nginx-deferred", "floor", "close-floor", "close-floor-uring"):
            if res.get(ref) and res["tether"]:
                print("  tether/%s CPU per request: %.2fx" %
                      (ref, statistics.median(r[1] for r in res["tether"]) /
                       statistics.median(r[1] for r in res[ref])))


if __name__ == "__main__":
    main()
