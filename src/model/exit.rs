//! Decoding of the exit status containerd reports for a task.
//!
//! containerd reports the status the shim computed from `wait(2)`: an exit code `0..=255`, or
//! `128 + N` for a death by signal N (runc's convention). The core-dump flag is not in that number;
//! it can only be known from the kernel's wait status, which a later recorder provides.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExitStatus {
    /// The raw status containerd reported (`exit_status`).
    pub status: u32,
    /// The exit code when the process called `exit`; for a signal death, `128 + signal`, as
    /// Kubernetes shows it.
    pub code: u32,
    /// The signal number that killed the process, if it died by a signal.
    pub signal: Option<i32>,
    /// Its name, e.g. `SIGKILL`.
    pub signal_name: Option<String>,
    /// Whether the process dumped core; `None` when the source cannot tell.
    pub core_dumped: Option<bool>,
}

impl ExitStatus {
    /// Decodes containerd's `exit_status` (absent, so zero, for exit code 0).
    pub fn from_containerd(status: u32) -> Self {
        // Statuses above 128 are signal deaths when they name a real signal (1..=64); a program that
        // calls exit(137) is indistinguishable here, which is why the OOM verdict never rests on the
        // code alone.
        let signal = status
            .checked_sub(128)
            .filter(|s| (1..=64).contains(s))
            .map(|s| s as i32);
        ExitStatus {
            status,
            code: status,
            signal,
            signal_name: signal.map(signal_name),
            core_dumped: None,
        }
    }

    /// Decodes a kernel wait status (`task->exit_code` / `waitpid`), which carries the core flag.
    pub fn from_wait_status(ws: i32) -> Self {
        let sig = ws & 0x7f;
        if sig == 0 {
            let code = ((ws >> 8) & 0xff) as u32;
            ExitStatus {
                status: code,
                code,
                signal: None,
                signal_name: None,
                core_dumped: Some(false),
            }
        } else {
            ExitStatus {
                status: 128 + sig as u32,
                code: 128 + sig as u32,
                signal: Some(sig),
                signal_name: Some(signal_name(sig)),
                core_dumped: Some(ws & 0x80 != 0),
            }
        }
    }

    pub fn is_success(&self) -> bool {
        self.status == 0
    }
}

/// The Linux name of a signal number (`SIGKILL`), `SIGRTMIN+N` for real-time signals.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => NAMES[sig as usize].to_string(),
        32..=64 => format!("SIGRTMIN+{}", sig - 32),
        _ => format!("SIG{sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_three_is_a_plain_exit() {
        let e = ExitStatus::from_containerd(3);
        assert_eq!((e.code, e.signal, e.signal_name), (3, None, None));
    }

    #[test]
    fn absent_status_is_success() {
        assert!(ExitStatus::from_containerd(0).is_success());
    }

    #[test]
    fn status_137_is_sigkill() {
        let e = ExitStatus::from_containerd(137);
        assert_eq!(e.signal, Some(9));
        assert_eq!(e.signal_name.as_deref(), Some("SIGKILL"));
        assert_eq!(e.code, 137);
    }

    #[test]
    fn status_139_is_sigsegv_and_143_sigterm() {
        assert_eq!(
            ExitStatus::from_containerd(139).signal_name.as_deref(),
            Some("SIGSEGV")
        );
        assert_eq!(
            ExitStatus::from_containerd(143).signal_name.as_deref(),
            Some("SIGTERM")
        );
    }

    #[test]
    fn status_128_and_255_are_codes_not_signals() {
        assert_eq!(ExitStatus::from_containerd(128).signal, None);
        assert_eq!(ExitStatus::from_containerd(255).signal, None);
    }

    #[test]
    fn wait_status_carries_core_dump_flag() {
        // SIGSEGV (11) with the core bit (0x80), as the kernel stores it in task->exit_code.
        let e = ExitStatus::from_wait_status(0x8b);
        assert_eq!(e.signal_name.as_deref(), Some("SIGSEGV"));
        assert_eq!(e.core_dumped, Some(true));
        // exit(3) is encoded as 3 << 8.
        let e = ExitStatus::from_wait_status(3 << 8);
        assert_eq!((e.code, e.signal), (3, None));
    }

    #[test]
    fn realtime_signals_are_named_relative_to_rtmin() {
        assert_eq!(signal_name(34), "SIGRTMIN+2");
    }
}
