#!/bin/bash
# Usage: prometheus_e2e.sh MIGWATCH_BIN STORM_CMD [ARG...]
#
# The alerting rules and dashboards against the real daemon and a real
# Prometheus:
#  1. writes the rules with lowered thresholds and short windows through
#     deploy/prometheus/generate.py --set (E2E_SETTINGS below);
#  2. starts MIGWATCH_BIN on a free loopback port and /usr/bin/prometheus on
#     another, scraping the daemon and evaluating the rules every second;
#  3. lets QUIET_SECONDS of baseline pass, then runs STORM_CMD;
#  4. asserts that the target is up, that the EXPECTED_ALERTS reach firing,
#     and that every dashboard query is accepted and returns data (except the
#     panels of NO_DATA_WITHOUT_VM, which only need to be accepted).
#
# STORM_CMD must churn the CPU affinity of running tasks (the field case):
# that drives tasks through the migration/N stoppers, which every expected
# alert needs. It may run until it is stopped; it is stopped after the checks.
# Needs root (the daemon loads BPF programs), prometheus, curl and python3.
set -euo pipefail

# Thresholds and windows for a storm of a minute or two on a small, busy
# machine. The stopper CPU threshold is still a hundred times the watchdog
# baseline (about 0.00001 of a CPU).
E2E_SETTINGS=(
	rate_window=10s
	storm_window=15s storm_baseline_window=10m storm_factor=2 storm_min_rate=1 storm_for=0s
	stopper_cpu_ratio=0.001 stopper_cpu_for=5s
	affinity_churn_rate=1 affinity_churn_for=5s
)
EXPECTED_ALERTS=(MigwatchMigrationStorm MigwatchStopperCPUHigh MigwatchAffinityChurn)
# Panels with no data as long as no QEMU VM runs (the last four: no live
# migration). Remove entries as the workload that feeds them is added here.
NO_DATA_WITHOUT_VM=(
	"migwatch-vms.json:variable vm"
	"migwatch-vms.json:Migrations per VM"
	"migwatch-vms.json:Stopper CPU per VM"
	"migwatch-vms.json:Migrations per VM by reason"
	"migwatch-vms.json:Stopper time per VM over the time range"
	"migwatch-vms.json:Live migrations"
	"migwatch-vms.json:Live migration running for"
	"migwatch-vms.json:Live migration thread CPU"
	"migwatch-vms.json:Live migration thread migrations"
)
# The storm alert compares the storm with a baseline that includes this.
QUIET_SECONDS=30
ALERT_TIMEOUT_SECONDS=180
STARTUP_TIMEOUT_SECONDS=60

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if [[ $# -lt 2 ]]; then
	echo "usage: prometheus_e2e.sh MIGWATCH_BIN STORM_CMD [ARG...]" >&2
	exit 2
fi
bin=$1
shift
[[ -x $bin ]] || fail "migwatch binary '$bin' does not exist or is not executable (build it first)"
for tool in prometheus curl python3 setsid; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[[ $(id -u) -eq 0 ]] || fail "must run as root: the daemon loads BPF programs"

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d)
declare -A pids=()

cleanup() {
	local status=$?
	for name in "${!pids[@]}"; do
		kill -TERM -- "-${pids[$name]}" 2>/dev/null || true
	done
	for name in "${!pids[@]}"; do
		for _ in {1..20}; do
			running "$name" || break
			sleep 0.5
		done
		kill -KILL -- "-${pids[$name]}" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if ((status != 0)); then
		for log in "$work"/*.log; do
			echo "--- ${log##*/} (last 40 lines)"
			tail -n 40 "$log"
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# start NAME CMD...: run CMD in a process group of its own, logging to
# $work/NAME.log, so that cleanup stops it with everything it started.
start() {
	setsid "${@:2}" >"$work/$1.log" 2>&1 &
	pids[$1]=$!
}

running() { kill -0 "${pids[$1]}" 2>/dev/null; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Whether Prometheus' last scrape of the daemon succeeded.
target_up() {
	curl -sf --get "$prometheus/api/v1/query" --data-urlencode "query=up{job=\"migwatch\",instance=\"$instance\"} == 1" |
		python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'
}

port=$(free_port)
prometheus_port=$(free_port)
prometheus=http://127.0.0.1:$prometheus_port
instance=127.0.0.1:$port

python3 "$src/deploy/prometheus/generate.py" "${E2E_SETTINGS[@]/#/--set=}" -o "$work/rules.yml"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $work/rules.yml
scrape_configs:
  - job_name: migwatch
    static_configs:
      - targets: ['$instance']
EOF

start daemon "$bin" "--web.listen-address=$instance"
start prometheus prometheus "--config.file=$work/prometheus.yml" "--storage.tsdb.path=$work/data" \
	"--web.listen-address=127.0.0.1:$prometheus_port" --log.level=warn

deadline=$((SECONDS + STARTUP_TIMEOUT_SECONDS))
until curl -sf "http://$instance/metrics" >/dev/null; do
	running daemon || fail "migwatch exited during startup"
	((SECONDS < deadline)) || fail "migwatch did not serve http://$instance/metrics within ${STARTUP_TIMEOUT_SECONDS}s"
	sleep 1
done
until curl -sf "$prometheus/-/ready" >/dev/null; do
	running prometheus || fail "prometheus exited during startup"
	((SECONDS < deadline)) || fail "prometheus was not ready within ${STARTUP_TIMEOUT_SECONDS}s"
	sleep 1
done
until target_up; do
	((SECONDS < deadline)) || fail "target $instance is not up in Prometheus: $(curl -s "$prometheus/api/v1/targets")"
	sleep 1
done
echo "OK: target $instance is up"

sleep "$QUIET_SECONDS"
running daemon || fail "migwatch exited"

storm_start=$(date +%s)
start storm "$@"
echo "storm started: $*"

# Each expected alert must fire at some point, not all at once: the storm
# alert ends when the storm has run long enough to raise its own baseline.
failures=0
storm_status=
fired=" "
deadline=$((SECONDS + ALERT_TIMEOUT_SECONDS))
while :; do
	firing=$(curl -sf "$prometheus/api/v1/alerts" | python3 -c '
import json, sys
alerts = json.load(sys.stdin)["data"]["alerts"]
print(" ".join(sorted({a["labels"]["alertname"] for a in alerts if a["state"] == "firing"})))') ||
		fail "cannot read the alerts from $prometheus"
	missing=()
	for alert in "${EXPECTED_ALERTS[@]}"; do
		[[ " $firing " == *" $alert "* ]] && [[ $fired != *" $alert "* ]] && fired+="$alert "
		[[ $fired == *" $alert "* ]] || missing+=("$alert")
	done
	((${#missing[@]} == 0)) && break
	if ((SECONDS >= deadline)); then
		echo "FAIL: never fired within ${ALERT_TIMEOUT_SECONDS}s: ${missing[*]} (fired:${fired})" >&2
		failures=$((failures + 1))
		break
	fi
	# A storm command that ends by itself must succeed.
	if [[ -z $storm_status ]] && ! running storm; then
		storm_status=0
		wait "${pids[storm]}" || storm_status=$?
		((storm_status == 0)) || fail "the storm command failed with status $storm_status"
	fi
	sleep 2
done
((failures)) || echo "OK: fired: ${EXPECTED_ALERTS[*]}"

running daemon || fail "migwatch exited during the storm"
target_up || fail "target $instance went down during the storm"

allow=()
for panel in "${NO_DATA_WITHOUT_VM[@]}"; do
	allow+=(--allow-empty "$panel")
done
python3 "$src/tests/deploy/check_dashboard_queries.py" --prometheus "$prometheus" --job migwatch \
	--instance "$instance" --since "$storm_start" "${allow[@]}" "$src"/dashboards/*.json ||
	failures=$((failures + 1))

((failures == 0)) || fail "$failures check(s) failed"
echo "OK: prometheus end-to-end"
