//! `verify`'s engine work: compares Salesforce and Postgres record by record and finds what
//! differs: records missing from Postgres, extra rows Salesforce no longer has (or that left the
//! mapping's filter), and stale rows (an older `systemmodstamp` than Salesforce's). With
//! [`Options::repair`] it re-reads exactly those records through the engine's read path. The
//! result is a [`Report`]; the CLI (`forcesync verify`) renders it and picks the exit code.
//!
//! Both sides are read as `(Id, SystemModstamp)` in Id order and merge-joined ([`Merge`], pure)
//! in bounded memory: Salesforce through the REST query API with `ORDER BY Id` (2,000 per call),
//! or above [`Options::bulk_above`] records through one Bulk API 2.0 query job (without
//! `ORDER BY`, which would turn off Salesforce's PK chunking) staged in a temporary table and
//! read back sorted; Postgres through a cursor ordered by `sfid COLLATE "C"`, the byte order of
//! case-sensitive Salesforce Ids. A side that comes out of order stops the comparison with an
//! error rather than reporting wrong differences.
//!
//! Repair goes through [`ingest::refetch`] (the records are retrieved by Id, applied with the
//! mapping's filter and conflict policy; Ids Salesforce no longer has are deleted, or marked
//! `isdeleted` under soft deletes). Extra rows with writes still waiting in `_trigger_log` are left
//! alone and reported: the writer sends those first.
//!
//! `verify` may run next to `forcesync run`: a record changed while the two sides are read can
//! show up as a difference once; a repair re-reads it, which is harmless, and a second `verify`
//! no longer reports it.

mod merge;

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;
use tokio_postgres::{Client as PgClient, Transaction};

use crate::engine::{apply, ingest, soql, system::quote_ident, EngineError, MappingCtx};
use crate::salesforce::bulk::{PollPolicy, QueryOperation};
use crate::salesforce::rest::parse_datetime;
use crate::salesforce::SfError;

pub use merge::{Kind, Merge, OutOfOrder, Side};

/// Records read from either side per call or cursor fetch.
const PAGE: u32 = 2_000;
/// Differences repaired per Postgres transaction (one Collections retrieve call).
const REPAIR_BATCH: usize = crate::salesforce::rest::RETRIEVE_CHUNK;

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

/// How a comparison runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Re-read the records that differ.
    pub repair: bool,
    /// Ids kept in the report per kind.
    pub show: usize,
    /// Read Salesforce through Bulk API 2.0 above this many records.
    pub bulk_above: u64,
}

/// Why a comparison stopped.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Salesforce answered with something the comparison cannot read.
    #[error("{0}")]
    Answer(String),
    #[error(transparent)]
    OutOfOrder(#[from] OutOfOrder),
    /// The repair of a mapping failed.
    #[error("{mapping}: {error}")]
    Repair { mapping: String, error: EngineError },
}

impl From<tokio_postgres::Error> for VerifyError {
    fn from(e: tokio_postgres::Error) -> Self {
        VerifyError::Engine(e.into())
    }
}

impl From<SfError> for VerifyError {
    fn from(e: SfError) -> Self {
        VerifyError::Engine(e.into())
    }
}

/// Where the Salesforce side comes from.
enum SfSource {
    /// REST query pages; `None` after the last one.
    Rest(Option<crate::salesforce::rest::QueryPage>),
    /// The staged Bulk results, read back through a cursor.
    Staged(tokio_postgres::Portal),
}

fn stamp_of(text: Option<&str>) -> Result<NaiveDateTime, VerifyError> {
    let text =
        text.ok_or_else(|| VerifyError::Answer("a record without SystemModstamp".to_owned()))?;
    parse_datetime(text)
        .map(|t| t.naive_utc())
        .map_err(|e| VerifyError::Answer(format!("Salesforce: {e}")))
}

fn rest_entries(records: &[Value]) -> Result<Vec<(String, NaiveDateTime)>, VerifyError> {
    records
        .iter()
        .map(|r| {
            let id = r
                .get("Id")
                .and_then(Value::as_str)
                .ok_or_else(|| VerifyError::Answer("a record without Id".to_owned()))?;
            Ok((
                id.to_owned(),
                stamp_of(r.get("SystemModstamp").and_then(Value::as_str))?,
            ))
        })
        .collect()
}

/// Stages the Bulk results in a temporary table of the scan's session.
async fn stage_bulk(ctx: &MappingCtx, tx: &Transaction<'_>) -> Result<(), VerifyError> {
    tx.batch_execute(
        "CREATE TEMP TABLE _forcesync_verify (id text COLLATE \"C\" PRIMARY KEY, stamp timestamp) \
         ON COMMIT DROP",
    )
    .await?;
    let mut job = ctx
        .client
        .bulk_query(
            &soql::id_stamp_query(ctx.mapping, false),
            QueryOperation::Query,
            Some(50_000),
            &PollPolicy::default(),
        )
        .await?;
    while let Some(page) = job.next_page().await? {
        let rows = page.rows()?;
        let (Some(id), Some(stamp)) = (rows.column("Id"), rows.column("SystemModstamp")) else {
            return Err(VerifyError::Answer(
                "the Bulk results lack the Id or SystemModstamp column".to_owned(),
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
pub async fn compare(ctx: &MappingCtx, options: &Options) -> Result<Report, VerifyError> {
    let mapping = ctx.mapping;
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
    let total = ctx.client.count(&soql::count_query(mapping)).await?;
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
            .query_with_batch_size(&soql::id_stamp_query(ctx.mapping, true), false, PAGE)
            .await?;
        SfSource::Rest(Some(first))
    };
    let pg_portal = scan
        .bind(
            &format!(
                "SELECT sfid::text AS sfid, systemmodstamp AS stamp FROM {} \
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
                merge.push_postgres(rows.iter().map(|r| (r.get("sfid"), r.get("stamp"))))?;
            }
            Some(Side::Salesforce) => {
                let page = match &mut sf_source {
                    SfSource::Rest(page) => match page.take() {
                        None => Vec::new(),
                        Some(current) => {
                            if let (false, Some(next)) =
                                (current.done, current.next_records_url.as_deref())
                            {
                                *page = Some(ctx.client.query_more(next).await?);
                            }
                            rest_entries(&current.records)?
                        }
                    },
                    SfSource::Staged(portal) => scan
                        .query_portal(portal, PAGE as i32)
                        .await?
                        .iter()
                        .map(|r| (r.get("id"), r.get("stamp")))
                        .collect(),
                };
                if page.is_empty() {
                    merge.finish(Side::Salesforce);
                }
                report.salesforce_records += page.len() as u64;
                merge.push_salesforce(page)?;
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
) -> Result<(), VerifyError> {
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
                "SELECT t.sfid::text AS sfid FROM {table} t WHERE t.sfid = ANY($1) AND EXISTS \
                 (SELECT 1 FROM {schema}._trigger_log l WHERE l.table_name = $2 \
                  AND l.record_id = t.id AND l.state IN ('NEW', 'PENDING'))",
                table = apply::qualified(mapping),
                schema = quote_ident(mapping.schema)
            ),
            &[&extras, &mapping.table],
        )
        .await?
        .iter()
        .map(|r| r.get("sfid"))
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
        .map_err(|error| VerifyError::Repair {
            mapping: mapping.object.to_owned(),
            error,
        })?;
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
        let at = chrono::DateTime::from_timestamp(1_704_164_645, 6_000_000)
            .unwrap()
            .naive_utc();
        assert_eq!(bulk, at);
        assert!(rest_entries(&[serde_json::json!({"Id": "001A"})]).is_err());
    }
}
