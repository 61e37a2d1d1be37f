//! The writer's loop: rounds on notifications of the trigger log, on the fallback poll and when
//! a retry falls due; reconnects; housekeeping (pruning the archive, read-only mappings' unsent
//! writes); [`Writer::drain`] for callers that want everything pending sent now.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::engine::db::{self, AbortOnDrop, Listener};

use crate::adapter::MappingDescriptor;

use super::store::{Store, RETRY};
use super::{RoundReport, WriteError, Writer};

/// How soon a writer holding children back looks again whether their parents are in Salesforce
/// (the parent's outcome, written by another instance, sends no notification).
const HELD_RECHECK: Duration = Duration::from_millis(250);

impl Writer {
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

    /// `NEW` entries and journaled writes (in journal rows and batch rows) of this writer's
    /// mappings.
    pub async fn pending(&self) -> Result<(i64, i64), WriteError> {
        let tables = self.tables();
        let row = self
            .db
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}._trigger_log WHERE state = 'NEW' AND table_name = ANY($1)) AS entries,
                            (SELECT count(*) FROM {s}._forcesync_write_journal WHERE table_name = ANY($1))
                            + (SELECT coalesce(sum(cardinality(record_ids)), 0) FROM {s}._forcesync_write_batch
                               WHERE table_name = ANY($1))::bigint AS journaled",
                    s = crate::engine::system::quote_ident(&self.schema)
                ),
                &[&tables],
            )
            .await?;
        Ok((row.get("entries"), row.get("journaled")))
    }

    /// Time until the earliest scheduled retry, if any.
    pub async fn next_retry_in(&self) -> Result<Option<Duration>, WriteError> {
        let tables = self.tables();
        let row = self
            .db
            .query_one(
                &format!(
                    "SELECT extract(epoch FROM (min(not_before) - now()))::float8 AS seconds
                     FROM {}._forcesync_write_journal WHERE state = '{RETRY}' AND table_name = ANY($1)",
                    crate::engine::system::quote_ident(&self.schema)
                ),
                &[&tables],
            )
            .await?;
        let seconds: Option<f64> = row.get("seconds");
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
        if self.settle_db.is_none() {
            self.settle_db = Some(crate::engine::connect(database_url).await?);
        }
        self.recover().await?;
        // Housekeeping on its own connection and task: a prune of a large archive or a count of
        // a large read-only table takes as long as it takes without holding up a round (in the
        // loop, each one delayed every write captured meanwhile: `bench write`'s p99 250 ms).
        let _housekeeping = Housekeeper::spawn(
            self.housekeeper(),
            database_url.to_owned(),
            self.config.poll_interval,
            shutdown.clone(),
        );
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
        for db in std::iter::once(&mut self.db)
            .chain(self.claim_db.as_mut())
            .chain(self.settle_db.as_mut())
        {
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
    /// were not sent (what [`Writer::run`]'s housekeeping task does every poll interval).
    pub async fn housekeeping(&mut self) -> Result<(), WriteError> {
        self.housekeeper().run_once(&self.db).await
    }

    fn housekeeper(&self) -> Housekeeper {
        Housekeeper {
            store: self.store.clone(),
            schema: self.schema.clone(),
            read_only: self.read_only.clone(),
            archive_days: self.config.archive_days,
        }
    }
}

/// The writer's housekeeping: what it needs, apart from the writer.
struct Housekeeper {
    store: Store,
    schema: String,
    read_only: Vec<&'static MappingDescriptor>,
    archive_days: u32,
}

impl Housekeeper {
    /// Runs [`Housekeeper::run_once`] now and every `every` on a connection of its own (opened
    /// again when it closes) until `shutdown`, or until the handle is dropped (the writer's loop
    /// ended, however it ended); a failure is logged and tried again next time.
    fn spawn(
        self,
        database_url: String,
        every: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> AbortOnDrop {
        AbortOnDrop(tokio::spawn(async move {
            let mut db: Option<tokio_postgres::Client> = None;
            loop {
                if db.as_ref().is_none_or(|d| d.is_closed()) {
                    db = match crate::engine::connect(&database_url).await {
                        Ok(d) => Some(d),
                        Err(e) => {
                            tracing::warn!("writer housekeeping cannot connect to Postgres: {e}");
                            None
                        }
                    };
                }
                if let Some(db) = &db {
                    if let Err(e) = self.run_once(db).await {
                        tracing::warn!("writer housekeeping failed: {e}");
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    return;
                }
            }
        }))
    }

    async fn run_once(&self, db: &tokio_postgres::Client) -> Result<(), WriteError> {
        self.store.prune(db, self.archive_days).await?;
        for mapping in &self.read_only {
            let unsent = self.store.unsent_read_only(db, mapping).await?;
            if unsent > 0 {
                let message = format!(
                    "{unsent} rows changed in Postgres are not sent: {} is a read-only mapping",
                    mapping.object
                );
                db.execute(
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

/// The trigger log's listener (see [`crate::engine::db::listen`]): the capture triggers notify
/// `<schema>.hc_trigger_log`.
async fn listen(
    database_url: &str,
    schema: &str,
    notify: Arc<Notify>,
) -> Result<Listener, WriteError> {
    let channel = sync_schema::model::notify_channel(schema);
    Ok(db::listen(database_url, &channel, notify).await?)
}
