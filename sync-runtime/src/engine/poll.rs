//! Polling: the read path when streaming is off or unavailable, and drift repair when it is on.
//! One poll ([`poll_once`]) is an operation; when to poll is the driver's ([`super::driver`]).
//!
//! Each poll reads, through `queryAll` (so deleted records come too), every record whose
//! `(SystemModstamp, Id)` is after the cursor minus a look-back window, in `ORDER BY
//! SystemModstamp, Id` keyset pages. The look-back exists because Salesforce stamps
//! SystemModstamp when a transaction *starts*: a long transaction becomes visible after the poller
//! has passed its time. Re-reading the window is harmless because applying is idempotent. The
//! cursor moves only forward and is stored in the transaction that applied its page.
//!
//! Deletes: `queryAll` shows deleted records while they are in the recycle bin; purged ones are
//! repaired by [`super::deletes`].

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::activity;
use super::apply;
use super::ingest::{self, Applied};
use super::soql;
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
    (looking_back(stamp, lookback), String::new())
}

/// `at` less a look-back (pure): where a poll that must not miss a change made from `at` on
/// starts.
pub fn looking_back(at: NaiveDateTime, lookback: Duration) -> NaiveDateTime {
    at - chrono::Duration::from_std(lookback).unwrap_or_else(|_| chrono::Duration::zero())
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
pub fn polled_changes(records: &[Value], now: DateTime<Utc>) -> Vec<activity::Change> {
    records
        .iter()
        .filter_map(|r| {
            let sfid = r.get("Id").and_then(Value::as_str)?.to_owned();
            let stamp = r
                .get("SystemModstamp")
                .and_then(Value::as_str)
                .and_then(crate::adapter::parse_datetime);
            Some(activity::Change {
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
            activity::record(mapping.object, polled_changes(&records, Utc::now()));
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
