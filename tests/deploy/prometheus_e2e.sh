#!/bin/bash
# Usage: prometheus_e2e.sh MIGWATCH_BIN MW_WORKLOAD_BIN
#
# The daemon, its alerting rules and its dashboards against a real Prometheus:
#  1. writes the rules with lowered thresholds and short windows through
#     monitoring/rules.py --set (E2E_SETTINGS below);
#  2. starts MIGWATCH_BIN on a free loopback port behind basic auth (a
#     --web.config.file with a bcrypt hash made by htpasswd) and checks that
#     /metrics answers 401 without credentials or with wrong ones, 200 with
#     the right ones;
#  3. starts /usr/bin/prometheus on another port, scraping the daemon with
#     those credentials and evaluating the rules every second;
#  4. waits for QUIET_SECONDS of baseline without an affinity storm (another
#     test's storm on the machine would raise the baseline), then starts a
#     fake QEMU VM (MW_WORKLOAD_BIN run as qemu-system-x86_64: two vCPU
#     threads and a live migration thread) whose vCPUs it flips between the
#     CPUs every second, and an affinity storm (the field case: tasks forced
#     through the migration/N stoppers by sched_setaffinity);
#  5. asserts that the EXPECTED_ALERTS reach firing while no alert of another
#     name fires, that the target is up, that /federate with the fleet's
#     match[] sends per-host series only (check_fleet_federation.py), and
#     that every dashboard query, with the variables set to this job,
#     instance and VM, returns data.
# Needs root (the daemon loads BPF programs), prometheus, curl, htpasswd and
# python3. Exits 77 (skipped) when not root and MIGWATCH_ALLOW_SKIP=1.
set -euo pipefail

# The storm alert compares the last storm_window with the baseline window,
# which the storm starts after QUIET_SECONDS of baseline without an affinity
# storm: with storm_factor=2 it fires while the storm is younger than half
# the baseline window. Another test's storm on the machine would be part of
# the baseline, and the alert needs the baseline's affinity migrations below
# about a sixth of the storm's (several thousand per second, even on a busy
# machine): the storm waits up to QUIET_WAIT_SECONDS more for the baseline to
# fall under QUIET_MAX_RATE per second.
QUIET_SECONDS=30
QUIET_MAX_RATE=300
QUIET_WAIT_SECONDS=30
# Thresholds and windows for a storm of a few seconds on a small, busy
# machine. The stopper CPU threshold is still a hundred times the watchdog
# baseline (about 0.00001 of a CPU).
E2E_SETTINGS=(
	rate_window=10s
	storm_window=10s "storm_baseline_window=${QUIET_SECONDS}s" storm_factor=2 storm_min_rate=1 storm_for=0s
	stopper_cpu_ratio=0.001 stopper_cpu_for=5s
	affinity_churn_rate=1 affinity_churn_for=5s
)
STORM_NAME=e2e-storm
VM_NAME=e2e-vm
# Alert name and labels that must each reach firing. Other alerts of these
# names may fire too (the storm's helper process and the VM's flips also
# force tasks off their CPUs); alerts of other names must not.
EXPECTED_ALERTS=(
	"MigwatchMigrationStorm reason=affinity"
	"MigwatchStopperCPUHigh"
	"MigwatchAffinityChurn requester=$STORM_NAME"
)
ALERT_TIMEOUT_SECONDS=40
STARTUP_TIMEOUT_SECONDS=30
# Flips of each vCPU per round of the alert loop (about a second): enough
# for the VM panels, far below the storm.
VM_FLIPS=50
AUTH_USER=prometheus
AUTH_PASSWORD=e2e-password

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

if [[ $# -ne 2 ]]; then
	echo "usage: prometheus_e2e.sh MIGWATCH_BIN MW_WORKLOAD_BIN" >&2
	exit 2
fi
bin=$1
workload=$2
if [[ $(id -u) -ne 0 ]]; then
	if [[ ${MIGWATCH_ALLOW_SKIP:-} == 1 ]]; then
		echo "SKIP: not root (the daemon loads BPF programs)"
		exit 77
	fi
	fail "must run as root: the daemon loads BPF programs (set MIGWATCH_ALLOW_SKIP=1 to skip explicitly)"
fi
for file in "$bin" "$workload"; do
	[[ -x $file ]] || fail "'$file' does not exist or is not executable (build it first)"
done
for tool in prometheus curl htpasswd python3 setsid; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (deploy/install-build-deps.sh installs it)"
done

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
# $work/NAME.log, so that stop and cleanup end it with everything it started.
start() {
	setsid "${@:2}" >"$work/$1.log" 2>&1 &
	pids[$1]=$!
}

running() { kill -0 "${pids[$1]}" 2>/dev/null; }

stop() {
	kill -TERM -- "-${pids[$1]}" 2>/dev/null || true
	wait "${pids[$1]}" 2>/dev/null || true
	unset "pids[$1]"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# HTTP status of GET /metrics with the given curl options.
metrics_status() {
	curl -s -o /dev/null -w '%{http_code}' "$@" "http://$instance/metrics"
}

# expect_status CODE WHAT [CURL_OPTION...]
expect_status() {
	local got
	got=$(metrics_status "${@:3}")
	[[ $got == "$1" ]] || fail "GET /metrics with $2: HTTP $got, expected $1"
	echo "OK: GET /metrics with $2: HTTP $got"
}

# Prints each of EXPECTED_ALERTS that fires now, and "unexpected LABELS" for
# each firing alert of another name.
firing_alerts() {
	python3 - "$prometheus" "${EXPECTED_ALERTS[@]}" <<'PY'
import json, sys, urllib.request
base, expected = sys.argv[1], [e.split() for e in sys.argv[2:]]
with urllib.request.urlopen(base + "/api/v1/alerts", timeout=10) as r:
    alerts = json.load(r)["data"]["alerts"]
for a in alerts:
    labels = a["labels"]
    if a["state"] != "firing":
        continue
    if labels["alertname"] not in {name for name, *_ in expected}:
        print("unexpected", json.dumps(labels, sort_keys=True))
    for name, *want in expected:
        if name == labels["alertname"] and all(labels.get(k) == v for k, v in (w.split("=", 1) for w in want)):
            print(" ".join([name, *want]))
PY
}

# query EXPR: one line per series of the instant query EXPR, its labels and
# its value.
query() {
	curl -sf --get "$prometheus/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["data"]["result"]:
    print(json.dumps(r["metric"], sort_keys=True), r["value"][1])'
}

# Whether Prometheus' last scrape of the daemon succeeded.
target_up() {
	[[ -n $(query "up{job=\"migwatch\",instance=\"$instance\"} == 1" 2>/dev/null) ]]
}

# until_up WHEN: wait for the target to be up, failing after the startup
# timeout; a busy machine may have made a scrape or two time out.
until_up() {
	local deadline=$((SECONDS + STARTUP_TIMEOUT_SECONDS))
	until target_up; do
		((SECONDS < deadline)) ||
			fail "target $instance is not up in Prometheus $1: $(curl -s "$prometheus/api/v1/targets")"
		sleep 1
	done
}

port=$(free_port)
prometheus_port=$(free_port)
prometheus=http://127.0.0.1:$prometheus_port
instance=127.0.0.1:$port

python3 "$src/monitoring/rules.py" "${E2E_SETTINGS[@]/#/--set=}" -o "$work/rules.yml"
hash=$(htpasswd -nbBC 10 "$AUTH_USER" "$AUTH_PASSWORD")
cat >"$work/web.yml" <<EOF
basic_auth_users:
  $AUTH_USER: '${hash#"$AUTH_USER:"}'
EOF
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $work/rules.yml
scrape_configs:
  - job_name: migwatch
    basic_auth:
      username: $AUTH_USER
      password: $AUTH_PASSWORD
    static_configs:
      - targets: ['$instance']
EOF

# Every requester and process keeps a label of its own: with the default
# cap of 20, other tests' processes on the machine could take the slots first
# and fold the storm's requester into "other".
start daemon "$bin" "--web.listen-address=$instance" "--web.config.file=$work/web.yml" --labels.cap=10000
start prometheus prometheus "--config.file=$work/prometheus.yml" "--storage.tsdb.path=$work/data" \
	"--web.listen-address=127.0.0.1:$prometheus_port" --log.level=warn

deadline=$((SECONDS + STARTUP_TIMEOUT_SECONDS))
until [[ $(metrics_status) == 401 ]]; do
	running daemon || fail "migwatch exited during startup"
	((SECONDS < deadline)) || fail "migwatch did not serve http://$instance/metrics within ${STARTUP_TIMEOUT_SECONDS}s"
	sleep 1
done
expect_status 401 "no credentials"
expect_status 401 "a wrong password" -u "$AUTH_USER:not-$AUTH_PASSWORD"
expect_status 401 "an unknown user" -u "not-$AUTH_USER:$AUTH_PASSWORD"
expect_status 200 "the right credentials" -u "$AUTH_USER:$AUTH_PASSWORD"
# grep without -q reads all its input: curl must not fail on a closed pipe.
curl -sf -u "$AUTH_USER:$AUTH_PASSWORD" "http://$instance/metrics" | grep '^migwatch_build_info{' >/dev/null ||
	fail "/metrics with the right credentials has no migwatch_build_info"
curl -s -D - -o /dev/null "http://$instance/metrics" | grep -i '^WWW-Authenticate: Basic' >/dev/null ||
	fail "the 401 answer has no 'WWW-Authenticate: Basic' header"

until curl -sf "$prometheus/-/ready" >/dev/null; do
	running prometheus || fail "prometheus exited during startup"
	((SECONDS < deadline)) || fail "prometheus was not ready within ${STARTUP_TIMEOUT_SECONDS}s"
	sleep 1
done
until_up "after startup (it scrapes with basic auth)"
echo "OK: target $instance is up"

up_at=$SECONDS
while :; do
	sleep 2
	running daemon || fail "migwatch exited"
	((SECONDS - up_at >= QUIET_SECONDS)) || continue
	storm_elsewhere=$(query "sum(rate(migwatch_migrations_total{job=\"migwatch\",instance=\"$instance\",reason=\"affinity\"}[${QUIET_SECONDS}s])) > $QUIET_MAX_RATE") ||
		fail "cannot query $prometheus"
	[[ -n $storm_elsewhere ]] || break
	((SECONDS - up_at < QUIET_SECONDS + QUIET_WAIT_SECONDS)) ||
		fail "another affinity storm runs on this machine (${storm_elsewhere##* } affinity migrations/s over ${QUIET_SECONDS}s; busiest requesters: $(query "topk(5, sum by (requester) (rate(migwatch_affinity_changes_total[${QUIET_SECONDS}s])) > 0)" | tr '\n' ';')): the storm alert, which compares with the host's baseline, cannot be tested until it ends"
done
echo "OK: ${QUIET_SECONDS}s of baseline without an affinity storm"

storm_start=$(date +%s)
# The VM reads its commands from a FIFO held open here (read-write: opening
# it does not wait for the reader), so that it runs until this script ends.
mkfifo "$work/vm.in"
# shellcheck disable=SC2016 # $0, $1, $2 are bash -c's own arguments
start vm bash -c 'exec -a qemu-system-x86_64 "$0" -name "guest=$1,debug-threads=on" <"$2"' \
	"$workload" "$VM_NAME" "$work/vm.in"
exec {vm_in}<>"$work/vm.in"
# The storm runs through a link named after it, so that it has its name from
# exec on: the daemon names a process when it first counts it, and may count
# it before --name renames it.
ln -s "$workload" "$work/$STORM_NAME"
start storm "$work/$STORM_NAME" affinity-storm --while-running --flips 1000000000 --name "$STORM_NAME"
echo "storm and VM $VM_NAME started"

# Each expected alert must fire at some point, not all at once: the storm
# alert ends when the storm has run long enough to raise its own baseline.
declare -A fired=()
deadline=$((SECONDS + ALERT_TIMEOUT_SECONDS))
while :; do
	running vm || fail "the fake VM exited"
	running storm || fail "the storm ended before the alerts fired"
	echo "flip $VM_FLIPS" >&"$vm_in"
	firing=$(firing_alerts) || fail "cannot read the alerts from $prometheus"
	while IFS= read -r line; do
		[[ $line != unexpected* ]] || fail "an alert fired that the storm must not cause: ${line#unexpected }"
		if [[ -n $line && -z ${fired[$line]:-} ]]; then
			fired[$line]=1
			echo "fired after $(($(date +%s) - storm_start))s: $line"
		fi
	done <<<"$firing"
	((${#fired[@]} == ${#EXPECTED_ALERTS[@]})) && break
	if ((SECONDS >= deadline)); then
		# What the alerts saw: the recorded rates they compare.
		query '{__name__=~"instance_.+"}' >&2
		fail "within ${ALERT_TIMEOUT_SECONDS}s of storm, only these fired: $(printf "'%s' " "${!fired[@]}")"
	fi
	sleep 1
done
echo "OK: all expected alerts fired"
stop storm

running daemon || fail "migwatch exited during the storm"
until_up "after the storm"

python3 "$src/tests/deploy/check_fleet_federation.py" --prometheus "$prometheus" --instance "$instance" \
	--monitoring "$src/monitoring"
python3 "$src/tests/deploy/check_dashboard_queries.py" --prometheus "$prometheus" --job migwatch \
	--instance "$instance" --vm "$VM_NAME" --since "$storm_start" "$src"/dashboards/*.json
echo "OK: prometheus end-to-end"
