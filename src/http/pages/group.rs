//! The page of one crash group: how often, since when, why, and its reports. Pure.

use chrono::{DateTime, Utc};

use super::layout::page;
use super::list::{cause_badge, cause_change, crash_table, workload};
use crate::model::{CrashGroup, CrashSummary};
use crate::units::{ago, timestamp_seconds};

pub fn render(g: &CrashGroup, reports: &[CrashSummary], now: DateTime<Utc>) -> String {
    let who = workload(g);
    page(&format!("group {who}"), |h| {
        h.el("h1", &[], format_args!("Crash group: {who}"));
        h.open("section", &[("class", "diagnosis"), ("id", "group")]);
        cause_badge(h, Some(g.cause));
        if let Some(k) = &g.key {
            h.raw(" ").el("code", &[], k);
        }
        h.el("div", &[("class", "summary")], &g.summary)
            .close("section");
        h.raw("<table class=\"kv\"><tbody>");
        let rows = [
            ("crashes", g.count.to_string()),
            (
                "first seen",
                format!(
                    "{} ({})",
                    timestamp_seconds(g.first_seen),
                    ago(g.first_seen, now)
                ),
            ),
            (
                "last seen",
                format!(
                    "{} ({})",
                    timestamp_seconds(g.last_seen),
                    ago(g.last_seen, now)
                ),
            ),
            ("pods", g.pods.join(", ")),
            (
                "still looping",
                if g.current {
                    "yes: the latest crash of the workload is in this group"
                } else {
                    "no: the workload crashed since with another cause"
                }
                .to_string(),
            ),
        ];
        for (name, value) in rows {
            h.raw("<tr>")
                .el("th", &[], name)
                .el("td", &[("class", "wrap")], value)
                .raw("</tr>");
        }
        if g.cause_changed {
            h.raw("<tr>")
                .el("th", &[], "cause")
                .el("td", &[], cause_change(g))
                .raw("</tr>");
        }
        h.raw("</tbody></table>");
        h.el("h2", &[], "Reports");
        if (reports.len() as u64) < g.count {
            h.el(
                "p",
                &[("class", "muted small")],
                format_args!("The latest {} of {} crashes.", reports.len(), g.count),
            );
        }
        crash_table(h, reports, now);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, Workload};

    #[test]
    fn group_page_shows_count_times_cause_change_and_reports() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let g = CrashGroup {
            id: "abcd".into(),
            workload: Workload {
                namespace: "edge".into(),
                owner: Some("gateway".into()),
                container: "beam".into(),
            },
            cause: Cause::AddressInUse,
            key: Some("bind 0.0.0.0:9443 EADDRINUSE".into()),
            summary: "bind <0.0.0.0:9443> failed".into(),
            count: 25,
            first_seen: t("2026-11-23T00:00:00Z"),
            last_seen: t("2026-11-23T01:00:00Z"),
            latest_report_id: "01".into(),
            report_ids: vec!["01".into()],
            pods: vec!["gateway".into()],
            cause_changed: true,
            previous_cause: Some(Cause::OomKilled),
            current: true,
        };
        let html = render(&g, &[], t("2026-11-23T02:00:00Z"));
        for want in [
            "Crash group: edge/gateway/beam",
            "<td class=\"wrap\">25</td>",
            "2026-11-23 00:00:00 UTC (2 h ago)",
            "2026-11-23 01:00:00 UTC (1 h ago)",
            "cause changed (was oom_killed)",
            ">address_in_use<",
            "bind &lt;0.0.0.0:9443&gt; failed",
            "The latest 0 of 25 crashes.",
        ] {
            assert!(html.contains(want), "{want} missing from {html}");
        }
    }
}
