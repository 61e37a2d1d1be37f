//! Upsert and get by external ID, formula and auto-number fields, replication helpers.

mod common;

use serde_json::json;

async fn account(e: &common::Emu, name: &str) -> String {
    let (s, v) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": name}))
        .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let e = common::start().await;
    let acc = account(&e, "Buyer").await;
    let url = e.data("/sobjects/Invoice__c/External_Id__c/INV-1");
    let (s, v) = e
        .patch(
            &url,
            json!({"Account__c": acc, "Amount__c": 100, "Tax_Rate__c": 20}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["created"], true);
    assert_eq!(v["success"], true);
    let id = v["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("a01"));

    let (s, v) = e.patch(&url, json!({"Amount__c": 200})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );

    // API ≤ 45 answers 204 without a body on update.
    let old = format!(
        "{}/services/data/v45.0/sobjects/Invoice__c/External_Id__c/INV-1",
        e.base
    );
    let (s, v) = e.patch(&old, json!({"Amount__c": 300})).await;
    assert_eq!(s, 204, "{v}");

    let (s, rec) = e.get(&url).await;
    assert_eq!(s, 200);
    assert_eq!(rec["Id"], id);
    assert_eq!(rec["Amount__c"], 300.0);
    // Formula: Amount__c * (1 + Tax_Rate__c) with the percent as a fraction.
    assert_eq!(rec["Total__c"], 360.0);
    assert_eq!(rec["Status__c"], "Draft");
    assert_eq!(rec["Paid__c"], false);
    assert!(rec["Name"].as_str().unwrap().starts_with("INV-"), "{rec}");
    // External IDs match case-insensitively.
    let (s, _) = e
        .get(&e.data("/sobjects/Invoice__c/External_Id__c/inv-1"))
        .await;
    assert_eq!(s, 200);

    // Formula fields are read-only.
    let (s, v) = e.patch(&url, json!({"Total__c": 1})).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
    // Not an external ID field.
    let (s, v) = e
        .patch(&e.data("/sobjects/Invoice__c/Amount__c/5"), json!({}))
        .await;
    assert_eq!(s, 404);
    assert_eq!(v[0]["errorCode"], "NOT_FOUND");
    // Unique external ID: a second record cannot take the same value.
    let (s, v) = e
        .post(
            &e.data("/sobjects/Invoice__c"),
            json!({"Account__c": acc, "Amount__c": 1, "External_Id__c": "INV-1"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "DUPLICATE_VALUE");
    // Restricted picklist and multipicklist values.
    let (s, v) = e.patch(&url, json!({"Status__c": "Lost"})).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    let (s, _) = e
        .patch(
            &url,
            json!({"Payment_Methods__c": "Card;Cash", "Due_Time__c": "09:30:00.000Z"}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, rec) = e.get(&url).await;
    assert_eq!(rec["Payment_Methods__c"], "Card;Cash");
    assert_eq!(rec["Due_Time__c"], "09:30:00.000Z");
    // Master-detail is not reparentable.
    let other = account(&e, "Other").await;
    let (s, v) = e.patch(&url, json!({"Account__c": other})).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
}

#[tokio::test]
async fn upsert_collection_and_relationship_by_external_id() {
    let e = common::start().await;
    let acc = account(&e, "Buyer").await;
    let (s, v) = e
        .patch(
            &e.data("/composite/sobjects/Invoice__c/External_Id__c"),
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Invoice__c"}, "External_Id__c": "A", "Account__c": acc, "Amount__c": 1},
                {"attributes": {"type": "Invoice__c"}, "External_Id__c": "B", "Account__c": acc, "Amount__c": 2},
                {"attributes": {"type": "Invoice__c"}, "Account__c": acc, "Amount__c": 3}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["created"], true);
    assert_eq!(v[1]["created"], true);
    assert_eq!(v[2]["success"], false);
    let (_, v) = e
        .patch(
            &e.data("/composite/sobjects/Invoice__c/External_Id__c"),
            json!({"records": [
                {"attributes": {"type": "Invoice__c"}, "External_Id__c": "A", "Amount__c": 10}
            ]}),
        )
        .await;
    assert_eq!(v[0]["created"], false);
    assert_eq!(v[0]["success"], true);

    // A child referencing its parent by the parent's external ID (REST nested form).
    let (s, v) = e
        .post(
            &e.data("/sobjects/Invoice__c"),
            json!({"Account__c": acc, "Amount__c": 5, "Reseller__r": {"Id": acc}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, rec) = e
        .get(&e.data(&format!(
            "/sobjects/Invoice__c/{}",
            v["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(rec["Reseller__c"], acc);
}

#[tokio::test]
async fn updated_and_deleted_windows() {
    let e = common::start().await;
    let a = account(&e, "One").await;
    let b = account(&e, "Two").await;
    let (s, _) = e.delete(&e.data(&format!("/sobjects/Account/{b}"))).await;
    assert_eq!(s, 204);
    // Windows cover whole minutes up to now: move emulated time past the writes' minute.
    e.running.org.advance_clock(120_000);
    let now = chrono::Utc::now();
    let start = (now - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    let end = (now + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string();
    // simple-salesforce pre-encodes; jsforce sends it URL-encoded: both decode the same.
    let enc = |s: &str| s.replace(':', "%3A").replace('+', "%2B");
    let (s, v) = e
        .get(&e.data(&format!(
            "/sobjects/Account/updated/?start={}&end={}",
            enc(&start),
            enc(&end)
        )))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ids"], json!([a]));
    assert!(v["latestDateCovered"]
        .as_str()
        .unwrap()
        .ends_with(":00.000+0000"));
    let (s, v) = e
        .get(&e.data(&format!(
            "/sobjects/Account/deleted?start={}&end={}",
            enc(&start),
            enc(&end)
        )))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["deletedRecords"][0]["id"], b);
    assert!(v["deletedRecords"][0]["deletedDate"]
        .as_str()
        .unwrap()
        .ends_with("+0000"));
    assert!(v["earliestDateAvailable"].is_string());
    let (s, v) = e
        .get(&e.data("/sobjects/Account/updated/?start=bogus&end=x"))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_REPLICATION_DATE");
    let (s, v) = e.get(&e.data("/sobjects/Account/updated/")).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "MISSING_ARGUMENT");
}

#[tokio::test]
async fn describe_global_and_limits() {
    let e = common::start().await;
    let (s, g) = e.get(&e.data("/sobjects")).await;
    assert_eq!(s, 200);
    assert_eq!(g["encoding"], "UTF-8");
    assert_eq!(g["maxBatchSize"], 200);
    let names: Vec<&str> = g["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for n in [
        "Account",
        "Contact",
        "Opportunity",
        "Lead",
        "Case",
        "Invoice__c",
    ] {
        assert!(names.contains(&n), "{names:?}");
    }
    assert_eq!(g["sobjects"][0].as_object().unwrap().len(), 28);

    let (s, d) = e.get(&e.data("/sobjects/account/describe")).await;
    assert_eq!(s, 200);
    assert_eq!(d["name"], "Account");
    assert_eq!(d["fields"].as_array().unwrap().len(), 67);
    assert_eq!(
        d["urls"]["sobject"],
        "/services/data/v59.0/sobjects/Account"
    );

    let (s, info) = e.get(&e.data("/sobjects/Account")).await;
    assert_eq!(s, 200);
    assert_eq!(info["objectDescribe"]["keyPrefix"], "001");
    assert_eq!(info["recentItems"], json!([]));

    let (s, l) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 200);
    for k in [
        "DailyApiRequests",
        "DailyBulkApiBatches",
        "DailyBulkV2QueryJobs",
        "DailyBulkV2QueryFileStorageMB",
        "DataStorageMB",
    ] {
        assert!(l[k]["Max"].is_u64(), "{k}");
        assert!(l[k]["Remaining"].is_u64(), "{k}");
    }
    let (used, max) = e.running.org.api_usage();
    assert_eq!(l["DailyApiRequests"]["Remaining"], max - used);
}

#[tokio::test]
async fn api_limit_exhaustion_is_403() {
    let e = common::start().await;
    e.running.org.set_api_limit(2);
    assert_eq!(e.get(&e.data("/limits")).await.0, 200);
    let r = e.req(reqwest::Method::GET, &e.data("/limits"), None).await;
    assert_eq!(r.headers()["Sforce-Limit-Info"], "api-usage=2/2");
    let (s, v) = e.get(&e.data("/limits")).await;
    assert_eq!(s, 403);
    assert_eq!(v[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
    let counts = e.running.org.endpoint_counters();
    assert_eq!(counts["GET /services/data/{version}/limits"], 2);
}
