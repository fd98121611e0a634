#!/usr/bin/env python3
"""Big hosts: migwatch with 255 possible CPUs and 2 online, against 4 possible.

The kernel sizes per-CPU data, BPF's per-CPU maps included, by the possible
CPUs, which on big or hot-pluggable hosts far outnumber the online ones.
Boots Debian's 6.1 kernel under QEMU in PAIRS pairs, `-smp 2,maxcpus=4` then
`-smp 2,maxcpus=255`, pair after pair (4, 255, 4, 255, ...), runs
scale_guest.sh in each (the daemon, a short affinity storm, then the
measurements), and judges:

- with 255 possible CPUs, the daemon's BPF maps lock at most 16 MiB and
  /metrics has at most 400 series, in every guest;
- a scrape takes at most 1.5 times as long as with 4 possible CPUs: the
  median of the pairs' ratios. The scrape time is wall time under emulation,
  which the host's other work moves by half from one boot to the next; a
  pair's two guests run back to back, so the host's state is shared by both
  sides of one ratio, and the median keeps one disturbed pair from deciding;
- in every guest, every per-CPU family has one series per online CPU, and
  migwatch counts the storm and `migwatch check`'s own storm exactly as the
  kernel does.

Prints a table, writes the figures to WORK_DIR/scale.json and exits 0 only if
everything holds. See README.md in this directory.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import matrix
import vm

KERNEL = "6.1"
ONLINE_CPUS = 2
BASELINE_POSSIBLE = 4
BIG_POSSIBLE = 255  # the most QEMU's pc machine allows
MAX_MAP_BYTES = 16 * 2**20
MAX_SERIES = 400
MAX_SCRAPE_RATIO = 1.5
PAIRS = 5
GUEST_MEMORY_MIB = 1024
# A guest runs its script in 5-20 s on an idle host; loading with fentry
# waits for RCU grace periods under emulation, 10-70 s in the busy matrix.
GUEST_TIMEOUT_SECONDS = 100
RUN = "scale"
STORM = "affinity-running"
PER_CPU_LABEL = "cpu"
# Unlabelled samples the report quotes: the last collection's duration, and
# prometheus-cpp's request latencies (microseconds) over every scrape so far.
SERVER_SIDE = ("migwatch_collect_duration_seconds", "exposer_request_latencies_sum",
               "exposer_request_latencies_count")


def cpu_list(text: str) -> list[int]:
    """CPUs of a kernel CPU list such as 0-1,4."""
    cpus = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def measure(lines: list[str], run: str = RUN) -> dict:
    """The figures of one guest from its console lines (records of `run`)."""
    figures = {"possible_cpus": None, "online_cpus": None, "maps": {}, "scrapes": None,
               "scrape_centiseconds": None, "series": 0, "done": False}
    server = {}
    for line in lines:
        match = matrix.RECORD.search(line.rstrip("\n"))
        if not match or match.group(1) != run:
            continue
        kind, fields = match.group(2), (match.group(3) or "").split()
        if kind == "cpus" and len(fields) == 2:
            figures["possible_cpus"] = len(cpu_list(fields[0]))
            figures["online_cpus"] = cpu_list(fields[1])
        elif kind == "map" and len(fields) == 4 and all(field.isdigit() for field in fields):
            # Keyed by map id: two descriptors of one map are one map.
            figures["maps"][fields[0]] = {"type": int(fields[1]), "max_entries": int(fields[2]),
                                          "memlock": int(fields[3])}
        elif kind == "scrapes" and len(fields) == 2 and all(field.isdigit() for field in fields):
            figures["scrapes"], figures["scrape_centiseconds"] = int(fields[0]), int(fields[1])
        elif kind == "metric" and fields[:1] == ["series"]:
            figures["series"] += 1
            if len(fields) == 3 and fields[1] in SERVER_SIDE:
                server[fields[1]] = float(fields[2])
        elif kind == "done":
            figures["done"] = True
    figures["map_bytes"] = sum(entry["memlock"] for entry in figures["maps"].values())
    if figures["scrapes"]:
        figures["scrape_ms"] = figures["scrape_centiseconds"] * 10 / figures["scrapes"]
    # The daemon's own view, without the client's fork and exec: for telling
    # the server's share of a slower scrape. Reported, not judged.
    if "migwatch_collect_duration_seconds" in server:
        figures["collect_ms"] = round(server["migwatch_collect_duration_seconds"] * 1e3, 2)
    if server.get("exposer_request_latencies_count"):
        figures["served_ms"] = round(server["exposer_request_latencies_sum"] / 1e3
                                     / server["exposer_request_latencies_count"], 2)
    return figures


def per_cpu_families(samples) -> dict:
    """migwatch family -> {the other labels: the cpu label values}."""
    families = {}
    for sample in samples:
        if sample.name.startswith("migwatch_") and PER_CPU_LABEL in sample.labels:
            others = tuple(sorted((k, v) for k, v in sample.labels.items() if k != PER_CPU_LABEL))
            families.setdefault(sample.name, {}).setdefault(others, []).append(sample.labels[PER_CPU_LABEL])
    return families


def judge_guest(possible: int, figures: dict, results: matrix.KernelResults, run_name: str = RUN,
                online_cpus: int = ONLINE_CPUS) -> list[str]:
    """Failures of one guest (records of run_name), whatever its number of
    possible CPUs: its maps, scrapes, per-CPU series, storm and check."""
    failures = []
    if not figures["done"]:
        failures.append("the guest script did not finish")
    if figures["possible_cpus"] != possible or figures["online_cpus"] is None or \
            len(figures["online_cpus"]) != online_cpus:
        failures.append(f"guest has {figures['possible_cpus']} possible CPUs and {figures['online_cpus']} online, "
                        f"expected {possible} and {online_cpus}")
    if not figures["maps"]:
        failures.append("no BPF map found in the daemon's fdinfo")
    if figures["scrapes"] is None:
        failures.append("no scrape timing")
    run = results.runs.get(run_name, matrix.Run())
    families = per_cpu_families(run.snapshots.get("series", []))
    figures["per_cpu"] = {name: sorted({cpu for cpus in groups.values() for cpu in cpus})
                          for name, groups in families.items()}
    if not families:
        failures.append("no per-CPU series")
    online = sorted(str(cpu) for cpu in figures["online_cpus"] or [])
    for name, groups in families.items():
        for others, cpus in groups.items():
            if sorted(cpus) != online:
                failures.append(f"{name}{dict(others)}: series for CPUs {sorted(cpus)}, "
                                f"expected one per online CPU {online}")

    verdicts = matrix.Verdicts()
    matrix.judge_check(run_name, run, verdicts)
    failures += verdicts.failures
    storm = next((record for record in run.processes if record.workload == STORM), None)
    counted = round(sum(matrix.sum_by(run.snapshots.get(STORM, []), "migwatch_process_migrations_total",
                                      "reason", process=storm.name).values())) if storm else None
    figures["storm"] = {"migwatch": counted, "kernel": storm.kernel if storm else None}
    figures["check"] = {"migwatch": verdicts.counts[0][2], "kernel": verdicts.counts[0][3]}
    if storm is None:
        failures.append("no storm result")
    elif counted != storm.kernel or storm.kernel < storm.at_least:
        failures.append(f"storm: migwatch counted {counted} migrations of {storm.name}, the kernel "
                        f"{storm.kernel} (the storm makes at least {storm.at_least})")
    return failures


def judge_big(big: dict) -> list[str]:
    """The bounds of one guest with many more possible CPUs than online ones."""
    failures = []
    if big["map_bytes"] > MAX_MAP_BYTES:
        failures.append(f"BPF maps lock {big['map_bytes'] / 2**20:.1f} MiB, more than "
                        f"{MAX_MAP_BYTES / 2**20:.0f} MiB")
    if big["series"] > MAX_SERIES:
        failures.append(f"{big['series']} series on /metrics, more than {MAX_SERIES}")
    return failures


def scrape_ratios(pairs: list) -> list[float]:
    """Per pair (baseline figures, big figures): the big guest's scrape time
    over the baseline's, for the pairs where both were measured."""
    return [big["scrape_ms"] / baseline["scrape_ms"] for baseline, big in pairs
            if big.get("scrape_ms") is not None and baseline.get("scrape_ms")]


def judge_scrape_ratios(ratios: list[float], pairs: int) -> list[str]:
    """The bound on the median of the pairs' scrape-time ratios."""
    if len(ratios) != pairs:
        return [f"scrape times measured in {len(ratios)} of {pairs} pairs"]
    median = statistics.median(ratios)
    if median > MAX_SCRAPE_RATIO:
        return [f"a scrape takes {median:.2f} times as long as with {BASELINE_POSSIBLE} possible CPUs "
                f"(median of {pairs} pairs, {min(ratios):.2f}-{max(ratios):.2f}), more than {MAX_SCRAPE_RATIO}"]
    return []


def cell(value, digits=1) -> str:
    """A figure for a table: "-" when missing."""
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def print_report(guests: list) -> None:
    rows = []
    for figures in guests:
        per_cpu = figures.get("per_cpu") or {}
        rows.append((str(figures["pair"]), str(figures["possible"]),
                     cell(figures["online_cpus"] and len(figures["online_cpus"])),
                     f"{figures['map_bytes'] / 2**20:.2f}", str(len(figures["maps"])), str(figures["series"]),
                     ",".join(sorted({cpu for cpus in per_cpu.values() for cpu in cpus})) or "-",
                     cell(figures.get("scrape_ms")), cell(figures.get("served_ms")),
                     cell(figures.get("collect_ms")),
                     f"{cell(figures['storm']['migwatch'])}/{cell(figures['storm']['kernel'])}",
                     f"{cell(figures['check']['migwatch'])}/{cell(figures['check']['kernel'])}",
                     f"{figures['seconds']:.0f}", "pass" if not figures["failures"] else "FAIL"))
    vm.print_table(("pair", "possible", "online", "maps MiB", "maps", "series", "cpu labels", "scrape ms",
                    "served ms", "collect ms",
                    "storm mw/kernel", "check mw/kernel", "seconds", "result"), rows)
    for figures in guests:
        for failure in figures["failures"]:
            print(f"FAIL pair {figures['pair']} possible={figures['possible']}: {failure}")


def guest_parser(prog: str, description: str, figures_file: str) -> argparse.ArgumentParser:
    """The options of a test that boots guests with migwatch and mw_workload."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--migwatch", type=Path, required=True, help="the migwatch binary")
    parser.add_argument("--workload", type=Path, required=True, help="the mw_workload binary")
    parser.add_argument("--work-dir", type=Path, required=True,
                        help=f"where the logs, image and {figures_file} go")
    return parser


def guest_files(arguments: argparse.Namespace, *more: str) -> list:
    """guest_helpers.sh, migwatch and mw_workload for vm.build_initramfs, and
    `more` (HOSTPATH:GUESTPATH)."""
    here = Path(__file__).resolve().parent
    return [vm.parse_guest_file(spec) for spec in (
        *more, f"{here / 'guest_helpers.sh'}:/guest_helpers.sh",
        f"{arguments.migwatch}:/usr/local/bin/migwatch", f"{arguments.workload}:/usr/local/bin/mw_workload")]


def main(argv: list) -> int:
    arguments = guest_parser("scale.py", __doc__.splitlines()[0], "scale.json").parse_args(argv)
    work_dir = arguments.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    started = time.monotonic()
    try:
        kernel = vm.fetch_kernel(KERNEL)
        initrd = work_dir / "initrd.img"
        vm.build_initramfs(here / "scale_guest.sh", guest_files(arguments), GUEST_TIMEOUT_SECONDS, initrd)
    except vm.HarnessError as error:
        print(f"scale: {error}", file=sys.stderr)
        return 1

    # One guest at a time, so that each has the host's two cores to itself.
    guests, pairs = [], []
    for pair in range(1, PAIRS + 1):
        booted = []
        for possible in (BASELINE_POSSIBLE, BIG_POSSIBLE):
            name = f"pair-{pair}-possible-{possible}"
            vm.log(f"{KERNEL}: pair {pair} of {PAIRS}: booting {kernel.package} with {ONLINE_CPUS} of "
                   f"{possible} CPUs online")
            result = vm.boot(kernel, initrd, ONLINE_CPUS, GUEST_MEMORY_MIB, GUEST_TIMEOUT_SECONDS, "",
                             work_dir / f"{name}.log",
                             lambda line, name=name: print(f"[{name}] {line}", flush=True), maxcpus=possible)
            if result.status is None:
                vm.report_missing_status(name, result)
            lines = result.log_path.read_text(errors="replace").splitlines()
            figures = measure(lines)
            figures.update(pair=pair, possible=possible, kernel=result.kernel_release,
                           seconds=round(result.seconds, 1), exit_status=result.status)
            figures["failures"] = judge_guest(possible, figures, matrix.parse_results(lines))
            if result.status != 0:
                figures["failures"].insert(0, f"guest script exit status {result.status}")
            if possible == BIG_POSSIBLE:
                figures["failures"] += judge_big(figures)
            booted.append(figures)
        guests += booted
        pairs.append(tuple(booted))
    ratios = scrape_ratios(pairs)
    ratio_failures = judge_scrape_ratios(ratios, PAIRS)
    median = round(statistics.median(ratios), 2) if ratios else None

    (work_dir / "scale.json").write_text(json.dumps(
        {"kernel": kernel.version, "online_cpus": ONLINE_CPUS,
         "bounds": {"map_bytes": MAX_MAP_BYTES, "series": MAX_SERIES, "scrape_ratio": MAX_SCRAPE_RATIO},
         "scrape_ratios": [round(ratio, 2) for ratio in ratios], "scrape_ratio_median": median,
         "guests": guests}, indent=2) + "\n")
    print()
    print_report(guests)
    print(f"scrape time, {BIG_POSSIBLE} against {BASELINE_POSSIBLE} possible CPUs, per pair: "
          f"{' '.join(f'{ratio:.2f}' for ratio in ratios) or '-'}; median {cell(median, 2)} "
          f"(at most {MAX_SCRAPE_RATIO})")
    for failure in ratio_failures:
        print(f"FAIL {failure}")
    passed = not ratio_failures and not any(figures["failures"] for figures in guests)
    print(f"\nbig hosts {'PASS' if passed else 'FAIL'} in {time.monotonic() - started:.0f} s; "
          f"figures in {work_dir / 'scale.json'}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
