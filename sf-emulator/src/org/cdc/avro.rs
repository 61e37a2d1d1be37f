//! Change events as the Pub/Sub API carries them (Pub/Sub API Developer Guide, "Event
//! Deserialization Considerations"; Change Data Capture Developer Guide, "Differences Between
//! Change Events Received with Streaming API vs. Pub/Sub API"): the Avro schema of an object's
//! change event built from its describe — the `ChangeEventHeader` record first, then every
//! field the event can carry, in describe order, each nullable, compound fields (addresses,
//! geolocations, person names) as nested records — its `schema_id` (a digest of the schema, so
//! it changes when the fields do), and one event encoded as a raw Avro binary datum: unchanged
//! fields null, dates as epoch milliseconds, and the header's `changedFields`, `nulledFields`
//! and `diffFields` as hex bitmaps over the schema's field positions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use base64::Engine as _;
use chrono::{NaiveDate, NaiveTime, Timelike};
use parking_lot::Mutex;
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::data::render::in_cdc;
use crate::data::schema::{component_key, FieldType, ObjectSchema, OrgSchema};
use crate::org::cdc::{channel_of, ChangeEvent};

/// The `changeType` enum's symbols.
const CHANGE_TYPES: &[&str] = &[
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
];

/// A value in Avro's binary encoding (Apache Avro 1.11 specification, "Binary Encoding"): the
/// types a change event uses. It is written in the order of the schema [`EventSchema::build`]
/// makes from the same describe, so the writer needs no schema of its own (and no general Avro
/// crate in the product's build); the tests decode its output with the reference
/// implementation and the published schema.
#[derive(Clone, Debug, PartialEq)]
enum Avro {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    String(String),
    /// The symbol's index (the symbol itself is for readers of this code).
    Enum(u32, String),
    Array(Vec<Avro>),
    /// The branch's index and its value.
    Union(u32, Box<Avro>),
    /// Fields in schema order (names for readers of this code).
    Record(Vec<(String, Avro)>),
}

/// A zig-zag variable-length long.
fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

impl Avro {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Avro::Null => {}
            Avro::Boolean(b) => out.push(u8::from(*b)),
            Avro::Int(i) => write_long(out, i64::from(*i)),
            Avro::Long(i) => write_long(out, *i),
            Avro::Double(f) => out.extend_from_slice(&f.to_le_bytes()),
            Avro::String(s) => {
                write_long(out, s.len() as i64);
                out.extend_from_slice(s.as_bytes());
            }
            Avro::Enum(i, _) | Avro::Union(i, _) => {
                write_long(out, i64::from(*i));
                if let Avro::Union(_, v) = self {
                    v.write(out);
                }
            }
            Avro::Array(items) => {
                if !items.is_empty() {
                    write_long(out, items.len() as i64);
                    for item in items {
                        item.write(out);
                    }
                }
                write_long(out, 0);
            }
            Avro::Record(fields) => {
                for (_, v) in fields {
                    v.write(out);
                }
            }
        }
    }
}

/// How a value is written in Avro.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    String,
    Boolean,
    Int,
    Long,
    Double,
    /// `long`, epoch ms of midnight UTC.
    Date,
    /// `long`, epoch ms.
    DateTime,
    /// `long`, ms after midnight.
    Time,
}

impl Scalar {
    fn of(t: &FieldType) -> Scalar {
        match t {
            FieldType::Boolean => Scalar::Boolean,
            FieldType::Int => Scalar::Int,
            FieldType::Long => Scalar::Long,
            FieldType::Double | FieldType::Currency | FieldType::Percent => Scalar::Double,
            FieldType::Date => Scalar::Date,
            FieldType::DateTime => Scalar::DateTime,
            FieldType::Time => Scalar::Time,
            _ => Scalar::String,
        }
    }

    fn avro_type(self) -> &'static str {
        match self {
            Scalar::String => "string",
            Scalar::Boolean => "boolean",
            Scalar::Int => "int",
            Scalar::Long | Scalar::Date | Scalar::DateTime | Scalar::Time => "long",
            Scalar::Double => "double",
        }
    }

    /// Salesforce's `doc` tag for the field's data type.
    fn doc(self, t: &FieldType) -> String {
        let kind = match (self, t) {
            (_, FieldType::Id | FieldType::Reference) => "EntityId",
            (_, FieldType::Picklist) => "DynamicEnum",
            (_, FieldType::MultiPicklist) => "MultiEnum",
            (Scalar::String, _) => "Text",
            (Scalar::Boolean, _) => "Switch",
            (Scalar::Int, _) => "Integer",
            (Scalar::Long, _) => "Long",
            (Scalar::Double, FieldType::Currency) => "Currency",
            (Scalar::Double, FieldType::Percent) => "Percent",
            (Scalar::Double, _) => "Double",
            (Scalar::Date, _) => "Date",
            (Scalar::DateTime, _) => "DateTime",
            (Scalar::Time, _) => "Time",
        };
        format!("Data:{kind}")
    }

    /// The Avro value of a CDC JSON value (`None` when it cannot be one).
    fn value(self, v: &Json) -> Option<Avro> {
        Some(match self {
            Scalar::String => Avro::String(match v {
                Json::String(s) => s.clone(),
                Json::Object(o) => o.get("diff")?.as_str()?.to_string(),
                other => other.to_string(),
            }),
            Scalar::Boolean => Avro::Boolean(v.as_bool()?),
            Scalar::Int => Avro::Int(i32::try_from(v.as_i64()?).ok()?),
            Scalar::Long => Avro::Long(v.as_i64()?),
            Scalar::Double => Avro::Double(v.as_f64()?),
            Scalar::Date => {
                let d = NaiveDate::parse_from_str(v.as_str()?, "%Y-%m-%d").ok()?;
                Avro::Long(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
            }
            Scalar::DateTime => Avro::Long(
                chrono::DateTime::parse_from_rfc3339(v.as_str()?)
                    .ok()?
                    .timestamp_millis(),
            ),
            Scalar::Time => {
                let t = NaiveTime::parse_from_str(v.as_str()?.trim_end_matches('Z'), "%H:%M:%S%.f")
                    .ok()?;
                Avro::Long(
                    i64::from(t.num_seconds_from_midnight()) * 1000
                        + i64::from(t.nanosecond() / 1_000_000),
                )
            }
        })
    }
}

/// One top-level field of the event record (position = index + 1; 0 is the header).
#[derive(Debug)]
struct EventField {
    name: String,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Scalar(Scalar),
    /// A compound field: its components' keys (`Street`, `City`, …) and types.
    Compound(Vec<(String, Scalar)>),
}

/// The Avro schema of one object's change events.
#[derive(Debug)]
pub struct EventSchema {
    pub entity: String,
    /// 22 characters, URL-safe: a digest of `json`.
    pub id: String,
    /// The schema as `GetSchema` returns it.
    pub json: String,
    fields: Vec<EventField>,
}

/// Why an event could not be encoded (a defect: the schema is built from the same describe
/// as the event).
#[derive(Debug, thiserror::Error)]
#[error("encoding the {entity} change event as Avro: {message}")]
pub struct EncodeError {
    pub entity: String,
    pub message: String,
}

/// The record name of an object's change event (`AccountChangeEvent`, `Invoice__ChangeEvent`).
pub fn event_name(entity: &str) -> String {
    channel_of(entity).trim_start_matches("/data/").to_string()
}

fn nullable(t: Json) -> Json {
    json!(["null", t])
}

fn header_schema() -> Json {
    let strings = json!({"type": "array", "items": "string"});
    json!({
        "type": "record",
        "name": "ChangeEventHeader",
        "namespace": "com.sforce.eventbus",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {"name": "changeType", "type": {"type": "enum", "name": "ChangeType",
                "namespace": "com.sforce.eventbus", "symbols": CHANGE_TYPES}},
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ],
    })
}

/// The Avro record name of a compound field's type.
fn compound_type_name(o: &ObjectSchema, i: usize) -> &'static str {
    match o.fields[i].ftype {
        FieldType::Address => "Address",
        FieldType::Location => "Location",
        _ => "Switchable_PersonName",
    }
}

impl EventSchema {
    /// The change-event schema of object `o`.
    pub fn build(o: &ObjectSchema) -> Result<EventSchema, EncodeError> {
        let mut fields = Vec::new();
        let mut avro_fields = vec![json!({
            "name": "ChangeEventHeader",
            "type": header_schema(),
            "doc": "Data:ChangeEventHeader",
        })];
        // Named compound types defined so far: name → component keys (a later field of the
        // same shape refers to the type by name, as Avro requires).
        let mut defined: HashMap<String, Vec<(String, Scalar)>> = HashMap::new();
        for (i, f) in o.fields.iter().enumerate() {
            if o.compound_parent[i].is_some() {
                continue;
            }
            if !o.components[i].is_empty() {
                let parts: Vec<(String, Scalar)> = o.components[i]
                    .iter()
                    .filter(|&&c| in_cdc(o, c))
                    .map(|&c| {
                        (
                            component_key(&f.name, &o.fields[c].name),
                            Scalar::of(&o.fields[c].ftype),
                        )
                    })
                    .collect();
                if parts.is_empty() {
                    continue;
                }
                let base = compound_type_name(o, i);
                let mut name = base.to_string();
                let mut n = 1;
                let type_json = loop {
                    match defined.get(&name) {
                        Some(existing) if *existing == parts => break Json::String(name.clone()),
                        Some(_) => {
                            n += 1;
                            name = format!("{base}_{n}");
                        }
                        None => {
                            defined.insert(name.clone(), parts.clone());
                            let sub: Vec<Json> = parts
                                .iter()
                                .map(|(k, s)| {
                                    json!({"name": k, "type": nullable(json!(s.avro_type())),
                                        "default": null})
                                })
                                .collect();
                            break json!({"type": "record", "name": name,
                                "namespace": "com.sforce.eventbus", "fields": sub});
                        }
                    }
                };
                avro_fields.push(json!({
                    "name": f.name,
                    "type": nullable(type_json),
                    "doc": format!("Data:{base}"),
                    "default": null,
                }));
                fields.push(EventField {
                    name: f.name.clone(),
                    kind: Kind::Compound(parts),
                });
            } else if in_cdc(o, i) {
                let s = Scalar::of(&f.ftype);
                avro_fields.push(json!({
                    "name": f.name,
                    "type": nullable(json!(s.avro_type())),
                    "doc": s.doc(&f.ftype),
                    "default": null,
                }));
                fields.push(EventField {
                    name: f.name.clone(),
                    kind: Kind::Scalar(s),
                });
            }
        }
        let json = json!({
            "type": "record",
            "name": event_name(&o.name),
            "namespace": "com.sforce.eventbus",
            "fields": avro_fields,
        })
        .to_string();
        let digest = Sha256::digest(json.as_bytes());
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
        Ok(EventSchema {
            entity: o.name.clone(),
            id,
            json,
            fields,
        })
    }

    /// Position in the schema of a top-level field (the header is 0).
    fn position(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name == name)
            .map(|i| i + 1)
    }

    /// Position of a compound field and of its component `key` inside it.
    fn nested_position(&self, parent: &str, key: &str) -> Option<(usize, usize)> {
        let p = self.fields.iter().position(|f| f.name == parent)?;
        match &self.fields[p].kind {
            Kind::Compound(parts) => parts
                .iter()
                .position(|(k, _)| k == key)
                .map(|sub| (p + 1, sub)),
            Kind::Scalar(_) => None,
        }
    }

    /// The header's three bitmaps for one event.
    pub fn bitmaps(&self, event: &ChangeEvent) -> Bitmaps {
        let mut changed = BitSets::default();
        for name in &event.header.changed_fields {
            match name.split_once('.') {
                Some((parent, key)) => {
                    if let Some((p, sub)) = self.nested_position(parent, key) {
                        changed.nested.entry(p).or_default().insert(sub);
                    }
                }
                None => {
                    if let Some(p) = self.position(name) {
                        changed.top.insert(p);
                    }
                }
            }
        }
        let mut nulled = BitSets::default();
        let mut diff = BitSets::default();
        if event.header.change_type == "UPDATE" {
            let payload = event.payload.as_object();
            for (k, (field, v)) in self
                .fields
                .iter()
                .enumerate()
                .filter_map(|(k, f)| payload.and_then(|p| p.get(&f.name)).map(|v| (k, (f, v))))
            {
                let position = k + 1;
                match (&field.kind, v) {
                    (_, Json::Null) => {
                        nulled.top.insert(position);
                    }
                    (Kind::Scalar(_), Json::Object(o)) if o.contains_key("diff") => {
                        diff.top.insert(position);
                    }
                    (Kind::Compound(parts), Json::Object(o)) => {
                        for (sub, (key, _)) in parts.iter().enumerate() {
                            if o.get(key).is_some_and(Json::is_null) {
                                nulled.nested.entry(position).or_default().insert(sub);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Bitmaps {
            changed: changed.render(),
            nulled: nulled.render(),
            diff: diff.render(),
        }
    }

    /// The event as a raw Avro binary datum.
    pub fn encode(&self, event: &ChangeEvent) -> Result<Vec<u8>, EncodeError> {
        let h = &event.header;
        let bitmaps = self.bitmaps(event);
        let strings = |v: &[String]| Avro::Array(v.iter().cloned().map(Avro::String).collect());
        let change_type = CHANGE_TYPES
            .iter()
            .position(|t| *t == h.change_type)
            .ok_or_else(|| self.error(format!("unknown changeType {:?}", h.change_type)))?;
        let header = Avro::Record(vec![
            ("entityName".into(), Avro::String(h.entity_name.clone())),
            ("recordIds".into(), strings(&h.record_ids)),
            (
                "changeType".into(),
                Avro::Enum(change_type as u32, h.change_type.clone()),
            ),
            ("changeOrigin".into(), Avro::String(h.change_origin.clone())),
            (
                "transactionKey".into(),
                Avro::String(h.transaction_key.clone()),
            ),
            (
                "sequenceNumber".into(),
                Avro::Int(i32::try_from(h.sequence_number).unwrap_or(i32::MAX)),
            ),
            ("commitTimestamp".into(), Avro::Long(h.commit_timestamp)),
            ("commitNumber".into(), Avro::Long(h.commit_number)),
            ("commitUser".into(), Avro::String(h.commit_user.clone())),
            ("nulledFields".into(), strings(&bitmaps.nulled)),
            ("diffFields".into(), strings(&bitmaps.diff)),
            ("changedFields".into(), strings(&bitmaps.changed)),
        ]);
        let empty = Map::new();
        let payload = event.payload.as_object().unwrap_or(&empty);
        let null = || Avro::Union(0, Box::new(Avro::Null));
        let mut record = Vec::with_capacity(self.fields.len() + 1);
        record.push(("ChangeEventHeader".to_string(), header));
        for f in &self.fields {
            let value = match (&f.kind, payload.get(&f.name)) {
                (_, None | Some(Json::Null)) => null(),
                (Kind::Scalar(s), Some(v)) => match s.value(v) {
                    Some(v) => Avro::Union(1, Box::new(v)),
                    None => null(),
                },
                (Kind::Compound(parts), Some(Json::Object(o))) => {
                    let sub = parts
                        .iter()
                        .map(|(key, s)| {
                            let v = o.get(key).and_then(|v| s.value(v));
                            (
                                key.clone(),
                                match v {
                                    Some(v) => Avro::Union(1, Box::new(v)),
                                    None => null(),
                                },
                            )
                        })
                        .collect();
                    Avro::Union(1, Box::new(Avro::Record(sub)))
                }
                (Kind::Compound(_), Some(_)) => null(),
            };
            record.push((f.name.clone(), value));
        }
        let mut out = Vec::with_capacity(256);
        Avro::Record(record).write(&mut out);
        Ok(out)
    }

    fn error(&self, message: String) -> EncodeError {
        EncodeError {
            entity: self.entity.clone(),
            message,
        }
    }
}

/// Bit positions: top-level fields, and components per compound field position.
#[derive(Default)]
struct BitSets {
    top: BTreeSet<usize>,
    nested: BTreeMap<usize, BTreeSet<usize>>,
}

impl BitSets {
    /// `["0x…", "<pos>-0x…", …]`; the first element only when a top-level bit is set.
    fn render(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.top.is_empty() {
            out.push(hex_bitmap(&self.top));
        }
        for (position, bits) in &self.nested {
            if !bits.is_empty() {
                out.push(format!("{position}-{}", hex_bitmap(bits)));
            }
        }
        out
    }
}

/// `0x` and uppercase hex digits, an even number of them: bit i counted from the
/// least-significant end.
pub fn hex_bitmap(bits: &BTreeSet<usize>) -> String {
    let top = bits.iter().next_back().copied().unwrap_or(0);
    let mut bytes = vec![0u8; top / 8 + 1];
    let len = bytes.len();
    for &b in bits {
        bytes[len - 1 - b / 8] |= 1 << (b % 8);
    }
    let mut s = String::with_capacity(2 + 2 * len);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// The header's bitmap fields of one event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Bitmaps {
    pub changed: Vec<String>,
    pub nulled: Vec<String>,
    pub diff: Vec<String>,
}

/// Schemas of one org's change events: built once per revision of an object's metadata
/// (an administrator adding a field makes a new revision, hence a new schema and `schema_id`)
/// and kept, so an event published before the change still resolves its own schema by id.
#[derive(Debug, Default)]
pub struct SchemaRegistry {
    inner: Mutex<Registry>,
}

/// One revision of an object's metadata and its change-event schema.
type Revision = (Arc<ObjectSchema>, Arc<EventSchema>);

#[derive(Debug, Default)]
struct Registry {
    /// Per entity: every revision seen, with its schema (newest last).
    by_entity: HashMap<String, Vec<Revision>>,
    by_id: HashMap<String, Arc<EventSchema>>,
}

impl SchemaRegistry {
    /// The change-event schema of this revision of an object (built on first use).
    pub fn for_object(&self, o: &Arc<ObjectSchema>) -> Result<Arc<EventSchema>, String> {
        let known = |g: &Registry| {
            g.by_entity
                .get(&o.name)
                .and_then(|v| v.iter().find(|(rev, _)| Arc::ptr_eq(rev, o)))
                .map(|(_, s)| s.clone())
        };
        if let Some(s) = known(&self.inner.lock()) {
            return Ok(s);
        }
        let built = Arc::new(EventSchema::build(o).map_err(|e| e.to_string())?);
        let mut g = self.inner.lock();
        if let Some(s) = known(&g) {
            return Ok(s);
        }
        // The same fields give the same schema (and id): keep one.
        let built = g.by_id.entry(built.id.clone()).or_insert(built).clone();
        g.by_entity
            .entry(o.name.clone())
            .or_default()
            .push((o.clone(), built.clone()));
        Ok(built)
    }

    /// The current change-event schema of `entity` in `schema` (None: no such object).
    pub fn for_entity(
        &self,
        schema: &OrgSchema,
        entity: &str,
    ) -> Option<Result<Arc<EventSchema>, String>> {
        schema.object(entity).map(|o| self.for_object(o))
    }

    /// A schema by id: one an event was published with (kept after the object's fields
    /// changed) or a current one (every object's is built so an id from any event resolves).
    pub fn by_id(&self, schema: &OrgSchema, id: &str) -> Option<Arc<EventSchema>> {
        if let Some(s) = self.inner.lock().by_id.get(id) {
            return Some(s.clone());
        }
        for o in &schema.objects {
            let _ = self.for_object(o);
        }
        self.inner.lock().by_id.get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::cdc::Header;
    use apache_avro::types::Value as Reference;

    #[test]
    fn bitmaps_are_uppercase_hex_with_an_even_number_of_digits() {
        let set = |v: &[usize]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(hex_bitmap(&set(&[1, 3])), "0x0A");
        assert_eq!(
            hex_bitmap(&set(&[5, 6, 7, 10, 24, 26, 29, 30])),
            "0x650004E0"
        );
        assert_eq!(hex_bitmap(&set(&[4])), "0x10");
        assert_eq!(hex_bitmap(&set(&[8])), "0x0100");
    }

    fn event(
        schema: &OrgSchema,
        change_type: &str,
        changed: &[&str],
        payload: Json,
    ) -> ChangeEvent {
        let _ = schema;
        ChangeEvent {
            replay_id: 10_001,
            entity: "Account".into(),
            channel: "/data/AccountChangeEvent".into(),
            commit_timestamp: 1_712_694_387_000,
            header: Header {
                entity_name: "Account".into(),
                record_ids: vec!["001EM0000000001AAA".into()],
                change_type: change_type.into(),
                changed_fields: changed.iter().map(|s| s.to_string()).collect(),
                change_origin: String::new(),
                transaction_key: "k".into(),
                sequence_number: 1,
                commit_timestamp: 1_712_694_387_000,
                commit_number: 9_007_199_254_740_993,
                commit_user: "005EM000000001AAA".into(),
            },
            payload,
            schema: None,
        }
    }

    #[test]
    fn an_update_names_changed_nulled_and_nested_fields_by_schema_position() {
        let org = OrgSchema::demo();
        let schema = EventSchema::build(org.object("Account").unwrap()).unwrap();
        let avro: Json = serde_json::from_str(&schema.json).unwrap();
        assert_eq!(avro["fields"][0]["name"], "ChangeEventHeader");
        let name = schema.position("Name").unwrap();
        let phone = schema.position("Phone").unwrap();
        let (billing, city) = schema.nested_position("BillingAddress", "City").unwrap();
        let ev = event(
            &org,
            "UPDATE",
            &["Name", "Phone", "BillingAddress.City"],
            json!({"Name": "Acme", "Phone": null, "BillingAddress": {"City": null}}),
        );
        let b = schema.bitmaps(&ev);
        let bits = |v: &[usize]| hex_bitmap(&v.iter().copied().collect());
        assert_eq!(
            b.changed,
            vec![bits(&[name, phone]), format!("{billing}-{}", bits(&[city]))]
        );
        assert_eq!(
            b.nulled,
            vec![bits(&[phone]), format!("{billing}-{}", bits(&[city]))]
        );
        assert!(b.diff.is_empty());
        // The datum decodes with the published schema; the commit number keeps all its bits.
        let bytes = schema.encode(&ev).unwrap();
        let parsed = apache_avro::Schema::parse_str(&schema.json).unwrap();
        let value = apache_avro::from_avro_datum(&parsed, &mut &bytes[..], None).unwrap();
        let Reference::Record(fields) = value else {
            panic!("a record")
        };
        let Reference::Record(header) = &fields[0].1 else {
            panic!("the header first")
        };
        assert_eq!(
            header.iter().find(|(k, _)| k == "commitNumber").unwrap().1,
            Reference::Long(9_007_199_254_740_993)
        );
        assert_eq!(
            fields[name].1,
            Reference::Union(1, Box::new(Reference::String("Acme".into())))
        );
        // Unchanged fields are null, like nulled ones: only the bitmaps tell them apart.
        let website = schema.position("Website").unwrap();
        assert_eq!(
            fields[website].1,
            Reference::Union(0, Box::new(Reference::Null))
        );
        assert_eq!(
            fields[phone].1,
            Reference::Union(0, Box::new(Reference::Null))
        );
    }

    #[test]
    fn schema_ids_are_stable_and_differ_per_field_set() {
        let org = OrgSchema::demo();
        let a = EventSchema::build(org.object("Account").unwrap()).unwrap();
        let again = EventSchema::build(org.object("Account").unwrap()).unwrap();
        let contact = EventSchema::build(org.object("Contact").unwrap()).unwrap();
        assert_eq!(a.id, again.id);
        assert_eq!(a.id.len(), 22);
        assert_ne!(a.id, contact.id);
        // A field added to the object (a new describe) is a new schema with a new id.
        let mut raw: Json =
            serde_json::from_str(include_str!("../../../demo-org/account.describe.json")).unwrap();
        let fields = raw["fields"].as_array_mut().unwrap();
        let mut extra = fields
            .iter()
            .find(|f| f["name"] == "Phone")
            .unwrap()
            .clone();
        extra["name"] = json!("Extra__c");
        extra["custom"] = json!(true);
        fields.push(extra);
        let grown = ObjectSchema::from_describe(raw, "account").unwrap();
        let changed = EventSchema::build(&grown).unwrap();
        assert_ne!(changed.id, a.id);
        assert!(changed.json.contains("Extra__c"));
    }

    /// A value of each scalar kind, as a CDC payload carries it.
    fn sample(s: Scalar) -> Json {
        match s {
            Scalar::String => json!("text, ünïcode"),
            Scalar::Boolean => json!(true),
            Scalar::Int => json!(-7),
            Scalar::Long => json!(9_007_199_254_740_993_i64),
            Scalar::Double => json!(1.5),
            Scalar::Date => json!("2024-01-02"),
            Scalar::DateTime => json!("2024-01-02T03:04:05.000Z"),
            Scalar::Time => json!("03:04:05.678Z"),
        }
    }

    #[test]
    fn every_demo_object_s_events_decode_with_the_reference_implementation() {
        let org = OrgSchema::demo();
        for o in &org.objects {
            let schema = EventSchema::build(o).unwrap();
            let parsed = apache_avro::Schema::parse_str(&schema.json)
                .unwrap_or_else(|e| panic!("{}: {e}", o.name));
            let mut payload = Map::new();
            for f in &schema.fields {
                let v = match &f.kind {
                    Kind::Scalar(s) => sample(*s),
                    Kind::Compound(parts) => {
                        Json::Object(parts.iter().map(|(k, s)| (k.clone(), sample(*s))).collect())
                    }
                };
                payload.insert(f.name.clone(), v);
            }
            let mut ev = event(&org, "CREATE", &[], Json::Object(payload));
            ev.header.entity_name = o.name.clone();
            let bytes = schema.encode(&ev).unwrap();
            let value = apache_avro::from_avro_datum(&parsed, &mut &bytes[..], None)
                .unwrap_or_else(|e| panic!("{}: {e}", o.name));
            let Reference::Record(fields) = value else {
                panic!("a record")
            };
            assert_eq!(fields.len(), schema.fields.len() + 1, "{}", o.name);
            for (f, (name, v)) in schema.fields.iter().zip(&fields[1..]) {
                assert_eq!(&f.name, name);
                assert!(
                    matches!(v, Reference::Union(1, _)),
                    "{}.{name} was written as null: {v:?}",
                    o.name
                );
            }
        }
    }
}
