#!/usr/bin/env python3
"""Regenerate every checked-in monitoring file from this directory's sources:

    monitoring/generate.py

writes monitoring/migwatch.rules.yml (rules.py, default thresholds) and
dashboards/migwatch-*.json (dashboards.py). Both read thresholds.json. Commit
the outputs with the change; the deploy tests fail while they differ from
what the generators write.
"""

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dashboards  # noqa: E402
import rules  # noqa: E402

RULES_FILE = HERE / "migwatch.rules.yml"


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    RULES_FILE.write_text(rules.generate(), encoding="utf-8")
    written = [RULES_FILE, *dashboards.write()]
    root = HERE.parent
    for path in written:
        print(f"wrote {path.relative_to(root)}")


if __name__ == "__main__":
    main()
