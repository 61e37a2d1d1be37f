//! The Streaming API's shared vocabulary (CometD, Bayeux 1.0, with the replay extension) for
//! Change Data Capture channels such as `/data/AccountChangeEvent`: where a subscription starts
//! ([`ReplayFrom`]), an event ([`StreamEvent`]), the failures the engine tells apart
//! ([`StreamError`]: a replay id older than the retention window, a refusal, …), the timing
//! policy, and the pure reading of Bayeux replies ([`classify_reply`], [`parse_event`]). The
//! client is [`super::cometd`]: one session carrying every channel of an instance, following the
//! server's `advice`, re-subscribing after the last event received on each channel, and logging
//! in again on `401::Authentication invalid`. The Pub/Sub API transport ([`super::pubsub`])
//! reports its failures with the same [`StreamError`].
//!
//! Re-subscriptions resume after the last event received. Before the first event there is no
//! replay id to resume from, so a channel started with [`ReplayFrom::NewOnly`] that has to start
//! again before receiving anything subscribes from `-1` again and can miss events published in
//! between; subscribe from a stored replay id (or `-2`) when every event matters.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use super::error::SfError;
use super::http::RetryPolicy;

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
            reconnect: RetryPolicy::doubling(
                30,
                Duration::from_millis(500),
                Duration::from_secs(30),
            ),
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
    use serde_json::json;

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
