#!/usr/bin/env python3
"""Checks what a fleet's central Prometheus would federate from a host's.

Asks PROMETHEUS's /federate for the series that monitoring/rules.py names
FLEET_SERIES (the match[] that monitoring/README.md documents) and checks
that they are per host: labelled by job and instance, and by reason or
stopper work at most, never by CPU, process, requester or VM; that the
host-level ones the fleet dashboards and alerts need are there; and prints
how many series one host sends.

Usage: check_fleet_federation.py --prometheus URL --instance HOST:PORT --monitoring DIR
"""

import argparse
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

# Label names a fleet series may carry: a host's number of series is then
# bounded by the reasons and works the daemon knows, whatever its size.
ALLOWED_LABELS = {"job", "instance", "reason", "work"}
SERIES_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+( \S+)?$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def federated(prometheus, match):
    url = f"{prometheus}/federate?" + urllib.parse.urlencode({"match[]": "{__name__=~\"" + match + "\"}"})
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    series = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES_LINE.match(line)
        if not m:
            sys.exit(f"FAIL: /federate answered a line that is not a sample: {line!r}")
        series.append((m.group(1), dict(LABEL.findall(m.group(2) or ""))))
    return series


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--monitoring", required=True, type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(args.monitoring))
    import rules  # noqa: E402: the one definition of the fleet's match[]

    series = [s for s in federated(args.prometheus, rules.FLEET_SERIES) if s[1].get("instance") == args.instance]
    failures = []
    for name, labels in series:
        extra = set(labels) - ALLOWED_LABELS
        if extra:
            failures.append(f"{name} carries {', '.join(sorted(extra))}")
    names = {name for name, _ in series}
    for needed in ("instance:migwatch_migrations:", "instance:migwatch_stopper_cpu_seconds:",
                   "instance_reason:migwatch_migrations:", "instance_work:migwatch_stopper_work_seconds:"):
        if not any(n.startswith(needed) for n in names):
            failures.append(f"no {needed}* series")
    for failure in failures:
        print(f"FAIL: federation: {failure}")
    if failures:
        sys.exit(1)
    print(f"OK: federation sends {len(series)} series for {args.instance} ({len(names)} names), none per CPU, process or VM")


if __name__ == "__main__":
    main()
