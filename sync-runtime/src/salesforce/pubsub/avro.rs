//! A Pub/Sub change event's Avro payload → the CDC payload the engine already applies (pure).
//!
//! The payload is a raw Avro binary datum read with the schema its `schema_id` names
//! ([`EventSchema`], parsed once per id). Pub/Sub differs from CometD (Change Data Capture
//! Developer Guide, "Differences Between Change Events Received with Streaming API vs. Pub/Sub
//! API"): every field is present and unchanged ones are null, dates are epoch milliseconds, and
//! the header's `changedFields` / `nulledFields` / `diffFields` are bitmaps. [`EventSchema::decode`]
//! turns one into CometD's shape: the header with field names, the non-null fields, the nulled
//! fields as `null`, long-text diffs as `{"diff": …}`, compound fields nested. Dates stay epoch
//! milliseconds (the value conversion reads both forms). Anything that does not fit — bytes the
//! schema cannot read, a header without its fields, a bitmap naming a position the schema lacks —
//! is a [`PayloadError`] for that one event.

use serde_json::{Map, Value};

use super::bitmap::Shape;
use super::datum::{Datum, PayloadError, Schema};

/// An event schema as `GetSchema` returned it, parsed.
#[derive(Debug)]
pub struct EventSchema {
    pub id: String,
    schema: Schema,
    shape: Shape,
}

impl EventSchema {
    /// Parses the schema JSON of `id`.
    pub fn parse(id: &str, json: &str) -> Result<EventSchema, PayloadError> {
        let schema = Schema::parse(json)
            .map_err(|e| PayloadError(format!("schema {id} is not an Avro schema: {e}")))?;
        let (_, fields) = schema
            .record_of(&schema.root)
            .ok_or_else(|| PayloadError(format!("schema {id} is not a record")))?;
        let shape = Shape {
            fields: fields
                .iter()
                .map(|f| {
                    let sub = (f.name != "ChangeEventHeader")
                        .then(|| schema.record_of(&f.ty))
                        .flatten()
                        .map(|(_, s)| s.iter().map(|f| f.name.clone()).collect());
                    (f.name.clone(), sub)
                })
                .collect(),
        };
        Ok(EventSchema {
            id: id.to_string(),
            schema,
            shape,
        })
    }

    /// The CDC payload (CometD's shape) of one event's Avro datum.
    pub fn decode(&self, payload: &[u8]) -> Result<Value, PayloadError> {
        let datum = self.schema.decode(payload).map_err(|e| {
            PayloadError(format!(
                "the payload does not decode with schema {}: {e}",
                self.id
            ))
        })?;
        let Datum::Record(fields) = datum else {
            return Err(PayloadError("the payload is not a record".into()));
        };
        let mut out = Map::new();
        let mut header = None;
        for (name, value) in fields {
            if name == "ChangeEventHeader" {
                header = Some(value.into_json());
                continue;
            }
            let value = value.into_json();
            if let Value::Object(sub) = value {
                // Compound: its non-null subfields.
                let sub: Map<String, Value> =
                    sub.into_iter().filter(|(_, v)| !v.is_null()).collect();
                if !sub.is_empty() {
                    out.insert(name, Value::Object(sub));
                }
            } else if !value.is_null() {
                out.insert(name, value);
            }
        }
        let Some(Value::Object(mut header)) = header else {
            return Err(PayloadError("the payload has no ChangeEventHeader".into()));
        };
        let mut names = |key: &str| -> Result<Vec<String>, PayloadError> {
            let entries: Vec<String> = match header.get(key) {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| PayloadError(format!("{key} holds a non-string")))?,
                None | Some(Value::Null) => Vec::new(),
                Some(other) => return Err(PayloadError(format!("{key} is {other}, not a list"))),
            };
            let names = self
                .shape
                .names(&entries)
                .map_err(|e| PayloadError(format!("{key}: {e}")))?;
            header.insert(
                key.to_string(),
                Value::Array(names.iter().cloned().map(Value::String).collect()),
            );
            Ok(names)
        };
        let nulled = names("nulledFields")?;
        let diffs = names("diffFields")?;
        names("changedFields")?;
        for name in nulled {
            match name.split_once('.') {
                Some((parent, key)) => {
                    let entry = out
                        .entry(parent.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(sub) = entry {
                        sub.insert(key.to_string(), Value::Null);
                    }
                }
                None => {
                    out.insert(name, Value::Null);
                }
            }
        }
        for name in diffs {
            if let Some(v) = out.get_mut(&name) {
                if v.is_string() {
                    let diff = v.take();
                    *v = serde_json::json!({ "diff": diff });
                }
            }
        }
        out.insert("ChangeEventHeader".into(), Value::Object(header));
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value as Avro;
    use serde_json::json;

    use super::*;

    /// A change-event schema shaped like Salesforce's: the header first, nullable fields, an
    /// address as a nested record.
    fn schema_json() -> String {
        let strings = json!({"type": "array", "items": "string"});
        json!({
            "type": "record", "name": "AccountChangeEvent", "namespace": "com.sforce.eventbus",
            "fields": [
                {"name": "ChangeEventHeader", "type": {"type": "record", "name": "ChangeEventHeader",
                    "fields": [
                        {"name": "entityName", "type": "string"},
                        {"name": "recordIds", "type": strings},
                        {"name": "changeType", "type": {"type": "enum", "name": "ChangeType",
                            "symbols": ["CREATE", "UPDATE", "DELETE", "UNDELETE", "GAP_CREATE",
                                "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE", "GAP_OVERFLOW"]}},
                        {"name": "changeOrigin", "type": "string"},
                        {"name": "transactionKey", "type": "string"},
                        {"name": "sequenceNumber", "type": "int"},
                        {"name": "commitTimestamp", "type": "long"},
                        {"name": "commitNumber", "type": "long"},
                        {"name": "commitUser", "type": "string"},
                        {"name": "nulledFields", "type": strings},
                        {"name": "diffFields", "type": strings},
                        {"name": "changedFields", "type": strings}]}},
                {"name": "Name", "type": ["null", "string"], "default": null},
                {"name": "Phone", "type": ["null", "string"], "default": null},
                {"name": "BillingAddress", "type": ["null", {"type": "record", "name": "Address",
                    "fields": [{"name": "Street", "type": ["null", "string"], "default": null},
                               {"name": "City", "type": ["null", "string"], "default": null}]}],
                    "default": null},
                {"name": "Description", "type": ["null", "string"], "default": null},
                {"name": "LastModifiedDate", "type": ["null", "long"], "default": null}
            ]
        })
        .to_string()
    }

    fn some(v: Avro) -> Avro {
        Avro::Union(1, Box::new(v))
    }

    fn none() -> Avro {
        Avro::Union(0, Box::new(Avro::Null))
    }

    fn strings(v: &[&str]) -> Avro {
        Avro::Array(v.iter().map(|s| Avro::String(s.to_string())).collect())
    }

    fn datum(
        change: (u32, &str),
        changed: &[&str],
        nulled: &[&str],
        diff: &[&str],
        fields: [Avro; 5],
    ) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(&schema_json()).unwrap();
        let header = Avro::Record(vec![
            ("entityName".into(), Avro::String("Account".into())),
            (
                "recordIds".into(),
                strings(&["001EM0000000001AAA", "001EM0000000002AAA"]),
            ),
            ("changeType".into(), Avro::Enum(change.0, change.1.into())),
            (
                "changeOrigin".into(),
                Avro::String("com/salesforce/api/rest/59.0;client=app".into()),
            ),
            ("transactionKey".into(), Avro::String("k".into())),
            ("sequenceNumber".into(), Avro::Int(1)),
            ("commitTimestamp".into(), Avro::Long(1_712_694_387_000)),
            ("commitNumber".into(), Avro::Long(11_258_999_068_426_241)),
            (
                "commitUser".into(),
                Avro::String("005EM000000001AAA".into()),
            ),
            ("nulledFields".into(), strings(nulled)),
            ("diffFields".into(), strings(diff)),
            ("changedFields".into(), strings(changed)),
        ]);
        let [name, phone, address, description, lmd] = fields;
        apache_avro::to_avro_datum(
            &schema,
            Avro::Record(vec![
                ("ChangeEventHeader".into(), header),
                ("Name".into(), name),
                ("Phone".into(), phone),
                ("BillingAddress".into(), address),
                ("Description".into(), description),
                ("LastModifiedDate".into(), lmd),
            ]),
        )
        .unwrap()
    }

    #[test]
    fn an_update_becomes_the_cometd_payload_of_its_changed_and_nulled_fields() {
        let schema = EventSchema::parse("s1", &schema_json()).unwrap();
        // Name (1) and Phone (2) and LastModifiedDate (5) changed, Phone and City nulled,
        // Description (4) sent as a diff.
        let bytes = datum(
            (1, "UPDATE"),
            &["0x36", "3-0x02"],
            &["0x04", "3-0x02"],
            &["0x10"],
            [
                some(Avro::String("Acme".into())),
                none(),
                some(Avro::Record(vec![
                    ("Street".into(), none()),
                    ("City".into(), none()),
                ])),
                some(Avro::String("--- \n+++ abc\n".into())),
                some(Avro::Long(1_712_694_387_000)),
            ],
        );
        let payload = schema.decode(&bytes).unwrap();
        assert_eq!(
            payload,
            json!({
                "Name": "Acme",
                "Phone": null,
                "BillingAddress": {"City": null},
                "Description": {"diff": "--- \n+++ abc\n"},
                "LastModifiedDate": 1_712_694_387_000_i64,
                "ChangeEventHeader": {
                    "entityName": "Account",
                    "recordIds": ["001EM0000000001AAA", "001EM0000000002AAA"],
                    "changeType": "UPDATE",
                    "changeOrigin": "com/salesforce/api/rest/59.0;client=app",
                    "transactionKey": "k",
                    "sequenceNumber": 1,
                    "commitTimestamp": 1_712_694_387_000_i64,
                    "commitNumber": 11_258_999_068_426_241_i64,
                    "commitUser": "005EM000000001AAA",
                    "nulledFields": ["Phone", "BillingAddress.City"],
                    "diffFields": ["Description"],
                    "changedFields": ["Name", "Phone", "Description", "LastModifiedDate", "BillingAddress.City"],
                }
            })
        );
        // The engine's header type reads it, commit number exact.
        let header = crate::adapter::ChangeEventHeader::from_payload(&payload).unwrap();
        assert_eq!(header.commit_number, 11_258_999_068_426_241);
        assert_eq!(header.record_ids.len(), 2);
    }

    #[test]
    fn bad_payloads_are_errors_for_that_event() {
        let schema = EventSchema::parse("s1", &schema_json()).unwrap();
        assert!(schema.decode(b"\x01\x02garbage").is_err());
        let good = datum(
            (0, "CREATE"),
            &[],
            &[],
            &[],
            [none(), none(), none(), none(), none()],
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(schema.decode(&longer).unwrap_err().0.contains("bytes left"));
        let beyond = datum(
            (1, "UPDATE"),
            &["0x0100"],
            &[],
            &[],
            [none(), none(), none(), none(), none()],
        );
        let e = schema.decode(&beyond).unwrap_err();
        assert!(
            e.0.contains("changedFields") && e.0.contains("no field 8"),
            "{e}"
        );
        assert!(EventSchema::parse("bad", "{").is_err());
        assert!(EventSchema::parse("bad", "\"string\"").is_err());
    }
}
