//! Record tables: one `Table` per object holding `Record`s (sparse field vectors by describe
//! position), an Id index (ordered, for `ORDER BY Id` and Id ranges), an ordered
//! `(SystemModstamp, Id)` index for replication range scans, hash indexes on external-ID and
//! unique fields (live records only), and the recycle bin (soft-deleted rows stay with
//! `IsDeleted = true`; purge removes them). `Table::put` / `Table::remove` keep every index in step,
//! which is also how the write path rolls a transaction back.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::data::ids::SfId;
use crate::data::schema::{FieldType, ObjectSchema, OrgSchema};
use crate::data::value::{Value, NULL};

/// One record: a presence bitmap over field positions plus the non-null values in field order.
/// Memory-lean for wide objects where most fields are null.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    bits: Box<[u64]>,
    vals: Vec<Value>,
}

impl Record {
    /// An all-null record for an object with `n_fields` fields.
    pub fn new(n_fields: usize) -> Record {
        Record {
            bits: vec![0u64; n_fields.div_ceil(64)].into_boxed_slice(),
            vals: Vec::new(),
        }
    }

    /// Builds from a dense vector (index = field position).
    pub fn from_dense(values: Vec<Value>) -> Record {
        let mut r = Record::new(values.len());
        for (i, v) in values.into_iter().enumerate() {
            if !v.is_null() {
                r.bits[i / 64] |= 1 << (i % 64);
                r.vals.push(v);
            }
        }
        r.vals.shrink_to_fit();
        r
    }

    /// Moves the non-null values out of a dense buffer (index = field position), leaving it
    /// all null for reuse. One exact-size allocation: the bulk-load path.
    pub fn from_slots(slots: &mut [Value]) -> Record {
        let mut r = Record::new(slots.len());
        let n = slots.iter().filter(|v| !v.is_null()).count();
        r.vals.reserve_exact(n);
        for (i, v) in slots.iter_mut().enumerate() {
            if !v.is_null() {
                r.bits[i / 64] |= 1 << (i % 64);
                r.vals.push(std::mem::take(v));
            }
        }
        r
    }

    fn rank(&self, i: usize) -> usize {
        let w = i / 64;
        let mut n = 0;
        for b in &self.bits[..w] {
            n += b.count_ones() as usize;
        }
        let mask = (1u64 << (i % 64)) - 1;
        n + (self.bits[w] & mask).count_ones() as usize
    }

    fn has(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Value at field position `i` (`Null` when unset or out of range).
    pub fn get(&self, i: usize) -> &Value {
        if self.has(i) {
            &self.vals[self.rank(i)]
        } else {
            &NULL
        }
    }

    /// Sets field position `i`; `Null` clears it.
    pub fn set(&mut self, i: usize, v: Value) {
        if i / 64 >= self.bits.len() {
            let mut b = self.bits.to_vec();
            b.resize(i / 64 + 1, 0);
            self.bits = b.into_boxed_slice();
        }
        let r = self.rank(i);
        match (self.has(i), v.is_null()) {
            (true, true) => {
                self.vals.remove(r);
                self.bits[i / 64] &= !(1 << (i % 64));
            }
            (true, false) => self.vals[r] = v,
            (false, false) => {
                self.vals.insert(r, v);
                self.bits[i / 64] |= 1 << (i % 64);
            }
            (false, true) => {}
        }
    }

    /// Releases spare capacity (records built field by field over-allocate).
    pub fn shrink_to_fit(&mut self) {
        if self.vals.capacity() > self.vals.len() + 2 {
            self.vals.shrink_to_fit();
        }
    }

    /// Reserves room for `n` more non-null fields.
    pub fn reserve_exact(&mut self, n: usize) {
        self.vals.reserve_exact(n);
    }

    /// Number of non-null fields.
    pub fn len(&self) -> usize {
        self.vals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vals.is_empty()
    }

    /// (position, value) of every non-null field.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Value)> + '_ {
        let mut k = 0;
        self.bits
            .iter()
            .enumerate()
            .flat_map(|(w, bits)| {
                (0..64)
                    .filter(move |b| bits & (1u64 << b) != 0)
                    .map(move |b| w * 64 + b)
            })
            .map(move |i| {
                let v = &self.vals[k];
                k += 1;
                (i, v)
            })
    }
}

/// Index key of a value in an external-ID/unique index (text is case-folded unless the field
/// is case-sensitive).
pub fn index_key(v: &Value, case_sensitive: bool) -> Option<Box<str>> {
    match v {
        Value::Null => None,
        Value::String(s) if !case_sensitive => Some(s.to_lowercase().into()),
        other => Some(other.to_csv().into()),
    }
}

/// Records of one object.
#[derive(Debug)]
pub struct Table {
    pub object: Arc<ObjectSchema>,
    rows: HashMap<SfId, Record>,
    by_id: BTreeMap<SfId, ()>,
    by_modstamp: BTreeMap<(i64, SfId), ()>,
    /// field position → (key → live record ids).
    ext: HashMap<usize, HashMap<Box<str>, Vec<SfId>>>,
    indexed: Vec<(usize, bool)>,
    /// Hard-deleted (purged) records: (purge time ms, id), for `/deleted`.
    purged: BTreeMap<(i64, SfId), ()>,
    /// The recycle bin: soft-deleted records by (deletion stamp ms, id), for its retention.
    bin: BTreeMap<(i64, SfId), ()>,
    live: usize,
    next_counter: u64,
}

impl Table {
    /// A table indexing external-ID/unique fields and the reference fields in `ref_fields`
    /// (children lookups for cascade/restricted deletes).
    pub fn new(object: Arc<ObjectSchema>, ref_fields: &[usize]) -> Table {
        let indexed: Vec<(usize, bool)> = object
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| (f.is_indexed() && f.ftype != FieldType::Id) || ref_fields.contains(i))
            .map(|(i, f)| (i, f.case_sensitive))
            .collect();
        let ext = indexed
            .iter()
            .map(|(i, _)| (*i, HashMap::default()))
            .collect();
        Table {
            object,
            rows: HashMap::default(),
            by_id: BTreeMap::new(),
            by_modstamp: BTreeMap::new(),
            ext,
            indexed,
            purged: BTreeMap::new(),
            bin: BTreeMap::new(),
            live: 0,
            next_counter: 1,
        }
    }

    /// Takes the object's new metadata after a field was added at its end (positions of the
    /// existing fields unchanged, so stored records read the new one as null). A new external
    /// ID or unique field, or a reference field with a delete rule, gets its (empty: no record
    /// has a value yet) index; `ref_fields` as for `new`.
    pub fn set_object(&mut self, object: Arc<ObjectSchema>, ref_fields: &[usize]) {
        for (i, f) in object
            .fields
            .iter()
            .enumerate()
            .skip(self.object.fields.len())
        {
            if (f.is_indexed() && f.ftype != FieldType::Id) || ref_fields.contains(&i) {
                self.indexed.push((i, f.case_sensitive));
                self.ext.insert(i, HashMap::default());
            }
        }
        self.object = object;
    }

    /// A fresh Id with this object's key prefix.
    pub fn next_id(&mut self) -> SfId {
        let id = SfId::generate(&self.object.key_prefix, self.next_counter);
        self.next_counter += 1;
        id
    }

    /// The counter the next generated Id will use (persistence).
    pub fn next_counter(&self) -> u64 {
        self.next_counter
    }

    /// Never hands out Ids with a counter below `n` (persistence: purged Ids stay unused).
    pub fn reserve_counter(&mut self, n: u64) {
        self.next_counter = self.next_counter.max(n);
    }

    /// Number of live (not deleted) records.
    pub fn live_count(&self) -> usize {
        self.live
    }

    /// Number of records including the recycle bin.
    pub fn total_count(&self) -> usize {
        self.rows.len()
    }

    pub fn get(&self, id: &SfId) -> Option<&Record> {
        self.rows.get(id)
    }

    /// Whether the record is in the recycle bin.
    pub fn is_deleted(&self, r: &Record) -> bool {
        self.object
            .sys
            .is_deleted
            .is_some_and(|i| r.get(i) == &Value::Bool(true))
    }

    fn modstamp(&self, r: &Record) -> i64 {
        match self.object.sys.system_modstamp.map(|i| r.get(i)) {
            Some(Value::DateTime(ms)) => *ms,
            _ => 0,
        }
    }

    fn unindex(&mut self, id: SfId, r: &Record) {
        let ms = self.modstamp(r);
        self.by_modstamp.remove(&(ms, id));
        if self.is_deleted(r) {
            self.bin.remove(&(ms, id));
            return;
        }
        self.live -= 1;
        for (f, cs) in &self.indexed {
            if let Some(k) = index_key(r.get(*f), *cs) {
                if let Some(ids) = self.ext.get_mut(f).and_then(|m| m.get_mut(&k)) {
                    ids.retain(|x| *x != id);
                    if ids.is_empty() {
                        self.ext.get_mut(f).map(|m| m.remove(&k));
                    }
                }
            }
        }
    }

    fn index(&mut self, id: SfId, r: &Record) {
        let ms = self.modstamp(r);
        self.by_modstamp.insert((ms, id), ());
        if self.is_deleted(r) {
            self.bin.insert((ms, id), ());
            return;
        }
        self.live += 1;
        for (f, cs) in &self.indexed {
            if let Some(k) = index_key(r.get(*f), *cs) {
                if let Some(m) = self.ext.get_mut(f) {
                    m.entry(k).or_default().push(id);
                }
            }
        }
    }

    /// Inserts or replaces the record with this Id (its Id field must hold `id`); returns the
    /// previous version.
    pub fn put(&mut self, id: SfId, mut r: Record) -> Option<Record> {
        r.shrink_to_fit();
        let old = self.rows.remove(&id);
        if let Some(o) = &old {
            self.unindex(id, o);
        } else {
            self.by_id.insert(id, ());
            if let Some(n) = id.counter() {
                if id.key_prefix() == self.object.key_prefix && n >= self.next_counter {
                    self.next_counter = n + 1;
                }
            }
        }
        self.index(id, &r);
        self.rows.insert(id, r);
        old
    }

    /// Bulk insert (seeding, loading a data file): the ordered indexes are built from sorted
    /// runs instead of one tree insert per record. When an Id is already in the table or
    /// repeats in the batch, falls back to `put` for every record.
    pub fn put_many(&mut self, records: Vec<(SfId, Record)>) {
        let mut ids: Vec<SfId> = records.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        let clash =
            ids.windows(2).any(|w| w[0] == w[1]) || ids.iter().any(|id| self.rows.contains_key(id));
        if clash {
            for (id, r) in records {
                self.put(id, r);
            }
            return;
        }
        self.rows.reserve(records.len());
        let mut stamps = Vec::with_capacity(records.len());
        for (id, r) in records {
            if let Some(n) = id.counter() {
                if id.key_prefix() == self.object.key_prefix && n >= self.next_counter {
                    self.next_counter = n + 1;
                }
            }
            stamps.push((self.modstamp(&r), id));
            if self.is_deleted(&r) {
                self.bin.insert((self.modstamp(&r), id), ());
            } else {
                self.live += 1;
                for (f, cs) in &self.indexed {
                    if let Some(k) = index_key(r.get(*f), *cs) {
                        if let Some(m) = self.ext.get_mut(f) {
                            m.entry(k).or_default().push(id);
                        }
                    }
                }
            }
            self.rows.insert(id, r);
        }
        stamps.sort_unstable();
        let mut by_id: BTreeMap<SfId, ()> = ids.into_iter().map(|id| (id, ())).collect();
        self.by_id.append(&mut by_id);
        let mut by_stamp: BTreeMap<(i64, SfId), ()> = stamps.into_iter().map(|k| (k, ())).collect();
        self.by_modstamp.append(&mut by_stamp);
    }

    /// Removes the record entirely (purge); returns it.
    pub fn remove(&mut self, id: &SfId) -> Option<Record> {
        let r = self.rows.remove(id)?;
        self.unindex(*id, &r);
        self.by_id.remove(id);
        Some(r)
    }

    /// Records a purge for `/deleted`.
    pub fn log_purge(&mut self, id: SfId, at_ms: i64) {
        self.purged.insert((at_ms, id), ());
    }

    /// Forgets a purge log entry (transaction rollback).
    pub fn unlog_purge(&mut self, id: SfId, at_ms: i64) {
        self.purged.remove(&(at_ms, id));
    }

    /// Live record ids whose indexed field `field` has value `v`.
    pub fn lookup(&self, field: usize, v: &Value) -> &[SfId] {
        let cs = self
            .indexed
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| *c);
        match cs.and_then(|cs| index_key(v, cs)) {
            Some(k) => self
                .ext
                .get(&field)
                .and_then(|m| m.get(&k))
                .map(|v| v.as_slice())
                .unwrap_or(&[]),
            None => &[],
        }
    }

    /// Whether `field` has a value index (external ID / unique).
    pub fn is_indexed(&self, field: usize) -> bool {
        self.ext.contains_key(&field)
    }

    /// All records (live and deleted) in Id order, starting after/at a bound.
    pub fn iter_by_id(
        &self,
        from: Bound<SfId>,
        to: Bound<SfId>,
    ) -> impl DoubleEndedIterator<Item = (SfId, &Record)> + '_ {
        self.by_id
            .range((from, to))
            .filter_map(move |(id, _)| self.rows.get(id).map(|r| (*id, r)))
    }

    /// All records (live and deleted) in Id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (SfId, &Record)> + '_ {
        self.iter_by_id(Bound::Unbounded, Bound::Unbounded)
    }

    /// Records with `from <= SystemModstamp < to` (ms bounds as given), ordered by
    /// (SystemModstamp, Id).
    pub fn iter_by_modstamp(
        &self,
        from: Bound<i64>,
        to: Bound<i64>,
    ) -> impl DoubleEndedIterator<Item = (SfId, &Record)> + '_ {
        let lo = match from {
            Bound::Included(ms) => Bound::Included((ms, SfId::MIN)),
            Bound::Excluded(ms) => Bound::Excluded((ms, SfId::MAX)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let hi = match to {
            Bound::Included(ms) => Bound::Included((ms, SfId::MAX)),
            Bound::Excluded(ms) => Bound::Excluded((ms, SfId::MIN)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.by_modstamp
            .range((lo, hi))
            .filter_map(move |((_, id), _)| self.rows.get(id).map(|r| (*id, r)))
    }

    /// Ids (live and deleted) in Id order, without touching the records (query snapshots).
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = SfId> + '_ {
        self.by_id.keys().copied()
    }

    /// Ids with `from <= SystemModstamp < to` (bounds as given) in (SystemModstamp, Id) order,
    /// without touching the records.
    pub fn ids_by_modstamp(
        &self,
        from: Bound<i64>,
        to: Bound<i64>,
    ) -> impl DoubleEndedIterator<Item = SfId> + '_ {
        let lo = match from {
            Bound::Included(ms) => Bound::Included((ms, SfId::MIN)),
            Bound::Excluded(ms) => Bound::Excluded((ms, SfId::MAX)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let hi = match to {
            Bound::Included(ms) => Bound::Included((ms, SfId::MAX)),
            Bound::Excluded(ms) => Bound::Excluded((ms, SfId::MIN)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.by_modstamp.range((lo, hi)).map(|((_, id), _)| *id)
    }

    /// Recycle-bin records deleted (last stamped) before `before_ms` (all with `None`), with
    /// that time, oldest first.
    pub fn bin_before(&self, before_ms: Option<i64>) -> impl Iterator<Item = (SfId, i64)> + '_ {
        let hi = before_ms.map_or(Bound::Unbounded, |ms| Bound::Excluded((ms, SfId::MIN)));
        self.bin
            .range((Bound::Unbounded, hi))
            .map(|((ms, id), _)| (*id, *ms))
    }

    /// Purged records with purge time in `[from, to)`.
    pub fn iter_purged(&self, from: i64, to: i64) -> impl Iterator<Item = (SfId, i64)> + '_ {
        self.purged
            .range((from, SfId::MIN)..(to, SfId::MIN))
            .map(|((ms, id), _)| (*id, *ms))
    }

    /// Removes every record (indexes stay defined).
    pub fn clear(&mut self) {
        self.rows.clear();
        self.by_id.clear();
        self.by_modstamp.clear();
        for m in self.ext.values_mut() {
            m.clear();
        }
        self.purged.clear();
        self.bin.clear();
        self.live = 0;
        self.next_counter = 1;
    }

    /// Live records whose reference field `field` points at `parent` (field must be indexed:
    /// external-ID/unique or carrying a delete rule).
    pub fn children(&self, field: usize, parent: &SfId) -> &[SfId] {
        self.lookup(field, &Value::String(parent.as_str().into()))
    }
}

/// All tables of the org, positioned like `OrgSchema::objects`.
#[derive(Debug)]
pub struct Store {
    pub tables: Vec<Table>,
    /// Seed of the order of rows SOQL leaves unordered (see `soql::exec::shuffle_by` and `order_key`).
    pub order_seed: u64,
}

/// The `order_seed` of a new store.
pub const DEFAULT_ORDER_SEED: u64 = 0x5eed;

impl Store {
    pub fn new(schema: &OrgSchema) -> Store {
        Store {
            tables: schema
                .objects
                .iter()
                .enumerate()
                .map(|(i, o)| Table::new(o.clone(), &schema.rule_fields(i)))
                .collect(),
            order_seed: DEFAULT_ORDER_SEED,
        }
    }

    pub fn table(&self, obj: usize) -> &Table {
        &self.tables[obj]
    }

    pub fn table_mut(&mut self, obj: usize) -> &mut Table {
        &mut self.tables[obj]
    }

    /// Table of the object owning an Id's key prefix.
    pub fn table_for_id(&self, id: &SfId) -> Option<(usize, &Table)> {
        self.tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.object.key_prefix == id.key_prefix())
    }

    /// Finds a record anywhere by Id.
    pub fn find(&self, id: &SfId) -> Option<(usize, &Record)> {
        let (i, t) = self.table_for_id(id)?;
        t.get(id).map(|r| (i, r))
    }

    /// Bulk load path for seeding: assigns Ids to records whose Id field is null, indexes
    /// them, and returns the Ids. No validation, no CDC.
    pub fn insert_many(&mut self, obj: usize, records: Vec<Record>) -> Vec<SfId> {
        let t = &mut self.tables[obj];
        let id_pos = t.object.sys.id;
        let mut ids = Vec::with_capacity(records.len());
        let mut rows = Vec::with_capacity(records.len());
        for mut r in records {
            let id = match r.get(id_pos).as_str().and_then(|s| SfId::parse(s).ok()) {
                Some(id) => id,
                None => {
                    let id = t.next_id();
                    r.set(id_pos, Value::String(id.as_str().into()));
                    id
                }
            };
            rows.push((id, r));
            ids.push(id);
        }
        t.put_many(rows);
        ids
    }

    pub fn clear(&mut self) {
        for t in &mut self.tables {
            t.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_record_get_set() {
        let mut r = Record::new(130);
        assert!(r.get(5).is_null());
        r.set(100, Value::Int(1));
        r.set(5, Value::str("a"));
        r.set(129, Value::Bool(true));
        assert_eq!(r.get(5), &Value::str("a"));
        assert_eq!(r.get(100), &Value::Int(1));
        assert_eq!(r.get(129), &Value::Bool(true));
        r.set(100, Value::Null);
        assert!(r.get(100).is_null());
        assert_eq!(r.get(129), &Value::Bool(true));
        let all: Vec<_> = r.iter().map(|(i, _)| i).collect();
        assert_eq!(all, vec![5, 129]);
        assert!(r.get(1000).is_null());
    }
}
