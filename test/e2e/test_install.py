"""`make install PREFIX=…` installs headers, both libraries, tether.pc and the binary, and a
program builds against it with pkg-config (statically and dynamically)."""
import os
import shutil
import subprocess
import tempfile

import tt


class InstallTest(tt.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tether-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        # make exports its command-line variables (CC=clang SANITIZE=...) to the environment: drop them
        drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CC", "SANITIZE", "DEBUG", "CFLAGS", "LDFLAGS", "BUILD")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        cls.env = env
        # a separate plain build so sanitizer or clang runs of the suite do not leak into it
        subprocess.run(["make", "-s", "-C", tt.ROOT, "-j2", "install", "PREFIX=" + cls.prefix,
                        "BUILD=" + os.path.join(cls.tmp, "build")],
                       env=env, check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pkg(self, *args):
        env = dict(self.env, PKG_CONFIG_PATH=os.path.join(self.prefix, "lib", "pkgconfig"))
        return subprocess.run(["pkg-config"] + list(args) + ["tether"], env=env, capture_output=True,
                              text=True, check=True).stdout.split()

    def test_files_installed(self):
        for rel in ("include/tether.h", "include/tether/loop.h", "lib/libtether.a", "lib/libtether.so",
                    "lib/pkgconfig/tether.pc", "bin/tether"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)
        out = subprocess.run([os.path.join(self.prefix, "bin", "tether"), "--version"], capture_output=True,
                             text=True, check=True).stdout
        self.assertTrue(out.startswith("tether "))

    def build_and_run(self, static):
        exe = os.path.join(self.tmp, "hello-static" if static else "hello-shared")
        libs = self.pkg("--static", "--libs") if static else self.pkg("--libs")
        cmd = ["cc", "-o", exe, os.path.join(tt.ROOT, "examples", "hello.c")] + self.pkg("--cflags")
        if static:
            cmd += [os.path.join(self.prefix, "lib", "libtether.a")] + [a for a in libs if a != "-ltether"]
        else:
            cmd += libs
        p = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        env = dict(self.env, LD_LIBRARY_PATH=os.path.join(self.prefix, "lib"))
        out = subprocess.run([exe], capture_output=True, text=True, env=env, check=True).stdout
        self.assertRegex(out, r"^tether \d+\.\d+\.\d+\n$")

    def test_pkg_config_shared(self):
        self.build_and_run(static=False)

    def test_pkg_config_static(self):
        self.build_and_run(static=True)
