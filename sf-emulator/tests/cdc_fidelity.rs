//! Change Data Capture as real Salesforce publishes it, over real HTTP with a CometD client
//! that keeps its `BAYEUX_BROWSER` cookie: merged change events, `changeOrigin` from
//! `Sforce-Call-Options`, long text diffs, gap and overflow events replacing normal ones,
//! entity selection, the delivery and concurrent-client allocations, the browser cookie,
//! retention losses reported instead of skipped, gapped replay ids, and the change-event faults
//! of the control plane.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sf_emulator::server::{start, Config, RunningEmulator};
use sha2::{Digest, Sha256};

struct Emulator {
    emu: RunningEmulator,
    token: String,
    http: reqwest::Client,
}

/// One CometD client: its id and the cookie its handshake set.
struct Client {
    id: String,
    cookie: Option<String>,
}

async fn emulator() -> Emulator {
    let config = Config {
        streaming_connect_timeout_ms: 400,
        ..Config::ephemeral()
    };
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
    }
}

fn header(event: &Value) -> &Value {
    &event["data"]["payload"]["ChangeEventHeader"]
}

impl Emulator {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.base_url)
    }

    /// Posts one Bayeux batch; returns the HTTP status, the `Set-Cookie` pair and the replies.
    async fn bayeux(
        &self,
        cookie: Option<&str>,
        batch: Value,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = self
            .http
            .post(self.url("/cometd/59.0"))
            .header("Authorization", format!("Bearer {}", self.token))
            .json(&batch);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let set_cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().to_string());
        (status, set_cookie, response.json().await.unwrap())
    }

    async fn handshake(&self) -> Result<Client, Value> {
        let (status, cookie, replies) = self
            .bayeux(
                None,
                json!([{"channel":"/meta/handshake","version":"1.0",
                    "supportedConnectionTypes":["long-polling"],"id":"1"}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        if replies[0]["successful"] != true {
            return Err(replies[0].clone());
        }
        Ok(Client {
            id: replies[0]["clientId"].as_str().unwrap().to_string(),
            cookie,
        })
    }

    async fn send(&self, client: &Client, message: Value) -> Vec<Value> {
        let (status, _, replies) = self
            .bayeux(client.cookie.as_deref(), json!([message]))
            .await;
        assert_eq!(status, StatusCode::OK);
        replies.as_array().unwrap().clone()
    }

    async fn subscribe(&self, client: &Client, channel: &str, replay: Value) -> Value {
        self.send(
            client,
            json!({"channel":"/meta/subscribe","clientId":client.id,"subscription":channel,
                "id":"2","ext":{"replay":{channel: replay}}}),
        )
        .await
        .remove(0)
    }

    async fn connect(&self, client: &Client) -> Vec<Value> {
        self.send(
            client,
            json!({"channel":"/meta/connect","clientId":client.id,
                "connectionType":"long-polling","id":"3"}),
        )
        .await
    }

    /// Handshake, subscribe from new events, first connect.
    async fn ready(&self, channel: &str) -> Client {
        let client = self.handshake().await.expect("handshake");
        let reply = self.subscribe(&client, channel, json!(-1)).await;
        assert_eq!(reply["successful"], true, "{reply}");
        self.connect(&client).await;
        client
    }

    /// Connects until a connect comes back without events; returns every event received.
    async fn drain(&self, client: &Client) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let mut replies = self.connect(client).await;
            let last = replies.pop().unwrap();
            assert_eq!(last["successful"], true, "{last}");
            if replies.is_empty() {
                return all;
            }
            all.extend(replies);
        }
    }

    async fn rest(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.rest_with(method, path, body, None).await
    }

    async fn rest_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
        call_options: Option<&str>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, self.url(&format!("/services/data/v59.0{path}")))
            .bearer_auth(&self.token)
            .json(&body);
        if let Some(options) = call_options {
            request = request.header("Sforce-Call-Options", options);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(status.is_success(), "{path}: {status}");
        if status == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response.json().await.unwrap()
        }
    }

    async fn create_accounts(&self, names: &[&str]) -> Vec<String> {
        let records: Vec<Value> = names
            .iter()
            .map(|n| json!({"attributes":{"type":"Account"},"Name":n}))
            .collect();
        let results = self
            .rest(
                reqwest::Method::POST,
                "/composite/sobjects",
                json!({"allOrNone": true, "records": records}),
            )
            .await;
        results
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    async fn faults(&self, body: Value) -> Value {
        let response = self
            .http
            .post(self.url("/__emulator/faults"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn put(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .put(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

fn types_and_ids(events: &[Value]) -> Vec<(String, Value)> {
    events
        .iter()
        .map(|e| {
            (
                header(e)["changeType"].as_str().unwrap().to_string(),
                header(e)["recordIds"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_same_change_to_several_records_arrives_as_one_merged_event() {
    let emu = emulator().await;
    let ids = emu.create_accounts(&["a", "b", "c"]).await;
    let client = emu.ready("/data/AccountChangeEvent").await;

    // One Collections update: a and c get Apparel, b gets Energy.
    let records: Vec<Value> = ids
        .iter()
        .zip(["Apparel", "Energy", "Apparel"])
        .map(|(id, industry)| json!({"attributes":{"type":"Account"},"id":id,"Industry":industry}))
        .collect();
    emu.rest(
        reqwest::Method::PATCH,
        "/composite/sobjects",
        json!({"records": records}),
    )
    .await;
    let events = emu.drain(&client).await;
    assert_eq!(
        types_and_ids(&events),
        vec![
            ("UPDATE".into(), json!([ids[0], ids[2]])),
            ("UPDATE".into(), json!([ids[1]])),
        ]
    );
    assert_eq!(events[0]["data"]["payload"]["Industry"], "Apparel");
    assert_eq!(header(&events[0])["sequenceNumber"], 1);
    assert_eq!(header(&events[1])["sequenceNumber"], 2);

    // One Collections delete of two records: one DELETE event.
    emu.rest(
        reqwest::Method::DELETE,
        &format!("/composite/sobjects?ids={},{}", ids[0], ids[1]),
        Value::Null,
    )
    .await;
    let events = emu.drain(&client).await;
    assert_eq!(
        types_and_ids(&events),
        vec![("DELETE".into(), json!([ids[0], ids[1]]))]
    );
}

#[tokio::test]
async fn change_origin_names_the_client_of_sforce_call_options() {
    let emu = emulator().await;
    let client = emu.ready("/data/ChangeEvents").await;
    emu.rest_with(
        reqwest::Method::POST,
        "/sobjects/Account",
        json!({"Name": "Mine"}),
        Some("client=forcesync-engine"),
    )
    .await;
    emu.rest(
        reqwest::Method::POST,
        "/sobjects/Account",
        json!({"Name": "Theirs"}),
    )
    .await;
    let events = emu.drain(&client).await;
    assert_eq!(
        header(&events[0])["changeOrigin"],
        "com/salesforce/api/rest/59.0;client=forcesync-engine"
    );
    assert_eq!(
        header(&events[1])["changeOrigin"],
        "com/salesforce/api/rest/59.0"
    );
}

/// Runs a Bulk API 2.0 ingest job (insert of `csv` into Account) created with `call_options`.
async fn bulk2_insert(emu: &Emulator, csv: &str, call_options: &str) {
    let created = emu
        .rest_with(
            reqwest::Method::POST,
            "/jobs/ingest",
            json!({"object":"Account","operation":"insert","lineEnding":"LF"}),
            Some(call_options),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    // Later requests of the job send no header: the job remembers its client.
    let put = emu
        .http
        .put(emu.url(&format!("/services/data/v59.0/jobs/ingest/{id}/batches")))
        .bearer_auth(&emu.token)
        .header("Content-Type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    emu.rest(
        reqwest::Method::PATCH,
        &format!("/jobs/ingest/{id}"),
        json!({"state":"UploadComplete"}),
    )
    .await;
    for _ in 0..500 {
        let info = emu
            .rest(
                reqwest::Method::GET,
                &format!("/jobs/ingest/{id}"),
                Value::Null,
            )
            .await;
        if info["state"] == "JobComplete" {
            return;
        }
        assert_ne!(info["state"], "Failed", "{info}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("ingest job {id} did not finish");
}

/// Sends one Bulk API 1.0 request (XML) with optional `Sforce-Call-Options`; returns the body.
async fn bulk1(emu: &Emulator, path: &str, body: &str, call_options: Option<&str>) -> String {
    let mut request = emu
        .http
        .post(emu.url(&format!("/services/async/59.0{path}")))
        .header("X-SFDC-Session", &emu.token)
        .header("Content-Type", "application/xml; charset=UTF-8")
        .body(body.to_string());
    if let Some(options) = call_options {
        request = request.header("Sforce-Call-Options", options);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{path}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn bulk_job_writes_name_the_client_that_created_the_job() {
    let emu = emulator().await;
    let client = emu.ready("/data/AccountChangeEvent").await;

    bulk2_insert(&emu, "Name\nFrom Bulk 2\n", "client=forcesync-bulk2").await;
    let events = emu.drain(&client).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        header(&events[0])["changeOrigin"],
        "com/salesforce/api/bulkapi/59.0;client=forcesync-bulk2"
    );

    // Bulk API 1.0: the header on job creation; the batch is added without it.
    let job = bulk1(
        &emu,
        "/job",
        r#"<?xml version="1.0" encoding="UTF-8"?>
<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">
<operation>insert</operation><object>Account</object><contentType>XML</contentType>
</jobInfo>"#,
        Some("client=forcesync-bulk1"),
    )
    .await;
    let start = job.find("<id>").unwrap() + 4;
    let job_id = &job[start..start + 18];
    bulk1(
        &emu,
        &format!("/job/{job_id}/batch"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload">
<sObject><Name>From Bulk 1</Name></sObject>
</sObjects>"#,
        None,
    )
    .await;
    let events = emu.drain(&client).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        header(&events[0])["changeOrigin"],
        "com/salesforce/api/bulkapi/59.0;client=forcesync-bulk1"
    );

    // A job created without the header publishes the plain Bulk origin.
    bulk2_insert(&emu, "Name\nAnonymous\n", "defaultNamespace=ns").await;
    let events = emu.drain(&client).await;
    assert_eq!(
        header(&events[0])["changeOrigin"],
        "com/salesforce/api/bulkapi/59.0"
    );
}

#[tokio::test]
async fn a_small_edit_of_a_long_description_arrives_as_a_diff() {
    let emu = emulator().await;
    let lines: Vec<String> = (0..30)
        .map(|i| format!("Paragraph {i}: business applications are moving to the cloud, steadily."))
        .collect();
    let original = lines.join("\n");
    assert!(original.len() > 1_000);
    let id = emu
        .rest(
            reqwest::Method::POST,
            "/sobjects/Account",
            json!({"Name": "Long", "Description": original}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let client = emu.ready("/data/AccountChangeEvent").await;

    let mut edited = lines.clone();
    edited[4] = "Paragraph 4: business apps are moving to the cloud.".into();
    let edited = edited.join("\n");
    emu.rest(
        reqwest::Method::PATCH,
        &format!("/sobjects/Account/{id}"),
        json!({"Description": edited}),
    )
    .await;
    // A short field stays whole.
    emu.rest(
        reqwest::Method::PATCH,
        &format!("/sobjects/Account/{id}"),
        json!({"Description": "Short now."}),
    )
    .await;
    let events = emu.drain(&client).await;
    let hash = format!("{:x}", Sha256::digest(edited.as_bytes()));
    assert_eq!(
        events[0]["data"]["payload"]["Description"],
        json!({"diff": format!(
            "--- \n+++ {hash}\n@@ -5,1 +5,1 @@\n-{}\n+Paragraph 4: business apps are moving to the cloud.",
            lines[4]
        )})
    );
    assert_eq!(
        header(&events[0])["changedFields"],
        json!(["Description", "LastModifiedDate"])
    );
    assert_eq!(events[1]["data"]["payload"]["Description"], "Short now.");
}

#[tokio::test]
async fn gap_events_replace_the_next_record_changes() {
    let emu = emulator().await;
    let ids = emu.create_accounts(&["a", "b", "c"]).await;
    let client = emu.ready("/data/AccountChangeEvent").await;
    let faults = emu.faults(json!({"cdc_gap_next": 2})).await;
    assert_eq!(faults["cdc_gap_next"], 2);

    let records: Vec<Value> = ids
        .iter()
        .zip(["x", "y", "z"])
        .map(|(id, name)| json!({"attributes":{"type":"Account"},"id":id,"Name":name}))
        .collect();
    emu.rest(
        reqwest::Method::PATCH,
        "/composite/sobjects",
        json!({"records": records}),
    )
    .await;
    let events = emu.drain(&client).await;
    // Two gaps (merged: same gap type, same entity, one transaction), then c's normal event.
    assert_eq!(
        types_and_ids(&events),
        vec![
            ("GAP_UPDATE".into(), json!([ids[0], ids[1]])),
            ("UPDATE".into(), json!([ids[2]])),
        ]
    );
    let gap = events[0]["data"]["payload"].as_object().unwrap();
    assert_eq!(gap.len(), 1, "header only: {gap:?}");
    assert_eq!(header(&events[0])["changedFields"], json!([]));
    assert_eq!(emu.faults(json!({})).await["cdc_gap_next"], 0);
}

#[tokio::test]
async fn changes_past_the_overflow_threshold_become_one_gap_overflow_event() {
    let emu = emulator().await;
    let client = emu.ready("/data/ChangeEvents").await;
    emu.faults(json!({"cdc_overflow_after": 3})).await;
    let ids = emu.create_accounts(&["1", "2", "3", "4", "5"]).await;
    let events = emu.drain(&client).await;
    assert_eq!(
        types_and_ids(&events),
        vec![
            ("CREATE".into(), json!([ids[0]])),
            ("CREATE".into(), json!([ids[1]])),
            ("CREATE".into(), json!([ids[2]])),
            ("GAP_OVERFLOW".into(), json!(["001*"])),
        ]
    );
    assert_eq!(header(&events[3])["entityName"], "Account");
    assert_eq!(events[3]["data"]["payload"].as_object().unwrap().len(), 1);
    let key = &header(&events[0])["transactionKey"];
    assert!(events.iter().all(|e| &header(e)["transactionKey"] == key));
}

#[tokio::test]
async fn only_objects_selected_for_cdc_publish_change_events() {
    let emu = emulator().await;
    let all = emu
        .http
        .get(emu.url("/__emulator/cdc/entities"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(all["selected"]
        .as_array()
        .unwrap()
        .contains(&json!("Account")));
    assert_eq!(all["selected"], all["available"]);

    let chosen = emu
        .put("/__emulator/cdc/entities", json!({"selected": ["Contact"]}))
        .await;
    assert_eq!(chosen["selected"], json!(["Contact"]));
    let client = emu.ready("/data/ChangeEvents").await;
    emu.create_accounts(&["unselected"]).await;
    let contact = emu
        .rest(
            reqwest::Method::POST,
            "/sobjects/Contact",
            json!({"LastName": "Selected"}),
        )
        .await["id"]
        .clone();
    let events = emu.drain(&client).await;
    assert_eq!(
        types_and_ids(&events),
        vec![("CREATE".into(), json!([contact]))]
    );

    emu.put("/__emulator/cdc/entities", json!({"selected": "all"}))
        .await;
    emu.create_accounts(&["selected again"]).await;
    assert_eq!(emu.drain(&client).await.len(), 1);
}

#[tokio::test]
async fn the_daily_delivery_allocation_ends_in_a_403_on_connect() {
    let emu = emulator().await;
    let client = emu.ready("/data/AccountChangeEvent").await;
    emu.put(
        "/__emulator/limits",
        json!({"DailyDeliveredPlatformEvents": 2}),
    )
    .await;
    emu.create_accounts(&["1", "2", "3"]).await;
    let first = emu.connect(&client).await;
    assert_eq!(
        first.len(),
        3,
        "two events and the connect reply: {first:?}"
    );
    let refused = emu.connect(&client).await;
    assert_eq!(refused[0]["successful"], false);
    assert_eq!(
        refused[0]["error"],
        "403::Organization total events daily limit exceeded"
    );
    let limits = emu.rest(reqwest::Method::GET, "/limits", Value::Null).await;
    assert_eq!(
        limits["DailyDeliveredPlatformEvents"],
        json!({"Max": 2, "Remaining": 0})
    );
}

#[tokio::test]
async fn handshakes_past_the_concurrent_client_allocation_are_refused() {
    let emu = emulator().await;
    emu.put(
        "/__emulator/limits",
        json!({"DurableStreamingApiConcurrentClients": 1}),
    )
    .await;
    let concurrent = |limits: Value| limits["DurableStreamingApiConcurrentClients"].clone();
    let limits = emu.rest(reqwest::Method::GET, "/limits", Value::Null).await;
    assert_eq!(concurrent(limits), json!({"Max": 1, "Remaining": 1}));
    let first = emu.handshake().await.expect("the first client fits");
    let limits = emu.rest(reqwest::Method::GET, "/limits", Value::Null).await;
    assert_eq!(concurrent(limits), json!({"Max": 1, "Remaining": 0}));
    let refused = emu.handshake().await.err().expect("the second is refused");
    assert_eq!(
        refused["error"],
        "403::Organization concurrent user limit exceeded"
    );
    emu.send(
        &first,
        json!({"channel":"/meta/disconnect","clientId":first.id,"id":"9"}),
    )
    .await;
    let limits = emu.rest(reqwest::Method::GET, "/limits", Value::Null).await;
    assert_eq!(concurrent(limits), json!({"Max": 1, "Remaining": 1}));
    assert!(emu.handshake().await.is_ok());
}

#[tokio::test]
async fn follow_ups_without_the_bayeux_browser_cookie_are_refused() {
    let emu = emulator().await;
    let client = emu.handshake().await.unwrap();
    let cookie = client.cookie.clone().expect("the handshake sets a cookie");
    assert!(cookie.starts_with("BAYEUX_BROWSER="), "{cookie}");
    let cookieless = Client {
        id: client.id.clone(),
        cookie: None,
    };
    let reply = emu
        .subscribe(&cookieless, "/data/AccountChangeEvent", json!(-1))
        .await;
    assert_eq!(reply["successful"], false);
    assert_eq!(
        reply["error"],
        format!(
            "400::Client {} has established a session, but no BAYEUX_BROWSER cookie present",
            client.id
        )
    );
    let reply = emu
        .subscribe(&client, "/data/AccountChangeEvent", json!(-1))
        .await;
    assert_eq!(reply["successful"], true, "{reply}");
}

#[tokio::test]
async fn a_subscriber_behind_retention_gets_the_invalid_replay_error_not_a_silent_skip() {
    let emu = emulator().await;
    let client = emu.ready("/data/AccountChangeEvent").await;
    emu.create_accounts(&["1"]).await;
    let delivered = emu.drain(&client).await;
    let stored = delivered[0]["data"]["event"]["replayId"].clone();
    emu.create_accounts(&["2", "3"]).await;
    let shrunk = emu.faults(json!({"cdc_shrink_retention": 1})).await;
    assert!(shrunk["cdc_events_dropped"].as_u64().unwrap() >= 1);

    let lost = emu.connect(&client).await;
    assert_eq!(lost[0]["successful"], false, "{lost:?}");
    assert_eq!(
        lost[0]["error"],
        format!("400::The replayId {{{stored}}} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.")
    );
    assert_eq!(lost[0]["advice"]["reconnect"], "handshake");
    // Resubscribing from the stored id fails the same way.
    let again = emu.handshake().await.unwrap();
    let reply = emu
        .subscribe(&again, "/data/AccountChangeEvent", stored)
        .await;
    assert_eq!(reply["successful"], false);
}

#[tokio::test]
async fn replay_ids_increase_with_gaps() {
    let emu = emulator().await;
    let client = emu.ready("/data/AccountChangeEvent").await;
    for i in 0..20 {
        emu.rest(
            reqwest::Method::POST,
            "/sobjects/Account",
            json!({"Name": format!("n{i}")}),
        )
        .await;
    }
    let ids: Vec<i64> = emu
        .drain(&client)
        .await
        .iter()
        .map(|e| e["data"]["event"]["replayId"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 20);
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "{ids:?}");
    assert!(ids.windows(2).any(|w| w[1] - w[0] > 1), "{ids:?}");
}

#[tokio::test]
async fn after_save_automation_rides_in_the_writes_transaction() {
    let emu = emulator().await;
    let response = emu
        .http
        .post(emu.url("/__emulator/after-save"))
        .json(
            &json!({"object":"Account","field":"Industry","op":"equals","value":"Banking",
            "set":{"Rating":"Hot"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let client = emu.ready("/data/AccountChangeEvent").await;
    emu.rest(
        reqwest::Method::POST,
        "/sobjects/Account",
        json!({"Name": "Bank", "Industry": "Banking"}),
    )
    .await;
    let events = emu.drain(&client).await;
    assert_eq!(events.len(), 2);
    let (create, automated) = (header(&events[0]), header(&events[1]));
    assert_eq!(create["changeType"], "CREATE");
    assert_eq!(automated["changeType"], "UPDATE");
    assert_eq!(create["transactionKey"], automated["transactionKey"]);
    assert_eq!(create["commitNumber"], automated["commitNumber"]);
    assert_eq!(create["commitTimestamp"], automated["commitTimestamp"]);
    assert_eq!(
        (
            create["sequenceNumber"].clone(),
            automated["sequenceNumber"].clone()
        ),
        (json!(1), json!(2))
    );
}

#[tokio::test]
async fn suppressed_duplicated_and_reordered_events() {
    let emu = emulator().await;
    let client = emu.ready("/data/AccountChangeEvent").await;

    emu.faults(json!({"cdc_suppress_next": 1})).await;
    let ids = emu.create_accounts(&["lost", "kept"]).await;
    assert_eq!(
        types_and_ids(&emu.drain(&client).await),
        vec![("CREATE".into(), json!([ids[1]]))]
    );

    emu.faults(json!({"cdc_duplicate_next": 1})).await;
    let ids = emu.create_accounts(&["twice"]).await;
    let events = emu.drain(&client).await;
    assert_eq!(types_and_ids(&events).len(), 2);
    assert_eq!(header(&events[0]), header(&events[1]));
    assert_eq!(header(&events[1])["recordIds"], json!([ids[0]]));
    assert_ne!(
        events[0]["data"]["event"]["replayId"],
        events[1]["data"]["event"]["replayId"]
    );

    emu.faults(json!({"cdc_reorder_next": 2})).await;
    let first = emu.create_accounts(&["first"]).await;
    let second = emu.create_accounts(&["second"]).await;
    assert_eq!(
        types_and_ids(&emu.drain(&client).await),
        vec![
            ("CREATE".into(), json!([second[0]])),
            ("CREATE".into(), json!([first[0]])),
        ]
    );
}

#[tokio::test]
async fn a_delayed_event_arrives_after_later_ones() {
    let emu = emulator().await;
    let client = emu.ready("/data/AccountChangeEvent").await;
    emu.faults(json!({"cdc_delay_next": 1, "cdc_delay_ms": 600}))
        .await;
    let late = emu.create_accounts(&["late"]).await;
    let early = emu.create_accounts(&["early"]).await;
    let first = emu.connect(&client).await;
    assert_eq!(header(&first[0])["recordIds"], json!([early[0]]));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let events = emu.drain(&client).await;
    assert_eq!(
        types_and_ids(&events),
        vec![("CREATE".into(), json!([late[0]]))]
    );
}

#[tokio::test]
async fn subscribe_refusals_and_streaming_only_503s() {
    let emu = emulator().await;
    emu.faults(json!({"cdc_fail_next_subscribe": 1, "streaming_503_next": 1}))
        .await;
    let (status, _, body) = emu
        .bayeux(
            None,
            json!([{"channel":"/meta/handshake","version":"1.0",
                "supportedConnectionTypes":["long-polling"],"id":"1"}]),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // REST is unaffected.
    emu.rest(reqwest::Method::GET, "/limits", Value::Null).await;

    let client = emu.handshake().await.unwrap();
    let refused = emu
        .subscribe(&client, "/data/AccountChangeEvent", json!(-2))
        .await;
    assert_eq!(
        refused["error"],
        "400::The replayId {-2} you provided was invalid.  Please provide a valid ID, -2 to replay all events, or -1 to replay only new events."
    );
    let accepted = emu
        .subscribe(&client, "/data/AccountChangeEvent", json!(-2))
        .await;
    assert_eq!(accepted["successful"], true);
}

#[tokio::test]
async fn a_bulk_update_batch_publishes_merged_events_from_the_bulk_api() {
    let emu = emulator().await;
    let ids = emu.create_accounts(&["a", "b", "c"]).await;
    let client = emu.ready("/data/AccountChangeEvent").await;
    let job = emu
        .rest(
            reqwest::Method::POST,
            "/jobs/ingest",
            json!({"object":"Account","operation":"update","contentType":"CSV","lineEnding":"LF"}),
        )
        .await;
    let job_id = job["id"].as_str().unwrap().to_string();
    let csv = format!(
        "Id,Industry\n{},Apparel\n{},Apparel\n{},Apparel\n",
        ids[0], ids[1], ids[2]
    );
    let response = emu
        .http
        .put(emu.url(&format!(
            "/services/data/v59.0/jobs/ingest/{job_id}/batches"
        )))
        .bearer_auth(&emu.token)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    emu.rest(
        reqwest::Method::PATCH,
        &format!("/jobs/ingest/{job_id}"),
        json!({"state": "UploadComplete"}),
    )
    .await;
    let mut events = Vec::new();
    for _ in 0..20 {
        events.extend(emu.drain(&client).await);
        if !events.is_empty() {
            break;
        }
    }
    assert_eq!(
        types_and_ids(&events),
        vec![("UPDATE".into(), json!([ids[0], ids[1], ids[2]]))]
    );
    assert_eq!(
        header(&events[0])["changeOrigin"],
        "com/salesforce/api/bulkapi/59.0"
    );
}
