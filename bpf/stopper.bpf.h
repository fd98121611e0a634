/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The migration/N stopper threads: who woke one and in what context, what
 * its work was, and what each on-CPU run cost and whom it is charged to.
 * Also the two announcements of stopper work that come before the wakeup:
 * NUMA balancing's tracepoints and the CPU hotplug steps.
 */
#ifndef MIGWATCH_STOPPER_BPF_H
#define MIGWATCH_STOPPER_BPF_H

#include "tasks.bpf.h"

/* A CPU counts as going offline for this long after its last teardown step;
 * the pushes and stopper runs of one teardown happen within milliseconds. */
#define HOTPLUG_WINDOW_NS (500ULL * 1000 * 1000)
/* A NUMA request wakes the stopper within microseconds of being traced;
 * older announcements are stale (the move was cancelled). */
#define NUMA_ANNOUNCE_TTL_NS (100ULL * 1000 * 1000)

/* migration/N: a kernel thread named "migration/" + digits. Only for CPUs
 * whose stopper user space did not know at start (one that comes online
 * for the first time later): checked once per such CPU. */
static __always_inline bool is_stopper_task(struct task_struct *t)
{
	char comm[MW_COMM_LEN];

	if (!(BPF_CORE_READ(t, flags) & PF_KTHREAD))
		return false;
	BPF_CORE_READ_INTO(&comm, t, comm);
	return comm[0] == 'm' && comm[1] == 'i' && comm[2] == 'g' && comm[3] == 'r' &&
	       comm[4] == 'a' && comm[5] == 't' && comm[6] == 'i' && comm[7] == 'o' &&
	       comm[8] == 'n' && comm[9] == '/';
}

/* ---- The first move of a run, counted at its end ------------------------------ */

/* Adds a stopper run's pending move (classify.bpf.h, defer_stopper_move) to
 * its process's entry (`known`, if the caller has it), created if new, and
 * returns that entry; NULL if nothing was pending. The moved task is read
 * only to name a new entry: it cannot have been freed, since this CPU has
 * not passed a quiescent state since the move, except after a switch out
 * that was never traced, where the probe read may at worst name a new
 * entry wrongly, never fault. */
static __noinline struct mw_process_stats *settle_deferred_move(struct mw_stopper_request *req,
								struct mw_process_stats *known, struct event *ev)
{
	struct task_struct *moved = (struct task_struct *)req->deferred.task;
	struct mw_process_stats *ps;
	__u64 reason;

	if (!moved)
		return NULL;
	ps = known ? known : process_of_task(moved, &req->deferred.process, ev);
	reason = bounded_index(req->deferred.reason, MW_REASON_COUNT, MW_REASON_OTHER);
	/* Odd from before the entry has it to after it is cleared here
	 * (abi.h, MW_SETTLING). Stores leave in program order on x86; the
	 * barriers keep the compiler's order the same. */
	req->deferred.changes++;
	barrier();
	if (ps && req->deferred.counted)
		add(&ps->migrations[reason], 1);
	req->deferred.task = 0;
	barrier();
	req->deferred.changes++;
	return ps;
}

/* ---- Charges held on the stopper's CPU (abi.h, mw_pending_charges) ------------ */

/* Adds this CPU's held charges to their process's entry and lets the
 * process go. The entry exists while it is held; should it be gone, a new
 * one (or the overflow entry) takes the counts, so that none is lost. */
static __noinline void flush_charges(struct mw_stopper_request *req, struct event *ev)
{
	struct mw_pending_charges *held = &req->charges;
	struct mw_process_stats init = {}, *ps;

	if (!held->held)
		return;
	ps = process_entry(&held->process, &init, ev);
	held->flushes++; /* odd until cleared below (abi.h, MW_SETTLING) */
	barrier();
	/* Without a test per counter: each would double the paths the
	 * verifier walks. */
	if (ps) {
		for (int r = 0; r < MW_REASON_COUNT; r++)
			add(&ps->migrations[r], held->counts.migrations[r]);
		add(&ps->stopper_moved_ns, held->counts.stopper_moved_ns);
		add(&ps->stopper_preempted_ns, held->counts.stopper_preempted_ns);
		add(&ps->stopper_requested_ns, held->counts.stopper_requested_ns);
		add(&ps->stopper_requested_runs, held->counts.stopper_requested_runs);
		add(&ps->affinity_changes, held->counts.affinity_changes);
	}
	__builtin_memset(&held->counts, 0, sizeof(held->counts));
	held->held = 0;
	barrier();
	held->flushes++;
}

/* Adds a run's pending move to the held counts of its process: cleared
 * first, so that a reading in between misses it rather than counting it
 * twice (abi.h, mw_stopper_request). */
static __always_inline void settle_deferred_move_held(struct mw_stopper_request *req, struct mw_process_stats *held)
{
	__u64 reason = bounded_index(req->deferred.reason, MW_REASON_COUNT, MW_REASON_OTHER);
	__u32 counted = req->deferred.counted;

	req->deferred.task = 0;
	req->deferred.changes += 2;
	barrier(); /* as in settle_deferred_move */
	if (counted)
		held->migrations[reason]++;
}

/* ---- CPU hotplug ---------------------------------------------------------- */

/* Whether any CPU took a teardown step lately, as marked in the entry of
 * the stopper being woken; the clock is read only after one did, and the
 * mark is dropped once it is old. */
static __always_inline bool teardown_recent(struct mw_stopper_request *req, __u64 *now)
{
	__u64 last = req->any_teardown_ns;

	if (!last)
		return false;
	*now = bpf_ktime_get_ns();
	if (*now - last < HOTPLUG_WINDOW_NS)
		return true;
	/* No compare-and-swap: 5.10 has only atomic add. A teardown step that
	 * writes its time between these two lines is lost to this mark, and
	 * its CPU's own mark still says it. */
	if (req->any_teardown_ns == last)
		req->any_teardown_ns = 0;
	return false;
}

/* Whether `cpu` is going offline. The clock is read only while it is marked. */
static __always_inline bool cpu_in_teardown(__u32 cpu)
{
	struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &cpu);

	return req && req->teardown_ns && bpf_ktime_get_ns() - req->teardown_ns < HOTPLUG_WINDOW_NS;
}

/* A teardown step marks every CPU's entry: its stop_machine() wakes them all.
 * A global function, which the verifier walks once, not once per path of
 * its caller: its loop walks every possible CPU. */
__noinline int mark_teardown_everywhere(__u64 now)
{
	for (__u32 cpu = 0; cpu < MW_MAX_CPUS; cpu++) {
		struct mw_stopper_request *req;
		__u32 index = cpu;

		if (cpu >= possible_cpus)
			break;
		req = bpf_map_lookup_elem(&stopper_requests, &index);
		if (req)
			req->any_teardown_ns = now;
	}
	return 0;
}

/* A CPU that died in the middle of a stopper run (take_cpu_down() is stopper
 * work) never traces the run's end: the control CPU settles its pending
 * move, and adds the charges it held to their entry, in the teardown steps
 * after the death, below CPUHP_TEARDOWN_CPU. */
static __always_inline void settle_dead_cpu(unsigned int cpu, int idx)
{
	struct mw_stopper_request *req;
	struct event ev;

	if (!bpf_core_enum_value_exists(enum cpuhp_state, CPUHP_TEARDOWN_CPU) ||
	    idx >= bpf_core_enum_value(enum cpuhp_state, CPUHP_TEARDOWN_CPU) || cpu == bpf_get_smp_processor_id())
		return;
	req = bpf_map_lookup_elem(&stopper_requests, &cpu);
	if (!req || !event_open(&ev))
		return;
	if (req->deferred.task)
		settle_deferred_move(req, NULL, &ev);
	flush_charges(req, &ev);
}

static __always_inline int handle_cpuhp_enter(unsigned int cpu, int target, int idx)
{
	struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &cpu);

	if (target < idx) {
		__u64 now = bpf_ktime_get_ns();

		settle_dead_cpu(cpu, idx);

		if (req)
			req->teardown_ns = now;
		mark_teardown_everywhere(now);
	} else if (req) {
		req->teardown_ns = 0; /* coming back up */
	}
	return 0;
}

/* ---- NUMA balancing --------------------------------------------------------- */

/* sched_move_numa and sched_swap_numa fire in the task that then wakes the
 * stopper(s) on this CPU: remember which tasks its request moves. */
static __always_inline int announce_numa(struct task_struct *a, struct task_struct *b, const bool btf)
{
	struct cpu_slot *slot = this_cpu_slot();
	struct cpu_state *st;

	if (!slot)
		return 0;
	st = &slot->state;
	st->numa_requester = (__u32)bpf_get_current_pid_tgid();
	st->numa_tids[0] = a ? MW_READ(btf, a, pid) : 0;
	st->numa_tids[1] = b ? MW_READ(btf, b, pid) : 0;
	st->numa_ns = bpf_ktime_get_ns();
	return 0;
}

/* ---- Who woke a stopper ------------------------------------------------------ */

/* Writes `value` to `field` of a stopper request only if it differs: a
 * storm's wakeups by one task then leave the request's cache line shared
 * by the waker's CPU and the stopper's (abi.h, mw_stopper_request). */
#define SET_IF_CHANGED(field, value)              \
	do {                                      \
		__typeof__(field) value_ = (value); \
		if ((field) != value_)            \
			(field) = value_;         \
	} while (0)

/* The waker's context names the work where it can: the balancer queues
 * active balancing from SCHED_SOFTIRQ, the watchdog its check from a timer
 * interrupt, exec balancing runs inside execve(), NUMA balancing announced
 * itself, a teardown is under way. An affinity change says nothing here:
 * its moves (the source CPU no longer allowed) name it during the run.
 * Returns the work the waker's task names (exec or none). */
static __always_inline __u32 note_requester(struct mw_stopper_request *req, struct task_struct *cur,
					    struct cpu_state *st, const bool btf)
{
	__u32 work = task_in_execve(cur, btf) ? MW_WORK_EXEC : MW_WORK_NONE;
	struct mw_process_key key;

	process_key_cached(cur, &key, st, btf);
	/* A storm's flipper asks again and again: its name and kind are read
	 * when the requester changes (they name a new process entry only). */
	if (!same_process(&key, &req->requester)) {
		req->requester = key;
		req->requester_flags = task_flags(cur, btf);
		BPF_CORE_READ_INTO(&req->requester_comm, cur, group_leader, comm);
	}
	return work;
}

static __always_inline void note_stopper_request(struct mw_stopper_request *req, struct event *ev)
{
	enum mw_context ctx = event_context(ev);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u32 work, numa_tids[2] = {};
	__u64 now;

	if (ctx == MW_CTX_SOFTIRQ || ctx == MW_CTX_HARDIRQ) {
		work = ctx == MW_CTX_SOFTIRQ ? MW_WORK_ACTIVE_BALANCE : MW_WORK_WATCHDOG;
		goto write;
	}
	/* A stopper that hands its work on to another CPU's (the task moved
	 * meanwhile) passes on who asked for it. */
	if (current_is_stopper(ev)) {
		struct mw_stopper_request *own = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);

		if (own && own != req) {
			work = own->work;
			req->requester_pid = own->requester_pid;
			req->requester_flags = own->requester_flags;
			req->requester = own->requester;
			__builtin_memcpy(req->requester_comm, own->requester_comm, MW_COMM_LEN);
			goto write;
		}
	}
	if (current_task_is_btf())
		work = note_requester(req, bpf_get_current_task_btf(), ev->st, true);
	else
		work = note_requester(req, current_task(), ev->st, false);
	if (work == MW_WORK_NONE && ev->st->numa_requester == tid && tid) {
		now = bpf_ktime_get_ns();
		if (now - ev->st->numa_ns < NUMA_ANNOUNCE_TTL_NS) {
			work = MW_WORK_NUMA;
			numa_tids[0] = ev->st->numa_tids[0];
			numa_tids[1] = ev->st->numa_tids[1];
		}
	}
	if (work == MW_WORK_NONE && teardown_recent(req, &now))
		work = MW_WORK_HOTPLUG;
	SET_IF_CHANGED(req->requester_pid, tid);
write:
	SET_IF_CHANGED(req->work, work);
	SET_IF_CHANGED(req->numa_tids[0], numa_tids[0]);
	SET_IF_CHANGED(req->numa_tids[1], numa_tids[1]);
}

/* A stopper is woken: note who asked and in what context. A function of its
 * own, given the woken task's CPU and tid as the wakeup program read them
 * (direct loads where BTF allows): the program's common path then uses few
 * registers and its prologue saves none (the JIT saves the callee-saved
 * registers a function uses anywhere, on every run). The task itself is
 * read only to recognise a stopper user space did not know. */
static __noinline int note_stopper_wakeup(__u32 cpu, __u32 pid, __u64 task)
{
	struct mw_stopper_request *req;
	struct event ev;

	req = bpf_map_lookup_elem(&stopper_requests, &cpu);
	if (!req)
		return 0;
	if (pid != req->stopper_pid) {
		if (req->stopper_pid || !is_stopper_task((struct task_struct *)task))
			return 0;
		req->stopper_pid = pid;
	}
	if (event_open(&ev))
		note_stopper_request(req, &ev);
	return 0;
}

/* Every wakeup passes here: all but stopper-priority kernel threads leave
 * at the first load. */
static __always_inline int handle_waking(struct task_struct *p, const bool btf)
{
	if (!is_stopper_prio(p, btf))
		return 0;
	return note_stopper_wakeup(task_cpu(p, btf), MW_READ(btf, p, pid), (__u64)p);
}

/* ---- What a run cost, and whom it is charged to ------------------------------ */

static __always_inline __u32 resolve_run_work(const struct cpu_state *st, const struct mw_stopper_request *req)
{
	__u32 asked = req ? req->work : MW_WORK_NONE;
	__u32 named = st->fentry_work, moved;

	/* migrate_swap() runs multi_cpu_stop too, and so does a CPU teardown:
	 * the waker's NUMA or hotplug context names it better. */
	if (named == MW_WORK_STOP_MACHINE && (asked == MW_WORK_NUMA || asked == MW_WORK_HOTPLUG))
		return asked;
	if (named != MW_WORK_NONE)
		return named;
	/* migration_cpu_stop serves exec, NUMA and affinity changes alike. */
	if (st->in_migration_cpu_stop)
		return asked == MW_WORK_EXEC || asked == MW_WORK_NUMA || asked == MW_WORK_HOTPLUG ? asked
											     : MW_WORK_AFFINITY;
	if (st->run_moves && (moved = mw_reason_work(st->run_reason)) != MW_WORK_NONE)
		return moved;
	return asked != MW_WORK_NONE ? asked : MW_WORK_OTHER;
}

/* The run for a trace session (storm capture): only while tracing is on, so
 * the clock is read only then. */
static __noinline void emit_stopper_run(struct event *ev, const struct mw_stopper_request *req, __u32 work,
					 const struct mw_process_key *requester, __u64 dur)
{
	struct mw_stopper_run_event *e = bpf_ringbuf_reserve(&trace_events, sizeof(*e), 0);
	struct task_struct *victim;

	if (!e) {
		ev->cc->drops[MW_DROP_TRACE_RINGBUF]++;
		return;
	}
	e->kind = MW_TRACE_STOPPER_RUN;
	e->cpu = ev->cpu;
	e->end_ns = bpf_ktime_get_ns();
	e->dur_ns = dur;
	e->work = work;
	e->requester_tgid = requester ? requester->tgid : MW_KERNEL_TGID;
	/* The task the run took the CPU from, if it could still run (read only
	 * while tracing; the switch in keeps the task, not its tid). */
	victim = ev->st->run_victim.tgid ? (struct task_struct *)ev->st->run_victim_task : NULL;
	e->victim_pid = victim ? BPF_CORE_READ(victim, pid) : 0;
	if (req && requester && requester->tgid != MW_KERNEL_TGID) {
		e->requester_pid = req->requester_pid;
		__builtin_memcpy(e->requester_comm, req->requester_comm, MW_COMM_LEN);
	} else {
		e->requester_pid = MW_KERNEL_TGID;
		__builtin_memset(e->requester_comm, 0, MW_COMM_LEN);
	}
	bpf_ringbuf_submit(e, 0);
}

/* Who asked for a run: NULL for the kernel. The balancer and the watchdog
 * queue work from interrupt context, whatever task the interrupt found
 * (fentry names them on kernels that hide the context). */
static __always_inline const struct mw_process_key *run_requester(const struct mw_stopper_request *req, __u64 work)
{
	return req && work != MW_WORK_ACTIVE_BALANCE && work != MW_WORK_WATCHDOG ? &req->requester : NULL;
}

/* The requester's entry, created if new (the kernel's for NULL). A frame of
 * its own for the entry's initial value: charge_stopper_run's calls nest
 * four deep, within the verifier's 512 bytes of stack for them all. */
static __noinline struct mw_process_stats *requester_entry(const struct mw_stopper_request *req,
							   const struct mw_process_key *requester, struct event *ev)
{
	struct mw_process_stats init = {.flags = MW_TASK_KTHREAD};
	struct mw_process_key kernel = {};

	if (!req || !requester)
		return process_entry(&kernel, &init, ev);
	__builtin_memcpy(init.comm, req->requester_comm, MW_COMM_LEN);
	init.flags = req->requester_flags;
	return process_entry(requester, &init, ev);
}

/* Makes this CPU's held charges hold the process of `requester` (the
 * kernel's for NULL): the previous process's go to its entry first, and
 * the new one's entry is created now, named from the request. NULL if it
 * cannot be held (the process map is full): its entry is charged then. */
static __noinline struct mw_process_stats *take_charges(struct mw_stopper_request *req,
							const struct mw_process_key *requester, struct event *ev)
{
	struct mw_pending_charges *held = &req->charges;
	struct mw_process_key key = {};

	if (requester)
		key = *requester;
	flush_charges(req, ev);
	if (!requester_entry(req, requester, ev) || !bpf_map_lookup_elem(&process_stats, &key))
		return NULL;
	held->process = key;
	held->held = 1;
	return &held->counts;
}

/* Whether the held charges hold `requester` (the kernel for NULL). */
static __always_inline bool holds(const struct mw_pending_charges *held, const struct mw_process_key *requester)
{
	return held->held && (requester ? same_process(&held->process, requester)
					: held->process.tgid == MW_KERNEL_TGID && !held->process.start_ns);
}

/* This CPU's held charges if they hold the run's requester, or made to. */
static __always_inline struct mw_process_stats *held_charges(struct mw_stopper_request *req,
							     const struct mw_process_key *requester,
							     struct event *ev)
{
	if (holds(&req->charges, requester))
		return &req->charges.counts;
	return take_charges(req, requester, ev);
}

/* An affinity change a stopper run carried out: charged to the run's
 * requester at once, where user space reads it as soon as the kernel has
 * counted the move (held until the run's end, it was missed by a reading
 * taken between the run's last move and its switch out: a reading right
 * after a storm). To this CPU's held charges when they hold the requester,
 * as in a storm after its first run; else to its entry: taking the charges
 * here would nest one call too deep for the verifier of 6.1. The run's
 * work, which names the requester, is known by its first move. */
static __always_inline void charge_run_affinity_change(struct event *ev)
{
	struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);
	const struct mw_process_key *requester =
		run_requester(req, bounded_index(resolve_run_work(ev->st, req), MW_WORK_COUNT, MW_WORK_OTHER));
	struct mw_process_stats *ps;

	if (req && holds(&req->charges, requester))
		req->charges.counts.affinity_changes++;
	else if ((ps = requester_entry(req, requester, ev)))
		add(&ps->affinity_changes, 1);
}

/* Charges one finished on-CPU interval of this CPU's stopper: to the CPU and
 * the work, to the process that asked for it, to the process whose thread it
 * moved first and to the process whose thread it preempted. Runs on the
 * stopper's own CPU. The requester's charges are held on this CPU (abi.h,
 * mw_pending_charges), and so are the moved and preempted processes' when
 * they are the requester's, as in an affinity storm; others go to their
 * entries. The preempted task is read only to name a new entry:
 * it was alive at the run's start, and a run lasts microseconds, but a run
 * whose end was not traced is charged at the next switch in, when the task
 * may be gone: the probe read may then at worst name a new entry wrongly,
 * never fault. */
static __noinline void charge_stopper_run(struct cpu_slot *slot, __u64 dur)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &cpu);
	struct mw_process_stats *ps = NULL, *moved = NULL, *victim, *held = NULL;
	const struct mw_process_key *requester;
	struct cpu_state *st;
	struct event ev;
	__u64 work;

	if (!event_from_slot(&ev, slot))
		return;
	st = ev.st;
	work = bounded_index(resolve_run_work(st, req), MW_WORK_COUNT, MW_WORK_OTHER);
	ev.cc->stopper_run_ns += dur;
	ev.cc->stopper_runs++;
	ev.cc->stopper_work_ns[work] += dur;
	ev.cc->stopper_work_runs[work]++;

	requester = run_requester(req, work);
	if (req)
		held = held_charges(req, requester, &ev);
	if (held) {
		held->stopper_requested_ns += dur;
		held->stopper_requested_runs++;
	} else if ((ps = requester_entry(req, requester, &ev))) {
		add(&ps->stopper_requested_ns, dur);
		add(&ps->stopper_requested_runs, 1);
	}
	if (st->run_moves) {
		if (held && req && same_process(&st->run_moved, &req->charges.process)) {
			if (st->run_moved_deferred)
				settle_deferred_move_held(req, held);
			held->stopper_moved_ns += dur;
		} else {
			/* A process that asked for its own threads' moves is
			 * looked up once. */
			if (ps && requester && same_process(&st->run_moved, requester))
				moved = ps;
			if (st->run_moved_deferred)
				moved = req ? settle_deferred_move(req, moved, &ev) : moved;
			else if (!moved)
				moved = bpf_map_lookup_elem(&process_stats, &st->run_moved);
			if (moved)
				add(&moved->stopper_moved_ns, dur);
		}
	}
	if (trace_on & MW_TRACE_BIT(MW_TRACE_STOPPER_RUN))
		emit_stopper_run(&ev, req, work, requester, dur);
	if (st->run_victim.tgid) {
		/* Most often the moved task itself: its entry is at hand. */
		if (held && req && same_process(&st->run_victim, &req->charges.process)) {
			held->stopper_preempted_ns += dur;
		} else {
			if (ps && requester && same_process(&st->run_victim, requester))
				victim = ps;
			else if (moved && same_process(&st->run_victim, &st->run_moved))
				victim = moved;
			else
				victim = process_of_task((struct task_struct *)st->run_victim_task, &st->run_victim,
							 &ev);
			if (victim)
				add(&victim->stopper_preempted_ns, dur);
		}
		st->run_victim.tgid = 0;
	}
	if (req) {
		SET_IF_CHANGED(req->work, MW_WORK_NONE);
		SET_IF_CHANGED(req->numa_tids[0], 0);
		SET_IF_CHANGED(req->numa_tids[1], 0);
	}
}

/* The task a stopper run takes the CPU from is its victim if it could still
 * run: preempted (the tracepoint's `preempt`), or leaving the CPU without
 * blocking (its state still TASK_RUNNING, as after a yield). A task that
 * blocks gives the CPU up anyway, and the idle task (tgid 0, like the
 * kernel key) loses nothing. */
static __always_inline void note_victim(struct cpu_state *st, struct task_struct *prev, bool preempt,
					const bool btf)
{
	st->run_victim.tgid = 0;
	if (!preempt && task_state(prev, btf) != 0)
		return;
	process_key_cached(prev, &st->run_victim, st, btf);
	st->run_victim_task = (__u64)prev;
}

/* Ends this CPU's stopper run at `runtime`, its se.sum_exec_runtime: charges
 * the time since the last charge, so that a switch the programs did not see
 * loses no time (see handle_switch), and clears the run's state for the
 * next run, whether or not its switch in is seen. */
static __always_inline void end_stopper_run(struct cpu_slot *slot, __u64 runtime)
{
	struct cpu_state *st = &slot->state;

	if (st->stopper_seen) {
		if (!st->in_stopper_run)
			slot->shared.counters.stopper_run_starts_unseen++;
		charge_stopper_run(slot, runtime - st->stopper_charged_runtime);
	}
	st->stopper_charged_runtime = runtime;
	st->stopper_seen = 1;
	st->in_stopper_run = 0;
	st->fentry_work = MW_WORK_NONE;
	st->in_migration_cpu_stop = 0;
	st->run_moves = 0;
}

/* Every context switch passes here. On the common path it reads three fields
 * of the two tasks and touches no map: only a switch from or to a task of
 * the stopper's priority looks further. The stopper's time is what the
 * scheduler charged it (se.sum_exec_runtime, updated before this
 * tracepoint), so no clock is read. Each charge is the runtime since the
 * previous one: the stopper's runtime grows only while it runs, so a switch
 * that was not traced merges two runs but loses no time. A switch out that
 * was never seen (a CPU going offline traces nothing) leaves its run to the
 * next switch in; a run whose switch in was not seen is charged at its
 * switch out, and counted (stopper_run_starts_unseen). */
static __always_inline int handle_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
					 const bool btf)
{
	const bool prev_stopper_prio = MW_READ(btf, prev, prio) == STOPPER_PRIO;
	const bool next_stopper_prio = MW_READ(btf, next, prio) == STOPPER_PRIO;
	struct cpu_slot *slot;
	struct cpu_state *st;
	__u32 next_pid;
	__u64 runtime;

	if (task_state(prev, btf) & TASK_DEAD)
		forget_dead_thread(prev, btf);
	if (!prev_stopper_prio && !next_stopper_prio)
		return 0;
	slot = this_cpu_slot();
	if (!slot)
		return 0;
	st = &slot->state;
	if (prev_stopper_prio && MW_READ(btf, prev, pid) == slot->shared.stopper_pid)
		end_stopper_run(slot, MW_READ(btf, prev, se.sum_exec_runtime));
	if (!next_stopper_prio)
		return 0;
	next_pid = MW_READ(btf, next, pid);
	if (next_pid != slot->shared.stopper_pid) {
		if (slot->shared.stopper_pid || !is_stopper_task(next))
			return 0;
		slot->shared.stopper_pid = next_pid;
	}
	runtime = MW_READ(btf, next, se.sum_exec_runtime);
	/* A run whose end was not traced (or, if untraced both ways, whose
	 * time shows): charged now, before this run's victim is noted. */
	if (st->in_stopper_run || (st->stopper_seen && runtime != st->stopper_charged_runtime))
		end_stopper_run(slot, runtime);
	note_victim(st, prev, preempt, btf);
	st->stopper_charged_runtime = runtime;
	st->stopper_seen = 1;
	st->in_stopper_run = 1;
	return 0;
}

/* ---- fentry, where the kernel allows it: the stopper's work by name --------- */

static __always_inline int name_stopper_work(__u32 work)
{
	struct cpu_slot *slot = this_cpu_slot();

	if (slot)
		slot->state.fentry_work = work;
	return 0;
}

static __always_inline int enter_migration_cpu_stop(void)
{
	struct cpu_slot *slot = this_cpu_slot();

	if (slot)
		slot->state.in_migration_cpu_stop = 1;
	return 0;
}

/* 5.10 only (see core_fixes.bpf.h): counts the moves of a dying CPU's tasks,
 * which no tracepoint sees. */
static __always_inline int enter_move_queued_task(void)
{
	struct cpu_slot *slot = this_cpu_slot();

	if (slot) {
		slot->state.in_move_queued = 1;
		slot->state.move_traced = 0;
	}
	return 0;
}

/* Kernels whose BTF hides preempt_count: SCHED_SOFTIRQ from its hooks. */
static __always_inline int handle_softirq(unsigned int vec, __u32 entering)
{
	struct cpu_slot *slot;

	if (vec != SCHED_SOFTIRQ)
		return 0;
	slot = this_cpu_slot();
	if (slot)
		slot->state.in_sched_softirq = entering;
	return 0;
}

#endif /* MIGWATCH_STOPPER_BPF_H */
