//! The crash list's filter form: one set of GET parameters split between the API's two query
//! parsers (`Query` for crashes, `GroupQuery` for groups), so the page accepts exactly what the
//! API accepts and refuses a bad value with the API's own message. Pure.

use crate::store::{GroupQuery, Query, QueryError};

/// Parameters passed to both parsers (the group list takes no others).
const SHARED: [&str; 5] = ["namespace", "pod", "container", "cause", "since"];
/// Parameters of the crash list only.
const CRASHES_ONLY: [&str; 3] = ["outcome", "limit", "cursor"];

#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    pub crashes: Query,
    pub groups: GroupQuery,
    /// The non-empty parameters as given, minus the cursor: what the form shows and what the
    /// paging links carry.
    pub given: Vec<(String, String)>,
}

impl Filters {
    /// Empty values are dropped first: a blank form field means "any", where the API refuses
    /// an empty value.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Filters, QueryError> {
        let given: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some((k, _)) = given.iter().find(|(k, _)| !known(k)) {
            return Err(QueryError {
                param: k.to_string(),
                reason: format!("unknown parameter; known: {}", known_list()),
            });
        }
        let pick = |only: &[&str]| {
            given
                .iter()
                .filter(|(k, _)| SHARED.contains(k) || only.contains(k))
                .copied()
                .collect::<Vec<_>>()
        };
        let crashes = Query::from_pairs(pick(&CRASHES_ONLY))?;
        let groups = GroupQuery::from_pairs(pick(&[]))?;
        Ok(Filters {
            crashes,
            groups,
            given: given
                .iter()
                .filter(|(k, _)| *k != "cursor")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// The value given for `param`, for the form.
    pub fn value(&self, param: &str) -> &str {
        self.given
            .iter()
            .find(|(k, _)| k == param)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `?a=b&...` for these filters and the given cursor (`?` alone when there are none).
    pub fn href(&self, cursor: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.given {
            q.append_pair(k, v);
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        format!("?{}", q.finish())
    }
}

fn known(param: &str) -> bool {
    SHARED.contains(&param) || CRASHES_ONLY.contains(&param)
}

fn known_list() -> String {
    let all: Vec<&str> = SHARED.iter().chain(&CRASHES_ONLY).copied().collect();
    all.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cause;
    use crate::model::Outcome;

    fn parse(q: &[(&str, &str)]) -> Result<Filters, QueryError> {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Filters::from_pairs(&pairs)
    }

    #[test]
    fn no_parameters_is_the_api_default() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.crashes, Query::default());
        assert_eq!(f.groups, GroupQuery::default());
        assert_eq!(f.href(None), "?");
    }

    #[test]
    fn blank_form_fields_mean_any() {
        let f = parse(&[
            ("namespace", ""),
            ("pod", ""),
            ("cause", ""),
            ("outcome", "all"),
        ])
        .unwrap();
        assert_eq!(f.crashes.namespace, None);
        assert_eq!(f.crashes.outcome, None);
        assert_eq!(f.crashes.cause, None);
        assert_eq!(f.href(None), "?outcome=all");
    }

    #[test]
    fn filters_reach_both_lists() {
        let f = parse(&[
            ("namespace", "edge"),
            ("container", "beam"),
            ("cause", "oom_killed"),
        ])
        .unwrap();
        assert_eq!(f.crashes.namespace.as_deref(), Some("edge"));
        assert_eq!(f.groups.namespace.as_deref(), Some("edge"));
        assert_eq!(f.groups.container.as_deref(), Some("beam"));
        assert_eq!(f.crashes.cause, Some(Cause::OomKilled));
        assert_eq!(f.groups.cause, Some(Cause::OomKilled));
        assert_eq!(f.crashes.outcome, Some(Outcome::Crashed));
    }

    #[test]
    fn bad_values_name_the_parameter_with_the_api_message() {
        for (k, v) in [
            ("outcome", "dead"),
            ("cause", "bad_luck"),
            ("since", "yesterday"),
            ("limit", "0"),
        ] {
            let e = parse(&[(k, v)]).unwrap_err();
            assert_eq!(e.param, k, "{e}");
        }
        let e = parse(&[("colour", "red")]).unwrap_err();
        assert_eq!(e.param, "colour");
        assert!(
            e.reason
                .contains("known: namespace, pod, container, cause, since, outcome"),
            "{e}"
        );
        let e = parse(&[("pod", "a"), ("pod", "b")]).unwrap_err();
        assert!(e.reason.contains("more than once"), "{e}");
    }

    #[test]
    fn paging_links_keep_the_filters_and_replace_the_cursor() {
        let f = parse(&[("namespace", "a b&c"), ("cursor", "1.abc")]).unwrap();
        assert!(f.crashes.cursor.is_some());
        assert_eq!(f.href(Some("2.def")), "?namespace=a+b%26c&cursor=2.def");
        assert_eq!(f.value("namespace"), "a b&c");
        assert_eq!(f.value("pod"), "");
    }
}
