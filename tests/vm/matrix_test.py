#!/usr/bin/env python3
"""How matrix.py judges the result lines of a kernel: every rule on its own,
against output shaped like matrix_guest.sh's."""

import unittest

import matrix

FENTRY_HOOKS = ("move_queued_task", "migration_cpu_stop", "__balance_push_cpu_stop")


def guest_output(run_overrides=None, fentry_results=None, hotplug=True):
    """The lines a kernel that passes everything prints, with the records of
    `run_overrides` ({(run, kind): [lines]}) in place of the passing ones."""
    run_overrides = run_overrides or {}
    fentry_results = fentry_results or {hook: "attached" for hook in FENTRY_HOOKS}
    lines = ["[    1.2] random boot message", "MWM kernel release 6.1.0-50-cloud-amd64"]
    lines += [f"MWM kernel fentry probe=fentry target={hook} btf_id=7 result={result}"
              for hook, result in fentry_results.items()]

    def section(run, kind, default):
        return run_overrides.get((run, kind), default)

    for run in matrix.RUNS:
        modes = dict(matrix.TRACEPOINT_MODES)
        modes.update({hook: "fentry" if run == "fentry" and fentry_results[hook] == "attached" else "none"
                      for hook in FENTRY_HOOKS})
        lines += section(run, "probes", [
            f'MWM {run} metric probes migwatch_probe_attached{{probe="{probe}",mode="{mode}",required="false"}} '
            f'{0 if mode == "none" else 1}' for probe, mode in modes.items()])
        lines += section(run, "check", [
            f"MWM {run} check   [ ok ] storm        2000 affinity flips in 0.03s: migwatch counted 2000, "
            "kernel se.nr_migrations 2000",
            f"MWM {run} check-exit 0"])
        for workload in matrix.WORKLOADS:
            reasons = {"affinity": 2, "hotplug": 2, "load_balance": 6} if workload == matrix.PINNED_WORKLOAD \
                else {"affinity": 90, "wakeup": 10}
            lines += section(run, workload, process_lines(run, workload, reasons))
        if hotplug:
            lines += section(run, "hotplug", hotplug_lines(run, hotplug_seconds=0.004))
        else:
            lines.append(f"MWM {run} hotplug-not-run the-build-machine-keeps-its-cpus")
        lines.append(f"MWM {run} done")
    return lines


def process_lines(run, workload, reasons):
    """A workload's process whose count migwatch got right, by reason."""
    name = f"mwm-{workload}"
    return [f'MWM {run} metric {workload} migwatch_process_migrations_total{{process="{name}",reason="{reason}"}} {n}'
            for reason, n in reasons.items()] + [f"MWM {run} process {workload} {name} {sum(reasons.values())} 3 2"]


def hotplug_lines(run, hotplug_seconds, tasks=2):
    lines = []
    for snapshot, grown in (("before-offline", 0), ("after-offline", 1)):
        lines += [
            f'MWM {run} metric {snapshot} migwatch_migrations_total{{reason="hotplug"}} {7 + grown * 3}',
            f'MWM {run} metric {snapshot} migwatch_migrations_total{{reason="wakeup"}} {100 + grown * 5}',
            f'MWM {run} metric {snapshot} migwatch_stopper_work_seconds_total{{work="hotplug"}} '
            f'{0.5 + grown * hotplug_seconds}',
            f'MWM {run} metric {snapshot} migwatch_stopper_work_seconds_total{{work="stop_machine"}} {1 + grown * 0.3}',
        ]
    return lines + [f"MWM {run} hotplug 3 {tasks}"]


def failures(lines, hotplug_required=True):
    return matrix.judge(matrix.parse_results(lines), hotplug_required).failures


class Judge(unittest.TestCase):
    def test_a_kernel_that_does_everything_right_passes(self):
        self.assertEqual(failures(guest_output()), [])

    def test_records_are_found_behind_console_noise(self):
        lines = [f"\x1b[0m[6.1] {line}" for line in guest_output()]
        self.assertEqual(failures(lines), [])

    def test_a_count_that_differs_from_the_kernels_by_one_fails(self):
        lines = guest_output({("no-fentry", "spinners"): [
            'MWM no-fentry metric spinners migwatch_process_migrations_total{process="mwm-spread",reason="load_balance"} 78',
            "MWM no-fentry process spinners mwm-spread 79 6 1"]})
        self.assertEqual(failures(lines), [
            "no-fentry: spinners: migwatch counted 78 migrations of mwm-spread, the kernel 79 "
            "(se.nr_migrations over 6 threads)"])

    def test_a_process_migwatch_never_reported_counts_zero(self):
        lines = guest_output({("fentry", "pingpong"): ["MWM fentry process pingpong mwm-pingpong 500 2 499"]})
        self.assertEqual(len(failures(lines)), 1)
        self.assertIn("migwatch counted 0 migrations of mwm-pingpong, the kernel 500", failures(lines)[0])

    def test_a_workload_that_did_not_do_its_work_fails_even_if_counts_agree(self):
        lines = guest_output({("fentry", "affinity-queued"): [
            'MWM fentry metric affinity-queued migwatch_process_migrations_total{process="q",reason="affinity"} 3',
            "MWM fentry process affinity-queued q 3 2 2000"]})
        self.assertEqual(failures(lines), ["fentry: affinity-queued: only 3 migrations, the workload makes at least 2000"])

    def test_a_missing_workload_fails(self):
        lines = guest_output({("fentry", "pingpong"): []})
        self.assertEqual(failures(lines), ["fentry: no result for workload pingpong"])

    def test_fentry_must_attach_where_the_kernel_allows_it(self):
        lines = guest_output({("fentry", "probes"): [
            'MWM fentry metric probes migwatch_probe_attached{probe="move_queued_task",mode="none",required="false"} 0',
            *[f'MWM fentry metric probes migwatch_probe_attached{{probe="{probe}",mode="{mode}",required="false"}} 1'
              for probe, mode in matrix.TRACEPOINT_MODES.items()],
            'MWM fentry metric probes migwatch_probe_attached{probe="migration_cpu_stop",mode="fentry",required="false"} 1',
            'MWM fentry metric probes migwatch_probe_attached{probe="__balance_push_cpu_stop",mode="fentry",required="false"} 1',
        ]})
        self.assertEqual(failures(lines), [
            "fentry: probe move_queued_task attached as none, expected fentry (probe_fentry: attached)"])

    def test_fentry_where_the_kernel_has_no_such_function_must_be_none(self):
        results = {"move_queued_task": "attached", "migration_cpu_stop": "attached",
                   "__balance_push_cpu_stop": "btf-lookup-failed errno=2 (No such file or directory)"}
        self.assertEqual(failures(guest_output(fentry_results=results)), [])

    def test_no_fentry_must_switch_every_fentry_hook_off(self):
        lines = guest_output({("no-fentry", "probes"): [
            *[f'MWM no-fentry metric probes migwatch_probe_attached{{probe="{probe}",mode="{mode}",required="false"}} 1'
              for probe, mode in matrix.TRACEPOINT_MODES.items()],
            'MWM no-fentry metric probes migwatch_probe_attached{probe="move_queued_task",mode="fentry",required="false"} 1',
            'MWM no-fentry metric probes migwatch_probe_attached{probe="migration_cpu_stop",mode="none",required="false"} 0',
            'MWM no-fentry metric probes migwatch_probe_attached{probe="__balance_push_cpu_stop",mode="none",required="false"} 0',
        ]})
        self.assertEqual(failures(lines), [
            "no-fentry: probe move_queued_task attached as fentry, expected none (probe_fentry: attached)"])

    def test_a_tracepoint_hook_on_its_fallback_mode_fails(self):
        lines = [line.replace('probe="sched_switch",mode="tp_btf"', 'probe="sched_switch",mode="raw_tp"')
                 for line in guest_output()]
        self.assertEqual(failures(lines), [
            "fentry: probe sched_switch attached as raw_tp, expected tp_btf",
            "no-fentry: probe sched_switch attached as raw_tp, expected tp_btf"])

    def test_a_hook_neither_on_a_tracepoint_nor_probed_for_fentry_fails(self):
        lines = guest_output() + [
            'MWM fentry metric probes migwatch_probe_attached{probe="new_hook",mode="none",required="false"} 0']
        self.assertEqual(failures(lines), [
            "fentry: probe new_hook: no tracepoint expectation and no probe_fentry result "
            "(a new tracepoint hook belongs in TRACEPOINT_MODES)"])

    def test_a_failed_check_fails(self):
        lines = guest_output({("fentry", "check"): [
            "MWM fentry check   [FAIL] storm        2000 affinity flips in 0.03s: migwatch counted 1999, "
            "kernel se.nr_migrations 2000",
            "MWM fentry check-exit 1"]})
        self.assertEqual(failures(lines), ["fentry: migwatch check exited 1, storm counted 1999 vs kernel 2000"])

    def test_the_pinned_tasks_must_leave_labelled_hotplug_whatever_else_was(self):
        # Host-wide, hotplug grew by 3 (other tasks pushed off the CPU), but
        # one pinned spinner's move went under another reason.
        lines = guest_output({("fentry", matrix.PINNED_WORKLOAD): process_lines(
            "fentry", matrix.PINNED_WORKLOAD, {"affinity": 2, "hotplug": 1, "other": 1, "load_balance": 6})})
        self.assertEqual(failures(lines), [
            "fentry: hotplug of CPU 3: 1 migrations of the pinned process labelled hotplug, "
            "but 2 of its tasks had to leave"])

    def test_hotplug_without_stopper_time_charged_to_hotplug_work_fails(self):
        lines = guest_output({("no-fentry", "hotplug"): hotplug_lines("no-fentry", hotplug_seconds=0)})
        self.assertEqual(failures(lines), ["no-fentry: hotplug of CPU 3: no stopper time charged to hotplug work"])

    def test_hotplug_with_no_task_on_the_cpu_proves_nothing(self):
        lines = guest_output({("fentry", "hotplug"): hotplug_lines("fentry", 0.004, tasks=0)})
        self.assertEqual(failures(lines), ["fentry: hotplug of CPU 3: no pinned task was on CPU 3"])

    def test_hotplug_may_be_left_out_only_where_it_is_not_required(self):
        lines = guest_output(hotplug=False)
        self.assertEqual(failures(lines, hotplug_required=False), [])
        self.assertEqual(failures(lines, hotplug_required=True),
                         ["fentry: no hotplug result", "no-fentry: no hotplug result"])

    def _pinned_short_by(self, release, short, fentry):
        """Output where the pinned workload's moves off the offline CPU were
        not seen: `short` fewer migrations than the kernel's, none hotplug."""
        lines = guest_output(run_overrides={
            (run, matrix.PINNED_WORKLOAD): process_lines(run, matrix.PINNED_WORKLOAD, {"affinity": 2, "load_balance": 6})
            for run in matrix.RUNS})
        lines = [line.replace("6.1.0-50-cloud-amd64", release) for line in lines]
        # The kernel counted `short` more moves than migwatch saw.
        lines = [line.replace(f"mwm-{matrix.PINNED_WORKLOAD} 8 3 2", f"mwm-{matrix.PINNED_WORKLOAD} {8 + short} 3 2")
                 for line in lines]
        if not fentry:
            lines = [line.replace('probe="move_queued_task",mode="fentry"', 'probe="move_queued_task",mode="none"')
                     for line in lines]
        return lines

    def test_before_5_11_without_fentry_moves_off_an_offline_cpu_may_be_missing(self):
        lines = self._pinned_short_by("5.10.0-32-cloud-amd64", 2, fentry=False)
        run_failures = [f for f in failures(lines) if f.startswith("no-fentry")]
        self.assertEqual(run_failures, [])

    def test_the_offline_allowance_is_at_most_one_move_per_thread(self):
        lines = self._pinned_short_by("5.10.0-32-cloud-amd64", 4, fentry=False)
        self.assertTrue(any("no-fentry: hotplug-pinned" in f for f in failures(lines)))

    def test_with_fentry_or_on_5_11_and_later_nothing_may_be_missing(self):
        with_fentry = [f for f in failures(self._pinned_short_by("5.10.0-32-cloud-amd64", 2, fentry=True))
                       if f.startswith("fentry")]
        self.assertTrue(any("hotplug-pinned" in f for f in with_fentry))
        newer = failures(self._pinned_short_by("6.1.0-50-cloud-amd64", 2, fentry=False))
        self.assertTrue(any("no-fentry: hotplug-pinned" in f for f in newer))

    def test_a_result_line_the_console_garbled_counts_as_missing(self):
        lines = [line.replace("MWM fentry hotplug 3 2", "MWM fentry hotplug 3 [   9.1] smpboot: CPU 3 is now offline")
                 .replace("MWM fentry process pingpong mwm-pingpong 100 3 2",
                          "MWM fentry process pingpong mwm-pingpong 1[   9.2] x00 3 2") for line in guest_output()]
        self.assertEqual(failures(lines), ["fentry: no result for workload pingpong", "fentry: no hotplug result"])

    def test_a_run_that_did_not_finish_fails(self):
        lines = [line for line in guest_output() if line != "MWM no-fentry done"]
        self.assertEqual(failures(lines), ["no-fentry: did not finish"])

    def test_a_kernel_that_never_reported_fails_every_run(self):
        self.assertEqual(failures([]), ["fentry: no results", "no-fentry: no results"])


if __name__ == "__main__":
    unittest.main()
