//! CometD streaming against the emulated org: a change event for a record updated through REST,
//! resuming after a stored replay id, handshaking again after the server forgets the client,
//! logging in again when the session expires mid-stream, and the two failures the engine falls
//! back to polling on (a replay id past retention, a refused channel).

mod salesforce_support;

use std::time::Duration;

use salesforce_support::{org_with, Org};
use serde_json::{json, Value};
use sync_runtime::salesforce::streaming::{ReplayFrom, StreamError, StreamEvent, Subscription};
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

async fn next(subscription: &mut Subscription) -> StreamEvent {
    tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("an event within 30 s")
        .expect("the subscription goes on")
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
    let mut subscription = client
        .subscribe(CHANNEL, ReplayFrom::NewOnly)
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
    subscription.disconnect().await;
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
    let mut all = client
        .subscribe(CHANNEL, ReplayFrom::AllRetained)
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
    let mut resumed = client
        .subscribe(CHANNEL, ReplayFrom::After(updates[0].replay_id))
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
    let mut subscription = client
        .subscribe(CHANNEL, ReplayFrom::NewOnly)
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
    assert_eq!(subscription.handshakes(), 2);
}

#[tokio::test]
async fn an_expired_session_mid_stream_is_renewed() {
    let org = streaming_org().await;
    let listener = org.client();
    let writer = org.client();
    let id = new_account(&writer, "Expiring Co").await;
    let mut subscription = listener
        .subscribe(CHANNEL, ReplayFrom::AllRetained)
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
    let mut subscription = client
        .subscribe(CHANNEL, ReplayFrom::AllRetained)
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
    let e = client
        .subscribe(CHANNEL, ReplayFrom::After(old))
        .await
        .expect_err("too old");
    match e {
        StreamError::ReplayIdUnavailable { replay_id, .. } => assert_eq!(replay_id, old),
        other => panic!("expected ReplayIdUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_channel_is_refused() {
    let org = streaming_org().await;
    let client = org.client();
    let e = client
        .subscribe("/data/NoSuchThingChangeEvent", ReplayFrom::NewOnly)
        .await
        .expect_err("refused");
    assert!(matches!(e, StreamError::Refused { .. }), "{e:?}");
}
