//! Bulk API 1.0 background processing: one queued batch to Completed / Failed, through the
//! SOQL executor (query/queryAll) or `Org::write` in chunks of 200 (ingest).

use serde_json::Value as Json;

use super::jobs::{Batch, BatchResult, BatchState, Bulk1, ContentType, Op};
use super::results::render_query;
use super::wire;
use crate::data::ids::SfId;
use crate::data::soql::bind::Output;
use crate::data::soql::exec::{self, Outcome};
use crate::org::write::{FieldInput, WriteContext, WriteOp};
use crate::org::Org;
use crate::routes::query_api::prepare;

/// Rows per `Org::write` call.
pub(super) const CHUNK: usize = 200;
pub(super) fn set_batch(bulk: &Bulk1, id: SfId, f: impl FnOnce(&mut Batch)) {
    if let Some(b) = bulk.batches.lock().get_mut(&id) {
        f(b);
    }
}

/// Processes one queued batch to Completed / Failed.
pub(super) fn process(org: &Org, bulk: &Bulk1, batch: SfId) {
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
                j.client.clone(),
            )
        })
    };
    let Some((op, object, external_id, ct, version, client)) = job else {
        return;
    };
    // Faults (`chaos::bulk`): the batch stays InProgress for a while, or fails.
    std::thread::sleep(org.chaos().bulk.delay());
    let outcome = if org.chaos().bulk.take_failure() {
        Err(crate::org::chaos::bulk::FAILED_MESSAGE.to_string())
    } else if op.is_query() {
        run_query(org, bulk, &body, op == Op::QueryAll, &object, ct, &version)
    } else {
        run_ingest(
            org,
            op,
            &object,
            external_id.as_deref(),
            ct,
            WriteContext::bulk(org, &version).with_client(client.as_deref()),
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

pub(super) type Processed = Result<(BatchResult, usize, usize), String>;

pub(super) fn run_query(
    org: &Org,
    bulk: &Bulk1,
    body: &[u8],
    all_rows: bool,
    object: &str,
    ct: ContentType,
    version: &str,
) -> Processed {
    if all_rows {
        crate::org::recycle_bin::purge_expired(org);
    }
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
    // The rows are selected and rendered under one read of the store: the result is fixed
    // when the batch runs, not read from live data at download.
    let store = org.read();
    let Outcome::Rows(ids) = exec::execute(&store, &prepared.bound, all_rows) else {
        return Err("InvalidBatch : Aggregate queries are not supported by Bulk API".into());
    };
    let n = ids.len();
    let body = render_query(&store, ct, &prepared, &ids, version);
    drop(store);
    Ok((
        BatchResult::Query {
            result_id: bulk.next("752"),
            body,
        },
        n,
        0,
    ))
}

/// One input record: (field name, value) pairs as sent.
pub(super) type Row = Vec<(String, FieldInput)>;

pub(super) fn parse_rows(ct: ContentType, body: &[u8]) -> Result<Vec<Row>, String> {
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

pub(super) fn input_text(v: &FieldInput) -> String {
    match v {
        FieldInput::Text(t) => t.clone(),
        FieldInput::Json(Json::String(s)) => s.clone(),
        FieldInput::Json(Json::Null) => String::new(),
        FieldInput::Json(other) => other.to_string(),
        FieldInput::Value(v) => v.as_str().map(str::to_string).unwrap_or_default(),
    }
}

pub(super) fn run_ingest(
    org: &Org,
    op: Op,
    object: &str,
    external_id: Option<&str>,
    ct: ContentType,
    ctx: WriteContext,
    body: &[u8],
) -> Processed {
    let rows = parse_rows(ct, body)?;
    if rows.len() > 10_000 {
        return Err("InvalidBatch : Records in a batch can't exceed 10000".into());
    }
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
