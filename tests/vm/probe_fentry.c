// SPDX-License-Identifier: GPL-2.0-only
/*
 * Tells whether this kernel lets a BPF program attach with fentry, and
 * whether the raw tracepoint fallback works, the two attach paths migwatch
 * chooses between. It loads the smallest valid program ("r0 = 0; exit") of
 * each kind through libbpf's low-level API, so the answer depends on the
 * kernel alone and not on any compiled BPF object.
 *
 * Usage: probe_fentry [KERNEL_FUNCTION [RAW_TRACEPOINT]]
 * (defaults: move_queued_task sched_migrate_task)
 *
 * Prints one line per attempt:
 *   probe=fentry target=move_queued_task btf_id=N result=attached
 *   probe=raw_tp target=sched_migrate_task result=attach-failed errno=1 (Operation not permitted)
 * and exits 0 only if every attempt attached.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

static const char vmlinux_btf_path[] = "/sys/kernel/btf/vmlinux";

/* "r0 = 0; exit": valid for both program types; fentry requires return 0. */
static const struct bpf_insn return_zero[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
	{ .code = BPF_JMP | BPF_EXIT },
};

/* Large enough for the verifier's explanation of a two-instruction program. */
static char verifier_log[64 * 1024];

static void report_failure(const char *stage, int err)
{
	printf(" result=%s-failed errno=%d (%s)\n", stage, err, strerror(err));
}

/* The verifier log says why a load was refused when errno alone does not. */
static void print_verifier_log(void)
{
	if (verifier_log[0] != '\0')
		fprintf(stderr, "verifier log:\n%s\n", verifier_log);
}

static int load_program(enum bpf_prog_type type, enum bpf_attach_type attach_type,
			__u32 attach_btf_id)
{
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		    .expected_attach_type = attach_type,
		    .attach_btf_id = attach_btf_id,
		    .log_buf = verifier_log,
		    .log_size = sizeof(verifier_log),
		    .log_level = 1);

	verifier_log[0] = '\0';
	return bpf_prog_load(type, "probe_fentry", "GPL", return_zero,
			     sizeof(return_zero) / sizeof(return_zero[0]), &opts);
}

static int try_fentry(const char *function)
{
	int btf_id, prog_fd, link_fd, err;
	struct btf *vmlinux_btf;

	printf("probe=fentry target=%s", function);
	vmlinux_btf = btf__parse(vmlinux_btf_path, NULL);
	if (!vmlinux_btf) {
		err = errno;
		printf(" btf=%s", vmlinux_btf_path);
		report_failure("btf", err);
		return -1;
	}
	btf_id = btf__find_by_name_kind(vmlinux_btf, function, BTF_KIND_FUNC);
	btf__free(vmlinux_btf);
	if (btf_id < 0) {
		report_failure("btf-lookup", -btf_id);
		return -1;
	}
	printf(" btf_id=%d", btf_id);

	prog_fd = load_program(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, btf_id);
	if (prog_fd < 0) {
		err = errno;
		report_failure("load", err);
		print_verifier_log();
		return -1;
	}
	/*
	 * BPF_RAW_TRACEPOINT_OPEN with no name attaches a tracing program to the
	 * function it was loaded for; unlike BPF_LINK_CREATE it works from 5.5 on.
	 */
	link_fd = bpf_raw_tracepoint_open(NULL, prog_fd);
	err = errno;
	close(prog_fd);
	if (link_fd < 0) {
		report_failure("attach", err);
		return -1;
	}
	close(link_fd);
	printf(" result=attached\n");
	return 0;
}

static int try_raw_tracepoint(const char *tracepoint)
{
	int prog_fd, link_fd, err;

	printf("probe=raw_tp target=%s", tracepoint);
	prog_fd = load_program(BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0);
	if (prog_fd < 0) {
		err = errno;
		report_failure("load", err);
		print_verifier_log();
		return -1;
	}
	link_fd = bpf_raw_tracepoint_open(tracepoint, prog_fd);
	err = errno;
	close(prog_fd);
	if (link_fd < 0) {
		report_failure("attach", err);
		return -1;
	}
	close(link_fd);
	printf(" result=attached\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *function = argc > 1 ? argv[1] : "move_queued_task";
	const char *tracepoint = argc > 2 ? argv[2] : "sched_migrate_task";
	int failures = 0;

	if (argc > 3) {
		fprintf(stderr, "usage: %s [KERNEL_FUNCTION [RAW_TRACEPOINT]]\n", argv[0]);
		return 2;
	}
	/* Lines must reach a pipe or serial console in order with stderr. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	failures += try_fentry(function) != 0;
	failures += try_raw_tracepoint(tracepoint) != 0;
	return failures == 0 ? 0 : 1;
}
