//! API errors and their mapping to HTTP responses: a status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}` with a stable `code`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadQuery(#[from] crate::store::QueryError),
    #[error("no report with id {0:?}")]
    NotFound(String),
    #[error("no crash group with id {0:?}")]
    GroupNotFound(String),
    #[error("report {id:?} has no artifact {name:?}")]
    ArtifactNotFound { id: String, name: String },
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("this agent requires `Authorization: Bearer <token>` (the content of its --api-token-file; the client's --token-file)")]
    Unauthorized,
    #[error("too many {0} at once; retry in {secs} s", secs = super::serve::RETRY_AFTER_SECS)]
    Overloaded(&'static str),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadQuery(_) => "bad_request",
            ApiError::NotFound(_)
            | ApiError::GroupNotFound(_)
            | ApiError::ArtifactNotFound { .. }
            | ApiError::NoRoute(_) => "not_found",
            ApiError::Internal(_) => "internal",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Overloaded(_) => "overloaded",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_)
            | ApiError::GroupNotFound(_)
            | ApiError::ArtifactNotFound { .. }
            | ApiError::NoRoute(_) => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        if let ApiError::BadQuery(q) = &self {
            body["error"]["param"] = json!(q.param);
        }
        let mut resp = (self.status(), Json(body)).into_response();
        let headers = resp.headers_mut();
        match self {
            ApiError::Unauthorized => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"coroner\""),
                );
            }
            ApiError::Overloaded(_) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(super::serve::RETRY_AFTER_SECS),
                );
            }
            _ => {}
        }
        resp
    }
}
