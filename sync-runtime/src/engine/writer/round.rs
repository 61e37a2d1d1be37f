//! One round of the writer: reconcile, retry, claim, send, settle (see the module documentation
//! of [`super`]); while a batch's last step is in flight the next batch is claimed, and a step is
//! settled while the next one is in flight.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::adapter::MappingDescriptor;

use super::claim::{claim_batch, first_claim_limit, SendStep, SendTransport, Window};
use super::outcome::Decision;
use super::plan::Write;
use super::settle::settle_split;
use super::{send, Journaled, RoundReport, WriteError, Writer};

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
        let (steps, claimed, mut last_claimed) = self.claim(&mut report, retries, first).await?;
        report.claimed += claimed;
        // While the last step of a batch is in flight, the next batch is claimed (what the app
        // wrote meanwhile). The steps of one claim go out in order, each once the one before is
        // answered and settled (a child step only once its parents' outcomes are stored). A
        // step of the next claim shares no record with the steps before it (their journal rows
        // kept those records out of the claim), so it goes out as soon as the step before is
        // answered, and that step is settled while it is in flight: Salesforce and Postgres
        // work at the same time, and settles stay in order. The chain ends when a claim finds
        // nothing, or after `MAX_CHAINED_CLAIMS` (so reconciliation and retries get their turn).
        // A chained claim looks only past the entries the claim before took: what it left (the
        // records in flight, entries deferred) waits for the next round, instead of being
        // scanned again by every claim of the chain.
        let mut more = claimed > 0;
        let mut chained = 0;
        let mut queue: std::collections::VecDeque<(usize, SendStep)> =
            steps.into_iter().map(|s| (0, s)).collect();
        let mut unsettled: Option<(usize, Landed)> = None;
        while let Some((batch, step)) = queue.pop_front() {
            let claim_due = queue.is_empty() && more && chained < MAX_CHAINED_CLAIMS;
            let mut next_claim = None;
            let flight = match unsettled.take() {
                Some((before, landed)) if before != batch => {
                    let flight = self.launch(step);
                    if claim_due && self.claim_db.is_some() {
                        let (settled, claimed) = self.settle_and_claim(landed, last_claimed).await;
                        report.absorb(settled?);
                        next_claim = Some(claimed?);
                    } else {
                        report.absorb(self.settle_landed(landed).await?);
                    }
                    flight
                }
                Some((_, landed)) => {
                    report.absorb(self.settle_landed(landed).await?);
                    self.launch(step)
                }
                None => self.launch(step),
            };
            if claim_due {
                let (next, claimed, last, claim_report) = match next_claim {
                    Some(done) => done,
                    None => {
                        let mut claim_report = RoundReport::default();
                        let (next, claimed, last) = self
                            .claim(
                                &mut claim_report,
                                Vec::new(),
                                Window {
                                    after: last_claimed,
                                    limit: self.config.max_batch,
                                },
                            )
                            .await?;
                        (next, claimed, last, claim_report)
                    }
                };
                last_claimed = last_claimed.max(last);
                report.absorb(claim_report);
                report.claimed += claimed;
                more = claimed > 0;
                chained += 1;
                queue.extend(next.into_iter().map(|s| (chained, s)));
            }
            unsettled = Some((batch, self.land(flight, &mut report).await?));
        }
        if let Some((_, landed)) = unsettled {
            report.absorb(self.settle_landed(landed).await?);
        }
        Ok(report)
    }

    /// Step 2: journaled writes whose retry is due, moved back to `SENDING`.
    async fn due_retries(&mut self) -> Result<Vec<Journaled>, WriteError> {
        let tables = self.tables();
        let rows = self.store.take_due_retries(&self.db, &tables).await?;
        Ok(rows
            .into_iter()
            .map(|r| Journaled {
                journal_id: r.id,
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
    /// Step 4 for one step: its chunks start going out (at most `max_in_flight` sObject
    /// Collections calls at once, or one Bulk API job); [`Writer::land`] collects the answers.
    fn launch(&self, step: SendStep) -> InFlight {
        let target = self.targets[step.mapping].clone();
        let kind = step.kind;
        let mut tasks = tokio::task::JoinSet::new();
        match step.transport {
            SendTransport::Bulk(writes) => {
                let poll = self.config.bulk_poll.clone();
                tasks.spawn(async move {
                    let plain: Vec<Write> = writes.iter().map(|j| j.write.clone()).collect();
                    let decisions =
                        send::bulk(&target.client, target.mapping, kind, &plain, &poll).await;
                    (writes, decisions)
                });
            }
            SendTransport::Collections(chunks) => {
                let limit = Arc::new(Semaphore::new(self.config.max_in_flight.max(1)));
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

    /// Waits until every call of a launched step has its answer, settling answers (step 5) while
    /// others are still in flight, several at once when they arrive together; returns the
    /// answers that came last, not yet settled.
    async fn land(
        &mut self,
        mut flight: InFlight,
        report: &mut RoundReport,
    ) -> Result<Landed, WriteError> {
        let mut landed = Landed {
            mapping: flight.mapping,
            writes: Vec::new(),
            decisions: Vec::new(),
        };
        while let Some(done) = flight.tasks.join_next().await {
            let mut take = |done: Result<(Vec<Journaled>, Vec<Decision>), _>| {
                // A send that panicked leaves its writes journaled `SENDING`: the next start
                // reconciles them.
                if let Ok((writes, decisions)) = done {
                    report.sent += writes.len();
                    landed.writes.extend(writes);
                    landed.decisions.extend(decisions);
                }
            };
            take(done);
            while let Some(done) = flight.tasks.try_join_next() {
                take(done);
            }
            if !flight.tasks.is_empty() && !landed.writes.is_empty() {
                let writes = std::mem::take(&mut landed.writes);
                let decisions = std::mem::take(&mut landed.decisions);
                report.absorb(self.settle(flight.mapping, &writes, decisions).await?);
            }
        }
        tracing::debug!(
            table = flight.mapping.table,
            ms = flight.started.elapsed().as_millis() as u64,
            "writer step answered"
        );
        Ok(landed)
    }

    /// Settles what [`Writer::land`] returned.
    async fn settle_landed(&mut self, landed: Landed) -> Result<RoundReport, WriteError> {
        if landed.writes.is_empty() {
            return Ok(RoundReport::default());
        }
        self.settle(landed.mapping, &landed.writes, landed.decisions)
            .await
    }

    /// Settles `landed` on the first connection while the next batch is claimed on the claim
    /// connection (see [`Writer::with_claim_connection`]).
    #[allow(clippy::type_complexity)]
    async fn settle_and_claim(
        &mut self,
        landed: Landed,
        after: i32,
    ) -> (
        Result<RoundReport, WriteError>,
        Result<(Vec<SendStep>, usize, i32, RoundReport), WriteError>,
    ) {
        let Some(claim_db) = self.claim_db.as_mut() else {
            unreachable!("settle_and_claim is only called with a claim connection");
        };
        let settle = async {
            if landed.writes.is_empty() {
                return Ok(RoundReport::default());
            }
            settle_split(
                &mut self.db,
                self.settle_db.as_mut(),
                &self.store,
                self.config.backoff,
                landed.mapping,
                &landed.writes,
                landed.decisions,
            )
            .await
        };
        let claim = async {
            let mut report = RoundReport::default();
            let (steps, claimed, last) = claim_batch(
                claim_db,
                &self.store,
                &self.targets,
                &self.config,
                &mut report,
                Vec::new(),
                Window {
                    after,
                    limit: self.config.max_batch,
                },
            )
            .await?;
            Ok((steps, claimed, last, report))
        };
        tokio::join!(settle, claim)
    }

    /// Step 5: one transaction for these answers. Its commit need not wait for the disk: were it
    /// lost in a Postgres crash, its journal rows would still say `SENDING`, which the next
    /// start reconciles like any interrupted send.
    async fn settle(
        &mut self,
        mapping: &'static MappingDescriptor,
        writes: &[Journaled],
        decisions: Vec<Decision>,
    ) -> Result<RoundReport, WriteError> {
        let backoff = self.config.backoff;
        settle_split(
            &mut self.db,
            self.settle_db.as_mut(),
            &self.store,
            backoff,
            mapping,
            writes,
            decisions,
        )
        .await
    }
}

/// A launched step: its calls, each answering with its writes and their decisions.
struct InFlight {
    mapping: &'static MappingDescriptor,
    tasks: tokio::task::JoinSet<(Vec<Journaled>, Vec<Decision>)>,
    /// When the step was launched (for the debug log of how long its calls took).
    started: std::time::Instant,
}

/// Answers of a step not yet settled.
struct Landed {
    mapping: &'static MappingDescriptor,
    writes: Vec<Journaled>,
    decisions: Vec<Decision>,
}
