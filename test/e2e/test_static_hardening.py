"""tether serve: static files against hostile trees and requests (issue #16) — a FIFO (as a
file or as a directory's index.html) is answered at once and the worker keeps serving; Range
positions of any length; out of descriptors is a 503 with Retry-After; directory redirects
stay on the site and never lose their Location."""
import os
import shutil
import socket
import sys
import tempfile
import time

import tt


def get(srv, path, extra="", s=None, timeout=5.0):
    own = s is None
    if own:
        s = srv.connect(timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, extra)).encode())
    r = tt.read_response(s)
    if own:
        s.close()
    return r[0], r[1], r[2]


class StaticHardening(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.root = os.path.join(cls.tmp, "root")
        os.makedirs(os.path.join(cls.root, "assets"))
        cls.data = bytes(range(256)) * 4
        with open(os.path.join(cls.root, "data.bin"), "wb") as f:
            f.write(cls.data)
        # two levels of 255 spaces: the Location ("%20" each) overflows the header store
        cls.longdir = os.path.join(cls.root, " " * 255, " " * 255)
        os.makedirs(cls.longdir)
        cls.srv = tt.Tether("--root", cls.root, "--workers", "1").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def test_range_positions_saturate(self):
        st, h, body = get(self.srv, "/data.bin", "Range: bytes=99999999999999999999-\r\n")
        self.assertEqual(st, 416)
        self.assertEqual(h["content-range"], ["bytes */1024"])
        st, h, body = get(self.srv, "/data.bin", "Range: bytes=18446744073709551617-\r\n")
        self.assertEqual(st, 416)
        st, h, body = get(self.srv, "/data.bin", "Range: bytes=10-99999999999999999999\r\n")
        self.assertEqual((st, body), (206, self.data[10:]))
        self.assertEqual(h["content-range"], ["bytes 10-1023/1024"])
        st, h, body = get(self.srv, "/data.bin", "Range: bytes=-99999999999999999999\r\n")
        self.assertEqual((st, body), (206, self.data))
        st, h, body = get(self.srv, "/data.bin", "Range: bytes=7-3\r\n")
        self.assertEqual((st, body), (200, self.data), "an invalid Range is ignored")

    def test_redirect_stays_on_the_site(self):
        for path, want in (("//assets", "/assets/"), ("/%2F%2Fassets", "/assets/"),
                           ("///assets", "/assets/"), ("/assets", "/assets/")):
            st, h, body = get(self.srv, path)
            self.assertEqual(st, 301, path)
            self.assertEqual(h["location"], [want], path)
            self.assertFalse(h["location"][0].startswith("//"))

    def test_long_redirect_never_lacks_location(self):
        path = "/" + "%20" * 255 + "/" + "%20" * 255
        st, h, body = get(self.srv, path)
        if st == 301:
            self.assertIn("location", h)
        else:
            self.assertIn(st, (414, 500))
        # the connection's framing held and the server still serves
        st, h, body = get(self.srv, "/data.bin")
        self.assertEqual(st, 200)


class Fifo(tt.TestCase):
    """A FIFO under the root: opened non-blocking and refused (only regular files are served);
    before, open() blocked the worker until a writer came."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.root = os.path.join(cls.tmp, "root")
        os.makedirs(os.path.join(cls.root, "fifodir"))
        os.mkfifo(os.path.join(cls.root, "pipe"))
        os.mkfifo(os.path.join(cls.root, "fifodir", "index.html"))
        cls.data = b"regular"
        with open(os.path.join(cls.root, "data.bin"), "wb") as f:
            f.write(cls.data)
        cls.srv = tt.Tether("--root", cls.root, "--workers", "1", "--drain-timeout", "1000").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)
        shutil.rmtree(cls.tmp)

    def test_fifo_is_not_served_and_does_not_hang(self):
        for path in ("/pipe", "/fifodir/"):
            st, h, body = get(self.srv, path, timeout=5.0)
            self.assertEqual(st, 404, path)
        # the one worker was not blocked: it still serves
        st, h, body = get(self.srv, "/data.bin")
        self.assertEqual((st, body), (200, self.data))

    def test_zz_sigterm_exits(self):
        # runs last in the class: whatever a FIFO did, SIGTERM ends the server
        self.assertEqual(self.srv.stop(timeout=10), 0)


class OutOfDescriptors(tt.TestCase):
    def test_emfile_is_503_with_retry_after(self):
        tmp = tempfile.mkdtemp()
        try:
            for i in range(4):
                with open(os.path.join(tmp, "f%d.txt" % i), "w") as f:
                    f.write("x")
            srv = tt.Tether("--root", tmp, "--workers", "1")
            limit = 64
            srv.args = [sys.executable, "-c",
                        "import os,resource,sys; resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d));"
                        " os.execv(sys.argv[1], sys.argv[1:])" % (limit, limit)] + srv.args
            with srv:
                # every connection is mid-head (not idle, so pressure does not close it, and
                # accepted at once despite TCP_DEFER_ACCEPT)
                a = srv.connect()
                a.sendall(b"GET /f1.txt HTTP/1.1\r\n")
                fill = []
                try:
                    for _ in range(limit + 16):  # bounded: more than the server can accept
                        s = srv.connect(timeout=2.0)
                        s.sendall(b"GET /f0.txt HTTP/1.1\r\n")
                        fill.append(s)
                    time.sleep(0.5)  # let the worker accept until it runs out
                    a.sendall(b"Host: x\r\n\r\n")
                    st, h, body = tt.read_response(a)[:3]
                    self.assertEqual(st, 503, "out of descriptors is not a 404")
                    self.assertEqual(h.get("retry-after"), ["1"])
                finally:
                    for s in fill:
                        s.close()
                    a.close()
        finally:
            shutil.rmtree(tmp)
