//! `forcesync bench load`: the initial load of `--records` Accounts (the repository's mapping)
//! from the emulator into Postgres, against two baselines on the same rows measured in the same
//! run: a raw `COPY` into an indexed copy of the table without triggers, and the limit (a raw
//! `COPY` into an unindexed copy, then the same indexes built); the engine's peak memory; the
//! API calls the load used; and the Salesforce side alone: the same Bulk query job run by a bare
//! client in this process, its result pages downloaded and nothing else done with them.
//!
//! The engine runs as it does in production, out of this process: this binary re-executes
//! itself as `forcesync run --only Account` (the emulator and Postgres stay here), so the peak
//! RSS read from the child's `/proc/<pid>/status` (`VmHWM`) is the engine's alone. Above the
//! engine's Bulk threshold (50,000 records) the load goes through a Bulk API 2.0 query job, the
//! production path; below it through the REST query API (the output says which). The load time
//! is the engine's own figure (its `initial load done` log line: `COUNT()` to commit).

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use sync_runtime::cli::{migrate, runtime, settings, CliError, Context};
use sync_runtime::engine::apply::qualified;
use sync_runtime::engine::state::StateStore;
use sync_runtime::engine::system::quote_ident;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::org::{require_empty, BenchOrg, Calls};
use crate::demo;

/// The `bench load` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("load")
        .about(
            "Initial load of N Accounts vs a raw indexed COPY and the limit (unindexed COPY + index build) of the same rows; engine peak RSS; API calls",
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
    migrate::app_migrations(&url, ctx.app.migrations, false)?;
    let result = runtime()?.block_on(load(ctx, &url, records));
    drop(cluster);
    result
}

/// What the engine reported when its initial load committed.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadDone {
    pub rows: u64,
    pub seconds: f64,
    pub bulk: bool,
    /// Seconds to the first rows in hand, copying, then indexes and swap (when logged).
    pub phases: Option<[f64; 3]>,
    /// Of the first phase: the count, then the Bulk job until complete (when logged).
    pub waits: Option<[f64; 2]>,
    /// Seconds of the `ANALYZE` after the commit, outside the load's time (when logged).
    pub analyze_after: Option<f64>,
}

/// The engine's `initial load done` event from one `--log-format json` line (pure).
pub fn load_done(line: &str) -> Option<LoadDone> {
    let event: Value = serde_json::from_str(line).ok()?;
    let fields = &event["fields"];
    if fields["message"].as_str()? != "initial load done" {
        return None;
    }
    Some(LoadDone {
        rows: fields["rows"].as_u64()?,
        seconds: fields["seconds"].as_f64()?,
        bulk: fields["bulk"].as_bool()?,
        phases: (|| {
            Some([
                fields["first_rows_after"].as_f64()?,
                fields["copy_seconds"].as_f64()?,
                fields["indexes_and_swap_seconds"].as_f64()?,
            ])
        })(),
        waits: (|| {
            Some([
                fields["count_seconds"].as_f64()?,
                fields["bulk_job_seconds"].as_f64()?,
            ])
        })(),
        analyze_after: fields["analyze_after_seconds"].as_f64(),
    })
}

/// Peak resident set size in kB, from the text of `/proc/<pid>/status` (pure).
pub fn peak_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The figures of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub engine: LoadDone,
    pub raw_rows: u64,
    /// `COPY` into an indexed copy of the table without triggers.
    pub raw_seconds: f64,
    /// `COPY` into an unindexed copy, then the same indexes built.
    pub limit_seconds: f64,
    pub peak_rss_kb: u64,
    pub calls: Calls,
    /// The same Bulk query job by a bare client: created, waited for, every page downloaded.
    pub download_seconds: Option<f64>,
}

fn rate(rows: u64, seconds: f64) -> f64 {
    rows as f64 / seconds.max(1e-9)
}

/// The report (pure): one `name: value` figure a line, then the calls by endpoint.
pub fn report(f: &Figures) -> Vec<String> {
    let path = if f.engine.bulk {
        "Bulk API 2.0 query"
    } else {
        "REST query API"
    };
    let engine_rate = rate(f.engine.rows, f.engine.seconds);
    let raw_rate = rate(f.raw_rows, f.raw_seconds);
    let limit_rate = rate(f.raw_rows, f.limit_seconds);
    let mut lines = vec![
        format!(
            "forcesync load: {} rows in {:.2} s = {:.0} rows/s ({path})",
            f.engine.rows, f.engine.seconds, engine_rate
        ),
        format!(
            "raw indexed COPY: {} rows in {:.2} s = {:.0} rows/s (the same rows into an indexed copy of the table without triggers)",
            f.raw_rows, f.raw_seconds, raw_rate
        ),
        format!(
            "limit: {} rows in {:.2} s = {:.0} rows/s (the same rows by COPY into an unindexed copy, then the same indexes built)",
            f.raw_rows, f.limit_seconds, limit_rate
        ),
        format!(
            "load / raw indexed COPY: {:.2} (target >= 1.00)",
            engine_rate / raw_rate.max(1e-9)
        ),
        format!(
            "load / limit: {:.2} (stretch >= 0.77: the load within 1.3x the limit's time)",
            engine_rate / limit_rate.max(1e-9)
        ),
        format!(
            "engine peak RSS: {:.1} MB (target <= 150 MB; VmHWM of the `forcesync run` process)",
            f.peak_rss_kb as f64 / 1024.0
        ),
        format!(
            "API calls for the load: {} (DailyApiRequests counted by the org: the load and its catch-up poll)",
            f.calls.total
        ),
    ];
    if let Some([first, copy, after]) = f.engine.phases {
        let first_rows = match f.engine.waits {
            Some([count, job]) => format!(
                "the count {count:.2} s, the Bulk job complete {job:.2} s after it, its first page {:.2} s",
                (first - count - job).max(0.0)
            ),
            None => "the count, the Bulk job's wait, its first page".to_owned(),
        };
        let analyze = match f.engine.analyze_after {
            Some(analyze) if analyze > 0.0 => {
                format!("; then, after the commit, its ANALYZE {analyze:.2} s")
            }
            _ => String::new(),
        };
        lines.insert(
            1,
            format!(
                "  of which: first rows in hand after {first:.2} s ({first_rows}), copying {copy:.2} s, indexes and swap {after:.2} s{analyze}"
            ),
        );
    }
    if let Some(download) = f.download_seconds {
        // Neither side can be faster than itself; on this machine's cores they also share the CPU.
        let floor = download.max(f.limit_seconds);
        lines.push(format!(
            "Salesforce side alone: {download:.2} s (the same Bulk query job by a bare client: created, waited for, its {} rows' pages downloaded, not parsed or copied)",
            f.raw_rows
        ));
        lines.push(format!(
            "load / floor: {:.2} (the floor: the longer of the Salesforce side alone and the limit, {floor:.2} s)",
            floor / f.engine.seconds.max(1e-9)
        ));
    }
    lines.extend(f.calls.lines());
    lines
}

/// The Salesforce side of a load alone: the engine's Bulk query job for `mapping` (same query,
/// same page size) run by a bare client, every result page downloaded and dropped; its seconds.
async fn download(
    org: &BenchOrg,
    api_version: &str,
    mapping: &'static sync_runtime::adapter::MappingDescriptor,
) -> Result<f64, CliError> {
    use sync_runtime::salesforce::bulk::{PollPolicy, QueryOperation};
    let client = sync_runtime::salesforce::Client::new(org.salesforce(api_version))
        .map_err(|e| CliError::failure(format!("Salesforce client: {e}")))?;
    let (soql, page) = sync_runtime::engine::bulk_load_query(mapping).map_err(CliError::failure)?;
    let started = Instant::now();
    let mut job = client
        .bulk_query(
            &soql,
            QueryOperation::Query,
            Some(page),
            &PollPolicy::default(),
        )
        .await
        .map_err(|e| CliError::failure(format!("Bulk query: {e}")))?;
    let mut bytes = 0usize;
    while let Some(page) = job
        .next_page()
        .await
        .map_err(|e| CliError::failure(format!("Bulk result page: {e}")))?
    {
        bytes += page.csv.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = job.delete().await;
    if bytes == 0 {
        return Err(CliError::failure("the Bulk query job returned nothing"));
    }
    Ok(seconds)
}

async fn load(ctx: &Context, url: &str, records: u64) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    migrate::system_migrations(url, registry).await?;
    let mapping = ctx.mapping("Account")?;
    let table = qualified(mapping);
    let mut db = sync_runtime::engine::connect(url).await?;
    require_empty(&db, &table).await?;

    let org = BenchOrg::start(110_000).await?;
    let seed_ms = org.seed("Account", records).await?;
    println!(
        "Seeded {records} Accounts in the emulator in {:.1} s; the engine runs as a child process: forcesync run --only Account",
        seed_ms as f64 / 1000.0
    );
    org.reset_counters().await?;

    let outcome = engine_load(&org, url, registry.schema, records, &db).await;
    let (engine, peak_rss_kb, calls) = match outcome {
        Ok(v) => v,
        Err(e) => {
            org.stop().await;
            return Err(e);
        }
    };
    // After the engine, so that neither run warms the other's cache of the org's records.
    let download_seconds = match download(&org, registry.api_version, mapping).await {
        Ok(s) => Some(s),
        Err(e) => {
            org.stop().await;
            return Err(e);
        }
    };
    org.stop().await;

    let (raw_rows, raw_seconds, limit_seconds) =
        baselines(&mut db, mapping.schema, &table, mapping.fields).await?;
    for line in report(&Figures {
        engine,
        raw_rows,
        raw_seconds,
        limit_seconds,
        peak_rss_kb,
        calls,
        download_seconds,
    }) {
        println!("{line}");
    }
    Ok(())
}

/// Runs `forcesync run --only Account` against the org until its initial load and catch-up
/// poll are done; answers the engine's load figures, its peak RSS (kB) and the calls counted.
async fn engine_load(
    org: &BenchOrg,
    url: &str,
    schema: &'static str,
    records: u64,
    db: &tokio_postgres::Client,
) -> Result<(LoadDone, u64, Calls), CliError> {
    let exe = std::env::current_exe().map_err(|e| {
        CliError::failure(format!("cannot find this binary to run the engine: {e}"))
    })?;
    let mut command = tokio::process::Command::new(exe);
    command
        .args([
            "--log-format",
            "json",
            "run",
            "--only",
            "Account",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info,tokio_postgres=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in settings::NAMES {
        command.env_remove(name);
    }
    command.env("DATABASE_URL", url);
    for (name, value) in org.settings() {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .map_err(|e| CliError::failure(format!("cannot start the engine: {e}")))?;
    let pid = child.id().unwrap_or(0);
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut done = None;
    // A load that keeps failing is retried by the engine for ever: give up after a generous
    // time for the size (two minutes plus half a millisecond a record).
    let limit = Duration::from_secs(120) + Duration::from_micros(500 * records);
    let read = tokio::time::timeout(limit, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(d) = load_done(&line) {
                done = Some(d);
                break;
            }
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    })
    .await;
    let Some(done) = done else {
        let _ = child.start_kill();
        let status = child.wait().await.ok();
        let why = if read.is_err() {
            format!(
                "did not finish its initial load within {} s",
                limit.as_secs()
            )
        } else {
            format!("ended ({status:?}) before its initial load was done")
        };
        return Err(CliError::failure(format!(
            "the engine {why}; its last log lines:\n{}",
            tail.into_iter().collect::<Vec<_>>().join("\n")
        )));
    };
    // Keep draining the child's log so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    // The catch-up poll that follows the load belongs to it.
    let states = StateStore::new(schema);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let polled = states
            .get(db, "Account")
            .await?
            .is_some_and(|s| s.last_poll_at.is_some());
        if polled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let peak = peak_rss_kb(&status).unwrap_or(0);
    let calls = org.calls().await?;
    let _ = child.start_kill();
    let _ = child.wait().await;
    Ok((done, peak, calls))
}

/// Copies the loaded rows out, then `COPY`s them into two fresh copies of the table, neither
/// with triggers: one with every index of the table (the raw indexed `COPY`), one without, whose
/// indexes are built after the copy (the limit). Both are dropped. Answers rows and the seconds
/// of each.
async fn baselines(
    db: &mut tokio_postgres::Client,
    schema: &str,
    table: &str,
    fields: &[sync_runtime::adapter::FieldDescriptor],
) -> Result<(u64, f64, f64), CliError> {
    let columns: Vec<String> = fields.iter().map(|f| quote_ident(f.column)).collect();
    let columns = columns.join(", ");
    let out = db
        .copy_out(&format!("COPY {table} ({columns}) TO STDOUT"))
        .await?;
    futures_util::pin_mut!(out);
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut chunk = BytesMut::with_capacity(256 * 1024);
    while let Some(row) = out.next().await {
        chunk.extend_from_slice(&row?);
        if chunk.len() >= 256 * 1024 {
            chunks.push(chunk.split().freeze());
        }
    }
    if !chunk.is_empty() {
        chunks.push(chunk.freeze());
    }
    let schema = quote_ident(schema);
    let indexed = format!("{schema}._forcesync_bench_indexed");
    let limit = format!("{schema}._forcesync_bench_limit");
    let definitions: Vec<String> = db
        .query(
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = $1::text::regclass",
            &[&table],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut builds = Vec::new();
    for (i, definition) in definitions.iter().enumerate() {
        builds.push(
            index_on(definition, &format!("_forcesync_bench_limit_{i}"), &limit).ok_or_else(
                || CliError::failure(format!("cannot rebuild the index {definition} on a copy")),
            )?,
        );
    }
    db.batch_execute(&format!(
        "DROP TABLE IF EXISTS {indexed}, {limit};
         CREATE TABLE {indexed} (LIKE {table} INCLUDING ALL);
         CREATE TABLE {limit} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);"
    ))
    .await?;
    let measured = async {
        let (rows, raw) = copy_timed(db, &indexed, &columns, &chunks, &[]).await?;
        let (_, limit_seconds) = copy_timed(db, &limit, &columns, &chunks, &builds).await?;
        Ok::<_, CliError>((rows, raw, limit_seconds))
    }
    .await;
    db.batch_execute(&format!("DROP TABLE IF EXISTS {indexed}, {limit}"))
        .await?;
    measured
}

/// `COPY`s the chunks into `target`, then runs `after`, in one transaction; answers the rows and
/// the seconds it all took.
async fn copy_timed(
    db: &mut tokio_postgres::Client,
    target: &str,
    columns: &str,
    chunks: &[Bytes],
    after: &[String],
) -> Result<(u64, f64), CliError> {
    let started = Instant::now();
    let tx = db.transaction().await?;
    let sink = tx
        .copy_in::<_, Bytes>(&format!("COPY {target} ({columns}) FROM STDIN"))
        .await?;
    futures_util::pin_mut!(sink);
    for chunk in chunks {
        sink.send(chunk.clone()).await?;
    }
    let rows = sink.as_mut().finish().await?;
    for statement in after {
        tx.batch_execute(statement).await?;
    }
    tx.commit().await?;
    Ok((rows, started.elapsed().as_secs_f64()))
}

/// An index definition (`pg_get_indexdef`) rebuilt under `name` on `table` (pure).
pub fn index_on(definition: &str, name: &str, table: &str) -> Option<String> {
    let (head, _) = definition.split_once(" INDEX ")?;
    let (_, using) = definition.split_once(" USING ")?;
    Some(format!("{head} INDEX {name} ON {table} USING {using}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_load_event_is_read_from_its_json_log() {
        let line = r#"{"timestamp":"2026-11-30T12:00:00Z","level":"INFO","fields":{"message":"initial load done","mapping":"Account","rows":1883,"bulk":false,"seconds":0.42},"target":"sync_runtime::engine::stream"}"#;
        assert_eq!(
            load_done(line),
            Some(LoadDone {
                rows: 1883,
                seconds: 0.42,
                bulk: false,
                phases: None,
                waits: None,
                analyze_after: None,
            })
        );
        let line = r#"{"fields":{"message":"initial load done","rows":10,"bulk":true,"seconds":3.0,"first_rows_after":0.5,"copy_seconds":2.0,"indexes_and_swap_seconds":0.5,"count_seconds":0.1,"bulk_job_seconds":0.3,"analyze_after_seconds":0.4}}"#;
        assert_eq!(load_done(line).unwrap().phases, Some([0.5, 2.0, 0.5]));
        assert_eq!(load_done(line).unwrap().waits, Some([0.1, 0.3]));
        assert_eq!(load_done(line).unwrap().analyze_after, Some(0.4));
        assert_eq!(load_done(r#"{"fields":{"message":"leased"}}"#), None);
        assert_eq!(load_done("not json"), None);
    }

    #[test]
    fn peak_rss_is_vmhwm_in_kb() {
        let status =
            "Name:\tforcesync\nVmPeak:\t  900000 kB\nVmHWM:\t   84512 kB\nVmRSS:\t   80000 kB\n";
        assert_eq!(peak_rss_kb(status), Some(84512));
        assert_eq!(peak_rss_kb("Name:\tx\n"), None);
    }

    #[test]
    fn the_report_gives_rates_the_ratio_memory_and_calls() {
        let mut calls = Calls {
            total: 5,
            ..Calls::default()
        };
        calls.by_endpoint.insert(
            "GET /services/data/{version}/jobs/query/{id}/results".to_owned(),
            5,
        );
        let lines = report(&Figures {
            engine: LoadDone {
                rows: 1000,
                seconds: 2.0,
                bulk: true,
                phases: None,
                waits: None,
                analyze_after: None,
            },
            raw_rows: 1000,
            raw_seconds: 1.0,
            limit_seconds: 0.5,
            peak_rss_kb: 51200,
            calls,
            download_seconds: Some(1.25),
        });
        assert_eq!(
            lines[0],
            "forcesync load: 1000 rows in 2.00 s = 500 rows/s (Bulk API 2.0 query)"
        );
        assert!(lines[1].starts_with("raw indexed COPY: 1000 rows in 1.00 s = 1000 rows/s"));
        assert!(lines[2].starts_with("limit: 1000 rows in 0.50 s = 2000 rows/s"));
        assert_eq!(lines[3], "load / raw indexed COPY: 0.50 (target >= 1.00)");
        assert!(lines[4].starts_with("load / limit: 0.25 (stretch"));
        assert!(lines[5].starts_with("engine peak RSS: 50.0 MB"));
        assert!(lines[6].starts_with("API calls for the load: 5 (DailyApiRequests"));
        assert!(lines[7].starts_with("Salesforce side alone: 1.25 s (the same Bulk query job"));
        assert!(lines[8].starts_with("load / floor: 0.62 (the floor: the longer"));
        assert_eq!(lines.len(), 10);
    }

    #[test]
    fn an_index_is_rebuilt_under_another_name_on_a_copy_of_the_table() {
        assert_eq!(
            index_on(
                "CREATE UNIQUE INDEX hcu_idx_account_sfid ON salesforce.account USING btree (sfid)",
                "b0",
                "salesforce._forcesync_bench_limit"
            )
            .as_deref(),
            Some("CREATE UNIQUE INDEX b0 ON salesforce._forcesync_bench_limit USING btree (sfid)")
        );
        assert_eq!(index_on("nonsense", "b0", "t"), None);
    }
}
