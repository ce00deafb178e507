#!/usr/bin/env python3
"""Chaos load against `tether serve --echo`: mixed hostile and well-behaved clients.

    python3 test/soak/chaos.py [--seconds N] [--procs P] [--threads T] [--wrk]   # own server
    python3 test/soak/chaos.py --worker --port P --seconds N --threads T --seed S   # (internal)

Behaviours: keep-alive sequences, pipelining bursts, aborts mid-request and mid-response,
half-close, RST (SO_LINGER 0), oversized heads, URIs and bodies, random bytes, slow readers.
Every well-formed request must be answered correctly (GET: "Hello, World!", POST: its body
echoed); oversized input must get its 4xx and a close. After the run the server's fd count
returns to its baseline, RSS to at most 5% above its baseline (not checked under sanitizers:
ASan keeps freed memory in quarantine), and no CLOSE_WAIT is left. Prints one JSON line."""
import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relkit  # noqa: E402

HOST = "127.0.0.1"
MAX_BODY = 65536  # the server runs with --max-body 65536
SERVER_ARGS = ["--echo", "--header-timeout", "3", "--body-timeout", "3", "--send-timeout", "5",
               "--keepalive-timeout", "5", "--max-body", str(MAX_BODY)]


def connect(port):
    s = socket.create_connection((HOST, port), timeout=15 * relkit.SLOW)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def well_formed(rng):
    """A random well-formed request and the body its answer must carry."""
    if rng.random() < 0.5:
        return relkit.get_request("/k%d" % rng.randrange(1000)), relkit.HELLO
    body = rng.randbytes(rng.randrange(1, 4000))
    return relkit.post_request(body), body


class Worker:
    def __init__(self, port, rng):
        self.port, self.rng = port, rng
        self.counts = {}
        self.failures = []
        self.answered = 0

    def expect(self, s, want, what, buf=b""):
        st, h, body, rest = relkit.read_response(s, buf)
        if st != 200 or body != want:
            self.failures.append("%s: status %s body %r (want %r)" % (what, st, body[:40], want[:40]))
        else:
            self.answered += 1
        return rest

    def expect_error(self, s, statuses, what):
        data, how = relkit.read_until_close(s, 1 << 16)
        try:
            st = int(data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            st = None
        if st not in statuses:
            self.failures.append("%s: got %r (%s), want one of %s" % (what, data[:60], how, statuses))

    # -- behaviours --
    def keepalive(self):
        with connect(self.port) as s:
            for _ in range(self.rng.randrange(1, 20)):
                req, want = well_formed(self.rng)
                s.sendall(req)
                rest = self.expect(s, want, "keepalive")
                if rest:
                    self.failures.append("keepalive: extra bytes %r" % rest[:40])

    def pipeline(self):
        reqs = [well_formed(self.rng) for _ in range(self.rng.randrange(2, 33))]
        with connect(self.port) as s:
            s.sendall(b"".join(r for r, _ in reqs))
            buf = b""
            for _, want in reqs:
                buf = self.expect(s, want, "pipeline", buf)

    def abort_mid_request(self):
        s = connect(self.port)
        if self.rng.random() < 0.5:
            s.sendall(b"GET /abort HTTP/1.1\r\nHost: t\r\nX-A: 1")
        else:
            s.sendall(b"POST /abort HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1000)
        time.sleep(self.rng.random() * 0.05)
        rst_close(s) if self.rng.random() < 0.5 else s.close()

    def abort_mid_response(self):
        s = connect(self.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        body = b"r" * 60000
        s.sendall(relkit.post_request(body) * 4)
        s.recv(100)
        rst_close(s) if self.rng.random() < 0.5 else s.close()

    def half_close(self):
        reqs = [well_formed(self.rng) for _ in range(self.rng.randrange(1, 4))]
        with connect(self.port) as s:
            s.sendall(b"".join(r for r, _ in reqs))
            s.shutdown(socket.SHUT_WR)
            buf = b""
            for _, want in reqs:
                buf = self.expect(s, want, "half_close", buf)
            data, how = relkit.read_until_close(s)
            if buf + data or how != "eof":
                self.failures.append("half_close: after the responses %r then %s" % ((buf + data)[:40], how))

    def rst(self):
        s = connect(self.port)
        s.sendall(self.rng.choice(well_formed(self.rng)[:1]))
        rst_close(s)

    def oversized_head(self):
        with connect(self.port) as s:
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.expect_error(s, (431, 400), "oversized_head")

    def oversized_uri(self):
        with connect(self.port) as s:
            try:
                s.sendall(b"GET /" + b"u" * 10000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.expect_error(s, (414, 431, 400), "oversized_uri")

    def oversized_body(self):
        with connect(self.port) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY * 4) + b"b" * 1000)
            self.expect_error(s, (413,), "oversized_body")

    def random_bytes(self):
        with connect(self.port) as s:
            try:
                s.sendall(self.rng.randbytes(self.rng.randrange(1, 3000)))
            except (BrokenPipeError, ConnectionResetError):
                pass
            data, how = relkit.read_until_close(s, 1 << 16)  # must end (error reply or timeout)
            if data and not data.startswith(b"HTTP/1.1 4"):
                self.failures.append("random_bytes: answered %r" % data[:60])

    def slow_reader(self):
        bodies = [self.rng.randbytes(32768) for _ in range(8)]
        with connect(self.port) as s:
            s.sendall(b"".join(relkit.post_request(b) for b in bodies))
            data = b""
            total = sum(len(b) for b in bodies) + 8 * 200
            while len(data) < total:
                time.sleep(0.002)
                b = s.recv(4096)
                if not b:
                    break
                data += b
                if data.count(b"HTTP/1.1 ") >= 8 and data.endswith(bodies[-1]):
                    break

            class Buf:
                def __init__(self, d):
                    self.d = d

                def recv(self, n):
                    r, self.d = self.d[:n], self.d[n:]
                    if not r:
                        return s.recv(n)
                    return r
            fake = Buf(data)
            buf = b""
            for b in bodies:
                buf = self.expect(fake, b, "slow_reader", buf)

    BEHAVIOURS = [("keepalive", 6), ("pipeline", 4), ("abort_mid_request", 2), ("abort_mid_response", 2),
                  ("half_close", 2), ("rst", 2), ("oversized_head", 1), ("oversized_uri", 1),
                  ("oversized_body", 1), ("random_bytes", 1), ("slow_reader", 1)]

    def run(self, seconds):
        names = [n for n, w in self.BEHAVIOURS for _ in range(w)]
        deadline = time.time() + seconds
        while time.time() < deadline:
            name = self.rng.choice(names)
            self.counts[name] = self.counts.get(name, 0) + 1
            try:
                getattr(self, name)()
            except Exception as e:
                if name in ("keepalive", "pipeline", "half_close", "slow_reader", "oversized_head",
                            "oversized_uri", "oversized_body"):
                    self.failures.append("%s: %r" % (name, e))
                # hostile behaviours may see resets: that is their point


def worker_main(a):
    relkit.raise_nofile()
    workers = [Worker(a.port, random.Random(a.seed * 1000 + i)) for i in range(a.threads)]
    threads = [threading.Thread(target=w.run, args=(a.seconds,), daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(a.seconds + 120)
    counts = {}
    for w in workers:
        for k, v in w.counts.items():
            counts[k] = counts.get(k, 0) + v
    print(json.dumps({"answered": sum(w.answered for w in workers), "counts": counts,
                      "failures": [f for w in workers for f in w.failures][:50],
                      "nfailures": sum(len(w.failures) for w in workers),
                      "hung": sum(t.is_alive() for t in threads)}))


def drive(port, seconds, procs, threads, seed=1):
    """Run procs worker processes against port for seconds; aggregate their JSON results."""
    ps = [subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", "--port", str(port),
                            "--seconds", str(seconds), "--threads", str(threads), "--seed", str(seed * 100 + i)],
                           stdout=subprocess.PIPE, text=True) for i in range(procs)]
    total = {"answered": 0, "counts": {}, "failures": [], "nfailures": 0, "hung": 0}
    for p in ps:
        try:
            out, _ = p.communicate(timeout=seconds + 180)
            r = json.loads(out.strip().splitlines()[-1])
        except Exception as e:
            p.kill()
            p.wait()
            r = {"answered": 0, "counts": {}, "failures": ["worker: %r" % e], "nfailures": 1, "hung": 0}
        total["answered"] += r["answered"]
        total["nfailures"] += r["nfailures"]
        total["hung"] += r["hung"]
        total["failures"] += r["failures"]
        for k, v in r["counts"].items():
            total["counts"][k] = total["counts"].get(k, 0) + v
    return total


def settle(srv, base_fds, timeout):
    """Wait (bounded) until the server holds only its baseline fds and no CLOSE_WAIT."""
    return relkit.wait_for(lambda: srv.fds() == base_fds and relkit.close_wait_count(srv.port) == 0,
                           timeout, 0.2)


def run_wrk(port, seconds):
    """Background keep-alive load (wrk, 1 thread, 32 connections) so the server has a core busy."""
    return subprocess.Popen(["wrk", "-t1", "-c32", "-d%ds" % max(1, int(seconds)), "http://%s:%d/" % (HOST, port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(p, seconds):
    """(requests, problems) from wrk's summary: any socket error or non-2xx answer is a problem."""
    try:
        out, _ = p.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return 0, ["wrk did not finish"]
    problems = [line.strip() for line in out.splitlines() if "Socket errors" in line or "Non-2xx" in line]
    m = [line for line in out.splitlines() if "requests in" in line]
    n = int(m[0].split()[0]) if m else 0
    if not m:
        problems.append("wrk: " + out[-300:])
    return n, problems


def soak(seconds, procs, threads, warmup=5, wrk=False):
    """Start a server, warm it up, take the baseline, run the chaos (plus wrk's keep-alive load
    when wrk), check it. Returns a report."""
    relkit.raise_nofile()
    rep = {"seconds": seconds, "procs": procs, "threads": threads, "problems": []}
    with relkit.Server(*SERVER_ARGS) as srv:
        w = drive(srv.port, warmup, procs, threads, seed=7)
        # let the warm-up's connections finish (bounded by the server's 5 s timeouts)
        relkit.wait_for(lambda: relkit.server_conns(srv.port) == 0, 20 * relkit.SLOW, 0.2)
        time.sleep(0.5)
        base_fds, base_rss = srv.fds(), srv.rss_kb()
        t0, cpu0 = time.time(), srv.cpu_seconds()
        wp = run_wrk(srv.port, seconds) if wrk else None
        r = drive(srv.port, seconds, procs, threads)
        if wp is not None:
            rep["wrk_requests"], wprob = wrk_result(wp, seconds)
            rep["problems"] += ["wrk: " + x for x in wprob]
        rep["server_cpu_share"] = round((srv.cpu_seconds() - cpu0) / (time.time() - t0), 3)
        settled = settle(srv, base_fds, 30 * relkit.SLOW)
        time.sleep(1)
        rep.update(answered=r["answered"], counts=r["counts"], failures=r["failures"] + w["failures"],
                   base_fds=base_fds, fds=srv.fds(), base_rss_kb=base_rss, rss_kb=srv.rss_kb(),
                   close_wait=relkit.close_wait_count(srv.port), alive=srv.alive())
        if not srv.alive():
            out = srv.output()
            i = max(out.find("ERROR: AddressSanitizer"), out.find("runtime error"), 0)
            rep["problems"].append("server died (%s): %s" % (srv.proc.returncode, out[i:i + 3000]))
        if r["nfailures"] or w["nfailures"]:
            rep["problems"].append("%d failed client checks" % (r["nfailures"] + w["nfailures"]))
        if r["hung"]:
            rep["problems"].append("%d client threads hung" % r["hung"])
        if not settled:
            rep["problems"].append("fds %s (baseline %s), CLOSE_WAIT %s after the run" %
                                   (srv.fds(), base_fds, relkit.close_wait_count(srv.port)))
        if not relkit.SANITIZED and base_rss and rep["rss_kb"] and rep["rss_kb"] > 1.05 * base_rss:
            # growth is what a leak looks like; shrinking below the warm baseline is not a leak
            rep["problems"].append("RSS %s kB vs baseline %s kB (more than 5%% above)" % (rep["rss_kb"], base_rss))
        try:
            if relkit.simple_get(HOST, srv.port) != (200, relkit.HELLO):
                rep["problems"].append("not serving after the run")
        except OSError as e:
            rep["problems"].append("not serving after the run: %r" % e)
        rc = srv.stop()
        if rc != 0:
            rep["problems"].append("exit status %s after SIGTERM" % rc)
    return rep


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", action="store_true")
    ap.add_argument("--port", type=int)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")))
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wrk", action="store_true", help="add wrk keep-alive load (1 thread, 32 connections)")
    a = ap.parse_args()
    if a.worker:
        worker_main(a)
        return
    rep = soak(a.seconds, a.procs, a.threads, wrk=a.wrk)
    print(json.dumps(rep))
    sys.exit(1 if rep["problems"] else 0)


if __name__ == "__main__":
    main()
