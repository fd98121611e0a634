/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Processes and the records about tasks that user space needs: per-process
 * counter entries, trace records of migrations, and the thread lifecycle
 * records (renames, execs, exits of watched threads).
 */
#ifndef MIGWATCH_TASKS_BPF_H
#define MIGWATCH_TASKS_BPF_H

#include "event.bpf.h"

static __always_inline void process_key_of(struct task_struct *t, struct mw_process_key *key, const bool btf)
{
	struct task_struct *leader = MW_READ(btf, t, group_leader);

	key->tgid = MW_READ(btf, t, tgid);
	key->pad = 0;
	key->start_ns = MW_READ(btf, leader, start_boottime);
}

/*
 * process_key_of() for the scheduler's hot paths, without reading the group
 * leader where this CPU read it last: the leader's start time shares its
 * line with its context-switch counts, which the leader writes on whatever
 * CPU it runs, so the read is often a miss (in an affinity storm, the
 * flipping leader's line moves between the CPUs on every flip). The key of
 * a leader's address holds until that task_struct is freed and the address
 * reused: every free comes after sched_process_free, which counts it in
 * task_frees, and after an RCU grace period since the last thread that
 * pointed to the leader was released, so no program still runs that read
 * the old leader's address. A key cached before the count is thus stale
 * after it, and none is cached after it from the old address. Nothing is
 * cached while the count is 0: until sched_process_free's program has run,
 * it may not be attached (a hook that fails to attach is left out), and
 * without it no key is ever cached. Only for programs that run with
 * interrupts off (the scheduler's tracepoints), so that no other program
 * nests inside an update of the key.
 */
static __always_inline void process_key_cached(struct task_struct *t, struct mw_process_key *key,
					       struct cpu_state *st, const bool btf)
{
	__u64 leader = (__u64)MW_READ(btf, t, group_leader);
	__u32 zero = 0;
	__u64 *frees = bpf_map_lookup_elem(&task_frees, &zero);
	__u64 gen = frees ? *frees : 0;

	if (gen && leader == st->leader_key.leader && gen == st->leader_key.gen) {
		key->tgid = st->leader_key.tgid;
		key->pad = 0;
		key->start_ns = st->leader_key.start_ns;
		return;
	}
	process_key_of(t, key, btf);
	if (!gen)
		return;
	st->leader_key.leader = leader;
	st->leader_key.tgid = key->tgid;
	st->leader_key.start_ns = key->start_ns;
	st->leader_key.gen = gen;
}

/* Every task_struct's free: the leader keys cached so far may name a freed
 * address. */
static __always_inline int handle_free(void)
{
	__u32 zero = 0;
	__u64 *frees = bpf_map_lookup_elem(&task_frees, &zero);

	if (frees)
		__sync_fetch_and_add(frees, 1);
	return 0;
}

static __always_inline bool same_process(const struct mw_process_key *a, const struct mw_process_key *b)
{
	return a->tgid == b->tgid && a->start_ns == b->start_ns;
}

/* The entry of `key`, created from `init` if new; the overflow entry once
 * the map is full, so that the count still lands where user space sees it. */
static __always_inline struct mw_process_stats *process_entry(const struct mw_process_key *key,
							      const struct mw_process_stats *init,
							      struct event *ev)
{
	struct mw_process_key overflow = {.tgid = MW_OVERFLOW_TGID};
	struct mw_process_stats *ps = lookup_or_init(&process_stats, key, init);

	if (ps)
		return ps;
	ev->cc->drops[MW_DROP_PROCESS_MAP_FULL]++;
	return bpf_map_lookup_elem(&process_stats, &overflow);
}

/* The entry of t's process. Its leader's name is read only on creation:
 * this runs on every migration. */
static __noinline struct mw_process_stats *new_process_of_task(struct task_struct *t,
							      const struct mw_process_key *key,
							      struct event *ev)
{
	struct mw_process_stats init = {};

	BPF_CORE_READ_INTO(&init.comm, t, group_leader, comm);
	init.flags = task_flags(t, false);
	return process_entry(key, &init, ev);
}

static __always_inline struct mw_process_stats *process_of_task(struct task_struct *t,
								const struct mw_process_key *key,
								struct event *ev)
{
	struct mw_process_stats *ps = bpf_map_lookup_elem(&process_stats, key);

	return ps ? ps : new_process_of_task(t, key, ev);
}

static __always_inline void add(__u64 *counter, __u64 value)
{
	__sync_fetch_and_add(counter, value);
}

/* ---- Trace records ---------------------------------------------------------- */

/* Who made a move, for a trace record: the process that asked the stopper,
 * `kernel` for interrupt context, else the task that ran the move (the
 * waker of a wakeup, the caller of sched_setaffinity). */
static __always_inline void emit_migration(struct event *ev, struct task_struct *p,
					   const struct mw_process_key *key, __u32 src, __u32 dst,
					   __u32 reason, const bool btf)
{
	enum mw_context ctx = event_context(ev);
	struct mw_migration_event *e;
	__u32 tid = MW_READ(btf, p, pid);

	if (trace_pid && trace_pid != tid && trace_pid != key->tgid)
		return;
	e = bpf_ringbuf_reserve(&trace_events, sizeof(*e), 0);
	if (!e) {
		ev->cc->drops[MW_DROP_TRACE_RINGBUF]++;
		return;
	}
	e->kind = MW_TRACE_MIGRATION;
	e->flags = in_interrupt(ctx) ? MW_MIGRATION_IN_INTERRUPT : 0;
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = tid;
	e->tgid = key->tgid;
	e->src_cpu = src;
	e->dst_cpu = dst;
	e->reason = reason;
	e->pad = 0;
	BPF_CORE_READ_INTO(&e->comm, p, comm);
	/* An interrupt moves for the kernel, whatever task it interrupted,
	 * even a stopper in the middle of its run. */
	if (in_interrupt(ctx)) {
		e->requester_pid = MW_KERNEL_TGID;
		e->requester_tgid = MW_KERNEL_TGID;
		__builtin_memset(e->requester_comm, 0, MW_COMM_LEN);
	} else if (current_is_stopper(ev)) {
		struct mw_stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &ev->cpu);

		e->requester_pid = req ? req->requester_pid : MW_KERNEL_TGID;
		e->requester_tgid = req ? req->requester.tgid : MW_KERNEL_TGID;
		if (req)
			__builtin_memcpy(e->requester_comm, req->requester_comm, MW_COMM_LEN);
		else
			__builtin_memset(e->requester_comm, 0, MW_COMM_LEN);
	} else {
		struct task_struct *cur = current_task();

		e->requester_pid = BPF_CORE_READ(cur, pid);
		e->requester_tgid = BPF_CORE_READ(cur, tgid);
		BPF_CORE_READ_INTO(&e->requester_comm, cur, comm);
	}
	bpf_ringbuf_submit(e, 0);
}

/* ---- Thread lifecycle records ------------------------------------------------ */

/* The stopper runs' moves of `key`'s threads not yet in its entry, of other
 * reasons than wakeup (abi.h, mw_deferred_move). A scan of every CPU: only
 * for the rare records that carry counts. */
static __noinline __u64 pending_moves_of(const struct mw_process_key *key)
{
	__u64 pending = 0;

	for (__u32 cpu = 0; cpu < MW_MAX_CPUS; cpu++) {
		struct mw_stopper_request *req;
		__u32 index = cpu;

		if (cpu >= possible_cpus)
			break;
		req = bpf_map_lookup_elem(&stopper_requests, &index);
		/* Left out while on its way to the entry (abi.h, MW_SETTLING). */
		if (req && !MW_SETTLING(req->deferred.changes) && req->deferred.task && req->deferred.counted &&
		    same_process(&req->deferred.process, key))
			pending++;
	}
	return pending;
}

/* Adds the counters of `from` (not its name and flags) to `to`. */
static __always_inline void add_counts(struct mw_process_stats *to, const struct mw_process_stats *from)
{
	for (int r = 0; r < MW_REASON_COUNT; r++)
		to->migrations[r] += from->migrations[r];
	to->exited_migrations += from->exited_migrations;
	to->stopper_moved_ns += from->stopper_moved_ns;
	to->stopper_preempted_ns += from->stopper_preempted_ns;
	to->stopper_requested_ns += from->stopper_requested_ns;
	to->stopper_requested_runs += from->stopper_requested_runs;
	to->affinity_changes += from->affinity_changes;
}

/* Sums the charges the stopper CPUs hold for the process (tgid, start_ns)
 * (abi.h, mw_pending_charges) into this CPU's state.held_sum; 0 if it has
 * no slot. Only for the rare records that carry counts; a CPU may add to
 * them meanwhile, and the record has what they held when read. A global
 * function, which the verifier walks once, not once per path of its
 * caller: its loop walks every possible CPU. */
__noinline int sum_held_charges(__u32 tgid, __u64 start_ns)
{
	struct mw_process_key key = {.tgid = tgid, .start_ns = start_ns};
	struct cpu_slot *slot = this_cpu_slot();

	if (!slot)
		return 0;
	__builtin_memset(&slot->state.held_sum, 0, sizeof(slot->state.held_sum));
	for (__u32 cpu = 0; cpu < MW_MAX_CPUS; cpu++) {
		struct mw_stopper_request *req;
		__u32 index = cpu;

		if (cpu >= possible_cpus)
			break;
		req = bpf_map_lookup_elem(&stopper_requests, &index);
		if (req && !MW_SETTLING(req->charges.flushes) && req->charges.held &&
		    same_process(&req->charges.process, &key))
			add_counts(&slot->state.held_sum, &req->charges.counts);
	}
	return 1;
}

/* `comm`: the new name of a rename (traced before the task has it), else
 * NULL for the task's own. `with_counts`: a change of the process's name
 * (an exec, a rename of its leader), which carries the counts so far. */
static __always_inline void send_task_event(struct task_struct *t, __u32 kind, const char *comm,
					    bool with_counts, const bool btf)
{
	struct cpu_slot *slot = this_cpu_slot();
	struct mw_process_stats *ps;
	struct mw_process_key key;
	struct mw_task_event *e;
	__u64 pending;

	e = bpf_ringbuf_reserve(&task_events, sizeof(*e), 0);
	if (!e) {
		if (slot)
			slot->shared.counters.drops[MW_DROP_TASK_RINGBUF]++;
		return;
	}
	process_key_of(t, &key, btf);
	/* The counts are read in the order they flow: the pending moves, the
	 * charges held on stopper CPUs, the entry. A count that moves on in
	 * between is taken twice for another reason, so that the wakeups
	 * derived below fall short rather than exceed (as in user space,
	 * CountWakeups). The two scans over the CPUs come first, so that the
	 * verifier walks their loops on few paths. */
	pending = with_counts && !count_wakeups ? pending_moves_of(&key) : 0;
	__builtin_memset(&e->counts, 0, sizeof(e->counts));
	if (with_counts && slot && sum_held_charges(key.tgid, key.start_ns))
		add_counts(&e->counts, &slot->state.held_sum);
	e->kind = kind;
	e->pid = MW_READ(btf, t, pid);
	e->tgid = key.tgid;
	e->start_ns = key.start_ns;
	e->runtime_ns = MW_READ(btf, t, se.sum_exec_runtime);
	e->nr_migrations = MW_READ(btf, t, se.nr_migrations);
	e->run_delay_ns = task_run_delay(t);
	if (comm)
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), comm);
	else
		BPF_CORE_READ_INTO(&e->comm, t, comm);
	/* A process that has not migrated yet has no entry: its counts are 0. */
	ps = with_counts ? bpf_map_lookup_elem(&process_stats, &key) : NULL;
	e->has_counts = with_counts;
	if (ps) {
		__builtin_memcpy(e->counts.comm, ps->comm, MW_COMM_LEN);
		e->counts.flags = ps->flags;
		add_counts(&e->counts, ps);
	}
	if (with_counts && !count_wakeups) {
		/* Its wakeups so far: exact at an exec, where this is the only
		 * thread left; a lower bound at a rename. */
		__u64 total = e->counts.exited_migrations + e->nr_migrations, others = pending;

		for (int r = 0; r < MW_REASON_COUNT; ++r)
			if (r != MW_REASON_WAKEUP)
				others += e->counts.migrations[r];
		e->counts.migrations[MW_REASON_WAKEUP] = total > others ? total - others : 0;
	}
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int handle_rename(struct task_struct *t, const char *comm, const bool btf)
{
	bool leader = MW_READ(btf, t, pid) == MW_READ(btf, t, tgid);

	send_task_event(t, MW_TASK_RENAME, comm, leader, btf);
	return 0;
}

static __always_inline int handle_exec(struct task_struct *t, const bool btf)
{
	send_task_event(t, MW_TASK_EXEC, NULL, true, btf);
	return 0;
}

/* ---- Thread totals ------------------------------------------------------------ */

static __always_inline void thread_key_of(struct task_struct *t, struct thread_key *key, const bool btf)
{
	key->tid = MW_READ(btf, t, pid);
	key->pad = 0;
	key->start_ns = MW_READ(btf, t, start_boottime);
}

/* A thread exits: its migrations so far join its process's exited total,
 * and it is marked until its end, so that the iterator no longer counts it
 * and a move it still makes is added there. It is the running task, so it
 * cannot move between the two. */
static __always_inline void account_exiting_thread(struct task_struct *t, const bool btf)
{
	struct mw_process_stats *ps = NULL;
	struct mw_process_key key;
	struct thread_key thread;
	struct event ev;
	__u64 migrations;

	if (!event_open(&ev))
		return;
	process_key_of(t, &key, btf);
	if (!count_wakeups) {
		thread_key_of(t, &thread, btf);
		if (bpf_map_update_elem(&exiting_threads, &thread, &key, BPF_ANY))
			ev.cc->drops[MW_DROP_EXITING_MAP_FULL]++;
		migrations = MW_READ(btf, t, se.nr_migrations);
		if (migrations && (ps = process_of_task(t, &key, &ev)))
			add(&ps->exited_migrations, migrations);
	}
	/* do_exit() counts live threads down before this tracepoint: at 0 this
	 * is the process's last thread, and user space may take its counts
	 * as final without asking /proc. */
	if (BPF_CORE_READ(t, signal, live.counter) == 0 &&
	    (ps || (ps = bpf_map_lookup_elem(&process_stats, &key))))
		ps->flags |= MW_PROCESS_EXITED;
}

/* A move of a thread that has exited already: its count was taken. */
static __always_inline void count_move_after_exit(struct task_struct *p, struct mw_process_stats *ps,
						  const bool btf)
{
	struct thread_key thread;

	thread_key_of(p, &thread, btf);
	if (ps && bpf_map_lookup_elem(&exiting_threads, &thread))
		add(&ps->exited_migrations, 1);
}

static __always_inline int handle_exit(struct task_struct *t, const bool btf)
{
	__u32 tid = MW_READ(btf, t, pid);

	account_exiting_thread(t, btf);
	if (bpf_map_lookup_elem(&watched_tids, &tid)) {
		send_task_event(t, MW_TASK_EXIT, NULL, false, btf);
		bpf_map_delete_elem(&watched_tids, &tid);
	}
	return 0;
}

/* A thread's last switch: it will never run, nor move, again. (Its
 * sched_process_free can come seconds later, where RCU callbacks are lazy.) */
static __always_inline void forget_dead_thread(struct task_struct *t, const bool btf)
{
	struct thread_key thread;

	if (count_wakeups)
		return;
	thread_key_of(t, &thread, btf);
	bpf_map_delete_elem(&exiting_threads, &thread);
}

#endif /* MIGWATCH_TASKS_BPF_H */
