//! The engine test harness: an in-process Salesforce org (sf-emulator, demo data) and a fresh
//! Postgres database with the generated migrations applied, plus a plain HTTP client acting as a
//! Salesforce user (its writes are not forcesync's).

use std::time::{Duration, Instant};

use diesel_migrations::MigrationHarness;
use serde_json::{json, Value};
use sync_runtime::adapter::MappingDescriptor;
use sync_runtime::engine::hub::Transport;
use sync_runtime::engine::writer::{Target, Writer, WriterConfig};
use sync_runtime::engine::{EngineConfig, MappingCtx};
use sync_runtime::salesforce::{self, Client, Credentials, RetryPolicy, Secret};

use crate::pg::TestDb;

/// An org, a database, and a Salesforce user's session.
pub struct Harness {
    pub emulator: sf_emulator::server::RunningEmulator,
    pub db: TestDb,
    http: reqwest::Client,
    token: std::sync::Mutex<String>,
    /// The org's data across [`Harness::with_org_restarted`].
    org_data: Option<tempfile::TempDir>,
    /// The engine's Salesforce client for writer tests, made on first use ([`Harness::client`]).
    client: std::sync::OnceLock<Client>,
}

/// The engine's schema in the test database.
pub const SCHEMA: &str = "salesforce";

impl Harness {
    /// Starts the emulator on the app's own describe snapshots (`mappings/describe`, so the org
    /// and the mappings cannot drift apart), with demo data, and a database with the app's
    /// migrations.
    pub async fn start() -> Harness {
        Harness::start_on(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../mappings/describe"
        )))
        .await
    }

    /// Like [`Harness::start`], on a copy of `mappings/describe` in which `edit` changed the
    /// describe of `object` (a field grown, a field gone: Salesforce admins at work).
    pub async fn start_edited(
        object: &str,
        edit: impl FnOnce(&mut Value),
    ) -> (Harness, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let source =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../mappings/describe"));
        for entry in std::fs::read_dir(source).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let file = dir.path().join(format!("{object}.json"));
        let mut describe: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        edit(&mut describe);
        std::fs::write(&file, describe.to_string()).unwrap();
        (Harness::start_on(dir.path()).await, dir)
    }

    /// Like [`Harness::start`], with the org described by the describe files in `describe`.
    pub async fn start_on(describe: &std::path::Path) -> Harness {
        Harness::start_configured(describe, |_| {}).await
    }

    /// An org without data (the emulator's built-in objects, no seed) and a database with the
    /// app's migrations and the engine's own tables (the writer's tests: every record in the org
    /// is one the test made).
    pub async fn start_empty() -> Harness {
        let h = Harness::start_with(|config| {
            config.seed = None;
            config.describe = None;
        })
        .await;
        sync_runtime::engine::system::migrate(&mut h.pg().await, SCHEMA)
            .await
            .expect("system migrations");
        h
    }

    /// Like [`Harness::start`], with the emulator's settings changed by `edit` (a short Pub/Sub
    /// keepalive interval, say).
    pub async fn start_with(edit: impl FnOnce(&mut sf_emulator::server::Config)) -> Harness {
        Harness::start_configured(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../mappings/describe")),
            edit,
        )
        .await
    }

    async fn start_configured(
        describe: &std::path::Path,
        edit: impl FnOnce(&mut sf_emulator::server::Config),
    ) -> Harness {
        crate::logs();
        let mut config = sf_emulator::server::Config {
            seed: Some("demo".to_owned()),
            describe: Some(describe.to_owned()),
            ..sf_emulator::server::Config::ephemeral()
        };
        edit(&mut config);
        let emulator = sf_emulator::server::start(config)
            .await
            .expect("the emulator starts");
        let db = TestDb::new();
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = diesel::Connection::establish(&url).expect("connect");
            let _: &mut diesel::PgConnection = &mut conn;
            conn.run_pending_migrations(generated::MIGRATIONS)
                .expect("migrations apply");
        })
        .await
        .unwrap();
        sync_runtime::salesforce::http::install_crypto_provider();
        let http = reqwest::Client::new();
        let token = login(&http, &emulator.base_url).await;
        Harness {
            emulator,
            db,
            http,
            token: std::sync::Mutex::new(token),
            org_data: None,
            client: std::sync::OnceLock::new(),
        }
    }

    /// Restarts the org on the same address with the describe files in `describe` (an admin
    /// changed the schema, e.g. restored a field): the records stay; sessions, streaming clients
    /// and change events are forgotten, as clients see across a Salesforce maintenance restart.
    pub async fn with_org_restarted(self, describe: &std::path::Path) -> Harness {
        let Harness {
            emulator,
            db,
            http,
            token,
            org_data,
            client,
        } = self;
        let org_data = org_data.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let data_file = org_data.path().join("org.data");
        sf_emulator::org::persist::save(&emulator.org, &data_file).expect("the org's data saves");
        let config = sf_emulator::server::Config {
            listen: emulator.addr,
            describe: Some(describe.to_owned()),
            data_file: Some(data_file),
            ..sf_emulator::server::Config::ephemeral()
        };
        // Held long-polls keep the old server's task alive; its listener closes at once.
        tokio::spawn(emulator.stop());
        let started = Instant::now();
        let emulator = loop {
            let org = sf_emulator::server::build_org(&config).expect("the org builds");
            match sf_emulator::server::serve(org).await {
                Ok(emulator) => break emulator,
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the org restarts: {e}"),
            }
        };
        Harness {
            emulator,
            db,
            http,
            token,
            org_data: Some(org_data),
            client,
        }
    }

    fn token(&self) -> String {
        self.token.lock().unwrap().clone()
    }

    /// Sends a request as the Salesforce user, logging in again when the session expired.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> reqwest::Response {
        // A user's script retries what Salesforce says is temporary (503 storms in fault tests).
        for _ in 0..50 {
            let response = build(&self.http, &self.token()).send().await.unwrap();
            match response.status() {
                reqwest::StatusCode::UNAUTHORIZED => {
                    let fresh = login(&self.http, &self.emulator.base_url).await;
                    *self.token.lock().unwrap() = fresh;
                }
                reqwest::StatusCode::SERVICE_UNAVAILABLE
                | reqwest::StatusCode::INTERNAL_SERVER_ERROR => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                _ => return response,
            }
        }
        panic!("Salesforce kept failing the request")
    }

    /// The engine's Salesforce settings for this org.
    pub fn salesforce(&self) -> salesforce::Config {
        let mut config = salesforce::Config::new(
            self.emulator.base_url.clone(),
            Credentials::Password {
                client_id: "forcesync".into(),
                client_secret: Secret::new("forcesync"),
                username: "admin@example.com".into(),
                password: Secret::new("forcesync"),
                security_token: Secret::new(""),
            },
        );
        config.api_version = generated::salesforce::REGISTRY.api_version.to_owned();
        if let Some(url) = &self.emulator.pubsub_url {
            config.pubsub_url = url.clone();
        }
        config
    }

    /// Engine settings for this database, with short intervals for tests.
    pub fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::new(self.db.url.clone());
        // Tests name their transport: CometD unless a test asks for the Pub/Sub API (the
        // read-path tests run over both; see `engine_read.rs`).
        config.streaming_transport = Some(sync_runtime::engine::hub::Transport::Cometd);
        config.lease_retry = Duration::from_millis(200);
        config.lookback = Duration::from_secs(5);
        config
    }

    /// Engine settings syncing only `objects`, streaming over `transport`.
    pub fn engine_config_over(&self, objects: &[&str], transport: Transport) -> EngineConfig {
        let mut config = self.engine_config();
        config.streaming_transport = Some(transport);
        config.only = objects.iter().map(|o| o.to_string()).collect();
        config
    }

    /// An engine over the generated registry.
    pub fn engine(&self, config: EngineConfig) -> sync_runtime::engine::Engine {
        self.engine_with(config, self.salesforce())
    }

    /// An engine over the generated registry with Salesforce settings of the test's own (a
    /// starved budget, say).
    pub fn engine_with(
        &self,
        config: EngineConfig,
        salesforce: salesforce::Config,
    ) -> sync_runtime::engine::Engine {
        sync_runtime::engine::Engine::new(&generated::salesforce::REGISTRY, config, salesforce)
            .expect("engine")
    }

    /// The engine (over `config`) running in the background until [`Running::stop`].
    pub fn run(&self, config: EngineConfig) -> Running {
        Running::start(self.engine(config))
    }

    /// Like [`Harness::run`], with Salesforce settings of the test's own.
    pub fn run_with(&self, config: EngineConfig, salesforce: salesforce::Config) -> Running {
        Running::start(self.engine_with(config, salesforce))
    }

    /// The engine's Salesforce client as the writer's tests use it: no org reserve, quick
    /// retries (3, 5–20 ms). One client, shared by every writer of the test.
    pub fn client(&self) -> Client {
        self.client
            .get_or_init(|| {
                let mut config = self.salesforce();
                config.org_reserve = 0;
                config.retry = RetryPolicy {
                    max_retries: 3,
                    min_delay: Duration::from_millis(5),
                    max_delay: Duration::from_millis(20),
                    jitter: true,
                    limit_delay: Duration::from_millis(50),
                    limit_retries: 1,
                };
                Client::new(config).expect("client")
            })
            .clone()
    }

    /// A writer of `mappings` over this database, sending through [`Harness::client`].
    pub async fn writer(
        &self,
        mappings: &[&'static MappingDescriptor],
        config: WriterConfig,
    ) -> Writer {
        let targets = mappings
            .iter()
            .map(|m| Target {
                mapping: m,
                client: self.client(),
            })
            .collect();
        Writer::new(self.pg().await, SCHEMA, targets, config)
            .with_claim_connection(self.pg().await)
            .with_settle_connection(self.pg().await)
    }

    /// A writer of `mappings` running as `forcesync run` runs it (notifications, reconnects)
    /// until [`Running::stop`].
    pub async fn run_writer(
        &self,
        mappings: &[&'static MappingDescriptor],
        config: WriterConfig,
    ) -> Running {
        let writer = self.writer(mappings, config).await;
        let url = self.db.url.clone();
        let mut running = Running::new();
        running.spawn("the writer", move |shutdown| async move {
            writer.run(&url, shutdown).await
        });
        running
    }

    /// Salesforce records of `object` matching a SOQL condition, read through
    /// [`Harness::client`].
    pub async fn records(&self, object: &str, fields: &str, condition: &str) -> Vec<Value> {
        self.client()
            .query(&format!(
                "SELECT Id, {fields} FROM {object} WHERE {condition}"
            ))
            .await
            .expect("query")
            .records
    }

    /// One mapping's context.
    pub fn ctx(&self, object: &str, config: EngineConfig) -> MappingCtx {
        let engine = self.engine(config);
        let mapping = generated::salesforce::REGISTRY
            .mapping(object)
            .expect("mapped");
        engine.context(mapping).expect("context")
    }

    /// A Postgres connection to the test database.
    pub async fn pg(&self) -> tokio_postgres::Client {
        sync_runtime::engine::connect(&self.db.url)
            .await
            .expect("connect")
    }

    fn data(&self, rest: &str) -> String {
        format!(
            "{}/services/data/v{}/{rest}",
            self.emulator.base_url,
            generated::salesforce::REGISTRY.api_version
        )
    }

    /// A SOQL query as a Salesforce user (first page).
    pub async fn query(&self, soql: &str) -> Vec<Value> {
        let url = self.data("query");
        let body: Value = self
            .send(|http, token| http.get(&url).query(&[("q", soql)]).bearer_auth(token))
            .await
            .json()
            .await
            .unwrap();
        body["records"].as_array().cloned().unwrap_or_default()
    }

    /// Creates a record as a Salesforce user; answers its Id.
    pub async fn create(&self, object: &str, fields: Value) -> String {
        let url = self.data(&format!("sobjects/{object}"));
        let body: Value = self
            .send(|http, token| http.post(&url).bearer_auth(token).json(&fields))
            .await
            .json()
            .await
            .unwrap();
        body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("create failed: {body}"))
            .to_owned()
    }

    /// Updates a record as a Salesforce user.
    pub async fn update(&self, object: &str, id: &str, fields: Value) {
        let url = self.data(&format!("sobjects/{object}/{id}"));
        let response = self
            .send(|http, token| http.patch(&url).bearer_auth(token).json(&fields))
            .await;
        assert!(
            response.status().is_success(),
            "update failed: {}",
            response.text().await.unwrap()
        );
    }

    /// Updates several records in one sObject Collections call (one Salesforce transaction).
    pub async fn update_many(&self, object: &str, ids: &[String], fields: Value) {
        let records: Vec<Value> = ids
            .iter()
            .map(|id| {
                let mut record = fields.clone();
                record["attributes"] = json!({"type": object});
                record["Id"] = json!(id);
                record
            })
            .collect();
        let url = self.data("composite/sobjects");
        let body = json!({"allOrNone": true, "records": records});
        let response = self
            .send(|http, token| http.patch(&url).bearer_auth(token).json(&body))
            .await;
        assert!(response.status().is_success());
    }

    /// Creates up to 200 records in one sObject Collections call; answers their Ids.
    pub async fn create_many(&self, object: &str, records: &[Value]) -> Vec<String> {
        let records: Vec<Value> = records
            .iter()
            .map(|fields| {
                let mut record = fields.clone();
                record["attributes"] = json!({"type": object});
                record
            })
            .collect();
        let url = self.data("composite/sobjects");
        let body = json!({"allOrNone": true, "records": records});
        let results: Value = self
            .send(|http, token| http.post(&url).bearer_auth(token).json(&body))
            .await
            .json()
            .await
            .unwrap();
        results
            .as_array()
            .unwrap_or_else(|| panic!("create failed: {results}"))
            .iter()
            .map(|r| {
                r["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("create failed: {r}"))
                    .to_owned()
            })
            .collect()
    }

    /// A fresh session of the Salesforce user (another integration's, e.g. to hold a streaming
    /// client of its own).
    pub async fn user_session(&self) -> String {
        login(&self.http, &self.emulator.base_url).await
    }

    /// Deletes a record as a Salesforce user.
    pub async fn delete(&self, object: &str, id: &str) {
        let url = self.data(&format!("sobjects/{object}/{id}"));
        let response = self
            .send(|http, token| http.delete(&url).bearer_auth(token))
            .await;
        assert!(response.status().is_success());
    }

    /// Undeletes a record through the emulator's REST undelete (`PATCH …/composite/sobjects` is
    /// not an undelete; Salesforce offers it through SOAP and Apex).
    pub async fn undelete(&self, id: &str) {
        let envelope = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>{}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:undelete><urn:ids>{id}</urn:ids></urn:undelete></soapenv:Body></soapenv:Envelope>"#,
            self.token()
        );
        let response = self
            .http
            .post(format!(
                "{}/services/Soap/u/{}",
                self.emulator.base_url,
                generated::salesforce::REGISTRY.api_version
            ))
            .header("Content-Type", "text/xml; charset=UTF-8")
            .header("SOAPAction", "undelete")
            .body(envelope)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success() && text.contains("<success>true</success>"),
            "undelete failed: {status} {text}"
        );
    }
}

async fn login(http: &reqwest::Client, base_url: &str) -> String {
    let token: Value = http
        .post(format!("{base_url}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "forcesync"),
            ("client_secret", "forcesync"),
            ("username", "admin@example.com"),
            ("password", "forcesync"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    token["access_token"].as_str().expect("a token").to_owned()
}

/// Waits until `check` holds (polling every 20 ms), up to `limit`; panics with `what` otherwise.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out after {limit:?} waiting for: {what}");
}

impl Harness {
    /// Sets emulator faults (`POST /__emulator/faults`).
    pub async fn faults(&self, body: Value) {
        let response = self
            .http
            .post(format!("{}/__emulator/faults", self.emulator.base_url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "faults: {}",
            response.text().await.unwrap()
        );
    }

    /// Clears every emulator fault.
    pub async fn clear_faults(&self) {
        self.http
            .delete(format!("{}/__emulator/faults", self.emulator.base_url))
            .send()
            .await
            .unwrap();
    }

    /// Calls the emulator's control plane; answers its JSON (null when there is none).
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.control_request(method, path, Some(body))
            .await
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    /// Calls the emulator's control plane (with a JSON body when given) and fails the test
    /// unless it succeeds.
    pub async fn control_ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) {
        let response = self.control_request(method, path, body).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    async fn control_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(
            method,
            format!("{}/__emulator/{path}", self.emulator.base_url),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }
}

/// A writer's settings for tests: quick backoff (10–100 ms) and reconciliation (after 200 ms,
/// 5-s margin).
pub fn writer_config() -> WriterConfig {
    let mut config = WriterConfig::default();
    config.backoff.base = Duration::from_millis(10);
    config.backoff.max = Duration::from_millis(100);
    config.reconcile_margin = Duration::from_secs(5);
    config.reconcile_after = Duration::from_millis(200);
    config
}

/// Engine tasks (the engine, a writer, …) running in the background until [`Running::stop`],
/// which fails the test when any of them ended with an error (an engine that ends badly is a
/// failure whatever the test checked before).
pub struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<(&'static str, tokio::task::JoinHandle<Result<(), String>>)>,
}

impl Default for Running {
    fn default() -> Self {
        Running::new()
    }
}

impl Running {
    /// Nothing running yet: add tasks with [`Running::spawn`].
    pub fn new() -> Running {
        Running {
            stop: tokio::sync::watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Runs `engine` until [`Running::stop`].
    pub fn start(engine: sync_runtime::engine::Engine) -> Running {
        let mut running = Running::new();
        running.spawn("the engine", move |shutdown| async move {
            engine.run(shutdown).await
        });
        running
    }

    /// Runs `task` (named `what` in a failure) until [`Running::stop`]; it is handed the
    /// shutdown signal.
    pub fn spawn<F, Fut, E>(&mut self, what: &'static str, task: F)
    where
        F: FnOnce(tokio::sync::watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let run = task(self.stop.subscribe());
        let handle = tokio::spawn(async move { run.await.map_err(|e| e.to_string()) });
        self.tasks.push((what, handle));
    }

    /// Asks every task to stop, waits for each, and fails the test if one ended with an error.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (what, task) in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("{what} ended with an error: {e}"),
                Err(e) => panic!("{what}'s task failed: {e}"),
            }
        }
    }

    /// Ends every task as a crash would (`kill -9`): nothing is stopped cleanly or checked.
    pub fn kill(self) {
        for (_, task) in self.tasks {
            task.abort();
        }
    }
}
