/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel types coroner's BPF programs touch, written by hand for CO-RE (see README.md in
 * this directory). Every struct is `preserve_access_index`: libbpf relocates each field access
 * against the running kernel's BTF at load, so only the fields used here need to exist, in any
 * order and at any offset. Checked against `bpftool btf dump file /sys/kernel/btf/vmlinux format c`
 * of Linux 6.18 (x86_64).
 */
#ifndef __CORONER_VMLINUX_H__
#define __CORONER_VMLINUX_H__
/* Tells libbpf's bpf_tracing.h to use the kernel's pt_regs field names (di, not rdi). */
#define __VMLINUX_H__

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
typedef int pid_t;
typedef unsigned int uid_t;
#define true 1
#define false 0
#define NULL ((void *)0)

/* uapi/linux/bpf.h: the values libbpf's headers and the map definitions need. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* Checked with bpf_core_enum_value_exists before use: older kernels lack the helper. */
enum bpf_func_id {
	BPF_FUNC_find_vma = 180,
};

enum {
	BPF_F_USER_STACK = (1ULL << 8),
	BPF_F_USER_BUILD_ID = (1ULL << 11),
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

/* bpf_ringbuf_submit() flags. */
enum {
	BPF_RB_NO_WAKEUP = (1ULL << 0),
	BPF_RB_FORCE_WAKEUP = (1ULL << 1),
};

enum {
	BPF_F_NO_PREALLOC = (1U << 0),
	BPF_F_MMAPABLE = (1U << 10),
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di;
	unsigned long orig_ax;
	unsigned long ip, cs, flags, sp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
struct pt_regs {
	union {
		struct user_pt_regs user_regs;
		struct {
			__u64 regs[31];
			__u64 sp;
			__u64 pc;
			__u64 pstate;
		};
	};
	__u64 orig_x0;
	__s32 syscallno;
};
#else
#error "coroner's BPF programs support x86_64 and aarch64 only"
#endif

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	long counter;
} atomic_long_t;

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
	int level; /* 0: the hierarchy's root */
};

/* Values as on 6.18; CO-RE relocates them by name (bpf_core_enum_value), so only names matter. */
enum cgroup_subsys_id {
	memory_cgrp_id = 4,
	pids_cgrp_id = 11,
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

struct css_set {
	struct cgroup_subsys_state *subsys[12];
	struct cgroup *dfl_cgrp;
};

/* The memory controller's counters, in pages; the same struct serves cgroup v1 and v2. */
struct page_counter {
	atomic_long_t usage;
	unsigned long failcnt;
	unsigned long watermark; /* the peak: v1 memory.max_usage_in_bytes, v2 memory.peak */
};

enum memcg_memory_event {
	MEMCG_OOM = 3,
	MEMCG_OOM_KILL = 4,
};

struct mem_cgroup {
	struct cgroup_subsys_state css;
	struct page_counter memory;
	atomic_long_t memory_events[9];
};

/* kernel/cgroup/pids.c; `watermark` is v2 `pids.peak` (Linux >= 6.1). */
struct pids_cgroup {
	struct cgroup_subsys_state css;
	s64 watermark;
};

/* Linux >= 6.2: one percpu_counter per MM_* counter; `count` is the folded (approximate) sum. */
struct percpu_counter {
	s64 count;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct percpu_counter rss_stat[4];
};

/* Linux < 6.2 kept the counters as atomics; the ___old flavour lets CO-RE pick the layout. */
struct mm_rss_stat {
	atomic_long_t count[4];
};

struct mm_struct___old {
	struct mm_rss_stat rss_stat;
};

struct signal_struct {
	atomic_t live;
	int group_exit_code;
	unsigned int flags;
};

struct inode;

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct qstr d_name;
};

struct path {
	struct dentry *dentry;
};

struct file {
	struct inode *f_inode;
	struct path f_path;
};

/* vm_start/vm_end and vm_flags sit in anonymous unions in the kernel: CO-RE finds them there. */
struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	unsigned long vm_flags;
	unsigned long vm_pgoff;
	struct file *vm_file;
};

struct sigaction {
	void *sa_handler;
};

struct k_sigaction {
	struct sigaction sa;
};

struct sighand_struct {
	struct k_sigaction action[64];
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
	struct fdtable fdtab;
	struct file *fd_array[64];
};

/* The scheduler's per-thread accounting: `sum_exec_runtime` is the thread's CPU time in ns, the
 * figure cgroup v2 `cpu.stat` `usage_usec` and v1 `cpuacct.usage` sum up. */
struct sched_entity {
	u64 sum_exec_runtime;
};

struct task_struct {
	unsigned int flags;
	struct sched_entity se;
	struct mm_struct *mm;
	int exit_code;
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	char comm[16];
	struct signal_struct *signal;
	struct css_set *cgroups;
	struct files_struct *files;
	struct sighand_struct *sighand;
};

struct oom_control {
	struct task_struct *chosen;
};

union __sifields {
	struct {
		void *_addr;
	} _sigfault;
};

struct kernel_siginfo {
	struct {
		int si_signo;
		int si_errno;
		int si_code;
		union __sifields _sifields;
	};
};

struct linux_binprm {
	const char *filename;
};

#pragma clang attribute pop

#endif /* __CORONER_VMLINUX_H__ */
