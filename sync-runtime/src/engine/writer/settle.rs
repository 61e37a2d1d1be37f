//! Settling (step 5): what the answers of a step do to Postgres, decided by a pure plan
//! ([`plan_settles`]: journaled writes, their decisions and the backoff → settles, journal rows
//! done, retries with their delays, reconciliations), then written in one transaction
//! ([`settle_answers`]).

use crate::adapter::MappingDescriptor;
use crate::salesforce::backoff;

use super::outcome::{self, Backoff, Decision, LastOp};
use super::plan::{CallKind, Write};
use super::store::{Settle, Store};
use super::{Journaled, RoundReport, WriteError};

/// What the answers of a step do (pure output of [`plan_settles`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SettlePlan {
    /// How each finished record's entries end (successes and definite failures).
    pub settles: Vec<Settle>,
    /// Journal rows whose write is over.
    pub done: Vec<i64>,
    /// Journal rows sent again later: id, delay in milliseconds, reason.
    pub retries: Vec<(i64, u64, String)>,
    /// Journal rows to reconcile (their writes may have been applied) ...
    pub reconciles: Vec<i64>,
    /// ... with the reason the last of them gave.
    pub reconcile_reason: String,
    pub report: RoundReport,
}

/// Decides what the answers of a step do (pure): a success settles the record (with the sfid
/// Salesforce gave, or the one it had) and ends its journal row; a definite failure settles it
/// `FAILED` and ends the row; an indefinite failure schedules the row again after
/// `backoff.delay(attempts + 1, jitter())`; an ambiguous one schedules a reconciliation.
pub(super) fn plan_settles(
    writes: &[Journaled],
    decisions: Vec<Decision>,
    backoff: Backoff,
    mut jitter: impl FnMut() -> f64,
) -> SettlePlan {
    let mut plan = SettlePlan::default();
    for (j, decision) in writes.iter().zip(decisions) {
        match decision {
            Decision::Success { sfid, lastop } => {
                let created = j.write.kind == CallKind::Create
                    || (j.write.kind == CallKind::Upsert && lastop == LastOp::Inserted);
                let sfid = sfid.or_else(|| j.write.sfid.clone());
                plan.settles.push(success(&j.write, sfid, lastop, created));
                plan.done.push(j.journal_id);
                plan.report.succeeded += 1;
            }
            Decision::Failed(error) => {
                plan.settles.push(failure(
                    &j.write.table,
                    j.write.record_id,
                    &j.write.entry_ids,
                    &error,
                ));
                plan.done.push(j.journal_id);
                plan.report.failed += 1;
            }
            Decision::Retry { reason } => {
                let attempt = u32::try_from(j.attempts + 1).unwrap_or(u32::MAX);
                let delay = backoff.delay(attempt, jitter());
                plan.retries.push((
                    j.journal_id,
                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    reason,
                ));
                plan.report.retried += 1;
            }
            Decision::Reconcile { reason } => {
                plan.reconciles.push(j.journal_id);
                plan.reconcile_reason = reason;
            }
        }
    }
    plan
}

/// Step 5 on `db`: the answers of a step in one transaction. Its commit need not wait for the
/// disk: were it lost in a Postgres crash, its journal rows would still say `SENDING`, which the
/// next start reconciles like any interrupted send.
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
    let latencies = store
        .settle(&tx, mapping, &plan.settles, &plan.done)
        .await?;
    store.schedule_retry(&tx, &plan.retries).await?;
    if !plan.reconciles.is_empty() {
        store
            .schedule_reconcile(&tx, &plan.reconciles, &plan.reconcile_reason)
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

/// Where a step's answers are settled (pure): `None`, all in one transaction; `Some(n)`, the
/// first `n` in one and the rest in another, at the same time.
pub(super) fn split_point(answers: usize, second_connection: bool) -> Option<usize> {
    (second_connection && answers >= SPLIT_FROM).then_some(answers / 2)
}

/// Step 5 for a step's answers: [`settle_answers`] on `db`, or, for a large step with a `second`
/// connection, its two halves at once, each in its own transaction. The halves share no record
/// (a record has one journal row, so one write in a step) and each is a whole settle: were
/// one to fail, its journal rows would still say `SENDING`, as after any failed settle.
pub(super) async fn settle_split(
    db: &mut tokio_postgres::Client,
    second: Option<&mut tokio_postgres::Client>,
    store: &Store,
    backoff: Backoff,
    mapping: &'static MappingDescriptor,
    writes: &[Journaled],
    mut decisions: Vec<Decision>,
) -> Result<RoundReport, WriteError> {
    match (split_point(writes.len(), second.is_some()), second) {
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
        Journaled {
            journal_id,
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
        assert_eq!(split_point(10_000, true), Some(5_000));
        assert_eq!(split_point(SPLIT_FROM + 1, true), Some(SPLIT_FROM / 2));
        assert_eq!(
            split_point(SPLIT_FROM - 1, true),
            None,
            "a small step: one transaction"
        );
        assert_eq!(split_point(10_000, false), None, "no second connection");
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
                (8, 100, "UNABLE_TO_LOCK_ROW".to_owned()),
                (9, 200, "UNABLE_TO_LOCK_ROW".to_owned())
            ]
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
        assert_eq!(plan.reconciles, [1, 2]);
        assert_eq!(plan.reconcile_reason, "connection reset");
        assert!(plan.settles.is_empty() && plan.done.is_empty() && plan.retries.is_empty());
        assert_eq!(plan.report, RoundReport::default());
    }
}
