//! Repair: deletes no change event and no poll brought. `queryAll` shows deleted records only
//! while they are in the recycle bin; records purged from it come from
//! `/sobjects/<Object>/deleted` (15 days of history); beyond that window a full Id reconciliation
//! compares every Id the mapping selects with every synced row.
//!
//! How far deletes are known is kept in the mapping's state (`deleted_checked_until`, through
//! [`super::state`]), moved in the transaction that applied them. An operation: the driver
//! ([`super::driver`]) decides when it runs.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::apply;
use super::soql;
use super::{EngineError, MappingCtx};
use crate::salesforce::bulk::{PollPolicy, QueryOperation};

/// How far back `/deleted` answers (Salesforce keeps 15 days), less a margin.
fn earliest(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::days(15) + chrono::Duration::minutes(5)
}

/// What a delete reconciliation does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Deletes were last checked before `/deleted`'s window: some may be lost to it, compare
    /// every Id.
    Full,
    /// Checked less than a minute ago (`/deleted` covers whole minutes): nothing to do.
    Skip,
    /// Read `/deleted` from here to now.
    Read { from: DateTime<Utc> },
}

/// The reconciliation due, from where deletes were last checked (`None`: never) (pure).
pub fn plan(checked_until: Option<NaiveDateTime>, now: DateTime<Utc>) -> Plan {
    let earliest = earliest(now);
    if checked_until.is_some_and(|s| s.and_utc() < earliest) {
        return Plan::Full;
    }
    let from = checked_until
        .map(|s| s.and_utc())
        .unwrap_or(earliest)
        .max(earliest);
    if now - from < chrono::Duration::minutes(1) {
        Plan::Skip
    } else {
        Plan::Read { from }
    }
}

/// Purged deletes: `/deleted` since the last check (at most 15 days), applied as deletes; a full
/// Id reconciliation ([`full_reconcile`]) when the last check is older than that. Returns the
/// rows removed.
pub async fn reconcile_deleted(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let mut db = ctx.connect().await?;
    let since = ctx
        .states
        .deleted_checked_until(&db, mapping.object)
        .await?;
    let now = Utc::now();
    let start = match plan(since, now) {
        Plan::Full => {
            drop(db);
            return full_reconcile(ctx).await;
        }
        Plan::Skip => return Ok(0),
        Plan::Read { from } => from,
    };
    let deleted = ctx.client.deleted(mapping.object, start, now).await?;
    let ids: Vec<String> = deleted.deleted.iter().map(|d| d.id.clone()).collect();
    let tx = apply::begin_engine_tx(&mut db).await?;
    let removed = if ids.is_empty() {
        0
    } else {
        apply::delete_rows(&tx, mapping, &ids, None).await?
    };
    ctx.states
        .set_deleted_checked_until(&tx, mapping.object, deleted.latest_date_covered.naive_utc())
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
            .bulk_query(&soql, QueryOperation::Query, None, &PollPolicy::default())
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
        .map(|r| r.get("sfid"))
        .collect();
    let removed = if gone.is_empty() {
        0
    } else {
        apply::remove_unmatched(&tx, mapping, &gone).await?
    };
    ctx.states
        .record_full_reconcile(&tx, mapping.object, started.naive_utc())
        .await?;
    tx.commit().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn deletes_are_read_from_the_last_check_within_the_window() {
        let now = at("2026-12-06T10:00:00Z");
        let checked = at("2026-12-06T09:00:00Z");
        assert_eq!(
            plan(Some(checked.naive_utc()), now),
            Plan::Read { from: checked }
        );
        // Never checked: from as far back as `/deleted` answers.
        assert_eq!(
            plan(None, now),
            Plan::Read {
                from: earliest(now)
            }
        );
    }

    #[test]
    fn a_check_within_the_minute_waits_for_the_next() {
        let now = at("2026-12-06T10:00:00Z");
        let checked = at("2026-12-06T09:59:30Z");
        assert_eq!(plan(Some(checked.naive_utc()), now), Plan::Skip);
    }

    #[test]
    fn a_check_older_than_the_window_compares_every_id() {
        let now = at("2026-12-06T10:00:00Z");
        let checked = at("2026-11-16T10:00:00Z");
        assert_eq!(plan(Some(checked.naive_utc()), now), Plan::Full);
    }
}
