//! Bulk API 2.0 (`/services/data/vXX.X/jobs/...`): ingest jobs (CSV in, processed through
//! `Org::write` in chunks, success/failure/unprocessed result CSVs) and query jobs (a SOQL
//! snapshot served as paged CSV with `Sforce-Locator` / `Sforce-NumberOfRecords`).

pub mod ingest;
pub mod query;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};

use crate::data::error::ApiError;
use crate::data::ids::SfId;
use crate::data::soql::render;
use crate::org::Org;

/// Job state names as the API spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Open,
    UploadComplete,
    InProgress,
    JobComplete,
    Failed,
    Aborted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
        }
    }

    /// A state no further processing changes.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::JobComplete | JobState::Failed | JobState::Aborted
        )
    }
}

/// CSV dialect of a job (`columnDelimiter`, `lineEnding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub delimiter: u8,
    pub crlf: bool,
}

impl Dialect {
    pub fn parse(delimiter: Option<&str>, line_ending: Option<&str>) -> Result<Dialect, ApiError> {
        let delimiter = match delimiter.unwrap_or("COMMA") {
            "COMMA" => b',',
            "BACKQUOTE" => b'`',
            "CARET" => b'^',
            "PIPE" => b'|',
            "SEMICOLON" => b';',
            "TAB" => b'\t',
            other => {
                return Err(ApiError::bad_request(
                    "INVALIDJOB",
                    format!("Invalid column delimiter: {other}"),
                ))
            }
        };
        let crlf = match line_ending.unwrap_or("LF") {
            "LF" => false,
            "CRLF" => true,
            other => {
                return Err(ApiError::bad_request(
                    "INVALIDJOB",
                    format!("Invalid line ending: {other}"),
                ))
            }
        };
        Ok(Dialect { delimiter, crlf })
    }

    pub fn delimiter_name(self) -> &'static str {
        match self.delimiter {
            b'`' => "BACKQUOTE",
            b'^' => "CARET",
            b'|' => "PIPE",
            b';' => "SEMICOLON",
            b'\t' => "TAB",
            _ => "COMMA",
        }
    }

    pub fn line_ending_name(self) -> &'static str {
        if self.crlf {
            "CRLF"
        } else {
            "LF"
        }
    }

    pub fn line_ending(self) -> &'static [u8] {
        if self.crlf {
            b"\r\n"
        } else {
            b"\n"
        }
    }
}

/// Shared Bulk 2.0 state of one org: its ingest and query jobs.
#[derive(Default)]
pub struct Bulk2 {
    pub ingest: ingest::IngestJobs,
    pub query: query::QueryJobs,
    counter: AtomicU64,
}

impl Bulk2 {
    /// A fresh job Id (`750…`).
    pub fn next_job_id(&self) -> SfId {
        SfId::generate("750", self.counter.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// The Bulk 2.0 routes.
pub fn routes() -> Router<Org> {
    let state = Arc::new(Bulk2::default());
    Router::new()
        .route(
            "/services/data/{version}/jobs/ingest",
            get(ingest::list).post(ingest::create),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}",
            get(ingest::info)
                .patch(ingest::patch)
                .delete(ingest::delete),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/batches",
            axum::routing::put(ingest::upload),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/successfulResults",
            get(ingest::successful_results),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/failedResults",
            get(ingest::failed_results),
        )
        .route(
            "/services/data/{version}/jobs/ingest/{id}/unprocessedrecords",
            get(ingest::unprocessed_records),
        )
        .route(
            "/services/data/{version}/jobs/query",
            get(query::list).post(query::create),
        )
        .route(
            "/services/data/{version}/jobs/query/{id}",
            get(query::info).patch(query::patch).delete(query::delete),
        )
        .route(
            "/services/data/{version}/jobs/query/{id}/results",
            get(query::results),
        )
        .layer(Extension(state))
}

/// `v59.0` → `59.0` (404 for anything else, as an unknown URL).
pub fn version_number(v: &str) -> Result<String, ApiError> {
    v.strip_prefix('v')
        .filter(|n| {
            n.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b == "0"
            })
        })
        .map(str::to_string)
        .ok_or_else(ApiError::not_found)
}

/// `2018-12-18T22:51:36.000+0000`.
pub fn format_rest_datetime(ms: i64) -> String {
    let mut out = Vec::with_capacity(28);
    render::datetime(&mut out, ms, b"+0000");
    String::from_utf8(out).unwrap_or_default()
}

/// A job Id from the path (404 `NOT_FOUND` when malformed).
pub fn job_id(s: &str) -> Result<SfId, ApiError> {
    SfId::parse(s).map_err(|_| ApiError::not_found())
}

/// The 409 answered when a job is addressed under another API version than it was created with.
pub fn version_mismatch(job_version: &str, used: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "INVALIDJOB",
        format!("The job was created with API version {job_version} and can't be accessed with API version {used}."),
    )
}

/// A JSON body with Salesforce's content type.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    crate::data::error::json_response(status, body)
}

/// A `text/csv` body.
pub fn csv_response(body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    resp
}
