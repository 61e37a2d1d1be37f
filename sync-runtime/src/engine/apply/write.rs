//! The statements that apply rows: set-based upserts and partial updates from one JSON batch
//! parameter (the SQL built by pure functions), deletes hard or soft; a stored row holding a later
//! Salesforce state is never overwritten.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::qualified;
use super::row::{dedupe_newest, Row};
use crate::adapter::{DeleteMode, FieldDescriptor, MappingDescriptor, PgType};
use crate::engine::system::quote_ident;

/// The record-set column type used to read a field out of the JSON batch parameter.
fn recordset_type(field: &FieldDescriptor) -> String {
    match field.pg_type {
        PgType::Varchar(_) | PgType::Text => "text".into(),
        other => other.sql(),
    }
}

/// The column list of `jsonb_to_recordset(…) AS x(…)` for `fields` (`"name" text, …`).
fn recordset_columns(fields: &[&FieldDescriptor]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {}", quote_ident(f.column), recordset_type(f)))
        .collect::<Vec<_>>()
        .join(", ")
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
    let defs = recordset_columns(fields);
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
    // Rows left with nothing but their sfid (every field held back for the app's unsent
    // changes) only insert a record Postgres does not have yet.
    let on_conflict = if sets.is_empty() {
        "DO NOTHING".to_owned()
    } else {
        format!("DO UPDATE SET {}{guard}", sets.join(", "))
    };
    format!(
        "INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM jsonb_to_recordset($1::jsonb) AS x({defs}, _fs_stamp timestamp) \
         ON CONFLICT (sfid) {on_conflict}",
        cols = cols.join(", "),
    )
}

/// `UPDATE … FROM jsonb_to_recordset($1) … WHERE the stored row is not newer RETURNING sfid`.
///
/// `rows` (how many the batch holds) bounds the recordset: Postgres estimates 100 rows for
/// `jsonb_to_recordset`, and against a small or not yet analysed table it then hash-joins over a
/// sequential scan (once per change event); with the bound it looks each row up by `sfid`.
pub fn update_sql(mapping: &MappingDescriptor, fields: &[&FieldDescriptor], rows: usize) -> String {
    let table = qualified(mapping);
    let defs = recordset_columns(fields);
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
        .map(|r| r.get("sfid"))
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
    use crate::engine::testing::ACCOUNT;
    use chrono::DateTime;

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
        let fields: Vec<&FieldDescriptor> = ACCOUNT.fields.iter().take(3).collect();
        let sql = upsert_sql(&ACCOUNT, &fields, true);
        assert!(sql.contains("ON CONFLICT (sfid) DO UPDATE"));
        assert!(sql.contains("t.systemmodstamp <= EXCLUDED.systemmodstamp"));
        assert!(!upsert_sql(&ACCOUNT, &fields, false).contains("WHERE"));
        let sql = update_sql(&ACCOUNT, &fields[1..], 3);
        assert!(sql.contains("t.systemmodstamp <= x._fs_stamp"));
        assert!(sql.contains("LIMIT 3) AS x"));
        assert!(sql.contains("RETURNING t.sfid"));
    }

    #[test]
    fn a_row_left_with_nothing_but_its_sfid_only_inserts_what_postgres_lacks() {
        let id: Vec<&FieldDescriptor> = ACCOUNT
            .fields
            .iter()
            .filter(|f| f.column == "sfid")
            .collect();
        let sql = upsert_sql(&ACCOUNT, &id, true);
        assert!(sql.ends_with("ON CONFLICT (sfid) DO NOTHING"), "{sql}");
    }
}
