#!/usr/bin/env python3
"""Slowloris, the long version: N connections dribble a request head one byte per second
(the classic attack that defeats per-read timeouts) while a normal client keeps making
requests. tether's header timeout is an absolute deadline for the whole head, so every
dribbler must read "HTTP/1.1 408" and then EOF at about --header-timeout, however steadily it
sends; the normal client must be served throughout. Prints one JSON line; exit 1 on a problem.

    python3 test/soak/slowloris.py [--conns 1000] [--header-timeout 10] [--rounds 2]"""
import argparse
import json
import os
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import relkit  # noqa: E402

HEAD = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Dribble: " + b"d" * 4096


class Normal(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.stop, self.ok, self.errors = port, threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            try:
                if relkit.simple_get("127.0.0.1", self.port, timeout=5 * relkit.SLOW) == (200, relkit.HELLO):
                    self.ok += 1
                else:
                    self.errors.append("wrong answer")
            except Exception as e:
                self.errors.append(repr(e))
            time.sleep(0.05)


def one_round(port, conns, header_timeout):
    socks = []
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setblocking(False)
        socks.append(s)
    got = {s: b"" for s in socks}
    sent = {s: 0 for s in socks}
    done = {}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    t0 = time.time()
    next_tick = t0
    deadline = t0 + header_timeout * 3 + 20 * relkit.SLOW
    while len(done) < len(socks) and time.time() < deadline:
        if time.time() >= next_tick:  # one byte per second per open connection
            for s in socks:
                if s not in done and sent[s] < len(HEAD):
                    try:
                        s.send(HEAD[sent[s]:sent[s] + 1])
                        sent[s] += 1
                    except OSError:
                        pass
            next_tick += 1.0
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                b = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                b, done[s] = b"", "rst"
            if b:
                got[s] += b
                continue
            done.setdefault(s, "eof")
            sel.unregister(s)
            done[s] = (done[s], round(time.time() - t0, 1))
    sel.close()
    for s in socks:
        s.close()
    ok = [s for s in socks if s in done and done[s][0] == "eof" and got[s].startswith(b"HTTP/1.1 408")]
    closes = sorted(done[s][1] for s in ok)
    return {"conns": conns, "got_408_then_eof": len(ok), "still_open": len(socks) - len(done),
            "bytes_sent_max": max(sent.values()),
            "close_after_s": [closes[0], closes[len(closes) // 2], closes[-1]] if closes else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--header-timeout", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    relkit.raise_nofile(a.conns * 2 + 1000)
    rep = {"rounds": [], "problems": []}
    with relkit.Server("--echo", "--header-timeout", str(a.header_timeout), "--max-connections",
                       str(a.conns * 4)) as srv:
        normal = Normal(srv.port)
        normal.start()
        for _ in range(a.rounds):
            r = one_round(srv.port, a.conns, a.header_timeout)
            rep["rounds"].append(r)
            if r["got_408_then_eof"] != a.conns:
                rep["problems"].append("round: %d of %d got 408 then EOF" % (r["got_408_then_eof"], a.conns))
        normal.stop.set()
        normal.join(10)
        rep["normal_ok"], rep["normal_errors"] = normal.ok, normal.errors[:10]
        if normal.errors or not normal.ok:
            rep["problems"].append("normal client: %d ok, %d errors" % (normal.ok, len(normal.errors)))
        if not relkit.wait_for(lambda: relkit.close_wait_count(srv.port) == 0, 10):
            rep["problems"].append("CLOSE_WAIT left")
        if srv.stop() != 0:
            rep["problems"].append("exit status after SIGTERM: %s" % srv.proc.returncode)
    print(json.dumps(rep))
    sys.exit(1 if rep["problems"] else 0)


if __name__ == "__main__":
    main()
