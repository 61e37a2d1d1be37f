//! REST sObject endpoints over real HTTP: versions, resources, describe, CRUD, errors.

mod common;

use serde_json::json;

#[tokio::test]
async fn versions_and_resources() {
    let e = common::start().await;
    let r = e.client.get(e.url("/services/data")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("Sforce-Limit-Info").is_none());
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v[0]["version"], "20.0");
    assert_eq!(v[0]["label"], "Winter '11");
    assert_eq!(v[0]["url"], "/services/data/v20.0");

    let (s, res) = e.get(&e.data("")).await;
    assert_eq!(s, 200);
    assert_eq!(res["sobjects"], "/services/data/v59.0/sobjects");
    let identity = res["identity"].as_str().unwrap();
    assert!(identity.ends_with(&format!(
        "/id/{}/{}",
        e.running.org.org_id(),
        e.running.org.user_id()
    )));
}

#[tokio::test]
async fn bad_session_is_401_json_array() {
    let e = common::start().await;
    let r = e
        .client
        .get(e.data("/sobjects"))
        .header("Authorization", "Bearer nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])
    );
    // OAuth scheme works like Bearer.
    let r = e
        .client
        .get(e.data("/sobjects"))
        .header("Authorization", format!("OAuth {}", e.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info = r.headers()["Sforce-Limit-Info"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(info.starts_with("api-usage=1/"), "{info}");
    // Expired sessions answer 401.
    e.running.org.expire_all();
    let (s, v) = e.get(&e.data("/sobjects")).await;
    assert_eq!(s, 401);
    assert_eq!(v[0]["errorCode"], "INVALID_SESSION_ID");
}

#[tokio::test]
async fn create_get_update_delete_account() {
    let e = common::start().await;
    let (s, v) = e
        .post(
            &e.data("/sobjects/Account"),
            json!({"Name": "Acme", "Industry": "Energy", "NumberOfEmployees": 12, "BillingCity": "Paris"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["errors"], json!([]));
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 18);
    assert!(id.starts_with("001"));

    let (s, rec) = e.get(&e.data(&format!("/sobjects/Account/{id}"))).await;
    assert_eq!(s, 200);
    assert_eq!(rec["attributes"]["type"], "Account");
    assert_eq!(
        rec["attributes"]["url"],
        format!("/services/data/v59.0/sobjects/Account/{id}")
    );
    assert_eq!(rec["Name"], "Acme");
    assert_eq!(rec["NumberOfEmployees"], 12);
    assert_eq!(rec["IsDeleted"], false);
    assert_eq!(rec["BillingAddress"]["city"], "Paris");
    assert_eq!(rec["OwnerId"], e.running.org.user_id().to_string());
    let created = rec["CreatedDate"].as_str().unwrap();
    assert!(created.ends_with(".000+0000"), "{created}");

    // 15-char id works too; ?fields limits the record.
    let (s, rec) = e
        .get(&e.data(&format!(
            "/sobjects/Account/{}?fields=Name,Industry",
            &id[..15]
        )))
        .await;
    assert_eq!(s, 200);
    assert_eq!(rec.as_object().unwrap().len(), 3, "{rec}");
    assert_eq!(rec["Industry"], "Energy");

    let (s, v) = e
        .patch(
            &e.data(&format!("/sobjects/Account/{id}")),
            json!({"Name": "Acme 2"}),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (_, rec) = e.get(&e.data(&format!("/sobjects/Account/{id}"))).await;
    assert_eq!(rec["Name"], "Acme 2");

    let (s, _) = e.delete(&e.data(&format!("/sobjects/Account/{id}"))).await;
    assert_eq!(s, 204);
    let (s, v) = e.get(&e.data(&format!("/sobjects/Account/{id}"))).await;
    assert_eq!(s, 404);
    assert_eq!(v[0]["errorCode"], "ENTITY_IS_DELETED");
    let (s, v) = e.delete(&e.data(&format!("/sobjects/Account/{id}"))).await;
    assert_eq!(s, 404);
    assert_eq!(v[0]["errorCode"], "ENTITY_IS_DELETED");

    let missing = sf_emulator::SfId::generate("001", 999_999);
    let (s, v) = e
        .get(&e.data(&format!("/sobjects/Account/{missing}")))
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        v,
        json!([{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}])
    );
}

#[tokio::test]
async fn write_errors_have_salesforce_shapes() {
    let e = common::start().await;
    let url = e.data("/sobjects/Account");
    let (s, v) = e.post(&url, json!({"Industry": "Energy"})).await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!([{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}])
    );
    let (s, v) = e.post(&url, json!({"Name": "x", "Bogus__c": 1})).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_FIELD");
    assert_eq!(
        v[0]["message"],
        "No such column 'Bogus__c' on sobject of type Account"
    );
    let (s, v) = e.post(&url, json!({"Name": "x".repeat(256)})).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "STRING_TOO_LONG");
    assert_eq!(v[0]["fields"], json!(["Name"]));
    let (s, v) = e
        .post(
            &url,
            json!({"Name": "x", "CreatedDate": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_FIELD_FOR_INSERT_UPDATE");
    let (s, v) = e
        .post(&url, json!({"Name": "x", "NumberOfEmployees": "many"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "JSON_PARSER_ERROR");
    let (s, v) = e
        .post(&url, json!({"Name": "x", "ParentId": "003000000000001"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "FIELD_INTEGRITY_EXCEPTION");
    let ghost = sf_emulator::SfId::generate("001", 424_242);
    let (s, v) = e
        .post(&url, json!({"Name": "x", "ParentId": ghost.to_string()}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_CROSS_REFERENCE_KEY");
    let (s, v) = e.post(&url, json!({"Name": "x", "ParentId": "nope"})).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "MALFORMED_ID");
    let r = e
        .client
        .post(&url)
        .header("Authorization", format!("Bearer {}", e.token))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (s, v) = common::status_json(r).await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "JSON_PARSER_ERROR");
    let (s, v) = e
        .post(&e.data("/sobjects/Nope__c"), json!({"Name": "x"}))
        .await;
    assert_eq!(s, 404);
    assert_eq!(v[0]["errorCode"], "NOT_FOUND");
    // Restricted picklist (CleanStatus is restricted in the fixture).
    let (s, v) = e
        .post(&url, json!({"Name": "x", "CleanStatus": "Bogus"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_error_arrays() {
    let e = common::start().await;
    let (s, v) = e.get(&e.url("/services/nothing")).await;
    assert_eq!(s, 404);
    assert_eq!(v[0]["errorCode"], "NOT_FOUND");
    let r = e
        .req(
            reqwest::Method::PUT,
            &e.data("/sobjects/Account"),
            Some(json!({})),
        )
        .await;
    let (s, v) = common::status_json(r).await;
    assert_eq!(s, 405);
    assert_eq!(v[0]["errorCode"], "METHOD_NOT_ALLOWED");
    // Versions below 20.0 do not exist.
    let (s, _) = e.get(&e.url("/services/data/v19.0/sobjects")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn standard_auto_numbers_and_required_fields() {
    let e = common::start().await;
    let (s, v) = e
        .post(&e.data("/sobjects/Case"), json!({"Subject": "Broken"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, rec) = e
        .get(&e.data(&format!("/sobjects/Case/{}", v["id"].as_str().unwrap())))
        .await;
    assert_eq!(rec["CaseNumber"], "00001001");
    assert_eq!(rec["Status"], "New");
    assert_eq!(rec["Priority"], "Medium");
    let (s, v) = e
        .post(&e.data("/sobjects/Opportunity"), json!({"Name": "Deal"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(v[0]["fields"], json!(["StageName", "CloseDate"]));
    let (s, v) = e
        .post(
            &e.data("/sobjects/Opportunity"),
            json!({"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2024-03-01", "Amount": 1500.5}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, rec) = e
        .get(&e.data(&format!(
            "/sobjects/Opportunity/{}",
            v["id"].as_str().unwrap()
        )))
        .await;
    assert_eq!(rec["CloseDate"], "2024-03-01");
    assert_eq!(rec["Amount"], 1500.5);
    assert_eq!(rec["IsClosed"], false);
    assert_eq!(rec["ForecastCategory"], "Pipeline");
    let url = e.data(&format!(
        "/sobjects/Opportunity/{}",
        v["id"].as_str().unwrap()
    ));
    let (s, _) = e.patch(&url, json!({"StageName": "Closed Won"})).await;
    assert_eq!(s, 204);
    let (_, rec) = e.get(&url).await;
    assert_eq!(rec["IsClosed"], true);
    assert_eq!(rec["IsWon"], true);
    assert_eq!(rec["ForecastCategory"], "Closed");
}
