//! Settling a Salesforce change against the app's unsent changes to the same rows: the rows are
//! locked first ([`crate::engine::row_lock`]), then the pending `_trigger_log` entries read, and
//! each overlapping field resolved by the mapping's conflict policy ([`crate::engine::conflict`]):
//! the columns the app keeps are dropped from the incoming rows, the pending changes Salesforce
//! wins are dropped from the log, and every conflict is recorded in `_forcesync_conflicts`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::Origin;
use crate::adapter::{hstore, FieldDescriptor, MappingDescriptor, PgType, WriteKind};
use crate::engine::apply::{self, Row};
use crate::engine::conflict::{self, IncomingChange, PendingChange, Winner};
use crate::engine::system::quote_ident;
use crate::engine::writer::store::Store;
use crate::engine::{EngineError, MappingCtx};

/// Which of these records have unsent application changes (`_trigger_log` entries not yet
/// sent): one query for a batch. Read-only mappings have none.
/// Locks the app's rows a Salesforce change is about to write before their pending changes are
/// read ([`super::row_lock`]: in `id` order, giving way to the app): an app transaction changing
/// one of them either committed before (its change is pending and settled as a conflict) or
/// waits until this transaction commits (and its change is captured against the new values).
/// Without it, an app change committing between the pending check and the write would be
/// overwritten unseen in Postgres while still being sent to Salesforce. Read-only mappings have
/// no app changes to keep.
pub(super) async fn lock_app_rows(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    sfids: &[&str],
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    if !mapping.is_read_write() || sfids.is_empty() {
        return Ok(());
    }
    crate::engine::row_lock::lock_rows(tx, &apply::qualified(mapping), "sfid", &sfids).await?;
    Ok(())
}

pub(super) async fn with_pending_changes(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    sfids: &[&str],
) -> Result<std::collections::HashSet<String>, EngineError> {
    let mapping = ctx.mapping;
    if !mapping.is_read_write() || sfids.is_empty() {
        return Ok(Default::default());
    }
    Ok(tx
        .query_typed(
            &format!(
                "SELECT DISTINCT t.sfid \
                 FROM {schema}._trigger_log l JOIN {table} t ON t.id = l.record_id \
                 WHERE l.table_name = $1 AND l.state IN ('NEW', 'PENDING') \
                   AND l.action IN ('INSERT', 'UPDATE') AND t.sfid = ANY($2)",
                schema = quote_ident(mapping.schema),
                table = apply::qualified(mapping)
            ),
            &[
                (&mapping.table, Type::VARCHAR),
                (&sfids, Type::VARCHAR_ARRAY),
            ],
        )
        .await?
        .iter()
        .map(|r| r.get("sfid"))
        .collect())
}

/// A pending application change read from `_trigger_log`.
struct Pending {
    log_id: i32,
    values: serde_json::Map<String, Value>,
    old: serde_json::Map<String, Value>,
    created_at: DateTime<Utc>,
    /// Sent by the writer, its answer not settled.
    sent: bool,
}

/// Resolves overlaps between incoming rows and unsent application changes: drops the columns the
/// app keeps from the rows, drops the overlapping pending changes Salesforce wins, records every
/// conflict. `origin` is `None` for full records read by query (whose changed fields are those
/// differing from the value the app changed from).
pub(super) async fn settle_conflicts(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    mut rows: Vec<Row>,
    origin: Option<Origin>,
) -> Result<(Vec<Row>, u64), EngineError> {
    let mapping = ctx.mapping;
    if !mapping.is_read_write() {
        return Ok((rows, 0));
    }
    let schema = quote_ident(mapping.schema);
    let sfids: Vec<&str> = rows.iter().map(|r| r.sfid.as_str()).collect();
    // Typed parameters: one round trip per event instead of a prepare and an execute. Whether
    // an entry is in flight is read once for all of them (a batch row's writes are JSON: read
    // once per row, not once per entry).
    let pending_rows = tx
        .query_typed(
            &format!(
                "WITH p AS MATERIALIZED ( \
                     SELECT t.sfid, l.id, l.record_id, l.\"values\", l.old, l.created_at \
                     FROM {schema}._trigger_log l JOIN {table} t ON t.id = l.record_id \
                     WHERE l.table_name = $1 AND l.state IN ('NEW', 'PENDING') \
                       AND l.action IN ('INSERT', 'UPDATE') AND t.sfid = ANY($2)) \
                 SELECT p.sfid, p.id, p.\"values\", p.old, p.created_at, \
                        p.id IN ({sent}) AS sent \
                 FROM p ORDER BY p.id",
                table = apply::qualified(mapping),
                sent = Store::new(mapping.schema)
                    .entries_in_flight_sql("$1", "SELECT record_id FROM p"),
            ),
            &[
                (&mapping.table, Type::VARCHAR),
                (&sfids, Type::VARCHAR_ARRAY),
            ],
        )
        .await?;
    if pending_rows.is_empty() {
        return Ok((rows, 0));
    }
    let mut pending: HashMap<String, Vec<Pending>> = HashMap::new();
    for r in &pending_rows {
        let values: Option<String> = r.get("values");
        let old: Option<String> = r.get("old");
        let sfid: String = r.get("sfid");
        pending.entry(sfid).or_default().push(Pending {
            log_id: r.get("id"),
            values: payload(mapping, values.as_deref()),
            old: payload(mapping, old.as_deref()),
            created_at: r.get("created_at"),
            sent: r.get("sent"),
        });
    }
    let mut recorded = 0;
    for row in &mut rows {
        let Some(entries) = pending.get(&row.sfid) else {
            continue;
        };
        let changes: Vec<PendingChange> = entries
            .iter()
            .flat_map(|p| {
                p.values.iter().map(move |(column, value)| PendingChange {
                    column: column.clone(),
                    value: value.clone(),
                    changed_at: p.created_at,
                    trigger_log_id: p.log_id,
                    // Sent means in the body: a field no write sends (a formula) never was.
                    sent: p.sent
                        && mapping.field_by_column(column).is_some_and(|f| {
                            f.sent_on(WriteKind::Update) || f.sent_on(WriteKind::Create)
                        }),
                })
            })
            .collect();
        // What Salesforce changed: every column of an event; for a full record, the columns
        // whose Salesforce value differs from the value the app changed them from.
        let first_old = entries.first().map(|p| &p.old);
        let incoming: Vec<IncomingChange> = row
            .cells
            .iter()
            .filter(|(field, text)| {
                origin.is_some()
                    || first_old
                        .and_then(|old| old.get(field.column))
                        .is_none_or(|old| !same_value(field, old, text.as_deref()))
            })
            .map(|(field, text)| IncomingChange {
                column: field.column.to_owned(),
                value: text.clone().map_or(Value::Null, Value::String),
            })
            .collect();
        // For a record read by query, Salesforce's change time is its SystemModstamp.
        let changed_at = origin.map_or_else(
            || {
                row.cells
                    .iter()
                    .find(|(f, _)| f.column == "systemmodstamp")
                    .and_then(|(_, v)| v.as_deref())
                    .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f").ok())
                    .map_or_else(Utc::now, |s| s.and_utc())
            },
            |o| o.changed_at,
        );
        let decisions = conflict::resolve(
            mapping.sync.conflict,
            origin.is_some_and(|o| o.own_write),
            changed_at,
            &changes,
            &incoming,
            |column, stored, incoming| {
                mapping
                    .field_by_column(column)
                    .map_or(stored == incoming, |field| {
                        same_value(field, stored, incoming.as_str())
                    })
            },
        );
        // A column the app changed and Salesforce did not (a full record carries every field):
        // the app's unsent value stays in the row.
        row.cells.retain(|(field, _)| {
            !changes.iter().any(|c| c.column == field.column)
                || incoming.iter().any(|i| i.column == field.column)
        });
        for decision in decisions {
            match decision.winner {
                Winner::Postgres => row.cells.retain(|(f, _)| f.column != decision.column),
                Winner::Salesforce => {
                    // The app's changes not sent yet lose the column; one sent keeps what it
                    // sent (it is archived as sent), and Salesforce's value follows it.
                    let ids: Vec<i32> = entries
                        .iter()
                        .filter(|p| !p.sent)
                        .map(|p| p.log_id)
                        .collect();
                    tx.execute(
                        &format!(
                            "UPDATE {schema}._trigger_log \
                             SET \"values\" = (\"values\"::public.hstore OPERATOR(public.-) $1::text)::text, updated_at = now(), \
                                 state = CASE WHEN action = 'UPDATE' \
                                              AND (\"values\"::public.hstore OPERATOR(public.-) $1::text)::text = '' \
                                              THEN 'IGNORED' ELSE state END \
                             WHERE id = ANY($2) AND state = 'NEW'"
                        ),
                        &[&decision.column, &ids],
                    )
                    .await?;
                    if decision.resend {
                        resend(ctx, tx, &row.sfid, &decision).await?;
                    }
                }
            }
            if decision.record {
                recorded += 1;
                tx.execute(
                    &format!(
                        "INSERT INTO {schema}._forcesync_conflicts \
                         (mapping, sfid, trigger_log_id, field, postgres_value, salesforce_value, policy, decision, \
                          postgres_changed_at, salesforce_changed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ),
                    &[
                        &mapping.object,
                        &row.sfid,
                        &decision.trigger_log_id,
                        &decision.column,
                        &decision.postgres_value,
                        &decision.salesforce_value,
                        &conflict::policy_name(mapping.sync.conflict),
                        &decision.as_str(),
                        &entries
                            .iter()
                            .find(|p| p.log_id == decision.trigger_log_id)
                            .map(|p| p.created_at),
                        &changed_at,
                    ],
                )
                .await?;
            }
        }
    }
    Ok((rows, recorded))
}

/// Salesforce's value of a field it won, written to Salesforce again after the app's change to
/// it the writer has in flight ([`conflict::Decision::resend`]): an entry in `_trigger_log` as
/// the capture trigger would have made of an app's update of that one column, which the writer
/// sends once the record's write in flight is settled.
async fn resend(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    sfid: &str,
    decision: &conflict::Decision,
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    let value = decision.salesforce_value.as_str();
    tx.execute(
        &format!(
            "INSERT INTO {schema}._trigger_log \
                 (txid, created_at, updated_at, state, action, table_name, record_id, sfid, \"values\") \
             SELECT txid_current(), clock_timestamp(), clock_timestamp(), 'NEW', 'UPDATE', $1, t.id, t.sfid, \
                    public.hstore($2::text, $3::text)::text \
             FROM {table} t WHERE t.sfid = $4",
            schema = quote_ident(mapping.schema),
            table = apply::qualified(mapping),
        ),
        &[&mapping.table, &decision.column, &value, &sfid],
    )
    .await?;
    Ok(())
}

/// A trigger-log payload (Heroku Connect's hstore text) as typed column values. Text that is
/// not hstore counts as no change here; the writer fails such an entry visibly.
fn payload(mapping: &MappingDescriptor, text: Option<&str>) -> serde_json::Map<String, Value> {
    match text.map(hstore::parse) {
        Some(Ok(pairs)) => hstore::typed(Some(mapping), pairs, false),
        _ => serde_json::Map::new(),
    }
}

/// Whether a stored JSON value (a trigger-log payload typed by `hstore::typed`) and a Postgres
/// text are the same value.
fn same_value(field: &FieldDescriptor, stored: &Value, text: Option<&str>) -> bool {
    match (stored, text) {
        (Value::Null, None) => true,
        (Value::Null, Some(_)) | (_, None) => false,
        (Value::String(s), Some(t)) => match field.pg_type {
            PgType::Timestamp | PgType::Time => {
                let norm = |v: &str| {
                    v.replace('T', " ")
                        .trim_end_matches('Z')
                        .trim_end_matches('0')
                        .trim_end_matches('.')
                        .to_owned()
                };
                norm(s) == norm(t)
            }
            _ => s == t,
        },
        (Value::Number(n), Some(t)) => n
            .as_f64()
            .zip(t.parse::<f64>().ok())
            .is_some_and(|(a, b)| a == b),
        (Value::Bool(b), Some(t)) => b.to_string() == t,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::SfType;
    use serde_json::json;

    #[test]
    fn stored_and_incoming_values_compare_across_forms() {
        let ts = FieldDescriptor {
            sf_type: SfType::DateTime,
            pg_type: PgType::Timestamp,
            ..crate::adapter::testing::field("SystemModstamp")
        };
        assert!(same_value(
            &ts,
            &json!("2024-01-02T03:04:05"),
            Some("2024-01-02 03:04:05.000")
        ));
        let num = FieldDescriptor {
            sf_type: SfType::Double,
            pg_type: PgType::DoublePrecision,
            ..crate::adapter::testing::field("AnnualRevenue")
        };
        assert!(same_value(&num, &json!(10.0), Some("10")));
        assert!(!same_value(&num, &json!(10.5), Some("10")));
        assert!(!same_value(&num, &Value::Null, Some("10")));
    }
}
