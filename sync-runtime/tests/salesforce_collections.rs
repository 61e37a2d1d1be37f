//! sObject Collections writes against the emulated org: per-record results with a validation
//! rule failing some records while the others succeed, chunks of 200, upsert by external Id,
//! update, delete, and a lock error reported as retryable.

mod salesforce_support;

use salesforce_support::org;
use serde_json::{json, Value};
use sync_runtime::salesforce::{CallKind, ErrorClass};

#[tokio::test]
async fn a_validation_rule_fails_its_records_and_the_others_are_created() {
    let org = org().await;
    org.post(
        "validation-rules",
        json!({"object": "Account", "field": "Name", "op": "contains", "value": "test",
               "message": "Test accounts are not allowed", "errorDisplayField": "Name"}),
    )
    .await;
    let client = org.client();
    let names = ["Alpha", "a test one", "Beta", "another test", "Gamma"];
    let records: Vec<Value> = names.iter().map(|n| json!({"Name": n})).collect();
    let results = client
        .create_records("Account", &records)
        .await
        .expect("the call succeeds");
    assert_eq!(results.len(), 5);
    for (name, result) in names.iter().zip(&results) {
        if name.contains("test") {
            assert!(!result.success && result.id.is_none());
            let e = result.error().expect("why");
            assert_eq!(e.code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
            assert_eq!(e.message, "Test accounts are not allowed");
            assert_eq!(e.fields, vec!["Name"]);
            assert_eq!(e.class, ErrorClass::Definite);
        } else {
            assert!(result.success, "{result:?}");
            let id = result.id.as_deref().expect("id");
            let stored = client
                .get_record("Account", id, &["Name"])
                .await
                .expect("stored");
            assert_eq!(stored["Name"], *name);
        }
    }
    assert_eq!(client.call_counts().get(CallKind::Collections), 1);
}

#[tokio::test]
async fn large_writes_go_out_in_chunks_of_two_hundred_in_order() {
    let org = org().await;
    let client = org.client();
    let records: Vec<Value> = (0..450)
        .map(|i| json!({"Name": format!("Bulk Co {i:03}")}))
        .collect();
    let created = client
        .create_records("Account", &records)
        .await
        .expect("create");
    assert_eq!(client.call_counts().get(CallKind::Collections), 3);
    assert!(created.iter().all(|r| r.success));
    let ids: Vec<String> = created.iter().map(|r| r.id.clone().expect("id")).collect();
    let last = client
        .get_record("Account", &ids[449], &["Name"])
        .await
        .expect("last");
    assert_eq!(last["Name"], "Bulk Co 449");

    let updates: Vec<Value> = ids
        .iter()
        .map(|id| json!({"Id": id, "Phone": "555-0199"}))
        .collect();
    let updated = client
        .update_records("Account", &updates)
        .await
        .expect("update");
    assert!(updated.iter().all(|r| r.success));
    let first = client
        .get_record("Account", &ids[0], &["Name", "Phone"])
        .await
        .expect("first");
    assert_eq!(
        (first["Name"].as_str(), first["Phone"].as_str()),
        (Some("Bulk Co 000"), Some("555-0199")),
        "only the sent field changed"
    );

    let deleted = client.delete_records(&ids).await.expect("delete");
    assert!(deleted.iter().all(|r| r.success));
    assert_eq!(client.call_counts().get(CallKind::Collections), 9);
    let remaining = client
        .count("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk Co %'")
        .await
        .expect("count");
    assert_eq!(remaining, 0);
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let org = org().await;
    let client = org.client();
    let account = client
        .create("Account", &json!({"Name": "Invoiced Inc"}))
        .await
        .expect("account");
    let new_invoices: Vec<Value> = (1..=3)
        .map(|i| json!({"External_Id__c": format!("INV-{i}"), "Account__c": account, "Amount__c": 100}))
        .collect();
    // The master-detail parent is set on insert only (it cannot be reparented).
    let changes: Vec<Value> = (1..=3)
        .map(|i| json!({"External_Id__c": format!("INV-{i}"), "Amount__c": 250}))
        .collect();
    let first = client
        .upsert_records("Invoice__c", "External_Id__c", &new_invoices)
        .await
        .expect("upsert");
    assert!(
        first.iter().all(|r| r.success && r.created == Some(true)),
        "{first:?}"
    );
    let second = client
        .upsert_records("Invoice__c", "External_Id__c", &changes)
        .await
        .expect("upsert again");
    assert!(
        second.iter().all(|r| r.success && r.created == Some(false)),
        "{second:?}"
    );
    assert_eq!(
        first.iter().map(|r| &r.id).collect::<Vec<_>>(),
        second.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    let total = client
        .count("SELECT COUNT() FROM Invoice__c WHERE Amount__c = 250")
        .await
        .expect("count");
    assert_eq!(total, 3);
}

#[tokio::test]
async fn a_locked_record_fails_alone_and_is_marked_retryable() {
    let org = org().await;
    let client = org.client();
    client.login().await.expect("login");
    org.post("faults", json!({"unable_to_lock_row": 1})).await;
    let records: Vec<Value> = ["One", "Two"].iter().map(|n| json!({"Name": n})).collect();
    let results = client
        .create_records("Account", &records)
        .await
        .expect("call");
    let failed: Vec<_> = results.iter().filter(|r| !r.success).collect();
    assert_eq!(failed.len(), 1, "{results:?}");
    let e = failed[0].error().expect("error");
    assert_eq!(e.code, "UNABLE_TO_LOCK_ROW");
    assert!(e.is_retryable());
    assert_eq!(results.iter().filter(|r| r.success).count(), 1);
}
