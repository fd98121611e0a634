#!/usr/bin/env python3
"""NUMA for real: migwatch in a guest with 4 NUMA nodes and many threads.

Boots Debian's 6.1 kernel under QEMU with its CPUs and memory split over 4
NUMA nodes, runs numa_guest.sh in it and judges, against the kernel's own
ground truth:

- node pairs: a spinning thread is flipped FLIPS times between a CPU of
  node 1 and one of node 3, and the growth of its process's se.nr_migrations
  is FLIPS. The cells of migwatch_node_migrations_total count every task's
  moves, and so does their ground truth: tracefs's sched_migrate_task over
  the window, with markers around the two scrapes. Every cell grows by at
  least the moves traced between the scrapes and at most those traced from
  the first scrape's start to the second's end (the same number unless some
  task moved during a scrape). The storm's own traced moves are FLIPS/2 each
  way and equal its se.nr_migrations growth;
- automatic NUMA balancing: a thread touching memory bound to node 3 from
  node 2 is moved to node 3 by the kernel (sched_move_numa, at least once),
  and migwatch's migrations with reason "numa" grow exactly as the kernel's
  tracefs events say (numa_moves_made): for the process, one per
  sched_move_numa or sched_swap_numa naming its thread that a stopper
  thread then carried out; in all, one per task moved so;
- many threads: with THREADS sleeping threads alive, an affinity storm and
  `migwatch check` are counted as the kernel counts them, every per-CPU
  family has one series per online CPU, and the daemon's BPF map memory,
  series and scrape time are recorded (scale.py measures them).

Prints a table, writes the figures to WORK_DIR/numa.json and exits 0 only if
everything holds. See README.md in this directory.
"""

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import matrix
import scale
import vm

KERNEL = "6.1"
RUN = "numa"
NODES = 4
# Measured from start to verdict with 10,000 threads on a 2-core host busy
# with other builds: 8 CPUs 104-134 s, 16 CPUs 101-167 s, 32 CPUs 218-322 s
# (the suite allows a test about 4 minutes).
DEFAULT_CPUS = 16
DEFAULT_THREADS = 10000
# 10,000 threads take about 300 MiB of kernel stacks and task structures.
GUEST_MEMORY_MIB = 2048
GUEST_TIMEOUT_SECONDS = 300
PAIR = ("1", "3")
SETTINGS = {
    "pair_flips": 200,
    # NUMA balancing: scans begin 100 ms after the task starts and come as
    # often as every 100 ms (the defaults, 1000 ms each, leave only a few
    # scans in a cycle under emulation).
    "balance_cycles": 4,
    "balance_seconds": 6,
    "balance_mib": 32,
    "scan_delay_ms": 100,
    "scan_period_min_ms": 100,
    "storm_flips": 50,
    "scrapes": 10,
}
MOVE = re.compile(r"sched_move_numa: pid=(\d+) .*src_cpu=(\d+) src_nid=\d+ dst_cpu=(\d+) dst_nid=(\d+)")
SWAP = re.compile(r"sched_swap_numa: src_pid=(\d+) .*src_cpu=(\d+) .*dst_pid=(\d+) .*dst_cpu=(\d+)")
STICK = re.compile(r"sched_stick_numa: ")
# The guest's markers around the pair window's scrapes, in order.
PAIR_MARKS = ["pair-before begin", "pair-before end", "pair-after begin", "pair-after end"]
PAIR_MARKER = re.compile(r"tracing_mark_write: mwm (pair-(?:before|after) (?:begin|end))\s*$")
# The executing task's comm and pid prefix a trace line; a comm may hold
# spaces, but a stopper's does not.
MIGRATE = re.compile(r"(\S+)-\d+\s+\[\d+\].*sched_migrate_task: .* pid=(\d+) prio=-?\d+ "
                     r"orig_cpu=(\d+) dest_cpu=(\d+)\s*$")


def numa_moves_made(trace: list[str]) -> tuple[dict, int]:
    """The migrations NUMA balancing made, per pid, from tracefs lines in
    order, and the requests that moved nothing.

    sched_move_numa and sched_swap_numa fire before the stopper runs; the
    stopper moves nothing if the task left that CPU meanwhile (under
    emulation, another CPU's balancer pulled it while it waited behind the
    stopper: seen with 32 CPUs). A request counts as made when the task's
    next sched_migrate_task is a stopper thread's (migration/N) from the
    requested CPU to the requested one."""
    pending, made, void = {}, {}, 0
    for line in trace:
        if (match := MOVE.search(line)):
            void += match.group(1) in pending
            pending[match.group(1)] = (match.group(2), match.group(3))
        elif (match := SWAP.search(line)):
            src_pid, src_cpu, dst_pid, dst_cpu = match.groups()
            for pid, move in ((src_pid, (src_cpu, dst_cpu)), (dst_pid, (dst_cpu, src_cpu))):
                void += pid in pending
                pending[pid] = move
        elif (match := MIGRATE.search(line)) and match.group(3) != match.group(4) and match.group(2) in pending:
            executor, pid, orig, dest = match.groups()
            if executor.startswith("migration/") and pending.pop(pid) == (orig, dest):
                made[pid] = made.get(pid, 0) + 1
            else:
                pending.pop(pid, None)
                void += 1
    return made, void + len(pending)


def records(lines: list[str]) -> list[tuple[str, str]]:
    """(kind, rest) of every record of run RUN."""
    found = []
    for line in lines:
        match = matrix.RECORD.search(line.rstrip("\n"))
        if match and match.group(1) == RUN:
            found.append((match.group(2), match.group(3) or ""))
    return found


def node_cells(samples) -> dict:
    return {(s.labels.get("from_node"), s.labels.get("to_node")): s.value
            for s in samples if s.name == "migwatch_node_migrations_total"}


def numa_counts(samples, process: str) -> tuple[float, float]:
    """migwatch's reason="numa" migrations: all of them, and the process's."""
    total = sum(s.value for s in samples if s.name == "migwatch_migrations_total" and s.labels.get("reason") == "numa")
    mine = sum(s.value for s in samples if s.name == "migwatch_process_migrations_total"
               and s.labels.get("reason") == "numa" and s.labels.get("process") == process)
    return total, mine


def cpu_nodes(found) -> dict[str, str]:
    """CPU -> node, from the guest's node records ("MWM numa node 1 4-7")."""
    nodes = {}
    for kind, rest in found:
        if kind == "node" and len(rest.split()) == 2:
            node, cpulist = rest.split()
            for cpu in scale.cpu_list(cpulist):
                nodes[str(cpu)] = node
    return nodes


def traced_pair_moves(trace: list[str], nodes: dict, tids: set) -> dict:
    """From the pair window's trace: the moves per (from node, to node) that
    fell between the two scrapes ("inner"), those from the start of the first
    scrape to the end of the second ("outer"), and the storm's own inner ones
    ("storm"); None if a marker is missing."""
    moves = {"inner": {}, "outer": {}, "storm": {}}
    marks = []
    for line in trace:
        if (marker := PAIR_MARKER.search(line)):
            marks.append(marker.group(1))
            continue
        match = MIGRATE.search(line)
        if not match or not marks or marks[-1] == "pair-after end":
            continue
        _, pid, orig, dest = match.groups()
        cell = (nodes.get(orig), nodes.get(dest))
        kinds = ["outer"]
        if marks[-1] == "pair-before end":
            kinds += ["inner"] + (["storm"] if pid in tids else [])
        for kind in kinds:
            moves[kind][cell] = moves[kind].get(cell, 0) + 1
    return moves if marks == PAIR_MARKS else None


def judge_pair(found, run: matrix.Run, figures: dict) -> list[str]:
    pair = next((rest.split() for kind, rest in found if kind == "pair"), None)
    kernel = next((matrix.integers(rest, 2) for kind, rest in found if kind == "pair-kernel"), None)
    tids = next((set(rest.split()) for kind, rest in found if kind == "pair-tids"), set())
    lost = next((matrix.integers(rest, 1) for kind, rest in found if kind == "pair-trace-lost"), None)
    if not pair or len(pair) != 5 or not kernel or lost is None:
        return ["node pair: no result (the storm did not run or did not end)"]
    flips = int(pair[4])
    before, after = node_cells(run.snapshots.get("pair-before", [])), node_cells(run.snapshots.get("pair-after", []))
    grown = {cell: after.get(cell, 0) - before.get(cell, 0) for cell in after}
    traced = traced_pair_moves([rest for kind, rest in found if kind == "pair-trace"], cpu_nodes(found), tids)
    name = "->".join
    figures["pair"] = {"nodes": PAIR, "cpus": [int(pair[2]), int(pair[3])], "flips": flips,
                       "migwatch": {name(PAIR): grown.get(PAIR, 0), name(PAIR[::-1]): grown.get(PAIR[::-1], 0)},
                       "kernel": kernel[1] - kernel[0],
                       "other_cells_grown": {name(cell): value for cell, value in grown.items()
                                             if value and cell not in (PAIR, PAIR[::-1])},
                       "traced": traced and {kind: {name(cell): n for cell, n in cells.items()}
                                             for kind, cells in traced.items()}}
    failures = []
    if not before or not after:
        failures.append("node pair: no migwatch_node_migrations_total series")
    if kernel[1] - kernel[0] != flips:
        failures.append(f"node pair: the kernel counted {kernel[1] - kernel[0]} migrations for {flips} flips")
    if lost[0] != 0:
        failures.append(f"node pair: the trace buffer lost {lost[0]} events")
    if traced is None:
        return failures + ["node pair: the trace lacks the scrape markers"]
    storm = traced["storm"]
    if (sum(storm.values()) != kernel[1] - kernel[0] or storm.get(PAIR, 0) != flips // 2
            or storm.get(PAIR[::-1], 0) != flips // 2):
        failures.append(f"node pair: the trace has the storm's moves as {storm}, the kernel "
                        f"{kernel[1] - kernel[0]} for {flips} flips")
    for cell in sorted(set(grown) | set(traced["outer"]), key=str):
        low, high = traced["inner"].get(cell, 0), traced["outer"].get(cell, 0)
        if not low <= grown.get(cell, 0) <= high:
            failures.append(f"node pair: migwatch's {name(cell)} cell grew by {grown.get(cell, 0):.0f}, the trace "
                            f"has {low} moves between the scrapes and {high} from the first's start to the "
                            "second's end")
    return failures


def judge_balance(found, run: matrix.Run, figures: dict) -> list[str]:
    balance = next((rest.split() for kind, rest in found if kind == "balance"), None)
    if not balance or len(balance) != 4 or not run.snapshots.get("balance-after"):
        return ["NUMA balancing: no result (the workload did not run or did not end)"]
    tid = balance[3]
    trace = [rest for kind, rest in found if kind == "trace"]
    moves = [match.groups() for line in trace if (match := MOVE.search(line))]
    swaps = [match.groups() for line in trace if (match := SWAP.search(line))]
    sticks = sum(1 for line in trace if STICK.search(line))
    made, void = numa_moves_made(trace)
    lost = next((matrix.integers(rest, 1) for kind, rest in found if kind == "trace-lost"), None)
    total_before, mine_before = numa_counts(run.snapshots.get("balance-before", []), "mws-numa")
    total_after, mine_after = numa_counts(run.snapshots["balance-after"], "mws-numa")
    own_moves = sum(1 for move in moves if move[0] == tid)
    own_to_memory = sum(1 for move in moves if move[0] == tid and move[3] == balance[0])
    own_swaps = sum((swap[0] == tid) + (swap[2] == tid) for swap in swaps)
    figures["balance"] = {
        "memory_node": int(balance[0]), "away_cpus": balance[1], "free_cpus": balance[2],
        "kernel": {"sched_move_numa": len(moves), "sched_swap_numa": len(swaps), "sched_stick_numa": sticks,
                   "moves_of_thread": own_moves, "moves_to_memory": own_to_memory,
                   "swaps_of_thread": own_swaps, "numa_migrations": sum(made.values()),
                   "numa_migrations_of_thread": made.get(tid, 0), "requests_that_moved_nothing": void},
        "migwatch": {"numa": total_after - total_before, "numa_of_process": mine_after - mine_before},
        "settings": {key: SETTINGS[key] for key in ("balance_cycles", "balance_seconds", "balance_mib",
                                                     "scan_delay_ms", "scan_period_min_ms")}}
    failures = []
    if lost is None or lost[0] != 0:
        failures.append(f"NUMA balancing: the trace buffer lost {lost} events")
    if own_to_memory == 0:
        failures.append("NUMA balancing never moved the thread to its memory's node (no sched_move_numa "
                        f"to node {balance[0]} for tid {tid})")
    if mine_after - mine_before != made.get(tid, 0):
        failures.append(f"NUMA balancing: migwatch counted {mine_after - mine_before:.0f} numa migrations of "
                        f"mws-numa, the kernel {made.get(tid, 0)} (its thread in {own_moves} sched_move_numa and "
                        f"{own_swaps} sched_swap_numa)")
    if total_after - total_before != sum(made.values()):
        failures.append(f"NUMA balancing: migwatch counted {total_after - total_before:.0f} numa migrations in all, "
                        f"the kernel {sum(made.values())} ({len(moves)} sched_move_numa, {len(swaps)} "
                        f"sched_swap_numa, {void} requests that moved nothing)")
    return failures


def judge_threads(found, figures: dict, threads: int) -> list[str]:
    live = next((matrix.integers(rest, 2) for kind, rest in found if kind == "threads"), None)
    after = next((matrix.integers(rest, 1) for kind, rest in found if kind == "threads-after"), None)
    figures["threads"] = {"asked": threads, "live": live and live[0], "live_after": after and after[0],
                          "creation_seconds": live and live[1] / 100}
    # The sleepers are THREADS threads beside the process's main thread.
    if not live or live[0] != threads + 1 or not after or after[0] != threads + 1:
        return [f"threads: {live and live[0]} live then {after and after[0]}, expected {threads + 1}"]
    return []


def print_report(figures: dict) -> None:
    cell = scale.cell
    pair, balance, threads = figures.get("pair") or {}, figures.get("balance") or {}, figures.get("threads") or {}
    rows = [
        ("CPUs online / possible", f"{len(figures['online_cpus'] or [])} / {figures['possible_cpus']}"),
        ("NUMA nodes", str(figures["nodes"])),
        ("live threads (sleepers)", cell(threads.get("live"))),
        ("BPF maps", f"{figures['map_bytes'] / 2**20:.2f} MiB in {len(figures['maps'])} maps"),
        ("series on /metrics", str(figures["series"])),
        ("scrape ms (collect, served)", f"{cell(figures.get('scrape_ms'))} ({cell(figures.get('collect_ms'))}, "
                                        f"{cell(figures.get('served_ms'))})"),
        ("storm migwatch / kernel", f"{cell(figures['storm']['migwatch'])} / {cell(figures['storm']['kernel'])}"),
        ("check migwatch / kernel", f"{cell(figures['check']['migwatch'])} / {cell(figures['check']['kernel'])}"),
        ("node pair flips / cells / kernel",
         f"{cell(pair.get('flips'))} / {pair.get('migwatch')} / {cell(pair.get('kernel'))}"),
        ("numa: migwatch (process)",
         f"{cell((balance.get('migwatch') or {}).get('numa'), 0)} "
         f"({cell((balance.get('migwatch') or {}).get('numa_of_process'), 0)})"),
        ("numa: kernel migrations (thread)",
         "-" if not balance else f"{balance['kernel']['numa_migrations']} "
                                 f"({balance['kernel']['numa_migrations_of_thread']})"),
        ("numa: kernel move/swap/stick/void",
         "-" if not balance else f"{balance['kernel']['sched_move_numa']}/{balance['kernel']['sched_swap_numa']}/"
                                 f"{balance['kernel']['sched_stick_numa']}/"
                                 f"{balance['kernel']['requests_that_moved_nothing']}"),
        ("guest seconds", f"{figures['seconds']:.0f}"),
    ]
    vm.print_table(("what", "measured"), rows)
    for failure in figures["failures"]:
        print(f"FAIL {failure}")


def main(argv: list) -> int:
    parser = scale.guest_parser("numa.py", __doc__.splitlines()[0], "numa.json")
    parser.add_argument("--cpus", type=vm.positive_int, default=DEFAULT_CPUS,
                        help=f"guest CPUs, split over {NODES} nodes (default {DEFAULT_CPUS})")
    parser.add_argument("--threads", type=vm.positive_int, default=DEFAULT_THREADS,
                        help=f"sleeping threads (default {DEFAULT_THREADS})")
    arguments = parser.parse_args(argv)
    work_dir = arguments.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    started = time.monotonic()
    settings = dict(SETTINGS, threads=arguments.threads)
    try:
        kernel = vm.fetch_kernel(KERNEL)
        initrd = work_dir / "initrd.img"
        with tempfile.TemporaryDirectory() as scratch:
            conf = Path(scratch) / "numa.conf"
            conf.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
            vm.build_initramfs(here / "numa_guest.sh", scale.guest_files(arguments, f"{conf}:/numa.conf"),
                               GUEST_TIMEOUT_SECONDS, initrd)
    except vm.HarnessError as error:
        print(f"numa: {error}", file=sys.stderr)
        return 1

    vm.log(f"{KERNEL}: booting {kernel.package} with {arguments.cpus} CPUs on {NODES} NUMA nodes")
    # One host thread for all vCPUs: a clean-checkout run once saw the guest
    # fall silent while the daemon detached its programs, as the systemd
    # host guests did before they ran this way (vm.boot_once). On two host
    # CPUs it costs no time: 56-61 s either way.
    result = vm.boot(kernel, initrd, arguments.cpus, GUEST_MEMORY_MIB, GUEST_TIMEOUT_SECONDS, "",
                     work_dir / "numa.log", lambda line: print(f"[numa] {line}", flush=True),
                     numa_nodes=NODES, one_host_thread=True)
    if result.status is None:
        vm.report_missing_status("numa", result)
    lines = result.log_path.read_text(errors="replace").splitlines()
    results = matrix.parse_results(lines)
    run = results.runs.get(RUN, matrix.Run())
    found = records(lines)
    figures = scale.measure(lines, RUN)
    figures.update(kernel=result.kernel_release, seconds=round(result.seconds, 1), exit_status=result.status,
                   nodes=sum(1 for kind, _ in found if kind == "node"))
    failures = [] if result.status == 0 else [f"guest script exit status {result.status}"]
    if figures["nodes"] != NODES:
        failures.append(f"the guest has {figures['nodes']} NUMA nodes, expected {NODES}")
    failures += scale.judge_guest(arguments.cpus, figures, results, RUN, arguments.cpus)
    failures += judge_pair(found, run, figures)
    failures += judge_balance(found, run, figures)
    failures += judge_threads(found, figures, arguments.threads)
    figures["failures"] = failures

    (work_dir / "numa.json").write_text(json.dumps(
        {"kernel": kernel.version, "cpus": arguments.cpus, "nodes": NODES, "memory_mib": GUEST_MEMORY_MIB,
         "settings": settings, "guest": figures}, indent=2, default=list) + "\n")
    print()
    print_report(figures)
    passed = not failures
    print(f"\nNUMA {'PASS' if passed else 'FAIL'} in {time.monotonic() - started:.0f} s; "
          f"figures in {work_dir / 'numa.json'}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
