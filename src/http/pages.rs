//! The web pages the agent serves: server-rendered HTML, no external assets.

use std::sync::Arc;

use axum::Router;

use crate::agent::Shared;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
