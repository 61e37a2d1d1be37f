//! Claiming: the `NEW` trigger-log entries a round takes, the rows their writes are built from,
//! and the parents a child's write waits for.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tokio_postgres::GenericClient;

use crate::adapter::{hstore, MappingDescriptor};
use crate::engine::system::quote_ident;
use crate::engine::writer::entry::{Action, LogEntry, RowNow};

use super::{has_column, Store};

/// What [`Store::claim`] took: entries to send, and entries no write can be made of.
#[derive(Debug, Default)]
pub(crate) struct Claimed {
    pub entries: Vec<LogEntry>,
    pub unusable: Vec<Unusable>,
}

/// A `_trigger_log` entry written by hand (not by forcesync's trigger) that names no row or
/// no known action: it is archived `FAILED` with this message instead of being looked at by
/// every claim forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unusable {
    pub id: i32,
    pub table: String,
    pub message: String,
}

/// An entry's `values` (Heroku Connect's hstore text) as the typed columns a write is built
/// from: an insert's null columns are left out (a create sends no nulls), an update's stay (they
/// clear the field), a delete carries none. Text that is not hstore makes the entry unusable,
/// with the parser's reason (pure).
pub(crate) fn entry_values(
    mappings: &[&MappingDescriptor],
    table: &str,
    action: Action,
    values: Option<&str>,
) -> Result<Map<String, Value>, String> {
    if action == Action::Delete {
        return Ok(Map::new());
    }
    let mapping = mappings.iter().find(|m| m.table == table).copied();
    hstore::typed_text(mapping, values.unwrap_or_default(), action == Action::Insert).map_err(|e| {
        format!("not sent: the entry's values are {e} (Heroku Connect's format is \"column\"=>\"value\", ...)")
    })
}

/// Why an entry cannot be sent (pure).
pub(crate) fn unusable_message(action: Option<&str>, record_id: Option<i32>) -> String {
    match (action, record_id) {
        (_, None) => "not sent: the entry names no row (record_id is NULL)".to_owned(),
        (Some(action), Some(_)) => format!(
            "not sent: unknown action {action:?} (the trigger log holds INSERT, UPDATE or DELETE)"
        ),
        (None, Some(_)) => "not sent: the entry has no action".to_owned(),
    }
}

impl Store {
    /// Takes up to `limit` `NEW` entries of `tables` with ids above `after`, oldest first, leaving out records that
    /// have a write in the journal or in a batch row (their next change waits for its outcome),
    /// and returns them.
    ///
    /// The entries stay `NEW`: the batch rows the caller writes in the same transaction are
    /// what marks them taken (rewriting every entry as `PENDING` cost more than the rest of the
    /// claim together). Claims of one schema are serialized by a transaction-level advisory lock,
    /// so a second writer's claim starts after the first one's batch rows are committed and
    /// sees them.
    pub(crate) async fn claim<C: GenericClient>(
        &self,
        db: &C,
        mappings: &[&MappingDescriptor],
        limit: i64,
        after: i32,
    ) -> Result<Claimed, tokio_postgres::Error> {
        let tables: Vec<&str> = mappings.iter().map(|m| m.table).collect();
        // `enable_sort = off` for this transaction: right after an app's bulk insert the log's
        // statistics still say it is empty, and the planner then reads every pending entry
        // through the `(state, table_name)` index and sorts them, for each claim; the
        // `(state, id)` index gives them in order, and the scan stops at `limit`.
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('forcesync.writer.claim.' || $1::text, 0)),
                    set_config('enable_sort', 'off', true)",
            &[&self.schema],
        )
        .await?;
        let rows = db
            .query(
                &format!(
                    // One pass in id order (an index gives it, sorts are off), stopping at
                    // `limit`. Picking the ids first and reading their entries by id after read
                    // each entry twice (23 against 36 ms for 10,000 entries in `psql`), and
                    // when the log's statistics said it was empty the planner looked the ids up
                    // through `(state, id)` instead of the primary key: 31 s for 10,000 of
                    // 30,000 entries.
                    "SELECT l.id, l.table_name, l.record_id, l.action, l.sfid, l.\"values\"
                     FROM {log} l
                     WHERE l.state = 'NEW' AND l.table_name = ANY($1) AND l.id > $3
                       AND NOT EXISTS (SELECT 1 FROM {journal} j
                                       WHERE j.table_name = l.table_name AND j.record_id = l.record_id)
                       AND (l.table_name, l.record_id) NOT IN
                           (SELECT b.table_name, unnest(b.record_ids) FROM {batch} b
                            WHERE b.table_name = ANY($1))
                     ORDER BY l.id LIMIT $2",
                    log = self.log,
                    journal = self.journal,
                    batch = self.batch
                ),
                &[&tables, &limit, &after],
            )
            .await?;
        let mut claimed = Claimed::default();
        for r in &rows {
            let id: i32 = r.get("id");
            let table: String = r.get("table_name");
            let action: Option<String> = r.get("action");
            let record_id: Option<i32> = r.get("record_id");
            let parsed = action.as_deref().and_then(Action::parse);
            let values: Option<String> = r.get("values");
            match (record_id, parsed) {
                (Some(record_id), Some(action)) => {
                    match entry_values(mappings, &table, action, values.as_deref()) {
                        Ok(values) => claimed.entries.push(LogEntry {
                            id,
                            table,
                            record_id,
                            action,
                            sfid: r.get("sfid"),
                            values,
                        }),
                        Err(message) => claimed.unusable.push(Unusable { id, table, message }),
                    }
                }
                (record_id, _) => claimed.unusable.push(Unusable {
                    id,
                    table,
                    message: unusable_message(action.as_deref(), record_id),
                }),
            }
        }
        // In id order already: the statement reads them so.
        Ok(claimed)
    }

    /// The current rows of these ids: their `sfid`, and every non-null column but `_hc_lastop`
    /// / `_hc_err` for the ids in `with_values` (the only rows whose values a write is built from:
    /// see [`crate::engine::writer::coalesce`]); the others carry no values.
    pub(crate) async fn rows<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        ids: &[i32],
        with_values: &[i32],
    ) -> Result<HashMap<i32, RowNow>, tokio_postgres::Error> {
        let rows = db
            .query(
                &format!(
                    "SELECT t.id, t.sfid,
                            CASE WHEN t.id = ANY($2)
                                 THEN jsonb_strip_nulls(to_jsonb(t) - '_hc_lastop' - '_hc_err') END AS row_values
                     FROM unnest($1::int[]) AS u(i) JOIN {} t ON t.id = u.i",
                    self.table(mapping)
                ),
                &[&ids, &with_values],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let values: Option<Value> = r.get("row_values");
                (
                    r.get("id"),
                    RowNow {
                        sfid: r.get("sfid"),
                        values: match values {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        },
                    },
                )
            })
            .collect())
    }

    /// Of `values` (external IDs in `parent_table.parent_column`), those whose parent row has
    /// no `sfid` yet and a write coming: a captured change outside `claimed` (nobody sends it
    /// yet), or, when `another_writer` sends the parent's mapping, a write of its in flight. A
    /// child naming such a parent waits for it: sent first, Salesforce would fail the child
    /// for an external ID it does not know yet. A parent table that is not there, or lacks the
    /// column, holds nothing back.
    pub(crate) async fn unsent_parents<C: GenericClient>(
        &self,
        db: &C,
        parent_table: &str,
        parent_column: &str,
        values: &[String],
        claimed: &[i32],
        another_writer: bool,
    ) -> Result<std::collections::HashSet<String>, tokio_postgres::Error> {
        let qualified = format!("{}.{}", self.schema, quote_ident(parent_table));
        let mapped = has_column(db, &qualified, parent_column).await?;
        if !mapped || values.is_empty() {
            return Ok(Default::default());
        }
        let rows = db
            .query(
                &format!(
                    "SELECT DISTINCT p.{column}::text AS parent_key FROM {qualified} p
                     WHERE p.{column}::text = ANY($1) AND p.sfid IS NULL
                       AND (EXISTS (SELECT 1 FROM {log} l
                                    WHERE l.table_name = $2 AND l.record_id = p.id
                                      AND l.state = 'NEW' AND NOT l.id = ANY($3))
                            OR ($4 AND (EXISTS (SELECT 1 FROM {journal} j
                                                WHERE j.table_name = $2 AND j.record_id = p.id)
                                        OR EXISTS (SELECT 1 FROM {batch} b
                                                   WHERE b.table_name = $2 AND p.id = ANY(b.record_ids)))))",
                    column = quote_ident(parent_column),
                    log = self.log,
                    journal = self.journal,
                    batch = self.batch,
                ),
                &[&values, &parent_table, &claimed, &another_writer],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get("parent_key")).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::{entry_values, unusable_message, Action};
    use crate::engine::testing::ACCOUNT;
    use serde_json::json;

    #[test]
    fn entry_values_are_read_from_heroku_connects_hstore_text_typed_by_column() {
        let text = r#""id"=>"7", "name"=>"O\"Brien", "phone"=>NULL, "annualrevenue"=>"12.5", "isdeleted"=>"f", "systemmodstamp"=>"2024-01-02 03:04:05""#;
        let insert = entry_values(&[&ACCOUNT], "account", Action::Insert, Some(text)).unwrap();
        assert_eq!(
            serde_json::Value::Object(insert),
            json!({"id": "7", "name": "O\"Brien", "annualrevenue": 12.5, "isdeleted": false,
                   "systemmodstamp": "2024-01-02T03:04:05"}),
            "an insert leaves its nulls out"
        );
        let update = entry_values(&[&ACCOUNT], "account", Action::Update, Some(text)).unwrap();
        assert_eq!(update["phone"], serde_json::Value::Null, "an update clears");
        assert!(
            entry_values(&[&ACCOUNT], "account", Action::Delete, Some("garbage"))
                .unwrap()
                .is_empty()
        );
        assert!(entry_values(&[&ACCOUNT], "account", Action::Update, None)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn values_that_are_not_hstore_text_say_so() {
        let err = entry_values(
            &[&ACCOUNT],
            "account",
            Action::Update,
            Some(r#"{"name": "Acme"}"#),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "not sent: the entry's values are not hstore text: expected `=>` at byte 9 \
             (Heroku Connect's format is \"column\"=>\"value\", ...)"
        );
    }

    #[test]
    fn an_entry_that_cannot_be_sent_says_why() {
        assert!(unusable_message(Some("INSERT"), None).contains("names no row"));
        assert!(unusable_message(None, None).contains("names no row"));
        assert_eq!(
            unusable_message(Some("MERGE"), Some(3)),
            "not sent: unknown action \"MERGE\" (the trigger log holds INSERT, UPDATE or DELETE)"
        );
        assert!(unusable_message(None, Some(3)).contains("no action"));
    }
}
