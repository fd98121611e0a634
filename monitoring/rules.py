#!/usr/bin/env python3
"""Write migwatch's Prometheus recording and alerting rules.

Every threshold, window and duration comes from thresholds.json (next to this
script), so that they live in one place; the dashboards read the same file.
The checked-in migwatch.rules.yml is this script's output with the defaults
(monitoring/generate.py writes it along with the dashboards):

    monitoring/rules.py -o monitoring/migwatch.rules.yml

--set KEY=VALUE overrides one setting, e.g. a lowered copy for testing against
a real storm, or a host-specific copy (the Debian package installs this script
as /usr/share/migwatch/prometheus/generate.py, next to thresholds.json):

    rules.py --set stopper_cpu_ratio=0.05 --set stopper_cpu_for=5m -o FILE
"""

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.json"
# The recorded series a fleet keeps centrally (federation's match[], remote
# write's keep rule): per host, by reason or by stopper work at most, so a
# host sends a bounded number of series whatever its CPUs, processes and VMs.
FLEET_SERIES = "instance(_reason|_work)?:migwatch_.+"
# Prometheus duration syntax, e.g. 90s, 1h30m.
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


class Settings:
    """thresholds.json values, type-checked; remembers which ones were read
    so that a setting no rule uses is reported instead of silently ignored."""

    def __init__(self, path, overrides):
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        self.values = {key: entry["value"] for key, entry in entries.items()}
        self.overrides = []
        for item in overrides:
            key, sep, text = item.partition("=")
            if not sep:
                sys.exit(f"--set {item}: expected KEY=VALUE")
            if key not in self.values:
                sys.exit(f"--set {item}: unknown setting; known: {', '.join(sorted(self.values))}")
            self.values[key] = self._parse(key, text)
            self.overrides.append(f"{key}={text}")
        for key, value in self.values.items():
            self._check(key, value)
        self.used = set()

    def _parse(self, key, text):
        if isinstance(self.values[key], str):
            return text
        try:
            number = float(text)
        except ValueError:
            sys.exit(f"--set {key}={text}: expected a number")
        return int(number) if number.is_integer() else number

    @staticmethod
    def _check(key, value):
        if key.endswith(("_window", "_for")):
            if not (isinstance(value, str) and DURATION.match(value)):
                sys.exit(f"{key}={value!r}: expected a Prometheus duration such as 5m")
        elif isinstance(value, bool) or (not isinstance(value, str) and not value >= 0):
            sys.exit(f"{key}={value!r}: expected a number >= 0")

    def __getitem__(self, key):
        self.used.add(key)
        value = self.values[key]
        if isinstance(value, float):
            return repr(value)
        return str(value)

    def unused(self):
        return sorted(set(self.values) - self.used)


def seconds_text(seconds):
    """600 -> 10m, 7200 -> 2h, 90 -> 90s: for annotation texts."""
    seconds = float(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def rules(s):
    """The rule groups, as lists of dicts in output order."""
    job_up = f'up{{job="{s["job"]}"}}'
    w = s["rate_window"]
    reason_rate = f"instance_reason:migwatch_migrations:rate{w}"
    cpu_rate = f"instance_cpu:migwatch_stopper_cpu_seconds:rate{w}"
    requester_rate = f"instance_requester:migwatch_affinity_changes:rate{w}"
    vm_preempted_rate = f"instance_vm:migwatch_vm_stopper_preempted_seconds:rate{w}"
    lm_duration = "instance:migwatch_qemu_migration_duration_seconds:max"
    lm_running = "(time() - migwatch_qemu_migration_start_time_seconds)"

    recording = [
        {
            "record": reason_rate,
            "expr": f"sum by (job, instance, reason) (rate(migwatch_migrations_total[{w}]))",
        },
        {
            "record": cpu_rate,
            "expr": f"sum by (job, instance, cpu) (rate(migwatch_stopper_cpu_seconds_total[{w}]))",
        },
        {
            "record": vm_preempted_rate,
            "expr": f"sum by (job, instance, vm) (rate(migwatch_vm_stopper_preempted_seconds_total[{w}]))",
        },
        {
            "record": requester_rate,
            "expr": f"sum by (job, instance, requester) (rate(migwatch_affinity_changes_total[{w}]))",
        },
        {
            # How long the host's longest running live migration has been
            # running; its history is the "usual" duration of the slow live
            # migration alert.
            "record": lm_duration,
            "expr": f"max by (job, instance) {lm_running}",
        },
    ]

    storm = f'avg_over_time({reason_rate}[{s["storm_window"]}])'
    baseline = f'avg_over_time({reason_rate}[{s["storm_baseline_window"]}])'
    lm_min = s["live_migration_min_seconds"]
    lm_max = s["live_migration_max_seconds"]
    alerts = [
        {
            "alert": "MigwatchMigrationStorm",
            "expr": f"""
                {storm} > {s["storm_min_rate"]}
                and
                {storm}
                  > {s["storm_factor"]} * {baseline}""",
            "for": s["storm_for"],
            "severity": "warning",
            "summary": "Migration storm on {{ $labels.instance }}: {{ $labels.reason }} migrations",
            "description": (
                "{{ $labels.instance }} has performed {{ $value | humanize }} {{ $labels.reason }} "
                f'migrations per second on average over the last {s["storm_window"]}, more than '
                f'{s["storm_factor"]} times its {s["storm_baseline_window"]} average and above '
                f'{s["storm_min_rate"]}/s. The migwatch host dashboard shows the processes and '
                "requesters behind them."
            ),
        },
        {
            "alert": "MigwatchStopperCPUHigh",
            "expr": f'{cpu_rate} > {s["stopper_cpu_ratio"]}',
            "for": s["stopper_cpu_for"],
            "severity": "warning",
            "summary": "migration/{{ $labels.cpu }} on {{ $labels.instance }} uses "
            "{{ $value | humanizePercentage }} of its CPU",
            "description": (
                "The stopper thread migration/{{ $labels.cpu }} has run more than "
                f'{float(s["stopper_cpu_ratio"]) * 100:g}% of CPU {{{{ $labels.cpu }}}} for '
                f'{s["stopper_cpu_for"]} (the softlockup watchdog alone costs about 0.001%). '
                "migwatch_stopper_work_seconds_total shows which work it runs and "
                "migwatch_stopper_requester_seconds_total which process asks for it."
            ),
        },
        {
            "alert": "MigwatchVMPreemptedByStopper",
            "expr": f'{vm_preempted_rate} > {s["vm_preempted_ratio"]}',
            "for": s["vm_preempted_for"],
            "severity": "warning",
            "summary": "VM {{ $labels.vm }} on {{ $labels.instance }} loses "
            "{{ $value | humanizePercentage }} of a CPU to migration/N",
            "description": (
                "For " + s["vm_preempted_for"] + ", migration/N stopper threads have preempted the threads "
                "of VM {{ $labels.vm }} (its vCPUs) for more than "
                f'{float(s["vm_preempted_ratio"]) * 100:g}% of one CPU, whatever work they ran: often '
                "another VM's vCPUs being repinned on the same host CPUs. "
                "migwatch_vm_stopper_cpu_seconds_total shows which VMs are being moved, and "
                "migwatch_stopper_requester_seconds_total which process asks for the moves."
            ),
        },
        {
            "alert": "MigwatchAffinityChurn",
            "expr": f'{requester_rate} > {s["affinity_churn_rate"]}',
            "for": s["affinity_churn_for"],
            "severity": "warning",
            "summary": "{{ $labels.requester }} keeps moving tasks off their CPUs on {{ $labels.instance }}",
            "description": (
                f'For {s["affinity_churn_for"]}, {{{{ $labels.requester }}}} has made '
                "{{ $value | humanize }} sched_setaffinity calls per second that force a running "
                "task off its CPU, each costing a migration/N stopper run. Usual requesters: numad, "
                "libvirtd (vcpupin, emulatorpin), tuned, the kubelet CPU manager, systemd AllowedCPUs=. "
                '"other" stands for several processes folded together.'
            ),
        },
        {
            "alert": "MigwatchNUMABalancingThrash",
            "expr": f'{reason_rate}{{reason="numa"}} > {s["numa_migration_rate"]}',
            "for": s["numa_for"],
            "severity": "warning",
            "summary": "Automatic NUMA balancing thrashes on {{ $labels.instance }}",
            "description": (
                "Automatic NUMA balancing has moved {{ $value | humanize }} tasks per second on "
                f'{{{{ $labels.instance }}}} for {s["numa_for"]}, each move stopping one or two CPUs '
                "(migrate_task_to, migrate_swap). Bind the VMs' vCPUs and memory to one node, or "
                "turn off kernel.numa_balancing."
            ),
        },
        {
            "alert": "MigwatchLiveMigrationSlow",
            # The history ends live_migration_max_seconds ago: a running
            # migration younger than that is not part of its own baseline, and
            # an older one fires on the absolute limit anyway.
            "expr": f"""
                {lm_running} > {lm_max}
                or
                (
                  {lm_running} > {lm_min}
                  and
                  {lm_running}
                    > on (job, instance) group_left ()
                      {s["live_migration_factor"]} * max_over_time({lm_duration}[{s["live_migration_history_window"]}] offset {lm_max}s)
                )""",
            "for": s["live_migration_for"],
            "severity": "warning",
            "summary": "Live migration of {{ $labels.vm }} ({{ $labels.side }}) on {{ $labels.instance }} "
            "has run for {{ $value | humanizeDuration }}",
            "description": (
                "The QEMU live migration of VM {{ $labels.vm }}, {{ $labels.side }} side, has been "
                "running for {{ $value | humanizeDuration }}: longer than "
                f'{s["live_migration_factor"]} times the longest one on this host in the '
                f'{s["live_migration_history_window"]} up to {seconds_text(lm_max)} ago, or longer than {seconds_text(lm_max)}. '
                "A migration that does not converge keeps its vCPUs and migration threads busy; "
                "check its dirty page rate and bandwidth limit."
            ),
        },
        {
            "alert": "MigwatchDown",
            "expr": f"{job_up} == 0",
            "for": s["down_for"],
            "severity": "warning",
            "summary": "migwatch on {{ $labels.instance }} is down",
            "description": (
                "Prometheus has failed to scrape migwatch on {{ $labels.instance }} for "
                f'{s["down_for"]}: migrations and migration/N CPU on that host are not observed.'
            ),
        },
        {
            "alert": "MigwatchAbsent",
            "expr": f"absent({job_up})",
            "for": s["absent_for"],
            "severity": "warning",
            "summary": "No migwatch target",
            "description": (
                f'Prometheus has had no target of job "{s["job"]}" for {s["absent_for"]}: '
                "check the scrape configuration."
            ),
        },
        {
            "alert": "MigwatchRequiredProbeNotAttached",
            # A probe may report several modes, those that failed with 0: it
            # is missing only if no mode is attached.
            "expr": 'max by (job, instance, probe) (migwatch_probe_attached{required="true"}) == 0',
            "for": s["probe_for"],
            "severity": "warning",
            "summary": "migwatch on {{ $labels.instance }} runs without its {{ $labels.probe }} probe",
            "description": (
                "The required probe {{ $labels.probe }} is not attached in any mode, so the counts "
                "of migwatch on {{ $labels.instance }} are wrong. The daemon's log says why; "
                "kernels before 5.8 need CAP_SYS_ADMIN (see the comments in migwatch.service)."
            ),
        },
        {
            "alert": "MigwatchOptionalProbeNotAttached",
            "expr": 'max by (job, instance, probe) (migwatch_probe_attached{required="false"}) == 0',
            "for": s["probe_for"],
            "severity": "info",
            "summary": "migwatch on {{ $labels.instance }} runs without its optional {{ $labels.probe }} probe",
            "description": (
                "The optional probe {{ $labels.probe }} is not attached in any mode on {{ $labels.instance }}: "
                "the counts stay exact, but the attribution it sharpens falls back (for fentry probes, "
                "the stopper's work is named from its waker instead). The daemon's log says why; "
                "a kernel that refuses fentry programs is the usual reason."
            ),
        },
    ]
    # Per-host series for a fleet (FLEET_SERIES): the per-CPU, per-process
    # and per-VM detail stays on the host's own Prometheus.
    fleet = [
        {
            "record": f"instance:migwatch_migrations:rate{w}",
            "expr": f"sum by (job, instance) ({reason_rate})",
        },
        {
            # In CPUs: the whole host's migration/N time.
            "record": f"instance:migwatch_stopper_cpu_seconds:rate{w}",
            "expr": f"sum by (job, instance) ({cpu_rate})",
        },
        {
            # The busiest stopper's share of its CPU: what the stopper alert
            # compares, without the cpu label.
            "record": f"instance:migwatch_stopper_cpu_seconds:max_rate{w}",
            "expr": f"max by (job, instance) ({cpu_rate})",
        },
        {
            "record": f"instance_work:migwatch_stopper_work_seconds:rate{w}",
            "expr": f"sum by (job, instance, work) (rate(migwatch_stopper_work_seconds_total[{w}]))",
        },
        {
            "record": f"instance:migwatch_affinity_changes:rate{w}",
            "expr": f"sum by (job, instance) ({requester_rate})",
        },
    ]
    return [("migwatch.recording", recording), ("migwatch.fleet", fleet), ("migwatch.alerts", alerts)]


def quoted(text):
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(text, ensure_ascii=False)


def render(groups, overrides):
    out = [
        "# Generated by generate.py from thresholds.json: change those, then regenerate.",
    ]
    if overrides:
        out.append(f"# Overrides: {' '.join(overrides)}")
    out.append("groups:")
    for name, group in groups:
        out += [f"  - name: {name}", "    rules:"]
        for rule in group:
            kind = "record" if "record" in rule else "alert"
            out.append(f"      - {kind}: {rule[kind]}")
            expr = textwrap.dedent(rule["expr"]).strip("\n")
            out.append("        expr: |-")
            out += [f"          {line}" for line in expr.splitlines()]
            if kind == "alert":
                out += [
                    f"        for: {rule['for']}",
                    "        labels:",
                    f"          severity: {rule['severity']}",
                    "        annotations:",
                    f"          summary: {quoted(rule['summary'])}",
                    f"          description: {quoted(rule['description'])}",
                ]
    return "\n".join(out) + "\n"


def generate(thresholds=DEFAULT_THRESHOLDS, overrides=()):
    """The rules file's text from the settings file and --set overrides."""
    settings = Settings(thresholds, overrides)
    text = render(rules(settings), settings.overrides)
    if settings.unused():
        sys.exit(f"{thresholds}: settings no rule uses: {', '.join(settings.unused())}")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="settings file (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting; repeatable")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    args = parser.parse_args()

    text = generate(args.thresholds, args.set)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
