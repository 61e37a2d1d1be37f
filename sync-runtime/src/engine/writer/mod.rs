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
//! 3. **Claim** `NEW` entries (oldest first, one claim of a schema at a time, skipping records
//!    with a journaled write), read their rows, coalesce each record's entries into one operation
//!    ([`coalesce`]) and plan the calls ([`plan`]); in the same transaction, **journal** every
//!    write about to be sent (`SENDING`, with its body). The journal row is what marks a
//!    record's entries taken: they stay `NEW` in `_trigger_log` until they are archived. A child
//!    naming by external ID a parent whose own write is not sent yet (another instance sends
//!    the parent's mapping, or nobody has taken it) stays `NEW` until the parent is in
//!    Salesforce ([`Store::unsent_parents`]).
//! 4. **Send**: steps in order (parents first), the chunks of a step concurrently (at most
//!    `max_in_flight` sObject Collections calls), a Bulk API 2.0 job for a large step. While the
//!    last step of a batch is in flight the next batch is claimed; its first step goes out as
//!    soon as that step is answered, and is in flight while that step is settled, so Postgres
//!    and Salesforce work at the same time.
//! 5. **Settle** answers that arrive together in one transaction ([`outcome`]), before the next
//!    step of the same batch starts: on success the `sfid`
//!    is written back, `_hc_lastop` becomes `INSERTED` / `UPDATED`, the entries are archived as
//!    `SUCCESS` and the journal row goes; a definite failure archives the entries as `FAILED`,
//!    writes `_hc_err` and keeps the row as the app wrote it; an indefinite failure schedules a
//!    retry with backoff (the record waits, others go on); an ambiguous one schedules a
//!    reconciliation.
//!
//! Exactly once: a write is journaled before it is sent and settled after, each in its own
//! transaction. A crash in between leaves the journal row `SENDING`; on start ([`Writer::recover`])
//! creates and upserts become `RECONCILE`, and updates and deletes (idempotent: the same values
//! again) are sent again. Mappings with an `upsert_key` upsert by external ID, so their creates
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

pub mod admin;
pub mod bench;
pub mod coalesce;
pub mod entry;
pub mod outcome;
pub mod plan;
pub mod reconcile;
pub mod send;
pub mod store;
#[cfg(test)]
mod testing;
pub mod through;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{watch, Notify, Semaphore};

use crate::adapter::MappingDescriptor;
use crate::salesforce::bulk::PollPolicy;
use crate::salesforce::{Client, SfError};

use entry::group_by_record;
use outcome::{Backoff, Decision, LastOp};
use plan::{arrange, CallKind, PlanConfig, Step, Transport, Write};
use reconcile::{fields_to_query, match_creates, Candidate, InFlightCreate, Resolution};
use store::{JournalRow, Settle, Store, RECONCILE, RETRY};

/// Claims chained in one round (see [`Writer::round`]).
const MAX_CHAINED_CLAIMS: usize = 64;

/// How soon a writer holding children back looks again whether their parents are in Salesforce
/// (the parent's outcome, written by another instance, sends no notification).
const HELD_RECHECK: Duration = Duration::from_millis(250);

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

impl From<super::EngineError> for WriteError {
    fn from(e: super::EngineError) -> Self {
        match e {
            super::EngineError::Postgres(e) => WriteError::Postgres(e),
            other => WriteError::Config(other.to_string()),
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
}

/// A write in flight with the journal row that covers it.
struct Journaled {
    journal_id: i64,
    attempts: i32,
    write: Write,
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
        }
    }

    /// Claims on this second connection (to the same database), at the same time as the batch
    /// before is settled on the first one. [`Writer::run`] opens it itself.
    pub fn with_claim_connection(mut self, db: tokio_postgres::Client) -> Writer {
        self.claim_db = Some(db);
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

    /// One round: reconcile, retry, claim, send, settle (see the module documentation).
    pub async fn round(&mut self) -> Result<RoundReport, WriteError> {
        self.follow_held().await?;
        let mut report = self.reconcile().await?;
        let retries = self.due_retries().await?;
        let (steps, claimed, mut last_claimed) = self.claim(&mut report, retries, 0).await?;
        report.claimed += claimed;
        // While the last step of a batch is in flight, the next batch is claimed (what the app
        // wrote meanwhile). The steps of one claim go out in order, each once the one before is
        // answered and settled (a child step only once its parents' outcomes are stored). A
        // step of the next claim shares no record with the steps before it (their journal rows
        // kept those records out of the claim), so it goes out as soon as the step before is
        // answered, and that step is settled while it is in flight: Salesforce and Postgres
        // work at the same time, and settles stay in order. The chain ends when a claim finds
        // nothing, or after `MAX_CHAINED_CLAIMS` (so reconciliation and retries get their turn).
        // A chained claim looks only past the entries the claim before took: what it left (the
        // records in flight, entries deferred) waits for the next round, instead of being
        // scanned again by every claim of the chain.
        let mut more = claimed > 0;
        let mut chained = 0;
        let mut queue: std::collections::VecDeque<(usize, SendStep)> =
            steps.into_iter().map(|s| (0, s)).collect();
        let mut unsettled: Option<(usize, Landed)> = None;
        while let Some((batch, step)) = queue.pop_front() {
            let claim_due = queue.is_empty() && more && chained < MAX_CHAINED_CLAIMS;
            let mut next_claim = None;
            let flight = match unsettled.take() {
                Some((before, landed)) if before != batch => {
                    let flight = self.launch(step);
                    if claim_due && self.claim_db.is_some() {
                        let (settled, claimed) = self.settle_and_claim(landed, last_claimed).await;
                        report.absorb(settled?);
                        next_claim = Some(claimed?);
                    } else {
                        report.absorb(self.settle_landed(landed).await?);
                    }
                    flight
                }
                Some((_, landed)) => {
                    report.absorb(self.settle_landed(landed).await?);
                    self.launch(step)
                }
                None => self.launch(step),
            };
            if claim_due {
                let (next, claimed, last, claim_report) = match next_claim {
                    Some(done) => done,
                    None => {
                        let mut claim_report = RoundReport::default();
                        let (next, claimed, last) = self
                            .claim(&mut claim_report, Vec::new(), last_claimed)
                            .await?;
                        (next, claimed, last, claim_report)
                    }
                };
                last_claimed = last_claimed.max(last);
                report.absorb(claim_report);
                report.claimed += claimed;
                more = claimed > 0;
                chained += 1;
                queue.extend(next.into_iter().map(|s| (chained, s)));
            }
            unsettled = Some((batch, self.land(flight, &mut report).await?));
        }
        if let Some((_, landed)) = unsettled {
            report.absorb(self.settle_landed(landed).await?);
        }
        Ok(report)
    }

    /// Rounds until nothing is pending: no `NEW` entry, no journaled write (retries are waited
    /// for). Gives up after `timeout`; returns the summed report.
    pub async fn drain(&mut self, timeout: Duration) -> Result<RoundReport, WriteError> {
        let started = Instant::now();
        let mut total = RoundReport::default();
        loop {
            let report = self.round().await?;
            total.absorb(report);
            let (new, journaled) = self.pending().await?;
            if new == 0 && journaled == 0 {
                return Ok(total);
            }
            if started.elapsed() >= timeout {
                return Ok(total);
            }
            if !report.busy() {
                let wait = self
                    .next_retry_in()
                    .await?
                    .unwrap_or(Duration::from_millis(20))
                    .clamp(Duration::from_millis(5), Duration::from_millis(500));
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// `NEW` entries and journaled writes of this writer's mappings.
    pub async fn pending(&self) -> Result<(i64, i64), WriteError> {
        let tables = self.tables();
        let row = self
            .db
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}._trigger_log WHERE state = 'NEW' AND table_name = ANY($1)),
                            (SELECT count(*) FROM {s}._forcesync_write_journal WHERE table_name = ANY($1))",
                    s = crate::engine::system::quote_ident(&self.schema)
                ),
                &[&tables],
            )
            .await?;
        Ok((row.get(0), row.get(1)))
    }

    /// Time until the earliest scheduled retry, if any.
    pub async fn next_retry_in(&self) -> Result<Option<Duration>, WriteError> {
        let tables = self.tables();
        let row = self
            .db
            .query_one(
                &format!(
                    "SELECT extract(epoch FROM (min(not_before) - now()))::float8
                     FROM {}._forcesync_write_journal WHERE state = '{RETRY}' AND table_name = ANY($1)",
                    crate::engine::system::quote_ident(&self.schema)
                ),
                &[&tables],
            )
            .await?;
        let seconds: Option<f64> = row.get(0);
        Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }

    /// Runs until `shutdown` turns true: rounds on every notification of the trigger log (a
    /// dedicated `LISTEN` connection to `database_url`), on the fallback poll, and when a retry
    /// falls due; prunes the archive and reports unsent writes of read-only mappings.
    pub async fn run(
        mut self,
        database_url: &str,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), WriteError> {
        let notify = Arc::new(Notify::new());
        let mut listener = listen(database_url, &self.schema, notify.clone()).await?;
        if self.claim_db.is_none() {
            self.claim_db = Some(crate::engine::connect(database_url).await?);
        }
        self.recover().await?;
        let mut last_housekeeping: Option<Instant> = None;
        let mut busy = false;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            // A listener whose connection ended (it woke the writer as it went) is replaced.
            if listener.ended() {
                match listen(database_url, &self.schema, notify.clone()).await {
                    Ok(new) => listener = new,
                    Err(e) => tracing::warn!("trigger-log listener cannot reconnect: {e}"),
                }
            }
            if last_housekeeping.is_none_or(|t| t.elapsed() >= self.config.poll_interval) {
                if let Err(e) = self.housekeeping().await {
                    tracing::warn!("writer housekeeping failed: {e}");
                    self.reconnect(database_url).await;
                }
                last_housekeeping = Some(Instant::now());
            }
            if busy {
                tokio::time::sleep(self.config.batch_window).await;
            }
            let report = match self.round().await {
                Ok(report) => report,
                Err(e) => {
                    tracing::warn!("writer round failed: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => {}
                    }
                    self.reconnect(database_url).await;
                    continue;
                }
            };
            busy = report.busy();
            if busy {
                continue;
            }
            let wait = self
                .next_retry_in()
                .await
                .unwrap_or(None)
                .map_or(self.config.poll_interval, |d| {
                    d.min(self.config.poll_interval)
                });
            let wait = if report.held > 0 {
                wait.min(HELD_RECHECK)
            } else {
                wait
            };
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                _ = held_changed(&mut self.held) => {}
            }
        }
    }

    /// Replaces a connection Postgres closed (a restart, a dropped socket): without this every
    /// later round would fail on it. A write in flight when it closed is still journaled
    /// `SENDING` and is recovered (reconciled or sent again) before anything new is sent.
    async fn reconnect(&mut self, database_url: &str) {
        let mut replaced = false;
        for db in std::iter::once(&mut self.db).chain(self.claim_db.as_mut()) {
            if !db.is_closed() {
                continue;
            }
            match crate::engine::connect(database_url).await {
                Ok(new) => {
                    *db = new;
                    replaced = true;
                }
                Err(e) => tracing::warn!("writer cannot reconnect to Postgres: {e}"),
            }
        }
        if replaced {
            tracing::info!("the writer reconnected to Postgres");
            if let Err(e) = self.recover().await {
                tracing::warn!("writer recovery after reconnecting failed: {e}");
            }
        }
    }

    /// Prunes the archive and records, for each read-only mapping, how many application writes
    /// were not sent.
    pub async fn housekeeping(&mut self) -> Result<(), WriteError> {
        self.store.prune(&self.db, self.config.archive_days).await?;
        for mapping in self.read_only.clone() {
            let unsent = self.store.unsent_read_only(&self.db, mapping).await?;
            if unsent > 0 {
                let message = format!(
                    "{unsent} rows changed in Postgres are not sent: {} is a read-only mapping",
                    mapping.object
                );
                self.db
                    .execute(
                        &format!(
                            "UPDATE {}._forcesync_mapping_state SET message = $2, updated_at = now()
                             WHERE mapping = $1 AND message IS DISTINCT FROM $2",
                            crate::engine::system::quote_ident(&self.schema)
                        ),
                        &[&mapping.object, &message],
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Step 1: journaled creates with unknown outcome, per mapping.
    async fn reconcile(&mut self) -> Result<RoundReport, WriteError> {
        let mut report = RoundReport::default();
        for t in 0..self.targets.len() {
            let mapping = self.targets[t].mapping;
            let rows = self
                .store
                .journaled(&self.db, &[mapping.table], &[RECONCILE])
                .await?;
            if rows.is_empty() {
                continue;
            }
            let settled_before = Utc::now()
                - chrono::Duration::from_std(self.config.reconcile_after)
                    .unwrap_or(chrono::Duration::seconds(5));
            let (ready, others): (Vec<JournalRow>, Vec<JournalRow>) = rows
                .into_iter()
                .filter(|r| {
                    !matches!(r.write.kind, CallKind::Create | CallKind::Upsert)
                        || r.sent_at <= settled_before
                })
                .partition(|r| matches!(r.write.kind, CallKind::Create | CallKind::Upsert));
            let other_ids: Vec<i64> = others.iter().map(|r| r.id).collect();
            self.store
                .set_journal_state(&self.db, &other_ids, RETRY)
                .await?;
            let (creates, upserts): (Vec<JournalRow>, Vec<JournalRow>) = ready
                .into_iter()
                .partition(|r| r.write.kind == CallKind::Create);
            if !upserts.is_empty() {
                report.absorb(self.reconcile_upserts(t, &upserts).await?);
            }
            if creates.is_empty() {
                continue;
            }
            let (candidates, by_user) = self.candidates(t, &creates).await?;
            let candidate_ids: Vec<String> = candidates.iter().map(|c| c.id.clone()).collect();
            let taken: HashSet<String> = self
                .store
                .held_sfids(&self.db, mapping, &candidate_ids, by_user)
                .await?
                .into_iter()
                .collect();
            let in_flight: Vec<InFlightCreate> = creates
                .iter()
                .map(|r| InFlightCreate {
                    journal_id: r.id,
                    body: r.write.body.clone(),
                })
                .collect();
            let resolutions = match_creates(&in_flight, &candidates, &taken);
            let by_id: HashMap<i64, &JournalRow> = creates.iter().map(|r| (r.id, r)).collect();
            let mut settles = Vec::new();
            let mut adopted_ids = Vec::new();
            let mut resend_ids = Vec::new();
            for (journal_id, resolution) in resolutions {
                let row = by_id[&journal_id];
                match resolution {
                    Resolution::Adopt(sfid) => {
                        settles.push(success(&row.write, Some(sfid), LastOp::Inserted, true));
                        adopted_ids.push(journal_id);
                    }
                    Resolution::Resend => resend_ids.push(journal_id),
                }
            }
            report.adopted += adopted_ids.len();
            report.resent += resend_ids.len();
            let tx = self.db.transaction().await?;
            self.store
                .settle(&tx, mapping, &settles, &adopted_ids)
                .await?;
            self.store
                .set_journal_state(&tx, &resend_ids, RETRY)
                .await?;
            tx.commit().await?;
        }
        Ok(report)
    }

    /// Upserts whose outcome is unknown: a record with the external ID exists (adopted: the
    /// upsert created or found it) or not (sent again).
    async fn reconcile_upserts(
        &mut self,
        t: usize,
        upserts: &[JournalRow],
    ) -> Result<RoundReport, WriteError> {
        let target = self.targets[t].clone();
        let mapping = target.mapping;
        let mut report = RoundReport::default();
        let Some(key) = mapping.upsert_key else {
            let ids: Vec<i64> = upserts.iter().map(|r| r.id).collect();
            self.store.set_journal_state(&self.db, &ids, RETRY).await?;
            return Ok(report);
        };
        let mut found: HashMap<String, String> = HashMap::new();
        for chunk in upserts.chunks(200) {
            let values: Vec<String> = chunk
                .iter()
                .filter_map(|r| r.write.external_id.as_deref())
                .map(soql_string)
                .collect();
            if values.is_empty() {
                continue;
            }
            let soql = format!(
                "SELECT Id, {key} FROM {} WHERE {key} IN ({})",
                mapping.object,
                values.join(", ")
            );
            let page =
                target
                    .client
                    .query(&soql)
                    .await
                    .map_err(|error| WriteError::Salesforce {
                        mapping: mapping.object.to_owned(),
                        error,
                    })?;
            for record in &page.records {
                if let (Some(id), Some(ext)) = (
                    record.get("Id").and_then(Value::as_str),
                    record.get(key).and_then(Value::as_str),
                ) {
                    found.insert(ext.to_ascii_lowercase(), id.to_owned());
                }
            }
        }
        let mut settles = Vec::new();
        let mut adopted = Vec::new();
        let mut resend = Vec::new();
        for r in upserts {
            let sfid = r
                .write
                .external_id
                .as_ref()
                .and_then(|x| found.get(&x.to_ascii_lowercase()));
            match sfid {
                Some(sfid) => {
                    settles.push(success(
                        &r.write,
                        Some(sfid.clone()),
                        LastOp::Inserted,
                        true,
                    ));
                    adopted.push(r.id);
                }
                None => resend.push(r.id),
            }
        }
        report.adopted += adopted.len();
        report.resent += resend.len();
        let tx = self.db.transaction().await?;
        self.store.settle(&tx, mapping, &settles, &adopted).await?;
        self.store.set_journal_state(&tx, &resend, RETRY).await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Records of the mapping created since the earliest of these sends, with the sent fields.
    async fn candidates(
        &self,
        t: usize,
        creates: &[JournalRow],
    ) -> Result<(Vec<Candidate>, bool), WriteError> {
        let target = &self.targets[t];
        let in_flight: Vec<InFlightCreate> = creates
            .iter()
            .map(|r| InFlightCreate {
                journal_id: r.id,
                body: r.write.body.clone(),
            })
            .collect();
        let earliest: DateTime<Utc> = creates
            .iter()
            .map(|r| r.sent_at)
            .min()
            .unwrap_or_else(Utc::now);
        let since = earliest
            - chrono::Duration::from_std(self.config.reconcile_margin)
                .unwrap_or(chrono::Duration::minutes(5));
        let mut fields = vec!["Id".to_owned()];
        fields.extend(fields_to_query(&in_flight));
        let sf_error = |error: SfError| WriteError::Salesforce {
            mapping: target.mapping.object.to_owned(),
            error,
        };
        let user = target.client.user_id().await.map_err(sf_error)?;
        let by_user = user
            .as_deref()
            .map(|u| format!(" AND CreatedById = {}", soql_string(u)))
            .unwrap_or_default();
        let soql = format!(
            "SELECT {} FROM {} WHERE CreatedDate >= {}{by_user} ORDER BY CreatedDate, Id",
            fields.join(", "),
            target.mapping.object,
            since.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let mut page = target.client.query(&soql).await.map_err(sf_error)?;
        let mut candidates = Vec::new();
        loop {
            for record in &page.records {
                let Some(fields) = record.as_object() else {
                    continue;
                };
                let Some(id) = fields.get("Id").and_then(Value::as_str) else {
                    continue;
                };
                candidates.push(Candidate {
                    id: id.to_owned(),
                    fields: fields.clone(),
                });
            }
            match (&page.next_records_url, page.done) {
                (Some(next), false) => {
                    page = target.client.query_more(next).await.map_err(sf_error)?;
                }
                _ => break,
            }
        }
        Ok((candidates, user.is_some()))
    }

    /// Step 2: journaled writes whose retry is due, moved back to `SENDING`.
    async fn due_retries(&mut self) -> Result<Vec<Journaled>, WriteError> {
        let tables = self.tables();
        let rows = self.store.take_due_retries(&self.db, &tables).await?;
        Ok(rows
            .into_iter()
            .map(|r| Journaled {
                journal_id: r.id,
                attempts: r.attempts,
                write: r.write,
            })
            .collect())
    }

    /// Step 3: claims, plans and journals new entries with ids above `after`; returns every
    /// step to send (retries first, through sObject Collections), how many entries were claimed
    /// and the highest id among them.
    async fn claim(
        &mut self,
        report: &mut RoundReport,
        retries: Vec<Journaled>,
        after: i32,
    ) -> Result<(Vec<SendStep>, usize, i32), WriteError> {
        let db = match &mut self.claim_db {
            Some(db) => db,
            None => &mut self.db,
        };
        claim_batch(
            db,
            &self.store,
            &self.targets,
            &self.config,
            report,
            retries,
            after,
        )
        .await
    }
    /// Step 4 for one step: its chunks start going out (at most `max_in_flight` sObject
    /// Collections calls at once, or one Bulk API job); [`Writer::land`] collects the answers.
    fn launch(&self, step: SendStep) -> InFlight {
        let target = self.targets[step.mapping].clone();
        let kind = step.kind;
        let mut tasks = tokio::task::JoinSet::new();
        match step.transport {
            SendTransport::Bulk(writes) => {
                let poll = self.config.bulk_poll.clone();
                tasks.spawn(async move {
                    let plain: Vec<Write> = writes.iter().map(|j| j.write.clone()).collect();
                    let decisions =
                        send::bulk(&target.client, target.mapping, kind, &plain, &poll).await;
                    (writes, decisions)
                });
            }
            SendTransport::Collections(chunks) => {
                let limit = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
                for chunk in chunks {
                    let client = target.client.clone();
                    let mapping = target.mapping;
                    let limit = limit.clone();
                    tasks.spawn(async move {
                        let _permit = limit.acquire_owned().await;
                        let plain: Vec<Write> = chunk.iter().map(|j| j.write.clone()).collect();
                        let decisions = send::collections(&client, mapping, kind, &plain).await;
                        (chunk, decisions)
                    });
                }
            }
        }
        InFlight {
            mapping: target.mapping,
            tasks,
        }
    }

    /// Waits until every call of a launched step has its answer, settling answers (step 5) while
    /// others are still in flight, several at once when they arrive together; returns the
    /// answers that came last, not yet settled.
    async fn land(
        &mut self,
        mut flight: InFlight,
        report: &mut RoundReport,
    ) -> Result<Landed, WriteError> {
        let mut landed = Landed {
            mapping: flight.mapping,
            writes: Vec::new(),
            decisions: Vec::new(),
        };
        while let Some(done) = flight.tasks.join_next().await {
            let mut take = |done: Result<(Vec<Journaled>, Vec<Decision>), _>| {
                // A send that panicked leaves its writes journaled `SENDING`: the next start
                // reconciles them.
                if let Ok((writes, decisions)) = done {
                    report.sent += writes.len();
                    landed.writes.extend(writes);
                    landed.decisions.extend(decisions);
                }
            };
            take(done);
            while let Some(done) = flight.tasks.try_join_next() {
                take(done);
            }
            if !flight.tasks.is_empty() && !landed.writes.is_empty() {
                let writes = std::mem::take(&mut landed.writes);
                let decisions = std::mem::take(&mut landed.decisions);
                report.absorb(self.settle(flight.mapping, &writes, decisions).await?);
            }
        }
        Ok(landed)
    }

    /// Settles what [`Writer::land`] returned.
    async fn settle_landed(&mut self, landed: Landed) -> Result<RoundReport, WriteError> {
        if landed.writes.is_empty() {
            return Ok(RoundReport::default());
        }
        self.settle(landed.mapping, &landed.writes, landed.decisions)
            .await
    }

    /// Settles `landed` on the first connection while the next batch is claimed on the claim
    /// connection (see [`Writer::with_claim_connection`]).
    #[allow(clippy::type_complexity)]
    async fn settle_and_claim(
        &mut self,
        landed: Landed,
        after: i32,
    ) -> (
        Result<RoundReport, WriteError>,
        Result<(Vec<SendStep>, usize, i32, RoundReport), WriteError>,
    ) {
        let Some(claim_db) = self.claim_db.as_mut() else {
            unreachable!("settle_and_claim is only called with a claim connection");
        };
        let settle = async {
            if landed.writes.is_empty() {
                return Ok(RoundReport::default());
            }
            settle_answers(
                &mut self.db,
                &self.store,
                self.config.backoff,
                landed.mapping,
                &landed.writes,
                landed.decisions,
            )
            .await
        };
        let claim = async {
            let mut report = RoundReport::default();
            let (steps, claimed, last) = claim_batch(
                claim_db,
                &self.store,
                &self.targets,
                &self.config,
                &mut report,
                Vec::new(),
                after,
            )
            .await?;
            Ok((steps, claimed, last, report))
        };
        tokio::join!(settle, claim)
    }

    /// Step 5: one transaction for these answers. Its commit need not wait for the disk: were it
    /// lost in a Postgres crash, its journal rows would still say `SENDING`, which the next
    /// start reconciles like any interrupted send.
    async fn settle(
        &mut self,
        mapping: &'static MappingDescriptor,
        writes: &[Journaled],
        decisions: Vec<Decision>,
    ) -> Result<RoundReport, WriteError> {
        let backoff = self.config.backoff;
        settle_answers(
            &mut self.db,
            &self.store,
            backoff,
            mapping,
            writes,
            decisions,
        )
        .await
    }
}

/// Step 3 on `db` (see [`Writer::claim`]).
async fn claim_batch(
    db: &mut tokio_postgres::Client,
    store: &Store,
    targets: &[Target],
    config: &WriterConfig,
    report: &mut RoundReport,
    retries: Vec<Journaled>,
    after: i32,
) -> Result<(Vec<SendStep>, usize, i32), WriteError> {
    let mappings: Vec<&'static MappingDescriptor> = targets.iter().map(|t| t.mapping).collect();
    let target_of = |table: &str| targets.iter().position(|t| t.mapping.table == table);

    let mut steps = Vec::new();

    if !retries.is_empty() {
        let mut attempts = HashMap::new();
        let mut ids = HashMap::new();
        let mut writes = Vec::new();
        for r in retries {
            let Some(m) = target_of(&r.write.table) else {
                continue;
            };
            let key = (r.write.table.clone(), r.write.record_id);
            attempts.insert(key.clone(), r.attempts);
            ids.insert(key, r.journal_id);
            writes.push((m, r.write));
        }
        let config = PlanConfig {
            bulk_threshold: usize::MAX,
            ..config.plan
        };
        let (retry_steps, later) = arrange(&mappings, writes, config);
        let later_ids: Vec<(i64, u64, String)> = later
            .iter()
            .map(|w| {
                (
                    ids[&(w.table.clone(), w.record_id)],
                    0,
                    "waits for another write of the same key".to_owned(),
                )
            })
            .collect();
        store.schedule_retry(&*db, &later_ids).await?;
        for step in retry_steps {
            steps.push(SendStep::new(step, &ids, &attempts));
        }
    }

    let tx = db.transaction().await?;
    let store::Claimed { entries, unusable } =
        store.claim(&tx, &mappings, config.max_batch, after).await?;
    let last = entries
        .iter()
        .map(|e| e.id)
        .chain(unusable.iter().map(|u| u.id))
        .max()
        .unwrap_or(after);
    for mapping in &mappings {
        let settles: Vec<Settle> = unusable
            .iter()
            .filter(|u| u.table == mapping.table)
            .map(unusable_failure)
            .collect();
        if !settles.is_empty() {
            tracing::warn!(
                table = mapping.table,
                entries = settles.len(),
                "trigger-log entries that name no row or action archived as FAILED"
            );
            report.failed += settles.len();
            store.settle(&tx, mapping, &settles, &[]).await?;
        }
    }
    let claimed = entries.len();
    if claimed == 0 {
        tx.commit().await?;
        return Ok((steps, 0, after));
    }
    let mut rows = HashMap::new();
    for mapping in &mappings {
        let (ids, with_values) = entry::rows_to_read(&entries, mapping.table);
        if ids.is_empty() {
            continue;
        }
        for (id, row) in store.rows(&tx, mapping, &ids, &with_values).await? {
            rows.insert((mapping.table, id), row);
        }
    }
    let claimed_ids: Vec<i32> = entries.iter().map(|e| e.id).collect();
    let groups = group_by_record(entries, |table, id| {
        mappings
            .iter()
            .find(|m| m.table == table)
            .and_then(|m| rows.remove(&(m.table, id)))
    });
    let ops = groups.iter().map(coalesce::coalesce).collect();
    let mut planned = plan::plan(&mappings, ops, config.plan);
    let planned_steps = std::mem::take(&mut planned.steps);
    let (kept, held) =
        hold_for_unsent_parents(&tx, store, &mappings, planned_steps, &claimed_ids).await?;
    planned.steps = kept;
    report.held += held;
    let claimed = claimed - held.min(claimed);

    // Entries settled without a call, and values Salesforce would refuse anyway.
    for (m, mapping) in mappings.iter().enumerate() {
        let mut settles: Vec<Settle> = planned
            .settled
            .iter()
            .filter(|s| s.table == mapping.table)
            .map(|s| Settle {
                table: s.table.clone(),
                record_id: s.record_id,
                entry_ids: s.entry_ids.clone(),
                state: "IGNORED",
                sfid: s.sfid.clone(),
                lastop: s.sfid.as_ref().map(|_| "SYNCED"),
                hc_err: None,
                message: Some("nothing to send".to_owned()),
                created: false,
            })
            .collect();
        report.settled_without_call += settles.len();
        for r in planned.rejected.iter().filter(|r| r.table == mapping.table) {
            let error = outcome::HcError {
                code: "INVALID_VALUE".to_owned(),
                message: r.message.clone(),
                fields: vec![r.field.clone()],
            };
            settles.push(failure(&r.table, r.record_id, &r.entry_ids, &error));
            report.failed += 1;
        }
        if !settles.is_empty() {
            store.settle(&tx, mappings[m], &settles, &[]).await?;
        }
    }

    // Entries left for later (`planned.deferred`) are still `NEW`: the next claim takes them.
    let mut journal_ids = HashMap::new();
    let no_attempts = HashMap::new();
    for (m, mapping) in mappings.iter().enumerate() {
        let writes: Vec<&Write> = planned
            .steps
            .iter()
            .filter(|s| s.mapping == m)
            .flat_map(Step::writes)
            .collect();
        let ids = store.journal(&tx, mapping.object, &writes).await?;
        for (w, id) in writes.iter().zip(ids) {
            journal_ids.insert((w.table.clone(), w.record_id), id);
        }
    }
    tx.commit().await?;
    for step in planned.steps {
        steps.push(SendStep::new(step, &journal_ids, &no_attempts));
    }
    Ok((steps, claimed, last))
}

/// Holds back the writes of children that name, by external ID, a parent whose own write has
/// not been sent ([`Store::unsent_parents`]): its entries stay `NEW` for a later round. A parent
/// of a mapping this writer sends and in flight is not waited for (its step lands before the
/// child's goes out); one sent by another writer, or not taken by anyone yet, is.
async fn hold_for_unsent_parents(
    tx: &tokio_postgres::Transaction<'_>,
    store: &Store,
    mappings: &[&'static MappingDescriptor],
    steps: Vec<Step>,
    claimed: &[i32],
) -> Result<(Vec<Step>, usize), WriteError> {
    // (mapping, relationship column) → parent (table, column) and the values written.
    let mut asked: HashMap<(usize, &'static str), (String, String, BTreeSet<String>)> =
        HashMap::new();
    for step in &steps {
        let mapping = mappings[step.mapping];
        for write in step.writes() {
            for (field, value) in plan::parent_keys(mapping, write) {
                let (Some(r), [parent]) = (field.relationship, field.reference_to) else {
                    continue;
                };
                asked
                    .entry((step.mapping, field.column))
                    .or_insert_with(|| {
                        (
                            parent.to_ascii_lowercase(),
                            r.field.to_ascii_lowercase(),
                            BTreeSet::new(),
                        )
                    })
                    .2
                    .insert(value);
            }
        }
    }
    if asked.is_empty() {
        return Ok((steps, 0));
    }
    let mut waiting: HashSet<(usize, &'static str, String)> = HashSet::new();
    for ((m, column), (parent_table, parent_column, values)) in asked {
        let values: Vec<String> = values.into_iter().collect();
        let another_writer = !mappings.iter().any(|p| p.table == parent_table);
        for value in store
            .unsent_parents(
                tx,
                &parent_table,
                &parent_column,
                &values,
                claimed,
                another_writer,
            )
            .await?
        {
            waiting.insert((m, column, value));
        }
    }
    if waiting.is_empty() {
        return Ok((steps, 0));
    }
    let table_mapping: HashMap<&str, usize> = mappings
        .iter()
        .enumerate()
        .map(|(i, m)| (m.table, i))
        .collect();
    let (kept, held) = plan::hold_back(steps, |w| {
        let Some(&m) = table_mapping.get(w.table.as_str()) else {
            return false;
        };
        plan::parent_keys(mappings[m], w)
            .into_iter()
            .any(|(f, v)| waiting.contains(&(m, f.column, v)))
    });
    tracing::debug!(
        held = held.len(),
        "children wait for parents whose writes are not sent yet"
    );
    Ok((kept, held.iter().map(|w| w.entry_ids.len()).sum()))
}

/// Step 5 on `db`: see [`Writer::settle`].
async fn settle_answers(
    db: &mut tokio_postgres::Client,
    store: &Store,
    backoff: Backoff,
    mapping: &'static MappingDescriptor,
    writes: &[Journaled],
    decisions: Vec<Decision>,
) -> Result<RoundReport, WriteError> {
    let mut report = RoundReport::default();
    let mut settles = Vec::new();
    let mut done = Vec::new();
    let mut retries = Vec::new();
    let mut reconciles = Vec::new();
    let mut reconcile_reason = String::new();
    for (j, decision) in writes.iter().zip(decisions) {
        match decision {
            Decision::Success { sfid, lastop } => {
                let created = j.write.kind == CallKind::Create
                    || (j.write.kind == CallKind::Upsert && lastop == LastOp::Inserted);
                let sfid = sfid.or_else(|| j.write.sfid.clone());
                settles.push(success(&j.write, sfid, lastop, created));
                done.push(j.journal_id);
                report.succeeded += 1;
            }
            Decision::Failed(error) => {
                settles.push(failure(
                    &j.write.table,
                    j.write.record_id,
                    &j.write.entry_ids,
                    &error,
                ));
                done.push(j.journal_id);
                report.failed += 1;
            }
            Decision::Retry { reason } => {
                let attempt = u32::try_from(j.attempts + 1).unwrap_or(u32::MAX);
                let delay = backoff.delay(attempt, jitter());
                retries.push((
                    j.journal_id,
                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    reason,
                ));
                report.retried += 1;
            }
            Decision::Reconcile { reason } => {
                reconciles.push(j.journal_id);
                reconcile_reason = reason;
            }
        }
    }
    let tx = db.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    store.settle(&tx, mapping, &settles, &done).await?;
    store.schedule_retry(&tx, &retries).await?;
    if !reconciles.is_empty() {
        store
            .schedule_reconcile(&tx, &reconciles, &reconcile_reason)
            .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// A launched step: its calls, each answering with its writes and their decisions.
struct InFlight {
    mapping: &'static MappingDescriptor,
    tasks: tokio::task::JoinSet<(Vec<Journaled>, Vec<Decision>)>,
}

/// Answers of a step not yet settled.
struct Landed {
    mapping: &'static MappingDescriptor,
    writes: Vec<Journaled>,
    decisions: Vec<Decision>,
}

/// A planned step whose writes carry their journal rows.
struct SendStep {
    mapping: usize,
    kind: CallKind,
    transport: SendTransport,
}

enum SendTransport {
    Collections(Vec<Vec<Journaled>>),
    Bulk(Vec<Journaled>),
}

impl SendStep {
    fn new(
        step: Step,
        journal_ids: &HashMap<(String, i32), i64>,
        attempts: &HashMap<(String, i32), i32>,
    ) -> SendStep {
        let wrap = |w: Write| {
            let key = (w.table.clone(), w.record_id);
            Journaled {
                journal_id: journal_ids[&key],
                attempts: attempts.get(&key).copied().unwrap_or(0),
                write: w,
            }
        };
        let transport = match step.transport {
            Transport::Collections(chunks) => SendTransport::Collections(
                chunks
                    .into_iter()
                    .map(|c| c.into_iter().map(wrap).collect())
                    .collect(),
            ),
            Transport::Bulk(writes) => SendTransport::Bulk(writes.into_iter().map(wrap).collect()),
        };
        SendStep {
            mapping: step.mapping,
            kind: step.kind,
            transport,
        }
    }
}

fn success(write: &Write, sfid: Option<String>, lastop: LastOp, created: bool) -> Settle {
    Settle {
        table: write.table.clone(),
        record_id: write.record_id,
        entry_ids: write.entry_ids.clone(),
        state: "SUCCESS",
        sfid,
        lastop: match lastop {
            LastOp::Deleted => None,
            other => Some(other.as_str()),
        },
        hc_err: None,
        message: None,
        created,
    }
}

fn failure(table: &str, record_id: i32, entry_ids: &[i32], error: &outcome::HcError) -> Settle {
    Settle {
        table: table.to_owned(),
        record_id,
        entry_ids: entry_ids.to_vec(),
        state: "FAILED",
        sfid: None,
        lastop: Some("FAILED"),
        hc_err: Some(error.to_json()),
        message: Some(error.summary()),
        created: false,
    }
}

/// An entry no write can be made of, archived `FAILED` with the reason; no row is touched.
fn unusable_failure(u: &store::Unusable) -> Settle {
    Settle {
        table: u.table.clone(),
        record_id: 0,
        entry_ids: vec![u.id],
        state: "FAILED",
        sfid: None,
        lastop: None,
        hc_err: None,
        message: Some(u.message.clone()),
        created: false,
    }
}

/// Resolves when the held set changes; never without one.
async fn held_changed(held: &mut Option<watch::Receiver<BTreeSet<String>>>) {
    if let Some(held) = held {
        if held.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

/// A number in `[0, 1)` that differs between calls (backoff jitter; not cryptographic).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// The listener: a dedicated connection (TLS as the URL's `sslmode` says) `LISTEN`ing on
/// `<schema>.hc_trigger_log`, waking `notify` on every notification. Dropping the returned
/// handle stops it.
pub async fn listen(
    database_url: &str,
    schema: &str,
    notify: Arc<Notify>,
) -> Result<Listener, WriteError> {
    use super::db::{client_config, parse_target, TlsMode};
    let target = parse_target(database_url).map_err(WriteError::Config)?;
    let mut config: tokio_postgres::Config = target.url.parse()?;
    let (client, task) = if target.mode == TlsMode::Disable {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        (client, drive_notifications(connection, notify))
    } else {
        config.ssl_mode(if target.mode == TlsMode::Prefer {
            tokio_postgres::config::SslMode::Prefer
        } else {
            tokio_postgres::config::SslMode::Require
        });
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_config(&target)?);
        let (client, connection) = config.connect(tls).await?;
        (client, drive_notifications(connection, notify))
    };
    let channel = format!("{schema}.hc_trigger_log").replace('"', "\"\"");
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await?;
    Ok(Listener {
        _client: client,
        task,
    })
}

fn drive_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    notify: Arc<Notify>,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
            match message {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => notify.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!("trigger-log listener: {e}");
                    // Wake the writer; the fallback poll covers the rest.
                    notify.notify_one();
                    return;
                }
                None => return,
            }
        }
    })
}

/// A running trigger-log listener.
pub struct Listener {
    _client: tokio_postgres::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    /// Whether its connection has ended (no more notifications come).
    pub fn ended(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
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

/// A SOQL string literal.
fn soql_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
