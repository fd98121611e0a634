# Checks of the migwatch package on a systemd host, run with /bin/sh (dash)
# inside a Debian 12 guest whose PID 1 is systemd (tests/vm/systemd_host.py
# builds the root filesystem, boots it and judges). Started at the end of
# the boot by systemd-host-check.service, as root, with the package files in
# /root/systest. Prints one line per check,
#   SYSHOST PASS NAME: DETAIL      or      SYSHOST FAIL NAME: DETAIL
# figures as "SYSHOST INFO ...", and ends with the harness's exit marker.
# The ground truth is the kernel's: se.nr_migrations of the storm's threads,
# /proc/PID/status of the daemon, bpftool's list of the programs and maps
# the kernel holds, the files on disk.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

dir=/root/systest
port=19662
root_port=19663
url=http://127.0.0.1:$port/metrics
flips=${SYSHOST_FLIPS:-2000}
unit=migwatch.service
# The unit's WatchdogSec= and RestartSec=.
watchdog_sec=30
restart_sec=5
# Emulation and the daemon's own start (fentry attaches wait for RCU grace
# periods) beside WatchdogSec + RestartSec.
watchdog_slack_sec=15
. "$dir/guest_helpers.sh"

echo "MIGWATCH-GUEST-KERNEL=$(uname -r) cpus=$(nproc)"
# Kernel messages would break result lines on the console; errors still
# show (RCU stalls, hung tasks, soft lockups), for a guest that hangs.
dmesg -n 4
# A task blocked for 30 s shows its stack there (the default waits 120 s).
[ -w /proc/sys/kernel/hung_task_timeout_secs ] && echo 30 >/proc/sys/kernel/hung_task_timeout_secs
# The workload must not migrate before exec gives it its name: this shell
# stays on CPU 0 (see matrix_guest.sh).
taskset -p 1 $$ >/dev/null

pass() {
    name=$1
    shift
    echo "SYSHOST PASS $name: $*"
}
failed() {
    name=$1
    shift
    echo "SYSHOST FAIL $name: $*"
    status=1
}
# verdict NAME STATUS DETAIL: PASS if STATUS (of the condition just
# tested) is 0.
verdict() {
    if [ "$2" = 0 ]; then pass "$1" "$3"; else failed "$1" "$3"; fi
}
info() { echo "SYSHOST INFO $*"; }
# step NAME: where the script is, for a guest that stops answering.
step() { echo "SYSHOST STEP $1 at $(cut -d' ' -f1 /proc/uptime) s"; }
# bounded SECONDS COMMAND...: a command that must not hang the whole run;
# on a timeout, what systemd knows of the unit goes to the console.
bounded() {
    limit=$1
    shift
    timeout -k 5 "$limit" "$@"
    bounded_status=$?
    if [ $bounded_status = 124 ] || [ $bounded_status = 137 ]; then
        info "$* did not end within $limit s"
        systemctl status --no-pager -n 20 $unit 2>&1 | sed 's/^/SYSHOST INFO status: /'
    fi
    return $bounded_status
}
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
prop() { systemctl show -p "$1" --value $unit; }
is_active() { [ "$(systemctl is-active $unit)" = active ]; }

# wait_active SECONDS: until the unit is active with a main process.
wait_active() {
    waited=0
    until is_active && [ "$(prop MainPID)" != 0 ]; do
        [ $waited -ge $(($1 * 10)) ] && return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

# wait_serving URL SECONDS
wait_serving() {
    waited=0
    until wget -T 15 -t 1 -qO /dev/null "$1" 2>/dev/null; do
        [ $waited -ge $(($2 * 10)) ] && return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

# bpf_objects: "KIND ID TYPE NAME" of every program and map the kernel holds.
bpf_objects() {
    {
        bpftool prog show | awk '/^[0-9]+:/ { sub(":", "", $1); print "prog", $1, $2, ($3 == "name" ? $4 : "-") }'
        bpftool map show | awk '/^[0-9]+:/ { sub(":", "", $1); print "map", $1, $2, ($3 == "name" ? $4 : "-") }'
    } | sort
}

# systemd itself attaches cgroup programs to the units it starts (device
# policy of PrivateDevices=, for one): they come and go with unit cgroups.
not_systemds() { grep -v -E '^prog [0-9]+ (cgroup_[a-z_]+|lsm) ' || true; }

# new_objects: the programs and maps that were not there before the package
# was installed, systemd's cgroup programs left out.
new_objects() {
    bpf_objects >"$work/bpf-now"
    comm -13 "$work/bpf-baseline" "$work/bpf-now" | not_systemds
}

# no_leftovers NAME: nothing the kernel holds that was not there before
# the package came (other than systemd's own cgroup programs).
no_leftovers() {
    left=$(new_objects)
    cgroup=$(comm -13 "$work/bpf-baseline" "$work/bpf-now" | grep -c -E '^prog [0-9]+ (cgroup_|lsm)' || true)
    if [ -z "$left" ]; then
        pass "$1" "no BPF program or map left (systemd cgroup programs beside the baseline: $cgroup)"
    else
        failed "$1" "left behind: $(echo "$left" | tr '\n' ';')"
    fi
}

# probe_modes URL: "probe=mode" of every probe, sorted, on one line.
probe_modes() {
    wget -T 15 -t 1 -qO- "$1" | awk -F'"' '/^migwatch_probe_attached\{/ {
        split($0, value, " ")
        print $2 "=" $4 (value[2] + 0 == 1 ? "" : ($6 == "true" ? "(not-attached,REQUIRED)" : "(not-attached)")) }' |
        sort | tr '\n' ' '
}

# metric_sum URL REGEX: the sum of the samples of the lines matching REGEX.
metric_sum() {
    wget -T 15 -t 1 -qO- "$1" | grep -E "$2" | awk '{ sum += $NF } END { printf "%d", sum }'
}

# ---------------------------------------------------------------- install
step install

bpf_objects >"$work/bpf-baseline"
info "boot $(systemd-analyze 2>/dev/null | head -1)"
info "bpf objects before the package: $(wc -l <"$work/bpf-baseline")"
info "kernel.unprivileged_bpf_disabled=$(cat /proc/sys/kernel/unprivileged_bpf_disabled)"
deb=$(ls "$dir"/install/migwatch_*.deb)
upgrade_deb=$(ls "$dir"/upgrade/migwatch_*.deb)
version=$(dpkg-deb -f "$deb" Version)
upgrade_version=$(dpkg-deb -f "$upgrade_deb" Version)

started=$(uptime_ms)
bounded 300 apt-get install -y -q "$deb" >"$work/apt-install.log" 2>&1
apt_status=$?
ended=$(uptime_ms)
info "apt install took $((ended - started)) ms"
if [ $apt_status -ne 0 ]; then
    info "apt-get install $deb exited with $apt_status: $(tail -5 "$work/apt-install.log" | tr '\n' ' ')"
fi
installed=$(dpkg-query -W -f '${db:Status-Status} ${Version}' migwatch 2>/dev/null)
[ "$installed" = "installed $version" ]
ok=$?
verdict install $ok "offline apt-get install of the package: $installed"

# ---------------------------------------------------------------- active
step active

# The postinst starts the unit; with Type=notify, systemctl start returns
# once the daemon sent READY=1, so the unit is active and serving now.
state=$(systemctl is-active $unit)
type=$(prop Type)
start_us=$(prop ExecMainStartTimestampMonotonic)
active_us=$(prop ActiveEnterTimestampMonotonic)
ready_ms=$(( (active_us - start_us) / 1000 ))
if wget -T 15 -t 1 -qO "$work/first-scrape" "$url"; then served=yes; else served=no; fi
[ "$state" = active -a "$type" = notify -a "$start_us" -gt 0 -a "$active_us" -ge "$start_us" -a $served = yes ]
ok=$?
verdict active $ok "is-active=$state Type=$type ready ${ready_ms} ms after exec, /metrics served at once: $served"

pid=$(prop MainPID)
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' /proc/$pid/status)
gids=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' /proc/$pid/status)
set -- ${uids:-none none none none}
# systemd allocates dynamic users from 61184-65519.
[ "$1" = "$2" -a "$1" = "$3" -a "$1" = "$4" -a "$1" != none -a "$1" -ge 61184 -a "$1" -le 65519 -a "$(prop DynamicUser)" = yes ]
ok=$?
verdict dynamic-user $ok "pid $pid Uid $uids Gid $gids User=$(prop User) DynamicUser=$(prop DynamicUser)"

# After starting up, the daemon keeps CAP_BPF alone on kernels that refuse
# bpf(2) on an open map without it, nothing otherwise: of Debian's kernels
# (all with kernel.unprivileged_bpf_disabled=2), 5.10 refuses, 6.1 (6.1.176
# checked) and 6.12 do not.
cap_eff=$(awk '/^CapEff:/ { print $2 }' /proc/$pid/status)
cap_prm=$(awk '/^CapPrm:/ { print $2 }' /proc/$pid/status)
cap_bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/$pid/status)
nnp=$(awk '/^NoNewPrivs:/ { print $2 }' /proc/$pid/status)
release=$(uname -r)
major=${release%%.*}
minor=${release#*.}
minor=${minor%%.*}
if [ $((major * 1000 + minor)) -lt 6001 ] && [ "$(cat /proc/sys/kernel/unprivileged_bpf_disabled)" != 0 ]; then
    expected=0000008000000000 expected_name=CAP_BPF
else
    expected=0000000000000000 expected_name=none
fi
[ "$cap_eff" = $expected -a "$cap_prm" = $expected -a "$nnp" = 1 ]
ok=$?
verdict capabilities $ok "CapEff $cap_eff CapPrm $cap_prm (expected $expected_name: $expected) CapBnd $cap_bnd NoNewPrivs $nnp"

unit_modes=$(probe_modes "$url")
info "probe modes under the unit: $unit_modes"
case "$unit_modes" in
    *"(not-attached,REQUIRED)"*) detached=yes ;;
    *) detached=no ;;
esac
# An optional probe attached nowhere: is its function in this kernel at all?
for probe in $(echo "$unit_modes" | tr ' ' '\n' | sed -n 's/=.*(not-attached)$//p'); do
    if grep -q -E " $probe(\.[a-z]+\.[0-9]+)*\$" /proc/kallsyms; then
        info "optional probe $probe not attached; the kernel has the function"
    else
        info "optional probe $probe not attached; the kernel has no such function"
    fi
done

bpf_objects >"$work/bpf-run1"
comm -13 "$work/bpf-baseline" "$work/bpf-run1" | not_systemds >"$work/owned-run1"
info "BPF programs and maps of the running daemon: $(grep -c '^prog' "$work/owned-run1") programs, $(grep -c '^map' "$work/owned-run1") maps"

# ---------------------------------------------------------------- storm
step storm

# The storm's own flips, counted by the kernel (se.nr_migrations of every
# thread, read while the process is stopped) and by the daemon of the unit.
changes_before=$(metric_sum "$url" '^migwatch_affinity_changes_total\{requester="mws-storm"')
start_held mws-storm 3 affinity-storm --flips $flips --cpus 0,1
storm=$pid
if wait_for_line "$work/mws-storm.out" waiting=go; then
    echo go >&3
    if wait_for_line "$work/mws-storm.out" waiting=quit && stop_process $storm; then
        kernel_moves=$(cat /proc/$storm/task/*/sched | awk '/^se.nr_migrations/ { sum += $NF } END { printf "%d", sum }')
        wget -T 15 -t 1 -qO "$work/storm-scrape" "$url"
        kill -CONT $storm
    fi
fi
finish_held mws-storm 3 $storm
done_flips=$(sed -n 's/^flips=//p' "$work/mws-storm.out")
counted=$(grep -E '^migwatch_process_migrations_total\{process="mws-storm"' "$work/storm-scrape" | awk '{ sum += $NF } END { printf "%d", sum }')
reasons=$(grep -E '^migwatch_process_migrations_total\{process="mws-storm"' "$work/storm-scrape" |
    sed -E 's/.*reason="([^"]*)".* ([0-9.e+]+)$/\1=\2/' | tr '\n' ' ')
by_affinity=$(grep -E '^migwatch_process_migrations_total\{process="mws-storm",reason="affinity"' "$work/storm-scrape" | awk '{ printf "%d", $NF }')
changes_after=$(grep -E '^migwatch_affinity_changes_total\{requester="mws-storm"' "$work/storm-scrape" | awk '{ sum += $NF } END { printf "%d", sum }')
[ -n "${kernel_moves:-}" -a "${done_flips:-0}" = "$flips" -a "${counted:-x}" = "${kernel_moves:-y}" -a "${kernel_moves:-0}" -ge "$flips" ]
ok=$?
verdict storm-count $ok "$done_flips of $flips flips: kernel se.nr_migrations ${kernel_moves:-?}, migwatch ${counted:-?} ($reasons)"
[ "${by_affinity:-0}" -ge "$flips" -a "${by_affinity:-0}" = "${counted:-x}" ]
ok=$?
verdict storm-reason $ok "reason affinity ${by_affinity:-0} of ${counted:-?} counted, for $flips flips"
[ $((changes_after - changes_before)) = "$flips" ]
ok=$?
verdict affinity-changes $ok "migwatch_affinity_changes_total{requester=\"mws-storm\"} grew by $((changes_after - changes_before)) for $flips flips"

# migwatch check: a storm of its own compared with the kernel, as root.
# This shell stays on CPU 0; check moves a thread of its own between CPUs.
bounded 240 taskset -c "$(cat /sys/devices/system/cpu/online)" migwatch check >"$work/check.out" 2>&1
check_status=$?
[ $check_status = 0 ]
ok=$?
verdict migwatch-check $ok "exit $check_status: $(grep -i storm "$work/check.out" | head -1)"

# ---------------------------------------------------------------- restart
step restart

pid_before=$pid
started=$(uptime_ms)
bounded 180 systemctl restart $unit
restarted=$(uptime_ms)
pid=$(prop MainPID)
bpf_objects >"$work/bpf-run2"
gone=$(comm -12 "$work/owned-run1" "$work/bpf-run2" | tr '\n' ';')
comm -13 "$work/bpf-baseline" "$work/bpf-run2" | not_systemds >"$work/owned-run2"
[ -z "$gone" ] && is_active && [ "$pid" != "$pid_before" ] && [ -e /proc/$pid ] && [ ! -e /proc/$pid_before ] &&
    [ "$(grep -c '^prog' "$work/owned-run1")" = "$(grep -c '^prog' "$work/owned-run2")" ]
ok=$?
verdict restart $ok "systemctl restart took $((restarted - started)) ms; pid $pid_before -> $pid; objects of the first run still held: ${gone:-none}; programs $(grep -c '^prog' "$work/owned-run1") -> $(grep -c '^prog' "$work/owned-run2"), maps $(grep -c '^map' "$work/owned-run1") -> $(grep -c '^map' "$work/owned-run2")"

bounded 180 systemctl stop $unit
no_leftovers stop-leaves-nothing

# The same binary as root, without the unit: every probe must get the mode
# it gets under the unit (none lost to the sandbox), and every required
# probe must be attached.
step root-run
/usr/sbin/migwatch --web.listen-address=127.0.0.1:$root_port >"$work/root-daemon.log" 2>&1 &
root_daemon=$!
if wait_serving http://127.0.0.1:$root_port/metrics 240; then
    root_modes=$(probe_modes http://127.0.0.1:$root_port/metrics)
else
    root_modes="(the daemon as root never served: $(tail -3 "$work/root-daemon.log" | tr '\n' ' '))"
fi
kill $root_daemon
wait $root_daemon
[ "$unit_modes" = "$root_modes" -a $detached = no ]
ok=$?
verdict probes $ok "under the unit: $unit_modes| as root without it: $root_modes"
no_leftovers root-run-leaves-nothing

bounded 180 systemctl start $unit
is_active
ok=$?
verdict start-again $ok "systemctl start: $(systemctl is-active $unit)"

# ---------------------------------------------------------------- watchdog
step watchdog

# A stopped daemon sends no WATCHDOG=1: systemd aborts it after WatchdogSec
# and starts it again RestartSec later.
pid_before=$(prop MainPID)
restarts_before=$(prop NRestarts)
stopped_at=$(uptime_ms)
kill -STOP $pid_before
waited=0
until [ "$(prop MainPID)" != "$pid_before" ] && [ "$(prop MainPID)" != 0 ]; do
    [ $waited -ge $(((watchdog_sec + restart_sec + watchdog_slack_sec) * 10 + 600)) ] && break
    sleep 0.1
    waited=$((waited + 1))
done
new_pid=$(prop MainPID)
new_start_us=$(prop ExecMainStartTimestampMonotonic)
wait_active 120
active_us=$(prop ActiveEnterTimestampMonotonic)
restarts_after=$(prop NRestarts)
to_start_ms=$(( new_start_us / 1000 - stopped_at ))
to_active_ms=$(( active_us / 1000 - stopped_at ))
old_state=gone
[ -e /proc/$pid_before ] && old_state="still there ($(awk '/^State:/ { print $2 }' /proc/$pid_before/status))"
journal=$(journalctl -q -u $unit -g 'atchdog' --no-pager 2>/dev/null | tail -1)
[ "$new_pid" != "$pid_before" -a "$new_pid" != 0 -a "$old_state" = gone -a $((restarts_after)) = $((restarts_before + 1)) -a \
      $to_start_ms -le $(( (watchdog_sec + restart_sec + watchdog_slack_sec) * 1000 )) ] && is_active
ok=$?
verdict watchdog $ok "kill -STOP $pid_before: new pid $new_pid started after ${to_start_ms} ms (limit $(( (watchdog_sec + restart_sec + watchdog_slack_sec) * 1000 )) ms), active after ${to_active_ms} ms; NRestarts $restarts_before -> $restarts_after; old process $old_state; journal: $journal"
bpf_objects >"$work/bpf-run3"
comm -13 "$work/bpf-baseline" "$work/bpf-run3" | not_systemds >"$work/owned-run3"
gone=$(comm -12 "$work/owned-run2" "$work/bpf-run3" | tr '\n' ';')
[ -z "$gone" -a "$(grep -c '^prog' "$work/owned-run3")" = "$(grep -c '^prog' "$work/owned-run1")" ]
ok=$?
verdict watchdog-leaves-nothing $ok "objects of the aborted daemon still held: ${gone:-none}; programs now $(grep -c '^prog' "$work/owned-run3")"

# ---------------------------------------------------------------- upgrade
step upgrade

pid_before=$(prop MainPID)
started=$(uptime_ms)
bounded 300 apt-get install -y -q "$upgrade_deb" >"$work/apt-upgrade.log" 2>&1
apt_status=$?
ended=$(uptime_ms)
pid=$(prop MainPID)
installed=$(dpkg-query -W -f '${db:Status-Status} ${Version}' migwatch 2>/dev/null)
bpf_objects >"$work/bpf-run4"
comm -13 "$work/bpf-baseline" "$work/bpf-run4" | not_systemds >"$work/owned-run4"
gone=$(comm -12 "$work/owned-run3" "$work/bpf-run4" | tr '\n' ';')
if wget -T 15 -t 1 -qO /dev/null "$url"; then served=yes; else served=no; fi
[ $apt_status = 0 -a "$installed" = "installed $upgrade_version" -a "$pid" != "$pid_before" -a ! -e /proc/$pid_before \
      -a -z "$gone" -a $served = yes -a "$(prop Result)" = success ] && is_active
ok=$?
verdict upgrade $ok "apt-get install $version -> $upgrade_version: exit $apt_status in $((ended - started)) ms, now '$installed', pid $pid_before -> $pid, $(systemctl is-active $unit), Result=$(prop Result), serving: $served, old objects still held: ${gone:-none}"
[ $apt_status = 0 ] || tail -5 "$work/apt-upgrade.log"

# ---------------------------------------------------------------- purge
step purge

dpkg -L migwatch >"$work/package-files"
bounded 300 apt-get purge -y -q migwatch >"$work/apt-purge.log" 2>&1
apt_status=$?
remaining=""
while read -r path; do
    [ -d "$path" ] && continue  # shared directories such as /usr/sbin stay
    [ -e "$path" ] || [ -L "$path" ] && remaining="$remaining $path"
done <"$work/package-files"
named_files=$(find / /run /tmp /var/tmp -xdev \( -path /proc -o -path /sys -o -path "$dir" \) -prune -o \
    -name '*migwatch*' -print 2>/dev/null | grep -v -e "^$dir" -e '^/proc' | sort -u | tr '\n' ' ')
processes=$(grep -l -x migwatch /proc/[0-9]*/comm 2>/dev/null | tr '\n' ' ')
load_state=$(prop LoadState)
# dpkg forgets a purged package entirely, or lists it as not-installed.
status_after=$(dpkg-query -W -f '${db:Status-Status}' migwatch 2>/dev/null) || status_after=unknown-to-dpkg
[ $apt_status = 0 ] && [ "$status_after" = not-installed -o "$status_after" = unknown-to-dpkg ] && [ "$load_state" = not-found -a -z "$remaining" -a -z "$named_files" -a -z "$processes" ]
ok=$?
verdict purge $ok "apt-get purge exit $apt_status; dpkg status '$status_after'; LoadState=$load_state; package files left:${remaining:- none}; files named *migwatch*: ${named_files:-none}; processes: ${processes:-none}"
no_leftovers purge-leaves-nothing

echo "SYSHOST done"
echo "MIGWATCH-GUEST-EXIT=$status"
systemctl poweroff --force --force
