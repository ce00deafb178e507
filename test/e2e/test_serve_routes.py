"""tether serve: the static files are an ordinary "/" route beside the application's routes
(--status mounts /_tether/); both are answered in order on one pipelined keep-alive connection,
large files byte-exact, and each request gets its access-log line."""
import json
import os
import shutil
import tempfile
import unittest

import tt


class RoutesTest(tt.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tt-routes-")
        with open(os.path.join(self.root, "a.txt"), "w") as f:
            f.write("file a\n")
        self.big = os.urandom(200 * 1000 + 3)  # over the 16 KiB copy limit: sendfile
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(self.big)
        fd, self.log = tempfile.mkstemp(prefix="tt-routes-log-")
        os.close(fd)

    def tearDown(self):
        shutil.rmtree(self.root)
        os.unlink(self.log)

    def log_lines(self, n):
        """The access log once it has n lines, else None."""
        with open(self.log) as f:
            text = f.read()
        return text if text.count("\n") >= n else None

    def test_static_and_status_routes_pipelined(self):
        with tt.Tether("--root", self.root, "--status", "--access-log", self.log) as srv:
            s = srv.connect()
            reqs = [b"GET /a.txt", b"GET /_tether/status", b"GET /missing", b"POST /a.txt",
                    b"GET /big.bin", b"HEAD /a.txt", b"GET /_tether/nope"]
            s.sendall(b"".join(r + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
                               for r in reqs))
            buf = b""
            got = []
            for r in reqs:
                st, hd, body, buf = tt.read_response(s, buf, head_only=r.startswith(b"HEAD"))
                got.append((st, hd, body))
            s.close()
            self.assertEqual([g[0] for g in got], [200, 200, 404, 405, 200, 200, 404])
            self.assertEqual(got[0][2], b"file a\n")
            self.assertIn("etag", got[0][1])
            self.assertIn("requests", json.loads(got[1][2]))  # the insight route, not a file
            self.assertEqual(got[3][1]["allow"], ["GET, HEAD"])
            self.assertEqual(got[4][2], self.big)
            self.assertEqual(got[5][1]["content-length"], ["7"])
            lines = tt.wait_for(lambda: self.log_lines(len(reqs)), timeout=5)
        self.assertEqual(lines.count("\n"), len(reqs), lines)
        for r, code in zip(reqs, (200, 200, 404, 405, 200, 200, 404)):
            self.assertIn('"%s HTTP/1.1" %d ' % (r.decode(), code), lines)


if __name__ == "__main__":
    unittest.main()
