"""tether serve: closing right — bad input, timeouts, lingering close, CLOSE_WAIT, TIME_WAIT,
RST mid-response, graceful shutdown."""
import os
import signal
import socket
import struct
import subprocess
import tempfile
import time

import tt


def rst_close(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


class _Replay:
    """A socket-like object that replays bytes already read (for tt.read_response)."""

    def __init__(self, data):
        self.data = data

    def recv(self, n):
        b, self.data = self.data[:n], self.data[n:]
        return b


def socket_of(data):
    return _Replay(data)


class BadInput(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = tt.Tether("--echo", "--workers", "1", "--max-body", "1k").__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def exchange(self, raw):
        s = self.srv.connect()
        s.sendall(raw)
        st, h, body, rest = tt.read_response(s)
        tail = tt.recv_until_close(s)  # the server closes cleanly after the error
        s.close()
        return st, h, tail

    def check(self, raw, status):
        st, h, tail = self.exchange(raw)
        self.assertEqual(st, status)
        self.assertEqual(h.get("connection"), ["close"])
        self.assertEqual(tail, b"")
        # and the server keeps serving
        s = self.srv.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(tt.read_response(s)[2], b"Hello, World!")
        s.close()

    def test_400_bad_request_line(self):
        self.check(b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400)

    def test_400_missing_host(self):
        self.check(b"GET / HTTP/1.1\r\n\r\n", 400)

    def test_414_uri_too_long(self):
        self.check(b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)

    def test_431_header_too_large(self):
        self.check(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 33000 + b"\r\n\r\n", 431)

    def test_413_body_too_large_with_expect(self):
        self.check(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n"
                   b"Expect: 100-continue\r\n\r\n", 413)

    def test_501_unknown_transfer_coding(self):
        self.check(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501)

    def test_505_version(self):
        self.check(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505)

    def test_lingering_close_delivers_error_response(self):
        # A refused upload keeps coming after our 413: without a lingering close the kernel would
        # answer the unread bytes with RST and the client would lose the response.
        s = self.srv.connect()
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n")
        sent = 0
        s.settimeout(5)
        try:
            while sent < 4 << 20:
                sent += s.send(b"z" * 65536)
        except OSError:
            pass
        st, h, body, rest = tt.read_response(s)
        self.assertEqual(st, 413)
        self.assertEqual(h.get("connection"), ["close"])
        s.close()


class Timeouts(tt.TestCase):
    def test_slowloris_header_timeout_408(self):
        with tt.Tether("--echo", "--workers", "1", "--header-timeout", "1") as srv:
            s = srv.connect()
            s.settimeout(10)
            t0 = time.time()
            got = b""
            for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
                try:
                    s.sendall(part)
                except OSError:
                    break
                time.sleep(0.4)  # each byte arrives in time; the whole head does not
            got = tt.recv_until_close(s)
            self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)
            self.assertIn(b"Connection: close", got)
            self.assertLess(time.time() - t0, 8)
            s.close()

    def test_body_timeout_closes(self):
        with tt.Tether("--echo", "--workers", "1", "--body-timeout", "1") as srv:
            s = srv.connect()
            s.settimeout(10)
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
            t0 = time.time()
            got = tt.recv_until_close(s)  # 408 then closed, as for a slow head
            self.assertTrue(got.startswith(b"HTTP/1.1 408 "), got)
            self.assertLess(time.time() - t0, 8)
            s.close()

    def test_send_timeout_peer_not_reading(self):
        root = tempfile.mkdtemp()
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(b"x" * (32 << 20))
        with tt.Tether("--root", root, "--workers", "1", "--send-timeout", "1") as srv:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            # we never read: the server must give up after ~1 s without progress, not hold on
            gone = tt.wait_for(lambda: tt.tcp_states(srv.port)["server"].get("ESTABLISHED", 0) == 0,
                               timeout=10)
            self.assertTrue(gone, tt.tcp_states(srv.port))
            s.close()


class Closing(tt.TestCase):
    def read_to_eof(self, s):
        """Read until the server's FIN: every byte, no RST, within the socket timeout (1 s, half
        the old client-first wait)."""
        s.settimeout(1.0)
        out = bytearray()
        while True:
            b = s.recv(65536)  # a timeout or a reset fails the test
            if not b:
                return bytes(out)
            out += b

    def test_server_closes_first_after_connection_close(self):
        # RFC 9112 §9.6: after a "Connection: close" response the server initiates the close.
        with tt.Tether("--echo", "--workers", "1") as srv:
            for req in (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                        b"Connection: close\r\n\r\nabc"):
                s = srv.connect()
                s.sendall(req)
                got = self.read_to_eof(s)
                s.close()
                st, h, body, rest = tt.read_response(socket_of(got))
                self.assertEqual(h.get("connection"), ["close"])
                self.assertIn(body, (b"Hello, World!", b"abc"))
                self.assertEqual(rest, b"")

    def test_server_closes_first_when_it_decides(self):
        # max requests: the server decided; the client keeps reading until EOF.
        with tt.Tether("--echo", "--workers", "1", "--keepalive-requests", "2") as srv:
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            got = self.read_to_eof(s)
            s.close()
            self.assertEqual(got.count(b"Hello, World!"), 2)
            self.assertEqual(got.count(b"Connection: close"), 1)

    def test_close_wait_opt_in_leaves_no_server_time_wait(self):
        with tt.Tether("--echo", "--workers", "1", "--close-wait", "2") as srv:
            for _ in range(50):
                s = srv.connect()
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                st, h, body, rest = tt.read_response(s)
                self.assertEqual(h.get("connection"), ["close"])
                s.close()  # the client closes first, as the server waited for
            states = tt.wait_for(lambda: (lambda st: st if st["client"].get("TIME_WAIT", 0) >= 50
                                          else None)(tt.tcp_states(srv.port)), timeout=5)
            states = states or tt.tcp_states(srv.port)
            self.assertEqual(states["server"].get("TIME_WAIT", 0), 0, states)
            self.assertGreaterEqual(states["client"].get("TIME_WAIT", 0), 50, states)

    def test_no_close_wait_after_1000_clients_vanish(self):
        with tt.Tether("--echo", "--workers", "2") as srv:
            socks = []
            for i in range(1000):
                s = srv.connect()
                if i % 2:
                    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # busy then idle
                else:
                    s.sendall(b"GET / HTTP/1.1\r\nHo")  # half a head
                socks.append(s)
            time.sleep(0.3)
            for s in socks:
                s.close()
            left = tt.wait_for(lambda: tt.tcp_states(srv.port)["server"].get("CLOSE_WAIT", 0) == 0,
                               timeout=10)
            self.assertTrue(left, tt.tcp_states(srv.port))
            st = tt.tcp_states(srv.port)["server"]
            self.assertEqual(st.get("ESTABLISHED", 0), 0, st)
            s = srv.connect()
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(tt.read_response(s)[0], 200)
            s.close()

    def test_rst_mid_response(self):
        root = tempfile.mkdtemp()
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(os.urandom(1 << 20) * 16)
        with tt.Tether("--root", root, "--workers", "1") as srv:
            for _ in range(5):
                s = srv.connect()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertTrue(s.recv(1000).startswith(b"HTTP/1.1 200"))
                rst_close(s)
            ok = tt.wait_for(lambda: not {"CLOSE_WAIT", "ESTABLISHED"} &
                             set(tt.tcp_states(srv.port)["server"]), timeout=10)
            self.assertTrue(ok, tt.tcp_states(srv.port))
            s = srv.connect()
            s.sendall(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            st, h, body, rest = tt.read_response(s, head_only=True)
            self.assertEqual((st, h["content-length"]), (200, [str(16 << 20)]))
            s.close()
            self.assertIsNone(srv.proc.poll())

    def test_graceful_shutdown_under_load(self):
        with tt.Tether("--echo", "--workers", "2") as srv:
            idle = srv.connect()
            idle.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            tt.read_response(idle)
            busy = srv.connect()
            busy.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
            wrk = subprocess.Popen(["wrk", "-t1", "-c10", "-d2", srv.url("/")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            time.sleep(0.5)
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(tt.recv_until_close(idle), b"")  # idle: closed at once
            busy.sendall(b"world")  # in flight: finishes, with Connection: close
            st, h, body, rest = tt.read_response(busy)
            self.assertEqual((st, body), (200, b"helloworld"))
            # With two workers the busy connection's worker may learn of the shutdown a moment
            # after it answered: then the answer is an ordinary one and the connection, idle
            # right after, is closed at once. Either way nothing more comes and it closes.
            if h.get("connection") != ["close"]:
                self.assertIsNone(h.get("connection"), h)
            self.assertEqual(rest + tt.recv_until_close(busy), b"")
            self.assertEqual(srv.proc.wait(15), 0)
            wrk.wait(30)
            wrk.stdout.close()
            wrk.stderr.close()
            idle.close()
            busy.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
