//! Reads what the status page shows: the `status` reports, the lease holders, the writer's
//! archive (changes sent, failed writes with their rows), read errors and conflicts, and the
//! read side's in-memory activity. Statements only; the page decides nothing here.

use std::collections::HashMap;

use chrono::Utc;
use tokio_postgres::Client;

use crate::adapter::{MappingDescriptor, Registry};
use crate::cli::admin::{payload, Conflict, ReadError};
use crate::cli::report::{self, MappingReport, ReportError};
use crate::engine::activity;
use crate::engine::lease::{lock_key, Held};
use crate::engine::state::{MappingStatus, StateStore, SyncState};
use crate::engine::system::quote_ident;

use super::model::{
    fields_of, matches, Detail, DetailQuery, Failed, MappingRow, Overview, Paged, Sent, PAGE_SIZE,
};

/// What the page reads besides Postgres: this engine's leases and the org's usage.
#[derive(Clone, Default)]
pub struct Live {
    /// The mappings this instance holds.
    pub held: Option<Held>,
    /// The engine's Salesforce client: the org's usage today from the latest `Sforce-Limit-Info`.
    pub client: Option<crate::salesforce::Client>,
}

impl Live {
    fn org_usage(&self) -> Option<(u64, u64)> {
        self.client
            .as_ref()
            .and_then(|c| c.api_usage())
            .map(|u| (u.used, u.max))
    }
}

/// This process, as `host pid N`.
pub fn instance() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host} pid {}", std::process::id())
}

/// Which backend holds each advisory lock: lock key → `pid N at ADDR (APP)`.
async fn lock_holders(db: &Client) -> Result<HashMap<i64, String>, ReportError> {
    let rows = db
        .query(
            "SELECT ((l.classid::bigint << 32) | l.objid::bigint) AS key, l.pid,
                    a.client_addr::text AS client_addr, a.application_name
             FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let pid: i32 = r.get("pid");
            let addr: Option<String> = r.get("client_addr");
            let app: Option<String> = r.get("application_name");
            let mut who = format!("another instance (Postgres session {pid}");
            if let Some(addr) = addr {
                who.push_str(&format!(" from {addr}"));
            }
            if let Some(app) = app.filter(|a| !a.is_empty()) {
                who.push_str(&format!(", {app}"));
            }
            who.push(')');
            (r.get::<_, i64>("key"), who)
        })
        .collect())
}

/// How a mapping's changes arrive, from its state and options (pure).
pub fn transport(mapping: &MappingDescriptor, state: Option<SyncState>) -> String {
    let polling = format!("polling every {} s", mapping.sync.poll_seconds);
    match state {
        Some(SyncState::Polling) if mapping.sync.streaming => {
            format!("{polling} (streaming unavailable)")
        }
        Some(SyncState::Polling) => polling,
        _ if mapping.sync.streaming => "streaming (Change Data Capture)".to_owned(),
        _ => polling,
    }
}

/// A mapping's load progress while it loads or reloads (pure).
pub fn load_progress(status: Option<&MappingStatus>) -> Option<(i64, Option<i64>)> {
    let s = status?;
    matches!(s.state, SyncState::Loading | SyncState::Reloading)
        .then_some((s.load_done.max(0), s.load_total))
}

async fn rows(
    db: &Client,
    registry: &Registry,
    live: &Live,
    only: &[&'static MappingDescriptor],
) -> Result<Vec<MappingRow>, ReportError> {
    if !report::is_migrated(db, registry.schema).await? {
        return Err(ReportError::NotMigrated(registry.schema.to_owned()));
    }
    let wanted: Vec<&'static MappingDescriptor> = registry
        .mappings
        .iter()
        .copied()
        .filter(|m| only.is_empty() || only.iter().any(|o| o.object == m.object))
        .collect();
    // One round trip's wait for all of them: the statements are pipelined on the connection.
    let store = StateStore::new(registry.schema);
    let (states, holders, counts) = tokio::try_join!(
        async { store.all(db).await.map_err(ReportError::from) },
        lock_holders(db),
        report::counts_all(db, registry.schema, &wanted, Some(ESTIMATE_ROWS_FROM)),
    )?;
    let now = Utc::now();
    let activity = activity::global().lock().ok();
    let sent = activity::sent().lock().ok();
    Ok(wanted
        .into_iter()
        .zip(counts)
        .map(|(mapping, counts)| {
            let status = states.iter().find(|s| s.mapping == mapping.object);
            let report = MappingReport::new(mapping, status, counts);
            let held_here = live
                .held
                .as_ref()
                .is_some_and(|h| h.contains(mapping.object));
            let holder = if held_here {
                "this instance".to_owned()
            } else {
                holders
                    .get(&lock_key(registry.schema, mapping.object))
                    .cloned()
                    .unwrap_or_else(|| "no instance".to_owned())
            };
            MappingRow {
                holder,
                transport: transport(mapping, status.map(|s| s.state)),
                budget: u64::from(mapping.sync.max_daily_api_calls),
                changes_in: activity
                    .as_ref()
                    .map_or(0, |a| a.last_hour(mapping.object, now)),
                changes_out: sent
                    .as_ref()
                    .map_or(0, |a| a.last_hour(mapping.object, now)),
                lag_in: activity.as_ref().and_then(|a| a.lag(mapping.object, now)),
                lag_out: sent.as_ref().and_then(|a| a.lag(mapping.object, now)),
                progress: load_progress(status),
                report,
            }
        })
        .collect())
}

/// The overview.
pub async fn overview(
    db: &Client,
    registry: &Registry,
    live: &Live,
) -> Result<Overview, ReportError> {
    Ok(Overview {
        now: Utc::now(),
        instance: instance(),
        mappings: rows(db, registry, live, &[]).await?,
        org_usage: live.org_usage(),
    })
}

/// A table Postgres estimates at this many rows or more shows its estimate, not a count: the page
/// refreshes every few seconds, and counting rows costs a core 1-2 ms per thousand (more after a
/// burst of writes, until vacuum: 130-160 ms for 100,000 rows, each refresh, in `bench write`).
pub const ESTIMATE_ROWS_FROM: i64 = 10_000;

/// The archive entries (by id, from its newest) the sent list reads first; eight times more each
/// time that is not enough for the page asked for.
const SENT_WINDOW: i32 = 10_000;

fn page_of(requested: Option<usize>) -> usize {
    requested.unwrap_or(1).max(1)
}

fn offset(page: usize) -> i64 {
    ((page - 1) * PAGE_SIZE) as i64
}

/// A mapping's page.
pub async fn detail(
    db: &Client,
    registry: &Registry,
    live: &Live,
    mapping: &'static MappingDescriptor,
    query: DetailQuery,
) -> Result<Detail, ReportError> {
    let schema = quote_ident(registry.schema);
    let filter = query.filter().map(str::to_owned);
    let limit = PAGE_SIZE as i64;
    let received: Vec<_> = activity::global()
        .lock()
        .map(|a| a.recent(mapping.object))
        .unwrap_or_default()
        .into_iter()
        .filter(|c| matches(filter.as_deref(), Some(c.sfid.as_str()), None))
        .collect();
    let received = Paged::slice(received, page_of(query.received_page));
    let (sent_page, failed_page, errors_page, conflicts_page) = (
        page_of(query.sent_page),
        page_of(query.failed_page),
        page_of(query.errors_page),
        page_of(query.conflicts_page),
    );

    // The archive's record filter: a Salesforce Id (or its start) or a row id.
    let record_filter = "($2::text IS NULL OR a.sfid LIKE $2 || '%' OR a.record_id::text = $2)";
    let sfid_filter = "($2::text IS NULL OR sfid LIKE $2 || '%')";
    let conflict_filter = "($2::text IS NULL OR sfid LIKE $2 || '%' OR record_id::text = $2)";
    let count = |sql: String, key: &'static str| {
        let filter = &filter;
        async move {
            let n: i64 = db.query_one(&sql, &[&key, filter]).await?.get("n");
            Ok::<_, ReportError>(n)
        }
    };
    let only = [mapping];
    // The statements are pipelined on the connection: one round trip's wait for all.
    let (rows_now, sent, failed_total, failed_rows, errors_total, read_errors, conflicts_total, conflicts) = tokio::try_join!(
        rows(db, registry, live, &only),
        async {
            // The newest entries first, in windows of ids growing from the archive's end: each a
            // range of its primary key, so the page reads what it shows (not the whole archive,
            // whatever the planner's statistics say of a fast-growing archive).
            let newest: i32 = db
                .query_one(
                    &format!(
                        "SELECT coalesce(max(id), 0) AS newest FROM {schema}._trigger_log_archive"
                    ),
                    &[],
                )
                .await?
                .get("newest");
            let statement = db
                .prepare(&format!(
                    "SELECT a.processed_at, a.action, a.record_id, a.sfid, a.\"values\",
                            (extract(epoch FROM a.processed_at - a.created_at) * 1000)::bigint
                                AS latency_ms
                     FROM {schema}._trigger_log_archive a
                     WHERE a.id > $5 AND a.table_name = $1 AND a.state = 'SUCCESS' AND {record_filter}
                     ORDER BY a.id DESC LIMIT $3 OFFSET $4"
                ))
                .await?;
            let mut window = SENT_WINDOW;
            let rows = loop {
                let after = newest.saturating_sub(window);
                let rows = db
                    .query(
                        &statement,
                        &[&mapping.table, &filter, &(limit + 1), &offset(sent_page), &after],
                    )
                    .await?;
                // The page and the one row that says whether there is a next.
                if rows.len() as i64 > limit || after <= 0 {
                    break rows;
                }
                window = window.saturating_mul(8);
            };
            let sent: Vec<Sent> = rows
                .iter()
                .map(|r| {
                    let values = payload(Some(mapping), r.get("values"));
                    let action: Option<String> = r.get("action");
                    Sent {
                        at: r.get("processed_at"),
                        fields: fields_of(values.as_ref(), action.as_deref()),
                        action,
                        record_id: r.get("record_id"),
                        sfid: r.get("sfid"),
                        latency_ms: r.get("latency_ms"),
                    }
                })
                .collect();
            Ok::<_, ReportError>(sent)
        },
        count(
            format!(
                "SELECT count(*) AS n FROM {schema}._trigger_log_archive a
                 WHERE a.table_name = $1 AND a.state = 'FAILED' AND {record_filter}"
            ),
            mapping.table
        ),
        async {
            let rows = db
                .query(
                    &format!(
                        // The page first, then its rows: `to_jsonb` for 50 rows, not for every
                        // failed entry the sort reads.
                        "SELECT a.id, a.action, a.record_id, a.sfid, a.sf_message, a.\"values\", a.processed_at,
                                t._hc_err, to_jsonb(t) AS current_row
                         FROM (SELECT a.id, a.action, a.record_id, a.sfid, a.sf_message, a.\"values\",
                                      a.processed_at
                               FROM {schema}._trigger_log_archive a
                               WHERE a.table_name = $1 AND a.state = 'FAILED' AND {record_filter}
                               ORDER BY a.id DESC LIMIT $3 OFFSET $4) a
                         LEFT JOIN {table} t ON t.id = a.record_id
                         ORDER BY a.id DESC",
                        table = mapping.qualified_table()
                    ),
                    &[&mapping.table, &filter, &limit, &offset(failed_page)],
                )
                .await?;
            let failed: Vec<Failed> = rows
                .iter()
                .map(|r| Failed {
                    id: r.get("id"),
                    action: r.get("action"),
                    record_id: r.get("record_id"),
                    sfid: r.get("sfid"),
                    message: r.get("sf_message"),
                    values: payload(Some(mapping), r.get("values")),
                    at: r.get("processed_at"),
                    hc_err: r.get("_hc_err"),
                    row: r.get("current_row"),
                })
                .collect();
            Ok::<_, ReportError>(failed)
        },
        count(
            format!(
                "SELECT count(*) AS n FROM {schema}._forcesync_read_errors
                 WHERE mapping = $1 AND resolved_at IS NULL AND {sfid_filter}"
            ),
            mapping.object
        ),
        async {
            let rows = db
                .query(
                    &format!(
                        "SELECT {} FROM {schema}._forcesync_read_errors
                         WHERE mapping = $1 AND resolved_at IS NULL AND {sfid_filter}
                         ORDER BY id DESC LIMIT $3 OFFSET $4",
                        ReadError::COLUMNS
                    ),
                    &[&mapping.object, &filter, &limit, &offset(errors_page)],
                )
                .await?;
            let errors: Vec<ReadError> = rows.iter().map(ReadError::from_row).collect();
            Ok::<_, ReportError>(errors)
        },
        count(
            format!(
                "SELECT count(*) AS n FROM {schema}._forcesync_conflicts WHERE mapping = $1 AND {conflict_filter}"
            ),
            mapping.object
        ),
        async {
            let rows = db
                .query(
                    &format!(
                        "SELECT {columns} FROM {schema}._forcesync_conflicts \
                         WHERE mapping = $1 AND {conflict_filter} \
                         ORDER BY id DESC LIMIT $3 OFFSET $4",
                        columns = Conflict::COLUMNS
                    ),
                    &[&mapping.object, &filter, &limit, &offset(conflicts_page)],
                )
                .await?;
            let conflicts: Vec<Conflict> = rows
                .iter()
                .map(Conflict::from_row)
                .collect();
            Ok::<_, ReportError>(conflicts)
        },
    )?;
    let row = rows_now
        .into_iter()
        .next()
        .ok_or_else(|| ReportError::NotMigrated(registry.schema.to_owned()))?;

    Ok(Detail {
        now: Utc::now(),
        row,
        received,
        sent: Paged::probed(sent, sent_page),
        failed: Paged::counted(failed_rows, failed_page, failed_total),
        read_errors: Paged::counted(read_errors, errors_page, errors_total),
        conflicts: Paged::counted(conflicts, conflicts_page, conflicts_total),
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::{Access, SyncOptions};
    use crate::engine::testing::ACCOUNT;

    /// The test Account, read-only, streamed, polled every 60 s when streaming is unavailable.
    static STREAMED: MappingDescriptor = MappingDescriptor {
        access: Access::ReadOnly,
        filter: None,
        sync: SyncOptions {
            poll_seconds: 60,
            ..ACCOUNT.sync
        },
        fields: &[],
        ..ACCOUNT
    };

    #[test]
    fn the_transport_says_how_changes_arrive() {
        assert_eq!(
            transport(&STREAMED, Some(SyncState::Streaming)),
            "streaming (Change Data Capture)"
        );
        assert_eq!(
            transport(&STREAMED, Some(SyncState::Polling)),
            "polling every 60 s (streaming unavailable)"
        );
    }
}
