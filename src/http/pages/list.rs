//! The front page: the filter form, the crash-loop groups and the recent crashes. Also the crash
//! table the group page reuses. Pure: data in, HTML out.

use chrono::{DateTime, Utc};

use super::filters::Filters;
use super::html::Html;
use super::layout::page;
use crate::model::{Cause, CrashGroup, CrashSummary};
use crate::store::Page;
use crate::units::{ago, timestamp_seconds};

pub struct Index<'a> {
    pub filters: &'a Filters,
    pub groups: &'a [CrashGroup],
    pub crashes: &'a Page,
    pub now: DateTime<Utc>,
}

pub fn render(v: &Index) -> String {
    page("Crashes", |h| {
        h.el("h1", &[], "Crashes on this node");
        filter_form(h, v.filters);
        h.el("h2", &[("id", "groups")], "Crash groups");
        h.el(
            "p",
            &[("class", "muted small")],
            "Repeated crashes of one workload with the same cause and key evidence: a crash loop.",
        );
        group_table(h, v.groups, v.now);
        h.el("h2", &[("id", "crashes")], "Recent crashes");
        crash_table(h, &v.crashes.items, v.now);
        pager(h, v.filters, v.crashes);
    })
}

fn filter_form(h: &mut Html, f: &Filters) {
    h.open(
        "form",
        &[("class", "filters"), ("method", "get"), ("action", "/")],
    );
    for (name, hint) in [
        ("namespace", "any"),
        ("pod", "any"),
        ("container", "any"),
        ("since", "2026-11-22T10:00:00Z"),
    ] {
        h.open("label", &[]).text(name);
        h.open(
            "input",
            &[
                ("name", name),
                ("value", f.value(name)),
                ("placeholder", hint),
            ],
        );
        h.close("label");
    }
    let outcome = match f.value("outcome") {
        "" => "crashed",
        v => v,
    };
    select(
        h,
        "outcome",
        outcome,
        &[
            ("crashed", "crashed"),
            ("completed", "completed"),
            ("all", "all"),
        ],
    );
    let mut causes = vec![("", "any")];
    causes.extend(Cause::ALL.iter().map(|c| (c.as_str(), c.as_str())));
    select(h, "cause", f.value("cause"), &causes);
    if !f.value("limit").is_empty() {
        h.open(
            "input",
            &[
                ("type", "hidden"),
                ("name", "limit"),
                ("value", f.value("limit")),
            ],
        );
    }
    h.raw("<button type=\"submit\">Filter</button>")
        .link("/", "clear")
        .close("form");
}

fn select(h: &mut Html, name: &'static str, current: &str, options: &[(&str, &str)]) {
    h.open("label", &[])
        .text(name)
        .open("select", &[("name", name)]);
    for (value, label) in options {
        if *value == current {
            h.open("option", &[("value", value), ("selected", "selected")]);
        } else {
            h.open("option", &[("value", value)]);
        }
        h.text(label).close("option");
    }
    h.close("select").close("label");
}

fn group_table(h: &mut Html, groups: &[CrashGroup], now: DateTime<Utc>) {
    if groups.is_empty() {
        h.el("p", &[("class", "muted")], "No crash groups match.");
        return;
    }
    h.raw("<table><thead><tr><th>last seen</th><th>workload</th><th>cause</th>")
        .raw(
            "<th class=\"num\">crashes</th><th>latest diagnosis</th><th></th></tr></thead><tbody>",
        );
    for g in groups {
        h.raw("<tr>");
        time_cell(h, g.last_seen, now);
        h.open("td", &[("class", "wrap")])
            .text(workload(g))
            .close("td");
        h.open("td", &[]);
        cause_badge(h, Some(g.cause));
        if g.cause_changed {
            h.raw("<br>")
                .el("span", &[("class", "badge warn")], cause_change(g));
        }
        h.close("td");
        h.el("td", &[("class", "num")], g.count);
        h.el("td", &[], &g.summary);
        h.open("td", &[("class", "nowrap")])
            .link(&format!("/groups/{}", g.id), "group")
            .raw(" · ")
            .link(&format!("/crashes/{}", g.latest_report_id), "latest")
            .close("td")
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// `edge/gateway-*/beam`: the group's workload, the pod owner standing for its pods.
pub fn workload(g: &CrashGroup) -> String {
    let w = &g.workload;
    match &w.owner {
        Some(owner) if g.pods.iter().any(|p| p != owner) => {
            format!("{}/{owner}-*/{}", w.namespace, w.container)
        }
        Some(owner) => format!("{}/{owner}/{}", w.namespace, w.container),
        None => format!("{}/{}", w.namespace, w.container),
    }
}

/// `cause changed (was exec_failed)`.
pub fn cause_change(g: &CrashGroup) -> String {
    match g.previous_cause {
        Some(c) => format!("cause changed (was {c})"),
        None => "cause changed".to_string(),
    }
}

/// The crash rows of a list: when, who, how it exited, why, and the link to the report.
pub fn crash_table(h: &mut Html, items: &[CrashSummary], now: DateTime<Utc>) {
    if items.is_empty() {
        h.el("p", &[("class", "muted")], "No crashes match.");
        return;
    }
    h.raw("<table><thead><tr><th>exited</th><th>namespace/pod/container</th><th>exit</th>")
        .raw("<th>cause</th><th>diagnosis</th><th></th></tr></thead><tbody>");
    for s in items {
        h.raw("<tr>");
        time_cell(h, s.exited_at, now);
        h.open("td", &[("class", "wrap")]).text(identity(s));
        if let Some(a) = s.attempt {
            h.el(
                "span",
                &[("class", "muted small")],
                format_args!(" attempt {a}"),
            );
        }
        h.close("td");
        h.open("td", &[("class", "nowrap")]);
        exit_cell(h, s.exit_code, s.signal_name.as_deref(), s.oom_killed);
        h.close("td").open("td", &[]);
        cause_badge(h, s.cause);
        h.close("td");
        h.el("td", &[], s.diagnosis.as_deref().unwrap_or(""));
        h.open("td", &[("class", "nowrap")])
            .link(&format!("/crashes/{}", s.id), "report");
        if let Some(g) = &s.group_id {
            h.raw(" · ").link(&format!("/groups/{g}"), "group");
        }
        h.close("td").raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// `edge/gateway/beam`.
pub fn identity(s: &CrashSummary) -> String {
    match &s.pod {
        Some(pod) => format!("{}/{pod}/{}", s.namespace, s.container),
        None => format!("{}/{}", s.namespace, s.container),
    }
}

fn time_cell(h: &mut Html, t: DateTime<Utc>, now: DateTime<Utc>) {
    h.open("td", &[("class", "nowrap")])
        .text(timestamp_seconds(t))
        .raw("<br>")
        .el("span", &[("class", "muted small")], ago(t, now))
        .close("td");
}

/// `137 SIGKILL OOM`, the OOM and signal as badges.
pub fn exit_cell(h: &mut Html, code: u32, signal: Option<&str>, oom: bool) {
    h.text(code);
    if let Some(sig) = signal {
        h.raw(" ").el("span", &[("class", "badge")], sig);
    }
    if oom {
        h.raw(" ").el("span", &[("class", "badge bad")], "OOM");
    }
}

pub fn cause_badge(h: &mut Html, cause: Option<Cause>) {
    match cause {
        Some(Cause::Completed) => h.el("span", &[("class", "badge ok")], "completed"),
        Some(c) => h.el("span", &[("class", "badge bad")], c),
        None => h.el("span", &[("class", "muted")], "not diagnosed"),
    };
}

fn pager(h: &mut Html, f: &Filters, page: &Page) {
    h.open("div", &[("class", "pager")]);
    if f.crashes.cursor.is_some() {
        h.link(&f.href(None), "« first page");
    }
    if let Some(c) = &page.next_cursor {
        h.link(&f.href(Some(&c.encode())), "next page »");
    }
    h.close("div");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Outcome, Workload};
    use crate::store::Cursor;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn summary() -> CrashSummary {
        CrashSummary {
            id: "3b26e83de66231393e30".into(),
            outcome: Outcome::Crashed,
            exited_at: t("2026-11-23T01:03:44Z"),
            namespace: "edge".into(),
            pod: Some("gateway".into()),
            container: "beam".into(),
            container_id: "ec6c".into(),
            image: None,
            exit_code: 137,
            signal_name: Some("SIGKILL".into()),
            oom_killed: true,
            attempt: Some(2),
            recovered: false,
            cause: Some(Cause::OomKilled),
            diagnosis: Some("OOM-killed after <96 ms>".into()),
            key: None,
            group_id: Some("abcd".into()),
        }
    }

    fn group() -> CrashGroup {
        CrashGroup {
            id: "abcd".into(),
            workload: Workload {
                namespace: "edge".into(),
                owner: Some("gateway".into()),
                container: "beam".into(),
            },
            cause: Cause::OomKilled,
            key: None,
            summary: "OOM-killed".into(),
            count: 3,
            first_seen: t("2026-11-23T00:00:00Z"),
            last_seen: t("2026-11-23T01:03:44Z"),
            latest_report_id: "3b26e83de66231393e30".into(),
            report_ids: vec![],
            pods: vec!["gateway-7d9f8b6c5d-x2x9q".into()],
            cause_changed: true,
            previous_cause: Some(Cause::ExecFailed),
            current: true,
        }
    }

    fn index(filters: &Filters, page: &Page) -> String {
        render(&Index {
            filters,
            groups: &[group()],
            crashes: page,
            now: t("2026-11-23T01:08:44Z"),
        })
    }

    #[test]
    fn a_crash_row_shows_time_identity_exit_cause_and_links() {
        let f = Filters::from_pairs(&[]).unwrap();
        let page = Page {
            items: vec![summary()],
            next_cursor: None,
        };
        let html = index(&f, &page);
        for want in [
            "2026-11-23 01:03:44 UTC",
            "5 min ago",
            "edge/gateway/beam",
            "attempt 2",
            "SIGKILL",
            ">OOM<",
            ">oom_killed<",
            "OOM-killed after &lt;96 ms&gt;",
            "href=\"/crashes/3b26e83de66231393e30\"",
            "href=\"/groups/abcd\"",
        ] {
            assert!(html.contains(want), "{want} missing from {html}");
        }
        assert!(!html.contains("next page"));
    }

    #[test]
    fn a_group_row_shows_count_and_the_cause_change() {
        let f = Filters::from_pairs(&[]).unwrap();
        let html = index(
            &f,
            &Page {
                items: vec![],
                next_cursor: None,
            },
        );
        assert!(html.contains("edge/gateway-*/beam"), "{html}");
        assert!(html.contains("cause changed (was exec_failed)"), "{html}");
        assert!(html.contains("<td class=\"num\">3</td>"), "{html}");
        assert!(html.contains("No crashes match."));
    }

    #[test]
    fn the_form_keeps_the_filters_and_the_next_link_carries_them() {
        let pairs = vec![
            ("namespace".to_string(), "edge".to_string()),
            ("cause".to_string(), "oom_killed".to_string()),
        ];
        let f = Filters::from_pairs(&pairs).unwrap();
        let next = Cursor {
            exited_at: t("2026-11-23T01:03:44Z"),
            id: "abcd".into(),
        };
        let html = index(
            &f,
            &Page {
                items: vec![summary()],
                next_cursor: Some(next.clone()),
            },
        );
        assert!(html.contains("name=\"namespace\" value=\"edge\""), "{html}");
        assert!(
            html.contains("<option value=\"oom_killed\" selected=\"selected\">"),
            "{html}"
        );
        assert!(
            html.contains("<option value=\"crashed\" selected=\"selected\">"),
            "{html}"
        );
        let href = format!(
            "href=\"?namespace=edge&amp;cause=oom_killed&amp;cursor={}\"",
            next.encode()
        );
        assert!(html.contains(&href), "{href} missing from {html}");
    }
}
