//! The planner and executor: picks an index (Id equality / IN, external-ID equality,
//! `SystemModstamp` range) over a full scan, filters, orders, applies OFFSET/LIMIT, and
//! returns the matching record Ids (a snapshot a cursor can page through) or counts.
//!
//! Order: SOQL guarantees none without `ORDER BY`, and rows that tie on every `ORDER BY` key
//! come in no guaranteed order either (SOQL and SOSL Reference, "ORDER BY": "There is no
//! guarantee of the order of results unless you use an ORDER BY clause in a query", and the
//! sort is not stable for equal keys). So that clients cannot come to rely on an order real
//! Salesforce does not give, unordered rows and ties come in a deterministic order that is
//! not the Id order, drawn from the store's `order_seed` (set through the control plane,
//! `PUT /__emulator/order`): unordered rows by a seeded permutation of each run of 64
//! (`shuffle_by`), ties by a hash of the Id and the seed (`order_key`).

use std::ops::Bound as Edge;

use super::ast::CmpOp;
use super::bind::{Bound, FieldRef, Output, Pred};
use super::eval::{self, Fields};
use super::user::VirtualUser;
use crate::data::ids::SfId;
use crate::data::store::{Record, Store, Table};
use crate::data::value::{Value, NULL};

/// A record plus the store, so fields behind parent hops can be followed.
pub struct Row<'a> {
    pub store: &'a Store,
    pub rec: &'a Record,
}

impl Fields for Row<'_> {
    fn get<'s>(&'s self, f: &'s FieldRef) -> &'s Value {
        let mut rec = self.rec;
        for hop in &f.hops {
            match parent(
                self.store,
                rec,
                hop.ref_field,
                hop.target_index,
                hop.user.as_deref(),
            ) {
                Some(p) => rec = p,
                None => return &NULL,
            }
        }
        rec.get(f.field)
    }
}

/// The parent record referenced by field `ref_field` of `rec`: in table `target`, or the
/// virtual `user` when the relationship leads to the org's user.
pub fn parent<'a>(
    store: &'a Store,
    rec: &Record,
    ref_field: usize,
    target: usize,
    user: Option<&'a VirtualUser>,
) -> Option<&'a Record> {
    if let Some(u) = user {
        return u.resolve(rec.get(ref_field));
    }
    let id = rec.get(ref_field).as_str()?;
    let id = SfId::parse(id).ok()?;
    store.tables.get(target)?.get(&id)
}

/// What a query produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Matching records in result order.
    Rows(Vec<SfId>),
    /// `COUNT()`.
    Count(usize),
    /// `COUNT(field)` items: (alias, count).
    Aggregates(Vec<(String, i64)>),
}

impl Outcome {
    /// `totalSize` of a REST answer.
    pub fn total_size(&self) -> usize {
        match self {
            Outcome::Rows(r) => r.len(),
            Outcome::Count(n) => *n,
            Outcome::Aggregates(_) => 1,
        }
    }
}

/// How rows are found.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// Look up these Ids.
    Ids(Vec<SfId>),
    /// Look up these values in the external-ID/unique index of a field.
    Indexed { field: usize, values: Vec<Value> },
    /// Range scan of the `(SystemModstamp, Id)` index.
    Modstamp { from: Edge<i64>, to: Edge<i64> },
    /// Every record in Id order.
    Scan,
}

/// The chosen access path, whether its order already satisfies `ORDER BY`, and whether it
/// already enforces the whole `WHERE` (no residual filter to evaluate per record).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub access: Access,
    pub presorted: bool,
    pub exact: bool,
}

/// Chooses the access path for `b`. `all_rows` (queryAll) disables the external-ID index,
/// which only holds live records.
pub fn plan(b: &Bound, all_rows: bool) -> Plan {
    let conjuncts: Vec<&Pred> = match &b.filter {
        Some(Pred::And(v)) => v.iter().collect(),
        Some(p) => vec![p],
        None => Vec::new(),
    };
    let sys = &b.object.sys;
    let local = |f: &FieldRef| f.hops.is_empty();
    // 1. Id equality / IN.
    for p in &conjuncts {
        let vals = match p {
            Pred::Cmp {
                f,
                op: CmpOp::Eq,
                v,
            } if local(f) && f.field == sys.id => vec![v.clone()],
            Pred::In {
                f,
                vals,
                negated: false,
            } if local(f) && f.field == sys.id => vals.clone(),
            _ => continue,
        };
        let mut ids: Vec<SfId> = vals
            .iter()
            .filter_map(|v| v.as_str().and_then(|s| SfId::parse(s).ok()))
            .collect();
        ids.sort();
        ids.dedup();
        return Plan {
            access: Access::Ids(ids),
            presorted: id_order(b),
            exact: false,
        };
    }
    // 2. External-ID / unique equality.
    if !all_rows {
        for p in &conjuncts {
            let (f, vals) = match p {
                Pred::Cmp {
                    f,
                    op: CmpOp::Eq,
                    v,
                } => (f, vec![v.clone()]),
                Pred::In {
                    f,
                    vals,
                    negated: false,
                } => (f, vals.clone()),
                _ => continue,
            };
            let fs = &b.object.fields[f.field];
            if local(f) && fs.is_indexed() && f.field != sys.id {
                return Plan {
                    access: Access::Indexed {
                        field: f.field,
                        values: vals.into_iter().filter(|v| !v.is_null()).collect(),
                    },
                    presorted: id_order(b),
                    exact: false,
                };
            }
        }
    }
    // 3. SystemModstamp range.
    if let Some(ms) = sys.system_modstamp {
        let mut from = Edge::Unbounded;
        let mut to = Edge::Unbounded;
        let mut used = false;
        let mut consumed = 0;
        for p in &conjuncts {
            let (op, lo, hi) = match p {
                Pred::Cmp {
                    f,
                    op,
                    v: Value::DateTime(t),
                } if local(f) && f.field == ms => (*op, *t, *t),
                Pred::Range {
                    f,
                    op,
                    lo: Value::DateTime(lo),
                    hi: Value::DateTime(hi),
                } if local(f) && f.field == ms => {
                    // As a range literal: `=` is [lo, hi), `<` is < lo, `<=` is < hi, ...
                    match op {
                        CmpOp::Eq => {
                            tighten_from(&mut from, Edge::Included(*lo));
                            tighten_to(&mut to, Edge::Excluded(*hi));
                            used = true;
                            consumed += 1;
                            continue;
                        }
                        CmpOp::Lt => (CmpOp::Lt, *lo, *lo),
                        CmpOp::Le => (CmpOp::Lt, *hi, *hi),
                        CmpOp::Gt => (CmpOp::Ge, *hi, *hi),
                        CmpOp::Ge => (CmpOp::Ge, *lo, *lo),
                        CmpOp::Ne => continue,
                    }
                }
                _ => continue,
            };
            used = true;
            if op != CmpOp::Ne {
                consumed += 1;
            }
            match op {
                CmpOp::Eq => {
                    tighten_from(&mut from, Edge::Included(lo));
                    tighten_to(&mut to, Edge::Included(hi));
                }
                CmpOp::Gt => tighten_from(&mut from, Edge::Excluded(lo)),
                CmpOp::Ge => tighten_from(&mut from, Edge::Included(lo)),
                CmpOp::Lt => tighten_to(&mut to, Edge::Excluded(hi)),
                CmpOp::Le => tighten_to(&mut to, Edge::Included(hi)),
                CmpOp::Ne => {}
            }
        }
        if used || modstamp_order(b) {
            return Plan {
                access: Access::Modstamp { from, to },
                presorted: modstamp_order(b),
                exact: consumed == conjuncts.len(),
            };
        }
    }
    Plan {
        access: Access::Scan,
        presorted: id_order(b),
        exact: b.filter.is_none(),
    }
}

fn tighten_from(cur: &mut Edge<i64>, new: Edge<i64>) {
    let key = |e: &Edge<i64>| match e {
        Edge::Unbounded => (i64::MIN, 0),
        Edge::Included(v) => (*v, 0),
        Edge::Excluded(v) => (*v, 1),
    };
    if key(&new) > key(cur) {
        *cur = new;
    }
}

fn tighten_to(cur: &mut Edge<i64>, new: Edge<i64>) {
    let key = |e: &Edge<i64>| match e {
        Edge::Unbounded => (i64::MAX, 1),
        Edge::Included(v) => (*v, 1),
        Edge::Excluded(v) => (*v, 0),
    };
    if key(&new) < key(cur) {
        *cur = new;
    }
}

/// `ORDER BY Id [ASC]` (or nothing).
fn id_order(b: &Bound) -> bool {
    match b.order.as_slice() {
        [k] => k.f.hops.is_empty() && k.f.field == b.object.sys.id && !k.descending,
        _ => false,
    }
}

/// `ORDER BY SystemModstamp [ASC], Id [ASC]` (`SystemModstamp` alone has ties, which must not
/// come in Id order).
fn modstamp_order(b: &Bound) -> bool {
    let Some(ms) = b.object.sys.system_modstamp else {
        return false;
    };
    let is = |k: &super::bind::OrderKey, field: usize| {
        k.f.hops.is_empty() && k.f.field == field && !k.descending
    };
    match b.order.as_slice() {
        [k, i] => is(k, ms) && is(i, b.object.sys.id),
        _ => false,
    }
}

/// Runs `b` against `store`. `all_rows` includes the recycle bin (queryAll).
pub fn execute(store: &Store, b: &Bound, all_rows: bool) -> Outcome {
    let table = store.table(b.object_index);
    let p = plan(b, all_rows);
    // Fast path: the index alone answers the query, so records need not be touched.
    let no_deleted = all_rows || table.live_count() == table.total_count();
    if p.exact && no_deleted {
        let ids: Option<Box<dyn Iterator<Item = SfId> + '_>> = match &p.access {
            Access::Scan => Some(Box::new(table.ids())),
            Access::Modstamp { from, to } => Some(Box::new(table.ids_by_modstamp(*from, *to))),
            _ => None,
        };
        match (ids, &b.output) {
            (Some(ids), Output::Fields(_)) if p.presorted => {
                let ids = ids.skip(b.offset);
                return Outcome::Rows(match b.limit {
                    Some(l) => ids.take(l).collect(),
                    None => ids.collect(),
                });
            }
            (Some(ids), Output::Fields(_)) if b.order.is_empty() => {
                let mut ids: Vec<SfId> = ids.collect();
                let wanted = b.limit.map(|l| l.saturating_add(b.offset));
                shuffle_by(&mut ids, store.order_seed, wanted);
                let start = b.offset.min(ids.len());
                let end = b
                    .limit
                    .map_or(ids.len(), |l| start.saturating_add(l).min(ids.len()));
                ids.truncate(end);
                ids.drain(..start);
                return Outcome::Rows(ids);
            }
            (Some(ids), Output::CountAll) => return Outcome::Count(limit_count(ids.count(), b)),
            _ => {}
        }
    }
    // When the access order is the result order and only ids are needed, stop early.
    let wanted = match (&b.output, p.presorted) {
        (Output::Fields(_), true) => b.limit.map(|l| l.saturating_add(b.offset)),
        _ => None,
    };
    let mut hits: Vec<(SfId, &Record)> = Vec::new();
    scan(table, &p.access, &mut |id, rec| {
        if !all_rows && table.is_deleted(rec) {
            return true;
        }
        if let Some(f) = &b.filter {
            if !eval::matches(f, &Row { store, rec }) {
                return true;
            }
        }
        hits.push((id, rec));
        wanted.is_none_or(|w| hits.len() < w)
    });
    match &b.output {
        Output::CountAll => Outcome::Count(limit_count(hits.len(), b)),
        Output::Aggregates(aggs) => Outcome::Aggregates(
            aggs.iter()
                .map(|(f, name)| {
                    let n = match f {
                        Some(f) => hits
                            .iter()
                            .filter(|(_, rec)| !Row { store, rec }.get(f).is_null())
                            .count(),
                        None => hits.len(),
                    };
                    (name.clone(), n as i64)
                })
                .collect(),
        ),
        Output::Fields(_) => {
            let seed = store.order_seed;
            if b.order.is_empty() {
                let wanted = b.limit.map(|l| l.saturating_add(b.offset));
                shuffle_by(&mut hits, seed, wanted);
            } else if !p.presorted {
                hits.sort_by(|(ia, a), (ib, b2)| {
                    eval::order_cmp(&b.order, &Row { store, rec: a }, &Row { store, rec: b2 })
                        .then_with(|| order_key(seed, ia).cmp(&order_key(seed, ib)))
                });
            }
            let start = b.offset.min(hits.len());
            let end = b
                .limit
                .map_or(hits.len(), |l| start.saturating_add(l).min(hits.len()));
            Outcome::Rows(hits[start..end].iter().map(|(id, _)| *id).collect())
        }
    }
}

/// Where a row goes among rows SOQL leaves unordered: a hash of its Id and `seed`.
pub fn order_key(seed: u64, id: &SfId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    id.hash(&mut h);
    let mut x = h.finish() ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Rows per block of the unordered order (see `shuffle_by`).
const BLOCK: usize = 64;

/// splitmix64: one step of a seeded sequence, well mixed.
fn mix(x: u64) -> u64 {
    let mut x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The seeded order of one run of `BLOCK` rows: a permutation of `0..BLOCK` drawn from `seed`
/// (Fisher–Yates over splitmix64).
fn block_permutation(seed: u64) -> [u8; BLOCK] {
    let mut p: [u8; BLOCK] = std::array::from_fn(|i| i as u8);
    let mut state = seed;
    for i in (1..BLOCK).rev() {
        state = mix(state);
        let j = (state % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Puts rows, given in access order (Id or index order), in the seeded order of unordered
/// rows: each run of 64 consecutive rows is permuted by the seed's permutation of 64
/// positions, XOR-ed with a per-run value drawn from the seed and the run's number (slots
/// past the end of a short last run are skipped). Nothing comes in Id order (any two rows
/// of a run are as likely in one order as in the other over seeds and runs), the order is
/// deterministic for a seed, and it costs a table lookup per row rather than a hash and a
/// sort. The records stay close to storage order: renderers read each run in Id order
/// (`render::in_storage_order`), as a fully random order costs cache and TLB misses per
/// record on large tables. With `wanted`, only the first `wanted` rows are kept.
pub fn shuffle_by<T: Copy>(rows: &mut Vec<T>, seed: u64, wanted: Option<usize>) {
    let want = wanted.unwrap_or(usize::MAX).min(rows.len());
    let perm = block_permutation(seed);
    let mut run: Vec<T> = Vec::with_capacity(BLOCK.min(rows.len()));
    let mut done = 0;
    for (n, chunk) in rows.chunks_mut(BLOCK).enumerate() {
        if done >= want {
            break;
        }
        run.clear();
        run.extend_from_slice(chunk);
        let x = (mix(seed ^ mix(n as u64)) % BLOCK as u64) as u8;
        let mut slots = chunk.iter_mut();
        for &q in &perm {
            if let Some(r) = run.get(usize::from(q ^ x)) {
                if let Some(slot) = slots.next() {
                    *slot = *r;
                }
            }
        }
        done += chunk.len();
    }
    rows.truncate(want);
}

fn limit_count(n: usize, b: &Bound) -> usize {
    let n = n.saturating_sub(b.offset);
    b.limit.map_or(n, |l| n.min(l))
}

fn scan<'t>(table: &'t Table, access: &Access, visit: &mut dyn FnMut(SfId, &'t Record) -> bool) {
    match access {
        Access::Ids(ids) => {
            for id in ids {
                if let Some(r) = table.get(id) {
                    if !visit(*id, r) {
                        return;
                    }
                }
            }
        }
        Access::Indexed { field, values } => {
            let mut ids: Vec<SfId> = values
                .iter()
                .flat_map(|v| table.lookup(*field, v).iter().copied())
                .collect();
            ids.sort();
            ids.dedup();
            for id in ids {
                if let Some(r) = table.get(&id) {
                    if !visit(id, r) {
                        return;
                    }
                }
            }
        }
        Access::Modstamp { from, to } => {
            for (id, r) in table.iter_by_modstamp(*from, *to) {
                if !visit(id, r) {
                    return;
                }
            }
        }
        Access::Scan => {
            for (id, r) in table.iter() {
                if !visit(id, r) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::OrgSchema;
    use crate::data::soql::{bind, parse};

    fn plan_of(soql: &str, all_rows: bool) -> Plan {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/describe");
        let org = OrgSchema::load_dir(&dir).expect("mappings describe");
        let q = parse(soql).expect("parses");
        let today = chrono::NaiveDate::from_ymd_opt(2024, 5, 15).unwrap();
        plan(
            &bind::bind(&org, soql, &q, today, None).expect("binds"),
            all_rows,
        )
    }

    #[test]
    fn id_equality_and_in_use_the_id_map() {
        let p = plan_of(
            "SELECT Name FROM Account WHERE Name = 'x' AND Id = '001000000000001AAA'",
            false,
        );
        assert!(matches!(p.access, Access::Ids(ref ids) if ids.len() == 1));
        let p = plan_of(
            "SELECT Name FROM Account WHERE Id IN ('001000000000001AAA', '001000000000002AAA')",
            true,
        );
        assert!(matches!(p.access, Access::Ids(ref ids) if ids.len() == 2));
    }

    #[test]
    fn external_ids_use_their_index_except_for_query_all() {
        let p = plan_of(
            "SELECT Id FROM Invoice__c WHERE External_Id__c = 'a'",
            false,
        );
        assert!(matches!(p.access, Access::Indexed { .. }), "{p:?}");
        let p = plan_of("SELECT Id FROM Invoice__c WHERE External_Id__c = 'a'", true);
        assert_eq!(p.access, Access::Scan);
    }

    #[test]
    fn system_modstamp_ranges_scan_the_ordered_index_presorted() {
        let p = plan_of(
            "SELECT Id,Name,SystemModstamp FROM Account WHERE SystemModstamp >= 2017-01-01T00:00:00Z  ORDER BY SystemModstamp ASC, Id",
            true,
        );
        assert_eq!(
            p,
            Plan {
                access: Access::Modstamp {
                    from: Edge::Included(1_483_228_800_000),
                    to: Edge::Unbounded
                },
                presorted: true,
                exact: true
            }
        );
        let p = plan_of(
            "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01T00:00:00.000+00:00 AND SystemModstamp < 2024-01-31T00:00:00.000+00:00 AND Name != null",
            false,
        );
        assert_eq!(
            p.access,
            Access::Modstamp {
                from: Edge::Excluded(1_704_067_200_000),
                to: Edge::Excluded(1_706_659_200_000)
            }
        );
        // `Name != null` is left to filter record by record.
        assert!(!p.exact);
        let p = plan_of("SELECT Id FROM Account WHERE SystemModstamp = TODAY", false);
        assert_eq!(
            p.access,
            Access::Modstamp {
                from: Edge::Included(1_715_731_200_000),
                to: Edge::Excluded(1_715_817_600_000)
            }
        );
        // ORDER BY SystemModstamp, Id walks the index instead of sorting; SystemModstamp alone
        // has ties, which are not left in Id order.
        let p = plan_of("SELECT Id FROM Account ORDER BY SystemModstamp, Id", false);
        assert!(p.presorted && matches!(p.access, Access::Modstamp { .. }));
        let p = plan_of("SELECT Id FROM Account ORDER BY SystemModstamp", false);
        assert!(!p.presorted);
    }

    #[test]
    fn the_unordered_order_is_seeded_complete_and_not_by_id() {
        let ids: Vec<SfId> = (1..=1000).map(|n| SfId::generate("001", n)).collect();
        let mut a = ids.clone();
        shuffle_by(&mut a, 1, None);
        let mut b = ids.clone();
        shuffle_by(&mut b, 2, None);
        let mut again = ids.clone();
        shuffle_by(&mut again, 1, None);
        assert_eq!(a, again);
        assert_ne!(a, b);
        assert_ne!(a, ids);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, ids);
        let mut first = ids.clone();
        shuffle_by(&mut first, 1, Some(10));
        assert_eq!(first, a[..10]);
    }

    #[test]
    fn other_queries_scan_and_only_id_order_is_presorted() {
        let p = plan_of("SELECT Id FROM Account", false);
        assert_eq!((p.access, p.presorted), (Access::Scan, false));
        let p = plan_of("SELECT Id FROM Account ORDER BY Id ASC", false);
        assert_eq!((p.access, p.presorted), (Access::Scan, true));
        let p = plan_of(
            "SELECT Id FROM Account WHERE Name LIKE 'a%' ORDER BY Name",
            false,
        );
        assert_eq!((p.access, p.presorted), (Access::Scan, false));
    }
}
