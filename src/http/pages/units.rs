//! Figures as people read them: sizes, times, ages, offsets. Pure.

use chrono::{DateTime, Utc};

pub use crate::units::{age, bytes, duration_us as micros, offset};

/// Whole percent of `part` in `whole`, `None` for a zero whole.
pub fn percent(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| (part as u128 * 100 / whole as u128) as u64)
}

/// `2026-11-23 01:03:44 UTC`.
pub fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `01:03:44.218`: a time of day to the millisecond, for event lists within one run.
pub fn clock(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S%.3f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn percent_of_nothing_is_none_and_large_values_do_not_overflow() {
        assert_eq!(percent(1, 0), None);
        assert_eq!(percent(20 << 20, 20 << 20), Some(100));
        assert_eq!(percent(u64::MAX, u64::MAX), Some(100));
        assert_eq!(percent(1, 3), Some(33));
    }

    #[test]
    fn times_are_shown_in_utc() {
        let x = t("2026-11-23T02:03:44.218702814+01:00");
        assert_eq!(utc(x), "2026-11-23 01:03:44 UTC");
        assert_eq!(clock(x), "01:03:44.218");
    }
}
