//! An administrator's metadata change while the org runs: `POST
//! /__emulator/schema/<Object>/fields` adds one custom field (a describe `fields` entry) to an
//! object, as creating it in Setup does. From then on the describe and global describe show
//! it, REST writes and SOQL accept it, stored records read it as null, CometD events carry
//! it, and Pub/Sub events are encoded with a new change-event schema under a new `schema_id`
//! while events published before keep theirs (Pub/Sub API Developer Guide, "GetSchema RPC
//! Method": "If the event schema changes, for example, when an administrator adds a field to
//! the event definition, the schema ID changes"). What is accepted: `ObjectSchema::with_custom_field`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value as Json};

use crate::data::error::{json_response, ApiError};
use crate::org::Org;

pub fn routes() -> Router<Org> {
    Router::new().route("/__emulator/schema/{object}/fields", post(add_field))
}

/// `POST /__emulator/schema/<Object>/fields {"name":"Tier__c","type":"string","length":40}` →
/// 201 `{"object","field" (the describe entry as now served),"fields" (how many),"schemaId"
/// (the object's change-event schema from now on)}`.
async fn add_field(
    State(org): State<Org>,
    Path(object): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let field: Json = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::json_parser(format!(
            "{e} (expected one describe field entry, e.g. {{\"name\":\"Tier__c\",\"type\":\"string\",\"length\":40}})"
        ))
    })?;
    let o = org.add_custom_field(&object, &field)?;
    let schema_id = org
        .cdc()
        .schemas()
        .for_object(&o)
        .map(|s| s.id.clone())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION", e))?;
    let entry = o.raw["fields"]
        .as_array()
        .and_then(|f| f.last())
        .cloned()
        .unwrap_or(Json::Null);
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "object": o.name,
            "field": entry,
            "fields": o.fields.len(),
            "schemaId": schema_id,
        }),
    ))
}
