#!/usr/bin/env python3
"""migwatch benchmarks: what watching migrations costs the kernel, the
workloads and the host, measured side by side in one run.

Sections (README.md in this directory explains every number):
  kernel    run time per event of each BPF program, as a ratio to an empty
            program on the same hook
  slowdown  elapsed time of workloads alone, under migwatch, bpftrace and
            perf record, interleaved in every repetition (slowdown.sh)
  daemon    the daemon's CPU and memory at idle and under load, whether it
            counted every migration, and /metrics scrape latency
  trace     events delivered and dropped by `migwatch trace` under a storm
  vm        scrape latency inside QEMU guests with 2 and 8 vCPUs, and the
            slowdown section inside 4-vCPU guests of Linux 6.1 and 6.12
  scale     map memory, series and scrape time on emulated big hosts
  paired    the kernel section's budgeted programs of two builds attached
            at once (--baseline): what a change to the programs costs,
            decided in one run (not run unless asked for)

Writes bench.json (machine-readable) and bench.md (tables) to --out, after
every section, so that a failure late in the run keeps what was measured.
Needs root. Standard library only.
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

SCHEMA = "migwatch-bench/1"
SECTIONS = ("kernel", "slowdown", "daemon", "trace", "vm", "scale", "paired")
# Run when --sections is not given: `paired` needs a second build (--baseline).
DEFAULT_SECTIONS = SECTIONS[:-1]
VM_PY = Path(__file__).resolve().parent.parent / "vm" / "vm.py"
VM_KERNEL = "6.12"
GUEST_MARKER = "MWBENCH "
# Prometheus's default scrape interval: the daemon is scraped this often
# while its CPU time is measured, as it would be in production.
SCRAPE_INTERVAL_SECONDS = 15
# After a tool has started and before a measurement: the daemon's first
# walk of /proc and bpftrace's start-up are not what is measured.
SETTLE_SECONDS = 2
# The classic bpftrace one-liner an operator would type.
BPFTRACE_ONE_LINER = "tracepoint:sched:sched_migrate_task { @[comm] = count(); }"
# Printed once every probe is attached: bpftrace fires BEGIN after attaching.
BPFTRACE_READY = 'BEGIN { printf("ready\\n"); } '


class BenchError(Exception):
    """A failure that ends the run, with a message that says what failed."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- sizes


@dataclasses.dataclass(frozen=True)
class Workload:
    key: str  # in bench.json
    role: str  # process name suffix
    title: str  # table heading
    arguments: tuple[str, ...]  # of mw_workload, before the size
    size_option: str
    field: str  # mw_workload's throughput line


STORM = Workload("affinity_storm", "storm", "affinity-storm flips/s", ("affinity-storm",), "--flips",
                 "flips_per_second")
# Every flip finds the spinner running: each one needs the stopper thread,
# as when a management daemon repins running vCPUs.
STORM_WHILE_RUNNING = Workload("affinity_storm_while_running", "running",
                               "affinity-storm --while-running flips/s",
                               ("affinity-storm", "--while-running"), "--flips", "flips_per_second")
PINGPONG = Workload("pingpong", "pingpong", "pingpong rounds/s", ("pingpong",), "--rounds", "rounds_per_second")
WORKLOADS = (STORM, STORM_WHILE_RUNNING, PINGPONG)


class Sizes:
    """Work per measurement: a full run aims at seconds per measurement
    (noise on two shared cores is large); --quick only checks the plumbing."""

    def __init__(self, quick: bool):
        self.work = {STORM: 1500, STORM_WHILE_RUNNING: 1500, PINGPONG: 300} if quick else \
            {STORM: 40000, STORM_WHILE_RUNNING: 60000, PINGPONG: 15000}
        self.repetitions = 1 if quick else 7
        # Pairs of rounds, each build attached first in one of a pair.
        self.paired_rounds = 2 if quick else 8
        # Elapsed seconds per run, each about 2-5 s on the build machine.
        self.slowdown = {"STORM_FLIPS": 1000, "PIPE_LOOPS": 10000, "MESSAGING_GROUPS": 2,
                         "MESSAGING_LOOPS": 50} if quick else \
            {"STORM_FLIPS": 40000, "PIPE_LOOPS": 300000, "MESSAGING_GROUPS": 10, "MESSAGING_LOOPS": 1000}
        # Under software emulation; the storm sharing the CPUs is the slow one.
        self.guest_slowdown = {"STORM_FLIPS": 300, "OWN_CPU_FLIPS": 2000, "PIPE_LOOPS": 5000,
                               "MESSAGING_GROUPS": 2, "MESSAGING_LOOPS": 20} if quick else \
            {"STORM_FLIPS": 1000, "OWN_CPU_FLIPS": 20000, "PIPE_LOOPS": 40000, "MESSAGING_GROUPS": 2,
             "MESSAGING_LOOPS": 100}
        self.phase_seconds = 3 if quick else 30
        self.scrapes = 50 if quick else 1000
        self.trace_flips = 2000 if quick else 100000

    def arguments(self, workload: Workload) -> list[str]:
        return [*workload.arguments, workload.size_option, str(self.work[workload])]


# ---------------------------------------------------------------- processes


def parse_key_values(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            values[key] = value
    return values


def stop_process(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 20) -> None:
    """Stops one process this script started, by its pid."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Workloads:
    """mw_workload runs through a symlink per role, so that each role's
    process has a name of its own (the kernel takes the comm from the file
    name at exec) that migwatch labels and nothing else on the host shares.
    Held runs, whose counts are checked, get a name no other run had."""

    def __init__(self, binary: Path, scratch: Path):
        self.binary = binary
        self.scratch = scratch
        self.serial = 0

    def link(self, name: str) -> Path:
        path = self.scratch / name[:15]
        if not path.is_symlink():
            path.symlink_to(self.binary)
        return path

    def run(self, workload: Workload, sizes: Sizes) -> dict[str, str]:
        arguments = sizes.arguments(workload)
        result = subprocess.run([self.link(f"mwb-{workload.role}"), *arguments], capture_output=True, text=True)
        if result.returncode != 0:
            raise BenchError(f"mw_workload {' '.join(arguments)} failed: {result.stdout}{result.stderr}")
        return parse_key_values(result.stdout)

    def held(self, role: str, arguments: list[str]) -> "HeldWorkload":
        self.serial += 1
        return HeldWorkload(self.link(f"mwb{self.serial}-{role}"), arguments)


class HeldWorkload:
    """A workload started with --hold: it waits for "go" before its work and
    for "quit" after it, so that the kernel's counters can be read around it."""

    def __init__(self, link: Path, args: list[str]):
        self.name = link.name
        self.process = subprocess.Popen([link, "--hold", *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.values: dict[str, str] = {}
        self.wait_for("waiting")

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_for(self, key: str) -> str:
        self.values.pop(key, None)
        for line in self.process.stdout:
            self.values.update(parse_key_values(line))
            if key in self.values:
                return self.values[key]
        raise BenchError(f"{self.name} ended before printing {key}= (exit {self.process.wait()})")

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.wait_for("waiting")

    def quit(self) -> None:
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        if self.process.wait(60) != 0:
            raise BenchError(f"{self.name} exited with {self.process.returncode}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop_process(self.process, signal.SIGTERM)


def kernel_migrations(pid: int) -> int:
    """The kernel's own count of real migrations, se.nr_migrations, summed
    over the threads of a process: the ground truth migwatch must match."""
    total = 0
    for sched in Path(f"/proc/{pid}/task").glob("*/sched"):
        match = re.search(r"^se\.nr_migrations\s*:\s*(\d+)", sched.read_text(), re.MULTILINE)
        if not match:
            raise BenchError(f"no se.nr_migrations in {sched}")
        total += int(match.group(1))
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return answer.read().decode()


SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of one metric whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group(1) == name:
            have = dict(LABEL.findall(match.group(2) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(match.group(3))
    return total


class Daemon:
    """The migwatch daemon on a port of its own, with a label cap high
    enough that every workload keeps its own process label."""

    def __init__(self, binary: Path, scratch: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        self.log_path = scratch / f"migwatch-{self.port}.log"
        with open(self.log_path, "w") as log_file:
            self.process = subprocess.Popen(
                [binary, "--web.listen-address", f"127.0.0.1:{self.port}", "--labels.cap", "10000",
                 "--log.level", "warn"], stdout=log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"migwatch exited with {self.process.returncode}: {self.log_path.read_text()}")
            with contextlib.suppress(OSError):
                http_get(self.url, timeout=1)
                return
            if time.monotonic() > deadline:
                stop_process(self.process)
                raise BenchError(f"migwatch did not serve {self.url} within 60 s")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def scrape(self) -> str:
        return http_get(self.url)

    def process_migrations(self, name: str) -> int:
        return int(metric_sum(self.scrape(), "migwatch_process_migrations_total", process=name))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop_process(self.process)


class ReadyProcess:
    """A tool started in the background that says on stdout when it is
    ready; stopped with SIGINT, as an operator would stop it."""

    def __init__(self, command: list[str], ready: str, what: str):
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in self.process.stdout:
            seen.append(line)
            if ready in line:
                break
        else:
            raise BenchError(f"{what} ended before it was ready: {''.join(seen)}")
        # Keep reading, or a tool that prints would block on a full pipe.
        self.drain = threading.Thread(target=self.process.stdout.read, daemon=True)
        self.drain.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stop_process(self.process)
        self.drain.join(10)


# ---------------------------------------------------------------- BPF statistics


def bpf_program_ids(pid: int) -> set[int]:
    """Ids of the BPF programs a process holds. Other instances of migwatch
    may run on the host with programs of the same names: ids tell them apart."""
    ids = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) == "anon_inode:bpf-prog":
                match = re.search(r"^prog_id:\s*(\d+)", (Path(f"/proc/{pid}/fdinfo") / fd.name).read_text(),
                                  re.MULTILINE)
                if match:
                    ids.add(int(match.group(1)))
    return ids


def bpf_program_stats(ids: set[int]) -> dict[str, tuple[int, int]]:
    """name -> (run_time_ns, run_cnt) for the given program ids."""
    result = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"bpftool prog show failed: {result.stderr}")
    return {p["name"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0))
            for p in json.loads(result.stdout) if p["id"] in ids}


# ---------------------------------------------------------------- sections


def section_kernel(tools, workloads: Workloads, sizes: Sizes) -> dict:
    """Per-event run time of migwatch's programs and of the empty reference
    programs on the same hooks, over the same events."""
    reference = ReadyProcess([tools.reference], "ready=1", "mw_bench_reference")
    with reference, Daemon(tools.migwatch, workloads.scratch) as daemon:
        time.sleep(SETTLE_SECONDS)
        ids = bpf_program_ids(daemon.pid) | bpf_program_ids(reference.process.pid)
        readings = [bpf_program_stats(ids)]
        for workload in WORKLOADS:
            workloads.run(workload, sizes)
            readings.append(bpf_program_stats(ids))
        during_capture = capture_costs(tools, workloads, sizes, ids)
    # All the workloads together (the budget), and each one alone: which
    # kind of event the cost comes from.
    by_workload = [{"workload": workload.key, "programs": program_costs(before, after, BUDGETED_PROGRAMS)}
                   for workload, before, after in zip(WORKLOADS, readings, readings[1:])]
    return {
        "workload": [" ".join(sizes.arguments(w)) for w in WORKLOADS],
        "statistics": "BPF_ENABLE_STATS (as kernel.bpf_stats_enabled=1), run_time_ns/run_cnt per program",
        "programs": program_costs(readings[0], readings[-1]),
        "by_workload": by_workload,
        "during_capture": during_capture,
    }


def capture_costs(tools, workloads: Workloads, sizes: Sizes, ids: set[int]) -> dict:
    """The storm that needs the stopper for every flip once more, while
    `migwatch capture` records it: the capture's programs (tracing on)
    beside the daemon's (tracing off: what every event costs outside a
    capture) over the same events, each against the empty programs."""
    output = workloads.scratch / "bench-capture.json"
    log_path = workloads.scratch / "bench-capture.log"
    with open(log_path, "w") as log:
        capture = subprocess.Popen([tools.migwatch, "capture", "-D", "600", "-o", output],
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (capture_ids := bpf_program_ids(capture.pid)):
            if capture.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"migwatch capture did not attach: {log_path.read_text()}")
            time.sleep(0.1)
        time.sleep(SETTLE_SECONDS)  # from attached to recording
        before, capturing_before = bpf_program_stats(ids), bpf_program_stats(capture_ids)
        workloads.run(STORM_WHILE_RUNNING, sizes)
        after, capturing_after = bpf_program_stats(ids), bpf_program_stats(capture_ids)
    finally:
        capture.send_signal(signal.SIGTERM)
        summary = capture.communicate(timeout=60)[0].strip()
    if capture.returncode != 0:
        raise BenchError(f"migwatch capture failed ({capture.returncode}): {summary} {log_path.read_text()}")
    references = {name: value for name, value in after.items() if name.startswith(("ref_", "floor_"))}
    references_before = {name: before[name] for name in references}
    return {
        "workload": STORM_WHILE_RUNNING.key,
        "capture": summary,
        "capturing": program_costs({**capturing_before, **references_before}, {**capturing_after, **references},
                                   BUDGETED_PROGRAMS),
        "not_capturing": program_costs(before, after, BUDGETED_PROGRAMS),
    }


# The programs the per-event budget covers (evaluate_targets).
BUDGETED_PROGRAMS = ("sched_migrate_task_btf", "sched_switch_btf", "sched_waking_btf")


def program_costs(before: dict, after: dict, names=None) -> list[dict]:
    """Run time per event of each of migwatch's programs (or of `names`)
    between two readings, beside its empty reference program's."""
    def per_event(name: str) -> tuple[int, float | None]:
        runs = after[name][1] - before[name][1]
        return runs, (after[name][0] - before[name][0]) / runs if runs else None

    programs = []
    for name in sorted(after):
        if name.startswith(("ref_", "floor_")) or (names is not None and name not in names):
            continue
        events, ns = per_event(name)
        reference_name, floor_name = "ref_" + name, "floor_" + name
        reference_ns = per_event(reference_name)[1] if reference_name in after else None
        programs.append({
            "program": name, "events": events, "ns_per_event": ns,
            "reference_program": reference_name if reference_name in after else None,
            "reference_ns_per_event": reference_ns,
            "ratio": ns / reference_ns if ns is not None and reference_ns else None,
            # One per-CPU counter increment over the same events
            # (bench_reference.bpf.c): the least any counting program costs.
            "floor_ns_per_event": per_event(floor_name)[1] if floor_name in after else None,
        })
    return programs


def section_paired(tools, workloads: Workloads, sizes: Sizes) -> dict:
    """The budgeted programs of this build and of --baseline, attached at
    once and run over the same events, as in the kernel section: their
    costs per event differ by what their programs do differently, whatever
    the machine's speed did meanwhile. Runs in turn do not compare on a
    shared machine whose speed drifts by tens of percent within an hour.
    On each hook the build attached first runs first and takes the cache
    misses on the lines both read: its difference from the other is too
    high by what the shared lines cost, and too low by as much when it
    runs second. So the rounds come in pairs, each build first in one of
    them, and a pair's difference is the mean of its two rounds': what
    the builds' own reads and work differ by (README.md)."""
    builds = {"this": tools.migwatch, "baseline": tools.baseline}
    rounds = []
    for index in range(sizes.paired_rounds):
        order = list(builds) if index % 2 == 0 else list(reversed(builds))
        reference = ReadyProcess([tools.reference], "ready=1", "mw_bench_reference")
        with reference, Daemon(builds[order[0]], workloads.scratch) as first, \
                Daemon(builds[order[1]], workloads.scratch) as second:
            time.sleep(SETTLE_SECONDS)
            # One build's programs with the reference programs at a time:
            # the two builds' programs share their names.
            ids = {order[0]: bpf_program_ids(first.pid), order[1]: bpf_program_ids(second.pid)}
            references = bpf_program_ids(reference.process.pid)
            before = {build: bpf_program_stats(ids[build] | references) for build in builds}
            for workload in WORKLOADS:
                workloads.run(workload, sizes)
            after = {build: bpf_program_stats(ids[build] | references) for build in builds}
        rounds.append({"first": order[0],
                       **{build: program_costs(before[build], after[build], BUDGETED_PROGRAMS) for build in builds}})
    programs = []
    for name in BUDGETED_PROGRAMS:
        ns = {build: [next(p["ns_per_event"] for p in r[build] if p["program"] == name) for r in rounds]
              for build in builds}
        if any(value is None for values in ns.values() for value in values):
            raise BenchError(f"{name} ran on no event in a round")
        by_round = [a - b for a, b in zip(ns["this"], ns["baseline"])]
        differences = [(first + second) / 2 for first, second in zip(by_round[0::2], by_round[1::2])]
        programs.append({"program": name, "ns_per_event": ns["this"], "baseline_ns_per_event": ns["baseline"],
                         "difference_by_pair": differences, "difference_median": statistics.median(differences),
                         "difference_min": min(differences), "difference_max": max(differences)})
    return {"workload": [" ".join(sizes.arguments(w)) for w in WORKLOADS], "baseline": str(tools.baseline),
            "rounds": rounds, "programs": programs}


SLOWDOWN_SH = Path(__file__).resolve().parent / "slowdown.sh"
# The conditions slowdown.sh runs the workloads under, and the workloads.
CONDITIONS = {
    "alone": "nothing attached",
    "migwatch": "migwatch (the daemon)",
    "bpftrace": f"bpftrace -e '{BPFTRACE_ONE_LINER}'",
    "perf_record": "perf record -a -e sched:sched_migrate_task",
}
SLOWDOWN_WORKLOADS = {
    "storm": "affinity storm, flipper sharing the CPUs (mw_workload affinity-storm --while-running)",
    "storm_own_cpu": "affinity storm, flipper on a CPU of its own (taskset -c 2 mw_workload affinity-storm "
                     "--cpus 0,1)",
    "pipe": "perf bench sched pipe",
    "messaging": "perf bench sched messaging",
}
SLOWDOWN_LINE = re.compile(r"MWSLOW rep=(\d+) condition=(\S+) workload=(\S+) seconds=(\S+)")
SKIPPED_LINE = re.compile(r"MWSLOW skipped workload=(\S+) reason=(\S+)")


def slowdown_environment(tools: dict, sizes: "Sizes", guest: bool) -> dict:
    work = sizes.guest_slowdown if guest else sizes.slowdown
    return {"MIGWATCH": str(tools["migwatch"]), "MW_WORKLOAD": str(tools["workload"]), "PERF": str(tools["perf"]),
            "BPFTRACE": str(tools["bpftrace"]), "REPETITIONS": str(sizes.repetitions),
            **{key: str(value) for key, value in work.items()}}


def summarize_slowdown(output: str, where: str, environment: dict) -> dict:
    """Per workload and condition: elapsed seconds of every repetition, and
    the ratio to the run alone of the same repetition, median and range."""
    seconds: dict[tuple[str, str], dict[int, float]] = {}
    skipped = []
    for line in output.splitlines():
        if match := SLOWDOWN_LINE.search(line):
            rep, condition, workload, value = match.groups()
            seconds.setdefault((workload, condition), {})[int(rep)] = float(value)
        elif match := SKIPPED_LINE.search(line):
            skipped.append({"workload": match.group(1), "reason": match.group(2).replace("-", " ")})
    workloads = []
    for workload in SLOWDOWN_WORKLOADS:
        alone = seconds.get((workload, "alone"))
        if not alone:
            continue
        entry = {"workload": workload, "description": SLOWDOWN_WORKLOADS[workload], "conditions": []}
        for condition in CONDITIONS:
            runs = seconds.get((workload, condition), {})
            ratios = [runs[r] / alone[r] for r in sorted(runs) if r in alone and alone[r] > 0]
            if not ratios:
                raise BenchError(f"{where}: no runs of {workload} under {condition}")
            entry["conditions"].append({
                "condition": condition, "seconds": [runs[r] for r in sorted(runs)],
                "median_seconds": statistics.median(runs.values()),
                "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
            })
        workloads.append(entry)
    work = {k: v for k, v in environment.items() if k not in ("MIGWATCH", "MW_WORKLOAD", "PERF", "BPFTRACE")}
    return {"where": where, "work": work, "workloads": workloads, "skipped": skipped}


def unavailable_observers() -> list[dict]:
    """Probes an operator would also try, attempted once here: what the
    kernel says is the result."""
    attempts = []
    for probe in ("kprobe:move_queued_task", "kfunc:move_queued_task"):
        program = f"{probe} {{ @ = count(); }} BEGIN {{ exit(); }}"
        result = subprocess.run(["bpftrace", "-e", program], capture_output=True, text=True, timeout=120)
        # bpftrace 0.17 prints an ERROR when it cannot raise RLIMIT_MEMLOCK and
        # goes on: kernels that charge BPF memory to the cgroup need no limit.
        errors = [line for line in (result.stdout + result.stderr).splitlines()
                  if "ERROR" in line and "RLIMIT_MEMLOCK" not in line]
        attempts.append({"condition": f"bpftrace {probe}", "available": result.returncode == 0 and not errors,
                         "reason": "; ".join(errors) or "attached"})
    return attempts


def host_tools(tools) -> dict:
    return {"migwatch": tools.migwatch, "workload": tools.workload, "perf": shutil.which("perf"),
            "bpftrace": shutil.which("bpftrace")}


def section_slowdown(tools, workloads: Workloads, sizes: Sizes) -> dict:
    """Elapsed time of each workload under each condition, interleaved in
    every repetition (slowdown.sh), on this machine."""
    environment = slowdown_environment(host_tools(tools), sizes, guest=False)
    log(f"slowdown: {sizes.repetitions} repetitions of {len(CONDITIONS)} conditions on this machine")
    result = subprocess.run(["sh", str(SLOWDOWN_SH)], env={**os.environ, **environment}, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise BenchError(f"slowdown.sh failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    summary = summarize_slowdown(result.stdout, f"this machine, Linux {os.uname().release}, {os.cpu_count()} CPUs",
                                 environment)
    return {"repetitions": sizes.repetitions, "conditions": CONDITIONS, "runs": [summary],
            "not_measured": unavailable_observers()}


def read_cpu(pid: int) -> dict:
    """User and system time of a process, and its threads' on-CPU time from
    schedstat. The kernel reports user and system time in clock ticks and
    holds them back at times to keep them monotonic, so over seconds only
    their split is exact; their sum is the on-CPU time, which schedstat has
    in nanoseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    run_ns = sum(int(p.read_text().split()[0]) for p in Path(f"/proc/{pid}/task").glob("*/schedstat"))
    return {"user": int(fields[11]) / ticks, "system": int(fields[12]) / ticks, "run_ns": run_ns}


def read_memory_mb(pid: int) -> dict:
    status = Path(f"/proc/{pid}/status").read_text()
    value = lambda key: int(re.search(rf"^{key}:\s*(\d+) kB", status, re.MULTILINE).group(1)) * 1024 / 1e6
    return {"rss_mb": value("VmRSS"), "peak_rss_mb": value("VmHWM")}


class PeriodicScrapes:
    """Scrapes the daemon every SCRAPE_INTERVAL_SECONDS in the background."""

    def __init__(self, daemon: Daemon):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, args=(daemon,), daemon=True)
        self.thread.start()

    def run(self, daemon: Daemon) -> None:
        while not self.stop.wait(SCRAPE_INTERVAL_SECONDS):
            daemon.scrape()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def daemon_phase(daemon: Daemon, workloads: Workloads, sizes: Sizes, name: str, workload: Workload | None,
                 seconds: float) -> dict:
    """The daemon's cost over `seconds` of wall time while the workload
    runs back to back (or nothing, at idle)."""
    migrations_before = metric_sum(daemon.scrape(), "migwatch_migrations_total")
    cpu_before = read_cpu(daemon.pid)
    start = time.monotonic()
    with PeriodicScrapes(daemon):
        while time.monotonic() - start < seconds:
            if workload is None:
                time.sleep(seconds - (time.monotonic() - start))
            else:
                workloads.run(workload, sizes)
    # Where scrapes fall due, one is due at the end.
    migrations_after = metric_sum(daemon.scrape(), "migwatch_migrations_total")
    cpu_after = read_cpu(daemon.pid)
    elapsed = time.monotonic() - start
    user = cpu_after["user"] - cpu_before["user"]
    system = cpu_after["system"] - cpu_before["system"]
    return {
        "phase": name, "seconds": elapsed,
        "migrations_per_second": (migrations_after - migrations_before) / elapsed,
        "user_seconds": user, "system_seconds": system,
        "cpu_percent_of_one_core": 100 * (cpu_after["run_ns"] - cpu_before["run_ns"]) / 1e9 / elapsed,
        **read_memory_mb(daemon.pid),
    }


def count_check(daemon: Daemon, workloads: Workloads, sizes: Sizes, together: list[Workload]) -> list[dict]:
    """Runs the workloads at once and compares each one's migrations as
    migwatch counted them with the kernel's se.nr_migrations."""
    with contextlib.ExitStack() as stack:
        held = [stack.enter_context(workloads.held(w.role, sizes.arguments(w))) for w in together]
        threads = [threading.Thread(target=w.go) for w in held]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - start
        results = []
        for w in held:
            kernel = kernel_migrations(w.pid)  # before quit: the threads still exist
            counted = daemon.process_migrations(w.name)
            results.append({"workload": " ".join(w.process.args[2:]), "concurrent": len(held),
                            "seconds": seconds, "kernel_migrations": kernel, "migwatch_migrations": counted,
                            "migrations_per_second": kernel / seconds, "lost": kernel - counted})
            w.quit()
        return results


def scrape_latency(tools, url_port: int, count: int, where: str, cpus: int) -> dict:
    result = subprocess.run([tools.scrape, "--address", f"127.0.0.1:{url_port}", "--count", str(count)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"mw_scrape failed: {result.stdout}{result.stderr}")
    return {"where": where, "cpus": cpus, **numbers(parse_key_values(result.stdout))}


def numbers(values: dict[str, str]) -> dict:
    return {k: float(v) if "." in v or "e" in v else int(v) for k, v in values.items()}


class BackgroundLoad:
    """A workload run back to back in a thread until the block ends."""

    def __init__(self, workloads: Workloads, sizes: Sizes, workload: Workload):
        self.stop = threading.Event()
        self.error: Exception | None = None

        def run():
            try:
                while not self.stop.is_set():
                    workloads.run(workload, sizes)
            except BenchError as error:
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        if self.error:
            raise self.error


def section_daemon(tools, workloads: Workloads, sizes: Sizes) -> dict:
    """One daemon through idle and loaded phases, then the count checks and
    the scrape latency against it."""
    cpus = os.cpu_count()
    with Daemon(tools.migwatch, workloads.scratch) as daemon:
        time.sleep(SETTLE_SECONDS)
        phases = []
        for name, workload in (("idle", None), ("pingpong", PINGPONG), ("storm", STORM),
                               ("storm_while_running", STORM_WHILE_RUNNING)):
            log(f"daemon: phase {name}, {sizes.phase_seconds} s")
            phases.append(daemon_phase(daemon, workloads, sizes, name, workload, sizes.phase_seconds))
        log("daemon: count checks")
        checks = []
        for together in ([STORM], [STORM_WHILE_RUNNING], [PINGPONG], [STORM, STORM_WHILE_RUNNING]):
            checks += count_check(daemon, workloads, sizes, together)
        log("daemon: scrape latency")
        latency = [scrape_latency(tools, daemon.port, sizes.scrapes, "host, idle", cpus)]
        with BackgroundLoad(workloads, sizes, STORM):
            latency.append(scrape_latency(tools, daemon.port, sizes.scrapes, "host, affinity storm", cpus))
    return {"scrape_interval_seconds": SCRAPE_INTERVAL_SECONDS, "phases": phases, "count_checks": checks,
            "scrape_latency": latency}


# The summary line `migwatch trace` prints at exit, e.g. "# 3999 migrations
# recorded: 3999 printed, 0 filtered out, 0 dropped (0 ring buffer full,
# 0 over --max-rate 10000000/s)": each count by its own words.
TRACE_SUMMARY_COUNTS = {key: re.compile(pattern) for key, pattern in {
    "events": r"^# (\d+) migrations recorded", "delivered": r"(\d+) printed", "dropped": r"(\d+) dropped",
    "dropped_ring_buffer_full": r"(\d+) ring buffer full", "dropped_over_max_rate": r"(\d+) over --max-rate",
}.items()}


def trace_summary(text: str) -> dict[str, int] | None:
    for line in reversed(text.splitlines()):
        matches = {key: pattern.search(line) for key, pattern in TRACE_SUMMARY_COUNTS.items()}
        if all(matches.values()):
            return {key: int(match.group(1)) for key, match in matches.items()}
    return None


def trace_run(tools, workloads: Workloads, flips: int, name: str, max_rate: int | None,
              stalled_reader: bool) -> dict:
    """One trace session of one storm process: what it delivered and dropped,
    against the kernel's count of that process's migrations."""
    arguments = ["affinity-storm", "--while-running", "--flips", str(flips)]
    with workloads.held("trace", arguments) as storm:
        command = [tools.migwatch, "--log.level", "warn", "trace", "-p", str(storm.pid)]
        if max_rate:
            command += ["--max-rate", str(max_rate)]
        output = workloads.scratch / f"trace-{storm.pid}.txt"
        with open(output, "w+") as sink:
            # A stalled reader: nobody reads the pipe until the storm is over,
            # so that the trace blocks in its output and the ring buffer fills.
            trace = subprocess.Popen(command, stdout=subprocess.PIPE if stalled_reader else sink,
                                     stderr=subprocess.PIPE, text=True)
            try:
                header = wait_trace_header(trace, output, stalled_reader)
                kernel_before = kernel_migrations(storm.pid)
                storm.go()
                kernel = kernel_migrations(storm.pid) - kernel_before
                drain = None
                if stalled_reader:
                    drain = threading.Thread(target=lambda: sink.write(header + trace.stdout.read()))
                    drain.start()
                trace.send_signal(signal.SIGINT)
                trace.wait(120)
                if drain:
                    drain.join()
            finally:
                stop_process(trace)
            storm.quit()
            sink.flush()
            sink.seek(0)
            text = sink.read()
        output.unlink()
    summary = trace_summary(text)
    if trace.returncode != 0 or not summary:
        raise BenchError(f"migwatch trace exited with {trace.returncode} and no summary line: "
                         f"{text[-500:]}{trace.stderr.read()}")
    storm_seconds = float(storm.values["seconds"])
    return {
        "run": name, "max_rate": max_rate, "stalled_reader": stalled_reader,
        "storm_flips_per_second": float(storm.values["flips_per_second"]), "storm_seconds": storm_seconds,
        **summary, "delivered_per_second": summary["delivered"] / storm_seconds,
        "kernel_migrations": kernel, "unaccounted": kernel - summary["events"],
    }


def wait_trace_header(trace: subprocess.Popen, output: Path, from_pipe: bool) -> str:
    """The trace prints its header once its programs are attached."""
    if from_pipe:
        header = trace.stdout.readline() + trace.stdout.readline()
        if not header.startswith("# tracing"):
            raise BenchError(f"migwatch trace did not start: {header}{trace.stderr.read()}")
        return header
    deadline = time.monotonic() + 60
    while "# tracing" not in output.read_text():
        if trace.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"migwatch trace did not start: {trace.stderr.read() if trace.poll() else ''}")
        time.sleep(0.05)
    return ""


def section_trace(tools, workloads: Workloads, sizes: Sizes) -> dict:
    runs = [
        trace_run(tools, workloads, sizes.trace_flips, "unlimited", 10_000_000, False),
        trace_run(tools, workloads, sizes.trace_flips, "default --max-rate", None, False),
        trace_run(tools, workloads, sizes.trace_flips, "stalled reader", 10_000_000, True),
    ]
    return {"storm": f"affinity-storm --while-running --flips {sizes.trace_flips}", "runs": runs}


GUEST_SCRIPT = """set -e
migwatch --web.listen-address 127.0.0.1:19662 --log.level warn &
tries=0
until wget -q -O /dev/null http://127.0.0.1:19662/metrics; do
    tries=$((tries + 1))
    [ $tries -lt 600 ] || exit 1
    sleep 0.5
done
sleep 5  # start-up (the first walk of /proc) is not what is measured
mw_scrape --address 127.0.0.1:19662 --count {count} > /tmp/scrape.txt
sed 's/^/{marker}/' /tmp/scrape.txt
echo "{marker}cpus=$(nproc)"
kill $!
"""


def guest_scrape_latency(tools, scratch: Path, smp: int, count: int) -> dict:
    script = scratch / f"guest-{smp}.sh"
    script.write_text(GUEST_SCRIPT.format(count=count, marker=GUEST_MARKER))
    command = [sys.executable, VM_PY, "run", VM_KERNEL, "--smp", str(smp), "--guest-script", str(script),
               "--file", f"{tools.migwatch}:/usr/sbin/migwatch", "--file", str(tools.scrape),
               "--timeout", "900", "--work-dir", str(scratch / f"vm-{smp}")]
    result = subprocess.run(command, capture_output=True, text=True)
    values = {}
    for line in result.stdout.splitlines():
        _, marker, rest = line.strip().partition(GUEST_MARKER)
        if marker:
            values.update(parse_key_values(rest))
    if result.returncode != 0 or "median_ms" not in values:
        raise BenchError(f"guest with {smp} vCPUs failed (exit {result.returncode}): "
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    cpus = int(values.pop("cpus"))
    return {"where": f"QEMU guest (TCG), Linux {VM_KERNEL}, idle", "cpus": cpus, **numbers(values)}


SLOWDOWN_GUEST_KERNELS = ("6.1", "6.12")
SLOWDOWN_GUEST_CPUS = 4


def guest_slowdown(tools, sizes: Sizes, scratch: Path, kernel: str) -> dict:
    """slowdown.sh inside a guest of 4 vCPUs (the flipper gets one of its
    own), with the same binaries."""
    in_guest = {"migwatch": "/usr/sbin/migwatch", "workload": "/usr/local/bin/mw_workload",
                "perf": "/usr/local/bin/perf", "bpftrace": "/usr/local/bin/bpftrace"}
    environment = slowdown_environment(in_guest, sizes, guest=True)
    script = scratch / f"slowdown-{kernel}.sh"
    script.write_text("".join(f"export {k}={v}\n" for k, v in environment.items())
                      + "sh /usr/local/bin/slowdown.sh\n")
    host = host_tools(tools)
    command = [sys.executable, VM_PY, "run", kernel, "--smp", str(SLOWDOWN_GUEST_CPUS), "--memory", "2048",
               "--guest-script", str(script), "--file", f"{host['migwatch']}:/usr/sbin/migwatch",
               "--file", str(host["workload"]), "--file", f"{host['perf']}:/usr/local/bin/perf",
               "--file", f"{host['bpftrace']}:/usr/local/bin/bpftrace", "--file", str(SLOWDOWN_SH),
               "--timeout", "3000", "--work-dir", str(scratch / f"vm-slowdown-{kernel}")]
    log(f"vm: slowdown in a Linux {kernel} guest, {SLOWDOWN_GUEST_CPUS} vCPUs")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"slowdown in the {kernel} guest failed (exit {result.returncode}): "
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return summarize_slowdown(result.stdout, f"QEMU guest (TCG), Linux {kernel}, {SLOWDOWN_GUEST_CPUS} vCPUs",
                              environment)


def section_vm(tools, workloads: Workloads, sizes: Sizes) -> dict:
    # Software emulation is slow: the 2-vCPU guest is the baseline for the
    # 8-vCPU one, not the host.
    return {"scrape_latency": [guest_scrape_latency(tools, workloads.scratch, smp, sizes.scrapes)
                               for smp in (2, 8)],
            "slowdown": [guest_slowdown(tools, sizes, workloads.scratch, kernel)
                         for kernel in SLOWDOWN_GUEST_KERNELS]}


# The big-host guests of tests/vm: their script, the figures file it writes.
SCALE_RUNS = (("scale.py", "scale.json"), ("numa.py", "numa.json"))


def scale_host(figures: dict, where: str) -> dict:
    return {"where": where, "possible_cpus": figures["possible_cpus"],
            "online_cpus": len(figures["online_cpus"] or []), "nodes": figures.get("nodes", 1),
            "threads": (figures.get("threads") or {}).get("live"), "map_bytes": figures["map_bytes"],
            "series": figures["series"], "scrape_ms": figures.get("scrape_ms"),
            "collect_ms": figures.get("collect_ms"), "checks_passed": not figures["failures"]}


def section_scale(tools, workloads: Workloads, sizes: Sizes) -> dict:
    """Big hosts: the vm_scale guests (4 and 255 possible CPUs, 2 online)
    and the vm_numa guest (CPUs on 4 NUMA nodes, 10,000 threads), run by
    their own scripts; their figures, and whether their exactness checks
    held."""
    hosts = []
    for script, figures_file in SCALE_RUNS:
        work = workloads.scratch / Path(script).stem
        run = subprocess.run([sys.executable, "-B", str(VM_PY.parent / script), "--migwatch", str(tools.migwatch),
                              "--workload", str(tools.workload), "--work-dir", str(work)],
                             capture_output=True, text=True)
        if not (work / figures_file).exists():
            raise RuntimeError(f"{script} wrote no {figures_file}: {run.stderr.strip()[-300:]}")
        figures = json.loads((work / figures_file).read_text())
        if "guests" in figures:
            hosts += [scale_host(guest, f"guest, Linux {figures['kernel']}") for guest in figures["guests"].values()]
        else:
            hosts.append(scale_host(figures["guest"], f"guest, Linux {figures['kernel']}, NUMA"))
    return {"hosts": hosts}


SECTION_RUNNERS = {"kernel": section_kernel, "slowdown": section_slowdown, "daemon": section_daemon,
                   "trace": section_trace, "vm": section_vm, "scale": section_scale, "paired": section_paired}


# ---------------------------------------------------------------- targets


# A slowdown target is judged only when the runs alone agree to within
# twice its tolerance; beyond that the host's own noise decides the ratio.
SLOWDOWN_TOLERANCE = 0.03


def evaluate_targets(results: dict) -> list[dict]:
    """Each target with what was measured and whether it was met: true,
    false, or null when the measurement cannot tell."""
    targets = []

    def add(target: str, measured: str, met: bool | None) -> None:
        targets.append({"target": target, "measured": measured, "met": None if met is None else bool(met)})

    if "kernel" in results:
        programs = {p["program"]: p for p in results["kernel"]["programs"]}
        for program, ratio_limit, ns_limit in zip(BUDGETED_PROGRAMS, (4.0, 1.5, 1.5), (100.0, None, None)):
            p = programs.get(program)
            if not p or p["ratio"] is None:
                add(f"{program} measured", "not measured", False)
                continue
            limit = f"<= {ratio_limit}x its empty reference" + (f" and <= {ns_limit:.0f} ns" if ns_limit else "")
            floor = p.get("floor_ns_per_event")
            add(f"{program} {limit}", f"{p['ns_per_event']:.0f} ns, {p['ratio']:.2f}x"
                + (f" (one per-CPU count: {floor:.0f} ns)" if floor else ""),
                p["ratio"] <= ratio_limit and (ns_limit is None or p["ns_per_event"] <= ns_limit))
    slowdown_runs = results.get("slowdown", {}).get("runs", []) + results.get("vm", {}).get("slowdown", [])
    for run in slowdown_runs:
        for w in run["workloads"]:
            by = {c["condition"]: c for c in w["conditions"]}
            mine = by["migwatch"]["ratio_median"]
            alone = by["alone"]["seconds"]
            # A run alone that took no time says nothing either.
            spread = max(alone) / min(alone) - 1 if min(alone) > 0 else float("inf")
            decided = spread <= 2 * SLOWDOWN_TOLERANCE
            noise = "" if decided else f"; undecided: the runs alone spread {spread:.0%}"
            add(f"{run['where']}: {w['workload']} under migwatch within {SLOWDOWN_TOLERANCE:.0%} of alone "
                "(median of per-repetition ratios)",
                f"{mine:.3f} (range {by['migwatch']['ratio_min']:.3f} to {by['migwatch']['ratio_max']:.3f}){noise}",
                mine <= 1 + SLOWDOWN_TOLERANCE if decided else None)
            add(f"{run['where']}: {w['workload']} no slower under migwatch than under the bpftrace one-liner",
                f"migwatch {mine:.3f}, bpftrace {by['bpftrace']['ratio_median']:.3f}{noise}",
                mine <= by["bpftrace"]["ratio_median"] if decided else None)
    if "daemon" in results:
        phases = {p["phase"]: p for p in results["daemon"]["phases"]}
        busiest = max(results["daemon"]["phases"], key=lambda p: p["migrations_per_second"])
        add("daemon CPU < 0.5% of one core under the storm",
            ", ".join(f"{p['phase']} {p['cpu_percent_of_one_core']:.3f}%" for p in phases.values()
                      if p["phase"].startswith("storm")),
            all(p["cpu_percent_of_one_core"] < 0.5 for p in phases.values() if p["phase"].startswith("storm")))
        growth = busiest["cpu_percent_of_one_core"] - phases["idle"]["cpu_percent_of_one_core"]
        add("daemon CPU not growing with the migration rate (busiest phase minus idle < 0.1 points)",
            f"{growth:+.3f} points at {busiest['migrations_per_second']:.0f} vs "
            f"{phases['idle']['migrations_per_second']:.0f} migrations/s", growth < 0.1)
        rss = max(p["rss_mb"] for p in results["daemon"]["phases"])
        peak = max(p["peak_rss_mb"] for p in results["daemon"]["phases"])
        add("daemon RSS < 20 MB", f"{rss:.1f} MB at most at the end of a phase; peak since start {peak:.1f} MB",
            rss < 20)
        lost = sum(abs(c["lost"]) for c in results["daemon"]["count_checks"])
        add("zero count loss at any rate",
            f"{lost} lost over {len(results['daemon']['count_checks'])} checks "
            f"up to {max(c['migrations_per_second'] for c in results['daemon']['count_checks']):.0f}/s",
            lost == 0)
    if "trace" in results:
        runs = results["trace"]["runs"]
        silent = sum(abs(r["unaccounted"]) for r in runs)
        add("trace drops counted, never silent",
            f"{sum(r['dropped'] for r in runs)} dropped and counted, {silent} unaccounted", silent == 0)
    return targets


# ---------------------------------------------------------------- report


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def memory_isolation() -> dict:
    """What decides whether the kernel's TLB entries survive a return to user
    space, and so what each page an event touches costs (README.md, kernel):
    the kernel's Meltdown mitigation (page-table isolation) and PCIDs."""
    try:
        meltdown = Path("/sys/devices/system/cpu/vulnerabilities/meltdown").read_text().strip()
    except OSError:
        meltdown = None
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        flags = ""
    return {"meltdown": meltdown, "pcid": "pcid" in flags.split()}


def markdown(results: dict) -> str:
    host = results["host"]
    isolation = (f", Meltdown: {host['meltdown']}, PCIDs: {'yes' if host['pcid'] else 'no'}"
                 if host.get("meltdown") is not None else "")
    out = [f"# migwatch benchmarks\n\n{host['migwatch']}, Linux {host['kernel']}, {host['cpus']} CPUs{isolation}, "
           f"load average {host['load_average_start'][0]:.2f} at the start"
           f"{', quick run' if host['quick'] else ''}, {results['started']}.\n"]
    if "kernel" in results:
        rows = [[f"`{p['program']}`", fmt(p["events"]), fmt(p["ns_per_event"]), fmt(p["reference_ns_per_event"]),
                 fmt(p["ratio"], 2) + ("x" if p["ratio"] else ""), fmt(p.get("floor_ns_per_event"))]
                for p in results["kernel"]["programs"] if p["events"]]
        out.append("## Kernel cost per event\n\n"
                   + table(["program", "events", "ns/event", "empty program ns/event", "ratio",
                            "one per-CPU count ns/event"], rows))
        rows = [[w["workload"], f"`{p['program']}`", fmt(p["events"]), fmt(p["ns_per_event"]),
                 fmt(p["reference_ns_per_event"]), fmt(p["ratio"], 2) + ("x" if p["ratio"] else ""),
                 fmt(p.get("floor_ns_per_event"))]
                for w in results["kernel"].get("by_workload", []) for p in w["programs"] if p["events"]]
        if rows:
            out.append("The budgeted programs under each workload alone:\n\n"
                       + table(["workload", "program", "events", "ns/event", "empty program ns/event", "ratio",
                                "one per-CPU count ns/event"], rows))
        if capture := results["kernel"].get("during_capture"):
            rows = [[label, f"`{p['program']}`", fmt(p["events"]), fmt(p["ns_per_event"]),
                     fmt(p["reference_ns_per_event"]), fmt(p["ratio"], 2) + ("x" if p["ratio"] else "")]
                    for label, key in (("capturing (`migwatch capture`)", "capturing"),
                                       ("not capturing (the daemon, beside it)", "not_capturing"))
                    for p in capture[key] if p["events"]]
            out.append(f"During a capture, {capture['workload']} once more ({capture['capture']}):\n\n"
                       + table(["programs", "program", "events", "ns/event", "empty program ns/event", "ratio"],
                               rows))
    if "paired" in results:
        paired = results["paired"]
        rows = [[f"`{p['program']}`", fmt(statistics.median(p["ns_per_event"])),
                 fmt(statistics.median(p["baseline_ns_per_event"])),
                 f"{p['difference_median']:+.1f} ({p['difference_min']:+.0f} to {p['difference_max']:+.0f})"]
                for p in paired["programs"]]
        out.append(f"## Paired with a baseline build\n\nThis build and `{paired['baseline']}` attached at once over "
                   f"the same events, {len(paired['rounds'])} rounds in pairs, each build attached first in one "
                   f"round of a pair. Difference: this build's ns/event minus the baseline's, the mean of a "
                   f"pair's two rounds; median and range over the pairs.\n\n"
                   + table(["program", "this build ns/event, median", "baseline ns/event, median",
                            "difference, ns/event"], rows))
    if slowdown_runs := results.get("slowdown", {}).get("runs", []) + results.get("vm", {}).get("slowdown", []):
        header = ["workload", "where"] + [f"{c}" for c in CONDITIONS if c != "alone"] + ["alone, seconds"]
        rows = []
        for run in slowdown_runs:
            for w in run["workloads"]:
                by = {c["condition"]: c for c in w["conditions"]}
                row = [w["workload"], run["where"]]
                for c in CONDITIONS:
                    if c == "alone":
                        continue
                    row.append(f"{fmt(by[c]['ratio_median'], 3)} ({fmt(by[c]['ratio_min'], 2)}-"
                               f"{fmt(by[c]['ratio_max'], 2)})")
                row.append(f"{fmt(min(by['alone']['seconds']), 2)}-{fmt(max(by['alone']['seconds']), 2)}")
                rows.append(row)
        # Each run says how many repetitions it made (the guests' as well).
        reps = "/".join(sorted({str(run["work"]["REPETITIONS"]) for run in slowdown_runs}))
        out.append(f"## Workload slowdown\n\nElapsed time under each condition divided by the time alone in the "
                   f"same repetition; median of {reps} interleaved repetitions, range in brackets.\n\n"
                   + table(header, rows)
                   + "\n" + "".join(f"- `{w}`: {d}\n" for w, d in SLOWDOWN_WORKLOADS.items())
                   + "".join(f"- {c}: `{d}`\n" for c, d in CONDITIONS.items() if c != "alone"))
        skipped = [f"{s['workload']} ({run['where']}): {s['reason']}" for run in slowdown_runs for s in run["skipped"]]
        not_measured = [f"`{n['condition']}`: {n['reason']}" for n in results.get("slowdown", {}).get("not_measured", [])
                        if not n["available"]]
        if skipped or not_measured:
            out.append("Not measured:\n\n" + "".join(f"- {line}\n" for line in skipped + not_measured))
    if "daemon" in results:
        d = results["daemon"]
        rows = [[p["phase"], fmt(p["seconds"], 1), fmt(p["migrations_per_second"]), fmt(p["user_seconds"], 2),
                 fmt(p["system_seconds"], 2), fmt(p["cpu_percent_of_one_core"], 3), fmt(p["rss_mb"], 1),
                 fmt(p["peak_rss_mb"], 1)]
                for p in d["phases"]]
        out.append(f"## Daemon cost\n\nScraped every {d['scrape_interval_seconds']} s during each phase.\n\n"
                   + table(["phase", "seconds", "migrations/s", "user s", "system s", "CPU % of one core",
                            "RSS MB", "peak RSS MB"], rows))
        rows = [[f"`{c['workload']}`", str(c["concurrent"]), fmt(c["migrations_per_second"]),
                 fmt(c["kernel_migrations"]), fmt(c["migwatch_migrations"]), fmt(c["lost"])]
                for c in d["count_checks"]]
        out.append("## Counted migrations against the kernel's se.nr_migrations\n\n"
                   + table(["workload", "run at once", "migrations/s", "kernel", "migwatch", "lost"], rows))
    latency = results.get("daemon", {}).get("scrape_latency", []) + results.get("vm", {}).get("scrape_latency", [])
    if latency:
        rows = [[l["where"], str(l["cpus"]), fmt(l["scrapes"]), fmt(l["bytes"]), fmt(l["median_ms"], 2),
                 fmt(l["p99_ms"], 2), fmt(l["max_ms"], 2)] for l in latency]
        out.append("## /metrics scrape latency\n\n"
                   + table(["where", "CPUs", "scrapes", "bytes", "median ms", "p99 ms", "max ms"], rows))
    if hosts := results.get("scale", {}).get("hosts"):
        rows = [[h["where"], str(h["possible_cpus"]), str(h["online_cpus"]), str(h["nodes"]),
                 fmt(h["threads"]) if h["threads"] else "-", fmt(h["map_bytes"] / 2**20, 2), fmt(h["series"]),
                 fmt(h["scrape_ms"], 1), "yes" if h["checks_passed"] else "**no**"] for h in hosts]
        out.append("## Big hosts\n\n"
                   + table(["where", "possible CPUs", "online", "NUMA nodes", "threads", "map MiB", "series",
                            "scrape ms", "counts exact, checks met"], rows))
    if "trace" in results:
        rows = [[r["run"], fmt(r["storm_flips_per_second"]), fmt(r["events"]), fmt(r["delivered"]),
                 fmt(r["delivered_per_second"]), fmt(r["dropped_ring_buffer_full"]), fmt(r["dropped_over_max_rate"]),
                 fmt(r["kernel_migrations"]), fmt(r["unaccounted"])] for r in results["trace"]["runs"]]
        out.append(f"## Trace mode\n\n`migwatch trace -p PID` on `mw_workload {results['trace']['storm']}`.\n\n"
                   + table(["run", "storm flips/s", "events", "delivered", "delivered/s", "dropped: ring full",
                            "dropped: --max-rate", "kernel", "unaccounted"], rows))
    if results.get("targets"):
        verdict = {True: "yes", False: "**no**", None: "undecided"}
        rows = [[t["target"], t["measured"], verdict[t["met"]]] for t in results["targets"]]
        out.append("## Targets\n\n" + table(["target", "measured", "met"], rows))
    return "\n".join(out)


# ---------------------------------------------------------------- main


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for tool in ("migwatch", "workload", "reference", "scrape"):
        parser.add_argument(f"--{tool}", type=lambda p: Path(p).resolve(), required=True, metavar="PATH")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where bench.json and bench.md go")
    parser.add_argument("--sections", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all but paired)")
    parser.add_argument("--baseline", type=lambda p: Path(p).resolve(), metavar="PATH",
                        help="another migwatch build, for the paired section: attached beside --migwatch")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the plumbing, not the numbers")
    arguments = parser.parse_args(argv)
    arguments.sections = [s for s in arguments.sections.split(",") if s]
    unknown = set(arguments.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if "paired" in arguments.sections and arguments.baseline is None:
        parser.error("the paired section needs --baseline PATH, the build to compare with")
    if arguments.baseline is not None and "paired" not in arguments.sections:
        parser.error("--baseline is for the paired section only: add it to --sections")
    return arguments


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    results["targets"] = evaluate_targets(results)
    (out / "bench.json.tmp").write_text(json.dumps(results, indent=2) + "\n")
    (out / "bench.json.tmp").rename(out / "bench.json")
    (out / "bench.md").write_text(markdown(results))


TRACEFS = Path("/sys/kernel/tracing")


def tracefs_in_private_namespace() -> None:
    """bpftrace and perf read tracepoint formats from tracefs, which a fresh
    machine has not mounted (migwatch itself does not need it). Mounted in a
    mount namespace of this run's own, inherited by every tool it starts,
    so that the machine is left as it was found."""
    if (TRACEFS / "events").is_dir():
        return
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 0x40000
    if libc.unshare(CLONE_NEWNS) != 0:
        raise BenchError(f"unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise BenchError(f"making / private in the new mount namespace: {os.strerror(ctypes.get_errno())}")
    if libc.mount(b"nodev", bytes(TRACEFS), b"tracefs", 0, None) != 0:
        raise BenchError(f"mounting tracefs on {TRACEFS}: {os.strerror(ctypes.get_errno())}")
    log(f"tracefs mounted on {TRACEFS} for this run only (private mount namespace)")


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    if os.geteuid() != 0:
        log("needs root: it loads BPF programs and reads other processes' BPF statistics")
        return 1
    try:
        tracefs_in_private_namespace()
    except BenchError as error:
        log(str(error))
        return 1
    for tool in ("bpftool", "bpftrace", "perf", "taskset"):
        if not shutil.which(tool):
            log(f"{tool} is not installed (deploy/install-build-deps.sh installs it)")
            return 1
    sizes = Sizes(arguments.quick)
    version = subprocess.run([arguments.migwatch, "--version"], capture_output=True, text=True).stdout.strip()
    results = {
        "schema": SCHEMA,
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "sections": arguments.sections,
        "host": {"kernel": os.uname().release, "cpus": os.cpu_count(), "migwatch": version,
                 "quick": arguments.quick, "load_average_start": list(os.getloadavg()), **memory_isolation()},
    }
    started = time.monotonic()
    status = 0
    with tempfile.TemporaryDirectory(prefix="mwbench-") as scratch:
        workloads = Workloads(arguments.workload, Path(scratch))
        for section in arguments.sections:
            log(f"section {section}")
            try:
                results[section] = SECTION_RUNNERS[section](arguments, workloads, sizes)
            except (BenchError, OSError, subprocess.SubprocessError) as error:
                log(f"section {section} failed: {error}")
                results.setdefault("failed_sections", []).append({"section": section, "error": str(error)})
                status = 1
            results["host"]["load_average_end"] = list(os.getloadavg())
            results["duration_seconds"] = time.monotonic() - started
            write_results(arguments.out, results)
    log(f"results in {arguments.out / 'bench.json'} and {arguments.out / 'bench.md'}")
    print((arguments.out / "bench.md").read_text())
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
