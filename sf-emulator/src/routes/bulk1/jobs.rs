//! Bulk API 1.0 job and batch state: operations, content types, batch states and results,
//! the per-org job table, and the `jobInfo` / `batchInfo` documents describing them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use parking_lot::Mutex;

use super::wire::{Doc, Field, Format};
use crate::data::ids::SfId;
use crate::data::soql::render;
use crate::org::write::WriteResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Insert,
    Update,
    Upsert,
    Delete,
    HardDelete,
    Query,
    QueryAll,
}

impl Op {
    pub(super) fn parse(s: &str) -> Option<Op> {
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

    pub(super) fn as_str(self) -> &'static str {
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

    pub(super) fn is_query(self) -> bool {
        matches!(self, Op::Query | Op::QueryAll)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentType {
    Json,
    Csv,
    Xml,
}

impl ContentType {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "JSON",
            ContentType::Csv => "CSV",
            ContentType::Xml => "XML",
        }
    }

    /// Batch endpoints answer JSON for JSON jobs and XML otherwise.
    pub(super) fn family(self) -> Format {
        match self {
            ContentType::Json => Format::Json,
            _ => Format::Xml,
        }
    }
}

pub(super) struct Job {
    pub(super) id: SfId,
    pub(super) op: Op,
    pub(super) object: String,
    pub(super) external_id: Option<String>,
    pub(super) content_type: ContentType,
    pub(super) serial: bool,
    pub(super) state: &'static str,
    pub(super) created_by: SfId,
    pub(super) created_ms: i64,
    pub(super) modstamp_ms: i64,
    pub(super) api_version: String,
    pub(super) batches: Vec<SfId>,
    /// The `Sforce-Call-Options: client=<id>` of the request that created the job; batches are
    /// processed outside any request, and their change events name it in `changeOrigin`
    /// (`com/salesforce/api/bulkapi/<ver>;client=<id>`; Change Data Capture Developer Guide,
    /// "ChangeEventHeader Fields"; Bulk API Developer Guide, "Sforce-Call-Options Header").
    pub(super) client: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BatchState {
    Queued,
    InProgress,
    Completed,
    Failed,
    NotProcessed,
}

impl BatchState {
    /// The state name: `Not Processed` in XML, `NotProcessed` in JSON (what simple-salesforce
    /// polls for).
    pub(super) fn as_str(self, format: Format) -> &'static str {
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

pub(super) enum BatchResult {
    None,
    Ingest(Vec<WriteResult>),
    /// A query's result, rendered when the batch ran.
    Query {
        result_id: SfId,
        body: Bytes,
    },
}

pub(super) struct Batch {
    pub(super) id: SfId,
    pub(super) job_id: SfId,
    pub(super) state: BatchState,
    pub(super) state_message: Option<String>,
    pub(super) created_ms: i64,
    pub(super) modstamp_ms: i64,
    pub(super) processed: usize,
    pub(super) failed: usize,
    pub(super) processing_ms: i64,
    pub(super) body: Bytes,
    pub(super) result: BatchResult,
}

/// Bulk 1.0 state of one org.
#[derive(Default)]
pub struct Bulk1 {
    pub(super) jobs: Mutex<BTreeMap<SfId, Job>>,
    pub(super) batches: Mutex<HashMap<SfId, Batch>>,
    pub(super) counter: AtomicU64,
}

impl Bulk1 {
    pub(super) fn next(&self, prefix: &str) -> SfId {
        SfId::generate(prefix, self.counter.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

pub(super) fn dt(ms: i64) -> String {
    let mut out = Vec::new();
    render::datetime(&mut out, ms, b"Z");
    String::from_utf8(out).unwrap_or_default()
}

pub(super) fn num(n: impl ToString) -> Field {
    Field::Num(n.to_string())
}

pub(super) fn text(s: impl Into<String>) -> Field {
    Field::Text(s.into())
}

impl Bulk1 {
    pub(super) fn job_doc(&self, j: &Job) -> Doc {
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

pub(super) fn batch_doc(b: &Batch, format: Format) -> Doc {
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
