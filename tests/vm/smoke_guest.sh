# Guest side of the vm_smoke test, run by busybox sh inside each kernel:
# both attach paths migwatch chooses between must work on Debian's kernels.
set -u

output=$(probe_fentry move_queued_task sched_migrate_task)
echo "$output"

status=0
for expected in \
    "probe=fentry target=move_queued_task btf_id=[0-9]* result=attached" \
    "probe=raw_tp target=sched_migrate_task result=attached"
do
    if ! echo "$output" | grep -qx "$expected"; then
        echo "smoke: missing line: $expected" >&2
        status=1
    fi
done
exit $status
