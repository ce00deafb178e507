"""The streaming example (examples/stream.c): a chunked response of any size written under flow
control (tt_res_pending / tt_res_on_drain). curl gets every byte; a client that stops reading
does not make the server buffer the rest; a client that vanishes mid-stream costs nothing."""
import os
import socket
import subprocess
import time

import tt


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Stream(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.port = tt.start_example("stream")

    @classmethod
    def tearDownClass(cls):
        tt.stop_example(cls.proc)

    def url(self, n):
        return "http://127.0.0.1:%d/bytes/%d" % (self.port, n)

    def test_curl_gets_every_byte(self):
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{http_code}",
                            self.url(50_000_000)], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout, "50000000 200")

    def test_stalled_reader_is_not_buffered(self):
        base = rss_kib(self.proc.pid)
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        s.sendall(b"GET /bytes/200000000 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)  # not reading: without flow control all 200 MB would be queued
        grown = rss_kib(self.proc.pid) - base
        self.assertLess(grown, 16 << 10, "server RSS grew by %d KiB" % grown)
        # then read it all: the stream resumes from the drain callbacks
        total, tail = 0, b""
        while not tail.endswith(b"\r\n0\r\n\r\n"):
            b = s.recv(1 << 20)
            self.assertTrue(b, "the stream stopped after %d bytes" % total)
            total += len(b)
            tail = (tail + b)[-16:]
        s.close()
        self.assertGreater(total, 200_000_000)  # the body plus head and chunk framing
        self.assertLess(total, 200_000_000 + 64 * 1024)

    def test_vanishing_reader_costs_nothing(self):
        fds = lambda: len(os.listdir("/proc/%d/fd" % self.proc.pid))
        base = fds()
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            s.sendall(b"GET /bytes/1000000000 HTTP/1.1\r\nHost: x\r\n\r\n")
            got = 0
            while got < 1 << 20:
                got += len(s.recv(65536))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()  # RST mid-stream
        tt.wait_for(lambda: fds() == base)
        self.assertEqual(fds(), base)
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                            self.url(1000)], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout, "1000")


if __name__ == "__main__":
    import unittest
    unittest.main()
