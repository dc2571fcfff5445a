//! Kernel records in Rust terms, independent of the C layout: the loader converts the wire
//! structs (`coroner.h`) into these, and the pure decoders turn these into report types. Nothing
//! here touches libbpf, so decoders are tested with captured records.

/// CPU architecture whose syscall table numbers the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// What user memory the kernel copies for one syscall number, as the kernel's per-syscall table
/// holds it (one byte each): which argument points to it, what it is, for a socket address which
/// argument holds its length, and whether it is copied when the call succeeds (it always is when
/// the call fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataSpec {
    #[default]
    None,
    /// A NUL-terminated string (a path) pointed to by argument `ptr_arg`.
    Str { ptr_arg: u8, on_success: bool },
    /// A `struct sockaddr` at argument `ptr_arg` whose length is argument `len_arg`.
    Sockaddr {
        ptr_arg: u8,
        len_arg: u8,
        on_success: bool,
    },
}

/// `CORONER_SPEC_ON_SUCCESS` in `coroner.h`.
const SPEC_ON_SUCCESS: u8 = 0x80;

impl DataSpec {
    /// Byte layout shared with the kernel (`coroner.h`, `CORONER_SPEC_*`): bits 0-2 pointer
    /// argument + 1 (0 = nothing to copy), bit 3 sockaddr, bits 4-6 length argument, bit 7 copy
    /// on success too.
    pub fn encode(self) -> u8 {
        let when = |on_success: bool| if on_success { SPEC_ON_SUCCESS } else { 0 };
        match self {
            DataSpec::None => 0,
            DataSpec::Str {
                ptr_arg,
                on_success,
            } => ((ptr_arg & 7) + 1) | when(on_success),
            DataSpec::Sockaddr {
                ptr_arg,
                len_arg,
                on_success,
            } => ((ptr_arg & 7) + 1) | 0x08 | ((len_arg & 7) << 4) | when(on_success),
        }
    }

    pub fn decode(b: u8) -> DataSpec {
        let ptr = b & 0x07;
        let on_success = b & SPEC_ON_SUCCESS != 0;
        if ptr == 0 {
            DataSpec::None
        } else if b & 0x08 != 0 {
            DataSpec::Sockaddr {
                ptr_arg: ptr - 1,
                len_arg: (b >> 4) & 0x07,
                on_success,
            }
        } else {
            DataSpec::Str {
                ptr_arg: ptr - 1,
                on_success,
            }
        }
    }

    /// Whether the kernel copies this memory for a call that returned `ret`: always when the call
    /// failed (`ret < 0`, as the kernel tests it), on success only if `on_success`.
    pub fn copied_for(self, ret: i64) -> bool {
        match self {
            DataSpec::None => false,
            DataSpec::Str { on_success, .. } | DataSpec::Sockaddr { on_success, .. } => {
                on_success || ret < 0
            }
        }
    }
}

/// One syscall as recorded at its exit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawSyscall {
    /// Position in the container's ring, from 1: the order in which syscalls left the kernel,
    /// exact across CPUs (one atomic counter), where `boot_ns` is not. 0 for hand-built records.
    pub seq: u64,
    /// The boot-time clock (`bpf_ktime_get_boot_ns()`) at exit, at tick resolution: the kernel
    /// reads the clock once per tick per CPU (1-10 ms, 4 ms at HZ=250) because a clock read costs
    /// more than the rest of the record on VMs. The ring's order is exact; times within one tick
    /// are equal, and may step back by up to a tick across CPUs.
    pub boot_ns: u64,
    /// Process (thread group) id and thread id, in the host pid namespace.
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub nr: u32,
    pub args: [u64; 6],
    pub ret: i64,
    /// User memory copied per the syscall's [`DataSpec`] (a path without its NUL, or sockaddr bytes).
    pub data: Vec<u8>,
    /// The copy was cut at the record's capacity.
    pub data_truncated: bool,
}

/// Bytes written to one of stdout/stderr.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawStream {
    pub total: u64,
    /// The first bytes written (up to the capture size).
    pub head: Vec<u8>,
    /// The last bytes written, oldest first (up to the capture size); empty when everything
    /// written fits in `head`.
    pub tail: Vec<u8>,
}

/// Everything the kernel holds for one container (one cgroup), drained at its exit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawContainer {
    /// Calls per syscall number from the entrypoint's exec on.
    pub calls: Vec<(u32, u64)>,
    /// Errors per (syscall number, errno), from the entrypoint's exec on; ERESTART* excluded.
    pub errors: Vec<(u32, u32, u64)>,
    /// Syscalls before the entrypoint's exec (runc's set-up).
    pub setup_calls: u64,
    /// The flight recorder, oldest first.
    pub ring: Vec<RawSyscall>,
    /// Records written to the ring in all (so `ring_total - ring.len()` were overwritten).
    pub ring_total: u64,
    /// The first failing syscalls after the entrypoint's exec, in order.
    pub first_failures: Vec<RawSyscall>,
    /// The first call of each distinct (syscall, errno) after the entrypoint's exec, in order
    /// (the first `CORONER_DISTINCT_FAILURES` pairs).
    pub distinct_failures: Vec<RawSyscall>,
    pub stdout: RawStream,
    pub stderr: RawStream,
    /// The memory cgroup's figures at the exit of the cgroup's last process so far, read by the
    /// kernel (they outlive the cgroup directory). `None` until a process has exited.
    pub exit_usage: Option<RawExitUsage>,
    /// The user stack at the last crash signal a thread of the cgroup raised on itself.
    pub fatal_stack: Option<RawFatalStack>,
}

/// The container's memory and pids cgroups as the kernel saw them when one of its processes
/// exited (the last one to exit wrote these), and its exited threads' CPU time. A figure the
/// running kernel lacks is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawExitUsage {
    pub boot_ns: u64,
    /// The process whose exit wrote the figures.
    pub pid: u32,
    /// Charged memory at that exit (the exiting process's own memory already released).
    pub current_bytes: Option<u64>,
    /// Highest charge since the cgroup was made (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub peak_bytes: Option<u64>,
    /// Times the charge hit the limit (v1 `memory.failcnt`).
    pub failcnt: Option<u64>,
    /// Times the cgroup's OOM killer was invoked (`oom` of v2 `memory.events`).
    pub oom: Option<u64>,
    /// Processes the OOM killer killed in the cgroup (`oom_kill`).
    pub oom_kill: Option<u64>,
    /// CPU time of the cgroup's exited threads, in ns (`cpu.stat` `usage_usec` once all are gone).
    pub cpu_ns: Option<u64>,
    /// Most tasks at once (v2 `pids.peak`).
    pub pids_peak: Option<u64>,
}

/// Low-rate process events streamed from the kernel as they happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    Fork {
        boot_ns: u64,
        cgroup_id: u64,
        parent_pid: u32,
        child_pid: u32,
        comm: String,
    },
    Exec {
        boot_ns: u64,
        cgroup_id: u64,
        pid: u32,
        comm: String,
        filename: String,
        argv: Vec<String>,
    },
    /// A thread group's last thread exited; `wait_status` is `task->exit_code` (wait-encoded).
    Exit {
        boot_ns: u64,
        cgroup_id: u64,
        pid: u32,
        comm: String,
        wait_status: i32,
    },
    /// A fatal-by-default signal was generated for a task of a recorded cgroup.
    Signal {
        boot_ns: u64,
        cgroup_id: u64,
        target_pid: u32,
        sig: i32,
        /// `si_code`: > 0 kernel-generated (e.g. SEGV_MAPERR), <= 0 sent by a process.
        code: i32,
        sender_pid: u32,
        sender_comm: String,
        sender_cgroup_id: u64,
    },
    /// The OOM killer chose a victim.
    OomVictim {
        boot_ns: u64,
        cgroup_id: u64,
        pid: u32,
        comm: String,
        rss_bytes: u64,
    },
}

impl RawEvent {
    /// The cgroup the event belongs to (the target's, for a signal).
    pub fn cgroup_id(&self) -> u64 {
        match self {
            RawEvent::Fork { cgroup_id, .. }
            | RawEvent::Exec { cgroup_id, .. }
            | RawEvent::Exit { cgroup_id, .. }
            | RawEvent::Signal { cgroup_id, .. }
            | RawEvent::OomVictim { cgroup_id, .. } => *cgroup_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_spec_round_trips_through_the_kernel_byte() {
        for on_success in [false, true] {
            for spec in [
                DataSpec::None,
                DataSpec::Str {
                    ptr_arg: 0,
                    on_success,
                },
                DataSpec::Str {
                    ptr_arg: 1,
                    on_success,
                },
                DataSpec::Sockaddr {
                    ptr_arg: 1,
                    len_arg: 2,
                    on_success,
                },
                DataSpec::Sockaddr {
                    ptr_arg: 4,
                    len_arg: 5,
                    on_success,
                },
            ] {
                assert_eq!(DataSpec::decode(spec.encode()), spec, "{spec:?}");
            }
        }
    }

    #[test]
    fn spec_byte_bits_are_the_ones_coroner_h_defines() {
        let header = include_str!("coroner.h");
        let define = |name: &str| -> u8 {
            let line = header
                .lines()
                .find(|l| l.split_whitespace().nth(1) == Some(name))
                .unwrap_or_else(|| panic!("no #define {name} in coroner.h"));
            let value = line.split_whitespace().nth(2).unwrap();
            match value.strip_prefix("0x") {
                Some(hex) => u8::from_str_radix(hex, 16).unwrap(),
                None => value.parse().unwrap(),
            }
        };
        let spec = DataSpec::Sockaddr {
            ptr_arg: 4,
            len_arg: 5,
            on_success: true,
        };
        let b = spec.encode();
        assert_eq!(b & define("CORONER_SPEC_PTR_MASK"), 5);
        assert_ne!(b & define("CORONER_SPEC_SOCKADDR"), 0);
        assert_eq!(
            (b >> define("CORONER_SPEC_LEN_SHIFT")) & define("CORONER_SPEC_LEN_MASK"),
            5
        );
        assert_eq!(define("CORONER_SPEC_ON_SUCCESS"), SPEC_ON_SUCCESS);
        assert_ne!(b & SPEC_ON_SUCCESS, 0);
    }

    #[test]
    fn failing_calls_are_always_copied_successful_ones_only_when_flagged() {
        let stat = DataSpec::Str {
            ptr_arg: 1,
            on_success: false,
        };
        let open = DataSpec::Str {
            ptr_arg: 1,
            on_success: true,
        };
        assert!(stat.copied_for(-2) && !stat.copied_for(0));
        assert!(open.copied_for(-2) && open.copied_for(3));
        assert!(!DataSpec::None.copied_for(-2));
    }
}

/// The user stack of a thread at a crash signal it raised on itself (SIGSEGV, SIGBUS, SIGILL,
/// SIGFPE, SIGABRT with their default action), as the kernel took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFatalStack {
    pub boot_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub signal: i32,
    /// `si_code`.
    pub code: i32,
    /// The crashing thread's name.
    pub comm: String,
    /// `si_addr`, for a fault.
    pub fault_addr: Option<u64>,
    pub fault_mapping: RawFaultMapping,
    /// Return addresses, innermost first (the first is where the thread was).
    pub ips: Vec<u64>,
    /// The same frames as (build id, file offset) where the kernel could tell, innermost first.
    pub frames: Vec<RawFrame>,
}

/// The mapping the fault address falls in, as the kernel found it at the signal's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFaultMapping {
    /// Not looked up (no fault address, a kernel without `bpf_find_vma`, the mm busy).
    Unknown,
    /// No mapping holds the address (a null or wild pointer).
    Unmapped,
    Mapped(RawVma),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawVma {
    pub start: u64,
    pub end: u64,
    /// Offset in the file of `start`, in bytes.
    pub file_offset: u64,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    /// The mapped file's name without directory; empty for anonymous memory.
    pub file: String,
}

/// One frame in the kernel's build-id form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFrame {
    /// The file's GNU build id and the frame's offset in that file.
    BuildId { build_id: Vec<u8>, file_offset: u64 },
    /// No build id (the file has none, or the kernel could not read it): the address only.
    Address(u64),
}
