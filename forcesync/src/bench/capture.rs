//! `forcesync bench capture`: what write capture costs an application's statements. An
//! `INSERT`, an `UPDATE` of one column and a `DELETE` of `--rows` rows of the Account table, each
//! against the same statement on an identical table without capture (no triggers at all: the
//! baseline is a plain table), measured in the same run on the same rows.
//!
//! Where a target (INSERT ≤ 2×, UPDATE ≤ 3×, DELETE ≤ 5×) is missed, the floor is printed beside
//! it: the `_trigger_log` rows the statement captured, inserted again on their own (the log's
//! own insert, which any capture writing them must pay), and the ratio the statement would have
//! if capture cost nothing else.
//!
//! The three statements run `--runs` times (default 3: the machine may be busy). Each run prints a
//! line of its three ratios as it ends; each time in the report is the shortest of its runs.
//!
//! Runs on a fresh database (`forcesync_bench_capture`) of the server `DATABASE_URL` names, or of
//! a throwaway cluster. Before the `UPDATE` and `DELETE` the rows are marked `SYNCED` (as rows
//! loaded from Salesforce are) and both tables vacuumed, outside the timings.

use std::time::Instant;

use sync_runtime::adapter::{MappingDescriptor, PgType};
use sync_runtime::cli::{migrate, runtime, CliError, Context};
use sync_runtime::engine::system::quote_ident;

use crate::demo;

/// The `bench capture` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("capture")
        .about(
            "An app's INSERT/UPDATE/DELETE of N Account rows with write capture vs without: seconds, ratio, floor",
        )
        .arg(
            clap::Arg::new("rows")
                .long("rows")
                .value_name("N")
                .default_value("100000")
                .value_parser(clap::value_parser!(u64).range(1..)),
        )
        .arg(
            clap::Arg::new("runs")
                .long("runs")
                .value_name("R")
                .help("Runs of the three statements; each time is the shortest of its runs")
                .default_value("3")
                .value_parser(clap::value_parser!(u64).range(1..)),
        )
}

/// Runs it.
pub fn run(ctx: &Context, sub: &clap::ArgMatches) -> Result<(), CliError> {
    let rows = *sub.get_one::<u64>("rows").expect("defaulted");
    let runs = *sub.get_one::<u64>("runs").expect("defaulted");
    let (cluster, url) = demo::database(ctx)?;
    let result = runtime()?.block_on(bench(ctx, &url, rows, runs));
    drop(cluster);
    result
}

/// One statement's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub statement: &'static str,
    /// The target ratio.
    pub target: f64,
    /// Seconds on the table without capture.
    pub plain: f64,
    /// Seconds on the captured table.
    pub captured: f64,
    /// Seconds to insert the captured log rows on their own.
    pub log_insert: f64,
}

impl Figures {
    /// The captured statement's time over the plain one's.
    pub fn ratio(&self) -> f64 {
        self.captured / self.plain.max(1e-9)
    }

    /// Each time the shorter of two runs'.
    pub fn best(&self, other: &Figures) -> Figures {
        Figures {
            plain: self.plain.min(other.plain),
            captured: self.captured.min(other.captured),
            log_insert: self.log_insert.min(other.log_insert),
            ..*self
        }
    }
}

/// The line printed as each run ends (pure): its three ratios, the machine's spread between runs
/// in plain sight before the best of them is reported.
pub fn run_line(run: u64, figures: &[Figures]) -> String {
    let ratios: Vec<String> = figures
        .iter()
        .map(|f| format!("{} {:.2}x", f.statement, f.ratio()))
        .collect();
    format!("run {run}: {} with capture vs without", ratios.join(", "))
}

/// The report (pure).
pub fn report(rows: u64, runs: u64, figures: &[Figures]) -> Vec<String> {
    let mut lines = vec![format!(
        "{rows} rows of salesforce.account, best of {runs} runs; baseline: the same statement on an identical table without capture triggers, same run"
    )];
    for f in figures {
        let ratio = f.ratio();
        let verdict = if ratio <= f.target { "met" } else { "missed" };
        lines.push(format!(
            "{:<6}: {:.3} s with capture vs {:.3} s without: {ratio:.2}x (target <= {}x: {verdict})",
            f.statement, f.captured, f.plain, f.target
        ));
        if ratio > f.target {
            let floor = (f.plain + f.log_insert) / f.plain.max(1e-9);
            lines.push(format!(
                "        floor: the {rows} log rows' own insert takes {:.3} s; statement + log insert: {floor:.2}x",
                f.log_insert
            ));
        }
    }
    lines
}

/// A fresh database `name` on the server of `url`; answers its URL.
async fn fresh_database(url: &str, name: &str) -> Result<String, CliError> {
    let admin = sync_runtime::engine::connect(url).await?;
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

/// The columns an inserted row fills and their values for row `g`: `sfid` and every text
/// column of the mapping (cut to its length).
fn insert_columns(mapping: &MappingDescriptor) -> (Vec<String>, Vec<String>) {
    let mut columns = vec!["sfid".to_owned()];
    let mut values = vec![format!(
        "'{}' || lpad(g::text, 15, '0')",
        mapping.key_prefix.unwrap_or("001")
    )];
    for field in mapping.fields.iter().filter(|f| !f.system) {
        let value = match field.pg_type {
            PgType::Varchar(n) => format!("left('{} ' || g, {n})", field.sf_name),
            PgType::Text => format!("'{} of bench row ' || g", field.sf_name),
            _ => continue,
        };
        columns.push(quote_ident(field.column));
        values.push(value);
    }
    (columns, values)
}

async fn timed(db: &tokio_postgres::Client, sql: &str) -> Result<f64, CliError> {
    // A checkpoint first, so that neither side pays for the other's dirty pages (superuser
    // or pg_checkpoint only; skipped otherwise).
    let _ = db.batch_execute("CHECKPOINT").await;
    let started = Instant::now();
    db.batch_execute(sql).await?;
    Ok(started.elapsed().as_secs_f64())
}

/// `VACUUM ANALYZE` (a statement of its own: it cannot run in a transaction block).
async fn vacuum(db: &tokio_postgres::Client, table: &str) -> Result<(), CliError> {
    db.batch_execute(&format!("VACUUM ANALYZE {table}")).await?;
    Ok(())
}

async fn bench(ctx: &Context, url: &str, rows: u64, runs: u64) -> Result<(), CliError> {
    let mapping = ctx.mapping("Account")?;
    let url = fresh_database(url, "forcesync_bench_capture").await?;
    let migrations = ctx.app.migrations;
    let u = url.clone();
    tokio::task::spawn_blocking(move || migrate::app_migrations(&u, migrations, false))
        .await
        .map_err(|e| CliError::failure(format!("migrations: {e}")))??;
    let db = sync_runtime::engine::connect(&url).await?;
    let schema = quote_ident(mapping.schema);
    let captured = format!("{schema}.{}", quote_ident(mapping.table));
    let plain = format!(
        "{schema}.{}",
        quote_ident(&format!("{}_nocapture", mapping.table))
    );
    let log = format!("{schema}._trigger_log");
    db.batch_execute(&format!(
        "CREATE TABLE {plain} (LIKE {captured} INCLUDING ALL);
         CREATE TEMP TABLE captured_log AS SELECT * FROM {log} WITH NO DATA;"
    ))
    .await?;
    let (columns, values) = insert_columns(mapping);
    let (columns, values) = (columns.join(", "), values.join(", "));
    let update_column = mapping
        .field("Name")
        .map_or("name", |f| f.column)
        .to_owned();
    let update_column = quote_ident(&update_column);
    println!(
        "{rows} rows of {captured}: INSERT of {} columns, UPDATE of {update_column}, DELETE",
        columns.split(", ").count()
    );

    let log_columns =
        "txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, \"values\"";
    let mut figures: Vec<Figures> = Vec::new();
    for run in 0..runs {
        let mut this_run: Vec<Figures> = Vec::new();
        db.batch_execute(&format!("TRUNCATE {captured}, {plain}"))
            .await?;
        for (statement, target) in [("INSERT", 2.0), ("UPDATE", 3.0), ("DELETE", 5.0)] {
            let sql = |table: &str| match statement {
                "INSERT" => format!(
                "INSERT INTO {table} ({columns}) SELECT {values} FROM generate_series(1, {rows}) g"
            ),
                "UPDATE" => {
                    format!("UPDATE {table} SET {update_column} = {update_column} || ' (updated)'")
                }
                _ => format!("DELETE FROM {table}"),
            };
            if statement != "INSERT" {
                // Rows as loaded from Salesforce; the same on both tables.
                db.batch_execute(&format!(
                    "BEGIN; SET LOCAL forcesync.engine = 'on';
                 UPDATE {captured} SET _hc_lastop = 'SYNCED', _hc_err = NULL;
                 UPDATE {plain} SET _hc_lastop = 'SYNCED', _hc_err = NULL;
                 COMMIT;"
                ))
                .await?;
                vacuum(&db, &captured).await?;
                vacuum(&db, &plain).await?;
            }
            db.batch_execute(&format!("TRUNCATE {log}")).await?;
            vacuum(&db, &log).await?;
            let plain_s = timed(&db, &sql(&plain)).await?;
            let captured_s = timed(&db, &sql(&captured)).await?;
            let logged: i64 = db
                .query_one(&format!("SELECT count(*) FROM {log}"), &[])
                .await?
                .get(0);
            if logged != rows as i64 {
                return Err(CliError::failure(format!(
                    "the captured {statement} logged {logged} rows, not {rows}"
                )));
            }
            // The floor: the same log rows inserted on their own into an empty log.
            db.batch_execute(&format!(
                "TRUNCATE captured_log; INSERT INTO captured_log SELECT * FROM {log};
             TRUNCATE {log};"
            ))
            .await?;
            vacuum(&db, &log).await?;
            let log_insert = timed(
            &db,
            &format!(
                "INSERT INTO {log} ({log_columns}) SELECT {log_columns} FROM captured_log ORDER BY id"
            ),
        )
        .await?;
            let measured = Figures {
                statement,
                target,
                plain: plain_s,
                captured: captured_s,
                log_insert,
            };
            this_run.push(measured);
        }
        println!("{}", run_line(run + 1, &this_run));
        figures = if run == 0 {
            this_run
        } else {
            figures
                .iter()
                .zip(&this_run)
                .map(|(a, b)| a.best(b))
                .collect()
        };
    }
    for line in report(rows, runs, &figures) {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_each_ratio_against_its_target_and_the_floor_where_missed() {
        let lines = report(
            1000,
            1,
            &[
                Figures {
                    statement: "INSERT",
                    target: 2.0,
                    plain: 0.5,
                    captured: 0.9,
                    log_insert: 0.3,
                },
                Figures {
                    statement: "DELETE",
                    target: 5.0,
                    plain: 0.1,
                    captured: 0.8,
                    log_insert: 0.6,
                },
            ],
        );
        assert_eq!(
            lines[1],
            "INSERT: 0.900 s with capture vs 0.500 s without: 1.80x (target <= 2x: met)"
        );
        assert_eq!(
            lines[2],
            "DELETE: 0.800 s with capture vs 0.100 s without: 8.00x (target <= 5x: missed)"
        );
        assert_eq!(
            lines[3],
            "        floor: the 1000 log rows' own insert takes 0.600 s; statement + log insert: 7.00x"
        );
    }

    #[test]
    fn each_run_prints_its_own_ratios() {
        let figures = |plain: f64, captured: f64, statement| Figures {
            statement,
            target: 2.0,
            plain,
            captured,
            log_insert: 0.3,
        };
        assert_eq!(
            run_line(
                2,
                &[
                    figures(0.5, 0.98, "INSERT"),
                    figures(0.4, 1.2, "UPDATE"),
                    figures(0.1, 1.6, "DELETE")
                ]
            ),
            "run 2: INSERT 1.96x, UPDATE 3.00x, DELETE 16.00x with capture vs without"
        );
    }
}
