"""The tether binary itself: version, help, unknown commands."""
import subprocess

import tt


class CliTest(tt.TestCase):
    def test_version(self):
        out = subprocess.run([tt.TETHER, "--version"], capture_output=True, text=True, check=True).stdout
        self.assertRegex(out, r"^tether \d+\.\d+\.\d+\n$")

    def test_help_lists_commands(self):
        out = subprocess.run([tt.TETHER, "--help"], capture_output=True, text=True, check=True).stdout
        for c in ("serve", "get", "bench", "conns"):
            self.assertIn(c, out)

    def test_unknown_command_fails(self):
        p = subprocess.run([tt.TETHER, "frobnicate"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown command", p.stderr)
