/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire format between coroner's BPF programs and the agent: every struct and constant the
 * kernel writes and Rust reads is defined here, once. The Rust side uses the skeleton's generated
 * `types` (from this header's BTF), never hand-copied structs; `loader.rs` turns them into the
 * layout-free types of `raw.rs`.
 *
 * No C enums in these structs (Rust would get an enum type, and a stray value would be undefined
 * behaviour); fields are fixed-width integers and byte arrays, with explicit padding.
 */
#ifndef __CORONER_H__
#define __CORONER_H__

#define CORONER_COMM_LEN 16
/* Syscall numbers counted per container: both x86_64 and aarch64 numbers stay below it. */
#define CORONER_NR_MAX 512
/* Open-addressed (syscall, errno) -> count table per container, and the probes per insertion. */
#define CORONER_ERR_SLOTS 64
#define CORONER_ERR_PROBES 8
/* First failing syscalls kept per container after the entrypoint's exec. */
#define CORONER_FIRST_FAILURES 8
/* The first occurrence of each distinct (syscall, errno) kept per container, besides the first
 * failures: a telling failure (EADDRINUSE on a bind) survives a boot's routine ENOENT lookups. */
#define CORONER_DISTINCT_FAILURES 16
/* User memory copied into one flight-recorder record (a path or a socket address). */
#define CORONER_DATA_MAX 128
/* Output capture: the first and the last CORONER_OUT_CAP bytes of stdout and of stderr. */
#define CORONER_OUT_CAP 4096
#define CORONER_STREAMS 2
/* Exec events: file name and NUL-separated argv, each cut at these sizes. */
#define CORONER_FILENAME_MAX 256
#define CORONER_ARGV_MAX 512
/* Slots tried for a free one before the round-robin victim is evicted. */
#define CORONER_FREE_PROBES 4

/* A syscall's data-spec byte (`syscall_spec` map; `DataSpec::encode` in raw.rs). */
#define CORONER_SPEC_PTR_MASK 0x07 /* pointer argument + 1; 0 = copy nothing */
#define CORONER_SPEC_SOCKADDR 0x08 /* else a NUL-terminated string */
#define CORONER_SPEC_LEN_SHIFT 4   /* bits 4-6: the sockaddr length argument */
#define CORONER_SPEC_LEN_MASK 0x07
/* Copy when the call succeeds too; without it, only when it fails (returns < 0). A successful
 * stat or chmod says little in a postmortem, and a user-memory copy is the dearest part of a
 * record (a helper call: ~150-250 ns on the retpoline/SRSO-mitigated test VM, several times the
 * rest of the record). Which syscalls get it is decided in Rust (`decode::copied_on_success`). */
#define CORONER_SPEC_ON_SUCCESS 0x80

/* Event types, `event_header.type`. */
#define CORONER_EV_FORK 1
#define CORONER_EV_EXEC 2
#define CORONER_EV_EXIT 3
#define CORONER_EV_SIGNAL 4
#define CORONER_EV_OOM 5

/* `exit_usage.flags`: which figures the running kernel has (CO-RE existence checks). */
#define CORONER_USAGE_PEAK 0x01     /* page_counter.watermark */
#define CORONER_USAGE_FAILCNT 0x02  /* page_counter.failcnt */
#define CORONER_USAGE_OOM 0x04      /* memory_events[MEMCG_OOM] */
#define CORONER_USAGE_OOM_KILL 0x08 /* memory_events[MEMCG_OOM_KILL] */
#define CORONER_USAGE_CURRENT 0x10  /* page_counter.usage */
#define CORONER_USAGE_CPU 0x20      /* sched_entity.sum_exec_runtime, summed */
#define CORONER_USAGE_PIDS_PEAK 0x40 /* pids_cgroup.watermark */

/* Fatal-signal stacks (`struct fatal_stack`): frames kept, and a build id's bytes. */
#define CORONER_STACK_MAX 32
#define CORONER_BUILD_ID_LEN 20
#define CORONER_VMA_NAME 48
/* `fatal_stack.flags` */
#define CORONER_STACK_FAULT_ADDR 0x01 /* fault_addr is the siginfo's si_addr */
#define CORONER_STACK_VMA 0x02        /* vma_* describe the mapping fault_addr falls in */
#define CORONER_STACK_NO_VMA 0x04     /* looked: no mapping holds fault_addr */
/* `stack_frame_id.status`, as the kernel's `struct bpf_stack_build_id` has it. */
#define CORONER_FRAME_EMPTY 0
#define CORONER_FRAME_VALID 1 /* build_id + file offset */
#define CORONER_FRAME_IP 2    /* no build id (none in the file, or mm not lockable): the address */

/* The largest event record (`struct exec_event`): the size of a saved event's bytes. */
#define CORONER_EVENT_MAX 816

/* One syscall as seen at its exit: 256 bytes, in a page-aligned array (`ring` is mmapable), so a
 * record covers four whole cache lines and the fields written at every syscall sit in the first
 * two. `data` (lines three and four) is touched only by the rare calls whose user memory is
 * copied. Hot lines per container: 256 x 128 bytes = 32 KiB, where the 240-byte records that
 * straddled lines touched up to 60 KiB, evicting the traced program's own data (bpf_stats on
 * dd: 104 ns per run against 105-110 ns before). */
struct sys_record {
	/* Ring position + 1 (0: never written), stored after everything else: a reader that finds
	 * another value than the position it expects skips the record (overwritten or half-written). */
	__u64 seq;
	__u64 boot_ns;
	__u64 args[6];
	__s64 ret;
	/* The slot's generation when written: records of a previous owner of the slot never leak. */
	__u32 gen;
	__u32 pid; /* thread group id */
	__u32 tid;
	__u32 nr;
	__u16 data_len;
	__u8 data_truncated;
	__u8 _pad[5];
	char comm[CORONER_COMM_LEN];
	__u8 _pad2[16];
	__u8 data[CORONER_DATA_MAX];
};

struct err_entry {
	/* (nr << 12) | errno; 0 = empty. */
	__u32 key;
	__u32 count;
};

/* Bytes written to the entrypoint's stdout or stderr, as stream positions: [0, OUT_CAP) land in `head`, position
 * p >= OUT_CAP lands in tail[(p - OUT_CAP) % OUT_CAP]. */
struct out_stream {
	__u64 total;
	__u8 head[CORONER_OUT_CAP];
	__u8 tail[CORONER_OUT_CAP];
};

/*
 * The container's memory and pids cgroups at the exit of one of its processes, and the CPU time
 * of its exited threads, read in the kernel: the last process to leave writes the final figures,
 * so they survive the cgroup directory, which the kernel (cgroupfs driver) or systemd (its scope)
 * removes milliseconds after the exit (an agent that is late reads them here). Peaks and
 * counters only grow, so a later exit never lowers them.
 */
struct exit_usage {
	__u64 boot_ns; /* 0: no process of the cgroup has exited since the slot was taken */
	__u64 current_bytes;
	__u64 peak_bytes;
	__u64 failcnt;
	__u64 oom;
	__u64 oom_kill;
	__u32 flags; /* CORONER_USAGE_*: the figures the kernel has */
	__u32 pid;   /* the process whose exit wrote them */
	__u64 pids_peak; /* v2 pids.peak */
	/* CPU time of every thread of the cgroup that has exited, in ns, added atomically at each
	 * thread's exit (and never rewritten with the rest): once the last process is gone, the
	 * cgroup's whole `cpu.stat` `usage_usec`. Last: the rest is copied in one go before it. */
	__u64 cpu_ns;
};

/*
 * Everything recorded for one cgroup (one `slots` element). The streams come first on purpose:
 * the verifier bounds a copy of `len <= OUT_CAP - off` bytes at `off` as if it could reach
 * `off_max + len_max`, so the memory after the last tail must stay inside the value.
 */
struct slot {
	__u64 cgroup_id; /* owner; 0 = free */
	__u32 gen;       /* bumped at every (re)allocation */
	__u32 workload;  /* 0 during set-up; 1 from the first successful execve/execveat on */
	__u64 setup_calls;
	__u64 ring_head;    /* records written to this slot's ring in all */
	__u32 first_fail_n; /* first-failure entries claimed (may exceed the array) */
	__u32 err_dropped;  /* errors not counted because their probe window was full */
	__u32 distinct_n;   /* distinct-failure entries claimed (may exceed the array) */
	__u32 _pad;
	/* The inodes (kernel addresses, compared only) behind the entrypoint's fds 1 and 2 at its
	 * exec: a write is stdout or stderr by where it goes, so a shell's `echo x >&2` is stderr
	 * and dd's reopened fd 1 is not output. 0: that fd was closed. */
	__u64 out_inode[CORONER_STREAMS];
	struct out_stream out[CORONER_STREAMS];
	__u64 counts[CORONER_NR_MAX];
	struct err_entry errs[CORONER_ERR_SLOTS];
	struct sys_record first_fail[CORONER_FIRST_FAILURES];
	/* The first call of each (syscall, errno) that entered `errs`, in that order. */
	struct sys_record distinct_fail[CORONER_DISTINCT_FAILURES];
	struct exit_usage usage;
};

/* What is reset when a slot is (re)allocated: counts and errs, adjacent in `struct slot`. */
struct slot_tables {
	__u64 counts[CORONER_NR_MAX];
	struct err_entry errs[CORONER_ERR_SLOTS];
};

struct event_header {
	__u32 type; /* CORONER_EV_* */
	/* fork: the parent; signal: the target; otherwise the process (thread group id). */
	__u32 pid;
	__u64 boot_ns;
	__u64 cgroup_id;
	char comm[CORONER_COMM_LEN];
};

struct fork_event {
	struct event_header hdr;
	__u32 child_pid;
	__u32 _pad;
};

struct exec_event {
	struct event_header hdr;
	__u32 filename_len; /* without the NUL */
	__u32 argv_len;     /* bytes of argv, NUL-separated */
	char filename[CORONER_FILENAME_MAX];
	char argv[CORONER_ARGV_MAX];
};

struct exit_event {
	struct event_header hdr;
	__s32 wait_status; /* task->exit_code */
	__u32 _pad;
};

struct signal_event {
	struct event_header hdr; /* pid/comm/cgroup of the target */
	__s32 sig;
	__s32 code;
	__u32 sender_pid;
	__u32 _pad;
	__u64 sender_cgroup_id;
	char sender_comm[CORONER_COMM_LEN];
};

struct oom_event {
	struct event_header hdr; /* the victim */
	__u64 rss_bytes;
};

/* One frame in the kernel's build-id form: the layout of `struct bpf_stack_build_id`. */
struct stack_frame_id {
	__s32 status; /* CORONER_FRAME_* */
	__u8 build_id[CORONER_BUILD_ID_LEN];
	__u64 offset_or_ip; /* VALID: offset in the file; IP: the address */
};

/*
 * The user stack of the thread a fatal signal hit, taken in the kernel when it was generated
 * (`fatal_stacks` map, keyed by cgroup id: the last one per cgroup until userspace drains it).
 * Only SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT that the thread raised itself (a fault, or
 * abort()) with the default action. The stack is taken twice: the addresses (what the process
 * saw) and the build-id form (which file and where in it), which survives the process.
 */
struct fatal_stack {
	__u64 boot_ns;
	__u32 pid; /* thread group id */
	__u32 tid;
	__s32 sig;
	__s32 code;       /* si_code */
	__u64 fault_addr; /* with CORONER_STACK_FAULT_ADDR */
	__u32 flags;      /* CORONER_STACK_* */
	__u32 nr_ips;     /* frames in ips */
	__u32 nr_ids;     /* frames in ids */
	__u32 _pad;
	/* The mapping fault_addr falls in (CORONER_STACK_VMA). */
	__u64 vma_start;
	__u64 vma_end;
	__u64 vma_pgoff; /* in pages */
	__u64 vma_flags; /* VM_READ 1, VM_WRITE 2, VM_EXEC 4, VM_SHARED 8 */
	char vma_file[CORONER_VMA_NAME]; /* the mapped file's name (no directory); "" if anonymous */
	char comm[CORONER_COMM_LEN];
	__u64 ips[CORONER_STACK_MAX];
	struct stack_frame_id ids[CORONER_STACK_MAX];
};

/*
 * What one agent process leaves to the next in the pinned `agent_state` map (element 0). The BPF
 * programs never touch it; it lives with the maps so that it is replaced with them.
 */
struct agent_state {
	__u64 loaded_boot_ns;    /* when these maps and programs were loaded: recording since */
	__u64 heartbeat_boot_ns; /* the last agent's last sign of life (its event reader) */
	__u64 events_lost_seen;  /* `events_lost` as that agent last saw it */
	__u64 events_unsaved;    /* events that agent consumed but could not save (map full) */
};

/* `saved_events`: process events an agent consumed from the ring buffer, kept in the kernel
 * until the container's report is written, so the next agent process finds them. */
struct saved_event_key {
	__u64 cgroup_id;
	__u64 seq; /* order of consumption */
};

struct saved_event {
	__u32 len;
	__u32 _pad;
	__u8 data[CORONER_EVENT_MAX];
};

#endif /* __CORONER_H__ */
