# Measuring side of the vm_numa test, run by busybox sh in a guest with
# several NUMA nodes (tests/vm/numa.py judges). /numa.conf sets $pair_flips,
# $balance_cycles, $balance_seconds, $balance_mib, $scan_delay_ms,
# $scan_period_min_ms, $threads, $storm_flips and $scrapes. The shell and
# the daemon keep to node 0's CPUs, so that nothing of theirs crosses
# between the other nodes. Besides the lines of guest_helpers.sh for run
# "numa" (migwatch check, the workloads' se.nr_migrations beside their
# series, the daemon's maps and scrapes), it prints:
#   MWM numa cpus POSSIBLE ONLINE      /sys/devices/system/cpu/{possible,online}
#   MWM numa node NODE CPULIST         every node's CPUs
#   MWM numa pair NODE_A NODE_B CPU_A CPU_B FLIPS
#       an affinity storm of a spinning thread between CPU_A and CPU_B
#   MWM numa pair-kernel BEFORE AFTER  its process's se.nr_migrations at "go"
#       and after the flips (snapshots pair-before and pair-after of
#       migwatch_node_migrations_total are taken beside them)
#   MWM numa pair-tids TID...          the storm process's threads
#   MWM numa pair-trace LINE           every task's sched_migrate_task from
#       tracefs, with the markers "mwm pair-before begin|end" and "mwm
#       pair-after begin|end" around the two snapshots: the cells count
#       every task's moves, and so does this ground truth
#   MWM numa pair-trace-lost COUNT     events the trace buffer dropped
#   MWM numa balance MEMORY_NODE AWAY_CPUS FREE_CPUS TID
#       a thread touching memory bound to MEMORY_NODE, started on AWAY_CPUS
#       and then allowed on FREE_CPUS too, under kernel.numa_balancing=1
#       (snapshots balance-before and balance-after of the numa series,
#       inside the window in which tracefs records the events below)
#   MWM numa trace LINE                a sched_move_numa, sched_swap_numa,
#       sched_stick_numa or sched_migrate_task event from tracefs over that
#       window
#   MWM numa trace-lost COUNT          events the trace buffer dropped
#   MWM numa threads LIVE SECONDS      the sleepers' live threads, and how
#       long making them took (hundredths of a second)
#   MWM numa threads-after LIVE        the same, after the measurements
#   MWM numa done
set -u

port=19662
url=http://127.0.0.1:$port/metrics
. "$(dirname "$0")/guest_helpers.sh"
. /numa.conf
tracing=/sys/kernel/tracing
balancing=/sys/kernel/debug/sched/numa_balancing
numa_events="sched_move_numa sched_swap_numa sched_stick_numa sched_migrate_task"

# cpus NODE: the node's CPUs as a comma list (sysfs says 4-7).
cpus() {
    tr ',' '\n' </sys/devices/system/node/node"$1"/cpulist |
        awk -F- '{ for (cpu = $1; cpu <= ($2 == "" ? $1 : $2); cpu++) printf "%s%d", n++ ? "," : "", cpu }'
}
uptime_cs() { awk '{ printf "%d", $1 * 100 }' /proc/uptime; }

# trace_on EVENT...: an empty trace buffer recording the sched EVENTs.
trace_on() {
    echo 0 >$tracing/tracing_on
    echo >$tracing/trace
    for event in "$@"; do
        echo 1 >$tracing/events/sched/$event/enable || fail "cannot enable $event"
    done
    echo 1 >$tracing/tracing_on
}

# trace_off KIND EVENT...: stops recording and prints the buffer as records
# KIND, then the events it dropped as KIND-lost.
trace_off() {
    kind=$1
    shift
    echo 0 >$tracing/tracing_on
    for event in "$@"; do echo 0 >$tracing/events/sched/$event/enable; done
    grep -v '^#' $tracing/trace | sed "s/^/MWM numa $kind /"
    echo "MWM numa $kind-lost $(awk '/^overrun:/ { sum += $2 } END { print sum + 0 }' $tracing/per_cpu/cpu*/stats)"
}

# marked_scrape NAME PATTERN: scrape, between trace markers "mwm NAME begin"
# and "mwm NAME end": a move traced between them may or may not be in it.
marked_scrape() {
    echo "mwm $1 begin" >$tracing/trace_marker
    scrape "$@"
    echo "mwm $1 end" >$tracing/trace_marker
}

dmesg -n 1
echo "MWM kernel release $(uname -r)"
echo "MWM numa cpus $(cat /sys/devices/system/cpu/possible) $(cat /sys/devices/system/cpu/online)"
nodes=0
for node in /sys/devices/system/node/node[0-9]*; do
    echo "MWM numa node ${node##*node} $(cat "$node/cpulist")"
    nodes=$((nodes + 1))
done
if [ $nodes -lt 4 ]; then
    echo "numa_guest.sh: $nodes NUMA nodes, the test needs 4" >&2
    exit 1
fi
# The workloads must not migrate before exec gives them their names (see
# matrix_guest.sh): this shell stays on CPU 0, and the daemon on node 0.
taskset -p 1 $$ >/dev/null
full_cpus=$(cpus 0)
# 10,000 threads need more than the default limit of a 2 GiB guest.
echo 100000 >/proc/sys/kernel/threads-max

start_migwatch numa || exit 1

# ---- The node-pair matrix: a storm between a CPU of node 1 and one of node 3.
cpu_a=$(cpus 1 | cut -d, -f1)
cpu_b=$(cpus 3 | cut -d, -f1)
echo "MWM numa pair 1 3 $cpu_a $cpu_b $pair_flips"
# Its flipper stays on CPU 0 with the shell; the spinner starts there and is
# pinned to CPU_A before "go".
start_held mws-pair 3 affinity-storm --flips "$pair_flips" --cpus "$cpu_a,$cpu_b"
pair_pid=$pid
if wait_for_line "$work/mws-pair.out" waiting=go && stop_process $pair_pid; then
    echo "MWM numa pair-tids $(ls /proc/$pair_pid/task | tr '\n' ' ')"
    pair_before=$(kernel_migrations $pair_pid | cut -d' ' -f1)
    trace_on sched_migrate_task
    marked_scrape pair-before '^migwatch_node_migrations_total'
    kill -CONT $pair_pid
    echo go >&3
    if wait_for_line "$work/mws-pair.out" waiting=quit && stop_process $pair_pid; then
        marked_scrape pair-after '^migwatch_node_migrations_total'
        echo "MWM numa pair-kernel $pair_before $(kernel_migrations $pair_pid | cut -d' ' -f1)"
        kill -CONT $pair_pid
    fi
    trace_off pair-trace sched_migrate_task
fi
finish_held mws-pair 3 $pair_pid

# ---- Automatic NUMA balancing: memory on node 3, the thread on node 2.
echo 1 >/proc/sys/kernel/numa_balancing || fail "cannot enable kernel.numa_balancing"
# The first scan of a task's memory comes scan_delay_ms after it starts, the
# next ones every scan_period_min_ms at the soonest.
echo "$scan_delay_ms" >$balancing/scan_delay_ms || fail "cannot set $balancing/scan_delay_ms"
echo "$scan_period_min_ms" >$balancing/scan_period_min_ms || fail "cannot set $balancing/scan_period_min_ms"
away=$(cpus 2)
free="$away,$(cpus 3)"
start_held mws-numa 3 numa-remote --node 3 --mib "$balance_mib" --away "$away" --free "$free" \
    --cycles "$balance_cycles" --seconds "$balance_seconds"
balance_pid=$pid
if wait_for_line "$work/mws-numa.out" waiting=go; then
    echo "MWM numa balance 3 $away $free $(sed -n 's/^tid=//p' "$work/mws-numa.out")"
    trace_on $numa_events
    scrape balance-before 'reason="numa"'
    echo go >&3
    if wait_for_line "$work/mws-numa.out" waiting=quit && stop_process $balance_pid; then
        scrape balance-after 'reason="numa"'
        echo 0 >$tracing/tracing_on
        echo "MWM numa process balance mws-numa $(kernel_migrations $balance_pid) 1"
        kill -CONT $balance_pid
    fi
    trace_off trace $numa_events
fi
finish_held mws-numa 3 $balance_pid
echo 0 >/proc/sys/kernel/numa_balancing

# ---- Many threads: a storm, the maps, the series and the scrapes beside them.
started=$(uptime_cs)
start_held mws-sleepers 4 sleepers --threads "$threads" --wake-seconds 10
sleepers_pid=$pid
if wait_for_line "$work/mws-sleepers.out" waiting=go; then
    echo "MWM numa threads $(ls /proc/$sleepers_pid/task | wc -l) $(($(uptime_cs) - started))"
    held_workload affinity-running mws-storm "$storm_flips" affinity-storm --while-running \
        --flips "$storm_flips" --cpus 0,1
    report_maps
    time_scrapes "$scrapes"
    echo "MWM numa threads-after $(ls /proc/$sleepers_pid/task | wc -l)"
fi
finish_held mws-sleepers 4 $sleepers_pid

kill $daemon
wait $daemon || fail "migwatch exited with status $?"
echo "MWM numa done"
exit $status
