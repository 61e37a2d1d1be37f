//! Bulk API 1.0 (`/services/async/<ver>/job…`, `X-SFDC-Session`): JSON jobs (simple-salesforce,
//! integer `concurrencyMode`), CSV jobs created with JSON or XML (tap-salesforce, jsforce) and
//! XML jobs; batches processed in the background through `Org::write` (ingest) or the SOQL
//! executor (query/queryAll), batch info and lists, results (ingest JSON/CSV/XML; query
//! result-list then the result as CSV/JSON/XML), close/abort, and Bulk-shaped errors.

pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use parking_lot::Mutex;
use quick_xml::escape::escape;
use serde_json::Value as Json;

use crate::ids::SfId;
use crate::org::Org;
use crate::query_api::{prepare, Prepared};
use crate::soql::bind::Output;
use crate::soql::exec::{self, parent, Outcome};
use crate::soql::render::{self, Node};
use crate::store::{Record, Store};
use crate::value::Value;
use crate::write::{FieldInput, WriteContext, WriteOp, WriteResult};
use wire::{BulkError, Doc, Field, Format, NS};

/// Rows per `Org::write` call.
const CHUNK: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
    Query,
    QueryAll,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "insert" => Op::Insert,
            "update" => Op::Update,
            "upsert" => Op::Upsert,
            "delete" => Op::Delete,
            "hardDelete" => Op::HardDelete,
            "query" => Op::Query,
            "queryAll" => Op::QueryAll,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Update => "update",
            Op::Upsert => "upsert",
            Op::Delete => "delete",
            Op::HardDelete => "hardDelete",
            Op::Query => "query",
            Op::QueryAll => "queryAll",
        }
    }

    fn is_query(self) -> bool {
        matches!(self, Op::Query | Op::QueryAll)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentType {
    Json,
    Csv,
    Xml,
}

impl ContentType {
    fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "JSON",
            ContentType::Csv => "CSV",
            ContentType::Xml => "XML",
        }
    }

    /// Batch endpoints answer JSON for JSON jobs and XML otherwise.
    fn family(self) -> Format {
        match self {
            ContentType::Json => Format::Json,
            _ => Format::Xml,
        }
    }
}

struct Job {
    id: SfId,
    op: Op,
    object: String,
    external_id: Option<String>,
    content_type: ContentType,
    serial: bool,
    state: &'static str,
    created_by: SfId,
    created_ms: i64,
    modstamp_ms: i64,
    api_version: String,
    batches: Vec<SfId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchState {
    Queued,
    InProgress,
    Completed,
    Failed,
    NotProcessed,
}

impl BatchState {
    /// The state name: `Not Processed` in XML, `NotProcessed` in JSON (what simple-salesforce
    /// polls for).
    fn as_str(self, format: Format) -> &'static str {
        match self {
            BatchState::Queued => "Queued",
            BatchState::InProgress => "InProgress",
            BatchState::Completed => "Completed",
            BatchState::Failed => "Failed",
            BatchState::NotProcessed if format == Format::Json => "NotProcessed",
            BatchState::NotProcessed => "Not Processed",
        }
    }
}

enum BatchResult {
    None,
    Ingest(Vec<WriteResult>),
    Query {
        result_id: SfId,
        prepared: Arc<Prepared>,
        ids: Arc<Vec<SfId>>,
    },
}

struct Batch {
    id: SfId,
    job_id: SfId,
    state: BatchState,
    state_message: Option<String>,
    created_ms: i64,
    modstamp_ms: i64,
    processed: usize,
    failed: usize,
    processing_ms: i64,
    body: Bytes,
    result: BatchResult,
}

/// Bulk 1.0 state of one org.
#[derive(Default)]
pub struct Bulk1 {
    jobs: Mutex<BTreeMap<SfId, Job>>,
    batches: Mutex<HashMap<SfId, Batch>>,
    counter: AtomicU64,
}

impl Bulk1 {
    fn next(&self, prefix: &str) -> SfId {
        SfId::generate(prefix, self.counter.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

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
fn auth(
    org: &Org,
    headers: &HeaderMap,
    method: &Method,
    uri: &OriginalUri,
    format: Format,
) -> Result<(), BulkError> {
    let endpoint = format!("{method} {}", uri.0.path());
    crate::session::authenticate(org, crate::session::sfdc_session_token(headers), &endpoint)
        .map(|_| ())
        .map_err(|e| match e.code() {
            "REQUEST_LIMIT_EXCEEDED" => {
                BulkError::new("ExceededQuota", e.errors[0].message.clone(), format)
            }
            _ => BulkError::new("InvalidSessionId", "Invalid session id", format),
        })
}

fn version_of(v: &str, format: Format) -> Result<String, BulkError> {
    crate::session::parse_version(&format!("v{v}"))
        .ok_or_else(|| BulkError::new("InvalidUrl", format!("Invalid API version: {v}"), format))
}

fn dt(ms: i64) -> String {
    let mut out = Vec::new();
    render::datetime(&mut out, ms, b"Z");
    String::from_utf8(out).unwrap_or_default()
}

fn num(n: impl ToString) -> Field {
    Field::Num(n.to_string())
}

fn text(s: impl Into<String>) -> Field {
    Field::Text(s.into())
}

impl Bulk1 {
    fn job_doc(&self, j: &Job) -> Doc {
        let batches = self.batches.lock();
        let mut count = [0usize; 5];
        let (mut processed, mut failed, mut ms) = (0, 0, 0);
        for b in j.batches.iter().filter_map(|b| batches.get(b)) {
            count[b.state as usize] += 1;
            processed += b.processed;
            failed += b.failed;
            ms += b.processing_ms;
        }
        let mut f: Vec<(&'static str, Field)> = vec![
            ("id", text(j.id.as_str())),
            ("operation", text(j.op.as_str())),
            ("object", text(j.object.clone())),
            ("createdById", text(j.created_by.as_str())),
            ("createdDate", text(dt(j.created_ms))),
            ("systemModstamp", text(dt(j.modstamp_ms))),
            ("state", text(j.state)),
        ];
        if let Some(e) = &j.external_id {
            f.push(("externalIdFieldName", text(e.clone())));
        }
        f.extend([
            (
                "concurrencyMode",
                text(if j.serial { "Serial" } else { "Parallel" }),
            ),
            ("contentType", text(j.content_type.as_str())),
            (
                "numberBatchesQueued",
                num(count[BatchState::Queued as usize]),
            ),
            (
                "numberBatchesInProgress",
                num(count[BatchState::InProgress as usize]),
            ),
            (
                "numberBatchesCompleted",
                num(count[BatchState::Completed as usize]),
            ),
            (
                "numberBatchesFailed",
                num(count[BatchState::Failed as usize]),
            ),
            ("numberBatchesTotal", num(j.batches.len())),
            ("numberRecordsProcessed", num(processed)),
            ("numberRetries", num(0)),
            (
                "apiVersion",
                Field::Num(format!(
                    "{:.1}",
                    j.api_version.parse::<f64>().unwrap_or(0.0)
                )),
            ),
            ("numberRecordsFailed", num(failed)),
            ("totalProcessingTime", num(ms)),
            ("apiActiveProcessingTime", num(ms)),
            ("apexProcessingTime", num(0)),
        ]);
        Doc {
            root: "jobInfo",
            fields: f,
        }
    }
}

fn batch_doc(b: &Batch, format: Format) -> Doc {
    let mut f: Vec<(&'static str, Field)> = vec![
        ("id", text(b.id.as_str())),
        ("jobId", text(b.job_id.as_str())),
        ("state", text(b.state.as_str(format))),
    ];
    if let Some(m) = &b.state_message {
        f.push(("stateMessage", text(m.clone())));
    }
    f.extend([
        ("createdDate", text(dt(b.created_ms))),
        ("systemModstamp", text(dt(b.modstamp_ms))),
        ("numberRecordsProcessed", num(b.processed)),
        ("numberRecordsFailed", num(b.failed)),
        ("totalProcessingTime", num(b.processing_ms)),
        ("apiActiveProcessingTime", num(b.processing_ms)),
        ("apexProcessingTime", num(0)),
    ]);
    Doc {
        root: "batchInfo",
        fields: f,
    }
}

/// Reads the fields of a job request (JSON object or `<jobInfo>` XML).
fn job_request(body: &[u8], format: Format) -> Result<HashMap<String, String>, BulkError> {
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
    };
    let doc = bulk.job_doc(&job);
    bulk.jobs.lock().insert(job.id, job);
    Ok(doc.respond(StatusCode::CREATED, format))
}

fn invalid_job(id: &str, format: Format) -> BulkError {
    BulkError::new("InvalidJob", format!("Invalid job id: {id}"), format)
}

/// Format of a bodiless job request: JSON if asked for or the job is JSON, else XML.
fn get_format(bulk: &Bulk1, headers: &HeaderMap, job: &str) -> Format {
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

fn job_id(id: &str, format: Format) -> Result<SfId, BulkError> {
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
    let j = jobs.get(&id).ok_or_else(|| invalid_job(&job, format))?;
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
    let j = jobs.get_mut(&id).ok_or_else(|| invalid_job(&job, format))?;
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
        let j = jobs.get_mut(&id).ok_or_else(|| invalid_job(&job, format))?;
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

fn with_batch<T>(
    bulk: &Bulk1,
    job: &str,
    batch: &str,
    format: Format,
    f: impl FnOnce(&Job, &Batch) -> Result<T, BulkError>,
) -> Result<T, BulkError> {
    let jid = job_id(job, format)?;
    let jobs = bulk.jobs.lock();
    let j = jobs.get(&jid).ok_or_else(|| invalid_job(job, format))?;
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
    let j = jobs.get(&id).ok_or_else(|| invalid_job(&job, format))?;
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
    with_batch(&bulk, &job, &batch, format, |j, b| {
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
    with_batch(&bulk, &job, &batch, format, |_, b| {
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
    with_batch(&bulk, &job, &batch, format, |j, b| {
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

fn ingest_results(ct: ContentType, results: &[WriteResult]) -> Response {
    match ct {
        ContentType::Json => {
            let arr: Vec<Json> = results
                .iter()
                .map(|r| match r {
                    WriteResult::Ok { id, created } => serde_json::json!({"success": true, "created": created, "id": id.as_str(), "errors": []}),
                    WriteResult::Err(errs) => serde_json::json!({
                        "success": false, "created": false, "id": null,
                        "errors": errs.iter().map(|e| e.to_status_json()).collect::<Vec<_>>(),
                    }),
                })
                .collect();
            wire::json_response(StatusCode::OK, Json::Array(arr).to_string())
        }
        ContentType::Csv => {
            let mut out = b"\"Id\",\"Success\",\"Created\",\"Error\"\n".to_vec();
            for r in results {
                let (id, ok, created) = match r {
                    WriteResult::Ok { id, created } => (id.as_str().to_string(), "true", *created),
                    WriteResult::Err(_) => (String::new(), "false", false),
                };
                render::csv_text(&mut out, &id);
                out.push(b',');
                render::csv_text(&mut out, ok);
                out.push(b',');
                render::csv_text(&mut out, if created { "true" } else { "false" });
                out.push(b',');
                render::csv_text(&mut out, &error_text(r));
                out.push(b'\n');
            }
            let mut resp = (StatusCode::OK, out).into_response();
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/csv"),
            );
            resp
        }
        ContentType::Xml => {
            let mut s =
                format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><results xmlns=\"{NS}\">");
            for r in results {
                s.push_str("<result>");
                match r {
                    WriteResult::Ok { id, created } => {
                        s.push_str(&format!(
                            "<id>{id}</id><success>true</success><created>{created}</created>"
                        ));
                    }
                    WriteResult::Err(errs) => {
                        for e in errs {
                            s.push_str("<errors>");
                            for f in &e.fields {
                                s.push_str(&format!("<fields>{}</fields>", escape(f.as_str())));
                            }
                            s.push_str(&format!(
                                "<message>{}</message><statusCode>{}</statusCode></errors>",
                                escape(e.message.as_str()),
                                escape(e.status_code.as_str())
                            ));
                        }
                        s.push_str("<success>false</success><created>false</created>");
                    }
                }
                s.push_str("</result>");
            }
            s.push_str("</results>");
            wire::xml_response(StatusCode::OK, s)
        }
    }
}

/// `CODE:message` (`:field,field --` when fields are named).
fn error_text(r: &WriteResult) -> String {
    r.errors()
        .iter()
        .map(|e| {
            if e.fields.is_empty() {
                format!("{}:{}", e.status_code, e.message)
            } else {
                format!("{}:{}:{} --", e.status_code, e.message, e.fields.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
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
    let (ct, prepared, ids, api_version) =
        with_batch(&bulk, &job, &batch, format, |j, b| match &b.result {
            BatchResult::Query {
                result_id,
                prepared,
                ids,
            } if result_id.as_str() == result => Ok((
                j.content_type,
                prepared.clone(),
                ids.clone(),
                j.api_version.clone(),
            )),
            _ => Err(BulkError::new(
                "InvalidBatch",
                format!("Invalid result id: {result}"),
                j.content_type.family(),
            )),
        })?;
    let resp =
        tokio::task::spawn_blocking(move || render_query(&org, ct, &prepared, &ids, &api_version))
            .await
            .map_err(|e| BulkError::new("ClientInputError", e.to_string(), format))?;
    Ok(resp)
}

fn render_query(
    org: &Org,
    ct: ContentType,
    prepared: &Prepared,
    ids: &[SfId],
    version: &str,
) -> Response {
    let Output::Fields(cols) = &prepared.bound.output else {
        return wire::json_response(StatusCode::OK, "[]".into());
    };
    let store = org.read();
    let table = store.table(prepared.bound.object_index);
    let object = &prepared.bound.object;
    let recs = ids.iter().filter_map(|id| table.get(id));
    match ct {
        ContentType::Csv => {
            let mut out = Vec::with_capacity(ids.len() * cols.len() * 24 + 64);
            render::write_csv_header(&mut out, cols, b',', b"\n");
            for rec in recs {
                render::write_csv_row(&mut out, &store, rec, cols, b',', b"\n");
            }
            let mut resp = (StatusCode::OK, out).into_response();
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/csv"),
            );
            resp
        }
        ContentType::Json => {
            let mut out = b"[".to_vec();
            for (i, rec) in recs.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_record(&mut out, &store, object, rec, &prepared.nodes, version);
            }
            out.push(b']');
            wire::json_response(StatusCode::OK, String::from_utf8(out).unwrap_or_default())
        }
        ContentType::Xml => {
            let mut s = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><queryResult xmlns=\"{NS}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
            );
            for rec in recs {
                s.push_str("<records xsi:type=\"sObject\">");
                xml_record(&mut s, &store, object, rec, &prepared.nodes);
                s.push_str("</records>");
            }
            s.push_str("</queryResult>");
            wire::xml_response(StatusCode::OK, s)
        }
    }
}

/// A Bulk 1.0 JSON query record: like REST, but dates and datetimes as epoch milliseconds.
fn json_record(
    out: &mut Vec<u8>,
    store: &Store,
    object: &crate::schema::ObjectSchema,
    rec: &Record,
    nodes: &[Node],
    version: &str,
) {
    out.extend_from_slice(b"{\"attributes\":{\"type\":");
    render::json_str(out, &object.name);
    out.extend_from_slice(b",\"url\":");
    let id = rec.get(object.sys.id).as_str().unwrap_or("");
    render::json_str(
        out,
        &format!("/services/data/v{version}/sobjects/{}/{id}", object.name),
    );
    out.push(b'}');
    for n in nodes {
        out.push(b',');
        match n {
            Node::Field { field, name, .. } => {
                render::json_str(out, name);
                out.push(b':');
                match rec.get(*field) {
                    Value::DateTime(ms) => out.extend_from_slice(ms.to_string().as_bytes()),
                    Value::Date(d) => {
                        out.extend_from_slice(crate::value::date_ms(*d).to_string().as_bytes())
                    }
                    v => render::json_value(out, v),
                }
            }
            Node::Parent {
                rel_name,
                ref_field,
                target_index,
                target,
                user,
                children,
            } => {
                render::json_str(out, rel_name);
                out.push(b':');
                match parent(store, rec, *ref_field, *target_index, user.as_deref()) {
                    Some(p) => json_record(out, store, target, p, children, version),
                    None => out.extend_from_slice(b"null"),
                }
            }
        }
    }
    out.push(b'}');
}

/// A Bulk 1.0 XML query record body: `<type>`, then fields (`xsi:nil` for nulls).
fn xml_record(
    s: &mut String,
    store: &Store,
    object: &crate::schema::ObjectSchema,
    rec: &Record,
    nodes: &[Node],
) {
    s.push_str(&format!("<type>{}</type>", object.name));
    for n in nodes {
        match n {
            Node::Field { field, name, .. } => {
                let v = rec.get(*field);
                if v.is_null() {
                    s.push_str(&format!("<{name} xsi:nil=\"true\"/>"));
                } else {
                    let mut buf = Vec::new();
                    render::plain_value(&mut buf, v);
                    let t = String::from_utf8(buf).unwrap_or_default();
                    s.push_str(&format!("<{name}>{}</{name}>", escape(t.as_str())));
                }
            }
            Node::Parent {
                rel_name,
                ref_field,
                target_index,
                target,
                user,
                children,
            } => match parent(store, rec, *ref_field, *target_index, user.as_deref()) {
                Some(p) => {
                    s.push_str(&format!("<{rel_name} xsi:type=\"sObject\">"));
                    xml_record(s, store, target, p, children);
                    s.push_str(&format!("</{rel_name}>"));
                }
                None => s.push_str(&format!("<{rel_name} xsi:nil=\"true\"/>")),
            },
        }
    }
}

fn set_batch(bulk: &Bulk1, id: SfId, f: impl FnOnce(&mut Batch)) {
    if let Some(b) = bulk.batches.lock().get_mut(&id) {
        f(b);
    }
}

/// Processes one queued batch to Completed / Failed.
fn process(org: &Org, bulk: &Bulk1, batch: SfId) {
    let started = std::time::Instant::now();
    let (job_id, body) = {
        let mut batches = bulk.batches.lock();
        let Some(b) = batches.get_mut(&batch) else {
            return;
        };
        if b.state != BatchState::Queued {
            return;
        }
        b.state = BatchState::InProgress;
        b.modstamp_ms = org.now_ms();
        (b.job_id, b.body.clone())
    };
    let job = {
        let jobs = bulk.jobs.lock();
        jobs.get(&job_id).map(|j| {
            (
                j.op,
                j.object.clone(),
                j.external_id.clone(),
                j.content_type,
                j.api_version.clone(),
            )
        })
    };
    let Some((op, object, external_id, ct, version)) = job else {
        return;
    };
    let outcome = if op.is_query() {
        run_query(org, bulk, &body, op == Op::QueryAll, &object)
    } else {
        run_ingest(
            org,
            op,
            &object,
            external_id.as_deref(),
            ct,
            &version,
            &body,
        )
    };
    let now = org.now_ms();
    let ms = started.elapsed().as_millis() as i64;
    set_batch(bulk, batch, |b| {
        b.modstamp_ms = now;
        b.processing_ms = ms;
        match outcome {
            Ok((result, processed, failed)) => {
                b.state = BatchState::Completed;
                b.processed = processed;
                b.failed = failed;
                b.result = result;
            }
            Err(msg) => {
                b.state = BatchState::Failed;
                b.state_message = Some(msg);
            }
        }
    });
}

type Processed = Result<(BatchResult, usize, usize), String>;

fn run_query(org: &Org, bulk: &Bulk1, body: &[u8], all_rows: bool, object: &str) -> Processed {
    let soql = std::str::from_utf8(body)
        .map_err(|_| "InvalidBatch : The query is not UTF-8".to_string())?;
    let prepared = prepare(org, soql.trim()).map_err(|e| {
        format!(
            "{} : {}",
            e.code.as_str(),
            e.message.trim_start_matches('\n').replace('\n', " ")
        )
    })?;
    if !prepared.bound.object.name.eq_ignore_ascii_case(object) {
        return Err(format!(
            "InvalidBatch : The query object {} does not match the job object {object}",
            prepared.bound.object.name
        ));
    }
    if !matches!(prepared.bound.output, Output::Fields(_)) {
        return Err("InvalidBatch : Aggregate queries are not supported by Bulk API".into());
    }
    let outcome = {
        let store = org.read();
        exec::execute(&store, &prepared.bound, all_rows)
    };
    let Outcome::Rows(ids) = outcome else {
        return Err("InvalidBatch : Aggregate queries are not supported by Bulk API".into());
    };
    let n = ids.len();
    Ok((
        BatchResult::Query {
            result_id: bulk.next("752"),
            prepared: Arc::new(prepared),
            ids: Arc::new(ids),
        },
        n,
        0,
    ))
}

/// One input record: (field name, value) pairs as sent.
type Row = Vec<(String, FieldInput)>;

fn parse_rows(ct: ContentType, body: &[u8]) -> Result<Vec<Row>, String> {
    match ct {
        ContentType::Json => {
            let v: Json = serde_json::from_slice(body)
                .map_err(|e| format!("InvalidBatch : Failed to parse JSON: {e}"))?;
            let arr = v
                .as_array()
                .ok_or("InvalidBatch : Expected a JSON array of records")?;
            arr.iter()
                .map(|r| {
                    let obj = r
                        .as_object()
                        .ok_or("InvalidBatch : Expected a JSON object per record")?;
                    Ok(obj
                        .iter()
                        .filter(|(k, _)| k.as_str() != "attributes")
                        .map(|(k, v)| (k.clone(), FieldInput::Json(v.clone())))
                        .collect())
                })
                .collect()
        }
        ContentType::Csv => {
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(body);
            let header: Vec<String> = rdr
                .headers()
                .map_err(|e| format!("InvalidBatch : Failed to parse CSV header: {e}"))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            let mut rows = Vec::new();
            for r in rdr.records() {
                let r = r.map_err(|e| format!("InvalidBatch : Failed to parse CSV: {e}"))?;
                rows.push(
                    header
                        .iter()
                        .zip(r.iter())
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(h, v)| (h.clone(), FieldInput::Text(v.to_string())))
                        .collect(),
                );
            }
            Ok(rows)
        }
        ContentType::Xml => {
            let s = std::str::from_utf8(body)
                .map_err(|_| "InvalidBatch : The batch is not UTF-8".to_string())?;
            let recs = wire::xml_records(s)
                .map_err(|e| format!("InvalidBatch : Failed to parse XML: {e}"))?;
            Ok(recs
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .filter(|(k, _)| k != "type")
                        .map(|(k, v)| {
                            let input = match v {
                                Some(t) => FieldInput::Text(t),
                                None => FieldInput::Json(Json::Null),
                            };
                            (k, input)
                        })
                        .collect()
                })
                .collect())
        }
    }
}

fn input_text(v: &FieldInput) -> String {
    match v {
        FieldInput::Text(t) => t.clone(),
        FieldInput::Json(Json::String(s)) => s.clone(),
        FieldInput::Json(Json::Null) => String::new(),
        FieldInput::Json(other) => other.to_string(),
        FieldInput::Value(v) => v.as_str().map(str::to_string).unwrap_or_default(),
    }
}

fn run_ingest(
    org: &Org,
    op: Op,
    object: &str,
    external_id: Option<&str>,
    ct: ContentType,
    version: &str,
    body: &[u8],
) -> Processed {
    let rows = parse_rows(ct, body)?;
    if rows.len() > 10_000 {
        return Err("InvalidBatch : Records in a batch can't exceed 10000".into());
    }
    let ctx = WriteContext::bulk(org, version);
    let take = |row: &mut Row, name: &str| -> String {
        match row.iter().position(|(k, _)| k.eq_ignore_ascii_case(name)) {
            Some(i) => input_text(&row.remove(i).1),
            None => String::new(),
        }
    };
    let mut results = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(CHUNK) {
        let ops = chunk
            .iter()
            .cloned()
            .map(|mut row| match op {
                Op::Insert => WriteOp::Create {
                    object: object.to_string(),
                    fields: row,
                },
                Op::Update => {
                    let id = take(&mut row, "Id");
                    WriteOp::Update {
                        object: Some(object.to_string()),
                        id,
                        fields: row,
                    }
                }
                Op::Upsert => {
                    let ext = external_id.unwrap_or("Id").to_string();
                    let value = take(&mut row, &ext);
                    WriteOp::Upsert {
                        object: object.to_string(),
                        ext_field: ext,
                        value,
                        fields: row,
                    }
                }
                Op::Delete => WriteOp::Delete {
                    id: take(&mut row, "Id"),
                },
                _ => WriteOp::HardDelete {
                    id: take(&mut row, "Id"),
                },
            })
            .collect();
        results.extend(org.write(&ctx, ops, false));
    }
    let failed = results.iter().filter(|r| !r.is_ok()).count();
    let n = results.len();
    Ok((BatchResult::Ingest(results), n, failed))
}
