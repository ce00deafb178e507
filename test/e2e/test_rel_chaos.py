"""Reliability: a short (~20 s) chaos run (the ~10 minute one is `make soak`). Mixed clients —
keep-alive, pipelining bursts, aborts mid-request and mid-response, half-close, RST, oversized
heads/URIs/bodies, random bytes, slow readers: the server does not crash, every well-formed
request is answered correctly, the fd count returns to its baseline, RSS to within 5% (release
builds), no CLOSE_WAIT is left, and it still serves and exits cleanly on SIGTERM."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "soak"))
import chaos  # noqa: E402

SECONDS = float(os.environ.get("TT_CHAOS_SECONDS", "20"))


class ChaosTest(unittest.TestCase):
    def test_short_chaos(self):
        rep = chaos.soak(SECONDS, procs=2, threads=6, warmup=3)
        sys.stderr.write("chaos: " + json.dumps({k: v for k, v in rep.items() if k != "failures"}) + "\n")
        self.assertEqual(rep["failures"][:20], [])
        self.assertEqual(rep["problems"], [])
        self.assertGreater(rep["answered"], 100)
        for name, _ in chaos.Worker.BEHAVIOURS:
            self.assertIn(name, rep["counts"], "behaviour %s never ran" % name)


if __name__ == "__main__":
    unittest.main()
