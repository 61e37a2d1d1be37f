//! REST reads against the emulated org: `COUNT()`, queries paged by `nextRecordsUrl`, queryAll,
//! Collections retrieve in chunks of 2,000, the `updated` / `deleted` replication resources and
//! describe.

mod salesforce_support;

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use salesforce_support::{org, Org};
use serde_json::json;
use sync_runtime::salesforce::CallKind;

async fn emulated_now(org: &Org) -> DateTime<Utc> {
    let clock = org.control(Method::GET, "clock", None).await;
    DateTime::from_timestamp_millis(clock["now_ms"].as_i64().expect("now_ms")).expect("time")
}

#[tokio::test]
async fn a_query_streams_page_by_page_and_agrees_with_count() {
    let org = org().await;
    org.seed("Account", 1_100).await;
    let client = org.client();
    let total = client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("count");
    assert!(total >= 1_100, "{total}");

    let mut page = client
        .query_with_batch_size("SELECT Id, Name FROM Account", false, 200)
        .await
        .expect("first page");
    let mut ids = HashSet::new();
    let mut pages = 1;
    loop {
        assert_eq!(page.total_size, total);
        assert!(page.records.len() <= 200);
        for record in &page.records {
            assert!(ids.insert(record["Id"].as_str().expect("Id").to_owned()));
        }
        let Some(next) = page.next_records_url.clone() else {
            assert!(page.done);
            break;
        };
        page = client.query_more(&next).await.expect("next page");
        pages += 1;
    }
    assert_eq!(ids.len() as u64, total);
    assert!(pages >= 6, "{pages} pages");
    assert_eq!(client.call_counts().get(CallKind::Query), 1 + pages);
}

#[tokio::test]
async fn query_all_sees_deleted_records_and_query_does_not() {
    let org = org().await;
    let client = org.client();
    let id = client
        .create("Account", &json!({"Name": "Soon Gone"}))
        .await
        .expect("create");
    client.delete("Account", &id).await.expect("delete");
    let soql = format!("SELECT Id, IsDeleted FROM Account WHERE Id = '{id}'");
    assert_eq!(client.query(&soql).await.expect("query").total_size, 0);
    let all = client.query_all(&soql).await.expect("queryAll");
    assert_eq!(all.total_size, 1);
    assert_eq!(all.records[0]["IsDeleted"], true);
}

#[tokio::test]
async fn retrieve_fetches_records_by_id_in_chunks_of_two_thousand() {
    let org = org().await;
    org.seed("Account", 2_500).await;
    let client = org.client();
    let mut ids = Vec::new();
    let mut page = client.query("SELECT Id FROM Account").await.expect("query");
    loop {
        ids.extend(
            page.records
                .iter()
                .map(|r| r["Id"].as_str().expect("Id").to_owned()),
        );
        match page.next_records_url.clone() {
            Some(next) => page = client.query_more(&next).await.expect("more"),
            None => break,
        }
    }
    assert!(ids.len() > 2_000);
    let before = client.call_counts().get(CallKind::Query);
    let records = client
        .retrieve("Account", &ids, &["Id", "Name"])
        .await
        .expect("retrieve");
    assert_eq!(client.call_counts().get(CallKind::Query) - before, 2);
    assert_eq!(records.len(), ids.len());
    assert_eq!(records[0]["Id"], ids[0].as_str());
    assert!(records[0]["Name"].is_string());
}

#[tokio::test]
async fn updated_and_deleted_report_changes_in_a_window() {
    let org = org().await;
    let client = org.client();
    let start = emulated_now(&org).await - Duration::minutes(1);
    let changed = client
        .create("Account", &json!({"Name": "Changed Co"}))
        .await
        .expect("create");
    let removed = client
        .create("Account", &json!({"Name": "Removed Co"}))
        .await
        .expect("create");
    client
        .update("Account", &changed, &json!({"Phone": "555-0101"}))
        .await
        .expect("update");
    client.delete("Account", &removed).await.expect("delete");
    // Salesforce covers whole minutes that have passed.
    org.post("clock", json!({"advance_ms": 120_000})).await;
    let end = emulated_now(&org).await;

    let updated = client
        .updated("Account", start, end)
        .await
        .expect("updated");
    assert!(updated.ids.contains(&changed), "{updated:?}");
    assert!(!updated.ids.contains(&removed));
    assert!(updated.latest_date_covered > start && updated.latest_date_covered <= end);

    let deleted = client
        .deleted("Account", start, end)
        .await
        .expect("deleted");
    let gone = deleted
        .deleted
        .iter()
        .find(|d| d.id == removed)
        .expect("the deleted record is listed");
    assert!(gone.deleted_date >= start && gone.deleted_date <= end);
    assert!(deleted.earliest_date_available.is_some());
    assert!(!deleted.deleted.iter().any(|d| d.id == changed));
}

#[tokio::test]
async fn describe_lists_the_objects_fields() {
    let org = org().await;
    let client = org.client();
    let describe = client.describe("Account").await.expect("describe");
    assert_eq!(describe["name"], "Account");
    let fields: Vec<&str> = describe["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(fields.contains(&"Name") && fields.contains(&"SystemModstamp"));
    assert_eq!(client.call_counts().get(CallKind::Describe), 1);
    let e = client
        .describe("NoSuchObject__c")
        .await
        .expect_err("unknown");
    assert!(!e.is_retryable());
}
