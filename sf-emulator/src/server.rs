//! `Config`, building the org and the router (each module contributes `routes()`), binding a
//! listener and running the server in-process (`start` → `RunningEmulator`) or from the binary.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::org::Org;
use crate::schema::{OrgSchema, SchemaError};

/// Emulator configuration (CLI flags of the `sf-emulator` binary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on (port 0 = any free port).
    pub listen: SocketAddr,
    /// Directory of describe JSON files; None = the built-in demo org.
    pub describe: Option<PathBuf>,
    /// Seed data set: `demo`, another name, or a number (all deterministic).
    pub seed: Option<String>,
    /// Session lifetime (inactivity timeout), seconds.
    pub session_seconds: u64,
    /// `DailyApiRequests` max.
    pub api_limit: u64,
    /// Persist data across restarts in this file.
    pub data_file: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate.
    pub tls: bool,
    /// Where to write the CA certificate (PEM) when `tls`.
    pub ca_out: Option<PathBuf>,
    pub username: String,
    pub password: String,
    pub security_token: String,
    pub client_id: String,
    pub client_secret: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8484)),
            describe: None,
            seed: None,
            session_seconds: 7200,
            api_limit: 100_000,
            data_file: None,
            tls: false,
            ca_out: None,
            username: "admin@example.com".into(),
            password: "forcesync".into(),
            security_token: String::new(),
            client_id: "forcesync".into(),
            client_secret: "forcesync".into(),
        }
    }
}

impl Config {
    /// Defaults listening on `127.0.0.1:0` (tests).
    pub fn ephemeral() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("loading describes: {0}")]
    Schema(#[from] SchemaError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("seed: {0}")]
    Seed(String),
    #[error("{0}")]
    Other(String),
}

/// The org described by `config` (schema loaded, data seeded), not yet serving.
pub fn build_org(config: &Config) -> Result<Org, StartError> {
    let schema = match &config.describe {
        Some(dir) => OrgSchema::load_dir(dir)?,
        None => OrgSchema::demo(),
    };
    let org = Org::new(schema, config.clone());
    if let Some(seed) = &config.seed {
        crate::seed::seed_named(&org, seed).map_err(StartError::Seed)?;
    }
    Ok(org)
}

/// The full HTTP surface over `org`.
pub fn router(org: Org) -> Router {
    Router::new()
        .merge(crate::rest::routes())
        .merge(crate::control::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            org.clone(),
            crate::session::limit_info,
        ))
        .with_state(org)
}

/// Unknown paths: 404 NOT_FOUND as a Salesforce error array.
async fn not_found() -> crate::error::ApiError {
    crate::error::ApiError::not_found()
}

/// Known path, wrong method: 405 METHOD_NOT_ALLOWED as a Salesforce error array.
async fn method_not_allowed(method: axum::http::Method) -> crate::error::ApiError {
    crate::error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed."),
    )
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningEmulator {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub addr: SocketAddr,
    pub org: Org,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningEmulator {
    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    /// Waits until the server ends (it runs until `stop` or process exit).
    pub async fn wait(mut self) {
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Builds the org, binds `config.listen` and serves in a background task.
pub async fn start(config: Config) -> Result<RunningEmulator, StartError> {
    let org = build_org(&config)?;
    serve(org).await
}

/// Serves an existing org on its config's listen address.
pub async fn serve(org: Org) -> Result<RunningEmulator, StartError> {
    let config = org.config().clone();
    if config.tls {
        return Err(StartError::Other(
            "--tls is not supported by this build yet; run without --tls".into(),
        ));
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Bind {
            addr: config.listen,
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind {
        addr: config.listen,
        source: e,
    })?;
    let base_url = format!("http://{addr}");
    org.set_base_url(&base_url);
    let app = router(org.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningEmulator {
        base_url,
        addr,
        org,
        shutdown: Some(tx),
        task: Some(task),
    })
}
