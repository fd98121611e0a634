#!/usr/bin/env python3
"""Run every query of the dashboards against a live Prometheus.

Substitutes the dashboard variables the way Grafana would with one job,
instance and VM selected, then requires each label_values() variable to offer
the selected value and each panel query to be accepted and to return data.

  check_dashboard_queries.py --prometheus http://127.0.0.1:9090 --job migwatch
      --instance 127.0.0.1:19662 --vm NAME --since UNIX_TIME FILE...
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
    parser.add_argument("--vm", required=True, help="a VM that the daemon reports (the vm label)")
    parser.add_argument("--since", type=float, required=True, help="start of the range queries (unix time)")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()

    now = time.time()
    selected = {"job": args.job, "instance": args.instance, "vm": args.vm}
    values = {
        **{f"${name}": value for name, value in selected.items()},
        "$__rate_interval": RATE_INTERVAL,
        "$__interval": "1s",
        "$__range": f"{max(int(now - args.since), 1)}s",
    }
    failures, checked = [], 0

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
            if var["name"] not in selected:
                failures.append(f"{where}: no value to select (known: {', '.join(selected)})")
                continue
            selector = substitute(m.group(1), values)
            reply = api(args.prometheus, f"label/{m.group(2)}/values", {"match[]": selector, "start": args.since, "end": now})
            checked += 1
            if reply.get("status") != "success":
                failures.append(f"{where}: {selector}: {reply.get('error')}")
            elif selected[var["name"]] not in reply.get("data", []):
                failures.append(f"{where}: {selector}: offers {reply.get('data')}, not {selected[var['name']]!r}")

        for panel in board["panels"]:
            key = f"{path.name}:{panel['title']}"
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
                    failures.append(f"{where}: no data\n    {expr}")

    for f in failures:
        print(f"FAIL: {f}")
    print(f"{checked} dashboard queries run, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
