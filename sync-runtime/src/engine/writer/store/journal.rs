//! The write journal: a write is journaled (`SENDING`) before it is sent; retries and
//! reconciliations are scheduled on it; after a restart what was left `SENDING` is recovered.
//!
//! New writes are journaled a call's worth a row (`_forcesync_write_batch`, [`Store::journal_batches`]):
//! all the writes of such a row are answered together and settled in one transaction, which ends
//! the row. A write of a batch row that needs a retry or a reconciliation gets a journal row of
//! its own in that transaction; so do the writes of the rows a previous process left
//! ([`Store::recover`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_postgres::types::Json;
use tokio_postgres::GenericClient;

use crate::engine::writer::plan::{CallKind, Write};

use super::{Store, RECONCILE, RETRY, SENDING};

/// A journaled write: what was (or is about to be) sent for one record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JournalRow {
    pub id: i64,
    pub write: Write,
    pub state: String,
    pub attempts: i32,
    pub sent_at: DateTime<Utc>,
}

const JOURNAL_COLUMNS: &str =
    "id, table_name, record_id, kind, entry_ids, sfid, external_id, body, state, attempts, sent_at";

fn journal_row(r: &tokio_postgres::Row) -> Option<JournalRow> {
    let kind: String = r.get("kind");
    let body: Value = r.get("body");
    Some(JournalRow {
        id: r.get("id"),
        write: Write {
            table: r.get("table_name"),
            record_id: r.get("record_id"),
            entry_ids: r.get("entry_ids"),
            kind: CallKind::parse(&kind)?,
            sfid: r.get("sfid"),
            external_id: r.get("external_id"),
            body: match body {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        },
        state: r.get("state"),
        attempts: r.get("attempts"),
        sent_at: r.get("sent_at"),
    })
}

impl Store {
    /// A query of the ids of the `_trigger_log` entries the writer has sent and not settled (they
    /// are part of a write in a batch row or the journal), among those of table `table` (an SQL
    /// expression) and the records `records` (a query of record ids): Salesforce may hold their
    /// values already. For the read path, which must tell forcesync's own write read back from
    /// someone else's change. Only the batch rows holding one of the records are read, each once.
    pub(crate) fn entries_in_flight_sql(&self, table: &str, records: &str) -> String {
        format!(
            "SELECT unnest(j.entry_ids) FROM {journal} j \
             WHERE j.table_name = {table} AND j.record_id IN ({records}) \
             UNION ALL \
             SELECT unnest(w.entry_ids) \
             FROM {batch} b, json_to_recordset(b.writes) AS w(record_id int, entry_ids int[]) \
             WHERE b.table_name = {table} AND b.record_ids && ARRAY({records}) \
               AND w.record_id IN ({records})",
            journal = self.journal,
            batch = self.batch,
        )
    }
}

/// One write as a batch row keeps it: an element of its `writes` array, with a journal row's
/// columns (see [`Store::recover`]).
#[derive(Debug, Serialize)]
struct BatchWrite<'a> {
    record_id: i32,
    kind: &'static str,
    entry_ids: &'a [i32],
    sfid: Option<&'a str>,
    external_id: Option<&'a str>,
    body: &'a Map<String, Value>,
}

/// The `id` of each (table, record) key among the rows an insert returned (`id`, `table_name` and
/// the record id as `record`), in the order of `keys`.
fn ids_in_order<'a>(
    rows: &[tokio_postgres::Row],
    record: &str,
    keys: impl Iterator<Item = (&'a str, i32)>,
) -> Vec<i64> {
    let ids: HashMap<(String, i32), i64> = rows
        .iter()
        .map(|r| ((r.get("table_name"), r.get(record)), r.get("id")))
        .collect();
    keys.map(|(table, record)| ids[&(table.to_owned(), record)])
        .collect()
}

impl Store {
    /// Journals groups of writes about to be sent, a row each (`_forcesync_write_batch`): from its
    /// commit on, their records are taken (see [`Store::claim`]). A group is one call's worth, of
    /// one table: its writes are answered together and settled in one transaction, which ends
    /// the row ([`Store::end_batches`]). Returns each group's row id, in order.
    pub(crate) async fn journal_batches<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        groups: &[Vec<&Write>],
    ) -> Result<Vec<i64>, tokio_postgres::Error> {
        let groups: Vec<&Vec<&Write>> = groups.iter().filter(|g| !g.is_empty()).collect();
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let tables: Vec<&str> = groups.iter().map(|g| g[0].table.as_str()).collect();
        // Array literals (`{1,2}`), cast in SQL, as the journal's entry ids are.
        let records: Vec<String> = groups
            .iter()
            .map(|g| {
                let ids: Vec<String> = g.iter().map(|w| w.record_id.to_string()).collect();
                format!("{{{}}}", ids.join(","))
            })
            .collect();
        let creates: Vec<bool> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .any(|w| matches!(w.kind, CallKind::Create | CallKind::Upsert))
            })
            .collect();
        let writes: Vec<Json<Vec<BatchWrite<'_>>>> = groups
            .iter()
            .map(|g| {
                Json(
                    g.iter()
                        .map(|w| BatchWrite {
                            record_id: w.record_id,
                            kind: w.kind.as_str(),
                            entry_ids: &w.entry_ids,
                            sfid: w.sfid.as_deref(),
                            external_id: w.external_id.as_deref(),
                            body: &w.body,
                        })
                        .collect(),
                )
            })
            .collect();
        let rows = db
            .query(
                &format!(
                    "INSERT INTO {batch} (mapping, table_name, record_ids, creates, writes)
                     SELECT $1, u.t, u.r::int[], u.c, u.w
                     FROM unnest($2::text[], $3::text[], $4::bool[], $5::json[]) AS u(t, r, c, w)
                     RETURNING id, table_name, record_ids[1] AS first",
                    batch = self.batch
                ),
                &[&mapping, &tables, &records, &creates, &writes],
            )
            .await?;
        // A record is in one group only, so (table, first record) finds each group's row.
        Ok(ids_in_order(
            &rows,
            "first",
            groups.iter().map(|g| (g[0].table.as_str(), g[0].record_id)),
        ))
    }

    /// Ends batch rows whose writes are all settled (in the settle's transaction).
    pub(crate) async fn end_batches<C: GenericClient>(
        &self,
        db: &C,
        ids: &[i64],
    ) -> Result<(), tokio_postgres::Error> {
        if ids.is_empty() {
            return Ok(());
        }
        db.execute(
            &format!("DELETE FROM {} WHERE id = ANY($1)", self.batch),
            &[&ids],
        )
        .await
        .map(drop)
    }

    /// Journals writes about to be sent (state `SENDING`): from its commit on, the record's
    /// entries are taken (see [`Store::claim`]).
    /// Returns the journal id of each write, in order.
    pub(crate) async fn journal<C: GenericClient>(
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
        // Serialized from the writes' own maps (no copy of each body first).
        let bodies: Vec<Json<&Map<String, Value>>> = writes.iter().map(|w| Json(&w.body)).collect();
        let rows = db
            .query(
                &format!(
                    "INSERT INTO {journal} (mapping, table_name, record_id, kind, entry_ids, sfid, external_id, body, state)
                     SELECT $1, u.t, u.r, u.k, u.e::int[], u.s, u.x, u.b, '{SENDING}'
                     FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::json[])
                          AS u(t, r, k, e, s, x, b)
                     RETURNING table_name, record_id, id",
                    journal = self.journal
                ),
                &[&mapping, &tables, &records, &kinds, &entries, &sfids, &external, &bodies],
            )
            .await?;
        // One journal row per record (unique index), so (table, record) finds each write's id.
        Ok(ids_in_order(
            &rows,
            "record_id",
            writes.iter().map(|w| (w.table.as_str(), w.record_id)),
        ))
    }

    /// Journal rows of these tables in `states`, oldest first.
    pub(crate) async fn journaled<C: GenericClient>(
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
    pub(crate) async fn take_due_retries<C: GenericClient>(
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
    pub(crate) async fn set_journal_state<C: GenericClient>(
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
    pub(crate) async fn schedule_retry<C: GenericClient>(
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
    pub(crate) async fn schedule_reconcile<C: GenericClient>(
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

    /// After a restart: every write left `SENDING` by a previous process (in a journal row or a
    /// batch row) may or may not have reached Salesforce. Creates and upserts are reconciled;
    /// updates and deletes (idempotent) are sent again.
    pub(crate) async fn recover<C: GenericClient>(
        &self,
        db: &C,
        tables: &[&str],
    ) -> Result<u64, tokio_postgres::Error> {
        // A batch row left behind: each of its writes becomes a journal row, `SENDING` as it was.
        db.execute(
            &format!(
                "WITH left_behind AS (
                     DELETE FROM {batch} WHERE table_name = ANY($1)
                     RETURNING mapping, table_name, writes, sent_at)
                 INSERT INTO {journal} (mapping, table_name, record_id, kind, entry_ids, sfid, external_id, body, state, sent_at)
                 SELECT b.mapping, b.table_name, w.record_id, w.kind, w.entry_ids, w.sfid, w.external_id, w.body,
                        '{SENDING}', b.sent_at
                 FROM left_behind b,
                      json_to_recordset(b.writes) AS w(record_id int, kind text, entry_ids int[], sfid text,
                                                       external_id text, body json)",
                batch = self.batch,
                journal = self.journal
            ),
            &[&tables],
        )
        .await?;
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
}
