// SPDX-License-Identifier: GPL-2.0
/*
 * migwatch: count every task migration in the kernel, say which path made
 * it, and measure what the migration/N stopper threads cost and for whom.
 *
 * Counting happens here, in per-CPU maps, so no count depends on user space
 * keeping up. Per-event records go to ring buffers only for detail (trace
 * sessions, thread names); their losses are counted.
 *
 * Each hook has a tp_btf program (direct BTF reads, 5.5+) and a raw_tp twin
 * (reads through bpf_probe_read, any kernel); both call one handler, and user
 * space loads the one the kernel accepts. Optional fentry programs on
 * scheduler internals sharpen attribution where the kernel allows fentry.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "migwatch/abi.h"
#include "core_fixes.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000
#define TASK_WAKING 0x0200
#define MAX_RT_PRIO 100
#define SCHED_SOFTIRQ 7
/* A CPU counts as going offline for this long after its last teardown step;
 * the pushes and stopper runs of one teardown happen within milliseconds. */
#define HOTPLUG_WINDOW_NS (500ULL * 1000 * 1000)
/* A NUMA migration request is consumed by the stopper run it queues, within
 * microseconds; older marks are stale (the move was cancelled). */
#define NUMA_MARK_TTL_NS (100ULL * 1000 * 1000)

/* Read-only configuration, set by user space between open and load (rodata
 * must be volatile so that clang keeps the loads the loader patches). */
const volatile bool trace_enabled = false; /* emit mw_migration_event records */
const volatile __u32 trace_pid = 0;	   /* only this tid or tgid, if set */
const volatile __u32 nr_nodes = 1;
const volatile __u16 cpu_node[MW_MAX_CPUS] = {};
const volatile __u64 watchdog_timer_fn = 0; /* address, from /proc/kallsyms */

/* ---- Counters read by user space ---------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mw_host_stats);
} host_stats SEC(".maps");

/* Indexed by CPU; resized to the possible CPUs at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mw_cpu_moves);
} cpu_moves SEC(".maps");

/* Indexed by from_node * nr_nodes + to_node; resized to nr_nodes^2 at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} node_moves SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mw_stopper_stats);
} stopper_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct mw_thread_stats);
} thread_stats SEC(".maps");

/* Not LRU: an entry leaves only when user space has folded its final counts.
 * User space inserts MW_OVERFLOW_TGID before attaching, so a full map still
 * counts. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct mw_process_stats);
} process_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} trace_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} task_events SEC(".maps");

/* tids whose exit user space wants to hear about (QEMU migration threads). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} watched_tids SEC(".maps");

/* ---- Attribution state, private to the programs -------------------------- */

/* What this CPU is doing, as far as attribution cares. Per-CPU array, one
 * entry: written only by the CPU it describes. */
struct cpu_state {
	__u64 stopper_start_ns; /* != 0 while migration/<this cpu> is on CPU */
	__u64 hrtimer_fn;	/* callback of the hrtimer running now, else 0 */
	__u32 stopper_pid;	/* pid of migration/<this cpu>, once seen */
	__u32 in_sched_softirq;
	__u32 fentry_work;     /* MW_WORK_* + 1 from a stopper function's fentry */
	__u32 in_move_queued;  /* inside move_queued_task (fentry/fexit) */
	__u32 move_traced;     /* sched_migrate_task fired inside it */
	__u32 stopper_bringups; /* cpu_bringups of this CPU when the stopper ran in */
	__u32 run_reason;      /* MW_REASON_* + 1 of the first move in this run */
	__u32 run_moved_tgid;  /* process of the first task moved in this run */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_state);
} cpu_states SEC(".maps");

/* Who woke a CPU's stopper and in what context. Indexed by the stopper's CPU
 * and written by the waker's CPU, hence a shared array; the stopper sleeps
 * while it is written, so the two never race over one run. */
struct stopper_request {
	__u32 work; /* MW_WORK_* + 1, 0 if the context did not say */
	__u32 requester_pid;
	__u32 requester_tgid;
	__u32 requester_flags;
	char requester_comm[MW_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stopper_request);
} stopper_requests SEC(".maps");

/* Last teardown step of any CPU (ns): the stop_machine() of a teardown
 * wakes every CPU's stopper, not only the dying CPU's. */
__u64 last_teardown_ns = 0;

/* Per CPU: its last teardown step (ns, 0 once it comes back up) and how
 * often it came back up, so that a stopper interval that spans an offline
 * period (its switch out was never seen) is not charged. */
struct cpu_hotplug {
	__u64 teardown_ns;
	__u64 bringups;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_hotplug);
} cpu_hotplug SEC(".maps");

/* What a task is in the middle of, keyed by tid: set on syscall entry or on
 * a NUMA tracepoint, cleared on syscall exit or when consumed. */
#define MARK_SETAFFINITY 0x1
#define MARK_EXEC 0x2
#define MARK_NUMA 0x4
struct task_mark {
	__u32 marks;
	__u32 forced_move; /* this sched_setaffinity call moved a task */
	__u64 numa_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct task_mark);
} task_marks SEC(".maps");

/* ---- Helpers -------------------------------------------------------------- */

static const __u32 zero;

static __always_inline struct cpu_state *this_cpu_state(void)
{
	return bpf_map_lookup_elem(&cpu_states, &zero);
}

static __always_inline struct mw_host_stats *this_host_stats(void)
{
	return bpf_map_lookup_elem(&host_stats, &zero);
}

static __always_inline void count_drop(enum mw_drop what)
{
	struct mw_host_stats *hs = this_host_stats();

	if (hs && what < MW_DROP_COUNT)
		hs->drops[what]++;
}

/* migration/N: a kernel thread named "migration/" + digits. Checked on the
 * flags first so that user threads cost one load. */
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

static __always_inline struct task_mark *task_mark_of(__u32 tid)
{
	return bpf_map_lookup_elem(&task_marks, &tid);
}

static __always_inline struct task_mark *task_mark_add(__u32 tid, __u32 mark)
{
	struct task_mark fresh = {};
	struct task_mark *m = task_mark_of(tid);

	if (!m) {
		/* -EEXIST from a racing insert is fine: look it up again. */
		bpf_map_update_elem(&task_marks, &tid, &fresh, BPF_NOEXIST);
		m = task_mark_of(tid);
		if (!m) {
			count_drop(MW_DROP_PENDING_MAP_FULL);
			return NULL;
		}
	}
	m->marks |= mark;
	return m;
}

static __always_inline void task_mark_clear(__u32 tid, __u32 mark)
{
	struct task_mark *m = task_mark_of(tid);

	if (!m)
		return;
	m->marks &= ~mark;
	if (!m->marks)
		bpf_map_delete_elem(&task_marks, &tid);
}

static __always_inline bool cpu_in_teardown(__u32 cpu, __u64 now)
{
	struct cpu_hotplug *h = bpf_map_lookup_elem(&cpu_hotplug, &cpu);

	return h && h->teardown_ns && now - h->teardown_ns < HOTPLUG_WINDOW_NS;
}

static __always_inline __u32 cpu_bringups(__u32 cpu)
{
	struct cpu_hotplug *h = bpf_map_lookup_elem(&cpu_hotplug, &cpu);

	return h ? (__u32)h->bringups : 0;
}

/* The process entry of tgid, created on first use (named after `task`'s
 * thread-group leader, or `comm` without a task); the overflow entry once the
 * map is full, so the count still lands somewhere user space sees. The
 * leader is read only on creation: this runs on every migration. */
static __always_inline struct mw_process_stats *
process_entry(__u32 tgid, struct task_struct *task, __u32 flags, const char *comm)
{
	struct mw_process_stats *ps = bpf_map_lookup_elem(&process_stats, &tgid);
	struct mw_process_stats fresh = {};
	__u32 overflow = MW_OVERFLOW_TGID;

	if (ps)
		return ps;
	if (task) {
		struct task_struct *leader = BPF_CORE_READ(task, group_leader);

		BPF_CORE_READ_INTO(&fresh.comm, leader, comm);
		fresh.flags = (BPF_CORE_READ(task, flags) & PF_KTHREAD) ? MW_TASK_KTHREAD : 0;
	} else {
		if (comm)
			__builtin_memcpy(fresh.comm, comm, MW_COMM_LEN);
		fresh.flags = flags;
	}
	bpf_map_update_elem(&process_stats, &tgid, &fresh, BPF_NOEXIST);
	ps = bpf_map_lookup_elem(&process_stats, &tgid);
	if (ps)
		return ps;
	count_drop(MW_DROP_PROCESS_MAP_FULL);
	return bpf_map_lookup_elem(&process_stats, &overflow);
}

static __always_inline __u32 task_flags_of(struct task_struct *t)
{
	return (BPF_CORE_READ(t, flags) & PF_KTHREAD) ? MW_TASK_KTHREAD : 0;
}

/* ---- Which path moved the task ------------------------------------------- */

static __always_inline __u32 work_to_reason(__u32 work)
{
	switch (work) {
	case MW_WORK_AFFINITY: return MW_REASON_AFFINITY;
	case MW_WORK_ACTIVE_BALANCE: return MW_REASON_ACTIVE_BALANCE;
	case MW_WORK_NUMA: return MW_REASON_NUMA;
	case MW_WORK_EXEC: return MW_REASON_EXEC;
	case MW_WORK_HOTPLUG: return MW_REASON_HOTPLUG;
	case MW_WORK_RT_PUSH_PULL: return MW_REASON_RT_PUSH_PULL;
	default: return MW_REASON_OTHER;
	}
}

/*
 * Decision order, first match wins (see the kernel notes in the README):
 *  1. p is TASK_WAKING: try_to_wake_up() placed it            -> wakeup
 *  2. its source CPU is being torn down                       -> hotplug
 *  3. current is this CPU's stopper: by the stopper's work:
 *     source CPU no longer allowed -> affinity; p marked by a NUMA tracepoint
 *     -> numa; p in exec -> exec; else the work the fentry on the stopper
 *     function or the waker's context named; RT/DL task -> rt_push_pull
 *  4. p is RT/DL (prio < 100)                                 -> rt_push_pull
 *  5. in SCHED_SOFTIRQ: periodic or nohz idle balancing       -> load_balance
 *  6. pulled to this CPU by a task that is blocking, or idle  -> load_balance
 *  7. source CPU no longer allowed, or inside move_queued_task
 *     outside the stopper: affine_move_task moved a queued task -> affinity
 *  8. p marked numa / exec                                    -> numa / exec
 *  9. anything else                                           -> other
 */
static __always_inline __u32 classify_migration(struct task_struct *p, __u32 src, __u32 dst,
						 __u32 this_cpu, struct cpu_state *st, __u64 now)
{
	struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
	__u32 tid = BPF_CORE_READ(p, pid);
	struct task_mark *mark;

	if (task_state(p) & TASK_WAKING)
		return MW_REASON_WAKEUP;
	if (cpu_in_teardown(src, now))
		return MW_REASON_HOTPLUG;

	mark = task_mark_of(tid);
	if (st->stopper_start_ns) {
		struct stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &this_cpu);

		if (!task_allows_cpu(p, src))
			return MW_REASON_AFFINITY;
		if (mark && (mark->marks & MARK_NUMA) && now - mark->numa_ns < NUMA_MARK_TTL_NS) {
			task_mark_clear(tid, MARK_NUMA);
			return MW_REASON_NUMA;
		}
		if (mark && (mark->marks & MARK_EXEC))
			return MW_REASON_EXEC;
		if (st->fentry_work && st->fentry_work - 1 != MW_WORK_STOP_MACHINE)
			return work_to_reason(st->fentry_work - 1);
		if (req && req->work)
			return work_to_reason(req->work - 1);
		if (BPF_CORE_READ(p, prio) < MAX_RT_PRIO)
			return MW_REASON_RT_PUSH_PULL;
		return MW_REASON_OTHER;
	}
	if (BPF_CORE_READ(p, prio) < MAX_RT_PRIO)
		return MW_REASON_RT_PUSH_PULL;
	if (st->in_sched_softirq)
		return MW_REASON_LOAD_BALANCE;
	if (dst == this_cpu && (BPF_CORE_READ(cur, pid) == 0 || task_state(cur) != 0))
		return MW_REASON_LOAD_BALANCE;
	if (!task_allows_cpu(p, src) || st->in_move_queued)
		return MW_REASON_AFFINITY;
	if (mark && (mark->marks & MARK_NUMA))
		return MW_REASON_NUMA;
	if (mark && (mark->marks & MARK_EXEC))
		return MW_REASON_EXEC;
	return MW_REASON_OTHER;
}

/* A sched_setaffinity call counts as a change once it forces a task off its
 * CPU, whether it moved the task itself or had a stopper do it. */
static __always_inline void note_forced_affinity_move(__u32 requester_tid)
{
	struct task_mark *m = task_mark_of(requester_tid);

	if (m && (m->marks & MARK_SETAFFINITY))
		m->forced_move = 1;
}

static __always_inline void emit_trace_event(struct task_struct *p, __u32 pid, __u32 tgid,
					     __u32 src, __u32 dst, __u32 reason, __u64 now,
					     __u32 this_cpu, struct cpu_state *st)
{
	struct mw_migration_event *e;

	if (trace_pid && trace_pid != pid && trace_pid != tgid)
		return;
	e = bpf_ringbuf_reserve(&trace_events, sizeof(*e), 0);
	if (!e) {
		count_drop(MW_DROP_TRACE_RINGBUF);
		return;
	}
	e->ts_ns = now;
	e->pid = pid;
	e->tgid = tgid;
	e->src_cpu = src;
	e->dst_cpu = dst;
	e->reason = reason;
	e->pad = 0;
	BPF_CORE_READ_INTO(&e->comm, p, comm);
	if (st->stopper_start_ns) {
		struct stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &this_cpu);

		e->requester_pid = req ? req->requester_pid : 0;
		e->requester_tgid = req ? req->requester_tgid : 0;
		if (req)
			__builtin_memcpy(e->requester_comm, req->requester_comm, MW_COMM_LEN);
		else
			__builtin_memset(e->requester_comm, 0, MW_COMM_LEN);
	} else {
		struct task_struct *cur = (struct task_struct *)bpf_get_current_task();

		e->requester_pid = BPF_CORE_READ(cur, pid);
		e->requester_tgid = BPF_CORE_READ(cur, tgid);
		BPF_CORE_READ_INTO(&e->requester_comm, cur, comm);
	}
	bpf_ringbuf_submit(e, 0);
}

/* Counts one migration of p from src to dst, decided to be `reason`. */
static __always_inline void count_migration(struct task_struct *p, __u32 src, __u32 dst, __u32 reason,
					    __u32 this_cpu, struct cpu_state *st, struct mw_host_stats *hs,
					    __u64 now)
{
	struct mw_thread_stats *ts;
	struct mw_process_stats *ps;
	struct mw_cpu_moves *cm;
	__u32 pid, tgid, idx;
	__u64 *nm;

	if (reason >= MW_REASON_COUNT)
		reason = MW_REASON_OTHER;
	hs->migrations[reason]++;
	if ((cm = bpf_map_lookup_elem(&cpu_moves, &src)))
		cm->out++;
	if ((cm = bpf_map_lookup_elem(&cpu_moves, &dst)))
		cm->in++;
	idx = cpu_node[src & (MW_MAX_CPUS - 1)] * nr_nodes + cpu_node[dst & (MW_MAX_CPUS - 1)];
	if ((nm = bpf_map_lookup_elem(&node_moves, &idx)))
		(*nm)++;

	pid = BPF_CORE_READ(p, pid);
	tgid = BPF_CORE_READ(p, tgid);
	ts = bpf_map_lookup_elem(&thread_stats, &pid);
	if (!ts) {
		struct mw_thread_stats fresh = { .tgid = tgid };

		BPF_CORE_READ_INTO(&fresh.comm, p, comm);
		bpf_map_update_elem(&thread_stats, &pid, &fresh, BPF_NOEXIST);
		ts = bpf_map_lookup_elem(&thread_stats, &pid);
	}
	if (ts)
		ts->migrations[reason]++;
	ps = process_entry(tgid, p, 0, NULL);
	if (ps)
		ps->migrations[reason]++;

	if (st->stopper_start_ns && !st->run_reason) {
		st->run_reason = reason + 1;
		st->run_moved_tgid = tgid;
	}
	if (reason == MW_REASON_WAKEUP) {
		/* A task that takes its own CPU away sleeps until the stopper has
		 * retargeted it, and moves when it wakes: its own call forced it. */
		struct task_mark *m = task_mark_of(pid);

		if (m && (m->marks & MARK_SETAFFINITY) && !task_allows_cpu(p, src))
			m->forced_move = 1;
	} else if (reason == MW_REASON_AFFINITY) {
		struct stopper_request *req;

		if (!st->stopper_start_ns) {
			struct task_struct *cur = (struct task_struct *)bpf_get_current_task();

			note_forced_affinity_move(BPF_CORE_READ(cur, pid));
		} else if ((req = bpf_map_lookup_elem(&stopper_requests, &this_cpu))) {
			note_forced_affinity_move(req->requester_pid);
		}
	}
	if (trace_enabled)
		emit_trace_event(p, pid, tgid, src, dst, reason, now, this_cpu, st);
}

static __always_inline int handle_migrate(struct task_struct *p, int dest_cpu)
{
	__u32 src = task_cpu(p), dst = dest_cpu;
	__u32 this_cpu = bpf_get_smp_processor_id();
	struct mw_host_stats *hs = this_host_stats();
	struct cpu_state *st = this_cpu_state();
	__u64 now;

	if (!hs || !st)
		return 0;
	st->move_traced = 1;
	/* The tracepoint fires before set_task_cpu() checks for a change. */
	if (src == dst) {
		hs->same_cpu_events++;
		return 0;
	}
	now = bpf_ktime_get_ns();
	count_migration(p, src, dst, classify_migration(p, src, dst, this_cpu, st, now), this_cpu, st, hs, now);
	return 0;
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sched_migrate_task_btf, struct task_struct *p, int dest_cpu)
{
	return handle_migrate(p, dest_cpu);
}

SEC("raw_tp/sched_migrate_task")
int BPF_PROG(sched_migrate_task_raw, struct task_struct *p, int dest_cpu)
{
	return handle_migrate(p, dest_cpu);
}

/* ---- Stopper on-CPU time --------------------------------------------------- */

static __always_inline __u32 resolve_run_work(struct cpu_state *st, struct stopper_request *req)
{
	__u32 fw = st->fentry_work, rw = req ? req->work : 0;

	/* migrate_swap() runs multi_cpu_stop too, and so does a CPU teardown:
	 * the waker's NUMA or hotplug context names it better. */
	if (fw && !(fw - 1 == MW_WORK_STOP_MACHINE && rw &&
		    (rw - 1 == MW_WORK_NUMA || rw - 1 == MW_WORK_HOTPLUG)))
		return fw - 1;
	if (rw)
		return rw - 1;
	switch (st->run_reason ? st->run_reason - 1 : MW_REASON_OTHER) {
	case MW_REASON_AFFINITY: return MW_WORK_AFFINITY;
	case MW_REASON_ACTIVE_BALANCE: return MW_WORK_ACTIVE_BALANCE;
	case MW_REASON_NUMA: return MW_WORK_NUMA;
	case MW_REASON_EXEC: return MW_WORK_EXEC;
	case MW_REASON_HOTPLUG: return MW_WORK_HOTPLUG;
	case MW_REASON_RT_PUSH_PULL: return MW_WORK_RT_PUSH_PULL;
	default: return MW_WORK_OTHER;
	}
}

/* Charge one finished on-CPU interval of this CPU's stopper: to the CPU, to
 * the work it ran, to the process that asked for it and to the process whose
 * thread it moved. */
static __always_inline void charge_stopper_run(struct cpu_state *st, __u64 dur)
{
	__u32 this_cpu = bpf_get_smp_processor_id();
	struct stopper_request *req = bpf_map_lookup_elem(&stopper_requests, &this_cpu);
	struct mw_stopper_stats *ss = bpf_map_lookup_elem(&stopper_stats, &zero);
	struct mw_process_stats *ps;
	__u32 work = resolve_run_work(st, req);

	if (ss) {
		ss->run_ns += dur;
		ss->runs++;
		if (work < MW_WORK_COUNT) {
			ss->work_ns[work] += dur;
			ss->work_runs[work]++;
		}
	}
	if (req) {
		struct mw_process_stats *rp =
			process_entry(req->requester_tgid, NULL, req->requester_flags, req->requester_comm);

		if (rp) {
			rp->stopper_requested_ns += dur;
			rp->stopper_requested_runs++;
		}
		req->work = 0;
	}
	if (st->run_reason) {
		__u32 moved = st->run_moved_tgid;

		if ((ps = bpf_map_lookup_elem(&process_stats, &moved)))
			ps->stopper_moved_ns += dur;
	}
	st->fentry_work = 0;
	st->run_reason = 0;
	st->run_moved_tgid = 0;
}

static __always_inline int handle_switch(struct task_struct *next, __u32 next_pid)
{
	struct cpu_state *st = this_cpu_state();
	__u64 now;

	if (!st)
		return 0;
	/* The stopper runs only on its own CPU, so the interval that started
	 * when it was switched in ends at this CPU's next switch. */
	if (st->stopper_start_ns) {
		__u32 this_cpu = bpf_get_smp_processor_id();

		/* Kernels before 5.11 trace nothing on a CPU that has gone offline:
		 * an interval whose end fell into an offline period has no end. */
		if (cpu_bringups(this_cpu) == st->stopper_bringups) {
			now = bpf_ktime_get_ns();
			charge_stopper_run(st, now - st->stopper_start_ns);
		}
		st->stopper_start_ns = 0;
	}
	if (st->stopper_pid) {
		if (next_pid != st->stopper_pid)
			return 0;
	} else {
		/* Until this CPU's stopper has run once, recognise it by name. */
		if (!is_stopper_task(next))
			return 0;
		st->stopper_pid = next_pid;
	}
	st->stopper_start_ns = bpf_ktime_get_ns();
	st->stopper_bringups = cpu_bringups(bpf_get_smp_processor_id());
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	/* Direct BTF load: this runs on every context switch. */
	return handle_switch(next, next->pid);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return handle_switch(next, BPF_CORE_READ(next, pid));
}

/* ---- Who woke a stopper, and why ------------------------------------------ */

static __always_inline int handle_waking(struct task_struct *p)
{
	struct task_struct *cur, *leader;
	struct stopper_request *req;
	struct cpu_state *st;
	struct task_mark *mark;
	__u32 cpu, work = 0;

	if (!is_stopper_task(p))
		return 0;
	cpu = task_cpu(p);
	req = bpf_map_lookup_elem(&stopper_requests, &cpu);
	st = this_cpu_state();
	if (!req || !st)
		return 0;

	cur = (struct task_struct *)bpf_get_current_task();
	if (watchdog_timer_fn && st->hrtimer_fn == watchdog_timer_fn) {
		work = MW_WORK_WATCHDOG + 1;
	} else if (st->in_sched_softirq) {
		/* load_balance() queued active_load_balance_cpu_stop. */
		work = MW_WORK_ACTIVE_BALANCE + 1;
	} else if ((mark = task_mark_of(BPF_CORE_READ(cur, pid)))) {
		if (mark->marks & MARK_SETAFFINITY)
			work = MW_WORK_AFFINITY + 1;
		else if (mark->marks & MARK_EXEC)
			work = MW_WORK_EXEC + 1;
		else if (mark->marks & MARK_NUMA)
			work = MW_WORK_NUMA + 1;
	}
	if (!work) {
		__u64 now = bpf_ktime_get_ns();

		if (cpu_in_teardown(cpu, now) ||
		    (last_teardown_ns && now - last_teardown_ns < HOTPLUG_WINDOW_NS))
			work = MW_WORK_HOTPLUG + 1;
	}
	req->work = work;

	if (work == MW_WORK_WATCHDOG + 1 || work == MW_WORK_ACTIVE_BALANCE + 1) {
		/* Queued from interrupt context: no process asked for it. */
		req->requester_pid = MW_KERNEL_TGID;
		req->requester_tgid = MW_KERNEL_TGID;
		req->requester_flags = MW_TASK_KTHREAD;
		__builtin_memset(req->requester_comm, 0, MW_COMM_LEN);
		return 0;
	}
	req->requester_pid = BPF_CORE_READ(cur, pid);
	req->requester_tgid = BPF_CORE_READ(cur, tgid);
	req->requester_flags = task_flags_of(cur);
	leader = BPF_CORE_READ(cur, group_leader);
	BPF_CORE_READ_INTO(&req->requester_comm, leader, comm);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(sched_waking_btf, struct task_struct *p)
{
	/* Direct BTF load for the common case (not a kernel thread). */
	if (!(p->flags & PF_KTHREAD))
		return 0;
	return handle_waking(p);
}

SEC("raw_tp/sched_waking")
int BPF_PROG(sched_waking_raw, struct task_struct *p)
{
	return handle_waking(p);
}

/* ---- Interrupt context: SCHED_SOFTIRQ and the watchdog hrtimer ------------ */

static __always_inline int handle_softirq(unsigned int vec, __u32 entering)
{
	struct cpu_state *st;

	if (vec != SCHED_SOFTIRQ)
		return 0;
	st = this_cpu_state();
	if (st)
		st->in_sched_softirq = entering;
	return 0;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(softirq_entry_btf, unsigned int vec) { return handle_softirq(vec, 1); }
SEC("raw_tp/softirq_entry")
int BPF_PROG(softirq_entry_raw, unsigned int vec) { return handle_softirq(vec, 1); }
SEC("tp_btf/softirq_exit")
int BPF_PROG(softirq_exit_btf, unsigned int vec) { return handle_softirq(vec, 0); }
SEC("raw_tp/softirq_exit")
int BPF_PROG(softirq_exit_raw, unsigned int vec) { return handle_softirq(vec, 0); }

static __always_inline int handle_hrtimer(struct hrtimer *timer, bool entering)
{
	struct cpu_state *st = this_cpu_state();

	if (st)
		st->hrtimer_fn = entering ? (__u64)BPF_CORE_READ(timer, function) : 0;
	return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(hrtimer_expire_entry_btf, struct hrtimer *timer) { return handle_hrtimer(timer, true); }
SEC("raw_tp/hrtimer_expire_entry")
int BPF_PROG(hrtimer_expire_entry_raw, struct hrtimer *timer) { return handle_hrtimer(timer, true); }
SEC("tp_btf/hrtimer_expire_exit")
int BPF_PROG(hrtimer_expire_exit_btf, struct hrtimer *timer) { return handle_hrtimer(timer, false); }
SEC("raw_tp/hrtimer_expire_exit")
int BPF_PROG(hrtimer_expire_exit_raw, struct hrtimer *timer) { return handle_hrtimer(timer, false); }

/* ---- CPU hotplug ---------------------------------------------------------- */

static __always_inline int handle_cpuhp_enter(unsigned int cpu, int target, int idx)
{
	struct cpu_hotplug *h = bpf_map_lookup_elem(&cpu_hotplug, &cpu);

	if (target < idx) {
		__u64 now = bpf_ktime_get_ns();

		if (h)
			h->teardown_ns = now;
		last_teardown_ns = now;
	} else if (h && h->teardown_ns) {
		/* The first step of bringing it back up. */
		h->teardown_ns = 0;
		h->bringups++;
	}
	return 0;
}

SEC("tp_btf/cpuhp_enter")
int BPF_PROG(cpuhp_enter_btf, unsigned int cpu, int target, int idx)
{
	return handle_cpuhp_enter(cpu, target, idx);
}

SEC("raw_tp/cpuhp_enter")
int BPF_PROG(cpuhp_enter_raw, unsigned int cpu, int target, int idx)
{
	return handle_cpuhp_enter(cpu, target, idx);
}

/* ---- NUMA balancing: marks consumed by the stopper run that follows ------- */

static __always_inline void mark_numa(struct task_struct *t)
{
	struct task_mark *m;

	if (!t)
		return;
	m = task_mark_add(BPF_CORE_READ(t, pid), MARK_NUMA);
	if (m)
		m->numa_ns = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_move_numa")
int BPF_PROG(sched_move_numa_btf, struct task_struct *p) { mark_numa(p); return 0; }
SEC("raw_tp/sched_move_numa")
int BPF_PROG(sched_move_numa_raw, struct task_struct *p) { mark_numa(p); return 0; }

SEC("tp_btf/sched_swap_numa")
int BPF_PROG(sched_swap_numa_btf, struct task_struct *src, int src_cpu, struct task_struct *dst)
{
	mark_numa(src);
	mark_numa(dst);
	return 0;
}

SEC("raw_tp/sched_swap_numa")
int BPF_PROG(sched_swap_numa_raw, struct task_struct *src, int src_cpu, struct task_struct *dst)
{
	mark_numa(src);
	mark_numa(dst);
	return 0;
}

/* ---- Syscalls: sched_setaffinity and exec ----------------------------------- */

static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

static __always_inline void setaffinity_enter(void)
{
	struct task_mark *m = task_mark_add(current_tid(), MARK_SETAFFINITY);

	if (m)
		m->forced_move = 0;
}

static __always_inline void setaffinity_exit(void)
{
	__u32 tid = current_tid();
	struct task_mark *m = task_mark_of(tid);
	struct mw_host_stats *hs;

	if (!m)
		return;
	if (m->forced_move) {
		struct task_struct *cur = (struct task_struct *)bpf_get_current_task();
		struct mw_process_stats *ps = process_entry(BPF_CORE_READ(cur, tgid), cur, 0, NULL);

		if (ps)
			ps->affinity_changes++;
		if ((hs = this_host_stats()))
			hs->affinity_changes++;
	}
	task_mark_clear(tid, MARK_SETAFFINITY);
}

SEC("tracepoint/syscalls/sys_enter_sched_setaffinity")
int sys_enter_sched_setaffinity_tp(void *ctx) { setaffinity_enter(); return 0; }
SEC("tracepoint/syscalls/sys_exit_sched_setaffinity")
int sys_exit_sched_setaffinity_tp(void *ctx) { setaffinity_exit(); return 0; }
SEC("tracepoint/syscalls/sys_enter_execve")
int sys_enter_execve_tp(void *ctx) { task_mark_add(current_tid(), MARK_EXEC); return 0; }
SEC("tracepoint/syscalls/sys_exit_execve")
int sys_exit_execve_tp(void *ctx) { task_mark_clear(current_tid(), MARK_EXEC); return 0; }
SEC("tracepoint/syscalls/sys_enter_execveat")
int sys_enter_execveat_tp(void *ctx) { task_mark_add(current_tid(), MARK_EXEC); return 0; }
SEC("tracepoint/syscalls/sys_exit_execveat")
int sys_exit_execveat_tp(void *ctx) { task_mark_clear(current_tid(), MARK_EXEC); return 0; }

/* ---- Thread names, execs and exits, for naming in user space ------------- */

static __always_inline void send_task_event(struct task_struct *t, __u32 kind, const char *comm)
{
	struct mw_task_event *e = bpf_ringbuf_reserve(&task_events, sizeof(*e), 0);

	if (!e) {
		count_drop(MW_DROP_TASK_RINGBUF);
		return;
	}
	e->kind = kind;
	e->pid = BPF_CORE_READ(t, pid);
	e->tgid = BPF_CORE_READ(t, tgid);
	e->pad = 0;
	e->runtime_ns = BPF_CORE_READ(t, se.sum_exec_runtime);
	if (comm)
		bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), comm);
	else
		BPF_CORE_READ_INTO(&e->comm, t, comm);
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/task_rename")
int BPF_PROG(task_rename_btf, struct task_struct *t, const char *comm)
{
	send_task_event(t, MW_TASK_RENAME, comm);
	return 0;
}

SEC("raw_tp/task_rename")
int BPF_PROG(task_rename_raw, struct task_struct *t, const char *comm)
{
	send_task_event(t, MW_TASK_RENAME, comm);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_btf, struct task_struct *t)
{
	send_task_event(t, MW_TASK_EXEC, NULL);
	return 0;
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(sched_process_exec_raw, struct task_struct *t)
{
	send_task_event(t, MW_TASK_EXEC, NULL);
	return 0;
}

static __always_inline int handle_exit(struct task_struct *t)
{
	__u32 tid = BPF_CORE_READ(t, pid);

	if (bpf_map_lookup_elem(&watched_tids, &tid)) {
		send_task_event(t, MW_TASK_EXIT, NULL);
		bpf_map_delete_elem(&watched_tids, &tid);
	}
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit_btf, struct task_struct *t) { return handle_exit(t); }
SEC("raw_tp/sched_process_exit")
int BPF_PROG(sched_process_exit_raw, struct task_struct *t) { return handle_exit(t); }

/* ---- fentry, where the kernel allows it: name the stopper's work exactly --- */

static __always_inline int set_fentry_work(__u32 work)
{
	struct cpu_state *st = this_cpu_state();

	if (st)
		st->fentry_work = work + 1;
	return 0;
}

SEC("fentry/migration_cpu_stop")
int BPF_PROG(migration_cpu_stop_entry)
{
	/* Affinity, exec or NUMA: the waker's context and the task's marks tell
	 * which, so only clear a stale guess here. */
	struct cpu_state *st = this_cpu_state();

	if (st)
		st->fentry_work = 0;
	return 0;
}

SEC("fentry/active_load_balance_cpu_stop")
int BPF_PROG(active_load_balance_cpu_stop_entry) { return set_fentry_work(MW_WORK_ACTIVE_BALANCE); }
SEC("fentry/multi_cpu_stop")
int BPF_PROG(multi_cpu_stop_entry) { return set_fentry_work(MW_WORK_STOP_MACHINE); }
SEC("fentry/__balance_push_cpu_stop")
int BPF_PROG(balance_push_cpu_stop_entry) { return set_fentry_work(MW_WORK_HOTPLUG); }
SEC("fentry/push_cpu_stop")
int BPF_PROG(push_cpu_stop_entry) { return set_fentry_work(MW_WORK_RT_PUSH_PULL); }
SEC("fentry/softlockup_fn")
int BPF_PROG(softlockup_fn_entry) { return set_fentry_work(MW_WORK_WATCHDOG); }

/* move_queued_task() is static; where it is traceable, a move inside it that
 * does not come from the stopper is affine_move_task() moving a queued task.
 * It also sees moves the tracepoint cannot: before 5.11, migrate_tasks()
 * empties a dying CPU after it is marked offline, and tracepoints do not
 * fire on an offline CPU. */
SEC("fentry/move_queued_task")
int BPF_PROG(move_queued_task_entry, struct rq *rq, struct rq_flags *rf, struct task_struct *p, int new_cpu)
{
	struct cpu_state *st = this_cpu_state();

	if (st) {
		st->in_move_queued = 1;
		st->move_traced = 0;
	}
	return 0;
}

SEC("fexit/move_queued_task")
int BPF_PROG(move_queued_task_exit, struct rq *rq, struct rq_flags *rf, struct task_struct *p, int new_cpu)
{
	struct cpu_state *st = this_cpu_state();
	struct mw_host_stats *hs = this_host_stats();
	__u32 src;

	if (!st || !hs)
		return 0;
	st->in_move_queued = 0;
	src = BPF_CORE_READ(rq, cpu);
	if (!st->move_traced && src != (__u32)new_cpu)
		count_migration(p, src, new_cpu, MW_REASON_HOTPLUG, bpf_get_smp_processor_id(), st, hs,
				bpf_ktime_get_ns());
	return 0;
}
