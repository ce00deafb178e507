"""Keep-alive load clients that account for every request they send (reliability tests).

Each request has a unique target /r/<client>/<n>. The outcome of every attempt is one of:
answered (a full 200 with the right body), not-accepted (connection refused, or the connection
closed / reset before any byte of a response), or partial (some response bytes, then the
connection died) — which is always a failure. Comparing the answered set with the server's
access log proves that no request the server accepted was lost."""
import errno
import re
import socket
import threading
import time

from relkit import HELLO, read_response

LOG_TARGET = re.compile(r'"[A-Z]+ (/r/\S+) HTTP/1\.[01]"')


def logged_targets(path):
    """Request targets /r/... found in an access log (Common Log Format)."""
    try:
        with open(path, errors="replace") as f:
            return set(LOG_TARGET.findall(f.read()))
    except OSError:
        return set()


class KeepAliveClient(threading.Thread):
    """Sequential keep-alive GETs; reconnects on close; retries when a connect is refused."""

    def __init__(self, cid, host, port, pause=0.002, timeout=10.0):
        super().__init__(daemon=True)
        self.cid, self.host, self.port, self.pause, self.timeout = cid, host, port, pause, timeout
        self.stop = threading.Event()
        self.answered = set()
        self.not_accepted = []  # targets sent on a connection that then closed with no response byte
        self.partial = []
        self.wrong = []
        self.refused = 0
        self.resets = 0
        self.connects = 0
        self.n = 0

    def run(self):
        s = None
        while not self.stop.is_set():
            if s is None:
                try:
                    s = socket.create_connection((self.host, self.port), timeout=self.timeout)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.connects += 1
                except ConnectionRefusedError:
                    self.refused += 1
                    time.sleep(0.01)
                    continue
                except OSError as e:
                    self.wrong.append("connect: %r" % e)
                    time.sleep(0.05)
                    continue
            self.n += 1
            target = "/r/%s/%d" % (self.cid, self.n)
            try:
                s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target.encode())
                st, h, body, rest = read_response(s)
            except EOFError as e:
                (self.not_accepted if e.args[0] == b"" else self.partial).append(target)
                s.close()
                s = None
                continue
            except (ConnectionResetError, BrokenPipeError):
                # reset before any response byte (read_response only raises this from recv
                # before it returned bytes for this response when buf is empty)
                self.resets += 1
                self.not_accepted.append(target)
                s.close()
                s = None
                continue
            except OSError as e:
                self.wrong.append("%s: %r" % (target, e))
                s.close()
                s = None
                continue
            if st != 200 or body != HELLO or rest:
                self.wrong.append("%s: %s %r %r" % (target, st, body[:60], rest[:60]))
            else:
                self.answered.add(target)
            if h.get("connection", "").lower() == "close":
                s.close()
                s = None
            if self.pause:
                time.sleep(self.pause)
        if s:
            s.close()


def merge(clients):
    out = {"answered": set(), "not_accepted": [], "partial": [], "wrong": [], "refused": 0, "resets": 0,
           "connects": 0}
    for c in clients:
        out["answered"] |= c.answered
        out["not_accepted"] += c.not_accepted
        out["partial"] += c.partial
        out["wrong"] += c.wrong
        out["refused"] += c.refused
        out["resets"] += c.resets
        out["connects"] += c.connects
    return out


def connect_refused(host, port):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return False
    except OSError as e:
        return e.errno == errno.ECONNREFUSED
