//! Request bodies for Salesforce creates and updates, from typed rows or from the column values
//! the triggers record in `_trigger_log`.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use super::descriptor::{FieldDescriptor, MappingDescriptor, SfType, WriteKind};
use super::error::ConversionError;
use super::value::{format_datetime, or_wrong_type, parse_time, SfValue};

/// The JSON object sent to Salesforce, keyed by field API name.
///
/// A relationship column goes in Salesforce's relationship form,
/// `{"Invoice__r": {"External_Id__c": "…"}}` (create and upsert name the parent by its external
/// ID); when the body also holds the lookup's Id (`Invoice__c`), the Id is sent and the
/// relationship left out. A relationship column without a value sends nothing (the parent is
/// cleared through the lookup).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct SfBody {
    #[serde(skip)]
    kind: WriteKind,
    fields: Map<String, Value>,
    /// `(lookup, relationship name)` of the relationship columns put so far.
    #[serde(skip)]
    via: Vec<(&'static str, &'static str)>,
}

impl SfBody {
    pub fn new(kind: WriteKind) -> Self {
        SfBody {
            kind,
            fields: Map::new(),
            via: Vec::new(),
        }
    }

    /// Sets a field's JSON value, keeping the relationship rules above.
    fn insert(&mut self, field: &FieldDescriptor, value: Value) {
        if let Some(r) = field.relationship {
            let lookup_set = self.fields.get(r.lookup).is_some_and(|v| !v.is_null());
            if value.is_null() || lookup_set {
                return;
            }
            let mut parent = Map::new();
            parent.insert(r.field.to_owned(), value);
            self.fields.insert(r.name.to_owned(), Value::Object(parent));
            self.via.push((r.lookup, r.name));
            return;
        }
        if !value.is_null() {
            for (lookup, name) in &self.via {
                if lookup.eq_ignore_ascii_case(field.sf_name) {
                    self.fields.remove(*name);
                }
            }
        }
        self.fields.insert(field.sf_name.to_owned(), value);
    }

    pub fn kind(&self) -> WriteKind {
        self.kind
    }

    /// Adds a field's value if the field is sent for this kind of write. On a create, `None`
    /// is left out; on an update it is sent as `null`.
    pub fn put<T: SfValue>(&mut self, field: &FieldDescriptor, value: &Option<T>) {
        let sent = field.sent_on(self.kind);
        match (value, self.kind) {
            _ if !sent => {}
            (Some(v), _) => self.insert(field, v.to_sf()),
            (None, WriteKind::Update) => self.insert(field, Value::Null),
            (None, WriteKind::Create) => {}
        }
    }

    pub fn get(&self, sf_name: &str) -> Option<&Value> {
        self.fields.get(sf_name)
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    pub fn into_json(self) -> Value {
        Value::Object(self.fields)
    }
}

/// Builds a Salesforce body from Postgres column values as the capture triggers record them,
/// typed by [`super::hstore::typed`] (timestamps like `2024-01-02T03:04:05.123456`, times like
/// `03:04:05`), or as the current row reads through `to_jsonb(row)` (the same forms).
///
/// Columns that are not sent for `kind` (system columns, formulas, read-only fields, columns of
/// fields no longer mapped) are skipped.
pub fn pg_values_to_sf_body(
    mapping: &MappingDescriptor,
    values: &Map<String, Value>,
    kind: WriteKind,
) -> Result<SfBody, ConversionError> {
    let mut body = SfBody::new(kind);
    for (column, value) in values {
        let Some(field) = mapping.field_by_column(column) else {
            continue;
        };
        if !field.sent_on(kind) || (value.is_null() && kind == WriteKind::Create) {
            continue;
        }
        let converted = match (field.sf_type, value) {
            (SfType::DateTime, Value::String(s)) => {
                let dt = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok();
                let dt = or_wrong_type(dt, value, field, "a Postgres timestamp")?;
                Value::String(format_datetime(&dt))
            }
            (SfType::Time, Value::String(s)) => {
                or_wrong_type(parse_time(s), value, field, "a Postgres time")?.to_sf()
            }
            _ => value.clone(),
        };
        body.insert(field, converted);
    }
    Ok(body)
}

/// A body with relationship values flattened to dotted names (`{"Invoice__r":
/// {"External_Id__c": "X"}}` → `"Invoice__r.External_Id__c": "X"`): the column names of a Bulk
/// API CSV and the field paths of a SOQL select.
pub fn flat_body(body: &Map<String, Value>) -> Map<String, Value> {
    let mut flat = Map::new();
    for (name, value) in body {
        match value {
            Value::Object(parent) => {
                for (key, inner) in parent {
                    flat.insert(format!("{name}.{key}"), inner.clone());
                }
            }
            other => {
                flat.insert(name.clone(), other.clone());
            }
        }
    }
    flat
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapter::testing::INVOICE_LINE;

    fn body(values: Value, kind: WriteKind) -> Value {
        pg_values_to_sf_body(&INVOICE_LINE, values.as_object().unwrap(), kind)
            .unwrap()
            .into_json()
    }

    #[test]
    fn a_relationship_column_names_the_parent_by_its_external_id() {
        let sent = body(
            json!({"invoice__c": null, "invoice__r__external_id__c": "INV-1"}),
            WriteKind::Create,
        );
        assert_eq!(sent, json!({"Invoice__r": {"External_Id__c": "INV-1"}}));
    }

    #[test]
    fn the_lookup_id_wins_over_the_relationship_column_in_either_order() {
        let both =
            json!({"invoice__c": "a01000000000001AAA", "invoice__r__external_id__c": "INV-1"});
        let expected = json!({"Invoice__c": "a01000000000001AAA"});
        assert_eq!(body(both, WriteKind::Create), expected);
        let mut put = SfBody::new(WriteKind::Create);
        let lookup = INVOICE_LINE.field("Invoice__c").unwrap();
        let by_external_id = INVOICE_LINE.field("Invoice__r.External_Id__c").unwrap();
        put.put(by_external_id, &Some("INV-1".to_owned()));
        put.put(lookup, &Some("a01000000000001AAA".to_owned()));
        assert_eq!(put.into_json(), expected);
    }

    #[test]
    fn bulk_csv_columns_spell_the_relationship_as_a_path() {
        let sent = body(
            json!({"invoice__r__external_id__c": "INV-1"}),
            WriteKind::Create,
        );
        let flat = flat_body(sent.as_object().unwrap());
        assert_eq!(
            Value::Object(flat),
            json!({"Invoice__r.External_Id__c": "INV-1"})
        );
    }

    #[test]
    fn clearing_a_relationship_column_sends_nothing_for_it() {
        let sent = body(
            json!({"invoice__r__external_id__c": null}),
            WriteKind::Update,
        );
        assert_eq!(sent, json!({}));
        let sent = body(json!({"invoice__c": null}), WriteKind::Update);
        assert_eq!(sent, json!({"Invoice__c": null}));
    }
}
