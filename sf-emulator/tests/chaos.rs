//! The faults a sync engine's chaos tests need, over real HTTP: ambiguous writes, connection
//! resets, hangs and truncated bodies, query faults, Bulk job faults, `UNABLE_TO_LOCK_ROW`
//! aimed at one object or record, and changes made outside the API (no change events).

mod common;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

async fn control(e: &common::Emu, method: Method, path: &str, body: Value) -> Value {
    let r = e
        .client
        .request(method, e.url(path))
        .json(&body)
        .send()
        .await
        .expect("control request");
    let (s, v) = common::status_json(r).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}

async fn faults(e: &common::Emu, body: Value) -> Value {
    control(e, Method::POST, "/__emulator/faults", body).await
}

/// Status and body, or the transport error (connection closed, timed out, body cut short).
async fn attempt(req: reqwest::RequestBuilder) -> Result<(u16, String), String> {
    let describe = |stage: &str, e: reqwest::Error| {
        let kind = if e.is_timeout() { "timeout" } else { "error" };
        format!("{stage} {kind}: {e:?}")
    };
    let r = req.send().await.map_err(|e| describe("send", e))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| describe("body", e))?;
    Ok((status, body))
}

async fn count(e: &common::Emu, soql: &str) -> u64 {
    let url = format!(
        "{}?q={}",
        e.data("/query"),
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    );
    let (s, v) = e.get(&url).await;
    assert_eq!(s, 200, "{v}");
    v["totalSize"].as_u64().unwrap()
}

fn create_account(e: &common::Emu, name: &str) -> reqwest::RequestBuilder {
    e.client
        .post(e.data("/sobjects/Account"))
        .bearer_auth(&e.token)
        .json(&json!({"Name": name}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_writes_are_applied_then_answered_500_dropped_or_left_hanging() {
    let e = common::start().await;
    let v = faults(&e, json!({"ambiguous_writes": {"count": 1, "mode": "500"}})).await;
    assert_eq!(v["ambiguous_writes"]["count"], 1);
    // Reads are not affected.
    let (s, _) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 200);
    let (s, body) = attempt(create_account(&e, "Ambiguous 500")).await.unwrap();
    assert_eq!(s, 500);
    assert!(body.contains("UNKNOWN_EXCEPTION"), "{body}");
    assert_eq!(
        count(
            &e,
            "SELECT COUNT() FROM Account WHERE Name = 'Ambiguous 500'"
        )
        .await,
        1
    );

    faults(
        &e,
        json!({"ambiguous_writes": {"count": 1, "mode": "drop"}}),
    )
    .await;
    let err = attempt(create_account(&e, "Ambiguous drop"))
        .await
        .unwrap_err();
    assert!(!err.is_empty());
    assert_eq!(
        count(
            &e,
            "SELECT COUNT() FROM Account WHERE Name = 'Ambiguous drop'"
        )
        .await,
        1
    );

    faults(
        &e,
        json!({"ambiguous_writes": {"count": 1, "mode": "hang", "paths": ["/services/data"]}, "hang_ms": 2000}),
    )
    .await;
    let err = attempt(create_account(&e, "Ambiguous hang").timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(err.contains("timeout"), "{err}");
    assert_eq!(
        count(
            &e,
            "SELECT COUNT() FROM Account WHERE Name = 'Ambiguous hang'"
        )
        .await,
        1
    );
    // The count ran out: the next write is answered normally.
    let (s, _) = attempt(create_account(&e, "Plain")).await.unwrap();
    assert_eq!(s, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_reset_hang_and_truncate_on_the_chosen_paths() {
    let e = common::start().await;
    let (_, acc) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Target"}))
        .await;
    let id = acc["id"].as_str().unwrap().to_string();
    let get = |e: &common::Emu| {
        e.client
            .get(e.data(&format!("/sobjects/Account/{id}")))
            .bearer_auth(&e.token)
    };

    faults(
        &e,
        json!({"share_reset": 1.0, "paths": ["/services/data/v59.0/sobjects"]}),
    )
    .await;
    assert!(attempt(get(&e)).await.is_err());
    // Other paths are untouched.
    let (s, _) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 200);

    faults(&e, json!({"share_reset": 0.0, "share_truncate": 1.0})).await;
    let r = get(&e).send().await.expect("headers arrive");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.is_err(), "the body is cut short");

    faults(
        &e,
        json!({"share_truncate": 0.0, "share_hang": 1.0, "hang_ms": 2000}),
    )
    .await;
    let err = attempt(get(&e).timeout(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(err.contains("timeout"), "{err}");

    let v = control(&e, Method::GET, "/__emulator/faults", json!({})).await;
    assert_eq!(
        v["injected_transport"],
        json!({"reset": 1, "hang": 1, "truncate": 1})
    );
    let v = control(&e, Method::DELETE, "/__emulator/faults", json!({})).await;
    assert_eq!(v["share_hang"], 0.0);
    let (s, _) = attempt(get(&e)).await.unwrap();
    assert_eq!(s, 200);
    let bad = e
        .client
        .post(e.url("/__emulator/faults"))
        .json(&json!({"share_reset": 0.8, "share_503": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn queries_time_out_lose_their_locator_and_come_in_short_pages() {
    let e = common::start().await;
    for i in 0..7 {
        let (s, _) = e
            .post(
                &e.data("/sobjects/Account"),
                json!({"Name": format!("A{i}")}),
            )
            .await;
        assert_eq!(s, 201);
    }
    faults(&e, json!({"query_timeout": 1, "query_page_size": 3})).await;
    let url = format!("{}?q=SELECT+Id+FROM+Account", e.data("/query"));
    let (s, v) = e.get(&url).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "QUERY_TIMEOUT");
    let (s, v) = e.get(&url).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["totalSize"], 7);
    assert_eq!(v["records"].as_array().unwrap().len(), 3, "a short page");
    let next = v["nextRecordsUrl"].as_str().unwrap().to_string();
    let (s, page) = e.get(&e.url(&next)).await;
    assert_eq!((s, page["records"].as_array().unwrap().len()), (200, 3));
    let next = page["nextRecordsUrl"].as_str().unwrap().to_string();
    faults(&e, json!({"invalid_query_locator": 1})).await;
    let (s, v) = e.get(&e.url(&next)).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_QUERY_LOCATOR");
    // The cursor is gone for good, as a real expired one.
    let (s, _) = e.get(&e.url(&next)).await;
    assert_eq!(s, 400);
}

async fn bulk_query(e: &common::Emu) -> String {
    let (s, v) = e
        .post(
            &e.data("/jobs/query"),
            json!({"operation": "query", "query": "SELECT Id FROM Account"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn job_state(e: &common::Emu, id: &str) -> (u16, Value) {
    e.get(&e.data(&format!("/jobs/query/{id}"))).await
}

async fn settle(e: &common::Emu, id: &str) -> Value {
    for _ in 0..300 {
        let (_, v) = job_state(e, id).await;
        if ["JobComplete", "Failed", "Aborted"].contains(&v["state"].as_str().unwrap_or("")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_jobs_fail_stay_slow_or_expire() {
    let e = common::start().await;
    faults(&e, json!({"bulk_fail_next": 1})).await;
    let failed = bulk_query(&e).await;
    let v = settle(&e, &failed).await;
    assert_eq!(v["state"], "Failed", "{v}");
    assert!(v["errorMessage"]
        .as_str()
        .unwrap()
        .contains("InternalServerError"));
    let ok = bulk_query(&e).await;
    assert_eq!(settle(&e, &ok).await["state"], "JobComplete");

    faults(&e, json!({"bulk_slow_ms": 700})).await;
    let slow = bulk_query(&e).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = job_state(&e, &slow).await;
    assert_eq!(v["state"], "InProgress", "{v}");
    assert_eq!(settle(&e, &slow).await["state"], "JobComplete");

    faults(&e, json!({"bulk_slow_ms": 0, "bulk_expire_jobs": true})).await;
    for id in [&failed, &ok, &slow] {
        let (s, v) = job_state(&e, id).await;
        assert_eq!(s, 404, "{v}");
        let (s, _) = e.get(&e.data(&format!("/jobs/query/{id}/results"))).await;
        assert_eq!(s, 404);
    }
    let (_, list) = e.get(&e.data("/jobs/query")).await;
    assert_eq!(list["records"], json!([]));
    // Jobs created afterwards live on.
    let fresh = bulk_query(&e).await;
    assert_eq!(settle(&e, &fresh).await["state"], "JobComplete");
}

#[tokio::test]
async fn unable_to_lock_row_aims_at_one_object_or_one_record() {
    let e = common::start().await;
    let (_, a) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Locked"}))
        .await;
    let a = a["id"].as_str().unwrap().to_string();
    let (_, b) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Free"}))
        .await;
    let b = b["id"].as_str().unwrap().to_string();
    let v = faults(
        &e,
        json!({"lock_rows": [{"id": a, "count": 2}, {"object": "Contact", "count": 1}]}),
    )
    .await;
    assert_eq!(v["lock_rows"].as_array().unwrap().len(), 2);
    let (s, v) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{b}")),
            json!({"Name": "Free 2"}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    for _ in 0..2 {
        let (s, v) = e
            .patch(
                &e.data(&format!("/sobjects/Account/{a}")),
                json!({"Name": "x"}),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert_eq!(v[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    }
    let (s, _) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{a}")),
            json!({"Name": "x"}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = e
        .post(&e.data("/sobjects/Contact"), json!({"LastName": "Kid"}))
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    let (s, _) = e
        .post(&e.data("/sobjects/Contact"), json!({"LastName": "Kid"}))
        .await;
    assert_eq!(s, 201);
    let bad = e
        .client
        .post(e.url("/__emulator/faults"))
        .json(&json!({"lock_rows": [{"count": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn changes_outside_the_api_publish_no_change_events() {
    let e = common::start().await;
    let (_, a) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Original"}))
        .await;
    let a = a["id"].as_str().unwrap().to_string();
    let (_, before) = e.get(&e.data(&format!("/sobjects/Account/{a}"))).await;
    let replay = e.running.org.cdc().latest_replay_id();
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 5_000}),
    )
    .await;

    let v = control(
        &e,
        Method::POST,
        "/__emulator/data/touch",
        json!({"ids": [a]}),
    )
    .await;
    assert_eq!(v["touched"], 1);
    let (_, touched) = e.get(&e.data(&format!("/sobjects/Account/{a}"))).await;
    assert_ne!(touched["SystemModstamp"], before["SystemModstamp"]);
    assert_eq!(touched["LastModifiedDate"], before["LastModifiedDate"]);
    assert_eq!(touched["Name"], "Original");

    control(
        &e,
        Method::POST,
        "/__emulator/data/update",
        json!({"id": a, "fields": {"Name": "Fixed"}}),
    )
    .await;
    let (_, fixed) = e.get(&e.data(&format!("/sobjects/Account/{a}"))).await;
    assert_eq!(fixed["Name"], "Fixed");
    assert_ne!(fixed["LastModifiedDate"], before["LastModifiedDate"]);

    control(
        &e,
        Method::POST,
        "/__emulator/data/delete",
        json!({"ids": [a]}),
    )
    .await;
    let (s, _) = e.get(&e.data(&format!("/sobjects/Account/{a}"))).await;
    assert_eq!(s, 404);
    assert_eq!(
        e.running.org.cdc().latest_replay_id(),
        replay,
        "no change event for any of them"
    );
    let r = e
        .client
        .post(e.url("/__emulator/data/touch"))
        .json(&json!({"ids": ["001000000000000AAA"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
