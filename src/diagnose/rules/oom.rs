//! `oom_killed`: the kernel OOM killer acted in the container, by the cgroup's counter,
//! containerd's OOM event, the recorder's victim or the fatal signal's origin. Exit code 137 alone
//! is never enough: anyone can send SIGKILL.

use super::Rule;
use crate::diagnose::evidence::{diagnosis, ev, plural};
use crate::diagnose::facts::Facts;
use crate::diagnose::growth::{memory_growth, Growth};
use crate::model::{Cause, Confidence, Diagnosis, SignalOrigin};
use crate::units::{bytes, duration_ms};

pub(in crate::diagnose) struct Oom;

impl Rule for Oom {
    fn name(&self) -> &'static str {
        "oom"
    }

    fn diagnose(&self, f: &Facts) -> Option<Diagnosis> {
        let r = f.r;
        let victim = f.rec.and_then(|x| x.oom_victim.as_ref());
        let kernel_sent = f
            .rec
            .and_then(|x| x.fatal_signal.as_ref())
            .is_some_and(|s| s.origin == SignalOrigin::KernelOom);
        if !(r.oom.killed || victim.is_some() || kernel_sent) || r.exit.is_success() {
            return None;
        }
        let mut evidence = Vec::new();
        if r.oom.killed {
            let fact = match r.oom.kills {
                Some(n) if n > 0 => format!("the memory cgroup counted {}", plural(n, "OOM kill")),
                _ => format!(
                    "containerd sent {}",
                    plural(r.oom.events.into(), "OOM event")
                ),
            };
            let field = if r.oom.kills.is_some_and(|n| n > 0) {
                "/oom/kills"
            } else {
                "/oom/events"
            };
            evidence.push(ev(fact, field));
        }
        if kernel_sent {
            evidence.push(ev(
                "the fatal SIGKILL came from the kernel's OOM killer",
                "/recorder/fatal_signal/origin",
            ));
        }

        let usage = r.cgroup.usage.as_ref();
        let limit = r.cgroup.limits.as_ref().and_then(|l| l.memory_limit_bytes);
        let peak = usage.and_then(|u| u.memory_peak_bytes);
        let memory = match (peak, limit) {
            (Some(p), Some(l)) => {
                evidence.push(ev(
                    format!("memory peaked at {} against a {} limit", bytes(p), bytes(l)),
                    "/cgroup/usage/memory_peak_bytes",
                ));
                evidence.push(ev(
                    format!("the container's memory limit is {}", bytes(l)),
                    "/cgroup/limits/memory_limit_bytes",
                ));
                if p >= l.saturating_sub(l / 20) {
                    format!("memory peaked at {}, the container's limit", bytes(l))
                } else {
                    format!(
                        "memory peaked at {} of its {} limit (the pod's or the node's memory ran out)",
                        bytes(p),
                        bytes(l)
                    )
                }
            }
            (Some(p), None) => {
                evidence.push(ev(
                    format!("memory peaked at {} with no container limit", bytes(p)),
                    "/cgroup/usage/memory_peak_bytes",
                ));
                format!(
                    "memory peaked at {} with no container limit (the pod's or the node's memory ran out)",
                    bytes(p)
                )
            }
            (None, Some(l)) => {
                evidence.push(ev(
                    format!("the container's memory limit is {}", bytes(l)),
                    "/cgroup/limits/memory_limit_bytes",
                ));
                format!("its memory limit is {}", bytes(l))
            }
            (None, None) => "memory figures were not readable".to_string(),
        };
        let growth = match r
            .usage_history
            .as_ref()
            .and_then(|h| memory_growth(h, peak))
        {
            Some(Growth::Steady { from, to, over_ms }) => {
                let rate = (to - from).saturating_mul(1000) / over_ms.max(1);
                let fact = format!(
                    "memory grew steadily for {}, from {} to {} (about {}/s)",
                    duration_ms(over_ms),
                    bytes(from),
                    bytes(to),
                    bytes(rate)
                );
                evidence.push(ev(fact.clone(), "/usage_history/samples"));
                format!("; {fact}: a leak, or a workload too big for its limit")
            }
            Some(Growth::Jump {
                from,
                to,
                within_ms,
            }) => {
                let fact = format!(
                    "memory jumped from {} to {} within {}",
                    bytes(from),
                    bytes(to),
                    duration_ms(within_ms)
                );
                evidence.push(ev(fact.clone(), "/usage_history/samples"));
                format!("; {fact}: one large allocation")
            }
            None => String::new(),
        };
        let killed = match victim {
            Some(v) => {
                evidence.push(ev(
                    format!(
                        "the OOM killer chose `{}` (pid {}, {} RSS){}",
                        v.comm,
                        v.pid,
                        bytes(v.rss_bytes),
                        if v.was_init { ", the init process" } else { "" }
                    ),
                    "/recorder/oom_victim",
                ));
                let tail = if v.was_init {
                    String::new()
                } else {
                    format!(
                        ", not the init process, which then {}",
                        match &r.exit.signal_name {
                            Some(sig) => format!("died of {sig}"),
                            None => format!("exited {}", r.exit.code),
                        }
                    )
                };
                format!(
                    "; the kernel killed `{}` (pid {}, {} RSS){tail}",
                    v.comm,
                    v.pid,
                    bytes(v.rss_bytes)
                )
            }
            None => String::new(),
        };
        evidence.push(f.exit_evidence());
        let key = Some(match victim {
            Some(v) => format!("oom {}", v.comm),
            None => "oom".to_string(),
        });
        Some(diagnosis(
            Cause::OomKilled,
            Confidence::High,
            format!("OOM-killed{}: {memory}{growth}{killed}", f.after()),
            evidence,
            key,
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::diagnose::testing::{check, fixture, without_recorder};
    use crate::model::{Cause, Confidence};

    #[test]
    fn oom_kill_of_init_names_peak_limit_and_victim() {
        let d = check(&fixture("oom_killed"));
        assert_eq!(d.cause, Cause::OomKilled);
        assert_eq!(d.confidence, Confidence::High);
        assert_eq!(
            d.summary,
            "OOM-killed after 96 ms: memory peaked at 20.0 MiB, the container's limit; \
             the kernel killed `tail` (pid 23494, 21.0 MiB RSS)"
        );
        assert_eq!(d.key.as_deref(), Some("oom tail"));
        assert_eq!(d.evidence[0].field, "/oom/kills");
    }

    #[test]
    fn a_history_climbing_to_the_limit_is_called_steady_growth() {
        let mut r = fixture("oom_killed");
        let mib = 1u64 << 20;
        r.usage_history = Some(crate::model::UsageHistory {
            fine_interval_ms: 100,
            fine_for_ms: 5000,
            coarse_interval_ms: 1000,
            samples: (0..8)
                .map(|i| crate::model::UsageSample {
                    t_ms: i * 100,
                    memory_bytes: Some((1 + 2 * i) * mib),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        let d = check(&r);
        assert_eq!(d.cause, Cause::OomKilled);
        assert!(
            d.summary.contains(
                "memory grew steadily for 800 ms, from 1.0 MiB to 20.0 MiB (about 23.8 MiB/s): \
                 a leak, or a workload too big for its limit"
            ),
            "{}",
            d.summary
        );
        assert!(d
            .evidence
            .iter()
            .any(|e| e.field == "/usage_history/samples"));
    }

    #[test]
    fn oom_kill_without_the_recorder_still_rests_on_the_cgroup_counter() {
        let d = check(&without_recorder(fixture("oom_killed")));
        assert_eq!(d.cause, Cause::OomKilled);
        assert!(
            d.summary
                .ends_with("memory peaked at 20.0 MiB, the container's limit"),
            "{}",
            d.summary
        );
    }

    #[test]
    fn oom_kill_of_a_child_says_init_was_not_the_victim() {
        let mut r = fixture("oom_killed");
        // `sh -c 'head | tail'`: the shell is init and exits 137 itself after tail is killed.
        r.exit = crate::model::ExitStatus::from_wait_status(137 << 8);
        let victim = r.recorder.as_mut().unwrap().oom_victim.as_mut().unwrap();
        victim.was_init = false;
        let d = check(&r);
        assert_eq!(d.cause, Cause::OomKilled);
        assert!(
            d.summary
                .ends_with("not the init process, which then exited 137"),
            "{}",
            d.summary
        );
    }
}
