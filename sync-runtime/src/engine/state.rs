//! Each mapping's persisted state: where it is (INITIAL, LOADING, STREAMING, …), why, and the
//! counters the CLI and metrics read (rows, last change applied, lag, API calls by kind).
//!
//! One row per mapping in `<schema>._forcesync_mapping_state` (created by [`super::system`]).
//! The read side writes that table only through [`StateStore`]. Positions that must move together
//! with data (the CDC replay id, the polling cursor, how far deletes were reconciled) are written
//! by the operations in the same transaction as the change they belong to; this module only holds
//! the statements.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

use super::hub::ReplayId;
use super::system::quote_ident;

/// Where a mapping is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Never loaded.
    Initial,
    /// Initial load running.
    Loading,
    /// Loaded; changes arrive by Change Data Capture.
    Streaming,
    /// Loaded; changes arrive by polling (streaming off, or the org stopped delivering events).
    Polling,
    /// A reload into a shadow table is running; the app keeps reading the old table.
    Reloading,
    /// Stopped by an operator.
    Paused,
    /// The mapping's or the org's daily API budget is used up; resumes when it returns.
    BudgetExhausted,
    /// A mapped field is gone or inaccessible in Salesforce; resumes when it is back.
    SchemaChanged,
    /// Stopped by an error that needs an operator; the message says which.
    Error,
}

impl SyncState {
    pub const ALL: [SyncState; 9] = [
        SyncState::Initial,
        SyncState::Loading,
        SyncState::Streaming,
        SyncState::Polling,
        SyncState::Reloading,
        SyncState::Paused,
        SyncState::BudgetExhausted,
        SyncState::SchemaChanged,
        SyncState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Initial => "INITIAL",
            SyncState::Loading => "LOADING",
            SyncState::Streaming => "STREAMING",
            SyncState::Polling => "POLLING",
            SyncState::Reloading => "RELOADING",
            SyncState::Paused => "PAUSED",
            SyncState::BudgetExhausted => "BUDGET_EXHAUSTED",
            SyncState::SchemaChanged => "SCHEMA_CHANGED",
            SyncState::Error => "ERROR",
        }
    }
}

impl fmt::Display for SyncState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SyncState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SyncState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown mapping state `{s}`"))
    }
}

/// A snapshot of one mapping's row.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingStatus {
    pub mapping: String,
    pub table_name: String,
    pub state: SyncState,
    pub message: Option<String>,
    pub watermark: Option<(NaiveDateTime, String)>,
    /// Where streaming resumes: the replay id of the last change event applied, in the form of
    /// the transport that applied it.
    pub cdc_replay_id: Option<ReplayId>,
    /// The transport the mapping streams over (`pubsub`, `cometd`), as the engine last
    /// subscribed its channel; `None` before its first subscription.
    pub streaming_transport: Option<String>,
    /// When the initial load (or the last reload) committed; `None`: never loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    pub load_total: Option<i64>,
    pub load_done: i64,
    pub last_poll_at: Option<DateTime<Utc>>,
    pub last_change_at: Option<DateTime<Utc>>,
    pub last_change_committed_at: Option<DateTime<Utc>>,
    pub last_write_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub records_read: i64,
    pub records_written: i64,
    pub write_errors: i64,
    pub api_calls: serde_json::Value,
    pub paused: bool,
}

#[cfg(test)]
impl MappingStatus {
    /// The state of a mapping that has done nothing yet (tests set what they need).
    pub(crate) fn fixture(mapping: &str, table_name: &str, state: SyncState) -> MappingStatus {
        MappingStatus {
            mapping: mapping.into(),
            table_name: table_name.into(),
            state,
            message: None,
            watermark: None,
            cdc_replay_id: None,
            streaming_transport: None,
            loaded_at: None,
            load_total: None,
            load_done: 0,
            last_poll_at: None,
            last_change_at: None,
            last_change_committed_at: None,
            last_write_at: None,
            last_error: None,
            records_read: 0,
            records_written: 0,
            write_errors: 0,
            api_calls: serde_json::json!({}),
            paused: false,
        }
    }
}

impl MappingStatus {
    /// Whether the mapping has a complete initial load behind it.
    pub fn is_loaded(&self) -> bool {
        self.loaded_at.is_some()
    }

    /// Seconds between the Salesforce commit of the last change applied and its arrival.
    pub fn lag_seconds(&self) -> Option<f64> {
        let applied = self.last_change_at?;
        let committed = self.last_change_committed_at?;
        Some(((applied - committed).num_milliseconds().max(0) as f64) / 1000.0)
    }
}

/// Statements on `_forcesync_mapping_state` for one schema.
#[derive(Debug, Clone)]
pub struct StateStore {
    table: String,
}

impl StateStore {
    /// `UPDATE <table> SET {assignments} WHERE mapping = $1`, with `values` as `$2`, `$3`, ….
    async fn update<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        assignments: &str,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<(), tokio_postgres::Error> {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(values.len() + 1);
        params.push(&mapping);
        params.extend_from_slice(values);
        db.execute(
            &format!("UPDATE {} SET {assignments} WHERE mapping = $1", self.table),
            &params,
        )
        .await
        .map(drop)
    }

    pub fn new(schema: &str) -> StateStore {
        StateStore {
            table: format!("{}._forcesync_mapping_state", quote_ident(schema)),
        }
    }

    /// Creates the mapping's row when missing (state INITIAL).
    pub async fn ensure<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        table_name: &str,
    ) -> Result<(), tokio_postgres::Error> {
        db.execute(
            &format!(
                "INSERT INTO {} (mapping, table_name) VALUES ($1, $2) ON CONFLICT (mapping) DO NOTHING",
                self.table
            ),
            &[&mapping, &table_name],
        )
        .await
        .map(drop)
    }

    /// The mapping's row, if any.
    pub async fn get<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
    ) -> Result<Option<MappingStatus>, tokio_postgres::Error> {
        let row = db
            .query_opt(
                &format!("{} WHERE mapping = $1", self.select()),
                &[&mapping],
            )
            .await?;
        Ok(row.map(|r| status_from_row(&r)))
    }

    /// Every mapping's row, by name.
    pub async fn all<C: GenericClient>(
        &self,
        db: &C,
    ) -> Result<Vec<MappingStatus>, tokio_postgres::Error> {
        let rows = db
            .query(&format!("{} ORDER BY mapping", self.select()), &[])
            .await?;
        Ok(rows.iter().map(status_from_row).collect())
    }

    fn select(&self) -> String {
        format!(
            "SELECT mapping, table_name, state, message, watermark_systemmodstamp, watermark_sfid,
                    cdc_replay_id, cdc_replay_bytes, streaming_transport, loaded_at, load_total, load_done, last_poll_at, last_change_at,
                    last_change_committed_at, last_write_at, last_error, records_read,
                    records_written, write_errors, api_calls, paused
             FROM {}",
            self.table
        )
    }

    /// Moves the mapping to `state`, with a message saying why (cleared when `None`).
    pub async fn set_state<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        state: SyncState,
        message: Option<&str>,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "state = $2, message = $3, updated_at = now()",
            &[&state.as_str(), &message],
        )
        .await
    }

    /// Moves the mapping to STREAMING over `transport` (`pubsub`, `cometd`), with a message
    /// (cleared when `None`).
    pub async fn set_streaming<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        transport: &str,
        message: Option<&str>,
    ) -> Result<(), tokio_postgres::Error> {
        db.execute(
            &format!(
                "UPDATE {} SET state = $2, message = $3, streaming_transport = $4, updated_at = now() \
                 WHERE mapping = $1",
                self.table
            ),
            &[
                &mapping,
                &SyncState::Streaming.as_str(),
                &message,
                &transport,
            ],
        )
        .await
        .map(drop)
    }

    /// Records an error message (the state is changed separately when the error stops the mapping).
    pub async fn record_error<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        error: &str,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "last_error = $2, last_error_at = now(), updated_at = now()",
            &[&error],
        )
        .await
    }

    /// Stores the replay id of the last change event applied; call it in the transaction that
    /// applied the event.
    pub async fn set_replay_id<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        replay_id: Option<&ReplayId>,
    ) -> Result<(), tokio_postgres::Error> {
        let (number, bytes): (Option<i64>, Option<&[u8]>) = match replay_id {
            Some(ReplayId::Cometd(id)) => (Some(*id), None),
            Some(ReplayId::PubSub(bytes)) => (None, Some(bytes.as_slice())),
            None => (None, None),
        };
        self.update(
            db,
            mapping,
            "cdc_replay_id = $2, cdc_replay_bytes = $3, updated_at = now()",
            &[&number, &bytes],
        )
        .await
    }

    /// Stores the polling cursor; call it in the transaction that applied the page.
    pub async fn set_watermark<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        watermark: Option<&(NaiveDateTime, String)>,
    ) -> Result<(), tokio_postgres::Error> {
        let (stamp, sfid) = match watermark {
            Some((stamp, sfid)) => (Some(*stamp), Some(sfid.as_str())),
            None => (None, None),
        };
        self.update(
            db,
            mapping,
            "watermark_systemmodstamp = $2, watermark_sfid = $3, updated_at = now()",
            &[&stamp, &sfid],
        )
        .await
    }

    /// Counts `records` read and applied, the Salesforce commit time of the newest, for lag.
    pub async fn record_applied<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        records: i64,
        committed_at: Option<DateTime<Utc>>,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "records_read = records_read + $2, last_change_at = now(),
                        last_change_committed_at = coalesce($3, last_change_committed_at),
                        updated_at = now()",
            &[&records, &committed_at],
        )
        .await
    }

    /// Marks the load complete; call it in the transaction that committed the load.
    pub async fn set_loaded<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(db, mapping, "loaded_at = now(), updated_at = now()", &[])
            .await
    }

    /// Progress of a load or reload.
    pub async fn set_load_progress<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        done: i64,
        total: Option<i64>,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "load_done = $2, load_total = coalesce($3, load_total), updated_at = now()",
            &[&done, &total],
        )
        .await
    }

    /// Marks the end of a poll.
    pub async fn record_poll<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(db, mapping, "last_poll_at = now(), updated_at = now()", &[])
            .await
    }

    /// Stores today's API calls by kind (a JSON object `{"Query": 12, …}`).
    pub async fn set_api_calls<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        day: chrono::NaiveDate,
        calls: &serde_json::Value,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "api_calls_day = $2, api_calls = $3, updated_at = now()",
            &[&day, calls],
        )
        .await
    }

    /// Up to when purged deletes were last read from `/deleted` (`None`: never). The mapping's
    /// row must exist.
    pub async fn deleted_checked_until<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
    ) -> Result<Option<NaiveDateTime>, tokio_postgres::Error> {
        Ok(db
            .query_one(
                &format!(
                    "SELECT deleted_checked_until FROM {} WHERE mapping = $1",
                    self.table
                ),
                &[&mapping],
            )
            .await?
            .get("deleted_checked_until"))
    }

    /// Records up to when `/deleted` was read; call it in the transaction that applied them.
    pub async fn set_deleted_checked_until<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        until: NaiveDateTime,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(db, mapping, "deleted_checked_until = $2", &[&until])
            .await
    }

    /// Records a full Id reconciliation that started at `started` (deletes are then known up
    /// to there); call it in the transaction that applied it.
    pub async fn record_full_reconcile<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        started: NaiveDateTime,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "full_reconcile_at = now(), deleted_checked_until = $2",
            &[&started],
        )
        .await
    }

    /// Marks the end of a formula refresh.
    pub async fn record_formula_refresh<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(db, mapping, "formulas_refreshed_at = now()", &[])
            .await
    }

    /// Pauses or resumes a mapping (an operator's decision, kept across restarts).
    pub async fn set_paused<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
        paused: bool,
    ) -> Result<u64, tokio_postgres::Error> {
        db.execute(
            &format!(
                "UPDATE {} SET paused = $2, updated_at = now() WHERE mapping = $1",
                self.table
            ),
            &[&mapping, &paused],
        )
        .await
    }

    /// Forgets the mapping's positions so that it loads again from scratch.
    pub async fn reset<C: GenericClient>(
        &self,
        db: &C,
        mapping: &str,
    ) -> Result<(), tokio_postgres::Error> {
        self.update(
            db,
            mapping,
            "state = $2, message = NULL, watermark_systemmodstamp = NULL, watermark_sfid = NULL, \
             cdc_replay_id = NULL, cdc_replay_bytes = NULL, loaded_at = NULL, load_done = 0, \
             load_total = NULL, updated_at = now()",
            &[&SyncState::Initial.as_str()],
        )
        .await
    }
}

fn status_from_row(row: &tokio_postgres::Row) -> MappingStatus {
    let state: String = row.get("state");
    let stamp: Option<NaiveDateTime> = row.get("watermark_systemmodstamp");
    let sfid: Option<String> = row.get("watermark_sfid");
    MappingStatus {
        mapping: row.get("mapping"),
        table_name: row.get("table_name"),
        state: state.parse().unwrap_or(SyncState::Error),
        message: row.get("message"),
        watermark: stamp.zip(sfid),
        cdc_replay_id: {
            let bytes: Option<Vec<u8>> = row.get("cdc_replay_bytes");
            let number: Option<i64> = row.get("cdc_replay_id");
            bytes.map(ReplayId::PubSub).or(number.map(ReplayId::Cometd))
        },
        streaming_transport: row.get("streaming_transport"),
        loaded_at: row.get("loaded_at"),
        load_total: row.get("load_total"),
        load_done: row.get("load_done"),
        last_poll_at: row.get("last_poll_at"),
        last_change_at: row.get("last_change_at"),
        last_change_committed_at: row.get("last_change_committed_at"),
        last_write_at: row.get("last_write_at"),
        last_error: row.get("last_error"),
        records_read: row.get("records_read"),
        records_written: row.get("records_written"),
        write_errors: row.get("write_errors"),
        api_calls: row.get("api_calls"),
        paused: row.get("paused"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for state in SyncState::ALL {
            assert_eq!(state.as_str().parse::<SyncState>(), Ok(state));
        }
        assert!("STREAMIN".parse::<SyncState>().is_err());
    }

    #[test]
    fn lag_is_the_time_between_commit_and_apply() {
        let committed = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let status = MappingStatus {
            last_change_at: Some(committed + chrono::Duration::milliseconds(38)),
            last_change_committed_at: Some(committed),
            ..MappingStatus::fixture("Account", "account", SyncState::Streaming)
        };
        assert_eq!(status.lag_seconds(), Some(0.038));
    }
}
