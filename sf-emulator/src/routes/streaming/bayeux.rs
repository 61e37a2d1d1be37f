//! Bayeux 1.0 messages as Salesforce's CometD endpoint reads and writes them: request parsing
//! (a JSON array of messages, or a single message) and the reply shapes, including Salesforce's
//! error strings (`401::Authentication invalid`, `403::Unknown client`, replay errors).

use serde_json::{json, Map, Value};

/// One incoming message: its fields as sent, with accessors for the ones the server reads.
#[derive(Debug, Clone)]
pub struct Message(pub Map<String, Value>);

impl Message {
    pub fn channel(&self) -> &str {
        self.0.get("channel").and_then(Value::as_str).unwrap_or("")
    }

    pub fn id(&self) -> Option<&Value> {
        self.0.get("id")
    }

    pub fn client_id(&self) -> Option<&str> {
        self.0.get("clientId").and_then(Value::as_str)
    }

    pub fn subscription(&self) -> Option<&str> {
        self.0.get("subscription").and_then(Value::as_str)
    }

    /// `ext.replay`, the replay extension's map of channel → replay id.
    pub fn replay_map(&self) -> Option<&Value> {
        self.0.get("ext").and_then(|ext| ext.get("replay"))
    }

    /// `advice.timeout` in milliseconds, when the client asks for a shorter hold.
    pub fn advice_timeout_ms(&self) -> Option<u64> {
        self.0
            .get("advice")
            .and_then(|a| a.get("timeout"))
            .and_then(Value::as_u64)
    }
}

/// Why a request body is not a Bayeux message batch.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the request body is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("a Bayeux message must be a JSON object")]
    NotAnObject,
}

/// Parses a request body: a JSON array of message objects, or a single object.
pub fn parse_batch(body: &[u8]) -> Result<Vec<Message>, BatchError> {
    let value: Value = serde_json::from_slice(body)?;
    let items = match value {
        Value::Array(items) => items,
        single @ Value::Object(_) => vec![single],
        _ => return Err(BatchError::NotAnObject),
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::Object(map) => Ok(Message(map)),
            _ => Err(BatchError::NotAnObject),
        })
        .collect()
}

/// A reply to `request` on the same channel, carrying its `id` (and `clientId` when given).
pub fn reply(request: &Message, client_id: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(client_id) = client_id {
        out.insert("clientId".into(), json!(client_id));
    }
    out.insert("channel".into(), json!(request.channel()));
    if let Some(id) = request.id() {
        out.insert("id".into(), id.clone());
    }
    out
}

/// A successful reply.
pub fn success(request: &Message, client_id: Option<&str>) -> Map<String, Value> {
    let mut out = reply(request, client_id);
    out.insert("successful".into(), json!(true));
    out
}

/// A failed reply with Salesforce's `error` string and optional advice.
pub fn failure(
    request: &Message,
    client_id: Option<&str>,
    error: &str,
    advice: Option<Value>,
) -> Map<String, Value> {
    let mut out = reply(request, client_id);
    if let Some(advice) = advice {
        out.insert("advice".into(), advice);
    }
    out.insert("error".into(), json!(error));
    out.insert("successful".into(), json!(false));
    out
}

/// The successful handshake reply (the doc sample's fields).
pub fn handshake_success(request: &Message, client_id: &str) -> Map<String, Value> {
    let mut out = success(request, Some(client_id));
    out.insert(
        "ext".into(),
        json!({"replay": true, "payload.format": true}),
    );
    out.insert("minimumVersion".into(), json!("1.0"));
    out.insert("supportedConnectionTypes".into(), json!(["long-polling"]));
    out.insert("version".into(), json!("1.0"));
    out
}

/// The handshake refusal for a missing, invalid or expired session.
pub fn handshake_denied(request: &Message) -> Map<String, Value> {
    let mut out = failure(
        request,
        None,
        "403::Handshake denied",
        Some(json!({"reconnect": "none"})),
    );
    out.insert(
        "ext".into(),
        json!({
            "sfdc": {"failureReason": AUTHENTICATION_INVALID},
            "replay": true,
            "payload.format": true
        }),
    );
    out
}

pub const AUTHENTICATION_INVALID: &str = "401::Authentication invalid";
pub const UNKNOWN_CLIENT: &str = "403::Unknown client";
/// The daily event delivery allocation is used up (Streaming API Developer Guide, "Durable
/// Streaming API Allocations" / Change Data Capture "Allocations": returned on
/// `/meta/connect`).
pub const DAILY_LIMIT_EXCEEDED: &str = "403::Organization total events daily limit exceeded";
/// The concurrent-client allocation is used up (`DurableStreamingApiConcurrentClients`; the
/// Streaming API Developer Guide, "Streaming API Allocations", gives the allocation, the text
/// is the one users report on handshake).
pub const CONCURRENT_CLIENTS_EXCEEDED: &str = "403::Organization concurrent user limit exceeded";
/// The browser cookie CometD sets at handshake and expects on every later request.
pub const BROWSER_COOKIE: &str = "BAYEUX_BROWSER";

/// `400::Client <id> has established a session, but no BAYEUX_BROWSER cookie present`
/// (Streaming API Developer Guide, "Streaming API Error Codes").
pub fn cookie_missing(client_id: &str) -> String {
    format!(
        "400::Client {client_id} has established a session, but no {BROWSER_COOKIE} cookie present"
    )
}

/// Advice sent with `403::Unknown client`: the client must handshake again.
pub fn handshake_advice() -> Value {
    json!({"reconnect": "handshake", "interval": 0})
}

/// Advice sent with authentication failures: the client must stop (and re-authenticate).
pub fn none_advice() -> Value {
    json!({"reconnect": "none", "interval": 0})
}

/// Advice sent with a connect reply: reconnect at once, the server holds up to `timeout_ms`.
pub fn connect_advice(timeout_ms: u64) -> Value {
    json!({"interval": 0, "reconnect": "retry", "timeout": timeout_ms})
}

/// `400::The channel you requested to subscribe to does not exist {<channel>}`.
pub fn unknown_channel(channel: &str) -> String {
    format!("400::The channel you requested to subscribe to does not exist {{{channel}}}")
}

/// The error for a replay id outside the retention window (or not an id at all).
pub fn invalid_replay_id(replay: &Value) -> String {
    let shown = match replay {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "400::The replayId {{{shown}}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
    )
}

/// The error for a replay map that does not name the subscribed channel.
pub fn replay_channel_missing(channel: &str, map: &Value) -> String {
    let entries = map
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    format!(
        "400::The replayId for channel {{{channel}}} wasn't found using the provided replay ID map {{{{{entries}}}}}. Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_arrays_and_single_messages() {
        let batch = parse_batch(br#"[{"channel":"/meta/handshake","id":"1"}]"#).unwrap();
        assert_eq!(batch[0].channel(), "/meta/handshake");
        let single = parse_batch(br#"{"channel":"/meta/connect","clientId":"x"}"#).unwrap();
        assert_eq!(single[0].client_id(), Some("x"));
        assert!(parse_batch(b"[1]").is_err());
        assert!(parse_batch(b"nope").is_err());
    }

    #[test]
    fn error_strings_match_salesforce() {
        assert_eq!(
            cookie_missing("abc"),
            "400::Client abc has established a session, but no BAYEUX_BROWSER cookie present"
        );
        assert_eq!(
            unknown_channel("/topic/X"),
            "400::The channel you requested to subscribe to does not exist {/topic/X}"
        );
        assert_eq!(
            invalid_replay_id(&json!(82)),
            "400::The replayId {82} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
        );
        assert_eq!(
            replay_channel_missing("/topic/t", &json!({})),
            "400::The replayId for channel {/topic/t} wasn't found using the provided replay ID map {{}}. Ensure that the channel name you provided in the replay map is valid and matches the channel name used for subscribing."
        );
    }
}
