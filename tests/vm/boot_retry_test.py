#!/usr/bin/env python3
"""How vm.boot() retries a guest kernel that fails under emulation: once
after the guest script has started, up to BOOT_RETRIES_BEFORE_SCRIPT times
before it. Boots are stood in for by boot_once() writing a console log."""

import tempfile
import unittest
from pathlib import Path
from unittest import mock

import vm

PANIC_AT_BOOT = "[    9.0] Oops: int3\n[    9.0] Kernel panic - not syncing: Fatal exception in interrupt\n"
PANIC_IN_SCRIPT = f"{vm.KERNEL_MARKER}6.12 cpus=4\nMWM kernel release 6.12\n[  30.0] Kernel panic - not syncing: x\n"
PASSED = f"{vm.KERNEL_MARKER}6.12 cpus=4\nMWM done\n"


class BootRetryTest(unittest.TestCase):
    def boots(self, outcomes):
        """Runs vm.boot() over boots that end as `outcomes` say (console text,
        exit status); returns its result, the number of boots and the logs left."""
        work = Path(self.enterContext(tempfile.TemporaryDirectory()))
        log_path = work / "6.12.log"
        remaining = list(outcomes)

        def boot_once(*args, **kwargs):
            text, status = remaining.pop(0)
            log_path.write_text(text)
            return vm.BootResult(status=status, kernel_release="6.12", seconds=1.0, log_path=log_path,
                                 timed_out=False)

        kernel = vm.Kernel(alias="6.12", package="linux-image-6.12", version="6.12", vmlinuz=work / "vmlinuz")
        with mock.patch.object(vm, "boot_once", side_effect=boot_once), mock.patch.object(vm, "log"):
            result = vm.boot(kernel, work / "initrd", 4, 512, 60, "", log_path, echo=None)
        return result, len(outcomes) - len(remaining), sorted(p.name for p in work.iterdir())

    def test_a_passing_boot_is_not_repeated(self):
        result, boots, logs = self.boots([(PASSED, 0)])
        self.assertEqual((result.status, boots, logs), (0, 1, ["6.12.log"]))

    def test_a_failed_script_is_not_repeated(self):
        result, boots, _ = self.boots([(PASSED, 1)])
        self.assertEqual((result.status, boots), (1, 1))

    def test_a_panic_in_the_script_gets_one_more_boot(self):
        result, boots, logs = self.boots([(PANIC_IN_SCRIPT, None), (PANIC_IN_SCRIPT, None), (PASSED, 0)])
        self.assertEqual((result.status, boots), (None, 2))
        self.assertEqual(logs, ["6.12.log", "6.12.panicked.log"])

    def test_panics_before_the_script_get_two_more_boots(self):
        result, boots, logs = self.boots([(PANIC_AT_BOOT, None)] * 2 + [(PASSED, 0)])
        self.assertEqual((result.status, boots), (0, 3))
        self.assertEqual(logs, ["6.12.log", "6.12.panicked.log", "6.12.panicked2.log"])
        result, boots, _ = self.boots([(PANIC_AT_BOOT, None)] * 3 + [(PASSED, 0)])
        self.assertEqual((result.status, boots), (None, 3))

    def test_each_kind_keeps_its_own_allowance(self):
        result, boots, _ = self.boots([(PANIC_AT_BOOT, None), (PANIC_IN_SCRIPT, None), (PANIC_AT_BOOT, None),
                                       (PASSED, 0)])
        self.assertEqual((result.status, boots), (0, 4))


if __name__ == "__main__":
    unittest.main()
