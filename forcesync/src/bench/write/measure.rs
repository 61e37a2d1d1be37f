//! Measurements behind `forcesync bench write` (the CLI prints them): throughput of one large
//! statement through the writer, the Postgres floor of the rows it synced, and commit →
//! Salesforce latency at a steady rate of single-row writes (the bare loop baselines are
//! separate processes: [`super::bare`]).

use std::time::{Duration, Instant};

use tokio::sync::watch;

use sync_runtime::engine::system::quote_ident;
use sync_runtime::engine::writer::{Target, WriteError, Writer, WriterConfig};

/// Throughput of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub records: u64,
    pub seconds: f64,
    /// Salesforce calls made (budgeted calls, retries included).
    pub calls: u64,
}

impl Throughput {
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.seconds.max(f64::EPSILON)
    }

    /// The fewest sObject Collections calls that can carry `records` (200 a call).
    pub fn minimum_calls(&self) -> u64 {
        self.records.div_ceil(200)
    }
}

/// Runs `insert_sql` (one statement inserting the rows, as an app would) and then the writer
/// until everything pending is in Salesforce; measures from the statement's commit.
pub async fn writer_throughput(
    database_url: &str,
    schema: &str,
    target: Target,
    config: WriterConfig,
    insert_sql: &str,
) -> Result<Throughput, WriteError> {
    let app = sync_runtime::engine::connect(database_url).await?;
    let records = app.execute(insert_sql, &[]).await?;
    let client = target.client.clone();
    let db = sync_runtime::engine::connect(database_url).await?;
    let claims = sync_runtime::engine::connect(database_url).await?;
    let settles = sync_runtime::engine::connect(database_url).await?;
    // The connections `forcesync run`'s writer opens for itself.
    let mut writer = Writer::new(db, schema, vec![target], config)
        .with_claim_connection(claims)
        .with_settle_connection(settles);
    let calls_before = client.call_counts().budgeted();
    let started = Instant::now();
    writer.drain(Duration::from_secs(3_600)).await?;
    let seconds = started.elapsed().as_secs_f64();
    let calls = client.call_counts().budgeted() - calls_before;
    Ok(Throughput {
        records,
        seconds,
        calls,
    })
}

/// Commit → Salesforce latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub writes: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Runs the writer (notification-driven, as in production) while `insert_sql` (one single-row
/// insert) is executed `rate` times a second for `duration`; latency is measured per entry from
/// its capture (`_trigger_log.created_at`) to the commit that wrote its outcome back
/// (`_trigger_log_archive.processed_at`), which follows Salesforce's answer.
pub async fn writer_latency(
    database_url: &str,
    schema: &str,
    target: Target,
    config: WriterConfig,
    insert_sql: &str,
    rate: u32,
    duration: Duration,
) -> Result<Latency, WriteError> {
    let db = sync_runtime::engine::connect(database_url).await?;
    let table = target.mapping.table;
    let writer = Writer::new(db, schema, vec![target], config);
    let (stop, shutdown) = watch::channel(false);
    let url = database_url.to_owned();
    let running = tokio::spawn(async move { writer.run(&url, shutdown).await });

    let app = sync_runtime::engine::connect(database_url).await?;
    let first: i32 = app
        .query_one(
            &format!(
                "SELECT coalesce(max(id), 0) FROM {}._trigger_log_archive",
                quote_ident(schema)
            ),
            &[],
        )
        .await?
        .get(0);
    let statement = app.prepare(insert_sql).await?;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(period);
    let started = Instant::now();
    while started.elapsed() < duration {
        ticker.tick().await;
        app.execute(&statement, &[]).await?;
    }
    // Let the last writes land.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending: i64 = app
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}._trigger_log WHERE table_name = $1",
                    quote_ident(schema)
                ),
                &[&table],
            )
            .await?
            .get(0);
        if pending == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    let _ = running.await;
    let row = app
        .query_one(
            &format!(
                "SELECT count(*),
                        percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                        percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
                        max(ms)
                 FROM (SELECT (extract(epoch FROM (processed_at - created_at)) * 1000)::float8 AS ms
                       FROM {}._trigger_log_archive WHERE id > $1 AND table_name = $2) l",
                quote_ident(schema)
            ),
            &[&first, &table],
        )
        .await?;
    let writes: i64 = row.get(0);
    let ms = |i: usize| -> f64 {
        row.try_get::<_, Option<f64>>(i)
            .ok()
            .flatten()
            .unwrap_or(0.0)
    };
    Ok(Latency {
        writes: u64::try_from(writes).unwrap_or(0),
        p50_ms: ms(1),
        p99_ms: ms(2),
        max_ms: ms(3),
    })
}

/// What Postgres alone needs for the writes every synced record requires, measured on the rows
/// a throughput run just synced: the `sfid` written back to each row and each entry moved to
/// the archive, one statement each over all of them, rolled back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostgresFloor {
    pub records: u64,
    pub write_back_seconds: f64,
    pub archive_seconds: f64,
}

impl PostgresFloor {
    /// The rate these two statements alone allow on one Postgres backend.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / (self.write_back_seconds + self.archive_seconds).max(f64::EPSILON)
    }
}

/// Measures [`PostgresFloor`] over the rows of `table` whose `name` starts with `prefix` (a
/// throughput run's) and their archived entries; changes nothing (both statements are rolled
/// back).
pub async fn postgres_floor(
    database_url: &str,
    schema: &str,
    table: &str,
    prefix: &str,
) -> Result<PostgresFloor, WriteError> {
    let mut db = sync_runtime::engine::connect(database_url).await?;
    let qualified = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let archive = format!("{}._trigger_log_archive", quote_ident(schema));
    // Statistics as of now: right after a bulk insert they still describe the empty table, and
    // the archive move's join then took 16 s for 20,000 rows (a floor that flattered the writer).
    db.batch_execute(&format!("ANALYZE {qualified}; ANALYZE {archive}"))
        .await?;
    let tx = db.transaction().await?;
    tx.batch_execute("SET LOCAL forcesync.engine = 'on'")
        .await?;
    // The same statement shape as the writer's write-back, with every sfid changed (so that
    // each row gets new index entries, as a first write-back does).
    let started = Instant::now();
    let records = tx
        .execute(
            &format!(
                "UPDATE {qualified} t SET sfid = u.s, _hc_lastop = 'INSERTED', _hc_err = NULL
                 FROM (SELECT id, 'zz' || substr(sfid, 3) AS s FROM {qualified}
                       WHERE name LIKE $1 || '%' AND sfid IS NOT NULL) u
                 WHERE t.id = u.id"
            ),
            &[&prefix],
        )
        .await?;
    let write_back_seconds = started.elapsed().as_secs_f64();
    // Moving an entry: delete it from a log and insert it into the archive; here the archived
    // entries of those rows are moved out of the archive and back in.
    let started = Instant::now();
    tx.execute(
        &format!(
            "WITH moved AS (
                 DELETE FROM {archive} a USING {qualified} t
                 WHERE a.table_name = $1 AND a.record_id = t.id AND t.name LIKE $2 || '%'
                 RETURNING a.*)
             INSERT INTO {archive} SELECT * FROM moved"
        ),
        &[&table, &prefix],
    )
    .await?;
    let archive_seconds = started.elapsed().as_secs_f64();
    tx.rollback().await?;
    Ok(PostgresFloor {
        records,
        write_back_seconds,
        archive_seconds,
    })
}
