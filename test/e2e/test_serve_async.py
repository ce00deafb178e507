"""The embedded server example: an async handler answers from a timer and never reorders
pipelined responses; a client vanishing while the handler holds the request is harmless."""
import socket
import struct
import time

import tt


class Async(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.port = tt.start_example("server")

    @classmethod
    def tearDownClass(cls):
        cls.rc = tt.stop_example(cls.proc)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def test_async_keeps_pipeline_order(self):
        s = self.connect()
        s.sendall(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /later HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        rest = b""
        bodies = []
        for _ in range(4):
            st, h, body, rest = tt.read_response(s, rest)
            bodies.append(body)
        self.assertEqual(bodies, [b"later\n", b"hello\n", b"later\n", b"hello\n"])
        s.close()

    def test_client_vanishes_during_async(self):
        for _ in range(5):
            s = self.connect()
            s.sendall(b"GET /later HTTP/1.1\r\nHost: x\r\n\r\n")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(0.3)  # the timers fire on dead connections
        s = self.connect()
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(tt.read_response(s)[2], b"hello\n")
        s.close()
        self.assertIsNone(self.proc.poll())

    def test_static_fallback(self):
        s = self.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        st, h, body, rest = tt.read_response(s)
        self.assertEqual(st, 200)
        self.assertIn(b"keep-alive", body)
        s.close()


if __name__ == "__main__":
    import unittest
    unittest.main()
