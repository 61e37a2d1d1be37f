//! sObject Collections, composite batch and tree over real HTTP.

mod common;

use serde_json::json;

#[tokio::test]
async fn collections_create_update_delete_retrieve() {
    let e = common::start().await;
    let (s, v) = e
        .post(
            &e.data("/composite/sobjects"),
            json!({"allOrNone": false, "records": [
                {"attributes": {"type": "Account"}, "Name": "A1"},
                {"attributes": {"type": "Account"}, "Industry": "Energy"},
                {"attributes": {"type": "Contact"}, "LastName": "Smith", "FirstName": "Ann"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["success"], true);
    assert_eq!(v[0]["errors"], json!([]));
    assert_eq!(v[1]["success"], false);
    assert_eq!(v[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(v[1]["errors"][0]["fields"], json!(["Name"]));
    assert!(v[1].get("id").is_none());
    let a1 = v[0]["id"].as_str().unwrap().to_string();
    let c1 = v[2]["id"].as_str().unwrap().to_string();
    assert!(c1.starts_with("003"));

    // Contact Name is computed from its parts.
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Contact/{c1}"))).await;
    assert_eq!(rec["Name"], "Ann Smith");

    let (s, v) = e
        .patch(
            &e.data("/composite/sobjects"),
            json!({"records": [
                {"attributes": {"type": "Account"}, "id": a1, "Name": "A1 renamed"},
                {"attributes": {"type": "Account"}, "Name": "no id"},
                {"attributes": {"type": "Account"}, "id": "001RM000003oLrB000", "Name": "x"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["success"], true);
    assert_eq!(v[0]["id"], a1);
    assert_eq!(v[1]["errors"][0]["statusCode"], "MISSING_ARGUMENT");
    assert_eq!(v[2]["errors"][0]["statusCode"], "MALFORMED_ID");
    assert_eq!(
        v[2]["errors"][0]["message"],
        "malformed id 001RM000003oLrB000"
    );

    let (s, v) = e
        .post(
            &e.data("/composite/sobjects/Account"),
            json!({"ids": [a1, c1], "fields": ["Id", "Name"]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["Name"], "A1 renamed");
    assert_eq!(v[1], serde_json::Value::Null);

    let (s, v) = e
        .delete(&e.data(&format!("/composite/sobjects?ids={a1},{c1}")))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["success"], true);
    assert_eq!(v[1]["success"], true);
    let (s, v) = e
        .delete(&e.data(&format!("/composite/sobjects?ids={a1}")))
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["id"], a1);
    assert_eq!(v[0]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");
}

#[tokio::test]
async fn collections_all_or_none_rolls_back() {
    let e = common::start().await;
    let (s, v) = e
        .post(
            &e.data("/composite/sobjects"),
            json!({"allOrNone": true, "records": [
                {"attributes": {"type": "Account"}, "Name": "good"},
                {"attributes": {"type": "Account"}, "Name": "x".repeat(300)}
            ]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["success"], false);
    assert_eq!(
        v[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(v[1]["errors"][0]["statusCode"], "STRING_TOO_LONG");
    assert_eq!(e.running.org.read().table(0).total_count(), 0);
    assert!(e.running.org.cdc().is_empty());

    let too_many: Vec<_> = (0..201)
        .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("n{i}")}))
        .collect();
    let (s, v) = e
        .post(&e.data("/composite/sobjects"), json!({"records": too_many}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "EXCEEDED_ID_LIMIT");
}

#[tokio::test]
async fn composite_batch_dispatches_and_halts() {
    let e = common::start().await;
    let (s, v) = e
        .post(
            &e.data("/composite/batch"),
            json!({"haltOnError": true, "batchRequests": [
                {"method": "GET", "url": "/services/data/v59.0/sobjects/Account/describe"},
                {"method": "POST", "url": "v59.0/sobjects/Account", "richInput": {"Name": "from batch"}},
                {"method": "GET", "url": "/services/data/v59.0/sobjects/Nope/describe"},
                {"method": "GET", "url": "/services/data/v59.0/limits"}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["hasErrors"], true);
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0]["statusCode"], 200);
    assert_eq!(r[0]["result"]["name"], "Account");
    assert_eq!(r[1]["statusCode"], 201);
    assert_eq!(r[1]["result"]["success"], true);
    assert_eq!(r[2]["statusCode"], 404);
    assert_eq!(r[3]["statusCode"], 412);
    assert_eq!(r[3]["result"][0]["errorCode"], "BATCH_PROCESSING_HALTED");
    // The batch counted as one API request.
    assert_eq!(e.running.org.api_usage().0, 1);
}

#[tokio::test]
async fn composite_tree_inserts_nested_records() {
    let e = common::start().await;
    let (s, v) = e
        .post(
            &e.data("/composite/tree/Account"),
            json!({"records": [{
                "attributes": {"type": "Account", "referenceId": "acc1"},
                "Name": "Tree Co",
                "Contacts": {"records": [
                    {"attributes": {"type": "Contact", "referenceId": "c1"}, "LastName": "One"},
                    {"attributes": {"type": "Contact", "referenceId": "c2"}, "LastName": "Two"}
                ]}
            }]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["hasErrors"], false);
    let res = v["results"].as_array().unwrap();
    assert_eq!(res.len(), 3);
    assert_eq!(res[0]["referenceId"], "acc1");
    let acc = res[0]["id"].as_str().unwrap();
    let c1 = res[1]["id"].as_str().unwrap();
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Contact/{c1}"))).await;
    assert_eq!(rec["AccountId"], acc);

    // One bad child rolls everything back.
    let before = e.running.org.read().table(0).total_count();
    let (s, v) = e
        .post(
            &e.data("/composite/tree/Account"),
            json!({"records": [{
                "attributes": {"type": "Account", "referenceId": "acc2"},
                "Name": "Tree Two",
                "Contacts": {"records": [
                    {"attributes": {"type": "Contact", "referenceId": "bad"}, "FirstName": "No last name"}
                ]}
            }]}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["hasErrors"], true);
    assert_eq!(v["results"][0]["referenceId"], "bad");
    assert_eq!(
        v["results"][0]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    assert_eq!(e.running.org.read().table(0).total_count(), before);
}
