//! Pure parsers for the text of cgroup files: `&str` in, figure out. No I/O, no allocation on the
//! success path, so each kernel quirk is a unit test over the bytes a real kernel printed.
//!
//! What is "unlimited" differs by file and by version: v1 prints a huge page-rounded number for
//! memory, `-1` for a CFS quota and `max` for pids; v2 prints `max` everywhere. Every such value
//! maps to `None` here, so callers never compare against magic numbers.

/// Why a cgroup file's text could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("expected a number, found {found:?}")]
    NotANumber { found: String },
    #[error("expected \"<quota|max> <period>\", found {found:?}")]
    BadCpuMax { found: String },
    #[error("file is {max} bytes or larger, more than any file this reader knows")]
    TooLarge { max: usize },
    #[error("file is not UTF-8")]
    NotUtf8,
}

impl ParseError {
    /// Stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            ParseError::NotANumber { .. } => "not_a_number",
            ParseError::BadCpuMax { .. } => "bad_cpu_max",
            ParseError::TooLarge { .. } => "too_large",
            ParseError::NotUtf8 => "not_utf8",
        }
    }
}

/// v1 memory limits at or above this are the kernel's "unlimited": `PAGE_COUNTER_MAX` times the page
/// size, printed as 9223372036854771712 with 4 KiB pages, and other roundings with other page
/// sizes. No machine has 4 EiB of memory, so anything this large is not a real limit.
pub const V1_UNLIMITED_THRESHOLD: u64 = 1 << 62;

fn not_a_number(found: &str) -> ParseError {
    ParseError::NotANumber {
        found: found.chars().take(64).collect(),
    }
}

/// A single unsigned decimal, surrounding whitespace (the trailing newline) ignored.
pub fn u64_value(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse().map_err(|_| not_a_number(t))
}

/// v1 `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`: huge values (and `-1`, which some
/// older kernels echo back) mean unlimited.
pub fn v1_memory_limit(text: &str) -> Result<Option<u64>, ParseError> {
    let t = text.trim();
    if t == "-1" {
        return Ok(None);
    }
    let v = u64_value(t)?;
    Ok((v < V1_UNLIMITED_THRESHOLD).then_some(v))
}

/// v1 `cpu.cfs_quota_us`: `-1` (any negative) means no quota.
pub fn v1_cfs_quota(text: &str) -> Result<Option<u64>, ParseError> {
    let t = text.trim();
    let v: i64 = t.parse().map_err(|_| not_a_number(t))?;
    Ok(u64::try_from(v).ok())
}

/// A v2 single-value limit (`memory.max`, `memory.swap.max`, `pids.max`; also v1 `pids.max`):
/// `max` means unlimited.
pub fn max_or_u64(text: &str) -> Result<Option<u64>, ParseError> {
    let t = text.trim();
    if t == "max" {
        return Ok(None);
    }
    u64_value(t).map(Some)
}

/// v2 `cpu.max`: `"<quota> <period>"` or `"max <period>"`. Returns (quota, period) in µs.
pub fn cpu_max(text: &str) -> Result<(Option<u64>, Option<u64>), ParseError> {
    let t = text.trim();
    let bad = || ParseError::BadCpuMax {
        found: t.chars().take(64).collect(),
    };
    let mut fields = t.split_ascii_whitespace();
    let quota = match fields.next() {
        Some("max") => None,
        Some(q) => Some(q.parse::<u64>().map_err(|_| bad())?),
        None => return Err(bad()),
    };
    // The kernel always prints the period; tolerate its absence (quota alone) rather than fail.
    let period = match fields.next() {
        Some(p) => Some(p.parse::<u64>().map_err(|_| bad())?),
        None => None,
    };
    if fields.next().is_some() {
        return Err(bad());
    }
    Ok((quota, period))
}

/// A "flat keyed" file (`key value` per line): `cpu.stat`, `memory.events`, `pids.events`,
/// v1 `memory.oom_control`. Keys vary by kernel version and by which controllers are enabled
/// (v2 `cpu.stat` has no `nr_periods` without the cpu controller), so a missing key is `None`, not
/// an error; a present key with a non-numeric value is an error.
#[derive(Debug, Clone, Copy)]
pub struct Keyed<'a>(pub &'a str);

impl Keyed<'_> {
    pub fn get(&self, key: &str) -> Result<Option<u64>, ParseError> {
        for line in self.0.lines() {
            let mut fields = line.split_ascii_whitespace();
            if fields.next() == Some(key) {
                let value = fields.next().unwrap_or("");
                return u64_value(value).map(Some);
            }
        }
        Ok(None)
    }
}

/// `cpuset.cpus` / `cpuset.mems` as the kernel prints them, without the newline. Empty means the
/// cgroup sets nothing of its own (v2: inherits the parent's set).
pub fn cpuset_list(text: &str) -> &str {
    text.trim()
}

/// Nanoseconds (v1 `cpuacct.usage`, `throttled_time`) to the microseconds the report uses.
pub fn ns_to_us(ns: u64) -> u64 {
    ns / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_unlimited_memory_is_none() {
        // What a 4 KiB-page kernel prints for an unset limit (captured in fixtures/cgroup/v1/unlimited).
        assert_eq!(v1_memory_limit("9223372036854771712\n"), Ok(None));
        // A 64 KiB-page kernel rounds differently; still unlimited.
        assert_eq!(v1_memory_limit("9223372036854710272\n"), Ok(None));
        assert_eq!(v1_memory_limit("-1\n"), Ok(None));
        assert_eq!(
            v1_memory_limit(&format!("{}\n", V1_UNLIMITED_THRESHOLD)),
            Ok(None)
        );
        assert_eq!(
            v1_memory_limit(&format!("{}\n", V1_UNLIMITED_THRESHOLD - 1)),
            Ok(Some(V1_UNLIMITED_THRESHOLD - 1))
        );
    }

    #[test]
    fn v1_real_memory_limit_is_kept() {
        assert_eq!(v1_memory_limit("20971520\n"), Ok(Some(20 << 20)));
    }

    #[test]
    fn v1_cfs_quota_minus_one_is_unlimited() {
        assert_eq!(v1_cfs_quota("-1\n"), Ok(None));
        assert_eq!(v1_cfs_quota("50000\n"), Ok(Some(50_000)));
        assert!(matches!(
            v1_cfs_quota("fifty\n"),
            Err(ParseError::NotANumber { .. })
        ));
    }

    #[test]
    fn v2_max_is_none_not_parse_error() {
        assert_eq!(max_or_u64("max\n"), Ok(None));
        assert_eq!(max_or_u64("64\n"), Ok(Some(64)));
        assert_eq!(max_or_u64("0\n"), Ok(Some(0)));
    }

    #[test]
    fn cpu_max_unlimited_keeps_period() {
        assert_eq!(cpu_max("max 100000\n"), Ok((None, Some(100_000))));
        assert_eq!(cpu_max("50000 100000\n"), Ok((Some(50_000), Some(100_000))));
    }

    #[test]
    fn cpu_max_garbage_is_an_error_not_a_panic() {
        for bad in ["", "\n", "max max", "1 2 3", "-1 100000", "x 100000"] {
            assert!(
                matches!(cpu_max(bad), Err(ParseError::BadCpuMax { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keyed_file_missing_key_is_none_not_error() {
        // v2 cpu.stat of a cgroup whose parent does not enable the cpu controller.
        let stat = Keyed("usage_usec 5119967\nuser_usec 1542158\nsystem_usec 3577808\n");
        assert_eq!(stat.get("usage_usec"), Ok(Some(5_119_967)));
        assert_eq!(stat.get("nr_throttled"), Ok(None));
    }

    #[test]
    fn keyed_file_does_not_match_key_prefixes() {
        // `oom` must not pick up `oom_kill` or `oom_group_kill`, whatever the line order.
        let events = Keyed("oom_kill 4\noom_group_kill 1\nmax 21\noom 1\n");
        assert_eq!(events.get("oom"), Ok(Some(1)));
        assert_eq!(events.get("oom_kill"), Ok(Some(4)));
        assert_eq!(events.get("max"), Ok(Some(21)));
    }

    #[test]
    fn keyed_file_bad_value_is_parse_error() {
        assert!(matches!(
            Keyed("max lots\n").get("max"),
            Err(ParseError::NotANumber { .. })
        ));
        assert!(matches!(
            Keyed("max\n").get("max"),
            Err(ParseError::NotANumber { .. })
        ));
    }

    #[test]
    fn garbage_number_is_parse_error_not_panic() {
        assert!(u64_value("").is_err());
        assert!(u64_value("-5").is_err());
        assert!(u64_value("18446744073709551616").is_err());
        let long = "x".repeat(10_000);
        match u64_value(&long) {
            Err(ParseError::NotANumber { found }) => assert_eq!(found.len(), 64),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_cpuset_means_inherited() {
        assert_eq!(cpuset_list("\n"), "");
        assert_eq!(cpuset_list("0-1\n"), "0-1");
    }

    #[test]
    fn nanoseconds_become_microseconds() {
        assert_eq!(ns_to_us(4_119_466_332), 4_119_466);
    }
}
