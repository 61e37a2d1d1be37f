//! Shared test helpers: start an emulator in-process on port 0 and talk real HTTP to it.
#![allow(dead_code)]

use reqwest::{Client, Method, Response};
use serde_json::Value;
use sf_emulator::{Config, RunningEmulator};

pub struct Emu {
    pub running: RunningEmulator,
    pub client: Client,
    pub token: String,
    pub base: String,
}

pub async fn start() -> Emu {
    start_with(Config::ephemeral()).await
}

pub async fn start_with(config: Config) -> Emu {
    let running = sf_emulator::start(config).await.expect("emulator starts");
    let token = running.org.create_session().token;
    let base = running.base_url.clone();
    Emu {
        running,
        client: Client::new(),
        token,
        base,
    }
}

impl Emu {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `/services/data/v59.0` + path.
    pub fn data(&self, path: &str) -> String {
        format!("{}/services/data/v59.0{}", self.base, path)
    }

    pub async fn req(&self, method: Method, url: &str, body: Option<Value>) -> Response {
        let mut r = self
            .client
            .request(method, url)
            .header("Authorization", format!("Bearer {}", self.token));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("request sent")
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        let r = self.req(Method::GET, url, None).await;
        status_json(r).await
    }

    pub async fn post(&self, url: &str, body: Value) -> (u16, Value) {
        let r = self.req(Method::POST, url, Some(body)).await;
        status_json(r).await
    }

    pub async fn patch(&self, url: &str, body: Value) -> (u16, Value) {
        let r = self.req(Method::PATCH, url, Some(body)).await;
        status_json(r).await
    }

    pub async fn delete(&self, url: &str) -> (u16, Value) {
        let r = self.req(Method::DELETE, url, None).await;
        status_json(r).await
    }
}

pub async fn status_json(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}
