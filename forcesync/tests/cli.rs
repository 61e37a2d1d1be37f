//! The `forcesync` binary end to end, against the emulator and real Postgres: settings errors
//! and their exit code, migrate, run (health, readiness, metrics, graceful SIGTERM), status,
//! errors / retry / ignore on failed writes, conflicts, pause / resume, the demo, and no secret in
//! any output.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use forcesync_tests::pg::TestDb;
use serde_json::Value;

const CLIENT_SECRET: &str = "cs-7Hq2xWv9";
const PASSWORD: &str = "pw-9Zx4Lm3k";
const SETTINGS: [&str; 8] = [
    "SF_LOGIN_URL",
    "SF_CLIENT_ID",
    "SF_CLIENT_SECRET",
    "SF_USERNAME",
    "SF_PASSWORD",
    "SF_JWT_KEY_FILE",
    "SF_REFRESH_TOKEN",
    "DATABASE_URL",
];

fn forcesync(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forcesync"));
    command.args(args);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG");
    command.envs(env.iter().copied());
    command
}

fn output(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = forcesync(args, env).output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn a_missing_or_wrong_setting_names_it_and_exits_with_code_2() {
    let (code, _, err) = output(&["status"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("DATABASE_URL is not set"), "{err}");
    assert!(err.contains("postgres://"), "says what to set: {err}");

    let (code, _, err) = output(&["run"], &[("DATABASE_URL", "postgres://localhost/app")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SF_CLIENT_ID is not set"), "{err}");

    let (code, _, err) = output(
        &["run"],
        &[
            ("DATABASE_URL", "postgres://localhost/app"),
            ("SF_CLIENT_ID", "id"),
            ("SF_CLIENT_SECRET", CLIENT_SECRET),
            ("SF_USERNAME", "admin@example.com"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SF_PASSWORD is not set"), "{err}");

    let (code, _, err) = output(&["status"], &[("DATABASE_URL", "mysql://localhost/app")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("DATABASE_URL is not a postgres:// URL"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("forcesync.toml");
    std::fs::write(&file, "SF_PASWORD = \"x\"\n").unwrap();
    let (code, _, err) = output(&["--config", file.to_str().unwrap(), "status"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown setting `SF_PASWORD`"), "{err}");

    let (code, out, _) = output(&["--help"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit codes"), "{out}");
    for command in [
        "migrate", "run", "status", "errors", "retry", "init", "verify", "demo",
    ] {
        assert!(out.contains(command), "--help lists {command}");
        let (code, _, _) = output(&[command, "--help"], &[]);
        assert_eq!(code, 0, "{command} --help");
    }
    let (code, _, err) = output(&["verify"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("DATABASE_URL is not set"), "{err}");
    let (code, _, err) = output(&["init"], &[]);
    assert_eq!(code, 2, "init needs an object: {err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn status_json(env: &[(&str, &str)]) -> Vec<Value> {
    let (code, out, err) = output(&["status", "--json"], env);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("status --json is JSON ({e}): {out}"))
        .as_array()
        .cloned()
        .unwrap()
}

fn mapping<'a>(status: &'a [Value], name: &str) -> &'a Value {
    status
        .iter()
        .find(|m| m["mapping"] == name)
        .unwrap_or_else(|| panic!("{name} in status"))
}

/// Every line is a comment or `name{labels} number`, and every family is declared.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut declared = Vec::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            declared.push(rest.split(' ').next().unwrap().to_owned());
        } else if !line.starts_with("# HELP ") {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let name = series.split('{').next().unwrap();
            assert!(
                declared.iter().any(|d| d == name),
                "undeclared family: {line}"
            );
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {line}"));
            samples.push((series.to_owned(), value));
        }
    }
    samples
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_syncs_serves_health_and_metrics_and_the_operator_commands_work() {
    let config = sf_emulator::server::Config {
        seed: Some("demo".to_owned()),
        client_secret: CLIENT_SECRET.to_owned(),
        password: PASSWORD.to_owned(),
        ..sf_emulator::server::Config::ephemeral()
    };
    let emulator = sf_emulator::server::start(config.clone()).await.unwrap();
    let db = TestDb::new();
    let env_owned = [
        ("DATABASE_URL", db.url.clone()),
        ("SF_LOGIN_URL", emulator.base_url.clone()),
        ("SF_CLIENT_ID", config.client_id.clone()),
        ("SF_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("SF_USERNAME", config.username.clone()),
        ("SF_PASSWORD", PASSWORD.to_owned()),
        // The default transport, the Pub/Sub API, at the emulator's listener.
        (
            "FORCESYNC_PUBSUB_URL",
            emulator
                .pubsub_url
                .clone()
                .expect("the emulator serves Pub/Sub"),
        ),
    ];
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut transcript = String::new();

    // Status before migrating says what to do.
    let (code, _, err) = output(&["status"], &env);
    assert_eq!(code, 1);
    assert!(err.contains("run `forcesync migrate` first"), "{err}");

    let (code, out, err) = output(&["migrate"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("applied app migration"), "{out}");
    assert!(out.contains("applied engine migration"), "{out}");
    transcript += &out;

    let before = status_json(&env);
    assert_eq!(before.len(), generated::salesforce::REGISTRY.mappings.len());
    assert_eq!(mapping(&before, "Account")["state"], "INITIAL");
    assert_eq!(mapping(&before, "Account")["rows"], 0);

    // Salesforce refuses test accounts, so the app's inserts of them fail.
    sync_runtime::salesforce::http::install_crypto_provider();
    let http = reqwest::Client::new();
    let rule = http
        .post(format!(
            "{}/__emulator/validation-rules",
            emulator.base_url
        ))
        .json(&serde_json::json!({"object": "Account", "field": "Name", "op": "contains",
            "value": "test", "message": "Test accounts are not allowed", "errorDisplayField": "Name"}))
        .send()
        .await
        .unwrap();
    assert!(rule.status().is_success());

    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("out"), logs.path().join("err"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut daemon = forcesync(&["--log-format", "json", "run", "--listen", &listen], &env)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&err_path).unwrap()))
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");

    eventually(
        "/readyz answers 200 once every mapping is loaded",
        || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    let accounts: i64 = pg
        .query_one("SELECT count(*) FROM salesforce.account", &[])
        .await
        .unwrap()
        .get(0);
    assert!(accounts > 0);
    let status = status_json(&env);
    let account = mapping(&status, "Account");
    assert_eq!(account["rows"], accounts);
    assert_eq!(account["access"], "read_write");
    assert!(
        account["state"] == "STREAMING" || account["state"] == "POLLING",
        "{account}"
    );
    if account["state"] == "STREAMING" {
        assert_eq!(account["transport"], "pubsub", "{account}");
    }
    let (code, table, _) = output(&["status"], &env);
    assert_eq!(code, 0);
    assert!(table.starts_with("MAPPING"), "{table}");
    assert!(table.contains(&format!("{accounts}")), "{table}");
    transcript += &table;

    // Two rejected inserts: errors lists them with Salesforce's message (exit code 3).
    for name in ["a test account", "another test account"] {
        pg.execute(
            "INSERT INTO salesforce.account (name) VALUES ($1)",
            &[&name],
        )
        .await
        .unwrap();
    }
    eventually("both failed writes are listed", || async {
        let (code, out, _) = output(&["errors", "Account", "--json"], &env);
        code == 3
            && serde_json::from_str::<Value>(&out)
                .is_ok_and(|v| v["failed_writes"].as_array().is_some_and(|a| a.len() == 2))
    })
    .await;
    let (code, out, _) = output(&["errors"], &env);
    assert_eq!(code, 3);
    assert!(out.contains("Test accounts are not allowed"), "{out}");
    assert!(out.contains("a test account"), "the row's values: {out}");
    transcript += &out;
    let (_, json, _) = output(&["errors", "--json"], &env);
    let errors: Value = serde_json::from_str(&json).unwrap();
    let first = errors["failed_writes"][0]["trigger_log_id"]
        .as_i64()
        .unwrap();
    assert_eq!(mapping(&status_json(&env), "Account")["failed_writes"], 2);

    let (code, out, _) = output(&["ignore", "--id", &first.to_string()], &env);
    assert_eq!(code, 0);
    assert!(out.contains("1 failed writes marked ignored"), "{out}");
    let (code, out, _) = output(&["retry", "--all"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("1 failed writes requeued"), "{out}");
    let (code, _, err) = output(&["retry"], &env);
    assert_eq!(code, 2, "retry needs a selection: {err}");
    assert!(err.contains("--all"), "{err}");

    let (code, out, _) = output(&["conflicts", "Account"], &env);
    assert_eq!(code, 0);
    transcript += &out;

    // Metrics parse as Prometheus text and agree with the table.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_prometheus(&metrics);
    let rows = samples
        .iter()
        .find(|(s, _)| s == "forcesync_rows{mapping=\"Account\"}")
        .map(|(_, v)| *v)
        .expect("rows of Account");
    assert!(rows >= accounts as f64, "{metrics}");
    assert!(
        samples
            .iter()
            .any(|(s, v)| s == "forcesync_up" && *v == 1.0),
        "{metrics}"
    );
    transcript += &metrics;

    // Pause and resume: the operator's decision is recorded (the engine acts on it at the
    // mapping's next repair tick).
    let (code, out, _) = output(&["pause", "Contact"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("Contact paused"), "{out}");
    let contact = mapping(&status_json(&env), "Contact").clone();
    assert_eq!(contact["paused"], true, "{contact}");
    let (code, _, _) = output(&["resume", "Contact"], &env);
    assert_eq!(code, 0);
    assert_eq!(mapping(&status_json(&env), "Contact")["paused"], false);

    // Reload while the app reads: the table is never empty, the rows come back.
    let reader = {
        let url = db.url.clone();
        tokio::spawn(async move {
            let pg = sync_runtime::engine::connect(&url).await.unwrap();
            let mut fewest = i64::MAX;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                let n: i64 = pg
                    .query_one(
                        "SELECT count(*) FROM salesforce.account WHERE sfid IS NOT NULL",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                fewest = fewest.min(n);
            }
            fewest
        })
    };
    let reload_env = env_owned.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = reload_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        output(&["reload", "Account"], &env)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("reloaded {accounts} rows")), "{out}");
    assert_eq!(
        reader.await.unwrap(),
        accounts,
        "the app never saw a partial table"
    );
    transcript += &out;
    transcript += &err;

    let (code, out, err) = output(&["recover", "--since", "2020-01-01", "Account"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Account: re-read"), "{out}");
    transcript += &out;

    // describe pull writes the snapshot the build reads.
    let snapshots = tempfile::tempdir().unwrap();
    let dir = snapshots.path().to_str().unwrap();
    let (code, out, err) = output(&["describe", "pull", "Account", "--dir", dir], &env);
    assert_eq!(code, 0, "{err}");
    let pulled: Value =
        serde_json::from_str(&read(&snapshots.path().join("Account.json"))).unwrap();
    assert_eq!(pulled["name"], "Account");
    assert!(
        pulled["fields"].as_array().is_some_and(|f| f.len() > 10),
        "{out}"
    );
    transcript += &out;

    // SIGTERM stops the daemon cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon stops within 30 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(exit.success(), "{}", read(&err_path));
    transcript += &read(&out_path);
    let log = read(&err_path);
    assert!(log.contains("shutting down"), "{log}");
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("--log-format json writes JSON lines ({e}): {line}"));
    }
    transcript += &log;

    for secret in [CLIENT_SECRET, PASSWORD] {
        assert!(
            !transcript.contains(secret),
            "a secret appeared in the output"
        );
    }
    emulator.stop().await;
}

#[test]
fn the_demo_shows_changes_in_both_directions_and_stops_by_itself() {
    let db = TestDb::new();
    let child = forcesync(&["demo", "--seconds", "25"], &[("DATABASE_URL", &db.url)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{out}\n{err}");
    assert!(out.contains("psql '"), "how to connect psql: {out}");
    assert!(
        out.contains("Salesforce emulator: http://127.0.0.1:"),
        "{out}"
    );
    let line = |direction: &str| {
        out.lines()
            .any(|l| l.contains(direction) && l.trim_end().ends_with(" ms"))
    };
    assert!(line("Salesforce → Postgres"), "{out}");
    assert!(line("Postgres → Salesforce"), "{out}");
    assert!(out.contains("Stopped."), "{out}");
    // A newcomer reads the demo's own lines: the engine's INFO log stays out of them unless
    // RUST_LOG asks for it.
    assert!(
        !err.lines().any(|l| l.contains(" INFO ")),
        "the demo printed engine INFO lines: {err}"
    );
}

#[test]
fn bench_write_prints_the_writer_against_its_baseline() {
    let db = TestDb::new();
    let (code, out, err) = output(
        &[
            "bench",
            "write",
            "--records",
            "500",
            "--rate",
            "50",
            "--seconds",
            "2",
        ],
        &[("DATABASE_URL", &db.url)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bare Collections loop"), "{out}");
    assert!(out.contains("forcesync writer"), "{out}");
    assert!(out.contains("writer / bare loop: "), "{out}");
    // Three throughput runs by default, a line each, then the figures of the fastest.
    for run in 1..=3 {
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("run {run}: ")) && l.contains(" writer ")),
            "{out}"
        );
    }
    assert!(
        out.contains("best of 3 runs (each figure below its fastest run's):"),
        "{out}"
    );
    // 500 records need ⌈500/200⌉ = 3 Collections calls, for the writer and the bare loop alike.
    assert!(
        out.contains("API calls: 3 against a minimum of 3 (⌈N/200⌉)"),
        "{out}"
    );
    // The floor is measured on the 500 rows the writer synced.
    assert!(
        out.contains("Postgres floor: writing 500 sfids back "),
        "{out}"
    );
    // The latency run: 50 single-row writes a second for 2 s.
    let latency = out
        .lines()
        .find(|l| l.contains("50 writes/s for 2 s ("))
        .unwrap_or_else(|| panic!("no latency line in:\n{out}"));
    assert!(
        latency.contains(" p50 ") && latency.contains(" p99 "),
        "{latency}"
    );
}

/// The numbers standing as words (`2000`, `0.43,`) in the output line starting with `prefix` (a
/// figure line of `bench`); `p50` or `50/s` are not numbers.
fn figures(out: &str, prefix: &str) -> Vec<f64> {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line `{prefix}…` in:\n{out}"));
    line[prefix.len()..]
        .split_whitespace()
        .filter_map(|w| w.trim_matches(|c| ",;:()".contains(c)).parse::<f64>().ok())
        .collect()
}

#[test]
fn bench_load_prints_the_load_against_a_raw_copy_with_memory_and_calls() {
    let db = TestDb::new();
    let (code, out, err) = output(
        &["bench", "load", "--records", "2000"],
        &[("DATABASE_URL", &db.url)],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // forcesync load: 2000 rows in 0.43 s = 4637 rows/s (REST query API)
    let load = figures(&out, "forcesync load: ");
    assert!(load[0] > 0.0 && load[0] <= 2000.0, "{out}");
    assert!(load[2] > 0.0, "{out}");
    assert!(
        out.contains("(REST query API)"),
        "below the Bulk threshold: {out}"
    );
    // Both baselines on the same rows, and the load's ratio to each.
    let raw = figures(&out, "raw indexed COPY: ");
    assert_eq!(raw[0], load[0], "the same rows: {out}");
    let limit = figures(&out, "limit: ");
    assert_eq!(limit[0], load[0], "the same rows: {out}");
    let ratio = figures(&out, "load / raw indexed COPY: ");
    assert!(ratio[0] > 0.0, "{out}");
    let ratio = figures(&out, "load / limit: ");
    assert!(ratio[0] > 0.0, "{out}");
    let rss = figures(&out, "engine peak RSS: ");
    assert!(rss[0] > 1.0 && rss[0] < 1000.0, "MB: {out}");
    let calls = figures(&out, "API calls for the load: ");
    assert!(calls[0] >= 2.0, "at least COUNT() and the query: {out}");
}

#[test]
fn bench_capture_prints_each_statement_with_and_without_capture_and_the_floor_where_missed() {
    let db = TestDb::new();
    let (code, out, err) = output(
        &["bench", "capture", "--rows", "2000", "--runs", "2"],
        &[("DATABASE_URL", &db.url)],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // run 1: INSERT 1.95x, UPDATE 2.98x, DELETE 16.20x with capture vs without
    for run in ["run 1: ", "run 2: "] {
        let line = out
            .lines()
            .find(|l| l.starts_with(run))
            .unwrap_or_else(|| panic!("no line `{run}…` in:\n{out}"));
        assert!(line.ends_with(" with capture vs without"), "{line}");
        for statement in ["INSERT ", "UPDATE ", "DELETE "] {
            let ratio: f64 = line
                .split(statement)
                .nth(1)
                .and_then(|rest| rest.split('x').next())
                .and_then(|ratio| ratio.parse().ok())
                .unwrap_or_else(|| panic!("no {statement}ratio in {line}"));
            assert!(ratio > 0.0, "{line}");
        }
    }
    assert!(
        out.contains("2000 rows of salesforce.account, best of 2 runs; baseline: the same statement on an identical table without capture triggers, same run"),
        "{out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    for (statement, target) in [("INSERT", "2x"), ("UPDATE", "3x"), ("DELETE", "5x")] {
        // UPDATE: 0.031 s with capture vs 0.012 s without: 2.58x (target <= 3x: met)
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("{statement:<6}: ")))
            .unwrap_or_else(|| panic!("no {statement} line in:\n{out}"));
        let line = lines[at];
        let seconds = figures(&out, &format!("{statement:<6}: "));
        assert!(seconds[0] > 0.0 && seconds[1] > 0.0, "{line}");
        assert!(line.contains(&format!("(target <= {target}: ")), "{line}");
        // A missed target has its floor on the next line; a met one has none.
        let floor = lines
            .get(at + 1)
            .is_some_and(|l| l.starts_with("        floor: the 2000 log rows' own insert takes "));
        assert_eq!(line.ends_with("missed)"), floor, "{out}");
    }
}

#[test]
fn bench_stream_prints_latency_percentiles_and_the_calls_of_an_idle_hour() {
    let db = TestDb::new();
    let (code, out, err) = output(
        &[
            "bench",
            "stream",
            "--seconds",
            "3",
            "--rate",
            "50",
            "--idle-seconds",
            "6",
            "--max-rate-seconds",
            "1",
        ],
        &[("DATABASE_URL", &db.url)],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // Without --transport: both, one after the other, then the ratios.
    assert!(
        out.contains("== over the Pub/Sub API (--transport pubsub) ==")
            && out.contains("== over CometD (--transport cometd) =="),
        "{out}"
    );
    assert!(out.contains("Pub/Sub / CometD: latency p50 "), "{out}");
    assert!(
        out.contains("Pub/Sub / CometD: highest sustained rate "),
        "{out}"
    );
    // changes: 150 sent in 3.0 s = 50/s (asked 50/s), 0 refused, 150 committed in Postgres
    let changes = figures(&out, "changes: ");
    assert_eq!(changes[0], 150.0, "{out}");
    assert_eq!(changes[2], 0.0, "none refused: {out}");
    assert_eq!(changes[3], 150.0, "every change committed: {out}");
    let latency = figures(&out, "latency Salesforce commit -> Postgres commit: ");
    let (p50, p99, max) = (latency[0], latency[1], latency[2]);
    assert!(p50 <= p99 && p99 <= max, "{out}");
    // idle hour: 7 API calls (…; CometD connects, held 110 s each, …), 0 of them outside the drift repair; …
    let idle = figures(&out, "idle hour: ");
    assert!(idle[0] >= 1.0, "the drift repairs poll: {out}");
    assert_eq!(
        idle[2], 0.0,
        "only the drift repairs call Salesforce: {out}"
    );
}

/// A fresh database migrated by `forcesync migrate`, and a connection to it.
async fn migrated() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::new();
    let (code, _, err) = output(&["migrate"], &[("DATABASE_URL", db.url.as_str())]);
    assert_eq!(code, 0, "{err}");
    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    (db, pg)
}

/// The status page refreshes every few seconds, so a large table's rows are Postgres' estimate
/// there (marked as one), never a count of every row on each refresh; `status` still counts.
#[tokio::test]
async fn the_page_shows_a_large_tables_estimate_and_status_its_count() {
    let (db, pg) = migrated().await;
    let env = [("DATABASE_URL", db.url.as_str())];
    pg.batch_execute(
        "INSERT INTO salesforce.account (name) SELECT 'Row ' || g FROM generate_series(1, 300) g;
         DELETE FROM salesforce.account WHERE name = 'Row 1';
         ANALYZE salesforce.account",
    )
    .await
    .unwrap();
    let account = generated::salesforce::REGISTRY.mapping("Account").unwrap();
    let count = |estimate_from| {
        let pg = &pg;
        async move {
            sync_runtime::cli::report::counts_all(pg, "salesforce", &[account], estimate_from)
                .await
                .unwrap()[0]
        }
    };
    let counted = count(None).await;
    assert_eq!((counted.rows, counted.rows_estimated), (299, false));
    // Below the bound the table is counted; at or above it, Postgres' estimate is read instead.
    let small = count(Some(1_000)).await;
    assert_eq!((small.rows, small.rows_estimated), (299, false));
    let large = count(Some(200)).await;
    assert!(large.rows_estimated);
    let reltuples: f32 = pg
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'salesforce.account'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(large.rows, reltuples as i64);

    let status = status_json(&env);
    let row = mapping(&status, "Account");
    assert_eq!(row["rows"], 299);
    assert!(row.get("rows_estimated").is_none(), "{row}");
}

/// A mapping's page lists what was sent to Salesforce newest first, page by page, also when the
/// archive's newest entries are all another table's (the page reads the archive's end first, and
/// further back only when that is not enough).
#[tokio::test]
async fn the_sent_list_pages_back_past_other_tables_entries() {
    use sync_runtime::cli::page::{data, model::DetailQuery};
    let (_db, pg) = migrated().await;
    // 120 Accounts sent, then 30,000 Contacts after them.
    pg.batch_execute(
        "INSERT INTO salesforce._trigger_log_archive
             (id, created_at, processed_at, state, action, table_name, record_id, sfid, \"values\")
         SELECT g, now(), now(), 'SUCCESS', 'INSERT',
                CASE WHEN g <= 120 THEN 'account' ELSE 'contact' END, g,
                CASE WHEN g <= 120 THEN '001' ELSE '003' END || lpad(g::text, 15, '0'), '\"name\"=>\"x\"'
         FROM generate_series(1, 30120) g",
    )
    .await
    .unwrap();
    let registry = &generated::salesforce::REGISTRY;
    let account = registry.mapping("Account").unwrap();
    let page = |n| {
        let pg = &pg;
        async move {
            let query = DetailQuery {
                sent_page: Some(n),
                ..DetailQuery::default()
            };
            data::detail(pg, registry, &data::Live::default(), account, query)
                .await
                .unwrap()
                .sent
        }
    };
    let first = page(1).await;
    let ids: Vec<i32> = first.rows.iter().filter_map(|s| s.record_id).collect();
    assert_eq!(ids, (71..=120).rev().collect::<Vec<_>>());
    assert!(first.more);
    let third = page(3).await;
    let ids: Vec<i32> = third.rows.iter().filter_map(|s| s.record_id).collect();
    assert_eq!(ids, (1..=20).rev().collect::<Vec<_>>());
    assert!(!third.more);
}
