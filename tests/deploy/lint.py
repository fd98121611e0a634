#!/usr/bin/env python3
"""Static checks of the deploy files against the metrics contract.

  lint.py dashboards --metrics metric_names.txt DASHBOARD.json...
      Valid JSON in Grafana's classic model; datasource/job/instance
      variables; every panel has a title, a description, a unit and targets on
      the ${datasource} variable; every metric selector is a contract metric
      filtered by job=~"$job" and instance=~"$instance"; every range is
      $__rate_interval or $__range.

  lint.py rule-tests --metrics metric_names.txt --rules RULES.yml TEST.yml...
      promtool rule tests feed only contract metrics, and every alert of
      RULES.yml is tested both firing and silent.

Exit status 1 and one line per problem if anything is wrong.
"""

import argparse
import json
import re
import sys

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"0x[0-9a-fA-F]+|[0-9][0-9.]*(e[+-]?[0-9]+)?")
DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
# Words followed by a parenthesised list of label names, not by arguments.
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
# Aggregations may be followed by "by (...)" instead of their arguments.
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2"} | LABEL_LISTS | AGGREGATIONS
REQUIRED_MATCHERS = {("job", "=~", "$job"), ("instance", "=~", "$instance")}
RANGES = {"$__rate_interval", "$__range"}
PANEL_TYPES_WITHOUT_UNIT = {"row"}


def load_contract(path):
    with open(path, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def string_end(text, i):
    """Index of the quote closing the string that starts at text[i]."""
    i += 1
    while text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    return i


def closing(text, i, open_char, close_char):
    """Index after the bracket closing text[i] == open_char; strings skipped."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = string_end(text, i)
        elif c == open_char:
            depth += 1
        elif c == close_char:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_char} in: {text}")


def parse_matchers(body):
    """{a="x", b=~"y"} body -> set of (name, op, value); None if malformed."""
    found, pos = set(), 0
    body = body.strip()
    while pos < len(body):
        m = MATCHER.match(body, pos)
        if not m:
            return None
        found.add(m.groups()[:3])
        pos = m.end()
    return found


def selectors(expr):
    """Yield (metric, matchers or None, problem) for each vector selector, and
    ("", range, None) for each range. A small tokenizer, enough for the
    expressions of this project: strings, brackets, identifiers, numbers."""
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c.isspace() or c in "(),+-*/%^<>=!":
            i += 1
        elif c == '"':
            i = string_end(expr, i) + 1
        elif c == "[":
            end = expr.index("]", i)
            yield "", expr[i + 1 : end].strip(), None
            i = end + 1
        elif c == "{":
            yield None, None, f"selector without a metric name at {expr[i:]!r}"
            i = closing(expr, i, "{", "}")
        elif c == "$":
            yield None, None, f"variable outside a selector or range at {expr[i:]!r}"
            i += 1
        elif NUMBER.match(expr, i):
            i = NUMBER.match(expr, i).end()
        elif IDENT.match(expr, i):
            word = IDENT.match(expr, i).group()
            i += len(word)
            j = i
            while j < n and expr[j].isspace():
                j += 1
            following = expr[j] if j < n else ""
            if word in LABEL_LISTS and following == "(":
                i = closing(expr, j, "(", ")")
            elif word == "offset" and DURATION.match(expr, j):
                i = DURATION.match(expr, j).end()
            elif word in KEYWORDS or following == "(":
                continue
            elif following == "{":
                end = closing(expr, j, "{", "}")
                yield word, parse_matchers(expr[j + 1 : end - 1]), None
                i = end
            else:
                yield word, set(), None
        else:
            yield None, None, f"unexpected character {c!r} in {expr!r}"
            i += 1


def check_expr(where, expr, contract, problems, scoped=True):
    found = False
    for metric, matchers, problem in selectors(expr):
        if problem:
            problems.append(f"{where}: {problem}")
        elif metric == "":
            if matchers not in RANGES:
                problems.append(f"{where}: range [{matchers}] is not one of {sorted(RANGES)}")
        else:
            found = True
            if metric not in contract:
                problems.append(f"{where}: {metric} is not in the metrics contract")
            if matchers is None:
                problems.append(f"{where}: cannot read the label matchers of {metric}")
            elif scoped and not REQUIRED_MATCHERS <= matchers:
                problems.append(f'{where}: {metric} is not filtered by job=~"$job", instance=~"$instance"')
    if not found:
        problems.append(f"{where}: no metric in {expr!r}")


def check_variable(where, var, contract, problems):
    query = var.get("query")
    query = query.get("query", "") if isinstance(query, dict) else query
    m = re.fullmatch(r"label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)", query or "")
    if not m:
        problems.append(f"{where}: query variable {var.get('name')} is not label_values(SELECTOR, LABEL): {query!r}")
        return
    # The job variable cannot filter by itself; the others are scoped.
    check_expr(where, m.group(1), contract, problems, scoped=var.get("name") not in ("job", "instance"))


def lint_dashboard(path, contract, problems):
    try:
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
    except (OSError, ValueError) as e:
        problems.append(f"{path}: {e}")
        return
    if board.get("schemaVersion", 0) < 36:
        problems.append(f"{path}: schemaVersion {board.get('schemaVersion')} < 36")
    for key in ("uid", "title"):
        if not board.get(key):
            problems.append(f"{path}: no {key}")
    variables = {v.get("name"): v for v in board.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append(f"{path}: no datasource variable of type datasource for prometheus")
    for name in ("job", "instance"):
        if variables.get(name, {}).get("type") != "query":
            problems.append(f"{path}: no {name} query variable")
    for name, var in variables.items():
        if var.get("type") == "query":
            if var.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{path}: variable {name} does not use ${{datasource}}")
            check_variable(f"{path}: variable {name}", var, contract, problems)

    panels = board.get("panels", [])
    if not panels:
        problems.append(f"{path}: no panels")
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        problems.append(f"{path}: duplicate panel ids {ids}")
    for p in panels:
        where = f"{path}: panel {p.get('id')} {p.get('title')!r}"
        if p.get("type") in PANEL_TYPES_WITHOUT_UNIT:
            continue
        for key in ("title", "description", "type"):
            if not str(p.get(key, "")).strip():
                problems.append(f"{where}: no {key}")
        if not p.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{where}: no unit")
        if not all(k in p.get("gridPos", {}) for k in "xywh"):
            problems.append(f"{where}: incomplete gridPos")
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: panel datasource is not ${{datasource}}")
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"{where}: no targets")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{where}: target {t.get('refId')} datasource is not ${{datasource}}")
            check_expr(f"{where} target {t.get('refId')}", t.get("expr", ""), contract, problems)


def lint_rule_tests(paths, rules_path, contract, problems):
    with open(rules_path, encoding="utf-8") as f:
        alerts = set(re.findall(r"^\s*- alert: (\S+)", f.read(), re.MULTILINE))
    if not alerts:
        problems.append(f"{rules_path}: no alerts")
    firing, silent = set(), set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if not re.search(r"^tests:", text, re.MULTILINE):
            problems.append(f"{path}: no top-level tests: key")
        for series in re.findall(r"^\s*- series: ['\"](.*)['\"]\s*$", text, re.MULTILINE):
            name = IDENT.match(series)
            if not name or name.group() not in contract:
                problems.append(f"{path}: input series {series} is not a contract metric")
        # alertname: X, then either "exp_alerts: []" or a non-empty list.
        for name, empty in re.findall(r"alertname: (\S+)\s*\n\s*exp_alerts:( \[\])?", text):
            (silent if empty else firing).add(name)
    for name in sorted(alerts - firing):
        problems.append(f"{rules_path}: alert {name} is never tested firing")
    for name in sorted(alerts - silent):
        problems.append(f"{rules_path}: alert {name} is never tested silent")
    for name in sorted((firing | silent) - alerts):
        problems.append(f"rule tests: alert {name} is not in {rules_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    d = sub.add_parser("dashboards")
    d.add_argument("--metrics", required=True)
    d.add_argument("files", nargs="+")
    r = sub.add_parser("rule-tests")
    r.add_argument("--metrics", required=True)
    r.add_argument("--rules", required=True)
    r.add_argument("files", nargs="+")
    args = parser.parse_args()

    contract = load_contract(args.metrics)
    problems = []
    if args.what == "dashboards":
        for path in args.files:
            lint_dashboard(path, contract, problems)
    else:
        lint_rule_tests(args.files, args.rules, contract, problems)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"{len(args.files)} files OK")


if __name__ == "__main__":
    main()
