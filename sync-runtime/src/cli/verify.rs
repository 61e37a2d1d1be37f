//! `forcesync verify [MAPPING] [--repair]`: compares Salesforce and Postgres record by record and
//! reports what differs: records missing from Postgres, extra rows Salesforce no longer has (or
//! that left the mapping's filter), and stale rows (an older `systemmodstamp` than Salesforce's).
//! `--repair` re-reads exactly those records through the engine's read path.
//!
//! Both sides are read as `(Id, SystemModstamp)` in Id order and merge-joined ([`Merge`], pure)
//! in bounded memory: Salesforce through the REST query API with `ORDER BY Id` (2,000 per call),
//! or above `--bulk-above` records through one Bulk API 2.0 query job (without `ORDER BY`, which
//! would turn off Salesforce's PK chunking) staged in a temporary table and read back sorted;
//! Postgres through a cursor ordered by `sfid COLLATE "C"`, the byte order of case-sensitive
//! Salesforce Ids. A side that comes out of order stops the comparison with an error rather than
//! reporting wrong differences.
//!
//! Repair goes through [`ingest::refetch`] (the records are retrieved by Id, applied with the
//! mapping's filter and conflict policy; Ids Salesforce no longer has are deleted, or marked
//! `isdeleted` under soft deletes). Extra rows with writes still waiting in `_trigger_log` are left
//! alone and reported: the writer sends those first.
//!
//! `verify` may run next to `forcesync run`: a record changed while the two sides are read can
//! show up as a difference once; `--repair` re-reads it, which is harmless, and a second
//! `verify` no longer reports it.

use std::collections::VecDeque;

use chrono::{NaiveDateTime, SubsecRound};
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client as PgClient, Transaction};

use crate::engine::{apply, ingest, system::quote_ident, MappingCtx};
use crate::salesforce::bulk::{PollPolicy, QueryOperation};
use crate::salesforce::rest::parse_datetime;

use super::{run, CliError, Context, EXIT_ATTENTION};

/// Records read from either side per call or cursor fetch.
const PAGE: u32 = 2_000;
/// Differences repaired per Postgres transaction (one Collections retrieve call).
const REPAIR_BATCH: usize = crate::salesforce::rest::RETRIEVE_CHUNK;

/// How one record differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// In Salesforce (and the filter), not in Postgres.
    Missing,
    /// In Postgres, not in Salesforce (deleted, or no longer matching the filter).
    Extra,
    /// In both, Postgres holding an older `SystemModstamp`.
    Stale,
}

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Salesforce,
    Postgres,
}

/// A side produced an Id not after the one before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{side:?} returned Ids out of order ({after} then {id}); the comparison needs both sides in byte order")]
pub struct OutOfOrder {
    pub side: Side,
    pub after: String,
    pub id: String,
}

/// The merge-join of the two Id-ordered streams (pure). Feed each side page by page
/// ([`Merge::needs`] says which side to read next), and collect what [`Merge::step`] decides.
#[derive(Debug, Default)]
pub struct Merge {
    sf: VecDeque<(String, NaiveDateTime)>,
    pg: VecDeque<(String, Option<NaiveDateTime>)>,
    sf_done: bool,
    pg_done: bool,
    sf_last: Option<String>,
    pg_last: Option<String>,
    /// Records present on both sides and equal.
    pub matching: u64,
}

fn check_order(side: Side, last: &mut Option<String>, id: &str) -> Result<(), OutOfOrder> {
    if let Some(after) = last.as_deref() {
        if after.as_bytes() >= id.as_bytes() {
            return Err(OutOfOrder {
                side,
                after: after.to_owned(),
                id: id.to_owned(),
            });
        }
    }
    *last = Some(id.to_owned());
    Ok(())
}

impl Merge {
    /// Adds the next Salesforce records (`Id`, `SystemModstamp`), in Id order.
    pub fn push_salesforce(
        &mut self,
        page: impl IntoIterator<Item = (String, NaiveDateTime)>,
    ) -> Result<(), OutOfOrder> {
        for (id, stamp) in page {
            check_order(Side::Salesforce, &mut self.sf_last, &id)?;
            self.sf.push_back((id, stamp));
        }
        Ok(())
    }

    /// Adds the next Postgres rows (`sfid`, `systemmodstamp`), in byte order of `sfid`.
    pub fn push_postgres(
        &mut self,
        page: impl IntoIterator<Item = (String, Option<NaiveDateTime>)>,
    ) -> Result<(), OutOfOrder> {
        for (id, stamp) in page {
            check_order(Side::Postgres, &mut self.pg_last, &id)?;
            self.pg.push_back((id, stamp));
        }
        Ok(())
    }

    /// No more records will come from that side.
    pub fn finish(&mut self, side: Side) {
        match side {
            Side::Salesforce => self.sf_done = true,
            Side::Postgres => self.pg_done = true,
        }
    }

    /// The side to read next before [`Merge::step`] can decide more; `None` when both are
    /// finished and everything is decided.
    pub fn needs(&self) -> Option<Side> {
        if self.sf.is_empty() && !self.sf_done {
            Some(Side::Salesforce)
        } else if self.pg.is_empty() && !self.pg_done {
            Some(Side::Postgres)
        } else {
            None
        }
    }

    /// Decides every record that can be decided with what was pushed, calling `found` for each
    /// difference. A row is stale when its stamp, to Salesforce's millisecond precision, is
    /// older than Salesforce's (a newer one is a change event's commit time, not staleness).
    pub fn step(&mut self, mut found: impl FnMut(Kind, String)) {
        loop {
            match (self.sf.front(), self.pg.front()) {
                (Some((sf_id, sf_stamp)), Some((pg_id, pg_stamp))) => {
                    match sf_id.as_bytes().cmp(pg_id.as_bytes()) {
                        std::cmp::Ordering::Less => {
                            let (id, _) = self.sf.pop_front().expect("front exists");
                            found(Kind::Missing, id);
                        }
                        std::cmp::Ordering::Greater => {
                            let (id, _) = self.pg.pop_front().expect("front exists");
                            found(Kind::Extra, id);
                        }
                        std::cmp::Ordering::Equal => {
                            let stale = pg_stamp.is_none_or(|pg| pg.trunc_subsecs(3) < *sf_stamp);
                            self.sf.pop_front();
                            let (id, _) = self.pg.pop_front().expect("front exists");
                            if stale {
                                found(Kind::Stale, id);
                            } else {
                                self.matching += 1;
                            }
                        }
                    }
                }
                (Some(_), None) if self.pg_done => {
                    let (id, _) = self.sf.pop_front().expect("front exists");
                    found(Kind::Missing, id);
                }
                (None, Some(_)) if self.sf_done => {
                    let (id, _) = self.pg.pop_front().expect("front exists");
                    found(Kind::Extra, id);
                }
                _ => return,
            }
        }
    }
}

/// What `verify` found for one mapping (and what `--repair` did).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub mapping: String,
    /// Records the mapping selects in Salesforce.
    pub salesforce_records: u64,
    /// Synced rows in Postgres (with an sfid, not marked deleted).
    pub postgres_rows: u64,
    pub matching: u64,
    pub missing: u64,
    pub extra: u64,
    pub stale: u64,
    /// The first Ids of each kind (up to `--show`).
    pub missing_ids: Vec<String>,
    pub extra_ids: Vec<String>,
    pub stale_ids: Vec<String>,
    /// How Salesforce was read: `rest` or `bulk`.
    pub read_through: &'static str,
    /// Salesforce API calls the comparison (and repair) made.
    pub api_calls: u64,
    /// Filled by `--repair`.
    pub repair: Option<Repair>,
}

/// What `--repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// Rows written from the records re-read.
    pub restored: u64,
    /// Rows removed (or marked deleted) because Salesforce no longer has them for this mapping.
    pub removed: u64,
    /// Extra rows left alone because the app has writes for them still waiting to be sent.
    pub skipped_pending_writes: u64,
}

impl Report {
    /// Counts a difference, keeping the first `show` Ids of its kind.
    pub fn record(&mut self, kind: Kind, id: &str, show: usize) {
        let (count, ids) = match kind {
            Kind::Missing => (&mut self.missing, &mut self.missing_ids),
            Kind::Extra => (&mut self.extra, &mut self.extra_ids),
            Kind::Stale => (&mut self.stale, &mut self.stale_ids),
        };
        *count += 1;
        if ids.len() < show {
            ids.push(id.to_owned());
        }
    }

    pub fn differences(&self) -> u64 {
        self.missing + self.extra + self.stale
    }

    /// Differences a repair did not fix.
    pub fn unresolved(&self) -> u64 {
        match &self.repair {
            Some(r) => r.skipped_pending_writes,
            None => self.differences(),
        }
    }
}

/// The text report (pure).
pub fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "{}: {} records in Salesforce, {} rows in Postgres ({} API calls, {}): ",
            r.mapping, r.salesforce_records, r.postgres_rows, r.api_calls, r.read_through
        ));
        if r.differences() == 0 {
            out.push_str("in step\n");
            continue;
        }
        out.push_str(&format!(
            "{} missing, {} extra, {} stale\n",
            r.missing, r.extra, r.stale
        ));
        for (label, count, ids) in [
            ("missing", r.missing, &r.missing_ids),
            ("extra", r.extra, &r.extra_ids),
            ("stale", r.stale, &r.stale_ids),
        ] {
            if ids.is_empty() {
                continue;
            }
            let more = count - ids.len() as u64;
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            out.push_str(&format!("  {label:<8} {}{more}\n", ids.join(" ")));
        }
        if let Some(repair) = &r.repair {
            out.push_str(&format!(
                "  repaired: {} rows re-read, {} removed",
                repair.restored, repair.removed
            ));
            if repair.skipped_pending_writes > 0 {
                out.push_str(&format!(
                    "; {} extra rows left alone (writes still pending)",
                    repair.skipped_pending_writes
                ));
            }
            out.push('\n');
        }
    }
    out
}

/// `forcesync verify`.
pub async fn verify(
    ctx: &Context,
    mapping: Option<&str>,
    options: &Options,
) -> Result<(), CliError> {
    let only = match mapping {
        Some(name) => vec![ctx.mapping(name)?.object.to_owned()],
        None => Vec::new(),
    };
    let engine = run::engine(ctx, only).await?;
    let mut reports = Vec::new();
    for m in engine.mappings() {
        let mctx = engine.context(m)?;
        let before = engine.client.call_counts().total();
        let mut report = compare(&mctx, options).await?;
        report.api_calls = engine.client.call_counts().total() - before;
        reports.push(report);
    }
    if options.json {
        let text = serde_json::to_string_pretty(&reports)
            .map_err(|e| CliError::failure(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&reports));
    }
    let unresolved: u64 = reports.iter().map(Report::unresolved).sum();
    if unresolved > 0 {
        let hint = if options.repair {
            "the writer sends the pending writes first; run `forcesync verify --repair` again afterwards"
        } else {
            "`forcesync verify --repair` re-reads exactly those records"
        };
        return Err(CliError {
            code: EXIT_ATTENTION,
            message: format!("{unresolved} records differ; {hint}"),
        });
    }
    Ok(())
}

/// How `verify` runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub repair: bool,
    pub json: bool,
    /// Ids shown per kind.
    pub show: usize,
    /// Read Salesforce through Bulk API 2.0 above this many records.
    pub bulk_above: u64,
}

/// Where the Salesforce side comes from.
enum SfSource {
    /// REST query pages; `None` after the last one.
    Rest(Option<crate::salesforce::rest::QueryPage>),
    /// The staged Bulk results, read back through a cursor.
    Staged(tokio_postgres::Portal),
}

fn stamp_of(text: Option<&str>) -> Result<NaiveDateTime, CliError> {
    let text = text.ok_or_else(|| CliError::failure("a record without SystemModstamp"))?;
    parse_datetime(text)
        .map(|t| t.naive_utc())
        .map_err(|e| CliError::failure(format!("Salesforce: {e}")))
}

fn rest_entries(records: &[Value]) -> Result<Vec<(String, NaiveDateTime)>, CliError> {
    records
        .iter()
        .map(|r| {
            let id = r
                .get("Id")
                .and_then(Value::as_str)
                .ok_or_else(|| CliError::failure("a record without Id"))?;
            Ok((
                id.to_owned(),
                stamp_of(r.get("SystemModstamp").and_then(Value::as_str))?,
            ))
        })
        .collect()
}

fn soql(ctx: &MappingCtx, ordered: bool) -> String {
    let mut soql = format!("SELECT Id, SystemModstamp FROM {}", ctx.mapping.object);
    if let Some(f) = ctx.mapping.filter {
        soql.push_str(&format!(" WHERE {f}"));
    }
    if ordered {
        soql.push_str(" ORDER BY Id");
    }
    soql
}

/// Stages the Bulk results in a temporary table of the scan's session.
async fn stage_bulk(ctx: &MappingCtx, tx: &Transaction<'_>) -> Result<(), CliError> {
    tx.batch_execute(
        "CREATE TEMP TABLE _forcesync_verify (id text COLLATE \"C\" PRIMARY KEY, stamp timestamp) \
         ON COMMIT DROP",
    )
    .await?;
    let sf = |e: crate::salesforce::SfError| CliError::failure(format!("Salesforce: {e}"));
    let mut job = ctx
        .client
        .bulk_query(
            &soql(ctx, false),
            QueryOperation::Query,
            Some(50_000),
            &PollPolicy::default(),
        )
        .await
        .map_err(sf)?;
    while let Some(page) = job.next_page().await.map_err(sf)? {
        let rows = page.rows().map_err(sf)?;
        let (Some(id), Some(stamp)) = (rows.column("Id"), rows.column("SystemModstamp")) else {
            return Err(CliError::failure(
                "the Bulk results lack the Id or SystemModstamp column",
            ));
        };
        let mut ids = Vec::with_capacity(rows.rows.len());
        let mut stamps = Vec::with_capacity(rows.rows.len());
        for row in &rows.rows {
            ids.push(row[id].as_str());
            stamps.push(stamp_of(Some(&row[stamp]))?);
        }
        tx.execute(
            "INSERT INTO _forcesync_verify SELECT * FROM unnest($1::text[], $2::timestamp[]) \
             ON CONFLICT DO NOTHING",
            &[&ids, &stamps],
        )
        .await?;
    }
    let _ = job.delete().await;
    Ok(())
}

/// Compares one mapping (and repairs it with `--repair`).
pub async fn compare(ctx: &MappingCtx, options: &Options) -> Result<Report, CliError> {
    let mapping = ctx.mapping;
    let sf_err = |e: crate::salesforce::SfError| CliError::failure(format!("Salesforce: {e}"));
    let mut report = Report {
        mapping: mapping.object.to_owned(),
        read_through: "rest",
        repair: options.repair.then(Repair::default),
        ..Report::default()
    };
    let mut scan_db = ctx.connect().await?;
    let mut repair_db = if options.repair {
        Some(ctx.connect().await?)
    } else {
        None
    };
    let scan = scan_db.transaction().await?;
    let total = ctx
        .client
        .count(&crate::engine::soql::count_query(mapping))
        .await
        .map_err(sf_err)?;
    let mut sf_source = if total > options.bulk_above {
        report.read_through = "bulk";
        stage_bulk(ctx, &scan).await?;
        let portal = scan
            .bind("SELECT id, stamp FROM _forcesync_verify ORDER BY id", &[])
            .await?;
        SfSource::Staged(portal)
    } else {
        let first = ctx
            .client
            .query_with_batch_size(&soql(ctx, true), false, PAGE)
            .await
            .map_err(sf_err)?;
        SfSource::Rest(Some(first))
    };
    let pg_portal = scan
        .bind(
            &format!(
                "SELECT sfid::text, systemmodstamp FROM {} \
                 WHERE sfid IS NOT NULL AND isdeleted IS NOT TRUE ORDER BY sfid COLLATE \"C\"",
                apply::qualified(mapping)
            ),
            &[],
        )
        .await?;

    let mut merge = Merge::default();
    let mut batch: Vec<(Kind, String)> = Vec::new();
    loop {
        merge.step(|kind, id| {
            report.record(kind, &id, options.show);
            if options.repair {
                batch.push((kind, id));
            }
        });
        if let Some(db) = repair_db.as_mut() {
            if batch.len() >= REPAIR_BATCH {
                repair(ctx, db, std::mem::take(&mut batch), &mut report).await?;
            }
        }
        match merge.needs() {
            None => break,
            Some(Side::Postgres) => {
                let rows = scan.query_portal(&pg_portal, PAGE as i32).await?;
                if rows.is_empty() {
                    merge.finish(Side::Postgres);
                }
                report.postgres_rows += rows.len() as u64;
                merge
                    .push_postgres(rows.iter().map(|r| (r.get(0), r.get(1))))
                    .map_err(|e| CliError::failure(e.to_string()))?;
            }
            Some(Side::Salesforce) => {
                let page = match &mut sf_source {
                    SfSource::Rest(page) => match page.take() {
                        None => Vec::new(),
                        Some(current) => {
                            if let (false, Some(next)) =
                                (current.done, current.next_records_url.as_deref())
                            {
                                *page = Some(ctx.client.query_more(next).await.map_err(sf_err)?);
                            }
                            rest_entries(&current.records)?
                        }
                    },
                    SfSource::Staged(portal) => scan
                        .query_portal(portal, PAGE as i32)
                        .await?
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect(),
                };
                if page.is_empty() {
                    merge.finish(Side::Salesforce);
                }
                report.salesforce_records += page.len() as u64;
                merge
                    .push_salesforce(page)
                    .map_err(|e| CliError::failure(e.to_string()))?;
            }
        }
    }
    report.matching = merge.matching;
    if let Some(db) = repair_db.as_mut() {
        repair(ctx, db, batch, &mut report).await?;
    }
    scan.commit().await?;
    Ok(report)
}

/// Re-reads one batch of differing records; extra rows with pending writes are left alone.
async fn repair(
    ctx: &MappingCtx,
    db: &mut PgClient,
    batch: Vec<(Kind, String)>,
    report: &mut Report,
) -> Result<(), CliError> {
    if batch.is_empty() {
        return Ok(());
    }
    let mapping = ctx.mapping;
    let extras: Vec<&str> = batch
        .iter()
        .filter(|(k, _)| *k == Kind::Extra)
        .map(|(_, id)| id.as_str())
        .collect();
    let held: Vec<String> = if mapping.is_read_write() && !extras.is_empty() {
        db.query(
            &format!(
                "SELECT t.sfid::text FROM {table} t WHERE t.sfid = ANY($1) AND EXISTS \
                 (SELECT 1 FROM {schema}._trigger_log l WHERE l.table_name = $2 \
                  AND l.record_id = t.id AND l.state IN ('NEW', 'PENDING'))",
                table = apply::qualified(mapping),
                schema = quote_ident(mapping.schema)
            ),
            &[&extras, &mapping.table],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect()
    } else {
        Vec::new()
    };
    let ids: Vec<String> = batch
        .into_iter()
        .map(|(_, id)| id)
        .filter(|id| !held.contains(id))
        .collect();
    let tx = apply::begin_engine_tx(db).await?;
    let applied = ingest::refetch(ctx, &tx, &ids, true)
        .await
        .map_err(|e| CliError::failure(format!("{}: {e}", mapping.object)))?;
    tx.commit().await?;
    let repaired = report.repair.get_or_insert_with(Repair::default);
    repaired.restored += applied.upserted;
    repaired.removed += applied.deleted;
    repaired.skipped_pending_writes += held.len() as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u32) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, millis * 1_000_000)
            .unwrap()
            .naive_utc()
    }

    fn sf(ids: &[(&str, i64)]) -> Vec<(String, NaiveDateTime)> {
        ids.iter()
            .map(|(id, s)| (id.to_string(), at(*s, 0)))
            .collect()
    }

    fn pg(ids: &[(&str, Option<i64>)]) -> Vec<(String, Option<NaiveDateTime>)> {
        ids.iter()
            .map(|(id, s)| (id.to_string(), s.map(|s| at(s, 0))))
            .collect()
    }

    /// Runs a merge to the end, feeding each side in pages of `page` as it asks.
    fn run(
        salesforce: Vec<(String, NaiveDateTime)>,
        postgres: Vec<(String, Option<NaiveDateTime>)>,
        page: usize,
    ) -> (Vec<(Kind, String)>, u64) {
        let mut merge = Merge::default();
        let mut sf = salesforce.chunks(page).map(<[_]>::to_vec);
        let mut pg = postgres.chunks(page).map(<[_]>::to_vec);
        let mut found = Vec::new();
        loop {
            merge.step(|kind, id| found.push((kind, id)));
            match merge.needs() {
                None => break,
                Some(Side::Salesforce) => match sf.next() {
                    Some(p) => merge.push_salesforce(p).unwrap(),
                    None => merge.finish(Side::Salesforce),
                },
                Some(Side::Postgres) => match pg.next() {
                    Some(p) => merge.push_postgres(p).unwrap(),
                    None => merge.finish(Side::Postgres),
                },
            }
        }
        (found, merge.matching)
    }

    #[test]
    fn missing_extra_and_stale_records_are_found_whatever_the_page_size() {
        let salesforce = sf(&[("001A", 10), ("001B", 20), ("001D", 40), ("001E", 50)]);
        let postgres = pg(&[
            ("001A", Some(10)),
            ("001C", Some(30)),
            ("001D", Some(39)),
            ("001E", None),
            ("001F", Some(60)),
        ]);
        for page in [1, 2, 3, 100] {
            let (found, matching) = run(salesforce.clone(), postgres.clone(), page);
            assert_eq!(
                found,
                [
                    (Kind::Missing, "001B".to_owned()),
                    (Kind::Extra, "001C".to_owned()),
                    (Kind::Stale, "001D".to_owned()),
                    (Kind::Stale, "001E".to_owned()),
                    (Kind::Extra, "001F".to_owned()),
                ],
                "page size {page}"
            );
            assert_eq!(matching, 1);
        }
    }

    #[test]
    fn an_empty_side_makes_every_record_of_the_other_a_difference() {
        let (found, _) = run(sf(&[("001A", 1), ("001B", 1)]), Vec::new(), 1);
        assert!(found.iter().all(|(k, _)| *k == Kind::Missing) && found.len() == 2);
        let (found, _) = run(Vec::new(), pg(&[("001A", Some(1))]), 1);
        assert_eq!(found, [(Kind::Extra, "001A".to_owned())]);
        assert_eq!(run(Vec::new(), Vec::new(), 1), (Vec::new(), 0));
    }

    #[test]
    fn a_newer_postgres_stamp_or_extra_microseconds_are_not_stale() {
        // A change event's commit time is at or after Salesforce's stamp; Postgres keeps
        // microseconds Salesforce does not have.
        let salesforce = vec![
            ("001A".to_owned(), at(10, 5)),
            ("001B".to_owned(), at(10, 5)),
        ];
        let newer = at(11, 0);
        let same_ms = at(10, 5) + chrono::Duration::microseconds(700);
        let postgres = vec![
            ("001A".to_owned(), Some(newer)),
            ("001B".to_owned(), Some(same_ms)),
        ];
        assert_eq!(run(salesforce, postgres, 2), (Vec::new(), 2));
    }

    #[test]
    fn ids_compare_as_bytes_so_case_matters() {
        // 'Z' (0x5A) sorts before 'a' (0x61): Salesforce's case-sensitive Ids, COLLATE "C".
        let salesforce = sf(&[("001Z", 1), ("001a", 1)]);
        let postgres = pg(&[("001Z", Some(1)), ("001a", Some(1))]);
        assert_eq!(run(salesforce, postgres, 1), (Vec::new(), 2));
    }

    #[test]
    fn a_side_out_of_order_is_an_error_not_a_wrong_report() {
        let mut merge = Merge::default();
        let error = merge
            .push_salesforce(sf(&[("001b", 1), ("001B", 1)]))
            .unwrap_err();
        assert_eq!(error.side, Side::Salesforce);
        assert!(error.to_string().contains("out of order"), "{error}");
        let mut merge = Merge::default();
        merge.push_postgres(pg(&[("001B", Some(1))])).unwrap();
        assert!(merge.push_postgres(pg(&[("001B", Some(1))])).is_err());
    }

    #[test]
    fn rest_and_bulk_stamps_read_the_same() {
        let rest = rest_entries(&[serde_json::json!({
            "attributes": {"type": "Account"},
            "Id": "001A",
            "SystemModstamp": "2024-01-02T03:04:05.006+0000"
        })])
        .unwrap();
        let bulk = stamp_of(Some("2024-01-02T03:04:05.006Z")).unwrap();
        assert_eq!(rest, [("001A".to_owned(), bulk)]);
        assert_eq!(bulk, at(1_704_164_645, 6));
        assert!(rest_entries(&[serde_json::json!({"Id": "001A"})]).is_err());
    }

    #[test]
    fn the_report_counts_everything_and_shows_the_first_ids() {
        let mut report = Report {
            mapping: "Account".into(),
            salesforce_records: 5,
            postgres_rows: 4,
            read_through: "rest",
            api_calls: 2,
            ..Report::default()
        };
        for id in ["001A", "001B", "001C"] {
            report.record(Kind::Missing, id, 2);
        }
        report.record(Kind::Stale, "001D", 2);
        assert_eq!(
            (report.missing, report.stale, report.differences()),
            (3, 1, 4)
        );
        let text = render(std::slice::from_ref(&report));
        assert!(text.contains("Account: 5 records in Salesforce, 4 rows in Postgres (2 API calls, rest): 3 missing, 0 extra, 1 stale"), "{text}");
        assert!(text.contains("missing  001A 001B (and 1 more)"), "{text}");
        assert!(text.contains("stale    001D\n"), "{text}");
        assert!(!text.contains("extra "), "{text}");
        assert_eq!(report.unresolved(), 4);
        report.repair = Some(Repair {
            restored: 4,
            removed: 0,
            skipped_pending_writes: 0,
        });
        assert_eq!(report.unresolved(), 0);
        assert!(render(&[report]).contains("repaired: 4 rows re-read, 0 removed"));
    }
}
