#!/usr/bin/env python3
"""Write migwatch's Grafana dashboards (migwatch-*.json in the top-level
dashboards/ directory).

The panels are defined here once; the JSON files are this script's output and
are checked in so that Grafana can provision them directly
(monitoring/generate.py writes them along with the rules):

    monitoring/dashboards.py            # rewrite dashboards/migwatch-*.json
    monitoring/dashboards.py -o DIR     # write them to DIR instead

The stopper CPU colour thresholds come from the alerting settings in
thresholds.json (next to this script), so a red cell means the same as the
alert.
"""

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
THRESHOLDS = HERE / "thresholds.json"
DEFAULT_OUTPUT_DIR = HERE.parent / "dashboards"

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Every query is limited to the selected jobs and instances.
SCOPE = 'job=~"$job", instance=~"$instance"'
VM_SCOPE = SCOPE + ', vm=~"$vm"'
RATE = "$__rate_interval"
REQUIRED = 'required="true"'
OPTIONAL = 'required="false"'
GRID_WIDTH = 24


def sel(metric, scope=SCOPE, extra=""):
    """metric{job=~"$job", instance=~"$instance"[, extra]}"""
    return f"{metric}{{{scope}{', ' + extra if extra else ''}}}"


def target(expr, legend="", instant=False, table=False):
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def panel(kind, title, description, unit, targets, width, height, defaults=None, options=None, **extra):
    """One panel; the grid position is filled in by layout()."""
    field_defaults = {"unit": unit}
    field_defaults.update(defaults or {})
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": field_defaults, "overrides": []},
        "options": options or {},
        "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
        "gridPos": {"w": width, "h": height},
    }
    p.update(extra)
    return p


def timeseries(title, description, unit, targets, width=12, height=8, stack=False):
    return panel(
        "timeseries",
        title,
        description,
        unit,
        targets,
        width,
        height,
        defaults={
            "min": 0,
            "custom": {
                "drawStyle": "line",
                "lineWidth": 1,
                "fillOpacity": 20 if stack else 0,
                "showPoints": "never",
                "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            },
        },
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["mean", "max"], "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    )


def thresholds(*steps):
    """Absolute colour steps: ("green", None), ("red", 0.1), ..."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


def stat(title, description, unit, targets, width=6, height=4, steps=None, mappings=None):
    defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*(steps or [("green", None)]))}
    if mappings:
        defaults["mappings"] = mappings
    return panel(
        "stat",
        title,
        description,
        unit,
        targets,
        width,
        height,
        defaults=defaults,
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
    )


def bargauge(title, description, unit, targets, width=12, height=8):
    return panel(
        "bargauge",
        title,
        description,
        unit,
        targets,
        width,
        height,
        defaults={"min": 0, "color": {"mode": "continuous-GrYlRd"}},
        options={
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    )


def state_timeline(title, description, unit, targets, steps, mappings=None, width=24, height=10):
    defaults = {"color": {"mode": "thresholds"}, "thresholds": thresholds(*steps)}
    if mappings:
        defaults["mappings"] = mappings
    return panel(
        "state-timeline",
        title,
        description,
        unit,
        targets,
        width,
        height,
        defaults=defaults,
        options={
            "showValue": "never",
            "mergeValues": False,
            "rowHeight": 0.9,
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "single", "sort": "none"},
        },
    )


def table(title, description, unit, targets, width=12, height=8, transformations=None, mappings=None):
    defaults = {"custom": {"align": "auto"}}
    if mappings:
        defaults["mappings"] = mappings
    return panel(
        "table",
        title,
        description,
        unit,
        targets,
        width,
        height,
        defaults=defaults,
        options={"showHeader": True, "footer": {"show": False}},
        transformations=transformations or [],
    )


def value_text(pairs):
    """Value mappings {value: (text, colour)}."""
    return [
        {
            "type": "value",
            "options": {str(v): {"text": text, "color": colour, "index": i} for i, (v, (text, colour)) in enumerate(pairs.items())},
        }
    ]


def hide_columns(*names):
    return {"id": "organize", "options": {"excludeByName": {n: True for n in names}}}


def query_variable(name, label, query, multi=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".+",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": 0,
        "regex": "",
        "options": [],
    }


def variables(extra=()):
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        },
        query_variable("job", "Job", "label_values(migwatch_build_info, job)"),
        query_variable("instance", "Instance", 'label_values(migwatch_build_info{job=~"$job"}, instance)'),
        *extra,
    ]


def layout(panels):
    """Place panels left to right, wrapping at the grid width; ids in order."""
    x = y = row_height = 0
    for i, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if x + w > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        p["id"] = i
        x += w
        row_height = max(row_height, h)
    return panels


def dashboard(uid, title, description, panels, extra_variables=(), annotations=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["migwatch"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 37,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *annotations,
            ]
        },
        "links": [
            {
                "type": "dashboards",
                "title": "migwatch",
                "tags": ["migwatch"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables(extra_variables)},
        "panels": layout(panels),
    }


CPU_SHARE = "100% is one whole CPU, as in top."


# Where the daemon took a storm capture: its last start time changes then.
# One sample a minute, over two: a capture shows once or twice, never not.
CAPTURES = {
    "datasource": DATASOURCE,
    "enable": True,
    "hide": False,
    "iconColor": "orange",
    "name": "Storm captures",
    "expr": f"changes({sel('migwatch_capture_last_timestamp_seconds')}[2m]) > 0",
    "step": "1m",
    "titleFormat": "Storm capture",
    "textFormat": "{{instance}} recorded the storm's migrations and stopper runs: the newest "
    "migwatch-capture-*.json in its state directory (/var/lib/migwatch); open it in the Perfetto UI.",
    "tagKeys": "instance",
}


def host(stopper_red):
    stopper_steps = [("green", None), ("yellow", stopper_red / 2), ("red", stopper_red)]
    return dashboard(
        "migwatch-host",
        "migwatch / Host",
        "Task migrations and the migration/N stopper threads' CPU on KVM hosts: what moves tasks and who asks for it.",
        [
            stat(
                "Migrations",
                "Task migrations between CPUs per second, all reasons.",
                "ops",
                [target(f"sum by (instance) (rate({sel('migwatch_migrations_total')}[{RATE}]))", "{{instance}}")],
            ),
            stat(
                "Busiest migration/N",
                "CPU share of the busiest stopper thread: the highest rate of "
                "migwatch_stopper_cpu_seconds_total over the CPUs. Red from the MigwatchStopperCPUHigh threshold.",
                "percentunit",
                [target(f"max by (instance) (rate({sel('migwatch_stopper_cpu_seconds_total')}[{RATE}]))", "{{instance}}")],
                steps=stopper_steps,
            ),
            stat(
                "Stopper CPU, all CPUs",
                f"CPU time of all migration/N stopper threads together. {CPU_SHARE}",
                "percentunit",
                [target(f"sum by (instance) (rate({sel('migwatch_stopper_cpu_seconds_total')}[{RATE}]))", "{{instance}}")],
            ),
            stat(
                "Online CPUs",
                "CPUs online now. Hotplug runs every CPU's stopper.",
                "short",
                [target(sel("migwatch_online_cpus"), "{{instance}}")],
            ),
            timeseries(
                "Migrations by reason",
                "Task migrations per second by the path that moved the task. wakeup and load_balance "
                "are cheap; affinity, active_balance, numa, exec, hotplug need a migration/N stopper.",
                "ops",
                [target(f"sum by (reason) (rate({sel('migwatch_migrations_total')}[{RATE}]))", "{{reason}}")],
                stack=True,
            ),
            timeseries(
                "Stopper CPU by work",
                "CPU time of the migration/N stopper threads by the work they ran. watchdog (every ~4 s on "
                f"every CPU) is the baseline. {CPU_SHARE}",
                "percentunit",
                [target(f"sum by (work) (rate({sel('migwatch_stopper_work_seconds_total')}[{RATE}]))", "{{work}}")],
                stack=True,
            ),
            state_timeline(
                "migration/N CPU per CPU",
                "Share of each CPU used by its migration/N stopper thread. Yellow from half the "
                "MigwatchStopperCPUHigh threshold, red from the threshold.",
                "percentunit",
                [
                    target(
                        f"sum by (instance, cpu) (rate({sel('migwatch_stopper_cpu_seconds_total')}[{RATE}]))",
                        "migration/{{cpu}} {{instance}}",
                    )
                ],
                stopper_steps,
            ),
            timeseries(
                "Stopper runs by work",
                "migration/N stopper thread runs per second by work. The watchdog alone runs each CPU's "
                "stopper about 0.25 times a second.",
                "ops",
                [target(f"sum by (work) (rate({sel('migwatch_stopper_work_runs_total')}[{RATE}]))", "{{work}}")],
            ),
            timeseries(
                "Migrations in and out per CPU",
                "Task migrations per second into (in) and out of (out) each CPU.",
                "ops",
                [
                    target(
                        f"sum by (cpu, direction) (rate({sel('migwatch_cpu_migrations_total')}[{RATE}]))",
                        "cpu {{cpu}} {{direction}}",
                    )
                ],
            ),
            timeseries(
                "Top requesters of stopper time",
                "Stopper CPU time by the process that asked for the work (comm of its thread-group leader; "
                f"kernel: queued from interrupt context; other: folded beyond the label cap). {CPU_SHARE}",
                "percentunit",
                [
                    target(
                        f"topk(10, sum by (requester) (rate({sel('migwatch_stopper_requester_seconds_total')}[{RATE}])))",
                        "{{requester}}",
                    )
                ],
            ),
            bargauge(
                "Stopper time by requester over the time range",
                "Stopper CPU seconds each requesting process caused during the selected time range.",
                "s",
                [
                    target(
                        f"topk(15, sum by (requester) (increase({sel('migwatch_stopper_requester_seconds_total')}[$__range])))",
                        "{{requester}}",
                        instant=True,
                    )
                ],
            ),
            timeseries(
                "Affinity changes by requester",
                "sched_setaffinity calls per second that forced a running task off its CPU, by calling "
                "process (numad, libvirtd, tuned, kubelet, systemd ...). Each one costs a stopper run.",
                "ops",
                [
                    target(
                        f"topk(10, sum by (requester) (rate({sel('migwatch_affinity_changes_total')}[{RATE}])))",
                        "{{requester}}",
                    )
                ],
            ),
            timeseries(
                "Top processes by migrations",
                "Migrations per second of the processes whose threads move most (other: folded beyond the label cap).",
                "ops",
                [
                    target(
                        f"topk(10, sum by (process) (rate({sel('migwatch_process_migrations_total')}[{RATE}])))",
                        "{{process}}",
                    )
                ],
            ),
            bargauge(
                "Process migrations by reason over the time range",
                "Migrations of the most moved processes during the selected time range, by reason.",
                "short",
                [
                    target(
                        f"topk(15, sum by (process, reason) (increase({sel('migwatch_process_migrations_total')}[$__range])))",
                        "{{process}} {{reason}}",
                        instant=True,
                    )
                ],
            ),
            table(
                "Migrations between NUMA nodes over the time range",
                "Task migrations during the selected time range: rows are the source node, columns the "
                "destination node; the diagonal stays within a node.",
                "short",
                [
                    target(
                        f"sum by (from_node, to_node) (increase({sel('migwatch_node_migrations_total')}[$__range]))",
                        instant=True,
                        table=True,
                    )
                ],
                transformations=[
                    {
                        "id": "groupingToMatrix",
                        "options": {"rowField": "from_node", "columnField": "to_node", "valueField": "Value"},
                    }
                ],
            ),
        ],
        annotations=[CAPTURES],
    )


def vms():
    vm = query_variable(
        "vm", "VM", f'label_values(migwatch_vm_migrations_total{{{SCOPE}}}, vm)'
    )
    return dashboard(
        "migwatch-vms",
        "migwatch / VMs",
        "Task migrations and stopper cost per QEMU VM, and QEMU live migrations.",
        [
            timeseries(
                "Migrations per VM",
                "Migrations per second of all threads of each VM's QEMU process.",
                "ops",
                [target(f"sum by (vm) (rate({sel('migwatch_vm_migrations_total', VM_SCOPE)}[{RATE}]))", "{{vm}}")],
            ),
            timeseries(
                "Stopper CPU per VM: moving it, preempting it",
                "migration/N stopper CPU time spent moving each VM's threads (moving), and taken from its "
                "threads by stopper runs that preempted them, whatever work they ran (preempted): a VM "
                "preempted but not moved suffers another's moves on its CPUs. "
                f"MigwatchVMPreemptedByStopper fires on the preempted share. {CPU_SHARE}",
                "percentunit",
                [
                    target(
                        f"sum by (vm) (rate({sel('migwatch_vm_stopper_cpu_seconds_total', VM_SCOPE)}[{RATE}]))",
                        "{{vm}} moving",
                    ),
                    target(
                        f"sum by (vm) (rate({sel('migwatch_vm_stopper_preempted_seconds_total', VM_SCOPE)}[{RATE}]))",
                        "{{vm}} preempted",
                    ),
                ],
            ),
            timeseries(
                "vCPU wait per VM",
                "Share of the time each VM's vCPU threads, on average, were ready to run and waited for a "
                "host CPU (run delay from /proc/PID/task/TID/schedstat). A VM that waits while its "
                "vCPUs migrate often is paying for the moves.",
                "percentunit",
                [
                    target(
                        f"sum by (vm) (rate({sel('migwatch_vm_vcpu_delay_seconds_total', VM_SCOPE)}[{RATE}]))"
                        f" / sum by (vm) ({sel('migwatch_vm_vcpus', VM_SCOPE)})",
                        "{{vm}}",
                    )
                ],
            ),
            timeseries(
                "Migrations per VM by reason",
                "Migrations per second of each VM's threads, by the path that moved them.",
                "ops",
                [
                    target(
                        f"sum by (vm, reason) (rate({sel('migwatch_vm_migrations_total', VM_SCOPE)}[{RATE}]))",
                        "{{vm}} {{reason}}",
                    )
                ],
            ),
            bargauge(
                "Stopper time per VM over the time range",
                "Stopper CPU seconds spent moving each VM's threads (moving) and taken from them by "
                "stopper runs that preempted them (preempted) during the selected time range.",
                "s",
                [
                    target(
                        f"topk(15, sum by (vm) (increase({sel('migwatch_vm_stopper_cpu_seconds_total', VM_SCOPE)}[$__range])))",
                        "{{vm}} moving",
                        instant=True,
                    ),
                    target(
                        f"topk(15, sum by (vm) (increase({sel('migwatch_vm_stopper_preempted_seconds_total', VM_SCOPE)}[$__range])))",
                        "{{vm}} preempted",
                        instant=True,
                    ),
                ],
            ),
            state_timeline(
                "Live migrations",
                "QEMU live migrations running, as source or destination.",
                "bool_yes_no",
                [
                    target(
                        f"max by (vm, side) ({sel('migwatch_qemu_migration_active', VM_SCOPE)})",
                        "{{vm}} {{side}}",
                    )
                ],
                [("transparent", None), ("blue", 1)],
                mappings=value_text({0: ("idle", "transparent"), 1: ("migrating", "blue")}),
                width=12,
                height=8,
            ),
            timeseries(
                "Live migration running for",
                "Time since each running live migration started. MigwatchLiveMigrationSlow fires when "
                "one runs far longer than the host's usual ones.",
                "s",
                [
                    target(
                        f"max by (vm, side) (time() - {sel('migwatch_qemu_migration_start_time_seconds', VM_SCOPE)})",
                        "{{vm}} {{side}}",
                    )
                ],
            ),
            timeseries(
                "Live migration thread CPU",
                f"CPU time of QEMU's live migration threads (live_migration, multifd ...). {CPU_SHARE}",
                "percentunit",
                [
                    target(
                        f"sum by (vm, thread) (rate({sel('migwatch_qemu_migration_thread_cpu_seconds_total', VM_SCOPE)}[{RATE}]))",
                        "{{vm}} {{thread}}",
                    )
                ],
            ),
            timeseries(
                "Live migration thread migrations",
                "Migrations per second of QEMU's live migration threads between CPUs.",
                "ops",
                [
                    target(
                        f"sum by (vm, thread) (rate({sel('migwatch_qemu_migration_thread_migrations_total', VM_SCOPE)}[{RATE}]))",
                        "{{vm}} {{thread}}",
                    )
                ],
            ),
        ],
        extra_variables=[vm],
    )


def health():
    return dashboard(
        "migwatch-health",
        "migwatch / Health",
        "Is migwatch itself working: scrapes, probes, lost detail, its own cost.",
        [
            stat(
                "Target up",
                "Whether Prometheus' last scrape of each migwatch target succeeded.",
                "none",
                [target(f"up{{{SCOPE}}}", "{{instance}}")],
                steps=[("red", None), ("green", 1)],
                mappings=value_text({0: ("down", "red"), 1: ("up", "green")}),
            ),
            stat(
                "Required probes not attached",
                "Required probes (without which the counts are wrong) attached in no mode. Should be 0.",
                "short",
                [
                    target(
                        "sum by (instance) (1 - max by (instance, probe) "
                        f"({sel('migwatch_probe_attached', extra=REQUIRED)}))",
                        "{{instance}}",
                    )
                ],
                steps=[("green", None), ("red", 1)],
            ),
            stat(
                "Optional probes not attached",
                "Optional probes attached in no mode: the counts stay exact, the attribution they sharpen "
                "falls back (the Probes table and the daemon's log say which and why).",
                "short",
                [
                    target(
                        "sum by (instance) (1 - max by (instance, probe) "
                        f"({sel('migwatch_probe_attached', extra=OPTIONAL)}))",
                        "{{instance}}",
                    )
                ],
                steps=[("green", None), ("yellow", 1)],
            ),
            stat(
                "Daemon uptime",
                "Time since the migwatch daemon started.",
                "s",
                [target(f"time() - {sel('process_start_time_seconds')}", "{{instance}}")],
            ),
            stat(
                "Series exposed",
                "Samples in the last scrape: grows with the CPUs, NUMA nodes and the capped label values.",
                "short",
                [target(f"scrape_samples_scraped{{{SCOPE}}}", "{{instance}}")],
            ),
            table(
                "Probes",
                "Each probe with the mode it attached in (fentry, tp_btf, raw_tp, tracepoint; none if it "
                "could not attach). required=false probes only sharpen the attribution and are often "
                "absent.",
                "none",
                [target(sel("migwatch_probe_attached"), instant=True, table=True)],
                transformations=[hide_columns("Time", "__name__", "job")],
                mappings=value_text({0: ("not attached", "red"), 1: ("attached", "green")}),
            ),
            table(
                "Build",
                "migwatch version and revision, libbpf version and running kernel of each instance.",
                "none",
                [target(sel("migwatch_build_info"), instant=True, table=True)],
                transformations=[hide_columns("Time", "__name__", "job", "Value")],
            ),
            timeseries(
                "Events dropped",
                "Event records per second lost because a ring buffer (trace, task) was full. Counts are "
                "never lost, only detail such as process names.",
                "ops",
                [
                    target(
                        f"sum by (instance, buffer) (rate({sel('migwatch_events_dropped_total')}[{RATE}]))",
                        "{{instance}} {{buffer}}",
                    )
                ],
            ),
            timeseries(
                "Label values folded into other",
                "New label values per second counted under \"other\" because the label cap (--labels.cap) "
                "was reached.",
                "ops",
                [
                    target(
                        f"sum by (instance, label) (rate({sel('migwatch_label_values_folded_total')}[{RATE}]))",
                        "{{instance}} {{label}}",
                    )
                ],
            ),
            timeseries(
                "Scrape duration",
                "Time to serve a scrape as measured by the daemon (exposer_request_latencies, in "
                "microseconds, averaged) and the whole scrape as seen by Prometheus.",
                "s",
                [
                    target(
                        f"sum by (instance) (rate({sel('exposer_request_latencies_sum')}[{RATE}])) / "
                        f"sum by (instance) (rate({sel('exposer_request_latencies_count')}[{RATE}])) / 1e6",
                        "{{instance}} served",
                    ),
                    target(f"scrape_duration_seconds{{{SCOPE}}}", "{{instance}} scraped"),
                ],
            ),
            timeseries(
                "Metrics served",
                "Bytes per second of metrics the daemon served.",
                "Bps",
                [
                    target(
                        f"sum by (instance) (rate({sel('exposer_transferred_bytes_total')}[{RATE}]))",
                        "{{instance}}",
                    )
                ],
            ),
            timeseries(
                "Daemon CPU",
                f"CPU time of the migwatch daemon itself (BPF programs run in the kernel and are not included). {CPU_SHARE}",
                "percentunit",
                [target(f"rate({sel('process_cpu_seconds_total')}[{RATE}])", "{{instance}}")],
                width=8,
            ),
            timeseries(
                "Daemon memory",
                "Resident memory of the migwatch daemon.",
                "bytes",
                [target(sel("process_resident_memory_bytes"), "{{instance}}")],
                width=8,
            ),
            timeseries(
                "Daemon open files",
                "Open file descriptors of the migwatch daemon (BPF maps, programs and links included).",
                "short",
                [target(sel("process_open_fds"), "{{instance}}")],
                width=8,
            ),
        ],
    )


def write(output_dir=DEFAULT_OUTPUT_DIR):
    """Write every dashboard to output_dir; returns the paths written."""
    with open(THRESHOLDS, encoding="utf-8") as f:
        stopper_red = json.load(f)["stopper_cpu_ratio"]["value"]
    written = []
    for name, board in (
        ("migwatch-host.json", host(stopper_red)),
        ("migwatch-vms.json", vms()),
        ("migwatch-health.json", health()),
    ):
        text = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        path = Path(output_dir) / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "-o", "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="directory to write to (default: %(default)s)"
    )
    args = parser.parse_args()
    write(args.output_dir)


if __name__ == "__main__":
    main()
