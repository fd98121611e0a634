# Measuring side of the vm_scale test, run by busybox sh in a guest with 2
# CPUs online and many more possible (tests/vm/scale.py judges). Besides the
# lines of guest_helpers.sh for run "scale" (migwatch check, and the storm
# process's se.nr_migrations beside its series), it prints:
#   MWM scale cpus POSSIBLE ONLINE      /sys/devices/system/cpu/{possible,online}
#   MWM scale map ID TYPE MAX_ENTRIES MEMLOCK
#       one line per BPF map file descriptor of the daemon (its fdinfo)
#   MWM scale scrapes COUNT CENTISECONDS
#       the fastest of four rounds of COUNT scrapes of /metrics back to back
#   MWM scale metric series LINE        every sample line of one more scrape
#   MWM scale done
set -u

port=19662
url=http://127.0.0.1:$port/metrics
scrapes=10
# Enough to move the storm's thread through the stopper of both CPUs, so
# that every per-CPU family has a series for each online CPU.
flips=50
. "$(dirname "$0")/guest_helpers.sh"

# Kernel messages would break result lines on the console.
dmesg -n 1
echo "MWM kernel release $(uname -r)"
echo "MWM scale cpus $(cat /sys/devices/system/cpu/possible) $(cat /sys/devices/system/cpu/online)"
# As a list: busybox prints a mask of more than 64 possible CPUs with its
# words in the wrong order, and so it would not read back.
full_cpus=$(taskset -cp $$ | sed 's/.*: //')
# The workload must not migrate before exec gives it its name (see
# matrix_guest.sh): this shell stays on CPU 0.
taskset -p 1 $$ >/dev/null

start_migwatch scale || exit 1
held_workload affinity-running mws-storm $flips affinity-storm --while-running --flips $flips --cpus 0,1

report_maps
time_scrapes $scrapes

kill $daemon
wait $daemon || fail "migwatch exited with status $?"
echo "MWM scale done"
exit $status
