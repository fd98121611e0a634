// SPDX-License-Identifier: GPL-2.0
/*
 * Empty programs on the hooks migwatch attaches to on every kernel, for the
 * benchmark (this directory). The kernel's run-time statistics of a program include the
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
