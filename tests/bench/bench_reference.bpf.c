// SPDX-License-Identifier: GPL-2.0
/*
 * Empty programs on the hooks migwatch attaches to on every kernel, and one
 * counting program, for the benchmark (this directory). The kernel's run-time statistics of a program include the
 * cost of calling it and of timing it; an empty program on the same hook,
 * measured in the same run, is what migwatch's handler is compared against.
 *
 * Each program is named ref_<name of migwatch's program on that hook>, so the
 * benchmark pairs them by name.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_migrate_task")
int ref_sched_migrate_task_btf(void *ctx) { return 0; }

/* The least any program that counts migrations per CPU must do: add one to
 * a counter of its CPU. What it costs above the empty program is what one
 * page of a program's own memory costs an event on this machine (on a
 * machine whose TLB loses kernel pages at every return to user space, a
 * page walk): the floor under migwatch's handler. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} floor_counts SEC(".maps");

SEC("tp_btf/sched_migrate_task")
int floor_sched_migrate_task_btf(void *ctx)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&floor_counts, &key);

	if (count)
		(*count)++;
	return 0;
}

SEC("tp_btf/sched_switch")
int ref_sched_switch_btf(void *ctx) { return 0; }

SEC("tp_btf/sched_waking")
int ref_sched_waking_btf(void *ctx) { return 0; }

SEC("tp_btf/cpuhp_enter")
int ref_cpuhp_enter_btf(void *ctx) { return 0; }

SEC("tp_btf/task_rename")
int ref_task_rename_btf(void *ctx) { return 0; }

SEC("tp_btf/sched_process_exec")
int ref_sched_process_exec_btf(void *ctx) { return 0; }

SEC("tp_btf/sched_process_exit")
int ref_sched_process_exit_btf(void *ctx) { return 0; }

SEC("tp_btf/sched_process_free")
int ref_sched_process_free_btf(void *ctx) { return 0; }
