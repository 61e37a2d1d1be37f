//! Emulator throughput, measured over real HTTP on this machine and printed as figures:
//! Bulk 2.0 query of N Accounts (rows/s), REST query paging via `nextRecordsUrl` (rows/s), and
//! sObject Collections inserts (records/s).
//!
//! `cargo bench -p sf-emulator --bench throughput` (N = 1,000,000; `SF_BENCH_ROWS` overrides).

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use sf_emulator::server::{build_org, serve, Config};

const SOQL: &str = "SELECT Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, Phone, \
                    BillingCity, BillingCountry, OwnerId, CreatedDate, LastModifiedDate, SystemModstamp \
                    FROM Account";

fn main() {
    let rows: usize = std::env::var("SF_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(rows));
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>12.0}", n as f64 / d.as_secs_f64())
}

async fn run(rows: usize) {
    let org = build_org(&Config::ephemeral()).expect("org");
    let t = Instant::now();
    sf_emulator::seed::seed_object(&org, "Account", rows, 42).expect("seed");
    let seeded = t.elapsed();
    println!(
        "seeded {rows} Accounts in {:.2} s ({} records/s)",
        seeded.as_secs_f64(),
        rate(rows, seeded).trim()
    );
    let emu = serve(org).await.expect("serve");
    let token = emu.org.create_session().token;
    let http = reqwest::Client::new();
    let base = emu.base_url.clone();

    // Bulk 2.0 query: create, wait, download every page.
    let t = Instant::now();
    let job: Json = http
        .post(format!("{base}/services/data/v59.0/jobs/query"))
        .bearer_auth(&token)
        .json(&json!({"operation": "query", "query": SOQL}))
        .send()
        .await
        .expect("create job")
        .json()
        .await
        .expect("job info");
    let id = job["id"].as_str().expect("job id").to_string();
    loop {
        let info: Json = http
            .get(format!("{base}/services/data/v59.0/jobs/query/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("job status")
            .json()
            .await
            .expect("job info");
        match info["state"].as_str() {
            Some("JobComplete") => break,
            Some("Failed") | Some("Aborted") => panic!("query job ended: {info}"),
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    let ran = t.elapsed();
    let mut got = 0usize;
    let mut bytes = 0usize;
    let mut locator: Option<String> = None;
    loop {
        let mut url =
            format!("{base}/services/data/v59.0/jobs/query/{id}/results?maxRecords=100000");
        if let Some(l) = &locator {
            url.push_str(&format!("&locator={l}"));
        }
        let resp = http
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("results");
        let n: usize = resp.headers()["sforce-numberofrecords"]
            .to_str()
            .expect("header")
            .parse()
            .expect("count");
        let next = resp.headers()["sforce-locator"]
            .to_str()
            .expect("header")
            .to_string();
        let body = resp.bytes().await.expect("body");
        bytes += body.len();
        got += n;
        if next == "null" {
            break;
        }
        locator = Some(next);
    }
    let bulk = t.elapsed();
    assert_eq!(got, rows);
    println!(
        "Bulk 2.0 query      {} rows/s  ({got} rows, {:.1} MB CSV, {:.2} s: job run {:.2} s, download {:.2} s)",
        rate(got, bulk),
        bytes as f64 / 1e6,
        bulk.as_secs_f64(),
        ran.as_secs_f64(),
        (bulk - ran).as_secs_f64()
    );

    // REST query paging: first page + nextRecordsUrl pages.
    let limit = rows.min(200_000);
    let t = Instant::now();
    let soql = format!("{SOQL} LIMIT {limit}");
    let mut url = format!(
        "{base}/services/data/v59.0/query?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    );
    let mut got = 0usize;
    loop {
        let page: Json = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("query page")
            .json()
            .await
            .expect("page json");
        got += page["records"].as_array().map_or(0, Vec::len);
        match page["nextRecordsUrl"].as_str() {
            Some(next) => url = format!("{base}{next}"),
            None => break,
        }
    }
    let rest = t.elapsed();
    assert_eq!(got, limit);
    println!(
        "REST query paging   {} rows/s  ({got} rows in pages of 2000, {:.2} s)",
        rate(got, rest),
        rest.as_secs_f64()
    );

    // sObject Collections inserts, 200 records per request.
    let batches = 50;
    let t = Instant::now();
    let mut ok = 0usize;
    for b in 0..batches {
        let records: Vec<Json> = (0..200)
            .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("Bench {b}-{i}"), "Industry": "Energy"}))
            .collect();
        let resp = http
            .post(format!("{base}/services/data/v59.0/composite/sobjects"))
            .bearer_auth(&token)
            .json(&json!({"allOrNone": false, "records": records}))
            .send()
            .await
            .expect("collections");
        if resp.status().as_u16() == 404 {
            println!("sObject Collections  n/a (endpoint not served by this build)");
            ok = 0;
            break;
        }
        let res: Json = resp.json().await.expect("collections json");
        ok += res
            .as_array()
            .map_or(0, |a| a.iter().filter(|r| r["success"] == true).count());
    }
    if ok > 0 {
        let d = t.elapsed();
        println!(
            "sObject Collections {} records/s  ({ok} inserts, {:.2} s)",
            rate(ok, d),
            d.as_secs_f64()
        );
    }
    emu.stop().await;
}
