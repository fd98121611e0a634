// SPDX-License-Identifier: GPL-2.0
/*
 * migwatch: count every task migration in the kernel, say which path made
 * it, and measure what the migration/N stopper threads cost and for whom.
 *
 * This file holds only the programs, one per hook and attach mode; what they
 * do lives in the role headers:
 *   maps.bpf.h      configuration, maps, lookup-or-init
 *   event.bpf.h     the per-event context (CPU, its state and counters)
 *   tasks.bpf.h     process entries, trace and thread lifecycle records
 *   stopper.bpf.h   stopper wakeups, runs and their charging; NUMA, hotplug
 *   classify.bpf.h  one migration: its reason, and counting it
 *   core_fixes.bpf.h  every kernel-version difference
 *
 * Each tracepoint has a tp_btf program (direct BTF loads, 5.5+) and a raw_tp
 * twin (reads through bpf_probe_read, any kernel); both call one handler
 * with `btf` set accordingly, and user space loads the twin the kernel
 * accepts. Section names are the hook table: user space derives each hook
 * and its modes from them (daemon/probes.cc). Optional fentry programs on
 * scheduler internals name the stopper's work where the kernel allows
 * fentry.
 *
 * No handler reads a clock on the common path: stopper time is the
 * scheduler's own accounting, and the clock is read only on the rare paths
 * (hotplug, NUMA announcements, trace records).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "classify.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * MW_TWINS(hook, handler call, hook arguments...) defines both programs of
 * a tracepoint: <hook>_btf in SEC("tp_btf/<hook>") and <hook>_raw in
 * SEC("raw_tp/<hook>"), each calling the handler with `btf` set to match.
 * One line a hook, so that the two can never differ.
 */
#define MW_PROGRAM(section, name, btf_value, call, args...) \
	SEC(section)                                          \
	int BPF_PROG(name, args)                              \
	{                                                     \
		const bool btf = btf_value;                   \
		(void)btf;                                    \
		return call;                                  \
	}
#define MW_TWINS(hook, call, args...)                               \
	MW_PROGRAM("tp_btf/" #hook, hook##_btf, true, call, args) \
	MW_PROGRAM("raw_tp/" #hook, hook##_raw, false, call, args)

/* ---- Migrations ------------------------------------------------------------ */

MW_TWINS(sched_migrate_task, handle_migrate(p, dest_cpu, btf), struct task_struct *p, int dest_cpu)

/* ---- Stopper threads -------------------------------------------------------- */

MW_TWINS(sched_switch, handle_switch(preempt, prev, next, btf), bool preempt, struct task_struct *prev,
	 struct task_struct *next)
MW_TWINS(sched_waking, handle_waking(p, btf), struct task_struct *p)
/* (cpuhp_enter reads no task: the same handler in both.) */
MW_TWINS(cpuhp_enter, handle_cpuhp_enter(cpu, target, idx), unsigned int cpu, int target, int idx)
MW_TWINS(sched_move_numa, announce_numa(p, NULL, btf), struct task_struct *p)
MW_TWINS(sched_swap_numa, announce_numa(src, dst, btf), struct task_struct *src, int src_cpu,
	 struct task_struct *dst)
/* Only where the kernel's BTF hides preempt_count (5.10). */
MW_TWINS(softirq_entry, handle_softirq(vec, 1), unsigned int vec)
MW_TWINS(softirq_exit, handle_softirq(vec, 0), unsigned int vec)

/* ---- Thread names, execs and exits, for naming in user space ------------- */

MW_TWINS(task_rename, handle_rename(t, comm, btf), struct task_struct *t, const char *comm)
MW_TWINS(sched_process_exec, handle_exec(t, btf), struct task_struct *t)
MW_TWINS(sched_process_exit, handle_exit(t, btf), struct task_struct *t)
MW_TWINS(sched_process_free, handle_free(), struct task_struct *t)

/* ---- fentry, where the kernel allows it: the stopper's work by name ------ */

SEC("fentry/migration_cpu_stop")
int BPF_PROG(migration_cpu_stop_entry) { return enter_migration_cpu_stop(); }
SEC("fentry/active_load_balance_cpu_stop")
int BPF_PROG(active_load_balance_cpu_stop_entry) { return name_stopper_work(MW_WORK_ACTIVE_BALANCE); }
SEC("fentry/multi_cpu_stop")
int BPF_PROG(multi_cpu_stop_entry) { return name_stopper_work(MW_WORK_STOP_MACHINE); }
SEC("fentry/__balance_push_cpu_stop")
int BPF_PROG(balance_push_cpu_stop_entry) { return name_stopper_work(MW_WORK_HOTPLUG); }
SEC("fentry/push_cpu_stop")
int BPF_PROG(push_cpu_stop_entry) { return name_stopper_work(MW_WORK_RT_PUSH_PULL); }
SEC("fentry/softlockup_fn")
int BPF_PROG(softlockup_fn_entry) { return name_stopper_work(MW_WORK_WATCHDOG); }

/* Only before 5.11 (see core_fixes.bpf.h): moves off a CPU marked offline. */
SEC("fentry/move_queued_task")
int BPF_PROG(move_queued_task_entry) { return enter_move_queued_task(); }

SEC("fexit/move_queued_task")
int BPF_PROG(move_queued_task_exit, struct rq *rq, struct rq_flags *rf, struct task_struct *p, int new_cpu)
{
	return exit_move_queued_task(rq, p, new_cpu);
}

/* ---- Thread totals: the kernel's own count, read by user space ------------ */

/* Run by user space when it reads: one record per live thread that has
 * migrated, with se.nr_migrations (abi.h, mw_thread_record). */
SEC("iter/task")
int task(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task;
	struct mw_thread_record record;
	struct thread_key thread;

	/* Exited threads (zombies among them) are counted in exited_migrations
	 * already: from their exit to their last switch they are marked, after
	 * it their exit_state is set. */
	if (!t || !t->se.nr_migrations || t->exit_state)
		return 0;
	if (t->flags & PF_EXITING) {
		thread_key_of(t, &thread, true);
		if (bpf_map_lookup_elem(&exiting_threads, &thread))
			return 0;
	}
	process_key_of(t, &record.process, true);
	record.tid = t->pid;
	record.pad = 0;
	record.nr_migrations = t->se.nr_migrations;
	bpf_seq_write(ctx->meta->seq, &record, sizeof(record));
	return 0;
}
