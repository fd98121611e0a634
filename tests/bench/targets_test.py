#!/usr/bin/env python3
"""How bench.py judges the slowdown targets: only where the runs alone agree
to within twice the tolerance; beyond that the verdict is undecided (None),
never yes or no."""

import unittest

import bench


def slowdown_results(alone_seconds, migwatch_ratio, bpftrace_ratio):
    def condition(name, ratio, seconds):
        return {"condition": name, "seconds": seconds, "median_seconds": sorted(seconds)[len(seconds) // 2],
                "ratio_median": ratio, "ratio_min": ratio, "ratio_max": ratio}

    return {"slowdown": {"runs": [{"where": "here", "workloads": [{
        "workload": "storm", "conditions": [
            condition("alone", 1.0, alone_seconds),
            condition("migwatch", migwatch_ratio, [s * migwatch_ratio for s in alone_seconds]),
            condition("bpftrace", bpftrace_ratio, [s * bpftrace_ratio for s in alone_seconds]),
        ]}]}]}}


def verdicts(results):
    return [t["met"] for t in bench.evaluate_targets(results)]


class SlowdownVerdictTest(unittest.TestCase):
    def test_runs_alone_that_agree_decide_both_targets(self):
        # Spread 5%: within 6%.
        self.assertEqual(verdicts(slowdown_results([2.0, 2.1, 2.05], 1.02, 1.05)), [True, True])
        self.assertEqual(verdicts(slowdown_results([2.0, 2.1, 2.05], 1.04, 1.03)), [False, False])

    def test_runs_alone_that_spread_more_leave_both_undecided(self):
        # Spread 7%, and 61% as in a noisy run: neither yes nor no.
        for alone in ([2.0, 2.14], [2.81, 4.51]):
            for ratios in ((1.02, 1.05), (1.20, 1.03)):
                with self.subTest(alone=alone, ratios=ratios):
                    self.assertEqual(verdicts(slowdown_results(alone, *ratios)), [None, None])
                    for target in bench.evaluate_targets(slowdown_results(alone, *ratios)):
                        self.assertIn("undecided: the runs alone spread", target["measured"])

    def test_a_run_alone_of_no_time_leaves_them_undecided(self):
        self.assertEqual(verdicts(slowdown_results([0.0, 2.0], 1.0, 1.0)), [None, None])


if __name__ == "__main__":
    unittest.main()
