//! `Config`: the emulator's settings (the `sf-emulator` binary's flags): listen address,
//! describes, seed, session lifetime, API limit, data file, TLS, credentials, streaming timing, the
//! Pub/Sub API listener.
//! The org keeps it (`Org::config`); `server` binds and serves by it.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Where the Pub/Sub API (gRPC) listens; None = not served.
    pub pubsub_listen: Option<SocketAddr>,
    /// How long a Pub/Sub subscription owed events waits for one before an empty keepalive
    /// `FetchResponse`, ms (Salesforce: within 270 s).
    pub pubsub_keepalive_ms: u64,
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
            pubsub_listen: None,
            pubsub_keepalive_ms: 270_000,
        }
    }
}

impl Config {
    /// Defaults listening on `127.0.0.1:0`, the Pub/Sub API too (tests).
    pub fn ephemeral() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            pubsub_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Config::default()
        }
    }
}
