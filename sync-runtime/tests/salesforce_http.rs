//! Sending calls: 503 storms and lock errors retried to success (every attempt counted), definite
//! errors handed back at once, the org reserve and per-mapping budgets refusing calls before the
//! org runs out, `Sforce-Call-Options` on every request and `Sforce-Limit-Info` read from answers.

mod salesforce_support;

use std::sync::{Arc, Mutex};

use reqwest::Method;
use salesforce_support::{fast_retries, org, password_credentials};
use serde_json::json;
use sync_runtime::salesforce::{CallKind, Client, Config, ErrorClass, SfErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_503_storm_is_retried_to_success_and_every_attempt_is_counted() {
    let org = org().await;
    let client = org.client();
    let expected = client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("count");
    org.post(
        "faults",
        json!({"share_503": 0.5, "seed": 7, "paths": ["/services/data"]}),
    )
    .await;
    for _ in 0..20 {
        assert_eq!(
            client
                .count("SELECT COUNT() FROM Account")
                .await
                .expect("retried to success"),
            expected
        );
    }
    let faults = org.control(Method::GET, "faults", None).await;
    let injected = faults["injected"]["503"].as_u64().expect("injected 503s");
    assert!(injected > 0, "the storm happened: {faults}");
    assert_eq!(
        client.call_counts().get(CallKind::Query),
        1 + 20 + injected,
        "each failed attempt is a call"
    );
}

#[tokio::test]
async fn a_lock_error_is_retried_until_the_write_goes_through() {
    let org = org().await;
    let client = org.client();
    client.login().await.expect("login");
    org.post("faults", json!({"unable_to_lock_row": 2})).await;
    let id = client
        .create("Account", &json!({"Name": "Locked Out Ltd"}))
        .await
        .expect("created after two lock errors");
    assert_eq!(client.call_counts().get(CallKind::Other), 3);
    let record = client
        .get_record("Account", &id, &["Name"])
        .await
        .expect("read back");
    assert_eq!(record["Name"], "Locked Out Ltd");
}

#[tokio::test]
async fn a_definite_error_is_not_retried() {
    let org = org().await;
    let client = org.client();
    let e = client
        .create("Account", &json!({"Name": "X", "No_Such_Field__c": 1}))
        .await
        .expect_err("unknown field");
    assert_eq!(e.class, ErrorClass::Definite);
    assert_eq!(e.status, Some(400));
    assert_eq!(client.call_counts().get(CallKind::Other), 1, "sent once");

    let e = client
        .query("SELECT Id, Gone__c FROM Account")
        .await
        .expect_err("unknown column");
    assert!(e.is_schema_change(), "{e}");
    assert_eq!(client.call_counts().get(CallKind::Query), 1);
}

#[tokio::test]
async fn the_org_reserve_stops_calls_before_the_org_is_exhausted() {
    let org = org().await;
    org.control(Method::DELETE, "counters", None).await;
    org.control(Method::PUT, "limits", Some(json!({"DailyApiRequests": 12})))
        .await;
    let mut config = org.config();
    config.org_reserve = 4;
    let client = Client::new(config).expect("client");
    let mut ok = 0;
    let error = loop {
        match client.count("SELECT COUNT() FROM Contact").await {
            Ok(_) => ok += 1,
            Err(e) => break e,
        }
        assert!(ok < 20, "never refused");
    };
    assert!(error.is_budget(), "{error}");
    assert_eq!(error.kind, SfErrorKind::BudgetExhausted);
    assert_eq!(ok, 8, "12 calls a day, 4 kept in reserve");
    let usage = client
        .api_usage()
        .expect("usage read from Sforce-Limit-Info");
    assert_eq!((usage.used, usage.max), (8, 12));
    let counters = org.control(Method::GET, "counters", None).await;
    assert_eq!(counters["DailyApiRequests"]["Remaining"], 4, "{counters}");
    assert_eq!(
        client.call_counts().get(CallKind::Query),
        8,
        "the refusal cost no call"
    );
}

#[tokio::test]
async fn a_mapping_budget_refuses_only_that_mappings_calls() {
    let org = org().await;
    let client = org.client();
    let accounts = client.scoped("Account", 3);
    for _ in 0..3 {
        accounts
            .count("SELECT COUNT() FROM Account")
            .await
            .expect("within budget");
    }
    let e = accounts
        .count("SELECT COUNT() FROM Account")
        .await
        .expect_err("over budget");
    assert!(e.is_budget() && !e.is_retryable(), "{e}");
    assert!(e.message.contains("Account"), "{e}");
    let usage = accounts.mapping_usage().expect("scoped");
    assert_eq!((usage.used(), usage.max_daily_calls), (3, 3));

    // Another handle on the same mapping shares the budget; other mappings and the unscoped
    // client are not limited by it.
    assert!(client
        .scoped("Account", 3)
        .count("SELECT COUNT() FROM Account")
        .await
        .is_err());
    client
        .scoped("Contact", 10)
        .count("SELECT COUNT() FROM Contact")
        .await
        .expect("another mapping");
    client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("unscoped");
    // Raising the budget lets the mapping go on.
    client
        .scoped("Account", 5)
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("raised budget");
    assert_eq!(client.call_counts().get(CallKind::Query), 6);
}

/// A one-request-per-connection HTTP server that records request heads and answers Salesforce's
/// token and query shapes.
async fn recording_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (recorded, instance) = (heads.clone(), base.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let body = if head.starts_with("POST /services/oauth2/token") {
                json!({"access_token": "00Dx!token", "instance_url": instance, "token_type": "Bearer"})
            } else {
                json!({"totalSize": 0, "done": true, "records": []})
            }
            .to_string();
            recorded.lock().expect("heads").push(head);
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSforce-Limit-Info: api-usage=7/100\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (base, heads)
}

#[tokio::test]
async fn every_request_carries_sforce_call_options_and_limit_info_is_read() {
    let (base, heads) = recording_server().await;
    let mut config = Config::new(base, password_credentials());
    config.retry = fast_retries();
    config.call_client = "forcesync-test".to_owned();
    config.org_reserve = 5;
    let client = Client::new(config).expect("client");
    client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("count");
    client.query("SELECT Id FROM Account").await.expect("query");
    let heads = heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 3, "login and two queries");
    for head in &heads {
        assert!(
            head.to_ascii_lowercase()
                .contains("\r\nsforce-call-options: client=forcesync-test\r\n"),
            "{head}"
        );
    }
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .contains("\r\nauthorization: bearer 00dx!token\r\n"),
        "{}",
        heads[1]
    );
    let usage = client.api_usage().expect("usage");
    assert_eq!((usage.used, usage.max, usage.remaining()), (7, 100, 93));
}

#[tokio::test]
async fn a_server_error_on_a_write_is_ambiguous_and_left_to_the_caller() {
    let org = org().await;
    let client = org.client();
    client.login().await.expect("login");
    org.post(
        "faults",
        json!({"share_500": 1.0, "seed": 1, "paths": ["/services/data"]}),
    )
    .await;
    let e = client
        .create("Account", &json!({"Name": "Maybe Written"}))
        .await
        .expect_err("500");
    assert_eq!(e.class, ErrorClass::Ambiguous);
    assert_eq!(e.status, Some(500));
    assert_eq!(client.call_counts().get(CallKind::Other), 1, "not resent");

    // The same failure on a read is retried (30 times with the test policy), then handed back.
    let e = client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect_err("500 every time");
    assert_eq!(e.class, ErrorClass::Indefinite);
    assert_eq!(client.call_counts().get(CallKind::Query), 31);
}
