"""tether proxy: request and response bodies of 0 B, 1 B, 10 MB and 200 MB, Content-Length and
chunked, checked by SHA-256 at the far end, trailers both ways, and the proxy's memory bounded
whatever the body size (VmRSS after the 200 MB bodies within 64 MB of the baseline)."""
import hashlib
import http.client
import json
import os
import subprocess
import tempfile
import unittest

import proxy_peers as pp
import tt

MB = 1 << 20


def upload(p, n, chunked, path="/hash"):
    """POST n bytes of pp.pattern through the proxy, streamed; the backend's JSON answer."""
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=120)
    try:
        headers = {"Content-Type": "application/octet-stream"}
        if not chunked:
            headers["Content-Length"] = str(n)
        c.request("POST", path, body=pp.pattern(n), headers=headers, encode_chunked=chunked)
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise AssertionError("status %d: %r" % (r.status, body[:200]))
        return json.loads(body)
    finally:
        c.close()


def download(p, n, chunked):
    """GET n bytes through the proxy, hashed as they arrive; (sha256, length, headers, trailers)."""
    s = p.connect(timeout=120)
    try:
        s.sendall(b"GET /gen?n=%d%s HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n"
                  % (n, b"&chunked=1" if chunked else b""))
        f = s.makefile("rb")
        status = f.readline()
        assert b" 200 " in status, status
        headers = {}
        while True:
            line = f.readline().rstrip(b"\r\n")
            if not line:
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        h, got, trailers = hashlib.sha256(), 0, {}
        if "chunked" in headers.get("transfer-encoding", ""):
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    break
                left = size
                while left:
                    b = f.read(min(left, MB))
                    assert b, "cut short"
                    h.update(b)
                    left -= len(b)
                got += size
                f.readline()
            while True:
                line = f.readline().rstrip(b"\r\n")
                if not line:
                    break
                k, _, v = line.decode("latin-1").partition(":")
                trailers[k.strip().lower()] = v.strip()
        else:
            left = int(headers["content-length"])
            while left:
                b = f.read(min(left, MB))
                assert b, "cut short"
                h.update(b)
                got += len(b)
                left -= len(b)
        return h.hexdigest(), got, headers, trailers
    finally:
        s.close()


class ProxyBodies(tt.TestCase):
    def test_request_bodies_by_hash(self):
        with pp.backend() as b, pp.proxy([b]) as p:
            for n in (0, 1, 10 * MB):
                for chunked in (False, True):
                    with self.subTest(n=n, chunked=chunked):
                        d = upload(p, n, chunked)
                        self.assertEqual(d["len"], n)
                        self.assertEqual(d["sha256"], pp.pattern_sha256(n))

    def test_response_bodies_by_hash(self):
        with pp.backend() as b, pp.proxy([b]) as p:
            for n in (0, 1, 10 * MB):
                for chunked in (False, True):
                    with self.subTest(n=n, chunked=chunked):
                        sha, got, headers, trailers = download(p, n, chunked)
                        self.assertEqual((got, sha), (n, pp.pattern_sha256(n)))
                        if not chunked:  # the upstream's Content-Length is kept
                            self.assertEqual(headers.get("content-length"), str(n))
                        else:  # and its trailers forwarded
                            self.assertEqual(trailers.get("x-sha256"), sha)

    def test_200mb_both_ways_memory_bounded(self):
        n = 200 * MB
        with pp.backend() as b, pp.proxy([b], "--workers", "1") as p:
            upload(p, 1000, False)  # warm: the worker's client and pool exist
            base = p.rss()
            for chunked in (False, True):
                with self.subTest(direction="up", chunked=chunked):
                    d = upload(p, n, chunked)
                    self.assertEqual((d["len"], d["sha256"]), (n, pp.pattern_sha256(n)))
                with self.subTest(direction="down", chunked=chunked):
                    sha, got, _, _ = download(p, n, chunked)
                    self.assertEqual((got, sha), (n, pp.pattern_sha256(n)))
            grown = p.rss() - base
            self.assertLess(grown, 64 * MB, "proxy RSS grew by %d MB" % (grown // MB))

    def test_request_trailers_forwarded(self):
        with pp.backend() as b, pp.proxy([b]) as p:
            s = p.connect()
            s.sendall(b"POST /hash HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Trailer: X-Check\r\n\r\n5\r\nhello\r\n0\r\nX-Check: abc\r\n\r\n")
            st, h, body, _ = tt.read_response(s)
            s.close()
            self.assertEqual(st, 200)
            d = json.loads(body)
            self.assertEqual(d["len"], 5)
            self.assertTrue(d["chunked"])
            self.assertEqual(d["trailers"].get("x-check"), "abc")

    def test_curl_uploads_10mb_to_echo_upstream(self):
        with tempfile.TemporaryDirectory() as d, \
                pp.echo_backend("--max-body", "20m") as a, pp.proxy([a]) as p:
            path = os.path.join(d, "in.bin")
            with open(path, "wb") as f:
                for blk in pp.pattern(10 * MB):
                    f.write(blk)
            for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
                with self.subTest(extra=extra):
                    out = subprocess.run(["curl", "-sS", "--data-binary", "@" + path] + extra +
                                         [p.url("/")], capture_output=True, timeout=120)
                    self.assertEqual(out.returncode, 0, out.stderr)
                    self.assertEqual(hashlib.sha256(out.stdout).hexdigest(),
                                     pp.pattern_sha256(10 * MB))


if __name__ == "__main__":
    unittest.main()
