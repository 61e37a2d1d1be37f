//! The `sf-emulator` binary: parses flags, starts the emulator, prints its base URL on the
//! first line of stdout (and, with `--pubsub-listen`, the Pub/Sub API's URL on the second) and
//! serves until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use sf_emulator::server::{start, Config};

/// A local Salesforce org that speaks the real wire protocols.
#[derive(Parser, Debug)]
#[command(name = "sf-emulator", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8484", env = "SF_EMULATOR_LISTEN")]
    listen: SocketAddr,
    /// Directory of describe JSON files (default: the built-in demo org).
    #[arg(long)]
    describe: Option<PathBuf>,
    /// Seed data: `demo`, another name, or a number.
    #[arg(long)]
    seed: Option<String>,
    /// Serve HTTPS with a self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// Write the CA certificate (PEM) here when --tls.
    #[arg(long)]
    ca_out: Option<PathBuf>,
    /// Persist data in this file across restarts (loaded at start, saved periodically and
    /// on ctrl-c / SIGTERM).
    #[arg(long)]
    data_file: Option<PathBuf>,
    /// How often the data file is saved when data changed, in seconds.
    #[arg(long, default_value_t = 5)]
    save_interval_seconds: u64,
    /// Session lifetime in seconds.
    #[arg(long, default_value_t = 7200)]
    session_seconds: u64,
    /// DailyApiRequests limit.
    #[arg(long, default_value_t = 100_000)]
    api_limit: u64,
    /// PEM certificate (or RSA public key) of the connected app, verifying JWT bearer
    /// assertions.
    #[arg(long)]
    jwt_cert: Option<PathBuf>,
    /// How long a CometD /meta/connect is held when no event is pending, in seconds.
    #[arg(long, default_value_t = 110)]
    streaming_timeout_seconds: u64,
    /// How long a CometD client may go without reconnecting before it is forgotten, seconds.
    #[arg(long, default_value_t = 40)]
    streaming_client_expiry_seconds: u64,
    /// Serve the Pub/Sub API (gRPC) on this address too (port 0 picks a free port); its URL
    /// is the second line on stdout.
    #[arg(long, env = "SF_EMULATOR_PUBSUB_LISTEN")]
    pubsub_listen: Option<SocketAddr>,
    /// How long a Pub/Sub subscription owed events waits before an empty keepalive
    /// FetchResponse, in seconds.
    #[arg(long, default_value_t = 270)]
    pubsub_keepalive_seconds: u64,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    let config = Config {
        listen: a.listen,
        describe: a.describe,
        seed: a.seed,
        session_seconds: a.session_seconds,
        api_limit: a.api_limit,
        data_file: a.data_file,
        save_interval_ms: a.save_interval_seconds.max(1) * 1000,
        tls: a.tls,
        ca_out: a.ca_out,
        jwt_cert: a.jwt_cert,
        streaming_connect_timeout_ms: a.streaming_timeout_seconds * 1000,
        streaming_client_expiry_ms: a.streaming_client_expiry_seconds * 1000,
        pubsub_listen: a.pubsub_listen,
        pubsub_keepalive_ms: a.pubsub_keepalive_seconds.max(1) * 1000,
        ..Config::default()
    };
    let running = match start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sf-emulator: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", running.base_url);
    if let Some(url) = &running.pubsub_url {
        println!("{url}");
    }
    shutdown_signal().await;
    // Graceful: finish in-flight requests, then save the data file.
    running.stop().await;
    // Skip freeing the org record by record (seconds for millions of records).
    std::process::exit(0);
}

/// Resolves on ctrl-c (SIGINT) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
