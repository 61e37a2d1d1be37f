//! The CometD transport of the hub: one [`CometdSession`] (one client of the org) serving every
//! channel the instance subscribes, with one `/meta/connect` held at a time.
//!
//! The task owns the session. A held connect is an owned future, so subscriptions and
//! unsubscriptions go out while it waits (a new subscription wakes the server's held connect).
//! A connect is never cancelled half-way except at shutdown or when the last channel goes (what it
//! would have brought comes again after each mapping's stored replay id). Network and server
//! errors on a connect are retried on the session's reconnect policy before they fail every
//! channel. See the hub's module for the contract.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Command, Delivery, HubEvent, HubStatus, ReplayId, Start};
use crate::salesforce::cometd::{CometdSession, ConnectReplies};
use crate::salesforce::streaming::{ReplayFrom, StreamError, StreamingPolicy};
use crate::salesforce::{Client, ErrorClass};

struct Channel {
    token: u64,
    events: mpsc::Sender<Delivery>,
}

type Connect = Pin<Box<dyn Future<Output = ConnectReplies> + Send>>;

/// Serves the hub's commands over one CometD client until shutdown (or until the hub is gone).
pub async fn drive(
    client: Client,
    mut commands: mpsc::UnboundedReceiver<Command>,
    status: watch::Sender<HubStatus>,
) {
    let mut session = match CometdSession::new(&client, StreamingPolicy::default()) {
        Ok(session) => session,
        Err(e) => {
            while let Some(command) = commands.recv().await {
                refuse(command, e.clone());
            }
            return;
        }
    };
    let mut channels: HashMap<String, Channel> = HashMap::new();
    let mut connect: Option<Connect> = None;
    let mut delays = session.policy().reconnect.schedule();
    let mut retry_at: Option<Instant> = None;
    let mut last_refusal: Option<String> = None;
    loop {
        if connect.is_none() && !channels.is_empty() && session.is_connected() {
            if let Some(request) = session.connect_request() {
                let at = retry_at.take();
                connect = Some(Box::pin(async move {
                    if let Some(at) = at {
                        tokio::time::sleep_until(at).await;
                    }
                    request.await
                }));
            }
        }
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else {
                    drop(connect.take());
                    session.disconnect().await;
                    publish(&status, &session, &channels, &last_refusal);
                    return;
                };
                match command {
                    Command::Subscribe { channel, from, token, events, ack } => {
                        if channels.remove(&channel).is_some() {
                            session.unsubscribe(&channel).await;
                        }
                        let result = match from {
                            Start::New => session.subscribe(&channel, ReplayFrom::NewOnly).await,
                            Start::After(ReplayId::Cometd(id)) => {
                                session.subscribe(&channel, ReplayFrom::After(id)).await
                            }
                            Start::After(ReplayId::PubSub(_)) => Err(StreamError::ReplayIdUnavailable {
                                replay_id: -1,
                                message: "the stored position is a Pub/Sub API replay id, which CometD cannot resume from".into(),
                            }),
                        };
                        match &result {
                            Ok(()) => {
                                last_refusal = None;
                                channels.insert(channel, Channel { token, events });
                            }
                            Err(e) => {
                                if matches!(e, StreamError::Refused { .. }) {
                                    last_refusal = Some(e.to_string());
                                }
                                if channels.is_empty() {
                                    drop(connect.take());
                                    session.disconnect().await;
                                }
                            }
                        }
                        let _ = ack.send(result);
                        fail_dropped(&mut session, &mut channels);
                    }
                    Command::Unsubscribe { channel, token } => {
                        if channels.get(&channel).is_some_and(|c| c.token == token) {
                            channels.remove(&channel);
                            session.unsubscribe(&channel).await;
                            if channels.is_empty() {
                                drop(connect.take());
                                session.disconnect().await;
                            }
                        }
                    }
                    Command::Shutdown { done } => {
                        drop(connect.take());
                        channels.clear();
                        session.disconnect().await;
                        publish(&status, &session, &channels, &last_refusal);
                        let _ = done.send(());
                        return;
                    }
                }
                publish(&status, &session, &channels, &last_refusal);
            }
            replies = async { connect.as_mut().expect("a held connect").await }, if connect.is_some() => {
                connect = None;
                match session.take_connect(replies).await {
                    Ok(events) => {
                        delays = session.policy().reconnect.schedule();
                        let mut behind = Vec::new();
                        for event in events {
                            let Some(channel) = channels.get(&event.channel) else { continue };
                            let name = event.channel.clone();
                            let event = HubEvent {
                                channel: event.channel,
                                replay_id: ReplayId::Cometd(event.replay_id),
                                payload: event.payload,
                            };
                            match channel.events.try_send(Ok(event)) {
                                Ok(()) => {}
                                Err(mpsc::error::TrySendError::Full(_)) => {
                                    tracing::info!(channel = %name, "a mapping fell behind its events; it resumes from its stored replay id");
                                    channels.remove(&name);
                                    behind.push(name);
                                }
                                Err(mpsc::error::TrySendError::Closed(_)) => {
                                    channels.remove(&name);
                                    behind.push(name);
                                }
                            }
                        }
                        for name in behind {
                            session.unsubscribe(&name).await;
                        }
                        fail_dropped(&mut session, &mut channels);
                        if channels.is_empty() {
                            session.disconnect().await;
                        }
                    }
                    Err(StreamError::Api(e)) if e.class != ErrorClass::Definite => {
                        match delays.next() {
                            Some(delay) => {
                                tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "streaming connection failed; reconnecting");
                                retry_at = Some(Instant::now() + delay);
                            }
                            None => {
                                fail_all(&mut channels, StreamError::Api(e));
                                session.disconnect().await;
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the streaming client was stopped by Salesforce");
                        if matches!(error, StreamError::Refused { .. }) {
                            last_refusal = Some(error.to_string());
                        }
                        fail_all(&mut channels, error);
                        session.disconnect().await;
                    }
                }
                publish(&status, &session, &channels, &last_refusal);
            }
        }
    }
}

/// Answers a command the transport cannot serve.
fn refuse(command: Command, error: StreamError) {
    match command {
        Command::Subscribe { ack, .. } => {
            let _ = ack.send(Err(error));
        }
        Command::Unsubscribe { .. } => {}
        Command::Shutdown { done } => {
            let _ = done.send(());
        }
    }
}

/// Ends every channel with `error`.
fn fail_all(channels: &mut HashMap<String, Channel>, error: StreamError) {
    for (_, channel) in channels.drain() {
        let _ = channel.events.try_send(Err(error.clone()));
    }
}

/// Ends the channels the session had to drop, each with its reason.
fn fail_dropped(session: &mut CometdSession, channels: &mut HashMap<String, Channel>) {
    for (name, error) in session.take_dropped() {
        if let Some(channel) = channels.remove(&name) {
            let _ = channel.events.try_send(Err(error));
        }
    }
}

fn publish(
    status: &watch::Sender<HubStatus>,
    session: &CometdSession,
    channels: &HashMap<String, Channel>,
    last_refusal: &Option<String>,
) {
    let mut names: Vec<String> = channels.keys().cloned().collect();
    names.sort();
    status.send_replace(HubStatus {
        connected: session.is_connected(),
        channels: names,
        sessions_started: session.handshakes(),
        last_refusal: last_refusal.clone(),
    });
}
