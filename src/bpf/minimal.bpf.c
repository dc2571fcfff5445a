// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The floor any syscall tracer pays: one per-CPU counter bumped at every syscall exit, attached
 * the same way as coroner's recorder (tp_btf/sys_exit). Only the overhead benchmark loads it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} calls SEC(".maps");

SEC("tp_btf/sys_exit")
int BPF_PROG(minimal_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&calls, &zero);
	if (n)
		*n += 1;
	return 0;
}
