//! The trigger-log writer: application writes in Postgres → Salesforce, exactly once, in order,
//! failures visible.
//!
//! The capture triggers record every application write in `_trigger_log` and `NOTIFY` the
//! channel `<schema>.hc_trigger_log`. The writer listens on a dedicated connection (with a slow
//! fallback poll, so a lost notification delays nothing for long) and works in rounds:
//!
//! 1. **Reconcile** journaled creates whose outcome is unknown (`RECONCILE`: a crash between the
//!    call and the commit, or an ambiguous failure): query the records Salesforce created since
//!    they were sent, adopt a record that matches the sent values, resend the others
//!    ([`reconcile`]). Nothing new is sent for a record before its reconciliation.
//! 2. **Retry** journaled writes whose backoff is over (`RETRY`: an indefinite failure such as
//!    `UNABLE_TO_LOCK_ROW` or a 503 storm that outlasted the client's own retries).
//! 3. **Claim** `NEW` entries (oldest first, at most 2,000 in a round's first claim and
//!    `max_batch` in the claims chained after it, one claim of a schema at a time, skipping records
//!    with a journaled write), read the rows a write needs ([`entry::rows_to_read`]: not those
//!    of records whose insert is pending), coalesce each record's entries into one operation
//!    ([`coalesce`]) and plan the calls ([`plan`]); in the same transaction, **journal** every
//!    write about to be sent, with its body: a row of `_forcesync_write_batch` for each call's
//!    worth (an sObject Collections chunk, a Bulk API job or each half of a large one). That
//!    row is what marks its records' entries taken: they stay `NEW` in `_trigger_log` until
//!    they are archived. A child
//!    naming by external ID a parent whose own write is not sent yet (another instance sends
//!    the parent's mapping, or nobody has taken it) stays `NEW` until the parent is in
//!    Salesforce ([`Store::unsent_parents`]).
//! 4. **Send**: steps in order (parents first), the chunks of a step concurrently (at most
//!    `max_in_flight` sObject Collections calls), a Bulk API 2.0 job for a large step. While the
//!    last step of a batch is in flight the next batch is claimed; its first step goes out as
//!    soon as that step is answered, and is in flight while that step is settled, so Postgres
//!    and Salesforce work at the same time.
//! 5. **Settle** answers that arrive together in one transaction ([`outcome`]; a step of 2,000
//!    answers or more in two at once, on two connections), before the next
//!    step of the same batch starts: on success the `sfid`
//!    is written back, `_hc_lastop` becomes `INSERTED` / `UPDATED`, the entries are archived as
//!    `SUCCESS` and the batch row (or journal row) goes; a definite failure archives the entries
//!    as `FAILED`, writes `_hc_err` and keeps the row as the app wrote it; an indefinite failure
//!    schedules a retry with backoff (the record waits, others go on); an ambiguous one schedules
//!    a reconciliation. A write sent again gets a row of its own in `_forcesync_write_journal`
//!    (`RETRY`, `RECONCILE`), where retries and reconciliations are scheduled.
//!
//! Exactly once: a write is journaled before it is sent and settled after, each in its own
//! transaction. A crash in between leaves its batch row (or its journal row `SENDING`); on start
//! ([`Writer::recover`]) each write of a batch row becomes a journal row, creates and upserts
//! become `RECONCILE`, and updates and deletes (idempotent: the same values again) are sent
//! again. Mappings with an `upsert_key` upsert by external ID, so their creates
//! reconcile exactly, by a query on that ID; creates without one are matched on the values sent
//! ([`reconcile`]). Reconciliation waits `reconcile_after` past the send, so that a request still
//! travelling when its sender died has landed first.
//!
//! With [`Writer::only_held`] (as `forcesync run` starts it) the writer sends only the mappings
//! whose lease this engine holds ([`super::lease::Held`]), so two instances on one database never
//! both send one mapping; a mapping taken over has its predecessor's in-flight writes recovered
//! first.
//!
//! Read-only mappings have no capture trigger; rows the app changed anyway keep
//! `_hc_lastop = 'PENDING'`, and the writer says so in the mapping state instead of dropping
//! them silently. Archived entries are pruned after `archive_days` (31 by default).
//!
//! Files, one a step: `run.rs` (the loop, reconnects, housekeeping), `round.rs` (one round:
//! the claims, sends and settles run at once, as the pure `pipeline.rs` decides), `reconcile/` (step 1: the pure matcher, and its IO in
//! `journaled.rs`), `claim.rs` (steps 2–3, children held for unsent parents), `send.rs` (step 4),
//! `settle.rs` (step 5: a pure plan and its one transaction); the pure decisions `entry.rs`,
//! `coalesce.rs`, `plan.rs`, `outcome.rs`; the Postgres statements in `store/`; `through.rs`
//! (write-through) and `admin.rs` (the operator's `retry` / `ignore`).

pub mod admin;
mod claim;
pub mod coalesce;
pub mod entry;
pub mod outcome;
mod pipeline;
pub mod plan;
pub mod reconcile;
mod round;
mod run;
pub mod send;
mod settle;
pub mod store;
#[cfg(test)]
mod testing;
pub mod through;

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;

use crate::adapter::MappingDescriptor;
use crate::salesforce::bulk::PollPolicy;
use crate::salesforce::{Client, SfError};

use outcome::Backoff;
use plan::{PlanConfig, Write};
use store::Store;

/// How the writer runs; `WriterConfig::default()` gives the defaults.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub plan: PlanConfig,
    /// Most trigger-log entries claimed in one round.
    pub max_batch: i64,
    /// sObject Collections calls in flight at once.
    pub max_in_flight: usize,
    /// Fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// Under load (the last round had work), wait this long before the next round so more
    /// changes share its calls; when idle, a notification starts a round at once.
    pub batch_window: Duration,
    pub backoff: Backoff,
    /// Archived entries are deleted this many days after they were processed.
    pub archive_days: u32,
    pub bulk_poll: PollPolicy,
    /// How far before the earliest in-flight send reconciliation looks for created records
    /// (clock skew between this host and Salesforce).
    pub reconcile_margin: Duration,
    /// A create is reconciled only this long after it was sent, so that a request still on its
    /// way when the sender died has landed (or failed) before Salesforce is asked.
    pub reconcile_after: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            plan: PlanConfig::default(),
            max_batch: 10_000,
            max_in_flight: 4,
            poll_interval: Duration::from_secs(30),
            batch_window: Duration::from_millis(5),
            backoff: Backoff::default(),
            archive_days: 31,
            bulk_poll: PollPolicy {
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_secs(2),
                timeout: Duration::from_secs(3_600),
            },
            reconcile_margin: Duration::from_secs(300),
            reconcile_after: Duration::from_secs(5),
        }
    }
}

/// A writer failure (Postgres unreachable, or a Salesforce call outside per-record outcomes,
/// such as a reconciliation query).
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("Postgres: {}", crate::engine::db::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("Salesforce ({mapping}): {error}")]
    Salesforce { mapping: String, error: SfError },
    #[error("configuration: {0}")]
    Config(String),
}

/// The writer reaches Postgres through the engine's connection code; every class of error
/// stays what it was (a Salesforce error keeps its definite / indefinite class).
impl From<super::EngineError> for WriteError {
    fn from(e: super::EngineError) -> Self {
        match e {
            super::EngineError::Postgres(e) => WriteError::Postgres(e),
            super::EngineError::Salesforce(error) => WriteError::Salesforce {
                mapping: String::new(),
                error,
            },
            super::EngineError::Config(message) => WriteError::Config(message),
        }
    }
}

/// One mapping the writer sends, with the client to send it with (scoped to its budget).
#[derive(Clone)]
pub struct Target {
    pub mapping: &'static MappingDescriptor,
    pub client: Client,
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Trigger-log entries claimed.
    pub claimed: usize,
    /// Records sent (first sends and retries).
    pub sent: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub retried: usize,
    /// Creates found in Salesforce by reconciliation and adopted.
    pub adopted: usize,
    /// Creates reconciliation did not find, sent again.
    pub resent: usize,
    /// Entries settled without a call.
    pub settled_without_call: usize,
    /// Entries of children held back for a parent not in Salesforce yet (not counted as
    /// claimed: they are taken again once it is).
    pub held: usize,
}

impl RoundReport {
    fn absorb(&mut self, other: RoundReport) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.retried += other.retried;
        self.adopted += other.adopted;
        self.resent += other.resent;
        self.settled_without_call += other.settled_without_call;
        self.held += other.held;
    }

    /// Whether the round did anything.
    pub fn busy(&self) -> bool {
        self.claimed + self.sent + self.adopted + self.resent > 0
    }
}

/// The writer of a set of read-write mappings.
pub struct Writer {
    config: WriterConfig,
    store: Store,
    schema: String,
    /// The read-write mappings this writer may send.
    all: Vec<Target>,
    /// Those it sends now: all of them, or only those the engine holds ([`Writer::only_held`]).
    targets: Vec<Target>,
    held: Option<watch::Receiver<BTreeSet<String>>>,
    read_only: Vec<&'static MappingDescriptor>,
    db: tokio_postgres::Client,
    /// A second connection for claims, so that a batch is claimed while the one before is
    /// settled ([`Writer::with_claim_connection`]); without it claims share `db`.
    claim_db: Option<tokio_postgres::Client>,
    /// A third connection, so that a large step is settled in two transactions at once
    /// ([`settle::settle_split`]); without it a step is settled in one.
    settle_db: Option<tokio_postgres::Client>,
}

/// A write in flight with the journal row or batch row that covers it.
#[derive(Debug, Clone, PartialEq)]
struct Journaled {
    journal: JournalRef,
    attempts: i32,
    write: Write,
}

/// Where a write in flight is journaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JournalRef {
    /// A journal row of its own: a retry, a reconciliation's resend, a write a previous process
    /// left in flight.
    Row(i64),
    /// A batch row, with the other writes of its call (a new write); they are all settled in
    /// one transaction.
    Batch(i64),
}

impl Writer {
    /// A writer over `targets` (read-only mappings among them are only watched) in `schema`.
    pub fn new(
        db: tokio_postgres::Client,
        schema: &str,
        targets: Vec<Target>,
        config: WriterConfig,
    ) -> Writer {
        let (targets, read_only): (Vec<Target>, Vec<Target>) =
            targets.into_iter().partition(|t| t.mapping.is_read_write());
        Writer {
            config,
            store: Store::new(schema),
            schema: schema.to_owned(),
            all: targets.clone(),
            targets,
            held: None,
            read_only: read_only.into_iter().map(|t| t.mapping).collect(),
            db,
            claim_db: None,
            settle_db: None,
        }
    }

    /// Claims on this second connection (to the same database), at the same time as the batch
    /// before is settled on the first one. [`Writer::run`] opens it itself.
    pub fn with_claim_connection(mut self, db: tokio_postgres::Client) -> Writer {
        self.claim_db = Some(db);
        self
    }

    /// Settles a large step's second half on this third connection (to the same database), at
    /// the same time as its first half. [`Writer::run`] opens it itself.
    pub fn with_settle_connection(mut self, db: tokio_postgres::Client) -> Writer {
        self.settle_db = Some(db);
        self
    }

    /// Sends only the mappings in `held` (the engine's leases), so that two instances on one
    /// database never both send one mapping. A mapping that becomes held has the writes its
    /// previous holder left in flight recovered first (reconciled or sent again, as after a
    /// restart); one that is lost is left alone from the next round on.
    pub fn only_held(mut self, held: &super::lease::Held) -> Writer {
        self.held = Some(held.subscribe());
        self.targets.clear();
        self
    }

    /// Follows the held set (see [`Writer::only_held`]); call at the start of a round.
    async fn follow_held(&mut self) -> Result<(), WriteError> {
        let Some(held) = &mut self.held else {
            return Ok(());
        };
        let now = held.borrow_and_update().clone();
        let active: Vec<Target> = self
            .all
            .iter()
            .filter(|t| now.contains(t.mapping.object))
            .cloned()
            .collect();
        let taken: Vec<&str> = active
            .iter()
            .map(|t| t.mapping.table)
            .filter(|table| !self.targets.iter().any(|o| o.mapping.table == *table))
            .collect();
        if !taken.is_empty() {
            let recovered = self.store.recover(&self.db, &taken).await?;
            tracing::info!(tables = ?taken, recovered, "the writer sends these mappings now");
        }
        self.targets = active;
        Ok(())
    }

    fn tables(&self) -> Vec<&'static str> {
        self.targets.iter().map(|t| t.mapping.table).collect()
    }

    /// After a start: writes a previous process left `SENDING` are reconciled (creates) or sent
    /// again (the rest). Call before the first round; returns how many.
    pub async fn recover(&mut self) -> Result<u64, WriteError> {
        let tables = self.tables();
        Ok(self.store.recover(&self.db, &tables).await?)
    }
}

/// Runs the writer of one leased mapping until `shutdown` (the engine runs it beside the
/// mapping's read loop). A read-only mapping only has its unsent writes reported.
pub async fn run_mapping(
    ctx: &super::MappingCtx,
    config: WriterConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), WriteError> {
    let db = super::connect(&ctx.config.database_url).await?;
    let writer = Writer::new(
        db,
        ctx.mapping.schema,
        vec![Target {
            mapping: ctx.mapping,
            client: ctx.client.clone(),
        }],
        config,
    );
    writer.run(&ctx.config.database_url, shutdown).await
}
