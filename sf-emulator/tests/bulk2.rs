//! Bulk API 2.0 over real HTTP: ingest jobs (insert/update/upsert/delete/hardDelete, result
//! CSVs, abort → unprocessed records, job failure on unknown columns) and query jobs (paging
//! with `maxRecords`, `Sforce-Locator: null`, header on every page, version mismatch, limits).

use std::path::PathBuf;
use std::time::Duration;

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

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Json {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

impl Env {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(&str, String)>,
    ) -> Resp {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.emu.base_url, path))
            .bearer_auth(&self.token);
        if let Some((ct, b)) = body {
            req = req.header("Content-Type", ct).body(b);
        }
        let resp = req.send().await.expect("request");
        Resp {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            text: resp.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post_json(&self, path: &str, body: Json) -> Resp {
        self.send(
            reqwest::Method::POST,
            path,
            Some(("application/json", body.to_string())),
        )
        .await
    }

    async fn patch_json(&self, path: &str, body: Json) -> Resp {
        self.send(
            reqwest::Method::PATCH,
            path,
            Some(("application/json", body.to_string())),
        )
        .await
    }

    async fn put_csv(&self, path: &str, csv: &str) -> Resp {
        self.send(
            reqwest::Method::PUT,
            path,
            Some(("text/csv", csv.to_string())),
        )
        .await
    }

    fn create(&self, object: &str, rows: Vec<Json>) -> Vec<String> {
        let ctx = WriteContext::rest(&self.emu.org, "59.0");
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
        self.emu
            .org
            .write(&ctx, ops, false)
            .into_iter()
            .map(|r| r.id().expect("seed write").to_string())
            .collect()
    }

    /// Runs an ingest job to a terminal state; returns its final JobInfo.
    async fn ingest(&self, job: Json, csv: &str) -> Json {
        let created = self
            .post_json("/services/data/v59.0/jobs/ingest", job)
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        let info = created.json();
        assert_eq!(info["state"], "Open");
        let id = info["id"].as_str().unwrap().to_string();
        let url = info["contentUrl"].as_str().unwrap().to_string();
        assert_eq!(url, format!("services/data/v59.0/jobs/ingest/{id}/batches"));
        let put = self.put_csv(&format!("/{url}"), csv).await;
        assert_eq!(put.status, 201, "{}", put.text);
        assert!(put.text.is_empty());
        let patched = self
            .patch_json(
                &format!("/services/data/v59.0/jobs/ingest/{id}"),
                json!({"state": "UploadComplete"}),
            )
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
        assert_eq!(patched.json()["state"], "UploadComplete");
        self.wait_ingest(&id).await
    }

    async fn wait_ingest(&self, id: &str) -> Json {
        for _ in 0..500 {
            let info = self
                .get(&format!("/services/data/v59.0/jobs/ingest/{id}"))
                .await
                .json();
            if ["JobComplete", "Failed", "Aborted"].contains(&info["state"].as_str().unwrap()) {
                return info;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("ingest job {id} did not finish");
    }

    async fn csv_of(&self, path: &str) -> Vec<Vec<String>> {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.header("content-type").as_deref(), Some("text/csv"));
        parse_csv(&r.text)
    }

    /// Creates a query job and waits until it is JobComplete; returns its id.
    async fn query_job(&self, operation: &str, soql: &str) -> String {
        let created = self
            .post_json(
                "/services/data/v59.0/jobs/query",
                json!({"operation": operation, "query": soql, "contentType": "CSV", "columnDelimiter": "COMMA", "lineEnding": "LF"}),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
        let info = created.json();
        assert_eq!(info["operation"], operation);
        assert_eq!(info["state"], "UploadComplete");
        assert_eq!(info["apiVersion"], 59.0);
        let id = info["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("750"));
        for _ in 0..500 {
            let info = self
                .get(&format!("/services/data/v59.0/jobs/query/{id}"))
                .await
                .json();
            match info["state"].as_str().unwrap() {
                "JobComplete" => {
                    assert_eq!(info["jobType"], "V2Query");
                    return id;
                }
                "Failed" | "Aborted" => panic!("query job ended {info}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        panic!("query job {id} did not finish");
    }
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_insert_reports_successes_and_failures() {
    let e = env().await;
    let info = e
        .ingest(
            json!({"object": "Account", "operation": "insert", "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}),
            "Name,Industry,NumberOfEmployees\nAcme,Energy,10\n,Technology,5\n\"Quote \"\"Co\"\", Ltd\",#N/A,\nBad,Energy,lots\n",
        )
        .await;
    assert_eq!(info["state"], "JobComplete", "{info}");
    assert_eq!(info["numberRecordsProcessed"], 4);
    assert_eq!(info["numberRecordsFailed"], 2);
    assert_eq!(info["jobType"], "V2Ingest");
    let id = info["id"].as_str().unwrap();
    let ok = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{id}/successfulResults"
        ))
        .await;
    assert_eq!(
        ok[0],
        vec![
            "sf__Id",
            "sf__Created",
            "Name",
            "Industry",
            "NumberOfEmployees"
        ]
    );
    assert_eq!(ok.len(), 3);
    assert!(ok[1][0].starts_with("001") && ok[1][0].len() == 18);
    assert_eq!(ok[1][1..], ["true", "Acme", "Energy", "10"]);
    assert_eq!(ok[2][2], "Quote \"Co\", Ltd");
    let failed = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{id}/failedResults"
        ))
        .await;
    assert_eq!(
        failed[0],
        vec![
            "sf__Id",
            "sf__Error",
            "Name",
            "Industry",
            "NumberOfEmployees"
        ]
    );
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[1][0], "");
    assert!(
        failed[1][1].starts_with("REQUIRED_FIELD_MISSING:"),
        "{:?}",
        failed[1]
    );
    assert_eq!(failed[1][3], "Technology");
    assert_eq!(failed[2][2], "Bad");
    let unprocessed = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{id}/unprocessedrecords"
        ))
        .await;
    assert_eq!(
        unprocessed,
        vec![vec!["Name", "Industry", "NumberOfEmployees"]]
    );
    // The records are queryable, `#N/A` left Industry null.
    let q = e
        .query_job("query", "SELECT Name, Industry FROM Account ORDER BY Name")
        .await;
    let rows = e
        .csv_of(&format!("/services/data/v59.0/jobs/query/{q}/results"))
        .await;
    assert_eq!(
        rows,
        vec![
            vec!["Name", "Industry"],
            vec!["Acme", "Energy"],
            vec!["Quote \"Co\", Ltd", ""]
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_update_upsert_delete_and_hard_delete() {
    let e = env().await;
    let ids = e.create(
        "Account",
        vec![json!({"Name": "One"}), json!({"Name": "Two"})],
    );
    let info = e
        .ingest(
            json!({"object": "Account", "operation": "update"}),
            &format!("Id,Name\n{},Uno\n001000000000000AAA,Ghost\n", ids[0]),
        )
        .await;
    assert_eq!(
        (
            info["numberRecordsProcessed"].as_u64(),
            info["numberRecordsFailed"].as_u64()
        ),
        (Some(2), Some(1))
    );
    let failed = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{}/failedResults",
            info["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(failed[1][0], "001000000000000AAA");

    // Upsert by external ID, with the parent set by its Id column.
    let info = e
        .ingest(
            json!({"object": "Invoice__c", "operation": "upsert", "externalIdFieldName": "External_Id__c"}),
            &format!("External_Id__c,Account__c,Amount__c\ninv-1,{a},10\ninv-2,{a},20\n", a = ids[1]),
        )
        .await;
    assert_eq!(info["externalIdFieldName"], "External_Id__c");
    assert_eq!(info["numberRecordsFailed"], 0, "{info}");
    let jid = info["id"].as_str().unwrap().to_string();
    let ok = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{jid}/successfulResults"
        ))
        .await;
    assert_eq!(ok[1][1], "true");
    let info = e
        .ingest(
            json!({"object": "Invoice__c", "operation": "upsert", "externalIdFieldName": "External_Id__c"}),
            "External_Id__c,Amount__c\ninv-1,15\n",
        )
        .await;
    let jid = info["id"].as_str().unwrap().to_string();
    let ok = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{jid}/successfulResults"
        ))
        .await;
    assert_eq!(ok[1][1], "false");

    // Delete sends to the recycle bin (queryAll still sees it); hardDelete purges.
    let info = e
        .ingest(
            json!({"object": "Account", "operation": "delete"}),
            &format!("Id\n{}\n", ids[0]),
        )
        .await;
    assert_eq!(info["numberRecordsFailed"], 0, "{info}");
    let q = e
        .query_job(
            "queryAll",
            "SELECT Name, IsDeleted FROM Account ORDER BY Name",
        )
        .await;
    let rows = e
        .csv_of(&format!("/services/data/v59.0/jobs/query/{q}/results"))
        .await;
    assert_eq!(rows[1..], [vec!["Two", "false"], vec!["Uno", "true"]]);
    let info = e
        .ingest(
            json!({"object": "Account", "operation": "hardDelete"}),
            &format!("Id\n{}\n", ids[0]),
        )
        .await;
    assert_eq!(info["numberRecordsFailed"], 0, "{info}");
    let q = e.query_job("queryAll", "SELECT Name FROM Account").await;
    let rows = e
        .csv_of(&format!("/services/data/v59.0/jobs/query/{q}/results"))
        .await;
    assert_eq!(rows, vec![vec!["Name"], vec!["Two"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_jobs_leave_unprocessed_records_and_bad_columns_fail_the_job() {
    let e = env().await;
    let created = e
        .post_json(
            "/services/data/v59.0/jobs/ingest",
            json!({"object": "Account", "operation": "insert"}),
        )
        .await;
    let id = created.json()["id"].as_str().unwrap().to_string();
    e.put_csv(
        &format!("/services/data/v59.0/jobs/ingest/{id}/batches"),
        "Name\nA\nB\n",
    )
    .await;
    let aborted = e
        .patch_json(
            &format!("/services/data/v59.0/jobs/ingest/{id}"),
            json!({"state": "Aborted"}),
        )
        .await;
    assert_eq!(aborted.json()["state"], "Aborted");
    let rows = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{id}/unprocessedrecords"
        ))
        .await;
    assert_eq!(rows, vec![vec!["Name"], vec!["A"], vec!["B"]]);
    // No more uploads or state changes.
    let put = e
        .put_csv(
            &format!("/services/data/v59.0/jobs/ingest/{id}/batches"),
            "Name\nC\n",
        )
        .await;
    assert_eq!(put.status, 400);
    assert_eq!(put.json()[0]["errorCode"], "INVALIDJOBSTATE");

    let info = e
        .ingest(
            json!({"object": "Account", "operation": "insert"}),
            "Name,Bogus__c\nA,1\n",
        )
        .await;
    assert_eq!(info["state"], "Failed");
    assert_eq!(
        info["errorMessage"],
        "InvalidBatch : Field name not found : Bogus__c"
    );

    // Job listing and deletion.
    let list = e.get("/services/data/v59.0/jobs/ingest").await.json();
    assert_eq!(list["done"], true);
    assert_eq!(list["records"].as_array().unwrap().len(), 2);
    let del = e
        .send(
            reqwest::Method::DELETE,
            &format!("/services/data/v59.0/jobs/ingest/{id}"),
            None,
        )
        .await;
    assert_eq!(del.status, 204);
    assert_eq!(
        e.get(&format!("/services/data/v59.0/jobs/ingest/{id}"))
            .await
            .status,
        404
    );

    // Creation errors.
    let bad = e
        .post_json(
            "/services/data/v59.0/jobs/ingest",
            json!({"object": "Nope", "operation": "insert"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()[0]["errorCode"], "INVALIDJOB");
    let bad = e
        .post_json(
            "/services/data/v59.0/jobs/ingest",
            json!({"object": "Account", "operation": "upsert"}),
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_job_pages_with_max_records_and_a_null_locator() {
    let e = env().await;
    let rows: Vec<Json> = (0..2500)
        .map(|i| json!({"Name": format!("N{i:04}"), "NumberOfEmployees": i}))
        .collect();
    for chunk in rows.chunks(200) {
        e.create("Account", chunk.to_vec());
    }
    let before = e.emu.org.limits_json()["DailyBulkV2QueryJobs"]["Remaining"]
        .as_u64()
        .unwrap();
    let id = e
        .query_job("query", "SELECT NumberOfEmployees, Name, Id FROM Account WHERE NumberOfEmployees >= 100 ORDER BY Name")
        .await;
    let after = e.emu.org.limits_json()["DailyBulkV2QueryJobs"]["Remaining"]
        .as_u64()
        .unwrap();
    assert_eq!(before - after, 1);
    let mut all = Vec::new();
    let mut locator: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &locator {
            None => format!("/services/data/v59.0/jobs/query/{id}/results?maxRecords=1000"),
            Some(l) => {
                format!("/services/data/v59.0/jobs/query/{id}/results?locator={l}&maxRecords=1000")
            }
        };
        let r = e.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        let rows = parse_csv(&r.text);
        assert_eq!(
            rows[0],
            vec!["NumberOfEmployees", "Name", "Id"],
            "header on every page"
        );
        let n: usize = r.header("sforce-numberofrecords").unwrap().parse().unwrap();
        assert_eq!(n, rows.len() - 1);
        assert!(r
            .text
            .starts_with("\"NumberOfEmployees\",\"Name\",\"Id\"\n\""));
        all.extend(rows.into_iter().skip(1));
        let l = r
            .header("sforce-locator")
            .expect("Sforce-Locator always present");
        if l == "null" {
            break;
        }
        locator = Some(l);
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 2400);
    assert_eq!(all[0][..2], ["100", "N0100"]);
    assert_eq!(all[2399][1], "N2499");

    // Without maxRecords everything comes in one page.
    let r = e
        .get(&format!("/services/data/v59.0/jobs/query/{id}/results"))
        .await;
    assert_eq!(r.header("sforce-numberofrecords").as_deref(), Some("2400"));
    assert_eq!(r.header("sforce-locator").as_deref(), Some("null"));

    // Other API version → 409; bad locator → 400; delete → 204 then 404.
    let r = e
        .get(&format!("/services/data/v58.0/jobs/query/{id}"))
        .await;
    assert_eq!(r.status, 409);
    let r = e
        .get(&format!(
            "/services/data/v59.0/jobs/query/{id}/results?locator=zzz"
        ))
        .await;
    assert_eq!(r.status, 400);
    let list = e.get("/services/data/v59.0/jobs/query").await.json();
    assert_eq!(list["records"][0]["id"], id.as_str());
    let r = e
        .send(
            reqwest::Method::DELETE,
            &format!("/services/data/v59.0/jobs/query/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        e.get(&format!("/services/data/v59.0/jobs/query/{id}"))
            .await
            .status,
        404
    );

    // Bad SOQL is refused at creation with the SOQL error.
    let r = e
        .post_json(
            "/services/data/v59.0/jobs/query",
            json!({"operation": "query", "query": "SELECT Nope FROM Account"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()[0]["errorCode"], "INVALID_FIELD");
    // Compound fields cannot be serialized to CSV.
    let r = e
        .post_json(
            "/services/data/v59.0/jobs/query",
            json!({"operation": "query", "query": "SELECT BillingAddress FROM Account"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.json()[0]["message"]
        .as_str()
        .unwrap()
        .contains("BillingAddress"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_job_csv_renders_parents_types_and_dialects() {
    let e = env().await;
    let acct = e.create(
        "Account",
        vec![json!({"Name": "Parent Co", "AnnualRevenue": 1250000})],
    );
    e.create(
        "Contact",
        vec![
            json!({"LastName": "Kid", "AccountId": acct[0], "Birthdate": "2001-02-03"}),
            json!({"LastName": "Solo"}),
        ],
    );
    let created = e
        .post_json(
            "/services/data/v59.0/jobs/query",
            json!({"operation": "query", "query": "SELECT LastName, Account.Name, Account.AnnualRevenue, Birthdate FROM Contact ORDER BY LastName", "columnDelimiter": "PIPE", "lineEnding": "CRLF"}),
        )
        .await;
    let info = created.json();
    assert_eq!(info["columnDelimiter"], "PIPE");
    assert_eq!(info["lineEnding"], "CRLF");
    let id = info["id"].as_str().unwrap();
    for _ in 0..200 {
        let s = e
            .get(&format!("/services/data/v59.0/jobs/query/{id}"))
            .await
            .json();
        if s["state"] == "JobComplete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = e
        .get(&format!("/services/data/v59.0/jobs/query/{id}/results"))
        .await;
    assert_eq!(
        r.text,
        "\"LastName\"|\"Account.Name\"|\"Account.AnnualRevenue\"|\"Birthdate\"\r\n\"Kid\"|\"Parent Co\"|\"1250000\"|\"2001-02-03\"\r\n\"Solo\"|\"\"|\"\"|\"\"\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_relationship_columns_set_parents_by_external_id() {
    // An org whose Account has an external ID field.
    let dir = tempfile::tempdir().unwrap();
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings/describe");
    for name in ["Account.json", "Contact.json"] {
        let mut d: Json =
            serde_json::from_str(&std::fs::read_to_string(src.join(name)).unwrap()).unwrap();
        if name == "Account.json" {
            let mut f = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "AccountNumber")
                .unwrap()
                .clone();
            f["name"] = json!("Ext__c");
            f["externalId"] = json!(true);
            f["custom"] = json!(true);
            d["fields"].as_array_mut().unwrap().push(f);
        }
        std::fs::write(dir.path().join(name), d.to_string()).unwrap();
    }
    let mut config = Config::ephemeral();
    config.describe = Some(dir.path().to_path_buf());
    let emu = start(config).await.expect("emulator starts");
    let token = emu.org.create_session().token;
    let e = Env {
        emu,
        http: reqwest::Client::new(),
        token,
    };
    let acct = e.create("Account", vec![json!({"Name": "Parent", "Ext__c": "P-1"})]);
    let info = e
        .ingest(
            json!({"object": "Contact", "operation": "insert"}),
            "LastName,Account.Ext__c\nKid,P-1\nLost,P-404\n",
        )
        .await;
    assert_eq!(info["numberRecordsProcessed"], 2, "{info}");
    assert_eq!(info["numberRecordsFailed"], 1, "{info}");
    let id = info["id"].as_str().unwrap();
    let failed = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{id}/failedResults"
        ))
        .await;
    assert_eq!(failed[1][2..], ["Lost", "P-404"]);
    let q = e
        .query_job("query", "SELECT LastName, AccountId FROM Contact")
        .await;
    let rows = e
        .csv_of(&format!("/services/data/v59.0/jobs/query/{q}/results"))
        .await;
    assert_eq!(rows[1], vec!["Kid".to_string(), acct[0].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_results_are_fixed_when_the_job_runs() {
    let e = env().await;
    let ids = e.create(
        "Account",
        (0..5)
            .map(|i| json!({"Name": format!("Before {i}")}))
            .collect(),
    );
    let q = e
        .query_job("query", "SELECT Id, Name FROM Account ORDER BY Name")
        .await;
    // After the job ran: one record renamed, one deleted.
    let ctx = WriteContext::rest(&e.emu.org, "59.0");
    let results = e.emu.org.write(
        &ctx,
        vec![
            WriteOp::Update {
                object: None,
                id: ids[0].clone(),
                fields: vec![("Name".into(), FieldInput::Json(json!("After")))],
            },
            WriteOp::Delete { id: ids[1].clone() },
        ],
        true,
    );
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let first = e
        .get(&format!(
            "/services/data/v59.0/jobs/query/{q}/results?maxRecords=2"
        ))
        .await;
    assert_eq!(first.header("Sforce-NumberOfRecords").as_deref(), Some("2"));
    let locator = first.header("Sforce-Locator").unwrap();
    let rest = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/query/{q}/results?locator={locator}&maxRecords=10"
        ))
        .await;
    let mut rows = parse_csv(&first.text);
    rows.extend(rest.into_iter().skip(1));
    let names: Vec<&str> = rows.iter().skip(1).map(|r| r[1].as_str()).collect();
    assert_eq!(
        names,
        vec!["Before 0", "Before 1", "Before 2", "Before 3", "Before 4"],
        "downloads read the result of the run, not live data"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_rows_naming_one_external_id_twice_fail_together() {
    let e = env().await;
    let acct = e.create("Account", vec![json!({"Name": "Buyer"})]);
    let info = e
        .ingest(
            json!({"object": "Invoice__c", "operation": "upsert", "externalIdFieldName": "External_Id__c"}),
            &format!(
                "External_Id__c,Account__c,Amount__c\ndup,{a},1\nsolo,{a},2\ndup,{a},3\n",
                a = acct[0]
            ),
        )
        .await;
    assert_eq!(info["numberRecordsFailed"], 2, "{info}");
    let jid = info["id"].as_str().unwrap().to_string();
    let failed = e
        .csv_of(&format!(
            "/services/data/v59.0/jobs/ingest/{jid}/failedResults"
        ))
        .await;
    assert_eq!(failed.len(), 3, "{failed:?}");
    for row in &failed[1..] {
        assert!(
            row[1].starts_with("DUPLICATE_VALUE:Duplicate external id specified: dup"),
            "{row:?}"
        );
    }
    let q = e
        .query_job("query", "SELECT External_Id__c FROM Invoice__c")
        .await;
    let rows = e
        .csv_of(&format!("/services/data/v59.0/jobs/query/{q}/results"))
        .await;
    assert_eq!(rows[1..], [vec!["solo"]]);
}
