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

/// A polled record's `SystemModstamp`.
fn stamp_of(record: &Value) -> Option<NaiveDateTime> {
    record
        .get("SystemModstamp")
        .and_then(Value::as_str)
        .and_then(crate::adapter::parse_datetime)
}

/// The keyset position after a page: its last record's `(SystemModstamp, Id)`.
pub fn page_end(records: &[Value]) -> Option<Cursor> {
    let last = records.last()?;
    let stamp = stamp_of(last)?;
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
            let stamp = stamp_of(r);
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

/// The records of a page that may be the engine's own creates not written back yet (pure): not
/// deleted, created by `user` (the engine's), changed less than `max_age` before `now`. Those of
/// them Postgres does not know yet while the writer has creates in flight are deferred
/// ([`poll_once`]): stored now, they would be second rows beside the app's rows, which the app
/// could change before the writer's answer makes them give way.
pub fn own_creates_to_defer<'a>(
    records: &'a [Value],
    user: &str,
    now: NaiveDateTime,
    max_age: Duration,
) -> Vec<&'a str> {
    let since = looking_back(now, max_age);
    records
        .iter()
        .filter(|r| r.get("IsDeleted").and_then(Value::as_bool) != Some(true))
        .filter(|r| r.get("CreatedById").and_then(Value::as_str) == Some(user))
        .filter(|r| stamp_of(r).is_some_and(|stamp| stamp >= since))
        .filter_map(|r| r.get("Id").and_then(Value::as_str))
        .collect()
}

/// The cursor after a page of a poll that deferred records (pure): `moved` (where the page
/// ended), but no further than the first record the poll deferred (`first_deferred`, on any of
/// its pages), so that the next poll's window reads it again; never back from `stored` (the
/// cursor the poll started from).
pub fn hold(
    stored: Option<&Cursor>,
    moved: Cursor,
    first_deferred: Option<NaiveDateTime>,
) -> Cursor {
    match first_deferred {
        Some(stamp) if (stamp, String::new()) < moved => advance(stored, &(stamp, String::new())),
        _ => moved,
    }
}

/// The earliest `SystemModstamp` among `records` (pure).
fn earliest_stamp(records: &[Value]) -> Option<NaiveDateTime> {
    records.iter().filter_map(stamp_of).min()
}

/// How long a poll defers a record the engine created and has not written back yet: at most
/// half the look-back, so that the window of a later poll still reads it.
fn own_create_defer(lookback: Duration) -> Duration {
    (lookback / 2).min(Duration::from_secs(60))
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
    let stored_at_start = stored.clone();
    let mut cursor = stored;
    let mut first_deferred: Option<NaiveDateTime> = None;
    let user = if mapping.is_read_write() {
        ctx.client.user_id().await?
    } else {
        None
    };
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
        let deferred = match &user {
            Some(user) => {
                let candidates = own_creates_to_defer(
                    &records,
                    user,
                    Utc::now().naive_utc(),
                    own_create_defer(ctx.config.lookback),
                );
                ingest::unwritten_own_creates(ctx, &tx, &candidates).await?
            }
            None => Vec::new(),
        };
        let deferred: std::collections::HashSet<String> = deferred.into_iter().collect();
        let (held, records): (Vec<Value>, Vec<Value>) = records.into_iter().partition(|r| {
            r.get("Id")
                .and_then(Value::as_str)
                .is_some_and(|id| deferred.contains(id))
        });
        let applied = ingest::apply_records(ctx, &tx, &records).await?;
        first_deferred = first_deferred
            .into_iter()
            .chain(earliest_stamp(&held))
            .min();
        if let Some(end) = &end {
            let moved = hold(
                stored_at_start.as_ref(),
                advance(cursor.as_ref(), end),
                first_deferred,
            );
            ctx.states
                .set_watermark(&tx, mapping.object, Some(&moved))
                .await?;
            cursor = Some(moved);
        }
        tracing::debug!(
            mapping = mapping.object,
            after = %after.0,
            read = records.len() + held.len(),
            applied = applied.total(),
            deferred = held.len(),
            "polled a page (deferred: records this engine created and has not written back yet, \
             read again by the next poll)"
        );
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

    /// A polled record: its Id, who created it and its stamp (seconds after `at(0)`).
    fn polled(id: &str, creator: &str, secs: i64) -> Value {
        let stamp = at(secs).format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
        json!({"Id": id, "CreatedById": creator, "SystemModstamp": stamp, "IsDeleted": false})
    }

    #[test]
    fn only_recent_records_the_engines_own_user_created_may_be_deferred() {
        let mut deleted = polled("001D", "005ME", 95);
        deleted["IsDeleted"] = json!(true);
        let records = [
            polled("001A", "005ME", 90),
            polled("001B", "005SOMEONE", 95),
            polled("001C", "005ME", 10),
            deleted,
            json!({"Id": "001E", "SystemModstamp": "2023-11-14T22:14:55.000+0000"}),
        ];
        let deferrable = own_creates_to_defer(&records, "005ME", at(100), Duration::from_secs(60));
        assert_eq!(
            deferrable,
            vec!["001A"],
            "another user's record, an old one, a deleted one and one whose creator is not known \
             are stored at once"
        );
    }

    #[test]
    fn a_deferred_record_holds_the_cursor_so_that_the_next_poll_reads_it_again() {
        let stored = (at(50), "001S".to_owned());
        let moved = (at(100), "001Z".to_owned());
        let first = polled("001A", "005ME", 80);
        let later = polled("001B", "005ME", 95);
        let first_deferred = earliest_stamp(&[later, first]);
        assert_eq!(first_deferred, Some(at(80)));
        assert_eq!(
            hold(Some(&stored), moved.clone(), first_deferred),
            (at(80), String::new()),
            "no further than the first deferred record, on whichever page of the poll"
        );
        assert_eq!(hold(Some(&stored), moved.clone(), None), moved);
        assert_eq!(
            hold(Some(&stored), moved, Some(at(40))),
            stored,
            "never back: a record behind the cursor is in the next window already"
        );
        assert!(own_create_defer(Duration::from_secs(120)) <= Duration::from_secs(60));
        assert_eq!(
            own_create_defer(Duration::from_secs(30)),
            Duration::from_secs(15),
            "within the look-back"
        );
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
