//! `forcesync bench write`: the writer's throughput against a baseline measured in the same run
//! on the same org (the emulator in-process, as in the demo): one statement inserting `--records`
//! Accounts, sent by the writer, against the same records sent straight through a bare sObject
//! Collections loop; API calls against the minimum (200 records a call).

use std::time::Duration;

use serde_json::json;
use sync_runtime::cli::{migrate, runtime, CliError, Context};
use sync_runtime::engine::writer::bench::{bare_collections, writer_throughput, Throughput};
use sync_runtime::engine::writer::{Target, WriterConfig};
use sync_runtime::salesforce::Client;

use crate::demo;

/// The `bench write` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("write")
        .about("Writer throughput: one INSERT of N Accounts vs a bare sObject Collections loop")
        .arg(
            clap::Arg::new("records")
                .long("records")
                .value_name("N")
                .default_value("100000")
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
}

/// Runs it.
pub fn run(ctx: &Context, sub: &clap::ArgMatches) -> Result<(), CliError> {
    let records = *sub.get_one::<u32>("records").expect("defaulted");
    let (cluster, url) = demo::database(ctx)?;
    migrate::app_migrations(&url, ctx.app.migrations, false)?;
    let result = runtime()?.block_on(write(ctx, &url, records));
    drop(cluster);
    result
}

/// One result line (pure).
pub fn line(name: &str, t: &Throughput) -> String {
    format!(
        "{name:<20} {:>8} records  {:>8.2} s  {:>10.0} records/s  {:>6} API calls",
        t.records,
        t.seconds,
        t.records_per_second(),
        t.calls
    )
}

async fn write(ctx: &Context, url: &str, records: u32) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    migrate::system_migrations(url, registry).await?;
    let (emulator, _, sf) = demo::emulator(registry.api_version).await?;
    let mapping = ctx.mapping("Account")?;
    let client =
        Client::new(sf).map_err(|e| CliError::failure(format!("Salesforce client: {e}")))?;
    let baseline_records: Vec<serde_json::Value> = (0..records)
        .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("Baseline {i}")}))
        .collect();
    let config = WriterConfig::default();
    let baseline =
        bare_collections(&client, "Account", baseline_records, config.max_in_flight).await;
    let target = Target {
        mapping,
        client: client.scoped("Account", u64::MAX),
    };
    let insert = format!(
        "INSERT INTO {} (name) SELECT 'Bench ' || g FROM generate_series(1, {records}) g",
        mapping.qualified_table()
    );
    let writer = writer_throughput(url, registry.schema, target, config, &insert)
        .await
        .map_err(|e| CliError::failure(format!("writer: {e}")))?;
    println!("{}", line("bare Collections loop", &baseline));
    println!("{}", line("forcesync writer", &writer));
    println!(
        "writer / baseline throughput: {:.2}   API calls: {} (minimum {}, baseline {})",
        writer.records_per_second() / baseline.records_per_second().max(f64::EPSILON),
        writer.calls,
        writer.minimum_calls(),
        baseline.calls
    );
    tokio::time::timeout(Duration::from_secs(10), emulator.stop())
        .await
        .ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_line_shows_records_time_rate_and_calls() {
        let t = Throughput {
            records: 1000,
            seconds: 2.0,
            calls: 5,
        };
        let text = line("forcesync writer", &t);
        assert!(text.contains("1000 records"), "{text}");
        assert!(text.contains("500 records/s"), "{text}");
        assert!(text.contains("5 API calls"), "{text}");
    }
}
