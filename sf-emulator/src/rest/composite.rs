//! Composite resources: sObject Collections, `/composite/batch`, `/composite/tree`.

use axum::Router;

use crate::org::Org;

/// Composite routes.
pub fn routes() -> Router<Org> {
    Router::new()
}
