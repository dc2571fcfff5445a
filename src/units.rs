//! Figures as people read them: sizes, durations, shares, moments and ages, the same in the
//! diagnosis summaries, the Markdown and text renderings, the web pages and the CLI. Pure.
//!
//! The one home of figure formatting; sentences built around the figures live in
//! [`crate::render::words`].

use chrono::{DateTime, Utc};

/// `512 B`, `224.0 KiB`, `20.0 MiB`: IEC units with one decimal, like the diagnosis summaries.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A duration for humans: `850 µs`, `96 ms`, `12.5 ms`, `1.25 s`, `2m 03s`, `1h 02m`, `3d 04h`.
pub fn duration_us(us: u64) -> String {
    const MS: u64 = 1_000;
    const S: u64 = 1_000 * MS;
    match us {
        0..MS => format!("{us} µs"),
        MS..S if us % MS == 0 => format!("{} ms", us / MS),
        MS..S => format!("{:.1} ms", us as f64 / MS as f64),
        S..60_000_000 => {
            let s = us as f64 / S as f64;
            if s < 10.0 {
                format!("{s:.2} s")
            } else {
                format!("{s:.1} s")
            }
        }
        _ => {
            let s = us / S;
            match s {
                0..3600 => format!("{}m {:02}s", s / 60, s % 60),
                3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
                _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
            }
        }
    }
}

/// A duration measured in whole milliseconds: `<1 ms` for zero, which is all such a figure says.
pub fn duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "<1 ms".to_string();
    }
    duration_us(ms.saturating_mul(1_000))
}

/// The signed distance from `base` to `t`: `+17.4 ms`, `-31.1 ms`, `+0 µs`.
pub fn offset(base: DateTime<Utc>, t: DateTime<Utc>) -> String {
    let d = t.signed_duration_since(base);
    let us = d.num_microseconds().unwrap_or(i64::MAX);
    let sign = if us < 0 { '-' } else { '+' };
    format!("{sign}{}", duration_us(us.unsigned_abs()))
}

/// `part` as a share of `whole` for people to read, one decimal: `100.0%`, `0.3%`; `None` for a
/// zero whole.
pub fn percent(part: u64, whole: u64) -> Option<String> {
    (whole > 0).then(|| format!("{:.1}%", part as f64 * 100.0 / whole as f64))
}

/// `part` as a whole-number share of `whole`, rounded down: a figure to compute with (a bar's
/// width, a threshold), not to show. `None` for a zero whole.
pub fn whole_percent(part: u64, whole: u64) -> Option<u64> {
    (whole > 0).then(|| (part as u128 * 100 / whole as u128) as u64)
}

/// `2026-11-23 01:03:44.236 UTC`: a moment of a report (its exit, its creation).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

/// `2026-11-23 01:03:44 UTC`: a moment in a list of reports, where the second is precise enough.
pub fn timestamp_seconds(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `01:03:44.206902`: a time of day in UTC with microseconds, as `strace -tt` prints it, for
/// events within one run (syscalls, the fatal signal, the OOM kill).
pub fn time_of_day(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S%.6f").to_string()
}

/// `2026-11-23T01:03:44.218702814Z`: the exact time as recorded, for a tooltip.
pub fn exact(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// How long ago, in words: `12 s ago`, `5 min ago`, `3 h ago`, `2 d ago`; `just now` for now or a
/// time ahead of the clock.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds();
    match s {
        ..=0 => "just now".to_string(),
        1..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// How long ago, for a narrow table column the way kubectl shows ages: `45s`, `12m`, `5h`, `3d`;
/// `0s` for a time ahead of the clock.
pub fn short_age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds().max(0);
    match s {
        0..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
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
        assert_eq!(bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn durations_pick_a_fitting_unit() {
        assert_eq!(duration_us(850), "850 µs");
        assert_eq!(duration_ms(96), "96 ms");
        assert_eq!(duration_ms(0), "<1 ms");
        assert_eq!(duration_us(12_500), "12.5 ms");
        assert_eq!(duration_ms(1_234), "1.23 s");
        assert_eq!(duration_ms(184_000), "3m 04s");
        assert_eq!(duration_ms(7_500_000), "2h 05m");
    }

    #[test]
    fn offsets_carry_a_sign() {
        let base = t("2026-11-23T01:03:44Z");
        assert_eq!(offset(base, t("2026-11-23T01:03:44.0963Z")), "+96.3 ms");
        assert_eq!(offset(base, t("2026-11-23T01:03:42.8Z")), "-1.20 s");
        assert_eq!(offset(base, base), "+0 µs");
    }

    #[test]
    fn ages_round_down_to_the_largest_unit() {
        let now = t("2026-11-23T12:00:00Z");
        assert_eq!(ago(t("2026-11-23T12:00:05Z"), now), "just now");
        assert_eq!(ago(t("2026-11-23T11:59:48Z"), now), "12 s ago");
        assert_eq!(ago(t("2026-11-23T11:55:00Z"), now), "5 min ago");
        assert_eq!(ago(t("2026-11-21T12:00:00Z"), now), "2 d ago");
    }

    #[test]
    fn short_ages_read_like_kubectl() {
        let now = t("2026-11-22T10:00:00Z");
        assert_eq!(short_age(t("2026-11-22T09:59:15Z"), now), "45s");
        assert_eq!(short_age(t("2026-11-22T09:48:00Z"), now), "12m");
        assert_eq!(short_age(t("2026-11-22T05:00:00Z"), now), "5h");
        assert_eq!(short_age(t("2026-11-19T10:00:00Z"), now), "3d");
        assert_eq!(
            short_age(t("2026-11-22T10:00:05Z"), now),
            "0s",
            "clock skew"
        );
    }

    #[test]
    fn percents_to_show_have_one_decimal_and_to_compute_with_none() {
        assert_eq!(percent(1, 0), None);
        assert_eq!(percent(20 << 20, 20 << 20).as_deref(), Some("100.0%"));
        assert_eq!(percent(1, 3).as_deref(), Some("33.3%"));
        assert_eq!(whole_percent(1, 0), None);
        assert_eq!(whole_percent(u64::MAX, u64::MAX), Some(100));
        assert_eq!(whole_percent(1, 3), Some(33));
    }

    #[test]
    fn times_are_shown_in_utc() {
        let x = t("2026-11-23T02:03:44.218702814+01:00");
        assert_eq!(timestamp(x), "2026-11-23 01:03:44.218 UTC");
        assert_eq!(timestamp_seconds(x), "2026-11-23 01:03:44 UTC");
        assert_eq!(time_of_day(x), "01:03:44.218702");
        assert_eq!(exact(x), "2026-11-23T01:03:44.218702814Z");
    }
}
