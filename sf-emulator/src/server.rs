//! `Config`, building the org and the router (each module contributes `routes()`), binding the
//! listeners (the HTTP API, and the Pub/Sub API's gRPC on its own) and running the server
//! in-process (`start` → `RunningEmulator`) or from the binary.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::data::schema::{OrgSchema, SchemaError};
use crate::org::Org;

pub use crate::org::config::Config;
pub use crate::routes::router;

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
            crate::org::persist::load(&org, path).map_err(|e| StartError::Other(e.to_string()))?;
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
        crate::org::seed::seed_named(&org, seed).map_err(StartError::Seed)?;
    }
    Ok(org)
}

/// A server running in this process.
#[derive(Debug)]
pub struct RunningEmulator {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub addr: SocketAddr,
    /// The Pub/Sub API (gRPC) endpoint, `http://127.0.0.1:<port>` (`https` with TLS), when
    /// `Config::pubsub_listen` is set.
    pub pubsub_url: Option<String>,
    pub pubsub_addr: Option<SocketAddr>,
    pub org: Org,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    pubsub_shutdown: Option<oneshot::Sender<()>>,
    pubsub_task: Option<JoinHandle<()>>,
    persister: Option<crate::org::persist::Persister>,
}

impl RunningEmulator {
    /// Stops serving, waits for the server task and, with a data file, saves it.
    pub async fn stop(mut self) {
        for tx in [self.shutdown.take(), self.pubsub_shutdown.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(());
        }
        for t in [self.task.take(), self.pubsub_task.take()]
            .into_iter()
            .flatten()
        {
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
        for tx in [self.shutdown.take(), self.pubsub_shutdown.take()]
            .into_iter()
            .flatten()
        {
            let _ = tx.send(());
        }
    }
}

/// Serves `app` on `listener` (plain HTTP/1.1 and HTTP/2, or HTTPS with `tls`) until
/// `shutdown` fires.
async fn spawn_server(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<&crate::tls::TlsMaterial>,
    shutdown: oneshot::Receiver<()>,
) -> Result<JoinHandle<()>, StartError> {
    Ok(match tls {
        Some(material) => crate::tls::spawn_https(listener, app, material, shutdown)
            .await
            .map_err(|e| StartError::Other(e.to_string()))?,
        None => tokio::spawn(async move {
            // Small writes go out at once (as axum-server's HTTPS acceptor also does): without
            // it, HTTP/2 streams (the Pub/Sub API) wait on Nagle's algorithm and delayed ACKs.
            use axum::serve::ListenerExt;
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown.await;
                })
                .await;
        }),
    })
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind { addr, source: e })?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError::Bind { addr, source: e })?;
    Ok((listener, local))
}

/// Builds the org, binds `config.listen` and serves in a background task.
pub async fn start(config: Config) -> Result<RunningEmulator, StartError> {
    let org = build_org(&config)?;
    serve(org).await
}

/// Serves an existing org on its config's listen address.
pub async fn serve(org: Org) -> Result<RunningEmulator, StartError> {
    // ring is the TLS crypto provider of the process (HTTPS here, and any client a test or an
    // embedding program builds next to the org); the first install wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = org.config().clone();
    if let Some(path) = &config.jwt_cert {
        let verifier = crate::org::credentials::jwt::JwtVerifier::from_pem_file(path)
            .map_err(|e| StartError::Other(e.to_string()))?;
        org.auth().set_jwt_verifier(verifier);
    }
    let (listener, addr) = bind(config.listen).await?;
    let scheme = if config.tls { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    org.set_base_url(&base_url);
    let pubsub = match config.pubsub_listen {
        Some(at) => Some(bind(at).await?),
        None => None,
    };
    let material = if config.tls {
        let mut hosts = vec![addr.ip().to_string()];
        if let Some((_, at)) = &pubsub {
            hosts.push(at.ip().to_string());
        }
        let material = crate::tls::TlsMaterial::generate(&hosts)
            .map_err(|e| StartError::Other(e.to_string()))?;
        if let Some(path) = &config.ca_out {
            std::fs::write(path, &material.ca_pem).map_err(|e| {
                StartError::Other(format!(
                    "writing the CA certificate to {}: {e}",
                    path.display()
                ))
            })?;
        }
        Some(material)
    } else {
        None
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = spawn_server(listener, router(org.clone()), material.as_ref(), rx).await?;
    let (mut pubsub_url, mut pubsub_addr, mut pubsub_shutdown, mut pubsub_task) =
        (None, None, None, None);
    if let Some((listener, at)) = pubsub {
        let (tx, rx) = oneshot::channel::<()>();
        let app = crate::routes::pubsub::grpc_router(org.clone());
        pubsub_task = Some(spawn_server(listener, app, material.as_ref(), rx).await?);
        pubsub_shutdown = Some(tx);
        pubsub_url = Some(format!("{scheme}://{at}"));
        pubsub_addr = Some(at);
    }
    let persister = config.data_file.clone().map(|path| {
        crate::org::persist::Persister::spawn(
            org.clone(),
            path,
            std::time::Duration::from_millis(config.save_interval_ms),
        )
    });
    Ok(RunningEmulator {
        base_url,
        addr,
        pubsub_url,
        pubsub_addr,
        org,
        shutdown: Some(tx),
        task: Some(task),
        pubsub_shutdown,
        pubsub_task,
        persister,
    })
}
