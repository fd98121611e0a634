#!/bin/bash
# Usage: check_generated.sh rules|dashboards SOURCE_DIR
#
# Fails if a checked-in generated file differs from what its generator writes
# now, showing the difference. Fix: run monitoring/generate.py (it rewrites
# monitoring/migwatch.rules.yml and dashboards/*.json) and commit its output.
set -euo pipefail

kind=${1:?usage: check_generated.sh rules|dashboards SOURCE_DIR}
src=${2:?usage: check_generated.sh rules|dashboards SOURCE_DIR}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

case $kind in
rules)
	python3 "$src/monitoring/rules.py" -o "$out/migwatch.rules.yml"
	diff -u "$src/monitoring/migwatch.rules.yml" "$out/migwatch.rules.yml"
	;;
dashboards)
	python3 "$src/monitoring/dashboards.py" -o "$out"
	# Every generated dashboard must be checked in, and no other one.
	diff -u <(cd "$src/dashboards" && ls ./*.json) <(cd "$out" && ls ./*.json)
	for f in "$out"/*.json; do
		diff -u "$src/dashboards/${f##*/}" "$f"
	done
	;;
*)
	echo "unknown kind $kind" >&2
	exit 2
	;;
esac
echo "OK: checked-in $kind match the generator"
