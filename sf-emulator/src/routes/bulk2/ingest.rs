//! Bulk API 2.0 ingest jobs: create, upload CSV (`PUT …/batches` → 201), `UploadComplete`
//! starts background processing through `Org::write` in chunks of 200 rows, abort, delete, and
//! the result CSVs (`successfulResults`, `failedResults`, `unprocessedrecords`).
//! CSV cells: empty = leave the field alone, `#N/A` = set null, `Rel.ExtField` columns set a
//! reference by the parent's external ID.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use parking_lot::Mutex;
use serde_json::json;

use super::{
    csv_response, format_rest_datetime, job_id, json, version_mismatch, version_number, Bulk2,
    Dialect, JobState,
};
use crate::data::error::ApiError;
use crate::data::ids::SfId;
use crate::data::soql::render::csv_text;
use crate::org::write::{FieldInput, WriteContext, WriteOp, WriteResult};
use crate::org::Org;
use crate::routes::session::Authed;

/// Rows per `Org::write` call (one transaction each, as Salesforce processes 200 at a time).
pub const CHUNK: usize = 200;

/// An ingest operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOp {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
}

impl IngestOp {
    pub fn parse(s: &str) -> Option<IngestOp> {
        Some(match s {
            "insert" => IngestOp::Insert,
            "update" => IngestOp::Update,
            "upsert" => IngestOp::Upsert,
            "delete" => IngestOp::Delete,
            "hardDelete" => IngestOp::HardDelete,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IngestOp::Insert => "insert",
            IngestOp::Update => "update",
            IngestOp::Upsert => "upsert",
            IngestOp::Delete => "delete",
            IngestOp::HardDelete => "hardDelete",
        }
    }
}

/// One ingest job.
pub struct IngestJob {
    pub id: SfId,
    pub object: String,
    pub operation: IngestOp,
    pub external_id: Option<String>,
    pub created_by: SfId,
    pub created_ms: i64,
    pub modstamp_ms: i64,
    pub state: JobState,
    pub api_version: String,
    pub dialect: Dialect,
    pub uploads: Vec<Bytes>,
    pub processed: usize,
    pub failed: usize,
    pub success_csv: Vec<u8>,
    pub failed_csv: Vec<u8>,
    pub unprocessed_csv: Vec<u8>,
    pub error_message: Option<String>,
    pub processing_ms: i64,
    /// The `Sforce-Call-Options: client=<id>` of the request that created the job: the job's
    /// writes run in the background, after that request, and their change events still name
    /// it in `changeOrigin` (`com/salesforce/api/bulkapi/<ver>;client=<id>`; Change Data
    /// Capture Developer Guide, "ChangeEventHeader Fields"; Bulk API 2.0 Developer Guide,
    /// "Request Headers", Sforce-Call-Options).
    pub client: Option<String>,
}

impl IngestJob {
    fn info(&self, full: bool) -> serde_json::Value {
        let mut v = json!({
            "id": self.id.as_str(),
            "operation": self.operation.as_str(),
            "object": self.object,
            "createdById": self.created_by.as_str(),
            "createdDate": format_rest_datetime(self.created_ms),
            "systemModstamp": format_rest_datetime(self.modstamp_ms),
            "state": self.state.as_str(),
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.api_version.parse::<f64>().unwrap_or(0.0),
            "jobType": "V2Ingest",
            "contentUrl": format!("services/data/v{}/jobs/ingest/{}/batches", self.api_version, self.id),
            "lineEnding": self.dialect.line_ending_name(),
            "columnDelimiter": self.dialect.delimiter_name(),
            "retries": 0,
            "totalProcessingTime": self.processing_ms,
            "apiActiveProcessingTime": self.processing_ms,
            "apexProcessingTime": 0,
        });
        let m = v.as_object_mut().expect("json! object");
        if let Some(e) = &self.external_id {
            m.insert("externalIdFieldName".into(), json!(e));
        }
        if full {
            m.insert("numberRecordsProcessed".into(), json!(self.processed));
            m.insert("numberRecordsFailed".into(), json!(self.failed));
            if let Some(e) = &self.error_message {
                m.insert("errorMessage".into(), json!(e));
            }
        }
        v
    }
}

/// All ingest jobs of an org.
#[derive(Default)]
pub struct IngestJobs {
    jobs: Mutex<BTreeMap<SfId, IngestJob>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateIngest {
    object: Option<String>,
    operation: Option<String>,
    external_id_field_name: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

fn invalid_job(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request("INVALIDJOB", msg)
}

pub async fn create(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path(version): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = version_number(&version)?;
    let req: CreateIngest =
        serde_json::from_slice(&body).map_err(|e| ApiError::json_parser(e.to_string()))?;
    let op_name = req.operation.as_deref().unwrap_or("");
    let operation = IngestOp::parse(op_name).ok_or_else(|| {
        invalid_job(format!(
            "InvalidJob : Invalid operation: {op_name}. Valid operations are insert, update, upsert, delete and hardDelete."
        ))
    })?;
    let object_name = req.object.as_deref().unwrap_or("");
    let object =
        org.schema().object(object_name).cloned().ok_or_else(|| {
            invalid_job(format!("InvalidJob : Unable to find object: {object_name}"))
        })?;
    if let Some(ct) = req.content_type.as_deref() {
        if ct != "CSV" {
            return Err(invalid_job(format!(
                "InvalidJob : Invalid content type: {ct}"
            )));
        }
    }
    let dialect = Dialect::parse(req.column_delimiter.as_deref(), req.line_ending.as_deref())?;
    let external_id = match operation {
        IngestOp::Upsert => {
            let name = req
                .external_id_field_name
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid_job("InvalidJob : External ID was blank for upsert"))?;
            let f = object.field(name).filter(|f| f.external_id || f.id_lookup).ok_or_else(|| {
                invalid_job(format!(
                    "InvalidJob : Field name provided, {name} is not an External ID or indexed field for {}",
                    object.name
                ))
            })?;
            Some(f.name.clone())
        }
        _ => None,
    };
    let now = org.now_ms();
    let id = bulk.next_job_id();
    let job = IngestJob {
        id,
        object: object.name.clone(),
        operation,
        external_id,
        created_by: org.user_id(),
        created_ms: now,
        modstamp_ms: now,
        state: JobState::Open,
        api_version: version,
        dialect,
        uploads: Vec::new(),
        processed: 0,
        failed: 0,
        success_csv: Vec::new(),
        failed_csv: Vec::new(),
        unprocessed_csv: Vec::new(),
        error_message: None,
        processing_ms: 0,
        client: crate::org::cdc::origin::current_client(),
    };
    let info = job.info(false);
    bulk.ingest.jobs.lock().insert(id, job);
    Ok(json(StatusCode::OK, &info))
}

fn with_job<T>(
    org: &Org,
    bulk: &Bulk2,
    id: &str,
    version: &str,
    f: impl FnOnce(&mut IngestJob) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let version = version_number(version)?;
    let id = job_id(id)?;
    let mut jobs = bulk.ingest.jobs.lock();
    let job = jobs
        .get_mut(&id)
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .ok_or_else(ApiError::not_found)?;
    if job.api_version != version {
        return Err(version_mismatch(&job.api_version, &version));
    }
    f(job)
}

fn bad_state(j: &IngestJob, what: &str) -> ApiError {
    ApiError::bad_request(
        "INVALIDJOBSTATE",
        format!(
            "InvalidJobState : {what} is not allowed for a job in state {}",
            j.state.as_str()
        ),
    )
}

pub async fn upload(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    with_job(&org, &bulk, &id, &version, |j| {
        if j.state != JobState::Open {
            return Err(bad_state(j, "Uploading data"));
        }
        j.uploads.push(body);
        j.modstamp_ms = org.now_ms();
        Ok(())
    })?;
    Ok(StatusCode::CREATED.into_response())
}

#[derive(serde::Deserialize)]
pub struct PatchState {
    state: Option<String>,
}

pub async fn patch(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PatchState =
        serde_json::from_slice(&body).map_err(|e| ApiError::json_parser(e.to_string()))?;
    let (info, start) = with_job(&org, &bulk, &id, &version, |j| {
        let now = org.now_ms();
        match req.state.as_deref() {
            Some("UploadComplete") => {
                if j.state != JobState::Open {
                    return Err(bad_state(j, "Changing the state to UploadComplete"));
                }
                j.state = JobState::UploadComplete;
                j.modstamp_ms = now;
                Ok((j.info(false), Some(j.id)))
            }
            Some("Aborted") => {
                if j.state.is_terminal() {
                    return Err(bad_state(j, "Aborting"));
                }
                if matches!(j.state, JobState::Open | JobState::UploadComplete) {
                    // Nothing ran: every uploaded row is unprocessed.
                    let (header, rows) = all_rows(j);
                    j.unprocessed_csv =
                        render_rows(&header, rows.iter().map(|r| r.as_slice()), j.dialect);
                }
                j.state = JobState::Aborted;
                j.modstamp_ms = now;
                Ok((j.info(false), None))
            }
            other => Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                format!("InvalidJobState : Invalid state: {}", other.unwrap_or("")),
            )),
        }
    })?;
    if let Some(id) = start {
        let bulk = bulk.clone();
        tokio::task::spawn_blocking(move || process(&org, &bulk, id));
    }
    Ok(json(StatusCode::OK, &info))
}

pub async fn info(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let v = with_job(&org, &bulk, &id, &version, |j| Ok(j.info(true)))?;
    Ok(json(StatusCode::OK, &v))
}

pub async fn delete(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = with_job(&org, &bulk, &id, &version, |j| {
        if matches!(j.state, JobState::UploadComplete | JobState::InProgress) {
            return Err(bad_state(j, "Deleting"));
        }
        Ok(j.id)
    })?;
    bulk.ingest.jobs.lock().remove(&key);
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    version_number(&version)?;
    let jobs = bulk.ingest.jobs.lock();
    let records: Vec<serde_json::Value> = jobs
        .values()
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .map(|j| j.info(false))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"done": true, "records": records, "nextRecordsUrl": null}),
    ))
}

fn result_csv(
    org: &Org,
    bulk: &Bulk2,
    id: &str,
    version: &str,
    pick: fn(&IngestJob) -> Vec<u8>,
) -> Result<Response, ApiError> {
    let body = with_job(org, bulk, id, version, |j| Ok(pick(j)))?;
    Ok(csv_response(body))
}

pub async fn successful_results(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    result_csv(&org, &bulk, &id, &version, |j| {
        or_header(&j.success_csv, j, &["sf__Id", "sf__Created"])
    })
}

pub async fn failed_results(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    result_csv(&org, &bulk, &id, &version, |j| {
        or_header(&j.failed_csv, j, &["sf__Id", "sf__Error"])
    })
}

pub async fn unprocessed_records(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    result_csv(&org, &bulk, &id, &version, |j| {
        or_header(&j.unprocessed_csv, j, &[])
    })
}

/// The buffer, or (before anything was written to it) just the header row.
fn or_header(buf: &[u8], j: &IngestJob, extra: &[&str]) -> Vec<u8> {
    if !buf.is_empty() {
        return buf.to_vec();
    }
    let (header, _) = all_rows(j);
    let mut cols: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    cols.extend(header);
    render_rows(&cols, std::iter::empty(), j.dialect)
}

/// Header and data rows of every upload (the header of the first upload wins).
fn all_rows(j: &IngestJob) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for u in &j.uploads {
        if let Ok((h, r)) = parse_csv(u, j.dialect) {
            if header.is_empty() {
                header = h;
            }
            rows.extend(r);
        }
    }
    (header, rows)
}

fn parse_csv(data: &[u8], dialect: Dialect) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(dialect.delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(data);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut rows = Vec::new();
    for r in rdr.records() {
        let r = r.map_err(|e| e.to_string())?;
        rows.push(r.iter().map(str::to_string).collect());
    }
    Ok((header, rows))
}

fn render_rows<'a>(
    header: &[String],
    rows: impl Iterator<Item = &'a [String]>,
    dialect: Dialect,
) -> Vec<u8> {
    let mut out = Vec::new();
    write_row(&mut out, header.iter().map(String::as_str), dialect);
    for r in rows {
        write_row(&mut out, r.iter().map(String::as_str), dialect);
    }
    out
}

fn write_row<'a>(out: &mut Vec<u8>, cells: impl Iterator<Item = &'a str>, dialect: Dialect) {
    for (i, c) in cells.enumerate() {
        if i > 0 {
            out.push(dialect.delimiter);
        }
        csv_text(out, c);
    }
    out.extend_from_slice(dialect.line_ending());
}

/// `CODE:message` (`:field,field --` when fields are named), Salesforce's `sf__Error` text.
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

fn fail_job(org: &Org, bulk: &Bulk2, id: SfId, message: String) {
    if let Some(j) = bulk.ingest.jobs.lock().get_mut(&id) {
        j.state = JobState::Failed;
        j.error_message = Some(message);
        j.modstamp_ms = org.now_ms();
    }
}

/// Processes an `UploadComplete` job to a terminal state.
pub fn process(org: &Org, bulk: &Bulk2, id: SfId) {
    let started = std::time::Instant::now();
    let (operation, object, external_id, dialect, version, uploads, client) = {
        let mut jobs = bulk.ingest.jobs.lock();
        let Some(j) = jobs.get_mut(&id) else { return };
        if j.state != JobState::UploadComplete {
            return;
        }
        j.state = JobState::InProgress;
        j.modstamp_ms = org.now_ms();
        (
            j.operation,
            j.object.clone(),
            j.external_id.clone(),
            j.dialect,
            j.api_version.clone(),
            j.uploads.clone(),
            j.client.clone(),
        )
    };
    // Faults (`chaos::bulk`): the job stays InProgress for a while, or fails.
    std::thread::sleep(org.chaos().bulk.delay());
    if org.chaos().bulk.take_failure() {
        return fail_job(
            org,
            bulk,
            id,
            crate::org::chaos::bulk::FAILED_MESSAGE.to_string(),
        );
    }
    // A slow transaction (`chaos::slow`): the job's writes are stamped now, when it starts,
    // and become visible only after the delay; `/updated` holds `latestDateCovered` back
    // meanwhile.
    let slow = org.chaos().slow.begin(org.stamp_ms());
    if let Some(running) = &slow {
        std::thread::sleep(running.delay);
    }
    let write = |ctx: &WriteContext, ops: Vec<WriteOp>| match &slow {
        Some(running) => {
            crate::org::chaos::slow::STAMP.sync_scope(running.stamp, || org.write(ctx, ops, false))
        }
        None => org.write(ctx, ops, false),
    };
    let Some(schema) = org.schema().object(&object).cloned() else {
        return fail_job(
            org,
            bulk,
            id,
            format!("InvalidBatch : Unable to find object: {object}"),
        );
    };
    let mut header: Vec<String> = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for u in &uploads {
        match parse_csv(u, dialect) {
            Ok((h, r)) => {
                if header.is_empty() {
                    header = h;
                } else if h != header {
                    return fail_job(
                        org,
                        bulk,
                        id,
                        "InvalidBatch : All uploads of a job must have the same columns".into(),
                    );
                }
                rows.extend(r);
            }
            Err(e) => {
                return fail_job(
                    org,
                    bulk,
                    id,
                    format!("InvalidBatch : Failed to parse CSV: {e}"),
                )
            }
        }
    }
    // Check the columns.
    for col in &header {
        let known = match col.split_once('.') {
            Some((rel, _)) => schema.relationship_field(rel).is_some(),
            None => schema.field_index(col).is_some(),
        };
        if !known {
            return fail_job(
                org,
                bulk,
                id,
                format!("InvalidBatch : Field name not found : {col}"),
            );
        }
    }
    let col_of = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let id_col = col_of("Id");
    if matches!(
        operation,
        IngestOp::Update | IngestOp::Delete | IngestOp::HardDelete
    ) && id_col.is_none()
    {
        return fail_job(
            org,
            bulk,
            id,
            "InvalidBatch : Field name not found : Id".into(),
        );
    }
    let ext_col = external_id.as_deref().and_then(col_of);
    if operation == IngestOp::Upsert && ext_col.is_none() {
        let name = external_id.clone().unwrap_or_default();
        return fail_job(
            org,
            bulk,
            id,
            format!("InvalidBatch : Field name not found : {name}"),
        );
    }
    let ctx = WriteContext::bulk(org, &version).with_client(client.as_deref());
    let mut success = Vec::new();
    let mut failed = Vec::new();
    let mut sh = vec!["sf__Id".to_string(), "sf__Created".to_string()];
    sh.extend(header.iter().cloned());
    write_row(&mut success, sh.iter().map(String::as_str), dialect);
    let mut fh = vec!["sf__Id".to_string(), "sf__Error".to_string()];
    fh.extend(header.iter().cloned());
    write_row(&mut failed, fh.iter().map(String::as_str), dialect);
    let mut processed = 0;
    let mut n_failed = 0;
    let mut aborted_at = None;
    for (chunk_no, chunk) in rows.chunks(CHUNK).enumerate() {
        if bulk
            .ingest
            .jobs
            .lock()
            .get(&id)
            .is_none_or(|j| j.state == JobState::Aborted)
        {
            aborted_at = Some(chunk_no * CHUNK);
            break;
        }
        let ops: Vec<WriteOp> = chunk
            .iter()
            .map(|row| {
                let fields = |skip: Option<usize>| {
                    header
                        .iter()
                        .zip(row)
                        .enumerate()
                        .filter(|(i, (_, v))| {
                            Some(*i) != skip && Some(*i) != id_col && !v.is_empty()
                        })
                        .map(|(_, (h, v))| (h.clone(), FieldInput::Text(v.clone())))
                        .collect::<Vec<_>>()
                };
                let cell =
                    |c: Option<usize>| c.and_then(|c| row.get(c)).cloned().unwrap_or_default();
                match operation {
                    IngestOp::Insert => WriteOp::Create {
                        object: object.clone(),
                        fields: fields(None),
                    },
                    IngestOp::Update => WriteOp::Update {
                        object: Some(object.clone()),
                        id: cell(id_col),
                        fields: fields(None),
                    },
                    IngestOp::Upsert => WriteOp::Upsert {
                        object: object.clone(),
                        ext_field: external_id.clone().unwrap_or_default(),
                        value: cell(ext_col),
                        fields: fields(ext_col),
                    },
                    IngestOp::Delete => WriteOp::Delete { id: cell(id_col) },
                    IngestOp::HardDelete => WriteOp::HardDelete { id: cell(id_col) },
                }
            })
            .collect();
        let results = write(&ctx, ops);
        for (row, r) in chunk.iter().zip(&results) {
            processed += 1;
            match r {
                WriteResult::Ok { id: rid, created } => {
                    let mut cells = vec![rid.as_str().to_string(), created.to_string()];
                    cells.extend(row.iter().cloned());
                    write_row(&mut success, cells.iter().map(String::as_str), dialect);
                }
                WriteResult::Err(_) => {
                    n_failed += 1;
                    let given_id = id_col.and_then(|c| row.get(c)).cloned().unwrap_or_default();
                    let mut cells = vec![given_id, error_text(r)];
                    cells.extend(row.iter().cloned());
                    write_row(&mut failed, cells.iter().map(String::as_str), dialect);
                }
            }
        }
    }
    let unprocessed =
        aborted_at.map(|at| render_rows(&header, rows[at..].iter().map(|r| r.as_slice()), dialect));
    drop(slow);
    let mut jobs = bulk.ingest.jobs.lock();
    let Some(j) = jobs.get_mut(&id) else { return };
    j.processed = processed;
    j.failed = n_failed;
    j.success_csv = success;
    j.failed_csv = failed;
    if let Some(u) = unprocessed {
        j.unprocessed_csv = u;
    }
    j.processing_ms = started.elapsed().as_millis() as i64;
    j.modstamp_ms = org.now_ms();
    if j.state == JobState::InProgress {
        j.state = JobState::JobComplete;
    }
}
