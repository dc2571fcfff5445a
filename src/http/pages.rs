//! The web pages the agent serves: server-rendered HTML for a browser behind `kubectl
//! port-forward`, with inline CSS and no scripts or external assets.
//!
//! This file owns the routes, reading the store and mapping failures to error pages; the
//! rendering lives in the pure modules below it, and every value reaches the page through the
//! escaping writer in [`html`]. The JSON API (`/api/v1`) is the contract; these pages only show it.

mod doc;
mod filters;
mod group;
mod html;
mod layout;
mod list;
mod plot;
mod report;

/// The HTML of a report page (`/crashes/{id}`), also timed by `benches/diagnose_render.rs`.
pub use report::render as report_html;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;

use super::AppState;
use crate::http::ApiError;
use crate::model::{CrashGroup, CrashSummary};
use crate::store::{valid_id, Query, QueryError, Store, MAX_LIMIT};
use filters::Filters;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/crashes/{id}", get(crash))
        .route("/groups/{id}", get(group))
}

/// Why a page could not be shown; each becomes an HTML error page with its status.
#[derive(Debug, thiserror::Error)]
enum PageError {
    #[error("{0}")]
    BadQuery(#[from] QueryError),
    #[error("{what} id {id:?} is not valid: ids are hexadecimal")]
    BadId { what: &'static str, id: String },
    #[error("no {what} with id {id:?} on this node (it may have been removed by retention)")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Internal(String),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        match e {
            ApiError::BadQuery(q) => PageError::BadQuery(q),
            ApiError::NotFound(id) => PageError::NotFound { what: "report", id },
            ApiError::GroupNotFound(id) => PageError::NotFound {
                what: "crash group",
                id,
            },
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            PageError::BadQuery(_) | PageError::BadId { .. } => {
                (StatusCode::BAD_REQUEST, "Bad request")
            }
            PageError::NotFound { .. } => (StatusCode::NOT_FOUND, "Not found"),
            PageError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
        };
        html_response(status, layout::error_page(title, &self.to_string()))
    }
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Defence in depth behind the escaping: nothing but the inline style sheet may load or run.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

async fn index(
    State(s): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = super::query_pairs(raw.as_deref());
    let filters = Filters::from_pairs(&pairs)?;
    let (gq, cq) = (filters.groups.clone(), filters.crashes.clone());
    let (groups, crashes) =
        super::off_loop(&s, move |store| (store.groups(&gq), store.list(&cq))).await?;
    let view = list::Index {
        filters: &filters,
        groups: &groups,
        crashes: &crashes,
        now: Utc::now(),
    };
    Ok(html_response(StatusCode::OK, list::render(&view)))
}

async fn crash(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, PageError> {
    let id = super::path_id(path)?;
    if !valid_id(&id) {
        return Err(PageError::BadId { what: "report", id });
    }
    let report = super::load_report(&s, id).await?;
    Ok(html_response(
        StatusCode::OK,
        report::render(&report, Utc::now()),
    ))
}

async fn group(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, PageError> {
    let id = super::path_id(path)?;
    if !valid_id(&id) {
        return Err(PageError::BadId {
            what: "crash group",
            id,
        });
    }
    let lookup = id.clone();
    let found = super::off_loop(&s, move |store| {
        let g = store.group(&lookup)?;
        let reports = group_reports(store, &g);
        Some((g, reports))
    })
    .await?;
    let (g, reports) = found.ok_or(PageError::NotFound {
        what: "crash group",
        id,
    })?;
    Ok(html_response(
        StatusCode::OK,
        group::render(&g, &reports, Utc::now()),
    ))
}

/// The group's reports, newest first, from the index rather than from disk.
fn group_reports(store: &Store, g: &CrashGroup) -> Vec<CrashSummary> {
    let q = Query {
        group: Some(g.id.clone()),
        limit: g.report_ids.len().clamp(1, MAX_LIMIT),
        ..Query::default()
    };
    store.list(&q).items
}

#[cfg(test)]
mod tests;
