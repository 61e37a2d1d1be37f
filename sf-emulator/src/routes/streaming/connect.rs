//! `/meta/connect`: answers at once when events are pending (and on a client's first connect),
//! otherwise holds the request until an event is committed — woken by the CDC log's watch
//! channel, no polling — a newer connect supersedes it, or the hold time passes. Deliveries
//! count against the daily delivery allocation (`DailyDeliveredPlatformEvents`); once it is
//! used up every connect fails with `403::Organization total events daily limit exceeded`. A
//! subscriber whose next events left retention is never moved forward silently: its connect
//! fails with the invalid-replay-id error and the client must handshake again (its
//! resubscribe from the stored replay id then fails the same way, as on Salesforce).

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::bayeux::{self, Message};
use super::{authentication_invalid, unknown_client};
use crate::org::Org;

/// Most events delivered in one connect reply; the rest follow on the next connect.
const MAX_EVENTS_PER_REPLY: usize = 1_000;
/// The `/limits` entry counting delivered change events.
const DELIVERY_ALLOCATION: &str = "DailyDeliveredPlatformEvents";

/// What a held connect found when it looked.
enum Found {
    /// The client is gone (disconnected, expired or dropped by a fault).
    Gone,
    /// A newer connect took over.
    Superseded,
    Events(Vec<Value>),
    /// Events after this subscription cursor are no longer retained.
    Lost(i64),
}

/// Events the daily delivery allocation still allows.
fn deliveries_left(org: &Org) -> usize {
    org.limit(DELIVERY_ALLOCATION)
        .map_or(usize::MAX, |(max, used)| {
            usize::try_from(max.saturating_sub(used)).unwrap_or(usize::MAX)
        })
}

/// Keeps the client alive while its connect is held; on drop (reply sent or request
/// cancelled) it records the reply time the expiry clock runs from.
struct Held {
    org: Org,
    client_id: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.org
            .streaming()
            .clients
            .with_held(&self.client_id, |client| {
                client.connects_held = client.connects_held.saturating_sub(1);
                client.connected_once = true;
                client.last_seen = std::time::Instant::now();
            });
    }
}

/// Handles one `/meta/connect`; returns the events followed by the connect reply.
pub(super) async fn connect(org: &Org, authenticated: bool, message: &Message) -> Vec<Value> {
    if !authenticated {
        return vec![Value::Object(authentication_invalid(message))];
    }
    let hub = org.streaming();
    let Some(client_id) = message.client_id() else {
        return vec![Value::Object(unknown_client(message))];
    };
    let registered = hub.clients.with(client_id, hub.client_expiry(), |client| {
        client.connect_generation += 1;
        client.connects_held += 1;
        // Release an older connect still held for this client.
        client.wake.notify_waiters();
        (
            client.connect_generation,
            client.connected_once,
            client.wake.clone(),
        )
    });
    let Some((generation, connected_once, wake)) = registered else {
        return vec![Value::Object(unknown_client(message))];
    };
    if deliveries_left(org) == 0 {
        return vec![Value::Object(bayeux::failure(
            message,
            Some(client_id),
            bayeux::DAILY_LIMIT_EXCEEDED,
            None,
        ))];
    }
    let _held = Held {
        org: org.clone(),
        client_id: client_id.to_string(),
    };

    let mut timeout = hub.connect_timeout();
    if let Some(asked) = message.advice_timeout_ms() {
        timeout = timeout.min(Duration::from_millis(asked));
    }
    let hold = if connected_once {
        timeout
    } else {
        Duration::ZERO
    };
    let deadline = Instant::now() + hold;
    let reply = || {
        let mut reply = bayeux::success(message, Some(client_id));
        reply.insert(
            "advice".into(),
            bayeux::connect_advice(hub.connect_timeout().as_millis() as u64),
        );
        Value::Object(reply)
    };

    let mut feed = org.cdc().subscribe();
    let mut feed_open = true;
    loop {
        feed.borrow_and_update();
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();

        match collect(org, client_id, generation, deliveries_left(org)) {
            Found::Gone => return vec![Value::Object(unknown_client(message))],
            Found::Superseded => return vec![reply()],
            Found::Lost(cursor) => {
                hub.clients.remove(client_id);
                return vec![Value::Object(bayeux::failure(
                    message,
                    Some(client_id),
                    &bayeux::invalid_replay_id(&Value::from(cursor)),
                    Some(bayeux::handshake_advice()),
                ))];
            }
            Found::Events(mut events) if !events.is_empty() => {
                // Counted whatever the outcome: a delivered event is spent.
                let _ = org.consume_limit(DELIVERY_ALLOCATION, events.len() as u64);
                events.push(reply());
                return events;
            }
            Found::Events(_) => {}
        }
        if Instant::now() >= deadline {
            return vec![reply()];
        }
        tokio::select! {
            changed = feed.changed(), if feed_open => feed_open = changed.is_ok(),
            _ = &mut woken => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Reads what the client's subscriptions have pending (at most `allowed` events) and advances
/// their cursors.
fn collect(org: &Org, client_id: &str, generation: u64, allowed: usize) -> Found {
    let cdc = org.cdc();
    let now = org.now_ms();
    let found = org.streaming().clients.with_held(client_id, |client| {
        if client.connect_generation != generation {
            return Found::Superseded;
        }
        let mut messages = Vec::new();
        let cap = MAX_EVENTS_PER_REPLY.min(allowed);
        for (channel, subscription) in client.subscriptions.iter_mut() {
            let budget = cap.saturating_sub(messages.len());
            if budget == 0 {
                break;
            }
            let batch = match cdc.read(subscription.cursor, &subscription.filter, now, budget) {
                Ok(batch) => batch,
                Err(_) => return Found::Lost(subscription.cursor),
            };
            for event in &batch.events {
                messages.push(event.message(channel));
            }
            // Everything up to `scanned_to` was read, so a subscription whose filter matched
            // nothing there skips past it next time.
            subscription.cursor = batch.scanned_to;
        }
        Found::Events(messages)
    });
    found.unwrap_or(Found::Gone)
}
