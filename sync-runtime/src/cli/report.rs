//! What `forcesync status` and `/metrics` show about each mapping: gathered from Postgres in one
//! pass ([`gather`]), rendered by pure functions ([`render_table`], and `metrics::render`), and the
//! org's streaming allocations the engine watches ([`gather_limits`], [`render_limits`]).
//!
//! Nothing here reads a credential: the figures come from the engine's tables only.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::adapter::{MappingDescriptor, Registry};
use crate::engine::allocations::{self, StoredLimit};
use crate::engine::hub::Transport;
use crate::engine::state::{MappingStatus, StateStore, SyncState};
use crate::engine::system::quote_ident;
use crate::salesforce::limits::{Limit, CONCURRENT_CLIENTS, DAILY_DELIVERIES};

/// One mapping's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MappingReport {
    pub mapping: String,
    pub table: String,
    /// `read_only` or `read_write`.
    pub access: &'static str,
    pub state: String,
    pub message: Option<String>,
    pub paused: bool,
    /// Whether a complete initial load is behind the mapping.
    pub loaded: bool,
    /// Rows in the Postgres table.
    pub rows: i64,
    /// Whether `rows` is Postgres' estimate (`pg_class.reltuples`), not a count: the status page
    /// counts a large table only when asked for exact figures.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rows_estimated: bool,
    /// Application writes not yet in Salesforce (trigger-log entries `NEW` or `PENDING`).
    pub pending_writes: i64,
    /// Application writes Salesforce refused, not yet retried or ignored.
    pub failed_writes: i64,
    /// Salesforce records the read side could not apply, still open.
    pub read_errors: i64,
    pub conflicts: i64,
    /// Seconds between the Salesforce commit of the last change applied and its arrival.
    pub lag_seconds: Option<f64>,
    /// The latest of the last change applied, the last poll and the last write.
    pub last_sync: Option<DateTime<Utc>>,
    pub records_read: i64,
    pub records_written: i64,
    pub write_errors: i64,
    /// Calls made today for this mapping, by kind (`Query`, `Bulk`, `Collections`, …).
    pub api_calls: BTreeMap<String, u64>,
    pub last_error: Option<String>,
    /// The transport the mapping streams over now (`pubsub`, `cometd`), as the engine recorded
    /// when it subscribed the mapping's channel; `None` when the mapping is not streaming.
    pub transport: Option<&'static str>,
}

impl MappingReport {
    /// Every API call made today for this mapping.
    pub fn api_calls_today(&self) -> u64 {
        self.api_calls.values().sum()
    }

    /// Builds a report from the state row and the counts (pure).
    pub fn new(
        mapping: &MappingDescriptor,
        status: Option<&MappingStatus>,
        counts: Counts,
    ) -> MappingReport {
        let api_calls = status
            .and_then(|s| s.api_calls.as_object())
            .map(|calls| {
                calls
                    .iter()
                    .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
                    .collect()
            })
            .unwrap_or_default();
        let state = match status {
            Some(s) if s.paused && s.state != SyncState::Paused => {
                format!("{} (pause requested)", s.state)
            }
            Some(s) => s.state.to_string(),
            None => "NOT MIGRATED".to_owned(),
        };
        MappingReport {
            mapping: mapping.object.to_owned(),
            table: mapping.table.to_owned(),
            access: if mapping.is_read_write() {
                "read_write"
            } else {
                "read_only"
            },
            state,
            message: status.and_then(|s| s.message.clone()),
            paused: status.is_some_and(|s| s.paused),
            loaded: status.is_some_and(has_loaded),
            rows: counts.rows,
            rows_estimated: counts.rows_estimated,
            pending_writes: counts.pending_writes,
            failed_writes: counts.failed_writes,
            read_errors: counts.read_errors,
            conflicts: counts.conflicts,
            lag_seconds: status.and_then(MappingStatus::lag_seconds),
            last_sync: status.and_then(|s| {
                [s.last_change_at, s.last_poll_at, s.last_write_at]
                    .into_iter()
                    .flatten()
                    .max()
            }),
            records_read: status.map_or(0, |s| s.records_read),
            records_written: status.map_or(0, |s| s.records_written),
            write_errors: status.map_or(0, |s| s.write_errors),
            api_calls,
            last_error: status.and_then(|s| s.last_error.clone()),
            transport: status.and_then(transport_in_use),
        }
    }
}

/// The transport a mapping streams over now: the one the engine recorded when it subscribed, while
/// the mapping is STREAMING (pure).
pub fn transport_in_use(status: &MappingStatus) -> Option<&'static str> {
    if status.state != SyncState::Streaming {
        return None;
    }
    status
        .streaming_transport
        .as_deref()
        .and_then(Transport::from_name)
        .map(Transport::name)
}

/// Whether a complete load is behind the mapping: marked loaded, or streaming, polling or
/// reloading (states only reached after a load).
pub fn has_loaded(status: &MappingStatus) -> bool {
    status.is_loaded()
        || matches!(
            status.state,
            SyncState::Streaming | SyncState::Polling | SyncState::Reloading
        )
}

/// The counts of one mapping read from its tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows: i64,
    pub rows_estimated: bool,
    pub pending_writes: i64,
    pub failed_writes: i64,
    pub read_errors: i64,
    pub conflicts: i64,
}

/// A failure to read the figures, with what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the forcesync tables are missing in schema `{0}` of this database; run `forcesync migrate` first"
    )]
    NotMigrated(String),
    #[error("Postgres: {}", crate::engine::db::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// Whether the app and engine tables exist in `schema`.
pub async fn is_migrated(db: &tokio_postgres::Client, schema: &str) -> Result<bool, ReportError> {
    let row = db
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL AS migrated",
            &[
                &format!("{}._forcesync_mapping_state", quote_ident(schema)),
                &format!("{}._trigger_log", quote_ident(schema)),
            ],
        )
        .await?;
    Ok(row.get("migrated"))
}

/// Every mapping's figures (only the `only` mappings when not empty).
pub async fn gather(
    db: &tokio_postgres::Client,
    registry: &Registry,
    only: &[&'static MappingDescriptor],
) -> Result<Vec<MappingReport>, ReportError> {
    if !is_migrated(db, registry.schema).await? {
        return Err(ReportError::NotMigrated(registry.schema.to_owned()));
    }
    let states = StateStore::new(registry.schema).all(db).await?;
    let wanted: Vec<&MappingDescriptor> = registry
        .mappings
        .iter()
        .copied()
        .filter(|mapping| only.is_empty() || only.iter().any(|m| m.object == mapping.object))
        .collect();
    let counts = counts_all(db, registry.schema, &wanted, None).await?;
    Ok(wanted
        .into_iter()
        .zip(counts)
        .map(|(mapping, counts)| {
            let status = states.iter().find(|s| s.mapping == mapping.object);
            MappingReport::new(mapping, status, counts)
        })
        .collect())
}

/// The org's allocations the engine watches, as last read from `/limits` (empty before the
/// first read, or on tables not yet migrated to hold them).
pub async fn gather_limits(
    db: &tokio_postgres::Client,
    registry: &Registry,
) -> Result<Vec<StoredLimit>, ReportError> {
    let table = format!("{}._forcesync_org_limits", quote_ident(registry.schema));
    let exists: bool = db
        .query_one("SELECT to_regclass($1) IS NOT NULL AS found", &[&table])
        .await?
        .get("found");
    if !exists {
        return Ok(Vec::new());
    }
    Ok(allocations::stored(db, registry.schema).await?)
}

/// The allocations under the `status` table (pure): what is used of each, when it was read, and
/// the warning when deliveries run short.
pub fn render_limits(limits: &[StoredLimit], now: DateTime<Utc>) -> String {
    if limits.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nOrg streaming allocations (from /limits):\n");
    for limit in limits {
        let used = (limit.max - limit.remaining).max(0);
        let what = match limit.name.as_str() {
            CONCURRENT_CLIENTS => "concurrent streaming clients",
            DAILY_DELIVERIES => "change events delivered today",
            _ => "used",
        };
        out.push_str(&format!(
            "  {}: {used} of {} {what} ({} left, read {})\n",
            limit.name,
            limit.max,
            limit.remaining,
            ago(limit.read_at, now)
        ));
        if limit.name == DAILY_DELIVERIES {
            let current = Limit {
                max: limit.max.max(0) as u64,
                remaining: limit.remaining.max(0) as u64,
            };
            if let Some(warning) = allocations::delivery_warning(current) {
                out.push_str(&format!("  warning: {warning}\n"));
            }
        }
    }
    out
}

/// Every mapping's counts, in the order given, in one statement: one plan and one round trip
/// however many mappings (the status page's overview asks for all of them every refresh).
///
/// `estimate_from`: a table Postgres estimates (`pg_class.reltuples`, kept by `ANALYZE`) at this
/// many rows or more is not counted, its estimate is reported instead (`Counts::rows_estimated`);
/// `None` counts every table.
pub async fn counts_all(
    db: &tokio_postgres::Client,
    schema: &str,
    mappings: &[&MappingDescriptor],
    estimate_from: Option<i64>,
) -> Result<Vec<Counts>, ReportError> {
    if mappings.is_empty() {
        return Ok(Vec::new());
    }
    let s = quote_ident(schema);
    let rows: Vec<String> = mappings
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let table = m.qualified_table();
            match estimate_from {
                None => format!("SELECT {i} AS i, (SELECT count(*) FROM {table}) AS n, false AS e"),
                // `CASE` runs the count only for a table estimated below the bound.
                Some(bound) => format!(
                    "SELECT {i} AS i, CASE WHEN c.reltuples >= {bound} THEN c.reltuples::bigint
                                          ELSE (SELECT count(*) FROM {table}) END AS n,
                            c.reltuples >= {bound} AS e
                     FROM pg_class c WHERE c.oid = '{oid}'::regclass",
                    oid = table.replace('\'', "''")
                ),
            }
        })
        .collect();
    let tables: Vec<&str> = mappings.iter().map(|m| m.table).collect();
    let objects: Vec<&str> = mappings.iter().map(|m| m.object).collect();
    let sql = format!(
        "WITH r AS ({rows}),
              m AS (SELECT ord - 1 AS i, t AS table_name, o AS mapping
                    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS x(t, o, ord)),
              pending AS (SELECT table_name, count(*) AS n FROM {s}._trigger_log
                          WHERE table_name = ANY($1) AND state IN ('NEW', 'PENDING') GROUP BY 1),
              failed AS (SELECT table_name, count(*) AS n FROM {s}._trigger_log_archive
                         WHERE table_name = ANY($1) AND state = 'FAILED' GROUP BY 1),
              errors AS (SELECT mapping, count(*) AS n FROM {s}._forcesync_read_errors
                         WHERE mapping = ANY($2) AND resolved_at IS NULL GROUP BY 1),
              conflicts AS (SELECT mapping, count(*) AS n FROM {s}._forcesync_conflicts
                            WHERE mapping = ANY($2) GROUP BY 1)
         SELECT r.n AS rows, r.e AS rows_estimated, coalesce(pending.n, 0) AS pending_writes,
                coalesce(failed.n, 0) AS failed_writes, coalesce(errors.n, 0) AS read_errors,
                coalesce(conflicts.n, 0) AS conflicts
         FROM m JOIN r ON r.i = m.i
         LEFT JOIN pending ON pending.table_name = m.table_name
         LEFT JOIN failed ON failed.table_name = m.table_name
         LEFT JOIN errors ON errors.mapping = m.mapping
         LEFT JOIN conflicts ON conflicts.mapping = m.mapping
         ORDER BY m.i",
        rows = rows.join(" UNION ALL "),
    );
    let found = db.query(&sql, &[&tables, &objects]).await?;
    Ok(found
        .iter()
        .map(|row| Counts {
            rows: row.get("rows"),
            rows_estimated: row.get("rows_estimated"),
            pending_writes: row.get("pending_writes"),
            failed_writes: row.get("failed_writes"),
            read_errors: row.get("read_errors"),
            conflicts: row.get("conflicts"),
        })
        .collect())
}

/// `12 s`, `3 min`, `2 h`, `4 d`.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7_199 => format!("{} min ago", s / 60),
        7_200..=172_799 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The `status` table (pure).
pub fn render_table(reports: &[MappingReport], now: DateTime<Utc>) -> String {
    let header = [
        "MAPPING",
        "ACCESS",
        "STATE",
        "ROWS",
        "PENDING",
        "FAILED",
        "CONFLICTS",
        "LAG",
        "LAST SYNC",
        "API CALLS TODAY",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for r in reports {
        rows.push(vec![
            r.mapping.clone(),
            r.access.replace('_', "-"),
            r.state.clone(),
            r.rows.to_string(),
            r.pending_writes.to_string(),
            (r.failed_writes + r.read_errors).to_string(),
            r.conflicts.to_string(),
            r.lag_seconds
                .map_or_else(|| "-".to_owned(), |l| format!("{l:.1} s")),
            r.last_sync
                .map_or_else(|| "never".to_owned(), |t| ago(t, now)),
            r.api_calls_today().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if (3..=6).contains(&i) || i == 9 {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    let mut notes: Vec<String> = reports
        .iter()
        .filter_map(|r| r.message.as_ref().map(|m| format!("{}: {m}", r.mapping)))
        .collect();
    let transports: Vec<String> = reports
        .iter()
        .filter_map(|r| r.transport.map(|t| format!("{} {t}", r.mapping)))
        .collect();
    if !transports.is_empty() {
        notes.push(format!("Streaming transport: {}", transports.join(", ")));
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> MappingReport {
        MappingReport {
            mapping: "Account".into(),
            table: "account".into(),
            access: "read_write",
            state: "STREAMING".into(),
            message: None,
            paused: false,
            loaded: true,
            rows: 1200,
            rows_estimated: false,
            pending_writes: 3,
            failed_writes: 1,
            read_errors: 1,
            conflicts: 2,
            lag_seconds: Some(0.038),
            last_sync: Some(
                DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            records_read: 1250,
            records_written: 7,
            write_errors: 1,
            api_calls: [("Query".to_owned(), 5), ("Collections".to_owned(), 2)]
                .into_iter()
                .collect(),
            last_error: None,
            transport: Some("pubsub"),
        }
    }

    #[test]
    fn the_table_says_which_transport_each_streaming_mapping_uses() {
        let mut polled = sample();
        polled.mapping = "Opportunity".into();
        polled.transport = None;
        let mut fell_back = sample();
        fell_back.mapping = "Contact".into();
        fell_back.transport = Some("cometd");
        let table = render_table(&[sample(), fell_back, polled], sample().last_sync.unwrap());
        assert!(
            table.contains("Streaming transport: Account pubsub, Contact cometd\n"),
            "{table}"
        );
    }

    #[test]
    fn the_transport_in_use_is_the_recorded_one_while_streaming() {
        let status = |state: SyncState, transport: Option<&str>| MappingStatus {
            streaming_transport: transport.map(str::to_owned),
            ..MappingStatus::fixture("Account", "account", state)
        };
        assert_eq!(
            transport_in_use(&status(SyncState::Streaming, Some("pubsub"))),
            Some("pubsub")
        );
        assert_eq!(
            transport_in_use(&status(SyncState::Streaming, Some("cometd"))),
            Some("cometd")
        );
        // Polling (degraded, or a polled mapping): no transport in use.
        assert_eq!(
            transport_in_use(&status(SyncState::Polling, Some("pubsub"))),
            None
        );
        assert_eq!(transport_in_use(&status(SyncState::Streaming, None)), None);
    }

    #[test]
    fn the_table_has_a_column_per_figure_and_a_line_per_mapping() {
        let mut paused = sample();
        paused.mapping = "Contact".into();
        paused.state = "PAUSED".into();
        paused.message = Some("paused by an operator".into());
        paused.last_sync = None;
        let now = sample().last_sync.unwrap() + chrono::Duration::seconds(42);
        let table = render_table(&[sample(), paused], now);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("MAPPING"));
        assert!(lines[0].ends_with("API CALLS TODAY"));
        let account: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            account,
            [
                "Account",
                "read-write",
                "STREAMING",
                "1200",
                "3",
                "2",
                "2",
                "0.0",
                "s",
                "42",
                "s",
                "ago",
                "7"
            ]
        );
        assert!(lines[2].contains("never"));
        assert!(table.contains("Contact: paused by an operator"));
    }

    #[test]
    fn the_streaming_allocations_show_under_the_table_with_a_warning_when_short() {
        let now = sample().last_sync.unwrap();
        let limits = [
            StoredLimit {
                name: DAILY_DELIVERIES.into(),
                max: 10_000,
                remaining: 400,
                read_at: now - chrono::Duration::seconds(30),
            },
            StoredLimit {
                name: CONCURRENT_CLIENTS.into(),
                max: 20,
                remaining: 19,
                read_at: now,
            },
        ];
        let text = render_limits(&limits, now);
        assert!(
            text.contains("DailyDeliveredPlatformEvents: 9600 of 10000 change events delivered today (400 left, read 30 s ago)"),
            "{text}"
        );
        assert!(
            text.contains(
                "DurableStreamingApiConcurrentClients: 1 of 20 concurrent streaming clients"
            ),
            "{text}"
        );
        assert!(text.contains("warning: "), "{text}");
        assert_eq!(render_limits(&[], now), "");
    }

    #[test]
    fn ages_read_naturally() {
        let t = sample().last_sync.unwrap();
        assert_eq!(ago(t, t + chrono::Duration::seconds(5)), "5 s ago");
        assert_eq!(ago(t, t + chrono::Duration::minutes(10)), "10 min ago");
        assert_eq!(ago(t, t + chrono::Duration::hours(5)), "5 h ago");
        assert_eq!(ago(t, t + chrono::Duration::days(3)), "3 d ago");
    }
}
