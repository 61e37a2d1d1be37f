//! `forcesync bench page`: how long the status page takes to answer with `--mappings` mappings
//! and `--failed` failed writes on one of them: the overview and that mapping's first page of
//! failures, each requested `--requests` times over real HTTP from a real Postgres, p50 / p99 /
//! max against the 50 ms target.
//!
//! The mappings are copies of the app's Account mapping on their own tables (`bench_page_N`),
//! so the page reads as many state rows, tables and counts as a 50-mapping app would.

use std::time::Instant;

use sync_runtime::adapter::{MappingDescriptor, Registry};
use sync_runtime::cli::{migrate, runtime, CliError, Context};
use sync_runtime::engine::activity::percentile;
use sync_runtime::engine::state::StateStore;

use crate::demo;

/// The target for p99 of either page.
pub const TARGET_P99_MS: f64 = 50.0;

/// The `bench page` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("page")
        .about("Status page render time: the overview and a mapping's first page of failures (p50/p99)")
        .arg(
            clap::Arg::new("mappings")
                .long("mappings")
                .value_name("N")
                .default_value("50")
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
        .arg(
            clap::Arg::new("failed")
                .long("failed")
                .value_name("N")
                .help("failed writes on the first mapping")
                .default_value("10000")
                .value_parser(clap::value_parser!(u32)),
        )
        .arg(
            clap::Arg::new("requests")
                .long("requests")
                .value_name("N")
                .default_value("200")
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
}

/// Runs it.
pub fn run(ctx: &Context, sub: &clap::ArgMatches) -> Result<(), CliError> {
    let mappings = *sub.get_one::<u32>("mappings").expect("defaulted");
    let failed = *sub.get_one::<u32>("failed").expect("defaulted");
    let requests = *sub.get_one::<u32>("requests").expect("defaulted");
    let (cluster, url) = demo::database(ctx)?;
    migrate::app_migrations(&url, ctx.app.migrations, false)?;
    let result = runtime()?.block_on(bench(ctx, &url, mappings, failed, requests));
    drop(cluster);
    result
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// `mappings` copies of `model`, each on table `bench_page_N` (leaked: they live as long as the
/// process, like the generated registry).
fn registry(base: &Registry, model: &MappingDescriptor, mappings: u32) -> &'static Registry {
    let copies: Vec<&'static MappingDescriptor> = (0..mappings)
        .map(|i| {
            let copy: &'static MappingDescriptor = Box::leak(Box::new(MappingDescriptor {
                object: leak(format!("BenchPage{i}")),
                label: leak(format!("Bench page {i}")),
                table: leak(format!("bench_page_{i}")),
                ..*model
            }));
            copy
        })
        .collect();
    Box::leak(Box::new(Registry {
        api_version: base.api_version,
        schema: base.schema,
        streaming_transport: base.streaming_transport,
        mappings: Box::leak(copies.into_boxed_slice()),
    }))
}

async fn prepare(
    db: &tokio_postgres::Client,
    registry: &Registry,
    model: &MappingDescriptor,
    failed: u32,
) -> Result<(), CliError> {
    let states = StateStore::new(registry.schema);
    for (i, m) in registry.mappings.iter().enumerate() {
        let rows = if i == 0 { failed.max(1000) } else { 1000 };
        db.batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (LIKE {model} INCLUDING DEFAULTS);
             INSERT INTO {table} (id, name, sfid) SELECT g, 'Row ' || g, '001' || lpad(g::text, 15, '0')
               FROM generate_series(1, {rows}) g;",
            table = m.qualified_table(),
            model = model.qualified_table(),
        ))
        .await?;
        states.ensure(db, m.object, m.table).await?;
    }
    let first = registry.mappings[0];
    let schema = registry.schema;
    db.execute(
        &format!(
            "DELETE FROM {schema}._trigger_log_archive WHERE table_name LIKE 'bench\\_page\\_%'"
        ),
        &[],
    )
    .await?;
    db.execute(
        &format!(
            "INSERT INTO {schema}._trigger_log_archive
               (id, created_at, updated_at, processed_at, state, action, table_name, record_id, \"values\", sf_message)
             SELECT 1000000 + g, now(), now(), now(), 'FAILED', 'INSERT', $1, g,
                    jsonb_build_object('name', 'Bench test ' || g, 'phone', '555-' || g),
                    'FIELD_CUSTOM_VALIDATION_EXCEPTION: Test accounts are not allowed'
             FROM generate_series(1, $2::int) g"
        ),
        &[&first.table, &(failed as i32)],
    )
    .await?;
    db.execute(
        &format!(
            "UPDATE {} SET _hc_err = '{{\"op\":\"INSERT\",\"src\":\"SFDC\",\"msg\":\"Test accounts are not allowed\"}}'
             WHERE id <= $1",
            first.qualified_table()
        ),
        &[&(failed as i32)],
    )
    .await?;
    db.batch_execute(&format!("ANALYZE {schema}._trigger_log_archive"))
        .await?;
    Ok(())
}

/// Times `requests` GETs of `url` (after a warm-up), in milliseconds.
async fn time_gets(http: &reqwest::Client, url: &str, requests: u32) -> Result<Vec<f64>, CliError> {
    let get = |url: String| async move {
        let r = http
            .get(&url)
            .send()
            .await
            .map_err(|e| CliError::failure(format!("GET {url}: {e}")))?;
        if !r.status().is_success() {
            return Err(CliError::failure(format!("GET {url}: {}", r.status())));
        }
        r.bytes()
            .await
            .map_err(|e| CliError::failure(format!("GET {url}: {e}")))
    };
    for _ in 0..5 {
        get(url.to_owned()).await?;
    }
    let mut times = Vec::with_capacity(requests as usize);
    for _ in 0..requests {
        let started = Instant::now();
        get(url.to_owned()).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(times)
}

/// `overview  p50 4.1 ms  p99 7.9 ms  max 9.0 ms  (target p99 ≤ 50 ms: met)` (pure).
pub fn line(name: &str, mut times: Vec<f64>, bytes: usize) -> String {
    times.sort_by(f64::total_cmp);
    // Percentiles over microseconds, so the nearest-rank helper of the engine applies.
    let us: Vec<i64> = times.iter().map(|t| (t * 1000.0) as i64).collect();
    let p50 = percentile(&us, 50.0) as f64 / 1000.0;
    let p99 = percentile(&us, 99.0) as f64 / 1000.0;
    let max = times.last().copied().unwrap_or(0.0);
    format!(
        "{name:<32} p50 {p50:>6.1} ms  p99 {p99:>6.1} ms  max {max:>6.1} ms  {bytes:>7} bytes  (target p99 ≤ {TARGET_P99_MS} ms: {})",
        if p99 <= TARGET_P99_MS { "met" } else { "MISSED" }
    )
}

async fn bench(
    ctx: &Context,
    url: &str,
    mappings: u32,
    failed: u32,
    requests: u32,
) -> Result<(), CliError> {
    let model = ctx.mapping("Account")?;
    let registry = registry(ctx.app.registry, model, mappings);
    migrate::system_migrations(url, ctx.app.registry).await?;
    let db = sync_runtime::engine::connect(url)
        .await
        .map_err(|e| CliError::failure(format!("cannot connect to the database: {e}")))?;
    println!("Preparing {mappings} mappings (1,000 rows each) and {failed} failed writes…");
    prepare(&db, registry, model, failed).await?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let (base, http) = super::page_open::serve(url, registry, shutdown).await?;
    let first = registry.mappings[0].object;
    println!("{requests} requests each, one at a time, over HTTP on loopback:");
    for (name, path) in [
        ("overview (/)".to_owned(), "/".to_owned()),
        (
            format!("/mappings/{first} (failures p. 1)"),
            format!("/mappings/{first}"),
        ),
        (
            "overview refresh (/?part=live)".to_owned(),
            "/?part=live".to_owned(),
        ),
    ] {
        let url = format!("{base}{path}");
        let bytes = http
            .get(&url)
            .send()
            .await
            .map_err(|e| CliError::failure(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| CliError::failure(e.to_string()))?
            .len();
        let times = time_gets(&http, &url, requests).await?;
        println!("{}", line(&name, times, bytes));
    }
    let _ = stop.send(true);
    for m in registry.mappings {
        db.batch_execute(&format!("DROP TABLE IF EXISTS {}", m.qualified_table()))
            .await?;
    }
    db.batch_execute(&format!(
        "DELETE FROM {schema}._trigger_log_archive WHERE table_name LIKE 'bench\\_page\\_%';
         DELETE FROM {schema}._forcesync_mapping_state WHERE mapping LIKE 'BenchPage%';",
        schema = registry.schema
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_percentiles_and_the_verdict() {
        let times: Vec<f64> = (1..=100).map(f64::from).collect();
        let text = line("overview", times, 1234);
        assert!(text.contains("p50   50.0 ms"), "{text}");
        assert!(text.contains("p99   99.0 ms"), "{text}");
        assert!(text.contains("MISSED"), "{text}");
        assert!(line("x", vec![1.0; 10], 1).contains(": met"));
    }
}
