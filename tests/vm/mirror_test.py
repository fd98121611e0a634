#!/usr/bin/env python3
"""How vm.py picks the package archive from apt sources: deb822 and one-line
files in a temporary directory standing for /etc/apt."""

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import vm

DEB822 = """\
Types: deb
# a comment between fields
URIs: http://main.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


class MachineMirrorTest(unittest.TestCase):
    def setUp(self):
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        self.etc_apt = Path(scratch.name)
        (self.etc_apt / "sources.list.d").mkdir()

    def write(self, name, text):
        (self.etc_apt / name).write_text(text)

    def mirror(self, suite="bookworm"):
        return vm.machine_mirror(suite, self.etc_apt)

    def test_deb822(self):
        self.write("sources.list.d/debian.sources", DEB822)
        self.assertEqual(self.mirror(), "http://main.example/debian")
        # Other releases and backports live in the same archive.
        self.assertEqual(self.mirror("bullseye"), "http://main.example/debian")
        self.assertEqual(self.mirror("bookworm-backports"), "http://main.example/debian")

    def test_security_and_updates_never_count(self):
        self.write("sources.list.d/debian.sources", """\
Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://updates.example/debian
Suites: bookworm-updates
Components: main
""")
        with self.assertRaises(vm.HarnessError):
            self.mirror()

    def test_disabled_source_and_source_packages_skipped(self):
        self.write("sources.list.d/a.sources", """\
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb deb-src
URIs:
 http://continued.example/debian
Suites: bookworm
Components: main
""")
        self.assertEqual(self.mirror(), "http://continued.example/debian")

    def test_one_line(self):
        self.write("sources.list", """\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://security.example/debian-security bookworm-security main
deb [ arch=amd64 ] http://one-line.example/debian bookworm main contrib
""")
        self.assertEqual(self.mirror(), "http://one-line.example/debian")

    def test_wanted_release_first(self):
        self.write("sources.list", "deb http://sid.example/debian sid main\n")
        self.write("sources.list.d/bookworm.list", "deb http://bookworm.example/debian bookworm main\n")
        self.assertEqual(self.mirror("bookworm"), "http://bookworm.example/debian")
        # Without an entry for the release, the first of the main archive.
        self.assertEqual(self.mirror("bullseye"), "http://sid.example/debian")

    def test_other_repositories_ignored(self):
        self.write("sources.list.d/a-vendor.sources", """\
Types: deb
URIs: http://vendor.example/repo
Suites: nodistro
Components: main
""")
        self.write("sources.list.d/b-flat.list", "deb http://flat.example/repo ./\n")
        self.write("sources.list.d/debian.sources", DEB822)
        self.write("sources.list.d/ignored.list.disabled", "deb http://ignored.example/debian bookworm main\n")
        self.assertEqual(self.mirror("bullseye"), "http://main.example/debian")

    def test_none_names_files_read(self):
        self.write("sources.list", "# nothing here\n")
        self.write("sources.list.d/debian.sources", "Types: deb\nURIs: http://x.example/debian-security\n"
                   "Suites: bookworm-security\nComponents: main\n")
        with self.assertRaises(vm.HarnessError) as raised:
            self.mirror()
        message = str(raised.exception)
        self.assertIn(str(self.etc_apt / "sources.list"), message)
        self.assertIn(str(self.etc_apt / "sources.list.d" / "debian.sources"), message)
        self.assertIn("MIGWATCH_VM_MIRROR", message)

    def test_no_files_at_all(self):
        with self.assertRaises(vm.HarnessError) as raised:
            self.mirror()
        self.assertIn(str(self.etc_apt), str(raised.exception))

    def test_private_apt_takes_override_then_machine(self):
        self.write("sources.list.d/debian.sources", DEB822)
        state = self.etc_apt / "state"
        with mock.patch.object(vm, "APT_ETC", self.etc_apt):
            with mock.patch.dict(os.environ, {"MIGWATCH_VM_MIRROR": "http://override.example/debian"}):
                vm.PrivateApt(state, "bullseye")
            self.assertIn(" http://override.example/debian bullseye main",
                          (state / "sources.list").read_text())
            with mock.patch.dict(os.environ):
                os.environ.pop("MIGWATCH_VM_MIRROR", None)
                vm.PrivateApt(state, "bookworm-backports")
            self.assertIn(" http://main.example/debian bookworm-backports main",
                          (state / "sources.list").read_text())


if __name__ == "__main__":
    unittest.main()
