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

mod render;

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
pub use render::{render_mapping, render_settings};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::mapping_file::ALWAYS_MAPPED;
    use crate::cli::testing::snapshot;

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

    /// The mapping file (and the reports) the exported mapping `i` becomes against the describe
    /// snapshot of `object`.
    fn rendered(i: usize, object: &str) -> (String, Vec<String>) {
        render_mapping(&export().mappings[i], &snapshot(object), &|_| true).unwrap()
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
        let (text, reports) = rendered(0, "Invoice__c");
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
        let (text, reports) = rendered(1, "Account");
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
