//! The write plan: coalesced record operations become an ordered list of Salesforce calls (pure).
//!
//! - Bodies come from the captured column values (`adapter::pg_values_to_sf_body`): an update
//!   carries only the changed, updateable fields, so a concurrent Salesforce edit to another
//!   field survives; an update that changes no field Salesforce knows sends nothing.
//! - A create of a mapping with an `upsert_key` whose row has a value for it is an upsert by
//!   that external ID (idempotent); otherwise a plain create (made exactly-once by the journal,
//!   see `journal`).
//! - Steps run one after the other; the chunks of one step (≤ `chunk_size` records, one sObject
//!   Collections call each) may run concurrently. Creates, upserts and updates run parents first
//!   (mapping order by reference fields, [`mapping_order`]), deletes children first.
//! - One step never names the same record (`sfid`) or external ID (case-insensitive, as
//!   Salesforce compares them) twice: Salesforce fails every duplicate of a chunk. A second
//!   write to the same key waits for a later round.
//! - A step larger than `bulk_threshold` records goes through one Bulk API 2.0 ingest job.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::adapter::{pg_values_to_sf_body, FieldDescriptor, MappingDescriptor, WriteKind};

use super::coalesce::{Coalesced, NetOp};

/// Sizes that shape the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// Records per sObject Collections call (Salesforce's maximum is 200).
    pub chunk_size: usize,
    /// A step with more records than this goes through a Bulk API 2.0 ingest job.
    pub bulk_threshold: usize,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            chunk_size: 200,
            bulk_threshold: 2_000,
        }
    }
}

/// The Salesforce operation of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Create,
    Upsert,
    Update,
    Delete,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Create => "create",
            CallKind::Upsert => "upsert",
            CallKind::Update => "update",
            CallKind::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<CallKind> {
        match s {
            "create" => Some(CallKind::Create),
            "upsert" => Some(CallKind::Upsert),
            "update" => Some(CallKind::Update),
            "delete" => Some(CallKind::Delete),
            _ => None,
        }
    }
}

/// One record's write.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub table: String,
    pub record_id: i32,
    /// The trigger-log entries this write settles.
    pub entry_ids: Vec<i32>,
    pub kind: CallKind,
    /// Update and delete: the record.
    pub sfid: Option<String>,
    /// Upsert: the external ID value.
    pub external_id: Option<String>,
    /// Fields by Salesforce name (empty for a delete).
    pub body: Map<String, Value>,
}

/// How a step reaches Salesforce.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// sObject Collections calls, one per chunk; the chunks may run concurrently.
    Collections(Vec<Vec<Write>>),
    /// One Bulk API 2.0 ingest job.
    Bulk(Vec<Write>),
}

/// Writes of one mapping and one kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Index into the mappings the plan was made for.
    pub mapping: usize,
    pub kind: CallKind,
    pub transport: Transport,
}

impl Step {
    pub fn writes(&self) -> impl Iterator<Item = &Write> {
        let (chunks, bulk): (&[Vec<Write>], &[Write]) = match &self.transport {
            Transport::Collections(chunks) => (chunks, &[]),
            Transport::Bulk(writes) => (&[], writes),
        };
        chunks.iter().flatten().chain(bulk.iter())
    }
}

/// Entries settled without a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub table: String,
    pub record_id: i32,
    pub entry_ids: Vec<i32>,
    /// Whether the row still exists with an `sfid` (so `_hc_lastop` goes back to `SYNCED`).
    pub sfid: Option<String>,
}

/// A record whose values cannot be turned into a request body: a definite failure found
/// before sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub table: String,
    pub record_id: i32,
    pub entry_ids: Vec<i32>,
    pub field: String,
    pub message: String,
}

/// The ordered calls for one round of pending entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Entries that need no call (insert deleted before sending, update of unsent columns only).
    pub settled: Vec<Settled>,
    pub rejected: Vec<Rejected>,
    /// Entries left pending for a later round.
    pub deferred: Vec<i32>,
}

impl Plan {
    pub fn write_count(&self) -> usize {
        self.steps.iter().map(|s| s.writes().count()).sum()
    }
}

/// Mapping indexes, parents before children: a mapping comes after every mapping its reference
/// fields point to, lookups and relationship columns alike (a child naming its parent by
/// external ID needs the parent to exist when it is sent). Self references are ignored; a cycle
/// keeps the given order.
pub fn mapping_order(mappings: &[&MappingDescriptor]) -> Vec<usize> {
    let parents: Vec<Vec<usize>> = mappings
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut ps: Vec<usize> = m
                .fields
                .iter()
                .flat_map(|f| f.reference_to.iter())
                .filter_map(|target| {
                    mappings
                        .iter()
                        .position(|p| p.object.eq_ignore_ascii_case(target))
                })
                .filter(|&p| p != i)
                .collect();
            ps.sort_unstable();
            ps.dedup();
            ps
        })
        .collect();
    let mut order = Vec::with_capacity(mappings.len());
    let mut placed = vec![false; mappings.len()];
    while order.len() < mappings.len() {
        let ready = (0..mappings.len())
            .find(|&i| !placed[i] && parents[i].iter().all(|&p| placed[p]))
            // A cycle: take the first unplaced mapping.
            .or_else(|| (0..mappings.len()).find(|&i| !placed[i]))
            .expect("an unplaced mapping exists while the order is incomplete");
        placed[ready] = true;
        order.push(ready);
    }
    order
}

/// Builds the plan for coalesced record operations of `mappings` (matched by table name).
pub fn plan(mappings: &[&MappingDescriptor], ops: Vec<Coalesced>, config: PlanConfig) -> Plan {
    let mut out = Plan::default();
    let mut writes: Vec<(usize, Write)> = Vec::new();
    for op in ops {
        out.deferred.extend(op.deferred.iter().copied());
        let Some(m) = mappings.iter().position(|m| m.table == op.table) else {
            out.deferred.extend(op.entry_ids);
            continue;
        };
        match build_write(mappings[m], op) {
            Built::Write(w) => writes.push((m, w)),
            Built::Settled(s) => out.settled.push(s),
            Built::Rejected(r) => out.rejected.push(r),
        }
    }
    let (steps, later) = arrange(mappings, writes, config);
    out.steps = steps;
    out.deferred
        .extend(later.into_iter().flat_map(|w| w.entry_ids));
    out.deferred.sort_unstable();
    out
}

/// Orders writes (with their mapping index) into steps: per mapping in parent-first order its
/// upserts, creates and updates, then every mapping's deletes child-first; chunks of
/// `chunk_size`, one Bulk job above `bulk_threshold`. Returns the steps and the writes that must
/// wait because their key already appears in their step.
pub fn arrange(
    mappings: &[&MappingDescriptor],
    writes: Vec<(usize, Write)>,
    config: PlanConfig,
) -> (Vec<Step>, Vec<Write>) {
    let mut slots: Vec<[Vec<Write>; 4]> = (0..mappings.len()).map(|_| Default::default()).collect();
    for (m, w) in writes {
        let slot = match w.kind {
            CallKind::Upsert => 0,
            CallKind::Create => 1,
            CallKind::Update => 2,
            CallKind::Delete => 3,
        };
        slots[m][slot].push(w);
    }
    let mut steps = Vec::new();
    let mut later = Vec::new();
    let mut push = |m: usize, writes: Vec<Write>| {
        let Some(kind) = writes.first().map(|w| w.kind) else {
            return;
        };
        let (writes, dup) = without_duplicate_keys(writes);
        later.extend(dup);
        let transport = if writes.len() > config.bulk_threshold {
            Transport::Bulk(writes)
        } else {
            Transport::Collections(chunk(writes, config.chunk_size.max(1)))
        };
        steps.push(Step {
            mapping: m,
            kind,
            transport,
        });
    };
    let order = mapping_order(mappings);
    for &m in &order {
        let [upserts, creates, updates, _] = &mut slots[m];
        for writes in [upserts, creates, updates] {
            push(m, std::mem::take(writes));
        }
    }
    for &m in order.iter().rev() {
        let deletes = std::mem::take(&mut slots[m][3]);
        push(m, deletes);
    }
    (steps, later)
}

enum Built {
    Write(Write),
    Settled(Settled),
    Rejected(Rejected),
}

fn build_write(mapping: &MappingDescriptor, op: Coalesced) -> Built {
    let settled = |sfid: Option<String>, op: Coalesced| {
        Built::Settled(Settled {
            table: op.table,
            record_id: op.record_id,
            entry_ids: op.entry_ids,
            sfid,
        })
    };
    let (kind, sfid, values) = match &op.op {
        NetOp::Nothing => return settled(None, op),
        NetOp::Delete { sfid } => {
            let sfid = sfid.clone();
            return Built::Write(Write {
                table: op.table,
                record_id: op.record_id,
                entry_ids: op.entry_ids,
                kind: CallKind::Delete,
                sfid: Some(sfid),
                external_id: None,
                body: Map::new(),
            });
        }
        NetOp::Create { values } => (WriteKind::Create, None, values),
        NetOp::Update { sfid, values } => (WriteKind::Update, Some(sfid.clone()), values),
    };
    let body = match pg_values_to_sf_body(mapping, values, kind) {
        Ok(body) => body.fields().clone(),
        Err(e) => {
            return Built::Rejected(Rejected {
                table: op.table,
                record_id: op.record_id,
                entry_ids: op.entry_ids,
                field: e.field.to_owned(),
                message: e.to_string(),
            })
        }
    };
    if kind == WriteKind::Update && body.is_empty() {
        return settled(sfid, op);
    }
    let external_id = match (kind, mapping.upsert_key) {
        (WriteKind::Create, Some(key)) => body.get(key).and_then(external_id_text),
        _ => None,
    };
    let call = match (kind, &external_id) {
        (WriteKind::Update, _) => CallKind::Update,
        (WriteKind::Create, Some(_)) => CallKind::Upsert,
        (WriteKind::Create, None) => CallKind::Create,
    };
    Built::Write(Write {
        table: op.table,
        record_id: op.record_id,
        entry_ids: op.entry_ids,
        kind: call,
        sfid,
        external_id,
        body,
    })
}

fn external_id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The key Salesforce matches a write on, if any.
fn key(write: &Write) -> Option<String> {
    write
        .sfid
        .as_ref()
        .or(write.external_id.as_ref())
        .map(|k| k.to_ascii_lowercase())
}

/// Splits off writes whose key already appeared earlier in the step.
fn without_duplicate_keys(writes: Vec<Write>) -> (Vec<Write>, Vec<Write>) {
    let mut seen = HashSet::new();
    writes
        .into_iter()
        .partition(|w| key(w).is_none_or(|k| seen.insert(k)))
}

fn chunk(writes: Vec<Write>, size: usize) -> Vec<Vec<Write>> {
    let mut chunks = Vec::with_capacity(writes.len().div_ceil(size));
    let mut it = writes.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(size).collect());
    }
    chunks
}

/// The parents a write names by external ID (a relationship column sent in the
/// relationship-upsert form, `"Invoice__r": {"External_Id__c": "INV-1"}`): each relationship
/// column's descriptor with the value, as text (pure).
pub fn parent_keys(
    mapping: &MappingDescriptor,
    write: &Write,
) -> Vec<(&'static FieldDescriptor, String)> {
    if write.kind == CallKind::Delete {
        return Vec::new();
    }
    mapping
        .fields
        .iter()
        .filter_map(|f| {
            let r = f.relationship?;
            let value = write.body.get(r.name)?.get(r.field)?;
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((f, text))
        })
        .collect()
}

/// Takes the writes `held` selects out of the steps (dropping steps left empty); returns the
/// remaining steps, in order, and the writes held back (pure).
pub fn hold_back(steps: Vec<Step>, held: impl Fn(&Write) -> bool) -> (Vec<Step>, Vec<Write>) {
    let mut kept = Vec::new();
    let mut out = Vec::new();
    for step in steps {
        let transport = match step.transport {
            Transport::Collections(chunks) => {
                let chunks: Vec<Vec<Write>> = chunks
                    .into_iter()
                    .map(|chunk| {
                        let (h, k): (Vec<Write>, Vec<Write>) = chunk.into_iter().partition(&held);
                        out.extend(h);
                        k
                    })
                    .filter(|chunk| !chunk.is_empty())
                    .collect();
                if chunks.is_empty() {
                    continue;
                }
                Transport::Collections(chunks)
            }
            Transport::Bulk(writes) => {
                let (h, k): (Vec<Write>, Vec<Write>) = writes.into_iter().partition(&held);
                out.extend(h);
                if k.is_empty() {
                    continue;
                }
                Transport::Bulk(k)
            }
        };
        kept.push(Step { transport, ..step });
    }
    (kept, out)
}

#[cfg(test)]
mod tests;
