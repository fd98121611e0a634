/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every kernel-version difference the BPF programs depend on, in one place.
 * vmlinux.h describes the newest layout; the ___flavour structs below describe
 * older ones, and bpf_core_field_exists() picks the right one at load time on
 * the target kernel. Each shim names the version and the change.
 *
 * Each reader takes `btf`: true in tp_btf and fentry programs, whose task
 * pointers the verifier knows, so that a field is one direct load; false in
 * the raw_tp twins, which read through bpf_probe_read_kernel(). Every caller
 * passes a constant, so the other branch is compiled out.
 */
#ifndef MIGWATCH_CORE_FIXES_BPF_H
#define MIGWATCH_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/* src->field: a direct load with btf, a CO-RE probe read without. */
#define MW_READ(btf, src, field) ((btf) ? (src)->field : BPF_CORE_READ(src, field))

/* Linux 5.14 (2f064a59a11f "sched: Change task_struct::state"):
 * `long state` became `unsigned int __state`. */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_state(struct task_struct *t, const bool btf)
{
	if (bpf_core_field_exists(t->__state))
		return MW_READ(btf, t, __state);
	return (__u32)MW_READ(btf, (struct task_struct___pre_5_14 *)t, state);
}

/* Linux 5.16 (bcf9033e5449 "sched: move CPU field back into thread_info if
 * THREAD_INFO_IN_TASK"): task_struct::cpu moved into thread_info::cpu. */
struct task_struct___pre_5_16 {
	unsigned int cpu;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_cpu(struct task_struct *t, const bool btf)
{
	if (bpf_core_field_exists(t->thread_info.cpu))
		return MW_READ(btf, t, thread_info.cpu);
	return MW_READ(btf, (struct task_struct___pre_5_16 *)t, cpu);
}

/* Linux 5.3 (3bd3706251ee "sched/core: Provide a pointer to the valid CPU
 * mask"): cpus_allowed became cpus_mask (cpus_ptr points at it, or at a
 * single CPU while migration is disabled: the mask an affinity change
 * writes is cpus_mask). Only 5.10 and later are supported, but the shim
 * costs nothing. */
struct task_struct___pre_5_3 {
	cpumask_t cpus_allowed;
} __attribute__((preserve_access_index));

/* Whether `cpu` is in the task's requested CPU mask. The first 64 CPUs are a
 * direct load; beyond them the word's offset is variable, which only a probe
 * read may have. */
static __always_inline bool task_allows_cpu(struct task_struct *t, __u32 cpu, const bool btf)
{
	unsigned long word = 0;
	__u32 idx = (cpu / 64) & 127; /* NR_CPUS <= 8192 */

	if (bpf_core_field_exists(t->cpus_mask)) {
		if (btf && idx == 0)
			word = t->cpus_mask.bits[0];
		else
			bpf_core_read(&word, sizeof(word), &t->cpus_mask.bits[idx]);
	} else {
		bpf_core_read(&word, sizeof(word),
			      &((struct task_struct___pre_5_3 *)t)->cpus_allowed.bits[idx]);
	}
	return (word >> (cpu % 64)) & 1;
}

/* in_execve is set from the start of execve() to its end (bprm_execve), so
 * it covers sched_exec(), the balancing that moves an exec'ing task. It is a
 * bitfield in every supported kernel (5.10 to 6.18); should a kernel drop it,
 * exec moves are counted as `other`. */
static __always_inline bool task_in_execve(struct task_struct *t, const bool btf)
{
	if (!bpf_core_field_exists(t->in_execve))
		return false;
	if (btf)
		return BPF_CORE_READ_BITFIELD(t, in_execve);
	return BPF_CORE_READ_BITFIELD_PROBED(t, in_execve);
}

/*
 * Whether the CPU runs a hard or soft interrupt, from preempt_count(), which
 * x86 keeps in a per-CPU variable: `__preempt_count` up to 6.1 and again
 * since 6.15, `pcpu_hot.preempt_count` from 6.2 ("x86/percpu: Move
 * preempt_count next to current_task") to 6.14. A typed __ksym would find
 * it only where kallsyms lists data symbols (CONFIG_KALLSYMS_ALL), which not
 * every kernel has. Instead: kernels that describe per-CPU variables in
 * their BTF (pahole 1.18+; Debian's 6.1 and later) give the offsets of both
 * that variable and `runqueues` in the per-CPU section, so a CPU's
 * preempt_count lies at a fixed distance from its runqueue, whose address
 * every task's se.cfs_rq->rq holds (CONFIG_FAIR_GROUP_SCHED). User space
 * computes the distance (preempt_count_from_rq); the address is found once
 * per CPU and read with one probe read after that. Where the distance is
 * unknown (Debian's 5.10 has no per-CPU BTF), user space attaches the
 * softirq hooks, which flag SCHED_SOFTIRQ, and hard interrupts go unseen.
 */
#define MW_SOFTIRQ_OFFSET 0x00000100 /* serving a softirq (not: bh disabled) */
#define MW_HARDIRQ_MASK 0x000f0000
#define MW_NMI_MASK 0x00f00000

enum mw_context {
	MW_CTX_TASK = 0,
	MW_CTX_SOFTIRQ,
	MW_CTX_HARDIRQ, /* hard interrupt or NMI */
	MW_CTX_UNKNOWN, /* this kernel does not say */
};

/* `*distance`: this CPU's preempt_count minus its runqueue (0: unknown), a
 * global read only until `*addr`, the address cached per CPU, is found. */
static __always_inline enum mw_context cpu_context(const volatile __s64 *distance, __u64 *addr)
{
	int pc;

	if (!*addr) {
		struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
		struct rq *rq;

		if (!*distance || !bpf_core_field_exists(((struct cfs_rq *)0)->rq))
			return MW_CTX_UNKNOWN;
		rq = BPF_CORE_READ(cur, se.cfs_rq, rq);
		if (!rq || BPF_CORE_READ(rq, cpu) != bpf_get_smp_processor_id())
			return MW_CTX_UNKNOWN;
		*addr = (__u64)rq + *distance;
	}
	if (bpf_probe_read_kernel(&pc, sizeof(pc), (const void *)*addr))
		return MW_CTX_UNKNOWN;
	if (pc & (MW_HARDIRQ_MASK | MW_NMI_MASK))
		return MW_CTX_HARDIRQ;
	if (pc & MW_SOFTIRQ_OFFSET)
		return MW_CTX_SOFTIRQ;
	return MW_CTX_TASK;
}

/*
 * Tracepoint signatures that changed, and why the handlers still work:
 * - sched_switch gained `prev_state` as a 4th argument in 5.18
 *   (fa2c3254d7cf): the handlers read only the first three, and the
 *   task's own state where they need it.
 * - sched_process_exit gained `group_dead` in 6.16: only `p` is read.
 * - The stop class updates se.sum_exec_runtime in put_prev_task_stop(),
 *   which runs before trace_sched_switch() in every supported version: at
 *   the switch that takes a stopper off its CPU, its runtime already
 *   includes that run. Stopper time is taken from there, without a clock
 *   read in the programs.
 * - struct cpu_stopper has `caller`/`fn` only since 5.11 and is a static
 *   per-CPU variable (its address needs CONFIG_KALLSYMS_ALL): the stopper's
 *   work is inferred from who woke it and, where fentry loads, from the work
 *   function itself, never from that struct.
 * - Before 5.11 a dying CPU is emptied by migrate_tasks() after it is marked
 *   offline, and tracepoints do not fire on an offline CPU: only the fexit
 *   on move_queued_task() sees those moves (user space attaches it only
 *   where __balance_push_cpu_stop, its 5.11 replacement, is absent).
 */

/* CONFIG_SCHED_INFO: sched_info exists only with it (Debian sets it). */
static __always_inline __u64 task_run_delay(struct task_struct *t)
{
	if (!bpf_core_field_exists(t->sched_info))
		return 0;
	return BPF_CORE_READ(t, sched_info.run_delay);
}

#endif /* MIGWATCH_CORE_FIXES_BPF_H */
