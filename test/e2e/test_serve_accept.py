"""tether serve: deferred accept (TCP_DEFER_ACCEPT, --defer-accept). A connection is accepted
once its first bytes arrive; a silent one waits in the kernel, is accepted after about the
deferral and is then closed by the header timeout; --defer-accept 0 accepts at once."""
import json
import subprocess

import tt


def status(srv):
    s = srv.connect()
    s.sendall(b"GET /_tether/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    st, h, body, rest = tt.read_response(s)
    s.close()
    assert st == 200, st
    return json.loads(body)


class DeferAccept(tt.TestCase):
    def test_silent_connection_is_not_accepted(self):
        with tt.Tether("--echo", "--status", "--workers", "1", "--defer-accept", "30") as srv:
            before = status(srv)["connections"]["accepted"]
            silent = srv.connect()  # the handshake completes on the client side
            # One worker, FIFO accept queue: had the silent connection been queued it would be
            # accepted before the next status request. Only that request's connection counts.
            d = status(srv)
            self.assertEqual(d["connections"]["accepted"], before + 1)
            # The kernel holds it as a request socket: SYN_RECV on the server side.
            self.assertEqual(d["tcp_states"]["server"]["SYN_RECV"], 1)
            # Its first bytes make it an ordinary connection.
            silent.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            st, h, body, rest = tt.read_response(silent)
            self.assertEqual((st, body), (200, b"Hello, World!"))
            self.assertEqual(status(srv)["connections"]["accepted"], before + 3)
            silent.close()

    def test_defer_accept_off_accepts_at_once(self):
        with tt.Tether("--echo", "--status", "--workers", "1", "--defer-accept", "0") as srv:
            before = status(srv)["connections"]["accepted"]
            silent = srv.connect()
            d = status(srv)
            self.assertEqual(d["connections"]["accepted"], before + 2)
            self.assertEqual(d["connections"]["by_state"]["reading_head"], 1)
            silent.close()

    def test_silent_connection_is_closed_in_the_end(self):
        # Deferral 1 s, header timeout 1 s: the kernel hands the silent connection over after
        # its SYN-ACK retransmission, then the header deadline closes it (silently: no bytes
        # came, so there is nobody to tell 408).
        with tt.Tether("--echo", "--status", "--workers", "1", "--defer-accept", "1",
                       "--header-timeout", "1") as srv:
            silent = srv.connect(timeout=30)
            self.assertEqual(tt.recv_until_close(silent), b"")
            silent.close()
            d = status(srv)
            self.assertEqual(d["closes"]["header_timeout"], 1)
            self.assertEqual(d["tcp_states"]["server"]["SYN_RECV"], 0)

    def test_help_and_bad_value(self):
        p = subprocess.run([tt.TETHER, "serve", "--help"], capture_output=True, text=True,
                           timeout=10)
        self.assertRegex(p.stdout, r"--defer-accept SEC .*\(default 1\)")
        p = subprocess.run([tt.TETHER, "serve", "--defer-accept", "soon"], capture_output=True,
                           timeout=10)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    import unittest
    unittest.main()
