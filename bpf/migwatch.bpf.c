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

/* ---- Migrations ------------------------------------------------------------ */

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(sched_migrate_task_btf, struct task_struct *p, int dest_cpu)
{
	return handle_migrate(p, dest_cpu, true);
}

SEC("raw_tp/sched_migrate_task")
int BPF_PROG(sched_migrate_task_raw, struct task_struct *p, int dest_cpu)
{
	return handle_migrate(p, dest_cpu, false);
}

/* ---- Stopper threads -------------------------------------------------------- */

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return handle_switch(prev, next, true);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return handle_switch(prev, next, false);
}

SEC("tp_btf/sched_waking")
int BPF_PROG(sched_waking_btf, struct task_struct *p)
{
	return handle_waking(p, true);
}

SEC("raw_tp/sched_waking")
int BPF_PROG(sched_waking_raw, struct task_struct *p)
{
	return handle_waking(p, false);
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

SEC("tp_btf/sched_move_numa")
int BPF_PROG(sched_move_numa_btf, struct task_struct *p)
{
	announce_numa(p, NULL, true);
	return 0;
}

SEC("raw_tp/sched_move_numa")
int BPF_PROG(sched_move_numa_raw, struct task_struct *p)
{
	announce_numa(p, NULL, false);
	return 0;
}

SEC("tp_btf/sched_swap_numa")
int BPF_PROG(sched_swap_numa_btf, struct task_struct *src, int src_cpu, struct task_struct *dst)
{
	announce_numa(src, dst, true);
	return 0;
}

SEC("raw_tp/sched_swap_numa")
int BPF_PROG(sched_swap_numa_raw, struct task_struct *src, int src_cpu, struct task_struct *dst)
{
	announce_numa(src, dst, false);
	return 0;
}

/* Only where the kernel's BTF hides preempt_count (5.10). */
SEC("tp_btf/softirq_entry")
int BPF_PROG(softirq_entry_btf, unsigned int vec) { return handle_softirq(vec, 1); }
SEC("raw_tp/softirq_entry")
int BPF_PROG(softirq_entry_raw, unsigned int vec) { return handle_softirq(vec, 1); }
SEC("tp_btf/softirq_exit")
int BPF_PROG(softirq_exit_btf, unsigned int vec) { return handle_softirq(vec, 0); }
SEC("raw_tp/softirq_exit")
int BPF_PROG(softirq_exit_raw, unsigned int vec) { return handle_softirq(vec, 0); }

/* ---- Thread names, execs and exits, for naming in user space ------------- */

SEC("tp_btf/task_rename")
int BPF_PROG(task_rename_btf, struct task_struct *t, const char *comm)
{
	return handle_rename(t, comm, true);
}

SEC("raw_tp/task_rename")
int BPF_PROG(task_rename_raw, struct task_struct *t, const char *comm)
{
	return handle_rename(t, comm, false);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec_btf, struct task_struct *t)
{
	return handle_exec(t, true);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(sched_process_exec_raw, struct task_struct *t)
{
	return handle_exec(t, false);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit_btf, struct task_struct *t)
{
	return handle_exit(t, true);
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(sched_process_exit_raw, struct task_struct *t)
{
	return handle_exit(t, false);
}

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
