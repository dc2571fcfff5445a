//! The HTTP surface: the crash API, health and readiness, and Prometheus metrics.
//!
//! Two routers, one per listener: [`router`] (the API, pages and live feed, plus `/metrics` and
//! the probes for `kubectl port-forward` users; behind the bearer token when one is set) and
//! [`metrics_router`] (`/metrics`, `/healthz`, `/readyz` only, never a token). [`serve`] runs
//! either with the connection cap and header timeout; [`auth`] holds the token.
//!
//! Handlers only translate between HTTP and the store/metrics; every failure becomes an
//! [`ApiError`] with a JSON body and a 4xx/5xx status, never a panic.

pub mod auth;
mod error;
mod events;
pub mod openapi;
pub mod pages;
pub mod serve;

pub use error::ApiError;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{Query, Store};

/// What the handlers read: the store (and its "report stored" feed), the metrics and the agent's
/// health. Owned here; the agent hands in its parts when it builds the router.
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// When set, every request to the API listener needs it.
    pub token: Option<auth::ApiToken>,
    /// One permit per live feed client (`--max-sse-clients`).
    pub sse_slots: Arc<tokio::sync::Semaphore>,
}

/// The API listener's routes: everything, behind the token when one is set.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/crashes", get(list_crashes))
        .route("/api/v1/crashes/{id}", get(get_crash))
        .route("/api/v1/crashes/{id}/artifacts/{name}", get(get_artifact))
        .route("/api/v1/groups", get(list_groups))
        .route("/api/v1/groups/{id}", get(get_group))
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/openapi.json", get(openapi_json))
        .merge(pages::routes())
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// The metrics listener's routes: what Prometheus and kubelet need, open to them, and no report.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(no_route)
        .with_state(state)
}

/// 401 unless the request carries the bearer token (when one is configured).
async fn require_token(
    State(s): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match &s.token {
        Some(token) if !token.accepts(req.headers()) => {
            s.metrics.http.reject(
                serve::ListenerKind::Api.label(),
                crate::metrics::HttpRejectReason::unauthorized,
            );
            ApiError::Unauthorized.into_response()
        }
        _ => next.run(req).await,
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let h = &s.health;
    let (connected, last) = (h.is_connected(), h.last_disconnect());
    let (state, reason) = (h.recorder_state, h.recorder_reason.as_deref());
    // Not ready while report writes fail, until every queued report is written.
    let st = h.store();
    let ready = h.is_ready() && st.failing.is_none();
    let store = match &st.failing {
        None => json!({ "state": "ok", "pending": st.pending }),
        Some(f) => json!({
            "state": "failing",
            "reason": f.reason,
            "error": f.error,
            "since": f.since,
            "pending": st.pending,
            "pending_bytes": st.pending_bytes,
        }),
    };
    let body = json!({
        "ready": ready,
        "recorder": { "state": state, "reason": reason },
        "containerd": {
            "socket": h.socket.display().to_string(),
            "connected": connected,
            "last_disconnect": last,
        },
        "store": store,
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the Prometheus text format
/// (`curl | promtool check metrics`).
async fn metrics(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if crate::metrics::accepts_openmetrics(accept) {
        (
            [(
                header::CONTENT_TYPE,
                crate::metrics::OPENMETRICS_CONTENT_TYPE,
            )],
            s.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, crate::metrics::TEXT_CONTENT_TYPE)],
            s.metrics.encode_text(),
        )
            .into_response()
    }
}

/// Decodes `a=b&c=d` (percent-encoded), keeping repeated keys so they can be refused.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn list_crashes(
    State(s): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let q = Query::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let page = s.store.list(&q);
    Ok(Json(json!({
        "items": page.items,
        "next_cursor": page.next_cursor.map(|c| c.encode()),
    }))
    .into_response())
}

/// How `GET /api/v1/crashes/{id}` renders a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Markdown,
    Text,
}

impl Format {
    fn from_pairs(pairs: &[(String, String)]) -> Result<Format, crate::store::QueryError> {
        let bad = |param: &str, reason: String| crate::store::QueryError {
            param: param.to_string(),
            reason,
        };
        let mut format = None;
        for (k, v) in pairs {
            match k.as_str() {
                "format" if format.is_some() => {
                    return Err(bad(k, "given more than once".into()));
                }
                "format" => {
                    format = Some(match v.as_str() {
                        "json" => Format::Json,
                        "markdown" | "md" => Format::Markdown,
                        "text" => Format::Text,
                        _ => {
                            return Err(bad(k, format!("{v:?} is not one of json, markdown, text")))
                        }
                    })
                }
                _ => return Err(bad(k, "unknown parameter; known: format".into())),
            }
        }
        Ok(format.unwrap_or(Format::Json))
    }
}

/// The `{id}` of a path. One that does not even decode (`%FF`) names nothing: a JSON 404 like
/// any other unknown id, not axum's plain-text rejection.
pub(crate) fn path_id(
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    path.map(|Path(id)| id)
        .map_err(|e| ApiError::NotFound(format!("<undecodable: {e}>")))
}

async fn get_crash(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let id = path_id(path)?;
    let format = Format::from_pairs(&query_pairs(raw.as_deref()))?;
    let report = load_report(&s, id).await?;
    Ok(match format {
        Format::Json => Json(report).into_response(),
        Format::Markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            crate::render::markdown(&report),
        )
            .into_response(),
        Format::Text => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            crate::render::text(&report),
        )
            .into_response(),
    })
}

/// A post-mortem file kept beside a report, with the content type the report gives it: gzip
/// as stored when the client accepts it, else decompressed. Only names the report lists are
/// looked up (they are safe path segments the agent made), so no request names another file.
async fn get_artifact(
    State(s): State<Arc<AppState>>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Path((id, name)) = path.map_err(|e| ApiError::NotFound(format!("<undecodable: {e}>")))?;
    let report = load_report(&s, id.clone()).await?;
    let Some(artifact) = report
        .artifacts
        .iter()
        .flat_map(|a| &a.files)
        .find(|f| f.name == name)
        .cloned()
    else {
        return Err(ApiError::ArtifactNotFound { id, name });
    };
    let (lookup, lookup_name) = (id.clone(), name.clone());
    let gzip = off_loop(&s, move |store| store.artifact(&lookup, &lookup_name))
        .await?
        .map_err(|e| {
            s.metrics.collection_error(e.label());
            ApiError::Internal(e.to_string())
        })?
        .ok_or(ApiError::ArtifactNotFound {
            id,
            name: name.clone(),
        })?;
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|e| e.trim().split(';').next() == Some("gzip"))
        });
    let content_type = axum::http::HeaderValue::from_str(&artifact.content_type).unwrap_or(
        axum::http::HeaderValue::from_static("application/octet-stream"),
    );
    let disposition = axum::http::HeaderValue::from_str(&format!(
        "{}; filename=\"{name}\"",
        if artifact.content_type.starts_with("text/") {
            "inline"
        } else {
            "attachment"
        }
    ))
    .unwrap_or(axum::http::HeaderValue::from_static("attachment"));
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    if accepts_gzip {
        headers.insert(
            header::CONTENT_ENCODING,
            axum::http::HeaderValue::from_static("gzip"),
        );
        return Ok((headers, gzip).into_response());
    }
    let limit = artifact.kept_bytes;
    let body = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gzip.as_slice())
            .take(limit + 1)
            .read_to_end(&mut out)
            .map(|_| out)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(format!("decompressing the artifact: {e}")))?;
    Ok((headers, body).into_response())
}

/// Runs store work off the async workers, which the agent's event loop shares: reading a
/// report from disk, or grouping the whole index (4 ms at the default 5000 reports).
pub(crate) async fn off_loop<T: Send + 'static>(
    s: &Arc<AppState>,
    work: impl FnOnce(&crate::store::Store) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A stored report by id; `NotFound` when there is none.
pub(crate) async fn load_report(
    s: &Arc<AppState>,
    id: String,
) -> Result<crate::model::CrashReport, ApiError> {
    let lookup = id.clone();
    let report = off_loop(s, move |store| store.get(&lookup))
        .await?
        .map_err(|e| {
            s.metrics.collection_error(e.label());
            ApiError::Internal(e.to_string())
        })?;
    report.ok_or(ApiError::NotFound(id))
}

async fn list_groups(
    State(s): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let q =
        crate::store::GroupQuery::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let groups = off_loop(&s, move |store| store.groups(&q)).await?;
    Ok(Json(json!({ "items": groups })).into_response())
}

async fn get_group(
    State(s): State<Arc<AppState>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(path).map_err(|_| ApiError::GroupNotFound("<undecodable>".into()))?;
    let lookup = id.clone();
    off_loop(&s, move |store| store.group(&lookup))
        .await?
        .map(|g| Json(g).into_response())
        .ok_or(ApiError::GroupNotFound(id))
}

async fn openapi_json() -> Response {
    Json(openapi::document()).into_response()
}

async fn no_route(uri: Uri) -> ApiError {
    ApiError::NoRoute(uri.path().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_percent_decoded_and_keep_repeats() {
        let pairs = query_pairs(Some(
            "since=2026-11-22T10%3A00%3A00%2B01%3A00&pod=a&pod=b&x",
        ));
        assert_eq!(
            pairs[0],
            ("since".into(), "2026-11-22T10:00:00+01:00".into())
        );
        assert_eq!(pairs[1].1, "a");
        assert_eq!(pairs[2].1, "b");
        assert_eq!(pairs[3], ("x".into(), "".into()));
    }
}
