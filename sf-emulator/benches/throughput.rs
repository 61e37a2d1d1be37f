//! Emulator throughput, measured over real HTTP on this machine and printed as figures:
//! Bulk 2.0 query of N Accounts (rows/s), REST query paging via `nextRecordsUrl` (rows/s), and
//! sObject Collections inserts (records/s), and CDC delivery latency (commit → event at a held
//! CometD connect).
//!
//! `cargo bench -p sf-emulator --bench throughput` (N = 1,000,000; `SF_BENCH_ROWS` overrides;
//! 200 CDC samples, `SF_BENCH_CDC_SAMPLES` overrides).

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use sf_emulator::server::{build_org, serve, Config};

const SOQL: &str = "SELECT Id, Name, Type, Industry, AnnualRevenue, NumberOfEmployees, Phone, \
                    BillingCity, BillingCountry, OwnerId, CreatedDate, LastModifiedDate, SystemModstamp \
                    FROM Account";

/// A query page, records skipped over (validated as JSON, not materialised).
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    records: Vec<serde::de::IgnoredAny>,
    next_records_url: Option<String>,
}

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

/// CPU seconds (user + system) this process (server and client) used so far.
fn cpu_secs() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Rows per second of wall clock, and per CPU second spent by this process (server and the
/// in-process client together): the second figure is stable on a shared, busy machine.
fn rates(n: usize, wall: Duration, cpu: f64) -> String {
    format!(
        "{} rows/s wall, {:>10.0} rows per CPU-second",
        rate(n, wall),
        n as f64 / cpu.max(1e-9)
    )
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
    let c = cpu_secs();
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
    let bulk_cpu = cpu_secs() - c;
    assert_eq!(got, rows);
    println!(
        "Bulk 2.0 query      {}  ({got} rows, {:.1} MB CSV, {:.2} s: job run {:.2} s, download {:.2} s)",
        rates(got, bulk, bulk_cpu),
        bytes as f64 / 1e6,
        bulk.as_secs_f64(),
        ran.as_secs_f64(),
        (bulk - ran).as_secs_f64()
    );

    // REST query paging: first page + nextRecordsUrl pages.
    let limit = rows.min(200_000);
    let t = Instant::now();
    let c = cpu_secs();
    let soql = format!("{SOQL} LIMIT {limit}");
    let mut url = format!(
        "{base}/services/data/v59.0/query?q={}",
        url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>()
    );
    let mut got = 0usize;
    loop {
        let body = http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("query page")
            .bytes()
            .await
            .expect("page body");
        // Validate and count without building a DOM: the figure is the emulator's, not serde's.
        let page: Page = serde_json::from_slice(&body).expect("page json");
        got += page.records.len();
        match page.next_records_url {
            Some(next) => url = format!("{base}{next}"),
            None => break,
        }
    }
    let rest = t.elapsed();
    let rest_cpu = cpu_secs() - c;
    assert_eq!(got, limit);
    println!(
        "REST query paging   {}  ({got} rows in pages of 2000, {:.2} s)",
        rates(got, rest, rest_cpu),
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
    let samples: usize = std::env::var("SF_BENCH_CDC_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(200);
    cdc_latency(&http, &base, &token, samples).await;
    emu.stop().await;
}

/// CDC delivery latency: a CometD client holds `/meta/connect` on `/data/AccountChangeEvent`
/// while a REST create commits. Each sample runs from just before the create is sent to the
/// moment the connect reply carrying its event arrives — an upper bound on commit → delivery,
/// since it includes the create's own processing.
async fn cdc_latency(http: &reqwest::Client, base: &str, token: &str, samples: usize) {
    let cometd = format!("{base}/cometd/59.0");
    // The handshake sets the BAYEUX_BROWSER cookie every later request carries.
    let response = http
        .post(&cometd)
        .header("Authorization", format!("OAuth {token}"))
        .json(&json!([{"channel": "/meta/handshake", "version": "1.0",
            "supportedConnectionTypes": ["long-polling"], "id": "1"}]))
        .send()
        .await
        .expect("handshake");
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_string();
    let handshake: Json = response.json().await.expect("handshake reply");
    let bayeux = |batch: Json| {
        let http = http.clone();
        let cometd = cometd.clone();
        let auth = format!("OAuth {token}");
        let cookie = cookie.clone();
        async move {
            http.post(cometd)
                .header("Authorization", auth)
                .header("Cookie", cookie)
                .json(&batch)
                .send()
                .await
                .expect("cometd request")
                .json::<Json>()
                .await
                .expect("cometd reply")
        }
    };
    let client_id = handshake[0]["clientId"]
        .as_str()
        .expect("clientId")
        .to_string();
    bayeux(json!([{"channel": "/meta/subscribe", "clientId": client_id,
        "subscription": "/data/AccountChangeEvent", "id": "2",
        "ext": {"replay": {"/data/AccountChangeEvent": -1}}}]))
    .await;
    let connect = json!([{"channel": "/meta/connect", "clientId": client_id,
        "connectionType": "long-polling", "id": "3"}]);
    bayeux(connect.clone()).await; // the first connect is answered at once

    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let held = tokio::spawn({
            let request = bayeux(connect.clone());
            async move {
                let reply = request.await;
                (reply, Instant::now())
            }
        });
        // Let the connect reach the server and park before committing.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let sent = Instant::now();
        let created = http
            .post(format!("{base}/services/data/v59.0/sobjects/Account"))
            .bearer_auth(token)
            .json(&json!({"Name": format!("Latency {i}")}))
            .send()
            .await
            .expect("create");
        assert_eq!(created.status(), 201, "create failed");
        let (reply, received) = held.await.expect("connect task");
        let delivered = reply
            .as_array()
            .map(|m| m.iter().any(|m| m["channel"] == "/data/AccountChangeEvent"))
            .unwrap_or(false);
        assert!(delivered, "the connect reply carried no event: {reply}");
        latencies.push(received.duration_since(sent));
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "CDC delivery (REST create sent → event at a held CometD connect), {samples} samples: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*latencies.last().expect("samples"))
    );
}
