//! Listing queries: filters, page size and the opaque cursor, parsed from URL query pairs.
//!
//! Parsing is pure and strict: an unknown parameter or a malformed value is an error that names
//! the parameter, so a typo in a filter never silently returns everything.

use chrono::{DateTime, Utc};

use crate::model::{Cause, CrashGroup, CrashSummary, Outcome};

pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    /// `None` means every outcome.
    pub outcome: Option<Outcome>,
    /// The diagnosed cause.
    pub cause: Option<Cause>,
    /// The crash-loop group (`group_id` of the summaries).
    pub group: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            namespace: None,
            pod: None,
            container: None,
            outcome: Some(Outcome::Crashed),
            cause: None,
            group: None,
            since: None,
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

/// Position after the last item of a page: (exit time, id) of that item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub exited_at: DateTime<Utc>,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            self.exited_at.timestamp_nanos_opt().unwrap_or(0),
            self.id
        )
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (nanos, id) = s.split_once('.')?;
        let nanos: i64 = nanos.parse().ok()?;
        if !super::valid_id(id) {
            return None;
        }
        Some(Cursor {
            exited_at: DateTime::from_timestamp_nanos(nanos),
            id: id.to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<CrashSummary>,
    pub next_cursor: Option<Cursor>,
}

/// A bad query parameter: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{param}`: {reason}")]
pub struct QueryError {
    pub param: String,
    pub reason: String,
}

fn bad(param: &str, reason: impl Into<String>) -> QueryError {
    QueryError {
        param: param.to_string(),
        reason: reason.into(),
    }
}

fn parse_cause(k: &str, v: &str) -> Result<Cause, QueryError> {
    Cause::parse(v).ok_or_else(|| {
        let known: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        bad(k, format!("{v:?} is not one of {}", known.join(", ")))
    })
}

impl Query {
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Query, QueryError> {
        let mut q = Query::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if !seen.insert(k) {
                return Err(bad(k, "given more than once"));
            }
            let non_empty = |v: &str| {
                if v.is_empty() {
                    Err(bad(k, "must not be empty"))
                } else {
                    Ok(v.to_string())
                }
            };
            match k {
                "namespace" => q.namespace = Some(non_empty(v)?),
                "pod" => q.pod = Some(non_empty(v)?),
                "container" => q.container = Some(non_empty(v)?),
                "outcome" => {
                    q.outcome = match v {
                        "crashed" => Some(Outcome::Crashed),
                        "completed" => Some(Outcome::Completed),
                        "all" => None,
                        _ => return Err(bad(k, format!("{v:?} is not one of crashed, completed, all"))),
                    }
                }
                "cause" => q.cause = Some(parse_cause(k, v)?),
                "group" => {
                    if !super::valid_id(v) {
                        return Err(bad(k, format!("{v:?} is not a group id (hex digits)")));
                    }
                    q.group = Some(v.to_string())
                }
                "since" => {
                    let t = DateTime::parse_from_rfc3339(v)
                        .map_err(|e| bad(k, format!("{v:?} is not an RFC 3339 time like 2026-11-22T10:00:00Z ({e})")))?;
                    q.since = Some(t.with_timezone(&Utc));
                }
                "limit" => {
                    let n: usize = v.parse().map_err(|_| bad(k, format!("{v:?} is not a whole number")))?;
                    if !(1..=MAX_LIMIT).contains(&n) {
                        return Err(bad(k, format!("{n} is outside 1..={MAX_LIMIT}")));
                    }
                    q.limit = n;
                }
                "cursor" => {
                    q.cursor = Some(Cursor::decode(v).ok_or_else(|| {
                        bad(k, "not a cursor this agent issued (use next_cursor from the previous page)")
                    })?)
                }
                _ => {
                    return Err(bad(
                        k,
                        "unknown parameter; known: namespace, pod, container, outcome, cause, group, since, limit, cursor",
                    ))
                }
            }
        }
        Ok(q)
    }

    pub fn matches(&self, s: &CrashSummary) -> bool {
        self.outcome.is_none_or(|o| o == s.outcome)
            && self.cause.is_none_or(|c| s.cause == Some(c))
            && self
                .group
                .as_ref()
                .is_none_or(|g| s.group_id.as_ref() == Some(g))
            && self.namespace.as_ref().is_none_or(|n| *n == s.namespace)
            && self.pod.as_ref().is_none_or(|p| s.pod.as_ref() == Some(p))
            && self
                .container
                .as_ref()
                .is_none_or(|c| *c == s.container || *c == s.container_id)
    }
}

/// Filters of `GET /api/v1/groups`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupQuery {
    pub namespace: Option<String>,
    /// Matches the workload's owner prefix or any pod of the group.
    pub pod: Option<String>,
    pub container: Option<String>,
    pub cause: Option<Cause>,
    /// Groups seen at or after this time.
    pub since: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
}

impl GroupQuery {
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<GroupQuery, QueryError> {
        let mut q = GroupQuery::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in pairs {
            if !seen.insert(k) {
                return Err(bad(k, "given more than once"));
            }
            if v.is_empty() {
                return Err(bad(k, "must not be empty"));
            }
            match k {
                "namespace" => q.namespace = Some(v.to_string()),
                "pod" => q.pod = Some(v.to_string()),
                "container" => q.container = Some(v.to_string()),
                "cause" => q.cause = Some(parse_cause(k, v)?),
                "since" => {
                    let t = DateTime::parse_from_rfc3339(v).map_err(|e| {
                        bad(
                            k,
                            format!(
                                "{v:?} is not an RFC 3339 time like 2026-11-22T10:00:00Z ({e})"
                            ),
                        )
                    })?;
                    q.since = Some(t.with_timezone(&Utc));
                }
                "limit" => {
                    let n: usize = v
                        .parse()
                        .map_err(|_| bad(k, format!("{v:?} is not a whole number")))?;
                    if !(1..=MAX_LIMIT).contains(&n) {
                        return Err(bad(k, format!("{n} is outside 1..={MAX_LIMIT}")));
                    }
                    q.limit = Some(n);
                }
                _ => {
                    return Err(bad(
                        k,
                        "unknown parameter; known: namespace, pod, container, cause, since, limit",
                    ))
                }
            }
        }
        Ok(q)
    }

    pub fn matches(&self, g: &CrashGroup) -> bool {
        self.namespace
            .as_ref()
            .is_none_or(|n| *n == g.workload.namespace)
            && self.pod.as_ref().is_none_or(|p| {
                g.workload.owner.as_ref() == Some(p) || g.pods.iter().any(|x| x == p)
            })
            && self
                .container
                .as_ref()
                .is_none_or(|c| *c == g.workload.container)
            && self.cause.is_none_or(|c| c == g.cause)
            && self.since.is_none_or(|s| g.last_seen >= s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lists_crashes_only() {
        let q = Query::from_pairs([]).unwrap();
        assert_eq!(q.outcome, Some(Outcome::Crashed));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert_eq!(
            Query::from_pairs([("outcome", "all")]).unwrap().outcome,
            None
        );
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let cases = [
            ("since", "yesterday"),
            ("limit", "0"),
            ("limit", "ten"),
            ("outcome", "dead"),
            ("cursor", "garbage"),
            ("pod", ""),
            ("cause", "bad_luck"),
            ("group", "../etc"),
            ("colour", "red"),
        ];
        for (k, v) in cases {
            let e = Query::from_pairs([(k, v)]).unwrap_err();
            assert_eq!(e.param, k, "{e}");
        }
        let e = Query::from_pairs([("pod", "a"), ("pod", "b")]).unwrap_err();
        assert!(e.reason.contains("more than once"));
    }

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            exited_at: DateTime::from_timestamp(1_700_000_000, 123).unwrap(),
            id: "abcdef01".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("1.../etc/passwd"), None);
    }
}
