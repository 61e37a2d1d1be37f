//! Streaming fault injection on the control plane:
//! `POST /__emulator/faults/streaming/drop` forgets every CometD client (held connects answer
//! `403::Unknown client` with `reconnect: handshake`, as after a server-side session loss);
//! `POST /__emulator/faults/cdc/gap` and `/__emulator/faults/cdc/overflow` publish header-only
//! `GAP_*` / `GAP_OVERFLOW` change events.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::org::Org;

pub fn routes() -> Router<Org> {
    Router::new()
        .route("/__emulator/faults/streaming/drop", post(drop_clients))
        .route("/__emulator/faults/cdc/gap", post(gap))
        .route("/__emulator/faults/cdc/overflow", post(overflow))
}

async fn drop_clients(State(org): State<Org>) -> Json<Value> {
    let dropped = org.streaming().clients.drop_all();
    Json(json!({"droppedClients": dropped}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GapRequest {
    object: String,
    change_type: String,
    #[serde(default)]
    record_ids: Vec<String>,
}

#[derive(Deserialize)]
struct OverflowRequest {
    object: String,
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// The object's API name and key prefix, or a 400 naming the unknown object.
fn object(org: &Org, name: &str) -> Result<(String, String), ApiError> {
    org.schema()
        .objects
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(name))
        .map(|o| (o.name.clone(), o.key_prefix.clone()))
        .ok_or_else(|| bad_request(format!("No object named {name:?} in this org")))
}

async fn gap(
    State(org): State<Org>,
    Json(request): Json<GapRequest>,
) -> Result<Json<Value>, ApiError> {
    let (entity, _) = object(&org, &request.object)?;
    let change_type = request.change_type.trim_start_matches("GAP_");
    if !matches!(change_type, "CREATE" | "UPDATE" | "DELETE" | "UNDELETE") {
        return Err(bad_request(format!(
            "changeType must be GAP_CREATE, GAP_UPDATE, GAP_DELETE or GAP_UNDELETE, not {:?}",
            request.change_type
        )));
    }
    let replay_id = org.cdc().inject_gap(
        &entity,
        change_type,
        request.record_ids,
        org.user_id().as_str(),
        org.now_ms(),
    );
    Ok(Json(json!({"replayId": replay_id})))
}

async fn overflow(
    State(org): State<Org>,
    Json(request): Json<OverflowRequest>,
) -> Result<Json<Value>, ApiError> {
    let (entity, key_prefix) = object(&org, &request.object)?;
    let replay_id =
        org.cdc()
            .inject_overflow(&entity, &key_prefix, org.user_id().as_str(), org.now_ms());
    Ok(Json(json!({"replayId": replay_id})))
}
