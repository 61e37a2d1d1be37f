//! Salesforce records and change events as rows: the columns a record sets, with their Postgres
//! text, and what an event asks of each of its records (pure).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::adapter::{ChangeEventHeader, FieldDescriptor, MappingDescriptor, PgType, SfRecord};
use crate::engine::convert::{pg_text, FieldError};

/// A record's values as the table stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub sfid: String,
    /// The columns this row sets, with their Postgres text (`None` = NULL).
    pub cells: Vec<(&'static FieldDescriptor, Option<String>)>,
    /// For a change event: its commit time. A stored row that is newer (it holds a later event's
    /// commit time) is not overwritten. `None` for records read from Salesforce just now (query,
    /// retrieve): they are the current state and always apply.
    pub stamp: Option<NaiveDateTime>,
}

impl Row {
    /// The value of a column, as JSON in Salesforce's form (for the mapping filter).
    pub fn lookup(&self, sf_name: &str) -> Option<Value> {
        self.cells
            .iter()
            .find(|(f, _)| f.sf_name.eq_ignore_ascii_case(sf_name))
            .map(|(f, v)| match v {
                None => Value::Null,
                Some(text) => pg_text_to_sf_json(f, text),
            })
    }
}

/// A record that could not be turned into a row, with every reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub sfid: Option<String>,
    pub errors: Vec<FieldError>,
}

impl RecordError {
    /// The message stored for `forcesync errors`.
    pub fn reason(&self) -> String {
        self.errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The first field at fault.
    pub fn field(&self) -> Option<&'static str> {
        self.errors.first().map(|e| e.field)
    }
}

fn sfid_of(record: &Value) -> Option<String> {
    record.get("Id").and_then(Value::as_str).map(str::to_owned)
}

/// A full record (REST query result or retrieve; every mapped field present, absent = NULL) as a
/// row. Formula fields are included.
pub fn row_from_record(mapping: &MappingDescriptor, record: &Value) -> Result<Row, RecordError> {
    let sfid = sfid_of(record).ok_or_else(|| RecordError {
        sfid: None,
        errors: vec![FieldError {
            field: "Id",
            reason: "the record has no Id".into(),
            is_diff: false,
        }],
    })?;
    let view = SfRecord::rest(record).map_err(|e| RecordError {
        sfid: Some(sfid.clone()),
        errors: vec![FieldError {
            field: "(record)",
            reason: e.to_string(),
            is_diff: false,
        }],
    })?;
    let mut cells = Vec::with_capacity(mapping.fields.len());
    let mut errors = Vec::new();
    for field in mapping.fields {
        let value = view.get(field).unwrap_or(&Value::Null);
        match pg_text(field, value) {
            Ok(text) => cells.push((field, text)),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(RecordError {
            sfid: Some(sfid),
            errors,
        });
    }
    Ok(Row {
        sfid,
        cells,
        stamp: None,
    })
}

/// What a change event asks of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum EventChange {
    /// `CREATE` / `UNDELETE`: a full record (formula fields excluded: they are not in events).
    Full(Row),
    /// `UPDATE`: only the changed fields. `refetch` lists fields whose value must be read from
    /// Salesforce (long-text diffs).
    Partial {
        row: Row,
        refetch: Vec<&'static str>,
    },
    /// `DELETE`.
    Delete { sfid: String, stamp: NaiveDateTime },
    /// `GAP_*` (and anything else without usable fields): read the record again.
    Refetch { sfid: String },
}

/// The time an event's change was committed in Salesforce.
pub fn commit_time(header: &ChangeEventHeader) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp_millis(header.commit_timestamp)
        .unwrap_or_default()
        .naive_utc()
}

/// The change a CDC event (one of its `recordIds`) asks for. `GAP_OVERFLOW` has no records and
/// is handled by the caller (re-poll the window).
pub fn row_from_event(
    mapping: &MappingDescriptor,
    header: &ChangeEventHeader,
    payload: &Value,
    sfid: &str,
) -> Result<EventChange, RecordError> {
    use crate::adapter::ChangeType;
    let stamp = commit_time(header);
    let fail = |errors| RecordError {
        sfid: Some(sfid.to_owned()),
        errors,
    };
    if header.change_type.is_gap() {
        return Ok(EventChange::Refetch {
            sfid: sfid.to_owned(),
        });
    }
    let view = SfRecord::cdc(payload)
        .map_err(|e| {
            fail(vec![FieldError {
                field: "(payload)",
                reason: e.to_string(),
                is_diff: false,
            }])
        })?
        .with_id(sfid);
    let mut cells: Vec<(&'static FieldDescriptor, Option<String>)> = Vec::new();
    let mut errors = Vec::new();
    let mut refetch = Vec::new();
    let mut new_parent = Vec::new();
    let mut push = |field: &'static FieldDescriptor, value: &Value| match pg_text(field, value) {
        Ok(text) => cells.push((field, text)),
        Err(e) if e.is_diff => refetch.push(field.sf_name),
        Err(e) => errors.push(e),
    };
    match header.change_type {
        ChangeType::Delete => {
            return Ok(EventChange::Delete {
                sfid: sfid.to_owned(),
                stamp,
            })
        }
        ChangeType::Create | ChangeType::Undelete => {
            for field in mapping.fields {
                // Formulas and relationship columns are not in events.
                if field.calculated || field.relationship.is_some() {
                    continue;
                }
                let value = match field.sf_name {
                    "Id" => Value::String(sfid.to_owned()),
                    "IsDeleted" => Value::Bool(false),
                    "SystemModstamp" => continue,
                    _ => view.get(field).cloned().unwrap_or(Value::Null),
                };
                push(field, &value);
            }
        }
        ChangeType::Update => {
            let changed = mapping.fields_changed_by(header);
            for field in changed {
                if field.calculated || field.system {
                    continue;
                }
                // A field listed as changed but absent from the payload was set to null.
                let value = view.get(field).cloned().unwrap_or(Value::Null);
                push(field, &value);
                // A new parent: its external ID is read with the record.
                new_parent.extend(mapping.relationships_of(field.sf_name).map(|f| f.sf_name));
            }
        }
        _ => {
            return Ok(EventChange::Refetch {
                sfid: sfid.to_owned(),
            })
        }
    }
    refetch.append(&mut new_parent);
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    // The stored SystemModstamp becomes the event's commit time: millisecond precision (Salesforce
    // stamps are whole seconds), so that an older event replayed or reordered after this one is
    // recognised and skipped. The next read of the record stores Salesforce's own value again.
    if let Some(f) = mapping.field("SystemModstamp") {
        cells.push((f, Some(stamp.format("%Y-%m-%d %H:%M:%S%.3f").to_string())));
    }
    let row = Row {
        sfid: sfid.to_owned(),
        cells,
        stamp: Some(stamp),
    };
    Ok(match header.change_type {
        ChangeType::Update => EventChange::Partial { row, refetch },
        _ if refetch.is_empty() => EventChange::Full(row),
        _ => EventChange::Partial { row, refetch },
    })
}

/// Whether a row sets a lookup that relationship columns name their parent through: the
/// parent's external ID must then be read (change events carry only the lookup's Id).
pub fn names_a_parent(mapping: &MappingDescriptor, row: &Row) -> bool {
    row.cells.iter().any(|(field, value)| {
        value.is_some() && mapping.relationships_of(field.sf_name).next().is_some()
    })
}

/// Postgres text back to Salesforce JSON (for filter evaluation on rows being applied).
fn pg_text_to_sf_json(field: &FieldDescriptor, text: &str) -> Value {
    match field.pg_type {
        PgType::Boolean => Value::Bool(text == "true"),
        PgType::DoublePrecision | PgType::Integer | PgType::BigInt => text
            .parse::<serde_json::Number>()
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(text.to_owned())),
        PgType::Timestamp => Value::String(format!("{}Z", text.replacen(' ', "T", 1))),
        _ => Value::String(text.to_owned()),
    }
}

/// Keeps, for each sfid, the row with the newest stamp (one statement must not touch a row
/// twice); the order of first appearance is kept.
pub fn dedupe_newest(rows: Vec<Row>) -> Vec<Row> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.get(&row.sfid) {
            Some(&i) => {
                if row.stamp >= out[i].stamp {
                    out[i] = row;
                }
            }
            None => {
                index.insert(row.sfid.clone(), out.len());
                out.push(row);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::ACCOUNT;
    use serde_json::json;

    #[test]
    fn a_rest_record_becomes_a_row_with_every_mapped_column() {
        let record = json!({
            "attributes": {"type": "Account"},
            "Id": "001000000000001AAA",
            "IsDeleted": false,
            "SystemModstamp": "2024-01-02T03:04:05.000+0000",
            "Name": "Acme",
            "Phone": null
        });
        let row = row_from_record(&ACCOUNT, &record).unwrap();
        assert_eq!(row.sfid, "001000000000001AAA");
        assert_eq!(row.stamp, None, "a record read now always applies");
        let name = row.cells.iter().find(|(f, _)| f.column == "name").unwrap();
        assert_eq!(name.1.as_deref(), Some("Acme"));
        let phone = row.cells.iter().find(|(f, _)| f.column == "phone").unwrap();
        assert_eq!(phone.1, None);
        assert_eq!(row.lookup("name"), Some(json!("Acme")));
    }

    #[test]
    fn a_bad_value_names_the_record_and_field() {
        let long = "x".repeat(300);
        let record = json!({"Id": "001000000000001AAA", "Name": long});
        let err = row_from_record(&ACCOUNT, &record).unwrap_err();
        assert_eq!(err.sfid.as_deref(), Some("001000000000001AAA"));
        assert_eq!(err.field(), Some("Name"));
    }

    #[test]
    fn an_update_event_carries_only_changed_fields_and_nulls() {
        let payload = json!({
            "ChangeEventHeader": {
                "entityName": "Account", "changeType": "UPDATE",
                "changedFields": ["Phone", "Name", "LastModifiedDate"],
                "recordIds": ["001000000000001AAA", "001000000000002AAA"],
                "changeOrigin": "", "transactionKey": "t", "sequenceNumber": 1,
                "commitTimestamp": 1_704_164_645_000_i64, "commitNumber": 1, "commitUser": "005"
            },
            "Name": "New",
            "Phone": null,
            "LastModifiedDate": "2024-01-02T03:04:05.000Z"
        });
        let header = ChangeEventHeader::from_payload(&payload).unwrap();
        assert_eq!(header.record_ids.len(), 2);
        let change = row_from_event(&ACCOUNT, &header, &payload, "001000000000002AAA").unwrap();
        let EventChange::Partial { row, refetch } = change else {
            panic!("expected a partial change, got {change:?}")
        };
        assert!(refetch.is_empty());
        assert_eq!(row.sfid, "001000000000002AAA");
        let cols: Vec<_> = row
            .cells
            .iter()
            .map(|(f, v)| (f.column, v.clone()))
            .collect();
        assert!(cols.contains(&("name", Some("New".into()))));
        assert!(cols.contains(&("phone", None)));
        assert!(cols.iter().any(|(c, _)| *c == "systemmodstamp"));
        assert!(
            !cols.iter().any(|(c, _)| *c == "website"),
            "unchanged fields untouched"
        );
    }

    /// What a change event of the invoice line `a02000000000001AAA` comes to.
    fn line_change(change_type: &str, changed: Value, fields: Value) -> EventChange {
        let mut payload = json!({
            "ChangeEventHeader": {
                "entityName": "Invoice_Line__c", "changeType": change_type,
                "changedFields": changed,
                "recordIds": ["a02000000000001AAA"],
                "changeOrigin": "", "transactionKey": "t", "sequenceNumber": 1,
                "commitTimestamp": 1_704_164_645_000_i64, "commitNumber": 1, "commitUser": "005"
            }
        });
        for (k, v) in fields.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let header = ChangeEventHeader::from_payload(&payload).unwrap();
        row_from_event(
            &crate::adapter::testing::INVOICE_LINE,
            &header,
            &payload,
            "a02000000000001AAA",
        )
        .unwrap()
    }

    #[test]
    fn relationship_columns_are_read_from_the_nested_parent_of_a_query_result() {
        let line = &crate::adapter::testing::INVOICE_LINE;
        let record = json!({
            "attributes": {"type": "Invoice_Line__c"},
            "Id": "a02000000000001AAA",
            "Invoice__c": "a01000000000001AAA",
            "Invoice__r": {"attributes": {"type": "Invoice__c"}, "External_Id__c": "INV-1"},
            "Description__c": "L1"
        });
        let row = row_from_record(line, &record).unwrap();
        assert_eq!(
            row.lookup("Invoice__r.External_Id__c"),
            Some(json!("INV-1"))
        );
        let orphan = json!({"Id": "a02000000000002AAA", "Invoice__c": null, "Invoice__r": null});
        let row = row_from_record(line, &orphan).unwrap();
        assert_eq!(row.lookup("Invoice__r.External_Id__c"), Some(Value::Null));
    }

    #[test]
    fn a_created_child_keeps_its_relationship_column_and_is_read_again_for_it() {
        let line = &crate::adapter::testing::INVOICE_LINE;
        let change = line_change(
            "CREATE",
            json!([]),
            json!({"Invoice__c": "a01000000000001AAA", "Description__c": "L1"}),
        );
        let EventChange::Full(row) = change else {
            panic!("expected a full row, got {change:?}")
        };
        // The event does not carry the parent's external ID: the column is left alone.
        assert!(!row
            .cells
            .iter()
            .any(|(f, _)| f.column == "invoice__r__external_id__c"));
        assert!(names_a_parent(line, &row));
    }

    #[test]
    fn a_child_moved_to_another_parent_is_read_again() {
        let change = line_change(
            "UPDATE",
            json!(["Invoice__c"]),
            json!({"Invoice__c": "a01000000000002AAA"}),
        );
        let EventChange::Partial { refetch, .. } = change else {
            panic!("expected a partial change, got {change:?}")
        };
        assert_eq!(refetch, ["Invoice__r.External_Id__c"]);
        let change = line_change(
            "UPDATE",
            json!(["Description__c"]),
            json!({"Description__c": "x"}),
        );
        assert!(matches!(change, EventChange::Partial { refetch, .. } if refetch.is_empty()));
    }

    #[test]
    fn duplicate_rows_keep_the_newest_state() {
        let row = |secs: i64| Row {
            sfid: "001A".into(),
            cells: vec![],
            stamp: DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()),
        };
        let out = dedupe_newest(vec![row(1), row(2), row(0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].stamp,
            DateTime::from_timestamp(2, 0).map(|d| d.naive_utc())
        );
    }
}
