//! Initial load and reload: every record the mapping selects, read page by page and streamed into
//! Postgres with `COPY`, in bounded memory whatever the object's size.
//!
//! `SELECT COUNT()` first; small objects are read through the REST query API, larger ones (above
//! [`EngineConfig::bulk_threshold`](super::EngineConfig)) through a Bulk API 2.0 query job whose
//! CSV pages are converted cell by cell. Either way the next page downloads while the current
//! one is converted and copied (two pages held at most). The mapping's filter applies in the
//! query. Progress (rows loaded of the total) is kept in the mapping's state row for the CLI.
//! Bulk rows are copied in COPY's binary format when every column has the type the mapping gives
//! it (Postgres then parses no text: the `COPY` is a quarter faster), in the text format
//! otherwise; both are written from the same checked values ([`super::convert`]).
//!
//! How the rows get in is decided by [`swap::method`]:
//!
//! * **Initial load into a table without synced rows**: `COPY` straight into a shadow table
//!   without indexes or triggers, its indexes built after, swapped in ([`swap`]) keeping the
//!   table's `id` sequence, triggers, grants and comments and carrying over the rows the app
//!   inserted meanwhile: all in one transaction with the state change, so a crash leaves either
//!   nothing or the whole load. The table is analyzed right after that commit (its size is known
//!   from the index builds; the app need not wait for its column statistics). When the swap is
//!   ruled out (see below), straight into the table.
//! * **Reload, or a table that already holds synced rows**: `COPY` into a staging table, then a
//!   shadow table is built, indexed and swapped in within the same transaction ([`swap`]): the
//!   app keeps reading the complete old rows until the commit and the complete new rows after it,
//!   ids stay the same for every record in both, and rows the app inserted, changed or has unsent
//!   changes for, or that change events touched meanwhile, are carried over.
//! * **When the swap is impossible** (a view or foreign key depends on the table, …): the staged
//!   rows are merged in place in the same transaction (the newer state wins, synced rows
//!   Salesforce no longer has leave), with a log line saying why.
//!
//! A reload must then read again, by polling, every change from its start (minus the look-back),
//! so no change Salesforce made while it ran is lost, whether or not it reached the old table, and
//! re-read the records the app has unsent changes for (their rows were carried over whole:
//! [`reread_unsent`]); the driver ([`super::driver::load`]) does both after [`load_rows`]. An
//! operation: it imports no other.
//!
//! A record that cannot be stored is recorded in `_forcesync_read_errors` and skipped.

use std::time::Instant;

use bytes::{BufMut, Bytes};
use chrono::{NaiveDateTime, Utc};
use futures_util::SinkExt;
use serde_json::Value;

use super::apply::{self, qualified, RecordError};
use super::convert::{
    binary_compatible, binary_type, checked_from_csv, copy_line, pg_text_from_csv,
    push_binary_cell, push_binary_row, Checked, BINARY_COPY_HEADER, BINARY_COPY_TRAILER,
};
use super::state::SyncState;
use super::swap::{self, Method};
use super::system::quote_ident;
use super::{ingest, read_errors, soql};
use super::{EngineError, MappingCtx};
use crate::adapter::FieldDescriptor;
use crate::salesforce::bulk::{BulkQuery, CsvPage, PollPolicy, QueryOperation};
use crate::salesforce::SfError;

/// What a load did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub rows: u64,
    pub errors: u64,
    pub bulk: bool,
    /// Whether the rows went in COPY's binary format (a Bulk load into columns of the mapping's
    /// types), not its text format.
    pub binary: bool,
    pub seconds: f64,
    /// Seconds until the first rows were in hand (the count, the Bulk job's wait, its first
    /// page), then copying every row, then what follows the copy (indexes, swap, commit).
    pub phases: [f64; 3],
    /// Of the first phase: seconds the count took, then seconds from the count until the Bulk
    /// job was complete (0 without a Bulk job).
    pub waits: [f64; 2],
    /// Seconds the `ANALYZE` of the loaded table took after the commit (0 when it was analyzed
    /// before, or not at all).
    pub analyze_seconds: f64,
    /// When the load started reading (polling resumes from here, minus the look-back).
    pub started_at: NaiveDateTime,
}

/// Rows per Bulk result page: two pages are held at once (one converted and copied while the
/// next downloads), which keeps a million-row load within 150 MB.
pub const BULK_PAGE: u64 = 50_000;

/// The Bulk API query an initial load of `mapping` runs (its filter applied) and the rows a result
/// page it asks for: what `bench load` runs again with a bare client to time the Salesforce side.
pub fn bulk_load_query(
    mapping: &crate::adapter::MappingDescriptor,
) -> Result<(String, u64), String> {
    let filter = super::filter::Filter::of(mapping)?;
    Ok((soql::load_query(mapping, &filter), BULK_PAGE))
}

/// Bytes of COPY data sent per chunk.
const COPY_CHUNK: usize = 256 * 1024;

/// Loads every record into the table: the initial load when `reload` is false, a reload
/// otherwise. A reload must then catch up ([`super::driver::load`] does both): read again the
/// changes made while it ran, and [`reread_unsent`].
pub async fn load_rows(ctx: &MappingCtx, reload: bool) -> Result<LoadReport, EngineError> {
    let mapping = ctx.mapping;
    let started = Instant::now();
    let started_at = Utc::now().naive_utc();
    let progress_db = ctx.connect().await?;
    let mut db = ctx.connect().await?;
    let table = qualified(mapping);
    ctx.states
        .set_state(
            &progress_db,
            mapping.object,
            if reload {
                SyncState::Reloading
            } else {
                SyncState::Loading
            },
            None,
        )
        .await?;
    let total = ctx.client.count(&soql::count_query(mapping)).await?;
    let counted = Instant::now();
    ctx.states
        .set_load_progress(&progress_db, mapping.object, 0, Some(total as i64))
        .await?;

    let soql = soql::load_query(mapping, &ctx.filter);
    let bulk = total >= ctx.config.bulk_threshold;
    // The Bulk job is created (and runs in Salesforce) while the transaction and the table to
    // copy into are prepared.
    let job = async {
        if bulk {
            let job = ctx
                .client
                .bulk_query(
                    &soql,
                    QueryOperation::Query,
                    Some(BULK_PAGE),
                    &PollPolicy::default(),
                )
                .await?;
            Ok::<_, EngineError>(Some((job, counted.elapsed())))
        } else {
            Ok(None)
        }
    };
    let prepare = async {
        let tx = apply::begin_engine_tx(&mut db).await?;
        let has_synced: bool = tx
            .query_one(
                &format!(
                    "SELECT EXISTS (SELECT 1 FROM {table} WHERE sfid IS NOT NULL) AS has_synced"
                ),
                &[],
            )
            .await?
            .get("has_synced");
        let plan = Some(swap::plan(&tx, mapping).await?);
        let blockers = match &plan {
            Some(Err(blockers)) => blockers.clone(),
            _ => Vec::new(),
        };
        let method = swap::method(reload, has_synced, blockers);
        if let Method::Merge(reasons) = &method {
            tracing::warn!(
                mapping = mapping.object,
                "the load merges into {table} in place instead of swapping in a shadow table: {}",
                reasons.join("; ")
            );
        }
        let columns: Vec<String> = mapping
            .fields
            .iter()
            .map(|f| quote_ident(f.column))
            .collect();
        // An initial load into a shadow table writes `_hc_lastop` itself (the column's default is
        // the app's, `NEW`... or absent).
        let mut lastop: Option<&str> = None;
        let target = if method == Method::Direct {
            table.clone()
        } else if let (Method::Shadow, Some(Ok(plan))) = (&method, &plan) {
            swap::remember_synced_rows(&tx, &table).await?;
            swap::create_shadow(&tx, plan).await?;
            if plan.has_column("_hc_lastop") {
                lastop = Some("SYNCED");
            }
            plan.shadow().to_owned()
        } else {
            // The mapped columns only: no defaults, so staging consumes no `id`.
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE _forcesync_load ON COMMIT DROP AS \
                 SELECT {} FROM {table} WITH NO DATA",
                columns.join(", ")
            ))
            .await?;
            swap::remember_synced_rows(&tx, &table).await?;
            "_forcesync_load".to_owned()
        };
        let copied = if lastop.is_some() {
            format!("{}, _hc_lastop", columns.join(", "))
        } else {
            columns.join(", ")
        };
        let mut options = Vec::new();
        // Bulk CSV rows go in COPY's binary format: Postgres then parses no text (a quarter of a
        // million-row `COPY`'s time), where the columns have the types the mapping gives them.
        let binary = bulk && takes_binary(&tx, mapping, &target, &copied, lastop.is_some()).await?;
        if binary {
            options.push("FORMAT binary");
        }
        // A shadow or staging table was created in this transaction: its rows are written frozen, so
        // the index builds and the reads after check no row's visibility (nor dirty pages setting
        // hint bits).
        if method != Method::Direct {
            options.push("FREEZE");
        }
        let options = if options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", options.join(", "))
        };
        let sink = tx
            .copy_in::<_, Bytes>(&format!("COPY {target} ({copied}) FROM STDIN{options}"))
            .await?;
        Ok::<_, EngineError>((tx, method, plan, lastop, sink, binary))
    };
    let (job, prepared) = tokio::join!(job, prepare);
    let (tx, method, plan, lastop, sink, binary) = prepared?;
    let (job, job_wait) = match job? {
        Some((job, waited)) => (Some(job), waited.as_secs_f64()),
        None => (None, 0.0),
    };
    futures_util::pin_mut!(sink);

    let mut errors: Vec<(RecordError, Option<Value>)> = Vec::new();
    let mut rows: u64 = 0;
    let mut buffer = String::with_capacity(COPY_CHUNK + 4096);
    let mut binary_rows: Vec<u8> = Vec::new();
    if binary {
        binary_rows.put_slice(BINARY_COPY_HEADER);
    }
    let row_fields = mapping.fields.len() + usize::from(lastop.is_some());
    let mut cells: Vec<Option<String>> = Vec::with_capacity(mapping.fields.len());
    let mut last_progress = Instant::now();
    let mut first_rows: Option<Instant> = None;
    if let Some(job) = job {
        let mut pages = prefetched(job);
        while let Some(page) = pages.next().await? {
            first_rows.get_or_insert_with(Instant::now);
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .from_reader(page.csv.as_ref());
            let header = reader
                .headers()
                .map_err(|e| EngineError::Config(format!("Bulk API result header: {e}")))?
                .clone();
            let positions = csv_positions(mapping.fields, &header);
            let mut record = csv::StringRecord::new();
            loop {
                match reader.read_record(&mut record) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => return Err(EngineError::Config(format!("Bulk API result row: {e}"))),
                }
                // A binary row is written as its cells are checked, and taken back if one fails.
                let row_start = binary_rows.len();
                if binary {
                    push_binary_row(&mut binary_rows, row_fields);
                }
                cells.clear();
                let mut bad = Vec::new();
                for (field, position) in mapping.fields.iter().zip(&positions) {
                    let cell = position.and_then(|p| record.get(p)).unwrap_or("");
                    let written = if binary {
                        checked_from_csv(field, cell)
                            .map(|value| push_binary_cell(&mut binary_rows, value))
                    } else {
                        pg_text_from_csv(field, cell).map(|text| cells.push(text))
                    };
                    if let Err(e) = written {
                        bad.push(e);
                    }
                }
                if !bad.is_empty() {
                    binary_rows.truncate(row_start);
                    let sfid = positions
                        .first()
                        .copied()
                        .flatten()
                        .and_then(|p| record.get(p))
                        .map(str::to_owned);
                    errors.push((RecordError { sfid, errors: bad }, None));
                } else if binary {
                    if let Some(lastop) = lastop {
                        push_binary_cell(&mut binary_rows, Some(Checked::Str(lastop)));
                    }
                    rows += 1;
                } else {
                    copy_line(
                        cells.iter().map(Option::as_deref).chain(lastop.map(Some)),
                        &mut buffer,
                    );
                    rows += 1;
                }
                if buffer.len() >= COPY_CHUNK {
                    sink.send(Bytes::from(std::mem::take(&mut buffer))).await?;
                }
                if binary_rows.len() >= COPY_CHUNK {
                    sink.send(Bytes::from(std::mem::take(&mut binary_rows)))
                        .await?;
                }
            }
            if last_progress.elapsed().as_millis() > 250 {
                last_progress = Instant::now();
                ctx.states
                    .set_load_progress(&progress_db, mapping.object, rows as i64, None)
                    .await?;
            }
        }
        if let Some(job) = pages.finish().await {
            let _ = job.delete().await;
        }
    } else {
        let mut page = ctx.client.query(&soql).await?;
        first_rows = Some(Instant::now());
        loop {
            // The next page downloads while this one is converted and copied: two pages held.
            let next = page.next_records_url.take().filter(|_| !page.done);
            let fetch = async {
                match &next {
                    Some(next) => ctx.client.query_more(next).await.map(Some),
                    None => Ok(None),
                }
            };
            let copy = async {
                for record in &page.records {
                    match apply::row_from_record(mapping, record) {
                        Ok(row) => {
                            copy_line(
                                row.cells
                                    .iter()
                                    .map(|(_, v)| v.as_deref())
                                    .chain(lastop.map(Some)),
                                &mut buffer,
                            );
                            rows += 1;
                        }
                        Err(e) => errors.push((e, Some(record.clone()))),
                    }
                    if buffer.len() >= COPY_CHUNK {
                        sink.send(Bytes::from(std::mem::take(&mut buffer))).await?;
                    }
                }
                Ok::<_, tokio_postgres::Error>(())
            };
            let (fetched, copied) = tokio::join!(fetch, copy);
            copied?;
            if last_progress.elapsed().as_millis() > 250 {
                last_progress = Instant::now();
                ctx.states
                    .set_load_progress(&progress_db, mapping.object, rows as i64, None)
                    .await?;
            }
            match fetched? {
                Some(fetched) => page = fetched,
                None => break,
            }
        }
    }
    if !buffer.is_empty() {
        sink.send(Bytes::from(std::mem::take(&mut buffer))).await?;
    }
    if binary {
        binary_rows.put_slice(BINARY_COPY_TRAILER);
        sink.send(Bytes::from(binary_rows)).await?;
    }
    sink.as_mut().finish().await?;
    let copied_at = Instant::now();

    match (&method, &plan) {
        (Method::Swap, Some(Ok(plan))) => {
            swap::build(&tx, mapping, plan, "_forcesync_load").await?;
            swap::swap(&tx, mapping, plan, started_at).await?;
        }
        (Method::Shadow, Some(Ok(plan))) => {
            swap::index_shadow(&tx, plan).await?;
            swap::swap(&tx, mapping, plan, started_at).await?;
        }
        (Method::Merge(_), _) => merge_staged(&tx, ctx, started_at).await?,
        _ => {}
    }
    for (error, payload) in &errors {
        read_errors::record(&tx, mapping, error, payload.as_ref()).await?;
    }
    ctx.states
        .set_watermark(&tx, mapping.object, Some(&(started_at, String::new())))
        .await?;
    ctx.states
        .set_load_progress(&tx, mapping.object, rows as i64, Some(total as i64))
        .await?;
    ctx.states
        .record_applied(&tx, mapping.object, rows as i64, None)
        .await?;
    let next = if mapping.sync.streaming {
        SyncState::Streaming
    } else {
        SyncState::Polling
    };
    ctx.states
        .set_state(&tx, mapping.object, next, None)
        .await?;
    ctx.states.set_loaded(&tx, mapping.object).await?;
    tx.commit().await?;
    let first_rows = first_rows.unwrap_or(copied_at);
    let seconds = started.elapsed().as_secs_f64();
    let phases = [
        (first_rows - started).as_secs_f64(),
        (copied_at - first_rows).as_secs_f64(),
        copied_at.elapsed().as_secs_f64(),
    ];
    // The swapped-in table's column statistics, once its rows are the app's: nothing before the
    // commit plans on them (its size is known from its index builds), and the app need not wait
    // for them (half a second for a million rows). A role that does not own the table is told so
    // by Postgres in a warning, and autovacuum analyzes it instead.
    let analyze_seconds = if method == Method::Shadow {
        let analyzing = Instant::now();
        if let Err(error) = db.batch_execute(&format!("ANALYZE {table}")).await {
            // The load stands; autovacuum analyzes the table in its own time.
            tracing::warn!(mapping = mapping.object, %error, "ANALYZE {table} after the load failed");
        }
        analyzing.elapsed().as_secs_f64()
    } else {
        0.0
    };
    Ok(LoadReport {
        rows,
        errors: errors.len() as u64,
        bulk,
        binary,
        seconds,
        phases,
        waits: [(counted - started).as_secs_f64(), job_wait],
        analyze_seconds,
        started_at,
    })
}

/// Whether the columns `copied` of `target` (the mapping's fields, then `_hc_lastop` when
/// `with_lastop`) have the types the mapping gives them, so that its values can be copied in
/// COPY's binary format: a column of another type (an adopted table's, say) takes text instead.
async fn takes_binary(
    tx: &tokio_postgres::Transaction<'_>,
    mapping: &crate::adapter::MappingDescriptor,
    target: &str,
    copied: &str,
    with_lastop: bool,
) -> Result<bool, tokio_postgres::Error> {
    let columns = tx
        .prepare(&format!("SELECT {copied} FROM {target} LIMIT 0"))
        .await?;
    let columns = columns.columns();
    let expected = mapping
        .fields
        .iter()
        .map(|f| binary_type(f.pg_type))
        .chain(with_lastop.then_some(tokio_postgres::types::Type::VARCHAR));
    Ok(
        columns.len() == mapping.fields.len() + usize::from(with_lastop)
            && columns
                .iter()
                .zip(expected)
                .all(|(column, expected)| binary_compatible(&expected, column.type_())),
    )
}

/// After a reload: rows with unsent app changes were carried over as the app left them; their
/// records are read again so the fields the app did not change catch up with Salesforce (through
/// the conflict policy). Read-only mappings have none.
pub async fn reread_unsent(ctx: &MappingCtx) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    if !mapping.is_read_write() {
        return Ok(());
    }
    let mut db = ctx.connect().await?;
    let pending: Vec<String> = db
        .query(
            &format!(
                "SELECT DISTINCT t.sfid FROM {table} t JOIN {schema}._trigger_log l ON l.record_id = t.id \
                 WHERE l.table_name = $1 AND l.state IN ('NEW', 'PENDING') AND t.sfid IS NOT NULL \
                 LIMIT {limit}",
                table = qualified(mapping),
                schema = quote_ident(mapping.schema),
                limit = crate::salesforce::rest::RETRIEVE_CHUNK
            ),
            &[&mapping.table],
        )
        .await?
        .iter()
        .map(|r| r.get("sfid"))
        .collect();
    if !pending.is_empty() {
        let tx = apply::begin_engine_tx(&mut db).await?;
        ingest::refetch(ctx, &tx, &pending, false).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// A Bulk query's pages, the next one downloading while the current one is converted and
/// copied: Postgres keeps working between pages, and at most two pages are held at once.
struct Prefetched {
    want: tokio::sync::mpsc::Sender<()>,
    pages: tokio::sync::mpsc::Receiver<Result<Option<CsvPage>, SfError>>,
    fetcher: tokio::task::JoinHandle<BulkQuery>,
    asked: bool,
}

fn prefetched(mut job: BulkQuery) -> Prefetched {
    let (want, mut wanted) = tokio::sync::mpsc::channel::<()>(1);
    let (sender, pages) = tokio::sync::mpsc::channel(1);
    let fetcher = tokio::spawn(async move {
        while wanted.recv().await.is_some() {
            let page = job.next_page().await;
            let last = !matches!(page, Ok(Some(_)));
            if sender.send(page).await.is_err() || last {
                break;
            }
        }
        job
    });
    Prefetched {
        want,
        pages,
        fetcher,
        asked: false,
    }
}

impl Prefetched {
    /// The next page (`None` after the last), asking for the one after it at once: one page is
    /// asked for at a time, so one downloads while the caller works on the other.
    async fn next(&mut self) -> Result<Option<CsvPage>, SfError> {
        if !self.asked {
            self.asked = true;
            if self.want.send(()).await.is_err() {
                return Ok(None);
            }
        }
        let page = self.pages.recv().await.transpose()?.flatten();
        if page.is_some() {
            let _ = self.want.send(()).await;
        }
        Ok(page)
    }

    /// The job, once every page was read.
    async fn finish(self) -> Option<BulkQuery> {
        drop(self.want);
        self.fetcher.await.ok()
    }
}

/// For each mapped field, its column in a Bulk CSV header (names match case-insensitively).
pub fn csv_positions(fields: &[FieldDescriptor], header: &csv::StringRecord) -> Vec<Option<usize>> {
    fields
        .iter()
        .map(|f| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(f.sf_name))
        })
        .collect()
}

/// Moves the staged rows into the table in place (when it cannot be swapped): newer states win,
/// synced rows Salesforce no longer selects leave (deleted, or `isdeleted` under soft deletes),
/// rows deleted in Postgres during the load stay deleted.
async fn merge_staged(
    tx: &tokio_postgres::Transaction<'_>,
    ctx: &MappingCtx,
    started_at: NaiveDateTime,
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    let table = qualified(mapping);
    let columns: Vec<String> = mapping
        .fields
        .iter()
        .map(|f| quote_ident(f.column))
        .collect();
    let sets: Vec<String> = columns
        .iter()
        .filter(|c| c.as_str() != "sfid")
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    // A record the table held when the load began and Postgres deleted since stays deleted.
    tx.batch_execute(&format!(
        "INSERT INTO {table} AS t ({cols}) SELECT {cols} FROM _forcesync_load l \
         WHERE NOT EXISTS (SELECT 1 FROM _forcesync_known k WHERE k.sfid = l.sfid \
             AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.sfid = k.sfid)) \
         ON CONFLICT (sfid) DO UPDATE SET {sets} \
         WHERE t.systemmodstamp IS NULL OR EXCLUDED.systemmodstamp IS NULL OR t.systemmodstamp <= EXCLUDED.systemmodstamp",
        cols = columns.join(", "),
        sets = sets.join(", ")
    ))
    .await?;
    // Only rows Salesforce had stamped before the load began can be judged absent: a record the
    // writer created (no stamp yet) or that changed during the load is not in the snapshot and
    // must stay.
    let gone: Vec<String> = tx
        .query(
            &format!(
                "SELECT t.sfid FROM {table} t WHERE t.sfid IS NOT NULL \
                 AND t.systemmodstamp < $1 \
                 AND NOT EXISTS (SELECT 1 FROM _forcesync_load l WHERE l.sfid = t.sfid)"
            ),
            &[&started_at],
        )
        .await?
        .iter()
        .map(|r| r.get("sfid"))
        .collect();
    if !gone.is_empty() {
        apply::remove_unmatched(tx, mapping, &gone).await?;
    }
    Ok(())
}
