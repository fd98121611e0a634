/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-event context every handler works in: the CPU it runs on, that
 * CPU's state and counters, and who `current` is.
 */
#ifndef MIGWATCH_EVENT_BPF_H
#define MIGWATCH_EVENT_BPF_H

#include "core_fixes.bpf.h"
#include "maps.bpf.h"

#define PF_EXITING 0x00000004
#define PF_KTHREAD 0x00200000
#define TASK_DEAD 0x0080
#define TASK_WAKING 0x0200
#define MAX_RT_PRIO 100
/* Stopper threads are SCHED_FIFO 99 (sched_set_stop_task()): prio 0, which
 * only other FIFO-99 tasks share. A cheap first test on every switch. */
#define STOPPER_PRIO 0
#define SCHED_SOFTIRQ 7

struct event {
	__u32 cpu;
	bool in_stopper;	     /* current is this CPU's migration/N, in a run seen to begin */
	enum mw_context ctx;	     /* MW_CTX_UNKNOWN until event_context() */
	struct cpu_slot *slot;	     /* this CPU's */
	struct cpu_state *st;	     /* &slot->state */
	struct mw_cpu_counters *cc; /* &slot->shared.counters */
};

static __always_inline bool event_from_slot(struct event *ev, struct cpu_slot *slot)
{
	ev->cpu = bpf_get_smp_processor_id();
	ev->ctx = MW_CTX_UNKNOWN;
	ev->slot = slot;
	if (!slot)
		return false;
	ev->st = &slot->state;
	ev->cc = &slot->shared.counters;
	/* Set from the stopper's switch in to its switch out (handle_switch):
	 * no helper call to learn who `current` is. Unknown in a run whose
	 * switch in was not traced, as one that had begun when the programs
	 * were attached. */
	ev->in_stopper = slot->state.in_stopper_run;
	return true;
}

/* Whether `current` is this CPU's stopper, whether or not the run was seen
 * to begin (in_stopper): for the rare paths that must not take the stopper
 * for a requester. */
static __always_inline bool current_is_stopper(const struct event *ev)
{
	__u32 stopper = ev->slot->shared.stopper_pid;

	return ev->in_stopper || (stopper && (__u32)bpf_get_current_pid_tgid() == stopper);
}

static __always_inline bool event_open(struct event *ev)
{
	return event_from_slot(ev, this_cpu_slot());
}

/* Hard or soft interrupt, or task context; read on first use, since only
 * the rarer paths need it. Where preempt_count cannot be found (5.10),
 * SCHED_SOFTIRQ is still known from the softirq hooks and anything else
 * counts as task context. */
static __always_inline enum mw_context event_context(struct event *ev)
{
	if (ev->ctx != MW_CTX_UNKNOWN)
		return ev->ctx;
	ev->ctx = cpu_context(&preempt_count_from_rq, &ev->st->preempt_count_addr);
	if (ev->ctx == MW_CTX_UNKNOWN)
		ev->ctx = ev->st->in_sched_softirq ? MW_CTX_SOFTIRQ : MW_CTX_TASK;
	return ev->ctx;
}

/* `index` if it is below `count`, else `fallback`, in a form the verifier
 * sees bounded: clang may otherwise check a copy it then does not use. */
static __always_inline __u64 bounded_index(__u64 index, __u64 count, __u64 fallback)
{
	if (index >= count)
		index = fallback;
	asm volatile("" : "+r"(index));
	if (index >= count)
		index = fallback;
	return index;
}

static __always_inline bool in_interrupt(enum mw_context ctx)
{
	return ctx == MW_CTX_SOFTIRQ || ctx == MW_CTX_HARDIRQ;
}

/* `current` for probe reads, on any kernel. */
static __always_inline struct task_struct *current_task(void)
{
	return (struct task_struct *)bpf_get_current_task();
}

/* Whether bpf_get_current_task_btf() (5.11+) gives `current` for direct
 * loads. A constant once libbpf relocates it: on older kernels the branch
 * that calls it is dead, and the verifier drops it unread. */
static __always_inline bool current_task_is_btf(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

/* current is the idle task, or is blocking (a newidle balance pulls tasks
 * from schedule()). */
static __always_inline bool current_idle_or_blocking(void)
{
	struct task_struct *cur;

	if (current_task_is_btf()) {
		cur = bpf_get_current_task_btf();
		return cur->pid == 0 || task_state(cur, true) != 0;
	}
	cur = current_task();
	return BPF_CORE_READ(cur, pid) == 0 || task_state(cur, false) != 0;
}

/* A kernel thread of the stopper's priority. flags shares its cache line
 * with the state the scheduler has just read, prio lies in another: user
 * tasks, nearly every task a switch or wakeup sees, leave before prio. */
static __always_inline bool is_stopper_prio(struct task_struct *t, const bool btf)
{
	return (MW_READ(btf, t, flags) & PF_KTHREAD) && MW_READ(btf, t, prio) == STOPPER_PRIO;
}

static __always_inline __u32 task_flags(struct task_struct *t, const bool btf)
{
	return (MW_READ(btf, t, flags) & PF_KTHREAD) ? MW_TASK_KTHREAD : 0;
}

#endif /* MIGWATCH_EVENT_BPF_H */
