//! Where the emulator must be as unkind as real Salesforce, over real HTTP: duplicate external
//! IDs in one call, unordered rows that are not in Id order, slow transactions that become
//! visible late (and hold `latestDateCovered` back), the recycle bin (SOAP undelete, 15-day
//! purge), fixed Bulk 2.0 query results and the rolling 24-hour API usage.

mod common;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

async fn account(e: &common::Emu, name: &str) -> String {
    let (s, v) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": name}))
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

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

async fn query_all_pages(e: &common::Emu, endpoint: &str, soql: &str) -> Vec<Value> {
    let url = format!("{}?q={}", e.data(endpoint), urlencode(soql));
    let (s, mut v) = e.get(&url).await;
    assert_eq!(s, 200, "{v}");
    let mut rows: Vec<Value> = v["records"].as_array().unwrap().clone();
    while let Some(next) = v["nextRecordsUrl"].as_str() {
        let (s, page) = e.get(&e.url(next)).await;
        assert_eq!(s, 200, "{page}");
        rows.extend(page["records"].as_array().unwrap().iter().cloned());
        v = page;
    }
    rows
}

/// Sessions outlive the clock advances of a test.
async fn long_sessions(e: &common::Emu) {
    control(
        e,
        Method::PUT,
        "/__emulator/sessions",
        json!({"lifetime_seconds": 86_400 * 365}),
    )
    .await;
    // The current session took its expiry from the old lifetime; one use extends it.
    e.req(Method::GET, &e.data("/limits"), None).await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_same_external_id_twice_in_one_collection_fails_both() {
    let e = common::start().await;
    let acc = account(&e, "Buyer").await;
    let (s, v) = e
        .patch(
            &e.data("/composite/sobjects/Invoice__c/External_Id__c"),
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Invoice__c"}, "External_Id__c": "INV-1", "Account__c": acc, "Amount__c": 1},
                {"attributes": {"type": "Invoice__c"}, "External_Id__c": "INV-2", "Account__c": acc, "Amount__c": 2},
                {"attributes": {"type": "Invoice__c"}, "External_Id__c": "inv-1", "Account__c": acc, "Amount__c": 3}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for i in [0, 2] {
        assert_eq!(v[i]["success"], false, "{v}");
        assert_eq!(v[i]["errors"][0]["statusCode"], "DUPLICATE_VALUE", "{v}");
        assert!(v[i]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Duplicate external id specified: "));
        assert_eq!(v[i]["errors"][0]["fields"], json!(["External_Id__c"]));
    }
    assert_eq!(v[1]["success"], true);
    // Neither duplicate was written: only INV-2 exists.
    let rows = query_all_pages(&e, "/query", "SELECT External_Id__c FROM Invoice__c").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["External_Id__c"], "INV-2");
}

#[tokio::test]
async fn unordered_rows_and_ties_do_not_come_in_id_order() {
    let e = common::start().await;
    let mut created = Vec::new();
    for i in 0..40 {
        created.push(account(&e, if i % 2 == 0 { "Same" } else { "Other" }).await);
    }
    let mut by_id = created.clone();
    by_id.sort();
    let first = ids(&query_all_pages(&e, "/query", "SELECT Id FROM Account").await);
    let again = ids(&query_all_pages(&e, "/query", "SELECT Id FROM Account").await);
    assert_eq!(first, again, "the order is deterministic");
    assert_ne!(first, by_id, "no ORDER BY is not Id order");
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, by_id, "every row is there");

    // Ties under ORDER BY are not broken by Id either.
    let rows = query_all_pages(&e, "/query", "SELECT Id, Name FROM Account ORDER BY Name").await;
    let names: Vec<&str> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
    let same: Vec<String> = ids(&rows[20..]);
    let mut same_sorted = same.clone();
    same_sorted.sort();
    assert_ne!(same, same_sorted, "ties under ORDER BY Name in Id order");

    // Another seed, another order.
    let v = control(&e, Method::PUT, "/__emulator/order", json!({"seed": 99})).await;
    assert_eq!(v["seed"], 99);
    let reseeded = ids(&query_all_pages(&e, "/query", "SELECT Id FROM Account").await);
    assert_ne!(reseeded, first);
}

#[tokio::test]
async fn a_slow_transaction_becomes_visible_after_a_poller_passed_its_stamp() {
    let e = common::start().await;
    control(
        &e,
        Method::POST,
        "/__emulator/faults",
        json!({"slow_transactions": {"count": 1, "delay_ms": 1500}}),
    )
    .await;
    // The slow write starts (and is stamped) now...
    let slow = {
        let url = e.data("/sobjects/Account");
        let req = e
            .client
            .post(url)
            .bearer_auth(&e.token)
            .json(&json!({"Name": "Slow"}));
        tokio::spawn(async move { req.send().await.expect("slow write").status().as_u16() })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Three emulated minutes pass and a fast write commits meanwhile.
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 180_000}),
    )
    .await;
    let fast = account(&e, "Fast").await;
    let (_, clock) = e.get(&e.url("/__emulator/clock")).await;
    let now_ms = clock["now_ms"].as_i64().unwrap();
    let start = chrono::DateTime::from_timestamp_millis(now_ms - 3_600_000)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let updated_url = e.data(&format!(
        "/sobjects/Account/updated?start={start}&end=2999-01-01T00:00:00Z"
    ));
    let (s, updated) = e.get(&updated_url).await;
    assert_eq!(s, 200, "{updated}");
    let visible = ids(&query_all_pages(&e, "/query", "SELECT Id FROM Account").await);
    assert_eq!(
        visible,
        vec![fast.clone()],
        "the slow write is not visible yet"
    );
    // latestDateCovered is held back to the running transaction's start (over 3 minutes
    // ago), so the fast write, stamped after it, is left for the next poll.
    let covered_ms = parse_ms(updated["latestDateCovered"].as_str().unwrap());
    assert!(covered_ms <= now_ms - 180_000, "{updated} vs now {now_ms}");
    assert_eq!(updated["ids"], json!([]), "{updated}");

    assert_eq!(slow.await.unwrap(), 201);
    let rows = query_all_pages(
        &e,
        "/query",
        "SELECT Id, Name, SystemModstamp FROM Account ORDER BY SystemModstamp, Id",
    )
    .await;
    assert_eq!(rows.len(), 2);
    // Stamped before the fast one although it committed after it.
    assert_eq!(rows[0]["Name"], "Slow", "{rows:?}");
    assert!(parse_ms(rows[0]["SystemModstamp"].as_str().unwrap()) < covered_ms + 60_000);
    // A poll from the held-back latestDateCovered sees both.
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 60_000}),
    )
    .await;
    let (_, after) = e.get(&updated_url).await;
    assert_eq!(after["ids"].as_array().unwrap().len(), 2, "{after}");
    assert!(parse_ms(after["latestDateCovered"].as_str().unwrap()) > now_ms);
}

#[tokio::test]
async fn a_slow_bulk_ingest_job_is_stamped_at_its_start_and_visible_after_the_delay() {
    let e = common::start().await;
    control(
        &e,
        Method::POST,
        "/__emulator/faults",
        json!({"slow_transactions": {"count": 1, "delay_ms": 1500}}),
    )
    .await;
    // Creating the job, uploading and closing it are not the slow transaction: the job is.
    let (s, job) = e
        .post(
            &e.data("/jobs/ingest"),
            json!({"object": "Account", "operation": "insert", "lineEnding": "LF"}),
        )
        .await;
    assert_eq!(s, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    let put = e
        .client
        .put(e.data(&format!("/jobs/ingest/{id}/batches")))
        .bearer_auth(&e.token)
        .header("Content-Type", "text/csv")
        .body("Name\nSlow Bulk\n")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let (s, patched) = e
        .patch(
            &e.data(&format!("/jobs/ingest/{id}")),
            json!({"state": "UploadComplete"}),
        )
        .await;
    assert_eq!(s, 200, "{patched}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 180_000}),
    )
    .await;
    let fast = account(&e, "Fast").await;
    let (_, clock) = e.get(&e.url("/__emulator/clock")).await;
    let now_ms = clock["now_ms"].as_i64().unwrap();
    let start = chrono::DateTime::from_timestamp_millis(now_ms - 3_600_000)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (_, updated) = e
        .get(&e.data(&format!(
            "/sobjects/Account/updated?start={start}&end=2999-01-01T00:00:00Z"
        )))
        .await;
    let visible = ids(&query_all_pages(&e, "/query", "SELECT Id FROM Account").await);
    assert_eq!(visible, vec![fast], "the job's write is not visible yet");
    let covered_ms = parse_ms(updated["latestDateCovered"].as_str().unwrap());
    assert!(covered_ms <= now_ms - 180_000, "{updated} vs now {now_ms}");

    let mut state = Value::Null;
    for _ in 0..400 {
        let (_, info) = e.get(&e.data(&format!("/jobs/ingest/{id}"))).await;
        state = info["state"].clone();
        if state == "JobComplete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(state, "JobComplete");
    let rows = query_all_pages(
        &e,
        "/query",
        "SELECT Id, Name, SystemModstamp FROM Account ORDER BY SystemModstamp, Id",
    )
    .await;
    assert_eq!(rows.len(), 2);
    // Stamped when the job started, before the fast write that committed earlier.
    assert_eq!(rows[0]["Name"], "Slow Bulk", "{rows:?}");
    assert!(parse_ms(rows[0]["SystemModstamp"].as_str().unwrap()) < covered_ms + 60_000);
}

fn parse_ms(rest_datetime: &str) -> i64 {
    chrono::DateTime::parse_from_str(rest_datetime, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("{rest_datetime}: {e}"))
        .timestamp_millis()
}

fn undelete_envelope(session: &str, ids: &[&str]) -> String {
    let ids: String = ids
        .iter()
        .map(|i| format!("<urn:ids>{i}</urn:ids>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com">
  <soapenv:Header><urn:SessionHeader><urn:sessionId>{session}</urn:sessionId></urn:SessionHeader></soapenv:Header>
  <soapenv:Body><urn:undelete>{ids}</urn:undelete></soapenv:Body>
</soapenv:Envelope>"#
    )
}

async fn soap_undelete(e: &common::Emu, session: &str, ids: &[&str]) -> (u16, String) {
    let r = e
        .client
        .post(e.url("/services/Soap/u/59.0"))
        .header("Content-Type", "text/xml; charset=UTF-8")
        .header("SOAPAction", "undelete")
        .body(undelete_envelope(session, ids))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn soap_undelete_restores_from_the_recycle_bin_until_it_is_purged() {
    let e = common::start().await;
    long_sessions(&e).await;
    let a = account(&e, "Kept").await;
    let b = account(&e, "Purged later").await;
    let live = account(&e, "Never deleted").await;
    for id in [&a, &b] {
        let (s, v) = e.delete(&e.data(&format!("/sobjects/Account/{id}"))).await;
        assert_eq!(s, 204, "{v}");
    }
    let (s, xml) = soap_undelete(&e, &e.token, &[&a, &live]).await;
    assert_eq!(s, 200, "{xml}");
    assert!(xml.contains("<undeleteResponse>"), "{xml}");
    assert!(
        xml.contains(&format!(
            "<result><id>{a}</id><success>true</success></result>"
        )),
        "{xml}"
    );
    assert!(
        xml.contains("<statusCode>UNDELETE_FAILED</statusCode>"),
        "{xml}"
    );
    let (s, rec) = e.get(&e.data(&format!("/sobjects/Account/{a}"))).await;
    assert_eq!((s, rec["Name"].as_str()), (200, Some("Kept")));
    // At most 200 ids per call.
    let many: Vec<&str> = std::iter::repeat_n(a.as_str(), 201).collect();
    let (s, xml) = soap_undelete(&e, &e.token, &many).await;
    assert_eq!(s, 500);
    assert!(
        xml.contains("<faultcode>sf:EXCEEDED_ID_LIMIT</faultcode>"),
        "{xml}"
    );
    // A bad session is a SOAP fault.
    let (s, xml) = soap_undelete(&e, "00Dnope", &[&b]).await;
    assert_eq!(s, 500);
    assert!(xml.contains("INVALID_SESSION_ID"), "{xml}");

    // 15 emulated days later the recycle bin is purged: queryAll no longer sees it, undelete
    // cannot bring it back, /deleted still lists it within its window.
    let deleted_rows = query_all_pages(
        &e,
        "/queryAll",
        "SELECT Id FROM Account WHERE IsDeleted = true",
    )
    .await;
    assert_eq!(ids(&deleted_rows), vec![b.clone()]);
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 15 * 86_400_000i64 + 60_000}),
    )
    .await;
    let deleted_rows = query_all_pages(
        &e,
        "/queryAll",
        "SELECT Id FROM Account WHERE IsDeleted = true",
    )
    .await;
    assert!(deleted_rows.is_empty(), "{deleted_rows:?}");
    let (_, xml) = soap_undelete(&e, &e.token, &[&b]).await;
    assert!(xml.contains("<success>false</success>"), "{xml}");
}

#[tokio::test]
async fn purging_the_recycle_bin_now_keeps_deleted_listing() {
    let e = common::start().await;
    let a = account(&e, "Gone").await;
    let (s, _) = e.delete(&e.data(&format!("/sobjects/Account/{a}"))).await;
    assert_eq!(s, 204);
    let v = control(&e, Method::POST, "/__emulator/recycle-bin/purge", json!({})).await;
    assert_eq!(v["purged"], 1);
    let rows = query_all_pages(&e, "/queryAll", "SELECT Id FROM Account").await;
    assert!(rows.is_empty(), "{rows:?}");
    // `/deleted` covers whole minutes up to now: look once the deletion's minute is over.
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 120_000}),
    )
    .await;
    let (_, clock) = e.get(&e.url("/__emulator/clock")).await;
    let now_ms = clock["now_ms"].as_i64().unwrap();
    let start = chrono::DateTime::from_timestamp_millis(now_ms - 3_600_000)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (s, v) = e
        .get(&e.data(&format!(
            "/sobjects/Account/deleted?start={start}&end=2999-01-01T00:00:00Z"
        )))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deletedRecords"][0]["id"], a.as_str());
    let (_, xml) = soap_undelete(&e, &e.token, &[&a]).await;
    assert!(xml.contains("<success>false</success>"), "{xml}");
}

#[tokio::test]
async fn api_usage_follows_a_rolling_24_hour_window() {
    let e = common::start().await;
    long_sessions(&e).await;
    let usage = |r: &reqwest::Response| {
        r.headers()
            .get("Sforce-Limit-Info")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    for _ in 0..3 {
        e.req(Method::GET, &e.data("/limits"), None).await;
    }
    let r = e.req(Method::GET, &e.data("/limits"), None).await;
    assert_eq!(usage(&r), "api-usage=5/100000");
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 12 * 3_600_000}),
    )
    .await;
    let r = e.req(Method::GET, &e.data("/limits"), None).await;
    assert_eq!(
        usage(&r),
        "api-usage=6/100000",
        "12 hours later all still count"
    );
    control(
        &e,
        Method::POST,
        "/__emulator/clock",
        json!({"advance_ms": 12 * 3_600_000 + 120_000}),
    )
    .await;
    let r = e.req(Method::GET, &e.data("/limits"), None).await;
    assert_eq!(
        usage(&r),
        "api-usage=2/100000",
        "24 hours after the first four they no longer count"
    );
}
