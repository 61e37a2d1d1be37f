//! The Pub/Sub API transport of the hub: one `Subscribe` stream per channel, all over one
//! gRPC (HTTP/2) connection of the instance's client (`salesforce::pubsub`).
//!
//! Each subscribed channel runs a task reading its [`PubSubSubscription`] — which paces itself
//! (flow control), reconnects after `UNAVAILABLE`, stream ends and silences, and decodes Avro into
//! CometD's payload shape — and forwards each event, in order, with its opaque replay id. A
//! payload that cannot be read is still forwarded, without a header and with `undecodable` saying
//! why, so applying it records a read error for that event and the mapping goes on. A channel whose
//! `events` is full is dropped (its mapping resumes from its stored replay id). See the hub's
//! module for the contract.

use std::collections::HashMap;

use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Command, Delivery, HubEvent, HubStatus, ReplayId, Start};
use crate::salesforce::pubsub::{PubSubError, PubSubPolicy, PubSubStart, PubSubSubscription};
use crate::salesforce::streaming::StreamError;
use crate::salesforce::Client;

struct Channel {
    token: u64,
    task: JoinHandle<()>,
}

/// The hub's error for a subscription's failure.
pub fn stream_error(error: PubSubError) -> StreamError {
    match error {
        PubSubError::ReplayIdUnavailable { message } => StreamError::ReplayIdUnavailable {
            replay_id: -1,
            message,
        },
        PubSubError::Refused { message } => StreamError::Refused { message },
        PubSubError::Unreachable { message } => StreamError::Unsupported { message },
        PubSubError::Api(e) => StreamError::Api(e),
    }
}

/// Serves the hub's commands over the Pub/Sub API until shutdown (or until the hub is gone).
pub async fn drive(
    client: Client,
    mut commands: mpsc::UnboundedReceiver<Command>,
    status: watch::Sender<HubStatus>,
) {
    let policy = PubSubPolicy {
        endpoint: client.config().pubsub_url.clone(),
        ..PubSubPolicy::default()
    };
    let mut channels: HashMap<String, Channel> = HashMap::new();
    let mut started: u64 = 0;
    let mut last_refusal: Option<String> = None;
    // Channels whose task ended (the subscription failed or the mapping is gone).
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<(String, u64)>();
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    stop_all(&mut channels);
                    publish(&status, &channels, started, &last_refusal);
                    return;
                };
                match command {
                    Command::Subscribe { channel, from, token, events, ack } => {
                        if let Some(old) = channels.remove(&channel) {
                            old.task.abort();
                        }
                        let start = match from {
                            Start::New => Ok(PubSubStart::Latest),
                            Start::After(ReplayId::PubSub(bytes)) => Ok(PubSubStart::After(bytes)),
                            Start::After(ReplayId::Cometd(id)) => Err(StreamError::ReplayIdUnavailable {
                                replay_id: id,
                                message: "the stored position is a CometD replay id, which the Pub/Sub API cannot resume from".into(),
                            }),
                        };
                        let opened = match start {
                            Ok(start) => client
                                .pubsub_subscribe(&channel, start, policy.clone())
                                .await
                                .map_err(stream_error),
                            Err(e) => Err(e),
                        };
                        match opened {
                            Ok(subscription) => {
                                started += 1;
                                last_refusal = None;
                                let ended = ended_tx.clone();
                                let name = channel.clone();
                                let task = tokio::spawn(async move {
                                    forward(subscription, events).await;
                                    let _ = ended.send((name, token));
                                });
                                channels.insert(channel, Channel { token, task });
                                let _ = ack.send(Ok(()));
                            }
                            Err(error) => {
                                if matches!(error, StreamError::Refused { .. }) {
                                    last_refusal = Some(error.to_string());
                                }
                                let _ = ack.send(Err(error));
                            }
                        }
                    }
                    Command::Unsubscribe { channel, token } => {
                        if channels.get(&channel).is_some_and(|c| c.token == token) {
                            if let Some(old) = channels.remove(&channel) {
                                old.task.abort();
                            }
                        }
                    }
                    Command::Shutdown { done } => {
                        stop_all(&mut channels);
                        publish(&status, &channels, started, &last_refusal);
                        let _ = done.send(());
                        return;
                    }
                }
                publish(&status, &channels, started, &last_refusal);
            }
            Some((name, token)) = ended.recv() => {
                if channels.get(&name).is_some_and(|c| c.token == token) {
                    channels.remove(&name);
                }
                publish(&status, &channels, started, &last_refusal);
            }
        }
    }
}

/// Forwards a subscription's events until it fails, the mapping drops its receiver, or the
/// mapping falls behind (its channel is full).
async fn forward(mut subscription: PubSubSubscription, events: mpsc::Sender<Delivery>) {
    let channel = subscription.topic().to_string();
    loop {
        let delivery = match subscription.next().await {
            Ok(event) => Ok(HubEvent {
                channel: channel.clone(),
                replay_id: ReplayId::PubSub(event.replay_id),
                payload: event.payload.unwrap_or_else(|e| {
                    json!({"undecodable": {"error": e.to_string(), "schemaId": event.schema_id}})
                }),
            }),
            Err(error) => Err(stream_error(error)),
        };
        let failed = delivery.is_err();
        match events.try_send(delivery) {
            Ok(()) if !failed => {}
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(%channel, "a mapping fell behind its events; it resumes from its stored replay id");
                return;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

fn stop_all(channels: &mut HashMap<String, Channel>) {
    for (_, channel) in channels.drain() {
        channel.task.abort();
    }
}

fn publish(
    status: &watch::Sender<HubStatus>,
    channels: &HashMap<String, Channel>,
    started: u64,
    last_refusal: &Option<String>,
) {
    let mut names: Vec<String> = channels.keys().cloned().collect();
    names.sort();
    status.send_replace(HubStatus {
        connected: !channels.is_empty(),
        channels: names,
        sessions_started: started,
        last_refusal: last_refusal.clone(),
    });
}
