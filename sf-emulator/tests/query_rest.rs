//! REST `/query` and `/queryAll` over real HTTP: every query form, paging through
//! `nextRecordsUrl` under both `/query/` and `/queryAll/`, `batchSize`, and error shapes.

use std::path::PathBuf;

use serde_json::{json, Value as Json};
use sf_emulator::server::{start, Config, RunningEmulator};
use sf_emulator::write::{FieldInput, WriteContext, WriteOp};

struct Env {
    emu: RunningEmulator,
    http: reqwest::Client,
    token: String,
}

async fn env() -> Env {
    let mut config = Config::ephemeral();
    config.describe = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings/describe"));
    let emu = start(config).await.expect("emulator starts");
    let token = emu.org.create_session().token;
    Env {
        emu,
        http: reqwest::Client::new(),
        token,
    }
}

impl Env {
    async fn get_raw(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Json) {
        let mut req = self
            .http
            .get(format!("{}{}", self.emu.base_url, path))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let body = resp.json::<Json>().await.unwrap_or(Json::Null);
        (status, body)
    }

    async fn query_as(&self, endpoint: &str, soql: &str, headers: &[(&str, &str)]) -> (u16, Json) {
        let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        self.get_raw(&format!("/services/data/v59.0/{endpoint}?q={q}"), headers)
            .await
    }

    async fn query(&self, soql: &str) -> Json {
        let (status, body) = self.query_as("query", soql, &[]).await;
        assert_eq!(status, 200, "{soql}: {body}");
        body
    }

    async fn error(&self, soql: &str) -> (String, String) {
        let (status, body) = self.query_as("query", soql, &[]).await;
        assert_eq!(status, 400, "{soql}: {body}");
        let arr = body.as_array().expect("error body is a JSON array");
        assert_eq!(arr.len(), 1);
        (
            arr[0]["errorCode"].as_str().unwrap().to_string(),
            arr[0]["message"].as_str().unwrap().to_string(),
        )
    }

    fn write(&self, ops: Vec<WriteOp>) -> Vec<String> {
        let ctx = WriteContext::rest(&self.emu.org, "59.0");
        self.emu
            .org
            .write(&ctx, ops, false)
            .into_iter()
            .map(|r| {
                assert!(r.is_ok(), "seed write failed: {:?}", r.errors());
                r.id().unwrap().to_string()
            })
            .collect()
    }

    fn create(&self, object: &str, rows: Vec<Json>) -> Vec<String> {
        let ops = rows
            .into_iter()
            .map(|r| WriteOp::Create {
                object: object.to_string(),
                fields: r
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), FieldInput::Json(v.clone())))
                    .collect(),
            })
            .collect();
        self.write(ops)
    }
}

fn names(body: &Json) -> Vec<String> {
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap_or("<null>").to_string())
        .collect()
}

async fn seeded() -> (Env, Vec<String>) {
    let e = env().await;
    let accounts = e.create(
        "Account",
        vec![
            json!({"Name": "Acme", "Industry": "Energy", "AnnualRevenue": 1000.0, "NumberOfEmployees": 10}),
            json!({"Name": "Globex", "Industry": "Technology", "AnnualRevenue": 5000.5, "NumberOfEmployees": 200}),
            json!({"Name": "Initech", "NumberOfEmployees": 50}),
            json!({"Name": "O'Brien & Sons", "Industry": "Energy"}),
        ],
    );
    (e, accounts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_fields_records_have_attributes_and_schema_spelling() {
    let (e, accounts) = seeded().await;
    let body = e
        .query("select id, name, annualrevenue, NumberOfEmployees, CreatedDate from account where Name = 'Acme'")
        .await;
    assert_eq!(body["totalSize"], 1);
    assert_eq!(body["done"], true);
    assert!(body.get("nextRecordsUrl").is_none());
    let r = &body["records"][0];
    assert_eq!(r["attributes"]["type"], "Account");
    assert_eq!(
        r["attributes"]["url"],
        format!("/services/data/v59.0/sobjects/Account/{}", accounts[0])
    );
    assert_eq!(r["Id"], accounts[0].as_str());
    assert_eq!(r["Name"], "Acme");
    assert_eq!(r["AnnualRevenue"], 1000.0);
    assert_eq!(r["NumberOfEmployees"], 10);
    let created = r["CreatedDate"].as_str().unwrap();
    assert!(created.ends_with(".000+0000"), "{created}");
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_fields_nest_under_the_relationship_or_are_null() {
    let (e, accounts) = seeded().await;
    e.create(
        "Contact",
        vec![
            json!({"LastName": "Smith", "AccountId": accounts[0]}),
            json!({"LastName": "Orphan"}),
        ],
    );
    let body = e
        .query(
            "SELECT LastName, Account.Name, Account.Industry FROM Contact ORDER BY LastName DESC",
        )
        .await;
    let recs = body["records"].as_array().unwrap();
    assert_eq!(recs[0]["LastName"], "Smith");
    assert_eq!(recs[0]["Account"]["attributes"]["type"], "Account");
    assert_eq!(
        recs[0]["Account"]["attributes"]["url"],
        format!("/services/data/v59.0/sobjects/Account/{}", accounts[0])
    );
    assert_eq!(recs[0]["Account"]["Name"], "Acme");
    assert_eq!(recs[0]["Account"]["Industry"], "Energy");
    assert_eq!(recs[1]["LastName"], "Orphan");
    assert_eq!(recs[1]["Account"], Json::Null);
    // Filtering and custom relationships (`__r`) work the same way.
    let body = e
        .query("SELECT LastName FROM Contact WHERE Account.Industry = 'energy'")
        .await;
    assert_eq!(body["totalSize"], 1);
    e.create(
        "Invoice__c",
        vec![json!({"Account__c": accounts[1], "Amount__c": 10, "Paid__c": false})],
    );
    let body = e.query("SELECT Id, Account__r.Name FROM Invoice__c").await;
    assert_eq!(body["records"][0]["Account__r"]["Name"], "Globex");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_operators_follow_soql_semantics() {
    let (e, _) = seeded().await;
    let check = |soql: &'static str, want: &'static [&'static str]| {
        let e = &e;
        async move {
            let body = e.query(soql).await;
            let mut got = names(&body);
            got.sort();
            let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{soql}");
        }
    };
    check(
        "SELECT Name FROM Account WHERE Industry = 'ENERGY'",
        &["Acme", "O'Brien & Sons"],
    )
    .await;
    // != and NOT IN match nulls; ordering comparisons never do.
    check(
        "SELECT Name FROM Account WHERE Industry != 'Energy'",
        &["Globex", "Initech"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE Industry <> 'Energy'",
        &["Globex", "Initech"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE Industry NOT IN ('Energy')",
        &["Globex", "Initech"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE Industry IN ('Energy', 'Technology')",
        &["Acme", "Globex", "O'Brien & Sons"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE NumberOfEmployees > 10",
        &["Globex", "Initech"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE NumberOfEmployees >= 10 AND NumberOfEmployees <= 50",
        &["Acme", "Initech"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE AnnualRevenue < 5000.5",
        &["Acme"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE Industry = null",
        &["Initech"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE Industry != null AND NumberOfEmployees = null",
        &["O'Brien & Sons"],
    )
    .await;
    check("SELECT Name FROM Account WHERE Name LIKE 'a%'", &["Acme"]).await;
    check(
        "SELECT Name FROM Account WHERE Name LIKE '%e_'",
        &["Globex"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE Name = 'O\\'Brien & Sons'",
        &["O'Brien & Sons"],
    )
    .await;
    check("SELECT Name FROM Account WHERE (Industry = 'Technology' OR NumberOfEmployees = 50) AND NOT Name = 'Globex'", &["Initech"]).await;
    check(
        "SELECT Name FROM Account WHERE NOT (Industry = 'Energy' OR Industry = null)",
        &["Globex"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE IsDeleted = false AND CreatedDate = TODAY",
        &["Acme", "Globex", "Initech", "O'Brien & Sons"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:3 AND CreatedDate < TOMORROW",
        &["Acme", "Globex", "Initech", "O'Brien & Sons"],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE CreatedDate = YESTERDAY",
        &[],
    )
    .await;
    check(
        "SELECT Name FROM Account WHERE CreatedDate > 2017-01-01T00:00:00Z",
        &["Acme", "Globex", "Initech", "O'Brien & Sons"],
    )
    .await;
    check("SELECT Name FROM Account WHERE SystemModstamp >= 2024-01-02T03:04:05.000000Z  AND SystemModstamp < 2999-01-01T00:00:00.000+00:00", &["Acme", "Globex", "Initech", "O'Brien & Sons"]).await;
    check(
        "SELECT Name FROM Account WHERE SystemModstamp < 2017-01-01T00:00:00-05:00",
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_lookups_accept_15_and_18_character_ids() {
    let (e, accounts) = seeded().await;
    let body = e
        .query(&format!(
            "SELECT Name FROM Account WHERE Id = '{}'",
            &accounts[1][..15]
        ))
        .await;
    assert_eq!(names(&body), vec!["Globex"]);
    let body = e
        .query(&format!(
            "SELECT Name FROM Account WHERE Id IN ('{}', '{}') ORDER BY Name",
            accounts[2], accounts[0]
        ))
        .await;
    assert_eq!(names(&body), vec!["Acme", "Initech"]);
    let (code, msg) = e.error("SELECT Name FROM Account WHERE Id = 'nope'").await;
    assert_eq!(code, "INVALID_QUERY_FILTER_OPERATOR");
    assert!(msg.ends_with("invalid ID field: nope"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipicklists_and_external_ids() {
    let (e, accounts) = seeded().await;
    let a = accounts[0].as_str();
    e.create(
        "Invoice__c",
        vec![
            json!({"Account__c": a, "Amount__c": 1, "Paid__c": true, "External_Id__c": "ext-a", "Payment_Methods__c": "Card;Wire"}),
            json!({"Account__c": a, "Amount__c": 2, "Paid__c": false, "External_Id__c": "ext-b", "Payment_Methods__c": "Cash"}),
            json!({"Account__c": a, "Amount__c": 3, "Paid__c": false, "External_Id__c": "ext-c"}),
        ],
    );
    let ext = |w: &'static str| {
        let e = &e;
        async move {
            let body = e
                .query(&format!(
                    "SELECT External_Id__c FROM Invoice__c WHERE {w} ORDER BY External_Id__c"
                ))
                .await;
            body["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["External_Id__c"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ext("Payment_Methods__c INCLUDES ('Wire')").await,
        vec!["ext-a"]
    );
    assert_eq!(
        ext("Payment_Methods__c INCLUDES ('Card;Wire', 'Cash')").await,
        vec!["ext-a", "ext-b"]
    );
    assert_eq!(
        ext("Payment_Methods__c EXCLUDES ('Card')").await,
        vec!["ext-b", "ext-c"]
    );
    assert_eq!(ext("External_Id__c = 'EXT-B'").await, vec!["ext-b"]);
    assert_eq!(
        ext("External_Id__c IN ('ext-a', 'ext-b') AND Paid__c = true").await,
        vec!["ext-a"]
    );
    assert_eq!(
        ext("Paid__c = false AND Amount__c > 2").await,
        vec!["ext-c"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_by_nulls_limit_offset_and_counts() {
    let (e, _) = seeded().await;
    let body = e
        .query("SELECT Name FROM Account ORDER BY Industry ASC NULLS LAST, Name")
        .await;
    assert_eq!(
        names(&body),
        vec!["Acme", "O'Brien & Sons", "Globex", "Initech"]
    );
    let body = e
        .query("SELECT Name FROM Account ORDER BY Industry DESC, Name DESC")
        .await;
    assert_eq!(
        names(&body),
        vec!["Globex", "O'Brien & Sons", "Acme", "Initech"]
    );
    let body = e
        .query("SELECT Name FROM Account ORDER BY Industry NULLS FIRST, Name LIMIT 2 OFFSET 1")
        .await;
    assert_eq!(names(&body), vec!["Acme", "O'Brien & Sons"]);
    assert_eq!(body["totalSize"], 2);
    let body = e
        .query("SELECT COUNT() FROM Account WHERE Industry = 'Energy'")
        .await;
    assert_eq!(body, json!({"totalSize": 2, "done": true, "records": []}));
    let body = e
        .query("SELECT COUNT(Id), COUNT(Industry) n FROM Account")
        .await;
    assert_eq!(
        body,
        json!({"totalSize": 1, "done": true, "records": [
            {"attributes": {"type": "AggregateResult"}, "expr0": 4, "n": 3}
        ]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_shaped_like_salesforce() {
    let (e, _) = seeded().await;
    let (code, msg) = e.error("SELECT Id FROM Account WHERE").await;
    assert_eq!(code, "MALFORMED_QUERY");
    assert_eq!(
        msg,
        "\nSELECT Id FROM Account WHERE\n                            ^\nERROR at Row:1:Column:29\nunexpected token: <EOF>"
    );
    let (code, msg) = e.error("SELECT Id, Foo FROM Account").await;
    assert_eq!(code, "INVALID_FIELD");
    assert_eq!(
        msg,
        "\nSELECT Id, Foo FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    );
    let (code, msg) = e.error("SELECT Id FROM Foo").await;
    assert_eq!(code, "INVALID_TYPE");
    assert!(msg.ends_with("sObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."), "{msg}");
    let (code, msg) = e
        .error("SELECT Id FROM Contact WHERE Bogus.Name = 'x'")
        .await;
    assert_eq!(code, "INVALID_FIELD");
    assert!(
        msg.contains("Didn't understand relationship 'Bogus'"),
        "{msg}"
    );
    let (code, msg) = e
        .error("SELECT Id FROM Account WHERE CreatedDate > 2020-01-01")
        .await;
    assert_eq!(code, "INVALID_FIELD");
    assert!(msg.ends_with("value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"), "{msg}");
    let (code, msg) = e
        .error("SELECT Id FROM Account WHERE NumberOfEmployees = '5'")
        .await;
    assert_eq!(code, "INVALID_FIELD");
    assert!(
        msg.ends_with("must be of type integer and should not be enclosed in quotes"),
        "{msg}"
    );
    let (code, msg) = e.error("SELECT Id FROM Account WHERE Name = 5").await;
    assert_eq!(code, "INVALID_FIELD");
    assert!(
        msg.ends_with("must be of type string and should be enclosed in quotes"),
        "{msg}"
    );
    let (code, _) = e.error("SELECT Name, COUNT(Id) FROM Account").await;
    assert_eq!(code, "MALFORMED_QUERY");
    let (status, body) = e.get_raw("/services/data/v59.0/query", &[]).await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    let (status, body) = e
        .get_raw("/services/data/v59.0/query/01gEM0000000000AAA-2000", &[])
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_QUERY_LOCATOR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_follows_next_records_url_under_query_and_query_all() {
    let e = env().await;
    let rows: Vec<Json> = (0..4500)
        .map(|i| json!({"Name": format!("Acct {i:05}")}))
        .collect();
    for chunk in rows.chunks(200) {
        e.create("Account", chunk.to_vec());
    }
    for endpoint in ["query", "queryAll"] {
        let (status, first) = e
            .query_as(endpoint, "SELECT Id, Name FROM Account ORDER BY Name", &[])
            .await;
        assert_eq!(status, 200);
        assert_eq!(first["totalSize"], 4500);
        assert_eq!(first["done"], false);
        assert_eq!(first["records"].as_array().unwrap().len(), 2000);
        let next = first["nextRecordsUrl"].as_str().unwrap().to_string();
        assert!(next.starts_with("/services/data/v59.0/query/01g"), "{next}");
        assert!(next.ends_with("-2000"), "{next}");
        let mut seen = names(&first);
        // simple-salesforce style: GET the URL as given.
        let (status, second) = e.get_raw(&next, &[]).await;
        assert_eq!(status, 200);
        assert_eq!(second["totalSize"], 4500);
        assert_eq!(second["done"], false);
        seen.extend(names(&second));
        // jsforce style: the last path segment under /queryAll/.
        let locator = second["nextRecordsUrl"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let (status, third) = e
            .get_raw(&format!("/services/data/v59.0/queryAll/{locator}"), &[])
            .await;
        assert_eq!(status, 200);
        assert_eq!(third["done"], true);
        assert!(third.get("nextRecordsUrl").is_none());
        assert_eq!(third["records"].as_array().unwrap().len(), 500);
        seen.extend(names(&third));
        let want: Vec<String> = (0..4500).map(|i| format!("Acct {i:05}")).collect();
        assert_eq!(seen, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_by_system_modstamp_and_id_reads_every_record_once() {
    // Records written in one transaction share their SystemModstamp; a client paging by
    // `ORDER BY SystemModstamp, Id` continues after the last (stamp, Id) it read, so the order
    // and the `Id >` filter must agree (both in the Ids' base-62 order, case-sensitive).
    let e = env().await;
    let rows: Vec<Json> = (0..1_000)
        .map(|i| json!({"Name": format!("Page {i}")}))
        .collect();
    let created: std::collections::BTreeSet<String> =
        e.create("Account", rows).into_iter().collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut after: Option<(String, String)> = None;
    for _ in 0..100 {
        let condition = match &after {
            None => "Name LIKE 'Page %'".to_owned(),
            Some((stamp, id)) => format!(
                "Name LIKE 'Page %' AND (SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > '{id}'))"
            ),
        };
        let page = e
            .query(&format!(
                "SELECT Id, SystemModstamp FROM Account WHERE {condition} ORDER BY SystemModstamp, Id LIMIT 150"
            ))
            .await;
        let records = page["records"].as_array().unwrap();
        for r in records {
            assert!(
                seen.insert(r["Id"].as_str().unwrap().to_owned()),
                "read twice: {r}"
            );
        }
        let Some(last) = records.last() else { break };
        let stamp = last["SystemModstamp"].as_str().unwrap();
        after = Some((
            format!("{}Z", &stamp[..23]),
            last["Id"].as_str().unwrap().to_owned(),
        ));
        if records.len() < 150 {
            break;
        }
    }
    assert_eq!(seen, created, "every record, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_header_sets_the_page_size() {
    let e = env().await;
    let rows: Vec<Json> = (0..450)
        .map(|i| json!({"Name": format!("B{i:03}")}))
        .collect();
    for chunk in rows.chunks(200) {
        e.create("Account", chunk.to_vec());
    }
    let (_, body) = e
        .query_as(
            "query",
            "SELECT Name FROM Account",
            &[("Sforce-Query-Options", "batchSize=200")],
        )
        .await;
    assert_eq!(body["records"].as_array().unwrap().len(), 200);
    let next = body["nextRecordsUrl"].as_str().unwrap();
    assert!(next.ends_with("-200"), "{next}");
    let (_, body) = e.get_raw(next, &[]).await;
    assert_eq!(body["records"].as_array().unwrap().len(), 200);
    assert!(body["nextRecordsUrl"].as_str().unwrap().ends_with("-400"));
    // Below the minimum is raised to 200.
    let (_, body) = e
        .query_as(
            "query",
            "SELECT Name FROM Account",
            &[("Sforce-Query-Options", "batchSize=5")],
        )
        .await;
    assert_eq!(body["records"].as_array().unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_all_sees_deleted_rows() {
    let (e, accounts) = seeded().await;
    e.write(vec![WriteOp::Delete {
        id: accounts[1].clone(),
    }]);
    let body = e.query("SELECT Name FROM Account ORDER BY Name").await;
    assert_eq!(names(&body), vec!["Acme", "Initech", "O'Brien & Sons"]);
    let (_, body) = e
        .query_as(
            "queryAll",
            "SELECT Name, IsDeleted FROM Account WHERE IsDeleted = true",
            &[],
        )
        .await;
    assert_eq!(names(&body), vec!["Globex"]);
    assert_eq!(body["records"][0]["IsDeleted"], true);
    let (_, body) = e
        .query_as("queryAll", "SELECT COUNT() FROM Account", &[])
        .await;
    assert_eq!(body["totalSize"], 4);
    // An Id lookup of a deleted row: only queryAll finds it.
    let soql = format!("SELECT Name FROM Account WHERE Id = '{}'", accounts[1]);
    assert_eq!(e.query(&soql).await["totalSize"], 0);
    let (_, body) = e.query_as("queryAll", &soql, &[]).await;
    assert_eq!(body["totalSize"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_need_a_valid_session() {
    let e = env().await;
    let resp = e
        .http
        .get(format!(
            "{}/services/data/v59.0/query?q=SELECT+Id+FROM+Account",
            e.emu.base_url
        ))
        .bearer_auth("bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: Json = resp.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_and_created_by_resolve_to_the_org_user() {
    let (e, _) = seeded().await;
    let body = e
        .query("SELECT Name, Owner.Name, CreatedBy.Username FROM Account WHERE Owner.Name = 'Admin User' AND Name = 'Acme'")
        .await;
    assert_eq!(body["totalSize"], 1);
    let r = &body["records"][0];
    let user = e.emu.org.user_id().to_string();
    assert_eq!(r["Owner"]["attributes"]["type"], "User");
    assert_eq!(
        r["Owner"]["attributes"]["url"],
        format!("/services/data/v59.0/sobjects/User/{user}")
    );
    assert_eq!(r["Owner"]["Name"], "Admin User");
    assert_eq!(r["CreatedBy"]["Username"], "admin@example.com");
    let (code, _) = e.error("SELECT Owner.Nope FROM Account").await;
    assert_eq!(code, "INVALID_FIELD");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compound_address_fields_render_as_objects() {
    let e = env().await;
    e.create(
        "Account",
        vec![
            json!({"Name": "Addr", "BillingCity": "Paris", "BillingCountry": "France"}),
            json!({"Name": "NoAddr"}),
        ],
    );
    let body = e
        .query("SELECT Name, BillingAddress FROM Account ORDER BY Name")
        .await;
    let addr = &body["records"][0]["BillingAddress"];
    assert_eq!(addr["city"], "Paris");
    assert_eq!(addr["country"], "France");
    assert_eq!(addr["street"], Json::Null);
    assert_eq!(body["records"][1]["BillingAddress"], Json::Null);
}
