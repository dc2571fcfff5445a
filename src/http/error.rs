//! API errors and their mapping to HTTP responses: a status and a JSON body
//! `{"error": {"code": "...", "message": "..."}}` with a stable `code`.

use axum::http::StatusCode;
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
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadQuery(_) => "bad_request",
            ApiError::NotFound(_) | ApiError::GroupNotFound(_) | ApiError::NoRoute(_) => {
                "not_found"
            }
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) | ApiError::GroupNotFound(_) | ApiError::NoRoute(_) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        if let ApiError::BadQuery(q) = &self {
            body["error"]["param"] = json!(q.param);
        }
        (self.status(), Json(body)).into_response()
    }
}
