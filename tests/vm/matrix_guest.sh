# Measuring side of the vm_matrix test, run by busybox sh inside each guest
# kernel (tests/vm/vm.py) and on the build machine itself (MWM_HOST=1, see
# matrix.py). It only measures and prints; matrix.py judges. Every result is
# one console line starting with "MWM ", RUN being "fentry" (migwatch's
# defaults) or "no-fentry" (--no-fentry):
#   MWM kernel release RELEASE
#   MWM kernel fentry probe=fentry target=FUNCTION ... result=RESULT   (probe_fentry)
#   MWM RUN check LINE                migwatch check's report, line by line
#   MWM RUN check-exit STATUS
#   MWM RUN metric SNAPSHOT LINE      a line of one scrape of /metrics
#   MWM RUN process WORKLOAD NAME KERNEL_MIGRATIONS THREADS AT_LEAST
#       se.nr_migrations summed over the threads of process NAME, read while
#       it is stopped, beside scrape WORKLOAD of its series; the workload
#       made at least AT_LEAST migrations if it did its job
#   MWM RUN hotplug CPU TASKS         scrapes before-offline and after-offline
#       bracket taking CPU offline while TASKS threads are pinned to it
#   MWM RUN hotplug-not-run REASON
#   MWM RUN done
set -u

port=${MWM_PORT:-19662}
url=http://127.0.0.1:$port/metrics
on_host=${MWM_HOST:-0}
# Sized for guests under emulation, where a cross-CPU wakeup costs
# milliseconds: a flip of a running thread takes two, through a mover process.
running_flips=100
queued_flips=2000
rounds=500
. "$(dirname "$0")/guest_helpers.sh"

# spinners_and_hotplug: one spinner more than there are CPUs (the balancer
# moves them; on a busy host, maybe only after more than 2 s) and spinners
# pinned to the last CPU, which goes offline under them. They run at the
# lowest priority, so that this shell and migwatch still get CPU time in a
# guest under emulation.
spinners_and_hotplug() {
    start_held mwm-spread 3 spinners --threads $((cpu_count + 1)) --seconds 2 --cpus "$all_cpus" \
        --until-moved-within 20
    spread=$pid
    start_held mwm-pinned 4 spinners --threads 2 --seconds 2 --cpus $last_cpu
    pinned=$pid
    if wait_for_line "$work/mwm-spread.out" waiting=go && wait_for_line "$work/mwm-pinned.out" waiting=go; then
        for task in /proc/$spread/task/* /proc/$pinned/task/*; do
            renice -n 19 -p "${task##*/}" >/dev/null
        done
        echo go >&3
        echo go >&4
        wait_for_line "$work/mwm-spread.out" waiting=quit && wait_for_line "$work/mwm-pinned.out" waiting=quit
        if [ "$on_host" = 1 ]; then
            echo "MWM $run hotplug-not-run the-build-machine-keeps-its-cpus"
        else
            tasks=$(cat /proc/$pinned/task/*/stat | awk -v cpu=$last_cpu '$39 == cpu { n++ } END { print n + 0 }')
            scrape before-offline '^migwatch_(migrations_total|stopper_work_(seconds|runs)_total)\{'
            echo 0 >/sys/devices/system/cpu/cpu$last_cpu/online || fail "cannot take CPU $last_cpu offline"
            scrape after-offline '^migwatch_(migrations_total|stopper_work_(seconds|runs)_total)\{'
            echo "MWM $run hotplug $last_cpu $tasks"
            echo 1 >/sys/devices/system/cpu/cpu$last_cpu/online || fail "cannot bring CPU $last_cpu back"
        fi
        compare spinners mwm-spread $spread 1
        compare hotplug-pinned mwm-pinned $pinned 2
    fi
    finish_held mwm-spread 3 $spread
    finish_held mwm-pinned 4 $pinned
}

# run_migwatch RUN FLAGS...: the daemon with every workload, and migwatch
# check, all with FLAGS.
run_migwatch() {
    start_migwatch "$@" || return
    shift
    scrape probes '^migwatch_probe_attached\{'
    if [ "$run" = fentry ]; then
        # What the kernel itself allows, for every hook that did not get a
        # tracepoint: probe_fentry attaches a minimal fentry program to it.
        # All at once: each attach waits for an RCU grace period (see
        # start_migwatch), and so their waits overlap.
        probing=
        for probe in $(awk -F'"' '/^migwatch_probe_attached\{.*mode="(fentry|none)"/ { print $2 }' "$work/metrics"); do
            probe_fentry "$probe" >"$work/fentry-$probe.out" 2>&1 &
            probing="$probing $!"
        done
        wait $probing
        cat "$work"/fentry-*.out | grep '^probe=fentry' | sed 's/^/MWM kernel fentry /'
    fi

    held_workload affinity-running mwm-aff-run $running_flips \
        affinity-storm --while-running --flips $running_flips --cpus 0,1
    held_workload affinity-queued mwm-aff-queue $queued_flips affinity-storm --flips $queued_flips --cpus 0,1
    held_workload pingpong mwm-pingpong $((rounds - 1)) pingpong --rounds $rounds --cpus 0,1
    spinners_and_hotplug

    kill $daemon
    wait $daemon || fail "migwatch $* exited with status $?"
    echo "MWM $run done"
}

echo "MWM kernel release $(uname -r)"
# Kernel messages would break result lines on the guest's console.
[ "$on_host" = 1 ] || dmesg -n 1
# As a list: busybox prints a mask of more than 64 possible CPUs with its
# words in the wrong order, and so it would not read back.
full_cpus=$(taskset -cp $$ | sed 's/.*: //')
last_cpu=$(awk -F'[-,]' '{ print $NF }' /sys/devices/system/cpu/online)
cpu_count=$((last_cpu + 1))
all_cpus=$(seq -s, 0 $last_cpu)
# migwatch charges a process's migrations to its name in /proc, which exec
# changes. So that no workload migrates before exec has given it its name,
# everything this shell starts begins on CPU 0 and the workloads choose
# their own CPUs.
taskset -p 1 $$ >/dev/null

run_migwatch fentry
run_migwatch no-fentry --no-fentry
exit $status
