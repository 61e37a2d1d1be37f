//! The control plane under `/__emulator/...` for tests, demos and benchmarks (JSON in and out,
//! no authentication: it is the emulator's admin plane). Reset and seeding; validation rules
//! and after-save updates (`rules`); request faults (`faults`), `UNABLE_TO_LOCK_ROW` for the
//! next N writes, session expiry and dropped CometD clients (CDC gap/overflow injection is
//! `streaming::faults`); changes outside the API (`data_fix`); a custom field added at runtime (`schema_change`); API counters and limits; the emulated clock; saving the
//! data file on demand (`persist`). Every endpoint is documented in the crate's README.

pub mod data_fix;
pub mod schema_change;

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use crate::data::error::{json_response, ApiError};
use crate::data::value::format_datetime_z;
use crate::org::faults::RequestFaults;
use crate::org::rules::{AfterSave, CondOp, Condition, Trigger, ValidationRule};
use crate::org::Org;

/// Control-plane routes.
pub fn routes() -> Router<Org> {
    Router::new()
        .route("/__emulator/reset", post(reset))
        .route("/__emulator/seed", post(seed))
        .route(
            "/__emulator/validation-rules",
            get(list_rules).post(add_rule).delete(clear_rules),
        )
        .route(
            "/__emulator/after-save",
            get(list_after_save)
                .post(add_after_save)
                .delete(clear_after_save),
        )
        .route(
            "/__emulator/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route(
            "/__emulator/counters",
            get(get_counters).delete(reset_counters),
        )
        .route("/__emulator/limits", get(get_limits).put(set_limits))
        .route("/__emulator/clock", get(get_clock).post(advance_clock))
        .route("/__emulator/sessions", get(get_sessions).put(set_sessions))
        .route("/__emulator/sessions/expire", post(expire_sessions))
        .route("/__emulator/save", post(save_now))
        .merge(data_fix::routes())
        .merge(schema_change::routes())
}

/// How far the emulated clock may run ahead of the wall clock (100 years).
const MAX_CLOCK_OFFSET_MS: i64 = 100 * 365 * 86_400_000;
/// Longest session lifetime accepted (10 years).
const MAX_SESSION_SECONDS: u64 = 10 * 365 * 86_400;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALID_REQUEST", message)
}

/// Parses a JSON body into `T`, answering 400 JSON_PARSER_ERROR with serde's explanation.
fn body<T: DeserializeOwned>(bytes: &Bytes, example: &str) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::json_parser(format!(
            "a JSON body is required, e.g. {example}"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::json_parser(format!("{e} (expected a body like {example})")))
}

fn ok(body: Json) -> Response {
    json_response(StatusCode::OK, &body)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNKNOWN_EXCEPTION",
        e.to_string(),
    )
}

// ---- reset and seed ----

/// `POST /__emulator/reset`: empty every table and the CDC log, drop automation and faults,
/// reset counters. Sessions stay valid.
async fn reset(State(org): State<Org>) -> Response {
    org.reset();
    ok(json!({"reset": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedReq {
    object: String,
    count: usize,
    #[serde(default = "default_seed")]
    seed: u64,
}

fn default_seed() -> u64 {
    42
}

/// `POST /__emulator/seed {"object":"Account","count":N,"seed":42}` →
/// `{"created","firstId","lastId","ms"}`.
async fn seed(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: SeedReq = body(&bytes, r#"{"object":"Account","count":1000,"seed":42}"#)?;
    let started = std::time::Instant::now();
    let org2 = org.clone();
    let ids = tokio::task::spawn_blocking(move || {
        crate::org::seed::seed_object(&org2, &req.object, req.count, req.seed)
    })
    .await
    .map_err(internal)?
    .map_err(|m| ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m))?;
    Ok(ok(json!({
        "created": ids.len(),
        "firstId": ids.first(),
        "lastId": ids.last(),
        "ms": started.elapsed().as_millis() as u64,
    })))
}

// ---- validation rules and after-save updates ----

/// One condition given inline (`field`, `op`, `value`) and/or a `when` list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleReq {
    object: String,
    #[serde(default)]
    name: String,
    field: Option<String>,
    op: Option<CondOp>,
    #[serde(default)]
    value: Json,
    #[serde(default)]
    when: Vec<Condition>,
    message: String,
    #[serde(
        default,
        rename = "errorDisplayField",
        alias = "errorField",
        alias = "error_field"
    )]
    error_display_field: Option<String>,
}

/// The conditions of a request: the inline one first, then `when`.
fn conditions(
    field: Option<String>,
    op: Option<CondOp>,
    value: Json,
    when: Vec<Condition>,
) -> Result<Vec<Condition>, ApiError> {
    let mut out = Vec::with_capacity(when.len() + 1);
    match (field, op) {
        (Some(field), Some(op)) => out.push(Condition { field, op, value }),
        (Some(f), None) => {
            return Err(invalid(format!(
                "\"op\" is required with \"field\": {f:?} (equals, not_equals, contains, starts_with, is_null, not_null, greater_than, less_than, …)"
            )))
        }
        (None, Some(_)) => return Err(invalid("\"op\" needs a \"field\"")),
        (None, None) => {}
    }
    out.extend(when);
    if out.is_empty() {
        return Err(invalid(
            "give a condition: \"field\", \"op\" (and \"value\"), or a \"when\" list of them",
        ));
    }
    Ok(out)
}

/// `POST /__emulator/validation-rules`: records of `object` matching every condition are
/// rejected with FIELD_CUSTOM_VALIDATION_EXCEPTION and `message`.
async fn add_rule(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: RuleReq = body(
        &bytes,
        r#"{"object":"Account","field":"Name","op":"contains","value":"test","message":"No test accounts","errorDisplayField":"Name"}"#,
    )?;
    let mut rule = ValidationRule {
        object: req.object,
        name: req.name,
        when: conditions(req.field, req.op, req.value, req.when)?,
        message: req.message,
        error_field: req.error_display_field,
    };
    rule.check(&org.schema()).map_err(invalid)?;
    if rule.name.is_empty() {
        rule.name = format!("Rule{}", org.validation_rules().len() + 1);
    }
    org.add_validation_rule(rule.clone());
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::to_value(&rule).map_err(internal)?,
    ))
}

/// `GET /__emulator/validation-rules` → the installed rules.
async fn list_rules(State(org): State<Org>) -> Result<Response, ApiError> {
    Ok(ok(
        serde_json::to_value(org.validation_rules()).map_err(internal)?
    ))
}

/// `DELETE /__emulator/validation-rules` → `{"deleted": n}`.
async fn clear_rules(State(org): State<Org>) -> Response {
    let n = std::mem::take(&mut *org.inner.rules.write()).len();
    ok(json!({"deleted": n}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AfterSaveReq {
    object: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    on: Trigger,
    field: Option<String>,
    op: Option<CondOp>,
    #[serde(default)]
    value: Json,
    #[serde(default)]
    when: Vec<Condition>,
    set: Map<String, Json>,
}

/// `POST /__emulator/after-save`: after a write commits, records of `object` it created or
/// updated that match the conditions (none = every record) get the `set` values as a change of
/// their own (new SystemModstamp, own CDC UPDATE event).
async fn add_after_save(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: AfterSaveReq = body(
        &bytes,
        r#"{"object":"Account","field":"Industry","op":"equals","value":"Banking","set":{"Rating":"Hot"}}"#,
    )?;
    let when = if req.field.is_none() && req.op.is_none() && req.when.is_empty() {
        Vec::new()
    } else {
        conditions(req.field, req.op, req.value, req.when)?
    };
    let mut a = AfterSave {
        object: req.object,
        name: req.name,
        on: req.on,
        when,
        set: req.set,
    };
    a.check(&org.schema()).map_err(invalid)?;
    if a.name.is_empty() {
        a.name = format!("FieldUpdate{}", org.after_saves().len() + 1);
    }
    org.add_after_save(a.clone());
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::to_value(&a).map_err(internal)?,
    ))
}

/// `GET /__emulator/after-save` → the installed updates.
async fn list_after_save(State(org): State<Org>) -> Result<Response, ApiError> {
    Ok(ok(
        serde_json::to_value(org.after_saves()).map_err(internal)?
    ))
}

/// `DELETE /__emulator/after-save` → `{"deleted": n}`.
async fn clear_after_save(State(org): State<Org>) -> Response {
    let n = std::mem::take(&mut *org.inner.after_save.write()).len();
    ok(json!({"deleted": n}))
}

// ---- faults ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsReq {
    latency_ms: Option<u64>,
    share_503: Option<f64>,
    share_500: Option<f64>,
    seed: Option<u64>,
    paths: Option<Vec<String>>,
    unable_to_lock_row: Option<u32>,
    #[serde(default)]
    expire_sessions: bool,
    #[serde(default)]
    drop_streaming: bool,
}

fn faults_json(org: &Org) -> Json {
    let f = org.faults().get();
    let (n503, n500) = org.faults().injected();
    let mut out = json!({
        "latency_ms": f.latency_ms,
        "share_503": f.share_503,
        "share_500": f.share_500,
        "seed": f.seed,
        "paths": f.paths,
        "unable_to_lock_row": org.inner.lock_failures.load(Ordering::Relaxed),
        "injected": {"503": n503, "500": n500},
    });
    if let Json::Object(m) = &mut out {
        m.extend(crate::org::cdc::faults::report(org.cdc()));
        m.extend(crate::org::chaos::settings::report(org));
    }
    out
}

/// `GET /__emulator/faults` → the current faults and how many requests they failed.
async fn get_faults(State(org): State<Org>) -> Response {
    ok(faults_json(&org))
}

/// `POST /__emulator/faults`: sets the given faults (others keep their value); setting any
/// request fault restarts the deterministic sequence of failing requests.
async fn set_faults(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    // Change-event keys (`cdc_*`, `streaming_503_next`) belong to `cdc::faults`.
    let (rest, cdc) = crate::org::cdc::faults::split_settings(&bytes).map_err(invalid)?;
    let bytes = if cdc.is_empty() {
        bytes
    } else {
        Bytes::from(rest)
    };
    // Chaos-test keys (ambiguous writes, transport, query, Bulk, lock and slow-transaction
    // faults) belong to `chaos::settings`.
    let (rest, chaos) = crate::org::chaos::settings::split(&bytes).map_err(invalid)?;
    let bytes = rest.map_or(bytes, Bytes::from);
    chaos.apply(&org).map_err(invalid)?;
    let req: FaultsReq = body(
        &bytes,
        r#"{"latency_ms":50,"share_503":0.1,"share_500":0,"seed":7,"unable_to_lock_row":3,"expire_sessions":true,"drop_streaming":true}"#,
    )?;
    let shrunk = cdc.apply(org.cdc()).map_err(invalid)?;
    let mut f = org.faults().get();
    let touched = req.latency_ms.is_some()
        || req.share_503.is_some()
        || req.share_500.is_some()
        || req.seed.is_some()
        || req.paths.is_some();
    f = RequestFaults {
        latency_ms: req.latency_ms.unwrap_or(f.latency_ms),
        share_503: req.share_503.unwrap_or(f.share_503),
        share_500: req.share_500.unwrap_or(f.share_500),
        seed: req.seed.unwrap_or(f.seed),
        paths: req.paths.unwrap_or(f.paths),
        ..f
    };
    f.validate().map_err(invalid)?;
    if f.latency_ms > 600_000 {
        return Err(invalid("latency_ms must be at most 600000 (10 minutes)"));
    }
    if touched {
        org.faults().set(f);
    }
    if let Some(n) = req.unable_to_lock_row {
        org.fail_next_writes(n);
    }
    if req.expire_sessions {
        org.expire_all();
    }
    let mut out = faults_json(&org);
    if let Some(n) = shrunk {
        out["cdc_events_dropped"] = json!(n);
    }
    if req.drop_streaming {
        out["dropped_streaming_clients"] = json!(org.streaming().clients.drop_all());
    }
    Ok(ok(out))
}

/// `DELETE /__emulator/faults`: no latency, no failing requests, no pending lock failures.
async fn clear_faults(State(org): State<Org>) -> Response {
    org.faults().clear();
    org.chaos().clear();
    org.fail_next_writes(0);
    org.cdc().clear_faults(org.now_ms());
    ok(faults_json(&org))
}

// ---- counters, limits, clock, sessions ----

/// `GET /__emulator/counters` → `DailyApiRequests` usage and per-endpoint request counts.
async fn get_counters(State(org): State<Org>) -> Response {
    let (used, max) = org.api_usage();
    ok(json!({
        "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used), "Used": used},
        "endpoints": org.endpoint_counters(),
    }))
}

/// `DELETE /__emulator/counters`: zero API usage, every limit's usage and endpoint counts.
async fn reset_counters(State(org): State<Org>) -> Response {
    org.reset_counters();
    ok(json!({"reset": true}))
}

/// `GET /__emulator/limits` → the `/limits` body.
async fn get_limits(State(org): State<Org>) -> Response {
    ok(org.limits_json())
}

/// `PUT /__emulator/limits {"DailyApiRequests": 100, …}` sets maxima; answers `/limits`.
async fn set_limits(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: Map<String, Json> = body(&bytes, r#"{"DailyApiRequests":100}"#)?;
    let known = org.limits_json();
    let mut set = Vec::with_capacity(req.len());
    for (name, v) in req {
        if known.get(&name).is_none() {
            let names: Vec<&String> = known
                .as_object()
                .map(|m| m.keys().collect())
                .unwrap_or_default();
            return Err(invalid(format!(
                "unknown limit {name:?}; known limits: {names:?}"
            )));
        }
        let max = v
            .as_u64()
            .ok_or_else(|| invalid(format!("{name} must be a non-negative integer, got {v}")))?;
        set.push((name, max));
    }
    for (name, max) in set {
        org.set_limit(&name, max);
    }
    Ok(ok(org.limits_json()))
}

fn clock_json(org: &Org) -> Json {
    let now = org.now_ms();
    json!({
        "now": format_datetime_z(now),
        "now_ms": now,
        "offset_ms": org.clock_state().0,
    })
}

/// `GET /__emulator/clock` → emulated now and its offset from the wall clock.
async fn get_clock(State(org): State<Org>) -> Response {
    ok(clock_json(&org))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockReq {
    advance_ms: i64,
}

/// `POST /__emulator/clock {"advance_ms": n}` moves emulated time forward (CDC retention,
/// session expiry, date literals).
async fn advance_clock(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: ClockReq = body(&bytes, r#"{"advance_ms":3600000}"#)?;
    if req.advance_ms < 0 {
        return Err(invalid(
            "advance_ms must be ≥ 0: the emulated clock never goes back",
        ));
    }
    if org.clock_state().0.saturating_add(req.advance_ms) > MAX_CLOCK_OFFSET_MS {
        return Err(invalid(format!(
            "the emulated clock can run at most {MAX_CLOCK_OFFSET_MS} ms (100 years) ahead"
        )));
    }
    org.advance_clock(req.advance_ms);
    crate::org::recycle_bin::purge_expired(&org);
    Ok(ok(clock_json(&org)))
}

/// `GET /__emulator/sessions` → the session lifetime.
async fn get_sessions(State(org): State<Org>) -> Response {
    ok(json!({"lifetime_seconds": org.session_seconds()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionsReq {
    lifetime_seconds: u64,
}

/// `PUT /__emulator/sessions {"lifetime_seconds": n}`: lifetime (inactivity timeout) of
/// sessions, applied from their next use.
async fn set_sessions(State(org): State<Org>, bytes: Bytes) -> Result<Response, ApiError> {
    let req: SessionsReq = body(&bytes, r#"{"lifetime_seconds":900}"#)?;
    if !(1..=MAX_SESSION_SECONDS).contains(&req.lifetime_seconds) {
        return Err(invalid(format!(
            "lifetime_seconds must be between 1 and {MAX_SESSION_SECONDS} (10 years)"
        )));
    }
    org.set_session_seconds(req.lifetime_seconds);
    Ok(ok(json!({"lifetime_seconds": org.session_seconds()})))
}

/// `POST /__emulator/sessions/expire`: every session ends; clients get 401 INVALID_SESSION_ID.
async fn expire_sessions(State(org): State<Org>) -> Response {
    org.expire_all();
    ok(json!({"expired": true}))
}

/// `POST /__emulator/save`: writes the data file now.
async fn save_now(State(org): State<Org>) -> Result<Response, ApiError> {
    let Some(path) = org.config().data_file.clone() else {
        return Err(invalid(
            "this emulator runs without --data-file: there is nothing to save to",
        ));
    };
    let o = org.clone();
    let p = path.clone();
    let stats = tokio::task::spawn_blocking(move || crate::org::persist::save(&o, &p))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(ok(json!({
        "path": path.display().to_string(),
        "records": stats.records,
        "bytes": stats.bytes,
    })))
}
