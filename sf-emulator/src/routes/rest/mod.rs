//! The REST API under `/services/data/vXX.X/` (any version ≥ 20.0): versions and resources,
//! sObject describe/CRUD/upsert/updated/deleted (`sobjects`), composite (`composite`) and
//! `/limits`. `/query` and `/queryAll` live in `soql`.

pub mod composite;
pub mod sobjects;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value as Json};

use crate::data::error::{json_response, ApiError};
use crate::org::Org;
use crate::routes::session::{ApiVersion, Authed};

/// Highest API version the emulator advertises.
pub const LATEST_VERSION: u32 = 62;

/// REST routes.
pub fn routes() -> Router<Org> {
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{version}", get(resources))
        .route("/services/data/{version}/", get(resources))
        .route("/services/data/{version}/limits", get(limits))
        .route("/services/data/{version}/limits/", get(limits))
        .merge(sobjects::routes())
        .merge(composite::routes())
        // Collections of 200 wide records exceed axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// Largest JSON request body accepted by the REST resources.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

fn release_label(major: u32) -> String {
    // v20.0 = Winter '11; three releases a year.
    let idx = major - 20;
    let season = ["Winter", "Spring", "Summer"][(idx % 3) as usize];
    let year = 11 + idx / 3 + u32::from(!idx.is_multiple_of(3));
    let year = if season == "Winter" { year } else { year - 1 };
    format!("{season} '{year:02}")
}

/// `GET /services/data` → versions list (no auth, no limit header).
async fn versions() -> Response {
    let list: Vec<Json> = (20..=LATEST_VERSION)
        .map(|m| {
            json!({
                "label": release_label(m),
                "url": format!("/services/data/v{m}.0"),
                "version": format!("{m}.0"),
            })
        })
        .collect();
    json_response(StatusCode::OK, &Json::Array(list))
}

/// `GET /services/data/vXX.X` → resource name → path.
async fn resources(State(org): State<Org>, v: ApiVersion, _a: Authed) -> Response {
    let base = format!("/services/data/v{}", v.0);
    let mut m = Map::new();
    for r in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "contact-tracing",
        "jsonxform",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "commerce",
        "wave",
        "iot",
        "analytics",
        "search",
        "smartdatadiscovery",
        "identity",
        "composite",
        "parameterizedSearch",
        "fingerprint",
        "theme",
        "nouns",
        "event",
        "serviceTemplates",
        "recent",
        "connect",
        "licensing",
        "limits",
        "process",
        "async-queries",
        "query",
        "match",
        "emailConnect",
        "compactLayouts",
        "knowledgeManagement",
        "sobjects",
        "actions",
        "support",
        "jobs",
    ] {
        let v = if r == "identity" {
            org.identity_url()
        } else {
            format!("{base}/{r}")
        };
        m.insert(r.to_string(), Json::String(v));
    }
    json_response(StatusCode::OK, &Json::Object(m))
}

/// `GET /limits`.
async fn limits(State(org): State<Org>, _v: ApiVersion, _a: Authed) -> Response {
    json_response(StatusCode::OK, &org.limits_json())
}

/// Parses a JSON request body, answering JSON_PARSER_ERROR like Salesforce.
pub fn parse_body(body: &Bytes) -> Result<Json, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::json_parser(
            "The HTTP entity body is required, but this request has no entity body.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::json_parser(format!(
            "{} at [line:{}, column:{}]",
            e,
            e.line(),
            e.column()
        ))
    })
}

/// Parses a JSON object body.
pub fn parse_object(body: &Bytes) -> Result<Map<String, Json>, ApiError> {
    match parse_body(body)? {
        Json::Object(m) => Ok(m),
        _ => Err(ApiError::json_parser(
            "Cannot deserialize instance of SObject from START_ARRAY value [ or request may be missing a required field at [line:1, column:1]",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_labels() {
        assert_eq!(super::release_label(20), "Winter '11");
        assert_eq!(super::release_label(21), "Spring '11");
        assert_eq!(super::release_label(22), "Summer '11");
        assert_eq!(super::release_label(59), "Winter '24");
        assert_eq!(super::release_label(60), "Spring '24");
    }
}
