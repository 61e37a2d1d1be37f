//! Streaming fault injection on the control plane:
//! `POST /__emulator/faults/streaming/drop` forgets every CometD client (held connects answer
//! `403::Unknown client` with `reconnect: handshake`, as after a server-side session loss) and
//! ends every Pub/Sub API subscription with `UNAVAILABLE` (`…service.unavailable`);
//! `POST /__emulator/faults/cdc/gap` publishes a header-only `GAP_*` event for records changed
//! outside a transaction (as Salesforce does for database-level changes such as archiving).
//! Gap events replacing a write's own events, overflow, and the other change-event faults are
//! keys of `/__emulator/faults` (`cdc::faults`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::data::error::ApiError;
use crate::org::Org;

pub fn routes() -> Router<Org> {
    Router::new()
        .route("/__emulator/faults/streaming/drop", post(drop_clients))
        .route("/__emulator/faults/cdc/gap", post(gap))
}

async fn drop_clients(State(org): State<Org>) -> Json<Value> {
    let dropped = org.streaming().clients.drop_all();
    let subscriptions = org.streaming().pubsub.drop_all();
    Json(json!({"droppedClients": dropped, "droppedSubscriptions": subscriptions}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GapRequest {
    object: String,
    change_type: String,
    #[serde(default)]
    record_ids: Vec<String>,
}

fn bad_request(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

/// The object's API name, or a 400 naming the unknown object.
pub(crate) fn object(org: &Org, name: &str) -> Result<String, ApiError> {
    org.schema()
        .objects
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(name))
        .map(|o| o.name.clone())
        .ok_or_else(|| bad_request(format!("No object named {name:?} in this org")))
}

async fn gap(
    State(org): State<Org>,
    Json(request): Json<GapRequest>,
) -> Result<Json<Value>, ApiError> {
    let entity = object(&org, &request.object)?;
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
