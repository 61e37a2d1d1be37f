//! Writing outcomes back: the rows (sfid, `_hc_lastop`, `_hc_err`), children linked to parents
//! just created, the entries archived, the journal rows removed, the mapping's counters; the
//! history of a write-through create; and which records a reconciliation may adopt.

use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::adapter::MappingDescriptor;
use crate::engine::system::quote_ident;

use super::{has_column, query_batch, query_batch_unless_duplicate, Settle, Store};

impl Store {
    /// Writes outcomes back: the rows (sfid, `_hc_lastop`, `_hc_err`, as an engine write), the
    /// entries (archived with their final state), the journal rows (removed) and the mapping's
    /// counters. Run it in a transaction. Returns the latencies (capture → archived, ms) of the
    /// entries written successfully, for the status page ([`crate::engine::activity::sent`]).
    pub async fn settle<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        settles: &[Settle],
        journal_ids: &[i64],
    ) -> Result<Vec<i64>, tokio_postgres::Error> {
        let started = std::time::Instant::now();
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

        let took_write_back = started.elapsed();
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
        let mut latencies = Vec::new();
        if !ids.is_empty() {
            let archived = self
                .archive_entries(db, &[&ids, &states, &sfids, &messages])
                .await?;
            latencies = archived
                .iter()
                .filter_map(|r| r.get::<_, Option<i64>>("lag_ms"))
                .collect();
        }
        let took_archive = started.elapsed();
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
        let took_journal = started.elapsed();
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
        tracing::debug!(
            records = settles.len(),
            write_back_ms = took_write_back.as_millis() as u64,
            archive_ms = (took_archive - took_write_back).as_millis() as u64,
            merged_and_journal_ms = (took_journal - took_archive).as_millis() as u64,
            ms = started.elapsed().as_millis() as u64,
            "writer settle statements"
        );
        Ok(latencies)
    }

    /// The archive move of [`Store::settle`]: the entries `params` name (ids, states, sfids,
    /// messages) leave the log for the archive with their outcome; returns each one's
    /// `lag_ms` (capture → archived, for a success).
    ///
    /// An entry copied back from the archive to be sent again (Heroku Connect's way of retrying
    /// a failure) keeps its id, so its archived row is still there: that row takes the new
    /// outcome. `ON CONFLICT` would check every entry for that case, and its speculative
    /// insertion made the move 40 % slower (100,000 entries: 1.05-1.18 s against 0.73-0.76 s);
    /// so the plain insert is tried first, under a savepoint, and only a batch that holds such
    /// an entry is moved again with `ON CONFLICT`.
    async fn archive_entries<C: GenericClient>(
        &self,
        db: &C,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync); 4],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let sql = |on_conflict: &str| {
            format!(
                "WITH moved AS (DELETE FROM {log} l WHERE l.id = ANY($1) RETURNING l.*)
                 INSERT INTO {archive} (id, txid, created_at, updated_at, processed_at, processed_tx, state,
                                        action, table_name, record_id, sfid, old, \"values\", sf_result, sf_message)
                 SELECT m.id, m.txid, m.created_at, now(), now(), txid_current(), u.st,
                        m.action, m.table_name, m.record_id, coalesce(u.s, m.sfid), m.old, m.\"values\", NULL, u.m
                 FROM moved m JOIN unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS u(i, st, s, m) ON u.i = m.id
                 {on_conflict}
                 RETURNING CASE WHEN state = 'SUCCESS'
                                THEN (extract(epoch FROM processed_at - created_at) * 1000)::bigint END AS lag_ms",
                log = self.log,
                archive = self.archive
            )
        };
        match query_batch_unless_duplicate(db, &sql(""), params).await? {
            Some(rows) => Ok(rows),
            None => {
                query_batch(
                    db,
                    &sql("ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, processed_at = EXCLUDED.processed_at,
                                 sfid = EXCLUDED.sfid, sf_message = EXCLUDED.sf_message"),
                    params,
                )
                .await
            }
        }
    }

    /// The write-back of [`Store::settle`]: `params` are the rows' ids, sfids, `_hc_lastop`s and
    /// `_hc_err`s; returns the ids of the rows still there.
    ///
    /// The read path can store a record the writer just created before the writer's answer is
    /// written back (an initial load or a poll that read it in that window): the `sfid` is then
    /// on a second row, and writing it back breaks the unique index. The app's row is the
    /// record's own: the copy hands over to it ([`Store::hand_over_copies`]), is removed, and the
    /// write-back is done again. Only a new sfid (one of
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
             WHERE t.id = ANY($1) AND t.id = u.i
             RETURNING t.id",
            t = self.table(mapping)
        );
        let ids = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get("id")).collect();
        if created.is_empty() {
            return Ok(ids(query_batch(db, &update, params).await?));
        }
        let rows = match query_batch_unless_duplicate(db, &update, params).await? {
            Some(rows) => rows,
            None => {
                let removed = self.hand_over_copies(db, mapping, created).await?;
                tracing::info!(
                    table = mapping.table,
                    removed,
                    "records the read path stored before the writer's answer was written back: \
                     the copies gave way to the app's rows"
                );
                query_batch(db, &update, params).await?
            }
        };
        Ok(ids(rows))
    }

    /// Copies the read path stored of records just created for `created` (app row id, sfid) hand
    /// over to the app's rows and are removed; returns how many. What the copy holds is the
    /// record as Salesforce had it when the read path read it (what it set itself: stamps,
    /// defaults, formulas), with what the app changed on the copy since: the app's row takes
    /// those values, but for the columns of its own changes not sent yet (only its empty
    /// columns are filled then). The copy's changes not sent yet move to the app's row and go
    /// out as its updates.
    async fn hand_over_copies<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        created: &[(i32, &str)],
    ) -> Result<usize, tokio_postgres::Error> {
        let (rows, sfids): (Vec<i32>, Vec<&str>) = created.iter().copied().unzip();
        let columns: Vec<String> = mapping
            .fields
            .iter()
            .map(|f| f.column)
            .filter(|c| *c != "sfid")
            .map(quote_ident)
            .collect();
        let copied: Vec<String> = columns.iter().map(|c| format!("c.{c}")).collect();
        let taken: Vec<String> = columns
            .iter()
            .map(|c| {
                format!("{c} = CASE WHEN g.app_pending THEN coalesce(a.{c}, g.{c}) ELSE g.{c} END")
            })
            .collect();
        let sql = format!(
            "WITH gone AS (
                 DELETE FROM {t} c USING unnest($1::int[], $2::text[]) AS u(i, s)
                 WHERE c.sfid = ANY($2) AND c.sfid = u.s AND c.id <> u.i
                 RETURNING u.i AS app_id, c.id AS copy_id,
                           EXISTS (SELECT 1 FROM {log} l
                                   WHERE l.table_name = $3 AND l.record_id = u.i
                                     AND l.action = 'UPDATE' AND l.state = 'NEW') AS app_pending,
                           {copied}),
             moved AS (
                 UPDATE {log} l SET record_id = g.app_id, updated_at = now()
                 FROM gone g
                 WHERE l.table_name = $3 AND l.record_id = g.copy_id AND l.state = 'NEW'
                 RETURNING l.id)
             UPDATE {t} a SET {taken}
             FROM gone g WHERE a.id = g.app_id
             RETURNING g.copy_id, (SELECT count(*) FROM moved) AS moved",
            t = self.table(mapping),
            log = self.log,
            copied = copied.join(", "),
            taken = taken.join(", "),
        );
        let handed = query_batch(db, &sql, &[&rows, &sfids, &mapping.table]).await?;
        let moved: i64 = handed.first().map_or(0, |r| r.get("moved"));
        if moved > 0 {
            tracing::info!(
                table = mapping.table,
                entries = moved,
                "changes the app made on the read path's copies go out as changes of the app's rows"
            );
        }
        Ok(handed.len())
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

    /// Archives a write made outside the writer (a write-through create of row `record_id`) as
    /// a `SUCCESS` entry, the history the writer leaves for a row it sent. Run it in the
    /// transaction that stores the row.
    /// The entry's `values` are the stored row, as the capture trigger records an insert.
    pub(crate) async fn archive_written_through<C: GenericClient>(
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

    /// SQL that holds for a row (`row`, of the table named by the parameter `table`) the app never
    /// inserted: no `INSERT` entry in the trigger log or the archive. Such a row is the read
    /// path's copy of a record (see [`Store::held_sfids`]).
    fn never_inserted(&self, row: &str, table: &str) -> String {
        format!(
            "NOT EXISTS (SELECT 1 FROM {log} l WHERE l.table_name = {table}
                           AND l.record_id = {row}.id AND l.action = 'INSERT')
             AND NOT EXISTS (SELECT 1 FROM {archive} a WHERE a.table_name = {table}
                               AND a.record_id = {row}.id AND a.action = 'INSERT')",
            log = self.log,
            archive = self.archive
        )
    }

    /// The columns the app changed on the read path's copies (rows it never inserted) holding
    /// these `sfid`s, by `sfid`: its updates of them, sent or waiting in the log.
    pub(crate) async fn copy_changes<C: GenericClient>(
        &self,
        db: &C,
        mapping: &MappingDescriptor,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
        let rows = db
            .query(
                &format!(
                    // The copies' own entries, by record id (the archive's index), not every
                    // update of the table.
                    "SELECT DISTINCT t.sfid, k.col
                     FROM {t} t
                     CROSS JOIN LATERAL (
                         SELECT \"values\" FROM {log}
                         WHERE table_name = $2 AND record_id = t.id AND action = 'UPDATE'
                         UNION ALL
                         SELECT \"values\" FROM {archive}
                         WHERE table_name = $2 AND record_id = t.id AND action = 'UPDATE') e
                     CROSS JOIN LATERAL unnest(public.akeys(e.\"values\"::public.hstore)) AS k(col)
                     WHERE t.sfid = ANY($1) AND {copy}",
                    t = self.table(mapping),
                    log = self.log,
                    archive = self.archive,
                    copy = self.never_inserted("t", "$2"),
                ),
                &[&ids, &mapping.table],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get("sfid"), r.get("col"))).collect())
    }

    /// The `sfid`s among `ids` that a row of the mapping already holds.
    ///
    /// With `copies_give_way` (the candidates are records the writer's own user created since
    /// the send), a row the read path stored (one the app never inserted: no `INSERT` entry in
    /// the log or the archive) does not count: it is the copy of a record this writer created
    /// and had not written back yet (a poll or a load read it in that window), and it gives way
    /// when the create adopts the record (see [`Store::settle`]). That holds even if the app
    /// changed the copy meanwhile (it is a row like any other to the app): the changes go with
    /// it to the app's row, instead of the record being created a second time.
    pub(crate) async fn held_sfids<C: GenericClient>(
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
                       AND NOT ($3 AND {copy})",
                    t = self.table(mapping),
                    copy = self.never_inserted("t", "$2"),
                ),
                &[&ids, &mapping.table, &copies_give_way],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get("sfid")).collect())
    }
}
