//! The Streaming API: CometD/Bayeux 1.0 long-polling on `POST /cometd/<version>` delivering
//! Change Data Capture events (`/data/ChangeEvents`, `/data/<Object>ChangeEvent`) from the org's
//! CDC log, with the replay extension, the `BAYEUX_BROWSER` session cookie, Salesforce's advice
//! and error strings, client expiry, the concurrent-client and daily delivery allocations, and
//! fault hooks (dropped connections, injected gap events, 503s, refused subscribes).

pub mod bayeux;
mod connect;
pub mod faults;
pub mod selection;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::org::cdc::ChannelFilter;
use crate::org::streaming::clients::{self, Subscription};
use crate::org::Org;
use crate::routes::session::bearer_token;
use bayeux::Message;

/// Salesforce's maximum CometD request body.
const MAX_BODY_BYTES: usize = 32_768;

/// Routes of this module.
pub fn routes() -> Router<Org> {
    Router::new()
        .route("/cometd/{version}", post(cometd))
        .route("/cometd/{version}/", post(cometd))
        .merge(faults::routes())
        .merge(selection::routes())
}

/// The `BAYEUX_BROWSER` cookie of a request, if any.
fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == bayeux::BROWSER_COOKIE).then(|| v.trim().to_string())
        })
}

/// Streaming is available from API 37.0 (the replay extension's first version).
fn supported_version(version: &str) -> bool {
    version
        .parse::<f64>()
        .map(|v| (37.0..1000.0).contains(&v))
        .unwrap_or(false)
}

fn rest_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

/// `POST /cometd/<version>`: one batch of Bayeux messages in, one batch of replies out.
async fn cometd(
    State(org): State<Org>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !supported_version(&version) {
        return rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("The Streaming API is served from version 37.0 up, not {version:?}"),
        );
    }
    if body.len() > MAX_BODY_BYTES {
        return rest_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_ENTITY_TOO_LARGE",
            "The CometD request body exceeds 32768 bytes",
        );
    }
    let batch = match bayeux::parse_batch(&body) {
        Ok(batch) if !batch.is_empty() => batch,
        Ok(_) => {
            return rest_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "The CometD request holds no message",
            )
        }
        Err(error) => {
            return rest_error(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                &error.to_string(),
            )
        }
    };
    if org
        .cdc()
        .with_faults(|f| crate::org::cdc::faults::take(&mut f.streaming_503_next))
    {
        return crate::routes::faults::unavailable_response();
    }
    let authenticated = bearer_token(&headers)
        .map(|token| org.session(&token).is_some())
        .unwrap_or(false);
    let cookie = browser_cookie(&headers);
    // The browser id of this request: its cookie, or a new one set with the handshake reply.
    let browser = cookie
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());

    let mut replies: Vec<Value> = Vec::new();
    let mut handshaken = false;
    let mut connect: Option<Message> = None;
    for message in batch {
        // A known client's follow-ups must carry the cookie its handshake set.
        if cookie.is_none() && message.channel() != "/meta/handshake" {
            if let Some(client_id) = message
                .client_id()
                .filter(|id| org.streaming().clients.contains(id))
            {
                let mut reply = bayeux::failure(
                    &message,
                    Some(client_id),
                    &bayeux::cookie_missing(client_id),
                    None,
                );
                if let Some(subscription) = message.0.get("subscription") {
                    reply.insert("subscription".into(), subscription.clone());
                }
                replies.push(Value::Object(reply));
                continue;
            }
        }
        let reply = match message.channel() {
            "/meta/handshake" => {
                let reply = handshake(&org, authenticated, &message, &browser);
                handshaken |= reply.get("successful") == Some(&Value::Bool(true));
                reply
            }
            "/meta/connect" => {
                // Answered last: a connect may be held, and events ride with its reply.
                if let Some(earlier) = connect.replace(message) {
                    replies.push(Value::Object(bayeux::success(
                        &earlier,
                        earlier.client_id(),
                    )));
                }
                continue;
            }
            "/meta/subscribe" => subscribe(&org, authenticated, &message),
            "/meta/unsubscribe" => unsubscribe(&org, authenticated, &message),
            "/meta/disconnect" => disconnect(&org, authenticated, &message),
            channel if channel.starts_with("/meta/") => bayeux::failure(
                &message,
                message.client_id(),
                &format!("400::Unknown meta channel {{{channel}}}"),
                None,
            ),
            channel => bayeux::failure(
                &message,
                message.client_id(),
                &format!("403::Publish denied on {{{channel}}}"),
                None,
            ),
        };
        replies.push(Value::Object(reply));
    }
    if let Some(message) = connect {
        replies.extend(connect::connect(&org, authenticated, &message).await);
    }

    let mut response = Json(Value::Array(replies)).into_response();
    if handshaken && cookie.is_none() {
        if let Ok(cookie) = HeaderValue::from_str(&format!(
            "{}={browser}; Path=/; HttpOnly",
            bayeux::BROWSER_COOKIE
        )) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
    }
    response
}

/// Concurrent CometD clients allowed (`DurableStreamingApiConcurrentClients` of `/limits`).
pub(crate) fn max_clients(org: &Org) -> usize {
    org.limit("DurableStreamingApiConcurrentClients")
        .map_or(usize::MAX, |(max, _)| {
            usize::try_from(max).unwrap_or(usize::MAX)
        })
}

fn handshake(
    org: &Org,
    authenticated: bool,
    message: &Message,
    browser: &str,
) -> Map<String, Value> {
    if !authenticated {
        return bayeux::handshake_denied(message);
    }
    let hub = org.streaming();
    match hub
        .clients
        // Pub/Sub API subscriptions count against the same allocation.
        .handshake(
            hub.client_expiry(),
            browser,
            max_clients(org).saturating_sub(hub.pubsub.open()),
        ) {
        Ok(client_id) => bayeux::handshake_success(message, &client_id),
        Err(clients::TooManyClients) => {
            bayeux::failure(message, None, bayeux::CONCURRENT_CLIENTS_EXCEEDED, None)
        }
    }
}

/// The reply for a message naming a client the server does not know (or no longer knows).
fn unknown_client(message: &Message) -> Map<String, Value> {
    bayeux::failure(
        message,
        message.client_id(),
        bayeux::UNKNOWN_CLIENT,
        Some(bayeux::handshake_advice()),
    )
}

fn authentication_invalid(message: &Message) -> Map<String, Value> {
    bayeux::failure(
        message,
        message.client_id(),
        bayeux::AUTHENTICATION_INVALID,
        Some(bayeux::none_advice()),
    )
}

fn with_subscription(mut reply: Map<String, Value>, message: &Message) -> Map<String, Value> {
    if let Some(subscription) = message.0.get("subscription") {
        reply.insert("subscription".into(), subscription.clone());
    }
    reply
}

fn subscribe(org: &Org, authenticated: bool, message: &Message) -> Map<String, Value> {
    if !authenticated {
        return with_subscription(authentication_invalid(message), message);
    }
    let hub = org.streaming();
    let Some(client_id) = message.client_id() else {
        return with_subscription(unknown_client(message), message);
    };
    let channel = message.subscription().unwrap_or("");
    let fail = |error: String| {
        with_subscription(
            bayeux::failure(message, Some(client_id), &error, None),
            message,
        )
    };
    let schema = org.schema();
    let Some(filter) =
        ChannelFilter::parse(channel, schema.objects.iter().map(|o| o.name.as_str()))
    else {
        return fail(bayeux::unknown_channel(channel));
    };
    // The replay extension: no map means new events only (jsforce's default subscribe).
    let replay = match message.replay_map() {
        None | Some(Value::Null) => json!(-1),
        Some(map @ Value::Object(entries)) => match entries.get(channel) {
            Some(id) => id.clone(),
            None => return fail(bayeux::replay_channel_missing(channel, map)),
        },
        Some(other) => return fail(bayeux::invalid_replay_id(other)),
    };
    let requested = match &replay {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let cdc = org.cdc();
    if cdc.with_faults(|f| crate::org::cdc::faults::take(&mut f.cdc_fail_next_subscribe)) {
        return fail(bayeux::invalid_replay_id(&replay));
    }
    let cursor = match requested {
        Some(-1) => cdc.latest_replay_id(),
        Some(-2) => -2,
        Some(id) if id >= 0 => match cdc.read_after(id, &filter, org.now_ms()) {
            Ok(_) => id,
            Err(_) => return fail(bayeux::invalid_replay_id(&replay)),
        },
        _ => return fail(bayeux::invalid_replay_id(&replay)),
    };
    let subscribed = hub.clients.with(client_id, hub.client_expiry(), |client| {
        client
            .subscriptions
            .insert(channel.to_string(), Subscription { filter, cursor });
        // A connect held for this client delivers what the new subscription has pending.
        client.wake.notify_waiters();
    });
    match subscribed {
        Some(()) => with_subscription(bayeux::success(message, Some(client_id)), message),
        None => with_subscription(unknown_client(message), message),
    }
}

fn unsubscribe(org: &Org, authenticated: bool, message: &Message) -> Map<String, Value> {
    if !authenticated {
        return with_subscription(authentication_invalid(message), message);
    }
    let hub = org.streaming();
    let Some(client_id) = message.client_id() else {
        return with_subscription(unknown_client(message), message);
    };
    let channel = message.subscription().unwrap_or("");
    match hub.clients.with(client_id, hub.client_expiry(), |client| {
        client.subscriptions.remove(channel).is_some()
    }) {
        Some(true) => with_subscription(bayeux::success(message, Some(client_id)), message),
        Some(false) => with_subscription(
            bayeux::failure(
                message,
                Some(client_id),
                &format!("400::The client is not subscribed to {{{channel}}}"),
                None,
            ),
            message,
        ),
        None => with_subscription(unknown_client(message), message),
    }
}

fn disconnect(org: &Org, authenticated: bool, message: &Message) -> Map<String, Value> {
    if !authenticated {
        return authentication_invalid(message);
    }
    match message.client_id() {
        Some(client_id) if org.streaming().clients.remove(client_id) => {
            bayeux::success(message, Some(client_id))
        }
        _ => unknown_client(message),
    }
}
