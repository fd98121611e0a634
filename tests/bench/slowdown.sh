#!/bin/sh
# Workload slowdown under each observer, interleaved: in every repetition
# each condition (nothing attached, migwatch, the bpftrace one-liner, perf
# record) runs every workload once, in an order that rotates between
# repetitions, so that drifts of the machine's load spread over all.
#
# Runs with busybox sh (in the QEMU guests of tests/vm) as well as on the
# host. Tools come from the environment:
#   MIGWATCH MW_WORKLOAD PERF BPFTRACE   paths (PERF: the perf binary itself)
#   REPETITIONS                          default 5
#   STORM_FLIPS OWN_CPU_FLIPS PIPE_LOOPS MESSAGING_GROUPS MESSAGING_LOOPS
#                                        work per run
#   CONDITIONS                           default "alone migwatch bpftrace perf_record"
# Prints one line per run, for bench.py:
#   MWSLOW rep=R condition=C workload=W seconds=S
# and "MWSLOW skipped workload=W reason=..." for a workload this machine
# cannot run. Exits non-zero when a tool or a run fails.
set -u

REPETITIONS=${REPETITIONS:-5}
STORM_FLIPS=${STORM_FLIPS:-40000}
OWN_CPU_FLIPS=${OWN_CPU_FLIPS:-$STORM_FLIPS}
PIPE_LOOPS=${PIPE_LOOPS:-200000}
MESSAGING_GROUPS=${MESSAGING_GROUPS:-10}
MESSAGING_LOOPS=${MESSAGING_LOOPS:-500}
CONDITIONS=${CONDITIONS:-"alone migwatch bpftrace perf_record"}
PORT=${PORT:-19663}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fail() {
    echo "slowdown: $*" >&2
    exit 1
}

fetch() {
    if command -v curl >/dev/null 2>&1; then curl -fs -o /dev/null "$1"; else wget -q -O /dev/null "$1"; fi
}

# The flipper on a CPU of its own needs a third CPU.
cpus=$(nproc)
WORKLOADS="storm pipe messaging"
if [ "$cpus" -ge 3 ]; then
    WORKLOADS="storm storm_own_cpu pipe messaging"
else
    echo "MWSLOW skipped workload=storm_own_cpu reason=needs-3-cpus-this-machine-has-$cpus"
fi

# Seconds one workload took, from its own report.
run_workload() {
    case "$1" in
    storm)
        "$MW_WORKLOAD" affinity-storm --while-running --flips "$STORM_FLIPS" | sed -n 's/^seconds=//p' ;;
    storm_own_cpu)
        taskset -c 2 "$MW_WORKLOAD" affinity-storm --cpus 0,1 --flips "$OWN_CPU_FLIPS" | sed -n 's/^seconds=//p' ;;
    pipe)
        "$PERF" bench sched pipe -l "$PIPE_LOOPS" 2>&1 | sed -n 's/^ *Total time: *\([0-9.]*\).*/\1/p' ;;
    messaging)
        "$PERF" bench sched messaging -g "$MESSAGING_GROUPS" -l "$MESSAGING_LOOPS" 2>&1 |
            sed -n 's/^ *Total time: *\([0-9.]*\).*/\1/p' ;;
    esac
}

observer_pid=
# wait_ready NAME LOG COMMAND...: runs COMMAND every 0.1 s until it succeeds,
# failing with NAME's LOG if the observer exits or 2 minutes pass.
wait_ready() {
    name=$1 log=$2
    shift 2
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        [ $tries -lt 1200 ] || fail "$name did not start: $(cat "$log")"
        kill -0 "$observer_pid" 2>/dev/null || fail "$name exited: $(cat "$log")"
        sleep 0.1
    done
}

# Starts the observer of a condition and waits until it watches.
start_observer() {
    observer_pid=
    case "$1" in
    alone) ;;
    migwatch)
        "$MIGWATCH" --web.listen-address "127.0.0.1:$PORT" --log.level warn >"$WORK/migwatch.log" 2>&1 &
        observer_pid=$!
        wait_ready migwatch "$WORK/migwatch.log" fetch "http://127.0.0.1:$PORT/metrics" ;;
    bpftrace)
        "$BPFTRACE" -e 'BEGIN { printf("ready\n"); } tracepoint:sched:sched_migrate_task { @[comm] = count(); }' \
            >"$WORK/bpftrace.log" 2>&1 &
        observer_pid=$!
        wait_ready bpftrace "$WORK/bpftrace.log" grep -q '^ready' "$WORK/bpftrace.log" ;;
    perf_record)
        # Events off until enabled through the control fifo: "ack" says on.
        rm -f "$WORK/ctl" "$WORK/ack"
        mkfifo "$WORK/ctl" "$WORK/ack"
        "$PERF" record -a -e sched:sched_migrate_task -q -o "$WORK/perf.data" -D -1 \
            --control "fifo:$WORK/ctl,$WORK/ack" >"$WORK/perf.log" 2>&1 &
        observer_pid=$!
        exec 3>"$WORK/ctl" 4<"$WORK/ack"
        echo enable >&3
        read -r ack <&4 || fail "perf record did not enable its events: $(cat "$WORK/perf.log")"
        [ "$ack" = ack ] || fail "perf record answered '$ack': $(cat "$WORK/perf.log")" ;;
    *) fail "unknown condition $1" ;;
    esac
    sleep 1  # start-up work (a first walk of /proc) is not what is measured
}

# Whether a child still runs (an exited child not yet waited for does not).
running() {
    state=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}

stop_observer() {
    [ -n "$observer_pid" ] || return 0
    kill -INT "$observer_pid" 2>/dev/null
    # bpftrace 0.17 now and then stays in epoll_wait after its SIGINT, for
    # good: TERM after 5 s, KILL after 10. The measurement is over by now;
    # only the next one must not wait for it.
    tries=0
    while running "$observer_pid"; do
        tries=$((tries + 1))
        [ $tries -eq 50 ] && kill -TERM "$observer_pid" 2>/dev/null
        [ $tries -ge 100 ] && kill -KILL "$observer_pid" 2>/dev/null
        sleep 0.1
    done
    wait "$observer_pid" 2>/dev/null
    if [ "$1" = perf_record ]; then
        exec 3>&- 4<&-
        rm -f "$WORK/perf.data"
    fi
}

for tool in "$MW_WORKLOAD" "$PERF"; do
    [ -x "$tool" ] || fail "$tool is not executable"
done
n=0
for c in $CONDITIONS; do n=$((n + 1)); done
rep=1
while [ $rep -le "$REPETITIONS" ]; do
    # Rotate the order of the conditions by the repetition number.
    order=
    shift_by=$(( (rep - 1) % n ))
    i=0
    for c in $CONDITIONS; do
        [ $i -ge $shift_by ] && order="$order $c"
        i=$((i + 1))
    done
    i=0
    for c in $CONDITIONS; do
        [ $i -lt $shift_by ] && order="$order $c"
        i=$((i + 1))
    done
    for condition in $order; do
        start_observer "$condition"
        for workload in $WORKLOADS; do
            seconds=$(run_workload "$workload")
            [ -n "$seconds" ] || fail "$workload under $condition reported no time"
            echo "MWSLOW rep=$rep condition=$condition workload=$workload seconds=$seconds"
        done
        stop_observer "$condition"
    done
    rep=$((rep + 1))
done
