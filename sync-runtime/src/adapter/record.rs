//! Reading field values out of a Salesforce record in either wire shape.
//!
//! * REST (query results, `GET /sobjects/X/id`): flat keys, compound components present under
//!   their own names (`BillingCity`), datetimes like `2024-01-02T03:04:05.000+0000`.
//! * CDC (`data.payload` of a change event): compound fields nested under the compound name
//!   (`"BillingAddress":{"City":…}`, `"Location__c":{"latitude":…}`, `"Name":{"FirstName":…}`),
//!   the record Id in `ChangeEventHeader.recordIds`, an `UPDATE` carrying only changed fields.

use serde_json::{Map, Value};

use super::change::ChangeEventHeader;
use super::descriptor::{FieldDescriptor, Relationship};
use super::error::{ConversionError, ConversionErrorKind};
use super::value::SfValue;

static NULL: Value = Value::Null;

/// The wire shape a record came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordShape {
    Rest,
    Cdc,
}

/// A borrowed Salesforce record, read field by field through [`FieldDescriptor`]s.
#[derive(Debug, Clone)]
pub struct SfRecord<'a> {
    fields: &'a Map<String, Value>,
    shape: RecordShape,
    /// For CDC: the record Id from the event header (payloads carry no `Id`).
    record_id: Option<Value>,
}

fn object(value: &Value) -> Result<&Map<String, Value>, ConversionError> {
    value.as_object().ok_or_else(|| {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        ConversionError::new(
            "(record)",
            ConversionErrorKind::NotAnObject(kind.to_owned()),
        )
    })
}

impl<'a> SfRecord<'a> {
    /// A REST record (a query result row or a retrieved sObject).
    pub fn rest(record: &'a Value) -> Result<Self, ConversionError> {
        Ok(SfRecord {
            fields: object(record)?,
            shape: RecordShape::Rest,
            record_id: None,
        })
    }

    /// A CDC event payload. The record Id is the first of `ChangeEventHeader.recordIds`; use
    /// [`SfRecord::with_id`] for the others when one event changed several records.
    pub fn cdc(payload: &'a Value) -> Result<Self, ConversionError> {
        let fields = object(payload)?;
        let record_id = fields
            .get("ChangeEventHeader")
            .and_then(|h| h.get("recordIds"))
            .and_then(|ids| ids.get(0))
            .cloned();
        Ok(SfRecord {
            fields,
            shape: RecordShape::Cdc,
            record_id,
        })
    }

    /// The same record read as the record with this Id.
    pub fn with_id(mut self, id: &str) -> Self {
        self.record_id = Some(Value::String(id.to_owned()));
        self
    }

    pub fn shape(&self) -> RecordShape {
        self.shape
    }

    /// The `ChangeEventHeader` of a CDC record.
    pub fn change_header(&self) -> Result<ChangeEventHeader, ConversionError> {
        ChangeEventHeader::from_header(self.fields.get("ChangeEventHeader"))
    }

    /// Every record this record stands for: a CDC event's `ChangeEventHeader.recordIds` (several
    /// when Salesforce merged one change made to many records), a REST record's `Id`.
    pub fn record_ids(&self) -> Vec<&'a str> {
        match self.shape {
            RecordShape::Cdc => self
                .fields
                .get("ChangeEventHeader")
                .and_then(|h| h.get("recordIds"))
                .and_then(Value::as_array)
                .map(|ids| ids.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default(),
            RecordShape::Rest => self
                .fields
                .get("Id")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
        }
    }

    /// Whether the record carries `field` as a long-text diff (`{"diff": …}`) instead of its
    /// value: fetch the field through REST rather than storing it.
    pub fn is_diff(&self, field: &FieldDescriptor) -> bool {
        matches!(self.get(field), Some(Value::Object(o)) if o.contains_key("diff"))
    }

    /// The raw JSON value of `field`: `None` when the record does not carry the field at all,
    /// `Some(Value::Null)` when it carries an explicit null.
    pub fn get(&self, field: &FieldDescriptor) -> Option<&Value> {
        if let Some(relationship) = field.relationship {
            return self.parent_value(field, relationship);
        }
        if let Some(value) = self.fields.get(field.sf_name) {
            // In CDC a compound container (`"Name":{"FirstName":…}`) stands where a flat field
            // of the same name would be; it is not that field's value.
            let is_container = matches!(value, Value::Object(o) if !o.contains_key("diff"));
            if !(self.shape == RecordShape::Cdc && is_container) {
                return Some(value);
            }
        }
        if field.sf_type == super::SfType::Id {
            if let Some(id) = &self.record_id {
                return Some(id);
            }
        }
        let compound = self.fields.get(field.compound?)?;
        if compound.is_null() {
            // A compound cleared as a whole clears each of its components.
            return Some(&NULL);
        }
        let key = field.compound_key?;
        compound
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// A relationship column's value. REST nests the parent under the relationship name
    /// (`"Invoice__r": {"attributes": …, "External_Id__c": "…"}`, or `null` without a parent);
    /// a flat `"Invoice__r.External_Id__c"` key (a Bulk API CSV row read as JSON) is taken too.
    /// Change events never carry it: `None`.
    fn parent_value(&self, field: &FieldDescriptor, relationship: Relationship) -> Option<&Value> {
        if self.shape == RecordShape::Cdc {
            return None;
        }
        if let Some(flat) = self.fields.get(field.sf_name) {
            return Some(flat);
        }
        let parent = self
            .fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(relationship.name))
            .map(|(_, v)| v)?;
        match parent {
            Value::Object(parent) => Some(
                parent
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(relationship.field))
                    .map_or(&NULL, |(_, v)| v),
            ),
            _ => Some(&NULL),
        }
    }

    /// A value Salesforce always has (required on create): absent or null is an error.
    pub fn required<T: SfValue>(&self, field: &FieldDescriptor) -> Result<T, ConversionError> {
        match self.get(field) {
            None | Some(Value::Null) => Err(ConversionError::new(
                field.sf_name,
                ConversionErrorKind::Missing,
            )),
            Some(value) => T::from_sf(value, field),
        }
    }

    /// A value that may be absent or null (both give `None`).
    pub fn optional<T: SfValue>(
        &self,
        field: &FieldDescriptor,
    ) -> Result<Option<T>, ConversionError> {
        match self.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_sf(value, field).map(Some),
        }
    }

    /// A change: `None` when the record does not carry the field (leave the column alone),
    /// `Some(None)` for an explicit null (clear it), `Some(Some(v))` for a new value.
    pub fn change<T: SfValue>(
        &self,
        field: &FieldDescriptor,
    ) -> Result<Option<Option<T>>, ConversionError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(value) => T::from_sf(value, field).map(|v| Some(Some(v))),
        }
    }
}
