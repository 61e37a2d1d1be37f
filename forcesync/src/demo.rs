//! `forcesync demo`: no setup at all. Starts the Salesforce emulator in-process with demo data, a
//! throwaway Postgres (or uses `DATABASE_URL`), applies the migrations, shows the initial load,
//! then runs the engine both ways and makes a few changes on each side itself, printing a live
//! feed of what moves and how long it took. Ctrl-C (or `--seconds N`) stops it cleanly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sync_runtime::cli::progress::Progress;
use sync_runtime::cli::run::{shutdown_on_signals, stopped, Loops};
use sync_runtime::cli::{migrate, runtime, CliError, Context};
use sync_runtime::engine::state::StateStore;
use sync_runtime::engine::{Engine, EngineConfig};
use sync_runtime::salesforce::{self, Credentials, Secret};
use tokio::sync::watch;

use crate::sf_user::SfUser;

/// The `demo` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("demo")
        .about("The embedded demo: Salesforce emulator + throwaway Postgres, both directions, live feed")
        .arg(
            clap::Arg::new("seconds")
                .long("seconds")
                .value_name("N")
                .value_parser(clap::value_parser!(u64))
                .help("Stop by itself after N seconds (otherwise Ctrl-C stops it)"),
        )
}

/// Runs the demo.
pub fn run(ctx: &Context, matches: &clap::ArgMatches) -> Result<(), CliError> {
    let seconds = matches.get_one::<u64>("seconds").copied();
    let (cluster, url) = database(ctx)?;
    let applied = migrate::app_migrations(&url, ctx.app.migrations, false)?;
    println!("Applied {} app migrations.", applied.len());
    let result = runtime()?.block_on(demo(ctx, url, seconds));
    drop(cluster);
    result
}

/// `DATABASE_URL` when set, otherwise a throwaway cluster (held by the first value).
pub(crate) fn database(ctx: &Context) -> Result<(Option<pg_cluster::Cluster>, String), CliError> {
    match ctx.sources()?.database_url() {
        Ok(url) => Ok((None, url)),
        Err(e) if e.problem == "is not set" => {
            println!("Starting a throwaway Postgres (set DATABASE_URL to use yours)…");
            let cluster =
                pg_cluster::Cluster::start("forcesync-demo-pg").map_err(CliError::failure)?;
            let url = cluster.url("postgres");
            Ok((Some(cluster), url))
        }
        Err(e) => Err(e.into()),
    }
}

/// Starts the emulator with demo data; answers it with the client settings for it.
pub(crate) async fn emulator(
    api_version: &str,
) -> Result<
    (
        sf_emulator::server::RunningEmulator,
        sf_emulator::server::Config,
        salesforce::Config,
    ),
    CliError,
> {
    let emulator_config = sf_emulator::server::Config {
        seed: Some("demo".to_owned()),
        ..sf_emulator::server::Config::ephemeral()
    };
    let emulator = sf_emulator::server::start(emulator_config.clone())
        .await
        .map_err(|e| CliError::failure(format!("the emulator did not start: {e}")))?;
    let mut sf = salesforce::Config::new(
        emulator.base_url.clone(),
        Credentials::Password {
            client_id: emulator_config.client_id.clone(),
            client_secret: Secret::new(emulator_config.client_secret.clone()),
            username: emulator_config.username.clone(),
            password: Secret::new(emulator_config.password.clone()),
            security_token: Secret::new(emulator_config.security_token.clone()),
        },
    );
    sf.api_version = api_version.to_owned();
    if let Some(url) = &emulator.pubsub_url {
        sf.pubsub_url = url.clone();
    }
    Ok((emulator, emulator_config, sf))
}

/// One line of the feed (pure): `Account 001…  Phone  Salesforce → Postgres  38 ms`.
pub fn feed_line(object: &str, id: &str, field: &str, to_postgres: bool, took: Duration) -> String {
    let short: String = id.chars().take(6).collect();
    let direction = if to_postgres {
        "Salesforce → Postgres"
    } else {
        "Postgres → Salesforce"
    };
    format!(
        "{object:<8} {short}…  {field:<9} {direction}  {} ms",
        took.as_millis()
    )
}

/// Polls `check` every 10 ms until it answers true, for at most 30 s; answers the time taken.
async fn timed<F, Fut>(mut check: F, shutdown: &watch::Receiver<bool>) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if *shutdown.borrow() {
            return None;
        }
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

async fn demo(ctx: &Context, url: String, seconds: Option<u64>) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    migrate::system_migrations(&url, registry).await?;
    let (emulator, emulator_config, sf) = emulator(registry.api_version).await?;
    let base = emulator.base_url.clone();
    let mut config = EngineConfig::new(url.clone());
    config.lease_retry = Duration::from_millis(500);
    config.lookback = Duration::from_secs(5);
    let engine = Arc::new(Engine::new(registry, config, sf)?);

    println!();
    println!("Salesforce emulator: {base}  (OAuth password flow: client_id {}, username {}, password {})",
        emulator_config.client_id, emulator_config.username, emulator_config.password);
    println!(
        "Postgres:            psql '{url}'   (tables in schema {})",
        registry.schema
    );
    println!(
        "Try it: UPDATE {}.account SET phone = '+1 555 0100' WHERE id = 1;",
        registry.schema
    );
    println!();

    let (stop, shutdown) = shutdown_on_signals();
    if let Some(seconds) = seconds {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            let _ = stop.send(true);
        });
    }
    let loops = Loops::start(engine.clone(), shutdown.clone()).await?;
    let db = sync_runtime::engine::connect(&url).await?;
    let outcome = async {
        wait_loaded(&db, &engine, &shutdown).await?;
        if !*shutdown.borrow() {
            println!(
                "\nLive feed (changes the demo makes; yours show up in psql and the emulator):"
            );
            let user = SfUser::login(
                &base,
                &emulator_config,
                generated::salesforce::REGISTRY.api_version,
            )
            .await?;
            tokio::select! {
                r = feed(&db, &user, registry.schema, &shutdown) => r?,
                _ = stopped(shutdown.clone()) => {}
            }
        }
        Ok::<_, CliError>(())
    }
    .await;
    let _ = stop.send(true);
    println!("\nStopping: finishing in-flight writes…");
    loops.finish(Duration::from_secs(20)).await;
    emulator.stop().await;
    println!("Stopped.");
    outcome
}

/// Shows each mapping's initial load until every mapping is loaded.
async fn wait_loaded(
    db: &tokio_postgres::Client,
    engine: &Engine,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), CliError> {
    let states = StateStore::new(engine.registry.schema);
    for mapping in engine.mappings() {
        let mut progress = Progress::new(&format!("{} load", mapping.object));
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let status = states.get(db, mapping.object).await?;
            if let Some(s) = &status {
                // Before the load has counted anything there is nothing to show ("0 rows").
                if s.load_total.is_some() || s.load_done > 0 {
                    progress.update(
                        s.load_done.max(0) as u64,
                        s.load_total.map(|t| t.max(0) as u64),
                    );
                }
                if sync_runtime::cli::report::has_loaded(s) {
                    progress.finish(&format!("{} rows, {}", s.load_done, s.state));
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Changes on each side, in turn, each with its line in the feed.
async fn feed(
    db: &tokio_postgres::Client,
    user: &SfUser,
    schema: &str,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), CliError> {
    let account = format!("{schema}.account");
    let contact = format!("{schema}.contact");
    let mut round: u32 = 0;
    loop {
        round += 1;
        let offset = i64::from(round % 10);
        let sfid: String = db
            .query_one(
                &format!(
                    "SELECT sfid FROM {account} WHERE sfid IS NOT NULL ORDER BY id LIMIT 1 OFFSET $1"
                ),
                &[&offset],
            )
            .await?
            .get(0);

        // Salesforce → Postgres: a user edits a phone number in Salesforce.
        let phone = format!("+1 555 01{:02}", round % 100);
        user.update("Account", &sfid, json!({ "Phone": phone }))
            .await?;
        let took = timed(
            || async {
                db.query_opt(
                    &format!("SELECT 1 FROM {account} WHERE sfid = $1 AND phone = $2"),
                    &[&sfid, &phone],
                )
                .await
                .ok()
                .flatten()
                .is_some()
            },
            shutdown,
        )
        .await;
        report("Account", &sfid, "Phone", true, took);
        pause(shutdown).await;

        // Postgres → Salesforce: the app edits the same field in Postgres.
        let phone = format!("+1 555 02{:02}", round % 100);
        db.execute(
            &format!("UPDATE {account} SET phone = $1 WHERE sfid = $2"),
            &[&phone, &sfid],
        )
        .await?;
        let took = timed(
            || async {
                user.field("Account", &sfid, "Phone")
                    .await
                    .is_ok_and(|v| v == json!(phone))
            },
            shutdown,
        )
        .await;
        report("Account", &sfid, "Phone", false, took);
        pause(shutdown).await;

        // Postgres → Salesforce: the app inserts a new Account.
        let name = format!("Demo Account {round}");
        let id: i32 = db
            .query_one(
                &format!("INSERT INTO {account} (name) VALUES ($1) RETURNING id"),
                &[&name],
            )
            .await?
            .get(0);
        let started = Instant::now();
        let mut created = None;
        while created.is_none()
            && started.elapsed() < Duration::from_secs(30)
            && !*shutdown.borrow()
        {
            created = db
                .query_one(&format!("SELECT sfid FROM {account} WHERE id = $1"), &[&id])
                .await?
                .get::<_, Option<String>>(0);
            if created.is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let took = created.is_some().then(|| started.elapsed());
        let created = created.unwrap_or_else(|| format!("row {id}"));
        report("Account", &created, "Name (new)", false, took);
        pause(shutdown).await;

        // Salesforce → Postgres: a user creates a Contact in Salesforce.
        let last = format!("Demo{round}");
        let id = user
            .create("Contact", json!({ "LastName": last, "FirstName": "Ada" }))
            .await?;
        let took = timed(
            || async {
                db.query_opt(&format!("SELECT 1 FROM {contact} WHERE sfid = $1"), &[&id])
                    .await
                    .ok()
                    .flatten()
                    .is_some()
            },
            shutdown,
        )
        .await;
        report("Contact", &id, "LastName (new)", true, took);
        pause(shutdown).await;
        if *shutdown.borrow() {
            return Ok(());
        }
    }
}

fn report(object: &str, id: &str, field: &str, to_postgres: bool, took: Option<Duration>) {
    match took {
        Some(took) => println!("{}", feed_line(object, id, field, to_postgres, took)),
        None => {
            let direction = if to_postgres {
                "Salesforce → Postgres"
            } else {
                "Postgres → Salesforce"
            };
            println!(
                "{object} {id} {field} {direction}: not seen within 30 s (see `forcesync status`)"
            );
        }
    }
}

async fn pause(shutdown: &watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(1500)) => {}
        _ = stopped(shutdown.clone()) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_line_names_the_record_field_direction_and_time() {
        assert_eq!(
            feed_line(
                "Account",
                "001000000000001AAA",
                "Phone",
                true,
                Duration::from_millis(38)
            ),
            "Account  001000…  Phone     Salesforce → Postgres  38 ms"
        );
    }
}
