//! Streaming within Salesforce's allocations (issue 16), end to end: the `forcesync` binary
//! against the emulator at its default allocations (a Developer Edition org's: 20 concurrent
//! streaming clients, 10,000 delivered change events a day, clients forgotten 40 s after their
//! last connect) and real Postgres.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use forcesync_tests::engine::Harness;
use reqwest::Method;
use serde_json::{json, Value};

/// The mappings of this repository that stream.
const STREAMING: [&str; 4] = ["Account", "Contact", "Invoice__c", "Invoice_Line__c"];
const CLIENTS: &str = "DurableStreamingApiConcurrentClients";
const DELIVERIES: &str = "DailyDeliveredPlatformEvents";

fn env(h: &Harness) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", h.db.url.clone()),
        ("SF_LOGIN_URL", h.emulator.base_url.clone()),
        ("SF_CLIENT_ID", "forcesync".to_owned()),
        ("SF_CLIENT_SECRET", "forcesync".to_owned()),
        ("SF_USERNAME", "admin@example.com".to_owned()),
        ("SF_PASSWORD", "forcesync".to_owned()),
        // These tests are about CometD's concurrent-client allocation (one client for every
        // mapping of an instance).
        ("FORCESYNC_STREAMING_TRANSPORT", "cometd".to_owned()),
    ]
}

fn forcesync(h: &Harness, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forcesync"));
    command.args(args).env_remove("RUST_LOG");
    for (name, value) in env(h) {
        command.env(name, value);
    }
    command
}

fn migrate(h: &Harness) {
    let out = forcesync(h, &["migrate"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_listen() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// `forcesync run` listening on `listen` (a free port when `None`; tests run side by side), its
/// log in `log`.
fn start(h: &Harness, log: &PathBuf, listen: Option<&str>) -> Child {
    let listen = listen.map_or_else(free_listen, str::to_owned);
    forcesync(h, &["run", "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        ))
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

async fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "the daemon stops within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn limit(h: &Harness, name: &str) -> (u64, u64) {
    let limits = h.control(Method::GET, "limits", Value::Null).await;
    (
        limits[name]["Max"].as_u64().unwrap(),
        limits[name]["Remaining"].as_u64().unwrap(),
    )
}

/// Streaming clients alive in the org now, as `/limits` counts them.
async fn clients_in_use(h: &Harness) -> u64 {
    let (max, remaining) = limit(h, CLIENTS).await;
    max - remaining
}

/// Another integration's CometD client: a handshake, then nothing (the org forgets it 40 s
/// later). `false` when the org refused it (allocation used up).
async fn other_integrations_client(h: &Harness, token: &str) -> bool {
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/cometd/59.0", h.emulator.base_url))
        .bearer_auth(token)
        .json(&json!([{"channel": "/meta/handshake", "version": "1.0",
                       "supportedConnectionTypes": ["long-polling"], "id": "1"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply[0]["successful"] == true
}

/// Takes every free place of the concurrent-client allocation; answers how many.
async fn use_up_clients(h: &Harness) -> u32 {
    let token = h.user_session().await;
    let mut taken = 0;
    while other_integrations_client(h, &token).await {
        taken += 1;
        assert!(taken <= 20, "the allocation has 20 places");
    }
    taken
}

async fn states(pg: &tokio_postgres::Client) -> Vec<(String, String, Option<String>)> {
    pg.query(
        "SELECT mapping, state, message FROM salesforce._forcesync_mapping_state",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

async fn all_streaming(pg: &tokio_postgres::Client) -> bool {
    let states = states(pg).await;
    STREAMING.iter().all(|m| {
        states
            .iter()
            .any(|(name, state, _)| name == m && state == "STREAMING")
    })
}

/// The state message of `mapping` when it polls because streaming is refused for `reason`.
async fn polling_because(pg: &tokio_postgres::Client, mapping: &str, reason: &str) -> bool {
    states(pg).await.iter().any(|(name, state, message)| {
        name == mapping
            && state == "POLLING"
            && message.as_deref().is_some_and(|m| {
                m.contains(reason)
                    && m.starts_with("polling every 10 s")
                    && m.contains("trying streaming again at")
            })
    })
}

async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < within {
        if check().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {within:?} waiting for: {what}");
}

/// An Account created in Salesforce reaches Postgres within `within`; answers how long it took.
async fn account_arrives(
    h: &Harness,
    pg: &tokio_postgres::Client,
    name: &str,
    within: Duration,
) -> Duration {
    let id = h.create("Account", json!({"Name": name})).await;
    let started = Instant::now();
    wait_until(within, &format!("{name} in Postgres"), || async {
        pg.query_one(
            "SELECT count(*) FROM salesforce.account WHERE sfid = $1 AND name = $2",
            &[&id, &name],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
            == 1
    })
    .await;
    started.elapsed()
}

/// How many of the Accounts created to spend the delivery allocation are in Postgres.
async fn bulk_accounts(pg: &tokio_postgres::Client) -> u64 {
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM salesforce.account WHERE name LIKE 'Bulk %'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    n as u64
}

/// No Account is in Postgres twice.
async fn accounts_once(pg: &tokio_postgres::Client) {
    let row = pg
        .query_one(
            "SELECT count(*), count(DISTINCT sfid), count(DISTINCT name) FROM salesforce.account",
            &[],
        )
        .await
        .unwrap();
    let (rows, ids): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(rows, ids, "no Account is in Postgres twice");
}

fn log_text(log: &PathBuf) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Waits until every streaming mapping streams; on timeout, fails with the states and the log.
async fn wait_all_streaming(pg: &tokio_postgres::Client, within: Duration, log: &PathBuf) {
    let started = Instant::now();
    while started.elapsed() < within {
        if all_streaming(pg).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "not every streaming mapping streams after {within:?}: {:?}\n{}",
        states(pg).await,
        log_text(log)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_streams_four_mappings_on_one_client_and_a_clean_stop_gives_it_back() {
    let h = Harness::start().await;
    migrate(&h);
    let pg = h.pg().await;
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("run.log");
    assert_eq!(clients_in_use(&h).await, 0);
    let listen = free_listen();
    let mut daemon = start(&h, &log, Some(&listen));
    wait_all_streaming(&pg, Duration::from_secs(60), &log).await;
    assert_eq!(
        clients_in_use(&h).await,
        1,
        "four streaming mappings, one client: {}",
        log_text(&log)
    );
    account_arrives(&h, &pg, "One client Co", Duration::from_secs(5)).await;

    // The allocations are watched: `status` and `/metrics` show them.
    wait_until(
        Duration::from_secs(20),
        "status shows the allocations",
        || async {
            let out = forcesync(&h, &["status"]).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains(
                "DurableStreamingApiConcurrentClients: 1 of 20 concurrent streaming clients",
            ) && text.contains("DailyDeliveredPlatformEvents: ")
        },
    )
    .await;
    let metrics = reqwest::get(format!("http://{listen}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "forcesync_org_limit_remaining{limit=\"DurableStreamingApiConcurrentClients\"} 19"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("forcesync_org_limit_max{limit=\"DailyDeliveredPlatformEvents\"} 10000"),
        "{metrics}"
    );

    // A clean stop disconnects the client: its place is free at once.
    signal(&daemon, "TERM");
    assert!(wait_exit(&mut daemon, Duration::from_secs(30))
        .await
        .success());
    assert_eq!(
        clients_in_use(&h).await,
        0,
        "SIGTERM gives the place back: {}",
        log_text(&log)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_ten_times_changes_arrive_within_15_s_and_streaming_resumes_by_itself()
{
    let h = Harness::start().await;
    migrate(&h);
    let pg = h.pg().await;
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("run.log");
    let mut daemon = start(&h, &log, None);
    wait_all_streaming(&pg, Duration::from_secs(60), &log).await;

    let started = Instant::now();
    let mut refused_starts = 0;
    for round in 0..10 {
        signal(&daemon, "KILL");
        wait_exit(&mut daemon, Duration::from_secs(10)).await;
        // From the sixth start on, other integrations hold every free place (the killed
        // instances' clients hold theirs until the org forgets them).
        let exhausted = round >= 5 && {
            use_up_clients(&h).await;
            true
        };
        // Mark the states so that this start's own STREAMING is seen.
        pg.execute(
            "UPDATE salesforce._forcesync_mapping_state SET state = 'POLLING', message = 'test: before the start'",
            &[],
        )
        .await
        .unwrap();
        daemon = start(&h, &log, None);
        let name = format!("Restart {round} Co");
        if exhausted {
            wait_until(
                Duration::from_secs(15),
                "every streaming mapping polls, saying the clients are all in use",
                || async {
                    let mut all = true;
                    for m in STREAMING {
                        all &= polling_because(&pg, m, CLIENTS).await;
                    }
                    all
                },
            )
            .await;
            refused_starts += 1;
            let took = account_arrives(&h, &pg, &name, Duration::from_secs(15)).await;
            assert!(took <= Duration::from_secs(15));
        } else {
            wait_until(Duration::from_secs(15), "this start streams", || {
                all_streaming(&pg)
            })
            .await;
            account_arrives(&h, &pg, &name, Duration::from_secs(5)).await;
        }
    }
    assert_eq!(refused_starts, 5);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "ten restarts within two minutes, took {:?}",
        started.elapsed()
    );

    // The other integrations' clients and the killed instances' expire: streaming comes back
    // by itself, on one client.
    wait_until(
        Duration::from_secs(120),
        "streaming resumes by itself",
        || all_streaming(&pg),
    )
    .await;
    account_arrives(&h, &pg, "Back to streaming Co", Duration::from_secs(5)).await;
    wait_until(
        Duration::from_secs(60),
        "only this instance's client is left",
        || async { clients_in_use(&h).await == 1 },
    )
    .await;
    accounts_once(&pg).await;
    signal(&daemon, "TERM");
    assert!(wait_exit(&mut daemon, Duration::from_secs(30))
        .await
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_delivery_allocation_used_up_mid_run_changes_keep_arriving_by_polling() {
    let h = Harness::start().await;
    migrate(&h);
    let pg = h.pg().await;
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("run.log");
    let mut daemon = start(&h, &log, None);
    wait_all_streaming(&pg, Duration::from_secs(60), &log).await;

    // A Salesforce user creates Accounts until every delivery the org has left today is spent.
    let (_, left) = limit(&h, DELIVERIES).await;
    let mut created = 0u64;
    let mut batch = 0;
    while created < left {
        let n = (left - created).min(200);
        let records: Vec<Value> = (0..n)
            .map(|i| json!({"Name": format!("Bulk {batch}-{i}")}))
            .collect();
        h.create_many("Account", &records).await;
        created += n;
        batch += 1;
    }
    wait_until(
        Duration::from_secs(60),
        "every streaming mapping polls, saying the deliveries are used up",
        || async {
            let mut all = true;
            for m in STREAMING {
                all &= polling_because(&pg, m, DELIVERIES).await;
            }
            all
        },
    )
    .await;
    assert_eq!(limit(&h, DELIVERIES).await.1, 0);
    // The Accounts created to spend the allocation arrive first (the deliveries that were left,
    // and the rest by polling), so that the bound below measures one change, not that backlog.
    wait_until(
        Duration::from_secs(90),
        "the Accounts created to spend the allocation in Postgres",
        || async { bulk_accounts(&pg).await == created },
    )
    .await;
    // Changes keep arriving by polling: within a degraded interval (10 s) and the poll itself,
    // with room for a CI machine running this suite's other daemons beside it.
    account_arrives(&h, &pg, "Polled Co", Duration::from_secs(30)).await;

    // The next day: streaming resumes by itself.
    h.control(Method::DELETE, "counters", Value::Null).await;
    wait_until(
        Duration::from_secs(90),
        "streaming resumes the next day",
        || all_streaming(&pg),
    )
    .await;
    account_arrives(&h, &pg, "Streamed again Co", Duration::from_secs(5)).await;

    // Nothing lost, nothing twice.
    assert_eq!(
        bulk_accounts(&pg).await,
        created,
        "every Account created reached Postgres"
    );
    accounts_once(&pg).await;
    let log = log_text(&log);
    assert!(
        log.contains("daily change event delivery allocation"),
        "the log says why: {log}"
    );
    signal(&daemon, "TERM");
    assert!(wait_exit(&mut daemon, Duration::from_secs(30))
        .await
        .success());
}
