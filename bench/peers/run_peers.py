#!/usr/bin/env python3
"""The peer comparison: nginx, h2o and tether (plus floor.c, the bare epoll responder) on
loopback with equivalent configs, each server pinned to CPU 0, the load generator (wrk and
`tether bench`) pinned to CPU 1. Rewrites the marked section of docs/BENCHMARKS.md.

    bench/run-peers.sh [--duration 5] [--idle 10000] [--servers nginx,h2o,tether,floor]
                       [--generators wrk,tether] [--tests plain100,...] [--no-docs]

Every run is bounded (duration per cell, connection counts); every process started here is
ended here by PID. Standard library only."""
import argparse
import json
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TETHER = os.environ.get("TETHER_BIN", os.path.join(ROOT, "build", "tether"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU, LOAD_CPU = "0", "1"

# name -> (path, connections, extra wrk args, extra tether bench args, keep-alive?)
TESTS = {
    "plain100": ("keep-alive c100, 13 B", "/plaintext", 100, [], []),
    "plain1000": ("keep-alive c1000, 13 B", "/plaintext", 1000, [], []),
    "close100": ("Connection: close c100, 13 B", "/plaintext", 100,
                 ["-H", "Connection: close"], ["--no-keepalive"]),
    "pipe16": ("pipelined x16 c100, 13 B", "/plaintext", 100,
               ["-s", os.path.join(HERE, "pipeline.lua")], ["--pipeline", "16"]),
    "static4k": ("4 KiB static file c100", "/static/4k.bin", 100, [], []),
}
# floor.c answers every request with the same 13 bytes and ignores Connection: close
FLOOR_TESTS = ("plain100", "pipe16")
# Only in the Connection: close row: close_floor.c in each closing mode (the floor of the design:
# client-first is tether's, server-first nginx's and h2o's) and nginx with `listen ... deferred`
# (TCP_DEFER_ACCEPT, which tether and h2o use by default and the peers' nginx config does not).
CLOSE_ONLY = {"close-floor": "client-first", "close-floor-sf": "server-first",
              "nginx-deferred": None}
SERVER_TESTS = dict({"floor": FLOOR_TESTS}, **{k: ("close100",) for k in CLOSE_ONLY})


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %d" % port)


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


class Server:
    """One server process pinned to CPU 0. measure_pid is the process doing the work (nginx's
    worker, not its master)."""

    def __init__(self, name, argv, port, workdir):
        self.name, self.argv, self.port, self.workdir = name, argv, port, workdir
        self.proc = None
        self.measure_pid = None

    def start(self):
        out = open(os.path.join(self.workdir, "logs", self.name + ".out"), "wb")
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU] + self.argv, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.workdir,
                                     preexec_fn=raise_nofile)
        out.close()
        wait_port(self.port, self.proc)
        self.measure_pid = self.proc.pid
        if self.name.startswith("nginx"):
            deadline = time.time() + 5
            while time.time() < deadline and not children(self.proc.pid):
                time.sleep(0.05)
            kids = children(self.proc.pid)
            if kids:
                self.measure_pid = kids[0]
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if self.name.startswith("nginx") else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def prepare(workdir):
    for d in ("www/static", "logs", "run"):
        os.makedirs(os.path.join(workdir, d), exist_ok=True)
    with open(os.path.join(workdir, "www", "plaintext"), "wb") as f:
        f.write(b"Hello, World!")
    with open(os.path.join(workdir, "www", "static", "4k.bin"), "wb") as f:
        f.write(bytes((i * 7 + 3) & 0xFF for i in range(4096)))
    # the 13-byte file also under /static for servers that only serve files
    shutil.copy(os.path.join(workdir, "www", "plaintext"), os.path.join(workdir, "www", "static", "plaintext"))


def make_config(src, dst, workdir, port):
    with open(os.path.join(HERE, src)) as f:
        text = f.read().replace("PEERS", workdir).replace("PORT", str(port))
    if os.getuid() != 0:
        text = "\n".join(l for l in text.splitlines() if not l.startswith("user:")) + "\n"
    with open(dst, "w") as f:
        f.write(text)
    return dst


def build_servers(names, workdir):
    servers = {}
    for name in names:
        port = free_port()
        if name in ("nginx", "nginx-deferred"):
            conf = make_config("nginx.conf", os.path.join(workdir, name + ".conf"), workdir, port)
            if name == "nginx-deferred":
                with open(conf) as f:
                    text = f.read().replace("backlog=4096;", "backlog=4096 deferred;")
                with open(conf, "w") as f:
                    f.write(text.replace("/nginx.", "/nginx-deferred."))
            argv = ["nginx", "-p", workdir, "-e", os.path.join(workdir, "logs", name + ".early.log"),
                    "-c", conf]
        elif name == "h2o":
            conf = make_config("h2o.yaml", os.path.join(workdir, "h2o.yaml"), workdir, port)
            argv = ["h2o", "-c", conf]
        elif name == "tether":
            # --echo answers GET with a 13-byte "Hello, World!" from memory, as nginx's
            # `return 200` does; the 4 KiB row uses a second instance with --root (tether-files)
            argv = [TETHER, "serve", "--listen", "127.0.0.1:%d" % port, "--workers", "1", "--echo",
                    "--keepalive-requests", "100000", "--max-connections", "16384"]
        elif name == "tether-files":
            argv = [TETHER, "serve", "--listen", "127.0.0.1:%d" % port, "--workers", "1", "--root",
                    os.path.join(workdir, "www"), "--keepalive-requests", "100000",
                    "--max-connections", "16384"]
        elif name == "floor":
            exe = os.path.join(workdir, "floor")
            subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "floor.c")], check=True)
            argv = [exe, str(port)]
        elif name in ("close-floor", "close-floor-sf"):
            exe = os.path.join(workdir, "close_floor")
            if not os.path.exists(exe):
                subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "close_floor.c")],
                               check=True)
            argv = [exe, str(port), CLOSE_ONLY[name]]
        else:
            raise SystemExit("unknown server %s" % name)
        servers[name] = Server(name, argv, port, workdir)
    return servers


UNITS = {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}


def to_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def run_wrk(port, test, duration, scheme="http"):
    _, path, conns, wrk_args, _ = TESTS[test]
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % conns, "-d%ds" % duration,
            "--latency", "--timeout", "5s"] + wrk_args + ["%s://127.0.0.1:%d%s" % (scheme, port, path)]
    if test == "pipe16":
        argv += ["--", "16"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60,
                         preexec_fn=raise_nofile).stdout
    res = {"cmd": shlex.join(argv[3:])}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct, key in (("50%", "p50"), ("99%", "p99")):
        m = re.search(r"^\s+%s\s+(\S+)" % re.escape(pct), out, re.M)
        res[key] = to_us(m.group(1)) if m else None
        if not res[key]:
            res[key] = None  # wrk prints 0.00us when its histogram lost the requests (pipelining)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["errors"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] += int(m.group(1)) if m else 0
    return res


def run_tether_bench(port, test, duration):
    _, path, conns, _, args = TESTS[test]
    argv = ["taskset", "-c", LOAD_CPU, TETHER, "bench", "-t1", "-c%d" % conns, "-d%d" % duration,
            "--timeout", "5s", "--json"] + args + ["http://127.0.0.1:%d%s" % (port, path)]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    try:
        d = json.loads(p.stdout)
    except ValueError:
        log("tether bench failed: %s %s" % (p.stdout[-300:], p.stderr[-300:]))
        d = {"requests": 0, "rps": 0, "latency_us": {}, "errors": -1, "non2xx": 0}
    return {"cmd": "tether " + shlex.join(argv[4:]).replace(" --json", ""),
            "requests": d["requests"], "rps": d["rps"],
            "p50": d["latency_us"].get("p50"), "p99": d["latency_us"].get("p99"),
            "errors": d["errors"] + d.get("non2xx", 0)}


def time_wait(port):
    """TIME_WAIT sockets on port by side, read with `tether conns` (netlink sock_diag)."""
    p = subprocess.run([TETHER, "conns", "--port", str(port), "--json"], capture_output=True,
                       text=True, timeout=30)
    try:
        d = json.loads(p.stdout)
        return d["server"].get("TIME_WAIT", 0), d["client"].get("TIME_WAIT", 0)
    except (ValueError, KeyError):
        return None, None


def measure(server, gen, test, duration):
    t0 = cpu_ticks(server.measure_pid)
    tw0 = time_wait(server.port) if test == "close100" else None
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = (run_wrk if gen == "wrk" else run_tether_bench)(server.port, test, duration)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res["gen_cpu_us_per_req"] = gen_cpu * 1e6 / res["requests"] if res["requests"] else None
    time.sleep(0.2)  # let the last closes finish their FIN exchange
    t1 = cpu_ticks(server.measure_pid)
    cpu_us = (t1 - t0) * 1e6 / CLK_TCK
    res["cpu_us_per_req"] = cpu_us / res["requests"] if res["requests"] else None
    if tw0 is not None:
        tw1 = time_wait(server.port)
        if None not in tw0 and None not in tw1:
            res["tw_server"] = max(tw1[0] - tw0[0], 0)
            res["tw_client"] = max(tw1[1] - tw0[1], 0)
            res["tw_server_abs"], res["tw_client_abs"] = tw1
    return res


def idle_memory(server, n):
    """RSS growth per idle keep-alive connection: n connections, one request each, then idle."""
    raise_nofile()
    path = "/plaintext"
    req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode()
    time.sleep(0.3)
    before = rss_bytes(server.measure_pid)
    socks = []
    sel = selectors.DefaultSelector()
    deadline = time.time() + 60
    try:
        for start in range(0, n, 500):
            batch = []
            for _ in range(min(500, n - start)):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                s.sendall(req)
                s.setblocking(False)
                batch.append(s)
                socks.append(s)
            pending = set(batch)
            for s in batch:
                sel.register(s, selectors.EVENT_READ)
            while pending and time.time() < deadline:
                for key, _ in sel.select(timeout=1):
                    data = key.fileobj.recv(65536)
                    if b"\r\n\r\n" in data or not data:
                        pending.discard(key.fileobj)
                        sel.unregister(key.fileobj)
            for s in pending:
                sel.unregister(s)
            if pending:
                raise RuntimeError("%d connections got no answer" % len(pending))
        time.sleep(1.0)  # let the server settle (idle state, buffers released)
        after = rss_bytes(server.measure_pid)
        alive = server.proc.poll() is None
    finally:
        for s in socks:
            s.close()
        sel.close()
    return {"n": n, "before": before, "after": after, "per_conn": (after - before) / n,
            "alive": alive}


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    vers = {}
    for name, argv in (("nginx", ["nginx", "-v"]), ("h2o", ["h2o", "--version"]),
                       ("wrk", ["wrk", "-v"]), ("tether", [TETHER, "--version"])):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            vers[name] = (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            vers[name] = "?"
    return {"cpu": cpu, "ncpu": os.cpu_count(), "kernel": platform.release(), "versions": vers,
            "load": open("/proc/loadavg").read().split()[:3]}


def fmt_rate(v):
    return "%.1fk" % (v / 1e3) if v else "—"


def fmt_lat(us):
    if us is None:
        return "—"
    return "%.0f µs" % us if us < 1000 else "%.2f ms" % (us / 1e3)


def fmt_ratio(a, b):
    return "%.2f×" % (a / b) if a and b else "—"


def idle_table(title, idle, n):
    """The markdown lines of an idle-memory table: idle = {server: idle_memory() result}."""
    L = ["### " + title, "", "| server | connections | RSS before | RSS after | bytes per connection |",
         "|---|---|---|---|---|"]
    for srv, m in idle.items():
        if "error" in m:
            L.append("| %s | %d | — | — | failed: %s |" % (srv, n, m["error"]))
        else:
            L.append("| %s | %d | %.1f MiB | %.1f MiB | %.0f |" % (
                srv, m["n"], m["before"] / 1048576, m["after"] / 1048576, m["per_conn"]))
    return L + [""]


def server_cmd(s):
    """A server's command line as the docs show it (PORT, PEERS and tether for the specifics)."""
    cmd = shlex.join(["taskset", "-c", SERVER_CPU] + s.argv)
    cmd = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", cmd).replace(s.workdir, "PEERS")
    return cmd.replace(TETHER, "tether")


def render(results, idle, info, args, started, elapsed, servers):
    L = []
    L.append("Generated by `bench/run-peers.sh %s` on %s (%.0f s). Machine: %s, %d cores, Linux %s; "
             "load average at start %s." % (" ".join(args.argv), started, elapsed, info["cpu"],
                                             info["ncpu"], info["kernel"], " ".join(info["load"])))
    L.append("")
    L.append("Versions: " + "; ".join("%s: %s" % kv for kv in info["versions"].items()) + ".")
    L.append("")
    L.append("Setup: one worker per server pinned to CPU 0 (`taskset -c 0`), the load generator "
             "pinned to CPU 1 with one thread (`taskset -c 1 wrk -t1 ...` / `taskset -c 1 tether "
             "bench -t1 ...`), loopback, %d s per cell. tether runs `tether serve --workers 1 "
             "--echo` for the 13-byte rows (an in-memory `Hello, World!`, matching nginx's "
             "`return 200`; h2o serves the same 13 bytes from a file, as in ../shared/peers) and "
             "`--root` for the 4 KiB file. Server CPU = utime+stime delta of the server process "
             "(nginx: its worker) over the run, divided by the requests the generator completed; "
             "generator CPU likewise for the load generator (getrusage of the child). "
             "Cells run one after another, so only ratios within one run compare well." % args.duration
             + (" **The load average was above 1 at the start: other work shared the machine and "
                "absolute numbers are noisy.**" if float(info["load"][0]) > 1.0 else ""))
    L.append("")
    for gen in args.generators:
        floor_cpu = {}  # test -> the floor's CPU per request with this generator
        for test, fname in (("plain100", "floor"), ("close100", "close-floor")):
            f = results.get((fname, gen, test))
            if f and f.get("cpu_us_per_req"):
                floor_cpu[test] = f["cpu_us_per_req"]
        L.append("### Load generator: %s" % ("wrk" if gen == "wrk" else "tether bench"))
        L.append("")
        L.append("| test | server | req/s | × nginx | p50 | p99 | server CPU µs/req | CPU × nginx | "
                 "CPU × floor | generator CPU µs/req | errors |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for test in args.tests:
            base = results.get(("nginx", gen, test))
            for srv in args.servers:
                r = results.get((srv, gen, test))
                if not r:
                    continue
                cpu = r.get("cpu_us_per_req")
                gcpu = r.get("gen_cpu_us_per_req")
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    TESTS[test][0], srv, fmt_rate(r["rps"]),
                    fmt_ratio(r["rps"], base["rps"]) if base else "—",
                    fmt_lat(r.get("p50")), fmt_lat(r.get("p99")),
                    "%.2f" % cpu if cpu else "—",
                    fmt_ratio(cpu, base.get("cpu_us_per_req")) if base else "—",
                    fmt_ratio(cpu, floor_cpu[test]) if cpu and test in floor_cpu else "—",
                    "%.2f" % gcpu if gcpu else "—", r["errors"]))
        L.append("")
    if any(k[0] in CLOSE_ONLY for k in results):
        L.append("\"CPU × floor\" is against floor.c for keep-alive and against close_floor.c "
                 "client-first (the fewest syscalls a connection costs when the client closes "
                 "first) for Connection: close. close-floor-sf is the same yardstick closing "
                 "server-first, as nginx and h2o do (one TIME_WAIT per connection on the server); "
                 "nginx-deferred is the peers' nginx config with `listen ... deferred` "
                 "(TCP_DEFER_ACCEPT, on by default in tether and h2o).")
        L.append("")
    tw = [(srv, gen, results[(srv, gen, "close100")]) for gen in args.generators
          for srv in args.servers if (srv, gen, "close100") in results]
    if tw:
        L.append("### TIME_WAIT after the Connection: close run (kernel, sock_diag via `tether conns`)")
        L.append("")
        L.append("| generator | server | requests | server-side TIME_WAIT (new / total) | "
                 "client-side TIME_WAIT (new / total) |")
        L.append("|---|---|---|---|---|")
        for srv, gen, r in tw:
            if "tw_server" in r:
                L.append("| %s | %s | %d | %d / %d | %d / %d |" % (
                    gen, srv, r["requests"], r["tw_server"], r["tw_server_abs"], r["tw_client"],
                    r["tw_client_abs"]))
        L.append("")
        L.append("\"new\" is the growth over the run, \"total\" the count right after it. Loopback "
                 "recycles TIME_WAIT ports (`net.ipv4.tcp_tw_reuse=2`) and a run opens more "
                 "connections than there are ephemeral ports, so totals saturate near the port "
                 "range; what matters is which side holds them.")
        L.append("")
    if idle:
        L += idle_table("Idle keep-alive memory (one request each, then idle)", idle, args.idle)
    L.append("Commands (PORT is the server's port, PEERS the scratch folder):")
    L.append("")
    L.append("```")
    for s in servers.values():
        cmd = server_cmd(s)
        if s.name in ("nginx", "h2o"):
            cmd += "    # bench/peers/%s with PEERS and PORT filled in" % os.path.basename(s.argv[-1])
        if s.name == "nginx-deferred":
            cmd += "    # bench/peers/nginx.conf, PEERS and PORT filled in, `listen ... deferred`"
        if s.name == "floor":
            cmd = re.sub(r" \d+$", " PORT", cmd) + "    # gcc -O2 -o PEERS/floor bench/peers/floor.c"
        if s.name.startswith("close-floor"):
            cmd = re.sub(r" \d+ ", " PORT ", cmd) + (
                "    # gcc -O2 -o PEERS/close_floor bench/peers/close_floor.c")

        L.append(cmd)
    seen = set()
    for (srv, gen, test), r in sorted(results.items()):
        cmd = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", r["cmd"])
        cmd = cmd.replace(HERE + "/", "bench/peers/").replace(TETHER, "tether")
        if cmd not in seen:
            seen.add(cmd)
            L.append("taskset -c 1 " + cmd if not cmd.startswith("taskset") else cmd)
    L.append("```")
    return "\n".join(L)


def write_docs(section, key="peers", title="Peer comparison"):
    """Replace the section between <!-- KEY:begin --> and <!-- KEY:end --> of BENCHMARKS.md
    (appended under `## TITLE` when missing)."""
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    begin, end = "<!-- %s:begin -->" % key, "<!-- %s:end -->" % key
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = ""
    if begin not in text or end not in text:
        if not text:
            text = ("# Benchmarks\n\nSpeed lives here, never in tests: every number comes with the "
                    "command that produced it. See bench/README.md.\n\n")
        text = text.rstrip("\n") + "\n\n## %s\n\n%s\n%s\n" % (title, begin, end)
    a = text.index(begin) + len(begin)
    b = text.index(end)
    text = text[:a] + "\n" + section + "\n" + text[b:]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def parse_args(ap):
    """Add the options every harness shares (--no-docs, --json), parse, split --servers."""
    ap.add_argument("--no-docs", action="store_true", help="print the section, do not rewrite docs")
    ap.add_argument("--json", help="also write raw results to this file")
    args = ap.parse_args()
    args.argv = sys.argv[1:]
    args.servers = [s for s in args.servers.split(",") if s]
    return args


def require(tools):
    """Exit with a message unless build/tether and every tool are there."""
    if not os.access(TETHER, os.X_OK):
        raise SystemExit("build tether first: make")
    for tool in tools:
        if not shutil.which(tool):
            raise SystemExit("missing %s (see scripts/deps.sh)" % tool)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per cell [5]")
    ap.add_argument("--idle", type=int, default=10000, help="idle connections (0: skip) [10000]")
    ap.add_argument("--servers",
                    default="nginx,h2o,tether,floor,close-floor,close-floor-sf,nginx-deferred")
    ap.add_argument("--generators", default="wrk,tether")
    ap.add_argument("--tests", default=",".join(TESTS))
    args = parse_args(ap)
    args.generators = [g for g in args.generators.split(",") if g]
    args.tests = [t for t in args.tests.split(",") if t]
    for t in args.tests:
        if t not in TESTS:
            raise SystemExit("unknown test %s (have %s)" % (t, ",".join(TESTS)))
    require(("taskset", "wrk"))
    if os.cpu_count() < 2:
        log("warning: fewer than 2 CPUs: server and load generator share a core")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start = time.time()
    info = machine()
    workdir = tempfile.mkdtemp(prefix="tether-peers.", dir="/tmp")
    os.chmod(workdir, 0o755)  # h2o drops to `nobody` and must still read www/
    prepare(workdir)
    names = list(args.servers)
    if "tether" in names and "static4k" in args.tests:
        names.append("tether-files")
    servers = build_servers(names, workdir)
    results, idle = {}, {}
    try:
        for s in servers.values():
            s.start()
            log("started %s on port %d (pid %d)" % (s.name, s.port, s.measure_pid))
        for test in args.tests:
            for gen in args.generators:
                for name in args.servers:
                    if test not in SERVER_TESTS.get(name, (test,)):
                        continue
                    srv = servers[name]
                    if test == "static4k" and name == "tether":
                        srv = servers["tether-files"]
                    if srv.proc.poll() is not None:
                        log("%s died (exit %s)" % (name, srv.proc.returncode))
                        continue
                    r = measure(srv, gen, test, args.duration)
                    results[(name, gen, test)] = r
                    log("%-9s %-6s %-7s %10.0f req/s  p50 %s  p99 %s  cpu %s us/req  errors %s" % (
                        test, gen, name, r["rps"], fmt_lat(r["p50"]), fmt_lat(r["p99"]),
                        "%.2f" % r["cpu_us_per_req"] if r["cpu_us_per_req"] else "-", r["errors"]))
        if args.idle > 0:
            for name in args.servers:
                if name in SERVER_TESTS:
                    continue
                try:
                    idle[name] = idle_memory(servers[name], args.idle)
                    log("idle     %-7s %.0f bytes per connection" % (name, idle[name]["per_conn"]))
                except (OSError, RuntimeError) as e:
                    idle[name] = {"error": str(e)}
                    log("idle     %-7s failed: %s" % (name, e))
                time.sleep(0.5)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    section = render(results, idle, info, args, started, time.time() - t_start, servers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "idle": idle,
                       "results": [dict(server=k[0], generator=k[1], test=k[2], **v)
                                   for k, v in results.items()]}, f, indent=1)
    if args.no_docs:
        print(section)
    else:
        log("wrote %s" % write_docs(section))


if __name__ == "__main__":
    main()
