//! The writer's Postgres statements: claiming trigger-log entries, the write journal, writing
//! outcomes back (sfid, `_hc_lastop`, `_hc_err`), archiving and pruning. Every statement is set
//! based (`unnest` of arrays), so a round of thousands of records costs a handful of round trips.
//!
//! Engine writes to mapped tables run with `SET LOCAL forcesync.engine = 'on'`: the capture
//! triggers do not log them and the explicit `_hc_lastop` is kept.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::GenericClient;

use crate::adapter::{hstore, MappingDescriptor};
use crate::engine::system::quote_ident;

use super::entry::{Action, LogEntry, RowNow};
use super::plan::{CallKind, Write};

/// Journal states.
pub const SENDING: &str = "SENDING";
pub const RETRY: &str = "RETRY";
pub const RECONCILE: &str = "RECONCILE";

/// A journaled write: what was (or is about to be) sent for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    pub id: i64,
    pub write: Write,
    pub state: String,
    pub attempts: i32,
    pub sent_at: DateTime<Utc>,
}

const JOURNAL_COLUMNS: &str =
    "id, table_name, record_id, kind, entry_ids, sfid, external_id, body, state, attempts, sent_at";

fn journal_row(r: &tokio_postgres::Row) -> Option<JournalRow> {
    let kind: String = r.get(3);
    let body: Value = r.get(7);
    Some(JournalRow {
        id: r.get(0),
        write: Write {
            table: r.get(1),
            record_id: r.get(2),
            entry_ids: r.get(4),
            kind: CallKind::parse(&kind)?,
            sfid: r.get(5),
            external_id: r.get(6),
            body: match body {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        },
        state: r.get(8),
        attempts: r.get(9),
        sent_at: r.get(10),
    })
}

/// How a record's entries end.
#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    pub table: String,
    pub record_id: i32,
    pub entry_ids: Vec<i32>,
    /// `_trigger_log` state: `SUCCESS`, `FAILED`, `IGNORED`.
    pub state: &'static str,
    /// The row's new `sfid` (created or adopted).
    pub sfid: Option<String>,
    /// `_hc_lastop` for the row (`None`: the row is left alone).
    pub lastop: Option<&'static str>,
    /// `_hc_err` JSON for a failed row.
    pub hc_err: Option<Value>,
    /// `_trigger_log.sf_message`.
    pub message: Option<String>,
    /// Whether a create or upsert made the record (so a row deleted meanwhile needs its delete
    /// sent).
    pub created: bool,
}

/// What [`Store::claim`] took: entries to send, and entries no write can be made of.
#[derive(Debug, Default)]
pub struct Claimed {
    pub entries: Vec<LogEntry>,
    pub unusable: Vec<Unusable>,
}

/// A `_trigger_log` entry written by hand (not by forcesync's trigger) that names no row or
/// no known action: it is archived `FAILED` with this message instead of being looked at by
/// every claim forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub id: i32,
    pub table: String,
    pub message: String,
}

/// An entry's `values` (Heroku Connect's hstore text) as the typed columns a write is built
/// from: an insert's null columns are left out (a create sends no nulls), an update's stay (they
/// clear the field), a delete carries none. Text that is not hstore makes the entry unusable,
/// with the parser's reason (pure).
pub fn entry_values(
    mappings: &[&MappingDescriptor],
    table: &str,
    action: Action,
    values: Option<&str>,
) -> Result<Map<String, Value>, String> {
    if action == Action::Delete {
        return Ok(Map::new());
    }
    let pairs = hstore::parse(values.unwrap_or_default()).map_err(|e| {
        format!("not sent: the entry's values are {e} (Heroku Connect's format is \"column\"=>\"value\", ...)")
    })?;
    let mapping = mappings.iter().find(|m| m.table == table).copied();
    Ok(hstore::typed(mapping, pairs, action == Action::Insert))
}

/// Why an entry cannot be sent (pure).
pub fn unusable_message(action: Option<&str>, record_id: Option<i32>) -> String {
    match (action, record_id) {
        (_, None) => "not sent: the entry names no row (record_id is NULL)".to_owned(),
        (Some(action), Some(_)) => format!(
            "not sent: unknown action {action:?} (the trigger log holds INSERT, UPDATE or DELETE)"
        ),
        (None, Some(_)) => "not sent: the entry has no action".to_owned(),
    }
}

/// Statements over one schema's trigger log, archive and journal.
#[derive(Debug, Clone)]
pub struct Store {
    schema: String,
    log: String,
    archive: String,
    journal: String,
    states: String,
}

impl Store {
    pub fn new(schema: &str) -> Store {
        let s = quote_ident(schema);
        Store {
            log: format!("{s}._trigger_log"),
            archive: format!("{s}._trigger_log_archive"),
            journal: format!("{s}._forcesync_write_journal"),
            states: format!("{s}._forcesync_mapping_state"),
            schema: s,
        }
    }

    fn table(&self, mapping: &MappingDescriptor) -> String {
        format!("{}.{}", self.schema, quote_ident(mapping.table))
    }

    /// Takes up to `limit` `NEW` entries of `tables` with ids above `after`, oldest first, leaving out records that
    /// have a write in the journal (their next change waits for its outcome), and returns them.
    ///
    /// The entries stay `NEW`: the journal rows the caller writes in the same transaction are
    /// what marks them taken (rewriting every entry as `PENDING` cost more than the rest of the
    /// claim together). Claims of one schema are serialized by a transaction-level advisory lock,
    /// so a second writer's claim starts after the first one's journal rows are committed and
    /// sees them.
    pub async fn claim<C: GenericClient>(
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
                    // The oldest ids first (narrow rows, in order from the `(state, id)`
                    // index), then their entries by primary key: ordering the entries
                    // themselves with their values spilled to disk, and a join let the planner
                    // scan the whole log for a few of its entries.
                    "WITH picked AS (
                         SELECT l.id FROM {log} l
                         WHERE l.state = 'NEW' AND l.table_name = ANY($1) AND l.id > $3
                           AND NOT EXISTS (SELECT 1 FROM {journal} j
                                           WHERE j.table_name = l.table_name AND j.record_id = l.record_id)
                         ORDER BY l.id LIMIT $2)
                     SELECT l.id, l.table_name, l.record_id, l.action, l.sfid, l.\"values\"
                     FROM {log} l WHERE l.id = ANY(ARRAY(SELECT id FROM picked))",
                    log = self.log,
                    journal = self.journal
                ),
                &[&tables, &limit, &after],
            )
            .await?;
        let mut claimed = Claimed::default();
        for r in &rows {
            let id: i32 = r.get(0);
            let table: String = r.get(1);
            let action: Option<String> = r.get(3);
            let record_id: Option<i32> = r.get(2);
            let parsed = action.as_deref().and_then(Action::parse);
            let values: Option<String> = r.get(5);
            match (record_id, parsed) {
                (Some(record_id), Some(action)) => {
                    match entry_values(mappings, &table, action, values.as_deref()) {
                        Ok(values) => claimed.entries.push(LogEntry {
                            id,
                            table,
                            record_id,
                            action,
                            sfid: r.get(4),
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
        claimed.entries.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    /// The current rows of these ids: their `sfid`, and every non-null column but `_hc_lastop`
    /// / `_hc_err` for the ids in `with_values` (the only rows whose values a write is built from:
    /// see [`super::coalesce`]); the others carry no values.
    pub async fn rows<C: GenericClient>(
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
                                 THEN jsonb_strip_nulls(to_jsonb(t) - '_hc_lastop' - '_hc_err') END
                     FROM unnest($1::int[]) AS u(i) JOIN {} t ON t.id = u.i",
                    self.table(mapping)
                ),
                &[&ids, &with_values],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let values: Option<Value> = r.get(2);
                (
                    r.get(0),
                    RowNow {
                        sfid: r.get(1),
                        values: match values {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        },
                    },
                )
            })
            .collect())
    }

    /// Journals writes about to be sent (state `SENDING`): from its commit on, the record's
    /// entries are taken (see [`Store::claim`]).
    /// Returns the journal id of each write, in order.
    pub async fn journal<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        writes: &[&Write],
    ) -> Result<Vec<i64>, tokio_postgres::Error> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let tables: Vec<&str> = writes.iter().map(|w| w.table.as_str()).collect();
        let records: Vec<i32> = writes.iter().map(|w| w.record_id).collect();
        let kinds: Vec<&str> = writes.iter().map(|w| w.kind.as_str()).collect();
        // Array literals (`{1,2}`), cast in SQL: unpacking a jsonb array per row cost more.
        let entries: Vec<String> = writes
            .iter()
            .map(|w| {
                let ids: Vec<String> = w.entry_ids.iter().map(i32::to_string).collect();
                format!("{{{}}}", ids.join(","))
            })
            .collect();
        let sfids: Vec<Option<&str>> = writes.iter().map(|w| w.sfid.as_deref()).collect();
        let external: Vec<Option<&str>> = writes.iter().map(|w| w.external_id.as_deref()).collect();
        let bodies: Vec<Value> = writes
            .iter()
            .map(|w| Value::Object(w.body.clone()))
            .collect();
        let rows = db
            .query(
                &format!(
                    "INSERT INTO {journal} (mapping, table_name, record_id, kind, entry_ids, sfid, external_id, body, state)
                     SELECT $1, u.t, u.r, u.k, u.e::int[], u.s, u.x, u.b, '{SENDING}'
                     FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[])
                          AS u(t, r, k, e, s, x, b)
                     RETURNING table_name, record_id, id",
                    journal = self.journal
                ),
                &[&mapping, &tables, &records, &kinds, &entries, &sfids, &external, &bodies],
            )
            .await?;
        // One journal row per record (unique index), so (table, record) finds each write's id.
        let ids: HashMap<(String, i32), i64> = rows
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
        Ok(writes
            .iter()
            .map(|w| ids[&(w.table.clone(), w.record_id)])
            .collect())
    }

    /// Journal rows of these tables in `states`, oldest first.
    pub async fn journaled<C: GenericClient>(
        &self,
        db: &C,
        tables: &[&str],
        states: &[&str],
    ) -> Result<Vec<JournalRow>, tokio_postgres::Error> {
        let rows = db
            .query(
                &format!(
                    "SELECT {JOURNAL_COLUMNS} FROM {} WHERE table_name = ANY($1) AND state = ANY($2) ORDER BY id",
                    self.journal
                ),
                &[&tables, &states],
            )
            .await?;
        Ok(rows.iter().filter_map(journal_row).collect())
    }

    /// Takes the journaled writes whose retry is due: moves them to `SENDING` and returns them,
    /// oldest first.
    pub async fn take_due_retries<C: GenericClient>(
        &self,
        db: &C,
        tables: &[&str],
    ) -> Result<Vec<JournalRow>, tokio_postgres::Error> {
        let rows = db
            .query(
                &format!(
                    "UPDATE {} SET state = '{SENDING}', sent_at = now(), not_before = NULL
                     WHERE table_name = ANY($1) AND state = '{RETRY}'
                       AND (not_before IS NULL OR not_before <= now())
                     RETURNING {JOURNAL_COLUMNS}",
                    self.journal
                ),
                &[&tables],
            )
            .await?;
        let mut rows: Vec<JournalRow> = rows.iter().filter_map(journal_row).collect();
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Moves journal rows to `state` (`SENDING` stamps the send time).
    pub async fn set_journal_state<C: GenericClient>(
        &self,
        db: &C,
        ids: &[i64],
        state: &str,
    ) -> Result<(), tokio_postgres::Error> {
        db.execute(
            &format!(
                "UPDATE {} SET state = $2::text,
                     sent_at = CASE WHEN $2::text = '{SENDING}' THEN now() ELSE sent_at END,
                     not_before = NULL
                 WHERE id = ANY($1)",
                self.journal
            ),
            &[&ids, &state],
        )
        .await
        .map(drop)
    }

    /// Schedules journal rows for another attempt after their delays (milliseconds).
    pub async fn schedule_retry<C: GenericClient>(
        &self,
        db: &C,
        retries: &[(i64, u64, String)],
    ) -> Result<(), tokio_postgres::Error> {
        if retries.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = retries.iter().map(|r| r.0).collect();
        let delays: Vec<i64> = retries
            .iter()
            .map(|r| i64::try_from(r.1).unwrap_or(i64::MAX))
            .collect();
        let reasons: Vec<&str> = retries.iter().map(|r| r.2.as_str()).collect();
        db.execute(
            &format!(
                "UPDATE {j} j SET state = '{RETRY}', attempts = j.attempts + 1,
                     not_before = now() + u.d * interval '1 millisecond', last_error = u.e
                 FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(i, d, e)
                 WHERE j.id = u.i",
                j = self.journal
            ),
            &[&ids, &delays, &reasons],
        )
        .await
        .map(drop)
    }

    /// Marks journal rows for reconciliation (their creates may have been applied).
    pub async fn schedule_reconcile<C: GenericClient>(
        &self,
        db: &C,
        ids: &[i64],
        reason: &str,
    ) -> Result<(), tokio_postgres::Error> {
        db.execute(
            &format!(
                "UPDATE {} SET state = '{RECONCILE}', last_error = $2 WHERE id = ANY($1)",
                self.journal
            ),
            &[&ids, &reason],
        )
        .await
        .map(drop)
    }

    /// After a restart: every write left `SENDING` by a previous process may or may not have
    /// reached Salesforce. Creates and upserts are reconciled; updates and deletes (idempotent)
    /// are sent again.
    pub async fn recover<C: GenericClient>(
        &self,
        db: &C,
        tables: &[&str],
    ) -> Result<u64, tokio_postgres::Error> {
        db.execute(
            &format!(
                "UPDATE {} SET state = CASE WHEN kind IN ('create', 'upsert') THEN '{RECONCILE}' ELSE '{RETRY}' END,
                     not_before = NULL
                 WHERE state = '{SENDING}' AND table_name = ANY($1)",
                self.journal
            ),
            &[&tables],
        )
        .await
    }

    /// The `sfid`s among `ids` that a row of the mapping already holds.
    ///
    /// With `copies_give_way` (the candidates are records the writer's own user created since
    /// the send), a row the read path stored (`SYNCED`, and never captured by the trigger: no
    /// entry in the log or the archive) does not count: it is the copy of a record this writer
    /// created and had not written back yet (a poll or a load read it in that window), and it
    /// gives way when the create adopts the record (see [`Store::settle`]).
    pub async fn held_sfids<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        ids: &[String],
        copies_give_way: bool,
    ) -> Result<Vec<String>, tokio_postgres::Error> {
        let rows = db
            .query(
                &format!(
                    "SELECT t.sfid FROM {t} t
                     WHERE t.sfid = ANY($1)
                       AND NOT ($3 AND t._hc_lastop IS NOT DISTINCT FROM 'SYNCED'
                                AND NOT EXISTS (SELECT 1 FROM {log} l
                                                WHERE l.table_name = $2 AND l.record_id = t.id)
                                AND NOT EXISTS (SELECT 1 FROM {archive} a
                                                WHERE a.table_name = $2 AND a.record_id = t.id))",
                    t = self.table(mapping),
                    log = self.log,
                    archive = self.archive
                ),
                &[&ids, &mapping.table, &copies_give_way],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Of `values` (external IDs in `parent_table.parent_column`), those whose parent row has
    /// no `sfid` yet and a write coming: a captured change outside `claimed` (nobody sends it
    /// yet), or, when `another_writer` sends the parent's mapping, a write of its in flight. A
    /// child naming such a parent waits for it: sent first, Salesforce would fail the child
    /// for an external ID it does not know yet. A parent table that is not there, or lacks the
    /// column, holds nothing back.
    pub async fn unsent_parents<C: GenericClient>(
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
                    "SELECT DISTINCT p.{column}::text FROM {qualified} p
                     WHERE p.{column}::text = ANY($1) AND p.sfid IS NULL
                       AND (EXISTS (SELECT 1 FROM {log} l
                                    WHERE l.table_name = $2 AND l.record_id = p.id
                                      AND l.state = 'NEW' AND NOT l.id = ANY($3))
                            OR ($4 AND EXISTS (SELECT 1 FROM {journal} j
                                               WHERE j.table_name = $2 AND j.record_id = p.id)))",
                    column = quote_ident(parent_column),
                    log = self.log,
                    journal = self.journal,
                ),
                &[&values, &parent_table, &claimed, &another_writer],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Children just created that named their parent by external ID (a relationship column such
    /// as `invoice__r__external_id__c`) take the parent's `sfid` into their lookup column from the
    /// parent's synced row. The writer settles a parent before it sends its children, so the
    /// parent row has its `sfid` by now; Salesforce linked the child to exactly that record (the
    /// external ID is unique). Without this the lookup column would wait for the change event of
    /// the child's create, which can arrive before the create is settled. A parent object that is
    /// not mapped, or whose mapping lacks the external ID column, leaves the column to the read
    /// side.
    async fn link_parents<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        created: &[i32],
    ) -> Result<(), tokio_postgres::Error> {
        if created.is_empty() {
            return Ok(());
        }
        for field in mapping.fields {
            let Some(rel) = field.relationship else {
                continue;
            };
            let Some(lookup) = mapping
                .fields
                .iter()
                .find(|f| f.sf_name.eq_ignore_ascii_case(rel.lookup))
            else {
                continue;
            };
            let [parent] = lookup.reference_to else {
                continue;
            };
            let parent_table = format!(
                "{}.{}",
                self.schema,
                quote_ident(&parent.to_ascii_lowercase())
            );
            let parent_column = rel.field.to_ascii_lowercase();
            let mapped = has_column(db, &parent_table, &parent_column).await?;
            if !mapped {
                continue;
            }
            db.execute(
                &format!(
                    "UPDATE {child} c SET {lookup} = p.sfid
                     FROM {parent_table} p
                     WHERE c.id = ANY($1) AND c.{lookup} IS NULL AND c.{column} IS NOT NULL
                       AND p.{parent_column} = c.{column} AND p.sfid IS NOT NULL",
                    child = self.table(mapping),
                    lookup = quote_ident(lookup.column),
                    parent_column = quote_ident(&parent_column),
                    column = quote_ident(field.column),
                ),
                &[&created],
            )
            .await?;
        }
        Ok(())
    }

    /// The write-back of [`Store::settle`]: `params` are the rows' ids, sfids, `_hc_lastop`s and
    /// `_hc_err`s; returns the ids of the rows still there.
    ///
    /// The read path can store a record the writer just created before the writer's answer is
    /// written back (an initial load or a poll that read it in that window): the `sfid` is then
    /// on a second row, and writing it back breaks the unique index. The app's row is the
    /// record's own: the copy is removed and the write-back done again. Only a new sfid (one of
    /// `created`) can collide; other rows keep theirs, and without one no savepoint is taken.
    async fn write_back<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync); 4],
        created: &[(i32, &str)],
    ) -> Result<std::collections::HashSet<i32>, tokio_postgres::Error> {
        let update = format!(
            "UPDATE {t} t SET sfid = coalesce(u.s, t.sfid), _hc_lastop = u.l, _hc_err = u.e
             FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS u(i, s, l, e)
             WHERE t.id = u.i
             RETURNING t.id",
            t = self.table(mapping)
        );
        let ids = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get(0)).collect();
        if created.is_empty() {
            return Ok(ids(db.query(&update, params).await?));
        }
        db.batch_execute("SAVEPOINT forcesync_write_back").await?;
        let rows = match db.query(&update, params).await {
            Ok(rows) => rows,
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                db.batch_execute("ROLLBACK TO SAVEPOINT forcesync_write_back")
                    .await?;
                let (rows, copies): (Vec<i32>, Vec<&str>) = created.iter().copied().unzip();
                let removed = db
                    .execute(
                        &format!(
                            "DELETE FROM {t} t USING unnest($1::int[], $2::text[]) AS u(i, s)
                             WHERE t.sfid = u.s AND t.id <> u.i",
                            t = self.table(mapping)
                        ),
                        &[&rows, &copies],
                    )
                    .await?;
                tracing::info!(
                    table = mapping.table,
                    removed,
                    "records the read path stored before the writer's answer was written back: \
                     the copies gave way to the app's rows"
                );
                db.query(&update, params).await?
            }
            Err(e) => return Err(e),
        };
        db.batch_execute("RELEASE SAVEPOINT forcesync_write_back")
            .await?;
        Ok(ids(rows))
    }

    /// Writes outcomes back: the rows (sfid, `_hc_lastop`, `_hc_err`, as an engine write), the
    /// entries (archived with their final state), the journal rows (removed) and the mapping's
    /// counters. Run it in a transaction.
    pub async fn settle<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        settles: &[Settle],
        journal_ids: &[i64],
    ) -> Result<(), tokio_postgres::Error> {
        db.batch_execute("SET LOCAL forcesync.engine = 'on'")
            .await?;
        let marked: Vec<&Settle> = settles.iter().filter(|s| s.lastop.is_some()).collect();
        if !marked.is_empty() {
            let ids: Vec<i32> = marked.iter().map(|s| s.record_id).collect();
            let sfids: Vec<Option<&str>> = marked.iter().map(|s| s.sfid.as_deref()).collect();
            let lastops: Vec<Option<&str>> = marked.iter().map(|s| s.lastop).collect();
            let errs: Vec<Option<String>> = marked
                .iter()
                .map(|s| s.hc_err.as_ref().map(Value::to_string))
                .collect();
            // Rows given the sfid of a record just created (or adopted), with that sfid.
            let created: Vec<(i32, &str)> = marked
                .iter()
                .filter(|s| s.created)
                .filter_map(|s| Some((s.record_id, s.sfid.as_deref()?)))
                .collect();
            let present = self
                .write_back(db, mapping, &[&ids, &sfids, &lastops, &errs], &created)
                .await?;
            let created_rows: Vec<i32> = created.iter().map(|(id, _)| *id).collect();
            self.link_parents(db, mapping, &created_rows).await?;
            // A record created for a row the app deleted meanwhile: the delete was captured
            // without an sfid (state IGNORE); give it the sfid and send it.
            for &(record_id, sfid) in created.iter().filter(|(id, _)| !present.contains(id)) {
                let requeued = db
                    .execute(
                        &format!(
                            "UPDATE {} SET state = 'NEW', sfid = $3, updated_at = now()
                             WHERE table_name = $1 AND record_id = $2 AND action = 'DELETE' AND state = 'IGNORE'",
                            self.log
                        ),
                        &[&mapping.table, &record_id, &sfid],
                    )
                    .await?;
                if requeued == 0 {
                    db.execute(
                        &format!(
                            "INSERT INTO {} (txid, state, action, table_name, record_id, sfid)
                             VALUES (txid_current(), 'NEW', 'DELETE', $1, $2, $3)",
                            self.log
                        ),
                        &[&mapping.table, &record_id, &sfid],
                    )
                    .await?;
                }
            }
        }

        let mut ids = Vec::new();
        let mut states = Vec::new();
        let mut sfids = Vec::new();
        let mut messages = Vec::new();
        for s in settles {
            for id in &s.entry_ids {
                ids.push(*id);
                states.push(s.state);
                sfids.push(s.sfid.as_deref());
                messages.push(s.message.as_deref());
            }
        }
        if !ids.is_empty() {
            db.execute(
                &format!(
                    "WITH moved AS (
                         DELETE FROM {log} l USING unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS u(i, st, s, m)
                         WHERE l.id = u.i
                         RETURNING l.*, u.st AS new_state, u.s AS new_sfid, u.m AS new_message)
                     INSERT INTO {archive} (id, txid, created_at, updated_at, processed_at, processed_tx, state,
                                            action, table_name, record_id, sfid, old, \"values\", sf_result, sf_message)
                     SELECT id, txid, created_at, now(), now(), txid_current(), new_state,
                            action, table_name, record_id, coalesce(new_sfid, sfid), old, \"values\", NULL, new_message
                     FROM moved
                     ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, processed_at = EXCLUDED.processed_at,
                            sfid = EXCLUDED.sfid, sf_message = EXCLUDED.sf_message",
                    log = self.log,
                    archive = self.archive
                ),
                &[&ids, &states, &sfids, &messages],
            )
            .await?;
        }
        // A record written successfully supersedes its earlier failures: a later `retry` must
        // not send their stale values again.
        let superseded: Vec<i32> = settles
            .iter()
            .filter(|s| s.state == "SUCCESS")
            .map(|s| s.record_id)
            .collect();
        if !superseded.is_empty() {
            db.execute(
                &format!(
                    "UPDATE {} SET state = 'MERGED', updated_at = now()
                     WHERE table_name = $1 AND record_id = ANY($2) AND state = 'FAILED'",
                    self.archive
                ),
                &[&mapping.table, &superseded],
            )
            .await?;
        }
        if !journal_ids.is_empty() {
            db.execute(
                &format!("DELETE FROM {} WHERE id = ANY($1)", self.journal),
                &[&journal_ids],
            )
            .await?;
        }
        let written = settles.iter().filter(|s| s.state == "SUCCESS").count() as i64;
        let failed = settles.iter().filter(|s| s.state == "FAILED").count() as i64;
        if written + failed > 0 {
            db.execute(
                &format!(
                    "UPDATE {} SET records_written = records_written + $2, write_errors = write_errors + $3,
                         last_write_at = now(), updated_at = now()
                     WHERE mapping = $1",
                    self.states
                ),
                &[&mapping.object, &written, &failed],
            )
            .await?;
        }
        Ok(())
    }

    /// Archives a write made outside the writer (a write-through create of row `record_id`) as
    /// a `SUCCESS` entry, the history the writer leaves for a row it sent. Run it in the
    /// transaction that stores the row.
    /// The entry's `values` are the stored row, as the capture trigger records an insert.
    pub async fn archive_written_through<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        record_id: i32,
        sfid: &str,
    ) -> Result<(), tokio_postgres::Error> {
        db.execute(
            &format!(
                "INSERT INTO {archive}
                     (id, txid, created_at, updated_at, processed_at, processed_tx, state, action,
                      table_name, record_id, sfid, \"values\", sf_message)
                 SELECT nextval(pg_get_serial_sequence($1, 'id')),
                        txid_current(), now(), now(), now(), txid_current(), 'SUCCESS', 'INSERT',
                        $2, t.id, $4,
                        (public.hstore(t) OPERATOR(public.-) ARRAY['_hc_lastop', '_hc_err'])::text,
                        'written through'
                 FROM {table} t WHERE t.id = $3",
                archive = self.archive,
                table = self.table(mapping),
            ),
            &[&self.log, &mapping.table, &record_id, &sfid],
        )
        .await?;
        Ok(())
    }

    /// Deletes archived entries processed more than `days` days ago; returns how many. Entries
    /// marked `REQUEUE` / `REQUEUED` (Heroku Connect's "copy me back" / "copied back", set by
    /// the app's own tools) are left alone, as every other writer step leaves them.
    pub async fn prune<C: GenericClient>(
        &self,
        db: &C,
        days: u32,
    ) -> Result<u64, tokio_postgres::Error> {
        db.execute(
            &format!(
                "DELETE FROM {} WHERE processed_at < now() - make_interval(days => $1)
                   AND state IS DISTINCT FROM 'REQUEUE' AND state IS DISTINCT FROM 'REQUEUED'",
                self.archive
            ),
            &[&(days as i32)],
        )
        .await
    }

    /// Rows of a read-only mapping the app changed (`_hc_lastop = 'PENDING'`): never sent.
    pub async fn unsent_read_only<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
    ) -> Result<i64, tokio_postgres::Error> {
        Ok(db
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE _hc_lastop = 'PENDING'",
                    self.table(mapping)
                ),
                &[],
            )
            .await?
            .get(0))
    }

    /// Requeues failed entries (from the archive, as they were) of these tables, optionally
    /// only these ids; returns how many.
    pub async fn requeue_failed<C: GenericClient>(
        &self,
        db: &C,
        tables: &[&str],
        ids: Option<&[i32]>,
    ) -> Result<u64, tokio_postgres::Error> {
        db.execute(
            &format!(
                "WITH moved AS (
                     DELETE FROM {archive} WHERE state = 'FAILED' AND table_name = ANY($1)
                       AND ($2::int[] IS NULL OR id = ANY($2))
                     RETURNING *)
                 INSERT INTO {log} (id, txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, \"values\")
                 SELECT id, txid, created_at, now(), 'NEW', action, table_name, record_id, sfid, old, \"values\" FROM moved",
                archive = self.archive,
                log = self.log
            ),
            &[&tables, &ids],
        )
        .await
    }

    /// Marks failed entries handled (`IGNORED`) and clears `_hc_err` on their rows; returns
    /// how many entries.
    pub async fn ignore_failed<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        ids: Option<&[i32]>,
    ) -> Result<u64, tokio_postgres::Error> {
        let records = db
            .query(
                &format!(
                    "UPDATE {} SET state = 'IGNORED', updated_at = now()
                     WHERE state = 'FAILED' AND table_name = $1 AND ($2::int[] IS NULL OR id = ANY($2))
                     RETURNING record_id",
                    self.archive
                ),
                &[&mapping.table, &ids],
            )
            .await?;
        let record_ids: Vec<i32> = records
            .iter()
            .filter_map(|r| r.get::<_, Option<i32>>(0))
            .collect();
        db.batch_execute("SET LOCAL forcesync.engine = 'on'")
            .await?;
        db.execute(
            &format!(
                "UPDATE {} SET _hc_err = NULL, _hc_lastop = CASE WHEN sfid IS NULL THEN 'IGNORED' ELSE 'SYNCED' END
                 WHERE id = ANY($1) AND _hc_lastop = 'FAILED'",
                self.table(mapping)
            ),
            &[&record_ids],
        )
        .await?;
        Ok(records.len() as u64)
    }
}

/// Whether `table` (qualified and quoted) exists and has the column `column`.
async fn has_column<C: GenericClient>(
    db: &C,
    table: &str,
    column: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(db
        .query_opt(
            "SELECT 1 FROM pg_attribute
             WHERE attrelid = to_regclass($1::text) AND attname = $2 AND NOT attisdropped",
            &[&table, &column],
        )
        .await?
        .is_some())
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
