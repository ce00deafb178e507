"""The layout rules of DEVELOPERS.md and issue #12, checked on the sources by
scripts/check_layout.py: no file cycle, no oversized file or function, socket I/O on
connections only in the transport."""
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check_layout.py")


def run(*args):
    p = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


class LayoutTest(unittest.TestCase):
    def check(self, name):
        rc, out = run(name)
        self.assertEqual(rc, 0, "\n" + out)
        self.assertEqual(out.strip(), "ok")

    def test_no_file_cycles(self):
        self.check("cycles")

    def test_no_lib_file_over_900_lines(self):
        self.check("sizes")

    def test_no_function_over_150_lines(self):
        self.check("functions")

    def test_socket_io_only_in_the_transport(self):
        self.check("io")

    def test_checker_sees_a_cycle_and_a_stray_recv(self):
        """The checker itself can fail: a scratch tree with a two-file cycle and a recv()."""
        import shutil
        import tempfile
        d = tempfile.mkdtemp()
        try:
            os.makedirs(os.path.join(d, "scripts"))
            os.makedirs(os.path.join(d, "lib", "x"))
            shutil.copy(SCRIPT, os.path.join(d, "scripts"))
            with open(os.path.join(d, "lib", "x", "a.c"), "w") as f:
                f.write("int b1(void);\nint a1(void)\n{\n    return b1() + recv(0, 0, 0, 0);\n}\n")
            with open(os.path.join(d, "lib", "x", "b.c"), "w") as f:
                f.write("int a1(void);\nint b1(void)\n{\n    return a1();\n}\n")
            p = subprocess.run([sys.executable, os.path.join(d, "scripts", "check_layout.py"), "all"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cycle: lib/x/a.c lib/x/b.c", p.stdout)
            self.assertIn("io: lib/x/a.c:4 calls recv()", p.stdout)
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
