//! Bulk API 1.0 HTTP routes: session checks, job create/info/close/abort, batch add/list/info/
//! request, and the result endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::Value as Json;

use super::jobs::{batch_doc, Batch, BatchResult, BatchState, Bulk1, ContentType, Job, Op};
use super::process::process;
use super::results::{ingest_results, query_response};
use super::wire::{self, BulkError, Doc, Format, NS};
use crate::data::ids::SfId;
use crate::org::Org;

/// The Bulk 1.0 routes.
pub fn routes() -> Router<Org> {
    let state = Arc::new(Bulk1::default());
    Router::new()
        .route("/services/async/{version}/job", post(create_job))
        .route(
            "/services/async/{version}/job/{job}",
            get(job_info).post(update_job),
        )
        .route(
            "/services/async/{version}/job/{job}/batch",
            get(list_batches).post(add_batch),
        )
        .route(
            "/services/async/{version}/job/{job}/batch/{batch}",
            get(batch_info),
        )
        .route(
            "/services/async/{version}/job/{job}/batch/{batch}/request",
            get(batch_request),
        )
        .route(
            "/services/async/{version}/job/{job}/batch/{batch}/result",
            get(batch_result),
        )
        .route(
            "/services/async/{version}/job/{job}/batch/{batch}/result/{result}",
            get(query_result),
        )
        .layer(Extension(state))
}

/// Checks `X-SFDC-Session` and counts the request; Bulk-shaped errors.
pub(super) fn auth(
    org: &Org,
    headers: &HeaderMap,
    method: &Method,
    uri: &OriginalUri,
    format: Format,
) -> Result<(), BulkError> {
    let endpoint = format!("{method} {}", uri.0.path());
    crate::routes::session::authenticate(
        org,
        crate::routes::session::sfdc_session_token(headers),
        &endpoint,
    )
    .map(|_| ())
    .map_err(|e| match e.code() {
        "REQUEST_LIMIT_EXCEEDED" => {
            BulkError::new("ExceededQuota", e.errors[0].message.clone(), format)
        }
        _ => BulkError::new("InvalidSessionId", "Invalid session id", format),
    })
}

pub(super) fn version_of(v: &str, format: Format) -> Result<String, BulkError> {
    crate::routes::session::parse_version(&format!("v{v}"))
        .ok_or_else(|| BulkError::new("InvalidUrl", format!("Invalid API version: {v}"), format))
}

/// Reads the fields of a job request (JSON object or `<jobInfo>` XML).
pub(super) fn job_request(
    body: &[u8],
    format: Format,
) -> Result<HashMap<String, String>, BulkError> {
    let mut out = HashMap::new();
    let keys = [
        "operation",
        "object",
        "contentType",
        "externalIdFieldName",
        "concurrencyMode",
        "state",
    ];
    match format {
        Format::Json => {
            let v: Json = serde_json::from_slice(body).map_err(|e| {
                BulkError::new(
                    "InvalidJob",
                    format!("Unable to parse the job: {e}"),
                    format,
                )
            })?;
            for k in keys {
                match v.get(k) {
                    Some(Json::String(s)) => {
                        out.insert(k.to_string(), s.clone());
                    }
                    Some(Json::Number(n)) => {
                        out.insert(k.to_string(), n.to_string());
                    }
                    _ => {}
                }
            }
        }
        Format::Xml => {
            let s = std::str::from_utf8(body).map_err(|_| {
                BulkError::new("InvalidXML", "The request body is not UTF-8", format)
            })?;
            if !s.contains("jobInfo") {
                return Err(BulkError::new(
                    "InvalidXML",
                    "Expected a jobInfo document",
                    format,
                ));
            }
            for k in keys {
                if let Some(t) = wire::xml_text(s, k) {
                    out.insert(k.to_string(), t.trim().to_string());
                }
            }
        }
    }
    Ok(out)
}

async fn create_job(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path(version): Path<String>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BulkError> {
    let format = Format::of_request(&headers);
    auth(&org, &headers, &method, &uri, format)?;
    let version = version_of(&version, format)?;
    let req = job_request(&body, format)?;
    let op_name = req.get("operation").map_or("", String::as_str);
    let op = Op::parse(op_name).ok_or_else(|| {
        BulkError::new(
            "InvalidJob",
            format!("Invalid operation: {op_name}"),
            format,
        )
    })?;
    let object_name = req.get("object").map_or("", String::as_str);
    let object = org.schema().object(object_name).cloned().ok_or_else(|| {
        BulkError::new(
            "InvalidJob",
            format!("Unable to find object: {object_name}"),
            format,
        )
    })?;
    let content_type = match req.get("contentType").map(String::as_str) {
        Some("JSON") => ContentType::Json,
        Some("CSV") => ContentType::Csv,
        Some("XML") | None => ContentType::Xml,
        Some(other) => {
            return Err(BulkError::new(
                "InvalidJob",
                format!("Invalid content type: {other}"),
                format,
            ))
        }
    };
    let serial = match req.get("concurrencyMode").map(String::as_str) {
        None | Some("0") | Some("Parallel") => false,
        Some("1") | Some("Serial") => true,
        Some(other) => {
            return Err(BulkError::new(
                "InvalidJob",
                format!("Invalid concurrency mode: {other}"),
                format,
            ))
        }
    };
    let external_id = if op == Op::Upsert {
        let name = req
            .get("externalIdFieldName")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                BulkError::new("InvalidJob", "External ID was blank for upsert", format)
            })?;
        let f = object
            .field(name)
            .filter(|f| f.external_id || f.id_lookup)
            .ok_or_else(|| {
                BulkError::new(
                    "InvalidJob",
                    format!(
                        "Field name provided, {name} is not an External ID or indexed field for {}",
                        object.name
                    ),
                    format,
                )
            })?;
        Some(f.name.clone())
    } else {
        None
    };
    let now = org.now_ms();
    let job = Job {
        id: bulk.next("750"),
        op,
        object: object.name.clone(),
        external_id,
        content_type,
        serial,
        state: "Open",
        created_by: org.user_id(),
        created_ms: now,
        modstamp_ms: now,
        api_version: version,
        batches: Vec::new(),
        client: crate::org::cdc::origin::current_client(),
    };
    let doc = bulk.job_doc(&job);
    bulk.jobs.lock().insert(job.id, job);
    Ok(doc.respond(StatusCode::CREATED, format))
}

pub(super) fn invalid_job(id: &str, format: Format) -> BulkError {
    BulkError::new("InvalidJob", format!("Invalid job id: {id}"), format)
}

/// Format of a bodiless job request: JSON if asked for or the job is JSON, else XML.
pub(super) fn get_format(bulk: &Bulk1, headers: &HeaderMap, job: &str) -> Format {
    if Format::of_request(headers) == Format::Json {
        return Format::Json;
    }
    let id = SfId::parse(job).ok();
    let jobs = bulk.jobs.lock();
    match id.and_then(|id| jobs.get(&id)) {
        Some(j) if j.content_type == ContentType::Json => Format::Json,
        _ => Format::Xml,
    }
}

pub(super) fn job_id(id: &str, format: Format) -> Result<SfId, BulkError> {
    SfId::parse(id).map_err(|_| invalid_job(id, format))
}

async fn job_info(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    let id = job_id(&job, format)?;
    let jobs = bulk.jobs.lock();
    let j = jobs
        .get(&id)
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .ok_or_else(|| invalid_job(&job, format))?;
    Ok(bulk.job_doc(j).respond(StatusCode::OK, format))
}

async fn update_job(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BulkError> {
    let format = Format::of_request(&headers);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    let id = job_id(&job, format)?;
    let req = job_request(&body, format)?;
    let state = req.get("state").map_or("", String::as_str);
    let mut jobs = bulk.jobs.lock();
    let j = jobs
        .get_mut(&id)
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .ok_or_else(|| invalid_job(&job, format))?;
    match (state, j.state) {
        ("Closed", "Open") => j.state = "Closed",
        ("Aborted", "Open" | "Closed") => {
            j.state = "Aborted";
            let mut batches = bulk.batches.lock();
            for id in &j.batches {
                if let Some(b) = batches.get_mut(id) {
                    if b.state == BatchState::Queued {
                        b.state = BatchState::NotProcessed;
                    }
                }
            }
        }
        (s, current) => {
            return Err(BulkError::new(
                "InvalidJobState",
                format!("Unable to change the state of a job in state {current} to {s}"),
                format,
            ))
        }
    }
    j.modstamp_ms = org.now_ms();
    Ok(bulk.job_doc(j).respond(StatusCode::OK, format))
}

async fn add_batch(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    let id = job_id(&job, format)?;
    let now = org.now_ms();
    let (batch_id, format, doc) = {
        let mut jobs = bulk.jobs.lock();
        let j = jobs
            .get_mut(&id)
            .filter(|j| !org.chaos().bulk.expired(j.created_ms))
            .ok_or_else(|| invalid_job(&job, format))?;
        let format = j.content_type.family();
        if j.state != "Open" {
            return Err(BulkError::new(
                "InvalidJobState",
                format!("Job {} is not open", j.id),
                format,
            ));
        }
        org.consume_limit("DailyBulkApiBatches", 1)
            .map_err(|e| BulkError::new("ExceededQuota", e.errors[0].message.clone(), format))?;
        let b = Batch {
            id: bulk.next("751"),
            job_id: id,
            state: BatchState::Queued,
            state_message: None,
            created_ms: now,
            modstamp_ms: now,
            processed: 0,
            failed: 0,
            processing_ms: 0,
            body,
            result: BatchResult::None,
        };
        j.batches.push(b.id);
        j.modstamp_ms = now;
        let doc = batch_doc(&b, format);
        let bid = b.id;
        bulk.batches.lock().insert(bid, b);
        (bid, format, doc)
    };
    // The batch is answered as queued (its state when accepted) once it has been processed,
    // so a client's first status poll already sees it complete.
    let bulk2 = bulk.clone();
    let _ = tokio::task::spawn_blocking(move || process(&org, &bulk2, batch_id)).await;
    Ok(doc.respond(StatusCode::CREATED, format))
}

pub(super) fn with_batch<T>(
    org: &Org,
    bulk: &Bulk1,
    job: &str,
    batch: &str,
    format: Format,
    f: impl FnOnce(&Job, &Batch) -> Result<T, BulkError>,
) -> Result<T, BulkError> {
    let jid = job_id(job, format)?;
    let jobs = bulk.jobs.lock();
    let j = jobs
        .get(&jid)
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .ok_or_else(|| invalid_job(job, format))?;
    let invalid_batch =
        || BulkError::new("InvalidBatch", format!("Invalid batch id: {batch}"), format);
    let bid = SfId::parse(batch).map_err(|_| invalid_batch())?;
    let batches = bulk.batches.lock();
    let b = batches
        .get(&bid)
        .filter(|b| b.job_id == jid)
        .ok_or_else(invalid_batch)?;
    f(j, b)
}

async fn list_batches(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job)): Path<(String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    let id = job_id(&job, format)?;
    let jobs = bulk.jobs.lock();
    let j = jobs
        .get(&id)
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .ok_or_else(|| invalid_job(&job, format))?;
    let format = j.content_type.family();
    let batches = bulk.batches.lock();
    let docs: Vec<Doc> = j
        .batches
        .iter()
        .filter_map(|b| batches.get(b))
        .map(|b| batch_doc(b, format))
        .collect();
    Ok(match format {
        Format::Json => wire::json_response(
            StatusCode::OK,
            serde_json::json!({"batchInfo": docs.iter().map(Doc::json).collect::<Vec<_>>()})
                .to_string(),
        ),
        Format::Xml => {
            let inner: String = docs
                .iter()
                .map(|d| format!("<batchInfo>{}</batchInfo>", d.xml_inner()))
                .collect();
            wire::xml_response(
                StatusCode::OK,
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><batchInfoList xmlns=\"{NS}\">{inner}</batchInfoList>"),
            )
        }
    })
}

async fn batch_info(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job, batch)): Path<(String, String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    with_batch(&org, &bulk, &job, &batch, format, |j, b| {
        Ok(batch_doc(b, j.content_type.family()).respond(StatusCode::OK, j.content_type.family()))
    })
}

async fn batch_request(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job, batch)): Path<(String, String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    with_batch(&org, &bulk, &job, &batch, format, |_, b| {
        Ok(b.body.clone().into_response())
    })
}

async fn batch_result(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job, batch)): Path<(String, String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    with_batch(&org, &bulk, &job, &batch, format, |j, b| {
        let format = j.content_type.family();
        match &b.result {
            BatchResult::None => Err(BulkError::new(
                "InvalidBatch",
                format!("Batch not completed: state is {}", b.state.as_str(format)),
                format,
            )),
            BatchResult::Query { result_id, .. } => Ok(match format {
                Format::Json => wire::json_response(StatusCode::OK, format!("[\"{result_id}\"]")),
                Format::Xml => wire::xml_response(
                    StatusCode::OK,
                    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><result-list xmlns=\"{NS}\"><result>{result_id}</result></result-list>"),
                ),
            }),
            BatchResult::Ingest(results) => Ok(ingest_results(j.content_type, results)),
        }
    })
}

async fn query_result(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk1>>,
    Path((version, job, batch, result)): Path<(String, String, String, String)>,
    method: Method,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<Response, BulkError> {
    let format = get_format(&bulk, &headers, &job);
    auth(&org, &headers, &method, &uri, format)?;
    version_of(&version, format)?;
    let (ct, body) = with_batch(&org, &bulk, &job, &batch, format, |j, b| match &b.result {
        BatchResult::Query { result_id, body } if result_id.as_str() == result => {
            Ok((j.content_type, body.clone()))
        }
        _ => Err(BulkError::new(
            "InvalidBatch",
            format!("Invalid result id: {result}"),
            j.content_type.family(),
        )),
    })?;
    let resp = query_response(ct, body);
    Ok(resp)
}
