//! Applying Salesforce data to a mapped table: full records (query results, fetched records,
//! `CREATE`/`UNDELETE` events), partial changes (`UPDATE` events), deletes and undeletes.
//!
//! Turning records into rows ([`row_from_record`], [`row_from_event`]) and building the SQL
//! ([`upsert_sql`], [`update_sql`]) are pure; the `async` functions only run the statements, always
//! inside a transaction the caller opened with [`begin_engine_tx`] (`SET LOCAL forcesync.engine =
//! 'on'`: not captured by the triggers, `_hc_lastop` becomes `SYNCED`).
//!
//! Applying is idempotent: every row carries the time of the Salesforce state it holds
//! (`systemmodstamp`), and a change older than the stored row never overwrites it, so replaying
//! events after a restart or a load, or re-reading a window twice, changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::convert::{pg_text, FieldError};
use super::system::quote_ident;
use crate::adapter::{
    ChangeEventHeader, DeleteMode, FieldDescriptor, MappingDescriptor, PgType, SfRecord,
};

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

/// A child mapping's relationship column that names this mapping's records by external ID
/// (`invoice_line__c.invoice__r__external_id__c` names `invoice__c.external_id__c`), with the
/// lookup column that holds the parent's `sfid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildLink {
    /// The child table, qualified and quoted.
    pub table: String,
    /// The child's lookup column (the parent's `sfid`), quoted.
    pub lookup: String,
    /// The child's relationship column, quoted.
    pub relationship: String,
    /// The parent's external ID column, quoted.
    pub parent_column: String,
    /// The parent's external ID field (Salesforce name), to spot it in `changedFields`.
    pub parent_field: &'static str,
}

/// The relationship columns of `mappings` that name records of `parent` by an external ID
/// `parent` maps, and whose lookup the child maps too (pure).
pub fn children_of(mappings: &[&MappingDescriptor], parent: &MappingDescriptor) -> Vec<ChildLink> {
    let mut links = Vec::new();
    for child in mappings {
        for field in child.fields {
            let (Some(r), [object]) = (field.relationship, field.reference_to) else {
                continue;
            };
            if !object.eq_ignore_ascii_case(parent.object) {
                continue;
            }
            let (Some(key), Some(lookup)) = (parent.field(r.field), child.field(r.lookup)) else {
                continue;
            };
            links.push(ChildLink {
                table: qualified(child),
                lookup: quote_ident(lookup.column),
                relationship: quote_ident(field.column),
                parent_column: quote_ident(key.column),
                parent_field: key.sf_name,
            });
        }
    }
    links
}

/// The external ID values children name these parents by, per `sfid`, as one text each (to
/// spot a key that changed: read before and after applying).
pub async fn parent_keys(
    tx: &Transaction<'_>,
    parent: &MappingDescriptor,
    children: &[ChildLink],
    sfids: &[String],
) -> Result<HashMap<String, String>, tokio_postgres::Error> {
    let mut columns: Vec<&str> = children.iter().map(|c| c.parent_column.as_str()).collect();
    columns.sort_unstable();
    columns.dedup();
    if columns.is_empty() || sfids.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<String> = columns
        .iter()
        .map(|c| format!("coalesce({c}::text, E'\\x1e')"))
        .collect();
    Ok(tx
        .query(
            &format!(
                "SELECT sfid, concat_ws(E'\\x1f', {}) FROM {} WHERE sfid = ANY($1)",
                keys.join(", "),
                qualified(parent)
            ),
            &[&sfids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// After parents changed: children pointing at them (by lookup) take their current external ID
/// into the relationship column. Salesforce sends no change event for a child when its
/// parent's external ID changes, and the child's link in Salesforce is by Id, so this is an
/// engine write (not sent back). Returns the child rows changed.
pub async fn follow_parent_keys(
    tx: &Transaction<'_>,
    parent: &MappingDescriptor,
    children: &[ChildLink],
    sfids: &[String],
) -> Result<u64, tokio_postgres::Error> {
    let mut changed = 0;
    if sfids.is_empty() {
        return Ok(0);
    }
    for link in children {
        changed += tx
            .execute(
                &format!(
                    "UPDATE {child} c SET {rel} = p.{key}::text FROM {parent} p \
                     WHERE p.sfid = ANY($1) AND c.{lookup} = p.sfid \
                       AND c.{rel} IS DISTINCT FROM p.{key}::text",
                    child = link.table,
                    rel = link.relationship,
                    key = link.parent_column,
                    parent = qualified(parent),
                    lookup = link.lookup,
                ),
                &[&sfids],
            )
            .await?;
    }
    Ok(changed)
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

/// The record-set column type used to read a field out of the JSON batch parameter.
fn recordset_type(field: &FieldDescriptor) -> String {
    match field.pg_type {
        PgType::Varchar(_) | PgType::Text => "text".into(),
        other => other.sql(),
    }
}

/// `INSERT … SELECT … FROM jsonb_to_recordset($1) ON CONFLICT (sfid) DO UPDATE …` for rows setting
/// `fields` (which include `Id` → `sfid`). `guarded`: rows from change events, which do not
/// overwrite a stored row holding a later commit time.
pub fn upsert_sql(
    mapping: &MappingDescriptor,
    fields: &[&FieldDescriptor],
    guarded: bool,
) -> String {
    let table = qualified(mapping);
    let cols: Vec<String> = fields.iter().map(|f| quote_ident(f.column)).collect();
    let defs: Vec<String> = fields
        .iter()
        .map(|f| format!("{} {}", quote_ident(f.column), recordset_type(f)))
        .collect();
    let sets: Vec<String> = fields
        .iter()
        .filter(|f| f.column != "sfid")
        .map(|f| format!("{0} = EXCLUDED.{0}", quote_ident(f.column)))
        .collect();
    let guard = if guarded {
        " WHERE t.systemmodstamp IS NULL OR EXCLUDED.systemmodstamp IS NULL OR t.systemmodstamp <= EXCLUDED.systemmodstamp"
    } else {
        ""
    };
    format!(
        "INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM jsonb_to_recordset($1::jsonb) AS x({defs}, _fs_stamp timestamp) \
         ON CONFLICT (sfid) DO UPDATE SET {sets}{guard}",
        cols = cols.join(", "),
        defs = defs.join(", "),
        sets = sets.join(", "),
    )
}

/// `UPDATE … FROM jsonb_to_recordset($1) … WHERE the stored row is not newer RETURNING sfid`.
///
/// `rows` (how many the batch holds) bounds the recordset: Postgres estimates 100 rows for
/// `jsonb_to_recordset`, and against a small or not yet analysed table it then hash-joins over a
/// sequential scan (once per change event); with the bound it looks each row up by `sfid`.
pub fn update_sql(mapping: &MappingDescriptor, fields: &[&FieldDescriptor], rows: usize) -> String {
    let table = qualified(mapping);
    let defs: Vec<String> = fields
        .iter()
        .map(|f| format!("{} {}", quote_ident(f.column), recordset_type(f)))
        .collect();
    let sets: Vec<String> = fields
        .iter()
        .map(|f| format!("{0} = x.{0}", quote_ident(f.column)))
        .collect();
    format!(
        "UPDATE {table} AS t SET {sets} \
         FROM (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(sfid text, {defs}, _fs_stamp timestamp) LIMIT {rows}) AS x \
         WHERE t.sfid = x.sfid AND (t.systemmodstamp IS NULL OR x._fs_stamp IS NULL OR t.systemmodstamp <= x._fs_stamp) \
         RETURNING t.sfid",
        sets = sets.join(", "),
        defs = defs.join(", "),
    )
}

/// The mapped table, schema-qualified and quoted.
pub fn qualified(mapping: &MappingDescriptor) -> String {
    format!(
        "{}.{}",
        quote_ident(mapping.schema),
        quote_ident(mapping.table)
    )
}

fn batch_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|row| {
                let mut object = Map::with_capacity(row.cells.len() + 2);
                object.insert("sfid".into(), Value::String(row.sfid.clone()));
                for (field, text) in &row.cells {
                    object.insert(
                        field.column.to_owned(),
                        text.clone().map_or(Value::Null, Value::String),
                    );
                }
                object.insert(
                    "_fs_stamp".into(),
                    row.stamp.map_or(Value::Null, |s| {
                        Value::String(s.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                    }),
                );
                Value::Object(object)
            })
            .collect(),
    )
}

/// Starts an engine transaction: not captured by the triggers, `_hc_lastop` becomes `SYNCED`.
pub async fn begin_engine_tx(
    client: &mut tokio_postgres::Client,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL forcesync.engine = 'on'")
        .await?;
    Ok(tx)
}

/// Groups rows by the set of columns they carry (one statement per group).
fn by_columns(rows: Vec<Row>) -> Vec<(Vec<&'static FieldDescriptor>, Vec<Row>)> {
    let mut groups: Vec<(Vec<&'static FieldDescriptor>, Vec<Row>)> = Vec::new();
    for row in rows {
        let fields: Vec<&'static FieldDescriptor> = row.cells.iter().map(|(f, _)| *f).collect();
        match groups.iter_mut().find(|(g, _)| {
            g.len() == fields.len() && g.iter().zip(&fields).all(|(a, b)| a.column == b.column)
        }) {
            Some((_, group)) => group.push(row),
            None => groups.push((fields, vec![row])),
        }
    }
    groups
}

/// Inserts or updates full rows (the newer state wins). Returns the rows written.
pub async fn upsert_rows(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    rows: Vec<Row>,
) -> Result<u64, tokio_postgres::Error> {
    let mut written = 0;
    for (fields, group) in by_columns(dedupe_newest(rows)) {
        let mut with_id: Vec<&FieldDescriptor> = fields;
        if !with_id.iter().any(|f| f.column == "sfid") {
            if let Some(id) = mapping.field("Id") {
                with_id.insert(0, id);
            }
        }
        let guarded = group.iter().any(|row| row.stamp.is_some());
        let sql = upsert_sql(mapping, &with_id, guarded);
        written += tx.execute(&sql, &[&batch_json(&group)]).await?;
    }
    Ok(written)
}

/// Applies partial rows to the rows that exist and are not newer. Returns the sfids that are not
/// in the table at all (the caller fetches those records whole).
pub async fn update_rows(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    rows: Vec<Row>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = dedupe_newest(rows);
    let sfids: Vec<String> = rows.iter().map(|r| r.sfid.clone()).collect();
    // Typed parameters: one round trip per statement instead of a prepare and an execute (the
    // change-event path runs these once per event).
    let present: Vec<String> = tx
        .query_typed(
            &format!(
                "SELECT sfid FROM {} WHERE sfid = ANY($1)",
                qualified(mapping)
            ),
            &[(&sfids, Type::VARCHAR_ARRAY)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (fields, group) in by_columns(rows) {
        let fields: Vec<&FieldDescriptor> =
            fields.into_iter().filter(|f| f.column != "sfid").collect();
        if fields.is_empty() {
            continue;
        }
        tx.query_typed(
            &update_sql(mapping, &fields, group.len()),
            &[(&batch_json(&group), Type::JSONB)],
        )
        .await?;
    }
    Ok(sfids.into_iter().filter(|s| !present.contains(s)).collect())
}

/// Deletes records (hard) or marks them deleted (soft), unless the stored row is newer.
pub async fn delete_rows(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    sfids: &[String],
    stamp: Option<NaiveDateTime>,
) -> Result<u64, tokio_postgres::Error> {
    let table = qualified(mapping);
    match mapping.sync.deletes {
        DeleteMode::Hard => {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE sfid = ANY($1) \
                     AND (systemmodstamp IS NULL OR $2::timestamp IS NULL OR systemmodstamp <= $2)"
                ),
                &[&sfids, &stamp],
            )
            .await
        }
        DeleteMode::Soft => {
            tx.execute(
                &format!(
                    "UPDATE {table} SET isdeleted = true, systemmodstamp = coalesce($2, systemmodstamp) \
                     WHERE sfid = ANY($1) AND isdeleted IS DISTINCT FROM true \
                     AND (systemmodstamp IS NULL OR $2::timestamp IS NULL OR systemmodstamp <= $2)"
                ),
                &[&sfids, &stamp],
            )
            .await
        }
    }
}

/// Deletes (hard) or marks deleted (soft) records, each unless the stored row is newer than its
/// own stamp (`None`: whatever the stored row's), in one statement. A record named twice keeps
/// its latest stamp.
pub async fn delete_stamped(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    deletes: &[(String, Option<NaiveDateTime>)],
) -> Result<u64, tokio_postgres::Error> {
    let (sfids, stamps) = latest_stamps(deletes);
    let table = qualified(mapping);
    let guard = "(t.systemmodstamp IS NULL OR d.stamp IS NULL OR t.systemmodstamp <= d.stamp)";
    let from = "unnest($1::text[], $2::timestamp[]) AS d(sfid, stamp)";
    let sql = match mapping.sync.deletes {
        DeleteMode::Hard => format!("DELETE FROM {table} AS t USING {from} WHERE t.sfid = d.sfid AND {guard}"),
        DeleteMode::Soft => format!(
            "UPDATE {table} AS t SET isdeleted = true, systemmodstamp = coalesce(d.stamp, t.systemmodstamp) \
             FROM {from} WHERE t.sfid = d.sfid AND t.isdeleted IS DISTINCT FROM true AND {guard}"
        ),
    };
    tx.execute_typed(
        &sql,
        &[(&sfids, Type::TEXT_ARRAY), (&stamps, Type::TIMESTAMP_ARRAY)],
    )
    .await
}

/// One entry per record with its latest stamp, `None` (unconditional) winning (pure).
pub fn latest_stamps(
    deletes: &[(String, Option<NaiveDateTime>)],
) -> (Vec<String>, Vec<Option<NaiveDateTime>>) {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(deletes.len());
    let mut sfids: Vec<String> = Vec::with_capacity(deletes.len());
    let mut stamps: Vec<Option<NaiveDateTime>> = Vec::with_capacity(deletes.len());
    for (sfid, stamp) in deletes {
        match index.get(sfid.as_str()) {
            Some(&i) => {
                stamps[i] = match (stamps[i], stamp) {
                    (Some(a), Some(b)) => Some(a.max(*b)),
                    _ => None,
                }
            }
            None => {
                index.insert(sfid, sfids.len());
                sfids.push(sfid.clone());
                stamps.push(*stamp);
            }
        }
    }
    (sfids, stamps)
}

/// Removes records that no longer match the mapping's filter (deleted, or `isdeleted = true`
/// under soft deletes), whatever their stamp.
pub async fn remove_unmatched(
    tx: &Transaction<'_>,
    mapping: &MappingDescriptor,
    sfids: &[String],
) -> Result<u64, tokio_postgres::Error> {
    delete_rows(tx, mapping, sfids, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account() -> &'static MappingDescriptor {
        &super::super::testing::ACCOUNT
    }

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
        let row = row_from_record(account(), &record).unwrap();
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
        let err = row_from_record(account(), &record).unwrap_err();
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
        let change = row_from_event(account(), &header, &payload, "001000000000002AAA").unwrap();
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

    fn line_event(change_type: &str, changed: Value, fields: Value) -> Value {
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
        payload
    }

    #[test]
    fn relationship_columns_are_read_from_the_nested_parent_of_a_query_result() {
        let line = &super::super::testing::INVOICE_LINE;
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
        let line = &super::super::testing::INVOICE_LINE;
        let payload = line_event(
            "CREATE",
            json!([]),
            json!({"Invoice__c": "a01000000000001AAA", "Description__c": "L1"}),
        );
        let header = ChangeEventHeader::from_payload(&payload).unwrap();
        let change = row_from_event(line, &header, &payload, "a02000000000001AAA").unwrap();
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
        let line = &super::super::testing::INVOICE_LINE;
        let payload = line_event(
            "UPDATE",
            json!(["Invoice__c"]),
            json!({"Invoice__c": "a01000000000002AAA"}),
        );
        let header = ChangeEventHeader::from_payload(&payload).unwrap();
        let change = row_from_event(line, &header, &payload, "a02000000000001AAA").unwrap();
        let EventChange::Partial { refetch, .. } = change else {
            panic!("expected a partial change, got {change:?}")
        };
        assert_eq!(refetch, ["Invoice__r.External_Id__c"]);
        let other = line_event(
            "UPDATE",
            json!(["Description__c"]),
            json!({"Description__c": "x"}),
        );
        let header = ChangeEventHeader::from_payload(&other).unwrap();
        let change = row_from_event(line, &header, &other, "a02000000000001AAA").unwrap();
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

    #[test]
    fn a_record_deleted_twice_in_a_batch_keeps_its_latest_stamp() {
        let at = |secs| DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc());
        let (sfids, stamps) = latest_stamps(&[
            ("001A".into(), at(2)),
            ("001B".into(), at(1)),
            ("001A".into(), at(3)),
            ("001B".into(), None),
            ("001A".into(), at(1)),
        ]);
        assert_eq!(sfids, ["001A", "001B"]);
        assert_eq!(
            stamps,
            [at(3), None],
            "an unconditional delete stays unconditional"
        );
    }

    #[test]
    fn upserts_never_let_an_older_state_win() {
        let fields: Vec<&FieldDescriptor> = account().fields.iter().take(3).collect();
        let sql = upsert_sql(account(), &fields, true);
        assert!(sql.contains("ON CONFLICT (sfid) DO UPDATE"));
        assert!(sql.contains("t.systemmodstamp <= EXCLUDED.systemmodstamp"));
        assert!(!upsert_sql(account(), &fields, false).contains("WHERE"));
        let sql = update_sql(account(), &fields[1..], 3);
        assert!(sql.contains("t.systemmodstamp <= x._fs_stamp"));
        assert!(sql.contains("LIMIT 3) AS x"));
        assert!(sql.contains("RETURNING t.sfid"));
    }
}
