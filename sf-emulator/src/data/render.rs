//! Record rendering: REST JSON records (`attributes` + fields in describe order, compound
//! address/location values built from their components) and CDC payload fields (compound
//! fields nested with capitalised keys, no `IsDeleted`/`SystemModstamp`/formula fields).

use serde_json::{json, Map, Value as Json};

use crate::data::schema::{component_key, FieldType, ObjectSchema};
use crate::data::store::Record;
use crate::data::value::Value;

/// `{"type":"Account","url":"/services/data/v59.0/sobjects/Account/001…"}`.
pub fn attributes(o: &ObjectSchema, id: &str, version: &str) -> Json {
    json!({
        "type": o.name,
        "url": format!("/services/data/v{version}/sobjects/{}/{id}", o.name),
    })
}

/// The REST JSON value of field `i` (compound address/location fields are objects built from
/// their components, null when every component is null).
pub fn field_json(o: &ObjectSchema, rec: &Record, i: usize) -> Json {
    let f = &o.fields[i];
    if f.ftype.is_compound() {
        let comps = &o.components[i];
        if comps.iter().all(|c| rec.get(*c).is_null()) {
            return Json::Null;
        }
        let mut m = Map::new();
        for c in comps {
            let k = component_key(&f.name, &o.fields[*c].name);
            let mut chars = k.chars();
            let key = match chars.next() {
                Some(first) => first.to_lowercase().collect::<String>() + chars.as_str(),
                None => k,
            };
            m.insert(key, rec.get(*c).to_rest_json());
        }
        return Json::Object(m);
    }
    rec.get(i).to_rest_json()
}

/// A REST record: `attributes`, then `fields` (all fields when None) in the order given.
pub fn record_json(
    o: &ObjectSchema,
    rec: &Record,
    fields: Option<&[usize]>,
    version: &str,
) -> Json {
    let mut m = Map::new();
    let id = rec.get(o.sys.id).as_str().unwrap_or("").to_string();
    m.insert("attributes".into(), attributes(o, &id, version));
    match fields {
        Some(list) => {
            for &i in list {
                m.insert(o.fields[i].name.clone(), field_json(o, rec, i));
            }
        }
        None => {
            for i in 0..o.fields.len() {
                m.insert(o.fields[i].name.clone(), field_json(o, rec, i));
            }
        }
    }
    Json::Object(m)
}

fn cdc_excluded(o: &ObjectSchema, i: usize) -> bool {
    let f = &o.fields[i];
    i == o.sys.id
        || Some(i) == o.sys.is_deleted
        || Some(i) == o.sys.system_modstamp
        || f.calculated
        || (f.ftype.is_compound() && o.components[i].is_empty())
}

/// CDC payload fields for `positions` (all non-null fields when None — CREATE/UNDELETE). With
/// explicit positions (UPDATE) nulls are kept. Components are nested under their compound
/// field; the compound field's own value is not sent.
pub fn cdc_fields(
    o: &ObjectSchema,
    rec: &Record,
    positions: Option<&[usize]>,
) -> Map<String, Json> {
    let mut m = Map::new();
    let all: Vec<usize>;
    let (list, keep_null) = match positions {
        Some(p) => (p, true),
        None => {
            all = rec.iter().map(|(i, _)| i).collect();
            (&all[..], false)
        }
    };
    for &i in list {
        if cdc_excluded(o, i) || !o.components[i].is_empty() {
            continue;
        }
        let v = rec.get(i);
        if v.is_null() && !keep_null {
            continue;
        }
        let json = v.to_cdc_json();
        match o.compound_parent[i] {
            Some(p) => {
                let parent = &o.fields[p].name;
                let key = component_key(parent, &o.fields[i].name);
                let entry = m
                    .entry(parent.clone())
                    .or_insert_with(|| Json::Object(Map::new()));
                if let Json::Object(inner) = entry {
                    inner.insert(key, json);
                }
            }
            None => {
                m.insert(o.fields[i].name.clone(), json);
            }
        }
    }
    m
}

/// Names for `changedFields`: `Phone`, or `BillingAddress.City` for components.
pub fn changed_field_name(o: &ObjectSchema, i: usize) -> String {
    match o.compound_parent[i] {
        Some(p) => format!(
            "{}.{}",
            o.fields[p].name,
            component_key(&o.fields[p].name, &o.fields[i].name)
        ),
        None => o.fields[i].name.clone(),
    }
}

/// Whether a field appears in CDC payloads at all.
pub fn in_cdc(o: &ObjectSchema, i: usize) -> bool {
    !cdc_excluded(o, i) && o.components[i].is_empty()
}

/// Text of a field for Bulk CSV (compound fields are not exported: empty).
pub fn field_csv(o: &ObjectSchema, rec: &Record, i: usize) -> String {
    if o.fields[i].ftype.is_compound() {
        return String::new();
    }
    rec.get(i).to_csv()
}

/// A person-name compound (`Name` of Contact/Lead): "First Last".
pub fn person_name(o: &ObjectSchema, rec: &Record, name_idx: usize) -> Value {
    let mut parts = Vec::new();
    for &c in &o.components[name_idx] {
        let f = &o.fields[c].name;
        if f == "FirstName" || f == "MiddleName" || f == "LastName" || f == "Suffix" {
            if let Some(s) = rec.get(c).as_str() {
                parts.push((f.clone(), s.to_string()));
            }
        }
    }
    let order = ["FirstName", "MiddleName", "LastName", "Suffix"];
    parts.sort_by_key(|(f, _)| order.iter().position(|o| o == f));
    let s = parts
        .into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(" ");
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.into())
    }
}

/// True when field `i` is a person-name compound (a `string` field with components).
pub fn is_person_name(o: &ObjectSchema, i: usize) -> bool {
    o.fields[i].ftype == FieldType::String && !o.components[i].is_empty()
}
