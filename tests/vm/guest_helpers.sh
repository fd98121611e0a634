# Shell functions the guest scripts share (matrix_guest.sh, scale_guest.sh),
# sourced by busybox sh from the directory of the script. Sourcing makes
# $work, a scratch directory removed on exit, and $status, which fail sets
# to 1. A script sets $port and $url (the daemon's /metrics) and $full_cpus
# (every CPU as a list, for taskset -c); result lines name the run in $run.
# See matrix_guest.sh for the lines.

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

fail() {
    echo "${0##*/}: $*" >&2
    status=1
}

# wait_for_line FILE TEXT: until FILE has a line starting with TEXT.
wait_for_line() {
    waited=0
    until grep -q "^$2" "$1" 2>/dev/null; do
        if [ $waited -ge 1800 ]; then
            fail "no '$2' in $1 after 180 s"
            cat "$1" >&2
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# scrape SNAPSHOT REGEX: the metric lines matching REGEX, as one snapshot.
scrape() {
    if ! wget -qO "$work/metrics" "$url"; then
        fail "cannot scrape $url"
        return 1
    fi
    grep -E "$2" "$work/metrics" | sed "s/^/MWM $run metric $1 /"
}

# stop_process PID: SIGSTOP, then wait until every thread has stopped. A
# stopped task is on no run queue, so nothing migrates it while it is read.
stop_process() {
    kill -STOP "$1"
    waited=0
    while cat /proc/"$1"/task/*/stat | awk '$3 != "T" { running = 1 } END { exit !running }'; do
        if [ $waited -ge 300 ]; then
            fail "process $1 does not stop"
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# kernel_migrations PID: "SUM THREADS", se.nr_migrations summed over the
# process's threads, and how many threads there were.
kernel_migrations() {
    cat /proc/"$1"/task/*/sched | awk '/^se.nr_migrations/ { sum += $NF; n++ } END { printf "%d %d", sum, n }'
}

# compare WORKLOAD NAME PID AT_LEAST: the kernel's own count of the process's
# migrations and migwatch's series for it, both taken while it is stopped.
compare() {
    stop_process "$3" || return 1
    kernel=$(kernel_migrations "$3")
    scrape "$1" "^migwatch_process_migrations_total\{process=\"$2\","
    echo "MWM $run process $1 $2 $kernel $4"
    kill -CONT "$3"
}

# named NAME: a path that runs mw_workload as process NAME (exec names a
# process after the file it runs).
named() {
    ln -sf "$(command -v mw_workload)" "$work/$1"
    echo "$work/$1"
}

# start_held NAME FD ARGS...: starts mw_workload --hold ARGS as process NAME,
# its input a FIFO this shell holds open on FD (a workload ends when it
# closes), its output in $work/NAME.out; sets $pid. It is ready when it
# prints "waiting=go".
start_held() {
    name=$1 fd=$2
    shift 2
    rm -f "$work/$name.in" "$work/$name.out"
    mkfifo "$work/$name.in"
    "$(named "$name")" --hold "$@" <"$work/$name.in" >"$work/$name.out" 2>&1 &
    pid=$!
    eval "exec $fd>\"\$work/\$name.in\""
}

# finish_held NAME FD PID: lets a held workload end, and checks that it did its work.
finish_held() {
    eval "echo quit >&$2; exec $2>&-"
    wait "$3" || fail "$1 exited with status $?: $(cat "$work/$1.out")"
}

# held_workload WORKLOAD NAME AT_LEAST ARGS...: runs mw_workload ARGS as
# process NAME, and compares once it has done its work.
held_workload() {
    workload=$1 held_name=$2 at_least=$3
    shift 3
    start_held "$held_name" 3 "$@"
    held_pid=$pid
    if wait_for_line "$work/$held_name.out" waiting=go; then
        echo go >&3
        wait_for_line "$work/$held_name.out" waiting=quit && compare "$workload" "$held_name" $held_pid "$at_least"
    fi
    finish_held "$held_name" 3 $held_pid
}

# start_migwatch RUN FLAGS...: the daemon in the background ($daemon) and
# migwatch check, both with FLAGS; returns 1 if the daemon never serves $url.
start_migwatch() {
    run=$1
    shift
    taskset -c "$full_cpus" migwatch "$@" --web.listen-address=127.0.0.1:$port --labels.cap=10000 \
        >"$work/daemon-$run.log" 2>&1 &
    daemon=$!
    # check compares a storm of its own with the kernel, so it can run while
    # the daemon loads: under emulation every fentry attach waits seconds
    # for an RCU grace period, and so the waits of the two overlap.
    taskset -c "$full_cpus" migwatch "$@" check >"$work/check.out" 2>&1
    check_status=$?
    sed "s/^/MWM $run check /" "$work/check.out"
    echo "MWM $run check-exit $check_status"
    waited=0
    until wget -qO /dev/null "$url" 2>/dev/null; do
        if ! kill -0 $daemon 2>/dev/null || [ $waited -ge 1800 ]; then
            fail "migwatch $* did not serve $url"
            cat "$work/daemon-$run.log" >&2
            kill $daemon 2>/dev/null
            return 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

# report_maps: one "MWM $run map ID TYPE MAX_ENTRIES MEMLOCK" line per BPF
# map file descriptor of $daemon (its fdinfo). Only maps have a map_type
# line; programs and links have a memlock line too.
report_maps() {
    for info in /proc/$daemon/fdinfo/*; do
        awk -v run="$run" '/^map_type:/ { type = $2 } /^max_entries:/ { entries = $2 } /^memlock:/ { memlock = $2 }
             /^map_id:/ { id = $2 }
             END { if (type != "") print "MWM", run, "map", id, type, entries, memlock }' "$info"
    done
}

# time_scrapes COUNT: "MWM $run scrapes COUNT CENTISECONDS", the fastest of
# four rounds of COUNT scrapes of $url back to back, after two to warm up;
# then every sample line of one more as snapshot "series". The fastest
# round, because the host's other work stalls the emulated CPUs for
# whole rounds at a time: what a scrape costs is what it takes when
# nothing else runs. /proc/uptime counts hundredths of a second: over a
# round, that is fine enough for its average.
time_scrapes() {
    wget -qO /dev/null "$url" && wget -qO /dev/null "$url" || fail "cannot scrape $url"
    fastest=
    for round in 1 2 3 4; do
        started=$(awk '{ printf "%d", $1 * 100 }' /proc/uptime)
        count=0
        while [ $count -lt "$1" ]; do
            wget -qO /dev/null "$url" || fail "cannot scrape $url"
            count=$((count + 1))
        done
        ended=$(awk '{ printf "%d", $1 * 100 }' /proc/uptime)
        took=$((ended - started))
        if [ -z "$fastest" ] || [ "$took" -lt "$fastest" ]; then fastest=$took; fi
    done
    echo "MWM $run scrapes $1 $fastest"
    scrape series '^[^#]'
}
