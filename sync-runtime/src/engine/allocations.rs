//! The org's streaming allocations, watched rather than discovered by failure.
//!
//! [`watch`] reads `/limits` every ten minutes by default (and soon after the streaming client is refused)
//! and stores `DurableStreamingApiConcurrentClients` and `DailyDeliveredPlatformEvents` in
//! `<schema>._forcesync_org_limits`, which `forcesync status` and `/metrics` show. When the daily
//! delivery allocation is close to used up it says so in the log ([`delivery_warning`]) before
//! streaming mappings are refused and fall back to degraded polling.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_postgres::GenericClient;

use super::hub::StreamHub;
use super::system::quote_ident;
use super::EngineError;
use crate::salesforce::limits::{Limit, OrgLimits, CONCURRENT_CLIENTS, DAILY_DELIVERIES};
use crate::salesforce::Client;

/// The allocations stored and shown.
pub const WATCHED: [&str; 2] = [CONCURRENT_CLIENTS, DAILY_DELIVERIES];
/// How often `/limits` is read by default (one API call each time: 144 a day).
pub const EVERY: Duration = Duration::from_secs(600);
/// The least time between two reads prompted by a refusal of the streaming client.
const AFTER_REFUSAL_MIN: Duration = Duration::from_secs(30);
/// The share of the daily delivery allocation left under which a warning is given.
const WARN_BELOW_PERCENT: u64 = 10;

/// One stored allocation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoredLimit {
    pub name: String,
    pub max: i64,
    pub remaining: i64,
    pub read_at: DateTime<Utc>,
}

/// The warning to give when the daily delivery allocation is close to used up (pure): at or
/// under a tenth left.
pub fn delivery_warning(limit: Limit) -> Option<String> {
    if limit.max == 0
        || limit.remaining.saturating_mul(100) > limit.max.saturating_mul(WARN_BELOW_PERCENT)
    {
        return None;
    }
    Some(if limit.remaining == 0 {
        format!(
            "the org's daily change event delivery allocation ({DAILY_DELIVERIES}, {}) is used up: \
             streaming mappings poll at the degraded interval until it starts over",
            limit.max
        )
    } else {
        format!(
            "the org's daily change event delivery allocation is close to used up: {} of {} left \
             ({DAILY_DELIVERIES}); once it runs out streaming mappings poll at the degraded \
             interval until it starts over",
            limit.remaining, limit.max
        )
    })
}

/// Stores the watched allocations of `limits`.
pub async fn store<C: GenericClient>(
    db: &C,
    schema: &str,
    limits: &OrgLimits,
) -> Result<(), EngineError> {
    let schema = quote_ident(schema);
    for name in WATCHED {
        if let Some(limit) = limits.get(name) {
            db.execute(
                &format!(
                    "INSERT INTO {schema}._forcesync_org_limits (name, max, remaining, read_at) \
                     VALUES ($1, $2, $3, now()) ON CONFLICT (name) DO UPDATE \
                     SET max = EXCLUDED.max, remaining = EXCLUDED.remaining, read_at = now()"
                ),
                &[
                    &name,
                    &(limit.max.min(i64::MAX as u64) as i64),
                    &(limit.remaining.min(i64::MAX as u64) as i64),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// The stored allocations, by name.
pub async fn stored<C: GenericClient>(
    db: &C,
    schema: &str,
) -> Result<Vec<StoredLimit>, tokio_postgres::Error> {
    let schema = quote_ident(schema);
    let rows = db
        .query(
            &format!(
                "SELECT name, max, remaining, read_at FROM {schema}._forcesync_org_limits ORDER BY name"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredLimit {
            name: r.get("name"),
            max: r.get("max"),
            remaining: r.get("remaining"),
            read_at: r.get("read_at"),
        })
        .collect())
}

/// Reads `/limits`, stores the watched allocations and warns when deliveries run short.
async fn read_once(client: &Client, database_url: &str, schema: &str) -> Result<(), EngineError> {
    let limits = client.limits().await?;
    let db = super::connect(database_url).await?;
    store(&db, schema, &limits).await?;
    if let Some(warning) = limits.get(DAILY_DELIVERIES).and_then(delivery_warning) {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// Watches the allocations until `shutdown`: at start, every `every`, and soon after the
/// streaming client is refused.
pub async fn watch(
    client: Client,
    database_url: String,
    schema: &'static str,
    hub: StreamHub,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hub_status = hub.watch();
    let mut hub_open = true;
    let mut last_read: Option<tokio::time::Instant> = None;
    let mut next = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            changed = hub_status.changed(), if hub_open => {
                if changed.is_err() {
                    hub_open = false;
                    continue;
                }
                let refused = hub_status.borrow_and_update().last_refusal.is_some();
                let soon = last_read.map_or(tokio::time::Instant::now(), |at| at + AFTER_REFUSAL_MIN);
                if refused && soon < next {
                    next = soon.max(tokio::time::Instant::now());
                }
                continue;
            }
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            return;
        }
        if let Err(e) = read_once(&client, &database_url, schema).await {
            tracing::debug!("reading /limits: {e}");
        }
        last_read = Some(tokio::time::Instant::now());
        next = tokio::time::Instant::now() + every;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_comes_before_the_delivery_allocation_runs_out() {
        let limit = |remaining| Limit {
            max: 10_000,
            remaining,
        };
        assert_eq!(delivery_warning(limit(10_000)), None);
        assert_eq!(delivery_warning(limit(1_001)), None);
        let close = delivery_warning(limit(1_000)).unwrap();
        assert!(close.contains("1000 of 10000 left"), "{close}");
        let out = delivery_warning(limit(0)).unwrap();
        assert!(out.contains("is used up"), "{out}");
        assert_eq!(
            delivery_warning(Limit {
                max: 0,
                remaining: 0
            }),
            None
        );
    }
}
