//! `forcesync run` (the daemon: every mapping's read loop, the writer, the HTTP listener,
//! graceful shutdown on SIGTERM/SIGINT), `reload` and `recover`, the commands that talk to
//! Salesforce.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use tokio::sync::watch;

use crate::engine::state::StateStore;
use crate::engine::writer::{Target, Writer, WriterConfig};
use crate::engine::{driver, poll, Engine, EngineConfig, MappingCtx};
use crate::salesforce::{CallKind, ErrorClass};

use super::progress::Progress;
use super::{page, report, server, CliError, Context};

/// How long a shutdown waits for in-flight work before giving up.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(60);

/// Builds the engine and checks, before anything runs, that the database is migrated and that
/// Salesforce accepts the login (a refused login is a wrong setting: exit code 2).
pub async fn engine(ctx: &Context, only: Vec<String>) -> Result<Engine, CliError> {
    let database_url = ctx.database_url()?;
    let salesforce = ctx.salesforce()?;
    for name in &only {
        ctx.mapping(name)?;
    }
    let mut config = EngineConfig::new(database_url);
    config.only = only;
    if let Some(interval) = ctx.sources()?.degraded_poll()? {
        config.degraded_poll = interval;
    }
    // `None` leaves forcesync.toml's `streaming_transport` (the registry's) in force.
    config.streaming_transport = ctx.sources()?.streaming_transport()?;
    let engine = Engine::new(ctx.app.registry, config, salesforce)?;
    let db = ctx.connect().await?;
    if !report::is_migrated(&db, ctx.app.registry.schema).await? {
        return Err(report::ReportError::NotMigrated(ctx.app.registry.schema.to_owned()).into());
    }
    check_login(&engine.client).await?;
    Ok(engine)
}

/// Logs in once, so that a refused login stops the command at start (a wrong setting: exit
/// code 2; Salesforce unreachable: exit code 1).
pub async fn check_login(client: &crate::salesforce::Client) -> Result<(), CliError> {
    if let Err(e) = client.login().await {
        let message = format!(
            "Salesforce refused the login at {}: {e}. Check SF_LOGIN_URL, SF_CLIENT_ID and the credentials \
             (SF_CLIENT_SECRET, SF_USERNAME/SF_PASSWORD, SF_JWT_KEY_FILE or SF_REFRESH_TOKEN)",
            client.config().login_url
        );
        return Err(match e.class {
            ErrorClass::Definite => CliError::settings(message),
            _ => CliError::failure(message),
        });
    }
    Ok(())
}

/// Turns true on SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("shutting down: finishing in-flight writes, saving positions");
        let _ = signal_tx.send(true);
    });
    (tx, rx)
}

/// The calls of a mapping's client, as stored in its state row (`{"Query": 12, …}`).
pub fn calls_json(counts: &crate::salesforce::CallCounts) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for kind in CallKind::ALL {
        let n = counts.get(kind);
        if n > 0 {
            map.insert(format!("{kind:?}"), n.into());
        }
    }
    serde_json::Value::Object(map)
}

/// Stores each mapping's API calls of today every few seconds (what `status` and `/metrics` show).
async fn record_usage(
    contexts: Vec<MappingCtx>,
    database_url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if let Ok(db) = crate::engine::connect(&database_url).await {
            for ctx in &contexts {
                if let Some(usage) = ctx.client.mapping_usage() {
                    let _ = ctx
                        .states
                        .set_api_calls(
                            &db,
                            ctx.mapping.object,
                            chrono::Utc::now().date_naive(),
                            &calls_json(&usage.counts),
                        )
                        .await;
                }
            }
        }
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The engine's loops, running: every mapping's read loop, the writer (of the mappings this
/// instance holds), the usage recorder.
pub struct Loops {
    pub read: tokio::task::JoinHandle<Result<(), crate::engine::EngineError>>,
    write: tokio::task::JoinHandle<Result<(), crate::engine::writer::WriteError>>,
    usage: tokio::task::JoinHandle<()>,
}

impl Loops {
    /// Starts them; they stop when `shutdown` turns true.
    pub async fn start(
        engine: Arc<Engine>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Loops, CliError> {
        let database_url = engine.config.database_url.clone();
        let mut contexts = Vec::new();
        let mut targets = Vec::new();
        for mapping in engine.mappings() {
            let mctx = engine.context(mapping)?;
            targets.push(Target {
                mapping,
                client: mctx.client.clone(),
            });
            contexts.push(mctx);
        }
        let writer_db = crate::engine::connect(&database_url).await?;
        let writer = Writer::new(
            writer_db,
            engine.registry.schema,
            targets,
            WriterConfig::default(),
        )
        .only_held(&engine.held);
        let read = {
            let engine = engine.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { engine.run(shutdown).await })
        };
        let write = {
            let url = database_url.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { writer.run(&url, shutdown).await })
        };
        let usage = tokio::spawn(record_usage(contexts, database_url, shutdown));
        Ok(Loops { read, write, usage })
    }

    /// Waits (after shutdown was signalled) for in-flight work, at most `grace`.
    pub async fn finish(self, grace: Duration) {
        let finished = tokio::time::timeout(grace, async {
            match self.read.await {
                Ok(Err(e)) => tracing::warn!("the engine stopped: {e}"),
                Err(e) => tracing::warn!("the engine stopped: {e}"),
                Ok(Ok(())) => {}
            }
            if let Ok(Err(e)) = self.write.await {
                tracing::warn!("the writer stopped: {e}");
            }
            let _ = self.usage.await;
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                "in-flight work did not finish within {grace:?}; it is journaled and resumes at the next start"
            );
        }
    }
}

/// Resolves once `shutdown` is true.
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// `forcesync run`.
pub async fn run(ctx: &Context, listen: SocketAddr, only: Vec<String>) -> Result<(), CliError> {
    let guard = page::auth::Guard::from_env();
    page::auth::listen_allowed(listen, guard.requires_token()).map_err(CliError::settings)?;
    let engine = Arc::new(engine(ctx, only).await?);
    let database_url = engine.config.database_url.clone();
    let (stop, shutdown) = shutdown_on_signals();
    let status_page = page::Page::new(
        database_url.clone(),
        ctx.app.registry,
        guard,
        Some(engine.clone()),
    );
    let addr = server::serve(
        listen,
        database_url.clone(),
        ctx.app.registry,
        Some(status_page),
        shutdown.clone(),
    )
    .await
    .map_err(|e| CliError::settings(format!("--listen {listen}: cannot listen there ({e})")))?;
    tracing::info!(%addr, "serving the status page at http://{addr}/, /healthz, /readyz and /metrics");
    let mut loops = Loops::start(engine.clone(), shutdown.clone()).await?;
    tracing::info!(
        mappings = engine.mappings().len(),
        "forcesync running; Ctrl-C or SIGTERM stops it"
    );
    let (outcome, read_finished) = tokio::select! {
        r = &mut loops.read => (match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::failure(format!("the engine stopped: {e}"))),
            Err(e) => Err(CliError::failure(format!("the engine stopped: {e}"))),
        }, true),
        _ = stopped(shutdown.clone()) => (Ok(()), false),
    };
    let _ = stop.send(true);
    if read_finished {
        loops.read = tokio::spawn(async { Ok(()) });
    }
    loops.finish(SHUTDOWN_GRACE).await;
    tracing::info!("stopped");
    outcome
}

/// `forcesync reload MAPPING`: a shadow-table reload with a progress display.
pub async fn reload(ctx: &Context, name: &str) -> Result<(), CliError> {
    let mapping = ctx.mapping(name)?;
    let engine = engine(ctx, vec![mapping.object.to_owned()]).await?;
    let mctx = engine.context(mapping)?;
    let report = with_progress(&mctx, "reload", driver::load(&mctx, true)).await?;
    println!(
        "{}: reloaded {} rows in {:.1} s ({}{} records not applied, see `forcesync errors`)",
        mapping.object,
        report.rows,
        report.seconds,
        if report.bulk { "Bulk API; " } else { "" },
        report.errors
    );
    Ok(())
}

/// Runs `work` while showing the mapping's load progress from its state row.
pub async fn with_progress<T>(
    mctx: &MappingCtx,
    what: &str,
    work: impl std::future::Future<Output = Result<T, crate::engine::EngineError>>,
) -> Result<T, CliError> {
    let db = mctx.connect().await?;
    let states = StateStore::new(mctx.mapping.schema);
    let mut progress = Progress::new(&format!("{} {what}", mctx.mapping.object));
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => {
                let result = result?;
                if let Ok(Some(s)) = states.get(&db, mctx.mapping.object).await {
                    progress.update(s.load_done.max(0) as u64, s.load_total.map(|t| t.max(0) as u64));
                }
                progress.finish("done");
                return Ok(result);
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if let Ok(Some(s)) = states.get(&db, mctx.mapping.object).await {
                    progress.update(s.load_done.max(0) as u64, s.load_total.map(|t| t.max(0) as u64));
                }
            }
        }
    }
}

/// `forcesync recover --since TS [MAPPING]`: re-reads every change since `since`.
pub async fn recover(
    ctx: &Context,
    since: NaiveDateTime,
    mapping: Option<&str>,
) -> Result<(), CliError> {
    let only = match mapping {
        Some(name) => vec![ctx.mapping(name)?.object.to_owned()],
        None => Vec::new(),
    };
    let engine = engine(ctx, only).await?;
    for m in engine.mappings() {
        let mctx = engine.context(m)?;
        let applied = poll::poll_once(&mctx, Some(since)).await?;
        println!(
            "{}: re-read {} changes since {since} UTC",
            m.object,
            applied.total()
        );
    }
    Ok(())
}

/// Parses `--since`: RFC 3339, `YYYY-MM-DD HH:MM:SS` / `YYYY-MM-DDTHH:MM:SS` (UTC), or a date.
pub fn parse_since(text: &str) -> Result<NaiveDateTime, String> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.naive_utc());
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight"));
    }
    Err(format!(
        "--since `{text}` is not a time; give RFC 3339 (2026-01-31T12:00:00Z), `2026-01-31 12:00:00` (UTC) or a date"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_rfc3339_plain_times_and_dates() {
        let noon = NaiveDate::from_ymd_opt(2026, 1, 31)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(parse_since("2026-01-31T12:00:00Z"), Ok(noon));
        assert_eq!(parse_since("2026-01-31T14:00:00+02:00"), Ok(noon));
        assert_eq!(parse_since("2026-01-31 12:00:00"), Ok(noon));
        assert_eq!(
            parse_since("2026-01-31"),
            Ok(noon - chrono::Duration::hours(12))
        );
        assert!(parse_since("yesterday").unwrap_err().contains("--since"));
    }

    #[test]
    fn calls_are_stored_by_kind_name() {
        let counts = crate::salesforce::CallCounts::default();
        assert_eq!(calls_json(&counts), serde_json::json!({}));
    }
}
