//! Composite resources: sObject Collections (`/composite/sobjects` create/update/delete,
//! upsert by external ID, retrieve), `/composite/batch` (subrequests dispatched through the same
//! router, counted as one API call) and `/composite/tree/<Obj>` (nested inserts, all-or-none).

use std::collections::{HashMap, HashSet};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value as Json};
use tower::ServiceExt;

use crate::data::error::{json_response, ApiError, FieldError};
use crate::data::ids::SfId;
use crate::data::render;
use crate::org::write::{FieldInput, Transaction, WriteContext, WriteOp, WriteResult};
use crate::org::Org;
use crate::routes::rest::parse_body;
use crate::routes::rest::sobjects::{json_fields, object_or_404};
use crate::routes::session::{ApiVersion, Authed, SubRequest};

/// Max records in one collections or tree call.
pub const MAX_COLLECTION: usize = 200;
/// Max subrequests in one batch.
pub const MAX_BATCH: usize = 25;

/// Composite routes.
pub fn routes() -> Router<Org> {
    let p = "/services/data/{version}/composite";
    Router::new()
        .route(
            &format!("{p}/sobjects"),
            post(coll_create).patch(coll_update).delete(coll_delete),
        )
        .route(
            &format!("{p}/sobjects/{{object}}"),
            post(coll_retrieve_post).get(coll_retrieve_get),
        )
        .route(
            &format!("{p}/sobjects/{{object}}/{{field}}"),
            axum::routing::patch(coll_upsert),
        )
        .route(&format!("{p}/batch"), post(batch))
        .route(&format!("{p}/tree/{{object}}"), post(tree))
}

fn need_version(v: &ApiVersion, min: u32) -> Result<(), ApiError> {
    if v.major() < min {
        return Err(ApiError::not_found());
    }
    Ok(())
}

struct Collection {
    all_or_none: bool,
    records: Vec<Map<String, Json>>,
}

fn parse_collection(body: &Bytes) -> Result<Collection, ApiError> {
    let Json::Object(mut m) = parse_body(body)? else {
        return Err(ApiError::json_parser(
            "Cannot deserialize instance of collection request from START_ARRAY value [",
        ));
    };
    let all_or_none = match m.remove("allOrNone") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => b,
        Some(other) => {
            return Err(ApiError::json_parser(format!(
                "Cannot deserialize instance of boolean from value {other}"
            )))
        }
    };
    let records = match m.remove("records") {
        Some(Json::Array(a)) => a,
        Some(_) => return Err(ApiError::json_parser("records must be an array")),
        None => {
            return Err(ApiError::bad_request(
                "MISSING_ARGUMENT",
                "Missing required parameter: records",
            ))
        }
    };
    if records.len() > MAX_COLLECTION {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let records = records
        .into_iter()
        .map(|r| match r {
            Json::Object(o) => Ok(o),
            _ => Err(ApiError::json_parser("each record must be a JSON object")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Collection {
        all_or_none,
        records,
    })
}

fn record_type(r: &Map<String, Json>) -> Option<String> {
    r.get("attributes")?
        .get("type")?
        .as_str()
        .map(str::to_string)
}

fn no_type() -> WriteResult {
    WriteResult::Err(vec![FieldError::new(
        "INVALID_TYPE",
        "Must specify a type in attributes",
    )])
}

/// Runs ops where some records were rejected before reaching the write path (`pre`);
/// results come back in request order.
fn run(
    org: &Org,
    ctx: &WriteContext,
    pre: Vec<Result<WriteOp, WriteResult>>,
    all_or_none: bool,
) -> Vec<WriteResult> {
    let ops: Vec<WriteOp> = pre
        .iter()
        .filter_map(|p| p.as_ref().ok().cloned())
        .collect();
    let mut results = org.write(ctx, ops, all_or_none).into_iter();
    pre.into_iter()
        .map(|p| match p {
            Ok(_) => results.next().unwrap_or(WriteResult::Err(vec![])),
            Err(e) => e,
        })
        .collect()
}

fn results_json(results: &[WriteResult], with_created: bool) -> Json {
    Json::Array(
        results
            .iter()
            .map(|r| r.to_collection_json(with_created))
            .collect(),
    )
}

async fn coll_create(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_version(&v, 42)?;
    let c = parse_collection(&body)?;
    let pre: Vec<Result<WriteOp, WriteResult>> = c
        .records
        .into_iter()
        .map(|r| match record_type(&r) {
            Some(t) => Ok(WriteOp::Create {
                object: t,
                fields: json_fields(r),
            }),
            None => Err(no_type()),
        })
        .collect();
    let ctx = WriteContext::rest(&org, &v.0);
    let res = checked_run(&org, &ctx, pre, c.all_or_none);
    Ok(json_response(StatusCode::OK, &results_json(&res, false)))
}

/// With all-or-none, records rejected before the write path fail the whole call without
/// writing anything; otherwise the valid ones go through.
fn checked_run(
    org: &Org,
    ctx: &WriteContext,
    pre: Vec<Result<WriteOp, WriteResult>>,
    all_or_none: bool,
) -> Vec<WriteResult> {
    if all_or_none && pre.iter().any(|p| p.is_err()) {
        return pre
            .into_iter()
            .map(|p| match p {
                Ok(_) => WriteResult::Err(vec![FieldError::new(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                )]),
                Err(e) => e,
            })
            .collect();
    }
    run(org, ctx, pre, all_or_none)
}

fn take_id(r: &mut Map<String, Json>) -> Option<String> {
    let key = r.keys().find(|k| k.eq_ignore_ascii_case("id"))?.clone();
    match r.remove(&key) {
        Some(Json::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

async fn coll_update(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_version(&v, 42)?;
    let c = parse_collection(&body)?;
    let pre = c
        .records
        .into_iter()
        .map(|mut r| {
            let t = record_type(&r);
            match take_id(&mut r) {
                Some(id) => Ok(WriteOp::Update {
                    object: t,
                    id,
                    fields: json_fields(r),
                }),
                None => Err(WriteResult::Err(vec![FieldError::new(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                )])),
            }
        })
        .collect();
    let ctx = WriteContext::rest(&org, &v.0);
    let res = checked_run(&org, &ctx, pre, c.all_or_none);
    Ok(json_response(StatusCode::OK, &results_json(&res, false)))
}

async fn coll_delete(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    need_version(&v, 42)?;
    let ids: Vec<String> = q
        .get("ids")
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "MISSING_ARGUMENT",
            "Missing required parameter: ids",
        ));
    }
    if ids.len() > MAX_COLLECTION {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let all_or_none = q
        .get("allOrNone")
        .is_some_and(|s| s.eq_ignore_ascii_case("true"));
    let ctx = WriteContext::rest(&org, &v.0);
    let ops = ids
        .iter()
        .map(|id| WriteOp::Delete { id: id.clone() })
        .collect();
    let res = org.write(&ctx, ops, all_or_none);
    let body: Vec<Json> = res
        .iter()
        .zip(&ids)
        .map(|(r, id)| {
            let mut j = r.to_collection_json(false);
            if let Json::Object(m) = &mut j {
                if !m.contains_key("id") {
                    let shown = SfId::parse(id).map(|s| s.to_string()).unwrap_or(id.clone());
                    m.insert("id".into(), Json::String(shown));
                }
            }
            j
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Json::Array(body)))
}

async fn coll_upsert(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_version(&v, 46)?;
    let o = object_or_404(&org, &object)?;
    let fi = o
        .field_index(&field)
        .filter(|i| {
            let f = &o.fields[*i];
            f.external_id || f.id_lookup
        })
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            )
        })?;
    let ext = o.fields[fi].name.clone();
    let c = parse_collection(&body)?;
    let pre = c
        .records
        .into_iter()
        .map(|mut r| {
            if let Some(t) = record_type(&r) {
                if !t.eq_ignore_ascii_case(&o.name) {
                    return Err(WriteResult::Err(vec![FieldError::new(
                        "INVALID_TYPE",
                        format!(
                            "Record type {t} does not match the upsert object {}",
                            o.name
                        ),
                    )]));
                }
            }
            let key = r.keys().find(|k| k.eq_ignore_ascii_case(&ext)).cloned();
            let value = key.and_then(|k| r.remove(&k)).and_then(|v| match v {
                Json::String(s) if !s.is_empty() => Some(s),
                Json::Number(n) => Some(n.to_string()),
                _ => None,
            });
            match value {
                Some(value) => Ok(WriteOp::Upsert {
                    object: o.name.clone(),
                    ext_field: ext.clone(),
                    value,
                    fields: json_fields(r),
                }),
                None => Err(WriteResult::Err(vec![FieldError::with_fields(
                    "MISSING_ARGUMENT",
                    format!("{ext} not specified"),
                    vec![ext.clone()],
                )])),
            }
        })
        .collect();
    let ctx = WriteContext::rest(&org, &v.0);
    let res = checked_run(&org, &ctx, pre, c.all_or_none);
    Ok(json_response(StatusCode::OK, &results_json(&res, true)))
}

fn retrieve(
    org: &Org,
    object: &str,
    ids: Vec<String>,
    fields: Vec<String>,
    version: &str,
) -> Result<Response, ApiError> {
    let o = object_or_404(org, object)?;
    if ids.len() > 2000 {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 2000 records into this call",
        ));
    }
    if fields.is_empty() {
        return Err(ApiError::bad_request(
            "MISSING_ARGUMENT",
            "Missing required parameter: fields",
        ));
    }
    let list = crate::routes::rest::sobjects::field_list(&o, Some(&fields.join(",")))?;
    let oi = org.schema().object_index(&o.name).unwrap_or(0);
    let st = org.read();
    let t = st.table(oi);
    let out: Vec<Json> = ids
        .iter()
        .map(|id| {
            SfId::parse(id)
                .ok()
                .and_then(|sid| t.get(&sid))
                .filter(|r| !t.is_deleted(r))
                .map(|r| render::record_json(&o, r, list.as_deref(), version))
                .unwrap_or(Json::Null)
        })
        .collect();
    Ok(json_response(StatusCode::OK, &Json::Array(out)))
}

fn strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Json::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        _ => Vec::new(),
    }
}

async fn coll_retrieve_post(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_version(&v, 42)?;
    let b = parse_body(&body)?;
    retrieve(
        &org,
        &object,
        strings(b.get("ids")),
        strings(b.get("fields")),
        &v.0,
    )
}

async fn coll_retrieve_get(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    need_version(&v, 42)?;
    let split = |k: &str| -> Vec<String> {
        q.get(k)
            .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default()
    };
    retrieve(&org, &object, split("ids"), split("fields"), &v.0)
}

// ---- batch ----

fn halted() -> Json {
    json!({"statusCode": 412, "result": [{"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}]})
}

/// `POST /composite/batch`.
async fn batch(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_version(&v, 34)?;
    let b = parse_body(&body)?;
    let reqs = match b.get("batchRequests") {
        Some(Json::Array(a)) => a.clone(),
        _ => {
            return Err(ApiError::bad_request(
                "MISSING_ARGUMENT",
                "Missing required parameter: batchRequests",
            ))
        }
    };
    if reqs.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "EXCEEDED_MAX_SUBREQUESTS",
            "A batch cannot contain more than 25 subrequests",
        ));
    }
    let halt = b
        .get("haltOnError")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let app = crate::routes::router(org.clone());
    let mut results = Vec::with_capacity(reqs.len());
    let mut has_errors = false;
    for r in reqs {
        if halt && has_errors {
            results.push(halted());
            continue;
        }
        let res = subrequest(&app, &headers, &v.0, &r).await;
        let status = res["statusCode"].as_u64().unwrap_or(500);
        if status >= 400 {
            has_errors = true;
        }
        results.push(res);
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"hasErrors": has_errors, "results": results}),
    ))
}

async fn subrequest(app: &Router, headers: &HeaderMap, version: &str, r: &Json) -> Json {
    let bad = |m: &str| json!({"statusCode": 400, "result": [{"errorCode": "INVALID_BATCH_REQUEST", "message": m}]});
    let Some(url) = r.get("url").and_then(Json::as_str) else {
        return bad("url is required");
    };
    let method = r.get("method").and_then(Json::as_str).unwrap_or("GET");
    let Ok(method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
        return bad("invalid method");
    };
    if url.contains("/composite/batch") {
        return bad("A batch cannot contain another batch");
    }
    let path = if url.starts_with("/services/") {
        url.to_string()
    } else if let Some(rest) = url.strip_prefix('v') {
        format!("/services/data/v{rest}")
    } else {
        format!("/services/data/v{version}/{}", url.trim_start_matches('/'))
    };
    let body = match r.get("richInput") {
        Some(j) if !j.is_null() => serde_json::to_vec(j).unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut builder = Request::builder().method(method).uri(&path);
    if let Some(a) = headers.get(axum::http::header::AUTHORIZATION) {
        builder = builder.header(axum::http::header::AUTHORIZATION, a);
    }
    if !body.is_empty() {
        builder = builder.header(axum::http::header::CONTENT_TYPE, "application/json");
    }
    let Ok(mut req) = builder.body(Body::from(body)) else {
        return bad("invalid url");
    };
    req.extensions_mut().insert(SubRequest);
    let resp = match app.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 256 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let result = if bytes.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    json!({"statusCode": status, "result": result})
}

// ---- tree ----

struct TreeOut {
    ok: Vec<(String, SfId)>,
    errors: Vec<(String, Vec<FieldError>)>,
}

fn count_tree(records: &[Json], depth: usize) -> Result<usize, ApiError> {
    if depth > 5 {
        return Err(ApiError::bad_request(
            "INVALID_INPUT",
            "Maximum depth of 5 levels exceeded",
        ));
    }
    let mut n = 0;
    for r in records {
        n += 1;
        if let Json::Object(m) = r {
            for v in m.values() {
                if let Some(Json::Array(kids)) = v.get("records") {
                    n += count_tree(kids, depth + 1)?;
                }
            }
        }
    }
    Ok(n)
}

fn tree_insert(
    org: &Org,
    tx: &mut Transaction<'_, '_>,
    object: &str,
    parent: Option<(&str, SfId)>,
    records: &[Json],
    seen: &mut HashSet<String>,
    out: &mut TreeOut,
) {
    let schema = org.schema().clone();
    for r in records {
        let Json::Object(m) = r else {
            out.errors.push((
                String::new(),
                vec![FieldError::new(
                    "INVALID_INPUT",
                    "each record must be a JSON object",
                )],
            ));
            continue;
        };
        let attrs = m.get("attributes");
        let ref_id = attrs
            .and_then(|a| a.get("referenceId"))
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        if ref_id.is_empty() || !seen.insert(ref_id.clone()) {
            let msg = if ref_id.is_empty() {
                "Include a reference ID for each record in the request.".to_string()
            } else {
                format!("Duplicate ReferenceId provided in the request: {ref_id}")
            };
            out.errors
                .push((ref_id, vec![FieldError::new("INVALID_INPUT", msg)]));
            continue;
        }
        let ty = attrs
            .and_then(|a| a.get("type"))
            .and_then(Json::as_str)
            .unwrap_or(object);
        let Some(o) = schema.object(ty).cloned() else {
            out.errors.push((
                ref_id,
                vec![FieldError::new(
                    "INVALID_TYPE",
                    format!("sObject type '{ty}' is not supported."),
                )],
            ));
            continue;
        };
        let mut fields = Vec::new();
        let mut children = Vec::new();
        for (k, v) in m {
            if k == "attributes" {
                continue;
            }
            if let (Some(rel), Some(Json::Array(kids))) =
                (o.child_relationship(k), v.get("records"))
            {
                children.push((rel.clone(), kids.clone()));
                continue;
            }
            fields.push((k.clone(), FieldInput::Json(v.clone())));
        }
        if let Some((field, id)) = parent {
            fields.push((
                field.to_string(),
                FieldInput::Json(Json::String(id.to_string())),
            ));
        }
        match tx.apply(WriteOp::Create {
            object: o.name.clone(),
            fields,
        }) {
            WriteResult::Ok { id, .. } => {
                out.ok.push((ref_id, id));
                for (rel, kids) in children {
                    tree_insert(
                        org,
                        tx,
                        &rel.child_s_object,
                        Some((&rel.field, id)),
                        &kids,
                        seen,
                        out,
                    );
                }
            }
            WriteResult::Err(e) => out.errors.push((ref_id, e)),
        }
    }
}

/// `POST /composite/tree/<Obj>`.
async fn tree(
    State(org): State<Org>,
    v: ApiVersion,
    _a: Authed,
    Path((_, object)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    need_version(&v, 42)?;
    let o = object_or_404(&org, &object)?;
    let b = parse_body(&body)?;
    let Some(Json::Array(records)) = b.get("records") else {
        return Err(ApiError::bad_request(
            "MISSING_ARGUMENT",
            "Missing required parameter: records",
        ));
    };
    if count_tree(records, 1)? > MAX_COLLECTION {
        return Err(ApiError::bad_request(
            "EXCEEDED_ID_LIMIT",
            "Maximum number of records (200) exceeded",
        ));
    }
    for r in records {
        let t = r
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Json::as_str);
        if t.is_some_and(|t| !t.eq_ignore_ascii_case(&o.name)) {
            return Err(ApiError::bad_request(
                "INVALID_INPUT",
                format!("The type of the root records must be {}", o.name),
            ));
        }
    }
    let ctx = WriteContext::rest(&org, &v.0);
    let out = org.transaction(&ctx, |tx| {
        let mut out = TreeOut {
            ok: Vec::new(),
            errors: Vec::new(),
        };
        let mut seen = HashSet::new();
        tree_insert(&org, tx, &o.name, None, records, &mut seen, &mut out);
        if !out.errors.is_empty() {
            tx.rollback();
        }
        out
    });
    if out.errors.is_empty() {
        let results: Vec<Json> = out
            .ok
            .iter()
            .map(|(r, id)| json!({"referenceId": r, "id": id}))
            .collect();
        Ok(json_response(
            StatusCode::CREATED,
            &json!({"hasErrors": false, "results": results}),
        ))
    } else {
        let results: Vec<Json> = out
            .errors
            .iter()
            .map(|(r, e)| {
                json!({"referenceId": r, "errors": e.iter().map(FieldError::to_status_json).collect::<Vec<_>>()})
            })
            .collect();
        Ok(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"hasErrors": true, "results": results}),
        ))
    }
}
