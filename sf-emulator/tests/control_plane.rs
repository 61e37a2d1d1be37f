//! The `/__emulator` control plane as a client sees its effects, over real HTTP: validation
//! rules, after-save updates, request faults (503/500 shares, latency), UNABLE_TO_LOCK_ROW,
//! session expiry, API limits, counters, the clock, reset — and clear errors for bad input.

mod common;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use sf_emulator::cdc::ChannelFilter;

use common::{status_json, Emu};

/// A control-plane call (no auth).
async fn ctl(e: &Emu, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = e
        .client
        .request(method, e.url(&format!("/__emulator{path}")));
    if let Some(b) = body {
        r = r.json(&b);
    }
    status_json(r.send().await.expect("control request")).await
}

async fn create_account(e: &Emu, body: Value) -> (u16, Value) {
    e.post(&e.data("/sobjects/Account"), body).await
}

#[tokio::test]
async fn validation_rule_rejects_matching_rest_creates() {
    let e = common::start().await;
    let (s, rule) = ctl(
        &e,
        Method::POST,
        "/validation-rules",
        Some(json!({
            "object": "account", "field": "Name", "op": "contains", "value": "test",
            "message": "Test accounts are not allowed", "errorDisplayField": "Name"
        })),
    )
    .await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(rule["object"], "Account");
    assert_eq!(rule["when"][0]["op"], "contains");

    let (s, v) = create_account(&e, json!({"Name": "my test corp"})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        v,
        json!([{
            "message": "Test accounts are not allowed",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Name"]
        }])
    );
    let (s, v) = create_account(&e, json!({"Name": "Acme"})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // Updates are checked too.
    let (s, v) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{id}")),
            json!({"Name": "test again"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v[0]["errorCode"], "FIELD_CUSTOM_VALIDATION_EXCEPTION");

    // A numeric rule without an error field is record-level.
    let (s, _) = ctl(
        &e,
        Method::POST,
        "/validation-rules",
        Some(json!({
            "object": "Account", "field": "AnnualRevenue", "op": "greater_than",
            "value": 1000000, "message": "Too big"
        })),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v) = create_account(&e, json!({"Name": "Big", "AnnualRevenue": 2000000})).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v[0]["message"], "Too big");
    assert_eq!(v[0]["fields"], json!([]));
    let (s, _) = create_account(&e, json!({"Name": "Small", "AnnualRevenue": 10})).await;
    assert_eq!(s, 201);

    let (s, list) = ctl(&e, Method::GET, "/validation-rules", None).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (s, v) = ctl(&e, Method::DELETE, "/validation-rules", None).await;
    assert_eq!((s, v), (200, json!({"deleted": 2})));
    let (s, _) = create_account(&e, json!({"Name": "test ok now"})).await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn validation_rule_input_errors_are_specific() {
    let e = common::start().await;
    let cases = [
        (
            json!({"object": "Nope", "field": "Name", "op": "equals", "value": "x", "message": "m"}),
            "Nope",
        ),
        (
            json!({"object": "Account", "field": "Colour", "op": "equals", "value": "x", "message": "m"}),
            "Account.Colour",
        ),
        (
            json!({"object": "Account", "field": "AnnualRevenue", "op": "greater_than", "value": "lots", "message": "m"}),
            "AnnualRevenue",
        ),
        (
            json!({"object": "Account", "field": "Name", "value": "x", "message": "m"}),
            "\"op\" is required",
        ),
    ];
    for (body, needle) in cases {
        let (s, v) = ctl(&e, Method::POST, "/validation-rules", Some(body)).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v[0]["errorCode"], "INVALID_REQUEST", "{v}");
        assert!(v[0]["message"].as_str().unwrap().contains(needle), "{v}");
    }
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/validation-rules",
        Some(json!({"object": "Account", "field": "Name", "op": "like", "message": "m"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "JSON_PARSER_ERROR");
    assert!(v[0]["message"].as_str().unwrap().contains("like"), "{v}");
}

#[tokio::test]
async fn after_save_update_is_a_further_change_of_the_same_transaction() {
    let e = common::start().await;
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/after-save",
        Some(json!({
            "object": "Account", "field": "Industry", "op": "equals", "value": "Banking",
            "set": {"Rating": "Hot"}
        })),
    )
    .await;
    assert_eq!(s, 201, "{v}");

    let (s, v) = create_account(&e, json!({"Name": "First Bank", "Industry": "Banking"})).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Account/{id}"))).await;
    assert_eq!(rec["Rating"], "Hot", "{rec}");
    let created = rec["CreatedDate"].as_str().unwrap().to_string();
    let modstamp = rec["SystemModstamp"].as_str().unwrap().to_string();
    assert!(modstamp > created, "{created} → {modstamp}");
    assert_eq!(rec["LastModifiedDate"], rec["SystemModstamp"]);

    // Not matching: no automation.
    let (_, v) = create_account(&e, json!({"Name": "Farm Co", "Industry": "Agriculture"})).await;
    let other = v["id"].as_str().unwrap().to_string();
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Account/{other}"))).await;
    assert_eq!(rec["Rating"], Value::Null);

    let org = &e.running.org;
    let events = org
        .cdc()
        .read_after(-2, &ChannelFilter::All, org.now_ms())
        .unwrap();
    let mine: Vec<_> = events
        .iter()
        .filter(|ev| ev.header.record_ids == vec![id.clone()])
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(mine[0].header.change_type, "CREATE");
    assert_eq!(mine[1].header.change_type, "UPDATE");
    // Automation runs in the write's transaction (CDC guide, ChangeEventHeader fields).
    assert_eq!(
        mine[0].header.transaction_key,
        mine[1].header.transaction_key
    );
    assert!(mine[1].header.sequence_number > mine[0].header.sequence_number);
    assert_eq!(mine[0].header.commit_number, mine[1].header.commit_number);
    assert_eq!(
        mine[0].header.commit_timestamp,
        mine[1].header.commit_timestamp
    );
    assert!(mine[1].replay_id > mine[0].replay_id);
    assert!(mine[1]
        .header
        .changed_fields
        .contains(&"Rating".to_string()));
    assert!(mine[1]
        .header
        .changed_fields
        .contains(&"LastModifiedDate".to_string()));
    assert_eq!(mine[1].payload["Rating"], "Hot");
    assert_eq!(mine[0].payload["Rating"], Value::Null);
    let others = events
        .iter()
        .filter(|ev| ev.header.record_ids == vec![other.clone()])
        .count();
    assert_eq!(others, 1);

    // An update into the condition fires it too; one already matching that changes nothing
    // does not publish again.
    let (s, _) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{other}")),
            json!({"Industry": "Banking"}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Account/{other}"))).await;
    assert_eq!(rec["Rating"], "Hot");
    let before = org.cdc().latest_replay_id();
    let (s, _) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{id}")),
            json!({"Phone": "555"}),
        )
        .await;
    assert_eq!(s, 204);
    let published = org
        .cdc()
        .read_after(before, &ChannelFilter::All, org.now_ms())
        .unwrap();
    assert_eq!(published.len(), 1, "{published:?}");

    let (_, list) = ctl(&e, Method::GET, "/after-save", None).await;
    assert_eq!(list[0]["set"], json!({"Rating": "Hot"}));
    let (s, v) = ctl(&e, Method::DELETE, "/after-save", None).await;
    assert_eq!((s, v), (200, json!({"deleted": 1})));

    let (s, v) = ctl(
        &e,
        Method::POST,
        "/after-save",
        Some(json!({"object": "Account", "set": {"Nope__c": 1}})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v[0]["message"].as_str().unwrap().contains("Nope__c"), "{v}");
}

async fn statuses(e: &Emu, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(e.get(&e.data("/limits")).await.0);
    }
    out
}

#[tokio::test]
async fn a_seeded_share_of_requests_fails_with_salesforce_bodies() {
    let e = common::start().await;
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"share_503": 0.3, "share_500": 0.2, "seed": 7})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let first = statuses(&e, 60).await;
    let n503 = first.iter().filter(|s| **s == 503).count();
    let n500 = first.iter().filter(|s| **s == 500).count();
    assert!((8..=30).contains(&n503), "{first:?}");
    assert!((4..=22).contains(&n500), "{first:?}");
    assert_eq!(
        n503 + n500 + first.iter().filter(|s| **s == 200).count(),
        60
    );

    // Same seed, same sequence.
    ctl(&e, Method::POST, "/faults", Some(json!({"seed": 7}))).await;
    assert_eq!(statuses(&e, 60).await, first);

    let (_, v) = ctl(&e, Method::GET, "/faults", None).await;
    assert_eq!(v["injected"]["503"], 2 * n503);
    assert_eq!(v["injected"]["500"], 2 * n500);

    ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"share_503": 1.0, "share_500": 0.0})),
    )
    .await;
    let (s, v) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 503);
    assert_eq!(v[0]["errorCode"], "SERVER_UNAVAILABLE", "{v}");
    // The control plane is never faulted.
    let (s, _) = ctl(&e, Method::GET, "/counters", None).await;
    assert_eq!(s, 200);
    ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"share_503": 0.0, "share_500": 1.0})),
    )
    .await;
    let (s, v) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 500);
    assert_eq!(v[0]["errorCode"], "UNKNOWN_EXCEPTION", "{v}");
    assert!(v[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("An unexpected error occurred"));

    // Only the listed paths.
    ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"paths": ["/services/data/v59.0/sobjects"]})),
    )
    .await;
    assert_eq!(e.get(&e.data("/limits")).await.0, 200);
    assert_eq!(e.get(&e.data("/sobjects")).await.0, 500);

    let (s, v) = ctl(&e, Method::DELETE, "/faults", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["share_500"], 0.0);
    assert_eq!(e.get(&e.data("/sobjects")).await.0, 200);

    let (s, v) = ctl(&e, Method::POST, "/faults", Some(json!({"share_503": 1.5}))).await;
    assert_eq!(s, 400);
    assert!(v[0]["message"].as_str().unwrap().contains("share_503"));
    let (s, v) = ctl(&e, Method::POST, "/faults", Some(json!({"latency": 5}))).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "JSON_PARSER_ERROR");
}

#[tokio::test]
async fn latency_applies_to_api_requests() {
    let e = common::start().await;
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"latency_ms": 300})),
    )
    .await;
    assert_eq!((s, v["latency_ms"].clone()), (200, json!(300)));
    let t = Instant::now();
    assert_eq!(e.get(&e.data("/limits")).await.0, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    ctl(&e, Method::DELETE, "/faults", None).await;
    let t = Instant::now();
    assert_eq!(e.get(&e.data("/limits")).await.0, 200);
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn unable_to_lock_row_for_exactly_n_writes() {
    let e = common::start().await;
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"unable_to_lock_row": 2})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["unable_to_lock_row"], 2);
    for _ in 0..2 {
        let (s, v) = create_account(&e, json!({"Name": "Locked"})).await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    }
    let (s, v) = create_account(&e, json!({"Name": "Free"})).await;
    assert_eq!(s, 201, "{v}");
    let (_, v) = ctl(&e, Method::GET, "/faults", None).await;
    assert_eq!(v["unable_to_lock_row"], 0);
}

#[tokio::test]
async fn expired_sessions_answer_401() {
    let e = common::start().await;
    assert_eq!(e.get(&e.data("/limits")).await.0, 200);
    let (s, _) = ctl(&e, Method::POST, "/sessions/expire", None).await;
    assert_eq!(s, 200);
    let (s, v) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 401);
    assert_eq!(
        v,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );

    // The same through the faults endpoint.
    let e2 = common::start().await;
    ctl(
        &e2,
        Method::POST,
        "/faults",
        Some(json!({"expire_sessions": true})),
    )
    .await;
    assert_eq!(e2.get(&e2.data("/limits")).await.0, 401);

    // Session lifetime: a short one ends with the emulated clock.
    let e3 = common::start().await;
    let (s, v) = ctl(
        &e3,
        Method::PUT,
        "/sessions",
        Some(json!({"lifetime_seconds": 60})),
    )
    .await;
    assert_eq!((s, v), (200, json!({"lifetime_seconds": 60})));
    let mut e3 = e3;
    e3.token = e3.running.org.create_session().token;
    assert_eq!(e3.get(&e3.data("/limits")).await.0, 200);
    ctl(
        &e3,
        Method::POST,
        "/clock",
        Some(json!({"advance_ms": 61_000})),
    )
    .await;
    assert_eq!(e3.get(&e3.data("/limits")).await.0, 401);
}

#[tokio::test]
async fn api_limit_answers_403_with_limit_info_and_counters_count_endpoints() {
    let e = common::start().await;
    let (s, _) = ctl(&e, Method::DELETE, "/counters", None).await;
    assert_eq!(s, 200);
    let (s, v) = ctl(
        &e,
        Method::PUT,
        "/limits",
        Some(json!({"DailyApiRequests": 3})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["DailyApiRequests"], json!({"Max": 3, "Remaining": 3}));
    for n in 1..=3 {
        let r = e.req(Method::GET, &e.data("/limits"), None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["Sforce-Limit-Info"],
            format!("api-usage={n}/3").as_str()
        );
    }
    let r = e.req(Method::GET, &e.data("/sobjects"), None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["Sforce-Limit-Info"], "api-usage=3/3");
    let (_, v) = status_json(r).await;
    assert_eq!(v[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED", "{v}");

    let (s, v) = ctl(&e, Method::GET, "/counters", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        v["DailyApiRequests"],
        json!({"Max": 3, "Remaining": 0, "Used": 3})
    );
    assert_eq!(v["endpoints"]["GET /services/data/{version}/limits"], 3);
    assert!(v["endpoints"]
        .get("GET /services/data/{version}/sobjects")
        .is_none());

    let (s, _) = ctl(&e, Method::DELETE, "/counters", None).await;
    assert_eq!(s, 200);
    assert_eq!(e.get(&e.data("/sobjects")).await.0, 200);
    let (_, v) = ctl(&e, Method::GET, "/counters", None).await;
    assert_eq!(v["DailyApiRequests"]["Used"], 1);
    assert_eq!(v["endpoints"]["GET /services/data/{version}/sobjects"], 1);

    // Other limits can be set; bad names and values are refused.
    let (s, v) = ctl(
        &e,
        Method::PUT,
        "/limits",
        Some(json!({"DailyBulkV2QueryJobs": 5})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["DailyBulkV2QueryJobs"]["Max"], 5);
    let (s, v) = ctl(&e, Method::PUT, "/limits", Some(json!({"Daily": 5}))).await;
    assert_eq!(s, 400);
    assert!(v[0]["message"].as_str().unwrap().contains("Daily"));
    let (s, _) = ctl(
        &e,
        Method::PUT,
        "/limits",
        Some(json!({"DailyApiRequests": -1})),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn clock_advances_and_never_goes_back() {
    let e = common::start().await;
    let (s, before) = ctl(&e, Method::GET, "/clock", None).await;
    assert_eq!(s, 200);
    let (s, after) = ctl(
        &e,
        Method::POST,
        "/clock",
        Some(json!({"advance_ms": 3_600_000})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(after["offset_ms"], 3_600_000);
    let gained = after["now_ms"].as_i64().unwrap() - before["now_ms"].as_i64().unwrap();
    assert!(gained >= 3_600_000, "{gained}");
    // Records written now carry the emulated time.
    let (_, v) = create_account(&e, json!({"Name": "Future"})).await;
    let id = v["id"].as_str().unwrap();
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Account/{id}"))).await;
    let created = chrono::DateTime::parse_from_str(
        rec["CreatedDate"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S%.3f%z",
    )
    .unwrap();
    assert!(created.timestamp_millis() >= after["now_ms"].as_i64().unwrap() - 1000);

    let (s, v) = ctl(&e, Method::POST, "/clock", Some(json!({"advance_ms": -5}))).await;
    assert_eq!(s, 400);
    assert!(v[0]["message"]
        .as_str()
        .unwrap()
        .contains("never goes back"));
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/clock",
        Some(json!({"advance_ms": i64::MAX})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v[0]["message"].as_str().unwrap().contains("100 years"));
    let (s, _) = ctl(
        &e,
        Method::PUT,
        "/sessions",
        Some(json!({"lifetime_seconds": u64::MAX})),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn reset_and_seed() {
    let e = common::start().await;
    let (s, v) = ctl(
        &e,
        Method::POST,
        "/seed",
        Some(json!({"object": "Account", "count": 500, "seed": 1})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["created"], 500);
    let first = v["firstId"].as_str().unwrap().to_string();
    let (s, rec) = e.get(&e.data(&format!("/sobjects/Account/{first}"))).await;
    assert_eq!(s, 200);
    assert!(rec["Name"].as_str().is_some());

    ctl(
        &e,
        Method::POST,
        "/validation-rules",
        Some(json!({"object": "Account", "field": "Name", "op": "not_null", "message": "no"})),
    )
    .await;
    ctl(&e, Method::POST, "/faults", Some(json!({"latency_ms": 1}))).await;
    let (s, _) = ctl(&e, Method::POST, "/reset", None).await;
    assert_eq!(s, 200);
    let (s, _) = e.get(&e.data(&format!("/sobjects/Account/{first}"))).await;
    assert_eq!(s, 404);
    let (_, rules) = ctl(&e, Method::GET, "/validation-rules", None).await;
    assert_eq!(rules, json!([]));
    let (_, f) = ctl(&e, Method::GET, "/faults", None).await;
    assert_eq!(f["latency_ms"], 0);

    let (s, v) = ctl(
        &e,
        Method::POST,
        "/seed",
        Some(json!({"object": "Nope", "count": 5})),
    )
    .await;
    assert_eq!(s, 404);
    assert!(v[0]["message"].as_str().unwrap().contains("Nope"));
    let (s, v) = ctl(&e, Method::POST, "/seed", None).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "JSON_PARSER_ERROR");
}

#[tokio::test]
async fn dropping_streaming_connections_forgets_cometd_clients() {
    let e = common::start().await;
    let cometd = |batch: Value| {
        e.client
            .post(e.url("/cometd/59.0"))
            .header("Authorization", format!("OAuth {}", e.token))
            .json(&batch)
            .send()
    };
    let (s, v) = status_json(
        cometd(json!([{"channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["long-polling"], "id": "1"}]))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let client_id = v[0]["clientId"].as_str().unwrap().to_string();

    let (s, v) = ctl(
        &e,
        Method::POST,
        "/faults",
        Some(json!({"drop_streaming": true})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["dropped_streaming_clients"], 1);

    let (_, v) = status_json(
        cometd(json!([{"channel": "/meta/connect", "clientId": client_id,
            "connectionType": "long-polling", "id": "2"}]))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v[0]["successful"], false, "{v}");
    assert_eq!(v[0]["error"], "403::Unknown client");
    assert_eq!(v[0]["advice"]["reconnect"], "handshake");
}

#[tokio::test]
async fn a_custom_field_added_at_runtime_is_described_written_queried_and_in_change_events() {
    let e = common::start().await;
    let (s, before) = create_account(&e, json!({"Name": "Before the field"})).await;
    assert_eq!(s, 201, "{before}");
    let before = before["id"].as_str().unwrap().to_string();
    let (_, old_describe) = e.get(&e.data("/sobjects/Account/describe")).await;
    let old_count = old_describe["fields"].as_array().unwrap().len();

    // Before the field exists Salesforce refuses it.
    let (s, refused) = create_account(&e, json!({"Name": "Too early", "Tier__c": "Gold"})).await;
    assert_eq!(s, 400, "{refused}");
    assert_eq!(refused[0]["errorCode"], "INVALID_FIELD");

    let (s, added) = ctl(
        &e,
        Method::POST,
        "/schema/Account/fields",
        Some(json!({"name": "Tier__c", "type": "string", "length": 40, "label": "Tier"})),
    )
    .await;
    assert_eq!(s, 201, "{added}");
    assert_eq!(added["object"], "Account");
    assert_eq!(added["fields"], old_count + 1);
    assert_eq!(added["field"]["custom"], true);
    assert_eq!(added["field"]["soapType"], "xsd:string");
    assert_eq!(added["field"]["length"], 40);
    assert_eq!(added["schemaId"].as_str().unwrap().len(), 22);

    // The describe lists it last, with a describe entry's keys; the global describe still
    // lists the object.
    let (_, describe) = e.get(&e.data("/sobjects/Account/describe")).await;
    let fields = describe["fields"].as_array().unwrap();
    assert_eq!(fields.len(), old_count + 1);
    let tier = fields.last().unwrap();
    assert_eq!(tier["name"], "Tier__c");
    assert_eq!(tier["label"], "Tier");
    assert_eq!(
        tier.as_object().unwrap().len(),
        fields[0].as_object().unwrap().len(),
        "the new entry has every key a describe field has"
    );

    // Writes accept it and enforce its metadata; SOQL selects and filters on it; records
    // stored before read it as null.
    let (s, long) = create_account(&e, json!({"Name": "Long", "Tier__c": "x".repeat(41)})).await;
    assert_eq!(s, 400, "{long}");
    assert_eq!(long[0]["errorCode"], "STRING_TOO_LONG");
    let (s, gold) = create_account(&e, json!({"Name": "Gold Co", "Tier__c": "Gold"})).await;
    assert_eq!(s, 201, "{gold}");
    let gold = gold["id"].as_str().unwrap().to_string();
    let (s, body) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{before}")),
            json!({"Tier__c": "Silver"}),
        )
        .await;
    assert_eq!(s, 204, "{body}");
    let (_, read) = e
        .get(&e.data(&format!("/sobjects/Account/{gold}?fields=Tier__c")))
        .await;
    assert_eq!(read["Tier__c"], "Gold");
    let (s, q) = e
        .get(
            &e.data(
                "/query?q=SELECT+Name,Tier__c+FROM+Account+WHERE+Tier__c+!=+null+ORDER+BY+Name",
            ),
        )
        .await;
    assert_eq!(s, 200, "{q}");
    let rows: Vec<(String, String)> = q["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["Name"].as_str().unwrap().to_string(),
                r["Tier__c"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("Before the field".to_string(), "Silver".to_string()),
            ("Gold Co".to_string(), "Gold".to_string())
        ]
    );
    let (s, others) = create_account(&e, json!({"Name": "No tier"})).await;
    assert_eq!(s, 201, "{others}");
    let (_, q) = e
        .get(&e.data("/query?q=SELECT+Tier__c+FROM+Account+WHERE+Name+=+'No+tier'"))
        .await;
    assert_eq!(q["records"][0]["Tier__c"], Value::Null);

    // CometD events carry it (and name it in changedFields); their schema id is the
    // Pub/Sub one, new after the change.
    let now = e.running.org.now_ms();
    let events = e
        .running
        .org
        .cdc()
        .read_after(-2, &ChannelFilter::All, now)
        .unwrap();
    let messages: Vec<Value> = events
        .iter()
        .map(|ev| ev.message("/data/ChangeEvents"))
        .collect();
    let first = &messages[0]["data"];
    assert_ne!(
        first["schema"], added["schemaId"],
        "published before the field"
    );
    assert!(first["payload"].get("Tier__c").is_none());
    let create = &messages[1]["data"];
    assert_eq!(create["schema"], added["schemaId"]);
    assert_eq!(create["payload"]["Tier__c"], "Gold");
    let update = &messages[2]["data"];
    assert_eq!(update["payload"]["Tier__c"], "Silver");
    assert!(update["payload"]["ChangeEventHeader"]["changedFields"]
        .as_array()
        .unwrap()
        .contains(&json!("Tier__c")));

    // A custom lookup: its relationship (`__r`) works in SOQL, its integrity is enforced.
    let (s, lookup) = ctl(
        &e,
        Method::POST,
        "/schema/Account/fields",
        Some(
            json!({"name": "Partner_Account__c", "type": "reference", "referenceTo": ["Account"]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{lookup}");
    assert_eq!(lookup["field"]["relationshipName"], "Partner_Account__r");
    let (s, child) = create_account(
        &e,
        json!({"Name": "Partnered", "Partner_Account__c": gold.clone()}),
    )
    .await;
    assert_eq!(s, 201, "{child}");
    let (_, q) = e
        .get(
            &e.data(
                "/query?q=SELECT+Partner_Account__r.Name+FROM+Account+WHERE+Name+=+'Partnered'",
            ),
        )
        .await;
    assert_eq!(
        q["records"][0]["Partner_Account__r"]["Name"], "Gold Co",
        "{q}"
    );
    let (s, dangling) = create_account(
        &e,
        json!({"Name": "Dangling", "Partner_Account__c": "001000000000000AAA"}),
    )
    .await;
    assert_eq!(s, 400, "{dangling}");

    // Bad input: clear errors, nothing changed.
    for (body, code, status) in [
        (
            json!({"name": "Tier__c", "type": "string"}),
            "INVALID_FIELD",
            400,
        ),
        (
            json!({"name": "Tier", "type": "string"}),
            "INVALID_FIELD",
            400,
        ),
        (
            json!({"name": "Geo__c", "type": "location"}),
            "INVALID_FIELD",
            400,
        ),
        (json!({"type": "string"}), "INVALID_FIELD", 400),
    ] {
        let (s, err) = ctl(&e, Method::POST, "/schema/Account/fields", Some(body)).await;
        assert_eq!(s, status, "{err}");
        assert_eq!(err[0]["errorCode"], code, "{err}");
    }
    let (s, err) = ctl(
        &e,
        Method::POST,
        "/schema/Nope/fields",
        Some(json!({"name": "A__c", "type": "string"})),
    )
    .await;
    assert_eq!(s, 404, "{err}");
    let (_, describe) = e.get(&e.data("/sobjects/Account/describe")).await;
    assert_eq!(describe["fields"].as_array().unwrap().len(), old_count + 2);
}
