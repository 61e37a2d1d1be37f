//! Core throughput figures: seeding N Accounts through `insert_many` (rows/s, resident memory)
//! and sObject Collections creates over real HTTP (records/s, 200 records per request, two
//! concurrent clients). Run: `cargo run --release -p sf-emulator --example bench_core [N]`.

use std::time::Instant;

use serde_json::json;
use sf_emulator::{seed, Config};

/// CPU seconds (user + system) this process used so far.
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

fn rss_mb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let running = sf_emulator::start(Config::ephemeral())
        .await
        .expect("emulator starts");
    let org = running.org.clone();

    let before = rss_mb().unwrap_or(0);
    let t = Instant::now();
    let cpu = cpu_secs();
    let ids = seed::seed_object(&org, "Account", n, 42).expect("seed");
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    let after = rss_mb().unwrap_or(0);
    println!(
        "seed: {} Accounts in {:.2} s wall ({:.2} s CPU) = {:.0} rows/s, RSS +{} MB ({} MB total)",
        ids.len(),
        secs,
        cpu,
        ids.len() as f64 / secs,
        after.saturating_sub(before),
        after
    );

    let token = org.create_session().token;
    let url = format!(
        "{}/services/data/v59.0/composite/sobjects",
        running.base_url
    );
    let requests = 100usize;
    let client = reqwest::Client::new();
    let t = Instant::now();
    let cpu = cpu_secs();
    let mut tasks = Vec::new();
    for w in 0..2 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut ok = 0usize;
            for r in (w..requests).step_by(2) {
                let records: Vec<_> = (0..200)
                    .map(|i| {
                        json!({"attributes": {"type": "Account"}, "Name": format!("Bench {r}-{i}"),
                               "Industry": "Energy", "NumberOfEmployees": i, "BillingCity": "Paris"})
                    })
                    .collect();
                let resp: serde_json::Value = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"allOrNone": false, "records": records}))
                    .send()
                    .await
                    .expect("send")
                    .json()
                    .await
                    .expect("json");
                ok += resp
                    .as_array()
                    .map(|a| a.iter().filter(|x| x["success"] == true).count())
                    .unwrap_or(0);
            }
            ok
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.expect("task");
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    println!(
        "collections: {ok} records created in {:.2} s wall ({:.2} s CPU, server and client) = {:.0} records/s ({} requests of 200)",
        secs,
        cpu,
        ok as f64 / secs,
        requests
    );
    running.stop().await;
}
