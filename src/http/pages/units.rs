//! Figures as people read them: sizes, times, ages, offsets. Pure.

use chrono::{DateTime, Utc};

/// `512 B`, `20.0 MiB`: binary units with one decimal, as the diagnosis writes them.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

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

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`.
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds();
    match s {
        ..=0 => "just now".to_string(),
        1..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// `+96.3 ms`, `-1.20 s`: `t` relative to `base`.
pub fn offset(t: DateTime<Utc>, base: DateTime<Utc>) -> String {
    let us = (t - base).num_microseconds().unwrap_or(i64::MAX);
    let sign = if us < 0 { '-' } else { '+' };
    format!("{sign}{}", micros(us.unsigned_abs()))
}

/// `850 µs`, `96.3 ms`, `1.20 s`, `3 min 4 s`.
pub fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us} µs"),
        1_000..=999_999 => format!("{:.1} ms", us as f64 / 1e3),
        1_000_000..=59_999_999 => format!("{:.2} s", us as f64 / 1e6),
        _ => {
            let s = us / 1_000_000;
            format!("{} min {} s", s / 60, s % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn sizes_use_binary_units_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(20 << 20), "20.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn percent_of_nothing_is_none_and_large_values_do_not_overflow() {
        assert_eq!(percent(1, 0), None);
        assert_eq!(percent(20 << 20, 20 << 20), Some(100));
        assert_eq!(percent(u64::MAX, u64::MAX), Some(100));
        assert_eq!(percent(1, 3), Some(33));
    }

    #[test]
    fn ages_round_down_to_the_largest_unit() {
        let now = t("2026-11-23T12:00:00Z");
        assert_eq!(age(t("2026-11-23T12:00:00Z"), now), "just now");
        assert_eq!(age(t("2026-11-23T12:00:05Z"), now), "just now");
        assert_eq!(age(t("2026-11-23T11:59:48Z"), now), "12 s ago");
        assert_eq!(age(t("2026-11-23T11:55:00Z"), now), "5 min ago");
        assert_eq!(age(t("2026-11-23T09:00:00Z"), now), "3 h ago");
        assert_eq!(age(t("2026-11-21T12:00:00Z"), now), "2 d ago");
    }

    #[test]
    fn times_are_shown_in_utc() {
        let x = t("2026-11-23T02:03:44.218702814+01:00");
        assert_eq!(utc(x), "2026-11-23 01:03:44 UTC");
        assert_eq!(clock(x), "01:03:44.218");
    }

    #[test]
    fn offsets_carry_a_sign_and_a_fitting_unit() {
        let base = t("2026-11-23T01:03:44Z");
        assert_eq!(offset(t("2026-11-23T01:03:44.0963Z"), base), "+96.3 ms");
        assert_eq!(offset(t("2026-11-23T01:03:42.8Z"), base), "-1.20 s");
        assert_eq!(offset(base, base), "+0 µs");
        assert_eq!(micros(184_000_000), "3 min 4 s");
    }
}
