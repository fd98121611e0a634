#!/usr/bin/env python3
"""Run every query of the dashboards against a live Prometheus.

Substitutes the dashboard variables the way Grafana would for one migwatch
target, then requires each panel query to be accepted and to return data,
and each label_values() variable to have values. Panels listed with
--allow-empty "FILE:PANEL TITLE" only need to be accepted (they have no data
until a workload produces it); a listed panel that does not exist is an error,
so the list stays accurate.

  check_dashboard_queries.py --prometheus http://127.0.0.1:9090 --job migwatch
      --instance 127.0.0.1:19662 --since UNIX_TIME [--allow-empty F:T]... FILE...
"""

import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

# Grafana's $__rate_interval for a 1s scrape interval: four scrape intervals.
RATE_INTERVAL = "4s"


def api(base, path, params):
    url = f"{base}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def substitute(text, values):
    for name in sorted(values, key=len, reverse=True):
        text = text.replace(name, values[name])
    left = re.findall(r"\$\{?\w+", text)
    if left:
        raise ValueError(f"no value for {', '.join(left)}")
    return text


def has_data(reply):
    result = reply.get("data", {}).get("result", [])
    if reply.get("data", {}).get("resultType") == "matrix":
        return any(series.get("values") for series in result)
    return bool(result)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--instance", required=True)
    parser.add_argument("--since", type=float, required=True, help="start of the range queries (unix time)")
    parser.add_argument("--allow-empty", action="append", default=[], metavar="FILE:TITLE")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()

    now = time.time()
    values = {
        "$job": args.job,
        "$instance": args.instance,
        "$vm": ".+",
        "$__rate_interval": RATE_INTERVAL,
        "$__interval": "1s",
        "$__range": f"{max(int(now - args.since), 1)}s",
    }
    allow_empty = set(args.allow_empty)
    seen, failures, checked = set(), [], 0

    for path in args.files:
        board = json.loads(path.read_text(encoding="utf-8"))
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            where = f"{path.name}: variable {var['name']}"
            if not m:
                failures.append(f"{where}: cannot run {query!r}")
                continue
            selector = substitute(m.group(1), values)
            reply = api(args.prometheus, f"label/{m.group(2)}/values", {"match[]": selector, "start": args.since, "end": now})
            checked += 1
            if reply.get("status") != "success":
                failures.append(f"{where}: {selector}: {reply.get('error')}")
            elif not reply.get("data") and f"{path.name}:variable {var['name']}" not in allow_empty:
                failures.append(f"{where}: {selector}: no values")
            seen.add(f"{path.name}:variable {var['name']}")

        for panel in board["panels"]:
            key = f"{path.name}:{panel['title']}"
            seen.add(key)
            for t in panel.get("targets", []):
                where = f"{key} [{t['refId']}]"
                try:
                    expr = substitute(t["expr"], values)
                except ValueError as e:
                    failures.append(f"{where}: {e}")
                    continue
                if t.get("instant"):
                    reply = api(args.prometheus, "query", {"query": expr, "time": now})
                else:
                    reply = api(args.prometheus, "query_range", {"query": expr, "start": args.since, "end": now, "step": 1})
                checked += 1
                if reply.get("status") != "success":
                    failures.append(f"{where}: rejected: {reply.get('error')}\n    {expr}")
                elif not has_data(reply):
                    if key in allow_empty:
                        print(f"no data, allowed: {where}")
                    else:
                        failures.append(f"{where}: no data\n    {expr}")

    for key in sorted(allow_empty - seen):
        failures.append(f"--allow-empty {key}: no such panel or variable")
    for f in failures:
        print(f"FAIL: {f}")
    print(f"{checked} dashboard queries run, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
