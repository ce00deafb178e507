#!/usr/bin/env python3
"""The TLS benchmarks of issue 13: tether against nginx over https, side by side in one run, the
same ECDSA P-256 certificate (scripts/mkcerts.sh), one worker each pinned to CPU 0, the load
generator pinned to CPU 1. Rewrites the tls section of docs/BENCHMARKS.md.

    bench/run-tls.sh [--duration 5] [--idle 10000] [--servers nginx,tether] [--cells ...]
                     [--client-requests 20000] [--no-docs] [--json FILE]

Cells (--cells):
  ka-wrk    keep-alive over TLS, wrk -t1 -c100: server CPU per request (goal <= 0.9x nginx)
  ka-bench  the same with `tether bench -k` (for reference)
  full      a new TLS connection per request (Connection: close), every handshake full:
            `tether bench --no-keepalive --full-handshake -k`
  resumed   the same, each new connection resuming a ticket an earlier one brought back:
            `tether bench --no-keepalive -k` (goal for both: server CPU <= 1.0x nginx)
  client    tether's client vs libcurl multi over https keep-alive (build/bench/clientbench
            https://... -k, against nginx), and whether the tether client's new connections
            resume (goal >= 2x libcurl's req/s)
  idle      --idle TLS connections, one request each, then idle: the server's RSS growth per
            connection (the peers harness's method, on a freshly started server), tether and nginx

Every run is bounded (seconds per cell, request counts, connection counts); every process
started here is ended here by PID. Standard library only; reuses bench/peers/run_peers.py."""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_peers as P  # noqa: E402  (the peers harness: servers, CPU and RSS readers, docs)

HERE, ROOT, TETHER = P.HERE, P.ROOT, P.TETHER
CELLS = ("ka-wrk", "ka-bench", "full", "resumed", "client", "idle")
CELL_NAMES = {
    "ka-wrk": "keep-alive c100 (wrk)",
    "ka-bench": "keep-alive c100 (tether bench)",
    "full": "new connection per request, full handshake",
    "resumed": "new connection per request, resumed session",
}
PATH = "/plaintext"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def certs():
    """The test certificates (scripts/mkcerts.sh into build/certs, made once)."""
    d = os.path.join(ROOT, "build", "certs")
    if not os.path.exists(os.path.join(d, ".done")):
        subprocess.run(["sh", os.path.join(ROOT, "scripts", "mkcerts.sh"), d], check=True,
                       stdout=subprocess.DEVNULL)
    return d


def build_servers(names, workdir, certdir):
    servers = {}
    for name in names:
        port = P.free_port()
        if name == "nginx":
            conf = P.make_config("nginx-tls.conf", os.path.join(workdir, "nginx-tls.conf"),
                                 workdir, port)
            with open(conf) as f:
                text = f.read().replace("CERTS", certdir)
            with open(conf, "w") as f:
                f.write(text)
            argv = ["nginx", "-p", workdir, "-e", os.path.join(workdir, "logs", "nginx.early.log"),
                    "-c", conf]
        elif name == "tether":
            argv = [TETHER, "serve", "--listen", "https://127.0.0.1:%d" % port, "--tls-cert",
                    os.path.join(certdir, "server.pem"), "--tls-key",
                    os.path.join(certdir, "server.key"), "--workers", "1", "--echo",
                    "--keepalive-requests", "100000", "--max-connections", "16384"]
        else:
            raise SystemExit("unknown server %s (have nginx, tether)" % name)
        servers[name] = P.Server(name, argv, port, workdir)
    return servers


def bench_argv(port, cell, duration):
    args = ["-t1", "-c100", "-d%d" % duration, "--timeout", "5s", "-k", "--json"]
    if cell == "full":
        args += ["--no-keepalive", "--full-handshake"]
    elif cell == "resumed":
        args += ["--no-keepalive"]
    return ["taskset", "-c", P.LOAD_CPU, TETHER, "bench"] + args + [
        "https://127.0.0.1:%d%s" % (port, PATH)]


def run_bench(port, cell, duration):
    argv = bench_argv(port, cell, duration)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    res = {"cmd": "tether " + shlex.join(argv[4:]).replace(" --json", "")}
    try:
        d = json.loads(p.stdout)
    except ValueError:
        log("tether bench failed: %s %s" % (p.stdout[-300:], p.stderr[-300:]))
        d = {"requests": 0, "rps": 0, "latency_us": {}, "errors": -1, "non2xx": 0}
    t = d.get("tls", {})
    res.update(requests=d["requests"], rps=d["rps"], p50=d["latency_us"].get("p50"),
               p99=d["latency_us"].get("p99"), errors=d["errors"] + d.get("non2xx", 0),
               full=t.get("handshakes_full"), resumed=t.get("handshakes_resumed"),
               hs_failed=t.get("handshakes_failed"), hs_p50=t.get("handshake_us_p50"))
    return res


def measure(server, cell, duration):
    """Server CPU per request over one cell (the peers harness's method)."""
    t0 = P.cpu_ticks(server.measure_pid)
    if cell == "ka-wrk":
        res = P.run_wrk(server.port, "plain100", duration, scheme="https")
        res["cmd"] = res["cmd"].replace("http://", "https://")
    else:
        res = run_bench(server.port, cell, duration)
    time.sleep(0.2)  # the last closes finish
    t1 = P.cpu_ticks(server.measure_pid)
    cpu_us = (t1 - t0) * 1e6 / P.CLK_TCK
    res["cpu_us_per_req"] = cpu_us / res["requests"] if res["requests"] else None
    return res


def run_client(server, nreq):
    """build/bench/clientbench over https against server (keep-alive, -k), pinned to CPU 1."""
    exe = os.path.join(ROOT, "build", "bench", "clientbench")
    r = subprocess.run(["make", "-s", "-C", ROOT, exe], capture_output=True, text=True,
                       timeout=300)
    if r.returncode != 0:
        return {"error": "make clientbench failed: " + r.stderr[-200:]}
    argv = ["taskset", "-c", P.LOAD_CPU, exe, "https://127.0.0.1:%d%s" % (server.port, PATH),
            "-k", "-c", "50", "-n", str(nreq), "-r", "3"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    out = p.stdout + p.stderr
    res = {"cmd": shlex.join(argv[3:]).replace(exe, "build/bench/clientbench"), "out": out}
    m = re.search(r"median: tether (\d+) req/s ([\d.]+) us/req \| libcurl (\d+) req/s ([\d.]+) "
                  r"us/req .*errors (\d+)", out)
    if not m:
        res["error"] = "no result: " + out[-300:]
        return res
    res.update(tether_rps=int(m.group(1)), tether_us=float(m.group(2)),
               curl_rps=int(m.group(3)), curl_us=float(m.group(4)), errors=int(m.group(5)))
    m = re.search(r"new connections: (\d+) opened, TLS handshakes (\d+) full, (\d+) resumed", out)
    if m:
        res.update(nc_opened=int(m.group(1)), nc_full=int(m.group(2)),
                   nc_resumed=int(m.group(3)))
    return res


def idle_tls(server, n, limit_s=120):
    """RSS growth of the server per idle TLS connection: n connections, each a full handshake
    and one request, then all idle. Python's ssl on 16 threads (handshakes release the GIL)."""
    P.raise_nofile()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the server's memory does not depend on the client verifying
    ctx.verify_mode = ssl.CERT_NONE
    req = b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % PATH.encode()
    deadline = time.time() + limit_s

    def one(_):
        if time.time() > deadline:
            raise RuntimeError("too slow")
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(req)
        got = b""
        while b"Hello, World!" not in got:
            b = s.recv(4096)
            if not b:
                raise RuntimeError("the server closed a connection")
            got += b
        return s

    socks = []
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        for s in ex.map(one, range(50)):  # warm-up: one-time allocations counted out
            s.close()
        time.sleep(0.5)
        before = P.rss_bytes(server.measure_pid)
        try:
            socks = list(ex.map(one, range(n)))
            time.sleep(1.0)  # idle: handshake and request buffers released
            after = P.rss_bytes(server.measure_pid)
            alive = server.proc.poll() is None
        finally:
            for s in socks:
                s.close()
    return {"n": n, "before": before, "after": after, "per_conn": (after - before) / n,
            "alive": alive}


def negotiated(port):
    """What a handshake with OpenSSL's default client settings agrees with the server on
    port: "TLSv1.3 TLS_AES_256_GCM_SHA384" (the same defaults tether bench and wrk use)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            return "%s %s" % (s.version(), s.cipher()[0])


def fmt(v, f="%.2f"):
    return f % v if v is not None else "—"


def render(results, client, idle, info, args, started, elapsed, servers):
    L = []
    L.append("Generated by `bench/run-tls.sh %s` on %s (%.0f s). Machine: %s, %d cores, Linux %s; "
             "load average at start %s." % (" ".join(args.argv), started, elapsed, info["cpu"],
                                             info["ncpu"], info["kernel"], " ".join(info["load"]))
             + (" **The load average was above 1 at the start: other work shared the machine "
                "and absolute numbers are noisy.**" if float(info["load"][0]) > 1.0 else ""))
    L.append("")
    L.append("Versions: " + "; ".join("%s: %s" % kv for kv in info["versions"].items()) +
             "; " + ssl.OPENSSL_VERSION + " (Python's; nginx and tether link the system's).")
    L.append("")
    L.append("Setup: one worker per server pinned to CPU 0, the load generator pinned to CPU 1 with "
             "one thread, loopback, %d s per cell; the same ECDSA P-256 certificate "
             "(`scripts/mkcerts.sh`) and OpenSSL's default protocol and cipher choice on both "
             "sides (negotiated: %s). nginx: `bench/peers/nginx-tls.conf` "
             "(`ssl_session_cache shared:SSL:10m`, `ssl_session_tickets on`, `access_log off`, "
             "`keepalive_requests 100000`); tether: `tether serve --listen https://... --workers 1 "
             "--echo`. Server CPU = utime+stime of the server process (nginx: its worker) over "
             "the cell ÷ requests completed." % (args.duration, "; ".join(
                 "%s %s" % kv for kv in info.get("negotiated", {}).items()) or "?"))
    L.append("")
    if results:
        L.append("| test | server | req/s | p50 | p99 | server CPU µs/req | CPU × nginx | "
                 "handshakes full / resumed / failed | errors |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for cell in CELLS:
            base = results.get(("nginx", cell))
            for srv in args.servers:
                r = results.get((srv, cell))
                if not r:
                    continue
                cpu = r.get("cpu_us_per_req")
                hs = "—"
                if r.get("full") is not None:
                    hs = "%d / %d / %d" % (r["full"], r["resumed"], r["hs_failed"])
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    CELL_NAMES[cell], srv, P.fmt_rate(r["rps"]), P.fmt_lat(r.get("p50")),
                    P.fmt_lat(r.get("p99")), fmt(cpu),
                    P.fmt_ratio(cpu, base.get("cpu_us_per_req")) if base else "—", hs,
                    r["errors"]))
        L.append("")
        L.append("Handshakes are `tether bench`'s own counts (client side); wrk does not report "
                 "them. In the new-connection rows every request is a new TCP and TLS "
                 "connection: `--full-handshake` never offers a session, the resumed row offers "
                 "a TLS 1.3 ticket an earlier connection got (each ticket once), so only the first "
                 "connection of each of the 100 slots makes a full handshake.")
        L.append("")
    if client:
        L.append("### Client over https (keep-alive), against nginx")
        L.append("")
        if "error" in client:
            L.append("Failed: %s" % client["error"])
        else:
            L.append("| client | req/s | client CPU µs/req |")
            L.append("|---|---|---|")
            L.append("| tether (tt_client) | %d | %.2f |" % (client["tether_rps"], client["tether_us"]))
            L.append("| libcurl multi | %d | %.2f |" % (client["curl_rps"], client["curl_us"]))
            L.append("")
            L.append("tether / libcurl: **%.2f× req/s**, %.2f× less CPU per request; errors %d "
                     "(medians of 3 rounds, 50 connections)." % (
                         client["tether_rps"] / client["curl_rps"],
                         client["curl_us"] / client["tether_us"], client["errors"]))
            if "nc_opened" in client:
                L.append("New connections resume: a pass that opens a new connection per request "
                         "opened %d, with %d full and %d resumed TLS handshakes." % (
                             client["nc_opened"], client["nc_full"], client["nc_resumed"]))
        L.append("")
    if idle:
        L += P.idle_table("Idle TLS connections (a full handshake and one request each, then idle)",
                          idle, args.idle)
    L.append("Commands (PORT is the server's port, PEERS the scratch folder, CERTS build/certs):")
    L.append("")
    L.append("```")
    for s in servers.values():
        cmd = P.server_cmd(s).replace(certs(), "CERTS")
        if s.name == "nginx":
            cmd += "    # bench/peers/nginx-tls.conf with PEERS, PORT and CERTS filled in"
        L.append(cmd)
    seen = set()
    for (_, _), r in sorted(results.items()):
        cmd = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", r["cmd"]).replace(TETHER, "tether")
        if cmd not in seen:
            seen.add(cmd)
            L.append("taskset -c 1 " + cmd)
    if client and "cmd" in client:
        L.append("taskset -c 1 " + re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", client["cmd"]))
    if idle:
        L.append("# idle: bench/peers/run_tls.py --cells idle --idle %d (Python ssl clients)" %
                 args.idle)
    L.append("```")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=5, help="seconds per cell [5]")
    ap.add_argument("--idle", type=int, default=10000, help="idle TLS connections [10000]")
    ap.add_argument("--servers", default="nginx,tether")
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--client-requests", type=int, default=20000,
                    help="requests per clientbench round [20000]")
    args = P.parse_args(ap)
    args.cells = [c for c in args.cells.split(",") if c]
    for c in args.cells:
        if c not in CELLS:
            raise SystemExit("unknown cell %s (have %s)" % (c, ",".join(CELLS)))
    P.require(("taskset", "wrk", "nginx", "openssl"))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start = time.time()
    info = P.machine()
    certdir = certs()
    workdir = tempfile.mkdtemp(prefix="tether-tls.", dir="/tmp")
    os.chmod(workdir, 0o755)
    P.prepare(workdir)
    servers = build_servers(args.servers, workdir, certdir)
    results, client, idle = {}, None, {}
    try:
        info["negotiated"] = {}
        for s in servers.values():
            s.start()
            info["negotiated"][s.name] = negotiated(s.port)
            log("started %s on port %d (pid %d): %s" % (s.name, s.port, s.measure_pid,
                                                         info["negotiated"][s.name]))
        # The client cell first: after the new-connection cells (about 25,000 sockets left in
        # TIME_WAIT) every tt_client request of the cell failed in one run (errors 120000).
        if "client" in args.cells and "nginx" in servers:
            client = run_client(servers["nginx"], args.client_requests)
            log("client   %s" % (client.get("error") or "tether %d req/s, libcurl %d req/s" % (
                client["tether_rps"], client["curl_rps"])))
        for cell in (c for c in CELLS if c in args.cells and c in CELL_NAMES):
            for name in args.servers:
                srv = servers[name]
                if srv.proc.poll() is not None:
                    log("%s died (exit %s)" % (name, srv.proc.returncode))
                    continue
                r = measure(srv, cell, args.duration)
                results[(name, cell)] = r
                log("%-9s %-7s %9.0f req/s  cpu %s us/req  handshakes %s/%s  errors %s" % (
                    cell, name, r["rps"], fmt(r["cpu_us_per_req"]), r.get("full", "-"),
                    r.get("resumed", "-"), r["errors"]))
        if "idle" in args.cells and args.idle > 0:
            for name in args.servers:
                try:
                    srv = servers[name]
                    srv.stop()  # a fresh process: the load cells' freed heap would hide growth
                    srv.start()
                    idle[name] = idle_tls(srv, args.idle)
                    log("idle     %-7s %.0f bytes per connection" % (name, idle[name]["per_conn"]))
                except (OSError, RuntimeError, ssl.SSLError) as e:
                    idle[name] = {"error": str(e)}
                    log("idle     %-7s failed: %s" % (name, e))
                time.sleep(0.5)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    section = render(results, client, idle, info, args, started, time.time() - t_start, servers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "idle": idle, "client": client,
                       "results": [dict(server=k[0], cell=k[1], **v)
                                   for k, v in results.items()]}, f, indent=1)
    if args.no_docs:
        print(section)
    else:
        log("wrote %s" % P.write_docs(section, key="tls", title="HTTPS (TLS)"))


if __name__ == "__main__":
    main()
