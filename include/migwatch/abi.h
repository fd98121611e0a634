/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between the BPF programs (bpf/) and user space (daemon/): map
 * keys, map values, event records and enums.
 *
 * Both sides compile this file, so it uses plain fixed-width C types only.
 * In BPF the types come from vmlinux.h; in user space from <linux/types.h>.
 * Every enum ends in a _COUNT member that sizes the arrays indexed by it;
 * user space turns the values into label strings (daemon/labels.cc).
 */
#ifndef MIGWATCH_ABI_H
#define MIGWATCH_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define MW_COMM_LEN 16

/* Upper bound for CPU-indexed read-only tables (cpu -> NUMA node). Maps
 * indexed by CPU are sized at load time to the possible CPUs instead. */
#define MW_MAX_CPUS 8192
/* NUMA nodes tracked in the node-to-node matrix; higher node ids fold into
 * the last one. */
#define MW_MAX_NODES 64

/* The path that moved a task. Decided in the sched_migrate_task handler; the
 * decision order is documented at classify_migration() in bpf/classify.bpf.h. */
enum mw_reason {
	MW_REASON_WAKEUP = 0,	   /* placed on another CPU while waking up */
	MW_REASON_LOAD_BALANCE,	   /* periodic, nohz-idle or newidle balancing */
	MW_REASON_ACTIVE_BALANCE,  /* a stopper pushed a running task for the balancer */
	MW_REASON_AFFINITY,	   /* its CPU was removed from its allowed CPUs */
	MW_REASON_NUMA,		   /* automatic NUMA balancing */
	MW_REASON_EXEC,		   /* exec-time balancing (sched_exec) */
	MW_REASON_HOTPLUG,	   /* its CPU is going offline */
	MW_REASON_RT_PUSH_PULL,	   /* real-time / deadline push and pull */
	MW_REASON_OTHER,
	MW_REASON_COUNT,
};

/* What a migration/N stopper thread was running during one on-CPU interval.
 * MW_WORK_NONE means "not known yet" while a run is being attributed; every
 * finished run is charged to one of the others. */
enum mw_work {
	MW_WORK_NONE = 0,
	MW_WORK_AFFINITY,	/* migration_cpu_stop for an affinity change */
	MW_WORK_ACTIVE_BALANCE, /* active_load_balance_cpu_stop */
	MW_WORK_NUMA,		/* migrate_task_to / migrate_swap */
	MW_WORK_EXEC,		/* sched_exec */
	MW_WORK_HOTPLUG,	/* balance_push and the CPU teardown */
	MW_WORK_STOP_MACHINE,	/* multi_cpu_stop from stop_machine users */
	MW_WORK_RT_PUSH_PULL,	/* push_cpu_stop */
	MW_WORK_WATCHDOG,	/* softlockup_fn, every few seconds on every CPU */
	MW_WORK_OTHER,
	MW_WORK_COUNT,
};

/* The one table between stopper work and the reason of the moves it makes:
 * X(work, reason). Works without a row (stop_machine, watchdog, other) move
 * nothing of their own, and reasons without one (wakeup, load_balance,
 * other) are never the work of a stopper. */
#define MW_WORK_REASONS(X)                                  \
	X(MW_WORK_AFFINITY, MW_REASON_AFFINITY)             \
	X(MW_WORK_ACTIVE_BALANCE, MW_REASON_ACTIVE_BALANCE) \
	X(MW_WORK_NUMA, MW_REASON_NUMA)                     \
	X(MW_WORK_EXEC, MW_REASON_EXEC)                     \
	X(MW_WORK_HOTPLUG, MW_REASON_HOTPLUG)               \
	X(MW_WORK_RT_PUSH_PULL, MW_REASON_RT_PUSH_PULL)

/* The reason of a move made by stopper work `work`; MW_REASON_OTHER if the
 * work moves nothing of its own. */
static __inline __u32 mw_work_reason(__u32 work)
{
#define MW_CASE(w, r) \
	case w:       \
		return r;
	switch (work) {
		MW_WORK_REASONS(MW_CASE)
	default:
		return MW_REASON_OTHER;
	}
#undef MW_CASE
}

/* The stopper work that makes moves of `reason`; MW_WORK_NONE if no work
 * does. */
static __inline __u32 mw_reason_work(__u32 reason)
{
#define MW_CASE(w, r) \
	case r:       \
		return w;
	switch (reason) {
		MW_WORK_REASONS(MW_CASE)
	default:
		return MW_WORK_NONE;
	}
#undef MW_CASE
}

/* Hooks migwatch attaches to, each with the attach mode it got. */
enum mw_probe_mode {
	MW_MODE_NONE = 0, /* not attached */
	MW_MODE_FENTRY,
	MW_MODE_TP_BTF,
	MW_MODE_RAW_TP,
	MW_MODE_ITER, /* a BPF iterator, run by user space when it reads */
	MW_MODE_COUNT,
};


/* Counters of things that were not recorded in full. Counts themselves are
 * never lost: these say which detail (an event record, a per-process entry)
 * went missing. */
enum mw_drop {
	MW_DROP_TRACE_RINGBUF = 0, /* trace event records: ring buffer full */
	MW_DROP_TASK_RINGBUF,	   /* task rename/exec/exit records: ring buffer full */
	MW_DROP_PROCESS_MAP_FULL,  /* counted under the overflow process key */
	MW_DROP_EXITING_MAP_FULL,  /* an exiting thread not marked: its later moves may be missed */
	MW_DROP_COUNT,
};

/* What the CPU that runs a program counted, summed over CPUs by user space,
 * except the stopper fields: the copy of CPU n is written only by CPU n when
 * its migration/n thread switches out. */
struct mw_cpu_counters {
	__u64 migrations[MW_REASON_COUNT];
	/* Migrations out of and into this CPU that this CPU made (a stopper's
	 * moves off its CPU, a pull, a wakeup onto the waker's CPU): counted
	 * here, beside the counters every move adds to; the other side of a
	 * move is in cpu_moves (mw_cpu_moves). */
	__u64 moves_out_here;
	__u64 moves_in_here;
	/* sched_migrate_task events whose source equals their destination:
	 * not migrations, but seen (kept to explain the raw event rate). */
	__u64 same_cpu_events;
	__u64 drops[MW_DROP_COUNT];
	/* affinity changes (sched_setaffinity, cpuset writes) that forced a
	 * running or queued task off its CPU */
	__u64 affinity_changes;
	/* This CPU's stopper: on-CPU time as the scheduler accounts it
	 * (se.sum_exec_runtime, what /proc/PID/schedstat shows), per work. */
	__u64 stopper_run_ns;
	__u64 stopper_runs;
	/* Runs whose switch in was not traced: charged in full at their switch
	 * out, but their moves were not known to be the stopper's. */
	__u64 stopper_run_starts_unseen;
	__u64 stopper_work_ns[MW_WORK_COUNT];
	__u64 stopper_work_runs[MW_WORK_COUNT];
};

/* The value of the per-CPU map `cpus` begins with this; the programs' own
 * state of that CPU follows. User space reads the counters and, before the
 * programs attach, writes the pid of each CPU's migration/N thread (the
 * programs learn a later one by its name). */
struct mw_cpu {
	struct mw_cpu_counters counters;
	__u32 stopper_pid;
	__u32 pad;
};

/* Per CPU: migrations in and out of that CPU that other CPUs made (those a
 * CPU makes itself are in its mw_cpu_counters). Per-CPU array indexed by
 * CPU number, so each executing CPU counts into its own copy. */
struct mw_cpu_moves {
	__u64 in;
	__u64 out;
};

#define MW_TASK_KTHREAD 0x1u
/* In mw_process_stats.flags: the process's last thread has exited (its
 * counts are final, but for a move it may still make before its last
 * switch, which recreates the entry). */
#define MW_PROCESS_EXITED 0x2u

/* A process: its tgid and the start time of its thread-group leader
 * (task_struct::start_boottime, ns; /proc/PID/stat shows it in clock ticks),
 * so that a reused pid is a new process, never an old one's continuation. */
struct mw_process_key {
	__u32 tgid;
	__u32 pad;
	__u64 start_ns;
};

/* Per process: one shared hash entry, counted with atomic adds. Nothing
 * evicts an entry: user space removes it after the process is gone and its
 * final counts are taken.
 *
 * Wakeups, the most frequent migrations, are not counted here where the
 * kernel lets user space run the task iterator: a process's total is then
 * the sum of its threads' se.nr_migrations (the kernel's own count, read by
 * the iterator for live threads, added to `exited_migrations` when a thread
 * exits), and its wakeups are that total minus the other reasons. */
struct mw_process_stats {
	char comm[MW_COMM_LEN]; /* thread-group leader's comm at creation */
	__u32 flags;		/* MW_TASK_* */
	__u32 pad;
	__u64 migrations[MW_REASON_COUNT]; /* [MW_REASON_WAKEUP]: see above */
	__u64 exited_migrations; /* se.nr_migrations of its exited threads */
	__u64 stopper_moved_ns;	    /* stopper time spent moving its threads */
	/* stopper time of runs that took the CPU from one of its threads while
	 * that thread could still run (preempted it): the CPU time the stopper
	 * cost this process, whoever's work it ran */
	__u64 stopper_preempted_ns;
	__u64 stopper_requested_ns; /* stopper time it asked for */
	__u64 stopper_requested_runs;
	__u64 affinity_changes; /* its affinity changes that moved a task */
};

/* Process key used once the process map is full: counts still land here. */
#define MW_OVERFLOW_TGID 0xffffffffu
/* Requester key for work queued from interrupt context (the balancer, the
 * watchdog timer): no process asked for it. */
#define MW_KERNEL_TGID 0u

/* A move the programs have made but not yet added to its process's entry:
 * the first move of a stopper run is counted when the run ends, by the
 * lookup of that entry the run's charging makes anyway (one hash lookup
 * less on the storm's path). User space reads the ones pending, so that a
 * wakeup count derived while one is pending does not take it for a
 * wakeup. */
struct mw_deferred_move {
	/* +2 at every deferral and settling: user space reads the pending
	 * moves before and after the process map, and again if this moved.
	 * Odd while a move goes to its process's entry, which may have it
	 * already: a reading leaves it out (MW_SETTLING). First, so that a
	 * copy in address order reads it before the move. */
	__u64 changes;
	struct mw_process_key process;
	__u64 task;	/* the moved task; 0: nothing pending */
	__u32 reason;	/* enum mw_reason */
	__u32 counted;	/* 1 if the reason is counted per process (not a wakeup) */
};

/* Whether a change counter (mw_deferred_move.changes,
 * mw_pending_charges.flushes) says that what it guards is on its way to
 * the process map: a reading then leaves that out, so that it may miss it
 * until the next reading but never count it twice. */
#define MW_SETTLING(changes) (((changes) & 1) != 0)

/* The stopper charges one CPU has made to one process and not yet added to
 * that process's entry. Most runs in a storm are asked for by the process
 * whose threads they move and preempt; adding to its shared entry from
 * every CPU at every run moved the entry's cache lines from CPU to CPU and
 * cost a hash lookup a run. The runs of one requester in a row are added
 * here instead, on the CPU's own cache line; the entry gets them when a
 * run of another requester comes. A process's affinity moves of its own
 * queued threads, made outside the stopper on this CPU, are held here too
 * (bpf/classify.bpf.h, hold_own_affinity_move). User space adds them to
 * the entry when it reads, and keeps an entry that is held here. */
struct mw_pending_charges {
	struct mw_process_key process;
	__u32 held;	/* 1: `process` is held here, and its entry exists */
	__u32 pad;
	/* +2 each time the counts go to the entry, odd while they do
	 * (MW_SETTLING); before the counts, so that a copy reads it first */
	__u64 flushes;
	struct mw_process_stats counts; /* the counters; comm and flags unused */
};

/* Per CPU: who woke its stopper thread, and the run's pending move. Only
 * wakers in task context write the requester: work queued from an
 * interrupt is the kernel's (`work` says so), and one that finds the
 * stopper awake already leaves no trace, so the last task that asked stays
 * the best answer.
 *
 * Its parts start on 128-byte boundaries, each at least 64 bytes past the
 * end of the one before (and of the previous CPU's entry), so that
 * whatever the array's alignment they never share a cache line: what
 * wakers read and write, and what the stopper's own CPU writes. A
 * waker writes only what changed, so that a storm's wakeups by one task
 * leave the first part shared by the two CPUs instead of moving it from
 * one to the other at every flip. */
struct mw_stopper_request {
	__u32 stopper_pid; /* of migration/<cpu>: user space writes it first */
	__u32 work;	   /* enum mw_work the waker's context names, or NONE */
	__u32 requester_pid;
	__u32 requester_flags;
	struct mw_process_key requester; /* MW_KERNEL_TGID: interrupt context */
	__u32 numa_tids[2]; /* tasks a NUMA request moves */
	/* CPU hotplug, written by the CPU that runs the teardown steps: the time
	 * of this CPU's last teardown step (0: it is up again), and of any
	 * CPU's (the stop_machine() of a teardown wakes every CPU's stopper).
	 * Here, not in maps of their own, because the moves and wakeups that
	 * read them read this entry anyway. */
	__u64 teardown_ns;
	__u64 any_teardown_ns;
	/* Written by this CPU at its stopper runs' ends and affinity moves; by
	 * another CPU only once this one is dead (bpf/stopper.bpf.h,
	 * handle_cpuhp_enter). */
	struct mw_pending_charges charges __attribute__((aligned(128)));
	/* Written by the stopper's CPU while it runs (and as above). A pending
	 * move may pass to the charges, never the other way: they come first,
	 * and the move is cleared before they count it, so that user space,
	 * whose copy of an entry runs in address order, can miss the move in
	 * a reading but never count it twice. */
	struct mw_deferred_move deferred __attribute__((aligned(128)));
	/* The requester's name: written only when the requester changes, read
	 * only to name a new process entry or a trace record. */
	char requester_comm[MW_COMM_LEN];
};

/* One live thread's migrations, written by the task iterator for every
 * thread that has migrated (and has not exited: those are in
 * exited_migrations already). */
struct mw_thread_record {
	struct mw_process_key process;
	__u32 tid;
	__u32 pad;
	__u64 nr_migrations; /* se.nr_migrations */
};

/* Records in the trace ring buffer; sent only while user space has turned
 * tracing on (a trace session). */
enum mw_trace_kind {
	MW_TRACE_MIGRATION = 1,
	MW_TRACE_STOPPER_RUN = 2,
};
/* The bit of a kind in the programs' trace_on (bpf/maps.bpf.h): `migwatch trace` wants
 * migrations only, a capture stopper runs as well. */
#define MW_TRACE_BIT(kind) (1u << (kind))

#define MW_MIGRATION_IN_INTERRUPT 0x1u /* moved from hard or soft interrupt context */

/* One classified migration. */
struct mw_migration_event {
	__u32 kind; /* MW_TRACE_MIGRATION */
	__u32 flags; /* MW_MIGRATION_* */
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u32 pid;
	__u32 tgid;
	__u32 src_cpu;
	__u32 dst_cpu;
	__u32 reason; /* enum mw_reason */
	__u32 requester_pid;  /* MW_KERNEL_TGID when moved from interrupt context */
	__u32 requester_tgid;
	__u32 pad;
	char comm[MW_COMM_LEN];
	char requester_comm[MW_COMM_LEN];
};

/* One finished on-CPU interval of a migration/N stopper thread, as charged
 * to the counters (stopper_run_ns): `dur_ns` is the scheduler's runtime of
 * the interval; it ended at `end_ns`, so it began near end_ns - dur_ns (a
 * stopper is never preempted). */
struct mw_stopper_run_event {
	__u32 kind; /* MW_TRACE_STOPPER_RUN */
	__u32 cpu;
	__u64 end_ns; /* bpf_ktime_get_ns() at the switch out */
	__u64 dur_ns;
	__u32 work; /* enum mw_work */
	__u32 requester_pid;  /* MW_KERNEL_TGID: queued from interrupt context */
	__u32 requester_tgid;
	__u32 victim_pid; /* the task it took the CPU from while runnable, 0: none */
	char requester_comm[MW_COMM_LEN];
};

enum mw_task_event_kind {
	MW_TASK_RENAME = 1,
	MW_TASK_EXIT = 2,
	MW_TASK_EXEC = 3,
};

/* Thread lifecycle records, for naming threads as they are renamed and
 * forgetting them when they exit, and for naming a process again after it
 * execs (libvirt forks, then execs QEMU). Rename and exec records are sent
 * for every rename and exec (rare: start-up); exit records only for tids
 * user space watches. A rename of a process's leader and an exec carry the
 * process's counts at that instant, so that user space charges what came
 * before to the old name and what follows to the new one, however late it
 * reads the record. */
struct mw_task_event {
	__u32 kind; /* enum mw_task_event_kind */
	__u32 pid;
	__u32 tgid;
	__u32 has_counts; /* `counts` holds the process's counts */
	__u64 start_ns;	  /* of the thread-group leader, as in mw_process_key */
	__u64 runtime_ns;     /* se.sum_exec_runtime of the thread */
	__u64 nr_migrations;  /* se.nr_migrations of the thread */
	/* sched_info.run_delay of the thread: its time runnable but waiting
	 * for a CPU (the schedstat a vCPU's delay is read from; 0 on kernels
	 * without CONFIG_SCHED_INFO). */
	__u64 run_delay_ns;
	char comm[MW_COMM_LEN];
	struct mw_process_stats counts;
};

#endif /* MIGWATCH_ABI_H */
