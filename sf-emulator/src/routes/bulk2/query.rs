//! Bulk API 2.0 query jobs: `POST /jobs/query` runs the SOQL in the background and renders the
//! result rows as CSV once, under one read of the store; `GET /jobs/query/{id}/results` serves
//! pages of that fixed result (header on every page, `Sforce-Locator` literally `null` on the
//! last one). Records changed or deleted after the job ran do not change its results, as in
//! Salesforce, where the job writes its results when it runs and downloads read those files
//! (Bulk API 2.0 and Bulk API Developer Guide, "Get Results for a Query Job": results are
//! available once the job is `JobComplete`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::Engine;
use parking_lot::Mutex;
use serde_json::json;

use super::{
    csv_response, format_rest_datetime, job_id, json, version_mismatch, version_number, Bulk2,
    Dialect, JobState,
};
use crate::data::error::ApiError;
use crate::data::ids::SfId;
use crate::data::soql::bind::Output;
use crate::data::soql::exec::{self, Outcome};
use crate::data::soql::render;
use crate::data::store::Store;
use crate::org::Org;
use crate::routes::query_api::{prepare, soql_error, Prepared};
use crate::routes::session::Authed;

/// Page size when the client sends no `maxRecords`.
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

/// One query job.
pub struct QueryJob {
    pub id: SfId,
    pub all_rows: bool,
    pub object: String,
    pub created_by: SfId,
    pub created_ms: i64,
    pub modstamp_ms: i64,
    pub state: JobState,
    pub api_version: String,
    pub dialect: Dialect,
    pub prepared: Arc<Prepared>,
    pub result: Option<Arc<ResultRows>>,
    pub error_message: Option<String>,
    pub processing_ms: i64,
}

impl QueryJob {
    fn info(&self, full: bool) -> serde_json::Value {
        let mut v = json!({
            "id": self.id.as_str(),
            "operation": if self.all_rows { "queryAll" } else { "query" },
            "object": self.object,
            "createdById": self.created_by.as_str(),
            "createdDate": format_rest_datetime(self.created_ms),
            "systemModstamp": format_rest_datetime(self.modstamp_ms),
            "state": self.state.as_str(),
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": self.api_version.parse::<f64>().unwrap_or(0.0),
            "lineEnding": self.dialect.line_ending_name(),
            "columnDelimiter": self.dialect.delimiter_name(),
        });
        if full {
            let m = v.as_object_mut().expect("json! object");
            m.insert("jobType".into(), json!("V2Query"));
            m.insert(
                "numberRecordsProcessed".into(),
                json!(self.result.as_ref().map_or(0, |r| r.len())),
            );
            m.insert("retries".into(), json!(0));
            m.insert("totalProcessingTime".into(), json!(self.processing_ms));
            m.insert("isPkChunkingSupported".into(), json!(true));
            if let Some(e) = &self.error_message {
                m.insert("errorMessage".into(), json!(e));
            }
        }
        v
    }
}

/// All query jobs of an org.
#[derive(Default)]
pub struct QueryJobs {
    jobs: Mutex<BTreeMap<SfId, QueryJob>>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateQuery {
    operation: Option<String>,
    query: Option<String>,
    content_type: Option<String>,
    column_delimiter: Option<String>,
    line_ending: Option<String>,
}

pub async fn create(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path(version): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let version = version_number(&version)?;
    let req: CreateQuery =
        serde_json::from_slice(&body).map_err(|e| ApiError::json_parser(e.to_string()))?;
    let all_rows = match req.operation.as_deref() {
        Some("query") => false,
        Some("queryAll") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "INVALIDJOB",
                format!("Invalid operation: {other}. Valid operations are query and queryAll."),
            ))
        }
        None => {
            return Err(ApiError::bad_request(
                "INVALIDJOB",
                "The operation is required.",
            ))
        }
    };
    if let Some(ct) = req.content_type.as_deref() {
        if ct != "CSV" {
            return Err(ApiError::bad_request(
                "INVALIDJOB",
                format!("Invalid content type: {ct}. Only CSV is supported."),
            ));
        }
    }
    let dialect = Dialect::parse(req.column_delimiter.as_deref(), req.line_ending.as_deref())?;
    let soql = req
        .query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("INVALIDJOB", "The query is required."))?;
    let prepared = Arc::new(prepare(&org, &soql).map_err(soql_error)?);
    if !matches!(prepared.bound.output, Output::Fields(_)) {
        return Err(ApiError::bad_request(
            "INVALIDJOB",
            "Aggregate queries are not supported by Bulk API 2.0 query jobs.",
        ));
    }
    if let Output::Fields(cols) = &prepared.bound.output {
        if let Some(c) = cols.iter().find(|c| c.ftype.is_compound()) {
            return Err(ApiError::bad_request(
                "INVALIDJOB",
                format!(
                    "FeatureNotEnabled : Cannot serialize value for '{}' in CSV format",
                    c.dotted()
                ),
            ));
        }
    }
    org.consume_limit("DailyBulkV2QueryJobs", 1)?;
    let now = org.now_ms();
    let id = bulk.next_job_id();
    let job = QueryJob {
        id,
        all_rows,
        object: prepared.bound.object.name.clone(),
        created_by: org.user_id(),
        created_ms: now,
        modstamp_ms: now,
        state: JobState::UploadComplete,
        api_version: version,
        dialect,
        prepared: prepared.clone(),
        result: None,
        error_message: None,
        processing_ms: 0,
    };
    let info = job.info(false);
    bulk.query.jobs.lock().insert(id, job);
    let bulk2 = bulk.clone();
    tokio::task::spawn_blocking(move || run_job(&org, &bulk2, id, &prepared, all_rows));
    Ok(json(StatusCode::OK, &info))
}

fn run_job(org: &Org, bulk: &Bulk2, id: SfId, prepared: &Prepared, all_rows: bool) {
    {
        let mut jobs = bulk.query.jobs.lock();
        match jobs.get_mut(&id) {
            Some(j) if j.state == JobState::UploadComplete => {
                j.state = JobState::InProgress;
                j.modstamp_ms = org.now_ms();
            }
            _ => return,
        }
    }
    // Faults (`chaos::bulk`): the job stays InProgress for a while, or fails.
    std::thread::sleep(org.chaos().bulk.delay());
    let failed = org.chaos().bulk.take_failure();
    let started = std::time::Instant::now();
    if all_rows {
        crate::org::recycle_bin::purge_expired(org);
    }
    let outcome = if failed {
        None
    } else {
        let store = org.read();
        match exec::execute(&store, &prepared.bound, all_rows) {
            Outcome::Rows(ids) => {
                let dialect = bulk.query.jobs.lock().get(&id).map(|j| j.dialect);
                dialect.map(|d| ResultRows::render(&store, prepared, &ids, d))
            }
            _ => None,
        }
    };
    let mut jobs = bulk.query.jobs.lock();
    let Some(j) = jobs.get_mut(&id) else { return };
    if j.state != JobState::InProgress {
        return;
    }
    j.processing_ms = started.elapsed().as_millis() as i64;
    j.modstamp_ms = org.now_ms();
    match outcome {
        Some(rows) => {
            j.result = Some(Arc::new(rows));
            j.state = JobState::JobComplete;
        }
        None if failed => {
            j.state = JobState::Failed;
            j.error_message = Some(crate::org::chaos::bulk::FAILED_MESSAGE.into());
        }
        None => {
            j.state = JobState::Failed;
            j.error_message = Some("Aggregate queries are not supported.".into());
        }
    }
}

fn with_job<T>(
    org: &Org,
    bulk: &Bulk2,
    id: &str,
    version: &str,
    f: impl FnOnce(&mut QueryJob) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let version = version_number(version)?;
    let id = job_id(id)?;
    let mut jobs = bulk.query.jobs.lock();
    let job = jobs
        .get_mut(&id)
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .ok_or_else(ApiError::not_found)?;
    if job.api_version != version {
        return Err(version_mismatch(&job.api_version, &version));
    }
    f(job)
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
    let v = with_job(&org, &bulk, &id, &version, |j| {
        if req.state.as_deref() != Some("Aborted") {
            return Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                "A query job can only be changed to the Aborted state.",
            ));
        }
        if j.state.is_terminal() {
            return Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                format!("Job in state {} can't be aborted.", j.state.as_str()),
            ));
        }
        j.state = JobState::Aborted;
        j.modstamp_ms = org.now_ms();
        Ok(j.info(false))
    })?;
    Ok(json(StatusCode::OK, &v))
}

pub async fn delete(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = with_job(&org, &bulk, &id, &version, |j| Ok(j.id))?;
    bulk.query.jobs.lock().remove(&key);
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

pub async fn list(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    version_number(&version)?;
    let jobs = bulk.query.jobs.lock();
    let records: Vec<serde_json::Value> = jobs
        .values()
        .filter(|j| !org.chaos().bulk.expired(j.created_ms))
        .map(|j| {
            let mut v = j.info(false);
            v["jobType"] = json!("V2Query");
            v
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"done": true, "records": records, "nextRecordsUrl": null}),
    ))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultParams {
    locator: Option<String>,
    max_records: Option<String>,
}

fn invalid_locator(l: &str) -> ApiError {
    ApiError::bad_request("INVALIDLOCATOR", format!("Invalid locator: {l}"))
}

/// Encodes a result offset as an opaque locator (base64 of the decimal offset, like
/// Salesforce's `MTAwMDA`).
pub fn encode_locator(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(offset.to_string())
}

fn decode_locator(l: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(l.trim_end_matches('='))
        .ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

pub async fn results(
    State(org): State<Org>,
    Extension(bulk): Extension<Arc<Bulk2>>,
    _auth: Authed,
    Path((version, id)): Path<(String, String)>,
    Query(p): Query<ResultParams>,
) -> Result<Response, ApiError> {
    let rows = with_job(&org, &bulk, &id, &version, |j| {
        match (&j.state, &j.result) {
            (JobState::JobComplete, Some(rows)) => Ok(rows.clone()),
            _ => Err(ApiError::bad_request(
                "INVALIDJOBSTATE",
                format!(
                    "Job state is {}: results are available once the job is JobComplete.",
                    j.state.as_str()
                ),
            )),
        }
    })?;
    let offset = match p.locator.as_deref().filter(|l| !l.is_empty()) {
        None => 0,
        Some(l) => decode_locator(l)
            .filter(|o| *o > 0 && *o < rows.len())
            .ok_or_else(|| invalid_locator(l))?,
    };
    let max = match p.max_records.as_deref() {
        None => DEFAULT_MAX_RECORDS,
        Some(m) => m.parse::<usize>().ok().filter(|m| *m > 0).ok_or_else(|| {
            ApiError::bad_request("INVALIDMAXRECORDS", format!("Invalid maxRecords: {m}"))
        })?,
    };
    let (body, n, next) = tokio::task::spawn_blocking(move || rows.page(offset, max))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN_EXCEPTION",
                e.to_string(),
            )
        })?;
    let mut resp = csv_response(body);
    let h = resp.headers_mut();
    h.insert("Sforce-NumberOfRecords", HeaderValue::from(n as u64));
    let locator = next.map_or_else(|| "null".to_string(), encode_locator);
    h.insert(
        "Sforce-Locator",
        HeaderValue::from_str(&locator).unwrap_or(HeaderValue::from_static("null")),
    );
    Ok(resp)
}

/// Rows per rendering thread below which rows are rendered on one thread.
const PARALLEL_MIN_ROWS: usize = 16_384;

/// A query job's result, fixed when the job ran: the CSV header and every row rendered once
/// (in segments, one per rendering thread), with the byte offset where each row starts.
pub struct ResultRows {
    header: Vec<u8>,
    segments: Vec<Vec<u8>>,
    /// `starts[i]` = offset of row `i` in the segments laid end to end; one more entry marks
    /// the end of the last row.
    starts: Vec<usize>,
}

impl ResultRows {
    /// Renders the records `ids` (in this order) as CSV rows. Large results are rendered by
    /// several threads (one per core) into separate segments.
    pub fn render(store: &Store, prepared: &Prepared, ids: &[SfId], dialect: Dialect) -> Self {
        let Output::Fields(cols) = &prepared.bound.output else {
            return ResultRows {
                header: Vec::new(),
                segments: Vec::new(),
                starts: vec![0],
            };
        };
        let le = dialect.line_ending();
        let row_bytes = cols.len() * 24 + 2;
        let table = store.table(prepared.bound.object_index);
        let render = |part: &[SfId]| {
            let mut out = Vec::with_capacity(part.len() * row_bytes);
            let mut starts = Vec::with_capacity(part.len());
            render::in_storage_order(
                part,
                &mut out,
                |id| table.get(id),
                |rec, buf| render::write_csv_row(buf, store, rec, cols, dialect.delimiter, le),
                |out| starts.push(out.len()),
            );
            (out, starts)
        };
        let mut header = Vec::new();
        render::write_csv_header(&mut header, cols, dialect.delimiter, le);
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8)
            .min(ids.len() / PARALLEL_MIN_ROWS)
            .max(1);
        let parts: Vec<(Vec<u8>, Vec<usize>)> = if threads == 1 {
            vec![render(ids)]
        } else {
            let chunk = ids.len().div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = ids
                    .chunks(chunk)
                    .map(|part| s.spawn(move || render(part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        };
        let mut starts = Vec::with_capacity(ids.len() + 1);
        let mut segments = Vec::with_capacity(parts.len());
        let mut base = 0;
        for (buf, st) in parts {
            starts.extend(st.into_iter().map(|o| o + base));
            base += buf.len();
            segments.push(buf);
        }
        starts.push(base);
        ResultRows {
            header,
            segments,
            starts,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `[offset, offset + max)` as CSV with the header row; the body, the number of
    /// records in it and the next offset, if any.
    pub fn page(&self, offset: usize, max: usize) -> (Vec<u8>, usize, Option<usize>) {
        let offset = offset.min(self.len());
        let end = offset.saturating_add(max).min(self.len());
        let (from, to) = (self.starts[offset], self.starts[end]);
        let mut out = Vec::with_capacity(self.header.len() + (to - from));
        out.extend_from_slice(&self.header);
        let mut base = 0;
        for seg in &self.segments {
            let (lo, hi) = (from.max(base), to.min(base + seg.len()));
            if lo < hi {
                out.extend_from_slice(&seg[lo - base..hi - base]);
            }
            base += seg.len();
        }
        (out, end - offset, (end < self.len()).then_some(end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_span_rendering_segments() {
        let rows = ResultRows {
            header: b"H\n".to_vec(),
            segments: vec![b"a\nbb\n".to_vec(), b"c\n".to_vec()],
            starts: vec![0, 2, 5, 7],
        };
        assert_eq!(rows.len(), 3);
        assert_eq!(rows.page(0, 1), (b"H\na\n".to_vec(), 1, Some(1)));
        assert_eq!(rows.page(1, 2), (b"H\nbb\nc\n".to_vec(), 2, None));
        assert_eq!(rows.page(2, 10), (b"H\nc\n".to_vec(), 1, None));
    }

    #[test]
    fn locators_round_trip() {
        assert_eq!(encode_locator(10000), "MTAwMDA");
        assert_eq!(decode_locator("MTAwMDA"), Some(10000));
        assert_eq!(decode_locator("garbage!"), None);
    }
}
