/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One migration: which path made it, and counting it per CPU, node pair,
 * process and reason. This runs for every migration the kernel makes.
 */
#ifndef MIGWATCH_CLASSIFY_BPF_H
#define MIGWATCH_CLASSIFY_BPF_H

#include "stopper.bpf.h"

/* The key of `current`'s process, on any kernel. */
static __always_inline void current_process_key(struct mw_process_key *key, struct cpu_state *st)
{
	if (current_task_is_btf())
		process_key_cached(bpf_get_current_task_btf(), key, st, true);
	else
		process_key_cached(current_task(), key, st, false);
}

/* A move made while this CPU's stopper is running, by the stopper's work. */
static __always_inline __u32 classify_stopper_move(struct event *ev, struct task_struct *p, __u32 src,
						   const bool btf)
{
	struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);
	__u32 tid = MW_READ(btf, p, pid), reason;

	if (!task_allows_cpu(p, src, btf))
		return MW_REASON_AFFINITY;
	if (req && tid && (tid == req->numa_tids[0] || tid == req->numa_tids[1]))
		return MW_REASON_NUMA;
	if (task_in_execve(p, btf))
		return MW_REASON_EXEC;
	/* multi_cpu_stop moves nothing of its own: NUMA swaps and teardowns
	 * are named by the waker's context. */
	if (ev->st->fentry_work != MW_WORK_STOP_MACHINE &&
	    (reason = mw_work_reason(ev->st->fentry_work)) != MW_REASON_OTHER)
		return reason;
	if (req && (reason = mw_work_reason(req->work)) != MW_REASON_OTHER)
		return reason;
	if (MW_READ(btf, p, prio) < MAX_RT_PRIO)
		return MW_REASON_RT_PUSH_PULL;
	return MW_REASON_OTHER;
}

/*
 * Decision order, first match wins:
 *  1. p is TASK_WAKING: try_to_wake_up() placed it            -> wakeup
 *  2. its source CPU is being torn down                       -> hotplug
 *  3. this CPU's stopper is running: by the stopper's work
 *     (classify_stopper_move above)
 *  4. p is RT/DL (prio < 100)                                 -> rt_push_pull
 *  5. in a softirq: periodic or nohz idle balancing            -> load_balance
 *  6. pulled to this CPU by a task that is blocking, or idle  -> load_balance
 *  7. its source CPU is no longer allowed: affine_move_task() moved it
 *     while queued, in the caller's context                     -> affinity
 *     (a task the balancer pulls first is the balancer's move: 5, 6)
 *  8. p is in execve()                                         -> exec
 *  9. anything else                                           -> other
 * The common case, a wakeup, costs one load.
 */
static __always_inline __u32 classify_migration(struct event *ev, struct task_struct *p, __u32 src,
						 __u32 dst, const bool btf)
{
	if (task_state(p, btf) & TASK_WAKING)
		return MW_REASON_WAKEUP;
	if (cpu_in_teardown(src))
		return MW_REASON_HOTPLUG;
	if (ev->in_stopper)
		return classify_stopper_move(ev, p, src, btf);
	if (MW_READ(btf, p, prio) < MAX_RT_PRIO)
		return MW_REASON_RT_PUSH_PULL;
	if (event_context(ev) == MW_CTX_SOFTIRQ)
		return MW_REASON_LOAD_BALANCE;
	if (dst == ev->cpu && current_idle_or_blocking())
		return MW_REASON_LOAD_BALANCE;
	if (!task_allows_cpu(p, src, btf))
		return MW_REASON_AFFINITY;
	if (task_in_execve(p, btf))
		return MW_REASON_EXEC;
	return MW_REASON_OTHER;
}

/* An affinity change forced p off its CPU: charged to whoever asked, the
 * task that woke this CPU's stopper for it (when the run is charged) or,
 * outside the stopper, the task running the change (affine_move_task()
 * moving a queued task: task context, classify_migration() rule 7), or
 * the kernel for a move from interrupt context. A task
 * that takes its own CPU away sleeps while the stopper retargets it and
 * moves when the stopper wakes it: that wakeup is the change too. `moved` is p's process entry, if it has been looked up:
 * a process that moves its own threads is charged there. */
static __always_inline void count_affinity_change(struct event *ev, struct task_struct *p, __u32 src,
						  __u32 reason, const struct mw_process_key *moved_key,
						  struct mw_process_stats *moved, const bool btf)
{
	struct mw_process_stats *ps;
	struct mw_process_key key = {};

	if (reason == MW_REASON_WAKEUP) {
		if (!ev->in_stopper || task_allows_cpu(p, src, btf))
			return;
	} else if (reason != MW_REASON_AFFINITY) {
		return;
	}
	ev->cc->affinity_changes++;
	if (ev->in_stopper) {
		charge_run_affinity_change(ev);
		return;
	}
	/* An interrupt that moved p did so for the kernel, not for the task it
	 * interrupted; a stopper whose run began unseen, for its requester. */
	if (in_interrupt(event_context(ev))) {
		struct mw_process_stats init = {.flags = MW_TASK_KTHREAD};

		ps = process_entry(&key, &init, ev); /* key: MW_KERNEL_TGID */
	} else if (current_is_stopper(ev)) {
		struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);

		ps = requester_entry(req, req ? &req->requester : NULL, ev);
	} else {
		current_process_key(&key, ev->st);
		if (moved && same_process(&key, moved_key))
			ps = moved;
		else
			ps = current_task_is_btf() ? process_of_task(bpf_get_current_task_btf(), &key, ev)
						   : process_of_task(current_task(), &key, ev);
	}
	if (ps)
		add(&ps->affinity_changes, 1);
}

/*
 * The first move of a stopper run is added to its process's entry when the
 * run ends (stopper.bpf.h, settle_deferred_move), by the lookup of that
 * entry the run's charging makes anyway: an affinity storm's every move is
 * such a move, and the lookup is most of its cost. Not for moves whose
 * count must be in place before the run ends: those of an exiting thread
 * (exited_migrations), at an exec (the exec record carries the counts) and
 * off a dying CPU (the run may end untraced). Only in runs seen to begin
 * (event_from_slot), whose end is charged: at the stopper's switch out, at
 * its next switch in if that was not traced, or by the control CPU if this
 * CPU died meanwhile (handle_cpuhp_enter). False if the move must be
 * counted now.
 */
static __always_inline bool defer_stopper_move(struct event *ev, struct task_struct *p,
					       const struct mw_process_key *key, __u32 reason, bool exiting)
{
	struct mw_stopper_request *req;

	if (ev->st->run_moves || exiting || reason == MW_REASON_EXEC || reason == MW_REASON_HOTPLUG)
		return false;
	req = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);
	if (!req || req->deferred.task)
		return false;
	req->deferred.process = *key;
	req->deferred.reason = reason;
	req->deferred.counted = reason != MW_REASON_WAKEUP || count_wakeups;
	req->deferred.task = (__u64)p;
	req->deferred.changes += 2;
	return true;
}

/*
 * An affinity move made outside the stopper for the process that moves
 * (affine_move_task() moving a queued thread of the caller's own process:
 * a storm whose target is not running). Both its counts go to this CPU's
 * held charges, as a stopper run's do (abi.h, mw_pending_charges): plain
 * adds on the CPU's own cache line, where the entry would cost a hash
 * lookup and two atomic adds. Every migration is made with the runqueue
 * or pi lock held and interrupts off, as the stopper's switch is: nothing
 * else on this CPU adds to the charges meanwhile. False if the move is to
 * be counted in the entry.
 */
static __always_inline bool hold_own_affinity_move(struct event *ev, struct task_struct *p,
						   const struct mw_process_key *key)
{
	struct mw_process_key requester = {};
	struct mw_stopper_request *req;
	struct mw_pending_charges *held;

	if (in_interrupt(event_context(ev)) || current_is_stopper(ev))
		return false;
	current_process_key(&requester, ev->st);
	if (!same_process(&requester, key))
		return false;
	req = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);
	if (!req)
		return false;
	held = &req->charges;
	if (!held->held || !same_process(&held->process, key)) {
		/* The first move of a streak creates the entry, named from p. */
		if (!process_of_task(p, key, ev) || !bpf_map_lookup_elem(&process_stats, key))
			return false;
		flush_charges(req, ev);
		held->process = *key;
		held->held = 1;
	}
	held->counts.migrations[MW_REASON_AFFINITY]++;
	held->counts.affinity_changes++;
	ev->cc->affinity_changes++;
	return true;
}

static __always_inline void count_migration(struct event *ev, struct task_struct *p, __u32 src, __u32 dst,
					    __u32 classified, const bool btf)
{
	const __u64 reason = bounded_index(classified, MW_REASON_COUNT, MW_REASON_OTHER);
	const bool stopper_run = ev->in_stopper;
	/* count_wakeups (a global) is read last, so that the common path
	 * never reads it. */
	const bool exiting = (MW_READ(btf, p, flags) & PF_EXITING) && !count_wakeups;
	const bool traced = trace_on & MW_TRACE_BIT(MW_TRACE_MIGRATION);
	struct mw_process_stats *ps = NULL;
	struct mw_process_key key = {};
	struct mw_cpu_moves *cm;
	bool deferred = false, held = false;

	ev->cc->migrations[reason]++;
	/* The side of the move on this CPU is counted beside the line above:
	 * another map's value is a cache line only the moves touch, which cost
	 * a wakeup migration about 60 ns under ping-pong in the bench. */
	if (src == ev->cpu)
		ev->cc->moves_out_here++;
	else if ((cm = bpf_map_lookup_elem(&cpu_moves, &src)))
		cm->out++;
	if (dst == ev->cpu)
		ev->cc->moves_in_here++;
	else if ((cm = bpf_map_lookup_elem(&cpu_moves, &dst)))
		cm->in++;
	if (nr_nodes > 1) {
		__u32 *from = bpf_map_lookup_elem(&cpu_nodes, &src), *to = bpf_map_lookup_elem(&cpu_nodes, &dst);
		__u32 idx = from && to ? *from * nr_nodes + *to : 0;
		__u64 *nm = bpf_map_lookup_elem(&node_moves, &idx);

		if (nm)
			(*nm)++;
	}

	/* The process entry, where needed: wakeups are the kernel's own
	 * per-thread count (abi.h), read by the task iterator. */
	if (reason != MW_REASON_WAKEUP || exiting || stopper_run || traced || count_wakeups) {
		process_key_cached(p, &key, ev->st, btf);
		deferred = stopper_run && defer_stopper_move(ev, p, &key, reason, exiting);
		held = !stopper_run && reason == MW_REASON_AFFINITY && !exiting &&
		       hold_own_affinity_move(ev, p, &key);
		if (!deferred && !held)
			ps = process_of_task(p, &key, ev);
	}
	if (ps && (reason != MW_REASON_WAKEUP || count_wakeups))
		add(&ps->migrations[reason], 1);
	if (exiting)
		count_move_after_exit(p, ps, btf);
	/* The stopper's time is charged to the process of its first move. */
	if (stopper_run && !ev->st->run_moves++) {
		ev->st->run_reason = reason;
		ev->st->run_moved = key;
		ev->st->run_moved_deferred = deferred;
	}
	if (!held)
		count_affinity_change(ev, p, src, reason, &key, ps, btf);
	if (traced)
		emit_migration(ev, p, &key, src, dst, reason, btf);
}

static __always_inline int handle_migrate(struct task_struct *p, int dest_cpu, const bool btf)
{
	__u32 src = task_cpu(p, btf), dst = dest_cpu;
	struct event ev;

	if (!event_open(&ev))
		return 0;
	ev.st->move_traced = 1;
	/* The tracepoint fires before set_task_cpu() checks for a change. */
	if (src == dst) {
		ev.cc->same_cpu_events++;
		return 0;
	}
	count_migration(&ev, p, src, dst, classify_migration(&ev, p, src, dst, btf), btf);
	return 0;
}

/* The fexit twin of enter_move_queued_task() (5.10): a move the tracepoint
 * did not see was made on a CPU already marked offline. */
static __always_inline int exit_move_queued_task(struct rq *rq, struct task_struct *p, int new_cpu)
{
	__u32 src = BPF_CORE_READ(rq, cpu);
	struct event ev;

	if (!event_open(&ev))
		return 0;
	ev.st->in_move_queued = 0;
	if (!ev.st->move_traced && src != (__u32)new_cpu)
		count_migration(&ev, p, src, new_cpu, MW_REASON_HOTPLUG, true);
	return 0;
}

#endif /* MIGWATCH_CLASSIFY_BPF_H */
