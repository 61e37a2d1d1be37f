//! The Streaming API over real HTTP, driven like a CometD client: handshake, subscribe with the
//! replay extension, long-polling connects receiving CDC events from REST writes, replay from
//! -2 / a stored id / a too-old id, client expiry, authentication errors and fault hooks.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sf_emulator::server::{start, Config, RunningEmulator};

struct Emulator {
    emu: RunningEmulator,
    token: String,
    http: reqwest::Client,
    /// The `BAYEUX_BROWSER` cookie of the last handshake, sent back as HTTP clients do.
    cookie: std::sync::Mutex<Option<String>>,
}

async fn emulator(config: Config) -> Emulator {
    let emu = start(config).await.expect("the emulator starts");
    let http = reqwest::Client::new();
    let body: Value = http
        .post(format!("{}/services/oauth2/token", emu.base_url))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "forcesync"),
            ("client_secret", "forcesync"),
            ("username", "admin@example.com"),
            ("password", "forcesync"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Emulator {
        token: body["access_token"].as_str().unwrap().to_string(),
        emu,
        http,
        cookie: std::sync::Mutex::new(None),
    }
}

impl Emulator {
    /// Posts one Bayeux batch with `Authorization: OAuth <token>` (jsforce's header).
    async fn bayeux(
        &self,
        token: &str,
        batch: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<Value>) {
        let mut request = self
            .http
            .post(format!("{}/cometd/59.0", self.emu.base_url))
            .header("Authorization", format!("OAuth {token}"))
            .json(&batch);
        let cookie = self.cookie.lock().unwrap().clone();
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default().to_string();
            *self.cookie.lock().unwrap() = Some(pair);
        }
        let body: Value = response.json().await.unwrap();
        (
            status,
            headers,
            body.as_array().expect("a JSON array").clone(),
        )
    }

    async fn send(&self, batch: Value) -> Vec<Value> {
        let (status, _, replies) = self.bayeux(&self.token, batch).await;
        assert_eq!(status, StatusCode::OK);
        replies
    }

    async fn handshake(&self) -> String {
        let replies = self
            .send(
                json!([{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0",
                "supportedConnectionTypes":["websocket","long-polling"],"id":"1"}]),
            )
            .await;
        assert_eq!(replies[0]["successful"], true, "{replies:?}");
        replies[0]["clientId"].as_str().unwrap().to_string()
    }

    async fn subscribe(&self, client_id: &str, channel: &str, replay: Option<Value>) -> Value {
        let mut message = json!({"channel":"/meta/subscribe","clientId":client_id,
            "subscription":channel,"id":"2"});
        if let Some(replay) = replay {
            message["ext"] = json!({"replay": {channel: replay}});
        }
        self.send(json!([message])).await.remove(0)
    }

    async fn connect(&self, client_id: &str) -> Vec<Value> {
        self.send(json!([{"channel":"/meta/connect","clientId":client_id,
            "connectionType":"long-polling","id":"3"}]))
            .await
    }

    /// Handshake, subscribe, and the first connect (answered at once): ready to hold connects.
    async fn ready_client(&self, channel: &str, replay: Option<Value>) -> String {
        let client_id = self.handshake().await;
        let reply = self.subscribe(&client_id, channel, replay).await;
        assert_eq!(reply["successful"], true, "{reply}");
        let first = self.connect(&client_id).await;
        assert_eq!(first.last().unwrap()["channel"], "/meta/connect");
        client_id
    }

    async fn rest(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(
                method,
                format!("{}/services/data/v59.0{path}", self.emu.base_url),
            )
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        if response.status() == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response.json().await.unwrap()
        }
    }

    async fn create_account(&self, name: &str) -> String {
        let body = self
            .rest(
                reqwest::Method::POST,
                "/sobjects/Account",
                json!({"Name": name, "Industry": "Energy"}),
            )
            .await;
        body["id"].as_str().unwrap().to_string()
    }
}

/// The CDC events of a connect reply (everything but the `/meta/connect` reply, which is last).
fn events(replies: &[Value]) -> Vec<Value> {
    let (last, events) = replies.split_last().unwrap();
    assert_eq!(last["channel"], "/meta/connect");
    assert_eq!(last["successful"], true, "{last}");
    events.to_vec()
}

fn header(event: &Value) -> &Value {
    &event["data"]["payload"]["ChangeEventHeader"]
}

#[tokio::test]
async fn handshake_answers_like_salesforce() {
    let emu = emulator(Config::ephemeral()).await;
    let (status, headers, replies) = emu
        .bayeux(
            &emu.token,
            json!([{"channel":"/meta/handshake","version":"1.0","minimumVersion":"1.0",
                "supportedConnectionTypes":["websocket","long-polling"],"id":"0"}]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let reply = &replies[0];
    assert_eq!(reply["channel"], "/meta/handshake");
    assert_eq!(reply["id"], "0");
    assert_eq!(reply["successful"], true);
    assert_eq!(reply["version"], "1.0");
    assert_eq!(reply["supportedConnectionTypes"], json!(["long-polling"]));
    assert_eq!(
        reply["ext"],
        json!({"replay": true, "payload.format": true})
    );
    assert!(reply["clientId"].as_str().unwrap().len() >= 20);
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("BAYEUX_BROWSER="), "{cookie}");
}

#[tokio::test]
async fn rest_writes_reach_a_held_connect_as_create_and_update_events() {
    let emu = emulator(Config::ephemeral()).await;
    let client_id = emu
        .ready_client("/data/AccountChangeEvent", Some(json!(-1)))
        .await;

    let held = {
        let emu_client = client_id.clone();
        let emu_ref = &emu;
        async move { emu_ref.connect(&emu_client).await }
    };
    let write = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        emu.create_account("Acme").await
    };
    let (replies, account_id) = tokio::join!(held, write);
    let created = events(&replies);
    assert_eq!(created.len(), 1, "{created:?}");
    let event = &created[0];
    assert_eq!(event["channel"], "/data/AccountChangeEvent");
    assert!(event["data"]["event"]["replayId"].as_i64().is_some());
    assert!(event["data"]["schema"].as_str().is_some());
    let h = header(event);
    assert_eq!(h["entityName"], "Account");
    assert_eq!(h["changeType"], "CREATE");
    assert_eq!(h["recordIds"], json!([account_id]));
    assert_eq!(h["changedFields"], json!([]));
    assert!(h["commitTimestamp"].as_i64().is_some());
    assert!(h["transactionKey"].as_str().is_some());
    let payload = &event["data"]["payload"];
    assert_eq!(payload["Name"], "Acme");
    assert_eq!(payload["Industry"], "Energy");
    let connect_reply = replies.last().unwrap();
    assert_eq!(connect_reply["advice"]["reconnect"], "retry");
    assert_eq!(connect_reply["advice"]["timeout"], 110_000);

    let held = emu.connect(&client_id);
    let write = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        emu.rest(
            reqwest::Method::PATCH,
            &format!("/sobjects/Account/{account_id}"),
            json!({"Name": "Acme Corp"}),
        )
        .await;
    };
    let (replies, ()) = tokio::join!(held, write);
    let updated = events(&replies);
    assert_eq!(updated.len(), 1);
    let h = header(&updated[0]);
    assert_eq!(h["changeType"], "UPDATE");
    let changed: Vec<&str> = h["changedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        changed.contains(&"Name") && changed.contains(&"LastModifiedDate"),
        "{changed:?}"
    );
    let payload = &updated[0]["data"]["payload"];
    assert_eq!(payload["Name"], "Acme Corp");
    assert!(
        payload.get("Industry").is_none(),
        "only changed fields: {payload}"
    );
    assert!(
        updated[0]["data"]["event"]["replayId"].as_i64()
            > created[0]["data"]["event"]["replayId"].as_i64()
    );
}

#[tokio::test]
async fn one_multi_record_write_shares_one_transaction_key() {
    let emu = emulator(Config::ephemeral()).await;
    let client_id = emu.ready_client("/data/ChangeEvents", None).await;
    let org = &emu.emu.org;
    let text = |name: &str, value: &str| {
        (
            name.to_string(),
            sf_emulator::FieldInput::Json(json!(value)),
        )
    };
    let results = org.write(
        &sf_emulator::WriteContext::rest(org, "59.0"),
        vec![
            sf_emulator::WriteOp::Create {
                object: "Account".into(),
                fields: vec![text("Name", "One")],
            },
            sf_emulator::WriteOp::Create {
                object: "Account".into(),
                fields: vec![text("Name", "Two")],
            },
            sf_emulator::WriteOp::Create {
                object: "Contact".into(),
                fields: vec![text("LastName", "Three")],
            },
        ],
        true,
    );
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let delivered = events(&emu.connect(&client_id).await);
    let record_ids: usize = delivered
        .iter()
        .map(|e| header(e)["recordIds"].as_array().unwrap().len())
        .sum();
    assert_eq!(record_ids, 3, "{delivered:?}");
    let keys: std::collections::BTreeSet<&str> = delivered
        .iter()
        .map(|e| header(e)["transactionKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "{delivered:?}");
    assert!(delivered
        .iter()
        .all(|e| e["channel"] == "/data/ChangeEvents"));
    let entities: std::collections::BTreeSet<&str> = delivered
        .iter()
        .map(|e| header(e)["entityName"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["Account", "Contact"].into_iter().collect());
}

#[tokio::test]
async fn a_composite_rest_write_shares_one_transaction_key() {
    let emu = emulator(Config::ephemeral()).await;
    let client_id = emu
        .ready_client("/data/ChangeEvents", Some(json!(-1)))
        .await;
    let body = emu
        .rest(
            reqwest::Method::POST,
            "/composite/sobjects",
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "Name": "One"},
                {"attributes": {"type": "Account"}, "Name": "Two"},
                {"attributes": {"type": "Contact"}, "LastName": "Three"}
            ]}),
        )
        .await;
    assert_eq!(body.as_array().unwrap().len(), 3, "{body}");
    let delivered = events(&emu.connect(&client_id).await);
    let record_ids: usize = delivered
        .iter()
        .map(|e| header(e)["recordIds"].as_array().unwrap().len())
        .sum();
    assert_eq!(record_ids, 3, "{delivered:?}");
    let keys: std::collections::BTreeSet<&str> = delivered
        .iter()
        .map(|e| header(e)["transactionKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "{delivered:?}");
    assert!(delivered
        .iter()
        .all(|e| e["channel"] == "/data/ChangeEvents"));
}

#[tokio::test]
async fn replay_from_all_retained_a_stored_id_and_a_too_old_id() {
    let emu = emulator(Config::ephemeral()).await;
    for name in ["First", "Second", "Third"] {
        emu.create_account(name).await;
    }
    // -2: everything retained, delivered on the first connect.
    let client_id = emu.handshake().await;
    let reply = emu
        .subscribe(&client_id, "/data/AccountChangeEvent", Some(json!(-2)))
        .await;
    assert_eq!(reply["successful"], true);
    assert_eq!(reply["subscription"], "/data/AccountChangeEvent");
    let all = events(&emu.connect(&client_id).await);
    let names: Vec<&str> = all
        .iter()
        .map(|e| e["data"]["payload"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["First", "Second", "Third"]);

    // A stored replay id: the events after it.
    let first_id = all[0]["data"]["event"]["replayId"].clone();
    let client_id = emu.handshake().await;
    emu.subscribe(
        &client_id,
        "/data/AccountChangeEvent",
        Some(first_id.clone()),
    )
    .await;
    let after = events(&emu.connect(&client_id).await);
    let names: Vec<&str> = after
        .iter()
        .map(|e| e["data"]["payload"]["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Second", "Third"]);

    // Retention drops old events; a replay id before them is refused.
    emu.emu
        .org
        .cdc()
        .set_retention(2, sf_emulator::cdc::DEFAULT_RETENTION_MS);
    emu.create_account("Fourth").await;
    let client_id = emu.handshake().await;
    let reply = emu
        .subscribe(
            &client_id,
            "/data/AccountChangeEvent",
            Some(first_id.clone()),
        )
        .await;
    assert_eq!(reply["successful"], false);
    assert_eq!(
        reply["error"],
        json!(format!("400::The replayId {{{first_id}}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."))
    );
}

#[tokio::test]
async fn subscription_errors_name_the_channel() {
    let emu = emulator(Config::ephemeral()).await;
    let client_id = emu.handshake().await;
    let reply = emu.subscribe(&client_id, "/topic/NoSuchTopic", None).await;
    assert_eq!(reply["successful"], false);
    assert_eq!(
        reply["error"],
        "400::The channel you requested to subscribe to does not exist {/topic/NoSuchTopic}"
    );
    let replies = emu
        .send(json!([{"channel":"/meta/subscribe","clientId":client_id,
            "subscription":"/data/ContactChangeEvent","id":"9",
            "ext":{"replay":{"/data/AccountChangeEvent": -1}}}]))
        .await;
    assert_eq!(replies[0]["successful"], false);
    assert!(replies[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("400::The replayId for channel {/data/ContactChangeEvent} wasn't found"));
    // Custom objects have their own channel (the repo's mappings define Invoice__c).
    let mappings = Config {
        describe: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/describe"),
        ),
        ..Config::ephemeral()
    };
    let emu = emulator(mappings).await;
    let client_id = emu.handshake().await;
    let reply = emu
        .subscribe(&client_id, "/data/Invoice__ChangeEvent", Some(json!(-1)))
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
}

#[tokio::test]
async fn clients_that_do_not_reconnect_in_time_are_unknown() {
    let config = Config {
        streaming_client_expiry_ms: 300,
        ..Config::ephemeral()
    };
    let emu = emulator(config).await;
    let client_id = emu.ready_client("/data/ChangeEvents", None).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let replies = emu.connect(&client_id).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["successful"], false);
    assert_eq!(replies[0]["error"], "403::Unknown client");
    assert_eq!(replies[0]["advice"]["reconnect"], "handshake");

    let replies = emu.connect("not-a-client").await;
    assert_eq!(replies[0]["error"], "403::Unknown client");
}

/// Clients alive now, as `/limits` counts them against `DurableStreamingApiConcurrentClients`.
async fn clients_alive(emu: &Emulator) -> u64 {
    let limits = emu.rest(reqwest::Method::GET, "/limits", Value::Null).await;
    let entry = &limits["DurableStreamingApiConcurrentClients"];
    entry["Max"].as_u64().unwrap() - entry["Remaining"].as_u64().unwrap()
}

#[tokio::test]
async fn a_killed_clients_place_is_given_back_when_it_expires_or_at_once_on_disconnect() {
    let config = Config {
        streaming_client_expiry_ms: 300,
        ..Config::ephemeral()
    };
    let emu = emulator(config).await;
    let killed = emu.ready_client("/data/ChangeEvents", None).await;
    // The process holding a connect dies: its connection drops mid-hold.
    let held = {
        let http = reqwest::Client::new();
        let url = format!("{}/cometd/59.0", emu.emu.base_url);
        let token = emu.token.clone();
        let cookie = emu.cookie.lock().unwrap().clone().unwrap();
        let client_id = killed.clone();
        tokio::spawn(async move {
            let _ = http
                .post(url)
                .header("Authorization", format!("OAuth {token}"))
                .header("Cookie", cookie)
                .json(&json!([{"channel":"/meta/connect","clientId":client_id,
                    "connectionType":"long-polling","id":"9"}]))
                .send()
                .await;
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        clients_alive(&emu).await,
        1,
        "a held connect keeps its client"
    );
    held.abort();
    let _ = held.await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        clients_alive(&emu).await,
        0,
        "the dropped connect no longer holds the place; the client expired"
    );

    // A clean disconnect gives the place back at once.
    let leaving = emu.ready_client("/data/ChangeEvents", None).await;
    assert_eq!(clients_alive(&emu).await, 1);
    let replies = emu
        .send(json!([{"channel":"/meta/disconnect","clientId":leaving,"id":"4"}]))
        .await;
    assert_eq!(replies[0]["successful"], true, "{replies:?}");
    assert_eq!(clients_alive(&emu).await, 0);
}

#[tokio::test]
async fn a_held_connect_ends_after_the_configured_timeout() {
    let config = Config {
        streaming_connect_timeout_ms: 300,
        ..Config::ephemeral()
    };
    let emu = emulator(config).await;
    let client_id = emu.ready_client("/data/ChangeEvents", None).await;
    let started = Instant::now();
    let replies = emu.connect(&client_id).await;
    let held = started.elapsed();
    assert!(events(&replies).is_empty());
    assert!(held >= Duration::from_millis(250), "{held:?}");
    assert!(held < Duration::from_secs(5), "{held:?}");
    assert_eq!(replies[0]["advice"]["timeout"], 300);
}

#[tokio::test]
async fn bad_sessions_get_salesforce_authentication_errors() {
    let emu = emulator(Config::ephemeral()).await;
    let (_, _, replies) = emu
        .bayeux(
            "not-a-session",
            json!([{"channel":"/meta/handshake","version":"1.0","id":"1",
                "supportedConnectionTypes":["long-polling"]}]),
        )
        .await;
    assert_eq!(
        replies[0],
        json!({"ext":{"sfdc":{"failureReason":"401::Authentication invalid"},"replay":true,"payload.format":true},
            "advice":{"reconnect":"none"},"channel":"/meta/handshake","id":"1",
            "error":"403::Handshake denied","successful":false})
    );

    let client_id = emu.ready_client("/data/ChangeEvents", None).await;
    emu.emu.org.expire_all();
    let (_, _, replies) = emu
        .bayeux(
            &emu.token,
            json!([{"channel":"/meta/connect","clientId":client_id,"connectionType":"long-polling","id":7}]),
        )
        .await;
    assert_eq!(
        replies[0],
        json!({"clientId":client_id,"advice":{"reconnect":"none","interval":0},
            "channel":"/meta/connect","id":7,"error":"401::Authentication invalid","successful":false})
    );
}

#[tokio::test]
async fn dropped_connections_and_injected_gap_events() {
    let emu = emulator(Config::ephemeral()).await;
    let client_id = emu.ready_client("/data/AccountChangeEvent", None).await;

    // A gap event reaches the subscriber.
    let held = emu.connect(&client_id);
    let inject = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = emu
            .http
            .post(format!("{}/__emulator/faults/cdc/gap", emu.emu.base_url))
            .json(&json!({"object":"Account","changeType":"GAP_UPDATE",
                "recordIds":["001000000000001AAA"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    };
    let (replies, ()) = tokio::join!(held, inject);
    let gap = events(&replies);
    assert_eq!(header(&gap[0])["changeType"], "GAP_UPDATE");
    assert_eq!(header(&gap[0])["recordIds"], json!(["001000000000001AAA"]));

    // Dropping connections ends held connects with a handshake advice.
    let held = emu.connect(&client_id);
    let drop = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = emu
            .http
            .post(format!(
                "{}/__emulator/faults/streaming/drop",
                emu.emu.base_url
            ))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["droppedClients"], 1);
    };
    let (replies, ()) = tokio::join!(held, drop);
    assert_eq!(replies[0]["error"], "403::Unknown client");
    assert_eq!(replies[0]["advice"]["reconnect"], "handshake");
}
