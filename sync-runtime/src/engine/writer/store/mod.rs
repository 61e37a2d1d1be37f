//! The writer's Postgres statements, one file a concern: claiming trigger-log entries
//! ([`claim`]), the write journal ([`journal`]), writing outcomes back ([`settle`]: sfid,
//! `_hc_lastop`, `_hc_err`, the archive), and the operator's and housekeeping statements over the
//! archive ([`archive`]: requeue, ignore, prune). Every statement is set based (`unnest` of
//! arrays), so a round of thousands of records costs a handful of round trips.
//!
//! Engine writes to mapped tables run with `SET LOCAL forcesync.engine = 'on'`: the capture
//! triggers do not log them and the explicit `_hc_lastop` is kept.
//!
//! A statement that matches a batch against a table finds the table's rows by `= ANY` of the
//! batch's keys, through an index, and joins the batch with nested loops off ([`query_batch`]).
//! The trigger log and the journal empty out as they are worked off, so their statistics often say
//! "empty" right when an app's bulk write has filled them again (and a table's say it is small
//! right after its first bulk insert). A join planned on that estimate read the batch once for
//! every row of the table (a settle of 10,000 entries against 100,000 took 156 s); with nested
//! loops off, the planner read the whole table for each batch instead (the log and the mapped
//! table, twice per settle: half the settle's time in `bench write`).

mod archive;
mod claim;
mod journal;
mod settle;

use serde_json::Value;
use tokio_postgres::GenericClient;

use crate::adapter::MappingDescriptor;
use crate::engine::system::quote_ident;

pub(crate) use claim::{Claimed, Unusable};
pub(crate) use journal::JournalRow;

/// Runs `sql` with nested loops and sequential scans off for this one statement (see the module
/// documentation), then puts the settings back; a failed statement leaves them to the caller's
/// rollback.
pub(crate) async fn query_batch<C: GenericClient>(
    db: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    db.batch_execute("SET LOCAL enable_nestloop = off; SET LOCAL enable_seqscan = off")
        .await?;
    let rows = db.query(sql, params).await?;
    db.batch_execute("SET LOCAL enable_nestloop TO DEFAULT; SET LOCAL enable_seqscan TO DEFAULT")
        .await?;
    Ok(rows)
}

/// [`query_batch`] under a savepoint: a unique violation rolls the statement back and returns
/// `None`, for the caller to make way and run what it must instead; any other error is the
/// caller's to roll back. Run it in a transaction.
pub(crate) async fn query_batch_unless_duplicate<C: GenericClient>(
    db: &C,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Vec<tokio_postgres::Row>>, tokio_postgres::Error> {
    db.batch_execute("SAVEPOINT forcesync_batch").await?;
    let rows = match query_batch(db, sql, params).await {
        Ok(rows) => Some(rows),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
            db.batch_execute("ROLLBACK TO SAVEPOINT forcesync_batch")
                .await?;
            None
        }
        Err(e) => return Err(e),
    };
    db.batch_execute("RELEASE SAVEPOINT forcesync_batch")
        .await?;
    Ok(rows)
}

/// Journal states.
pub(crate) const SENDING: &str = "SENDING";
pub(crate) const RETRY: &str = "RETRY";
pub(crate) const RECONCILE: &str = "RECONCILE";

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

/// Statements over one schema's trigger log, archive and journal.
#[derive(Debug, Clone)]
pub struct Store {
    schema: String,
    log: String,
    archive: String,
    journal: String,
    /// The writes in flight journaled a call's worth a row ([`journal`]).
    batch: String,
    states: String,
    /// Where the capture triggers notify the writer (`<schema>.hc_trigger_log`).
    channel: String,
}

impl Store {
    pub fn new(schema: &str) -> Store {
        let s = quote_ident(schema);
        Store {
            log: format!("{s}._trigger_log"),
            archive: format!("{s}._trigger_log_archive"),
            journal: format!("{s}._forcesync_write_journal"),
            batch: format!("{s}._forcesync_write_batch"),
            states: format!("{s}._forcesync_mapping_state"),
            channel: sync_schema::model::notify_channel(schema),
            schema: s,
        }
    }

    fn table(&self, mapping: &MappingDescriptor) -> String {
        format!("{}.{}", self.schema, quote_ident(mapping.table))
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
