/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every kernel-version difference the BPF programs depend on, in one place.
 * vmlinux.h describes the newest layout; the ___flavour structs below describe
 * older ones, and bpf_core_field_exists() picks the right one at load time on
 * the target kernel. Each shim names the version and the change.
 */
#ifndef MIGWATCH_CORE_FIXES_BPF_H
#define MIGWATCH_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/* Linux 5.14 (2f064a59a11f "sched: Change task_struct::state"):
 * `long state` became `unsigned int __state`. */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return (__u32)BPF_CORE_READ((struct task_struct___pre_5_14 *)t, state);
}

/* Linux 5.16 (bcf9033e5449 "sched: move CPU field back into thread_info if
 * THREAD_INFO_IN_TASK"): task_struct::cpu moved into thread_info::cpu. */
struct task_struct___pre_5_16 {
	unsigned int cpu;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_cpu(struct task_struct *t)
{
	if (bpf_core_field_exists(t->thread_info.cpu))
		return BPF_CORE_READ(t, thread_info.cpu);
	return BPF_CORE_READ((struct task_struct___pre_5_16 *)t, cpu);
}

/* Linux 5.3 (3bd3706251ee "sched/core: Provide a pointer to the valid CPU
 * mask"): cpus_allowed became cpus_mask (cpus_ptr points at it, or at a
 * single CPU while migration is disabled: the mask an affinity change
 * writes is cpus_mask). */
struct task_struct___pre_5_3 {
	cpumask_t cpus_allowed;
} __attribute__((preserve_access_index));

/* Whether `cpu` is in the task's requested CPU mask. */
static __always_inline bool task_allows_cpu(struct task_struct *t, __u32 cpu)
{
	unsigned long word = 0;
	__u32 idx = (cpu / 64) & 127; /* NR_CPUS <= 8192 */

	if (bpf_core_field_exists(t->cpus_mask))
		bpf_core_read(&word, sizeof(word), &t->cpus_mask.bits[idx]);
	else
		bpf_core_read(&word, sizeof(word),
			      &((struct task_struct___pre_5_3 *)t)->cpus_allowed.bits[idx]);
	return (word >> (cpu % 64)) & 1;
}

/*
 * Tracepoint signatures that changed, and why the handlers still work:
 * - sched_switch gained `prev_state` as a 4th argument in 5.18
 *   (fa2c3254d7cf): the handlers read only the first three.
 * - sched_process_exit gained `group_dead` in 6.16: only `p` is read.
 * - The stop class accounts no runtime through sched_stat_runtime before 6.8,
 *   which is why stopper time is measured on sched_switch instead.
 * - struct cpu_stopper has `caller`/`fn` only since 5.11 and is a static
 *   per-CPU variable (its address needs CONFIG_KALLSYMS_ALL): the stopper's
 *   work is inferred from who woke it and, where fentry loads, from the work
 *   function itself, never from that struct.
 */

#endif /* MIGWATCH_CORE_FIXES_BPF_H */
