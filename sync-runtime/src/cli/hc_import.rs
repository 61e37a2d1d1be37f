//! `forcesync init --from-heroku-connect EXPORT.json`: Heroku Connect's mapping export (the JSON
//! its dashboard and `heroku connect:export` write) turned into `mappings/<Object>.toml` files and
//! `forcesync.toml` (pure: [`parse_export`], [`render_mapping`], [`render_settings`]).
//!
//! What carries over: `access`, the mapped `fields` (the always-mapped `Id`, `IsDeleted`,
//! `SystemModstamp` and `CreatedDate` are not repeated), `upsert_field` as `upsert_key`, the
//! `indexes` (unique or not) beyond the standard `sfid` and `systemmodstamp` ones,
//! `sf_polling_seconds`, `sf_max_daily_api_calls`, `sf_notify_enabled` (as `streaming`), and the
//! connection's `api_version` and schema. Nothing is dropped silently: a field the describe does
//! not know (or whose type cannot be synced) stays in the file, commented, with a did-you-mean,
//! and is reported; so is every setting without a forcesync equivalent, with what forcesync does
//! instead. The files build as written.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sync_schema::describe::{FieldDescribe, SObjectDescribe};

use crate::adapter::SfType;

/// Always mapped by forcesync (and Heroku Connect): never repeated in `fields`.
const ALWAYS_MAPPED: [&str; 4] = ["Id", "IsDeleted", "SystemModstamp", "CreatedDate"];
/// Indexed by every forcesync mapping (`hcu_idx_<t>_sfid`, `hc_idx_<t>_systemmodstamp`).
const ALWAYS_INDEXED: [&str; 2] = ["Id", "SystemModstamp"];
/// Keys of a mapping's `config` the importer reads or knowingly skips (bookkeeping).
const KNOWN_CONFIG_KEYS: [&str; 9] = [
    "access",
    "fields",
    "upsert_field",
    "indexes",
    "sf_polling_seconds",
    "sf_max_daily_api_calls",
    "sf_notify_enabled",
    "applied_at",
    "revision",
];
/// Column where trailing comments start.
const COMMENT_COLUMN: usize = 36;

/// One mapping of the export.
#[derive(Debug, Clone, PartialEq)]
pub struct HcMapping {
    pub object: String,
    pub read_write: bool,
    pub fields: Vec<String>,
    pub upsert_field: Option<String>,
    /// Field name and whether the index is unique.
    pub indexes: Vec<(String, bool)>,
    pub poll_seconds: Option<u32>,
    pub max_daily_api_calls: Option<u32>,
    pub notify: Option<bool>,
    /// `config` keys with no forcesync equivalent, and their values.
    pub unknown: Vec<(String, Value)>,
}

/// The parts of an export the importer uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub api_version: Option<String>,
    /// The connection's Postgres schema (the last part of `connection.name`, `app:DB_KEY:schema`).
    pub schema: Option<String>,
    pub exported_at: Option<String>,
    /// `connection.features`, in name order.
    pub features: Vec<(String, Value)>,
    pub mappings: Vec<HcMapping>,
}

fn positive(config: &Map<String, Value>, key: &str, object: &str) -> Result<Option<u32>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| format!("{object}: config.{key} is {v}, not a positive whole number")),
    }
}

/// Reads an export (pure). Errors name what is wrong and where.
pub fn parse_export(text: &str) -> Result<Export, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let connection = json.get("connection").cloned().unwrap_or(Value::Null);
    let string = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let api_version = string(&connection["api_version"]).map(|v| {
        let v = v.trim_start_matches(['v', 'V']).to_owned();
        if v.contains('.') {
            v
        } else {
            format!("{v}.0")
        }
    });
    let schema = connection["name"]
        .as_str()
        .and_then(|name| {
            let parts: Vec<&str> = name.split(':').collect();
            (parts.len() == 3).then(|| parts[2].trim().to_owned())
        })
        .filter(|s| !s.is_empty());
    let features = connection["features"]
        .as_object()
        .map(|f| f.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let list = json
        .get("mappings")
        .and_then(Value::as_array)
        .ok_or("no `mappings` array: is this Heroku Connect's mapping export?")?;
    let mut mappings = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, entry) in list.iter().enumerate() {
        let object = entry["object_name"]
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("mappings[{i}] has no object_name"))?
            .trim()
            .to_owned();
        if !seen.insert(object.to_ascii_lowercase()) {
            return Err(format!("{object} is mapped twice"));
        }
        let empty = Map::new();
        let config = entry["config"].as_object().unwrap_or(&empty);
        let read_write = match config.get("access").and_then(Value::as_str) {
            None => false, // Heroku Connect's default
            Some("read_only") => false,
            Some("read_write") => true,
            Some(other) => {
                return Err(format!(
                    "{object}: config.access is `{other}`, expected read_only or read_write"
                ))
            }
        };
        let fields = match config.get("fields") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(f)) => f.keys().cloned().collect(),
            Some(Value::Array(f)) => f
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{object}: config.fields holds {v}"))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("{object}: config.fields is {other}")),
        };
        let upsert_field = config
            .get("upsert_field")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let indexes = config
            .get("indexes")
            .and_then(Value::as_object)
            .map(|ix| {
                ix.iter()
                    .map(|(name, spec)| (name.clone(), spec["unique"] == Value::Bool(true)))
                    .collect()
            })
            .unwrap_or_default();
        let notify = match config.get("sf_notify_enabled") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => return Err(format!("{object}: config.sf_notify_enabled is {other}")),
        };
        let unknown = config
            .iter()
            .filter(|(k, _)| !KNOWN_CONFIG_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        mappings.push(HcMapping {
            poll_seconds: positive(config, "sf_polling_seconds", &object)?,
            max_daily_api_calls: positive(config, "sf_max_daily_api_calls", &object)?,
            object,
            read_write,
            fields,
            upsert_field,
            indexes,
            notify,
            unknown,
        });
    }
    if mappings.is_empty() {
        return Err("the export holds no mappings".into());
    }
    Ok(Export {
        api_version,
        schema,
        exported_at: string(&connection["exported_at"]),
        features,
        mappings,
    })
}

fn pad(code: &str, comment: &str) -> String {
    let width = COMMENT_COLUMN.max(code.len() + 2);
    format!("{code:<width$}# {comment}\n")
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// One `fields` entry.
struct Entry {
    name: String,
    on: bool,
    note: Option<String>,
    /// Position in the describe (entries are written in describe order, unknown ones last).
    order: usize,
}

fn unknown_field(describe: &SObjectDescribe, name: &str) -> String {
    let hint = sync_schema::diagnostics::did_you_mean(
        name,
        describe.fields.iter().map(|f| f.name.as_str()),
    )
    .map(|d| format!("; did you mean `{d}`?"))
    .unwrap_or_default();
    format!(
        "`{name}` is not a field of {} in its describe{hint}",
        describe.name
    )
}

fn syncable(describe: &SObjectDescribe, field: &FieldDescribe) -> bool {
    if field.is_compound() {
        let parts = describe.components(&field.name);
        !parts.is_empty()
            && parts
                .iter()
                .all(|p| SfType::from_describe(&p.field_type).is_some())
    } else {
        SfType::from_describe(&field.field_type).is_some()
    }
}

/// The describe of `name` when the mapping maps it (listed and on, a component of a compound
/// that is on, or always mapped).
fn is_mapped<'d>(
    describe: &'d SObjectDescribe,
    entries: &[Entry],
    name: &str,
) -> Option<&'d FieldDescribe> {
    let field = describe.field(name)?;
    let on = |n: &str| {
        entries
            .iter()
            .any(|e| e.on && e.name.eq_ignore_ascii_case(n))
    };
    let system = ALWAYS_MAPPED.iter().any(|s| s.eq_ignore_ascii_case(name));
    let component_on =
        !field.is_compound() && field.compound_field_name.as_deref().is_some_and(&on);
    (system || on(&field.name) || component_on).then_some(field)
}

/// A mapping file from one exported mapping and its object's describe payload (pure).
/// `has_describe` says whether a parent object's snapshot is at hand (relationship columns need
/// it). Returns the file text and what to report to the user.
pub fn render_mapping(
    mapping: &HcMapping,
    describe_json: &Value,
    has_describe: &dyn Fn(&str) -> bool,
) -> Result<(String, Vec<String>), String> {
    let describe: SObjectDescribe = serde_json::from_value(describe_json.clone())
        .map_err(|e| format!("not a describe payload: {e}"))?;
    let object = describe.name.clone();
    let mut reports = Vec::new();
    let mut report = |text: String| reports.push(format!("{object}: {text}"));
    let position = |name: &str| {
        describe
            .fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    };

    let listed: Vec<&str> = mapping
        .fields
        .iter()
        .map(String::as_str)
        .filter(|f| !ALWAYS_MAPPED.iter().any(|s| s.eq_ignore_ascii_case(f)))
        .collect();
    let mut entries: Vec<Entry> = Vec::new();
    for name in &listed {
        if let Some((relationship, parent_field)) = name.split_once('.') {
            let lookup = describe.fields.iter().find(|f| {
                f.relationship_name
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(relationship))
            });
            let (on, note) = match lookup {
                None => {
                    let text =
                        format!("`{name}`: {object} has no relationship named `{relationship}`");
                    report(format!("{text}; left commented out"));
                    (false, Some(text))
                }
                Some(l) => match l.reference_to.first() {
                    Some(parent) if l.reference_to.len() == 1 && has_describe(parent) => {
                        (true, Some(format!("{parent} by its {parent_field}")))
                    }
                    _ => {
                        let text = format!(
                            "`{name}` needs the describe snapshot of {}",
                            l.reference_to.join(", ")
                        );
                        report(format!(
                            "{text}; left commented out (add it with `forcesync describe pull`)"
                        ));
                        (false, Some(text))
                    }
                },
            };
            entries.push(Entry {
                name: (*name).to_owned(),
                on,
                note,
                order: usize::MAX,
            });
            continue;
        }
        let Some(field) = describe.field(name) else {
            let text = unknown_field(&describe, name);
            report(format!("{text}; left commented out, the rest is mapped"));
            entries.push(Entry {
                name: (*name).to_owned(),
                on: false,
                note: Some(text),
                order: usize::MAX,
            });
            continue;
        };
        let order = position(&field.name).unwrap_or(usize::MAX);
        if entries
            .iter()
            .any(|e| e.name.eq_ignore_ascii_case(&field.name))
        {
            continue;
        }
        if !syncable(&describe, field) {
            let text = format!(
                "`{}` is a {} field, which cannot be synced",
                field.name, field.field_type
            );
            report(format!("{text}; left commented out"));
            entries.push(Entry {
                name: field.name.clone(),
                on: false,
                note: Some(text),
                order,
            });
            continue;
        }
        if field.is_compound() {
            let components = describe.components(&field.name);
            if components
                .iter()
                .any(|c| listed.iter().any(|l| l.eq_ignore_ascii_case(&c.name)))
            {
                let text = format!(
                    "`{}` is listed with its components, which are mapped one by one",
                    field.name
                );
                report(format!("{text}; the compound is left commented out"));
                entries.push(Entry {
                    name: field.name.clone(),
                    on: false,
                    note: Some(text),
                    order,
                });
                continue;
            }
        }
        entries.push(Entry {
            name: field.name.clone(),
            on: true,
            note: None,
            order,
        });
    }
    entries.sort_by_key(|e| e.order);
    // upsert_field: a unique external ID on a read-write mapping.
    let mut upsert_key: Option<(String, bool, Option<String>)> = None; // (name, on, note)
    let mut extra_indexes: Vec<(String, bool)> = Vec::new();
    if let Some(key) = &mapping.upsert_field {
        match describe.field(key) {
            None => {
                let text = unknown_field(&describe, key);
                report(format!(
                    "upsert_field: {text}; upsert_key left commented out"
                ));
                upsert_key = Some((key.clone(), false, Some(text)));
            }
            Some(f) if !(f.external_id && f.unique) => {
                let text = format!(
                    "upsert_field `{}` is not a unique external ID, so Salesforce cannot upsert on it",
                    f.name
                );
                report(format!("{text}; upsert_key left commented out"));
                upsert_key = Some((f.name.clone(), false, Some(text)));
            }
            Some(f) if !mapping.read_write => {
                report(format!(
                    "upsert_field `{}` on a read-only mapping: forcesync uses upsert_key only to \
                     write, so it becomes a unique index",
                    f.name
                ));
                if is_mapped(&describe, &entries, &f.name).is_none() {
                    entries.push(Entry {
                        name: f.name.clone(),
                        on: true,
                        note: Some("Heroku Connect's upsert_field".into()),
                        order: usize::MAX,
                    });
                }
                extra_indexes.push((f.name.clone(), true));
            }
            Some(f) => upsert_key = Some((f.name.clone(), true, None)),
        }
    }

    // Indexes beyond sfid and systemmodstamp.
    let mut indexes: Vec<(String, bool, Option<String>)> = Vec::new();
    for (name, unique) in mapping.indexes.iter().cloned().chain(extra_indexes) {
        if ALWAYS_INDEXED.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
            continue;
        }
        let Some(field) = describe.field(&name) else {
            report(format!(
                "index on {}; not carried over",
                unknown_field(&describe, &name)
            ));
            continue;
        };
        let is_key = upsert_key
            .as_ref()
            .is_some_and(|(k, on, _)| *on && k.eq_ignore_ascii_case(&field.name));
        if is_mapped(&describe, &entries, &field.name).is_none() && !is_key {
            report(format!(
                "index on `{}`, which is not mapped; not carried over",
                field.name
            ));
            continue;
        }
        if field.is_compound() {
            report(format!(
                "index on the compound `{}`: index one of its components instead; not carried over",
                field.name
            ));
            continue;
        }
        if indexes
            .iter()
            .any(|(n, ..)| n.eq_ignore_ascii_case(&field.name))
        {
            continue;
        }
        let keeps_unique = field.unique || field.field_type == "id";
        let note = (unique && !keeps_unique).then(|| {
            report(format!(
                "unique index on `{}`, which Salesforce does not keep unique: carried over as a \
                 plain index (a duplicate from Salesforce would stop the sync)",
                field.name
            ));
            "unique in Heroku Connect; Salesforce does not keep it unique".to_owned()
        });
        indexes.push((field.name.clone(), unique && keeps_unique, note));
    }

    for (key, value) in &mapping.unknown {
        report(format!(
            "config.{key} = {value} has no forcesync equivalent; not carried over"
        ));
    }

    // The file.
    let mut out = format!(
        "# {label} ({object}): imported from Heroku Connect's mapping export by\n\
         # `forcesync init --from-heroku-connect`. Every key is described in sync-schema/MAPPINGS.md.\n\
         # Id, IsDeleted, SystemModstamp and CreatedDate are always synced.\n",
        label = describe.label
    );
    out.push_str(&format!("object = {}\n", quoted(&object)));
    let access = if mapping.read_write {
        "read_write"
    } else {
        "read_only"
    };
    out.push_str(&pad(
        &format!("access = \"{access}\""),
        "read_only | read_write (the app's changes are written back to Salesforce)",
    ));
    out.push_str("fields = [\n");
    for entry in &entries {
        let code = if entry.on {
            format!("    {},", quoted(&entry.name))
        } else {
            format!("    # {},", quoted(&entry.name))
        };
        match &entry.note {
            Some(note) => out.push_str(&pad(&code, note)),
            None => out.push_str(&format!("{code}\n")),
        }
    }
    out.push_str("]\n");
    if let Some((key, on, note)) = &upsert_key {
        let code = if *on {
            format!("upsert_key = {}", quoted(key))
        } else {
            format!("# upsert_key = {}", quoted(key))
        };
        out.push_str(&pad(
            &code,
            note.as_deref()
                .unwrap_or("Heroku Connect's upsert_field: inserts from Postgres are idempotent"),
        ));
    }
    out.push_str("\n[sync]\n");
    match mapping.notify {
        Some(true) => out.push_str(&pad(
            "streaming = true",
            "accelerated polling in Heroku Connect: Change Data Capture here",
        )),
        Some(false) => out.push_str(&pad(
            "streaming = false",
            "Heroku Connect polled only; true streams changes (Change Data Capture)",
        )),
        None => {}
    }
    if let Some(seconds) = mapping.poll_seconds {
        out.push_str(&pad(
            &format!("poll_seconds = {seconds}"),
            "Heroku Connect's sf_polling_seconds",
        ));
    }
    out.push_str(&pad(
        "deletes = \"hard\"",
        "Heroku Connect's behaviour: a record deleted in Salesforce deletes the row",
    ));
    if let Some(calls) = mapping.max_daily_api_calls {
        out.push_str(&pad(
            &format!("max_daily_api_calls = {calls}"),
            "Heroku Connect's sf_max_daily_api_calls",
        ));
    }
    if !indexes.is_empty() {
        out.push_str(
            "\n[indexes]                           # beyond sfid (unique) and systemmodstamp\n",
        );
        for (name, unique, note) in &indexes {
            let code = if *unique {
                format!("{name} = {{ unique = true }}")
            } else {
                format!("{name} = {{}}")
            };
            match note {
                Some(note) => out.push_str(&pad(&code, note)),
                None => out.push_str(&format!("{code}\n")),
            }
        }
    }
    Ok((out, reports))
}

/// What forcesync does instead of a Heroku Connect connection feature (its value `true`, or
/// `poll_db_no_merge` either way).
fn feature_report(name: &str, value: &Value) -> Option<String> {
    let on = value == &Value::Bool(true);
    let text = match name {
        "poll_db_no_merge" if on => {
            "Ordered Writes: forcesync sends each record's changes in capture order, one \
             operation per record per round, parents before children; records are sent in \
             batches, not one by one"
        }
        "poll_db_no_merge" => {
            "Merged Writes: forcesync likewise merges a record's pending changes into one \
             operation, in capture order, parents before children"
        }
        _ if !on => return None,
        "disable_bulk_writes" => {
            "forcesync writes through sObject Collections and switches to a Bulk API 2.0 \
             ingest job only for a large batch; there is no switch"
        }
        "poll_external_ids" => {
            "forcesync reads by Id and SystemModstamp; external ID fields are read like any field"
        }
        "rest_count_only" => "forcesync counts records with REST `SELECT COUNT()` always",
        "ucs_basic_collation_index" => "forcesync's indexes use the database's default collation",
        "use_assignment_rules" => "forcesync does not run assignment rules on its writes",
        "cdc_for_accelerated_polling" => {
            "forcesync streams through Change Data Capture where `streaming = true`"
        }
        "force_picklist_255" => {
            "forcesync sizes picklist columns from the describe; an existing wider column is kept"
        }
        _ => "no forcesync equivalent; ignored",
    };
    Some(format!("connection feature {name} = {value}: {text}"))
}

/// `forcesync.toml` from the export's connection (pure), and what to report.
pub fn render_settings(export: &Export, default_api_version: &str) -> (String, Vec<String>) {
    let mut reports: Vec<String> = export
        .features
        .iter()
        .filter_map(|(name, value)| feature_report(name, value))
        .collect();
    let api_version = export.api_version.clone().unwrap_or_else(|| {
        reports.push(format!(
            "the export names no connection.api_version; using {default_api_version}"
        ));
        default_api_version.to_owned()
    });
    let schema = export
        .schema
        .clone()
        .unwrap_or_else(|| "salesforce".to_owned());
    let mut out = String::from(
        "# Connection-wide settings, imported from Heroku Connect's mapping export by\n\
         # `forcesync init --from-heroku-connect`.\n",
    );
    if let Some(at) = &export.exported_at {
        out.push_str(&format!("# The export was made at {at}.\n"));
    }
    out.push_str(&pad(
        &format!("api_version = {}", quoted(&api_version)),
        "the connection's Salesforce API version",
    ));
    out.push_str(&pad(
        &format!("schema = {}", quoted(&schema)),
        "the Postgres schema Heroku Connect wrote to (`forcesync adopt` takes it over)",
    ));
    out.push_str(&pad(
        "poll_seconds = 600",
        "Heroku Connect's default polling interval",
    ));
    out.push_str(&pad(
        "streaming_transport = \"pubsub\"",
        "change events over the Pub/Sub API (\"cometd\": the Streaming API, as Heroku Connect)",
    ));
    (out, reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(object: &str) -> Value {
        let path = format!(
            "{}/../mappings/describe/{object}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn export() -> Export {
        parse_export(
            &serde_json::json!({
                "version": 1,
                "connection": {"app_name": "shop", "organization_id": "00D000000000001",
                    "exported_at": "2026-11-30T10:00:00Z", "api_version": "58.0",
                    "name": "shop:DATABASE_URL:salesforce",
                    "features": {"poll_db_no_merge": true, "disable_bulk_writes": false,
                                 "rest_count_only": true}},
                "mappings": [
                    {"object_name": "Invoice__c", "config": {
                        "access": "read_write", "sf_notify_enabled": true,
                        "sf_polling_seconds": 120, "sf_max_daily_api_calls": 50000,
                        "upsert_field": "External_Id__c",
                        "fields": {"Id": {}, "IsDeleted": {}, "SystemModstamp": {},
                                   "CreatedDate": {}, "Name": {}, "Account__c": {},
                                   "External_Id__c": {}, "Amount__c": {}, "Totl__c": {},
                                   "Location__Latitude__s": {}, "Location__Longitude__s": {}},
                        "indexes": {"Id": {"unique": true}, "SystemModstamp": {"unique": false},
                                    "External_Id__c": {"unique": true}, "Account__c": {"unique": false},
                                    "Name": {"unique": true}, "Status__c": {"unique": false}},
                        "poll_db_merge_window": 5,
                        "applied_at": "2023-02-14T01:40:34Z"}},
                    {"object_name": "account", "config": {"fields": {"Name": {}, "Industry": {}}}}
                ]
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn the_export_is_read_with_heroku_connects_defaults() {
        let export = export();
        assert_eq!(export.api_version.as_deref(), Some("58.0"));
        assert_eq!(export.schema.as_deref(), Some("salesforce"));
        let invoice = &export.mappings[0];
        assert!(invoice.read_write);
        assert_eq!(invoice.poll_seconds, Some(120));
        assert_eq!(invoice.notify, Some(true));
        assert_eq!(invoice.unknown.len(), 1, "{:?}", invoice.unknown);
        let account = &export.mappings[1];
        assert!(!account.read_write, "read_only is the default");
        assert_eq!(account.poll_seconds, None);

        for (bad, expected) in [
            ("{}", "no `mappings` array"),
            ("{\"mappings\": []}", "no mappings"),
            ("{\"mappings\": [{\"config\": {}}]}", "mappings[0] has no object_name"),
            (
                "{\"mappings\": [{\"object_name\": \"A\", \"config\": {\"access\": \"write\"}}]}",
                "A: config.access is `write`",
            ),
            (
                "{\"mappings\": [{\"object_name\": \"A\", \"config\": {\"sf_polling_seconds\": -1}}]}",
                "A: config.sf_polling_seconds is -1",
            ),
            (
                "{\"mappings\": [{\"object_name\": \"A\"}, {\"object_name\": \"a\"}]}",
                "a is mapped twice",
            ),
            ("nope", "not JSON"),
        ] {
            let err = parse_export(bad).unwrap_err();
            assert!(err.contains(expected), "{bad}: {err}");
        }
    }

    #[test]
    fn fields_keys_and_indexes_carry_over_and_an_unknown_field_is_reported_not_dropped() {
        let export = export();
        let (text, reports) =
            render_mapping(&export.mappings[0], &snapshot("Invoice__c"), &|_| true).unwrap();
        assert!(text.contains("object = \"Invoice__c\"\n"), "{text}");
        assert!(text.contains("access = \"read_write\""), "{text}");
        for on in [
            "Name",
            "Account__c",
            "External_Id__c",
            "Amount__c",
            "Location__Latitude__s",
        ] {
            assert!(text.contains(&format!("\n    \"{on}\",\n")), "{on}: {text}");
        }
        for system in ALWAYS_MAPPED {
            assert!(!text.contains(&format!("\"{system}\"")), "{system}: {text}");
        }
        assert!(
            text.contains("    # \"Totl__c\",") && text.contains("did you mean `Total__c`?"),
            "{text}"
        );
        assert!(
            reports
                .iter()
                .any(|r| r.starts_with("Invoice__c: `Totl__c` is not a field")
                    && r.contains("did you mean `Total__c`?")),
            "{reports:?}"
        );
        assert!(text.contains("\nupsert_key = \"External_Id__c\""), "{text}");
        assert!(text.contains("\nstreaming = true"), "{text}");
        assert!(text.contains("\npoll_seconds = 120"), "{text}");
        assert!(text.contains("\nmax_daily_api_calls = 50000"), "{text}");
        assert!(
            text.contains("\nExternal_Id__c = { unique = true }\n"),
            "{text}"
        );
        assert!(text.contains("\nAccount__c = {}\n"), "{text}");
        // Name is not unique in Salesforce: a plain index, reported.
        assert!(text.contains("\nName = {}"), "{text}");
        assert!(
            reports.iter().any(|r| r.contains("unique index on `Name`")),
            "{reports:?}"
        );
        // Status__c is not mapped: its index cannot be carried over.
        assert!(!text.contains("Status__c ="), "{text}");
        assert!(reports
            .iter()
            .any(|r| r.contains("`Status__c`, which is not mapped")));
        assert!(reports
            .iter()
            .any(|r| r.contains("config.poll_db_merge_window = 5")));
        assert!(!text.contains("[indexes]\nId"), "{text}");
        assert!(!text.contains("SystemModstamp ="), "{text}");
    }

    #[test]
    fn a_read_only_mapping_keeps_heroku_connect_defaults_and_canonical_names() {
        let export = export();
        let (text, reports) =
            render_mapping(&export.mappings[1], &snapshot("Account"), &|_| true).unwrap();
        assert!(text.contains("object = \"Account\"\n"), "{text}");
        assert!(text.contains("access = \"read_only\""), "{text}");
        assert!(!text.contains("upsert_key"), "{text}");
        assert!(!text.contains("streaming"), "{text}");
        assert!(!text.contains("[indexes]"), "{text}");
        assert!(reports.is_empty(), "{reports:?}");
    }

    #[test]
    fn connection_features_are_reported_with_what_forcesync_does() {
        let (text, reports) = render_settings(&export(), "59.0");
        assert!(text.contains("\napi_version = \"58.0\""), "{text}");
        assert!(text.contains("\nschema = \"salesforce\""), "{text}");
        assert!(
            text.contains("\nstreaming_transport = \"pubsub\""),
            "{text}"
        );
        assert!(
            reports
                .iter()
                .any(|r| r.starts_with("connection feature poll_db_no_merge = true:")),
            "{reports:?}"
        );
        assert!(
            reports.iter().any(|r| r.contains("rest_count_only")),
            "{reports:?}"
        );
        assert!(
            !reports.iter().any(|r| r.contains("disable_bulk_writes")),
            "a feature left off needs no word: {reports:?}"
        );
        let bare = parse_export("{\"mappings\": [{\"object_name\": \"Account\"}]}").unwrap();
        let (text, reports) = render_settings(&bare, "59.0");
        assert!(text.contains("\napi_version = \"59.0\""), "{text}");
        assert!(
            reports[0].contains("no connection.api_version"),
            "{reports:?}"
        );
    }
}
