//! Heroku Connect's `PENDING` entries at adoption: it was sending them when the connection was
//! paused, so each may or may not have reached Salesforce. They are handed to the writer as a
//! crash would have left its own writes:
//!
//! - updates and deletes (and creates of a mapping with an `upsert_key`, which upsert by
//!   external ID) are idempotent: they go back to `NEW` and are sent again;
//! - a create without an upsert key is journaled as in flight, for reconciliation (the writer's
//!   step 1, [`super::super::writer::reconcile`]): the records Salesforce created since the
//!   entry was captured are matched against the row's values, a match is adopted (its `sfid`
//!   written back, never a duplicate), and only a create Salesforce does not have is sent again.
//!
//! The body journaled is the row as it is now (a later change of the row is a later entry,
//! `NEW`, sent after the reconciliation).

use serde_json::{Map, Value};
use tokio_postgres::Transaction;

use crate::adapter::{MappingDescriptor, Registry};
use crate::engine::system::quote_ident;
use crate::engine::writer::coalesce;
use crate::engine::writer::entry::{group_by_record, Action, LogEntry, RowNow};
use crate::engine::writer::plan::{self, PlanConfig, Step};
use crate::engine::writer::store::{Store, RECONCILE};

use super::AdoptError;

/// What became of Heroku Connect's `PENDING` entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Handled {
    /// Creates journaled for reconciliation.
    pub reconciled: u64,
    /// Entries back to `NEW`, sent again as they are.
    pub resent: u64,
}

/// Hands every `PENDING` entry of a read-write mapping to the writer (inside adoption's
/// transaction, after the engine's tables exist).
pub async fn hand_over(tx: &Transaction<'_>, registry: &Registry) -> Result<Handled, AdoptError> {
    let schema = quote_ident(registry.schema);
    let store = Store::new(registry.schema);
    let mut handled = Handled::default();
    for mapping in registry.mappings.iter().copied() {
        if !mapping.is_read_write() {
            continue;
        }
        let table = format!("{schema}.{}", quote_ident(mapping.table));
        let pending = tx
            .query(
                &format!(
                    "SELECT l.id, l.record_id, l.action::text AS action,
                            t.id IS NOT NULL AND t.sfid IS NULL AS unsent_row,
                            CASE WHEN t.id IS NOT NULL
                                 THEN jsonb_strip_nulls(to_jsonb(t) - '_hc_lastop' - '_hc_err')
                            END AS row_values,
                            l.created_at
                     FROM {schema}._trigger_log l LEFT JOIN {table} t ON t.id = l.record_id
                     WHERE l.state = 'PENDING' AND l.table_name = $1 ORDER BY l.id"
                ),
                &[&mapping.table],
            )
            .await?;
        if pending.is_empty() {
            continue;
        }
        let mut creates = Vec::new();
        let mut earliest = None;
        for row in &pending {
            let action: Option<String> = row.get("action");
            let unsent_row: bool = row.get::<_, Option<bool>>("unsent_row").unwrap_or(false);
            let (Some(record_id), Some(Action::Insert)) = (
                row.get::<_, Option<i32>>("record_id"),
                action.as_deref().and_then(Action::parse),
            ) else {
                continue;
            };
            if !unsent_row || mapping.upsert_key.is_some() {
                continue;
            }
            let values = match row.get::<_, Option<Value>>("row_values") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let at: Option<chrono::DateTime<chrono::Utc>> = row.get("created_at");
            earliest = earliest.min(at).or(at);
            creates.push(LogEntry {
                id: row.get("id"),
                table: mapping.table.to_owned(),
                record_id,
                action: Action::Insert,
                sfid: None,
                values,
            });
        }
        handled.reconciled += journal_creates(tx, &store, mapping, creates, earliest).await?;
        handled.resent += tx
            .execute(
                &format!(
                    "UPDATE {schema}._trigger_log SET state = 'NEW', updated_at = now()
                     WHERE state = 'PENDING' AND table_name = $1"
                ),
                &[&mapping.table],
            )
            .await?;
    }
    handled.resent -= handled.reconciled.min(handled.resent);
    Ok(handled)
}

/// Journals these creates as in flight since `sent_at`, to be reconciled; returns how many
/// entries they cover.
async fn journal_creates(
    tx: &Transaction<'_>,
    store: &Store,
    mapping: &'static MappingDescriptor,
    creates: Vec<LogEntry>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<u64, AdoptError> {
    if creates.is_empty() {
        return Ok(0);
    }
    let rows: std::collections::HashMap<i32, Map<String, Value>> = creates
        .iter()
        .map(|e| (e.record_id, e.values.clone()))
        .collect();
    let groups = group_by_record(creates, |_, id| {
        rows.get(&id).map(|values| RowNow {
            sfid: None,
            values: values.clone(),
        })
    });
    let ops = groups.iter().map(coalesce::coalesce).collect();
    let config = PlanConfig {
        bulk_threshold: usize::MAX,
        ..PlanConfig::default()
    };
    let planned = plan::plan(&[mapping], ops, config);
    let writes: Vec<&plan::Write> = planned.steps.iter().flat_map(Step::writes).collect();
    let entries: u64 = writes.iter().map(|w| w.entry_ids.len() as u64).sum();
    let ids = store.journal(tx, mapping.object, &writes).await?;
    tx.execute(
        &format!(
            "UPDATE {}._forcesync_write_journal
             SET state = '{RECONCILE}', sent_at = coalesce($2, sent_at),
                 last_error = 'Heroku Connect was sending it when the connection was paused'
             WHERE id = ANY($1)",
            quote_ident(mapping.schema)
        ),
        &[&ids, &sent_at],
    )
    .await?;
    Ok(entries)
}
