#!/usr/bin/env python3
"""Checks that a benchmark result file (bench.json, written by bench.py) is
well formed: every requested section is there, none failed, every number a
table shows is a number, and the Markdown report sits beside it. It judges
no number: performance is read from a full run, never asserted in a test.

    check_result.py RESULT.json --sections kernel,slowdown,daemon,trace
"""

import argparse
import json
import sys
from pathlib import Path

NUMBER = (int, float)
# Keys every entry of a section's list must carry, with their types; None
# allowed where a value can be missing (a program without a reference).
REQUIRED = {
    "kernel": ("programs", {"program": str, "events": int, "ns_per_event": NUMBER + (type(None),),
                            "reference_ns_per_event": NUMBER + (type(None),), "ratio": NUMBER + (type(None),)}),
    "slowdown": ("runs", {"where": str, "workloads": list, "skipped": list}),
    "daemon": ("phases", {"phase": str, "seconds": NUMBER, "migrations_per_second": NUMBER, "user_seconds": NUMBER,
                          "system_seconds": NUMBER, "cpu_percent_of_one_core": NUMBER, "rss_mb": NUMBER,
                          "peak_rss_mb": NUMBER}),
    "trace": ("runs", {"run": str, "events": int, "delivered": int, "dropped": int, "kernel_migrations": int,
                       "unaccounted": int, "delivered_per_second": NUMBER}),
    "vm": ("scrape_latency", {"where": str, "cpus": int, "scrapes": int, "median_ms": NUMBER, "p99_ms": NUMBER}),
    "scale": ("hosts", {"where": str, "possible_cpus": int, "online_cpus": int, "map_bytes": int, "series": int,
                        "scrape_ms": NUMBER, "checks_passed": bool}),
    "paired": ("programs", {"program": str, "ns_per_event": list, "baseline_ns_per_event": list,
                            "difference_median": NUMBER, "difference_min": NUMBER, "difference_max": NUMBER}),
}


def problems(result: dict, sections: list[str]) -> list[str]:
    found = []
    if result.get("schema") != "migwatch-bench/1":
        found.append(f"schema is {result.get('schema')!r}, not 'migwatch-bench/1'")
    for failure in result.get("failed_sections", []):
        found.append(f"section {failure['section']} failed: {failure['error']}")
    for section in sections:
        if section not in result:
            found.append(f"section {section} is missing")
            continue
        list_key, fields = REQUIRED[section]
        entries = result[section].get(list_key)
        if not isinstance(entries, list) or not entries:
            found.append(f"{section}.{list_key} is not a non-empty list")
            continue
        for index, entry in enumerate(entries):
            for key, types in fields.items():
                value = entry.get(key)
                # A bool is an int to isinstance: only a bool field takes one.
                if not isinstance(value, types) or (isinstance(value, bool) and types is not bool):
                    found.append(f"{section}.{list_key}[{index}].{key} is {entry.get(key)!r}")
    runs = result.get("slowdown", {}).get("runs", []) if "slowdown" in sections else []
    runs += result.get("vm", {}).get("slowdown", []) if "vm" in sections else []
    for run in runs:
        if not run.get("workloads"):
            found.append(f"slowdown in {run.get('where')} measured no workload")
        for w in run.get("workloads", []):
            conditions = {c.get("condition"): c for c in w.get("conditions", [])}
            for name in ("alone", "migwatch", "bpftrace", "perf_record"):
                c = conditions.get(name, {})
                if not all(isinstance(c.get(k), NUMBER) for k in ("ratio_median", "ratio_min", "ratio_max")):
                    found.append(f"slowdown {run.get('where')} {w.get('workload')} {name} lacks its ratios")
    if "kernel" in sections and "kernel" in result:
        split = result["kernel"].get("by_workload")
        if not isinstance(split, list) or not split:
            found.append("kernel.by_workload is not a non-empty list")
        for w in split or []:
            names = {p.get("program") for p in w.get("programs", [])}
            if not isinstance(w.get("workload"), str) or "sched_migrate_task_btf" not in names:
                found.append(f"kernel.by_workload entry {w.get('workload')!r} lacks sched_migrate_task_btf")
        capture = result["kernel"].get("during_capture") or {}
        for key in ("capturing", "not_capturing"):
            programs = {p.get("program"): p for p in capture.get(key, [])}
            if not isinstance(programs.get("sched_migrate_task_btf", {}).get("ns_per_event"), NUMBER):
                found.append(f"kernel.during_capture.{key} lacks sched_migrate_task_btf's cost")
    if "daemon" in sections and "daemon" in result:
        if not result["daemon"].get("count_checks") or not result["daemon"].get("scrape_latency"):
            found.append("daemon.count_checks or daemon.scrape_latency is empty")
    if not isinstance(result.get("targets"), list) or not all(
            isinstance(t.get("met"), (bool, type(None))) and isinstance(t.get("target"), str)
            for t in result["targets"]):
        found.append("targets is not a list of {target, measured, met (true, false or null)}")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("--sections", required=True, help="comma-separated sections that must be present")
    arguments = parser.parse_args(argv)
    sections = [s for s in arguments.sections.split(",") if s]
    unknown = set(sections) - set(REQUIRED)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    try:
        result = json.loads(arguments.result.read_text())
    except (OSError, json.JSONDecodeError) as error:
        print(f"check_result: {arguments.result}: {error}", file=sys.stderr)
        return 1
    found = problems(result, sections)
    report = arguments.result.with_name("bench.md")
    if not report.is_file() or "| " not in report.read_text():
        found.append(f"{report} is missing or holds no table")
    for problem in found:
        print(f"check_result: {problem}", file=sys.stderr)
    if not found:
        print(f"check_result: {arguments.result} is well formed ({', '.join(sections)})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
