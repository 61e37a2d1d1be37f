//! Odd input never panics or answers 500: every rejection is a Salesforce error array.

mod common;

use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn odd_bodies_and_values_get_specific_errors() {
    let e = common::start().await;
    let acc = e.data("/sobjects/Account");
    let cases = [
        (Method::POST, acc.clone(), "[]"),
        (Method::POST, acc.clone(), "null"),
        (Method::POST, acc.clone(), "\"x\""),
        (Method::POST, acc.clone(), ""),
        (Method::POST, acc.clone(), "{\"Name\": {\"a\": 1}}"),
        (Method::POST, acc.clone(), "{\"Name\": [1,2]}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"CreatedDate\": 5}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"NumberOfEmployees\": 1e40}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"NumberOfEmployees\": 99999999999}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"AnnualRevenue\": \"1e400\"}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"Parent\": {\"Nope__c\": \"1\"}}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"Parent.Name\": \"1\"}"),
        (Method::POST, acc.clone(), "{\"Name\": \"x\", \"Id\": \"001000000000001\"}"),
        (Method::POST, e.data("/composite/sobjects"), "{\"records\": [1, 2]}"),
        (Method::POST, e.data("/composite/sobjects"), "{\"records\": {}}"),
        (Method::POST, e.data("/composite/sobjects"), "{\"allOrNone\": \"yes\", \"records\": []}"),
        (Method::PATCH, e.data("/composite/sobjects"), "{\"records\": [{\"id\": 5}]}"),
        (Method::POST, e.data("/composite/batch"), "{\"batchRequests\": [{\"url\": 5}]}"),
        (Method::POST, e.data("/composite/batch"), "{\"batchRequests\": [{\"method\": \"GET\", \"url\": \"/services/data/v59.0/composite/batch\"}]}"),
        (Method::POST, e.data("/composite/tree/Account"), "{\"records\": [{\"Name\": \"no ref\"}]}"),
        (Method::POST, e.data("/composite/tree/Account"), "{\"records\": [5]}"),
        (Method::POST, e.data("/composite/sobjects/Account"), "{\"ids\": [\"bad\"], \"fields\": [\"Bogus\"]}"),
        (Method::GET, e.data("/sobjects/Account/updated/?start=2024-01-01T00:00:00Z&end=2023-01-01T00:00:00Z"), ""),
        (Method::GET, e.data("/sobjects/Account/001%00/x"), ""),
        (Method::PATCH, e.data("/sobjects/Account/Name/x"), "{}"),
        (Method::GET, e.data("/sobjects/Account/not-an-id"), ""),
        (Method::DELETE, e.data("/composite/sobjects?ids="), ""),
    ];
    for (m, url, body) in cases {
        let mut r = e
            .client
            .request(m.clone(), &url)
            .header("Authorization", format!("Bearer {}", e.token));
        if !body.is_empty() {
            r = r.header("Content-Type", "application/json").body(body);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(status < 500, "{m} {url} {body} → {status} {text}");
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{m} {url} {body} → non-JSON {status} {text}"));
        if status >= 400 {
            let shaped = v.as_array().is_some_and(|a| a[0]["errorCode"].is_string())
                || v["hasErrors"] == json!(true);
            assert!(shaped, "{m} {url} {body} → {status} {v}");
        }
    }
}
