//! `/sobjects`: global describe, per-object basic info and describe, create, get/patch/delete by
//! Id, get/upsert by external ID, and the `updated`/`deleted` replication helpers.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value as Json};

use crate::data::error::{json_response, ApiError};
use crate::data::ids::SfId;
use crate::data::render;
use crate::data::schema::ObjectSchema;
use crate::data::value::{format_datetime_rest, parse_datetime, Value};
use crate::org::write::{FieldInput, Fields, WriteContext, WriteOp, WriteResult};
use crate::org::Org;
use crate::routes::rest::parse_object;
use crate::routes::session::{ApiVersion, Authed};

/// sObject routes.
pub fn routes() -> Router<Org> {
    let p = "/services/data/{version}/sobjects";
    Router::new()
        .route(p, get(global_describe))
        .route(&format!("{p}/"), get(global_describe))
        .route(&format!("{p}/{{object}}"), get(basic_info).post(create))
        .route(&format!("{p}/{{object}}/"), get(basic_info).post(create))
        .route(&format!("{p}/{{object}}/describe"), get(describe))
        .route(&format!("{p}/{{object}}/describe/"), get(describe))
        .route(&format!("{p}/{{object}}/updated"), get(updated))
        .route(&format!("{p}/{{object}}/updated/"), get(updated))
        .route(&format!("{p}/{{object}}/deleted"), get(deleted))
        .route(&format!("{p}/{{object}}/deleted/"), get(deleted))
        .route(
            &format!("{p}/{{object}}/{{id}}"),
            get(get_record).patch(update).delete(delete),
        )
        .route(
            &format!("{p}/{{object}}/{{field}}/{{value}}"),
            get(get_by_ext).patch(upsert).post(upsert),
        )
}

/// The object named in a URL (case-insensitive) or 404 NOT_FOUND.
pub fn object_or_404(org: &Org, name: &str) -> Result<Arc<ObjectSchema>, ApiError> {
    org.schema()
        .object(name)
        .cloned()
        .ok_or_else(ApiError::not_found)
}

/// JSON object fields → write inputs.
pub fn json_fields(m: serde_json::Map<String, Json>) -> Fields {
    m.into_iter()
        .filter(|(k, _)| k != "attributes")
        .map(|(k, v)| (k, FieldInput::Json(v)))
        .collect()
}

/// A single-record write result → REST error (400 with the `errorCode` array).
fn write_error(r: WriteResult) -> ApiError {
    let errs = r.errors();
    let status = match errs.first().map(|e| e.status_code.as_str()) {
        Some("NOT_FOUND") => StatusCode::NOT_FOUND,
        Some("ENTITY_IS_DELETED") => StatusCode::NOT_FOUND,
        Some("UNABLE_TO_LOCK_ROW") => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError::from_field_errors(status, errs)
}

fn one(org: &Org, ctx: &WriteContext, op: WriteOp) -> WriteResult {
    org.write(ctx, vec![op], false)
        .pop()
        .unwrap_or(WriteResult::Err(vec![]))
}

async fn global_describe(State(org): State<Org>, v: ApiVersion, _a: Authed) -> Response {
    json_response(StatusCode::OK, &org.schema().global_describe(&v.0))
}

async fn basic_info(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let recent: Vec<Json> = {
        let st = org.read();
        let t = st.table(oi);
        t.iter_by_modstamp(Bound::Unbounded, Bound::Unbounded)
            .rev()
            .filter(|(_, r)| !t.is_deleted(r))
            .take(5)
            .map(|(id, r)| {
                let mut m = serde_json::Map::new();
                m.insert(
                    "attributes".into(),
                    render::attributes(&o, id.as_str(), &v.0),
                );
                m.insert("Id".into(), Json::String(id.to_string()));
                if let Some(n) = o.sys.name {
                    m.insert(o.fields[n].name.clone(), r.get(n).to_rest_json());
                }
                Json::Object(m)
            })
            .collect()
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"objectDescribe": o.global_entry(&v.0), "recentItems": recent}),
    ))
}

async fn describe(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    Ok(json_response(
        StatusCode::OK,
        &o.describe_json(&v.0, &org.base_url()),
    ))
}

async fn create(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let fields = json_fields(parse_object(&body)?);
    let ctx = WriteContext::rest(&org, &v.0);
    match one(
        &org,
        &ctx,
        WriteOp::Create {
            object: o.name.clone(),
            fields,
        },
    ) {
        WriteResult::Ok { id, .. } => Ok(json_response(
            StatusCode::CREATED,
            &json!({"id": id, "success": true, "errors": []}),
        )),
        e => Err(write_error(e)),
    }
}

/// Resolves a URL id for `o`: 404 NOT_FOUND when malformed, of another object, or missing;
/// 404 ENTITY_IS_DELETED when in the recycle bin.
fn live_id(org: &Org, o: &ObjectSchema, id: &str) -> Result<SfId, ApiError> {
    let sid = SfId::parse(id).map_err(|_| ApiError::not_found())?;
    if sid.key_prefix() != o.key_prefix {
        return Err(ApiError::not_found());
    }
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let st = org.read();
    let t = st.table(oi);
    match t.get(&sid) {
        None => Err(ApiError::not_found()),
        Some(r) if t.is_deleted(r) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        )),
        Some(_) => Ok(sid),
    }
}

/// `?fields=a,b` → positions (400 INVALID_FIELD on unknown names).
pub fn field_list(
    o: &ObjectSchema,
    fields: Option<&String>,
) -> Result<Option<Vec<usize>>, ApiError> {
    let Some(list) = fields.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let i = o.field_index(name).ok_or_else(|| {
            ApiError::with_fields(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                format!("No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.", o.name),
                vec![],
            )
        })?;
        out.push(i);
    }
    Ok(Some(out))
}

fn record_response(
    org: &Org,
    o: &ObjectSchema,
    id: SfId,
    fields: Option<&[usize]>,
    version: &str,
) -> Result<Response, ApiError> {
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let st = org.read();
    let r = st.table(oi).get(&id).ok_or_else(ApiError::not_found)?;
    Ok(json_response(
        StatusCode::OK,
        &render::record_json(o, r, fields, version),
    ))
}

async fn get_record(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object, id)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let fields = field_list(&o, q.get("fields"))?;
    if SfId::parse(&id).is_err() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {id}"),
        ));
    }
    let sid = live_id(&org, &o, &id)?;
    record_response(&org, &o, sid, fields.as_deref(), &v.0)
}

async fn update(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let fields = json_fields(parse_object(&body)?);
    let sid = live_id(&org, &o, &id)?;
    let ctx = WriteContext::rest(&org, &v.0);
    let op = WriteOp::Update {
        object: Some(o.name.clone()),
        id: sid.to_string(),
        fields,
    };
    match one(&org, &ctx, op) {
        WriteResult::Ok { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        e => Err(write_error(e)),
    }
}

async fn delete(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object, id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let sid = live_id(&org, &o, &id)?;
    let ctx = WriteContext::rest(&org, &v.0);
    match one(
        &org,
        &ctx,
        WriteOp::Delete {
            id: sid.to_string(),
        },
    ) {
        WriteResult::Ok { .. } => Ok(StatusCode::NO_CONTENT.into_response()),
        e => Err(write_error(e)),
    }
}

/// Live records of `o` whose external-ID field `field` equals `value`; 404 when the field is
/// not an external ID (or Id) field.
fn ext_matches(
    org: &Org,
    o: &ObjectSchema,
    field: &str,
    value: &str,
) -> Result<(usize, Vec<SfId>), ApiError> {
    let not_ext = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
        )
    };
    let fi = o.field_index(field).ok_or_else(not_ext)?;
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let st = org.read();
    let t = st.table(oi);
    if fi == o.sys.id {
        let ids = SfId::parse(value)
            .ok()
            .filter(|id| t.get(id).is_some_and(|r| !t.is_deleted(r)))
            .into_iter()
            .collect();
        return Ok((fi, ids));
    }
    let f = &o.fields[fi];
    if !(f.external_id || f.id_lookup) || !t.is_indexed(fi) {
        return Err(not_ext());
    }
    let key = Value::from_text(f, value)
        .map_err(|e| ApiError::from_field_errors(StatusCode::BAD_REQUEST, &[e]))?;
    Ok((fi, t.lookup(fi, &key).to_vec()))
}

fn multiple_choices(o: &ObjectSchema, ids: &[SfId], version: &str) -> Response {
    let urls: Vec<Json> = ids
        .iter()
        .map(|id| {
            Json::String(format!(
                "/services/data/v{version}/sobjects/{}/{id}",
                o.name
            ))
        })
        .collect();
    json_response(StatusCode::MULTIPLE_CHOICES, &Json::Array(urls))
}

async fn get_by_ext(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let fields = field_list(&o, q.get("fields"))?;
    let (_, ids) = ext_matches(&org, &o, &field, &value)?;
    match ids.as_slice() {
        [] => Err(ApiError::not_found()),
        [id] => record_response(&org, &o, *id, fields.as_deref(), &v.0),
        many => Ok(multiple_choices(&o, many, &v.0)),
    }
}

async fn upsert(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let mut body = parse_object(&body)?;
    let (fi, ids) = ext_matches(&org, &o, &field, &value)?;
    if ids.len() > 1 {
        return Ok(multiple_choices(&o, &ids, &v.0));
    }
    let update_only = q
        .get("updateOnly")
        .is_some_and(|s| s.eq_ignore_ascii_case("true"));
    if ids.is_empty() && (update_only || fi == o.sys.id) {
        return Err(ApiError::not_found());
    }
    // The external ID comes from the URL; a body copy of it is ignored when equal.
    let ext_name = o.fields[fi].name.clone();
    body.retain(|k, val| {
        !(k.eq_ignore_ascii_case(&ext_name) && val.as_str() == Some(value.as_str()))
    });
    let ctx = WriteContext::rest(&org, &v.0);
    let op = WriteOp::Upsert {
        object: o.name.clone(),
        ext_field: ext_name,
        value,
        fields: json_fields(body),
    };
    match one(&org, &ctx, op) {
        WriteResult::Ok { id, created } => {
            let body = json!({"id": id, "success": true, "errors": [], "created": created});
            if created {
                Ok(json_response(StatusCode::CREATED, &body))
            } else if v.major() >= 46 {
                Ok(json_response(StatusCode::OK, &body))
            } else {
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        }
        e => Err(write_error(e)),
    }
}

fn replication_window(
    org: &Org,
    q: &HashMap<String, String>,
    max_days: i64,
) -> Result<(i64, i64, i64), ApiError> {
    let get = |k: &str| -> Result<i64, ApiError> {
        let raw = q.get(k).ok_or_else(|| {
            ApiError::bad_request("MISSING_ARGUMENT", format!("{k} parameter not specified"))
        })?;
        // A literal '+' in a query string decodes to a space.
        parse_datetime(raw)
            .or_else(|| parse_datetime(&raw.replace(' ', "+")))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_REPLICATION_DATE",
                    format!("{k}: invalid date/time value: {raw}"),
                )
            })
    };
    let start = get("start")?;
    let end = get("end")?;
    let now = org.now_ms();
    let minute = 60_000;
    let start_m = start - start.rem_euclid(minute);
    // Held back to the start of a transaction still running (`chaos::slow`).
    let covered =
        crate::org::chaos::slow::latest_covered(end.min(now), org.chaos().slow.earliest_running());
    if start > end {
        return Err(ApiError::bad_request(
            "INVALID_REPLICATION_DATE",
            "startDate must chronologically precede endDate",
        ));
    }
    if start < now - max_days * 86_400_000 {
        return Err(ApiError::bad_request(
            "INVALID_REPLICATION_DATE",
            format!("startDate cannot be more than {max_days} days ago"),
        ));
    }
    Ok((start_m, covered, now))
}

const MAX_REPLICATION_IDS: usize = 600_000;

async fn updated(
    State(org): State<Org>,
    _v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    let (start, covered, _) = replication_window(&org, &q, 30)?;
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let ids: Vec<Json> = {
        let st = org.read();
        let t = st.table(oi);
        t.iter_by_modstamp(Bound::Included(start), Bound::Excluded(covered))
            .filter(|(_, r)| !t.is_deleted(r))
            .map(|(id, _)| Json::String(id.to_string()))
            .take(MAX_REPLICATION_IDS + 1)
            .collect()
    };
    if ids.len() > MAX_REPLICATION_IDS {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "ID limit exceeded: more than 600,000 ids; use a smaller time window",
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"ids": ids, "latestDateCovered": format_datetime_rest(covered)}),
    ))
}

async fn deleted(
    State(org): State<Org>,
    _v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let o = object_or_404(&org, &object)?;
    crate::org::recycle_bin::purge_expired(&org);
    let (start, covered, now) = replication_window(&org, &q, 15)?;
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let mut recs: Vec<(i64, SfId)> = {
        let st = org.read();
        let t = st.table(oi);
        let ms = o.sys.system_modstamp;
        let mut v: Vec<(i64, SfId)> = t
            .iter_by_modstamp(Bound::Included(start), Bound::Excluded(covered))
            .filter(|(_, r)| t.is_deleted(r))
            .map(|(id, r)| {
                let at = match ms.map(|i| r.get(i)) {
                    Some(Value::DateTime(x)) => *x,
                    _ => 0,
                };
                (at, id)
            })
            .collect();
        v.extend(t.iter_purged(start, covered).map(|(id, at)| (at, id)));
        v
    };
    recs.sort();
    if recs.len() > MAX_REPLICATION_IDS {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "ID limit exceeded: more than 600,000 ids; use a smaller time window",
        ));
    }
    let earliest = now - 15 * 86_400_000;
    let earliest = earliest - earliest.rem_euclid(60_000);
    let list: Vec<Json> = recs
        .into_iter()
        .map(|(at, id)| json!({"id": id, "deletedDate": format_datetime_rest(at)}))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "deletedRecords": list,
            "earliestDateAvailable": format_datetime_rest(earliest),
            "latestDateCovered": format_datetime_rest(covered),
        }),
    ))
}
