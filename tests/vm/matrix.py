#!/usr/bin/env python3
"""The kernel matrix: one migwatch build must load, attach and count right on
every kernel it supports, picking the best probe mode each kernel allows.

Runs matrix_guest.sh on the running kernel and, through vm.py, in Debian's
5.10, 6.1 and 6.12 kernels under QEMU; reads the "MWM" result lines each run
printed, judges them and prints three tables: kernel x probe -> mode,
workload -> counted vs kernel, and CPU hotplug. Exits 0 only if every kernel
passes. See README.md in this directory.
"""

import argparse
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import vm

HOST = "host"
KERNEL_ALIASES = (HOST, *vm.KERNELS)
RUNS = ("fentry", "no-fentry")
WORKLOADS = ("affinity-running", "affinity-queued", "pingpong", "spinners", "hotplug-pinned")
# Its spinners are pinned to the CPU the guest takes offline.
PINNED_WORKLOAD = "hotplug-pinned"
# Hooks on tracepoints, and the mode each must get on every kernel of the
# matrix: all have BTF and are 5.5 or newer, so tp_btf; the task iterator is
# an iterator. Every other hook is an fentry hook, judged against what
# probe_fentry found the kernel allows.
TRACEPOINT_MODES = {
    "sched_migrate_task": "tp_btf",
    "sched_switch": "tp_btf",
    "sched_waking": "tp_btf",
    "cpuhp_enter": "tp_btf",
    "sched_move_numa": "tp_btf",
    "sched_swap_numa": "tp_btf",
    "task_rename": "tp_btf",
    "sched_process_exec": "tp_btf",
    "sched_process_exit": "tp_btf",
    "sched_process_free": "tp_btf",
    "task": "iter",
}
# Tracepoint hooks only kernels whose BTF hides preempt_count need (Debian's
# 5.10): present there, in this mode, and absent elsewhere.
KERNEL_SPECIFIC_MODES = {
    "softirq_entry": "tp_btf",
    "softirq_exit": "tp_btf",
}
HOST_SCRIPT_TIMEOUT_SECONDS = 120
GUEST_SCRIPT_TIMEOUT_SECONDS = 330

RECORD = re.compile(r"MWM (\S+) (\S+)(?: (.*))?$")
SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
CHECK_STORM = re.compile(r"storm\s+(\d+) affinity flips .*?migwatch counted (\d+).*?kernel se\.nr_migrations (\d+)")


# ---------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    labels: dict
    value: float


@dataclasses.dataclass(frozen=True)
class ProcessRecord:
    workload: str
    name: str
    kernel: int
    threads: int
    at_least: int


@dataclasses.dataclass
class Run:
    check_lines: list = dataclasses.field(default_factory=list)
    check_exit: int | None = None
    snapshots: dict = dataclasses.field(default_factory=dict)  # name -> [Sample]
    processes: list = dataclasses.field(default_factory=list)
    hotplug: tuple | None = None  # (cpu, tasks pinned to it)
    hotplug_not_run: str | None = None
    done: bool = False


@dataclasses.dataclass
class KernelResults:
    release: str = "?"
    fentry: dict = dataclasses.field(default_factory=dict)  # function -> probe_fentry's result
    runs: dict = dataclasses.field(default_factory=dict)  # run -> Run


def parse_sample(line: str) -> Sample | None:
    match = SAMPLE.match(line)
    if not match:
        return None
    try:
        value = float(match.group(3))
    except ValueError:
        return None
    labels = {key: value for key, value in LABEL.findall(match.group(2))}
    return Sample(match.group(1), labels, value)


def integers(text: str, count: int) -> list[int] | None:
    """`count` whitespace-separated integers, or None for a line the console
    garbled (the judge then finds the record missing)."""
    fields = text.split()
    if len(fields) != count or not all(field.isdigit() for field in fields):
        return None
    return [int(field) for field in fields]


def parse_results(lines) -> KernelResults:
    """The MWM records of one kernel's console or output; anything else
    (boot messages, the workloads' own output) is ignored."""
    results = KernelResults()
    for line in lines:
        match = RECORD.search(line.rstrip("\n"))
        if not match:
            continue
        scope, kind, rest = match.group(1), match.group(2), match.group(3) or ""
        if scope == "kernel":
            if kind == "release":
                results.release = rest
            elif kind == "fentry" and (target := re.search(r"target=(\S+)", rest)):
                result = re.search(r"result=(.*)$", rest)
                results.fentry[target.group(1)] = result.group(1) if result else "?"
            continue
        run = results.runs.setdefault(scope, Run())
        if kind == "check":
            run.check_lines.append(rest)
        elif kind == "check-exit" and (status := integers(rest, 1)):
            run.check_exit = status[0]
        elif kind == "metric":
            snapshot, _, metric_line = rest.partition(" ")
            if (sample := parse_sample(metric_line)) is not None:
                run.snapshots.setdefault(snapshot, []).append(sample)
        elif kind == "process":
            fields = rest.split(maxsplit=2)
            if len(fields) == 3 and (numbers := integers(fields[2], 3)):
                run.processes.append(ProcessRecord(fields[0], fields[1], *numbers))
        elif kind == "hotplug" and (numbers := integers(rest, 2)):
            run.hotplug = (numbers[0], numbers[1])
        elif kind == "hotplug-not-run":
            run.hotplug_not_run = rest
        elif kind == "done":
            run.done = True
    return results


# ---------------------------------------------------------------- judging


def sum_by(samples, name: str, label: str, **match) -> dict:
    """Values of metric `name` summed per value of `label`, over the samples
    whose other labels equal `match`."""
    sums = {}
    for sample in samples:
        if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items()):
            key = sample.labels.get(label, "")
            sums[key] = sums.get(key, 0) + sample.value
    return sums


def growth(before: dict, after: dict) -> dict:
    return {key: after.get(key, 0) - before.get(key, 0) for key in after if after.get(key, 0) != before.get(key, 0)}


def format_counts(counts: dict, digits: int = 0) -> str:
    return " ".join(f"{key}={value:.{digits}f}" for key, value in sorted(counts.items(), key=lambda kv: -kv[1])) or "-"


@dataclasses.dataclass
class Verdicts:
    """Table rows and failures of one kernel."""
    modes: dict = dataclasses.field(default_factory=dict)  # probe -> {run: (mode, expected)}
    counts: list = dataclasses.field(default_factory=list)
    hotplug: list = dataclasses.field(default_factory=list)
    failures: list = dataclasses.field(default_factory=list)


def expected_mode(probe: str, run: str, fentry: dict) -> str | None:
    if probe in TRACEPOINT_MODES:
        return TRACEPOINT_MODES[probe]
    if probe in KERNEL_SPECIFIC_MODES:
        return KERNEL_SPECIFIC_MODES[probe]
    if probe not in fentry:
        return None
    return "fentry" if run == "fentry" and fentry[probe] == "attached" else "none"


def judge_probes(results: KernelResults, run_name: str, run: Run, verdicts: Verdicts) -> None:
    samples = run.snapshots.get("probes", [])
    if not samples:
        verdicts.failures.append(f"{run_name}: no migwatch_probe_attached scrape")
        return
    reported = {s.labels["probe"]: s.labels["mode"] for s in samples if s.name == "migwatch_probe_attached"}
    for probe in TRACEPOINT_MODES.keys() - reported.keys():
        verdicts.failures.append(f"{run_name}: probe {probe} not reported")
    for probe, mode in reported.items():
        expected = expected_mode(probe, run_name, results.fentry)
        verdicts.modes.setdefault(probe, {})[run_name] = (mode, expected)
        if expected is None:
            verdicts.failures.append(f"{run_name}: probe {probe}: no tracepoint expectation and no probe_fentry "
                                     "result (a new tracepoint hook belongs in TRACEPOINT_MODES)")
        elif mode != expected:
            allows = f" (probe_fentry: {results.fentry[probe]})" if probe in results.fentry else ""
            verdicts.failures.append(f"{run_name}: probe {probe} attached as {mode}, expected {expected}{allows}")


def judge_check(run_name: str, run: Run, verdicts: Verdicts) -> None:
    storm = next((m for line in run.check_lines if (m := CHECK_STORM.search(line))), None)
    flips, counted, kernel = map(int, storm.groups()) if storm else (0, None, None)
    ok = run.check_exit == 0 and storm is not None and counted == kernel and kernel >= flips
    verdicts.counts.append((run_name, "check storm", counted, kernel, "pass" if ok else "FAIL", "-"))
    if not ok:
        verdicts.failures.append(
            f"{run_name}: migwatch check exited {run.check_exit}, storm counted {counted} vs kernel {kernel}")


# Before 5.11, migrate_tasks() empties a dying CPU after it is marked offline,
# and no tracepoint fires on an offline CPU: only the fexit on
# move_queued_task sees those moves. Without it, migwatch misses them (a
# documented limitation): each thread that was on the CPU, at most one move.
# Workloads running while the CPU goes offline may be short by that much.
OFFLINE_WORKLOADS = ("spinners", PINNED_WORKLOAD)


def offline_moves_invisible(release: str, run: Run) -> bool:
    version = re.match(r"(\d+)\.(\d+)", release)
    before_5_11 = bool(version) and (int(version[1]), int(version[2])) < (5, 11)
    modes = {s.labels["probe"]: s.labels["mode"] for s in run.snapshots.get("probes", [])
             if s.name == "migwatch_probe_attached"}
    return before_5_11 and modes.get("move_queued_task") != "fentry"


def judge_processes(run_name: str, run: Run, verdicts: Verdicts, offline_invisible: bool = False) -> None:
    by_workload = {record.workload: record for record in run.processes}
    for workload in WORKLOADS:
        record = by_workload.get(workload)
        if record is None:
            verdicts.counts.append((run_name, workload, None, None, "FAIL", "not run"))
            verdicts.failures.append(f"{run_name}: no result for workload {workload}")
            continue
        reasons = sum_by(run.snapshots.get(workload, []), "migwatch_process_migrations_total", "reason",
                         process=record.name)
        counted = round(sum(reasons.values()))
        limited = offline_invisible and workload in OFFLINE_WORKLOADS and \
            counted <= record.kernel <= counted + record.threads
        ok = (counted == record.kernel or limited) and record.kernel >= record.at_least
        verdicts.counts.append((run_name, workload, counted, record.kernel,
                                ("pass (offline CPU not traced)" if limited and counted != record.kernel else "pass")
                                if ok else "FAIL",
                                format_counts({k: v for k, v in reasons.items() if v})))
        if counted != record.kernel and not limited:
            verdicts.failures.append(
                f"{run_name}: {workload}: migwatch counted {counted} migrations of {record.name}, "
                f"the kernel {record.kernel} (se.nr_migrations over {record.threads} threads)")
        elif record.kernel < record.at_least:
            verdicts.failures.append(
                f"{run_name}: {workload}: only {record.kernel} migrations, the workload makes at least "
                f"{record.at_least}")


def judge_hotplug(run_name: str, run: Run, hotplug_required: bool, verdicts: Verdicts,
                  offline_invisible: bool = False) -> None:
    if run.hotplug is None:
        if run.hotplug_not_run and not hotplug_required:
            verdicts.hotplug.append((run_name, "-", "-", "-", "-", "-", f"not run: {run.hotplug_not_run}"))
        else:
            verdicts.hotplug.append((run_name, "-", "-", "-", "-", "-", "FAIL"))
            verdicts.failures.append(f"{run_name}: no hotplug result")
        return
    cpu, tasks = run.hotplug
    before, after = run.snapshots.get("before-offline", []), run.snapshots.get("after-offline", [])
    reasons = growth(sum_by(before, "migwatch_migrations_total", "reason"),
                     sum_by(after, "migwatch_migrations_total", "reason"))
    work_seconds = growth(sum_by(before, "migwatch_stopper_work_seconds_total", "work"),
                          sum_by(after, "migwatch_stopper_work_seconds_total", "work"))
    # Pinned to the CPU, the spinners leave it only because it goes offline:
    # their own process must show those moves as hotplug, whatever else the
    # host-wide counter caught meanwhile.
    pinned = next((record for record in run.processes if record.workload == PINNED_WORKLOAD), None)
    pinned_hotplug = round(sum_by(run.snapshots.get(PINNED_WORKLOAD, []), "migwatch_process_migrations_total",
                                  "reason", process=pinned.name).get("hotplug", 0)) if pinned else 0
    problems = []
    if not before or not after:
        problems.append("scrapes missing")
    if tasks < 1:
        problems.append(f"no pinned task was on CPU {cpu}")
    if pinned_hotplug < tasks and not offline_invisible:
        problems.append(f"{pinned_hotplug} migrations of the pinned process labelled hotplug, "
                        f"but {tasks} of its tasks had to leave")
    if work_seconds.get("hotplug", 0) <= 0:
        problems.append("no stopper time charged to hotplug work")
    verdicts.hotplug.append((run_name, str(cpu), str(tasks), str(pinned_hotplug), format_counts(reasons),
                             format_counts({k: v * 1e3 for k, v in work_seconds.items()}, 3),
                             "pass" if not problems else "FAIL"))
    verdicts.failures.extend(f"{run_name}: hotplug of CPU {cpu}: {problem}" for problem in problems)


def judge(results: KernelResults, hotplug_required: bool) -> Verdicts:
    verdicts = Verdicts()
    for run_name in RUNS:
        run = results.runs.get(run_name)
        if run is None:
            verdicts.failures.append(f"{run_name}: no results")
            continue
        if not run.done:
            verdicts.failures.append(f"{run_name}: did not finish")
        judge_probes(results, run_name, run, verdicts)
        judge_check(run_name, run, verdicts)
        invisible = offline_moves_invisible(results.release, run)
        judge_processes(run_name, run, verdicts, invisible)
        judge_hotplug(run_name, run, hotplug_required, verdicts, invisible)
    return verdicts


def print_report(kernels: dict) -> None:
    """kernels: alias -> (KernelResults, Verdicts)."""
    aliases = list(kernels)
    print("\nProbe modes (fentry run / --no-fentry run; '!' marks a mode other than expected):")
    probes = []
    for _, verdicts in kernels.values():
        probes += [probe for probe in verdicts.modes if probe not in probes]
    rows = []
    for probe in probes:
        row = [probe]
        for alias in aliases:
            runs = kernels[alias][1].modes.get(probe, {})
            cells = []
            for run in RUNS:
                mode, expected = runs.get(run, ("?", None))
                cells.append(mode + ("" if mode == expected else f"!{expected or '?'}"))
            row.append(cells[0] if len(set(cells)) == 1 else "/".join(cells))
        rows.append(tuple(row))
    vm.print_table(("probe", *aliases), rows)

    print("\nMigrations per workload, migwatch against the kernel's se.nr_migrations:")
    rows = []
    for alias in aliases:
        for run, workload, counted, kernel, verdict, reasons in kernels[alias][1].counts:
            rows.append((alias, run, workload, "-" if counted is None else str(counted),
                         "-" if kernel is None else str(kernel), verdict, reasons))
    vm.print_table(("kernel", "run", "workload", "migwatch", "kernel", "result", "migwatch reasons"), rows)

    print("\nCPU hotplug: tasks pinned to the CPU, their migrations labelled hotplug, and host-wide growth "
          "while the CPU went offline (stopper work in ms):")
    rows = [(alias, *row) for alias in aliases for row in kernels[alias][1].hotplug]
    vm.print_table(("kernel", "run", "cpu", "pinned", "as hotplug", "all migrations by reason", "stopper work ms",
                    "result"), rows)

    print("\nKernels:")
    vm.print_table(("kernel", "release", "result"),
                   [(alias, results.release, "pass" if not verdicts.failures else "FAIL")
                    for alias, (results, verdicts) in kernels.items()])
    for alias, (_, verdicts) in kernels.items():
        for failure in verdicts.failures:
            print(f"FAIL {alias}: {failure}")


# ---------------------------------------------------------------- running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_on_host(script: Path, binaries: dict, work_dir: Path) -> int | None:
    """Runs the guest script on the running kernel with busybox sh, whose
    applets stand in for the guest's; the output goes to host.log. Returns
    the exit status, None on timeout."""
    if os.geteuid() != 0:
        print("matrix: the running kernel's row needs root to load BPF programs", file=sys.stderr)
        return None
    bin_dir = work_dir / "host-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, path in binaries.items():
        link = bin_dir / name
        link.unlink(missing_ok=True)
        link.symlink_to(Path(path).resolve())
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               MWM_HOST="1", MWM_PORT=str(free_port()))
    shell = subprocess.Popen([vm.BUSYBOX, "sh", str(script)], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    timer = threading.Timer(HOST_SCRIPT_TIMEOUT_SECONDS, lambda: os.killpg(shell.pid, signal.SIGKILL))
    timer.start()
    try:
        with open(work_dir / f"{HOST}.log", "w") as log:
            for line in shell.stdout:
                log.write(line)
                print(f"[{HOST}] {line}", end="", flush=True)
        status = shell.wait()
    finally:
        timer.cancel()
    return None if status < 0 else status


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(prog="matrix.py", description=__doc__.splitlines()[0])
    parser.add_argument("--migwatch", type=Path, required=True, help="the migwatch binary")
    parser.add_argument("--workload", type=Path, required=True, help="the mw_workload binary")
    parser.add_argument("--probe-fentry", type=Path, required=True, help="the probe_fentry binary")
    parser.add_argument("--work-dir", type=Path, required=True, help="where the logs and the image go")
    parser.add_argument("--kernel", action="append", choices=KERNEL_ALIASES, metavar="ALIAS",
                        help=f"limit to these kernels ({', '.join(KERNEL_ALIASES)}; default: all)")
    arguments = parser.parse_args(argv)
    aliases = arguments.kernel or list(KERNEL_ALIASES)
    script = Path(__file__).resolve().parent / "matrix_guest.sh"
    work_dir = arguments.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in work_dir.glob("*.log"):
        stale.unlink()
    started = time.monotonic()

    statuses_ok = True
    if HOST in aliases:
        binaries = {"migwatch": arguments.migwatch, "mw_workload": arguments.workload,
                    "probe_fentry": arguments.probe_fentry}
        status = run_on_host(script, binaries, work_dir)
        if status != 0:
            print(f"matrix: on the running kernel the script "
                  f"{'timed out' if status is None else f'exited with status {status}'}", file=sys.stderr)
            statuses_ok = False
    guests = [alias for alias in aliases if alias != HOST]
    if guests:
        vm_arguments = ["matrix", "--guest-script", str(script),
                        # Sourced by the script from its own directory, / in the guest.
                        "--file", f"{script.parent / 'guest_helpers.sh'}:/guest_helpers.sh",
                        "--file", f"{arguments.migwatch}:/usr/local/bin/migwatch",
                        "--file", f"{arguments.workload}:/usr/local/bin/mw_workload",
                        "--file", f"{arguments.probe_fentry}:/usr/local/bin/probe_fentry",
                        "--timeout", str(GUEST_SCRIPT_TIMEOUT_SECONDS), "--work-dir", str(work_dir)]
        for alias in guests:
            vm_arguments += ["--kernel", alias]
        statuses_ok &= vm.main(vm_arguments) == 0

    kernels = {}
    for alias in aliases:
        log = work_dir / f"{alias}.log"
        results = parse_results(log.read_text(errors="replace").splitlines() if log.exists() else [])
        kernels[alias] = (results, judge(results, hotplug_required=alias != HOST))
    print_report(kernels)
    passed = statuses_ok and not any(verdicts.failures for _, verdicts in kernels.values())
    print(f"\nkernel matrix {'PASS' if passed else 'FAIL'}: {len(aliases)} kernels in "
          f"{time.monotonic() - started:.1f} s wall time; logs in {work_dir}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
