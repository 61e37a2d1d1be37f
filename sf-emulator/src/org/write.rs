//! The single write path (`Org::write`) used by REST, composite and Bulk: one call = one
//! transaction (one write lock, one transactionKey for its CDC events, rollback with
//! `all_or_none`). Enforces createable/updateable, required fields, lengths, restricted
//! picklists, unique/external-ID duplicates, types, reference integrity (key prefix and
//! existence), formula read-only, unknown fields; maintains system fields and defaults; runs
//! validation rules and after-save updates; honours the UNABLE_TO_LOCK_ROW fault.

use std::sync::atomic::Ordering;

use serde_json::Value as Json;

use crate::data::error::FieldError;
use crate::data::ids::SfId;
use crate::data::render;
use crate::data::schema::{well_known_prefix, DeleteRule, FieldType, ObjectSchema, OrgSchema};
use crate::data::store::{Record, Store};
use crate::data::value::Value;
use crate::org::cdc::{Header, PendingEvent};
use crate::org::rules::{all_match, AfterSave, ValidationRule};
use crate::org::Org;

/// A field value as a caller received it.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldInput {
    /// From a JSON body (REST, collections, tree, Bulk JSON).
    Json(Json),
    /// From CSV/XML text (Bulk): empty and `#N/A` mean null.
    Text(String),
    /// Already typed.
    Value(Value),
}

/// Field name → input. Names are API names (case-insensitive); `Rel.ExtField` (text) or
/// `Rel: {"ExtField": v}` (JSON) set a reference by the parent's external ID; `attributes`
/// is ignored.
pub type Fields = Vec<(String, FieldInput)>;

/// One record operation.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    Create {
        object: String,
        fields: Fields,
    },
    /// `object` (when given) must match the Id's object.
    Update {
        object: Option<String>,
        id: String,
        fields: Fields,
    },
    /// Insert or update by external ID (or `Id`). `value` as text.
    Upsert {
        object: String,
        ext_field: String,
        value: String,
        fields: Fields,
    },
    /// Soft delete to the recycle bin.
    Delete {
        id: String,
    },
    /// Restore from the recycle bin.
    Undelete {
        id: String,
    },
    /// Purge (live or in the recycle bin).
    HardDelete {
        id: String,
    },
}

/// Result of one op, in request order.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteResult {
    Ok { id: SfId, created: bool },
    Err(Vec<FieldError>),
}

impl WriteResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, WriteResult::Ok { .. })
    }

    pub fn id(&self) -> Option<SfId> {
        match self {
            WriteResult::Ok { id, .. } => Some(*id),
            WriteResult::Err(_) => None,
        }
    }

    pub fn errors(&self) -> &[FieldError] {
        match self {
            WriteResult::Ok { .. } => &[],
            WriteResult::Err(e) => e,
        }
    }

    /// sObject Collections item: `{"id","success","errors":[{statusCode,message,fields}]}`
    /// (+ `created` when `with_created`).
    pub fn to_collection_json(&self, with_created: bool) -> Json {
        let mut m = serde_json::Map::new();
        match self {
            WriteResult::Ok { id, created } => {
                m.insert("id".into(), Json::String(id.to_string()));
                m.insert("success".into(), Json::Bool(true));
                m.insert("errors".into(), Json::Array(vec![]));
                if with_created {
                    m.insert("created".into(), Json::Bool(*created));
                }
            }
            WriteResult::Err(errs) => {
                m.insert("success".into(), Json::Bool(false));
                m.insert(
                    "errors".into(),
                    Json::Array(errs.iter().map(FieldError::to_status_json).collect()),
                );
                if with_created {
                    m.insert("created".into(), Json::Bool(false));
                }
            }
        }
        Json::Object(m)
    }
}

/// Who writes and through which API (for CreatedById/LastModifiedById and CDC `changeOrigin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteContext {
    pub user_id: SfId,
    /// e.g. `com/salesforce/api/rest/59.0`.
    pub change_origin: String,
}

impl WriteContext {
    pub fn new(user_id: SfId, change_origin: impl Into<String>) -> Self {
        WriteContext {
            user_id,
            change_origin: change_origin.into(),
        }
    }

    /// REST API writes of version `version` (`59.0`); the request's `Sforce-Call-Options`
    /// client id, when sent, ends the CDC `changeOrigin` (`…/rest/59.0;client=<id>`).
    pub fn rest(org: &Org, version: &str) -> Self {
        let client = crate::org::cdc::origin::current_client();
        Self::new(
            org.user_id(),
            crate::org::cdc::origin::change_origin("rest", version, client.as_deref()),
        )
    }

    /// Bulk API writes (`…/bulkapi/<ver>`, `;client=<id>` when called within the request).
    pub fn bulk(org: &Org, version: &str) -> Self {
        let client = crate::org::cdc::origin::current_client();
        Self::new(
            org.user_id(),
            crate::org::cdc::origin::change_origin("bulkapi", version, client.as_deref()),
        )
    }

    /// Sets the client id of `changeOrigin` (`Sforce-Call-Options: client=<id>`) explicitly,
    /// for writes processed outside the request that asked for them (Bulk jobs).
    pub fn with_client(mut self, client: Option<&str>) -> Self {
        if let Some(id) = client {
            let base = self
                .change_origin
                .split(";client=")
                .next()
                .unwrap_or_default()
                .to_string();
            self.change_origin = format!("{base};client={id}");
        }
        self
    }
}

const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

enum Undo {
    Put(usize, SfId, Option<Record>),
    Purged(usize, SfId, Record, i64),
}

struct Txn<'a> {
    org: &'a Org,
    schema: &'a OrgSchema,
    st: &'a mut Store,
    ctx: &'a WriteContext,
    stamp: i64,
    undo: Vec<Undo>,
    events: Vec<PendingEvent>,
    rules: &'a [ValidationRule],
    after: &'a [AfterSave],
}

fn err1(code: &str, msg: impl Into<String>, fields: Vec<String>) -> Vec<FieldError> {
    vec![FieldError::with_fields(code, msg, fields)]
}

fn invalid_field(o: &ObjectSchema, name: &str) -> Vec<FieldError> {
    err1(
        "INVALID_FIELD",
        format!("No such column '{name}' on sobject of type {}", o.name),
        vec![],
    )
}

fn read_only(name: &str) -> Vec<FieldError> {
    err1(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        format!("Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
        vec![name.to_string()],
    )
}

/// An open transaction (see `Org::transaction`): ops apply immediately and are visible to
/// later ops; everything commits (CDC published with one transactionKey) when the closure
/// returns, unless `rollback` was called.
pub struct Transaction<'a, 'b> {
    txn: &'b mut Txn<'a>,
}

impl Transaction<'_, '_> {
    /// Applies one op atomically (a failed op leaves no trace).
    pub fn apply(&mut self, op: WriteOp) -> WriteResult {
        let mark = (self.txn.undo.len(), self.txn.events.len());
        match self.txn.apply(op) {
            Ok((id, created)) => WriteResult::Ok { id, created },
            Err(e) => {
                self.txn.rollback_to(mark.0);
                self.txn.events.truncate(mark.1);
                WriteResult::Err(e)
            }
        }
    }

    /// Undoes every op applied so far; nothing is published.
    pub fn rollback(&mut self) {
        self.txn.rollback_to(0);
        self.txn.events.clear();
    }

    /// The store as this transaction sees it.
    pub fn store(&self) -> &Store {
        self.txn.st
    }
}

impl Org {
    /// Runs `ops` as one transaction. With `all_or_none`, any failure rolls every op back and
    /// the good ones report ALL_OR_NONE_OPERATION_ROLLED_BACK; otherwise each op stands alone.
    /// CDC events of the committed ops share one transactionKey.
    pub fn write(
        &self,
        ctx: &WriteContext,
        ops: Vec<WriteOp>,
        all_or_none: bool,
    ) -> Vec<WriteResult> {
        let dups = duplicate_upserts(&self.schema(), &ops);
        self.transaction(ctx, |tx| {
            let results: Vec<WriteResult> = ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| match dups.get(i).cloned().flatten() {
                    Some(e) => WriteResult::Err(e),
                    None => tx.apply(op),
                })
                .collect();
            if all_or_none && results.iter().any(|r| !r.is_ok()) {
                tx.rollback();
                return results
                    .into_iter()
                    .map(|r| match r {
                        WriteResult::Ok { .. } => WriteResult::Err(vec![FieldError::new(
                            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            ROLLED_BACK,
                        )]),
                        e => e,
                    })
                    .collect();
            }
            results
        })
    }

    /// Runs `f` as one transaction holding the store's write lock (for dependent ops, e.g.
    /// composite tree children that need their parent's new Id). Commits when `f` returns.
    pub fn transaction<R>(
        &self,
        ctx: &WriteContext,
        f: impl FnOnce(&mut Transaction<'_, '_>) -> R,
    ) -> R {
        let rules = self.inner.rules.read().clone();
        let after = self.inner.after_save.read().clone();
        // A slow transaction (`chaos::slow`) carries the stamp of its start.
        let stamp = crate::org::chaos::slow::forced_stamp().unwrap_or_else(|| self.stamp_ms());
        let mut st = self.inner.store.write();
        // Read under the store's lock: a field added meanwhile (`add_custom_field`) is either
        // wholly before this transaction or wholly after it.
        let schema = self.schema();
        let mut txn = Txn {
            org: self,
            schema: &schema,
            st: &mut st,
            ctx,
            stamp,
            undo: Vec::new(),
            events: Vec::new(),
            rules: &rules,
            after: &after,
        };
        let out = f(&mut Transaction { txn: &mut txn });
        let mut events = std::mem::take(&mut txn.events);
        // Emulated automation runs once the write's own changes are in, within the same
        // transaction: its events follow the write's (see `rules::run_after_save`).
        let (touched, stamp) = (txn.touched(), txn.stamp);
        events.extend(crate::org::rules::run_after_save(
            self,
            &mut st,
            &after,
            touched,
            stamp,
            ctx.user_id,
        ));
        // Publish while holding the store lock so replay order = commit order.
        self.cdc().commit_transaction(events, self.now_ms());
        drop(st);
        out
    }
}

/// Upserts in one call that name the same external-ID value: every one of them fails with
/// `DUPLICATE_VALUE` (`Duplicate external id specified: <value>`) and none is written. SOAP API
/// Developer Guide, "upsert()": "If the key is matched multiple times, then an error is
/// generated and the object record is neither inserted or updated"; the same holds for sObject
/// Collections upserts and each Bulk API chunk (both run one such call). Index `i` of the
/// answer is `Some(errors)` for op `i` when it is such a duplicate.
pub fn duplicate_upserts(schema: &OrgSchema, ops: &[WriteOp]) -> Vec<Option<Vec<FieldError>>> {
    let mut seen: std::collections::HashMap<(usize, usize, Box<str>), Vec<usize>> =
        std::collections::HashMap::new();
    for (i, op) in ops.iter().enumerate() {
        let WriteOp::Upsert {
            object,
            ext_field,
            value,
            ..
        } = op
        else {
            continue;
        };
        let Some(oi) = schema.object_index(object) else {
            continue;
        };
        let o = &schema.objects[oi];
        let Some(fi) = o.field_index(ext_field) else {
            continue;
        };
        if fi == o.sys.id {
            continue;
        }
        let f = &o.fields[fi];
        let key = match Value::from_text(f, value) {
            Ok(v) => crate::data::store::index_key(&v, f.case_sensitive),
            Err(_) => None,
        };
        if let Some(k) = key {
            seen.entry((oi, fi, k)).or_default().push(i);
        }
    }
    let mut out = vec![None; ops.len()];
    for ((oi, fi, _), idx) in seen {
        if idx.len() < 2 {
            continue;
        }
        let name = schema.objects[oi].fields[fi].name.clone();
        for i in idx {
            if let WriteOp::Upsert { value, .. } = &ops[i] {
                out[i] = Some(err1(
                    "DUPLICATE_VALUE",
                    format!("Duplicate external id specified: {value}"),
                    vec![name.clone()],
                ));
            }
        }
    }
    out
}

impl Txn<'_> {
    /// Records the committed ops created or updated, with their state before the write
    /// (only gathered when after-save updates exist).
    fn touched(&self) -> Vec<crate::org::rules::Touched> {
        if self.after.is_empty() {
            return Vec::new();
        }
        self.undo
            .iter()
            .filter_map(|u| match u {
                Undo::Put(oi, id, prev) => Some((*oi, *id, prev.clone())),
                Undo::Purged(..) => None,
            })
            .collect()
    }

    fn rollback_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            match self.undo.pop() {
                Some(Undo::Put(oi, id, Some(old))) => {
                    self.st.table_mut(oi).put(id, old);
                }
                Some(Undo::Put(oi, id, None)) => {
                    self.st.table_mut(oi).remove(&id);
                }
                Some(Undo::Purged(oi, id, rec, at)) => {
                    let t = self.st.table_mut(oi);
                    t.put(id, rec);
                    t.unlog_purge(id, at);
                }
                None => break,
            }
        }
    }

    /// `UNABLE_TO_LOCK_ROW` when the next-N-writes fault or a lock aimed at this object or
    /// record (`chaos::locks`) is due.
    fn fault(&self, oi: usize, id: Option<&SfId>) -> Result<(), Vec<FieldError>> {
        let f = &self.org.inner.lock_failures;
        let took = f
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
            || self
                .org
                .chaos()
                .locks
                .take(&self.schema.objects[oi].name, id.map(|i| i.as_str()));
        if took {
            let which = id.map(|i| i.to_string()).unwrap_or_default();
            return Err(err1(
                "UNABLE_TO_LOCK_ROW",
                format!("unable to obtain exclusive access to this record or 1 records: {which}"),
                vec![],
            ));
        }
        Ok(())
    }

    fn object(&self, name: &str) -> Result<usize, Vec<FieldError>> {
        self.schema.object_index(name).ok_or_else(|| {
            err1(
                "INVALID_TYPE",
                format!("sObject type '{name}' is not supported."),
                vec![],
            )
        })
    }

    fn locate(&self, id: &str) -> Result<(usize, SfId), Vec<FieldError>> {
        let sid = SfId::parse(id).map_err(|e| vec![e])?;
        let oi = self
            .schema
            .object_index_by_prefix(sid.key_prefix())
            .ok_or_else(|| err1("MALFORMED_ID", format!("malformed id {id}"), vec![]))?;
        Ok((oi, sid))
    }

    fn apply(&mut self, op: WriteOp) -> Result<(SfId, bool), Vec<FieldError>> {
        match op {
            WriteOp::Create { object, fields } => {
                let oi = self.object(&object)?;
                self.fault(oi, None)?;
                self.create(oi, fields, None).map(|id| (id, true))
            }
            WriteOp::Update { object, id, fields } => {
                let (oi, sid) = self.locate(&id)?;
                if let Some(obj) = object {
                    let want = self.object(&obj)?;
                    if want != oi {
                        let o = &self.schema.objects[want];
                        return Err(err1(
                            "MALFORMED_ID",
                            format!("{} ID: id value of incorrect type: {id}", o.label),
                            vec!["Id".into()],
                        ));
                    }
                }
                self.fault(oi, Some(&sid))?;
                self.update(oi, sid, fields).map(|id| (id, false))
            }
            WriteOp::Upsert {
                object,
                ext_field,
                value,
                fields,
            } => self.upsert(&object, &ext_field, &value, fields),
            WriteOp::Delete { id } => {
                let (oi, sid) = self.locate(&id)?;
                self.fault(oi, Some(&sid))?;
                self.delete(oi, sid).map(|id| (id, false))
            }
            WriteOp::Undelete { id } => {
                let (oi, sid) = self.locate(&id)?;
                self.fault(oi, Some(&sid))?;
                self.undelete(oi, sid).map(|id| (id, false))
            }
            WriteOp::HardDelete { id } => {
                let (oi, sid) = self.locate(&id)?;
                self.fault(oi, Some(&sid))?;
                self.hard_delete(oi, sid).map(|id| (id, false))
            }
        }
    }

    fn upsert(
        &mut self,
        object: &str,
        ext_field: &str,
        value: &str,
        fields: Fields,
    ) -> Result<(SfId, bool), Vec<FieldError>> {
        let oi = self.object(object)?;
        let o = self.schema.objects[oi].clone();
        let not_ext = || {
            err1(
                "NOT_FOUND",
                format!(
                    "Provided external ID field does not exist or is not accessible: {ext_field}"
                ),
                vec![],
            )
        };
        let fi = o.field_index(ext_field).ok_or_else(not_ext)?;
        let f = &o.fields[fi];
        if fi == o.sys.id {
            let sid = SfId::parse(value).map_err(|e| vec![e])?;
            self.fault(oi, Some(&sid))?;
            return self.update(oi, sid, fields).map(|id| (id, false));
        }
        if !(f.external_id || f.id_lookup) || !self.st.table(oi).is_indexed(fi) {
            return Err(not_ext());
        }
        let key = Value::from_text(f, value).map_err(|e| vec![e])?;
        let matches = self.st.table(oi).lookup(fi, &key).to_vec();
        match matches.len() {
            0 => {
                self.fault(oi, None)?;
                self.create(oi, fields, Some((fi, key)))
                    .map(|id| (id, true))
            }
            1 => {
                self.fault(oi, Some(&matches[0]))?;
                self.update(oi, matches[0], fields).map(|id| (id, false))
            }
            _ => Err(err1(
                "DUPLICATE_EXTERNAL_ID",
                format!(
                    "{}: more than one record found for external id field: [{}]",
                    f.name,
                    matches
                        .iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                vec![f.name.clone()],
            )),
        }
    }

    /// Converts inputs to (position, value) pairs, checking names, access and value rules.
    fn resolve(
        &self,
        o: &ObjectSchema,
        fields: Fields,
        creating: bool,
        self_id: Option<SfId>,
    ) -> Result<Vec<(usize, Value)>, Vec<FieldError>> {
        let mut out = Vec::with_capacity(fields.len());
        for (name, input) in fields {
            if name.eq_ignore_ascii_case("attributes") {
                continue;
            }
            // Relationship by external ID.
            if let Some((rel, ext)) = name.split_once('.') {
                let v = match &input {
                    FieldInput::Json(j) => match j {
                        Json::String(s) => s.clone(),
                        Json::Null => String::new(),
                        other => other.to_string(),
                    },
                    FieldInput::Text(s) => s.clone(),
                    FieldInput::Value(v) => v.to_csv(),
                };
                out.push(self.resolve_foreign(o, rel, ext, &v, creating)?);
                continue;
            }
            if let FieldInput::Json(Json::Object(m)) = &input {
                if let Some(ri) = o.relationship_field(&name) {
                    let _ = ri;
                    let (ext, v) = m
                        .iter()
                        .find(|(k, _)| k.as_str() != "attributes")
                        .ok_or_else(|| invalid_field(o, &name))?;
                    let v = match v {
                        Json::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    out.push(self.resolve_foreign(o, &name, ext, &v, creating)?);
                    continue;
                }
            }
            let fi = o
                .field_index(&name)
                .ok_or_else(|| invalid_field(o, &name))?;
            let f = &o.fields[fi];
            if fi == o.sys.id {
                let given = match &input {
                    FieldInput::Json(Json::Null) => None,
                    FieldInput::Json(Json::String(s)) | FieldInput::Text(s) if s.is_empty() => None,
                    FieldInput::Json(Json::String(s)) | FieldInput::Text(s) => Some(s.clone()),
                    FieldInput::Value(v) => v.as_str().map(str::to_string),
                    FieldInput::Json(other) => Some(other.to_string()),
                };
                match (given, creating) {
                    (None, _) => continue,
                    (Some(_), true) => {
                        return Err(err1(
                            "INVALID_FIELD_FOR_INSERT_UPDATE",
                            "cannot specify Id in an insert call",
                            vec!["Id".into()],
                        ))
                    }
                    (Some(s), false) => {
                        let same = SfId::parse(&s).ok() == self_id;
                        if !same {
                            return Err(err1(
                                "INVALID_ID_FIELD",
                                format!("The Id field should not be specified in the sobject data. ({s})"),
                                vec!["Id".into()],
                            ));
                        }
                        continue;
                    }
                }
            }
            let allowed = if creating { f.createable } else { f.updateable };
            if !allowed || f.calculated {
                return Err(read_only(&f.name));
            }
            let v = match input {
                FieldInput::Json(j) => Value::from_json(f, &j),
                FieldInput::Text(s) => Value::from_text(f, &s),
                FieldInput::Value(v) => Ok(v),
            }
            .map_err(|e| vec![e])?;
            self.check_value(o, fi, &v)?;
            out.push((fi, v));
        }
        Ok(out)
    }

    fn resolve_foreign(
        &self,
        o: &ObjectSchema,
        rel: &str,
        ext: &str,
        value: &str,
        creating: bool,
    ) -> Result<(usize, Value), Vec<FieldError>> {
        let ri = o
            .relationship_field(rel)
            .ok_or_else(|| invalid_field(o, &format!("{rel}.{ext}")))?;
        let f = &o.fields[ri];
        let allowed = if creating { f.createable } else { f.updateable };
        if !allowed {
            return Err(read_only(&f.name));
        }
        if value.is_empty() {
            return Ok((ri, Value::Null));
        }
        let target = f
            .reference_to
            .iter()
            .find_map(|t| self.schema.object_index(t))
            .ok_or_else(|| invalid_field(o, &format!("{rel}.{ext}")))?;
        let to = &self.schema.objects[target];
        let ei = to.field_index(ext).ok_or_else(|| invalid_field(to, ext))?;
        let ef = &to.fields[ei];
        let not_found = || {
            err1(
                "INVALID_FIELD",
                format!(
                    "Foreign key external ID: {value} not found for field {} in entity {}",
                    ef.name, to.name
                ),
                vec![],
            )
        };
        let t = self.st.table(target);
        let id = if ei == to.sys.id {
            let sid = SfId::parse(value).map_err(|e| vec![e])?;
            match t.get(&sid) {
                Some(r) if !t.is_deleted(r) => sid,
                _ => return Err(not_found()),
            }
        } else {
            if !t.is_indexed(ei) {
                return Err(err1(
                    "INVALID_FIELD",
                    format!(
                        "{}.{} is not an External ID or indexed field",
                        to.name, ef.name
                    ),
                    vec![],
                ));
            }
            let key = Value::from_text(ef, value).map_err(|e| vec![e])?;
            match t.lookup(ei, &key) {
                [one] => *one,
                [] => return Err(not_found()),
                _ => {
                    return Err(err1(
                        "INVALID_FIELD",
                        format!("Foreign key external ID: {value} matched more than one record"),
                        vec![],
                    ))
                }
            }
        };
        Ok((ri, Value::String(id.as_str().into())))
    }

    /// Length, picklist, email and reference checks of one value.
    fn check_value(&self, o: &ObjectSchema, fi: usize, v: &Value) -> Result<(), Vec<FieldError>> {
        let f = &o.fields[fi];
        let Some(s) = v.as_str() else {
            return Ok(());
        };
        if f.ftype.is_text() && f.length > 0 && s.chars().count() > f.length as usize {
            return Err(err1(
                "STRING_TOO_LONG",
                format!(
                    "{}: data value too large: {} (max length={})",
                    f.label,
                    s.chars().take(100).collect::<String>(),
                    f.length
                ),
                vec![f.name.clone()],
            ));
        }
        if f.restricted_picklist
            && matches!(f.ftype, FieldType::Picklist | FieldType::MultiPicklist)
        {
            let parts: Vec<&str> = if f.ftype == FieldType::MultiPicklist {
                s.split(';').map(str::trim).collect()
            } else {
                vec![s]
            };
            if let Some(bad) = parts.iter().find(|p| !f.picklist_allows(p)) {
                return Err(err1(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!(
                        "{}: bad value for restricted picklist field: {bad}",
                        f.label
                    ),
                    vec![f.name.clone()],
                ));
            }
        }
        if f.ftype == FieldType::Email && !valid_email(s) {
            return Err(err1(
                "INVALID_EMAIL_ADDRESS",
                format!("{}: invalid email address: {s}", f.label),
                vec![f.name.clone()],
            ));
        }
        if f.ftype == FieldType::Reference {
            self.check_reference(o, fi, s)?;
        }
        Ok(())
    }

    fn check_reference(&self, o: &ObjectSchema, fi: usize, s: &str) -> Result<(), Vec<FieldError>> {
        let f = &o.fields[fi];
        let sid = SfId::parse(s).map_err(|_| {
            err1(
                "MALFORMED_ID",
                format!("{}: id value of incorrect type: {s}", f.label),
                vec![f.name.clone()],
            )
        })?;
        let mut known_any = false;
        for target in &f.reference_to {
            let (prefix, table) = match self.schema.object_index(target) {
                Some(ti) => (self.schema.objects[ti].key_prefix.clone(), Some(ti)),
                None => match well_known_prefix(target) {
                    Some(p) => (p.to_string(), None),
                    None => continue,
                },
            };
            known_any = true;
            if sid.key_prefix() != prefix {
                continue;
            }
            return match table {
                Some(ti) => {
                    let t = self.st.table(ti);
                    match t.get(&sid) {
                        Some(r) if !t.is_deleted(r) => Ok(()),
                        Some(_) => Err(err1(
                            "ENTITY_IS_DELETED",
                            "entity is deleted",
                            vec![f.name.clone()],
                        )),
                        None => Err(err1(
                            "INVALID_CROSS_REFERENCE_KEY",
                            format!("{}: invalid cross reference id", f.label),
                            vec![f.name.clone()],
                        )),
                    }
                }
                None if target == "User" && sid != self.org.user_id() => Err(err1(
                    "INVALID_CROSS_REFERENCE_KEY",
                    format!("{}: invalid cross reference id", f.label),
                    vec![f.name.clone()],
                )),
                None => Ok(()),
            };
        }
        if known_any {
            return Err(err1(
                "FIELD_INTEGRITY_EXCEPTION",
                format!("{}: id value of incorrect type: {s}", f.label),
                vec![f.name.clone()],
            ));
        }
        Ok(())
    }

    fn defaults(&self, o: &ObjectSchema) -> Record {
        defaults(o)
    }
}

/// A new record holding the describe's defaults: `defaultValue`s, default picklist values of
/// fields defaulted on create, and `false` for checkboxes.
pub fn defaults(o: &ObjectSchema) -> Record {
    {
        let mut r = Record::new(o.fields.len());
        for (i, f) in o.fields.iter().enumerate() {
            if f.calculated || i == o.sys.id {
                continue;
            }
            if let Some(dv) = &f.default_value {
                if let Ok(v) = Value::from_json(f, dv) {
                    r.set(i, v);
                    continue;
                }
            }
            if f.ftype == FieldType::Boolean {
                r.set(i, Value::Bool(false));
            } else if f.defaulted_on_create
                && matches!(f.ftype, FieldType::Picklist | FieldType::Combobox)
            {
                if let Some(p) = f
                    .picklist_values
                    .iter()
                    .find(|p| p.active && p.default_value)
                {
                    r.set(i, Value::str(&p.value));
                }
            }
        }
        r
    }
}

impl Txn<'_> {
    /// Derived values: person-name compounds and formula fields.
    fn set_person_names(o: &ObjectSchema, r: &mut Record) {
        derive(o, r);
    }

    fn required_missing(o: &ObjectSchema, r: &Record) -> Result<(), Vec<FieldError>> {
        let missing: Vec<String> = o
            .fields
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                !f.nillable
                    && f.createable
                    && !f.defaulted_on_create
                    && f.ftype != FieldType::Boolean
                    && r.get(*i).is_null()
            })
            .map(|(_, f)| f.name.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(err1(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            missing,
        ))
    }

    fn check_unique(&self, oi: usize, id: SfId, r: &Record) -> Result<(), Vec<FieldError>> {
        let o = &self.schema.objects[oi];
        let t = self.st.table(oi);
        for (i, f) in o.fields.iter().enumerate() {
            if !f.unique || !t.is_indexed(i) {
                continue;
            }
            let v = r.get(i);
            if v.is_null() {
                continue;
            }
            if let Some(other) = t.lookup(i, v).iter().find(|x| **x != id) {
                return Err(err1(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {other}",
                        f.name
                    ),
                    vec![],
                ));
            }
        }
        Ok(())
    }

    fn validate(
        &self,
        o: &ObjectSchema,
        r: &Record,
        old: Option<&Record>,
    ) -> Result<(), Vec<FieldError>> {
        for rule in self.rules {
            if rule.object.eq_ignore_ascii_case(&o.name) && all_match(&rule.when, o, r, old) {
                let fields = rule
                    .error_field
                    .as_deref()
                    .and_then(|f| o.field(f))
                    .map(|f| vec![f.name.clone()])
                    .unwrap_or_default();
                return Err(err1(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message.clone(),
                    fields,
                ));
            }
        }
        Ok(())
    }

    fn header(&self, o: &ObjectSchema, id: SfId, change: &str, changed: Vec<String>) -> Header {
        Header {
            entity_name: o.name.clone(),
            record_ids: vec![id.to_string()],
            change_type: change.to_string(),
            changed_fields: changed,
            change_origin: self.ctx.change_origin.clone(),
            transaction_key: String::new(),
            sequence_number: 0,
            commit_timestamp: 0,
            commit_number: 0,
            commit_user: self.ctx.user_id.to_string(),
        }
    }

    fn stamp_system(&self, o: &ObjectSchema, r: &mut Record, create: bool) {
        let now = Value::DateTime(self.stamp);
        let user = Value::String(self.ctx.user_id.as_str().into());
        let s = &o.sys;
        if create {
            if let Some(i) = s.created_date {
                r.set(i, now.clone());
            }
            if let Some(i) = s.created_by_id {
                r.set(i, user.clone());
            }
            if let Some(i) = s.is_deleted {
                r.set(i, Value::Bool(false));
            }
            if let Some(i) = s.owner_id {
                if r.get(i).is_null() {
                    r.set(i, Value::String(self.org.user_id().as_str().into()));
                }
            }
        }
        if let Some(i) = s.last_modified_date {
            r.set(i, now.clone());
        }
        if let Some(i) = s.last_modified_by_id {
            r.set(i, user);
        }
        if let Some(i) = s.system_modstamp {
            r.set(i, now);
        }
    }

    fn create(
        &mut self,
        oi: usize,
        fields: Fields,
        ext: Option<(usize, Value)>,
    ) -> Result<SfId, Vec<FieldError>> {
        let o = self.schema.objects[oi].clone();
        let mut r = self.defaults(&o);
        for (i, v) in self.resolve(&o, fields, true, None)? {
            r.set(i, v);
        }
        if let Some((i, v)) = ext {
            r.set(i, v);
        }
        Self::set_person_names(&o, &mut r);
        self.stamp_system(&o, &mut r, true);
        Self::required_missing(&o, &r)?;
        let id = self.st.table_mut(oi).next_id();
        r.set(o.sys.id, Value::String(id.as_str().into()));
        set_auto_numbers(&o, &mut r, id);
        self.validate(&o, &r, None)?;
        self.check_unique(oi, id, &r)?;
        let fields = render::cdc_fields(&o, &r, None);
        let prev = self.st.table_mut(oi).put(id, r);
        self.undo.push(Undo::Put(oi, id, prev));
        let header = self.header(&o, id, "CREATE", vec![]);
        self.events.push(PendingEvent { header, fields });
        Ok(id)
    }

    fn live(&self, oi: usize, id: SfId) -> Result<Record, Vec<FieldError>> {
        let t = self.st.table(oi);
        match t.get(&id) {
            Some(r) if t.is_deleted(r) => {
                Err(err1("ENTITY_IS_DELETED", "entity is deleted", vec![]))
            }
            Some(r) => Ok(r.clone()),
            None => Err(err1(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                vec![],
            )),
        }
    }

    fn update(&mut self, oi: usize, id: SfId, fields: Fields) -> Result<SfId, Vec<FieldError>> {
        let o = self.schema.objects[oi].clone();
        let old = self.live(oi, id)?;
        let mut r = old.clone();
        let vals = self.resolve(&o, fields, false, Some(id))?;
        for (i, v) in vals {
            r.set(i, v);
        }
        Self::set_person_names(&o, &mut r);
        self.stamp_system(&o, &mut r, false);
        Self::required_missing(&o, &r)?;
        self.validate(&o, &r, Some(&old))?;
        self.check_unique(oi, id, &r)?;
        let lmd = o.sys.last_modified_date;
        let mut changed: Vec<usize> = (0..o.fields.len())
            .filter(|i| render::in_cdc(&o, *i) && Some(*i) != lmd && old.get(*i) != r.get(*i))
            .collect();
        if let Some(i) = lmd {
            changed.push(i);
        }
        let names = changed
            .iter()
            .map(|i| render::changed_field_name(&o, *i))
            .collect();
        let mut fields = render::cdc_fields(&o, &r, Some(&changed));
        crate::org::cdc::diff::apply(&o, &old, &r, &changed, &mut fields);
        let prev = self.st.table_mut(oi).put(id, r);
        self.undo.push(Undo::Put(oi, id, prev));
        let header = self.header(&o, id, "UPDATE", names);
        self.events.push(PendingEvent { header, fields });
        Ok(id)
    }

    /// Children that block deleting `id` (restricted delete), as an error.
    fn check_restricted(&self, oi: usize, id: SfId) -> Result<(), Vec<FieldError>> {
        for &(ci, fi, rule) in &self.schema.delete_rules[oi] {
            if rule != DeleteRule::Restrict {
                continue;
            }
            let kids = self.st.table(ci).children(fi, &id);
            if !kids.is_empty() {
                let c = &self.schema.objects[ci];
                return Err(err1(
                    "DELETE_FAILED",
                    format!(
                        "Your attempt to delete {id} could not be completed because it is associated with the following {}.: {}",
                        c.label_plural.to_lowercase(),
                        kids.iter().take(10).map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
                    ),
                    vec![],
                ));
            }
        }
        Ok(())
    }

    fn cascade_children(&self, oi: usize, id: SfId) -> Vec<(usize, SfId)> {
        self.schema.delete_rules[oi]
            .iter()
            .filter(|(_, _, rule)| *rule == DeleteRule::Cascade)
            .flat_map(|&(ci, fi, _)| {
                self.st
                    .table(ci)
                    .children(fi, &id)
                    .iter()
                    .map(move |k| (ci, *k))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn delete(&mut self, oi: usize, id: SfId) -> Result<SfId, Vec<FieldError>> {
        let o = self.schema.objects[oi].clone();
        let t = self.st.table(oi);
        let mut r = match t.get(&id) {
            Some(r) if !t.is_deleted(r) => r.clone(),
            _ => return Err(err1("ENTITY_IS_DELETED", "entity is deleted", vec![])),
        };
        self.check_restricted(oi, id)?;
        match o.sys.is_deleted {
            Some(i) => r.set(i, Value::Bool(true)),
            None => return self.hard_delete(oi, id),
        }
        if let Some(i) = o.sys.system_modstamp {
            r.set(i, Value::DateTime(self.stamp));
        }
        // Children first, as Salesforce's cascade does.
        for (ci, kid) in self.cascade_children(oi, id) {
            self.delete(ci, kid)?;
        }
        let prev = self.st.table_mut(oi).put(id, r);
        self.undo.push(Undo::Put(oi, id, prev));
        let header = self.header(&o, id, "DELETE", vec![]);
        self.events.push(PendingEvent {
            header,
            fields: serde_json::Map::new(),
        });
        Ok(id)
    }

    fn undelete(&mut self, oi: usize, id: SfId) -> Result<SfId, Vec<FieldError>> {
        let o = self.schema.objects[oi].clone();
        let t = self.st.table(oi);
        let mut r = match t.get(&id) {
            Some(r) if t.is_deleted(r) => r.clone(),
            Some(_) => {
                return Err(err1(
                    "UNDELETE_FAILED",
                    "Entity is not in the recycle bin",
                    vec![],
                ))
            }
            None => {
                return Err(err1(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    vec![],
                ))
            }
        };
        let deleted_at = o.sys.system_modstamp.map(|i| r.get(i).clone());
        if let Some(i) = o.sys.is_deleted {
            r.set(i, Value::Bool(false));
        }
        if let Some(i) = o.sys.system_modstamp {
            r.set(i, Value::DateTime(self.stamp));
        }
        self.check_unique(oi, id, &r)?;
        let fields = render::cdc_fields(&o, &r, None);
        let prev = self.st.table_mut(oi).put(id, r);
        self.undo.push(Undo::Put(oi, id, prev));
        let header = self.header(&o, id, "UNDELETE", vec![]);
        self.events.push(PendingEvent { header, fields });
        // Children deleted by the cascade (same deletion stamp) come back with their parent.
        if let Some(when) = deleted_at {
            for (ci, kid) in self.cascaded_with(oi, id, &when) {
                self.undelete(ci, kid)?;
            }
        }
        Ok(id)
    }

    /// Recycle-bin children of `id` (through cascade fields) deleted at `when`.
    fn cascaded_with(&self, oi: usize, id: SfId, when: &Value) -> Vec<(usize, SfId)> {
        let parent = Value::String(id.as_str().into());
        let mut out = Vec::new();
        for &(ci, fi, rule) in &self.schema.delete_rules[oi] {
            if rule != DeleteRule::Cascade {
                continue;
            }
            let t = self.st.table(ci);
            let ms = t.object.sys.system_modstamp;
            for (kid, r) in t.iter() {
                if t.is_deleted(r) && *r.get(fi) == parent && ms.map(|i| r.get(i)) == Some(when) {
                    out.push((ci, kid));
                }
            }
        }
        out
    }

    fn hard_delete(&mut self, oi: usize, id: SfId) -> Result<SfId, Vec<FieldError>> {
        let o = self.schema.objects[oi].clone();
        self.check_restricted(oi, id)?;
        for (ci, kid) in self.cascade_children(oi, id) {
            self.hard_delete(ci, kid)?;
        }
        let t = self.st.table_mut(oi);
        let Some(r) = t.remove(&id) else {
            return Err(err1("ENTITY_IS_DELETED", "entity is deleted", vec![]));
        };
        let was_live = !t.is_deleted(&r);
        t.log_purge(id, self.stamp);
        self.undo.push(Undo::Purged(oi, id, r, self.stamp));
        if was_live {
            let header = self.header(&o, id, "DELETE", vec![]);
            self.events.push(PendingEvent {
                header,
                fields: serde_json::Map::new(),
            });
        }
        Ok(id)
    }
}

/// Recomputes derived fields: person-name compounds (`Name` = "First Last"), the standard
/// status flags Salesforce derives (Opportunity `IsClosed`/`IsWon`/`ForecastCategory` from the
/// stage, Case `IsClosed` from the status) and formulas.
pub fn derive(o: &ObjectSchema, r: &mut Record) {
    for i in 0..o.fields.len() {
        if render::is_person_name(o, i) {
            let v = render::person_name(o, r, i);
            r.set(i, v);
        }
    }
    standard_flags(o, r);
    crate::data::formula::apply(o, r);
}

fn standard_flags(o: &ObjectSchema, r: &mut Record) {
    let pos = |n: &str| o.field_index(n);
    match o.name.as_str() {
        "Opportunity" => {
            let Some(stage) = pos("StageName").and_then(|i| r.get(i).as_str().map(str::to_string))
            else {
                return;
            };
            let won = stage == "Closed Won";
            let closed = won || stage.starts_with("Closed");
            let category = if won {
                "Closed"
            } else if closed {
                "Omitted"
            } else {
                "Pipeline"
            };
            for (f, v) in [
                ("IsClosed", Value::Bool(closed)),
                ("IsWon", Value::Bool(won)),
                ("ForecastCategory", Value::str(category)),
            ] {
                if let Some(i) = pos(f) {
                    r.set(i, v);
                }
            }
            if let Some(i) = pos("ForecastCategoryName") {
                if r.get(i).is_null() || closed {
                    r.set(i, Value::str(category));
                }
            }
        }
        "Case" => {
            if let (Some(s), Some(c)) = (pos("Status"), pos("IsClosed")) {
                let closed = r.get(s).as_str() == Some("Closed");
                r.set(c, Value::Bool(closed));
            }
        }
        _ => {}
    }
}

/// Fills auto-number fields from the record's Id counter: standard objects use Salesforce's
/// 8-digit numbers (`CaseNumber` `00001001`), custom objects `INV-000042` (label initials).
pub fn set_auto_numbers(o: &ObjectSchema, r: &mut Record, id: SfId) {
    let n = id.counter().unwrap_or(0);
    let text = if o.custom {
        let prefix: String = o
            .label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(3)
            .collect::<String>()
            .to_ascii_uppercase();
        format!("{prefix}-{n:06}")
    } else {
        format!("{:08}", 1000 + n)
    };
    for (i, f) in o.fields.iter().enumerate() {
        if f.auto_number && r.get(i).is_null() {
            r.set(i, Value::str(&text));
        }
    }
}

fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}
