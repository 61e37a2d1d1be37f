//! Which objects are selected for Change Data Capture, on the control plane:
//! `GET /__emulator/cdc/entities` → `{"selected":[…],"available":[…]}` and
//! `PUT /__emulator/cdc/entities {"selected":["Account","Contact"]}` (`"selected":"all"` selects
//! every object again). Salesforce publishes change events only for the selected entities
//! (Change Data Capture Developer Guide, "Select Objects for Change Notifications"); every
//! object of the emulated org is selected by default.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::object;
use crate::data::error::ApiError;
use crate::org::Org;

pub fn routes() -> Router<Org> {
    Router::new().route("/__emulator/cdc/entities", get(current).put(select))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Selected {
    All(String),
    Some(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectRequest {
    selected: Selected,
}

fn body(org: &Org) -> Value {
    let available: Vec<String> = org
        .schema()
        .objects
        .iter()
        .map(|o| o.name.clone())
        .collect();
    let selected: Vec<String> = match org.cdc().selection() {
        None => available.clone(),
        Some(s) => available
            .iter()
            .filter(|o| s.contains(*o))
            .cloned()
            .collect(),
    };
    json!({"selected": selected, "available": available})
}

async fn current(State(org): State<Org>) -> Json<Value> {
    Json(body(&org))
}

async fn select(
    State(org): State<Org>,
    Json(request): Json<SelectRequest>,
) -> Result<Json<Value>, ApiError> {
    let selection = match request.selected {
        Selected::All(all) if all == "all" => None,
        Selected::All(other) => {
            return Err(ApiError::bad_request(
                "INVALID_REQUEST",
                format!("selected must be a list of object names or \"all\", not {other:?}"),
            ))
        }
        Selected::Some(names) => Some(
            names
                .iter()
                .map(|n| object(&org, n))
                .collect::<Result<BTreeSet<String>, ApiError>>()?,
        ),
    };
    org.cdc().set_selection(selection);
    Ok(Json(body(&org)))
}
