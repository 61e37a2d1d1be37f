//! The engine test harness: an in-process Salesforce org (sf-emulator, demo data) and a fresh
//! Postgres database with the generated migrations applied, plus a plain HTTP client acting as a
//! Salesforce user (its writes are not forcesync's).

use std::time::{Duration, Instant};

use diesel_migrations::MigrationHarness;
use serde_json::{json, Value};
use sync_runtime::engine::{EngineConfig, MappingCtx};
use sync_runtime::salesforce::{self, Credentials, Secret};

use crate::pg::TestDb;

/// An org, a database, and a Salesforce user's session.
pub struct Harness {
    pub emulator: sf_emulator::server::RunningEmulator,
    pub db: TestDb,
    http: reqwest::Client,
    token: String,
}

impl Harness {
    /// Starts the emulator (demo data) and a database with the app's migrations.
    pub async fn start() -> Harness {
        let emulator = sf_emulator::server::start(sf_emulator::server::Config {
            seed: Some("demo".to_owned()),
            ..sf_emulator::server::Config::ephemeral()
        })
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
        let http = reqwest::Client::new();
        let token: Value = http
            .post(format!("{}/services/oauth2/token", emulator.base_url))
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
        Harness {
            emulator,
            db,
            http,
            token: token["access_token"].as_str().unwrap().to_owned(),
        }
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
        config
    }

    /// Engine settings for this database, with short intervals for tests.
    pub fn engine_config(&self) -> EngineConfig {
        let mut config = EngineConfig::new(self.db.url.clone());
        config.lease_retry = Duration::from_millis(200);
        config.lookback = Duration::from_secs(5);
        config
    }

    /// An engine over the generated registry.
    pub fn engine(&self, config: EngineConfig) -> sync_runtime::engine::Engine {
        sync_runtime::engine::Engine::new(
            &generated::salesforce::REGISTRY,
            config,
            self.salesforce(),
        )
        .expect("engine")
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
        let body: Value = self
            .http
            .get(self.data("query"))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["records"].as_array().cloned().unwrap_or_default()
    }

    /// Creates a record as a Salesforce user; answers its Id.
    pub async fn create(&self, object: &str, fields: Value) -> String {
        let body: Value = self
            .http
            .post(self.data(&format!("sobjects/{object}")))
            .bearer_auth(&self.token)
            .json(&fields)
            .send()
            .await
            .unwrap()
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
        let response = self
            .http
            .patch(self.data(&format!("sobjects/{object}/{id}")))
            .bearer_auth(&self.token)
            .json(&fields)
            .send()
            .await
            .unwrap();
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
        let response = self
            .http
            .patch(self.data("composite/sobjects"))
            .bearer_auth(&self.token)
            .json(&json!({"allOrNone": true, "records": records}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Deletes a record as a Salesforce user.
    pub async fn delete(&self, object: &str, id: &str) {
        let response = self
            .http
            .delete(self.data(&format!("sobjects/{object}/{id}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Undeletes a record through the emulator's REST undelete (`PATCH …/composite/sobjects` is
    /// not an undelete; Salesforce offers it through SOAP and Apex).
    pub async fn undelete(&self, id: &str) {
        let envelope = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader><urn:sessionId>{}</urn:sessionId></urn:SessionHeader></soapenv:Header><soapenv:Body><urn:undelete><urn:ids>{id}</urn:ids></urn:undelete></soapenv:Body></soapenv:Envelope>"#,
            self.token
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
