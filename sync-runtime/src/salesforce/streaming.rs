//! A CometD (Bayeux 1.0) long-polling client for Salesforce's Streaming API with the replay
//! extension, used for Change Data Capture channels such as `/data/AccountChangeEvent`.
//!
//! [`Client::subscribe`] handshakes and subscribes from a [`ReplayFrom`] position; then
//! [`Subscription::next`] runs the connect loop and hands out one [`StreamEvent`] at a time. The
//! subscription keeps its own cookie jar (`BAYEUX_BROWSER`), follows the server's `advice`
//! (`handshake` → handshake again and re-subscribe after the last event received; `retry`;
//! `none` → error), reconnects with backoff on network errors, and logs in again on
//! `401::Authentication invalid`. Two failures are reported distinctly so the engine can fall back
//! to polling: a replay id older than the retention window at subscribe
//! ([`StreamError::ReplayIdUnavailable`]) and a refusal (`403` on connect or subscribe, an unknown
//! channel: [`StreamError::Refused`]). Only Bayeux is parsed here; the engine reads CDC payloads.
//! The engine itself streams through [`super::cometd`] (one client carrying every channel of an
//! instance); a [`Subscription`] is one client for one channel.
//!
//! Re-subscriptions resume after the last event received. Before the first event there is no
//! replay id to resume from, so a subscription started with [`ReplayFrom::NewOnly`] that has to
//! start again before receiving anything subscribes from `-1` again and can miss events published
//! in between; subscribe from a stored replay id (or `-2`) when every event matters.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::error::SfError;
use super::http::{build_http, Request, RetryPolicy};
use super::{CallKind, Client};

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// Only events published from now on (`-1`).
    NewOnly,
    /// Every event still retained (`-2`, up to 72 hours for CDC).
    AllRetained,
    /// The events after this stored replay id.
    After(i64),
}

impl ReplayFrom {
    /// The value sent in the replay extension.
    pub fn value(self) -> i64 {
        match self {
            ReplayFrom::NewOnly => -1,
            ReplayFrom::AllRetained => -2,
            ReplayFrom::After(id) => id,
        }
    }
}

/// One event delivered on a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvent {
    pub channel: String,
    pub replay_id: i64,
    /// `data.payload` (for CDC: the changed fields and `ChangeEventHeader`), or `data` when the
    /// message has no payload (PushTopic, generic events).
    pub payload: Value,
}

/// Why a subscription stopped.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamError {
    /// The stored replay id is older than what the org retains: catch up by polling, then
    /// subscribe again from `-1`.
    ReplayIdUnavailable { replay_id: i64, message: String },
    /// The org refuses to stream to us (allocation exhausted, no permission, channel not
    /// enabled or unknown): fall back to polling.
    Refused { message: String },
    /// The server said not to reconnect (`advice.reconnect = none`).
    Closed { message: String },
    /// Calls kept failing (network, 5xx, login) beyond the reconnect policy.
    Api(SfError),
    /// The server answered something that is not Bayeux.
    Protocol(String),
    /// The transport is not offered (the Pub/Sub API answering `UNIMPLEMENTED`, or unreachable
    /// on the first attempts): the engine's hub falls back to CometD for the run.
    Unsupported { message: String },
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::ReplayIdUnavailable { replay_id, message } => {
                write!(f, "replay id {replay_id} is no longer available: {message}")
            }
            StreamError::Refused { message } => write!(f, "streaming refused: {message}"),
            StreamError::Closed { message } => {
                write!(f, "streaming closed by the server: {message}")
            }
            StreamError::Api(e) => write!(f, "streaming: {e}"),
            StreamError::Protocol(m) => write!(f, "streaming protocol error: {m}"),
            StreamError::Unsupported { message } => {
                write!(f, "streaming transport not available: {message}")
            }
        }
    }
}

impl std::error::Error for StreamError {}

impl From<SfError> for StreamError {
    fn from(e: SfError) -> Self {
        StreamError::Api(e)
    }
}

/// How a subscription reconnects after network and server errors.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamingPolicy {
    /// Delays between reconnects (only `min_delay`, `max_delay`, `jitter` and `max_retries`, the
    /// number of consecutive failures tolerated, are used).
    pub reconnect: RetryPolicy,
    /// Added to the server's `advice.timeout` for a connect's HTTP timeout.
    pub connect_margin: Duration,
}

impl Default for StreamingPolicy {
    /// Reconnects from 500 ms doubling to 30 s with jitter, giving up after 30 consecutive
    /// failures; connects wait 30 s longer than the server holds them.
    fn default() -> Self {
        StreamingPolicy {
            reconnect: RetryPolicy {
                max_retries: 30,
                min_delay: Duration::from_millis(500),
                max_delay: Duration::from_secs(30),
                ..RetryPolicy::default()
            },
            connect_margin: Duration::from_secs(30),
        }
    }
}

/// What one Bayeux reply means for the loop (pure).
#[derive(Clone, Debug, PartialEq)]
pub enum ReplyAction {
    Ok,
    /// Handshake again, then re-subscribe.
    Handshake,
    /// Log in again, then handshake.
    Reauthenticate,
    /// Try the same request again after `advice.interval`.
    Retry,
    Fail(StreamError),
}

/// Classifies an unsuccessful `/meta/*` reply (pure). `replay` is the position asked at subscribe.
pub fn classify_reply(reply: &Value, replay: i64) -> ReplyAction {
    if reply.get("successful").and_then(Value::as_bool) == Some(true) {
        return ReplyAction::Ok;
    }
    let error = reply
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let failure = reply
        .pointer("/ext/sfdc/failureReason")
        .and_then(Value::as_str)
        .unwrap_or("");
    let advice = reply.pointer("/advice/reconnect").and_then(Value::as_str);
    let channel = reply.get("channel").and_then(Value::as_str).unwrap_or("");
    if error.starts_with("401::") || failure.starts_with("401::") {
        return ReplyAction::Reauthenticate;
    }
    if error.starts_with("403::Unknown client") || advice == Some("handshake") {
        return ReplyAction::Handshake;
    }
    if error.starts_with("400::The replayId") {
        return ReplyAction::Fail(StreamError::ReplayIdUnavailable {
            replay_id: replay,
            message: error,
        });
    }
    if error.starts_with("403::") || (channel == "/meta/subscribe" && error.starts_with("400::")) {
        return ReplyAction::Fail(StreamError::Refused { message: error });
    }
    match advice {
        Some("none") => ReplyAction::Fail(StreamError::Closed {
            message: if error.is_empty() {
                "advice reconnect=none".to_owned()
            } else {
                error
            },
        }),
        Some("retry") => ReplyAction::Retry,
        _ => ReplyAction::Fail(StreamError::Protocol(format!(
            "unsuccessful {channel}: {error}"
        ))),
    }
}

/// Reads a data message into an event (pure); `None` for `/meta/*` messages.
pub fn parse_event(message: &Value) -> Option<Result<StreamEvent, StreamError>> {
    let channel = message.get("channel")?.as_str()?;
    if channel.starts_with("/meta/") {
        return None;
    }
    let data = message.get("data")?;
    let replay_id = data.pointer("/event/replayId").and_then(Value::as_i64);
    Some(match replay_id {
        Some(replay_id) => Ok(StreamEvent {
            channel: channel.to_owned(),
            replay_id,
            payload: data.get("payload").unwrap_or(data).clone(),
        }),
        None => Err(StreamError::Protocol(format!(
            "an event on {channel} without data.event.replayId"
        ))),
    })
}

/// A live subscription to one channel. Not `Clone`: one consumer reads it.
pub struct Subscription {
    client: Client,
    http: reqwest::Client,
    path: String,
    channel: String,
    from: ReplayFrom,
    client_id: Option<String>,
    last_received: Option<i64>,
    pending: VecDeque<StreamEvent>,
    message_id: u64,
    server_timeout: Duration,
    interval: Duration,
    policy: StreamingPolicy,
    handshakes: u64,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .field("last_received", &self.last_received)
            .field("handshakes", &self.handshakes)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Handshakes and subscribes to `channel` from `from` with the default [`StreamingPolicy`].
    pub async fn subscribe(
        &self,
        channel: &str,
        from: ReplayFrom,
    ) -> Result<Subscription, StreamError> {
        self.subscribe_with(channel, from, StreamingPolicy::default())
            .await
    }

    /// Handshakes and subscribes to `channel` from `from`.
    pub async fn subscribe_with(
        &self,
        channel: &str,
        from: ReplayFrom,
        policy: StreamingPolicy,
    ) -> Result<Subscription, StreamError> {
        let mut subscription = Subscription {
            client: self.clone(),
            http: build_http(self.config(), true)?,
            path: format!("/cometd/{}", self.config().api_version),
            channel: channel.to_owned(),
            from,
            client_id: None,
            last_received: None,
            pending: VecDeque::new(),
            message_id: 0,
            server_timeout: Duration::from_secs(110),
            interval: Duration::ZERO,
            policy,
            handshakes: 0,
        };
        subscription.start().await?;
        Ok(subscription)
    }
}

impl Subscription {
    /// The channel subscribed to.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The replay id of the last event received (delivered or waiting in [`Subscription::next`]'s
    /// buffer); re-subscriptions resume after it.
    pub fn last_replay_id(&self) -> Option<i64> {
        self.last_received
    }

    /// How many handshakes this subscription made (1 unless it had to start again).
    pub fn handshakes(&self) -> u64 {
        self.handshakes
    }

    /// The next event, waiting as long as it takes (long-polling). Reconnects by itself; an
    /// error means the subscription is over.
    pub async fn next(&mut self) -> Result<StreamEvent, StreamError> {
        let mut delays = self.policy.reconnect.schedule();
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            let outcome = if self.client_id.is_none() {
                self.start().await
            } else {
                self.connect().await
            };
            match outcome {
                Ok(()) => delays = self.policy.reconnect.schedule(),
                Err(StreamError::Api(e)) if e.class != super::ErrorClass::Definite => {
                    let Some(delay) = delays.next() else {
                        return Err(StreamError::Api(e));
                    };
                    tracing::warn!(channel = %self.channel, error = %e, delay_ms = delay.as_millis() as u64, "streaming connection failed; reconnecting");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Tells the server this client is leaving (best effort).
    pub async fn disconnect(mut self) {
        if let Some(client_id) = self.client_id.take() {
            let message = json!([{"channel": "/meta/disconnect", "clientId": client_id, "id": self.next_id()}]);
            let _ = self.post(message, None).await;
        }
    }

    fn next_id(&mut self) -> String {
        self.message_id += 1;
        self.message_id.to_string()
    }

    fn resume_from(&self) -> ReplayFrom {
        match self.last_received {
            Some(id) => ReplayFrom::After(id),
            None => self.from,
        }
    }

    async fn post(
        &self,
        body: Value,
        timeout: Option<Duration>,
    ) -> Result<Vec<Value>, StreamError> {
        let mut request = Request::new(Method::POST, CallKind::Streaming, self.path.clone())
            .json(&body)
            .read_only()
            .no_retry();
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = self.client.send_via(&self.http, request).await?;
        response
            .json::<Vec<Value>>()
            .map_err(|e| StreamError::Protocol(e.message))
    }

    /// Handshake then subscribe, logging in again once if the session was refused.
    async fn start(&mut self) -> Result<(), StreamError> {
        let mut reauthenticated = false;
        loop {
            match self.handshake_and_subscribe().await? {
                ReplyAction::Ok => return Ok(()),
                ReplyAction::Reauthenticate if !reauthenticated => {
                    reauthenticated = true;
                    let generation = self.client.session().await?.generation;
                    self.client.renew_session(Some(generation)).await?;
                }
                ReplyAction::Handshake | ReplyAction::Retry => {
                    tokio::time::sleep(self.interval).await;
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

    async fn handshake_and_subscribe(&mut self) -> Result<ReplyAction, StreamError> {
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
            ReplyAction::Ok => {}
            other => return Ok(other),
        }
        let client_id = reply
            .get("clientId")
            .and_then(Value::as_str)
            .ok_or_else(|| StreamError::Protocol("handshake without clientId".to_owned()))?
            .to_owned();
        let replay = self.resume_from().value();
        let id = self.next_id();
        let mut replay_map = serde_json::Map::new();
        replay_map.insert(self.channel.clone(), json!(replay));
        let replies = self
            .post(
                json!([{"channel": "/meta/subscribe", "clientId": client_id,
                        "subscription": self.channel, "id": id,
                        "ext": {"replay": replay_map}}]),
                None,
            )
            .await?;
        self.take_events(&replies)?;
        let reply = meta_reply(&replies, "/meta/subscribe")?;
        let action = classify_reply(reply, replay);
        if action == ReplyAction::Ok {
            self.client_id = Some(client_id);
            tracing::debug!(channel = %self.channel, replay, "subscribed");
        }
        Ok(action)
    }

    /// One `/meta/connect` round trip: buffers the events it brings.
    async fn connect(&mut self) -> Result<(), StreamError> {
        let client_id = self.client_id.clone().expect("connected");
        let id = self.next_id();
        let timeout = self.server_timeout + self.policy.connect_margin;
        let replies = self
            .post(
                json!([{"channel": "/meta/connect", "clientId": client_id,
                        "connectionType": "long-polling", "id": id}]),
                Some(timeout),
            )
            .await?;
        self.take_events(&replies)?;
        let Ok(reply) = meta_reply(&replies, "/meta/connect") else {
            return Ok(());
        };
        self.read_advice(reply);
        match classify_reply(reply, self.resume_from().value()) {
            ReplyAction::Ok | ReplyAction::Retry => {
                if !self.interval.is_zero() {
                    tokio::time::sleep(self.interval).await;
                }
                Ok(())
            }
            ReplyAction::Handshake => {
                tracing::info!(channel = %self.channel, "streaming client unknown to the server; handshaking again");
                self.client_id = None;
                Ok(())
            }
            ReplyAction::Reauthenticate => {
                let generation = self.client.session().await?.generation;
                self.client.renew_session(Some(generation)).await?;
                self.client_id = None;
                Ok(())
            }
            ReplyAction::Fail(e) => Err(e),
        }
    }

    fn take_events(&mut self, replies: &[Value]) -> Result<(), StreamError> {
        for message in replies {
            if let Some(event) = parse_event(message) {
                let event = event?;
                if event.channel != self.channel && !self.channel.ends_with("/**") {
                    continue;
                }
                if self
                    .last_received
                    .is_some_and(|last| event.replay_id <= last)
                {
                    continue;
                }
                self.last_received = Some(event.replay_id);
                self.pending.push_back(event);
            }
        }
        Ok(())
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

pub(crate) fn meta_reply<'a>(
    replies: &'a [Value],
    channel: &str,
) -> Result<&'a Value, StreamError> {
    replies
        .iter()
        .find(|m| m.get("channel").and_then(Value::as_str) == Some(channel))
        .ok_or_else(|| StreamError::Protocol(format!("no {channel} reply")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_positions_are_sent_as_salesforce_expects() {
        assert_eq!(ReplayFrom::NewOnly.value(), -1);
        assert_eq!(ReplayFrom::AllRetained.value(), -2);
        assert_eq!(ReplayFrom::After(42).value(), 42);
    }

    #[test]
    fn an_unknown_client_means_handshake_again() {
        let reply = json!({"channel":"/meta/connect","successful":false,"error":"403::Unknown client",
                           "advice":{"reconnect":"handshake","interval":0}});
        assert_eq!(classify_reply(&reply, -1), ReplyAction::Handshake);
    }

    #[test]
    fn an_expired_session_means_log_in_again() {
        let reply = json!({"channel":"/meta/connect","successful":false,"error":"401::Authentication invalid",
                           "advice":{"reconnect":"none","interval":0}});
        assert_eq!(classify_reply(&reply, -1), ReplyAction::Reauthenticate);
        let handshake = json!({"channel":"/meta/handshake","successful":false,"error":"403::Handshake denied",
                               "ext":{"sfdc":{"failureReason":"401::Authentication invalid"}},"advice":{"reconnect":"none"}});
        assert_eq!(classify_reply(&handshake, 0), ReplyAction::Reauthenticate);
    }

    #[test]
    fn a_too_old_replay_id_and_refusals_are_distinct_failures() {
        let reply = json!({"channel":"/meta/subscribe","successful":false,
            "error":"400::The replayId {82} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."});
        assert!(matches!(
            classify_reply(&reply, 82),
            ReplyAction::Fail(StreamError::ReplayIdUnavailable { replay_id: 82, .. })
        ));
        let refused = json!({"channel":"/meta/connect","successful":false,
            "error":"403::Organization total events daily limit exceeded","advice":{"reconnect":"none"}});
        assert!(matches!(
            classify_reply(&refused, -1),
            ReplyAction::Fail(StreamError::Refused { .. })
        ));
        let unknown = json!({"channel":"/meta/subscribe","successful":false,
            "error":"400::The channel you requested to subscribe to does not exist {/data/NopeChangeEvent}"});
        assert!(matches!(
            classify_reply(&unknown, -1),
            ReplyAction::Fail(StreamError::Refused { .. })
        ));
        let none = json!({"channel":"/meta/connect","successful":false,"error":"","advice":{"reconnect":"none"}});
        assert!(matches!(
            classify_reply(&none, -1),
            ReplyAction::Fail(StreamError::Closed { .. })
        ));
    }

    #[test]
    fn cdc_messages_become_events_and_meta_replies_do_not() {
        let message = json!({"channel":"/data/AccountChangeEvent","data":{"schema":"x",
            "payload":{"Name":"Acme","ChangeEventHeader":{"changeType":"UPDATE"}},"event":{"replayId":17}}});
        let event = parse_event(&message).expect("data").expect("event");
        assert_eq!(event.replay_id, 17);
        assert_eq!(event.payload["Name"], "Acme");
        assert!(parse_event(&json!({"channel":"/meta/connect","successful":true})).is_none());
        assert!(matches!(
            parse_event(&json!({"channel":"/data/X","data":{}})),
            Some(Err(StreamError::Protocol(_)))
        ));
    }
}
