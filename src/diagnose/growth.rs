//! How memory reached the point where the container died, from its sampled history: grew
//! steadily (a leak, or a workload too big for its limit) or jumped (one large allocation).
//! Pure; the OOM rule words it.

use crate::model::UsageHistory;

/// The shape of the climb to the end of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Growth {
    /// Rose over several samples, no step more than half of the climb.
    Steady { from: u64, to: u64, over_ms: u64 },
    /// One step between two samples made most of the climb.
    Jump { from: u64, to: u64, within_ms: u64 },
}

/// A climb smaller than this (or than a tenth of where it ended) is no climb.
const MIN_RISE: u64 = 1 << 20;

/// The climb from the lowest sample to the end. `peak` (the cgroup's high-water mark at the exit,
/// which the last sample usually missed) ends the history one interval after its last sample.
pub(super) fn memory_growth(h: &UsageHistory, peak: Option<u64>) -> Option<Growth> {
    let mut points: Vec<(u64, u64)> = h
        .samples
        .iter()
        .filter_map(|s| Some((s.t_ms, s.memory_bytes?)))
        .collect();
    let &(last_t, last_m) = points.last()?;
    if let Some(p) = peak.filter(|p| *p > last_m) {
        let interval = if last_t < u64::from(h.fine_for_ms) {
            h.fine_interval_ms
        } else {
            h.coarse_interval_ms
        };
        points.push((last_t + u64::from(interval), p));
    }
    // From the lowest point before the end: what came before it was not the climb.
    let (low_i, &(low_t, low_m)) = points
        .iter()
        .enumerate()
        .min_by_key(|(i, (_, m))| (*m, std::cmp::Reverse(*i)))?;
    let climb = &points[low_i..];
    let &(end_t, end_m) = climb.last()?;
    let rise = end_m.saturating_sub(low_m);
    if rise < MIN_RISE || rise < end_m / 10 {
        return None;
    }
    let (step_i, step) = climb
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, w[1].1.saturating_sub(w[0].1)))
        .max_by_key(|(_, step)| *step)?;
    if step * 2 >= rise {
        let (before, after) = (climb[step_i], climb[step_i + 1]);
        return Some(Growth::Jump {
            from: before.1,
            to: after.1,
            within_ms: after.0 - before.0,
        });
    }
    Some(Growth::Steady {
        from: low_m,
        to: end_m,
        over_ms: end_t - low_t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UsageSample;

    const MIB: u64 = 1 << 20;

    fn history(mem: &[u64]) -> UsageHistory {
        UsageHistory {
            fine_interval_ms: 100,
            fine_for_ms: 5000,
            coarse_interval_ms: 1000,
            samples: mem
                .iter()
                .enumerate()
                .map(|(i, m)| UsageSample {
                    t_ms: i as u64 * 100,
                    memory_bytes: Some(*m),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_leak_grows_steadily_to_the_limit() {
        let h = history(&[
            MIB,
            2 * MIB,
            4 * MIB,
            6 * MIB,
            9 * MIB,
            12 * MIB,
            15 * MIB,
            18 * MIB,
        ]);
        assert_eq!(
            memory_growth(&h, Some(20 * MIB)),
            Some(Growth::Steady {
                from: MIB,
                to: 20 * MIB,
                over_ms: 800
            })
        );
    }

    #[test]
    fn one_allocation_jumps_between_two_samples() {
        let h = history(&[2 * MIB, 2 * MIB, 2 * MIB, 3 * MIB, 3 * MIB]);
        assert_eq!(
            memory_growth(&h, Some(20 * MIB)),
            Some(Growth::Jump {
                from: 3 * MIB,
                to: 20 * MIB,
                within_ms: 100
            })
        );
    }

    #[test]
    fn flat_memory_or_no_samples_is_no_growth() {
        assert_eq!(
            memory_growth(&history(&[5 * MIB, 5 * MIB, 5 * MIB]), None),
            None
        );
        assert_eq!(memory_growth(&history(&[]), Some(20 * MIB)), None);
    }
}
