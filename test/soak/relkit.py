"""Reliability test kit shared by test/e2e/test_rel_*.py (fast versions) and test/soak/ (long
versions): start `tether serve` with its output in files (never a pipe that can fill), read its
fd count, RSS and CPU time from /proc, small raw-socket HTTP helpers, and network namespaces
joined by a veth pair that are always removed. Standard library only."""
import os
import atexit
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# free_port (outside the ephemeral range) and wait_for are shared with the end-to-end tests.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "e2e"))
from tt import free_port, wait_for  # noqa: E402,F401

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TETHER = os.environ.get("TETHER_BIN", os.path.join(ROOT, "build", "tether"))
BUILD = os.environ.get("TETHER_BUILD", os.path.join(ROOT, "build"))
# Sanitizer builds are slower and ASan's allocator keeps freed memory in quarantine.
SANITIZED = "san-" in os.path.basename(BUILD.rstrip("/")) or bool(os.environ.get("TT_SANITIZED"))
SLOW = 3.0 if SANITIZED else 1.0
HELLO = b"Hello, World!"


def raise_nofile(n=65536):
    """Raise this process's soft RLIMIT_NOFILE (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def read_text(path):
    with open(path) as f:
        return f.read()


def mkdtemp(prefix="tt-rel-"):
    """A temporary directory removed when this process exits."""
    d = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, d, True)
    return d


class Server:
    """`tether serve` (or any argv) with stdout/stderr in files; kill only our PID.
    nofile: RLIMIT_NOFILE for the child only. netns: run inside `ip netns exec NS`."""

    def __init__(self, *args, port=None, host="127.0.0.1", listen=True, nofile=None, netns=None,
                 tmpdir=None):
        self.host = host
        self.port = port or (free_port(host=host) if netns is None else 8080)
        self.tmp = tmpdir or mkdtemp()
        argv = [TETHER, "serve"]
        if listen:
            argv += ["--listen", "%s:%d" % (host, self.port)]
        argv += list(args)
        if netns:
            argv = ["ip", "netns", "exec", netns] + argv
        self.argv = argv
        self.nofile = nofile
        self.netns = netns
        self.proc = None
        self.out = os.path.join(self.tmp, "serve-%d.out" % self.port)

    def _preexec(self):
        if self.nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def start(self, wait=True):
        f = open(self.out, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=self._preexec if self.nofile else None)
        f.close()
        if wait:
            self.wait_listening()
        return self

    def wait_listening(self, timeout=15.0):
        deadline = time.time() + timeout * SLOW
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited %s: %s" % (self.proc.returncode, self.output()[-2000:]))
            if self.netns is None:
                try:
                    with socket.create_connection((self.host, self.port), timeout=0.5):
                        return
                except OSError:
                    pass
            elif self.listening_sockets() > 0:
                return
            time.sleep(0.02)
        raise RuntimeError("server not listening after %ss: %s" % (timeout, self.output()[-2000:]))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def output(self):
        try:
            with open(self.out, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill_sig(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Stop our server by PID; returns its exit status (killed after timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    # ---- /proc views of the server process ----
    def fds(self):
        """Open fd count of the server (None if gone)."""
        try:
            return len(os.listdir("/proc/%d/fd" % self.pid))
        except OSError:
            return None

    def socket_fds(self):
        n = 0
        try:
            for fd in os.listdir("/proc/%d/fd" % self.pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (self.pid, fd)).startswith("socket:"):
                        n += 1
                except OSError:
                    pass
        except OSError:
            return None
        return n

    def listening_sockets(self):
        """LISTEN sockets owned by the server (via its own /proc/PID/net/tcp, so netns-aware)."""
        inodes = set()
        try:
            for fd in os.listdir("/proc/%d/fd" % self.pid):
                try:
                    l = os.readlink("/proc/%d/fd/%s" % (self.pid, fd))
                except OSError:
                    continue
                if l.startswith("socket:["):
                    inodes.add(l[8:-1])
            n = 0
            for f in ("net/tcp", "net/tcp6"):
                for line in read_text("/proc/%d/%s" % (self.pid, f)).splitlines()[1:]:
                    p = line.split()
                    if p[3] == "0A" and p[9] in inodes:
                        n += 1
            return n
        except OSError:
            return 0

    def rss_kb(self):
        try:
            for line in read_text("/proc/%d/status" % self.pid).splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None

    def cpu_seconds(self):
        """utime + stime of the whole process (all threads), seconds."""
        with open("/proc/%d/stat" % self.pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- raw HTTP helpers ----

def read_response(s, buf=b""):
    """One Content-Length-framed (or close-delimited) response from s.
    Returns (status, headers{lower: value}, body, rest). Raises EOFError with the bytes seen."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise EOFError(buf)
        buf += b
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    h = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        h[k.strip().lower()] = v.strip()
    if "content-length" in h:
        n = int(h["content-length"])
        while len(buf) < n:
            b = s.recv(65536)
            if not b:
                raise EOFError(head + b"\r\n\r\n" + buf)
            buf += b
        return status, h, buf[:n], buf[n:]
    if "chunked" in h.get("transfer-encoding", "").lower():
        body = b""
        while True:
            while b"\r\n" not in buf:
                b = s.recv(65536)
                if not b:
                    raise EOFError(buf)
                buf += b
            line, _, buf = buf.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            while len(buf) < size + 2:
                b = s.recv(65536)
                if not b:
                    raise EOFError(buf)
                buf += b
            if size == 0:
                # no trailers expected from --echo
                return status, h, body, buf[2:]
            body += buf[:size]
            buf = buf[size + 2:]
    while True:
        b = s.recv(65536)
        if not b:
            return status, h, buf, b""
        buf += b


def get_request(path="/", host="t", close=False, extra=b""):
    return (b"GET %s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n" %
            (path.encode(), host.encode(), b"Connection: close\r\n" if close else b"", extra))


def post_request(body, path="/echo", host="t", close=False):
    return (b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n" %
            (path.encode(), host.encode(), len(body), b"Connection: close\r\n" if close else b"") + body)


def simple_get(host, port, path="/", timeout=5.0):
    """One GET on a fresh connection with Connection: close: (status, body)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(get_request(path, close=True))
        st, _, body, _ = read_response(s)
        return st, body


def read_until_close(s, limit=1 << 20):
    out = bytearray()
    while len(out) < limit:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return bytes(out), "rst"
        if not b:
            return bytes(out), "eof"
        out += b
    return bytes(out), "limit"


def server_conns(port):
    """Server-side sockets on local port that still hold an fd-like state (not LISTEN, not
    TIME_WAIT), in this netns."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = read_text(f).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if int(p[1].split(":")[1], 16) == port and p[3] not in ("0A", "06"):
                n += 1
    return n


def close_wait_count(port):
    """Server-side CLOSE_WAIT sockets on local port (this netns)."""
    n = 0
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = read_text(f).splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            if int(p[1].split(":")[1], 16) == port and p[3] == "08":
                n += 1
    return n


# ---- network namespaces ----

def sh(*argv, check=True):
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=30)


class NetnsPair:
    """Two namespaces (server, client) joined by a veth pair, 10.231.X.0/30, X from our PID.
    Everything is removed in close(), also after a failure (use as a context manager)."""

    def __init__(self):
        tag = "%d" % (os.getpid() % 100000)
        x = os.getpid() % 250 + 1
        self.ns_s, self.ns_c = "ttrel-s%s" % tag, "ttrel-c%s" % tag
        self.dev_s, self.dev_c = "ttS%s" % tag, "ttC%s" % tag
        self.ip_s, self.ip_c = "10.231.%d.1" % x, "10.231.%d.2" % x

    def __enter__(self):
        try:
            sh("ip", "netns", "add", self.ns_s)
            sh("ip", "netns", "add", self.ns_c)
            sh("ip", "link", "add", self.dev_s, "netns", self.ns_s, "type", "veth", "peer", "name", self.dev_c,
               "netns", self.ns_c)
            for ns, dev, ip in ((self.ns_s, self.dev_s, self.ip_s), (self.ns_c, self.dev_c, self.ip_c)):
                sh("ip", "-n", ns, "addr", "add", ip + "/30", "dev", dev)
                sh("ip", "-n", ns, "link", "set", "lo", "up")
                sh("ip", "-n", ns, "link", "set", dev, "up")
        except Exception:
            self.close()
            raise
        return self

    def cut(self):
        """Cut the client's link: its veth goes down (the server side loses carrier)."""
        sh("ip", "-n", self.ns_c, "link", "set", self.dev_c, "down")

    def close(self):
        for ns in (self.ns_c, self.ns_s):
            sh("ip", "netns", "del", ns, check=False)
        # deleting a namespace destroys its veth end and with it the peer

    def __exit__(self, *exc):
        self.close()

    def exec_argv(self, ns, argv):
        return ["ip", "netns", "exec", ns] + list(argv)
