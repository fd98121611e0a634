#!/usr/bin/env python3
"""How numa.py judges node pairs and NUMA balancing, on trace and result
lines shaped like numa_guest.sh's (the NUMA ones taken from a real run)."""

import unittest

import matrix
import numa

TID = "295"
# A 16-CPU run: the thread asked twice to go from node 2 to node 3; the first
# time kcompactd2's newidle balance on CPU 9 pulled it away before the
# stopper of CPU 8 ran, so only the second request moved it.
VOID_THEN_MADE = [
    "mws-numa-295     [008] .....    91.915172: sched_move_numa: pid=295 tgid=295 ngid=0 src_cpu=8 src_nid=2 "
    "dst_cpu=12 dst_nid=3",
    "kcompactd2-121     [009] d..2.    92.069371: sched_migrate_task: comm=mws-numa pid=295 prio=120 orig_cpu=8 "
    "dest_cpu=9",
    "mws-numa-295     [009] .....    92.337469: sched_move_numa: pid=295 tgid=295 ngid=0 src_cpu=9 src_nid=2 "
    "dst_cpu=12 dst_nid=3",
    "migration/9-64      [009] d..3.    92.338097: sched_migrate_task: comm=mws-numa pid=295 prio=120 orig_cpu=9 "
    "dest_cpu=12",
]
SWAP = [
    "a-5 [001] .....  3.0: sched_swap_numa: src_pid=5 src_tgid=5 src_ngid=0 src_cpu=1 src_nid=0 dst_pid=6 "
    "dst_tgid=6 dst_ngid=0 dst_cpu=3 dst_nid=1",
    "migration/3-9 [003] d..2.  3.1: sched_migrate_task: comm=CPU 0/KVM pid=5 prio=120 orig_cpu=1 dest_cpu=3",
    "migration/3-9 [003] d..2.  3.1: sched_migrate_task: comm=b pid=6 prio=120 orig_cpu=3 dest_cpu=1",
]


def balance_lines(trace, numa_before=0, numa_after=1, lost=0):
    lines = [f"MWM numa balance 3 8,9 8,9,12,13 {TID}",
             f'MWM numa metric balance-before migwatch_migrations_total{{reason="numa"}} {numa_before}',
             f'MWM numa metric balance-before migwatch_process_migrations_total{{process="mws-numa",reason="numa"}} '
             f'{numa_before}',
             f'MWM numa metric balance-after migwatch_migrations_total{{reason="numa"}} {numa_after}',
             f'MWM numa metric balance-after migwatch_process_migrations_total{{process="mws-numa",reason="numa"}} '
             f'{numa_after}']
    return lines + [f"MWM numa trace {line}" for line in trace] + [f"MWM numa trace-lost {lost}"]


def judge_balance(lines):
    figures = {}
    run = matrix.parse_results(lines).runs.get(numa.RUN, matrix.Run())
    return numa.judge_balance(numa.records(lines), run, figures), figures


class MovesMade(unittest.TestCase):
    def test_a_request_the_balancer_overtook_moved_nothing(self):
        self.assertEqual(numa.numa_moves_made(VOID_THEN_MADE), ({TID: 1}, 1))

    def test_a_swap_moves_both_tasks(self):
        self.assertEqual(numa.numa_moves_made(SWAP), ({"5": 1, "6": 1}, 0))

    def test_a_request_never_carried_out_is_void(self):
        self.assertEqual(numa.numa_moves_made(VOID_THEN_MADE[:1]), ({}, 1))


class Balance(unittest.TestCase):
    def test_migwatch_equal_to_the_moves_made_passes(self):
        failures, figures = judge_balance(balance_lines(VOID_THEN_MADE, numa_after=1))
        self.assertEqual(failures, [])
        self.assertEqual(figures["balance"]["kernel"]["requests_that_moved_nothing"], 1)

    def test_counting_the_requests_fails(self):
        failures, _ = judge_balance(balance_lines(VOID_THEN_MADE, numa_after=2))
        self.assertEqual(len(failures), 2, failures)

    def test_no_move_to_the_memory_fails(self):
        failures, _ = judge_balance(balance_lines([], numa_after=0))
        self.assertTrue(any("never moved" in failure for failure in failures), failures)

    def test_lost_events_fail(self):
        failures, _ = judge_balance(balance_lines(VOID_THEN_MADE, numa_after=1, lost=3))
        self.assertTrue(any("lost" in failure for failure in failures), failures)


def migrate(executor: str, pid: int, orig: int, dest: int) -> str:
    return (f"{executor} [{orig:03d}] d..2.  5.0: sched_migrate_task: comm=x pid={pid} prio=120 orig_cpu={orig} "
            f"dest_cpu={dest}")


def marker(text: str) -> str:
    return f"sh-1 [000] .....  5.0: tracing_mark_write: mwm {text}"


class Pair(unittest.TestCase):
    """200 flips of thread 21 (process 20) between CPU 4 (node 1) and CPU 12
    (node 3) of a 16-CPU guest."""

    STORM = [migrate("mws-pair-20", 21, 4, 12) if i % 2 == 0 else migrate("mws-pair-20", 21, 12, 4)
             for i in range(200)]

    @staticmethod
    def lines(forward, backward, kernel_after=201, trace=None, other_cells=(), lost=0):
        cells = lambda name, f, b, extra: [  # noqa: E731
            f'MWM numa metric {name} migwatch_node_migrations_total{{from_node="1",to_node="3"}} {f}',
            f'MWM numa metric {name} migwatch_node_migrations_total{{from_node="3",to_node="1"}} {b}'] + [
            f'MWM numa metric {name} migwatch_node_migrations_total{{from_node="{a}",to_node="{b}"}} {n}'
            for a, b, n in extra]
        if trace is None:
            trace = ([marker("pair-before begin"), marker("pair-before end")] + Pair.STORM
                     + [marker("pair-after begin"), marker("pair-after end")])
        return ([f"MWM numa node {node} {4 * node}-{4 * node + 3}" for node in range(4)]
                + ["MWM numa pair 1 3 4 12 200", "MWM numa pair-tids 20 21"]
                + cells("pair-before", 0, 0, [(a, b, 0) for a, b, _ in other_cells])
                + cells("pair-after", forward, backward, other_cells)
                + [f"MWM numa pair-kernel 1 {kernel_after}"]
                + [f"MWM numa pair-trace {line}" for line in trace] + [f"MWM numa pair-trace-lost {lost}"])

    def judge(self, lines):
        run = matrix.parse_results(lines).runs.get(numa.RUN, matrix.Run())
        return numa.judge_pair(numa.records(lines), run, {})

    def test_exact_cells_pass(self):
        self.assertEqual(self.judge(self.lines(100, 100)), [])

    def test_one_move_off_fails(self):
        self.assertEqual(len(self.judge(self.lines(100, 99))), 1)

    def test_a_kernel_count_other_than_the_flips_fails(self):
        self.assertEqual(len(self.judge(self.lines(100, 100, kernel_after=202))), 2)

    def test_another_tasks_move_between_the_scrapes_is_counted_too(self):
        # A kworker moved from node 3 to node 1 and kcompactd1 within node 1
        # while the storm ran: both cells must show it.
        others = [migrate("kworker/u32:1-7", 9, 12, 5), migrate("kcompactd1-30", 30, 5, 6)]
        trace = ([marker("pair-before begin"), marker("pair-before end")] + self.STORM[:50] + others
                 + self.STORM[50:] + [marker("pair-after begin"), marker("pair-after end")])
        self.assertEqual(self.judge(self.lines(100, 101, trace=trace, other_cells=[("1", "1", 1)])), [])
        self.assertEqual(len(self.judge(self.lines(100, 100, trace=trace, other_cells=[("1", "1", 1)]))), 1)
        self.assertEqual(len(self.judge(self.lines(100, 101, trace=trace))), 1)

    def test_a_move_during_a_scrape_may_or_may_not_be_counted(self):
        during = [migrate("kworker/u32:1-7", 9, 12, 5)]
        trace = ([marker("pair-before begin")] + during + [marker("pair-before end")] + self.STORM
                 + [marker("pair-after begin"), marker("pair-after end")])
        self.assertEqual(self.judge(self.lines(100, 100, trace=trace)), [])
        self.assertEqual(self.judge(self.lines(100, 101, trace=trace)), [])
        self.assertEqual(len(self.judge(self.lines(100, 102, trace=trace))), 1)

    def test_a_trace_without_its_markers_or_with_losses_fails(self):
        self.assertEqual(len(self.judge(self.lines(100, 100, trace=self.STORM))), 1)
        self.assertEqual(len(self.judge(self.lines(100, 100, lost=3))), 1)


if __name__ == "__main__":
    unittest.main()
