//! The Pub/Sub API client against the emulated org over real gRPC: a REST change arrives
//! decoded from Avro into the CDC payload the engine applies; a burst of changes never stalls
//! flow control; a server-side drop (`UNAVAILABLE` mid-stream) and a silent stream are
//! reconnected, resuming after the last event handed out with nothing lost or handed out twice;
//! a corrupt replay id is reported for the fallback to polling; an endpoint without the Pub/Sub
//! API is reported unreachable (the engine then streams over CometD).

mod salesforce_support;

use std::time::Duration;

use salesforce_support::{org_with, Org};
use serde_json::{json, Value};
use sync_runtime::adapter::{ChangeEventHeader, ChangeType};
use sync_runtime::salesforce::pubsub::{PubSubError, PubSubEvent, PubSubPolicy, PubSubStart};
use sync_runtime::salesforce::{CallKind, Client};

const TOPIC: &str = "/data/AccountChangeEvent";

async fn pubsub_org(keepalive_ms: u64) -> Org {
    org_with(sf_emulator::server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        pubsub_listen: Some("127.0.0.1:0".parse().expect("addr")),
        pubsub_keepalive_ms: keepalive_ms,
        seed: Some("demo".to_owned()),
        ..Default::default()
    })
    .await
}

fn policy(org: &Org) -> PubSubPolicy {
    PubSubPolicy {
        endpoint: org.emulator.pubsub_url.clone().expect("Pub/Sub served"),
        reconnect: salesforce_support::fast_retries(),
        silence: Duration::from_secs(10),
        ..PubSubPolicy::default()
    }
}

async fn next(events: &mut sync_runtime::salesforce::pubsub::PubSubSubscription) -> PubSubEvent {
    tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("an event within 30 s")
        .expect("the subscription goes on")
}

fn names(events: &[PubSubEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let payload = e.payload.as_ref().expect("a readable payload");
            payload["Name"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

async fn create(client: &Client, names: &[String]) {
    for chunk in names.chunks(200) {
        let records: Vec<Value> = chunk.iter().map(|n| json!({"Name": n})).collect();
        let results = client
            .create_records("Account", &records)
            .await
            .expect("created");
        assert_eq!(results.len(), chunk.len());
    }
}

#[tokio::test]
async fn a_rest_update_arrives_decoded_from_avro() {
    let org = pubsub_org(270_000).await;
    let client = org.client();
    let id = client
        .create("Account", &json!({"Name": "Avro Co", "Phone": "555-0100"}))
        .await
        .expect("create");
    let mut events = client
        .pubsub_subscribe(TOPIC, PubSubStart::Latest, policy(&org))
        .await
        .expect("subscribed");
    client
        .update(
            "Account",
            &id,
            &json!({"Name": "Avro Co (renamed)", "Phone": null}),
        )
        .await
        .expect("update");
    let event = next(&mut events).await;
    assert_eq!(event.replay_id.len(), 8);
    let payload = event.payload.expect("decoded");
    let header = ChangeEventHeader::from_payload(&payload).expect("a header");
    assert_eq!(header.change_type, ChangeType::Update);
    assert_eq!(header.record_ids, vec![id]);
    assert!(header.commit_number > 1 << 53, "exact beyond 2^53");
    assert!(header.changed_fields.contains(&"Name".to_string()));
    assert_eq!(header.nulled_fields, vec!["Phone".to_string()]);
    assert_eq!(payload["Name"], "Avro Co (renamed)");
    assert_eq!(payload["Phone"], Value::Null, "nulled: present as null");
    assert!(
        payload.get("Website").is_none(),
        "unchanged: absent, as over CometD"
    );
}

#[tokio::test]
async fn a_burst_never_stalls_and_a_drop_resumes_without_loss_or_duplicates() {
    let org = pubsub_org(270_000).await;
    let client = org.client();
    let mut events = client
        .pubsub_subscribe(TOPIC, PubSubStart::Latest, policy(&org))
        .await
        .expect("subscribed");
    let first: Vec<String> = (0..1_000).map(|i| format!("Burst {i:04}")).collect();
    create(&client, &first).await;
    let mut got = Vec::new();
    for _ in 0..600 {
        got.push(next(&mut events).await);
    }
    // The server side drops every subscription (UNAVAILABLE) in the middle of the burst.
    let dropped = org.post("faults/streaming/drop", json!({})).await;
    assert_eq!(dropped["droppedSubscriptions"], 1);
    let second: Vec<String> = (0..10).map(|i| format!("After {i}")).collect();
    create(&client, &second).await;
    for _ in 0..410 {
        got.push(next(&mut events).await);
    }
    let expected: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(names(&got), expected, "every change once, in order");
    let replay_ids: std::collections::BTreeSet<_> = got.iter().map(|e| &e.replay_id).collect();
    assert_eq!(replay_ids.len(), got.len());
}

#[tokio::test]
async fn a_silent_stream_is_reconnected_by_the_watchdog() {
    // No keepalive for a minute: the watchdog (300 ms here) notices first.
    let org = pubsub_org(60_000).await;
    let client = org.client();
    let mut policy = policy(&org);
    policy.silence = Duration::from_millis(300);
    let mut events = client
        .pubsub_subscribe(TOPIC, PubSubStart::Latest, policy)
        .await
        .expect("subscribed");
    let before = client.call_counts().get(CallKind::Streaming);
    let waiting = tokio::spawn(async move {
        let event = next(&mut events).await;
        (event, events)
    });
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    create(&client, &["Late".to_string()]).await;
    let (event, _events) = waiting.await.expect("the waiting task");
    assert_eq!(names(&[event]), vec!["Late".to_string()]);
    assert!(
        client.call_counts().get(CallKind::Streaming) >= before + 2,
        "the silent stream was reopened"
    );
}

#[tokio::test]
async fn a_corrupt_replay_id_is_reported_for_the_fallback() {
    let org = pubsub_org(270_000).await;
    let client = org.client();
    let refused = client
        .pubsub_subscribe(
            TOPIC,
            PubSubStart::After(b"not a replay id".to_vec()),
            policy(&org),
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(refused, PubSubError::ReplayIdUnavailable { ref message } if message.contains("replayid.corrupted")),
        "{refused:?}"
    );
    let unknown = client
        .pubsub_subscribe("/data/NopeChangeEvent", PubSubStart::Latest, policy(&org))
        .await
        .expect_err("refused");
    assert!(
        matches!(unknown, PubSubError::Refused { .. }),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn an_endpoint_without_the_pubsub_api_is_reported_unreachable_for_the_cometd_fallback() {
    let org = pubsub_org(270_000).await;
    let client = org.client();
    // Nothing listening there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    // An HTTP server that is not the Pub/Sub API (the org's REST listener).
    let not_grpc = org.emulator.base_url.clone();
    for endpoint in [nowhere, not_grpc] {
        let policy = PubSubPolicy {
            endpoint: endpoint.clone(),
            ..policy(&org)
        };
        // Refused when the stream is opened, or (an HTTP server answering only once the stream
        // runs) on its first read.
        let refused = match client
            .pubsub_subscribe(TOPIC, PubSubStart::Latest, policy)
            .await
        {
            Err(e) => e,
            Ok(mut events) => tokio::time::timeout(Duration::from_secs(30), events.next())
                .await
                .expect("an answer within 30 s")
                .expect_err("no Pub/Sub API there"),
        };
        assert!(
            matches!(refused, PubSubError::Unreachable { ref message } if message.contains(&endpoint)),
            "{endpoint}: {refused:?}"
        );
    }
}
