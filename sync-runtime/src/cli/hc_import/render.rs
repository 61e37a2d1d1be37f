//! Rendering the files `forcesync init --from-heroku-connect` writes (pure): one
//! `mappings/<Object>.toml` per exported mapping against its describe ([`render_mapping`]), and
//! `forcesync.toml` from the export's connection ([`render_settings`]), with what to report.

use serde_json::Value;
use sync_schema::describe::{FieldDescribe, SObjectDescribe};

use super::{Export, HcMapping, ALWAYS_INDEXED};
use crate::adapter::SfType;
use crate::cli::mapping_file::{access_and_fields, pad, quoted, ALWAYS_MAPPED};

/// One `fields` entry.
struct Entry {
    name: String,
    on: bool,
    note: Option<String>,
    /// Position in the describe (entries are written in describe order, unknown ones last).
    order: usize,
}

impl Entry {
    /// An entry left commented out, saying why.
    fn commented(name: &str, why: String, order: usize) -> Entry {
        Entry {
            name: name.to_owned(),
            on: false,
            note: Some(why),
            order,
        }
    }
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
            entries.push(Entry::commented(name, text, usize::MAX));
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
            entries.push(Entry::commented(&field.name, text, order));
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
                entries.push(Entry::commented(&field.name, text, order));
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
    access_and_fields(
        &mut out,
        mapping.read_write,
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.on, e.note.as_deref())),
    );
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
