//! Claiming (step 3): `NEW` entries read with their rows, coalesced, planned and journaled in one
//! transaction; retries arranged into steps; children held back while a parent they name by
//! external ID is not in Salesforce yet.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::adapter::MappingDescriptor;

use super::entry::{self, group_by_record};
use super::plan::{self, arrange, CallKind, PlanConfig, Step, Transport, Write};
use super::settle::{failure, SPLIT_FROM};
use super::store::{self, Settle, Store};
use super::{
    coalesce, outcome, JournalRef, Journaled, RoundReport, Target, WriteError, WriterConfig,
};

/// The most entries the first claim of a round takes: a round's first batch is sent alone, with
/// nothing to settle meanwhile, so a small one gets Salesforce and Postgres working together
/// sooner; the claims chained after it take up to `max_batch` (pure).
pub(super) fn first_claim_limit(max_batch: i64) -> i64 {
    max_batch.min(FIRST_CLAIM)
}

/// See [`first_claim_limit`].
const FIRST_CLAIM: i64 = 2_000;

/// Which `NEW` entries a claim looks at: those with ids above `after`, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub after: i32,
    pub limit: i64,
}

/// Step 3 on `db` (see [`Writer::claim`]): the entries in `window`.
pub(super) async fn claim_batch(
    db: &mut tokio_postgres::Client,
    store: &Store,
    targets: &[Target],
    config: &WriterConfig,
    report: &mut RoundReport,
    retries: Vec<Journaled>,
    window: Window,
) -> Result<(Vec<SendStep>, usize, i32), WriteError> {
    let Window { after, limit } = window;
    let mappings: Vec<&'static MappingDescriptor> = targets.iter().map(|t| t.mapping).collect();
    let target_of = |table: &str| targets.iter().position(|t| t.mapping.table == table);

    let mut steps = Vec::new();

    if !retries.is_empty() {
        let mut attempts = HashMap::new();
        let mut ids = HashMap::new();
        let mut writes = Vec::new();
        for r in retries {
            let Some(m) = target_of(&r.write.table) else {
                continue;
            };
            let key = (r.write.table.clone(), r.write.record_id);
            attempts.insert(key.clone(), r.attempts);
            ids.insert(key, r.journal);
            writes.push((m, r.write));
        }
        let config = PlanConfig {
            bulk_threshold: usize::MAX,
            ..config.plan
        };
        let (retry_steps, later) = arrange(&mappings, writes, config);
        // Retries are journal rows of their own (`Store::take_due_retries`).
        let later_ids: Vec<(i64, u64, String)> = later
            .iter()
            .filter_map(|w| match ids[&(w.table.clone(), w.record_id)] {
                JournalRef::Row(id) => Some(id),
                JournalRef::Batch(_) => None,
            })
            .map(|id| (id, 0, "waits for another write of the same key".to_owned()))
            .collect();
        store.schedule_retry(&*db, &later_ids).await?;
        for step in retry_steps {
            steps.push(SendStep::new(step, &ids, &attempts));
        }
    }

    let started = std::time::Instant::now();
    let tx = db.transaction().await?;
    let store::Claimed { entries, unusable } = store.claim(&tx, &mappings, limit, after).await?;
    let took_claim = started.elapsed();
    let last = entries
        .iter()
        .map(|e| e.id)
        .chain(unusable.iter().map(|u| u.id))
        .max()
        .unwrap_or(after);
    for mapping in &mappings {
        let settles: Vec<Settle> = unusable
            .iter()
            .filter(|u| u.table == mapping.table)
            .map(unusable_failure)
            .collect();
        if !settles.is_empty() {
            tracing::warn!(
                table = mapping.table,
                entries = settles.len(),
                "trigger-log entries that name no row or action archived as FAILED"
            );
            report.failed += settles.len();
            store.settle(&tx, mapping, &settles, &[]).await?;
        }
    }
    let claimed = entries.len();
    if claimed == 0 {
        tx.commit().await?;
        return Ok((steps, 0, after));
    }
    let mut rows = HashMap::new();
    for mapping in &mappings {
        let (ids, with_values) = entry::rows_to_read(&entries, mapping.table);
        if ids.is_empty() {
            continue;
        }
        for (id, row) in store.rows(&tx, mapping, &ids, &with_values).await? {
            rows.insert((mapping.table, id), row);
        }
    }
    let took_rows = started.elapsed();
    let claimed_ids: Vec<i32> = entries.iter().map(|e| e.id).collect();
    let groups = group_by_record(entries, |table, id| {
        mappings
            .iter()
            .find(|m| m.table == table)
            .and_then(|m| rows.remove(&(m.table, id)))
    });
    let ops = groups.iter().map(coalesce::coalesce).collect();
    let mut planned = plan::plan(&mappings, ops, config.plan);
    let planned_steps = std::mem::take(&mut planned.steps);
    let (kept, held) =
        hold_for_unsent_parents(&tx, store, &mappings, planned_steps, &claimed_ids).await?;
    planned.steps = kept;
    report.held += held;
    let claimed = claimed - held.min(claimed);

    // Entries settled without a call, and values Salesforce would refuse anyway.
    for (m, mapping) in mappings.iter().enumerate() {
        let mut settles: Vec<Settle> = planned
            .settled
            .iter()
            .filter(|s| s.table == mapping.table)
            .map(|s| Settle {
                table: s.table.clone(),
                record_id: s.record_id,
                entry_ids: s.entry_ids.clone(),
                state: "IGNORED",
                sfid: s.sfid.clone(),
                lastop: s.sfid.as_ref().map(|_| "SYNCED"),
                hc_err: None,
                message: Some("nothing to send".to_owned()),
                created: false,
            })
            .collect();
        report.settled_without_call += settles.len();
        for r in planned.rejected.iter().filter(|r| r.table == mapping.table) {
            let error = outcome::HcError {
                code: "INVALID_VALUE".to_owned(),
                message: r.message.clone(),
                fields: vec![r.field.clone()],
            };
            settles.push(failure(&r.table, r.record_id, &r.entry_ids, &error));
            report.failed += 1;
        }
        if !settles.is_empty() {
            store.settle(&tx, mappings[m], &settles, &[]).await?;
        }
    }

    let took_plan = started.elapsed();
    // Entries left for later (`planned.deferred`) are still `NEW`: the next claim takes them.
    let mut journal_ids = HashMap::new();
    let no_attempts = HashMap::new();
    for (m, mapping) in mappings.iter().enumerate() {
        let groups: Vec<Vec<&Write>> = planned
            .steps
            .iter()
            .filter(|s| s.mapping == m)
            .flat_map(batch_groups)
            .collect();
        let ids = store.journal_batches(&tx, mapping.object, &groups).await?;
        for (group, id) in groups.iter().zip(ids) {
            for w in group {
                journal_ids.insert((w.table.clone(), w.record_id), JournalRef::Batch(id));
            }
        }
    }
    let took_journal = started.elapsed();
    tx.commit().await?;
    tracing::debug!(
        claimed,
        claim_ms = took_claim.as_millis() as u64,
        rows_ms = (took_rows - took_claim).as_millis() as u64,
        plan_ms = (took_plan - took_rows).as_millis() as u64,
        journal_ms = (took_journal - took_plan).as_millis() as u64,
        ms = started.elapsed().as_millis() as u64,
        "writer claimed and journaled"
    );
    for step in planned.steps {
        steps.push(SendStep::new(step, &journal_ids, &no_attempts));
    }
    Ok((steps, claimed, last))
}

/// Holds back the writes of children that name, by external ID, a parent whose own write has
/// not been sent ([`Store::unsent_parents`]): its entries stay `NEW` for a later round. A parent
/// of a mapping this writer sends and in flight is not waited for (its step lands before the
/// child's goes out); one sent by another writer, or not taken by anyone yet, is.
async fn hold_for_unsent_parents(
    tx: &tokio_postgres::Transaction<'_>,
    store: &Store,
    mappings: &[&'static MappingDescriptor],
    steps: Vec<Step>,
    claimed: &[i32],
) -> Result<(Vec<Step>, usize), WriteError> {
    // (mapping, relationship column) → parent (table, column) and the values written.
    let mut asked: HashMap<(usize, &'static str), (String, String, BTreeSet<String>)> =
        HashMap::new();
    for step in &steps {
        let mapping = mappings[step.mapping];
        for write in step.writes() {
            for (field, value) in plan::parent_keys(mapping, write) {
                let (Some(r), [parent]) = (field.relationship, field.reference_to) else {
                    continue;
                };
                asked
                    .entry((step.mapping, field.column))
                    .or_insert_with(|| {
                        (
                            parent.to_ascii_lowercase(),
                            r.field.to_ascii_lowercase(),
                            BTreeSet::new(),
                        )
                    })
                    .2
                    .insert(value);
            }
        }
    }
    if asked.is_empty() {
        return Ok((steps, 0));
    }
    let mut waiting: HashSet<(usize, &'static str, String)> = HashSet::new();
    for ((m, column), (parent_table, parent_column, values)) in asked {
        let values: Vec<String> = values.into_iter().collect();
        let another_writer = !mappings.iter().any(|p| p.table == parent_table);
        for value in store
            .unsent_parents(
                tx,
                &parent_table,
                &parent_column,
                &values,
                claimed,
                another_writer,
            )
            .await?
        {
            waiting.insert((m, column, value));
        }
    }
    if waiting.is_empty() {
        return Ok((steps, 0));
    }
    let table_mapping: HashMap<&str, usize> = mappings
        .iter()
        .enumerate()
        .map(|(i, m)| (m.table, i))
        .collect();
    let (kept, held) = plan::hold_back(steps, |w| {
        let Some(&m) = table_mapping.get(w.table.as_str()) else {
            return false;
        };
        plan::parent_keys(mappings[m], w)
            .into_iter()
            .any(|(f, v)| waiting.contains(&(m, f.column, v)))
    });
    tracing::debug!(
        held = held.len(),
        "children wait for parents whose writes are not sent yet"
    );
    Ok((kept, held.iter().map(|w| w.entry_ids.len()).sum()))
}

/// The writes of a step journaled together, a batch row each (pure): each sObject Collections
/// chunk (its answer may be settled before the step's other chunks answer); a Bulk API job's
/// writes, in two halves when its settle is split in two ([`super::settle::SPLIT_FROM`]), each
/// half settled in its own transaction.
pub(super) fn batch_groups(step: &Step) -> Vec<Vec<&Write>> {
    match &step.transport {
        Transport::Collections(chunks) => chunks.iter().map(|c| c.iter().collect()).collect(),
        Transport::Bulk(writes) if writes.len() >= SPLIT_FROM => {
            let (first, second) = writes.split_at(writes.len() / 2);
            vec![first.iter().collect(), second.iter().collect()]
        }
        Transport::Bulk(writes) => vec![writes.iter().collect()],
    }
}

/// A planned step whose writes carry their journal rows.
pub(super) struct SendStep {
    pub(super) mapping: usize,
    pub(super) kind: CallKind,
    pub(super) transport: SendTransport,
}

pub(super) enum SendTransport {
    Collections(Vec<Vec<Journaled>>),
    Bulk(Vec<Journaled>),
}

impl SendStep {
    pub(super) fn new(
        step: Step,
        journal_ids: &HashMap<(String, i32), JournalRef>,
        attempts: &HashMap<(String, i32), i32>,
    ) -> SendStep {
        let wrap = |w: Write| {
            let key = (w.table.clone(), w.record_id);
            Journaled {
                journal: journal_ids[&key],
                attempts: attempts.get(&key).copied().unwrap_or(0),
                write: w,
            }
        };
        let transport = match step.transport {
            Transport::Collections(chunks) => SendTransport::Collections(
                chunks
                    .into_iter()
                    .map(|c| c.into_iter().map(wrap).collect())
                    .collect(),
            ),
            Transport::Bulk(writes) => SendTransport::Bulk(writes.into_iter().map(wrap).collect()),
        };
        SendStep {
            mapping: step.mapping,
            kind: step.kind,
            transport,
        }
    }
}

/// An entry no write can be made of, archived `FAILED` with the reason; no row is touched.
fn unusable_failure(u: &store::Unusable) -> Settle {
    Settle {
        table: u.table.clone(),
        record_id: 0,
        entry_ids: vec![u.id],
        state: "FAILED",
        sfid: None,
        lastop: None,
        hc_err: None,
        message: Some(u.message.clone()),
        created: false,
    }
}

#[cfg(test)]
mod tests {
    use super::{batch_groups, first_claim_limit, SPLIT_FROM};
    use crate::engine::writer::plan::{CallKind, Step, Transport, Write};

    fn create(record_id: i32) -> Write {
        Write {
            table: "account".to_owned(),
            record_id,
            entry_ids: vec![record_id],
            kind: CallKind::Create,
            sfid: None,
            external_id: None,
            body: Default::default(),
        }
    }

    fn step(transport: Transport) -> Step {
        Step {
            mapping: 0,
            kind: CallKind::Create,
            transport,
        }
    }

    fn sizes(step: &Step) -> Vec<usize> {
        batch_groups(step).iter().map(Vec::len).collect()
    }

    #[test]
    fn each_call_is_journaled_as_one_batch_row_and_a_large_bulk_job_as_two_halves() {
        let chunks = (0..3)
            .map(|c| (0..200).map(|i| create(c * 200 + i)).collect())
            .collect();
        assert_eq!(
            sizes(&step(Transport::Collections(chunks))),
            [200, 200, 200],
            "a chunk's answer may be settled before the others"
        );
        let bulk = |n: i32| step(Transport::Bulk((0..n).map(create).collect()));
        assert_eq!(
            sizes(&bulk(10_000)),
            [5_000, 5_000],
            "settled in two halves"
        );
        assert_eq!(sizes(&bulk(SPLIT_FROM as i32 + 1)), [1_000, 1_001]);
        assert_eq!(sizes(&bulk(SPLIT_FROM as i32 - 1)), [SPLIT_FROM - 1]);
        let ten = bulk(10);
        let groups = batch_groups(&ten);
        assert_eq!(
            groups[0].iter().map(|w| w.record_id).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>(),
            "in the step's order"
        );
    }

    #[test]
    fn a_rounds_first_claim_is_small_and_the_claims_chained_after_it_take_a_whole_batch() {
        assert_eq!(first_claim_limit(10_000), 2_000);
        assert_eq!(first_claim_limit(500), 500, "never more than a batch");
    }
}
