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
    /// How often the data file is saved when data changed, ms.
    pub save_interval_ms: u64,
    /// Serve HTTPS with a self-signed certificate.
    pub tls: bool,
    /// Where to write the CA certificate (PEM) when `tls`.
    pub ca_out: Option<PathBuf>,
    pub username: String,
    pub password: String,
    pub security_token: String,
    pub client_id: String,
    pub client_secret: String,
    /// PEM certificate (or RSA public key) verifying JWT bearer assertions.
    pub jwt_cert: Option<PathBuf>,
    /// How long a CometD `/meta/connect` is held when no event is pending, ms.
    pub streaming_connect_timeout_ms: u64,
    /// How long a CometD client may go without reconnecting before it is forgotten, ms.
    pub streaming_client_expiry_ms: u64,
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
            save_interval_ms: 5_000,
            tls: false,
            ca_out: None,
            username: "admin@example.com".into(),
            password: "forcesync".into(),
            security_token: String::new(),
            client_id: "forcesync".into(),
            client_secret: "forcesync".into(),
            jwt_cert: None,
            streaming_connect_timeout_ms: 110_000,
            streaming_client_expiry_ms: 40_000,
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
    // Data from the data file wins over seeding (seeding again would duplicate it).
    let mut loaded = false;
    if let Some(path) = config.data_file.as_ref().filter(|p| p.exists()) {
        let stats =
            crate::persist::load(&org, path).map_err(|e| StartError::Other(e.to_string()))?;
        if !stats.skipped_objects.is_empty() || !stats.skipped_fields.is_empty() {
            tracing::warn!(
                "{}: skipped objects {:?} and fields {:?} unknown to this org",
                path.display(),
                stats.skipped_objects,
                stats.skipped_fields
            );
        }
        loaded = true;
    }
    if let (Some(seed), false) = (&config.seed, loaded) {
        crate::seed::seed_named(&org, seed).map_err(StartError::Seed)?;
    }
    Ok(org)
}

/// The full HTTP surface over `org`.
pub fn router(org: Org) -> Router {
    Router::new()
        .merge(crate::rest::routes())
        .merge(crate::query_api::routes())
        .merge(crate::bulk1::routes())
        .merge(crate::bulk2::routes())
        .merge(crate::control::routes())
        .merge(crate::auth::routes())
        .merge(crate::streaming::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            org.clone(),
            crate::session::limit_info,
        ))
        .layer(axum::middleware::from_fn_with_state(
            org.clone(),
            crate::faults::layer,
        ))
        .layer(axum::middleware::from_fn(crate::cdc::origin::layer))
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
    persister: Option<crate::persist::Persister>,
}

impl RunningEmulator {
    /// Stops serving, waits for the server task and, with a data file, saves it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        if let Some(p) = self.persister.take() {
            if let Err(e) = p.shutdown().await {
                tracing::error!("saving the data file: {e}");
                eprintln!("sf-emulator: saving the data file: {e}");
            }
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
    if let Some(path) = &config.jwt_cert {
        let verifier = crate::auth::jwt::JwtVerifier::from_pem_file(path)
            .map_err(|e| StartError::Other(e.to_string()))?;
        org.auth().set_jwt_verifier(verifier);
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
    let base_url = format!("{}://{addr}", if config.tls { "https" } else { "http" });
    org.set_base_url(&base_url);
    let app = router(org.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = if config.tls {
        let material = crate::tls::TlsMaterial::generate(&[addr.ip().to_string()])
            .map_err(|e| StartError::Other(e.to_string()))?;
        if let Some(path) = &config.ca_out {
            std::fs::write(path, &material.ca_pem).map_err(|e| {
                StartError::Other(format!(
                    "writing the CA certificate to {}: {e}",
                    path.display()
                ))
            })?;
        }
        crate::tls::spawn_https(listener, app, &material, rx)
            .await
            .map_err(|e| StartError::Other(e.to_string()))?
    } else {
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        })
    };
    let persister = config.data_file.clone().map(|path| {
        crate::persist::Persister::spawn(
            org.clone(),
            path,
            std::time::Duration::from_millis(config.save_interval_ms),
        )
    });
    Ok(RunningEmulator {
        base_url,
        addr,
        org,
        shutdown: Some(tx),
        task: Some(task),
        persister,
    })
}
