/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between the BPF programs (bpf/migwatch.bpf.c) and user space
 * (daemon/): map keys, map values, event records and enums.
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
 * decision order is documented at classify_migration() in the BPF source. */
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

/* What a migration/N stopper thread was running during one on-CPU interval. */
enum mw_work {
	MW_WORK_AFFINITY = 0,	/* migration_cpu_stop for an affinity change */
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

/* Hooks migwatch attaches to, each with the attach mode it got. */
enum mw_probe_mode {
	MW_MODE_NONE = 0, /* not attached */
	MW_MODE_FENTRY,
	MW_MODE_TP_BTF,
	MW_MODE_RAW_TP,
	MW_MODE_TRACEPOINT,
	MW_MODE_COUNT,
};

/* Counters of things that were not recorded in full. Counts themselves are
 * never lost: these say which detail (an event record, a per-process entry)
 * went missing. */
enum mw_drop {
	MW_DROP_TRACE_RINGBUF = 0, /* trace event records: ring buffer full */
	MW_DROP_TASK_RINGBUF,	   /* task rename/exit records: ring buffer full */
	MW_DROP_PROCESS_MAP_FULL,  /* counted under the overflow process key */
	MW_DROP_PENDING_MAP_FULL,  /* an exec/numa/setaffinity mark not stored */
	MW_DROP_COUNT,
};

/* Host-wide counters; per-CPU array with one entry. */
struct mw_host_stats {
	__u64 migrations[MW_REASON_COUNT];
	/* sched_migrate_task events whose source equals their destination:
	 * not migrations, but seen (kept to explain the raw event rate). */
	__u64 same_cpu_events;
	__u64 drops[MW_DROP_COUNT];
	/* sched_setaffinity calls whose change forced a task off its CPU */
	__u64 affinity_changes;
};

/* Per CPU: migrations in and out of that CPU. Per-CPU array indexed by CPU
 * number, so each executing CPU counts into its own copy. */
struct mw_cpu_moves {
	__u64 in;
	__u64 out;
};

/* The stopper thread of one CPU; per-CPU array with one entry, so the slot of
 * CPU n is written only by CPU n's migration/n thread switching out. */
struct mw_stopper_stats {
	__u64 run_ns;	/* on-CPU time, sched_switch in to sched_switch out */
	__u64 runs;
	__u64 work_ns[MW_WORK_COUNT];
	__u64 work_runs[MW_WORK_COUNT];
};

/* Per thread (LRU, keyed by tid): bounded, so old idle threads fall out. */
struct mw_thread_stats {
	__u32 tgid;
	__u32 pad;
	char comm[MW_COMM_LEN];
	__u64 migrations[MW_REASON_COUNT];
};

#define MW_TASK_KTHREAD 0x1u

/* Per process (hash keyed by tgid; user space removes exited processes after
 * folding their counts, so nothing evicts an entry behind its back). */
struct mw_process_stats {
	char comm[MW_COMM_LEN]; /* thread-group leader's comm */
	__u32 flags;		/* MW_TASK_* */
	__u32 pad;
	__u64 migrations[MW_REASON_COUNT];
	__u64 stopper_moved_ns;	    /* stopper time spent moving its threads */
	__u64 stopper_requested_ns; /* stopper time it asked for */
	__u64 stopper_requested_runs;
	__u64 affinity_changes; /* its sched_setaffinity calls that moved a task */
};

/* Process key used once the process map is full: counts still land here. */
#define MW_OVERFLOW_TGID 0xffffffffu
/* Requester key for work queued from interrupt context (the balancer, the
 * watchdog timer): no process asked for it. */
#define MW_KERNEL_TGID 0u

/* One classified migration; sent only while a trace session runs. */
struct mw_migration_event {
	__u64 ts_ns; /* bpf_ktime_get_ns() */
	__u32 pid;
	__u32 tgid;
	__u32 src_cpu;
	__u32 dst_cpu;
	__u32 reason; /* enum mw_reason */
	__u32 requester_pid;
	__u32 requester_tgid;
	__u32 pad;
	char comm[MW_COMM_LEN];
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
 * user space watches. */
struct mw_task_event {
	__u32 kind; /* enum mw_task_event_kind */
	__u32 pid;
	__u32 tgid;
	__u32 pad;
	__u64 runtime_ns; /* se.sum_exec_runtime at exit */
	char comm[MW_COMM_LEN];
};

#endif /* MIGWATCH_ABI_H */
