//! `/meta/connect`: answers at once when events are pending (and on a client's first connect),
//! otherwise holds the request until an event is committed — woken by the CDC log's watch
//! channel, no polling — a newer connect supersedes it, or the hold time passes.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::bayeux::{self, Message};
use super::{authentication_invalid, unknown_client};
use crate::org::Org;

/// Most events delivered in one connect reply; the rest follow on the next connect.
const MAX_EVENTS_PER_REPLY: usize = 1_000;

/// What a held connect found when it looked.
enum Found {
    /// The client is gone (disconnected, expired or dropped by a fault).
    Gone,
    /// A newer connect took over.
    Superseded,
    Events(Vec<Value>),
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

        match collect(org, client_id, generation) {
            Found::Gone => return vec![Value::Object(unknown_client(message))],
            Found::Superseded => return vec![reply()],
            Found::Events(mut events) if !events.is_empty() => {
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

/// Reads what the client's subscriptions have pending and advances their cursors.
fn collect(org: &Org, client_id: &str, generation: u64) -> Found {
    let cdc = org.cdc();
    let now = org.now_ms();
    let found = org.streaming().clients.with_held(client_id, |client| {
        if client.connect_generation != generation {
            return Found::Superseded;
        }
        let mut messages = Vec::new();
        for (channel, subscription) in client.subscriptions.iter_mut() {
            let budget = MAX_EVENTS_PER_REPLY.saturating_sub(messages.len());
            if budget == 0 {
                break;
            }
            // Everything up to `latest` is scanned by the read below, so a subscription whose
            // filter matched nothing can skip past it next time.
            let latest = cdc.latest_replay_id();
            let events = match cdc.read_after(subscription.cursor, &subscription.filter, now) {
                Ok(events) => events,
                // The client fell behind retention: continue from what is still retained.
                Err(_) => cdc
                    .read_after(-2, &subscription.filter, now)
                    .unwrap_or_default(),
            };
            let truncated = events.len() > budget;
            for event in events.iter().take(budget) {
                messages.push(event.message(channel));
                subscription.cursor = event.replay_id;
            }
            if !truncated {
                subscription.cursor = subscription.cursor.max(latest);
            }
        }
        Found::Events(messages)
    });
    found.unwrap_or(Found::Gone)
}
