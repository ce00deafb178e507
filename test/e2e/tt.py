"""Shared helpers for tether's end-to-end tests: start the real binary on a free loopback port,
talk to it with raw sockets, read the kernel's socket states. Standard library only."""
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TETHER = os.environ.get("TETHER_BIN", os.path.join(ROOT, "build", "tether"))
BUILD = os.environ.get("TETHER_BUILD", os.path.join(ROOT, "build"))


def certs():
    """The directory of the test certificates (scripts/mkcerts.sh): ca.pem, server.pem/key,
    server2, expired, self, wronghost. Made once under build/certs (the Makefile's `certs`
    target makes the same directory); safe when several tests ask at once."""
    d = os.path.join(ROOT, "build", "certs")
    if not os.path.exists(os.path.join(d, ".done")):
        subprocess.run(["sh", os.path.join(ROOT, "scripts", "mkcerts.sh"), d], check=True,
                       timeout=120)
    return d


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A loopback TCP port that is free right now, chosen OUTSIDE the kernel's ephemeral range:
    a port from that range can also be the local port of some unrelated client socket on this
    machine, which would show up in per-port socket counts (TIME_WAIT, CLOSE_WAIT) of a test."""
    lo, hi = _ephemeral_range()
    candidates = [p for p in range(10000, 30000) if not lo <= p <= hi] or list(range(1024, lo))
    for _ in range(200):
        port = random.choice(candidates)
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(family, socket.SOCK_STREAM) as s:  # fall back to any free port
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until something accepts on host:port (bounded)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("nothing listening on %s:%d after %ss" % (host, port, timeout))


class Tether:
    """`tether serve` on a free port; use as a context manager. Extra args go after serve."""

    def __init__(self, *args, port=None, host="127.0.0.1", env=None, stderr=None):
        self.port = port or free_port()
        self.host = host
        self.args = [TETHER, "serve", "--listen", "%s:%d" % (host, self.port)] + list(args)
        self.env = env
        self.stderr = stderr
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.stderr or subprocess.PIPE,
                                     env=self.env)
        try:
            wait_port(self.port, self.host, proc=self.proc)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop the server we started (by PID) and return its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def __exit__(self, *exc):
        self.stop()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def url(self, path="/"):
        return "http://%s:%d%s" % (self.host, self.port, path)

    def connect(self, timeout=5.0):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


NGINX_CONF = """
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 512; }}
http {{
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
%s
}}
"""


class Nginx:
    """nginx in the foreground, one worker, with our own http block: http is a format string
    where {d} is its temp prefix (logs, pid, temp paths) and {port} its free loopback port, plus
    **keys. Use as a context manager; files the config needs go in self.dir before __enter__."""

    def __init__(self, http, prefix="tt-nginx-", **keys):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)  # nginx workers run as nobody when started by root
        self.port = free_port()
        os.makedirs(os.path.join(self.dir, "tmp"))
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write((NGINX_CONF % http).format(d=self.dir, port=self.port, **keys))

    def __enter__(self):
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf"),
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)


def start_example(name):
    """Start build/examples/NAME on a free loopback port (cwd: the repo, for ./site).
    Returns (proc, port); end it with stop_example."""
    port = free_port()
    proc = subprocess.Popen([os.path.join(BUILD, "examples", name), "127.0.0.1:%d" % port],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_port(port, proc=proc)
    return proc, port


def stop_example(proc):
    """SIGTERM (graceful shutdown), wait, and return the exit status."""
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(15)
    proc.stderr.close()
    return rc


def recv_until_close(s, limit=1 << 24):
    """Read until the peer closes (or limit bytes). Returns the bytes."""
    out = bytearray()
    while len(out) < limit:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            break
        if not b:
            break
        out += b
    return bytes(out)


def read_response(s, buf=b"", head_only=False):
    """Read one HTTP/1.1 response (Content-Length or chunked or close-delimited) from socket s.
    Returns (status, headers dict lowercased -> list, body, rest-of-buffer)."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError("connection closed before a response head; got %r" % buf[:200])
        buf += b
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    if head_only or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", buf
    if "content-length" in headers:
        n = int(headers["content-length"][0])
        while len(buf) < n:
            b = s.recv(65536)
            if not b:
                raise EOFError("closed mid-body")
            buf += b
        return status, headers, buf[:n], buf[n:]
    if "chunked" in ",".join(headers.get("transfer-encoding", [])):
        body = b""
        while True:
            while b"\r\n" not in buf:
                buf += s.recv(65536)
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n\r\n" not in buf and not buf.startswith(b"\r\n"):
                    buf += s.recv(65536)
                if buf.startswith(b"\r\n"):
                    buf = buf[2:]
                else:
                    buf = buf.partition(b"\r\n\r\n")[2]
                return status, headers, body, buf
            while len(buf) < size + 2:
                buf += s.recv(65536)
            body += buf[:size]
            buf = buf[size + 2:]
    return status, headers, buf + recv_until_close(s), b""


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def tcp_states(port):
    """Kernel TCP sockets touching port, from /proc/net/tcp{,6}: {'server': {STATE: n}, 'client': {...}}.
    (Test-side cross-check only; tether conns itself uses netlink.)"""
    res = {"server": {}, "client": {}}
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            st = TCP_STATES.get(int(parts[3], 16), "?")
            if lport == port:
                res["server"][st] = res["server"].get(st, 0) + 1
            elif rport == port:
                res["client"][st] = res["client"].get(st, 0) + 1
    return res


def wait_for(pred, timeout=10.0, step=0.05):
    """Poll pred() until it is truthy or timeout passes; returns the last value."""
    deadline = time.time() + timeout
    v = pred()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = pred()
    return v



class ThreadedListener:
    """A python server on a free loopback port whose accept loop (self.accept_loop; it runs until
    self.stopping) runs in a thread: the subclass writes handle(sock), or its own accept_loop.
    Use as a context manager."""

    def __init__(self, backlog=64):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", free_port()))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        try:  # wake the blocked accept
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()

    def accept_loop(self):
        """The default loop: each accepted connection goes to self.handle(sock), which owns
        it; a subclass with another shape of server overrides accept_loop instead."""
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.stopping:
                c.close()
                return
            self.handle(c)


class TestCase(unittest.TestCase):
    maxDiff = None
