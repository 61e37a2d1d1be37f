//! One CometD client carrying many channels: the Streaming API session an engine instance holds
//! for the whole org (Salesforce counts *clients* against `DurableStreamingApiConcurrentClients`,
//! not subscriptions, so one instance must not handshake once per mapping).
//!
//! A [`CometdSession`] handshakes once, subscribes and unsubscribes channels as they come and go,
//! each from its own replay position ([`ReplayFrom`]), and reads events with one `/meta/connect`
//! at a time. The connect is split in two so its owner can subscribe while a connect is held:
//! [`CometdSession::connect_request`] builds an owned future (no borrow of the session) and
//! [`CometdSession::take_connect`] reads its replies. When the server forgets the client
//! (`403::Unknown client`, `advice.reconnect = handshake`) the session handshakes again and
//! re-subscribes every channel after the last event it received on it. [`CometdSession::disconnect`]
//! gives the client's place back at once.
//!
//! The replies are classified by [`super::streaming::classify_reply`]; events are read by
//! [`super::streaming::parse_event`]. It is the only CometD client: a tool that wants one channel
//! subscribes one.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::http::{build_http, Request};
use super::streaming::{
    classify_reply, meta_reply, parse_event, ReplayFrom, ReplyAction, StreamError, StreamEvent,
    StreamingPolicy,
};
use super::{CallKind, Client};

/// Where one channel of the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelPosition {
    /// Where the subscription started.
    pub from: ReplayFrom,
    /// The replay id of the last event received on it.
    pub last_received: Option<i64>,
}

impl ChannelPosition {
    /// Where a re-subscription continues: after the last event received, else where it started.
    pub fn resume_from(&self) -> ReplayFrom {
        match self.last_received {
            Some(id) => ReplayFrom::After(id),
            None => self.from,
        }
    }
}

/// The replies of one `/meta/connect` (or the failure to get them).
pub type ConnectReplies = Result<Vec<Value>, StreamError>;

/// A CometD client of the org carrying any number of channels.
pub struct CometdSession {
    client: Client,
    http: reqwest::Client,
    path: String,
    client_id: Option<String>,
    channels: BTreeMap<String, ChannelPosition>,
    message_id: u64,
    server_timeout: Duration,
    interval: Duration,
    policy: StreamingPolicy,
    handshakes: u64,
    dropped: Vec<(String, StreamError)>,
}

impl std::fmt::Debug for CometdSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CometdSession")
            .field("connected", &self.client_id.is_some())
            .field("channels", &self.channels)
            .field("handshakes", &self.handshakes)
            .finish_non_exhaustive()
    }
}

impl CometdSession {
    /// A session that has not handshaken yet (no call is made).
    pub fn new(client: &Client, policy: StreamingPolicy) -> Result<CometdSession, StreamError> {
        Ok(CometdSession {
            client: client.clone(),
            http: build_http(client.config(), true)?,
            path: format!("/cometd/{}", client.config().api_version),
            client_id: None,
            channels: BTreeMap::new(),
            message_id: 0,
            server_timeout: Duration::from_secs(110),
            interval: Duration::ZERO,
            policy,
            handshakes: 0,
            dropped: Vec::new(),
        })
    }

    /// Whether the server knows this client now (handshaken, not disconnected).
    pub fn is_connected(&self) -> bool {
        self.client_id.is_some()
    }

    /// The channels subscribed, with their positions.
    pub fn channels(&self) -> &BTreeMap<String, ChannelPosition> {
        &self.channels
    }

    /// How many handshakes this session made.
    pub fn handshakes(&self) -> u64 {
        self.handshakes
    }

    /// The reconnect policy.
    pub fn policy(&self) -> &StreamingPolicy {
        &self.policy
    }

    /// Subscribes `channel` from `from`, handshaking first when the session has no client. A
    /// refusal of the handshake (concurrent-client allocation used up, no permission) or of the
    /// subscription (channel unknown or not enabled, replay id too old) is returned and the
    /// channel is not kept.
    pub async fn subscribe(&mut self, channel: &str, from: ReplayFrom) -> Result<(), StreamError> {
        if self.client_id.is_none() {
            self.handshake().await?;
        }
        let mut reauthenticated = false;
        loop {
            match self.send_subscribe(channel, from).await? {
                ReplyAction::Ok => {
                    self.channels.insert(
                        channel.to_owned(),
                        ChannelPosition {
                            from,
                            last_received: None,
                        },
                    );
                    tracing::debug!(channel, replay = from.value(), "subscribed");
                    return Ok(());
                }
                ReplyAction::Reauthenticate if !reauthenticated => {
                    reauthenticated = true;
                    self.reauthenticate().await?;
                    self.handshake_and_resubscribe().await?;
                }
                ReplyAction::Handshake => self.handshake_and_resubscribe().await?,
                ReplyAction::Retry => tokio::time::sleep(self.interval).await,
                ReplyAction::Reauthenticate => {
                    return Err(StreamError::Refused {
                        message: "401::Authentication invalid after logging in again".to_owned(),
                    })
                }
                ReplyAction::Fail(e) => return Err(e),
            }
        }
    }

    /// Stops receiving `channel` (best effort: the channel is forgotten here whatever the server
    /// answers).
    pub async fn unsubscribe(&mut self, channel: &str) {
        if self.channels.remove(channel).is_none() {
            return;
        }
        if let Some(client_id) = self.client_id.clone() {
            let id = self.next_id();
            let message = json!([{"channel": "/meta/unsubscribe", "clientId": client_id,
                                  "subscription": channel, "id": id}]);
            if let Err(e) = self.post(message, None).await {
                tracing::debug!(channel, error = %e, "unsubscribe failed; the channel is dropped anyway");
            }
        }
    }

    /// Tells the server this client is leaving, giving its place back (best effort); the session
    /// forgets every channel.
    pub async fn disconnect(&mut self) {
        self.channels.clear();
        if let Some(client_id) = self.client_id.take() {
            let id = self.next_id();
            let message = json!([{"channel": "/meta/disconnect", "clientId": client_id, "id": id}]);
            match self.post(message, Some(Duration::from_secs(10))).await {
                Ok(_) => tracing::info!("streaming client disconnected"),
                Err(e) => tracing::debug!(error = %e, "disconnect failed"),
            }
        }
    }

    /// One `/meta/connect` as an owned future, so that the session stays usable (subscribe,
    /// unsubscribe) while the server holds it. `None` when the session has no client.
    pub fn connect_request(
        &mut self,
    ) -> Option<impl Future<Output = ConnectReplies> + Send + 'static> {
        let client_id = self.client_id.clone()?;
        let id = self.next_id();
        let timeout = self.server_timeout + self.policy.connect_margin;
        let client = self.client.clone();
        let http = self.http.clone();
        let path = self.path.clone();
        let interval = self.interval;
        Some(async move {
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            let body = json!([{"channel": "/meta/connect", "clientId": client_id,
                               "connectionType": "long-polling", "id": id}]);
            post(&client, &http, &path, body, Some(timeout)).await
        })
    }

    /// Reads the replies of a connect: the events it brought (in order, each channel's already
    /// received ones skipped). Handshakes again and re-subscribes every channel when the server
    /// forgot the client; a refusal (daily delivery allocation used up, `403`s) or a replay id
    /// no longer retained is returned, and the caller decides for every channel.
    pub async fn take_connect(
        &mut self,
        replies: ConnectReplies,
    ) -> Result<Vec<StreamEvent>, StreamError> {
        let replies = replies?;
        let events = self.take_events(&replies)?;
        let Ok(reply) = meta_reply(&replies, "/meta/connect") else {
            return Ok(events);
        };
        self.read_advice(reply);
        let replay = self
            .channels
            .values()
            .map(|p| p.resume_from().value())
            .max()
            .unwrap_or(-1);
        match classify_reply(reply, replay) {
            ReplyAction::Ok | ReplyAction::Retry => {}
            ReplyAction::Handshake => {
                tracing::info!("streaming client unknown to the server; handshaking again");
                self.client_id = None;
                self.handshake_and_resubscribe().await?;
            }
            ReplyAction::Reauthenticate => {
                self.reauthenticate().await?;
                self.client_id = None;
                self.handshake_and_resubscribe().await?;
            }
            ReplyAction::Fail(e) => {
                self.client_id = None;
                return Err(e);
            }
        }
        Ok(events)
    }

    /// Handshakes again and re-subscribes every channel after the last event received on it.
    pub async fn handshake_and_resubscribe(&mut self) -> Result<(), StreamError> {
        self.handshake().await?;
        let channels: Vec<(String, ChannelPosition)> =
            self.channels.iter().map(|(c, p)| (c.clone(), *p)).collect();
        for (channel, position) in channels {
            match self
                .send_subscribe(&channel, position.resume_from())
                .await?
            {
                ReplyAction::Ok => {}
                ReplyAction::Fail(e) => {
                    tracing::info!(channel, error = %e, "a channel could not be subscribed again");
                    self.channels.remove(&channel);
                    self.dropped.push((channel, e));
                }
                other => {
                    return Err(StreamError::Protocol(format!(
                        "re-subscribing {channel} after a handshake: {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// The channels the session had to drop since the last call (a re-subscription after a new
    /// handshake refused: replay id no longer retained, channel no longer offered), with why.
    pub fn take_dropped(&mut self) -> Vec<(String, StreamError)> {
        std::mem::take(&mut self.dropped)
    }

    fn next_id(&mut self) -> String {
        self.message_id += 1;
        self.message_id.to_string()
    }

    async fn post(&self, body: Value, timeout: Option<Duration>) -> ConnectReplies {
        post(&self.client, &self.http, &self.path, body, timeout).await
    }

    async fn reauthenticate(&self) -> Result<(), StreamError> {
        let generation = self.client.session().await?.generation;
        self.client.renew_session(Some(generation)).await?;
        Ok(())
    }

    /// Handshakes (logging in again once when the session was refused).
    async fn handshake(&mut self) -> Result<(), StreamError> {
        let mut reauthenticated = false;
        loop {
            self.client_id = None;
            self.handshakes += 1;
            let id = self.next_id();
            let replies = self
                .post(
                    json!([{"channel": "/meta/handshake", "version": "1.0", "minimumVersion": "1.0",
                            "supportedConnectionTypes": ["long-polling"],
                            "ext": {"replay": true, "payload.format": true}, "id": id}]),
                    None,
                )
                .await?;
            let reply = meta_reply(&replies, "/meta/handshake")?;
            self.read_advice(reply);
            match classify_reply(reply, 0) {
                ReplyAction::Ok => {
                    let client_id =
                        reply
                            .get("clientId")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                StreamError::Protocol("handshake without clientId".into())
                            })?;
                    self.client_id = Some(client_id.to_owned());
                    return Ok(());
                }
                ReplyAction::Reauthenticate if !reauthenticated => {
                    reauthenticated = true;
                    self.reauthenticate().await?;
                }
                ReplyAction::Handshake | ReplyAction::Retry => {
                    tokio::time::sleep(self.interval.max(Duration::from_millis(100))).await;
                }
                ReplyAction::Reauthenticate => {
                    return Err(StreamError::Refused {
                        message: "401::Authentication invalid after logging in again".to_owned(),
                    })
                }
                ReplyAction::Fail(e) => return Err(e),
            }
        }
    }

    async fn send_subscribe(
        &mut self,
        channel: &str,
        from: ReplayFrom,
    ) -> Result<ReplyAction, StreamError> {
        let Some(client_id) = self.client_id.clone() else {
            return Ok(ReplyAction::Handshake);
        };
        let replay = from.value();
        let id = self.next_id();
        let mut replay_map = serde_json::Map::new();
        replay_map.insert(channel.to_owned(), json!(replay));
        let replies = self
            .post(
                json!([{"channel": "/meta/subscribe", "clientId": client_id,
                        "subscription": channel, "id": id, "ext": {"replay": replay_map}}]),
                None,
            )
            .await?;
        let reply = meta_reply(&replies, "/meta/subscribe")?;
        Ok(classify_reply(reply, replay))
    }

    /// The events of a batch of replies, skipping those of channels no longer subscribed and
    /// those already received.
    fn take_events(&mut self, replies: &[Value]) -> Result<Vec<StreamEvent>, StreamError> {
        let mut events = Vec::new();
        for message in replies {
            let Some(event) = parse_event(message) else {
                continue;
            };
            let event = event?;
            let Some(position) = self.channels.get_mut(&event.channel) else {
                continue;
            };
            if position
                .last_received
                .is_some_and(|last| event.replay_id <= last)
            {
                continue;
            }
            position.last_received = Some(event.replay_id);
            events.push(event);
        }
        Ok(events)
    }

    fn read_advice(&mut self, reply: &Value) {
        if let Some(timeout) = reply.pointer("/advice/timeout").and_then(Value::as_u64) {
            self.server_timeout = Duration::from_millis(timeout);
        }
        if let Some(interval) = reply.pointer("/advice/interval").and_then(Value::as_u64) {
            self.interval = Duration::from_millis(interval.min(60_000));
        }
    }
}

async fn post(
    client: &Client,
    http: &reqwest::Client,
    path: &str,
    body: Value,
    timeout: Option<Duration>,
) -> ConnectReplies {
    let mut request = Request::new(Method::POST, CallKind::Streaming, path.to_owned())
        .json(&body)
        .read_only()
        .no_retry();
    if let Some(timeout) = timeout {
        request = request.timeout(timeout);
    }
    let response = client.send_via(http, request).await?;
    response
        .json::<Vec<Value>>()
        .map_err(|e| StreamError::Protocol(e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_resumes_after_its_last_event_or_where_it_started() {
        let fresh = ChannelPosition {
            from: ReplayFrom::After(7),
            last_received: None,
        };
        assert_eq!(fresh.resume_from(), ReplayFrom::After(7));
        let moved = ChannelPosition {
            from: ReplayFrom::NewOnly,
            last_received: Some(12),
        };
        assert_eq!(moved.resume_from(), ReplayFrom::After(12));
    }
}
