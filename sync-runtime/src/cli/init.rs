//! `forcesync init OBJECT…`: writes starter mappings, `mappings/<Object>.toml`, with every
//! syncable field listed and commented out, ready to trim. The object's name field and the
//! fields Salesforce requires on create are uncommented, so the file builds as written and a
//! read-write mapping can insert rows. Each entry says the field's type and label, and whether it
//! is a formula, read-only, an external ID, or a reference. `upsert_key` is suggested when the
//! object has a unique external ID; the `[sync]` defaults are listed commented.
//!
//! The describe comes from `<dir>/describe/<Object>.json`; when that snapshot is missing it is
//! fetched with the configured Salesforce connection and saved there first (as `describe pull`
//! does), since the build needs it next to the mapping anyway.
//!
//! `init --from-heroku-connect EXPORT.json` writes the mappings of a Heroku Connect export
//! instead ([`hc_import`] turns the export into files).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sync_schema::describe::{FieldDescribe, SObjectDescribe};

use crate::adapter::SfType;
use crate::salesforce::Client;

use super::mapping_file::{access_and_fields, pad, ALWAYS_MAPPED};
use super::{describe, hc_import, run, CliError, Context};

/// One line of `fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    on: bool,
    note: String,
}

/// The compound field a component belongs to (`BillingStreet` → `BillingAddress`), if any.
fn compound_of<'d>(describe: &'d SObjectDescribe, field: &FieldDescribe) -> Option<&'d str> {
    let parent = field.compound_field_name.as_deref()?;
    describe
        .field(parent)
        .filter(|p| p.is_compound() && !p.name.eq_ignore_ascii_case(&field.name))
        .map(|p| p.name.as_str())
}

/// Salesforce rejects a create without this field: not nillable, createable, not defaulted;
/// booleans never are (the build's rule, `sync_schema::types::required_on_create`).
fn required_on_create(field: &FieldDescribe) -> bool {
    SfType::from_describe(&field.field_type).is_some_and(|t| t != SfType::Boolean)
        && !field.nillable
        && field.createable
        && !field.defaulted_on_create
}

fn note(field: &FieldDescribe, required: bool, name_field: bool) -> String {
    let mut parts = vec![match field.reference_to.as_slice() {
        [] => field.field_type.clone(),
        targets => format!("reference to {}", targets.join(", ")),
    }];
    parts.push(field.label.clone());
    if name_field {
        parts.push("the record name".into());
    }
    if required {
        parts.push("required on create".into());
    }
    if field.calculated {
        parts.push("formula".into());
    } else if !field.createable && !field.updateable && !field.is_compound() {
        parts.push("read-only".into());
    }
    if field.external_id {
        parts.push(if field.unique {
            "unique external ID".into()
        } else {
            "external ID".into()
        });
    }
    parts.join(", ")
}

/// The starter mapping of an object (pure): `describe_json` is the describe payload,
/// `poll_seconds` the connection-wide default it shows.
pub fn render(
    describe_json: &Value,
    read_write: bool,
    poll_seconds: u32,
) -> Result<String, String> {
    let describe: SObjectDescribe = serde_json::from_value(describe_json.clone())
        .map_err(|e| format!("not a describe payload: {e}"))?;
    let name_fields: Vec<&str> = describe_json["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["nameField"] == Value::Bool(true))
        .filter_map(|f| f["name"].as_str())
        .collect();
    let mut entries = Vec::new();
    let mut unsyncable = Vec::new();
    for field in &describe.fields {
        let system = ALWAYS_MAPPED
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&field.name));
        if system || compound_of(&describe, field).is_some() {
            continue;
        }
        let parts: Vec<&FieldDescribe> = if field.is_compound() {
            describe.components(&field.name)
        } else {
            vec![field]
        };
        let bad: Vec<&FieldDescribe> = parts
            .iter()
            .copied()
            .filter(|p| SfType::from_describe(&p.field_type).is_none())
            .collect();
        if parts.is_empty() || !bad.is_empty() {
            unsyncable.push(format!("{} ({})", field.name, field.field_type));
            continue;
        }
        let required = parts.iter().any(|p| required_on_create(p));
        let name_field = name_fields.contains(&field.name.as_str());
        let mut note = note(field, required, name_field);
        if field.is_compound() {
            let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
            note.push_str(&format!(" ({})", names.join(", ")));
        }
        entries.push(Entry {
            name: field.name.clone(),
            on: required || name_field,
            note,
        });
    }
    let keys: Vec<&str> = describe
        .fields
        .iter()
        .filter(|f| f.external_id && f.unique)
        .map(|f| f.name.as_str())
        .collect();

    let mut out = format!(
        "# {label} ({object}): a starter mapping written by `forcesync init`. Uncomment the fields\n\
         # to sync and delete the rest; every key is described in sync-schema/MAPPINGS.md.\n\
         # Id, IsDeleted, SystemModstamp and CreatedDate are always synced. The fields uncommented\n\
         # are the record name and those Salesforce requires on create.\n",
        label = describe.label,
        object = describe.name
    );
    out.push_str(&format!("object = \"{}\"\n", describe.name));
    access_and_fields(
        &mut out,
        read_write,
        entries
            .iter()
            .map(|e| (e.name.as_str(), e.on, Some(e.note.as_str()))),
    );
    if !unsyncable.is_empty() {
        out.push_str(&format!(
            "# Not syncable (their type): {}\n",
            unsyncable.join(", ")
        ));
    }
    match keys.as_slice() {
        [key] if read_write => out.push_str(&pad(
            &format!("upsert_key = \"{key}\""),
            "a unique external ID: inserts from Postgres are idempotent",
        )),
        [key] => out.push_str(&pad(
            &format!("# upsert_key = \"{key}\""),
            "read_write only: a unique external ID makes inserts idempotent",
        )),
        [] => {}
        many => out.push_str(&pad(
            &format!("# upsert_key = \"{}\"", many[0]),
            &format!(
                "read_write only; the unique external IDs: {}",
                many.join(", ")
            ),
        )),
    }
    out.push_str(&pad(
        "# write_fields = []",
        "read_write only: write back only these fields",
    ));
    out.push_str(&pad(
        "# filter = \"\"",
        "a SOQL WHERE condition: sync a subset of records",
    ));
    out.push_str("\n[sync]\n");
    for (code, comment) in [
        (
            "# streaming = true",
            "Change Data Capture when available, polling otherwise",
        ),
        (
            &format!("# poll_seconds = {poll_seconds}"),
            "default: forcesync.toml's poll_seconds",
        ),
        (
            "# deletes = \"hard\"",
            "hard (delete the row) | soft (keep it, isdeleted = true)",
        ),
        (
            "# conflict = \"merge\"",
            "merge | salesforce_wins | postgres_wins | last_writer_wins",
        ),
        (
            "# max_daily_api_calls = 30000",
            "this mapping's daily budget",
        ),
    ] {
        out.push_str(&pad(code, comment));
    }
    out.push('\n');
    out.push_str(&pad(
        "# [indexes]",
        "beyond sfid (unique) and systemmodstamp, e.g.",
    ));
    match keys.first() {
        Some(key) => out.push_str(&format!("# {key} = {{ unique = true }}\n")),
        None => out.push_str("# Name = {}\n"),
    }
    Ok(out)
}

/// `poll_seconds` of `<dir>/forcesync.toml`, or the build's default.
fn poll_seconds(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("forcesync.toml"))
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|t| t.get("poll_seconds").and_then(toml::Value::as_integer))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| sync_schema::catalog::Settings::default().poll_seconds)
}

/// Where an object's mapping goes.
pub fn mapping_path(dir: &Path, object: &str) -> PathBuf {
    dir.join(format!("{object}.toml"))
}

fn find_snapshot(dir: &Path, object: &str) -> Option<PathBuf> {
    let exact = describe::path_for(dir, object);
    if exact.is_file() {
        return Some(exact);
    }
    // Salesforce names are case-insensitive, as the build's lookup is.
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_stem()
                    .and_then(|s| s.to_str())
                    .is_some_and(|s| s.eq_ignore_ascii_case(object))
        })
}

/// The describe payload of `object`: its snapshot in `describe_dir`, or fetched with the
/// configured connection (logging in once, on first need) and saved there.
async fn describe_of(
    ctx: &Context,
    client: &mut Option<Client>,
    describe_dir: &Path,
    object: &str,
) -> Result<Value, CliError> {
    if let Some(path) = find_snapshot(describe_dir, object) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::failure(format!("cannot read {}: {e}", path.display())))?;
        return serde_json::from_str(&text).map_err(|e| {
            CliError::failure(format!(
                "{} is not JSON ({e}); refresh it with `forcesync describe pull {object}`",
                path.display()
            ))
        });
    }
    if client.is_none() {
        let c = Client::new(ctx.salesforce()?)
            .map_err(|e| CliError::failure(format!("Salesforce client: {e}")))?;
        run::check_login(&c).await?;
        *client = Some(c);
    }
    let c = client.as_ref().expect("set above");
    let fetched = c
        .describe(object)
        .await
        .map_err(|e| CliError::failure(format!("describe {object}: {e}")))?;
    let name = fetched["name"].as_str().unwrap_or(object).to_owned();
    std::fs::create_dir_all(describe_dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", describe_dir.display())))?;
    let path = describe::path_for(describe_dir, &name);
    std::fs::write(&path, describe::render(&fetched))
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    println!("fetched the describe of {name} into {}", path.display());
    Ok(fetched)
}

/// Refuses an existing file unless `force`.
fn check_overwrite(path: &Path, force: bool) -> Result<(), CliError> {
    if path.exists() && !force {
        return Err(CliError::settings(format!(
            "{} exists; pass --force to overwrite it",
            path.display()
        )));
    }
    Ok(())
}

fn write_all(planned: Vec<(PathBuf, String)>) -> Result<(), CliError> {
    for (path, text) in planned {
        std::fs::write(&path, text)
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `forcesync init`.
pub async fn init(
    ctx: &Context,
    objects: &[String],
    dir: &Path,
    read_write: bool,
    force: bool,
) -> Result<(), CliError> {
    let describe_dir = dir.join("describe");
    let mut client: Option<Client> = None;
    let mut planned = Vec::new();
    for object in objects {
        let describe = describe_of(ctx, &mut client, &describe_dir, object).await?;
        let name = describe["name"].as_str().unwrap_or(object).to_owned();
        let text = render(&describe, read_write, poll_seconds(dir))
            .map_err(|e| CliError::failure(format!("{object}: {e}")))?;
        let path = mapping_path(dir, &name);
        check_overwrite(&path, force)?;
        planned.push((path, text));
    }
    write_all(planned)?;
    println!("Trim the fields, then rebuild and run `forcesync migrate`.");
    Ok(())
}

/// `forcesync init --from-heroku-connect EXPORT.json`: the export's mappings and connection
/// settings as `<dir>/<Object>.toml` and `<dir>/forcesync.toml` ([`hc_import`]). Nothing is
/// written unless every file can be (an existing one needs `force`).
pub async fn init_from_heroku_connect(
    ctx: &Context,
    export: &Path,
    dir: &Path,
    force: bool,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(export)
        .map_err(|e| CliError::settings(format!("cannot read {}: {e}", export.display())))?;
    let parsed = hc_import::parse_export(&text)
        .map_err(|e| CliError::settings(format!("{}: {e}", export.display())))?;
    let settings_path = dir.join("forcesync.toml");
    check_overwrite(&settings_path, force)?;
    for mapping in &parsed.mappings {
        check_overwrite(&mapping_path(dir, &mapping.object), force)?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    let describe_dir = dir.join("describe");
    let mut client: Option<Client> = None;
    let mut describes = Vec::new();
    for mapping in &parsed.mappings {
        describes.push(describe_of(ctx, &mut client, &describe_dir, &mapping.object).await?);
    }
    let has_describe = |object: &str| find_snapshot(&describe_dir, object).is_some();
    let (settings, mut reports) = hc_import::render_settings(&parsed, ctx.app.registry.api_version);
    let mut planned = vec![(settings_path, settings)];
    for (mapping, describe) in parsed.mappings.iter().zip(&describes) {
        let (text, notes) = hc_import::render_mapping(mapping, describe, &has_describe)
            .map_err(|e| CliError::failure(format!("{}: {e}", mapping.object)))?;
        let name = describe["name"].as_str().unwrap_or(&mapping.object);
        let path = mapping_path(dir, name);
        check_overwrite(&path, force)?;
        planned.push((path, text));
        reports.extend(notes);
    }
    write_all(planned)?;
    for report in &reports {
        println!("note: {report}");
    }
    println!(
        "Imported {} mapping(s) from {}. Rebuild, pause the Heroku Connect connection, then run \
         `forcesync adopt` to take over its database in place.",
        parsed.mappings.len(),
        export.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::snapshot;

    fn line<'a>(text: &'a str, entry: &str) -> &'a str {
        text.lines()
            .find(|l| l.contains(&format!("\"{entry}\",")))
            .unwrap_or_else(|| panic!("{entry} listed:\n{text}"))
    }

    #[test]
    fn the_name_and_required_fields_are_on_the_rest_commented_with_type_and_label() {
        let text = render(&snapshot("Invoice__c"), false, 600).unwrap();
        assert!(text.contains("object = \"Invoice__c\"\n"), "{text}");
        assert!(text.contains("access = \"read_only\""), "{text}");
        assert!(line(&text, "Name").starts_with("    \"Name\","));
        assert!(line(&text, "Name").contains("the record name"));
        let account = line(&text, "Account__c");
        assert!(account.starts_with("    \"Account__c\","), "{account}");
        assert!(account.contains("reference to Account, "), "{account}");
        assert!(account.contains("required on create"), "{account}");
        let total = line(&text, "Total__c");
        assert!(total.starts_with("    # \"Total__c\","), "{total}");
        assert!(total.contains("# currency, Total, formula"), "{total}");
        // A compound field is one entry; its components are not listed again.
        assert!(line(&text, "Location__c").contains("Location__Latitude__s"));
        assert!(!text.contains("\"Location__Latitude__s\""), "{text}");
        for system in ALWAYS_MAPPED {
            assert!(
                !text.contains(&format!("\"{system}\",")),
                "{system}: {text}"
            );
        }
        assert!(text.contains("# upsert_key = \"External_Id__c\""), "{text}");
        assert!(text.contains("\n[sync]\n# streaming = true"), "{text}");
    }

    #[test]
    fn a_read_write_starter_suggests_the_unique_external_id_as_upsert_key() {
        let text = render(&snapshot("Invoice__c"), true, 600).unwrap();
        assert!(text.contains("access = \"read_write\""), "{text}");
        assert!(text.contains("\nupsert_key = \"External_Id__c\""), "{text}");
        let text = render(&snapshot("Account"), true, 600).unwrap();
        assert!(
            !text.contains("upsert_key"),
            "Account has no external ID: {text}"
        );
    }

    #[test]
    fn unsyncable_types_are_named_not_listed() {
        let describe = serde_json::json!({
            "name": "Doc__c", "label": "Doc", "fields": [
                {"name": "Id", "label": "Id", "type": "id"},
                {"name": "Body__c", "label": "Body", "type": "base64", "createable": true},
                {"name": "Title__c", "label": "Title", "type": "string", "length": 80,
                 "nillable": true, "createable": true, "updateable": true},
            ]
        });
        let text = render(&describe, false, 120).unwrap();
        assert!(!text.contains("\"Body__c\""), "{text}");
        assert!(
            text.contains("# Not syncable (their type): Body__c (base64)"),
            "{text}"
        );
        assert!(text.contains("    # \"Title__c\","), "{text}");
        assert!(text.contains("\n# poll_seconds = 120 "), "{text}");
        assert!(text.contains("\n\n# [indexes]   "), "{text}");
        assert!(render(&serde_json::json!({"fields": 1}), false, 600).is_err());
    }
}
