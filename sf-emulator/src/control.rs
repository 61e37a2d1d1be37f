//! The control plane under `/__emulator/...` for tests, demos and benchmarks. This module
//! provides reset and seeding; rules, faults, counters and persistence build on `Org`'s API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::error::{json_response, ApiError};
use crate::org::Org;

/// Control-plane routes.
pub fn routes() -> Router<Org> {
    Router::new()
        .route("/__emulator/reset", post(reset))
        .route("/__emulator/seed", post(seed))
        .route("/__emulator/validation-rules", post(add_validation_rule))
}

/// `POST /__emulator/validation-rules {"object":"Account","when":[{"field":"Name","op":"=",
/// "value":"Blocked"}],"message":"…","errorField":"Name"}`: writes matching every condition
/// fail with FIELD_CUSTOM_VALIDATION_EXCEPTION and the message. Answers `{"rules": n}`, the
/// object's rule count.
async fn add_validation_rule(
    State(org): State<Org>,
    body: Option<Json<crate::rules::ValidationRule>>,
) -> Result<Response, ApiError> {
    let Some(Json(mut rule)) = body else {
        return Err(ApiError::json_parser(
            "expected {\"object\":…,\"when\":[{\"field\":…,\"op\":…,\"value\":…}],\"message\":…}",
        ));
    };
    let schema = org.schema();
    let object = schema.object(&rule.object).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE",
            format!("sObject type '{}' is not supported.", rule.object),
        )
    })?;
    let named = rule
        .when
        .iter()
        .map(|c| c.field.as_str())
        .chain(rule.error_field.as_deref());
    for field in named {
        if object.field_index(field).is_none() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                format!("No such column '{field}' on entity '{}'.", object.name),
            ));
        }
    }
    rule.object = object.name.clone();
    org.add_validation_rule(rule);
    let count = org
        .validation_rules()
        .iter()
        .filter(|r| r.object == object.name)
        .count();
    Ok(json_response(StatusCode::OK, &json!({"rules": count})))
}

/// `POST /__emulator/reset`: empty every table and the CDC log, drop automation and faults,
/// reset counters. Sessions stay valid.
async fn reset(State(org): State<Org>) -> Response {
    org.reset();
    json_response(StatusCode::OK, &json!({"reset": true}))
}

#[derive(Deserialize)]
struct SeedReq {
    object: String,
    count: usize,
    #[serde(default = "default_seed")]
    seed: u64,
}

fn default_seed() -> u64 {
    42
}

/// `POST /__emulator/seed {"object":"Account","count":N,"seed":42}` → `{"object","created","ms"}`.
async fn seed(State(org): State<Org>, body: Option<Json<SeedReq>>) -> Result<Response, ApiError> {
    let Some(Json(req)) = body else {
        return Err(ApiError::json_parser(
            "expected {\"object\":…,\"count\":…,\"seed\":…}",
        ));
    };
    let started = std::time::Instant::now();
    let org2 = org.clone();
    let ids = tokio::task::spawn_blocking(move || {
        crate::seed::seed_object(&org2, &req.object, req.count, req.seed)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
    })?
    .map_err(|m| ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "created": ids.len(),
            "firstId": ids.first(),
            "lastId": ids.last(),
            "ms": started.elapsed().as_millis() as u64,
        }),
    ))
}
