//! Floor 3, routes: the axum handlers of every API surface and of the control plane, and
//! `router`, which assembles them with the middleware (request faults, `Sforce-Limit-Info`,
//! the `Sforce-Call-Options` client). Handlers parse the wire, call the org's services
//! (`crate::org`) and render answers; nothing below this floor imports from here.

pub mod auth;
pub mod bulk1;
pub mod bulk2;
pub mod control;
pub mod faults;
pub mod pubsub;
pub mod query_api;
pub mod rest;
pub mod session;
pub mod streaming;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::data::error::ApiError;
use crate::org::cdc::origin;
use crate::org::Org;

/// The full HTTP surface over `org`.
pub fn router(org: Org) -> Router {
    Router::new()
        .merge(rest::routes())
        .merge(query_api::routes())
        .merge(bulk1::routes())
        .merge(bulk2::routes())
        .merge(control::routes())
        .merge(auth::routes())
        .merge(streaming::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            org.clone(),
            session::limit_info,
        ))
        .layer(axum::middleware::from_fn_with_state(
            org.clone(),
            faults::layer,
        ))
        .layer(axum::middleware::from_fn(call_options))
        .with_state(org)
}

/// Unknown paths: 404 NOT_FOUND as a Salesforce error array.
async fn not_found() -> ApiError {
    ApiError::not_found()
}

/// Known path, wrong method: 405 METHOD_NOT_ALLOWED as a Salesforce error array.
async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed."),
    )
}

/// Middleware: runs the request with its `Sforce-Call-Options` client id in scope (the
/// `changeOrigin` of the change events its writes publish).
async fn call_options(req: Request, next: Next) -> Response {
    let client = req
        .headers()
        .get("sforce-call-options")
        .and_then(|v| v.to_str().ok())
        .and_then(origin::client_option);
    origin::with_client(client, next.run(req)).await
}
