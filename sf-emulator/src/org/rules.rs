//! Emulated automation: validation rules (reject a record whose fields match conditions with
//! `FIELD_CUSTOM_VALIDATION_EXCEPTION`) and "after save" field updates (once a write commits,
//! set fields on the records it created or updated that match, as a further change in the same
//! transaction: the record's LastModifiedDate/SystemModstamp move one second past the write
//! and a CDC UPDATE event follows the write's events). Conditions are `field op value`, all of which must hold;
//! `check` validates rules against the org's schema before they are installed.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::data::ids::SfId;
use crate::data::render;
use crate::data::schema::{FieldType, ObjectSchema, OrgSchema};
use crate::data::store::{Record, Store};
use crate::data::value::Value;
use crate::org::cdc::{Header, PendingEvent};
use crate::org::Org;

/// Comparison operator of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CondOp {
    #[serde(rename = "equals", alias = "=", alias = "eq", alias = "==")]
    Eq,
    #[serde(rename = "not_equals", alias = "!=", alias = "ne", alias = "<>")]
    Ne,
    #[serde(rename = "less_than", alias = "<", alias = "lt")]
    Lt,
    #[serde(rename = "less_or_equal", alias = "<=", alias = "le")]
    Le,
    #[serde(rename = "greater_than", alias = ">", alias = "gt")]
    Gt,
    #[serde(rename = "greater_or_equal", alias = ">=", alias = "ge")]
    Ge,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "starts_with", alias = "startsWith")]
    StartsWith,
    #[serde(rename = "is_null", alias = "isNull")]
    IsNull,
    #[serde(rename = "not_null", alias = "isNotNull", alias = "is_not_null")]
    IsNotNull,
    /// The field was changed by this write (or set on create).
    #[serde(rename = "is_changed", alias = "isChanged")]
    IsChanged,
}

/// `field op value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub op: CondOp,
    #[serde(default)]
    pub value: Json,
}

impl Condition {
    /// Evaluates against a record (`old` = the record before the write, None on create).
    pub fn matches(&self, o: &ObjectSchema, rec: &Record, old: Option<&Record>) -> bool {
        let Some(i) = o.field_index(&self.field) else {
            return false;
        };
        let v = rec.get(i);
        let target = || Value::from_json(&o.fields[i], &self.value).unwrap_or(Value::Null);
        match self.op {
            CondOp::IsNull => v.is_null(),
            CondOp::IsNotNull => !v.is_null(),
            CondOp::IsChanged => old.map(|r| r.get(i) != v).unwrap_or(!v.is_null()),
            CondOp::Eq => *v == target(),
            CondOp::Ne => *v != target(),
            CondOp::Contains | CondOp::StartsWith => {
                let (Some(s), Some(t)) = (v.as_str(), self.value.as_str()) else {
                    return false;
                };
                if self.op == CondOp::Contains {
                    s.contains(t)
                } else {
                    s.starts_with(t)
                }
            }
            CondOp::Lt | CondOp::Le | CondOp::Gt | CondOp::Ge => match v.compare(&target()) {
                Some(Ordering::Less) => matches!(self.op, CondOp::Lt | CondOp::Le),
                Some(Ordering::Equal) => matches!(self.op, CondOp::Le | CondOp::Ge),
                Some(Ordering::Greater) => matches!(self.op, CondOp::Gt | CondOp::Ge),
                None => false,
            },
        }
    }
}

impl Condition {
    /// Checks the field exists and the value suits the operator and the field's type.
    pub fn check(&self, o: &ObjectSchema) -> Result<(), String> {
        let f = o
            .field(&self.field)
            .ok_or_else(|| format!("No such field {}.{}", o.name, self.field))?;
        match self.op {
            CondOp::IsNull | CondOp::IsNotNull | CondOp::IsChanged => Ok(()),
            CondOp::Contains | CondOp::StartsWith => {
                if !f.ftype.is_text() && !matches!(f.ftype, FieldType::Picklist) {
                    return Err(format!(
                        "{}.{} is not a text field: {:?} needs text",
                        o.name, f.name, self.op
                    ));
                }
                match self.value {
                    Json::String(_) => Ok(()),
                    _ => Err(format!(
                        "the value compared with {}.{} must be a string",
                        o.name, f.name
                    )),
                }
            }
            _ => {
                if self.value.is_null() {
                    return Err(format!(
                        "a value is required to compare {}.{} (use is_null / not_null for null)",
                        o.name, f.name
                    ));
                }
                Value::from_json(f, &self.value).map(|_| ()).map_err(|e| {
                    format!(
                        "value {} does not suit {}.{}: {}",
                        self.value, o.name, f.name, e.message
                    )
                })
            }
        }
    }
}

fn object_of<'a>(schema: &'a OrgSchema, name: &str) -> Result<&'a ObjectSchema, String> {
    schema
        .object(name)
        .map(|o| o.as_ref())
        .ok_or_else(|| format!("sObject type '{name}' is not supported."))
}

impl ValidationRule {
    /// Checks the object, the conditions and the error field exist; normalises names.
    pub fn check(&mut self, schema: &OrgSchema) -> Result<(), String> {
        let o = object_of(schema, &self.object)?;
        self.object = o.name.clone();
        if self.when.is_empty() {
            return Err("a validation rule needs at least one condition".into());
        }
        for c in &self.when {
            c.check(o)?;
        }
        if let Some(f) = &self.error_field {
            let fs = o
                .field(f)
                .ok_or_else(|| format!("No such field {}.{f}", o.name))?;
            self.error_field = Some(fs.name.clone());
        }
        if self.message.trim().is_empty() {
            return Err("a validation rule needs a message".into());
        }
        Ok(())
    }
}

impl AfterSave {
    /// Checks the object and conditions, and that every `set` field is updateable and takes
    /// the value given.
    pub fn check(&mut self, schema: &OrgSchema) -> Result<(), String> {
        let o = object_of(schema, &self.object)?;
        self.object = o.name.clone();
        for c in &self.when {
            c.check(o)?;
        }
        if self.set.is_empty() {
            return Err("an after-save update needs at least one field in \"set\"".into());
        }
        for (k, v) in &self.set {
            let f = o
                .field(k)
                .ok_or_else(|| format!("No such field {}.{k}", o.name))?;
            if f.calculated || !(f.updateable || f.createable) || f.ftype.is_id() {
                return Err(format!("{}.{} cannot be set by automation", o.name, f.name));
            }
            Value::from_json(f, v).map_err(|e| {
                format!(
                    "value {v} does not suit {}.{}: {}",
                    o.name, f.name, e.message
                )
            })?;
        }
        Ok(())
    }
}

/// A record a committed write created or updated: (object position, Id, the record before
/// the write — None when created).
pub type Touched = (usize, SfId, Option<Record>);

/// Runs after-save updates over the records a write touched and returns their CDC UPDATE
/// events, which the write publishes in its own transaction (same `transactionKey`, later
/// `sequenceNumber`s, same commit) as Salesforce does for automation (Change Data Capture
/// Developer Guide, "Change Event Header Fields": `sequenceNumber` orders the changes of
/// one transaction). Each update stamps the record at `Org::stamp_after(write_stamp)`.
/// Validation rules are not re-run (as for Salesforce field updates); an update that would
/// duplicate a unique value is skipped.
pub(crate) fn run_after_save(
    org: &Org,
    st: &mut Store,
    after: &[AfterSave],
    touched: Vec<Touched>,
    write_stamp: i64,
    user: SfId,
) -> Vec<PendingEvent> {
    if after.is_empty() || touched.is_empty() {
        return Vec::new();
    }
    let schema = org.schema().clone();
    let mut stamp = None;
    let mut events = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (oi, id, old) in touched {
        if !seen.insert(id) {
            continue;
        }
        let o = &schema.objects[oi];
        let t = st.table(oi);
        let Some(cur) = t.get(&id) else { continue };
        if t.is_deleted(cur) || old.as_ref().is_some_and(|r| t.is_deleted(r)) {
            continue;
        }
        let mut r = cur.clone();
        for a in after {
            let trig = match a.on {
                Trigger::CreateOrUpdate => true,
                Trigger::Create => old.is_none(),
                Trigger::Update => old.is_some(),
            };
            if !trig || !a.object.eq_ignore_ascii_case(&o.name) {
                continue;
            }
            if !all_match(&a.when, o, cur, old.as_ref()) {
                continue;
            }
            for (k, v) in &a.set {
                if let Some(i) = o.field_index(k) {
                    if let Ok(val) = Value::from_json(&o.fields[i], v) {
                        r.set(i, val);
                    }
                }
            }
        }
        crate::org::write::derive(o, &mut r);
        let mut changed: Vec<usize> = (0..o.fields.len())
            .filter(|i| render::in_cdc(o, *i) && cur.get(*i) != r.get(*i))
            .collect();
        if changed.is_empty() || duplicates_unique(st, oi, id, &r) {
            continue;
        }
        let now = *stamp.get_or_insert_with(|| org.stamp_after(write_stamp));
        let s = &o.sys;
        for (pos, v) in [
            (s.last_modified_date, Value::DateTime(now)),
            (s.system_modstamp, Value::DateTime(now)),
            (s.last_modified_by_id, Value::String(user.as_str().into())),
        ] {
            if let Some(i) = pos {
                r.set(i, v);
            }
        }
        if let Some(i) = s.last_modified_date {
            changed.push(i);
        }
        let header = Header {
            entity_name: o.name.clone(),
            record_ids: vec![id.to_string()],
            change_type: "UPDATE".into(),
            changed_fields: changed
                .iter()
                .map(|i| render::changed_field_name(o, *i))
                .collect(),
            change_origin: String::new(),
            transaction_key: String::new(),
            sequence_number: 0,
            commit_timestamp: 0,
            commit_number: 0,
            commit_user: user.to_string(),
        };
        let mut fields = render::cdc_fields(o, &r, Some(&changed));
        crate::org::cdc::diff::apply(o, cur, &r, &changed, &mut fields);
        st.table_mut(oi).put(id, r);
        events.push(PendingEvent { header, fields });
    }
    events
}

fn duplicates_unique(st: &Store, oi: usize, id: SfId, r: &Record) -> bool {
    let t = st.table(oi);
    t.object.fields.iter().enumerate().any(|(i, f)| {
        f.unique
            && t.is_indexed(i)
            && !r.get(i).is_null()
            && t.lookup(i, r.get(i)).iter().any(|x| *x != id)
    })
}

/// True when every condition holds (an empty list always holds).
pub fn all_match(
    conds: &[Condition],
    o: &ObjectSchema,
    rec: &Record,
    old: Option<&Record>,
) -> bool {
    conds.iter().all(|c| c.matches(o, rec, old))
}

/// A validation rule: records of `object` matching all `when` conditions are rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationRule {
    pub object: String,
    #[serde(default)]
    pub name: String,
    pub when: Vec<Condition>,
    pub message: String,
    /// Field the error is attached to (`fields` of the error); None = record-level.
    #[serde(
        default,
        rename = "errorDisplayField",
        alias = "errorField",
        alias = "error_field"
    )]
    pub error_field: Option<String>,
}

/// Which writes an after-save update runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    #[default]
    CreateOrUpdate,
    Create,
    Update,
}

/// An after-save field update: on matching records, set `set` fields (JSON values converted by
/// field type).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AfterSave {
    pub object: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub on: Trigger,
    #[serde(default)]
    pub when: Vec<Condition>,
    pub set: serde_json::Map<String, Json>,
}
