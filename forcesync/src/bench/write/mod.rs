//! `forcesync bench write`: the writer's figures against the embedded emulator (in-process, as
//! in the demo), each beside its target:
//!
//! - **throughput**: one statement inserting `--records` Accounts, sent by the writer, against the
//!   same number of records sent by a bare sequential sObject Collections loop (200 a call) run as
//!   a separate process in the same run ([`bare`]: this binary's own, and Python with
//!   `requests` where `python3` has it); their ratios; API calls against the minimum (200
//!   records a call); the Postgres floor (the `sfid` write-back plus the archive move alone);
//!   each of them measured `--runs` times (default 3, one after the other: the loops, the writer,
//!   the floor), each figure its fastest run's, as `bench capture` does: on this 2-core machine one
//!   run of each moved by a fifth from run to run;
//! - **latency**: Postgres commit → Salesforce's answer written back, p50 / p99 / max, while the
//!   app commits `--rate` single-row inserts a second for `--seconds`.

pub mod bare;
mod measure;

use std::time::Duration;

use bare::LoopOrg;
pub use measure::Throughput;
use measure::{postgres_floor, writer_latency, writer_throughput, Latency, PostgresFloor};
use sync_runtime::cli::{migrate, runtime, CliError, Context};
use sync_runtime::engine::writer::{Target, WriterConfig};
use sync_runtime::salesforce::Client;

use super::page_open::PageOpen;
use crate::demo;

/// Targets the figures are printed against.
pub const TARGET_RECORDS_PER_SECOND: f64 = 20_000.0;
pub const TARGET_RATIO_TO_BARE_LOOP: f64 = 0.5;
pub const TARGET_RATIO_TO_FLOOR: f64 = 0.75;
pub const TARGET_CALLS_TO_MINIMUM: f64 = 1.05;
pub const TARGET_P99_MS: f64 = 100.0;

/// The `bench write` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("write")
        .about(
            "Writer throughput (one INSERT of N Accounts vs a bare sObject Collections loop) \
             and commit → Salesforce latency at a steady rate of single-row writes",
        )
        .arg(
            clap::Arg::new("records")
                .long("records")
                .value_name("N")
                .help("Accounts inserted by the one statement of the throughput run")
                .default_value("100000")
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
        .arg(
            clap::Arg::new("runs")
                .long("runs")
                .value_name("R")
                .help("Throughput runs (the bare loops, the writer and the floor, each R times); each figure is its fastest run's")
                .default_value("3")
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
        .arg(
            clap::Arg::new("bulk-threshold")
                .long("bulk-threshold")
                .value_name("N")
                .help("records in one step from which the writer sends a Bulk API job (default: the writer's)")
                .value_parser(clap::value_parser!(usize)),
        )
        .arg(
            clap::Arg::new("rate")
                .long("rate")
                .value_name("WRITES_PER_SECOND")
                .help("single-row inserts a second during the latency run")
                .default_value("500")
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
        .arg(
            clap::Arg::new("seconds")
                .long("seconds")
                .value_name("S")
                .help("length of the latency run (0 skips it)")
                .default_value("60")
                .value_parser(clap::value_parser!(u32)),
        )
        .arg(
            clap::Arg::new("page-open")
                .long("page-open")
                .help("Each run again with the status page open (the overview and the mapping's page, refreshed every 2 s as a browser does); prints both and the ratio")
                .action(clap::ArgAction::SetTrue),
        )
}

/// What to run.
#[derive(Debug, Clone, Copy)]
struct Plan {
    records: u32,
    runs: u32,
    rate: u32,
    seconds: u32,
    bulk_threshold: Option<usize>,
    page_open: bool,
}

/// Runs it.
pub fn run(ctx: &Context, sub: &clap::ArgMatches) -> Result<(), CliError> {
    let plan = Plan {
        records: *sub.get_one::<u32>("records").expect("defaulted"),
        runs: *sub.get_one::<u32>("runs").expect("defaulted"),
        rate: *sub.get_one::<u32>("rate").expect("defaulted"),
        seconds: *sub.get_one::<u32>("seconds").expect("defaulted"),
        bulk_threshold: sub.get_one::<usize>("bulk-threshold").copied(),
        page_open: sub.get_flag("page-open"),
    };
    let (cluster, url) = demo::database(ctx)?;
    migrate::app_migrations(&url, ctx.app.migrations, false)?;
    let result = runtime()?.block_on(write(ctx, &url, plan));
    drop(cluster);
    result
}

/// One throughput line (pure).
pub fn line(name: &str, t: &Throughput) -> String {
    format!(
        "{name:<22} {:>8} records  {:>8.2} s  {:>10.0} records/s  {:>6} API calls",
        t.records,
        t.seconds,
        t.records_per_second(),
        t.calls
    )
}

/// `met` or `MISSED` (pure).
fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// The comparison lines under the throughput lines (pure): the writer's rate, its ratio to each
/// bare loop (each a separate process), and its API calls against the minimum.
pub fn summary(writer: &Throughput, bare: &[(bare::Client, Throughput)]) -> Vec<String> {
    let rate = writer.records_per_second();
    let minimum = writer.minimum_calls().max(1);
    let calls = writer.calls as f64 / minimum as f64;
    let mut lines = vec![format!(
        "writer throughput: {rate:.0} records/s (target ≥ {TARGET_RECORDS_PER_SECOND:.0}: {})",
        verdict(rate >= TARGET_RECORDS_PER_SECOND)
    )];
    for (client, loop_figures) in bare {
        let ratio = rate / loop_figures.records_per_second().max(f64::EPSILON);
        lines.push(format!(
            "writer / bare loop: {ratio:.2}× ({}, sequential, 200 a call, separate process; target ≥ {TARGET_RATIO_TO_BARE_LOOP}×: {})",
            client.description(),
            verdict(ratio >= TARGET_RATIO_TO_BARE_LOOP)
        ));
    }
    let loop_calls: Vec<String> = bare.iter().map(|(_, t)| t.calls.to_string()).collect();
    lines.push(format!(
        "API calls: {} against a minimum of {minimum} (⌈N/200⌉): {calls:.2}× (target ≤ {TARGET_CALLS_TO_MINIMUM}×: {}); bare loop {}",
        writer.calls,
        verdict(calls <= TARGET_CALLS_TO_MINIMUM),
        loop_calls.join(" / ")
    ));
    lines
}

/// What Postgres alone needs per synced record, and the writer against it (pure).
pub fn floor_lines(floor: &PostgresFloor, writer: &Throughput) -> Vec<String> {
    let ratio = writer.records_per_second() / floor.records_per_second().max(f64::EPSILON);
    vec![
        format!(
            "Postgres floor: writing {} sfids back {:.2} s + moving their entries to the archive {:.2} s \
             (one statement each, rolled back) = {:.0} records/s on one backend, before any claim, \
             journal or Salesforce call",
            floor.records,
            floor.write_back_seconds,
            floor.archive_seconds,
            floor.records_per_second(),
        ),
        format!(
            "writer / Postgres floor: {ratio:.2}× (target ≥ {TARGET_RATIO_TO_FLOOR}×: {})",
            verdict(ratio >= TARGET_RATIO_TO_FLOOR)
        ),
    ]
}

/// The latency line (pure).
pub fn latency_line(l: &Latency, rate: u32, seconds: u32) -> String {
    format!(
        "latency, Postgres commit → written in Salesforce, {rate} writes/s for {seconds} s ({} writes): \
         p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms (target p99 ≤ {TARGET_P99_MS:.0} ms: {})",
        l.writes,
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        verdict(l.writes > 0 && l.p99_ms <= TARGET_P99_MS)
    )
}

/// Two runs as one: their records and calls added, their times added (pure).
pub fn mean_throughput(a: &Throughput, b: &Throughput) -> Throughput {
    Throughput {
        records: a.records + b.records,
        seconds: a.seconds + b.seconds,
        calls: a.calls + b.calls,
    }
}

/// The mean of two runs' percentiles (pure).
pub fn mean_latency(a: &Latency, b: &Latency) -> Latency {
    Latency {
        writes: a.writes + b.writes,
        p50_ms: (a.p50_ms + b.p50_ms) / 2.0,
        p99_ms: (a.p99_ms + b.p99_ms) / 2.0,
        max_ms: (a.max_ms + b.max_ms) / 2.0,
    }
}

/// One throughput run: each bare loop, the writer and the floor.
#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputRun {
    pub baselines: Vec<(bare::Client, Throughput)>,
    pub writer: Throughput,
    pub floor: PostgresFloor,
}

impl ThroughputRun {
    /// Each figure its faster run's (pure): each loop's, the writer's and the floor's (the
    /// floor as one figure: both its statements from the same run).
    pub fn best(&self, other: &ThroughputRun) -> ThroughputRun {
        let faster = |a: &Throughput, b: &Throughput| if b.seconds < a.seconds { *b } else { *a };
        let floor_seconds = |f: &PostgresFloor| f.write_back_seconds + f.archive_seconds;
        ThroughputRun {
            baselines: self
                .baselines
                .iter()
                .zip(&other.baselines)
                .map(|((client, a), (_, b))| (*client, faster(a, b)))
                .collect(),
            writer: faster(&self.writer, &other.writer),
            floor: if floor_seconds(&other.floor) < floor_seconds(&self.floor) {
                other.floor
            } else {
                self.floor
            },
        }
    }
}

/// One run's rates on a line, printed as it ends when there are several (pure).
pub fn run_line(run: u32, figures: &ThroughputRun) -> String {
    let mut parts: Vec<String> = figures
        .baselines
        .iter()
        .map(|(client, t)| format!("{} {:.0}", client.short_name(), t.records_per_second()))
        .collect();
    parts.push(format!("writer {:.0}", figures.writer.records_per_second()));
    parts.push(format!(
        "Postgres floor {:.0}",
        figures.floor.records_per_second()
    ));
    format!("run {run}: {} records/s", parts.join(", "))
}

/// The writer's throughput with the status page open against the run without it (pure):
/// unchanged within 10%.
pub fn page_open_throughput_line(without: &Throughput, with: &Throughput, served: u64) -> String {
    let ratio = with.records_per_second() / without.records_per_second().max(f64::EPSILON);
    format!(
        "with the status page open ({served} pages served): {:.0} records/s, {ratio:.2}x without it: {}",
        with.records_per_second(),
        if ratio >= 0.9 { "unchanged" } else { "slower" }
    )
}

/// The writer's latency with the status page open against the run without it (pure):
/// unchanged when p99 is within 10% or 5 ms of it, whichever is more.
pub fn page_open_latency_line(without: &Latency, with: &Latency, served: u64) -> String {
    let ratio = with.p99_ms / without.p99_ms.max(f64::EPSILON);
    let same = with.p99_ms <= without.p99_ms + (without.p99_ms / 10.0).max(5.0);
    format!(
        "latency with the status page open ({served} pages served, {} writes): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms; p99 {ratio:.2}x without it: {}",
        with.writes,
        with.p50_ms,
        with.p99_ms,
        with.max_ms,
        if same { "unchanged" } else { "slower" }
    )
}

async fn write(ctx: &Context, url: &str, plan: Plan) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    migrate::system_migrations(url, registry).await?;
    let (emulator, emulator_config, sf) = demo::emulator(registry.api_version).await?;
    let mapping = ctx.mapping("Account")?;
    let client =
        Client::new(sf).map_err(|e| CliError::failure(format!("Salesforce client: {e}")))?;
    let records = plan.records;
    let mut config = WriterConfig::default();
    if let Some(threshold) = plan.bulk_threshold {
        config.plan.bulk_threshold = threshold;
    }
    // The bare loops' org: the same emulator, each loop a process of its own.
    let org = LoopOrg {
        login_url: emulator.base_url.clone(),
        api_version: registry.api_version.to_owned(),
        client_id: emulator_config.client_id.clone(),
        client_secret: emulator_config.client_secret.clone(),
        username: emulator_config.username.clone(),
        password: format!(
            "{}{}",
            emulator_config.password, emulator_config.security_token
        ),
    };
    let python = bare::python_available().await;
    if !python {
        println!("(python3 with `requests` not found: the Python bare loop is skipped)");
    }
    let target = || Target {
        mapping,
        client: client.scoped("Account", u64::MAX),
    };
    let table = mapping.qualified_table();
    let insert = format!(
        "INSERT INTO {table} (name) SELECT 'Bench ' || g FROM generate_series(1, {records}) g"
    );
    let throughput = || async {
        writer_throughput(url, registry.schema, target(), config.clone(), &insert)
            .await
            .map_err(|e| CliError::failure(format!("writer: {e}")))
    };
    let db = sync_runtime::engine::connect(url).await?;
    let mut best: Option<ThroughputRun> = None;
    for run in 1..=plan.runs {
        if run > 1 {
            clear_bench_rows(&db, &table).await?;
        }
        // The baselines first, each a process of its own, on the same emulator.
        let mut baselines = Vec::new();
        if python {
            let t = bare::measure(bare::Client::Python, &org, records, "Baseline").await?;
            baselines.push((bare::Client::Python, t));
        }
        let t = bare::measure(bare::Client::Forcesync, &org, records, "Baseline").await?;
        baselines.push((bare::Client::Forcesync, t));
        let writer = throughput().await?;
        let floor = postgres_floor(url, registry.schema, mapping.table, "Bench ")
            .await
            .map_err(|e| CliError::failure(format!("Postgres floor: {e}")))?;
        let this = ThroughputRun {
            baselines,
            writer,
            floor,
        };
        if plan.runs > 1 {
            println!("{}", run_line(run, &this));
        }
        best = Some(match best {
            None => this,
            Some(before) => before.best(&this),
        });
    }
    let ThroughputRun {
        baselines,
        writer,
        floor,
    } = best.expect("at least one run");
    if plan.runs > 1 {
        println!(
            "best of {} runs (each figure below its fastest run's):",
            plan.runs
        );
    }
    for (client, t) in &baselines {
        println!("{}", line(client.label(), t));
    }
    println!("{}", line("forcesync writer", &writer));
    for l in summary(&writer, &baselines) {
        println!("{l}");
    }
    for l in floor_lines(&floor, &writer) {
        println!("{l}");
    }
    if plan.page_open {
        // With the page open against without it, each on the same table in the same state (the
        // rows of the run before leave it as an engine write, so nothing is sent to Salesforce,
        // and it is vacuumed), without it both before and after, so drift between runs (a
        // growing archive, a busier disk) counts against neither.
        let mut runs = Vec::new();
        for open in [false, true, false] {
            clear_bench_rows(&db, &table).await?;
            let (run, served) =
                maybe_page_open(open, url, registry, mapping.object, throughput()).await?;
            let name = match open {
                true => "forcesync writer, status page open",
                false => "forcesync writer, page closed",
            };
            println!("{}", line(name, &run));
            runs.push((run, served));
        }
        let without = mean_throughput(&runs[0].0, &runs[2].0);
        println!(
            "{}",
            page_open_throughput_line(&without, &runs[1].0, runs[1].1)
        );
    }
    if plan.seconds > 0 {
        let single = format!("INSERT INTO {table} (name) VALUES ('Latency')");
        let duration = Duration::from_secs(u64::from(plan.seconds));
        let latency_run = || async {
            writer_latency(
                url,
                registry.schema,
                target(),
                config.clone(),
                &single,
                plan.rate,
                duration,
            )
            .await
            .map_err(|e| CliError::failure(format!("writer: {e}")))
        };
        let latency = latency_run().await?;
        println!("{}", latency_line(&latency, plan.rate, plan.seconds));
        if plan.page_open {
            // Open, then closed again: the page-open run against both runs without it.
            let mut runs = Vec::new();
            for open in [true, false] {
                runs.push(
                    maybe_page_open(open, url, registry, mapping.object, latency_run()).await?,
                );
            }
            println!(
                "latency again with the page closed: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                runs[1].0.p50_ms, runs[1].0.p99_ms, runs[1].0.max_ms
            );
            let without = mean_latency(&latency, &runs[1].0);
            println!(
                "{}",
                page_open_latency_line(&without, &runs[0].0, runs[0].1)
            );
        }
    }
    tokio::time::timeout(Duration::from_secs(10), emulator.stop())
        .await
        .ok();
    Ok(())
}

/// Removes the rows a throughput run inserted (as the engine: nothing is captured) and vacuums
/// the table, so that the next run starts from the same state.
async fn clear_bench_rows(db: &tokio_postgres::Client, table: &str) -> Result<(), CliError> {
    db.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on'; DELETE FROM {table} WHERE name LIKE 'Bench %'; COMMIT"
    ))
    .await?;
    // Its own statement: VACUUM cannot run inside the implicit transaction of a batch.
    db.batch_execute(&format!("VACUUM ANALYZE {table}")).await?;
    Ok(())
}

/// Runs `run`, with the status page open on `mapping` when `open`: its result and the pages served
/// meanwhile (0 with the page closed).
async fn maybe_page_open<T>(
    open: bool,
    url: &str,
    registry: &'static sync_runtime::adapter::Registry,
    mapping: &str,
    run: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<(T, u64), CliError> {
    if !open {
        return Ok((run.await?, 0));
    }
    let page = PageOpen::start(url, registry, mapping).await?;
    let result = run.await?;
    Ok((result, page.stop().await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_without_the_page_average_into_one_baseline() {
        let a = Throughput {
            records: 100_000,
            seconds: 4.0,
            calls: 90,
        };
        let b = Throughput {
            seconds: 6.0,
            calls: 110,
            ..a
        };
        let both = mean_throughput(&a, &b);
        assert_eq!(both.records_per_second(), 20_000.0);
        assert_eq!(both.calls, 200);
        let l = |p99_ms| Latency {
            writes: 10,
            p50_ms: 5.0,
            p99_ms,
            max_ms: 100.0,
        };
        assert_eq!(mean_latency(&l(60.0), &l(100.0)).p99_ms, 80.0);
    }

    #[test]
    fn the_page_open_lines_compare_with_the_runs_without_the_page() {
        let without = Throughput {
            records: 100_000,
            seconds: 5.0,
            calls: 500,
        };
        let with = Throughput {
            seconds: 5.2,
            ..without
        };
        let line = page_open_throughput_line(&without, &with, 8);
        assert!(line.contains("8 pages served"), "{line}");
        assert!(
            line.ends_with("19231 records/s, 0.96x without it: unchanged"),
            "{line}"
        );
        let slow = Throughput {
            seconds: 7.0,
            ..without
        };
        assert!(page_open_throughput_line(&without, &slow, 8).ends_with("slower"));
        let base = Latency {
            writes: 30_000,
            p50_ms: 20.0,
            p99_ms: 40.0,
            max_ms: 90.0,
        };
        let same = Latency {
            p99_ms: 44.0,
            ..base
        };
        let line = page_open_latency_line(&base, &same, 60);
        assert!(line.contains("p99 44.0 ms"), "{line}");
        assert!(line.ends_with("p99 1.10x without it: unchanged"), "{line}");
        let slow = Latency {
            p99_ms: 60.0,
            ..base
        };
        assert!(page_open_latency_line(&base, &slow, 60).ends_with("slower"));
    }

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

    #[test]
    fn the_summary_compares_with_each_bare_loop_and_the_minimum_calls() {
        let writer = Throughput {
            records: 100_000,
            seconds: 4.0,
            calls: 510,
        };
        let python = Throughput {
            records: 100_000,
            seconds: 2.0,
            calls: 500,
        };
        let reqwest = Throughput {
            seconds: 1.0,
            ..python
        };
        let bare = [
            (bare::Client::Python, python),
            (bare::Client::Forcesync, reqwest),
        ];
        let lines = summary(&writer, &bare);
        assert!(lines[0].contains("25000 records/s") && lines[0].ends_with("met)"));
        assert!(
            lines[1].starts_with("writer / bare loop: 0.50× (Python `requests`, sequential")
                && lines[1].contains("separate process")
                && lines[1].ends_with(": met)"),
            "{lines:?}"
        );
        assert!(
            lines[2].starts_with("writer / bare loop: 0.25× (Rust reqwest")
                && lines[2].ends_with(": MISSED)"),
            "{lines:?}"
        );
        assert!(
            lines[3].contains("510 against a minimum of 500"),
            "{lines:?}"
        );
        assert!(
            lines[3].contains("1.02×") && lines[3].contains(": met)"),
            "{lines:?}"
        );
        assert!(lines[3].ends_with("bare loop 500 / 500"), "{lines:?}");

        let slow = Throughput {
            seconds: 10.0,
            calls: 600,
            ..writer
        };
        let lines = summary(&slow, &bare);
        assert!(lines.iter().all(|l| l.contains("MISSED")), "{lines:?}");
    }

    #[test]
    fn the_floor_lines_show_both_statements_and_the_writer_against_them() {
        let floor = PostgresFloor {
            records: 100_000,
            write_back_seconds: 1.5,
            archive_seconds: 1.0,
        };
        let writer = Throughput {
            records: 100_000,
            seconds: 3.2,
            calls: 500,
        };
        let lines = floor_lines(&floor, &writer);
        assert!(
            lines[0].contains(
                "writing 100000 sfids back 1.50 s + moving their entries to the archive 1.00 s"
            ),
            "{lines:?}"
        );
        assert!(lines[0].contains("= 40000 records/s"), "{lines:?}");
        assert_eq!(
            lines[1],
            "writer / Postgres floor: 0.78× (target ≥ 0.75×: met)"
        );
        let slow = Throughput {
            seconds: 4.0,
            ..writer
        };
        assert!(floor_lines(&floor, &slow)[1].ends_with("0.62× (target ≥ 0.75×: MISSED)"));
    }

    #[test]
    fn several_runs_keep_each_figure_from_its_fastest_run() {
        let t = |seconds| Throughput {
            records: 100_000,
            seconds,
            calls: 110,
        };
        let floor = |write_back_seconds, archive_seconds| PostgresFloor {
            records: 100_000,
            write_back_seconds,
            archive_seconds,
        };
        let first = ThroughputRun {
            baselines: vec![
                (bare::Client::Python, t(2.0)),
                (bare::Client::Forcesync, t(2.5)),
            ],
            writer: t(5.0),
            floor: floor(2.0, 1.0),
        };
        let second = ThroughputRun {
            baselines: vec![
                (bare::Client::Python, t(3.0)),
                (bare::Client::Forcesync, t(2.0)),
            ],
            writer: Throughput {
                calls: 120,
                ..t(4.0)
            },
            floor: floor(2.5, 0.6),
        };
        let best = first.best(&second);
        assert_eq!(
            best.baselines,
            vec![
                (bare::Client::Python, t(2.0)),
                (bare::Client::Forcesync, t(2.0))
            ]
        );
        // The writer's fastest run, with that run's calls.
        assert_eq!(best.writer.seconds, 4.0);
        assert_eq!(best.writer.calls, 120);
        // The floor's fastest run (3.0 s against 3.1 s), both statements from it.
        assert_eq!(best.floor, floor(2.0, 1.0));
        let faster_floor = ThroughputRun {
            floor: floor(2.5, 0.4),
            ..second.clone()
        };
        assert_eq!(first.best(&faster_floor).floor, floor(2.5, 0.4));
        assert_eq!(best, second.best(&first));
        assert_eq!(
            run_line(2, &second),
            "run 2: Python loop 33333, reqwest loop 50000, writer 25000, Postgres floor 32258 records/s"
        );
    }

    #[test]
    fn the_latency_line_shows_percentiles_against_the_target() {
        let l = Latency {
            writes: 30_000,
            p50_ms: 8.04,
            p99_ms: 101.0,
            max_ms: 250.0,
        };
        let text = latency_line(&l, 500, 60);
        assert!(
            text.contains("500 writes/s for 60 s (30000 writes)"),
            "{text}"
        );
        assert!(
            text.contains("p50 8.0 ms  p99 101.0 ms  max 250.0 ms"),
            "{text}"
        );
        assert!(text.ends_with("MISSED)"), "{text}");
        let fine = Latency { p99_ms: 40.0, ..l };
        assert!(latency_line(&fine, 500, 60).ends_with("met)"));
    }
}
