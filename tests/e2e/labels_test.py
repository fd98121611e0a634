#!/usr/bin/env python3
"""Labels that follow the storm, end to end, against the real daemon.

Thirty processes move a little at the start and then sit idle: more than
the label cap, so they hold every `process` label. A new process then
storms: its own label must appear within two scrapes, and the per-process
series must still add up to a count that never goes back. Root: the BPF
programs are loaded.

    MIGWATCH=build/daemon/migwatch MW_WORKLOAD=build/tests/workload/mw_workload \\
    tests/e2e/labels_test.py
"""
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

from capture_test import Daemon, WORKLOAD

FAMILY = "migwatch_process_migrations_total"


def process_counts(port):
    """Per `process` label, its migrations summed over reasons."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    counts = {}
    for line in text.splitlines():
        if match := re.match(FAMILY + r'\{.*process="([^"]*)".*\} (\S+)$', line):
            counts[match.group(1)] = counts.get(match.group(1), 0.0) + float(match.group(2))
    return counts


class Holder:
    """An affinity storm of a few flips, made at once, then idle until
    stop(): a process that took a label at the start."""

    def __init__(self, name):
        self.process = subprocess.Popen([WORKLOAD, "--hold", "affinity-storm", "--flips", "20", "--name", name],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.wait_for("waiting")
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.wait_for("flips")

    def wait_for(self, key):
        for line in self.process.stdout:
            if line.startswith(key + "="):
                return
        raise AssertionError(f"the holder ended before printing {key}")

    def stop(self):
        self.process.kill()
        self.process.wait()


class LabelsFollowTheStorm(unittest.TestCase):
    CAP = 20
    HOLDERS = 30

    def test_a_new_storm_gets_its_own_label_within_two_scrapes(self):
        tag = os.getpid() % 10000
        holders = []
        storm = None
        with tempfile.TemporaryDirectory(prefix="migwatch-labels-") as scratch:
            daemon = Daemon(Path(scratch), [f"--labels.cap={self.CAP}"])
            try:
                for i in range(self.HOLDERS):
                    holders.append(Holder(f"mwl{tag}h{i}"))
                # Two scrapes: the holders' moves are seen and take the slots.
                process_counts(daemon.port)
                time.sleep(1)
                before = process_counts(daemon.port)
                # Every slot is held: holders beyond the cap fold into other.
                labelled = [n for n in before if n.startswith(f"mwl{tag}h")]
                self.assertIn("other", before)
                self.assertLess(len(labelled), self.HOLDERS, f"no holder folded into other: {sorted(before)}")
                self.assertGreater(len(labelled), 0)

                name = f"mwl{tag}storm"
                storm = subprocess.Popen([WORKLOAD, "affinity-storm", "--flips", "100000000", "--name", name,
                                          "--while-running"], stdout=subprocess.DEVNULL)
                time.sleep(2)
                scrapes = []
                for _ in range(2):
                    scrapes.append(process_counts(daemon.port))
                    if name in scrapes[-1]:
                        break
                    time.sleep(1)
                print(f"{self.HOLDERS} holders, cap {self.CAP}: the storm {name} labelled after "
                      f"{len(scrapes)} scrape(s): {scrapes[-1].get(name, 0):.0f} migrations; "
                      f"other {scrapes[-1].get('other', 0):.0f}")
                self.assertIn(name, scrapes[-1], f"no label for the storm within two scrapes: {sorted(scrapes[-1])}")
                # The series still add up to a count that never goes back.
                totals = [sum(before.values())] + [sum(s.values()) for s in scrapes]
                self.assertEqual(totals, sorted(totals), totals)
            finally:
                if storm:
                    storm.send_signal(signal.SIGKILL)
                    storm.wait()
                for holder in holders:
                    holder.stop()
                print("\n".join(line for line in daemon.stop().splitlines() if "probe " not in line))


if __name__ == "__main__":
    unittest.main(verbosity=2)
