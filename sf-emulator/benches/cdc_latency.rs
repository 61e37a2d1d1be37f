//! CDC delivery latency over real HTTP on this machine: a CometD client holds `/meta/connect`
//! while REST creates commit, and the time until each event reaches it is printed as p50/p99/max.
//!
//! `cargo bench -p sf-emulator --bench cdc_latency` (200 samples; `SF_BENCH_CDC_SAMPLES`
//! overrides).

use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use sf_emulator::server::{start, Config};

fn main() {
    let samples: usize = std::env::var("SF_BENCH_CDC_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let emu = start(Config::ephemeral()).await.expect("emulator");
        let token = emu.org.create_session().token;
        let http = reqwest::Client::new();
        cdc_latency(&http, &emu.base_url, &token, samples).await;
    });
}

/// CDC delivery latency: a CometD client holds `/meta/connect` on `/data/AccountChangeEvent`
/// while a REST create commits. Each sample runs from just before the create is sent to the
/// moment the connect reply carrying its event arrives — an upper bound on commit → delivery,
/// since it includes the create's own processing.
async fn cdc_latency(http: &reqwest::Client, base: &str, token: &str, samples: usize) {
    let cometd = format!("{base}/cometd/59.0");
    let bayeux = |batch: Json| {
        let http = http.clone();
        let cometd = cometd.clone();
        let auth = format!("OAuth {token}");
        async move {
            http.post(cometd)
                .header("Authorization", auth)
                .json(&batch)
                .send()
                .await
                .expect("cometd request")
                .json::<Json>()
                .await
                .expect("cometd reply")
        }
    };
    let handshake = bayeux(json!([{"channel": "/meta/handshake", "version": "1.0",
        "supportedConnectionTypes": ["long-polling"], "id": "1"}]))
    .await;
    let client_id = handshake[0]["clientId"].as_str().expect("clientId").to_string();
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
