//! The store queries behind the pages: the cause filter's paging and a group's reports.

use super::*;
use crate::model::Cause;
use crate::model::{Confidence, CrashReport, Diagnosis};
use crate::store::Page;
use crate::store::Retention;

fn report(n: u32, cause: Cause) -> CrashReport {
    let path = format!(
        "{}/tests/fixtures/reports/oom_killed.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut r: CrashReport = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    r.id = format!("{n:020x}");
    r.lifecycle.exited_at += chrono::Duration::seconds(n.into());
    r.diagnosis = Some(Diagnosis {
        cause,
        confidence: Confidence::High,
        summary: format!("crash {n}"),
        evidence: vec![],
        key: None,
        statement: None,
        advice: None,
    });
    r
}

/// Reports 1..=10, every third one OOM-killed, the others exec failures.
fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention {
        max_reports: 1000,
        max_bytes: u64::MAX,
    };
    let (store, _) = Store::open(dir.path(), retention).unwrap();
    for n in 1..=10 {
        let cause = if n % 3 == 0 {
            Cause::OomKilled
        } else {
            Cause::ExecFailed
        };
        store.insert(&report(n, cause)).unwrap();
    }
    (dir, store)
}

fn numbers(p: &Page) -> Vec<u32> {
    p.items
        .iter()
        .map(|s| u32::from_str_radix(&s.id, 16).unwrap())
        .collect()
}

#[test]
fn cause_filter_pages_through_the_matching_crashes_only() {
    let (_dir, store) = store();
    let q = Query {
        limit: 2,
        cause: Some(Cause::OomKilled),
        ..Query::default()
    };
    let first = store.list(&q);
    assert_eq!(numbers(&first), [9, 6]);
    let q = Query {
        cursor: first.next_cursor,
        ..q
    };
    let second = store.list(&q);
    assert_eq!(numbers(&second), [3]);
    assert_eq!(second.next_cursor, None);
}

#[test]
fn a_full_last_page_has_no_next_cursor() {
    let (_dir, store) = store();
    let q = Query {
        limit: 3,
        cause: Some(Cause::OomKilled),
        ..Query::default()
    };
    let page = store.list(&q);
    assert_eq!(numbers(&page), [9, 6, 3]);
    assert_eq!(page.next_cursor, None);
}

#[test]
fn a_group_page_lists_the_group_reports_newest_first() {
    let (_dir, store) = store();
    let oom = store
        .list(&Query::default())
        .items
        .into_iter()
        .find(|s| s.cause == Some(Cause::OomKilled));
    let g = store
        .group(oom.unwrap().group_id.as_deref().unwrap())
        .unwrap();
    let reports = group_reports(&store, &g);
    let ids: Vec<&str> = reports.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        g.report_ids.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(reports.iter().all(|s| s.cause == Some(Cause::OomKilled)));
}

#[test]
fn page_errors_keep_the_status_of_the_api() {
    let bad = PageError::from(ApiError::BadQuery(QueryError {
        param: "pod".into(),
        reason: "x".into(),
    }));
    assert_eq!(bad.into_response().status(), StatusCode::BAD_REQUEST);
    let missing = PageError::from(ApiError::NotFound("ab".into()));
    assert_eq!(missing.into_response().status(), StatusCode::NOT_FOUND);
    let malformed = PageError::BadId {
        what: "report",
        id: "../x".into(),
    };
    let resp = malformed.into_response();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
}

#[test]
fn report_page_shows_a_moved_image_tag_with_a_badge_and_both_digests() {
    use crate::model::{ImageCompared, ImageContent, ImageTagReport, ImageTagStatus};
    let mut r = report(1, Cause::ExitedError);
    r.image_tag = Some(ImageTagReport {
        reference: "localhost/gw:1".into(),
        status: ImageTagStatus::Moved,
        compared: ImageCompared::Config,
        ran: ImageContent {
            config_digest: Some(format!("sha256:{}", "a".repeat(64))),
            ..Default::default()
        },
        now: Some(ImageContent {
            config_digest: Some(format!("sha256:{}", "b".repeat(64))),
            imported_at: Some("2026-12-01T08:00:00Z".parse().unwrap()),
            ..Default::default()
        }),
        checked_at: r.lifecycle.exited_at,
    });
    let html = report::render(&r, r.lifecycle.exited_at);
    assert!(html.contains("<h2>Image tag</h2>"), "{html}");
    assert!(html.contains("tag moved"), "{html}");
    assert!(html.contains(&"a".repeat(64)) && html.contains(&"b".repeat(64)));
    assert!(
        html.contains("imported at 2026-12-01 08:00:00 UTC"),
        "{html}"
    );
    r.image_tag = None;
    assert!(!report::render(&r, r.lifecycle.exited_at).contains("Image tag"));
}
