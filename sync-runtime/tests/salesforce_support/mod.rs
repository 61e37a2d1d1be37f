//! Shared by the `salesforce_*` tests: an in-process sf-emulator org (seeded with `demo`), a
//! client logged in with the password grant and fast retries, and the emulator's control plane.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::Value;
use sf_emulator::server::{start, Config as EmulatorConfig, RunningEmulator};
use sync_runtime::salesforce::{Client, Config, Credentials, RetryPolicy};

pub const USERNAME: &str = "admin@example.com";
pub const PASSWORD: &str = "forcesync";

pub struct Org {
    pub emulator: RunningEmulator,
    pub base: String,
    http: reqwest::Client,
}

/// The emulator on a free port, seeded with the `demo` data set.
pub async fn org() -> Org {
    org_with(EmulatorConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        seed: Some("demo".to_owned()),
        ..Default::default()
    })
    .await
}

pub async fn org_with(config: EmulatorConfig) -> Org {
    let emulator = start(config).await.expect("the emulator starts");
    Org {
        base: emulator.base_url.clone(),
        emulator,
        http: reqwest::Client::new(),
    }
}

/// Retries fast enough for tests (no jitter, so counts are exact).
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 30,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        jitter: false,
        limit_delay: Duration::from_millis(50),
        limit_retries: 1,
    }
}

pub fn password_credentials() -> Credentials {
    Credentials::Password {
        client_id: "forcesync".into(),
        client_secret: "forcesync".into(),
        username: USERNAME.into(),
        password: PASSWORD.into(),
        security_token: "".into(),
    }
}

impl Org {
    /// A client config for this org: password grant, fast retries, no reserve.
    pub fn config(&self) -> Config {
        let mut config = Config::new(self.base.clone(), password_credentials());
        config.retry = fast_retries();
        config.org_reserve = 0;
        config
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).expect("client")
    }

    /// Calls the control plane; panics unless it answers 2xx.
    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}/__emulator/{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("control plane");
        let status = response.status();
        let text = response.text().await.expect("control body");
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.control(reqwest::Method::POST, path, Some(body)).await
    }

    /// Seeds `count` more records of `object`.
    pub async fn seed(&self, object: &str, count: u64) {
        self.post(
            "seed",
            serde_json::json!({"object": object, "count": count, "seed": 7}),
        )
        .await;
    }
}
