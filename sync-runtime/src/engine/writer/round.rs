//! One round of the writer: reconcile, retry, claim, send, settle (see the module documentation
//! of [`super`]); after the first claim, the claims, sends and settles run as [`Pipeline`]
//! decides, each as soon as what it needs is there.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::Semaphore;

use crate::adapter::MappingDescriptor;

use super::claim::{claim_batch, first_claim_limit, SendStep, SendTransport, Window};
use super::outcome::Decision;
use super::pipeline::Pipeline;
use super::plan::Write;
use super::settle::settle_split;
use super::{send, JournalRef, Journaled, RoundReport, Target, WriteError, Writer, WriterConfig};

/// Claims chained in one round (see [`Writer::round`]).
const MAX_CHAINED_CLAIMS: usize = 64;

impl Writer {
    /// One round: reconcile, retry, claim, send, settle (see the module documentation).
    pub async fn round(&mut self) -> Result<RoundReport, WriteError> {
        self.follow_held().await?;
        let mut report = self.reconcile().await?;
        let retries = self.due_retries().await?;
        let first = Window {
            after: 0,
            limit: first_claim_limit(self.config.max_batch),
        };
        let (steps, claimed, last_claimed) = self.claim(&mut report, retries, first).await?;
        report.claimed += claimed;
        let pipeline = Pipeline::new(
            steps,
            claimed > 0,
            1 + MAX_CHAINED_CLAIMS,
            self.claim_db.is_none(),
        );
        report.absorb(self.send_and_settle(pipeline, last_claimed).await?);
        Ok(report)
    }

    /// Steps 3–5 after the round's first claim, as [`Pipeline`] decides: the steps go out, their
    /// answers are settled and the next batches claimed, each as soon as what it needs is there.
    /// A chained claim looks only past the entries the claim before took: what it left (the
    /// records in flight, entries deferred) waits for the next round, instead of being scanned
    /// again by every claim of the chain.
    async fn send_and_settle(
        &mut self,
        mut pipeline: Pipeline<SendStep, Landed>,
        mut last_claimed: i32,
    ) -> Result<RoundReport, WriteError> {
        let Writer {
            config,
            store,
            targets,
            db,
            claim_db,
            settle_db,
            ..
        } = self;
        let (config, store, targets) = (&*config, &*store, &targets[..]);
        // Each connection is lent to the one claim or settle using it and handed back with its
        // result: `None` while it is out. Without a claim connection, claims borrow the first one.
        let mut settle_conns = Some((db, settle_db.as_mut()));
        let mut claim_conn = claim_db.as_mut();
        let mut flight: Option<InFlight> = None;
        let mut claiming: Option<BoxFuture<'_, ClaimDone<'_>>> = None;
        let mut settling: Option<BoxFuture<'_, SettleDone<'_>>> = None;
        let mut report = RoundReport::default();
        loop {
            if let Some(step) = pipeline.launch() {
                flight = Some(launch(targets, config, step));
            }
            // The pipeline starts one settle and one claim at a time: neither future is in use
            // when it starts one. One settle writes one mapping's table.
            if let Some(answers) =
                pipeline.settle(|a: &Landed, b: &Landed| a.mapping.object == b.mapping.object)
            {
                let Some((first, second)) = settle_conns.take() else {
                    unreachable!("the pipeline starts one settle at a time");
                };
                let landed = Landed::merge(answers);
                settling = Some(Box::pin(async move {
                    let mut second = second;
                    if landed.writes.is_empty() {
                        return (first, second, Ok(RoundReport::default()));
                    }
                    let settled = settle_split(
                        first,
                        second.as_deref_mut(),
                        store,
                        config.backoff,
                        landed.mapping,
                        &landed.writes,
                        landed.decisions,
                    )
                    .await;
                    (first, second, settled)
                }));
            }
            if pipeline.claim() {
                let db = match claim_conn.take() {
                    Some(db) => ClaimConn::Own(db),
                    None => match settle_conns.take() {
                        Some(shared) => ClaimConn::Shared(shared),
                        None => unreachable!(
                            "a shared connection is lent to claims only when no settle runs"
                        ),
                    },
                };
                let window = Window {
                    after: last_claimed,
                    limit: config.max_batch,
                };
                claiming = Some(Box::pin(async move {
                    let mut db = db;
                    let mut report = RoundReport::default();
                    let claimed = claim_batch(
                        db.client(),
                        store,
                        targets,
                        config,
                        &mut report,
                        Vec::new(),
                        window,
                    )
                    .await;
                    (
                        db,
                        claimed.map(|(steps, claimed, last)| (steps, claimed, last, report)),
                    )
                }));
            }
            if pipeline.finished() {
                return Ok(report);
            }
            tokio::select! {
                answered = async {
                    match flight.as_mut() {
                        Some(f) => f.tasks.join_next().await,
                        None => std::future::pending().await,
                    }
                }, if flight.is_some() => {
                    let Some(f) = flight.as_mut() else { unreachable!() };
                    let landed = f.collect(answered, &mut report);
                    pipeline.answered(landed);
                    if f.tasks.is_empty() {
                        tracing::debug!(
                            table = f.mapping.table,
                            ms = f.started.elapsed().as_millis() as u64,
                            "writer step answered"
                        );
                        flight = None;
                        pipeline.landed();
                    }
                }
                (first, second, settled) = async {
                    match settling.as_mut() {
                        Some(s) => s.await,
                        None => std::future::pending().await,
                    }
                }, if settling.is_some() => {
                    settling = None;
                    settle_conns = Some((first, second));
                    report.absorb(settled?);
                    pipeline.settled();
                }
                (db, claimed) = async {
                    match claiming.as_mut() {
                        Some(c) => c.await,
                        None => std::future::pending().await,
                    }
                }, if claiming.is_some() => {
                    claiming = None;
                    match db {
                        ClaimConn::Own(db) => claim_conn = Some(db),
                        ClaimConn::Shared(shared) => settle_conns = Some(shared),
                    }
                    let (steps, claimed, last, claim_report) = claimed?;
                    last_claimed = last_claimed.max(last);
                    report.absorb(claim_report);
                    report.claimed += claimed;
                    pipeline.claimed(steps, claimed > 0);
                }
            }
        }
    }

    /// Step 2: journaled writes whose retry is due, moved back to `SENDING`.
    async fn due_retries(&mut self) -> Result<Vec<Journaled>, WriteError> {
        let tables = self.tables();
        let rows = self.store.take_due_retries(&self.db, &tables).await?;
        Ok(rows
            .into_iter()
            .map(|r| Journaled {
                journal: JournalRef::Row(r.id),
                attempts: r.attempts,
                write: r.write,
            })
            .collect())
    }

    /// Step 3: claims, plans and journals the new entries in `window`; returns every step to send
    /// (retries first, through sObject Collections), how many entries were claimed and the
    /// highest id among them.
    async fn claim(
        &mut self,
        report: &mut RoundReport,
        retries: Vec<Journaled>,
        window: Window,
    ) -> Result<(Vec<SendStep>, usize, i32), WriteError> {
        let db = match &mut self.claim_db {
            Some(db) => db,
            None => &mut self.db,
        };
        claim_batch(
            db,
            &self.store,
            &self.targets,
            &self.config,
            report,
            retries,
            window,
        )
        .await
    }
}

/// A launched step: its calls, each answering with its writes and their decisions.
struct InFlight {
    mapping: &'static MappingDescriptor,
    tasks: tokio::task::JoinSet<Answer>,
    /// When the step was launched (for the debug log of how long its calls took).
    started: std::time::Instant,
}

/// One call's writes and their decisions.
type Answer = (Vec<Journaled>, Vec<Decision>);

impl InFlight {
    /// The answer that just arrived (`None` if there was no call) and those that arrived with it.
    /// A send that panicked leaves its writes journaled `SENDING`: the next start reconciles them.
    fn collect(
        &mut self,
        first: Option<Result<Answer, tokio::task::JoinError>>,
        report: &mut RoundReport,
    ) -> Landed {
        let mut landed = Landed {
            mapping: self.mapping,
            writes: Vec::new(),
            decisions: Vec::new(),
        };
        let more = std::iter::from_fn(|| self.tasks.try_join_next());
        for (writes, decisions) in first.into_iter().chain(more).flatten() {
            report.sent += writes.len();
            landed.writes.extend(writes);
            landed.decisions.extend(decisions);
        }
        landed
    }
}

/// Answers of a step not yet settled.
struct Landed {
    mapping: &'static MappingDescriptor,
    writes: Vec<Journaled>,
    decisions: Vec<Decision>,
}

impl Landed {
    /// Answers that arrived apart (of one step, or of steps of one mapping), settled together.
    fn merge(answers: Vec<Landed>) -> Landed {
        let mut answers = answers.into_iter();
        let Some(mut all) = answers.next() else {
            unreachable!("a settle has answers");
        };
        for more in answers {
            all.writes.extend(more.writes);
            all.decisions.extend(more.decisions);
        }
        all
    }
}

/// Step 4 for one step: its chunks start going out (at most `max_in_flight` sObject Collections
/// calls at once, or one Bulk API job); their answers are collected as they arrive.
fn launch(targets: &[Target], config: &WriterConfig, step: SendStep) -> InFlight {
    let target = targets[step.mapping].clone();
    let kind = step.kind;
    let mut tasks = tokio::task::JoinSet::new();
    match step.transport {
        SendTransport::Bulk(writes) => {
            let poll = config.bulk_poll.clone();
            tasks.spawn(async move {
                let plain: Vec<Write> = writes.iter().map(|j| j.write.clone()).collect();
                let decisions =
                    send::bulk(&target.client, target.mapping, kind, &plain, &poll).await;
                (writes, decisions)
            });
        }
        SendTransport::Collections(chunks) => {
            let limit = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
            for chunk in chunks {
                let client = target.client.clone();
                let mapping = target.mapping;
                let limit = limit.clone();
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let plain: Vec<Write> = chunk.iter().map(|j| j.write.clone()).collect();
                    let decisions = send::collections(&client, mapping, kind, &plain).await;
                    (chunk, decisions)
                });
            }
        }
    }
    InFlight {
        mapping: target.mapping,
        tasks,
        started: std::time::Instant::now(),
    }
}

/// The connection a claim runs on: the claim connection, or (without one) the settle's pair.
enum ClaimConn<'a> {
    Own(&'a mut tokio_postgres::Client),
    Shared(SettleConns<'a>),
}

impl ClaimConn<'_> {
    fn client(&mut self) -> &mut tokio_postgres::Client {
        match self {
            ClaimConn::Own(db) => db,
            ClaimConn::Shared((db, _)) => db,
        }
    }
}

/// The settle's connection, and its second one for large steps ([`settle_split`]).
type SettleConns<'a> = (
    &'a mut tokio_postgres::Client,
    Option<&'a mut tokio_postgres::Client>,
);

/// What a claim hands back: its connection, and the steps it claimed, how many entries, the
/// highest id among them and its report.
type ClaimDone<'a> = (
    ClaimConn<'a>,
    Result<(Vec<SendStep>, usize, i32, RoundReport), WriteError>,
);

/// What a settle hands back: its connections and its report.
type SettleDone<'a> = (
    &'a mut tokio_postgres::Client,
    Option<&'a mut tokio_postgres::Client>,
    Result<RoundReport, WriteError>,
);
