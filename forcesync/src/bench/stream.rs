//! `forcesync bench stream`: change latency from the Salesforce commit to the Postgres commit
//! through Change Data Capture, at `--rate` changes a second sustained for `--seconds`; then the
//! API calls of one idle emulated hour with streaming healthy. Over the transport `--transport`
//! names (`pubsub`, `cometd`), or over both in one run (each figure per transport, then the
//! Pub/Sub / CometD ratios; same org, same rows, one engine at a time).
//!
//! **Latency.** A Salesforce user (not forcesync: its changes are not the engine's own) updates
//! Accounts' `Phone` through sObject Collections, each change a unique value. A bench-only
//! trigger on the synced table sends `pg_notify` with the value and the row's `SystemModstamp`
//! (Salesforce's commit time of the change, ms); Postgres delivers a notification only when the
//! engine's transaction commits, so the time this process receives it, less the
//! `SystemModstamp`, is Salesforce commit → Postgres commit (same machine, same clock). The
//! trigger is dropped at the end.
//!
//! **Idle hour.** One hour compressed into `--idle-seconds` of real time (default 360: ten times
//! faster): the engine runs with the mapping's `poll_seconds` (drift repair), its formula
//! refresh and its allocation watch (`/limits`) scaled by that factor, and the emulator holds CometD connects for its 110 s scaled
//! too. The emulator's clock is not advanced: the engine's clock would not follow, and the two
//! would disagree by the hour (a skew production never has). The engine's one wall-clock rule
//! left unscaled, at most one `/deleted` check a minute, holds as long as the scaled drift repair
//! stays at least a minute apart (`--idle-seconds` 360 or more). Calls are counted by the
//! emulator from when the restarted engine is streaming.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sync_runtime::adapter::{MappingDescriptor, Registry};
use sync_runtime::cli::run::Loops;
use sync_runtime::cli::{migrate, runtime, CliError, Context};
use sync_runtime::engine::allocations::EVERY as LIMITS_EVERY;
use sync_runtime::engine::apply::qualified;
use sync_runtime::engine::hub::Transport;
use sync_runtime::engine::state::{StateStore, SyncState};
use sync_runtime::engine::system::quote_ident;
use sync_runtime::engine::{Engine, EngineConfig};
use tokio::sync::{mpsc, watch};

use super::org::{require_empty, BenchOrg, Calls};
use super::page_open::PageOpen;
use crate::demo;
use crate::sf_user::SfUser;

/// Accounts seeded; the changes cycle through the ones the mapping's filter selects.
const SEEDED: u64 = 2_000;
/// Most records in one sObject Collections call.
const COLLECTION: usize = 200;
/// How long a CometD connect is held by Salesforce when no event is pending.
const CONNECT_HOLD: Duration = Duration::from_secs(110);
/// The notification channel of the bench trigger.
const CHANNEL: &str = "forcesync_bench";

/// The `bench stream` subcommand's definition.
pub fn command() -> clap::Command {
    clap::Command::new("stream")
        .about("Change latency Salesforce commit → Postgres commit through CDC at a sustained rate; API calls of an idle hour")
        .arg(
            clap::Arg::new("seconds")
                .long("seconds")
                .value_name("S")
                .default_value("60")
                .value_parser(clap::value_parser!(u64).range(1..)),
        )
        .arg(
            clap::Arg::new("rate")
                .long("rate")
                .value_name("R")
                .help("Changes a second")
                .default_value("500")
                .value_parser(clap::value_parser!(u64).range(1..=10_000)),
        )
        .arg(
            clap::Arg::new("max-rate-seconds")
                .long("max-rate-seconds")
                .value_name("S")
                .help("After the run at --rate, seconds at each higher rate of the ladder (1,000 to 12,500 changes/s) to find the highest sustained rate at p99 <= 100 ms (0 skips it)")
                .default_value("10")
                .value_parser(clap::value_parser!(u64).range(0..=600)),
        )
        .arg(
            clap::Arg::new("burst")
                .long("burst")
                .value_name("N")
                .help("Accounts created at once (sObject Collections calls, all in flight together); prints the seconds from the last call until all are in Postgres (0 skips it)")
                .default_value("0")
                .value_parser(clap::value_parser!(u64).range(0..=100_000)),
        )
        .arg(
            clap::Arg::new("idle-seconds")
                .long("idle-seconds")
                .value_name("S")
                .help("Real seconds one idle hour runs in, timers scaled (0 skips it; below 360 the engine checks /deleted less often than in a real hour)")
                .default_value("360")
                .value_parser(clap::value_parser!(u64).range(0..=3600)),
        )
        .arg(
            clap::Arg::new("page-open")
                .long("page-open")
                .help("After the run at --rate, the same run again with the status page open (the overview and the mapping's page, refreshed every 2 s as a browser does); prints both and the ratio")
                .action(clap::ArgAction::SetTrue),
        )
        .arg(
            clap::Arg::new("transport")
                .long("transport")
                .value_name("T")
                .help("The streaming transport measured: pubsub (the Pub/Sub API) or cometd; both when omitted, each figure per transport and the Pub/Sub / CometD ratio")
                .value_parser(["pubsub", "cometd"]),
        )
}

/// Runs it.
pub fn run(ctx: &Context, sub: &clap::ArgMatches) -> Result<(), CliError> {
    let seconds = *sub.get_one::<u64>("seconds").expect("defaulted");
    let rate = *sub.get_one::<u64>("rate").expect("defaulted");
    let idle = *sub.get_one::<u64>("idle-seconds").expect("defaulted");
    let plan = Plan {
        seconds,
        rate,
        max_rate_seconds: *sub.get_one::<u64>("max-rate-seconds").expect("defaulted"),
        burst: *sub.get_one::<u64>("burst").expect("defaulted"),
        idle_seconds: idle,
        page_open: sub.get_flag("page-open"),
        transports: match sub.get_one::<String>("transport") {
            Some(name) => vec![Transport::from_name(name).expect("checked by clap")],
            None => vec![Transport::PubSub, Transport::Cometd],
        },
    };
    let (cluster, url) = demo::database(ctx)?;
    migrate::app_migrations(&url, ctx.app.migrations, false)?;
    let result = runtime()?.block_on(stream(ctx, &url, &plan));
    drop(cluster);
    result
}

/// What one `bench stream` run measures.
struct Plan {
    seconds: u64,
    rate: u64,
    /// Seconds at each rate of [`LADDER`] above `rate` (0: no ladder).
    max_rate_seconds: u64,
    /// Accounts created at once (0: no burst).
    burst: u64,
    idle_seconds: u64,
    /// The run at `rate` again with the status page open.
    page_open: bool,
    /// Measured one after the other, each with an engine of its own.
    transports: Vec<Transport>,
}

/// One transport's figures, for the ratios.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Figures {
    pub p50_ms: Option<i64>,
    pub p99_ms: Option<i64>,
    pub max_ms: Option<i64>,
    /// Highest sustained rate at p99 <= 100 ms, changes/s (`None`: not measured or none held).
    pub highest_rate: Option<f64>,
    /// Seconds from the burst's last call until all its records were in Postgres.
    pub burst_seconds: Option<f64>,
}

/// The Pub/Sub / CometD ratio of each figure both runs have (pure). Latencies and the burst:
/// below 1 means Pub/Sub is faster; the sustained rate: above 1 means Pub/Sub holds more.
pub fn ratio_lines(pubsub: &Figures, cometd: &Figures) -> Vec<String> {
    fn ratio(a: Option<f64>, b: Option<f64>) -> String {
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".to_owned(),
        }
    }
    let ms = |v: Option<i64>| v.map(|v| v.max(1) as f64);
    vec![
        format!(
            "Pub/Sub / CometD: latency p50 {} (pubsub {} ms, cometd {} ms), p99 {} ({} ms, {} ms), max {} ({} ms, {} ms)",
            ratio(ms(pubsub.p50_ms), ms(cometd.p50_ms)),
            show(pubsub.p50_ms),
            show(cometd.p50_ms),
            ratio(ms(pubsub.p99_ms), ms(cometd.p99_ms)),
            show(pubsub.p99_ms),
            show(cometd.p99_ms),
            ratio(ms(pubsub.max_ms), ms(cometd.max_ms)),
            show(pubsub.max_ms),
            show(cometd.max_ms),
        ),
        format!(
            "Pub/Sub / CometD: highest sustained rate {} ({} vs {} changes/s), burst {} ({} s vs {} s)",
            ratio(pubsub.highest_rate, cometd.highest_rate),
            pubsub.highest_rate.map_or("-".to_owned(), |r| format!("{r:.0}")),
            cometd.highest_rate.map_or("-".to_owned(), |r| format!("{r:.0}")),
            ratio(pubsub.burst_seconds, cometd.burst_seconds),
            pubsub.burst_seconds.map_or("-".to_owned(), |s| format!("{s:.2}")),
            cometd.burst_seconds.map_or("-".to_owned(), |s| format!("{s:.2}")),
        ),
        "ratios: latency and burst below 1 = Pub/Sub faster; sustained rate above 1 = Pub/Sub holds more (target: Pub/Sub no worse on each)"
            .to_owned(),
    ]
}

/// Latency with the status page open against the run just before without it (pure): unchanged
/// when p99 is within 10% or 5 ms of it, whichever is more.
pub fn page_open_line(without: &Figures, with: &Figures, committed: usize, served: u64) -> String {
    let verdict = match (without.p99_ms, with.p99_ms) {
        (Some(a), Some(b)) => {
            let ratio = b as f64 / (a.max(1)) as f64;
            let same = b <= a + (a / 10).max(5);
            format!(
                "p99 {ratio:.2}x without it: {}",
                if same { "unchanged" } else { "slower" }
            )
        }
        _ => "no p99 to compare".to_owned(),
    };
    format!(
        "with the status page open ({served} pages served, refreshed every {} s): {committed} committed, p50 {} ms, p99 {} ms, max {} ms; {verdict}",
        super::page_open::REFRESH.as_secs(),
        show(with.p50_ms),
        show(with.p99_ms),
        show(with.max_ms),
    )
}

fn show(v: Option<i64>) -> String {
    v.map_or("-".to_owned(), |v| v.to_string())
}

/// The rates tried, in order, for the highest sustained rate at p99 <= [`P99_TARGET_MS`]. Finer
/// near the top, where the two transports part (with one step from 7,500 to 10,000, a transport
/// holding 8,500 read as 7,500, and the Pub/Sub / CometD ratio as 0.75), and past 10,000 so a
/// transport holding 10,000 is not read as capped there.
pub const LADDER: [u64; 9] = [
    1_000, 2_000, 3_000, 5_000, 6_000, 7_500, 8_500, 10_000, 12_500,
];
/// The latency target of a sustained rate.
pub const P99_TARGET_MS: i64 = 100;

/// Whether a step of the ladder held (pure): every change committed in Postgres, p99 within
/// the target, and the changes really sent at (nearly) the asked rate.
pub fn step_held(asked: u64, sent: u64, committed: u64, seconds: f64, p99_ms: Option<i64>) -> bool {
    let achieved = sent as f64 / seconds.max(1e-9);
    committed >= sent
        && p99_ms.is_some_and(|p| p <= P99_TARGET_MS)
        && achieved >= asked as f64 * 0.95
}

/// The value at percentile `p` (0–100) of sorted values, nearest rank (pure).
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The latency report (pure).
pub fn latency_lines(
    sent: u64,
    failed: u64,
    seconds: f64,
    rate: u64,
    latencies_ms: &mut [i64],
) -> Vec<String> {
    latencies_ms.sort_unstable();
    let at = |p| percentile(latencies_ms, p).map_or("-".to_owned(), |v| v.to_string());
    vec![
        format!(
            "changes: {sent} sent in {seconds:.1} s = {:.0}/s (asked {rate}/s), {failed} refused, {} committed in Postgres",
            sent as f64 / seconds.max(1e-9),
            latencies_ms.len()
        ),
        format!(
            "latency Salesforce commit -> Postgres commit: p50 {} ms, p99 {} ms, max {} ms (target p99 <= 100 ms)",
            at(50.0),
            at(99.0),
            latencies_ms.last().map_or("-".to_owned(), |v| v.to_string())
        ),
        "method: a Salesforce user updates Account.Phone by sObject Collections; a bench trigger on the synced table \
         sends pg_notify(value, SystemModstamp); Postgres delivers it when the engine's transaction commits; \
         latency = time received - SystemModstamp (one machine, one clock)"
            .to_owned(),
    ]
}

/// The endpoints an idle streaming engine calls: a drift repair's keyset poll (`queryAll`) and
/// deleted-records check (`/deleted`), and the allocation watch (`/limits`).
const IDLE_CALLS: [&str; 3] = ["/queryAll", "/deleted", "/limits"];

/// The idle-hour report (pure).
pub fn idle_lines(calls: &Calls, idle_seconds: u64, poll_seconds: u32) -> Vec<String> {
    let repairs = 3600 / u64::from(poll_seconds.max(1));
    let watches = 1 + 3600 / LIMITS_EVERY.as_secs();
    let mut lines = vec![
        format!(
            "idle hour: {} API calls (DailyApiRequests; CometD connects, held {} s each, are not API calls), \
             {} of them outside the drift repair and the allocation watch; target: the drift repairs, {repairs} \
             (every {poll_seconds} s: queryAll and /deleted), and the allocation watch, {watches} (/limits at start \
             and every {} s)",
            calls.total,
            CONNECT_HOLD.as_secs(),
            calls.outside(&IDLE_CALLS),
            LIMITS_EVERY.as_secs(),
        ),
        format!(
            "method: one hour run in {idle_seconds} s right after the changes above: engine timers (drift repair, \
             formula refresh, allocation watch) and the CometD hold scaled by {:.3}; calls counted by the emulator once the \
             restarted engine streams (the first repair re-reads the look-back window of those changes)",
            idle_seconds as f64 / 3600.0
        ),
    ];
    lines.extend(calls.lines());
    lines
}

async fn stream(ctx: &Context, url: &str, plan: &Plan) -> Result<(), CliError> {
    let idle_seconds = plan.idle_seconds;
    let registry = ctx.app.registry;
    migrate::system_migrations(url, registry).await?;
    let mapping = ctx.mapping("Account")?;
    let table = qualified(mapping);
    let db = sync_runtime::engine::connect(url).await?;
    require_empty(&db, &table).await?;
    let scale = if idle_seconds > 0 {
        idle_seconds as f64 / 3600.0
    } else {
        1.0
    };
    let hold_ms = ((CONNECT_HOLD.as_millis() as f64 * scale) as u64).max(200);
    let org = BenchOrg::start(hold_ms).await?;
    let outcome = async {
        org.seed("Account", SEEDED).await?;
        let ladder: u64 = LADDER.iter().map(|r| r * plan.max_rate_seconds).sum();
        let events = plan.rate * plan.seconds * 2 + ladder * 2 + plan.burst * 2 + 100_000;
        org.set_limits(json!({
            "DailyDeliveredPlatformEvents": events,
            "DailyStreamingApiEvents": events,
        }))
        .await?;
        install_trigger(&db, registry.schema, &table).await?;
        let result = measure(ctx, &org, url, mapping, plan, scale).await;
        remove_trigger(&db, registry.schema, &table).await?;
        result
    }
    .await;
    org.stop().await;
    outcome
}

async fn measure(
    ctx: &Context,
    org: &BenchOrg,
    url: &str,
    mapping: &'static MappingDescriptor,
    plan: &Plan,
    scale: f64,
) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    let db = sync_runtime::engine::connect(url).await?;
    let (_listener, mut notifications) = listen(url).await?;
    let user = SfUser::login(org.base_url(), &org.config, registry.api_version).await?;
    let mut next_seq = 0;
    let mut figures = Vec::new();
    for &transport in &plan.transports {
        println!();
        println!("== over {} ==", transport_label(transport));
        let found = measure_over(
            ctx,
            org,
            url,
            mapping,
            plan,
            transport,
            &db,
            &user,
            &mut next_seq,
            &mut notifications,
        )
        .await?;
        figures.push((transport, found));
    }
    let of = |t: Transport| figures.iter().find(|(x, _)| *x == t).map(|(_, f)| *f);
    if let (Some(pubsub), Some(cometd)) = (of(Transport::PubSub), of(Transport::Cometd)) {
        println!();
        for line in ratio_lines(&pubsub, &cometd) {
            println!("{line}");
        }
    }
    if plan.idle_seconds > 0 {
        for &transport in &plan.transports {
            println!();
            println!("== idle hour over {} ==", transport_label(transport));
            idle_hour(ctx, org, url, mapping, plan.idle_seconds, scale, transport).await?;
        }
    }
    Ok(())
}

fn transport_label(transport: Transport) -> &'static str {
    match transport {
        Transport::PubSub => "the Pub/Sub API (--transport pubsub)",
        Transport::Cometd => "CometD (--transport cometd)",
    }
}

/// The latency at `--rate`, the ladder and the burst over one transport, with an engine of its
/// own (a replay position stored by the other transport makes it catch up by polling first).
#[allow(clippy::too_many_arguments)]
async fn measure_over(
    ctx: &Context,
    org: &BenchOrg,
    url: &str,
    mapping: &'static MappingDescriptor,
    plan: &Plan,
    transport: Transport,
    db: &tokio_postgres::Client,
    user: &SfUser,
    next_seq: &mut u64,
    notifications: &mut mpsc::UnboundedReceiver<(String, i64)>,
) -> Result<Figures, CliError> {
    let (seconds, rate) = (plan.seconds, plan.rate);
    let registry = ctx.app.registry;
    let state = format!("{}._forcesync_mapping_state", quote_ident(registry.schema));
    db.execute(
        &format!("UPDATE {state} SET streaming_transport = NULL WHERE mapping = 'Account'"),
        &[],
    )
    .await?;
    let engine = start_engine(registry, url, org, None, transport).await?;
    wait_streaming(db, registry.schema, transport).await?;
    let sfids: Vec<String> = db
        .query(
            &format!(
                "SELECT sfid FROM {} WHERE sfid IS NOT NULL ORDER BY sfid",
                qualified(mapping)
            ),
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if sfids.len() < COLLECTION {
        return Err(CliError::failure(format!(
            "only {} Accounts were loaded; the bench needs at least {COLLECTION}",
            sfids.len()
        )));
    }
    println!(
        "Loaded {} Accounts; sending {rate} changes/s for {seconds} s through streaming (CDC, {})…",
        sfids.len(),
        transport.name()
    );

    let mut run = sustained(user, &sfids, next_seq, rate, seconds, notifications).await?;
    for line in latency_lines(run.sent, run.failed, run.seconds, rate, &mut run.latencies) {
        println!("{line}");
    }
    let mut figures = Figures {
        p50_ms: percentile(&run.latencies, 50.0),
        p99_ms: percentile(&run.latencies, 99.0),
        max_ms: run.latencies.last().copied(),
        ..Figures::default()
    };
    if plan.page_open {
        let page = PageOpen::start(url, registry, mapping.object).await?;
        let mut open = sustained(user, &sfids, next_seq, rate, seconds, notifications).await?;
        let served = page.stop().await?;
        open.latencies.sort_unstable();
        let with = Figures {
            p50_ms: percentile(&open.latencies, 50.0),
            p99_ms: percentile(&open.latencies, 99.0),
            max_ms: open.latencies.last().copied(),
            ..Figures::default()
        };
        println!(
            "{}",
            page_open_line(&figures, &with, open.latencies.len(), served)
        );
    }

    if plan.max_rate_seconds > 0 {
        let mut highest = step_held(
            rate,
            run.sent - run.failed,
            run.latencies.len() as u64,
            run.seconds,
            percentile(&run.latencies, 99.0),
        )
        .then_some(run.sent as f64 / run.seconds.max(1e-9));
        for step in LADDER.into_iter().filter(|r| *r > rate) {
            let mut run = sustained(
                user,
                &sfids,
                next_seq,
                step,
                plan.max_rate_seconds,
                notifications,
            )
            .await?;
            run.latencies.sort_unstable();
            let p99 = percentile(&run.latencies, 99.0);
            let achieved = run.sent as f64 / run.seconds.max(1e-9);
            println!(
                "  ladder {step}/s for {} s: sent {achieved:.0}/s, {} of {} committed, p99 {} ms",
                plan.max_rate_seconds,
                run.latencies.len(),
                run.sent - run.failed,
                p99.map_or("-".to_owned(), |v| v.to_string())
            );
            let committed = run.latencies.len() as u64;
            if !step_held(step, run.sent - run.failed, committed, run.seconds, p99) {
                break;
            }
            highest = Some(achieved);
        }
        println!(
            "highest sustained rate at p99 <= {P99_TARGET_MS} ms: {} (ladder steps of {} s)",
            highest.map_or("none".to_owned(), |r| format!("{r:.0} changes/s")),
            plan.max_rate_seconds
        );
        figures.highest_rate = highest;
    }
    if plan.burst > 0 {
        figures.burst_seconds = Some(burst(user, db, mapping, plan.burst, transport).await?);
    }
    engine.stop().await;
    Ok(figures)
}

/// One sustained run's figures.
struct Run {
    sent: u64,
    failed: u64,
    /// Seconds the sending took.
    seconds: f64,
    /// Salesforce commit -> Postgres commit of each change committed, ms.
    latencies: Vec<i64>,
}

/// Sends `rate` changes a second for `seconds` (the calls due at each 10 ms tick in flight
/// together), then waits up to 30 s for them to be committed in Postgres. Changes are numbered
/// from `next_seq` on, which moves past them.
async fn sustained(
    user: &SfUser,
    sfids: &[String],
    next_seq: &mut u64,
    rate: u64,
    seconds: u64,
    notifications: &mut mpsc::UnboundedReceiver<(String, i64)>,
) -> Result<Run, CliError> {
    let first = *next_seq;
    let total = rate * seconds;
    let started = Instant::now();
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latencies: HashMap<u64, i64> = HashMap::new();
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        let mut calls = Vec::new();
        while sent < due {
            let n = (due - sent).min(COLLECTION as u64);
            let records: Vec<Value> = (first + sent..first + sent + n)
                .map(|seq| {
                    json!({
                        "attributes": {"type": "Account"},
                        "id": sfids[(seq as usize) % sfids.len()],
                        "Phone": format!("bench {seq}"),
                    })
                })
                .collect();
            calls.push(user.update_many(records));
            sent += n;
        }
        for refused in futures_util::future::join_all(calls).await {
            failed += refused?;
        }
        drain(notifications, &mut latencies);
    }
    let sending = started.elapsed().as_secs_f64();
    let waited = Instant::now();
    let mine = |latencies: &HashMap<u64, i64>| {
        latencies
            .keys()
            .filter(|seq| (first..first + total).contains(*seq))
            .count() as u64
    };
    while mine(&latencies) < sent - failed && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        drain(notifications, &mut latencies);
    }
    *next_seq = first + total;
    Ok(Run {
        sent,
        failed,
        seconds: sending,
        latencies: latencies
            .into_iter()
            .filter(|(seq, _)| (first..first + total).contains(seq))
            .map(|(_, ms)| ms)
            .collect(),
    })
}

/// Creates `n` Accounts at once (every sObject Collections call in flight together) and prints
/// the seconds from the last call's answer until all are in Postgres.
async fn burst(
    user: &SfUser,
    db: &tokio_postgres::Client,
    mapping: &'static MappingDescriptor,
    n: u64,
    transport: Transport,
) -> Result<f64, CliError> {
    let tag = format!("burst {} {} ", std::process::id(), transport.name());
    let calls: Vec<_> = (0..n)
        .collect::<Vec<_>>()
        .chunks(COLLECTION)
        .map(|chunk| {
            let records: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    json!({
                        "attributes": {"type": "Account"},
                        "Name": format!("{tag}{i}"),
                        "Type": "Customer - Direct",
                    })
                })
                .collect();
            user.create_many(records)
        })
        .collect();
    let count = calls.len();
    let started = Instant::now();
    let mut refused = 0;
    for result in futures_util::future::join_all(calls).await {
        refused += result?;
    }
    let last_call = Instant::now();
    let expected = (n - refused) as i64;
    let sql = format!(
        "SELECT count(*) FROM {} WHERE name LIKE $1",
        qualified(mapping)
    );
    let pattern = format!("{tag}%");
    let mut arrived: i64 = 0;
    while arrived < expected && last_call.elapsed() < Duration::from_secs(120) {
        arrived = db.query_one(&sql, &[&pattern]).await?.get(0);
        if arrived < expected {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let after = last_call.elapsed().as_secs_f64();
    println!(
        "burst: {n} Accounts created in {count} calls in {:.2} s ({refused} refused); {arrived} in Postgres {after:.2} s after the last call (target <= 2 s)",
        (last_call - started).as_secs_f64()
    );
    if arrived < expected {
        return Err(CliError::failure(format!(
            "burst: only {arrived} of {expected} Accounts reached Postgres within 120 s"
        )));
    }
    Ok(after)
}

/// Moves received notifications (`bench <seq> <stamp ms>`, received at ms) into `latencies`;
/// a change counts once (its first commit).
fn drain(
    notifications: &mut mpsc::UnboundedReceiver<(String, i64)>,
    latencies: &mut HashMap<u64, i64>,
) {
    while let Ok((payload, received)) = notifications.try_recv() {
        let mut parts = payload.split(' ');
        let (Some("bench"), Some(seq), Some(stamp)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if let (Ok(seq), Ok(stamp)) = (seq.parse::<u64>(), stamp.parse::<i64>()) {
            latencies.entry(seq).or_insert(received - stamp);
        }
    }
}

async fn idle_hour(
    ctx: &Context,
    org: &BenchOrg,
    url: &str,
    mapping: &'static MappingDescriptor,
    idle_seconds: u64,
    scale: f64,
    transport: Transport,
) -> Result<(), CliError> {
    let registry = ctx.app.registry;
    let poll_seconds = mapping.sync.poll_seconds;
    let mut scaled = *mapping;
    scaled.sync.poll_seconds = ((f64::from(poll_seconds) * scale).round() as u32).max(1);
    let scaled: &'static MappingDescriptor = Box::leak(Box::new(scaled));
    let scaled_registry: &'static Registry = Box::leak(Box::new(Registry {
        api_version: registry.api_version,
        schema: registry.schema,
        streaming_transport: registry.streaming_transport,
        mappings: Box::leak(vec![scaled].into_boxed_slice()),
    }));
    // Count from when the restarted engine is streaming again (its start-up is not idle time):
    // it clears the state's message once subscribed.
    let db = sync_runtime::engine::connect(url).await?;
    let state = format!("{}._forcesync_mapping_state", quote_ident(registry.schema));
    db.execute(
        &format!("UPDATE {state} SET message = 'bench: restarting' WHERE mapping = 'Account'"),
        &[],
    )
    .await?;
    let engine = start_engine(scaled_registry, url, org, Some(scale), transport).await?;
    let waited = Instant::now();
    loop {
        let streaming = db
            .query_opt(
                &format!(
                    "SELECT 1 FROM {state} WHERE mapping = 'Account' AND state = $1 AND message IS NULL"
                ),
                &[&SyncState::Streaming.as_str()],
            )
            .await?
            .is_some();
        if streaming {
            break;
        }
        if waited.elapsed() > Duration::from_secs(30) {
            engine.stop().await;
            return Err(CliError::failure(
                "the restarted engine was not streaming within 30 s",
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    org.reset_counters().await?;
    tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
    let calls = org.calls().await?;
    engine.stop().await;
    for line in idle_lines(&calls, idle_seconds, poll_seconds) {
        println!("{line}");
    }
    Ok(())
}

/// An engine running in this process.
struct Running {
    stop: watch::Sender<bool>,
    loops: Loops,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.loops.finish(Duration::from_secs(20)).await;
    }
}

async fn start_engine(
    registry: &'static Registry,
    url: &str,
    org: &BenchOrg,
    scale: Option<f64>,
    transport: Transport,
) -> Result<Running, CliError> {
    let mut config = EngineConfig::new(url.to_owned());
    config.only = vec!["Account".to_owned()];
    config.streaming_transport = Some(transport);
    config.lease_retry = Duration::from_millis(200);
    if let Some(scale) = scale {
        config.formula_refresh = Some(Duration::from_secs_f64((3600.0 * scale).max(1.0)));
        config.limits_every =
            Duration::from_secs_f64((LIMITS_EVERY.as_secs_f64() * scale).max(1.0));
    }
    let engine = Arc::new(Engine::new(
        registry,
        config,
        org.salesforce(registry.api_version),
    )?);
    let (stop, shutdown) = watch::channel(false);
    let loops = Loops::start(engine, shutdown).await?;
    Ok(Running { stop, loops })
}

/// Waits until the Account mapping is loaded, its catch-up poll done and its channel subscribed
/// over `transport`.
async fn wait_streaming(
    db: &tokio_postgres::Client,
    schema: &'static str,
    transport: Transport,
) -> Result<(), CliError> {
    let states = StateStore::new(schema);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(s) = states.get(db, "Account").await? {
            if s.is_loaded()
                && s.last_poll_at.is_some()
                && s.state == SyncState::Streaming
                && s.streaming_transport.as_deref() == Some(transport.name())
            {
                return Ok(());
            }
            if let Some(error) = s.last_error.filter(|_| s.state == SyncState::Error) {
                return Err(CliError::failure(format!("the engine failed: {error}")));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(CliError::failure(format!(
        "the engine did not load Account and stream it over {} within 120 s (see `forcesync status`)",
        transport.name()
    )))
}

fn trigger_names(schema: &str) -> (String, String) {
    (
        quote_ident("_forcesync_bench_notify"),
        format!(
            "{}.{}",
            quote_ident(schema),
            quote_ident("_forcesync_bench_notify")
        ),
    )
}

async fn install_trigger(
    db: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Result<(), CliError> {
    let (trigger, function) = trigger_names(schema);
    db.batch_execute(&format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.phone LIKE 'bench %' THEN
             PERFORM pg_notify('{CHANNEL}', NEW.phone || ' ' || (extract(epoch FROM NEW.systemmodstamp) * 1000)::bigint);
           END IF;
           RETURN NULL;
         END $$;
         DROP TRIGGER IF EXISTS {trigger} ON {table};
         CREATE TRIGGER {trigger} AFTER UPDATE ON {table} FOR EACH ROW
           WHEN (NEW.phone IS DISTINCT FROM OLD.phone) EXECUTE FUNCTION {function}();"
    ))
    .await?;
    Ok(())
}

async fn remove_trigger(
    db: &tokio_postgres::Client,
    schema: &str,
    table: &str,
) -> Result<(), CliError> {
    let (trigger, function) = trigger_names(schema);
    db.batch_execute(&format!(
        "DROP TRIGGER IF EXISTS {trigger} ON {table}; DROP FUNCTION IF EXISTS {function}();"
    ))
    .await?;
    Ok(())
}

/// A dedicated connection `LISTEN`ing on the bench channel; each notification's payload comes
/// with the wall-clock time (ms) it was received. The connection lives as long as the client.
async fn listen(
    url: &str,
) -> Result<
    (
        tokio_postgres::Client,
        mpsc::UnboundedReceiver<(String, i64)>,
    ),
    CliError,
> {
    let target = sync_runtime::engine::db::parse_target(url).map_err(CliError::settings)?;
    let (client, mut connection) = tokio_postgres::connect(&target.url, tokio_postgres::NoTls)
        .await
        .map_err(|e| {
            CliError::failure(format!(
                "bench stream listens on a plain (non-TLS) connection: {e}"
            ))
        })?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let received = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                if tx.send((n.payload().to_owned(), received)).is_err() {
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_open_line_compares_p99_with_the_run_without_the_page() {
        let without = Figures {
            p50_ms: Some(3),
            p99_ms: Some(40),
            max_ms: Some(60),
            ..Figures::default()
        };
        let same = Figures {
            p99_ms: Some(44),
            ..without
        };
        let line = page_open_line(&without, &same, 10_000, 42);
        assert!(line.contains("42 pages served"), "{line}");
        assert!(line.contains("p99 44 ms"), "{line}");
        assert!(line.ends_with("p99 1.10x without it: unchanged"), "{line}");
        let slower = Figures {
            p99_ms: Some(80),
            ..without
        };
        assert!(page_open_line(&without, &slower, 1, 2).ends_with("2.00x without it: slower"));
        // Small figures: within 5 ms is the same.
        let quick = Figures {
            p99_ms: Some(4),
            ..without
        };
        let jitter = Figures {
            p99_ms: Some(8),
            ..without
        };
        assert!(page_open_line(&quick, &jitter, 1, 2).ends_with("unchanged"));
        assert!(page_open_line(&Figures::default(), &jitter, 1, 2).ends_with("no p99 to compare"));
    }

    #[test]
    fn a_ladder_step_holds_only_when_every_change_arrived_in_time_at_the_asked_rate() {
        assert!(step_held(5_000, 50_000, 50_000, 10.0, Some(80)));
        assert!(
            !step_held(5_000, 50_000, 50_000, 10.0, Some(101)),
            "p99 over target"
        );
        assert!(
            !step_held(5_000, 50_000, 49_999, 10.0, Some(80)),
            "a change missing"
        );
        assert!(
            !step_held(5_000, 30_000, 30_000, 10.0, Some(80)),
            "sent too slowly"
        );
        assert!(!step_held(5_000, 0, 0, 10.0, None));
    }

    #[test]
    fn the_ratios_compare_pubsub_with_cometd_figure_by_figure() {
        let pubsub = Figures {
            p50_ms: Some(10),
            p99_ms: Some(40),
            max_ms: Some(90),
            highest_rate: Some(5_000.0),
            burst_seconds: Some(1.0),
        };
        let cometd = Figures {
            p50_ms: Some(20),
            p99_ms: Some(40),
            max_ms: Some(0),
            highest_rate: Some(2_500.0),
            burst_seconds: None,
        };
        let lines = ratio_lines(&pubsub, &cometd);
        assert_eq!(
            lines[0],
            "Pub/Sub / CometD: latency p50 0.50 (pubsub 10 ms, cometd 20 ms), p99 1.00 (40 ms, 40 ms), max 90.00 (90 ms, 0 ms)"
        );
        assert_eq!(
            lines[1],
            "Pub/Sub / CometD: highest sustained rate 2.00 (5000 vs 2500 changes/s), burst - (1.00 s vs - s)"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_latency_report_gives_the_rate_and_percentiles() {
        let mut latencies = vec![30, 10, 20, 40];
        let lines = latency_lines(4, 0, 2.0, 2, &mut latencies);
        assert_eq!(
            lines[0],
            "changes: 4 sent in 2.0 s = 2/s (asked 2/s), 0 refused, 4 committed in Postgres"
        );
        assert_eq!(
            lines[1],
            "latency Salesforce commit -> Postgres commit: p50 20 ms, p99 40 ms, max 40 ms (target p99 <= 100 ms)"
        );
    }

    #[test]
    fn the_idle_report_gives_the_calls_against_the_drift_repairs() {
        let calls = Calls::from_counters(&json!({
            "DailyApiRequests": {"Used": 6},
            "endpoints": {"GET /services/data/{version}/queryAll": 6}
        }));
        let lines = idle_lines(&calls, 60, 600);
        assert!(
            lines[0].starts_with("idle hour: 6 API calls (DailyApiRequests"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("0 of them outside the drift repair"));
        assert!(lines[0].contains("the drift repairs, 6 (every 600 s"));
        assert!(lines[0].contains("the allocation watch, 7 (/limits at start and every 600 s)"));
        assert_eq!(
            lines[2],
            "         6  GET /services/data/{version}/queryAll"
        );
    }

    #[test]
    fn a_notification_counts_its_change_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        tx.send(("bench 7 1000".to_owned(), 1040)).unwrap();
        tx.send(("bench 7 1000".to_owned(), 1900)).unwrap();
        tx.send(("other".to_owned(), 5)).unwrap();
        let mut latencies = HashMap::new();
        drain(&mut rx, &mut latencies);
        assert_eq!(latencies, HashMap::from([(7, 40)]));
    }
}
