//! Settling (step 5): what the answers of a step do to Postgres, decided by a pure plan
//! ([`plan_settles`]: journaled writes, their decisions and the backoff → settles, journal and
//! batch rows done, retries with their delays, reconciliations), then written in one transaction
//! ([`settle_answers`]).

use crate::adapter::MappingDescriptor;
use crate::salesforce::backoff;

use super::outcome::{self, Backoff, Decision, LastOp};
use super::plan::{CallKind, Write};
use super::store::{Settle, Store};
use super::{JournalRef, Journaled, RoundReport, WriteError};

/// What the answers of a step do (pure output of [`plan_settles`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SettlePlan {
    /// How each finished record's entries end (successes and definite failures).
    pub settles: Vec<Settle>,
    /// Journal rows whose write is over.
    pub done: Vec<i64>,
    /// Batch rows that end: each of their writes is among these answers.
    pub batches: Vec<i64>,
    /// Writes sent again later (by their place in the answers): delay in milliseconds, reason.
    pub retries: Vec<(usize, u64, String)>,
    /// Writes to reconcile (their writes may have been applied) ...
    pub reconciles: Vec<usize>,
    /// ... with the reason the last of them gave.
    pub reconcile_reason: String,
    /// Writes of a batch row among the retries and reconciliations: each gets a journal row of
    /// its own, since their batch row ends.
    pub own_rows: Vec<usize>,
    pub report: RoundReport,
}

/// Decides what the answers of a step do (pure): a success settles the record (with the sfid
/// Salesforce gave, or the one it had) and ends its journal row; a definite failure settles it
/// `FAILED` and ends the row; an indefinite failure schedules the row again after
/// `backoff.delay(attempts + 1, jitter())`; an ambiguous one schedules a reconciliation. Every
/// batch row among the writes ends; its writes still to be sent get rows of their own.
pub(super) fn plan_settles(
    writes: &[Journaled],
    decisions: Vec<Decision>,
    backoff: Backoff,
    mut jitter: impl FnMut() -> f64,
) -> SettlePlan {
    let mut plan = SettlePlan::default();
    for (i, (j, decision)) in writes.iter().zip(decisions).enumerate() {
        match j.journal {
            JournalRef::Batch(id) => {
                if !plan.batches.contains(&id) {
                    plan.batches.push(id);
                }
            }
            JournalRef::Row(id) => {
                if matches!(decision, Decision::Success { .. } | Decision::Failed(_)) {
                    plan.done.push(id);
                }
            }
        }
        let mut later = || {
            if matches!(j.journal, JournalRef::Batch(_)) {
                plan.own_rows.push(i);
            }
        };
        match decision {
            Decision::Success { sfid, lastop } => {
                let created = j.write.kind == CallKind::Create
                    || (j.write.kind == CallKind::Upsert && lastop == LastOp::Inserted);
                let sfid = sfid.or_else(|| j.write.sfid.clone());
                plan.settles.push(success(&j.write, sfid, lastop, created));
                plan.report.succeeded += 1;
            }
            Decision::Failed(error) => {
                plan.settles.push(failure(
                    &j.write.table,
                    j.write.record_id,
                    &j.write.entry_ids,
                    &error,
                ));
                plan.report.failed += 1;
            }
            Decision::Retry { reason } => {
                later();
                let attempt = u32::try_from(j.attempts + 1).unwrap_or(u32::MAX);
                let delay = backoff.delay(attempt, jitter());
                plan.retries.push((
                    i,
                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    reason,
                ));
                plan.report.retried += 1;
            }
            Decision::Reconcile { reason } => {
                later();
                plan.reconciles.push(i);
                plan.reconcile_reason = reason;
            }
        }
    }
    plan
}

/// The journal row of each write still to be sent (pure): its own, or for a write of a batch
/// row, the one journaled for it now (`new_rows`, in the order of `plan.own_rows`).
fn journal_rows(writes: &[Journaled], own_rows: &[usize], new_rows: &[i64], i: usize) -> i64 {
    match writes[i].journal {
        JournalRef::Row(id) => id,
        JournalRef::Batch(_) => {
            // `own_rows` holds every such write, in order (see [`plan_settles`]).
            let at = own_rows
                .binary_search(&i)
                .expect("a batch row's write still to be sent is journaled on its own");
            new_rows[at]
        }
    }
}

/// Step 5 on `db`: the answers of a step in one transaction. Its commit need not wait for the
/// disk: were it lost in a Postgres crash, its batch rows (and journal rows `SENDING`) would still
/// be there, which the next start reconciles like any interrupted send.
pub(super) async fn settle_answers(
    db: &mut tokio_postgres::Client,
    store: &Store,
    backoff: Backoff,
    mapping: &'static MappingDescriptor,
    writes: &[Journaled],
    decisions: Vec<Decision>,
) -> Result<RoundReport, WriteError> {
    let started = std::time::Instant::now();
    let plan = plan_settles(writes, decisions, backoff, backoff::random_share);
    let tx = db.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    let own: Vec<&Write> = plan.own_rows.iter().map(|&i| &writes[i].write).collect();
    let new_rows = store.journal(&tx, mapping.object, &own).await?;
    let row = |i: usize| journal_rows(writes, &plan.own_rows, &new_rows, i);
    let latencies = store
        .settle(&tx, mapping, &plan.settles, &plan.done)
        .await?;
    store.end_batches(&tx, &plan.batches).await?;
    let retries: Vec<(i64, u64, String)> = plan
        .retries
        .iter()
        .map(|(i, delay, reason)| (row(*i), *delay, reason.clone()))
        .collect();
    store.schedule_retry(&tx, &retries).await?;
    if !plan.reconciles.is_empty() {
        let reconciles: Vec<i64> = plan.reconciles.iter().map(|&i| row(i)).collect();
        store
            .schedule_reconcile(&tx, &reconciles, &plan.reconcile_reason)
            .await?;
    }
    tx.commit().await?;
    tracing::debug!(
        table = mapping.table,
        records = writes.len(),
        ms = started.elapsed().as_millis() as u64,
        "writer settled"
    );
    crate::engine::activity::record_sent(mapping.object, &latencies);
    Ok(plan.report)
}

/// From this many answers on, a step is settled in two halves at once when the writer has a
/// second settle connection: the settle is the writer's longest Postgres work (the `sfid`
/// write-back and the archive move), and one backend does it on one core.
pub(super) const SPLIT_FROM: usize = 2_000;

/// Where a step's answers are settled (pure), given where each write is journaled: `None`, all
/// in one transaction; `Some(n)`, the first `n` in one and the rest in another, at the same
/// time. The cut is the one nearest the middle that leaves each batch row whole (a batch row ends
/// in the transaction that settles its writes); a step whose writes are all in one batch row is
/// settled in one transaction.
pub(super) fn split_point(journal: &[JournalRef], second_connection: bool) -> Option<usize> {
    let n = journal.len();
    if !second_connection || n < SPLIT_FROM {
        return None;
    }
    let whole = |at: usize| match (journal[at - 1], journal[at]) {
        (JournalRef::Batch(a), JournalRef::Batch(b)) => a != b,
        _ => true,
    };
    let half = n / 2;
    (0..half)
        .flat_map(|d| [half - d, half + d])
        .find(|&at| at > 0 && at < n && whole(at))
}

/// Step 5 for a step's answers: [`settle_answers`] on `db`, or, for a large step with a `second`
/// connection, its two halves at once, each in its own transaction. The halves share no record
/// (a record has one write in flight) nor batch row, and each is a whole settle: were one to
/// fail, its journal and batch rows would still be there, as after any failed settle.
pub(super) async fn settle_split(
    db: &mut tokio_postgres::Client,
    second: Option<&mut tokio_postgres::Client>,
    store: &Store,
    backoff: Backoff,
    mapping: &'static MappingDescriptor,
    writes: &[Journaled],
    mut decisions: Vec<Decision>,
) -> Result<RoundReport, WriteError> {
    let journal: Vec<JournalRef> = writes.iter().map(|j| j.journal).collect();
    match (split_point(&journal, second.is_some()), second) {
        (Some(half), Some(second)) => {
            let rest = decisions.split_off(half);
            let (first, last) = tokio::join!(
                settle_answers(db, store, backoff, mapping, &writes[..half], decisions),
                settle_answers(second, store, backoff, mapping, &writes[half..], rest),
            );
            let mut report = first?;
            report.absorb(last?);
            Ok(report)
        }
        _ => settle_answers(db, store, backoff, mapping, writes, decisions).await,
    }
}

/// A write Salesforce applied: the row takes `sfid` and `_hc_lastop` (a delete leaves the row
/// alone), the entries are archived `SUCCESS`.
pub(super) fn success(
    write: &Write,
    sfid: Option<String>,
    lastop: LastOp,
    created: bool,
) -> Settle {
    Settle {
        table: write.table.clone(),
        record_id: write.record_id,
        entry_ids: write.entry_ids.clone(),
        state: "SUCCESS",
        sfid,
        lastop: match lastop {
            LastOp::Deleted => None,
            other => Some(other.as_str()),
        },
        hc_err: None,
        message: None,
        created,
    }
}

/// A write Salesforce refused for good: the row is marked `FAILED` with `_hc_err`, the entries
/// are archived `FAILED` with the error's summary.
pub(super) fn failure(
    table: &str,
    record_id: i32,
    entry_ids: &[i32],
    error: &outcome::HcError,
) -> Settle {
    Settle {
        table: table.to_owned(),
        record_id,
        entry_ids: entry_ids.to_vec(),
        state: "FAILED",
        sfid: None,
        lastop: Some("FAILED"),
        hc_err: Some(error.to_json()),
        message: Some(error.summary()),
        created: false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Map;

    use super::*;
    use crate::engine::writer::outcome::HcError;

    fn journaled(journal_id: i64, record_id: i32, kind: CallKind, attempts: i32) -> Journaled {
        in_journal(JournalRef::Row(journal_id), record_id, kind, attempts)
    }

    fn batched(batch: i64, record_id: i32, kind: CallKind) -> Journaled {
        in_journal(JournalRef::Batch(batch), record_id, kind, 0)
    }

    fn in_journal(journal: JournalRef, record_id: i32, kind: CallKind, attempts: i32) -> Journaled {
        Journaled {
            journal,
            attempts,
            write: Write {
                table: "account".to_owned(),
                record_id,
                entry_ids: vec![record_id * 10, record_id * 10 + 1],
                kind,
                sfid: (kind != CallKind::Create).then(|| format!("001{record_id}")),
                external_id: None,
                body: Map::new(),
            },
        }
    }

    const BACKOFF: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(10),
    };

    #[test]
    fn a_large_step_is_settled_in_two_halves_only_with_a_second_connection() {
        let rows = |n: usize| -> Vec<JournalRef> { (0..n as i64).map(JournalRef::Row).collect() };
        assert_eq!(split_point(&rows(10_000), true), Some(5_000));
        assert_eq!(
            split_point(&rows(SPLIT_FROM + 1), true),
            Some(SPLIT_FROM / 2)
        );
        assert_eq!(
            split_point(&rows(SPLIT_FROM - 1), true),
            None,
            "a small step: one transaction"
        );
        assert_eq!(
            split_point(&rows(10_000), false),
            None,
            "no second connection"
        );
    }

    #[test]
    fn a_split_leaves_each_batch_row_whole() {
        let batches = |sizes: &[usize]| -> Vec<JournalRef> {
            sizes
                .iter()
                .enumerate()
                .flat_map(|(b, &n)| std::iter::repeat_n(JournalRef::Batch(b as i64), n))
                .collect()
        };
        // A Bulk job journaled in two halves (`claim::batch_groups`): cut between them.
        assert_eq!(split_point(&batches(&[5_000, 5_000]), true), Some(5_000));
        // Two steps settled together: the boundary nearest the middle.
        assert_eq!(
            split_point(&batches(&[5_000, 5_000, 4_000, 4_000]), true),
            Some(10_000)
        );
        assert_eq!(
            split_point(&batches(&[200; 12]), true),
            Some(1_200),
            "sObject Collections chunks"
        );
        assert_eq!(
            split_point(&batches(&[3_000]), true),
            None,
            "one batch row: one transaction"
        );
        let mut mixed = batches(&[2_500]);
        mixed.extend((0..10).map(JournalRef::Row));
        assert_eq!(
            split_point(&mixed, true),
            Some(2_500),
            "journal rows of their own may go either way"
        );
    }

    #[test]
    fn a_batch_row_ends_with_its_writes_and_those_sent_again_get_journal_rows_of_their_own() {
        let writes = [
            batched(40, 1, CallKind::Create),
            batched(40, 2, CallKind::Create),
            batched(41, 3, CallKind::Update),
            journaled(9, 4, CallKind::Update, 1),
            batched(41, 5, CallKind::Create),
        ];
        let plan = plan_settles(
            &writes,
            vec![
                Decision::Success {
                    sfid: Some("001A".to_owned()),
                    lastop: LastOp::Inserted,
                },
                Decision::Retry {
                    reason: "UNABLE_TO_LOCK_ROW".to_owned(),
                },
                Decision::Success {
                    sfid: None,
                    lastop: LastOp::Updated,
                },
                Decision::Retry {
                    reason: "SERVER_UNAVAILABLE".to_owned(),
                },
                Decision::Reconcile {
                    reason: "timeout".to_owned(),
                },
            ],
            BACKOFF,
            || 0.0,
        );
        assert_eq!(plan.batches, [40, 41], "both batch rows end");
        assert_eq!(
            plan.done,
            Vec::<i64>::new(),
            "the retried journal row stays"
        );
        assert_eq!(plan.own_rows, [1, 4]);
        assert_eq!(
            plan.retries
                .iter()
                .map(|(i, delay, _)| (*i, *delay))
                .collect::<Vec<_>>(),
            [(1, 50), (3, 100)]
        );
        assert_eq!(plan.reconciles, [4]);
        // Journal rows of their own (ids 70 and 71) for the writes 1 and 4.
        let rows: Vec<i64> = [1, 3, 4]
            .iter()
            .map(|&i| journal_rows(&writes, &plan.own_rows, &[70, 71], i))
            .collect();
        assert_eq!(rows, [70, 9, 71]);
        assert_eq!(plan.settles.len(), 2);
    }

    #[test]
    fn a_created_record_takes_its_sfid_and_ends_its_journal_row() {
        let writes = [journaled(7, 1, CallKind::Create, 0)];
        let decisions = vec![Decision::Success {
            sfid: Some("001NEW".to_owned()),
            lastop: LastOp::Inserted,
        }];
        let plan = plan_settles(&writes, decisions, BACKOFF, || 0.0);
        assert_eq!(plan.done, [7]);
        assert_eq!(plan.report.succeeded, 1);
        let s = &plan.settles[0];
        assert_eq!(
            (s.state, s.sfid.as_deref(), s.lastop, s.created),
            ("SUCCESS", Some("001NEW"), Some("INSERTED"), true)
        );
        assert_eq!(
            s.entry_ids,
            [10, 11],
            "every entry of the record is settled"
        );
    }

    #[test]
    fn an_update_keeps_its_sfid_an_upsert_that_created_counts_as_created_a_delete_leaves_the_row() {
        let writes = [
            journaled(1, 1, CallKind::Update, 0),
            journaled(2, 2, CallKind::Upsert, 0),
            journaled(3, 3, CallKind::Upsert, 0),
            journaled(4, 4, CallKind::Delete, 0),
        ];
        let success = |sfid: Option<&str>, lastop| Decision::Success {
            sfid: sfid.map(str::to_owned),
            lastop,
        };
        let plan = plan_settles(
            &writes,
            vec![
                success(None, LastOp::Updated),
                success(Some("001X"), LastOp::Inserted),
                success(Some("001Y"), LastOp::Updated),
                success(None, LastOp::Deleted),
            ],
            BACKOFF,
            || 0.0,
        );
        let got: Vec<_> = plan
            .settles
            .iter()
            .map(|s| (s.sfid.as_deref(), s.lastop, s.created))
            .collect();
        assert_eq!(
            got,
            [
                (Some("0011"), Some("UPDATED"), false),
                (Some("001X"), Some("INSERTED"), true),
                (Some("001Y"), Some("UPDATED"), false),
                (Some("0014"), None, false),
            ]
        );
        assert_eq!(plan.done, [1, 2, 3, 4]);
    }

    #[test]
    fn a_definite_failure_marks_the_row_failed_with_the_error() {
        let writes = [journaled(5, 2, CallKind::Update, 3)];
        let error = HcError {
            code: "FIELD_CUSTOM_VALIDATION_EXCEPTION".to_owned(),
            message: "Phone is required".to_owned(),
            fields: vec!["Phone".to_owned()],
        };
        let plan = plan_settles(
            &writes,
            vec![Decision::Failed(error.clone())],
            BACKOFF,
            || 0.0,
        );
        assert_eq!(plan.done, [5]);
        assert_eq!(plan.report.failed, 1);
        let s = &plan.settles[0];
        assert_eq!((s.state, s.lastop), ("FAILED", Some("FAILED")));
        assert_eq!(s.hc_err, Some(error.to_json()));
        assert_eq!(s.message, Some(error.summary()));
        assert!(plan.retries.is_empty() && plan.reconciles.is_empty());
    }

    #[test]
    fn an_indefinite_failure_is_retried_after_the_backoff_of_its_next_attempt() {
        // Attempts 0 and 2 before: the next are the 1st and 3rd retries.
        let writes = [
            journaled(8, 1, CallKind::Update, 0),
            journaled(9, 2, CallKind::Update, 2),
        ];
        let retry = || Decision::Retry {
            reason: "UNABLE_TO_LOCK_ROW".to_owned(),
        };
        let mut jitters = [1.0, 0.0].into_iter();
        let plan = plan_settles(&writes, vec![retry(), retry()], BACKOFF, || {
            jitters.next().unwrap()
        });
        assert_eq!(
            plan.retries,
            [
                (0, 100, "UNABLE_TO_LOCK_ROW".to_owned()),
                (1, 200, "UNABLE_TO_LOCK_ROW".to_owned())
            ]
        );
        assert!(
            plan.own_rows.is_empty(),
            "journal rows of their own already"
        );
        assert_eq!(plan.report.retried, 2);
        assert!(
            plan.settles.is_empty() && plan.done.is_empty(),
            "nothing is settled yet"
        );
    }

    #[test]
    fn an_ambiguous_failure_is_reconciled_not_settled() {
        let writes = [
            journaled(1, 1, CallKind::Create, 0),
            journaled(2, 2, CallKind::Create, 0),
        ];
        let reconcile = |reason: &str| Decision::Reconcile {
            reason: reason.to_owned(),
        };
        let plan = plan_settles(
            &writes,
            vec![reconcile("timeout"), reconcile("connection reset")],
            BACKOFF,
            || 0.0,
        );
        assert_eq!(plan.reconciles, [0, 1]);
        assert_eq!(plan.reconcile_reason, "connection reset");
        assert!(plan.settles.is_empty() && plan.done.is_empty() && plan.retries.is_empty());
        assert_eq!(plan.report, RoundReport::default());
    }
}
