//! Emulated automation: validation rules (reject a record whose fields match conditions with
//! `FIELD_CUSTOM_VALIDATION_EXCEPTION`) and "after save" field updates (set fields on records
//! that match, after a write, in the same transaction). Conditions are `field op value`, all
//! of which must hold.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::schema::ObjectSchema;
use crate::store::Record;
use crate::value::Value;

/// Comparison operator of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CondOp {
    #[serde(rename = "=", alias = "eq", alias = "==")]
    Eq,
    #[serde(rename = "!=", alias = "ne", alias = "<>")]
    Ne,
    #[serde(rename = "<", alias = "lt")]
    Lt,
    #[serde(rename = "<=", alias = "le")]
    Le,
    #[serde(rename = ">", alias = "gt")]
    Gt,
    #[serde(rename = ">=", alias = "ge")]
    Ge,
    #[serde(rename = "contains")]
    Contains,
    #[serde(rename = "startsWith", alias = "starts_with")]
    StartsWith,
    #[serde(rename = "isNull", alias = "is_null")]
    IsNull,
    #[serde(rename = "isNotNull", alias = "is_not_null")]
    IsNotNull,
    /// The field was changed by this write (or set on create).
    #[serde(rename = "isChanged", alias = "is_changed")]
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
    #[serde(default, rename = "errorField", alias = "error_field")]
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
