//! The OpenAPI document of the HTTP API, served at `/api/v1/openapi.json`.

pub fn document() -> serde_json::Value {
    serde_json::json!({"openapi": "3.1.0"})
}
