//! Polling: the read path when streaming is off or unavailable, and drift repair when it is on.
//!
//! Each poll reads, through `queryAll` (so deleted records come too), every record whose
//! `(SystemModstamp, Id)` is after the cursor minus a look-back window, in `ORDER BY
//! SystemModstamp, Id` keyset pages. The look-back exists because Salesforce stamps
//! SystemModstamp when a transaction *starts*: a long transaction becomes visible after the poller
//! has passed its time. Re-reading the window is harmless because applying is idempotent. The
//! cursor moves only forward and is stored in the transaction that applied its page.
//!
//! Deletes: `queryAll` shows deleted records while they are in the recycle bin; records purged
//! from it come from `/sobjects/<Object>/deleted` (15 days of history); beyond that window a full
//! Id reconciliation compares every Id.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use super::apply;
use super::ingest::{self, Applied};
use super::soql;
use super::state::SyncState;
use super::{EngineError, MappingCtx};

/// A `(SystemModstamp, Id)` position.
pub type Cursor = (NaiveDateTime, String);

/// Where a poll starts reading: `lookback` before the cursor (or from `since` when given).
pub fn window_start(
    cursor: Option<&Cursor>,
    lookback: Duration,
    fallback: NaiveDateTime,
) -> Cursor {
    let stamp = cursor.map_or(fallback, |(stamp, _)| *stamp);
    let back = chrono::Duration::from_std(lookback).unwrap_or_else(|_| chrono::Duration::zero());
    (stamp - back, String::new())
}

/// The keyset position after a page: its last record's `(SystemModstamp, Id)`.
pub fn page_end(records: &[Value]) -> Option<Cursor> {
    let last = records.last()?;
    let stamp = last
        .get("SystemModstamp")
        .and_then(Value::as_str)
        .and_then(crate::adapter::parse_datetime)?;
    let id = last.get("Id").and_then(Value::as_str)?.to_owned();
    Some((stamp, id))
}

/// The records a poll applied, for the status page's recent activity; the latency is measured
/// from `SystemModstamp` (pure).
pub fn polled_changes(records: &[Value], now: DateTime<Utc>) -> Vec<super::activity::Change> {
    records
        .iter()
        .filter_map(|r| {
            let sfid = r.get("Id").and_then(Value::as_str)?.to_owned();
            let stamp = r
                .get("SystemModstamp")
                .and_then(Value::as_str)
                .and_then(crate::adapter::parse_datetime);
            Some(super::activity::Change {
                at: now,
                kind: "POLL".to_owned(),
                sfid,
                fields: Vec::new(),
                latency_ms: stamp.map(|s| (now.naive_utc() - s).num_milliseconds().max(0)),
            })
        })
        .collect()
}

/// The cursor after reading up to `seen`: never moves back.
pub fn advance(cursor: Option<&Cursor>, seen: &Cursor) -> Cursor {
    match cursor {
        Some(current) if current >= seen => current.clone(),
        _ => seen.clone(),
    }
}

/// Reads and applies every change from `since` (or the stored cursor minus the look-back) up to
/// now. Returns what was applied.
pub async fn poll_once(
    ctx: &MappingCtx,
    since: Option<NaiveDateTime>,
) -> Result<Applied, EngineError> {
    let mapping = ctx.mapping;
    let mut db = ctx.connect().await?;
    let status = ctx.states.get(&db, mapping.object).await?;
    let stored = status.and_then(|s| s.watermark);
    let start = match since {
        Some(since) => (since, String::new()),
        None => window_start(stored.as_ref(), ctx.config.lookback, Utc::now().naive_utc()),
    };
    let mut after = start;
    let mut cursor = stored;
    let mut total = Applied::default();
    loop {
        let query = soql::poll_query(mapping, &ctx.filter, &after, ctx.config.poll_page);
        let page = ctx.client.query_all(&query).await?;
        let mut records = page.records;
        // A page larger than the API's page size continues by locator; keep the keyset order.
        let mut next = page.next_records_url;
        while let Some(url) = next.take() {
            let more = ctx.client.query_more(&url).await?;
            records.extend(more.records);
            next = more.next_records_url;
        }
        let full_page = records.len() as u32 >= ctx.config.poll_page;
        let end = page_end(&records);
        let tx = apply::begin_engine_tx(&mut db).await?;
        let applied = ingest::apply_records(ctx, &tx, &records).await?;
        if let Some(end) = &end {
            let moved = advance(cursor.as_ref(), end);
            ctx.states
                .set_watermark(&tx, mapping.object, Some(&moved))
                .await?;
            cursor = Some(moved);
        }
        if applied.total() > 0 {
            ctx.states
                .record_applied(&tx, mapping.object, applied.total() as i64, None)
                .await?;
        }
        tx.commit().await?;
        if applied.total() > 0 {
            super::activity::record(mapping.object, polled_changes(&records, Utc::now()));
        }
        total.add(applied);
        match end {
            Some(end) if full_page => after = end,
            _ => break,
        }
    }
    ctx.states.record_poll(&db, mapping.object).await?;
    Ok(total)
}

/// Re-reads the records the read side could not apply earlier (for example after the migration
/// that widened a column); those that now apply are marked resolved.
pub async fn retry_read_errors(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let mut db = ctx.connect().await?;
    let schema = super::system::quote_ident(mapping.schema);
    let open: Vec<(i64, String)> = db
        .query(
            &format!(
                "SELECT id, sfid FROM {schema}._forcesync_read_errors \
                 WHERE mapping = $1 AND resolved_at IS NULL AND sfid IS NOT NULL ORDER BY id LIMIT 2000"
            ),
            &[&mapping.object],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if open.is_empty() {
        return Ok(0);
    }
    let mut sfids: Vec<String> = open.iter().map(|(_, s)| s.clone()).collect();
    sfids.sort();
    sfids.dedup();
    let tx = apply::begin_engine_tx(&mut db).await?;
    let before: i64 = tx
        .query_one(
            &format!("SELECT coalesce(max(id), 0) FROM {schema}._forcesync_read_errors"),
            &[],
        )
        .await?
        .get(0);
    ingest::refetch(ctx, &tx, &sfids, true).await?;
    // Records that failed again have a new error row.
    let failed_again: Vec<String> = tx
        .query(
            &format!(
                "SELECT DISTINCT sfid FROM {schema}._forcesync_read_errors \
                 WHERE mapping = $1 AND id > $2 AND sfid = ANY($3)"
            ),
            &[&mapping.object, &before, &sfids],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ids: Vec<i64> = open
        .iter()
        .filter(|(_, sfid)| !failed_again.contains(sfid))
        .map(|(id, _)| *id)
        .collect();
    let ids_again: Vec<i64> = open
        .iter()
        .filter(|(_, sfid)| failed_again.contains(sfid))
        .map(|(id, _)| *id)
        .collect();
    tx.execute(
        &format!(
            "UPDATE {schema}._forcesync_read_errors SET resolved_at = now() WHERE id = ANY($1)"
        ),
        &[&ids],
    )
    .await?;
    // The old rows of records that failed again are superseded by their new rows.
    tx.execute(
        &format!("UPDATE {schema}._forcesync_read_errors SET retried_at = now(), resolved_at = now() WHERE id = ANY($1)"),
        &[&ids_again],
    )
    .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Purged deletes: `/deleted` since the last check (at most 15 days), applied as deletes.
pub async fn reconcile_deleted(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let mut db = ctx.connect().await?;
    let schema = super::system::quote_ident(mapping.schema);
    let since: Option<NaiveDateTime> = db
        .query_one(
            &format!("SELECT deleted_checked_until FROM {schema}._forcesync_mapping_state WHERE mapping = $1"),
            &[&mapping.object],
        )
        .await?
        .get(0);
    let now = Utc::now();
    let earliest = now - chrono::Duration::days(15) + chrono::Duration::minutes(5);
    if since.is_some_and(|s| s.and_utc() < earliest) {
        // Deletes older than `/deleted` remembers may have been missed: compare every Id.
        drop(db);
        return full_reconcile(ctx).await;
    }
    let start = since.map(|s| s.and_utc()).unwrap_or(earliest).max(earliest);
    if now - start < chrono::Duration::minutes(1) {
        return Ok(0);
    }
    let deleted = ctx.client.deleted(mapping.object, start, now).await?;
    let ids: Vec<String> = deleted.deleted.iter().map(|d| d.id.clone()).collect();
    let tx = apply::begin_engine_tx(&mut db).await?;
    let removed = if ids.is_empty() {
        0
    } else {
        apply::delete_rows(&tx, mapping, &ids, None).await?
    };
    tx.execute(
        &format!("UPDATE {schema}._forcesync_mapping_state SET deleted_checked_until = $2 WHERE mapping = $1"),
        &[&mapping.object, &deleted.latest_date_covered.naive_utc()],
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}

/// A full Id reconciliation: every Id the mapping selects in Salesforce (REST query, or a Bulk
/// API 2.0 job above the bulk threshold) against every synced row; rows Salesforce no longer has
/// leave the table. Used when deletes may be older than `/deleted`'s 15-day window.
pub async fn full_reconcile(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let mut db = ctx.connect().await?;
    let schema = super::system::quote_ident(mapping.schema);
    let started = Utc::now();
    let soql = match mapping.filter {
        Some(f) => format!("SELECT Id FROM {} WHERE {f}", mapping.object),
        None => format!("SELECT Id FROM {}", mapping.object),
    };
    let total = ctx.client.count(&soql::count_query(mapping)).await?;
    let tx = apply::begin_engine_tx(&mut db).await?;
    tx.batch_execute(
        "CREATE TEMP TABLE _forcesync_ids (sfid varchar(18) PRIMARY KEY) ON COMMIT DROP",
    )
    .await?;
    let insert = "INSERT INTO _forcesync_ids SELECT unnest($1::text[]) ON CONFLICT DO NOTHING";
    if total >= ctx.config.bulk_threshold {
        let mut job = ctx
            .client
            .bulk_query(
                &soql,
                crate::salesforce::bulk::QueryOperation::Query,
                None,
                &crate::salesforce::bulk::PollPolicy::default(),
            )
            .await?;
        while let Some(page) = job.next_page().await? {
            let rows = page.rows()?;
            let column = rows.column("Id").unwrap_or(0);
            let ids: Vec<&str> = rows
                .rows
                .iter()
                .filter_map(|r| r.get(column))
                .map(String::as_str)
                .collect();
            tx.execute(insert, &[&ids]).await?;
        }
        let _ = job.delete().await;
    } else {
        let mut page = ctx.client.query(&soql).await?;
        loop {
            let ids: Vec<&str> = page
                .records
                .iter()
                .filter_map(|r| r.get("Id").and_then(Value::as_str))
                .collect();
            tx.execute(insert, &[&ids]).await?;
            match page.next_records_url.take() {
                Some(next) if !page.done => page = ctx.client.query_more(&next).await?,
                _ => break,
            }
        }
    }
    let gone: Vec<String> = tx
        .query(
            &format!(
                "SELECT t.sfid FROM {} t WHERE t.sfid IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM _forcesync_ids i WHERE i.sfid = t.sfid)",
                apply::qualified(mapping)
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let removed = if gone.is_empty() {
        0
    } else {
        apply::remove_unmatched(&tx, mapping, &gone).await?
    };
    tx.execute(
        &format!(
            "UPDATE {schema}._forcesync_mapping_state SET full_reconcile_at = now(), \
             deleted_checked_until = $2 WHERE mapping = $1"
        ),
        &[&mapping.object, &started.naive_utc()],
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}

/// The polling loop: poll every `poll_seconds` until shutdown.
pub async fn run(
    ctx: &MappingCtx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    let db = ctx.connect().await?;
    let status = ctx.states.get(&db, mapping.object).await?;
    if !status.is_some_and(|s| s.is_loaded()) {
        super::load::load(ctx, false).await?;
    }
    ctx.states
        .set_state(&db, mapping.object, SyncState::Polling, None)
        .await?;
    let interval = Duration::from_secs(u64::from(mapping.sync.poll_seconds.max(1)));
    loop {
        if super::is_paused(ctx, &db).await? {
            return Ok(());
        }
        poll_once(ctx, None).await?;
        retry_read_errors(ctx).await?;
        reconcile_deleted(ctx).await?;
        ctx.states
            .set_state(&db, mapping.object, SyncState::Polling, None)
            .await?;
        // Sleep until the next poll, looking for a pause or a shutdown meanwhile.
        let next = tokio::time::Instant::now() + interval;
        while tokio::time::Instant::now() < next {
            tokio::select! {
                _ = tokio::time::sleep_until(next.min(tokio::time::Instant::now() + super::stream::PAUSE_CHECK)) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            if *shutdown.borrow() || super::is_paused(ctx, &db).await? {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_polled_record_is_timed_from_its_system_modstamp() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_001, 0).unwrap();
        let changes = polled_changes(
            &[
                json!({"Id": "001A", "SystemModstamp": "2023-11-14T22:13:20.000+0000"}),
                json!({"Name": "no id"}),
            ],
            now,
        );
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].sfid, "001A");
        assert_eq!(changes[0].kind, "POLL");
        assert_eq!(changes[0].latency_ms, Some(1_000));
    }

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn polls_start_a_look_back_before_the_cursor() {
        let cursor = (at(100), "001B".to_owned());
        let start = window_start(Some(&cursor), Duration::from_secs(30), at(0));
        assert_eq!(start, (at(70), String::new()));
        assert_eq!(
            window_start(None, Duration::from_secs(30), at(500)).0,
            at(470)
        );
    }

    #[test]
    fn the_cursor_never_moves_back() {
        let cursor = (at(100), "001B".to_owned());
        assert_eq!(advance(Some(&cursor), &(at(90), "001Z".into())), cursor);
        assert_eq!(
            advance(Some(&cursor), &(at(100), "001C".into())),
            (at(100), "001C".into())
        );
        assert_eq!(
            advance(None, &(at(1), "001A".into())),
            (at(1), "001A".into())
        );
    }

    #[test]
    fn a_page_ends_at_its_last_record_even_among_equal_stamps() {
        let records = vec![
            json!({"Id": "001A", "SystemModstamp": "2024-01-02T03:04:05.000+0000"}),
            json!({"Id": "001B", "SystemModstamp": "2024-01-02T03:04:05.000+0000"}),
        ];
        let end = page_end(&records).unwrap();
        assert_eq!(end.1, "001B");
    }
}
