//! The per-mapping driver: which mode a mapping is in and when each operation runs. For as long
//! as the engine runs, each mapping waits for its lease ([`super::lease`]), then: waits while an
//! operator pauses it; loads it when it never was; streams its change events (or polls, when
//! streaming is off or the org refuses it); repairs drift every `poll_seconds` (a poll, the read
//! errors read again, purged deletes) and refreshes formula fields on `formula_refresh`; and moves
//! its state ([`super::state`]) as things happen: budget exhausted, a field gone from Salesforce,
//! the org refusing events.
//!
//! The operations it schedules do not know of one another or of it: [`load`](super::load),
//! [`poll`](super::poll) (one poll), [`cdc`](super::cdc) (applying delivered events), and the
//! repairs [`reread`](super::reread), [`deletes`](super::deletes), [`formulas`](super::formulas);
//! `tests/layering.rs` keeps it so. What the driver decides is decided by pure functions
//! ([`super::degraded`]); this module only sequences.
//!
//! A streaming mapping's first start: subscribe (`-1`) **before** the initial load, load, catch
//! up by polling from the load's start minus the look-back, then apply the events that arrived
//! during the load (idempotently). When the stored replay id is past retention, it subscribes
//! from `-1` and catches up by polling from its cursor. When the org refuses streaming
//! (allocation used up, `403`s, the object not enabled), the mapping polls at the short degraded
//! interval, says why and until when in its state, and tries streaming again with backoff; when
//! streaming is back it resumes from the stored replay id or catches up by polling from where
//! polling left off. When the mapping falls behind and the hub drops its channel, it subscribes
//! again from its stored replay id, so nothing is lost and other mappings are never held up.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::allocations;
use super::cdc;
use super::degraded::{self, Refusal, Resume};
use super::hub::{ChannelEvents, Start};
use super::lease;
use super::load::{self, LoadReport};
use super::poll;
use super::soql::change_channel;
use super::state::SyncState;
use super::{deletes, formulas, reread};
use super::{EngineError, MappingCtx};
use crate::salesforce::limits::DAILY_DELIVERIES;
use crate::salesforce::streaming::StreamError;

/// One mapping, for as long as the engine runs: wait for its lease, then sync it (in `held`
/// while the lease lasts).
pub async fn run_mapping(ctx: MappingCtx, held: lease::Held, mut shutdown: watch::Receiver<bool>) {
    let mapping = ctx.mapping;
    loop {
        if *shutdown.borrow() {
            return;
        }
        match lease::Lease::try_acquire(&ctx.config.database_url, mapping.schema, mapping.object)
            .await
        {
            Ok(Some(lease)) => {
                tracing::info!(mapping = mapping.object, "leased");
                held.insert(mapping.object);
                sync_while_leased(&ctx, &lease, &mut shutdown).await;
                held.remove(mapping.object);
                drop(lease);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(mapping = mapping.object, "lease: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.config.lease_retry) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Syncs a leased mapping until shutdown or until the lease is lost.
async fn sync_while_leased(
    ctx: &MappingCtx,
    lease: &lease::Lease,
    shutdown: &mut watch::Receiver<bool>,
) {
    let mapping = ctx.mapping;
    let mut backoff = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() || !lease.is_alive().await {
            return;
        }
        let result = run_once(ctx, shutdown).await;
        let wait = match result {
            Ok(()) => return,
            Err(error) => {
                let (state, message) = error.state(mapping);
                tracing::warn!(mapping = mapping.object, state = %state, "{message}");
                if let Ok(db) = ctx.connect().await {
                    let _ = ctx.states.record_error(&db, mapping.object, &message).await;
                    let _ = ctx
                        .states
                        .set_state(&db, mapping.object, state, Some(&message))
                        .await;
                }
                let (wait, next) = retry_wait(state, backoff, ctx.config.schema_retry);
                backoff = next;
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// After an error moved a mapping to `state`: how long it waits before trying again, and the
/// backoff after that (doubling up to a minute) (pure).
pub fn retry_wait(
    state: SyncState,
    backoff: Duration,
    schema_retry: Duration,
) -> (Duration, Duration) {
    let wait = match state {
        SyncState::BudgetExhausted => Duration::from_secs(60),
        SyncState::SchemaChanged => schema_retry,
        _ => backoff,
    };
    (wait, (backoff * 2).min(Duration::from_secs(60)))
}

/// Loads the mapping when needed, then streams or polls until shutdown.
async fn run_once(
    ctx: &MappingCtx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    let db = ctx.connect().await?;
    ctx.states
        .ensure(&db, mapping.object, mapping.table)
        .await?;
    let status = ctx
        .states
        .get(&db, mapping.object)
        .await?
        .ok_or_else(|| EngineError::Config(format!("no state row for {}", mapping.object)))?;
    if status.paused {
        ctx.states
            .set_state(
                &db,
                mapping.object,
                SyncState::Paused,
                Some("paused by an operator"),
            )
            .await?;
        wait_unpaused(ctx, &db, shutdown).await?;
        return Ok(());
    }
    drop(db);
    if mapping.sync.streaming {
        stream_loop(ctx, shutdown).await
    } else {
        poll_loop(ctx, shutdown).await
    }
}

async fn wait_unpaused(
    ctx: &MappingCtx,
    db: &tokio_postgres::Client,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), EngineError> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => return Ok(()),
        }
        if !is_paused(ctx, db).await? {
            return Ok(());
        }
    }
}

/// Whether an operator paused the mapping since it started.
async fn is_paused(ctx: &MappingCtx, db: &tokio_postgres::Client) -> Result<bool, EngineError> {
    Ok(ctx
        .states
        .get(db, ctx.mapping.object)
        .await?
        .is_some_and(|s| s.paused))
}

/// Loads the mapping: the initial load when `reload` is false; a reload otherwise, which then
/// reads again every change made since it began (minus the look-back: what change events applied
/// to the old table meanwhile, deletes included, is applied again) and the records the app has
/// unsent changes for.
pub async fn load(ctx: &MappingCtx, reload: bool) -> Result<LoadReport, EngineError> {
    let report = load::load_rows(ctx, reload).await?;
    if reload {
        poll::poll_once(
            ctx,
            Some(poll::looking_back(report.started_at, ctx.config.lookback)),
        )
        .await?;
        load::reread_unsent(ctx).await?;
    }
    Ok(report)
}

/// The repairs that run with every drift-repair poll: read errors read again, purged deletes.
async fn repair(ctx: &MappingCtx) -> Result<(), EngineError> {
    reread::retry_read_errors(ctx).await?;
    deletes::reconcile_deleted(ctx).await?;
    Ok(())
}

/// The polling loop: poll every `poll_seconds` until shutdown.
async fn poll_loop(
    ctx: &MappingCtx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    let db = ctx.connect().await?;
    let status = ctx.states.get(&db, mapping.object).await?;
    if !status.is_some_and(|s| s.is_loaded()) {
        load(ctx, false).await?;
    }
    ctx.states
        .set_state(&db, mapping.object, SyncState::Polling, None)
        .await?;
    let interval = Duration::from_secs(u64::from(mapping.sync.poll_seconds.max(1)));
    loop {
        if is_paused(ctx, &db).await? {
            return Ok(());
        }
        poll::poll_once(ctx, None).await?;
        repair(ctx).await?;
        ctx.states
            .set_state(&db, mapping.object, SyncState::Polling, None)
            .await?;
        // Sleep until the next poll, looking for a pause or a shutdown meanwhile.
        let next = tokio::time::Instant::now() + interval;
        while tokio::time::Instant::now() < next {
            tokio::select! {
                _ = tokio::time::sleep_until(next.min(tokio::time::Instant::now() + PAUSE_CHECK)) => {}
                _ = shutdown.changed() => return Ok(()),
            }
            if *shutdown.borrow() || is_paused(ctx, &db).await? {
                return Ok(());
            }
        }
    }
}

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
async fn stream_loop(
    ctx: &MappingCtx,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), EngineError> {
    let mut attempt = 0u32;
    let mut polled_since = false;
    loop {
        let started = tokio::time::Instant::now();
        match stream_session(ctx, shutdown, &mut polled_since).await? {
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
async fn stream_session(
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
        let report = load(ctx, false).await?;
        tracing::info!(
            mapping = mapping.object,
            rows = report.rows,
            bulk = report.bulk,
            seconds = report.seconds,
            first_rows_after = report.phases[0],
            count_seconds = report.waits[0],
            bulk_job_seconds = report.waits[1],
            copy_seconds = report.phases[1],
            indexes_and_swap_seconds = report.phases[2],
            analyze_after_seconds = report.analyze_seconds,
            "initial load done"
        );
        poll::poll_once(
            ctx,
            Some(poll::looking_back(report.started_at, ctx.config.lookback)),
        )
        .await?;
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
    let mut repair_due =
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
                // With what is already waiting: the rest of this Salesforce transaction, and more
                // while the loop is behind.
                let (batch, failed) = match delivery {
                    Ok(event) => cdc::take_waiting(&mut events, event),
                    Err(error) => (Vec::new(), Some(error)),
                };
                if !batch.is_empty() {
                    let applied = cdc::apply_batch(ctx, &mut apply_db, &batch).await?;
                    if let Some(since) = applied.overflow_since {
                        poll::poll_once(ctx, Some(poll::looking_back(since, ctx.config.lookback))).await?;
                    }
                }
                if let Some(error) = failed {
                    if matches!(error, StreamError::ReplayIdUnavailable { .. }) {
                        ctx.states.set_replay_id(&db, mapping.object, None).await?;
                    }
                    return outcome_of(ctx, error);
                }
            }
            _ = repair_due.tick() => {
                poll::poll_once(ctx, None).await?;
                repair(ctx).await?;
                if is_paused(ctx, &db).await? {
                    return Ok(Outcome::Stop);
                }
            }
            _ = async {
                match formulas.as_mut() {
                    Some(timer) => { timer.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                formulas::refresh_formulas(ctx).await?;
            }
            _ = pause_check.tick() => {
                if is_paused(ctx, &db).await? {
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
        load(ctx, false).await?;
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
                repair(ctx).await?;
                repaired = tokio::time::Instant::now();
            }
            if is_paused(ctx, &db).await? {
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
                allocations::store(&db, mapping.schema, &limits).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_mapping_backs_off_up_to_a_minute_and_waits_out_its_budget_or_schema() {
        let retry = Duration::from_secs(30);
        let (wait, next) = retry_wait(SyncState::Error, Duration::from_secs(1), retry);
        assert_eq!(
            (wait, next),
            (Duration::from_secs(1), Duration::from_secs(2))
        );
        let (wait, next) = retry_wait(SyncState::Error, Duration::from_secs(40), retry);
        assert_eq!(
            (wait, next),
            (Duration::from_secs(40), Duration::from_secs(60))
        );
        let (wait, _) = retry_wait(SyncState::BudgetExhausted, Duration::from_secs(1), retry);
        assert_eq!(wait, Duration::from_secs(60));
        let (wait, next) = retry_wait(SyncState::SchemaChanged, Duration::from_secs(4), retry);
        assert_eq!((wait, next), (retry, Duration::from_secs(8)));
    }
}
