//! Request bodies for Salesforce creates and updates, from typed rows or from the column values
//! the triggers record in `_trigger_log`.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use super::descriptor::{FieldDescriptor, MappingDescriptor, SfType, WriteKind};
use super::error::ConversionError;
use super::value::{format_datetime, parse_time, SfValue};

/// The JSON object sent to Salesforce, keyed by field API name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct SfBody {
    #[serde(skip)]
    kind: WriteKind,
    fields: Map<String, Value>,
}

impl SfBody {
    pub fn new(kind: WriteKind) -> Self {
        SfBody {
            kind,
            fields: Map::new(),
        }
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
            (Some(v), _) => {
                self.fields.insert(field.sf_name.to_owned(), v.to_sf());
            }
            (None, WriteKind::Update) => {
                self.fields.insert(field.sf_name.to_owned(), Value::Null);
            }
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

/// Builds a Salesforce body from Postgres column values as recorded by the capture triggers
/// (`to_jsonb(row)`: timestamps like `2024-01-02T03:04:05.123456`, times like `03:04:05`).
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
                let dt =
                    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| {
                        ConversionError::wrong_type(field.sf_name, "a Postgres timestamp", value)
                    })?;
                Value::String(format_datetime(&dt))
            }
            (SfType::Time, Value::String(s)) => {
                let t = parse_time(s).ok_or_else(|| {
                    ConversionError::wrong_type(field.sf_name, "a Postgres time", value)
                })?;
                t.to_sf()
            }
            _ => value.clone(),
        };
        body.fields.insert(field.sf_name.to_owned(), converted);
    }
    Ok(body)
}
