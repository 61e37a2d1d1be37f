//! `forcesync bench adopt`: moving `--records` Accounts off Heroku Connect by adopting its
//! database in place, against a fresh initial load of the same records measured in the same
//! run (the only path before `forcesync adopt`).
//!
//! Both run against one emulator holding the seeded Accounts, each on its own database of the
//! same Postgres server:
//!
//! - **reload** (baseline): `forcesync migrate`, then `forcesync run --only Account` until the
//!   mapping is `STREAMING`: seconds and API calls;
//! - **adopt**: a database as Heroku Connect makes and fills it (the test harness's builder,
//!   `tests/src/heroku_connect.rs`, with the same rows), `forcesync adopt` (seconds), then
//!   `forcesync run --only Account` until `STREAMING`: seconds and API calls.
//!
//! The engine runs as a child process (this binary, `forcesync run`), as in production.

use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use sync_runtime::cli::{adopt as adopt_cli, migrate, runtime, settings, CliError, Context};
use sync_runtime::engine::adopt::{self, Options};
use sync_runtime::engine::system::quote_ident;
use sync_runtime::engine::EngineConfig;

use super::org::{BenchOrg, Calls};
use crate::demo;

#[allow(dead_code)] // the test harness's builder, shared as source; the bench uses part of it
#[path = "../../../tests/src/heroku_connect.rs"]
mod heroku_connect;

/// The `bench adopt` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("adopt")
        .about(
            "Adopting a Heroku Connect database of N Accounts vs a fresh initial load: seconds, API calls",
        )
        .arg(
            clap::Arg::new("records")
                .long("records")
                .value_name("N")
                .default_value("1000000")
                .value_parser(clap::value_parser!(u64).range(1..)),
        )
}

/// Runs it.
pub fn run(ctx: &Context, sub: &clap::ArgMatches) -> Result<(), CliError> {
    let records = *sub.get_one::<u64>("records").expect("defaulted");
    let (cluster, url) = demo::database(ctx)?;
    let result = runtime()?.block_on(bench(ctx, &url, records));
    drop(cluster);
    result
}

/// Figures of one path to `STREAMING`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToStreaming {
    pub seconds: f64,
    pub calls: Calls,
}

/// The report (pure).
pub fn report(
    records: u64,
    adopt_seconds: f64,
    adopted: &ToStreaming,
    reload: &ToStreaming,
) -> Vec<String> {
    let total = adopt_seconds + adopted.seconds;
    let mut lines = vec![
        format!("adopt: {adopt_seconds:.2} s ({records} Accounts adopted in place, one transaction)"),
        format!(
            "run to STREAMING after adopt: {:.2} s, {} API calls (catch-up by polling)",
            adopted.seconds, adopted.calls.total
        ),
        format!(
            "adoption + catch-up: {total:.2} s, {} API calls (target <= 10 s and <= 10 calls)",
            adopted.calls.total
        ),
        format!(
            "fresh initial load (baseline, same records, same run): run to STREAMING {:.2} s, {} API calls",
            reload.seconds, reload.calls.total
        ),
        format!(
            "adoption + catch-up / reload: {:.2} of the time, {} vs {} calls",
            total / reload.seconds.max(1e-9),
            adopted.calls.total,
            reload.calls.total
        ),
        "calls after adopt:".to_owned(),
    ];
    lines.extend(adopted.calls.lines());
    lines.push("calls of the reload:".to_owned());
    lines.extend(reload.calls.lines());
    lines
}

/// A fresh database `name` on the server of `url`; answers its URL.
async fn fresh_database(url: &str, name: &str) -> Result<String, CliError> {
    let admin = sync_runtime::engine::connect(url).await?;
    // Two statements: DROP DATABASE cannot run inside a (multi-statement) transaction block.
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await?;
    let mut parsed = reqwest::Url::parse(url)
        .map_err(|e| CliError::settings(format!("DATABASE_URL is not a URL: {e}")))?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

async fn bench(ctx: &Context, url: &str, records: u64) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    let mapping = ctx.mapping("Account")?;
    let reload_url = fresh_database(url, "forcesync_bench_reload").await?;
    let adopt_url = fresh_database(url, "forcesync_bench_adopt").await?;

    let org = BenchOrg::start(110_000).await?;
    let seed_ms = org.seed("Account", records).await?;
    println!(
        "Seeded {records} Accounts in the emulator in {:.1} s; the engine runs as a child process: forcesync run --only Account",
        seed_ms as f64 / 1000.0
    );

    // The baseline: a new database and a full initial load.
    let migrations = ctx.app.migrations;
    let u = reload_url.clone();
    tokio::task::spawn_blocking(move || migrate::app_migrations(&u, migrations, false))
        .await
        .map_err(|e| CliError::failure(format!("migrations: {e}")))??;
    migrate::system_migrations(&reload_url, registry).await?;
    org.reset_counters().await?;
    let reload = to_streaming(&org, &reload_url).await?;

    // Heroku Connect's database holding the same records, as its load stores them.
    let table = heroku_connect::HcTable::like(mapping);
    let mut hc = sync_runtime::engine::connect(&adopt_url).await?;
    heroku_connect::create(
        &hc,
        registry.schema,
        "00D000000000001AAA",
        std::slice::from_ref(&table),
    )
    .await?;
    let reloaded = sync_runtime::engine::connect(&reload_url).await?;
    let mut columns: Vec<String> = table.columns.iter().map(|(c, _)| quote_ident(c)).collect();
    columns.push("sfid".to_owned());
    let copied = copy_rows(
        &reloaded,
        &mut hc,
        registry.schema,
        &table.table,
        &columns.join(", "),
    )
    .await?;
    println!("Heroku Connect's database holds {copied} Accounts (SYNCED, as its load leaves them)");

    let app_migrations = adopt_cli::app_migrations(ctx.app.migrations)?;
    let mut options = Options::new(EngineConfig::new("").lookback);
    options.force = true;
    let started = Instant::now();
    adopt::adopt(&mut hc, registry, &app_migrations, &options)
        .await
        .map_err(|e| CliError::failure(format!("adopt: {e}")))?;
    let adopt_seconds = started.elapsed().as_secs_f64();
    org.reset_counters().await?;
    let adopted = to_streaming(&org, &adopt_url).await?;
    org.stop().await;
    for line in report(records, adopt_seconds, &adopted, &reload) {
        println!("{line}");
    }
    Ok(())
}

/// Copies `table`'s rows from `from` into `to` as Heroku Connect's load leaves them.
async fn copy_rows(
    from: &tokio_postgres::Client,
    to: &mut tokio_postgres::Client,
    schema: &str,
    table: &str,
    columns: &str,
) -> Result<u64, CliError> {
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let out = from
        .copy_out(&format!("COPY {qualified} ({columns}) TO STDOUT"))
        .await?;
    futures_util::pin_mut!(out);
    let tx = to.transaction().await?;
    // What Heroku Connect's status trigger makes of its own inserts (`SYNCED`, no error), set
    // directly: the triggers would call `get_xmlbinary()` (a `pg_settings` scan) twice a row,
    // ten minutes for a million rows of setup that the benchmark does not measure.
    tx.batch_execute(&format!(
        "{session}; ALTER TABLE {qualified} DISABLE TRIGGER USER;
         ALTER TABLE {qualified} ALTER COLUMN _hc_lastop SET DEFAULT 'SYNCED';",
        session = heroku_connect::HC_SESSION
    ))
    .await?;
    let sink = tx
        .copy_in::<_, Bytes>(&format!("COPY {qualified} ({columns}) FROM STDIN"))
        .await?;
    futures_util::pin_mut!(sink);
    let mut chunk = BytesMut::with_capacity(256 * 1024);
    while let Some(row) = out.next().await {
        chunk.extend_from_slice(&row?);
        if chunk.len() >= 256 * 1024 {
            sink.send(chunk.split().freeze()).await?;
        }
    }
    if !chunk.is_empty() {
        sink.send(chunk.freeze()).await?;
    }
    let rows = sink.as_mut().finish().await?;
    tx.batch_execute(&format!(
        "ALTER TABLE {qualified} ALTER COLUMN _hc_lastop DROP DEFAULT;
         ALTER TABLE {qualified} ENABLE TRIGGER USER;"
    ))
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// Runs `forcesync run --only Account` on `url` until the mapping is `STREAMING`; answers the
/// seconds from the start and the calls the org counted.
async fn to_streaming(org: &BenchOrg, url: &str) -> Result<ToStreaming, CliError> {
    let exe = std::env::current_exe().map_err(|e| {
        CliError::failure(format!("cannot find this binary to run the engine: {e}"))
    })?;
    let mut command = tokio::process::Command::new(exe);
    command
        .args(["run", "--only", "Account", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for name in settings::NAMES {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", url);
    for (name, value) in org.settings() {
        command.env(name, value);
    }
    let db = sync_runtime::engine::connect(url).await?;
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| CliError::failure(format!("cannot start the engine: {e}")))?;
    let limit = Duration::from_secs(600);
    loop {
        let state: Option<String> = db
            .query_opt(
                "SELECT state::text FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
                &[],
            )
            .await?
            .map(|r| r.get(0));
        if state.as_deref() == Some("STREAMING") {
            break;
        }
        if started.elapsed() > limit {
            let _ = child.start_kill();
            return Err(CliError::failure(format!(
                "Account did not reach STREAMING within {} s (state {state:?})",
                limit.as_secs()
            )));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::failure(format!(
                "the engine ended ({status}) before Account was STREAMING"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let calls = org.calls().await?;
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok(ToStreaming { seconds, calls })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sets_adoption_against_the_reload() {
        let calls = |total| Calls {
            total,
            ..Calls::default()
        };
        let lines = report(
            1000,
            1.5,
            &ToStreaming {
                seconds: 0.5,
                calls: calls(4),
            },
            &ToStreaming {
                seconds: 20.0,
                calls: calls(30),
            },
        );
        assert_eq!(
            lines[2],
            "adoption + catch-up: 2.00 s, 4 API calls (target <= 10 s and <= 10 calls)"
        );
        assert_eq!(
            lines[4],
            "adoption + catch-up / reload: 0.10 of the time, 4 vs 30 calls"
        );
    }
}
