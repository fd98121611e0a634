/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Configuration and maps: what user space reads (counters), what it writes
 * (configuration, the trace switch, stopper thread ids) and the state the
 * programs keep between events.
 *
 * Sizing for hosts of hundreds of CPUs: per-CPU maps hold only small fixed
 * values (a per-CPU value costs its size times the possible CPUs); the
 * per-process counters are one shared entry per process, added to
 * atomically. No map holds anything per thread: the kernel's own
 * se.nr_migrations is the per-thread detail.
 */
#ifndef MIGWATCH_MAPS_BPF_H
#define MIGWATCH_MAPS_BPF_H

#include "migwatch/abi.h"

/* A BTF-defined map of BPF_MAP_TYPE_<kind>: one line a map. Sizes of 1 are
 * set by user space before load (possible CPUs, node pairs). */
#define MW_MAP(name, kind, entries, key_type, value_type) \
	struct {                                           \
		__uint(type, BPF_MAP_TYPE_##kind);         \
		__uint(max_entries, entries);              \
		__type(key, key_type);                     \
		__type(value, value_type);                 \
	} name SEC(".maps")

#define MW_RINGBUF(name, bytes)                    \
	struct {                                   \
		__uint(type, BPF_MAP_TYPE_RINGBUF); \
		__uint(max_entries, bytes);        \
	} name SEC(".maps")

/*
 * Where things live matters for the cost of an event: each page an event
 * touches that the CPU's TLB does not hold costs a page walk, and where the
 * kernel isolates its page tables from user space's without PCIDs (x86's
 * PTI on older CPUs and in many virtual machines), every return to user
 * space empties the TLB of kernel pages: on such a machine a migration
 * costs one walk per page it touches, 15-60 ns each (tests/bench/README.md).
 * So the common paths read the tasks the scheduler has just touched and
 * one place of their own: the CPU's slot, beside which the per-CPU map
 * created right after it (CPU moves) lies in per-CPU memory. The stopper's
 * paths add its CPU's entry of stopper_requests. Of the globals, .rodata
 * costs nothing (the verifier replaces its loads by their values) and only
 * the trace switch in .bss is read on every migration: a per-CPU copy of
 * it cost more here than the page it lies on (a lookup reads the map's
 * per-CPU pointer as well), 6-14 ns a migration on the machine of
 * tests/bench/README.md.
 */

/* Read-only configuration, set by user space between open and load (rodata
 * must be volatile so that clang keeps the loads the loader patches). */
const volatile __u32 trace_pid = 0; /* trace only this tid or tgid, if set */
/* Address of a CPU's preempt_count minus that of its runqueue, from the
 * kernel's BTF (core_fixes.bpf.h); 0 where the BTF does not say. */
const volatile __s64 preempt_count_from_rq = 0;
/* 1 where user space cannot run the task iterator: wakeups are then counted
 * per process here, on every wakeup migration (abi.h, mw_process_stats). */
const volatile __u32 count_wakeups = 0;
/* Possible CPUs: the size of the CPU-indexed maps. */
const volatile __u32 possible_cpus = 1;
/* NUMA nodes in cpu_nodes (1: not NUMA, and the verifier drops the node
 * pair counting as dead code). */
const volatile __u32 nr_nodes = 1;

/* The one setting user space changes while the programs run: the records
 * to send to the trace ring buffer (MW_TRACE_BIT()s), written through the
 * memory-mapped .bss. Read by each migration and stopper run. */
volatile __u32 trace_on = 0;

/* NUMA node of each CPU; resized to the possible CPUs at load, filled by
 * user space; read only where nr_nodes > 1. */
MW_MAP(cpu_nodes, ARRAY, 1, __u32, __u32);

/* ---- Counters read by user space ---------------------------------------- */

/* Not LRU: an entry leaves only when user space has taken its final counts.
 * User space inserts the MW_OVERFLOW_TGID key before attaching, so a full
 * map still counts. Resized at load (--bpf.max-processes). */
MW_MAP(process_stats, HASH, 4096, struct mw_process_key, struct mw_process_stats);

MW_RINGBUF(trace_events, 1 << 22);

MW_RINGBUF(task_events, 1 << 16);

/* Threads between their exit (sched_process_exit, where their
 * se.nr_migrations went into exited_migrations) and their last switch (as
 * TASK_DEAD): the iterator skips them, and a move they still make is added
 * to exited_migrations. Keyed by tid and start time, so that a reused tid
 * is another thread. */
struct thread_key {
	__u32 tid;
	__u32 pad;
	__u64 start_ns;
};

MW_MAP(exiting_threads, HASH, 8192, struct thread_key, struct mw_process_key);

/* tids whose exit user space wants to hear about (QEMU migration and vCPU
 * threads: their last runtime, moves and run delay). */
MW_MAP(watched_tids, HASH, 4096, __u32, __u8);

/* ---- State of the programs ------------------------------------------------ */

/* What this CPU is doing, as far as attribution cares. */
struct cpu_state {
	/* This CPU's stopper: its se.sum_exec_runtime up to which its time has
	 * been charged (handle_switch), valid once stopper_seen. */
	__u64 stopper_charged_runtime;
	__u32 stopper_seen;
	__u32 in_stopper_run;	/* from its switch in to its switch out */
	__u32 fentry_work;	/* enum mw_work from a stopper function's fentry */
	__u32 in_migration_cpu_stop; /* fentry saw migration_cpu_stop */
	__u32 run_moves;	/* moves made in this run */
	__u32 run_reason;	/* the first one's reason */
	__u32 run_moved_deferred; /* the first one is pending (mw_deferred_move) */
	struct mw_process_key run_moved; /* else the first one's process */
	/* The process of the task this run took the CPU from, if that task was
	 * still runnable (its victim); tgid 0: none. The task itself only names
	 * a new entry (charge_stopper_run). */
	struct mw_process_key run_victim;
	__u64 run_victim_task;
	__u64 preempt_count_addr; /* of this CPU, once found */
	__u32 in_sched_softirq; /* kernels whose BTF hides preempt_count */
	__u32 in_move_queued;	/* inside move_queued_task (fentry/fexit) */
	__u32 move_traced;	/* sched_migrate_task fired inside it */
	/* NUMA balancing announces its moves on this CPU, from the task that
	 * then wakes the stopper: sched_move_numa names one task,
	 * sched_swap_numa two. */
	__u32 numa_requester;
	__u32 numa_tids[2];
	__u64 numa_ns;
	/* sum_held_charges()'s result, for the record being written. */
	struct mw_process_stats held_sum;
	/* The process key of the last group leader a key was read for
	 * (tasks.bpf.h, process_key_cached), valid while task_frees is `gen`. */
	struct {
		__u64 leader;
		__u64 start_ns;
		__u64 gen;
		__u32 tgid;
		__u32 pad;
	} leader_key;
};

/* Everything a CPU keeps, in one per-CPU value, so that an event touches one
 * place of its own: the part user space shares (abi.h), then the state.
 * Written only by the CPU it describes. */
struct cpu_slot {
	struct mw_cpu shared;
	struct cpu_state state;
};

MW_MAP(cpus, PERCPU_ARRAY, 1, __u32, struct cpu_slot);

/* Counters read by user space, also next to the slot: migrations in and
 * out of each CPU, indexed by CPU and resized to the possible CPUs at load. */
MW_MAP(cpu_moves, PERCPU_ARRAY, 1, __u32, struct mw_cpu_moves);

/* Indexed by from_node * nr_nodes + to_node; resized to nr_nodes^2 at load.
 * Not touched on single-node hosts. */
MW_MAP(node_moves, PERCPU_ARRAY, 1, __u32, __u64);

/* task_structs freed so far (sched_process_free): the generation of every
 * CPU's leader_key. A plain array, not a global: its value lies in the
 * kernel's linear map on small hosts, where a global's page would be one
 * more for every event's TLB. */
MW_MAP(task_frees, ARRAY, 1, __u32, __u64);

/* Who woke each CPU's stopper, and the first move of its current run
 * (abi.h, mw_stopper_request). Indexed by the stopper's CPU and written by
 * the waker's CPU, hence a shared array; the stopper sleeps while it is
 * written, so the two never race over one run. */
MW_MAP(stopper_requests, ARRAY, 1, __u32, struct mw_stopper_request);

/* ---- Helpers -------------------------------------------------------------- */

/* Keys of one-entry maps live on the stack: a key in .rodata would cost a
 * load from another page on every event. */
static __always_inline struct cpu_slot *this_cpu_slot(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&cpus, &key);
}

/* The entry of `key`, created from `init` if absent. Another CPU may insert
 * the same key meanwhile: its -EEXIST is fine, the second lookup finds
 * that entry. NULL only if the map is full. */
static __always_inline void *lookup_or_init(void *map, const void *key, const void *init)
{
	void *value = bpf_map_lookup_elem(map, key);

	if (value)
		return value;
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif /* MIGWATCH_MAPS_BPF_H */
