//! CometD streaming against the emulated org: a change event for a record updated through REST,
//! resuming after a stored replay id, handshaking again after the server forgets the client,
//! logging in again when the session expires mid-stream, and the two failures the engine falls
//! back to polling on (a replay id past retention, a refused channel); and one client carrying
//! several channels (the engine's per-instance session), each from its own position.

mod salesforce_support;

use std::time::Duration;

use salesforce_support::{org_with, Org};
use serde_json::{json, Value};
use sync_runtime::salesforce::cometd::CometdSession;
use sync_runtime::salesforce::streaming::{ReplayFrom, StreamError, StreamEvent, StreamingPolicy};
use sync_runtime::salesforce::{CallKind, Client};

const CHANNEL: &str = "/data/AccountChangeEvent";

/// The emulator with short connect holds, so the connect loop goes round during the tests.
async fn streaming_org() -> Org {
    org_with(sf_emulator::server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        seed: Some("demo".to_owned()),
        streaming_connect_timeout_ms: 1_500,
        ..Default::default()
    })
    .await
}

/// One channel on its own session, its events handed out one at a time.
struct Subscription {
    session: CometdSession,
    channel: String,
    received: std::collections::VecDeque<StreamEvent>,
}

impl Subscription {
    fn last_replay_id(&self) -> Option<i64> {
        self.session.channels()[&self.channel].last_received
    }
}

async fn subscribe(
    client: &Client,
    channel: &str,
    from: ReplayFrom,
) -> Result<Subscription, StreamError> {
    let mut session = CometdSession::new(client, StreamingPolicy::default())?;
    session.subscribe(channel, from).await?;
    Ok(Subscription {
        session,
        channel: channel.to_owned(),
        received: Default::default(),
    })
}

async fn next(subscription: &mut Subscription) -> StreamEvent {
    loop {
        if let Some(event) = subscription.received.pop_front() {
            return event;
        }
        let events = connect_round(&mut subscription.session).await;
        subscription.received.extend(events);
    }
}

fn header(event: &StreamEvent) -> &Value {
    &event.payload["ChangeEventHeader"]
}

async fn new_account(client: &Client, name: &str) -> String {
    client
        .create("Account", &json!({"Name": name}))
        .await
        .expect("create")
}

#[tokio::test]
async fn a_rest_update_arrives_as_a_change_event() {
    let org = streaming_org().await;
    let client = org.client();
    let id = new_account(&client, "Streamed Co").await;
    let mut subscription = subscribe(&client, CHANNEL, ReplayFrom::NewOnly)
        .await
        .expect("subscribed");
    // Let a connect round go by with nothing to deliver.
    tokio::time::sleep(Duration::from_millis(200)).await;
    client
        .update("Account", &id, &json!({"Name": "Streamed Co (renamed)"}))
        .await
        .expect("update");
    let event = next(&mut subscription).await;
    assert_eq!(event.channel, CHANNEL);
    assert_eq!(header(&event)["changeType"], "UPDATE");
    assert_eq!(header(&event)["recordIds"], json!([id]));
    assert_eq!(event.payload["Name"], "Streamed Co (renamed)");
    assert_eq!(subscription.last_replay_id(), Some(event.replay_id));
    assert!(client.call_counts().get(CallKind::Streaming) >= 3);
    subscription.session.disconnect().await;
}

#[tokio::test]
async fn a_subscription_resumes_after_a_stored_replay_id() {
    let org = streaming_org().await;
    let client = org.client();
    let id = new_account(&client, "Replayed Co").await;
    for phone in ["555-0001", "555-0002", "555-0003"] {
        client
            .update("Account", &id, &json!({"Phone": phone}))
            .await
            .expect("update");
    }
    let mut all = subscribe(&client, CHANNEL, ReplayFrom::AllRetained)
        .await
        .expect("subscribed");
    let mut updates = Vec::new();
    while updates.len() < 3 {
        let event = next(&mut all).await;
        if header(&event)["changeType"] == "UPDATE" {
            updates.push(event);
        }
    }
    assert_eq!(updates[0].payload["Phone"], "555-0001");

    // A new subscription from the first update's replay id gets exactly the ones after it.
    let mut resumed = subscribe(&client, CHANNEL, ReplayFrom::After(updates[0].replay_id))
        .await
        .expect("resumed");
    let second = next(&mut resumed).await;
    let third = next(&mut resumed).await;
    assert_eq!(second.replay_id, updates[1].replay_id);
    assert_eq!(second.payload["Phone"], "555-0002");
    assert_eq!(third.payload["Phone"], "555-0003");
}

#[tokio::test]
async fn dropped_clients_handshake_again_and_miss_nothing() {
    let org = streaming_org().await;
    let client = org.client();
    let id = new_account(&client, "Dropped Co").await;
    let mut subscription = subscribe(&client, CHANNEL, ReplayFrom::NewOnly)
        .await
        .expect("subscribed");
    client
        .update("Account", &id, &json!({"Phone": "555-1000"}))
        .await
        .expect("update");
    assert_eq!(next(&mut subscription).await.payload["Phone"], "555-1000");

    org.post("faults/streaming/drop", json!({})).await;
    // Changed while the client is forgotten: delivered after the re-handshake by replay.
    client
        .update("Account", &id, &json!({"Phone": "555-2000"}))
        .await
        .expect("update");
    let event = next(&mut subscription).await;
    assert_eq!(event.payload["Phone"], "555-2000");
    assert_eq!(subscription.session.handshakes(), 2);
}

#[tokio::test]
async fn an_expired_session_mid_stream_is_renewed() {
    let org = streaming_org().await;
    let listener = org.client();
    let writer = org.client();
    let id = new_account(&writer, "Expiring Co").await;
    let mut subscription = subscribe(&listener, CHANNEL, ReplayFrom::AllRetained)
        .await
        .expect("subscribed");
    assert_eq!(
        header(&next(&mut subscription).await)["changeType"],
        "CREATE"
    );
    org.post("sessions/expire", json!({})).await;
    writer
        .update("Account", &id, &json!({"Phone": "555-3000"}))
        .await
        .expect("the writer logs in again");
    let event = next(&mut subscription).await;
    assert_eq!(event.payload["Phone"], "555-3000");
    assert_eq!(listener.call_counts().get(CallKind::Auth), 2);
}

#[tokio::test]
async fn a_replay_id_past_retention_is_its_own_error() {
    let org = streaming_org().await;
    let client = org.client();
    let id = new_account(&client, "Old News Co").await;
    let mut subscription = subscribe(&client, CHANNEL, ReplayFrom::AllRetained)
        .await
        .expect("subscribed");
    let old = next(&mut subscription).await.replay_id;
    client
        .update("Account", &id, &json!({"Phone": "555-3999"}))
        .await
        .expect("update");
    assert!(next(&mut subscription).await.replay_id > old);
    // 73 hours later both events are gone; a newer one exists.
    org.post("clock", json!({"advance_ms": 73 * 3_600_000_i64}))
        .await;
    client
        .update("Account", &id, &json!({"Phone": "555-4000"}))
        .await
        .expect("update");
    let e = subscribe(&client, CHANNEL, ReplayFrom::After(old))
        .await
        .err()
        .expect("too old");
    match e {
        StreamError::ReplayIdUnavailable { replay_id, .. } => assert_eq!(replay_id, old),
        other => panic!("expected ReplayIdUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_channel_is_refused() {
    let org = streaming_org().await;
    let client = org.client();
    let e = subscribe(&client, "/data/NoSuchThingChangeEvent", ReplayFrom::NewOnly)
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, StreamError::Refused { .. }), "{e:?}");
}

/// The events of one connect round of a multi-channel session.
async fn connect_round(
    session: &mut sync_runtime::salesforce::cometd::CometdSession,
) -> Vec<StreamEvent> {
    let request = session.connect_request().expect("connected");
    let replies = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("a connect reply within 30 s");
    session.take_connect(replies).await.expect("connect")
}

/// Connect rounds until the events received satisfy `done`; answers them all.
async fn events_until(
    session: &mut sync_runtime::salesforce::cometd::CometdSession,
    done: impl Fn(&[StreamEvent]) -> bool,
) -> Vec<StreamEvent> {
    let mut got = Vec::new();
    for _ in 0..30 {
        got.extend(connect_round(session).await);
        if done(&got) {
            return got;
        }
    }
    panic!("the expected events did not come: {got:?}");
}

/// The events whose payload has `value` at `path` (`/Phone`, `/Name/LastName`).
fn with<'a>(events: &'a [StreamEvent], path: &str, value: &str) -> Vec<&'a StreamEvent> {
    events
        .iter()
        .filter(|e| e.payload.pointer(path).and_then(Value::as_str) == Some(value))
        .collect()
}

async fn clients_alive(org: &Org) -> u64 {
    let limits = org.client().limits().await.expect("limits");
    limits
        .get(sync_runtime::salesforce::limits::CONCURRENT_CLIENTS)
        .expect("the allocation")
        .used()
}

#[tokio::test]
async fn one_client_carries_many_channels_each_from_its_own_position() {
    use sync_runtime::salesforce::cometd::CometdSession;
    use sync_runtime::salesforce::streaming::StreamingPolicy;
    let org = streaming_org().await;
    let client = org.client();
    let account = new_account(&client, "Multiplexed Co").await;
    let contact = client
        .create("Contact", &json!({"LastName": "Multiplexed"}))
        .await
        .expect("create");
    // An Account change before the session exists: only a replay from a stored id brings it.
    client
        .update("Account", &account, &json!({"Phone": "555-3000"}))
        .await
        .expect("update");
    let mut session = CometdSession::new(&client, StreamingPolicy::default()).expect("session");
    session
        .subscribe(CHANNEL, ReplayFrom::AllRetained)
        .await
        .expect("Account subscribed");
    session
        .subscribe("/data/ContactChangeEvent", ReplayFrom::NewOnly)
        .await
        .expect("Contact subscribed");
    assert_eq!(session.handshakes(), 1, "one handshake for both channels");
    assert_eq!(clients_alive(&org).await, 1);
    let replayed = events_until(&mut session, |e| !with(e, "/Phone", "555-3000").is_empty()).await;
    assert!(replayed.iter().all(|e| e.channel == CHANNEL));

    client
        .update("Contact", &contact, &json!({"LastName": "Multiplexed II"}))
        .await
        .expect("update");
    let got = events_until(&mut session, |e| {
        !with(e, "/Name/LastName", "Multiplexed II").is_empty()
    })
    .await;
    assert_eq!(
        with(&got, "/Name/LastName", "Multiplexed II")[0].channel,
        "/data/ContactChangeEvent"
    );

    // The server forgets the client: one new handshake re-subscribes both channels after the
    // last event received on each, so nothing is delivered twice and nothing is missed.
    org.post("faults/streaming/drop", json!({})).await;
    client
        .update("Account", &account, &json!({"Phone": "555-4000"}))
        .await
        .expect("update");
    client
        .update("Contact", &contact, &json!({"LastName": "Multiplexed III"}))
        .await
        .expect("update");
    let after = events_until(&mut session, |e| {
        !with(e, "/Phone", "555-4000").is_empty()
            && !with(e, "/Name/LastName", "Multiplexed III").is_empty()
    })
    .await;
    assert!(
        with(&after, "/Phone", "555-3000").is_empty(),
        "nothing twice"
    );
    assert!(
        with(&after, "/Name/LastName", "Multiplexed II").is_empty(),
        "nothing twice"
    );
    assert_eq!(session.handshakes(), 2);

    // A channel given up no longer delivers; the other goes on.
    session.unsubscribe("/data/ContactChangeEvent").await;
    client
        .update("Contact", &contact, &json!({"LastName": "Unheard"}))
        .await
        .expect("update");
    client
        .update("Account", &account, &json!({"Phone": "555-5000"}))
        .await
        .expect("update");
    let last = events_until(&mut session, |e| !with(e, "/Phone", "555-5000").is_empty()).await;
    assert!(
        with(&last, "/Name/LastName", "Unheard").is_empty(),
        "{last:?}"
    );

    // Disconnecting gives the place back at once.
    session.disconnect().await;
    assert!(!session.is_connected());
    assert_eq!(clients_alive(&org).await, 0);
}
