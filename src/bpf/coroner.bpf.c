// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * coroner's kernel side: a per-container syscall flight recorder and process events.
 *
 * Keyed by the current task's cgroup2 id, recording starts at a cgroup's first syscall, with no
 * help from userspace: a cgroup that is neither the root nor listed in `host_cgroups` gets a slot
 * (summary counters, error table, first failures, output capture) and a ring of its last
 * `ring_entries` syscalls. Slots are reused round-robin (free ones first) once `max_containers`
 * are taken. Process events (fork, exec, exit, fatal signals, OOM victim) of the same cgroups go
 * to userspace through a ring buffer.
 *
 * The syscall program runs at every syscall exit on the host: its hot path is one per-CPU cache
 * check, array lookups (inlined by the verifier) and plain stores. Anything rarer (allocation,
 * errors, data copies, output capture) lives in non-inlined functions. User memory (paths,
 * socket addresses) is copied only for failing calls and the few successful ones userspace
 * flags: the copy is a helper call, dearer than all the rest.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "coroner.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before load (frozen: the verifier sees them as constants). */
const volatile __u32 max_containers = 256;
const volatile __u32 ring_entries = 256; /* power of two */
const volatile __u64 page_size = 4096;

/* Kernel-side counters userspace reads for its metrics. */
__u64 events_lost = 0;    /* ring buffer full */
__u64 slot_evictions = 0; /* a live slot taken over by another cgroup */
__u64 alloc_failures = 0; /* a cgroup not recorded for a syscall (lost race, cg_slots full) */
__u64 alloc_next = 0;     /* round-robin allocation cursor */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct slot);
	__uint(max_entries, 256);
} slots SEC(".maps");

/* Slot i's flight recorder is elements [i * ring_entries, (i + 1) * ring_entries). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct sys_record);
	__uint(max_entries, 256 * 256);
	/* Values start page-aligned: each record covers whole cache lines (coroner.h). */
	__uint(map_flags, BPF_F_MMAPABLE);
} ring SEC(".maps");

/* cgroup id -> slot index. Twice the slots, so stale entries left by races never block. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, __u32);
	__uint(max_entries, 512);
} cg_slots SEC(".maps");

/* cgroups userspace told us never to record (the host's services, the agent itself). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __u8);
	__uint(max_entries, 8192);
} host_cgroups SEC(".maps");

/* Syscall number -> data-spec byte (CORONER_SPEC_*), filled by userspace before attach. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u8);
	__uint(max_entries, CORONER_NR_MAX);
} syscall_spec SEC(".maps");

/* The last cgroup seen on this CPU and its slot (or that it is a host cgroup): most syscalls
 * never touch the hash maps. Validated against the slot's owner on every use. Also this CPU's
 * tick clock. */
struct cpu_cache {
	__u64 cgroup_id;
	__u32 idx;
	__u32 host;
	/* The boot-time clock read at the first syscall of the current tick on this CPU. */
	__u64 tick_jiffies;
	__u64 tick_boot_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct cpu_cache);
	__uint(max_entries, 1);
} cpu_cache SEC(".maps");

/* Never written: the source of the zeroes a reallocated slot's tables are reset from. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct slot_tables);
	__uint(max_entries, 1);
} zeroes SEC(".maps");

/* A successful execve's path, from sched_process_exec to the syscall's exit (the argument
 * points into the old address space by then). */
struct exec_path {
	__u32 len;
	__u32 truncated;
	__u8 path[CORONER_DATA_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, struct exec_path);
	__uint(max_entries, 1024);
} exec_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} events SEC(".maps");

/* Userspace's own state across agent processes (coroner.h); never touched here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct agent_state);
	__uint(max_entries, 1);
} agent_state SEC(".maps");

/* Process events an agent consumed and keeps in the kernel until the container's report is
 * written (coroner.h); written and deleted by userspace only. Entries take memory only when
 * used (no preallocation): at most 16384 x 832 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct saved_event_key);
	__type(value, struct saved_event);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} saved_events SEC(".maps");

/* The user stack at the last fatal signal a recorded cgroup's thread raised on itself
 * (coroner.h, `struct fatal_stack`), until userspace drains the cgroup. LRU: never full, and
 * sized to the slots by the loader: 256 x ~1.6 KiB at the defaults. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, struct fatal_stack);
	__uint(max_entries, 256);
} fatal_stacks SEC(".maps");

/* Where a stack is assembled (it is bigger than the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct fatal_stack);
	__uint(max_entries, 1);
} stack_scratch SEC(".maps");

_Static_assert(sizeof(struct stack_frame_id) == 32, "stack_frame_id is struct bpf_stack_build_id");
_Static_assert(sizeof(struct exec_event) == CORONER_EVENT_MAX, "CORONER_EVENT_MAX is the largest event");

/* Keeps the event structs in the object's BTF, so the skeleton generates their Rust types. */
struct fork_event _fork_event = {};
struct exec_event _exec_event = {};
struct exit_event _exit_event = {};
struct signal_event _signal_event = {};
struct oom_event _oom_event = {};
struct fatal_stack _fatal_stack = {};

#define barrier() asm volatile("" ::: "memory")

#if defined(__TARGET_ARCH_x86)
#define NR_WRITE 1
#define NR_WRITEV 20
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define SYSCALL_ARGS(regs, a)                                                                      \
	do {                                                                                       \
		(a)[0] = (regs)->di;                                                               \
		(a)[1] = (regs)->si;                                                               \
		(a)[2] = (regs)->dx;                                                               \
		(a)[3] = (regs)->r10;                                                              \
		(a)[4] = (regs)->r8;                                                               \
		(a)[5] = (regs)->r9;                                                               \
	} while (0)
#elif defined(__TARGET_ARCH_arm64)
#define NR_WRITE 64
#define NR_WRITEV 66
#define NR_EXECVE 221
#define NR_EXECVEAT 281
#define SYSCALL_NR(regs) ((__u64)(__s64)(regs)->syscallno)
/* x0 holds the return value at exit; the first argument survives in orig_x0. */
#define SYSCALL_ARGS(regs, a)                                                                      \
	do {                                                                                       \
		(a)[0] = (regs)->orig_x0;                                                          \
		(a)[1] = (regs)->regs[1];                                                          \
		(a)[2] = (regs)->regs[2];                                                          \
		(a)[3] = (regs)->regs[3];                                                          \
		(a)[4] = (regs)->regs[4];                                                          \
		(a)[5] = (regs)->regs[5];                                                          \
	} while (0)
#endif

static __always_inline bool is_exec(__u32 nr)
{
	return nr == NR_EXECVE || nr == NR_EXECVEAT;
}

/* Kernel-internal restart codes (ERESTARTSYS..ERESTART_RESTARTBLOCK) never reach userspace. */
static __always_inline bool is_restart(__s64 ret)
{
	return ret <= -512 && ret >= -516;
}

static __always_inline bool is_error(__s64 ret)
{
	return ret < 0 && ret >= -4095;
}

/* A cgroup whose tasks are recorded: not the root, not one userspace marked as the host's. */
static __always_inline bool recorded_cgroup(__u64 cg)
{
	return cg > 1 && !bpf_map_lookup_elem(&host_cgroups, &cg);
}

/*
 * Takes a slot for `cg`: a free one among the next CORONER_FREE_PROBES after the round-robin
 * cursor, else the cursor's (evicting its owner). Returns the index, or -1.
 */
static __noinline int alloc_slot(__u64 cg)
{
	__u32 max = max_containers;
	if (max == 0)
		return -1;
	__u64 cursor = __sync_fetch_and_add(&alloc_next, 1);
	__u32 idx = cursor % max;
	__u64 old = 0;
	bool claimed = false;
	struct slot *s = NULL;

	for (int i = 0; i < CORONER_FREE_PROBES; i++) {
		__u32 j = (idx + i) % max;
		s = bpf_map_lookup_elem(&slots, &j);
		if (!s)
			return -1;
		if (s->cgroup_id == 0 && __sync_val_compare_and_swap(&s->cgroup_id, 0, cg) == 0) {
			idx = j;
			claimed = true;
			break;
		}
	}
	if (!claimed) {
		s = bpf_map_lookup_elem(&slots, &idx);
		if (!s)
			return -1;
		old = s->cgroup_id;
		if (__sync_val_compare_and_swap(&s->cgroup_id, old, cg) != old) {
			__sync_fetch_and_add(&alloc_failures, 1);
			return -1;
		}
	}
	if (bpf_map_update_elem(&cg_slots, &cg, &idx, BPF_NOEXIST) != 0) {
		/* Another CPU allocated for this cgroup meanwhile (or the map is full): give the
		 * slot back and use theirs. */
		__sync_val_compare_and_swap(&s->cgroup_id, cg, old);
		__u32 *theirs = bpf_map_lookup_elem(&cg_slots, &cg);
		if (theirs)
			return *theirs;
		__sync_fetch_and_add(&alloc_failures, 1);
		return -1;
	}
	if (old != 0 && old != cg) {
		__u32 *prev = bpf_map_lookup_elem(&cg_slots, &old);
		if (prev && *prev == idx)
			bpf_map_delete_elem(&cg_slots, &old);
		__sync_fetch_and_add(&slot_evictions, 1);
	}

	__u32 zero = 0;
	struct slot_tables *z = bpf_map_lookup_elem(&zeroes, &zero);
	if (z)
		bpf_probe_read_kernel(&s->counts, sizeof(struct slot_tables), z);
	s->workload = 0;
	s->setup_calls = 0;
	s->ring_head = 0;
	s->first_fail_n = 0;
	s->err_dropped = 0;
	s->distinct_n = 0;
	s->out[0].total = 0;
	s->out[1].total = 0;
	s->out_inode[0] = 0;
	s->out_inode[1] = 0;
	s->usage.boot_ns = 0;
	s->usage.flags = 0;
	s->usage.cpu_ns = 0;
	s->gen += 1;
	return idx;
}

/* The first four bytes of a comm starting with "runc", read as a little-endian word. */
#define RUNC_COMM 0x636e7572u

/* Slow path of the slot lookup: the cgroup hash, the host list, allocation. Returns the slot
 * index, -1 when nothing is recorded for this syscall, -2 for a host cgroup. */
static __noinline int find_slot(__u64 cg)
{
	__u32 *p = bpf_map_lookup_elem(&cg_slots, &cg);
	if (p) {
		__u32 idx = *p;
		struct slot *s = bpf_map_lookup_elem(&slots, &idx);
		if (s && s->cgroup_id == cg)
			return idx;
		/* The slot went to another cgroup (or userspace freed it) without this entry
		 * being removed: a lost race. */
		bpf_map_delete_elem(&cg_slots, &cg);
	}
	if (bpf_map_lookup_elem(&host_cgroups, &cg))
		return -2;
	return alloc_slot(cg);
}

/* Copies `len` user bytes that sit at stream position `off` into the capture buffers. The
 * explicit bounds are for the verifier, which checks off_max + len_max against the value size
 * (hence the streams' place at the front of `struct slot`). */
static __noinline void capture(struct out_stream *st, __u64 ubuf, __u64 len, __u64 off)
{
	if (off < CORONER_OUT_CAP) {
		__u64 n = CORONER_OUT_CAP - off;
		if (n > len)
			n = len;
		if (n > CORONER_OUT_CAP)
			return;
		bpf_probe_read_user(&st->head[off], n, (void *)ubuf);
		off += n;
		ubuf += n;
		len -= n;
	}
	if (len == 0)
		return;
	/* Only the last OUT_CAP bytes of what remains can survive in the tail. */
	if (len > CORONER_OUT_CAP) {
		ubuf += len - CORONER_OUT_CAP;
		off += len - CORONER_OUT_CAP;
		len = CORONER_OUT_CAP;
	}
	__u64 t = (off - CORONER_OUT_CAP) & (CORONER_OUT_CAP - 1);
	__u64 n1 = CORONER_OUT_CAP - t;
	if (n1 > len)
		n1 = len;
	if (n1 > CORONER_OUT_CAP)
		return;
	bpf_probe_read_user(&st->tail[t], n1, (void *)ubuf);
	__u64 n2 = len - n1;
	if (n2 == 0 || n2 > CORONER_OUT_CAP)
		return;
	bpf_probe_read_user(&st->tail[0], n2, (void *)(ubuf + n1));
}

struct user_iovec {
	__u64 base;
	__u64 len;
};

#define WRITEV_IOVECS 4

/* The inode behind the current task's `fd`, as a number to compare; 0 if none. Plain loads
 * only: the fd array (`struct file **`, which BTF cannot follow) is read through a files_struct
 * view placed so that its fd_array[0] is the wanted slot (bpf_core_cast costs nothing at run
 * time, and a bad address reads as 0). */
static __noinline __u64 fd_inode(__u64 fd, struct task_struct *t)
{
	struct fdtable *fdt = t->files->fdt;
	if (fd >= fdt->max_fds)
		return 0;
	__u64 slot = (__u64)fdt->fd + fd * sizeof(void *);
	struct file *f = NULL;
	if (bpf_ksym_exists(bpf_rdonly_cast)) {
		struct files_struct *view = bpf_core_cast(
			(void *)(slot - bpf_core_field_offset(struct files_struct, fd_array)), struct files_struct);
		f = view->fd_array[0];
	} else {
		/* Kernels before 6.2: no bpf_rdonly_cast; two probe reads instead. */
		if (bpf_probe_read_kernel(&f, sizeof(f), (void *)slot))
			return 0;
		if (!f)
			return 0;
		return (__u64)BPF_CORE_READ(f, f_inode);
	}
	if (!f)
		return 0;
	return (__u64)f->f_inode;
}

/* write/writev on fd 1 or 2 that wrote `ret` bytes: output if it went where the entrypoint's
 * stdout or stderr went. */
static __noinline void capture_output(struct slot *s, struct sys_record *r, __s64 ret, struct task_struct *t)
{
	__u64 buf = r->args[1], cnt = r->args[2];
	__u64 fd = r->args[0];
	__u64 ino = fd_inode(fd, t);
	int i;
	if (ino == 0)
		return;
	if (s->out_inode[0] == s->out_inode[1])
		i = ino == s->out_inode[0] ? (fd == 2) : -1; /* one file (a tty): go by the fd */
	else if (ino == s->out_inode[0])
		i = 0;
	else if (ino == s->out_inode[1])
		i = 1;
	else
		i = -1;
	if (i < 0)
		return;
	struct out_stream *st = &s->out[i & 1];
	__u64 off = __sync_fetch_and_add(&st->total, ret);
	if (r->nr == NR_WRITE) {
		capture(st, buf, ret, off);
		return;
	}
	__u64 left = ret;
	for (int i = 0; i < WRITEV_IOVECS; i++) {
		struct user_iovec iov;
		if (i >= cnt || left == 0)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(buf + i * sizeof(iov))))
			break;
		__u64 n = iov.len < left ? iov.len : left;
		if (n)
			capture(st, iov.base, n, off);
		off += n;
		left -= n;
	}
}

/* The user memory the syscall's spec byte names, into the record. Called for failing calls and
 * for successful ones whose spec has CORONER_SPEC_ON_SUCCESS (see coroner.h); otherwise the
 * record keeps data_len 0 and userspace shows the pointer as not copied. */
static __noinline void copy_data(struct sys_record *r, __u8 spec, __u32 nr, __s64 ret)
{
	__u32 ptr_arg = (spec & CORONER_SPEC_PTR_MASK) - 1;
	if (ptr_arg >= 6)
		return;
	__u64 ptr = r->args[ptr_arg];

	if (is_exec(nr) && ret == 0) {
		/* The path argument pointed into the address space exec just replaced. */
		__u32 tid = r->tid;
		struct exec_path *ep = bpf_map_lookup_elem(&exec_paths, &tid);
		if (ep) {
			bpf_probe_read_kernel(r->data, sizeof(r->data), ep->path);
			r->data_len = ep->len < CORONER_DATA_MAX ? ep->len : CORONER_DATA_MAX;
			r->data_truncated = ep->truncated;
			bpf_map_delete_elem(&exec_paths, &tid);
		}
		return;
	}
	if (ptr == 0)
		return;
	if (spec & CORONER_SPEC_SOCKADDR) {
		__u32 len_arg = (spec >> CORONER_SPEC_LEN_SHIFT) & CORONER_SPEC_LEN_MASK;
		if (len_arg >= 6)
			return;
		__u64 len = r->args[len_arg];
		if (len > CORONER_DATA_MAX) {
			len = CORONER_DATA_MAX;
			r->data_truncated = 1;
		}
		if (bpf_probe_read_user(r->data, len, (void *)ptr) == 0)
			r->data_len = len;
		else
			r->data_truncated = 0;
		return;
	}
	long n = bpf_probe_read_user_str(r->data, sizeof(r->data), (void *)ptr);
	if (n <= 0)
		return;
	r->data_len = n - 1;
	if (n == CORONER_DATA_MAX) {
		char c = 0;
		if (bpf_probe_read_user(&c, 1, (void *)(ptr + CORONER_DATA_MAX - 1)) == 0 && c != 0)
			r->data_truncated = 1;
	}
}

/* One more (nr, errno) in the slot's open-addressed table; the call that enters a new pair also
 * keeps its record in `distinct_fail` (while there is room). */
static __noinline void count_error(struct slot *s, struct sys_record *r, __u32 nr, __u32 err)
{
	__u32 key = (nr << 12) | (err & 0xfff);
	__u32 h = (key * 2654435761u) >> 26; /* 64 buckets */

	for (int i = 0; i < CORONER_ERR_PROBES; i++) {
		struct err_entry *e = &s->errs[(h + i) & (CORONER_ERR_SLOTS - 1)];
		__u32 k = e->key;
		if (k == 0) {
			k = __sync_val_compare_and_swap(&e->key, 0, key);
			if (k == 0) {
				k = key;
				__u32 n = __sync_fetch_and_add(&s->distinct_n, 1);
				if (n < CORONER_DISTINCT_FAILURES)
					bpf_probe_read_kernel(&s->distinct_fail[n], sizeof(struct sys_record), r);
			}
		}
		if (k == key) {
			__sync_fetch_and_add(&e->count, 1);
			return;
		}
	}
	__sync_fetch_and_add(&s->err_dropped, 1);
}

static __noinline void first_failure(struct slot *s, struct sys_record *r)
{
	__u32 n = __sync_fetch_and_add(&s->first_fail_n, 1);
	if (n < CORONER_FIRST_FAILURES)
		bpf_probe_read_kernel(&s->first_fail[n], sizeof(struct sys_record), r);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(coroner_sys_exit, struct pt_regs *regs, long ret)
{
	/* Plain loads from the current task instead of helpers: the same reads, no calls. */
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 cg = t->cgroups->dfl_cgrp->kn->id;
	if (cg <= 1)
		return 0;

	__u32 zero = 0;
	struct cpu_cache *c = bpf_map_lookup_elem(&cpu_cache, &zero);
	if (!c)
		return 0;
	__u32 idx;
	struct slot *s = NULL;
	if (c->cgroup_id == cg) {
		if (c->host)
			return 0;
		idx = c->idx;
		s = bpf_map_lookup_elem(&slots, &idx);
		if (s && s->cgroup_id != cg)
			s = NULL;
	}
	if (!s) {
		int found = find_slot(cg);
		if (found == -2) {
			c->cgroup_id = cg;
			c->host = 1;
			return 0;
		}
		if (found < 0)
			return 0;
		idx = found;
		s = bpf_map_lookup_elem(&slots, &idx);
		if (!s)
			return 0;
		c->cgroup_id = cg;
		c->idx = idx;
		c->host = 0;
	}

	__u64 nr64 = SYSCALL_NR(regs);
	if (nr64 >= CORONER_NR_MAX)
		return 0;
	__u32 nr = nr64;

	__u64 pos = __sync_fetch_and_add(&s->ring_head, 1);
	__u32 key = idx * ring_entries + (pos & (ring_entries - 1));
	struct sys_record *r = bpf_map_lookup_elem(&ring, &key);
	if (!r)
		return 0;
	r->seq = 0;
	barrier();
	/* Tick resolution: the clock is read once per tick per CPU (a clock read costs more than
	 * the rest of this program on VMs); bpf_jiffies64() is a plain load. */
	__u64 now = bpf_jiffies64();
	if (c->tick_jiffies != now) {
		c->tick_jiffies = now;
		c->tick_boot_ns = bpf_ktime_get_boot_ns();
	}
	r->boot_ns = c->tick_boot_ns;
	SYSCALL_ARGS(regs, r->args);
	r->ret = ret;
	r->gen = s->gen;
	r->pid = t->tgid;
	r->tid = t->pid;
	r->nr = nr;
	r->data_len = 0;
	r->data_truncated = 0;
	/* task->comm as two words: always NUL-terminated by the kernel within its 16 bytes. */
	const __u64 *comm = (const __u64 *)t->comm;
	__u64 *dst = (__u64 *)r->comm;
	dst[0] = comm[0];
	dst[1] = comm[1];

	/* User memory only where a postmortem needs it: for every failing call, and for the
	 * successful calls userspace flagged (execs, opens that name fds, socket addresses, ...). */
	__u8 *spec = bpf_map_lookup_elem(&syscall_spec, &nr);
	if (spec && (*spec & CORONER_SPEC_PTR_MASK) && (ret < 0 || (*spec & CORONER_SPEC_ON_SUCCESS)))
		copy_data(r, *spec, nr, ret);
	barrier();
	r->seq = pos + 1;

	if (!s->workload) {
		/* runc re-executes itself (`runc init` from a memfd, comm "runc") and may already be
		 * in the container's cgroup when it does: that exec is set-up, not the entrypoint. */
		if (!(ret == 0 && is_exec(nr)) || (comm[0] & 0xffffffff) == RUNC_COMM) {
			__sync_fetch_and_add(&s->setup_calls, 1);
			return 0;
		}
		/* The entrypoint's exec: everything from here on is the workload's. */
		s->out_inode[0] = fd_inode(1, t);
		s->out_inode[1] = fd_inode(2, t);
		s->workload = 1;
	}
	__sync_fetch_and_add(&s->counts[nr & (CORONER_NR_MAX - 1)], 1);
	if (is_error(ret) && !is_restart(ret)) {
		count_error(s, r, nr, -ret);
		if (s->first_fail_n < CORONER_FIRST_FAILURES)
			first_failure(s, r);
	}

	/* The workload's output only: set-up writes to fd 1 may go anywhere (a shell's
	 * `echo $$ > cgroup.procs`). */
	if (ret > 0 && (nr == NR_WRITE || nr == NR_WRITEV)) {
		__u64 fd = r->args[0];
		if (fd == 1 || fd == 2)
			capture_output(s, r, ret, t);
	}
	return 0;
}

static __always_inline void fill_header(struct event_header *h, __u32 type, __u32 pid, __u64 cg)
{
	h->type = type;
	h->pid = pid;
	h->boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = cg;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

static __always_inline __u64 task_cgroup_id(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(coroner_fork, struct task_struct *parent, struct task_struct *child)
{
	/* New threads are not processes. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	__u64 cg = bpf_get_current_cgroup_id();
	if (!recorded_cgroup(cg))
		return 0;
	struct fork_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return 0;
	}
	fill_header(&e->hdr, CORONER_EV_FORK, BPF_CORE_READ(parent, tgid), cg);
	e->child_pid = BPF_CORE_READ(child, tgid);
	e->_pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(coroner_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 cg = bpf_get_current_cgroup_id();
	if (!recorded_cgroup(cg))
		return 0;
	const char *filename = BPF_CORE_READ(bprm, filename);

	/* For the flight record of this execve, written at the syscall's exit. */
	__u32 tid = BPF_CORE_READ(p, pid);
	struct exec_path ep = {};
	long n = bpf_probe_read_kernel_str(ep.path, sizeof(ep.path), filename);
	if (n > 0) {
		ep.len = n - 1;
		ep.truncated = n == CORONER_DATA_MAX;
		bpf_map_update_elem(&exec_paths, &tid, &ep, BPF_ANY);
	}

	struct exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return 0;
	}
	fill_header(&e->hdr, CORONER_EV_EXEC, BPF_CORE_READ(p, tgid), cg);
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	e->filename_len = n > 0 ? n - 1 : 0;

	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	__u64 start = BPF_CORE_READ(mm, arg_start);
	__u64 end = BPF_CORE_READ(mm, arg_end);
	__u64 len = end > start ? end - start : 0;
	if (len > CORONER_ARGV_MAX)
		len = CORONER_ARGV_MAX;
	e->argv_len = 0;
	if (len && bpf_probe_read_user(e->argv, len, (void *)start) == 0)
		e->argv_len = len;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* One counter of memory_events[] by its enum value on the running kernel. */
static __always_inline __u64 memcg_event(struct mem_cgroup *m, __u32 event)
{
	long v = 0;
	if (event >= 16)
		return 0;
	bpf_probe_read_kernel(&v, sizeof(v),
			      (void *)m + bpf_core_field_offset(struct mem_cgroup, memory_events) +
				      event * sizeof(atomic_long_t));
	return v > 0 ? v : 0;
}

/* The slot of `cg`, or NULL. */
static __always_inline struct slot *slot_of(__u64 cg)
{
	__u32 *found = bpf_map_lookup_elem(&cg_slots, &cg);
	if (!found)
		return NULL;
	__u32 idx = *found;
	struct slot *s = bpf_map_lookup_elem(&slots, &idx);
	if (!s || s->cgroup_id != cg)
		return NULL;
	return s;
}

/*
 * The task's state of controller `id` (a `*_cgrp_id` value on the running kernel), when it is the
 * container's own and not an ancestor's (v2 with the controller not enabled down to it): runc
 * makes the same path in every hierarchy, so the container's sits at its unified cgroup's depth.
 */
static __always_inline struct cgroup_subsys_state *own_css(struct css_set *cs, __u32 id)
{
	if (id >= bpf_core_field_size(struct css_set, subsys) / sizeof(void *))
		return NULL;
	struct cgroup_subsys_state *css = NULL;
	if (bpf_probe_read_kernel(&css, sizeof(css),
				  (void *)cs + bpf_core_field_offset(struct css_set, subsys) +
					  id * sizeof(void *)) ||
	    !css)
		return NULL;
	int level = BPF_CORE_READ(css, cgroup, level);
	if (level == 0 || level != BPF_CORE_READ(cs, dfl_cgrp, level))
		return NULL;
	return css;
}

/*
 * Every exiting thread of a recorded cgroup adds its CPU time to the slot: when the last one is
 * gone the sum is what the cgroup's `cpu.stat` said, and it outlives the cgroup.
 */
static __noinline void add_exit_cpu(struct task_struct *p, __u64 cg)
{
	struct slot *s = slot_of(cg);
	if (!s || !bpf_core_field_exists(struct sched_entity, sum_exec_runtime))
		return;
	__sync_fetch_and_add(&s->usage.cpu_ns, BPF_CORE_READ(p, se.sum_exec_runtime));
}

/*
 * The memory and pids cgroups' figures into the exiting process's slot (coroner.h, `struct
 * exit_usage`), beside the CPU time add_exit_cpu summed. Every field is checked for existence on
 * the running kernel (CO-RE), so a kernel without one leaves its flag clear instead of failing
 * the load.
 */
static __noinline void note_exit_usage(struct task_struct *p, __u64 cg)
{
	struct slot *s = slot_of(cg);
	if (!s)
		return;
	struct css_set *cs = BPF_CORE_READ(p, cgroups);
	struct exit_usage u = {};
	if (bpf_core_field_exists(struct sched_entity, sum_exec_runtime))
		u.flags |= CORONER_USAGE_CPU;
	if (bpf_core_type_exists(struct pids_cgroup) &&
	    bpf_core_field_exists(struct pids_cgroup, watermark) &&
	    bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id)) {
		struct cgroup_subsys_state *css =
			own_css(cs, bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id));
		if (css) {
			struct pids_cgroup *pc = (void *)css - bpf_core_field_offset(struct pids_cgroup, css);
			s64 peak = BPF_CORE_READ(pc, watermark);
			u.pids_peak = peak > 0 ? peak : 0;
			u.flags |= CORONER_USAGE_PIDS_PEAK;
		}
	}
	struct cgroup_subsys_state *css = NULL;
	if (bpf_core_type_exists(struct mem_cgroup) &&
	    bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		css = own_css(cs, bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id));
	if (css) {
		struct mem_cgroup *m = (void *)css - bpf_core_field_offset(struct mem_cgroup, css);
		__u64 pg = page_size;
		if (bpf_core_field_exists(struct page_counter, usage)) {
			long cur = BPF_CORE_READ(m, memory.usage.counter);
			u.current_bytes = cur > 0 ? cur * pg : 0;
			u.flags |= CORONER_USAGE_CURRENT;
		}
		if (bpf_core_field_exists(struct page_counter, watermark)) {
			u.peak_bytes = BPF_CORE_READ(m, memory.watermark) * pg;
			u.flags |= CORONER_USAGE_PEAK;
		}
		if (bpf_core_field_exists(struct page_counter, failcnt)) {
			u.failcnt = BPF_CORE_READ(m, memory.failcnt);
			u.flags |= CORONER_USAGE_FAILCNT;
		}
		if (bpf_core_field_exists(struct mem_cgroup, memory_events)) {
			if (bpf_core_enum_value_exists(enum memcg_memory_event, MEMCG_OOM)) {
				u.oom = memcg_event(m, bpf_core_enum_value(enum memcg_memory_event, MEMCG_OOM));
				u.flags |= CORONER_USAGE_OOM;
			}
			if (bpf_core_enum_value_exists(enum memcg_memory_event, MEMCG_OOM_KILL)) {
				u.oom_kill = memcg_event(m, bpf_core_enum_value(enum memcg_memory_event,
										 MEMCG_OOM_KILL));
				u.flags |= CORONER_USAGE_OOM_KILL;
			}
		}
	}
	u.pid = BPF_CORE_READ(p, tgid);
	u.boot_ns = bpf_ktime_get_boot_ns();
	/* Everything but cpu_ns, which other threads' exits may be adding to right now. */
	bpf_probe_read_kernel(&s->usage, __builtin_offsetof(struct exit_usage, cpu_ns), &u);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(coroner_exit, struct task_struct *p)
{
	__u64 cg = bpf_get_current_cgroup_id();
	if (!recorded_cgroup(cg))
		return 0;
	add_exit_cpu(p, cg);
	/* do_exit() decremented signal->live before this tracepoint: 0 means the whole thread
	 * group is gone (the `group_dead` argument of newer kernels, without depending on it). */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	/* Before the event: the figures must not depend on room in the ring buffer. */
	note_exit_usage(p, cg);
	struct exit_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return 0;
	}
	fill_header(&e->hdr, CORONER_EV_EXIT, BPF_CORE_READ(p, tgid), cg);
	e->wait_status = BPF_CORE_READ(p, exit_code);
	e->_pad = 0;
	/* A report waits for this event: wake the reader now, whatever it is doing. */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/* Signals whose default action ends the process, minus the ones timers and profilers send
 * all day (SIGVTALRM, SIGPROF, SIGIO); real-time signals are left out for the same reason. */
#define FATAL_SIGNALS                                                                              \
	((1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) |      \
	 (1u << 8) | (1u << 9) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | \
	 (1u << 15) | (1u << 16) | (1u << 24) | (1u << 25) | (1u << 30) | (1u << 31))

#define TRACE_SIGNAL_DELIVERED 0
#define TRACE_SIGNAL_LOSE_INFO 4
#define SI_USER 0
#define SI_KERNEL 0x80

/* The signals whose stack is worth a postmortem: the program's own faults, and abort(). */
#define CRASH_SIGNALS ((1u << 4) | (1u << 6) | (1u << 7) | (1u << 8) | (1u << 11))
#define SIGABRT 6

/* Whether `sig` has its default action in `t` (a handler may recover from it: the JVM takes
 * SIGSEGV for its null checks, and those are no crashes). */
static __always_inline bool default_action(struct task_struct *t, int sig)
{
	struct sighand_struct *sh = BPF_CORE_READ(t, sighand);
	void *handler = (void *)1;
	if (!sh)
		return false;
	bpf_probe_read_kernel(&handler, sizeof(handler),
			      (void *)sh + bpf_core_field_offset(struct sighand_struct, action) +
				      (sig - 1) * bpf_core_type_size(struct k_sigaction) +
				      bpf_core_field_offset(struct k_sigaction, sa.sa_handler));
	return handler == NULL; /* SIG_DFL */
}

/*
 * The user stack of the current thread, which raised `sig` on itself, into `fatal_stacks`. Rare
 * (once per crash), so the two stack walks' cost does not matter. The build-id walk comes first:
 * it takes the mm's lock with its unlock deferred to an irq_work, and a second helper needing
 * that lock (bpf_find_vma) fails until the work has run; the fault's mapping is found later, at
 * delivery (coroner_signal_deliver).
 */
static __noinline void capture_stack(void *ctx, __u64 cg, int sig, int code, __u64 addr)
{
	/* si_addr is the faulting address for the kernel's fault codes (si_code > 0). */
	bool has_addr = sig != SIGABRT && code > 0 && code != SI_KERNEL;
	__u32 zero = 0;
	struct fatal_stack *st = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!st)
		return;
	__u64 id = bpf_get_current_pid_tgid();
	st->boot_ns = bpf_ktime_get_boot_ns();
	st->pid = id >> 32;
	st->tid = (__u32)id;
	st->sig = sig;
	st->code = code;
	st->fault_addr = has_addr ? addr : 0;
	st->flags = has_addr ? CORONER_STACK_FAULT_ADDR : 0;
	st->vma_start = 0;
	st->vma_end = 0;
	st->vma_pgoff = 0;
	st->vma_flags = 0;
	st->vma_file[0] = 0;
	bpf_get_current_comm(st->comm, sizeof(st->comm));
	long n = bpf_get_stack(ctx, st->ids, sizeof(st->ids), BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	st->nr_ids = n > 0 ? n / sizeof(struct stack_frame_id) : 0;
	n = bpf_get_stack(ctx, st->ips, sizeof(st->ips), BPF_F_USER_STACK);
	st->nr_ips = n > 0 ? n / sizeof(__u64) : 0;
	bpf_map_update_elem(&fatal_stacks, &cg, st, BPF_ANY);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(coroner_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	if (sig <= 0 || sig >= 32 || !(FATAL_SIGNALS & (1u << sig)))
		return 0;
	/* Ignored, already pending or dropped: it did not (newly) reach the task. */
	if (result != TRACE_SIGNAL_DELIVERED && result != TRACE_SIGNAL_LOSE_INFO)
		return 0;
	__u64 cg = task_cgroup_id(task);
	if (!recorded_cgroup(cg))
		return 0;
	struct signal_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return 0;
	}
	e->hdr.type = CORONER_EV_SIGNAL;
	e->hdr.pid = BPF_CORE_READ(task, tgid);
	e->hdr.boot_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = cg;
	BPF_CORE_READ_STR_INTO(&e->hdr.comm, task, comm);
	e->sig = sig;
	/* SEND_SIG_NOINFO (0) is a kill from a process, SEND_SIG_PRIV (1) from the kernel. */
	if ((unsigned long)info == 0)
		e->code = SI_USER;
	else if ((unsigned long)info == 1)
		e->code = SI_KERNEL;
	else
		e->code = BPF_CORE_READ(info, si_code);
	e->sender_pid = bpf_get_current_pid_tgid() >> 32;
	e->_pad = 0;
	e->sender_cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->sender_comm, sizeof(e->sender_comm));
	int code = e->code;
	bpf_ringbuf_submit(e, 0);

	/* A crash the thread raised on itself (a fault, abort()), that nothing handles. */
	if ((CRASH_SIGNALS & (1u << sig)) && (void *)bpf_get_current_task_btf() == (void *)task &&
	    default_action(task, sig)) {
		__u64 addr = code > 0 && (unsigned long)info > 1
				     ? (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr)
				     : 0;
		capture_stack(ctx, cg, sig, code, addr);
	}
	return 0;
}

struct vma_found {
	__u64 start;
	__u64 end;
	__u64 pgoff;
	__u64 flags;
	char name[CORONER_VMA_NAME];
};

static long note_vma(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct vma_found *out = data;
	out->start = vma->vm_start;
	out->end = vma->vm_end;
	out->pgoff = vma->vm_pgoff;
	out->flags = vma->vm_flags;
	struct file *f = vma->vm_file;
	if (f)
		bpf_probe_read_kernel_str(out->name, sizeof(out->name), f->f_path.dentry->d_name.name);
	return 0;
}

/* The crash signal's delivery to the thread whose stack coroner_signal took: the mapping the
 * fault address falls in (Linux >= 5.17: bpf_find_vma). */
SEC("tp_btf/signal_deliver")
int BPF_PROG(coroner_signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	if (sig <= 0 || sig >= 32 || !(CRASH_SIGNALS & (1u << sig)))
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 cg = t->cgroups->dfl_cgrp->kn->id;
	if (cg <= 1)
		return 0;
	struct fatal_stack *st = bpf_map_lookup_elem(&fatal_stacks, &cg);
	if (!st || st->tid != (__u32)t->pid || st->sig != sig)
		return 0;
	if (!(st->flags & CORONER_STACK_FAULT_ADDR) || (st->flags & (CORONER_STACK_VMA | CORONER_STACK_NO_VMA)))
		return 0;
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_find_vma))
		return 0;
	struct vma_found v = {};
	long err = bpf_find_vma(t, st->fault_addr, note_vma, &v, 0);
	if (err == 0) {
		st->vma_start = v.start;
		st->vma_end = v.end;
		st->vma_pgoff = v.pgoff;
		st->vma_flags = v.flags;
		bpf_probe_read_kernel(st->vma_file, sizeof(st->vma_file), v.name);
		st->flags |= CORONER_STACK_VMA;
	} else if (err == -2 /* ENOENT */) {
		st->flags |= CORONER_STACK_NO_VMA;
	}
	return 0;
}

#define MM_FILEPAGES 0
#define MM_ANONPAGES 1
#define MM_SHMEMPAGES 3

static __always_inline __u64 rss_pages(struct mm_struct *mm)
{
	__s64 file, anon, shmem;
	if (bpf_core_type_exists(struct mm_rss_stat)) {
		struct mm_struct___old *old = (void *)mm;
		file = BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES].counter);
		anon = BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES].counter);
		shmem = BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES].counter);
	} else {
		/* The folded counts: per-CPU deltas not yet folded are missed, as in the
		 * kernel's own OOM report (get_mm_counter). */
		file = BPF_CORE_READ(mm, rss_stat[MM_FILEPAGES].count);
		anon = BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count);
		shmem = BPF_CORE_READ(mm, rss_stat[MM_SHMEMPAGES].count);
	}
	__s64 sum = (file > 0 ? file : 0) + (anon > 0 ? anon : 0) + (shmem > 0 ? shmem : 0);
	return sum;
}

static __always_inline void oom_victim(struct task_struct *task)
{
	__u64 cg = task_cgroup_id(task);
	if (!recorded_cgroup(cg))
		return;
	struct oom_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&events_lost, 1);
		return;
	}
	e->hdr.type = CORONER_EV_OOM;
	e->hdr.pid = BPF_CORE_READ(task, tgid);
	e->hdr.boot_ns = bpf_ktime_get_boot_ns();
	e->hdr.cgroup_id = cg;
	BPF_CORE_READ_STR_INTO(&e->hdr.comm, task, comm);
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	e->rss_bytes = mm ? rss_pages(mm) * page_size : 0;
	bpf_ringbuf_submit(e, 0);
}

/* Linux >= 6.8 passes the victim's task to mark_victim (before: only its pid). */
SEC("tp_btf/mark_victim")
int BPF_PROG(coroner_oom_victim, struct task_struct *task)
{
	oom_victim(task);
	return 0;
}

/* The loader's fallback where mark_victim has no task argument: the victim is oc->chosen.
 * Not loaded unless asked for ("?"). */
SEC("?kprobe/oom_kill_process")
int BPF_KPROBE(coroner_oom_kill_process, struct oom_control *oc)
{
	oom_victim(BPF_CORE_READ(oc, chosen));
	return 0;
}
