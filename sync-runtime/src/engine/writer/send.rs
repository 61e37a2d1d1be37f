//! Sending a step's writes to Salesforce and reading the answers into decisions: one sObject
//! Collections call per chunk, or one Bulk API 2.0 ingest job. Only the request and answer shapes
//! live here; what an answer means is `outcome`'s.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::Value;

use crate::adapter::{flat_body, MappingDescriptor};
use crate::salesforce::bulk::{IngestOperation, IngestResults, PollPolicy};
use crate::salesforce::collections::RecordResult as SfRecordResult;
use crate::salesforce::{Client, SfError, SfErrorKind};

use super::outcome::{decide_call_error, decide_record, Decision, RecordError, RecordResult};
use super::plan::{CallKind, Write};

/// The per-record result in the writer's terms.
pub fn record_result(result: &SfRecordResult) -> RecordResult {
    if result.success {
        RecordResult::Success {
            id: result.id.clone(),
            created: result.created,
        }
    } else {
        RecordResult::Failure(result.errors.iter().map(record_error).collect())
    }
}

fn record_error(e: &SfError) -> RecordError {
    RecordError {
        code: e.code.clone(),
        message: e.message.clone(),
        fields: e.fields.clone(),
    }
}

/// The JSON record sent for a write (its body, plus `Id` for an update).
fn record(write: &Write) -> Value {
    let mut body = write.body.clone();
    if write.kind == CallKind::Update {
        if let Some(sfid) = &write.sfid {
            body.insert("Id".to_owned(), Value::String(sfid.clone()));
        }
    }
    Value::Object(body)
}

/// Sends one chunk (≤ 200 writes of one kind) through sObject Collections; one decision per
/// write, in order.
pub async fn collections(
    client: &Client,
    mapping: &MappingDescriptor,
    kind: CallKind,
    writes: &[Write],
) -> Vec<Decision> {
    let records: Vec<Value> = writes.iter().map(record).collect();
    let answer = match kind {
        CallKind::Create => client.create_records(mapping.object, &records).await,
        CallKind::Update => client.update_records(mapping.object, &records).await,
        CallKind::Upsert => match mapping.upsert_key {
            Some(key) => client.upsert_records(mapping.object, key, &records).await,
            None => client.create_records(mapping.object, &records).await,
        },
        CallKind::Delete => {
            let ids: Vec<String> = writes.iter().filter_map(|w| w.sfid.clone()).collect();
            client.delete_records(&ids).await
        }
    };
    match answer {
        Ok(results) if results.len() == writes.len() => results
            .iter()
            .map(|r| decide_record(kind, &record_result(r)))
            .collect(),
        Ok(results) => {
            let error = SfError::api(
                None,
                "UNEXPECTED_RESULTS",
                &format!(
                    "sObject Collections answered {} results for {} records",
                    results.len(),
                    writes.len()
                ),
                vec![],
            );
            let error = SfError {
                class: crate::salesforce::ErrorClass::Ambiguous,
                ..error
            };
            vec![decide_call_error(kind, &error); writes.len()]
        }
        Err(error) => vec![decide_call_error(kind, &error); writes.len()],
    }
}

/// A CSV cell for a JSON value (`#N/A` clears a field).
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "#N/A".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A CSV row's cells by column name, as a Bulk job's results echo them back.
pub type CsvRow = BTreeMap<String, String>;

/// The CSV of a Bulk ingest job over these writes, and each write's original columns (what the
/// job's results echo back).
pub fn bulk_csv(kind: CallKind, writes: &[Write]) -> Result<(Vec<u8>, Vec<CsvRow>), csv::Error> {
    let mut header: Vec<String> = Vec::new();
    if matches!(kind, CallKind::Update | CallKind::Delete) {
        header.push("Id".to_owned());
    }
    // Relationship values become `Invoice__r.External_Id__c` columns.
    let bodies: Vec<_> = writes.iter().map(|w| flat_body(&w.body)).collect();
    if kind != CallKind::Delete {
        for body in &bodies {
            for key in body.keys() {
                if !header.contains(key) {
                    header.push(key.clone());
                }
            }
        }
    }
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    out.write_record(&header)?;
    let mut rows = Vec::with_capacity(writes.len());
    for (w, body) in writes.iter().zip(&bodies) {
        let cells: Vec<String> = header
            .iter()
            .map(|h| {
                if h == "Id" && matches!(kind, CallKind::Update | CallKind::Delete) {
                    w.sfid.clone().unwrap_or_default()
                } else {
                    // A column this write does not set stays empty: unchanged / unset.
                    body.get(h).map(cell).unwrap_or_default()
                }
            })
            .collect();
        out.write_record(&cells)?;
        rows.push(header.iter().cloned().zip(cells).collect());
    }
    let bytes = out
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok((bytes, rows))
}

fn row_key(row: &BTreeMap<String, String>, header: &[String]) -> String {
    header
        .iter()
        .map(|h| row.get(h).map(String::as_str).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// Reads an ingest job's results back onto the writes, matching each result row to the write
/// that produced it by its echoed original columns. A write without a result is treated like an
/// ambiguous failure.
pub fn bulk_decisions(
    kind: CallKind,
    rows: &[BTreeMap<String, String>],
    results: &IngestResults,
) -> Vec<Decision> {
    let header: Vec<String> = rows
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    let mut by_key: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        by_key
            .entry(row_key(row, &header))
            .or_default()
            .push_back(i);
    }
    let mut decisions: Vec<Option<Decision>> = vec![None; rows.len()];
    let mut place = |row: &BTreeMap<String, String>, decision: Decision| {
        if let Some(i) = by_key
            .get_mut(&row_key(row, &header))
            .and_then(VecDeque::pop_front)
        {
            decisions[i] = Some(decision);
        }
    };
    for s in &results.successful {
        place(
            &s.row,
            decide_record(
                kind,
                &RecordResult::Success {
                    id: Some(s.id.clone()),
                    created: Some(s.created),
                },
            ),
        );
    }
    for f in &results.failed {
        place(
            &f.row,
            decide_record(kind, &RecordResult::Failure(vec![record_error(&f.error)])),
        );
    }
    for u in &results.unprocessed {
        place(
            u,
            Decision::Retry {
                reason: "not processed by the Bulk API job".to_owned(),
            },
        );
    }
    decisions
        .into_iter()
        .map(|d| {
            d.unwrap_or_else(|| {
                let reason = "missing from the Bulk API job's results".to_owned();
                if matches!(kind, CallKind::Create | CallKind::Upsert) {
                    Decision::Reconcile { reason }
                } else {
                    Decision::Retry { reason }
                }
            })
        })
        .collect()
}

/// Sends writes through one Bulk API 2.0 ingest job. When the job itself fails, its creates are
/// and upserts reconciled and the other writes retried (retries go through sObject Collections).
pub async fn bulk(
    client: &Client,
    mapping: &MappingDescriptor,
    kind: CallKind,
    writes: &[Write],
    poll: &PollPolicy,
) -> Vec<Decision> {
    let (csv, rows) = match bulk_csv(kind, writes) {
        Ok(built) => built,
        Err(e) => {
            let error = SfError::api(None, "CSV", &e.to_string(), vec![]);
            return vec![decide_call_error(kind, &error); writes.len()];
        }
    };
    let operation = match (kind, mapping.upsert_key) {
        (CallKind::Create, _) | (CallKind::Upsert, None) => IngestOperation::Insert,
        (CallKind::Upsert, Some(key)) => IngestOperation::Upsert {
            external_id_field: key.to_owned(),
        },
        (CallKind::Update, _) => IngestOperation::Update,
        (CallKind::Delete, _) => IngestOperation::Delete,
    };
    match client
        .bulk_ingest(mapping.object, &operation, csv, poll)
        .await
    {
        Ok(results) => bulk_decisions(kind, &rows, &results),
        Err(error) if error.kind == SfErrorKind::BulkJobFailed => {
            let reason =
                format!("Bulk API job failed ({error}); falling back to sObject Collections");
            let decision = if matches!(kind, CallKind::Create | CallKind::Upsert) {
                Decision::Reconcile { reason }
            } else {
                Decision::Retry { reason }
            };
            vec![decision; writes.len()]
        }
        Err(error) => vec![decide_call_error(kind, &error); writes.len()],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::salesforce::bulk::{IngestFailure, IngestSuccess};

    fn write(record_id: i32, body: Value, sfid: Option<&str>, kind: CallKind) -> Write {
        Write {
            table: "account".into(),
            record_id,
            entry_ids: vec![record_id],
            kind,
            sfid: sfid.map(str::to_owned),
            external_id: None,
            body: body.as_object().cloned().unwrap(),
        }
    }

    #[test]
    fn bulk_csv_has_a_column_per_field_and_clears_nulls() {
        let writes = [
            write(
                1,
                json!({"Name": "A, Inc", "Phone": null}),
                Some("001A"),
                CallKind::Update,
            ),
            write(2, json!({"Website": "w"}), Some("001B"), CallKind::Update),
        ];
        let (csv, rows) = bulk_csv(CallKind::Update, &writes).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "Id,Name,Phone,Website\n001A,\"A, Inc\",#N/A,\n001B,,,w\n"
        );
        assert_eq!(rows[1]["Website"], "w");
    }

    #[test]
    fn bulk_csv_names_a_parent_by_its_external_id_path() {
        let writes = [
            write(
                1,
                json!({"Invoice__r": {"External_Id__c": "INV-1"}, "Description__c": "L1"}),
                None,
                CallKind::Create,
            ),
            write(
                2,
                json!({"Invoice__c": "a01000000000001AAA"}),
                None,
                CallKind::Create,
            ),
        ];
        let (csv, _) = bulk_csv(CallKind::Create, &writes).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "Description__c,Invoice__r.External_Id__c,Invoice__c
L1,INV-1,
,,a01000000000001AAA
"
        );
    }

    #[test]
    fn bulk_results_find_their_writes_and_a_bad_row_fails_alone() {
        let writes = [
            write(1, json!({"Name": "same"}), None, CallKind::Create),
            write(2, json!({"Name": "same"}), None, CallKind::Create),
            write(3, json!({"Name": "bad"}), None, CallKind::Create),
            write(4, json!({"Name": "lost"}), None, CallKind::Create),
        ];
        let (_, rows) = bulk_csv(CallKind::Create, &writes).unwrap();
        let row = |name: &str| BTreeMap::from([("Name".to_owned(), name.to_owned())]);
        let results = IngestResults {
            job_id: "750".into(),
            successful: vec![
                IngestSuccess {
                    id: "001B".into(),
                    created: true,
                    row: row("same"),
                },
                IngestSuccess {
                    id: "001A".into(),
                    created: true,
                    row: row("same"),
                },
            ],
            failed: vec![IngestFailure {
                id: None,
                error: SfError::api(None, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "no", vec![]),
                row: row("bad"),
            }],
            unprocessed: vec![],
        };
        let d = bulk_decisions(CallKind::Create, &rows, &results);
        assert!(matches!(&d[0], Decision::Success { sfid: Some(s), .. } if s == "001B"));
        assert!(matches!(&d[1], Decision::Success { sfid: Some(s), .. } if s == "001A"));
        assert!(
            matches!(&d[2], Decision::Failed(e) if e.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION")
        );
        assert!(matches!(&d[3], Decision::Reconcile { .. }));
    }
}
