"""The option parser shared by serve, get, bench and conns (src/opt.c): a value that is not a
number, a duration or a size, or is out of range, is a usage error (exit 2) whose message names
the flag; nothing falls back to a default or to "unlimited". Every command here exits before it
listens or connects: no network is used."""
import subprocess

import tt

URL = "http://127.0.0.1:9/"


def run(*args):
    return subprocess.run([tt.TETHER] + list(args), capture_output=True, text=True, timeout=20)


class StrictOptions(tt.TestCase):
    def usage_error(self, args, flag, why):
        p = run(*args)
        self.assertEqual(p.returncode, 2, "%s: %s" % (args, p.stderr))
        self.assertIn("tether %s: %s: " % (args[0], flag), p.stderr)
        self.assertIn(why, p.stderr)
        self.assertEqual(p.stdout, "")

    def test_serve(self):
        cases = [
            (["--keepalive-requests", "abc"], "--keepalive-requests", "'abc' is not a whole number"),
            (["--keepalive-requests", "-5"], "--keepalive-requests", "'-5' is out of range"),
            (["--keepalive-requests", "1.5"], "--keepalive-requests", "not a whole number"),
            (["--workers", "abc"], "--workers", "'abc' is not a whole number"),
            (["--workers", "0"], "--workers", "out of range"),
            (["--max-connections", "abc"], "--max-connections", "'abc' is not a whole number"),
            (["--max-connections", "-1"], "--max-connections", "out of range"),
            (["--keepalive-timeout", "soon"], "--keepalive-timeout", "is not a duration"),
            (["--header-timeout", "-1"], "--header-timeout", "out of range"),
            (["--defer-accept", "x"], "--defer-accept", "not a whole number"),
            (["--max-body", "lots"], "--max-body", "is not a size"),
        ]
        for args, flag, why in cases:
            with self.subTest(args=args):
                self.usage_error(["serve"] + args, flag, why)

    def test_bench(self):
        cases = [
            (["-c", "abc"], "--connections", "'abc' is not a whole number"),
            (["-c", "0"], "--connections", "out of range"),
            (["-d", "x"], "--duration", "'x' is not a duration"),
            (["-d", "0"], "--duration", "out of range"),
            (["-n", "ten"], "--requests", "not a whole number"),
            (["-t", "-5"], "--threads", "out of range"),
            (["--pipeline", "abc"], "--pipeline", "not a whole number"),
            (["--rate", "fast"], "--rate", "not a whole number"),
            (["--timeout", "1d"], "--timeout", "is not a duration"),
            (["--verify-length", "-3"], "--verify-length", "out of range"),
        ]
        for args, flag, why in cases:
            with self.subTest(args=args):
                self.usage_error(["bench"] + args + [URL], flag, why)

    def test_bench_request_parts(self):
        for args, what in ((["-H", "nocolon"], "-H"), (["-H", "Bad Name: v"], "-H"),
                           (["-H", "Content-Length: 5"], "-H"), (["-m", "GE T"], "--method"),
                           (["http://127.0.0.1:9/a b"], "cannot send")):
            with self.subTest(args=args):
                argv = ["bench", "-n", "1"] + args + ([] if args[0].startswith("http") else [URL])
                p = run(*argv)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(what, p.stderr)

    def test_get(self):
        cases = [
            (["--parallel", "abc"], "--parallel", "not a whole number"),
            (["--parallel", "0"], "--parallel", "out of range"),
            (["--max-connections", "abc"], "--max-connections", "not a whole number"),
            (["--pipeline", "-5"], "--pipeline", "out of range"),
            (["--timeout", "x"], "--timeout", "is not a duration"),
            (["--interval", "-1"], "--interval", "out of range"),
        ]
        for args, flag, why in cases:
            with self.subTest(args=args):
                self.usage_error(["get"] + args + [URL], flag, why)

    def test_conns(self):
        cases = [
            (["--port", "x"], "--port", "'x' is not a whole number"),
            (["--port", "70000"], "--port", "out of range"),
            (["-p", "0"], "--port", "out of range"),
            (["--watch", "abc"], "--watch", "not a whole number"),
            (["--watch", "1", "--count", "-5"], "--count", "out of range"),
        ]
        for args, flag, why in cases:
            with self.subTest(args=args):
                self.usage_error(["conns"] + args, flag, why)

    def test_unknown_and_missing(self):
        for cmd in ("serve", "get", "bench", "conns"):
            with self.subTest(cmd=cmd):
                p = run(cmd, "--frobnicate")
                self.assertEqual(p.returncode, 2)
                self.assertIn("tether %s: unknown option '--frobnicate'" % cmd, p.stderr)
                p = run(cmd, "-5")
                self.assertEqual(p.returncode, 2)
                self.assertIn("unknown option '-5'", p.stderr)
        for cmd, flag in (("serve", "--workers"), ("get", "--parallel"), ("bench", "-c"),
                          ("conns", "--port")):
            with self.subTest(flag=flag):
                p = run(cmd, flag)
                self.assertEqual(p.returncode, 2)
                self.assertIn("%s needs a value" % flag, p.stderr)

    def test_help_is_generated_from_the_table(self):
        for cmd, opts in (("serve", ["--workers N", "--keepalive-requests N", "(default 1000)"]),
                          ("get", ["-X METHOD", "--parallel N", "exit codes"]),
                          ("bench", ["-c, --connections N", "(default 10)", "--pipeline N"]),
                          ("conns", ["-p, --port P", "(default 8080)", "--watch SEC"])):
            with self.subTest(cmd=cmd):
                p = run(cmd, "--help")
                self.assertEqual(p.returncode, 0)
                self.assertTrue(p.stdout.startswith("usage: tether %s " % cmd))
                for o in opts + ["-h, --help"]:
                    self.assertIn(o, p.stdout)

    def test_good_values_still_accepted(self):
        # suffixes and fractions as before: these parse, then fail later for their own reasons
        p = run("bench", "-c", "1", "-n", "1k", "-d", "1", URL)
        self.assertEqual(p.returncode, 2)
        self.assertIn("-d and -n exclude each other", p.stderr)
        p = run("conns", "--port", "1", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
