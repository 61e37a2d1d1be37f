//! Bulk API 1.0 over real HTTP, in the shapes simple-salesforce (JSON jobs), tap-salesforce
//! (JSON-created CSV queryAll jobs, XML batch info) and jsforce (XML jobs, CSV batches) use.

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
    content_type: String,
    text: String,
}

impl Resp {
    fn json(&self) -> Json {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

fn tag<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        + open.len();
    let end = xml[start..].find(&format!("</{name}>")).unwrap() + start;
    &xml[start..end]
}

impl Env {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        ct: Option<&str>,
        body: &str,
    ) -> Resp {
        let mut req = self
            .http
            .request(
                method,
                format!("{}/services/async/59.0{}", self.emu.base_url, path),
            )
            .header("X-SFDC-Session", &self.token);
        if let Some(ct) = ct {
            req = req.header("Content-Type", ct).body(body.to_string());
        }
        let resp = req.send().await.expect("request");
        Resp {
            status: resp.status().as_u16(),
            content_type: resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            text: resp.text().await.unwrap(),
        }
    }

    async fn post(&self, path: &str, ct: &str, body: &str) -> Resp {
        self.send(reqwest::Method::POST, path, Some(ct), body).await
    }

    async fn get(&self, path: &str, ct: Option<&str>) -> Resp {
        self.send(reqwest::Method::GET, path, ct, "").await
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
            .map(|r| r.id().expect("seed").to_string())
            .collect()
    }

    /// Polls a batch (JSON job) until it is Completed.
    async fn wait_json(&self, job: &str, batch: &str) -> Json {
        for _ in 0..500 {
            let info = self
                .get(
                    &format!("/job/{job}/batch/{batch}"),
                    Some("application/json"),
                )
                .await
                .json();
            match info["state"].as_str().unwrap() {
                "Completed" => return info,
                "Failed" | "Not Processed" => panic!("batch ended {info}"),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        panic!("batch did not complete");
    }

    /// Polls a batch (CSV/XML job, XML batch info) until it is Completed.
    async fn wait_xml(&self, job: &str, batch: &str) -> String {
        for _ in 0..500 {
            let r = self.get(&format!("/job/{job}/batch/{batch}"), None).await;
            assert!(
                r.content_type.starts_with("application/xml"),
                "{}",
                r.content_type
            );
            match tag(&r.text, "state") {
                "Completed" => return r.text,
                "Failed" | "Not Processed" => panic!("batch ended {}", r.text),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        panic!("batch did not complete");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_json_insert_and_query() {
    let e = env().await;
    let job = e
        .post(
            "/job",
            "application/json",
            &json!({"operation": "insert", "object": "Account", "concurrencyMode": 0, "contentType": "JSON"}).to_string(),
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    let info = job.json();
    assert_eq!(info["state"], "Open");
    assert_eq!(info["concurrencyMode"], "Parallel");
    assert_eq!(info["apiVersion"], 59.0);
    let jid = info["id"].as_str().unwrap().to_string();
    let batch = e
        .post(
            &format!("/job/{jid}/batch"),
            "application/json",
            &json!([{"Name": "Bulk A", "NumberOfEmployees": 3}, {"Industry": "Energy"}])
                .to_string(),
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.text);
    let bid = batch.json()["id"].as_str().unwrap().to_string();
    assert!(bid.starts_with("751"));
    let done = e.wait_json(&jid, &bid).await;
    assert_eq!(done["numberRecordsProcessed"], 2);
    assert_eq!(done["numberRecordsFailed"], 1);
    let results = e
        .get(
            &format!("/job/{jid}/batch/{bid}/result"),
            Some("application/json"),
        )
        .await
        .json();
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[0]["created"], true);
    assert!(results[0]["id"].as_str().unwrap().starts_with("001"));
    assert_eq!(results[1]["success"], false);
    assert_eq!(
        results[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    let closed = e
        .post(
            &format!("/job/{jid}"),
            "application/json",
            r#"{"state":"Closed"}"#,
        )
        .await
        .json();
    assert_eq!(closed["state"], "Closed");
    assert_eq!(closed["numberBatchesCompleted"], 1);
    assert_eq!(closed["numberBatchesTotal"], 1);
    assert_eq!(closed["numberRecordsProcessed"], 2);
    // A closed job takes no more batches.
    let r = e
        .post(&format!("/job/{jid}/batch"), "application/json", "[]")
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["exceptionCode"], "InvalidJobState");

    // Query job: result list then records (datetimes as epoch ms).
    let job = e
        .post(
            "/job",
            "application/json",
            &json!({"operation": "query", "object": "Account", "concurrencyMode": 1, "contentType": "JSON"}).to_string(),
        )
        .await
        .json();
    assert_eq!(job["concurrencyMode"], "Serial");
    let jid = job["id"].as_str().unwrap().to_string();
    let batch = e
        .post(
            &format!("/job/{jid}/batch"),
            "application/json",
            "SELECT Id, Name, CreatedDate FROM Account",
        )
        .await
        .json();
    let bid = batch["id"].as_str().unwrap().to_string();
    e.wait_json(&jid, &bid).await;
    let list = e
        .get(
            &format!("/job/{jid}/batch/{bid}/result"),
            Some("application/json"),
        )
        .await
        .json();
    let rid = list[0].as_str().unwrap().to_string();
    assert!(rid.starts_with("752"));
    let recs = e
        .get(
            &format!("/job/{jid}/batch/{bid}/result/{rid}"),
            Some("application/json"),
        )
        .await
        .json();
    assert_eq!(recs.as_array().unwrap().len(), 1);
    assert_eq!(recs[0]["attributes"]["type"], "Account");
    assert_eq!(recs[0]["Name"], "Bulk A");
    assert!(recs[0]["CreatedDate"].is_i64(), "{}", recs[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_salesforce_csv_query_all_with_xml_batch_info() {
    let e = env().await;
    let ids = e.create(
        "Account",
        vec![json!({"Name": "Live"}), json!({"Name": "Gone"})],
    );
    let ctx = WriteContext::rest(&e.emu.org, "59.0");
    e.emu
        .org
        .write(&ctx, vec![WriteOp::Delete { id: ids[1].clone() }], false);
    let job = e
        .post(
            "/job",
            "application/json",
            r#"{"operation":"queryAll","object":"Account","contentType":"CSV"}"#,
        )
        .await;
    assert_eq!(job.status, 201);
    assert_eq!(job.content_type, "application/json");
    let jid = job.json()["id"].as_str().unwrap().to_string();
    let batch = e
        .post(
            &format!("/job/{jid}/batch"),
            "text/csv",
            "SELECT Id,Name,IsDeleted,SystemModstamp FROM Account WHERE SystemModstamp >= 2017-01-01T00:00:00Z ",
        )
        .await;
    assert_eq!(batch.status, 201, "{}", batch.text);
    assert!(batch
        .text
        .contains("<batchInfo xmlns=\"http://www.force.com/2009/06/asyncapi/dataload\">"));
    let bid = tag(&batch.text, "id").to_string();
    let info = e.wait_xml(&jid, &bid).await;
    assert_eq!(tag(&info, "numberRecordsProcessed"), "2");
    let list = e.get(&format!("/job/{jid}/batch/{bid}/result"), None).await;
    assert!(list
        .text
        .contains("<result-list xmlns=\"http://www.force.com/2009/06/asyncapi/dataload\">"));
    let rid = tag(&list.text, "result").to_string();
    let csv = e
        .get(&format!("/job/{jid}/batch/{bid}/result/{rid}"), None)
        .await;
    let lines: Vec<&str> = csv.text.lines().collect();
    assert_eq!(lines[0], "\"Id\",\"Name\",\"IsDeleted\",\"SystemModstamp\"");
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().any(|l| l.contains("\"Gone\",\"true\"")));
    let list = e.get(&format!("/job/{jid}/batch"), None).await;
    assert!(list.text.contains("<batchInfoList"));
    // tap's job_exists(): an unknown job is InvalidJob as plain application/json.
    let r = e
        .get("/job/750000000000000AAA", Some("application/json"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.json()["exceptionCode"], "InvalidJob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsforce_xml_job_with_csv_batches() {
    let e = env().await;
    let job = e
        .post(
            "/job",
            "application/xml; charset=utf-8",
            r#"<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation><object>Account</object><contentType>CSV</contentType></jobInfo>"#,
        )
        .await;
    assert_eq!(job.status, 201, "{}", job.text);
    assert!(job.text.starts_with("<?xml"));
    assert_eq!(tag(&job.text, "operation"), "insert");
    let jid = tag(&job.text, "id").to_string();
    let batch = e
        .post(
            &format!("/job/{jid}/batch"),
            "text/csv",
            "Name,Industry\nX1,Energy\n,Energy\n",
        )
        .await;
    let bid = tag(&batch.text, "id").to_string();
    e.wait_xml(&jid, &bid).await;
    let res = e.get(&format!("/job/{jid}/batch/{bid}/result"), None).await;
    let lines: Vec<&str> = res.text.lines().collect();
    assert_eq!(lines[0], "\"Id\",\"Success\",\"Created\",\"Error\"");
    assert!(lines[1].contains("\"true\",\"true\",\"\""), "{}", lines[1]);
    assert!(
        lines[2].starts_with("\"\",\"false\",\"false\",\"REQUIRED_FIELD_MISSING:"),
        "{}",
        lines[2]
    );
    let closed = e
        .post(
            &format!("/job/{jid}"),
            "application/xml",
            r#"<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><state>Closed</state></jobInfo>"#,
        )
        .await;
    assert_eq!(tag(&closed.text, "state"), "Closed");
    assert_eq!(tag(&closed.text, "numberRecordsFailed"), "1");

    // XML ingest job with an XML batch.
    let job = e
        .post(
            "/job",
            "application/xml",
            r#"<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation><object>Account</object><contentType>XML</contentType></jobInfo>"#,
        )
        .await;
    let jid = tag(&job.text, "id").to_string();
    let batch = e
        .post(
            &format!("/job/{jid}/batch"),
            "application/xml",
            r#"<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload"><sObject><Name>X &amp; Y</Name></sObject></sObjects>"#,
        )
        .await;
    let bid = tag(&batch.text, "id").to_string();
    e.wait_xml(&jid, &bid).await;
    let res = e.get(&format!("/job/{jid}/batch/{bid}/result"), None).await;
    assert_eq!(tag(&res.text, "success"), "true");
    assert!(tag(&res.text, "id").starts_with("001"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sessions_get_the_xml_invalid_session_error() {
    let e = env().await;
    let resp = e
        .http
        .post(format!("{}/services/async/59.0/job", e.emu.base_url))
        .header("X-SFDC-Session", "bogus")
        .header("Content-Type", "application/xml")
        .body("<jobInfo/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("<exceptionCode>InvalidSessionId</exceptionCode>"),
        "{text}"
    );
    assert!(text.contains("<error xmlns=\"http://www.force.com/2009/06/asyncapi/dataload\">"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulted_batches_fail_and_expired_jobs_are_gone() {
    let e = env().await;
    e.create("Account", vec![json!({"Name": "One"})]);
    let fault = |body: Json| {
        let http = e.http.clone();
        let url = format!("{}/__emulator/faults", e.emu.base_url);
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    let job = e
        .post(
            "/job",
            "application/json",
            &json!({"operation": "query", "object": "Account", "contentType": "JSON"}).to_string(),
        )
        .await
        .json();
    let job = job["id"].as_str().unwrap().to_string();
    fault(json!({"bulk_fail_next": 1})).await;
    let batch = e
        .post(
            &format!("/job/{job}/batch"),
            "application/json",
            "SELECT Id FROM Account",
        )
        .await
        .json();
    let batch = batch["id"].as_str().unwrap().to_string();
    let info = e
        .get(
            &format!("/job/{job}/batch/{batch}"),
            Some("application/json"),
        )
        .await
        .json();
    assert_eq!(info["state"], "Failed", "{info}");
    assert!(info["stateMessage"]
        .as_str()
        .unwrap()
        .contains("InternalServerError"));

    fault(json!({"bulk_expire_jobs": true})).await;
    let r = e
        .get(&format!("/job/{job}"), Some("application/json"))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["exceptionCode"], "InvalidJob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_results_are_the_records_as_they_were_when_the_batch_ran() {
    let e = env().await;
    let ids = e.create(
        "Account",
        vec![json!({"Name": "Before"}), json!({"Name": "Doomed"})],
    );
    let job = e
        .post(
            "/job",
            "application/json",
            r#"{"operation":"query","object":"Account","contentType":"CSV"}"#,
        )
        .await;
    let jid = job.json()["id"].as_str().unwrap().to_string();
    let batch = e
        .post(
            &format!("/job/{jid}/batch"),
            "text/csv",
            "SELECT Id, Name FROM Account",
        )
        .await;
    let bid = tag(&batch.text, "id").to_string();
    e.wait_xml(&jid, &bid).await;

    // After the batch completed: one record renamed, the other deleted, a third created.
    let ctx = WriteContext::rest(&e.emu.org, "59.0");
    let results = e.emu.org.write(
        &ctx,
        vec![
            WriteOp::Update {
                object: Some("Account".into()),
                id: ids[0].clone(),
                fields: vec![("Name".into(), FieldInput::Json(json!("After")))],
            },
            WriteOp::Delete { id: ids[1].clone() },
        ],
        false,
    );
    assert!(results.iter().all(|r| r.is_ok()));
    e.create("Account", vec![json!({"Name": "Newcomer"})]);

    let list = e.get(&format!("/job/{jid}/batch/{bid}/result"), None).await;
    let rid = tag(&list.text, "result").to_string();
    let csv = e
        .get(&format!("/job/{jid}/batch/{bid}/result/{rid}"), None)
        .await;
    assert!(
        csv.content_type.starts_with("text/csv"),
        "{}",
        csv.content_type
    );
    let mut rows: Vec<&str> = csv.text.lines().skip(1).collect();
    rows.sort();
    let mut want = vec![
        format!("\"{}\",\"Before\"", ids[0]),
        format!("\"{}\",\"Doomed\"", ids[1]),
    ];
    want.sort();
    assert_eq!(rows, want);
}
