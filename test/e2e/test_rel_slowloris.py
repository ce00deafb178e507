"""Reliability: slowloris. ~1,000 connections each send a partial request head once and then
nothing, while a normal client keeps making requests. The normal client must be served
throughout; every slow connection must read "HTTP/1.1 408" and then EOF (header timeout 2 s),
and the server must end with no connection left and no CLOSE_WAIT. (The 1-byte-per-second
dribble runs in `make soak`: test/soak/slowloris.py.)"""
import os
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import relkit  # noqa: E402

N_SLOW = int(os.environ.get("TT_SLOWLORIS_CONNS", "1000"))


class NormalClient(threading.Thread):
    """Sequential requests (keep-alive, reconnecting when the server closes an idle connection
    between requests) until stopped; every request gets its own bounded timeout."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.ok = 0
        self.errors = []

    def run(self):
        s = None
        while not self.stop.is_set():
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5 * relkit.SLOW)
                s.sendall(relkit.get_request("/normal"))
                st, h, body, rest = relkit.read_response(s)
                if st != 200 or body != relkit.HELLO or rest:
                    self.errors.append((st, body[:100], rest[:100]))
                else:
                    self.ok += 1
                if h.get("connection", "").lower() == "close":
                    s.close()
                    s = None
            except Exception as e:  # a timeout or reset here means the normal client starved
                self.errors.append(repr(e))
                if s:
                    s.close()
                s = None
            time.sleep(0.01)
        if s:
            s.close()


class SlowlorisTest(unittest.TestCase):
    def test_partial_heads_get_408_and_normal_client_served(self):
        relkit.raise_nofile(N_SLOW * 2 + 1000)
        srv = relkit.Server("--echo", "--header-timeout", "2", "--max-connections", str(N_SLOW * 4))
        with srv:
            normal = NormalClient(srv.port)
            normal.start()
            slow = []
            try:
                for i in range(N_SLOW):
                    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                    # an incomplete head: no final CRLF ever follows
                    s.sendall(b"GET /slow/%d HTTP/1.1\r\nHost: t\r\nX-Slow: " % i)
                    s.setblocking(False)
                    slow.append(s)
                ok_while_open = normal.ok
                # every slow socket: "HTTP/1.1 408" then EOF, within a bounded wait
                got = {s: b"" for s in slow}
                done = {}
                sel = selectors.DefaultSelector()
                for s in slow:
                    sel.register(s, selectors.EVENT_READ)
                deadline = time.time() + 30 * relkit.SLOW
                while len(done) < len(slow) and time.time() < deadline:
                    for key, _ in sel.select(timeout=0.5):
                        s = key.fileobj
                        try:
                            b = s.recv(4096)
                        except BlockingIOError:
                            continue
                        except ConnectionResetError:
                            done[s] = "rst"
                            sel.unregister(s)
                            continue
                        if b:
                            got[s] += b
                        else:
                            done[s] = "eof"
                            sel.unregister(s)
                sel.close()
                ok_after = normal.ok
                time.sleep(0.3)
            finally:
                normal.stop.set()
                normal.join(10)
                for s in slow:
                    s.close()
            not_closed = len(slow) - len(done)
            self.assertEqual(not_closed, 0, "%d slow connections still open after the bounded wait" % not_closed)
            bad = [(got[s][:60], done[s]) for s in slow if not got[s].startswith(b"HTTP/1.1 408") or done[s] != "eof"]
            self.assertEqual(bad[:5], [], "%d of %d slow connections did not read 408 then EOF" % (len(bad), len(slow)))
            self.assertEqual(normal.errors[:5], [], "the normal client failed while slowloris ran")
            self.assertGreater(ok_while_open, 0, "normal client got no answer while 1,000 slow heads were open")
            self.assertGreater(ok_after, ok_while_open, "normal client not served during the header-timeout window")
            self.assertGreater(normal.ok, ok_after, "normal client not served after the slow connections closed")
            # the server holds nothing afterwards: no established connection, no CLOSE_WAIT
            self.assertTrue(relkit.wait_for(lambda: relkit.close_wait_count(srv.port) == 0, 10),
                            "CLOSE_WAIT left on the server")
            self.assertTrue(srv.alive(), "server died: " + srv.output()[-2000:])
            self.assertEqual(relkit.simple_get("127.0.0.1", srv.port), (200, relkit.HELLO))


if __name__ == "__main__":
    unittest.main()
