//! The Change Data Capture loop of a streaming mapping.
//!
//! The mapping's channel comes from the instance's streaming hub ([`super::hub`]): one client
//! of the org carries the channels of every mapping the instance holds, and hands this loop its
//! events through a bounded queue. When the loop is busy (an initial load, a slow database) and
//! the queue fills, the hub drops the channel; the loop subscribes again from its stored replay
//! id, so nothing is lost and the other mappings are never held up.
//!
//! Order of a first start: subscribe (`-1`) **before** the initial load, load, catch up by
//! polling from the load's start minus the look-back, then apply the events that arrived during
//! the load (idempotently). After that, each batch of events is applied in one Postgres
//! transaction together with its replay id, so a restart resumes exactly after the last change
//! applied. Events of one Salesforce transaction (one `transactionKey`) are applied together.
//!
//! When the stored replay id is past retention, the loop subscribes from `-1` and catches up by
//! polling from its cursor. When the org refuses streaming (allocation used up, `403`s, the
//! object not enabled), the mapping polls at the short degraded interval, says why and until when
//! in its state, and tries streaming again with backoff ([`super::degraded`] decides); when
//! streaming is back it resumes from the stored replay id or catches up by polling from where
//! polling left off. Drift repair (a poll) runs every `poll_seconds` while streaming.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio::sync::watch;

use super::apply;
use super::convert::pg_text_from_csv;
use super::degraded::{self, Refusal, Resume};
use super::hub::ChannelEvents;
use super::hub::{HubEvent, Start};
use super::ingest::{self, Applied};
use super::load;
use super::poll;
use super::soql::change_channel;
use super::state::SyncState;
use super::{EngineError, MappingCtx};
use crate::adapter::{ChangeEventHeader, FieldDescriptor, MappingDescriptor};
use crate::salesforce::bulk::{PollPolicy, QueryOperation};
use crate::salesforce::limits::DAILY_DELIVERIES;
use crate::salesforce::streaming::StreamError;

/// Most events applied in one Postgres transaction.
const MAX_BATCH: usize = 500;
/// How often a running mapping looks for an operator's pause.
pub const PAUSE_CHECK: Duration = Duration::from_secs(2);

/// How one streaming session of the mapping ended.
enum Outcome {
    /// Shutdown, or an operator's pause.
    Stop,
    /// The channel ended without a refusal (fell behind, replay id past retention): subscribe
    /// again at once.
    Again,
    /// The org refuses streaming: poll, then try again.
    Refused(StreamError),
}

/// What an error of the channel means for the loop. A Pub/Sub channel found unsupported once it
/// ran (an endpoint that accepted the stream but is no Pub/Sub API) moves the hub to CometD, like
/// a refused subscription does.
fn outcome_of(ctx: &MappingCtx, error: StreamError) -> Result<Outcome, EngineError> {
    match error {
        StreamError::Api(e) => Err(EngineError::Salesforce(e)),
        StreamError::ReplayIdUnavailable { .. } => Ok(Outcome::Again),
        StreamError::Unsupported { message } => {
            ctx.hub.fall_back(&message);
            Ok(Outcome::Again)
        }
        other => Ok(Outcome::Refused(other)),
    }
}

/// Runs the mapping by streaming until shutdown or a pause, polling at the degraded interval
/// while the org refuses streaming.
pub async fn run(
    ctx: &MappingCtx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mut attempt = 0u32;
    let mut polled_since = false;
    loop {
        let started = tokio::time::Instant::now();
        match stream(ctx, shutdown, &mut polled_since).await? {
            Outcome::Stop => return Ok(()),
            Outcome::Again => {}
            Outcome::Refused(error) => {
                attempt = degraded::next_attempt(attempt, started.elapsed());
                if poll_degraded(ctx, &error, &mut attempt, shutdown).await? {
                    return Ok(());
                }
                polled_since = true;
            }
        }
        if *shutdown.borrow() {
            return Ok(());
        }
    }
}

/// Subscribes from where the mapping is (loading it first when it never was) and applies events
/// until the channel ends.
async fn stream(
    ctx: &MappingCtx,
    shutdown: &mut watch::Receiver<bool>,
    polled_since: &mut bool,
) -> Result<Outcome, EngineError> {
    let mapping = ctx.mapping;
    let db = ctx.connect().await?;
    let status = ctx
        .states
        .get(&db, mapping.object)
        .await?
        .ok_or_else(|| EngineError::Config(format!("no state row for {}", mapping.object)))?;

    let channel = change_channel(mapping.object);
    let capacity = ctx.config.load_buffer;
    let mut events: ChannelEvents = if !status.is_loaded() {
        let events = match ctx.hub.subscribe(&channel, Start::New, capacity).await {
            Ok(events) => events,
            Err(error) => return outcome_of(ctx, error),
        };
        let report = load::load(ctx, false).await?;
        tracing::info!(
            mapping = mapping.object,
            rows = report.rows,
            bulk = report.bulk,
            seconds = report.seconds,
            "initial load done"
        );
        poll::poll_once(ctx, Some(back(report.started_at, ctx.config.lookback))).await?;
        events
    } else {
        let subscribed = match degraded::resume(status.cdc_replay_id, *polled_since) {
            Resume::Replay(from) => match ctx.hub.subscribe(&channel, from, capacity).await {
                Err(StreamError::ReplayIdUnavailable { message, .. }) => {
                    tracing::warn!(
                        mapping = mapping.object,
                        "{message}; catching up by polling"
                    );
                    new_with_catch_up(ctx, &db, &channel).await?
                }
                other => other,
            },
            Resume::NewWithCatchUp => new_with_catch_up(ctx, &db, &channel).await?,
        };
        match subscribed {
            Ok(events) => events,
            Err(error) => return outcome_of(ctx, error),
        }
    };
    *polled_since = false;
    // Which transport the channel rides on (`forcesync status` shows it), and why it is CometD
    // when the Pub/Sub API was asked for.
    let fallback = ctx.hub.fallback();
    ctx.states
        .set_streaming(
            &db,
            mapping.object,
            ctx.hub.transport().name(),
            fallback.as_deref(),
        )
        .await?;

    let repair_every = Duration::from_secs(u64::from(mapping.sync.poll_seconds.max(1)));
    let mut repair =
        tokio::time::interval_at(tokio::time::Instant::now() + repair_every, repair_every);
    let mut formulas = ctx
        .config
        .formula_refresh
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let mut apply_db = ctx.connect().await?;
    // An operator's pause takes effect within a couple of seconds.
    let mut pause_check = tokio::time::interval(PAUSE_CHECK);
    loop {
        tokio::select! {
            delivery = events.recv() => {
                let Some(delivery) = delivery else {
                    // The hub dropped the channel (this loop fell behind): again from the stored
                    // replay id.
                    return Ok(Outcome::Again);
                };
                let mut batch = Vec::new();
                match delivery {
                    Ok(event) => batch.push(event),
                    Err(error) => {
                        if matches!(error, StreamError::ReplayIdUnavailable { .. }) {
                            ctx.states.set_replay_id(&db, mapping.object, None).await?;
                        }
                        return outcome_of(ctx, error);
                    }
                }
                // Take what is already waiting: the rest of this Salesforce transaction, and more
                // while the loop is behind.
                let mut failed = None;
                while batch.len() < MAX_BATCH {
                    match events.try_recv() {
                        Some(Ok(event)) => batch.push(event),
                        Some(Err(error)) => { failed = Some(error); break; }
                        None => break,
                    }
                }
                let applied = apply_batch(ctx, &mut apply_db, &batch).await?;
                if let Some(since) = applied.overflow_since {
                    poll::poll_once(ctx, Some(back(since, ctx.config.lookback))).await?;
                }
                if let Some(error) = failed {
                    if matches!(error, StreamError::ReplayIdUnavailable { .. }) {
                        ctx.states.set_replay_id(&db, mapping.object, None).await?;
                    }
                    return outcome_of(ctx, error);
                }
            }
            _ = repair.tick() => {
                poll::poll_once(ctx, None).await?;
                poll::retry_read_errors(ctx).await?;
                poll::reconcile_deleted(ctx).await?;
                if super::is_paused(ctx, &db).await? {
                    return Ok(Outcome::Stop);
                }
            }
            _ = async {
                match formulas.as_mut() {
                    Some(timer) => { timer.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                refresh_formulas(ctx).await?;
            }
            _ = pause_check.tick() => {
                if super::is_paused(ctx, &db).await? {
                    return Ok(Outcome::Stop);
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return Ok(Outcome::Stop);
                }
            }
        }
    }
}

/// Subscribes to new events only, then (once subscribed) forgets the stored replay id and catches
/// up by polling from the polling cursor: every change is either polled or streamed.
async fn new_with_catch_up(
    ctx: &MappingCtx,
    db: &tokio_postgres::Client,
    channel: &str,
) -> Result<Result<ChannelEvents, StreamError>, EngineError> {
    let events = ctx
        .hub
        .subscribe(channel, Start::New, ctx.config.load_buffer)
        .await;
    if events.is_ok() {
        ctx.states
            .set_replay_id(db, ctx.mapping.object, None)
            .await?;
        poll::poll_once(ctx, None).await?;
    }
    Ok(events)
}

/// Applies a batch of events in one transaction with the replay id of its last event (set-based
/// statements for the whole batch: [`ingest::apply_events`]).
pub async fn apply_batch(
    ctx: &MappingCtx,
    db: &mut tokio_postgres::Client,
    batch: &[HubEvent],
) -> Result<Applied, EngineError> {
    let mapping = ctx.mapping;
    let Some(last) = batch.last() else {
        return Ok(Applied::default());
    };
    let tx = apply::begin_engine_tx(db).await?;
    let delivered: Vec<ingest::Delivered<'_>> = batch
        .iter()
        .map(|event| ingest::Delivered::read(&event.payload))
        .collect();
    let seen: Vec<&ChangeEventHeader> = delivered
        .iter()
        .filter_map(|event| event.header.as_ref().ok())
        .collect();
    let committed: Option<DateTime<Utc>> = seen
        .iter()
        .filter_map(|header| DateTime::<Utc>::from_timestamp_millis(header.commit_timestamp))
        .next_back();
    let total = ingest::apply_delivered(ctx, &tx, &delivered).await?;
    ctx.states
        .set_replay_id(&tx, mapping.object, Some(&last.replay_id))
        .await?;
    ctx.states
        .record_applied(&tx, mapping.object, total.total() as i64, committed)
        .await?;
    tx.commit().await?;
    super::activity::record(mapping.object, streamed_changes(&seen, Utc::now()));
    Ok(total)
}

/// The changes a batch applied, for the status page's recent activity (pure).
pub fn streamed_changes(
    headers: &[&ChangeEventHeader],
    now: DateTime<Utc>,
) -> Vec<super::activity::Change> {
    headers
        .iter()
        .flat_map(|h| {
            let latency_ms = DateTime::<Utc>::from_timestamp_millis(h.commit_timestamp)
                .map(|c| (now - c).num_milliseconds().max(0));
            let kind = format!("{:?}", h.change_type).to_uppercase();
            h.record_ids.iter().map(move |id| super::activity::Change {
                at: now,
                kind: kind.clone(),
                sfid: id.clone(),
                fields: h.changed_fields.clone(),
                latency_ms,
            })
        })
        .collect()
}

/// The org refuses streaming: poll at the degraded interval, saying why and until when in the
/// state, until the next try of streaming is due (`attempt`, moved on when the daily delivery
/// allocation is known to be still used up). Returns whether the mapping must stop (shutdown or
/// pause).
async fn poll_degraded(
    ctx: &MappingCtx,
    error: &StreamError,
    attempt: &mut u32,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<bool, EngineError> {
    let mapping = ctx.mapping;
    let (refusal, detail) = Refusal::of(error).unwrap_or((Refusal::Other, error.to_string()));
    let db = ctx.connect().await?;
    let status = ctx.states.get(&db, mapping.object).await?;
    if !status.is_some_and(|s| s.is_loaded()) {
        load::load(ctx, false).await?;
    }
    let mut calls_per_poll = 1;
    // What the polling loop also does every `poll_seconds`: read errors again, purged deletes.
    let repair_every = Duration::from_secs(u64::from(mapping.sync.poll_seconds.max(1)));
    let mut repaired = tokio::time::Instant::now();
    loop {
        let delay = degraded::retry_delay(*attempt);
        let retry_at =
            Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::zero());
        let until = tokio::time::Instant::now() + delay;
        let mut announced = false;
        loop {
            let interval =
                degraded::degraded_interval(ctx.config.degraded_poll, calls_per_poll, budget(ctx));
            let message = degraded::polling_message(&refusal, &detail, interval, retry_at);
            if !announced {
                tracing::warn!(mapping = mapping.object, attempt = *attempt, "{message}");
                announced = true;
            }
            ctx.states
                .set_state(&db, mapping.object, SyncState::Polling, Some(&message))
                .await?;
            let before = used_today(ctx);
            poll::poll_once(ctx, None).await?;
            calls_per_poll = used_today(ctx).saturating_sub(before).max(1);
            if repaired.elapsed() >= repair_every {
                poll::retry_read_errors(ctx).await?;
                poll::reconcile_deleted(ctx).await?;
                repaired = tokio::time::Instant::now();
            }
            if super::is_paused(ctx, &db).await? {
                return Ok(true);
            }
            let next = (tokio::time::Instant::now() + interval).min(until);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = shutdown.changed() => return Ok(true),
            }
            if *shutdown.borrow() {
                return Ok(true);
            }
            if tokio::time::Instant::now() >= until {
                break;
            }
        }
        // Watched, not discovered by failure: while `/limits` says the daily delivery allocation
        // is still used up, keep polling rather than try.
        if refusal == Refusal::DailyDeliveries {
            if let Ok(limits) = ctx.client.limits().await {
                super::allocations::store(&db, mapping.schema, &limits).await?;
                if limits
                    .get(DAILY_DELIVERIES)
                    .is_some_and(|l| l.remaining == 0)
                {
                    *attempt = degraded::next_attempt(*attempt, Duration::ZERO);
                    continue;
                }
            }
        }
        return Ok(false);
    }
}

/// Budgeted calls the mapping made today.
fn used_today(ctx: &MappingCtx) -> u64 {
    ctx.client.mapping_usage().map_or(0, |u| u.used())
}

/// The mapping's API budget now, for the degraded interval.
fn budget(ctx: &MappingCtx) -> degraded::Budget {
    let now = Utc::now();
    let midnight = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    degraded::Budget {
        max_daily: u64::from(ctx.mapping.sync.max_daily_api_calls),
        used_today: used_today(ctx),
        seconds_left_today: (midnight - now).num_seconds().max(1) as u64,
    }
}

/// Whether a formula refresh reads through a Bulk API 2.0 query job rather than REST query pages:
/// from the engine's bulk threshold on, like a load (one job instead of a call per 2,000 rows).
/// `rows`: the table's size, which stands for the object's (no `COUNT()` call is spent).
pub fn formula_refresh_by_bulk(rows: u64, bulk_threshold: u64) -> bool {
    rows >= bulk_threshold
}

/// Formula fields do not bump SystemModstamp: re-read only them (with Id) and store them, through
/// Bulk API 2.0 for a large table ([`formula_refresh_by_bulk`]). Returns the rows refreshed.
pub async fn refresh_formulas(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let Some(soql) = super::soql::formula_query(mapping) else {
        return Ok(0);
    };
    let formulas: Vec<&'static FieldDescriptor> =
        mapping.fields.iter().filter(|f| f.calculated).collect();
    let mut db = ctx.connect().await?;
    let rows = table_size(&db, mapping).await?;
    let mut updated = 0;
    if formula_refresh_by_bulk(rows, ctx.config.bulk_threshold) {
        let mut job = ctx
            .client
            .bulk_query(&soql, QueryOperation::Query, None, &PollPolicy::default())
            .await?;
        while let Some(page) = job.next_page().await? {
            let rows = formula_rows_from_csv(&formulas, &page.csv)?;
            updated += store_formulas(&mut db, mapping, rows).await?;
        }
        let _ = job.delete().await;
    } else {
        let mut page = ctx.client.query(&soql).await?;
        loop {
            let rows = formula_rows_from_records(&formulas, &page.records);
            updated += store_formulas(&mut db, mapping, rows).await?;
            match page.next_records_url.take() {
                Some(next) if !page.done => page = ctx.client.query_more(&next).await?,
                _ => break,
            }
        }
    }
    let schema = super::system::quote_ident(mapping.schema);
    db.execute(
        &format!("UPDATE {schema}._forcesync_mapping_state SET formulas_refreshed_at = now() WHERE mapping = $1"),
        &[&mapping.object],
    )
    .await?;
    Ok(updated)
}

/// The table's size from the planner's statistics (a count when it was never analyzed).
async fn table_size(
    db: &tokio_postgres::Client,
    mapping: &MappingDescriptor,
) -> Result<u64, EngineError> {
    let table = apply::qualified(mapping);
    let estimate: i64 = db
        .query_one(
            "SELECT coalesce((SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)), -1)",
            &[&table],
        )
        .await?
        .get(0);
    let rows = if estimate >= 0 {
        estimate
    } else {
        db.query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0)
    };
    Ok(rows.max(0) as u64)
}

/// Formula rows from REST records (`Id` and the formula fields); records with a value that does
/// not convert are left for the next refresh.
fn formula_rows_from_records(
    formulas: &[&'static FieldDescriptor],
    records: &[serde_json::Value],
) -> Vec<apply::Row> {
    records
        .iter()
        .filter_map(|record| {
            let sfid = record.get("Id").and_then(|v| v.as_str())?;
            let cells = formulas
                .iter()
                .map(|field| {
                    let value = record
                        .get(field.sf_name)
                        .unwrap_or(&serde_json::Value::Null);
                    super::convert::pg_text(field, value).map(|text| (*field, text))
                })
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            Some(apply::Row {
                sfid: sfid.to_owned(),
                cells,
                stamp: None,
            })
        })
        .collect()
}

/// Formula rows from a Bulk API CSV page (header first; names match case-insensitively).
pub fn formula_rows_from_csv(
    formulas: &[&'static FieldDescriptor],
    csv: &[u8],
) -> Result<Vec<apply::Row>, EngineError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv);
    let header = reader
        .headers()
        .map_err(|e| EngineError::Config(format!("Bulk API result header: {e}")))?
        .clone();
    let position = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let id = position("Id")
        .ok_or_else(|| EngineError::Config("Bulk API result without an Id column".into()))?;
    let positions: Vec<Option<usize>> = formulas.iter().map(|f| position(f.sf_name)).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| EngineError::Config(format!("Bulk API result row: {e}")))?;
        let Some(sfid) = record.get(id).filter(|s| !s.is_empty()) else {
            continue;
        };
        let cells = formulas
            .iter()
            .zip(&positions)
            .map(|(field, p)| {
                let cell = p.and_then(|p| record.get(p)).unwrap_or("");
                pg_text_from_csv(field, cell).map(|text| (*field, text))
            })
            .collect::<Result<Vec<_>, _>>();
        if let Ok(cells) = cells {
            rows.push(apply::Row {
                sfid: sfid.to_owned(),
                cells,
                stamp: None,
            });
        }
    }
    Ok(rows)
}

/// Stores one page of formula values in its own transaction; returns the rows it found.
async fn store_formulas(
    db: &mut tokio_postgres::Client,
    mapping: &'static MappingDescriptor,
    rows: Vec<apply::Row>,
) -> Result<u64, EngineError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let sent = rows.len() as u64;
    let tx = apply::begin_engine_tx(db).await?;
    let missing = apply::update_rows(&tx, mapping, rows).await?;
    tx.commit().await?;
    Ok(sent - missing.len() as u64)
}

fn back(at: NaiveDateTime, by: Duration) -> NaiveDateTime {
    at - chrono::Duration::from_std(by).unwrap_or_else(|_| chrono::Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::{PgType, SfType};

    #[test]
    fn a_batch_shows_each_record_with_its_fields_and_latency() {
        let header = ChangeEventHeader::from_payload(&serde_json::json!({
            "ChangeEventHeader": {
                "entityName": "Account", "changeType": "UPDATE",
                "changedFields": ["Name", "Phone"], "commitTimestamp": 1_712_694_600_000_i64,
                "recordIds": ["001A", "001B"], "commitNumber": 1, "commitUser": "005x",
                "sequenceNumber": 1, "transactionKey": "t", "changeOrigin": ""
            }
        }))
        .unwrap();
        let now = DateTime::<Utc>::from_timestamp_millis(1_712_694_600_042).unwrap();
        let changes = streamed_changes(&[&header], now);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].sfid, "001B");
        assert_eq!(changes[0].kind, "UPDATE");
        assert_eq!(changes[0].fields, ["Name", "Phone"]);
        assert_eq!(changes[0].latency_ms, Some(42));
    }

    static TOTAL: FieldDescriptor = FieldDescriptor {
        column: "total__c",
        sf_type: SfType::Currency,
        pg_type: PgType::DoublePrecision,
        calculated: true,
        ..super::super::testing::field("Total__c")
    };

    #[test]
    fn formulas_are_refreshed_through_bulk_from_the_bulk_threshold_on() {
        assert!(!formula_refresh_by_bulk(49_999, 50_000));
        assert!(formula_refresh_by_bulk(50_000, 50_000));
        assert!(formula_refresh_by_bulk(0, 0));
        assert!(!formula_refresh_by_bulk(u64::MAX - 1, u64::MAX));
    }

    #[test]
    fn a_bulk_page_of_formula_values_becomes_rows_by_id() {
        let csv = b"Id,Total__c\na01000000000001AAA,1500.5\na01000000000002AAA,\n,7\n";
        let rows = formula_rows_from_csv(&[&TOTAL], csv).unwrap();
        assert_eq!(rows.len(), 2, "a line without an Id is skipped");
        assert_eq!(rows[0].sfid, "a01000000000001AAA");
        assert_eq!(rows[0].cells[0].1.as_deref(), Some("1500.5"));
        assert_eq!(rows[1].cells[0].1, None, "an empty cell is NULL");
        assert!(rows.iter().all(|r| r.stamp.is_none()));
        // Column names are matched without regard to case, in any order.
        let csv = b"total__c,ID\n3,a01000000000003AAA\n";
        let rows = formula_rows_from_csv(&[&TOTAL], csv).unwrap();
        assert_eq!(rows[0].sfid, "a01000000000003AAA");
        assert_eq!(rows[0].cells[0].1.as_deref(), Some("3"));
    }
}
