//! Loading a mappings directory: reads `forcesync.toml`, every `<Object>.toml` and the describe
//! snapshots in `describe/`, checks the mappings against the describes, and resolves everything
//! into a [`Catalog`] — or reports every problem at once as [`Diagnostics`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::catalog::{
    Access, Catalog, ConflictPolicy, DeleteMode, Field, Index, Mapping, Settings, SyncOptions,
};
use crate::describe::{FieldDescribe, SObjectDescribe};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};
use crate::mapping::{self, At, RawMapping, Sink};
use crate::{soql, types};

/// Always-mapped fields (Heroku Connect), in column order.
pub const SYSTEM_FIELDS: [&str; 4] = ["Id", "IsDeleted", "SystemModstamp", "CreatedDate"];

/// Columns every table has that no mapped field may take or drop.
const FORCESYNC_COLUMNS: [&str; 3] = ["id", "_hc_lastop", "_hc_err"];

/// Default daily API call budget of a mapping (Heroku Connect's default).
pub const DEFAULT_MAX_DAILY_API_CALLS: u32 = 30_000;

/// Loads `dir` (e.g. `mappings/`). Diagnostics name files as `dir` joined with the file name.
pub fn load_dir(dir: &Path) -> Result<Catalog, Diagnostics> {
    load_dir_as(dir, dir)
}

/// Loads `dir`, naming it `shown_as` in diagnostics (the proc-macro passes an absolute `dir`
/// and the path as the user wrote it).
pub fn load_dir_as(dir: &Path, shown_as: &Path) -> Result<Catalog, Diagnostics> {
    let mut loader = Loader {
        dir,
        shown_as,
        diags: Diagnostics::new(),
        sources: Vec::new(),
    };
    let catalog = loader.run();
    let mut diags = loader.diags;
    if diags.is_empty() {
        if let Some(catalog) = catalog {
            return Ok(catalog);
        }
    }
    diags.sort();
    Err(diags)
}

struct Loader<'a> {
    dir: &'a Path,
    shown_as: &'a Path,
    diags: Diagnostics,
    sources: Vec<PathBuf>,
}

/// A describe snapshot file, parsed.
struct Snapshot {
    path: PathBuf,
    parsed: Result<SObjectDescribe, Box<Diagnostic>>,
}

impl Loader<'_> {
    fn run(&mut self) -> Option<Catalog> {
        if !self.dir.is_dir() {
            self.diags.push(Diagnostic::whole_file(
                self.shown_as,
                format!("mappings directory `{}` not found", self.shown_as.display()),
                "create it with one <Object>.toml per synced object and describe snapshots in \
                 describe/ (`forcesync describe pull <Object>`)",
            ));
            return None;
        }
        let settings = self.settings();
        let snapshots = self.snapshots(&settings.describe_dir);
        let describe_shown = self.shown_as.join(&settings.describe_dir);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(self.dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension().is_some_and(|e| e == "toml")
                        && p.file_name().is_some_and(|n| n != "forcesync.toml")
                })
                .collect(),
            Err(e) => {
                self.diags.push(Diagnostic::whole_file(
                    self.shown_as,
                    format!("cannot read the mappings directory: {e}"),
                    "check that the directory exists and is readable",
                ));
                return None;
            }
        };
        files.sort();

        let mut mappings: Vec<Mapping> = Vec::new();
        // object (lower-cased) / module → where it was first mapped
        let mut seen_objects: HashMap<String, (String, PathBuf)> = HashMap::new();
        let mut seen_modules: HashMap<String, String> = HashMap::new();
        for path in files {
            let shown = self.shown(&path);
            let Some(src) = self.read(&path, &shown) else {
                continue;
            };
            let mut sink = Sink {
                file: &shown,
                src: &src,
                diags: &mut self.diags,
            };
            let Some(doc) = mapping::parse_toml(&mut sink, &src) else {
                continue;
            };
            let raw = mapping::read_mapping(&mut sink, &doc);
            let Some(object) = raw.object.clone() else {
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                sink.error(
                    0..0,
                    "this mapping does not name its Salesforce object",
                    format!(
                        "add `object = \"{}\"` at the top of the file",
                        stem.unwrap_or_default()
                    ),
                );
                continue;
            };
            if let Some((first, file)) = seen_objects.get(&object.value.to_ascii_lowercase()) {
                sink.error(
                    object.span.clone(),
                    format!("{first} is mapped twice (also in {})", file.display()),
                    "keep one mapping file per object",
                );
                continue;
            }
            seen_objects.insert(
                object.value.to_ascii_lowercase(),
                (object.value.clone(), shown.clone()),
            );
            let Some(describe) = find_describe(&mut sink, &object, &snapshots, &describe_shown)
            else {
                continue;
            };
            let parent = |name: &str| -> Option<&SObjectDescribe> {
                snapshots.get(name).and_then(|s| s.parsed.as_ref().ok())
            };
            let built = build(
                &mut sink, &raw, &object, describe, &parent, &settings, &path,
            );
            if let Some(m) = built {
                if let Some(other) = seen_modules.get(&m.module) {
                    sink.error(
                        object.span.clone(),
                        format!(
                            "{} and {other} would both generate the Rust module `{}`",
                            m.object, m.module
                        ),
                        "map only one of them",
                    );
                } else {
                    seen_modules.insert(m.module.clone(), m.object.clone());
                    mappings.push(m);
                }
            }
        }
        for snapshot in snapshots.values() {
            self.sources.push(snapshot.path.clone());
        }
        mappings.sort_by(|a, b| a.object.cmp(&b.object));
        self.sources.sort();
        self.sources.dedup();
        Some(Catalog {
            settings,
            mappings,
            sources: std::mem::take(&mut self.sources),
        })
    }

    fn shown(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(self.dir) {
            Ok(rel) => self.shown_as.join(rel),
            Err(_) => path.to_path_buf(),
        }
    }

    fn read(&mut self, path: &Path, shown: &Path) -> Option<String> {
        self.sources.push(path.to_path_buf());
        match std::fs::read_to_string(path) {
            Ok(src) => Some(src),
            Err(e) => {
                self.diags.push(Diagnostic::whole_file(
                    shown,
                    format!("cannot read {}: {e}", shown.display()),
                    "check that the file exists, is readable and is UTF-8",
                ));
                None
            }
        }
    }

    fn settings(&mut self) -> Settings {
        let mut settings = Settings::default();
        let path = self.dir.join("forcesync.toml");
        if !path.exists() {
            return settings;
        }
        let shown = self.shown(&path);
        let Some(src) = self.read(&path, &shown) else {
            return settings;
        };
        let mut sink = Sink {
            file: &shown,
            src: &src,
            diags: &mut self.diags,
        };
        let Some(doc) = mapping::parse_toml(&mut sink, &src) else {
            return settings;
        };
        let raw = mapping::read_settings(&mut sink, &doc);
        if let Some(v) = raw.api_version {
            let ok = v.value.split_once('.').is_some_and(|(major, minor)| {
                (2..=3).contains(&major.len())
                    && major.bytes().all(|b| b.is_ascii_digit())
                    && minor == "0"
            });
            if ok {
                settings.api_version = v.value;
            } else {
                let help = match v.value.strip_prefix(['v', 'V']) {
                    Some(rest) => format!("drop the leading v: api_version = \"{rest}\""),
                    None => "write the version as api_version = \"59.0\"".to_owned(),
                };
                sink.error(
                    v.span,
                    format!("`{}` is not a Salesforce API version", v.value),
                    help,
                );
            }
        }
        if let Some(v) = raw.schema {
            let ok = v.value.len() <= 63
                && v.value
                    .starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && v.value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if ok {
                settings.schema = v.value;
            } else {
                sink.error(
                    v.span,
                    format!("`{}` is not a plain Postgres schema name", v.value),
                    format!(
                        "use lower-case letters, digits and underscores, e.g. schema = \"{}\"",
                        sanitize_identifier(&v.value)
                    ),
                );
            }
        }
        if let Some(v) = raw.poll_seconds {
            settings.poll_seconds = v.value;
        }
        if let Some(v) = raw.streaming_transport {
            settings.streaming_transport = v.value;
        }
        if let Some(v) = raw.describe_dir {
            if self.dir.join(&v.value).is_dir() {
                settings.describe_dir = v.value;
            } else {
                sink.error(
                    v.span,
                    format!("describe_dir `{}` is not a directory", v.value),
                    "name the directory holding the describe snapshots, relative to this file",
                );
            }
        }
        settings
    }

    /// Reads every `<describe_dir>/*.json` (errors are reported only for snapshots a mapping
    /// uses). A snapshot is named after its object: `Account.json` or `account.describe.json`.
    fn snapshots(&mut self, describe_dir: &str) -> BTreeMap<String, Snapshot> {
        let mut out = BTreeMap::new();
        let dir = self.dir.join(describe_dir);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let stem = stem
                .strip_suffix(".describe")
                .map_or(stem.clone(), str::to_owned);
            let shown = self.shown(&path);
            let parsed = match std::fs::read_to_string(&path) {
                Ok(src) => parse_describe(&src, &shown, &stem),
                Err(e) => Err(Box::new(Diagnostic::whole_file(
                    &shown,
                    format!("cannot read {}: {e}", shown.display()),
                    format!("refresh it with `forcesync describe pull {stem}`"),
                ))),
            };
            out.insert(stem, Snapshot { path, parsed });
        }
        out
    }
}

fn sanitize_identifier(s: &str) -> String {
    let cleaned: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_digit()) || cleaned.is_empty() {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

fn parse_describe(src: &str, shown: &Path, stem: &str) -> Result<SObjectDescribe, Box<Diagnostic>> {
    match SObjectDescribe::from_json(src) {
        // Salesforce names are case-insensitive: `account.describe.json` describes `Account`.
        Ok(d) if d.name.eq_ignore_ascii_case(stem) => Ok(d),
        Ok(d) => {
            let at = src.find(&format!("\"{}\"", d.name)).unwrap_or(0);
            Err(Box::new(Diagnostic::at(
                shown,
                src,
                at..at + d.name.len() + 2,
                format!("{} describes `{}`, not `{stem}`", shown.display(), d.name),
                format!(
                    "describe files are named after their object: rename it to {}.json",
                    d.name
                ),
            )))
        }
        Err(e) => {
            let line_start: usize = src
                .split_inclusive('\n')
                .take(e.line().saturating_sub(1))
                .map(str::len)
                .sum();
            let at = (line_start + e.column().saturating_sub(1)).min(src.len());
            Err(Box::new(Diagnostic::at(
                shown,
                src,
                at..at + 1,
                format!("invalid describe snapshot: {e}"),
                format!(
                    "the file must be the JSON of GET /sobjects/{stem}/describe; refresh it with \
                     `forcesync describe pull {stem}`"
                ),
            )))
        }
    }
}

fn find_describe<'s>(
    sink: &mut Sink<'_>,
    object: &At<String>,
    snapshots: &'s BTreeMap<String, Snapshot>,
    describe_dir: &Path,
) -> Option<&'s SObjectDescribe> {
    let name = &object.value;
    // Salesforce names are case-insensitive: `invoice__c` finds describe/Invoice__c.json.
    let found = snapshots.get(name).or_else(|| {
        snapshots
            .iter()
            .find(|(stem, _)| stem.eq_ignore_ascii_case(name))
            .map(|(_, s)| s)
    });
    match found {
        Some(Snapshot {
            parsed: Ok(describe),
            ..
        }) => Some(describe),
        Some(Snapshot {
            parsed: Err(diag), ..
        }) => {
            sink.diags.push((**diag).clone());
            None
        }
        None => {
            let expected = describe_dir.join(format!("{name}.json"));
            let help = match did_you_mean(name, snapshots.keys().map(String::as_str)) {
                Some(s) => format!(
                    "did you mean `{s}`? If `{name}` is right, run `forcesync describe pull {name}` \
                     to save its describe snapshot"
                ),
                None => format!(
                    "run `forcesync describe pull {name}` to save its describe snapshot to {}",
                    expected.display()
                ),
            };
            sink.error(
                object.span.clone(),
                format!(
                    "unknown object `{name}`: no describe snapshot at {}",
                    expected.display()
                ),
                help,
            );
            None
        }
    }
}

/// Looks a field up by name for a mapping entry, reporting an unknown name.
fn lookup<'d>(
    sink: &mut Sink<'_>,
    describe: &'d SObjectDescribe,
    entry: &At<String>,
) -> Option<&'d FieldDescribe> {
    if let Some(f) = describe.field(&entry.value) {
        return Some(f);
    }
    let help = match did_you_mean(
        &entry.value,
        describe.fields.iter().map(|f| f.name.as_str()),
    ) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "the fields of {} are listed in its describe snapshot; if the field is new, refresh \
             it with `forcesync describe pull {}`",
            describe.name, describe.name
        ),
    };
    sink.error(
        entry.span.clone(),
        format!("unknown field `{}` on {}", entry.value, describe.name),
        help,
    );
    None
}

/// The describe fields an entry stands for: itself, or a compound's components.
fn expand<'d>(describe: &'d SObjectDescribe, field: &'d FieldDescribe) -> Vec<&'d FieldDescribe> {
    if field.is_compound() {
        describe.components(&field.name)
    } else {
        vec![field]
    }
}

/// The mapped fields of one mapping while it is being built.
struct FieldSet {
    fields: Vec<Field>,
    /// column → the entry (as written) that mapped it
    by_column: HashMap<String, String>,
}

impl FieldSet {
    /// Adds the fields `entry` stands for; reports unsyncable types and duplicate columns.
    fn add(
        &mut self,
        sink: &mut Sink<'_>,
        describe: &SObjectDescribe,
        entry: &At<String>,
        field: &FieldDescribe,
    ) {
        let parts = expand(describe, field);
        if parts.is_empty() {
            sink.error(
                entry.span.clone(),
                format!(
                    "compound field `{}` has no component fields in the describe snapshot",
                    field.name
                ),
                format!(
                    "refresh it with `forcesync describe pull {}`, or list the components",
                    describe.name
                ),
            );
            return;
        }
        for part in parts {
            let built = match types::field(part, false) {
                Ok(f) => f,
                Err(ty) => {
                    let what = if part.name == field.name {
                        format!("field `{}`", part.name)
                    } else {
                        format!("`{}` (part of `{}`)", part.name, field.name)
                    };
                    sink.error(
                        entry.span.clone(),
                        format!("{what} has type `{ty}`, which cannot be synced in v1"),
                        format!(
                            "remove `{}` from fields: forcesync syncs text, number, boolean, date, \
                             time, picklist, reference, address and geolocation fields",
                            entry.value
                        ),
                    );
                    continue;
                }
            };
            self.push(sink, entry, built);
        }
    }

    /// Adds one built field for `entry`; reports a column already taken.
    fn push(&mut self, sink: &mut Sink<'_>, entry: &At<String>, built: Field) {
        if let Some(prev) = self.by_column.get(&built.column) {
            if self.is_system(&built.column) {
                return;
            }
            let help = if prev != &entry.value && !prev.eq_ignore_ascii_case(&entry.value) {
                format!(
                    "`{prev}` already includes `{}`: list it once",
                    built.sf_name
                )
            } else {
                "list each field once (Salesforce field names are case-insensitive)".to_owned()
            };
            sink.error(
                entry.span.clone(),
                format!(
                    "duplicate column `{}`: `{}` maps to the same column as `{prev}`",
                    built.column, entry.value
                ),
                help,
            );
            return;
        }
        self.by_column
            .insert(built.column.clone(), entry.value.clone());
        self.fields.push(built);
    }

    fn is_system(&self, column: &str) -> bool {
        self.fields.iter().any(|f| f.system && f.column == column)
    }

    fn get(&self, sf_name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.sf_name.eq_ignore_ascii_case(sf_name))
    }
}

#[allow(clippy::too_many_arguments)]
fn build<'d>(
    sink: &mut Sink<'_>,
    raw: &RawMapping,
    object: &At<String>,
    describe: &'d SObjectDescribe,
    parent: &dyn Fn(&str) -> Option<&'d SObjectDescribe>,
    settings: &Settings,
    mapping_file: &Path,
) -> Option<Mapping> {
    let errors_before = sink.diags.len();
    let access = raw.access.as_ref().map_or(Access::ReadOnly, |a| a.value);
    let mut set = FieldSet {
        fields: Vec::new(),
        by_column: HashMap::new(),
    };

    for name in SYSTEM_FIELDS {
        match describe.field(name).map(|d| types::field(d, true)) {
            Some(Ok(f)) => {
                set.by_column.insert(f.column.clone(), name.to_owned());
                set.fields.push(f);
            }
            _ => sink.error(
                object.span.clone(),
                format!(
                    "{} cannot be synced: its describe has no usable `{name}` field",
                    describe.name
                ),
                "forcesync tracks changes with Id, IsDeleted, SystemModstamp and CreatedDate; \
                 only objects that have them (replicateable objects) can be synced",
            ),
        }
    }

    for entry in &raw.fields {
        if entry.value.contains('.') {
            if let Some(built) = crate::relationship::resolve(sink, describe, parent, entry) {
                set.push(sink, entry, built);
            }
        } else if let Some(field) = lookup(sink, describe, entry) {
            set.add(sink, describe, entry, field);
        }
    }

    // upsert_key: an external ID that Salesforce keeps unique; mapped implicitly.
    if let Some(key) = &raw.upsert_key {
        if access != Access::ReadWrite {
            sink.error(
                key.span.clone(),
                "`upsert_key` only applies to read_write mappings",
                "set access = \"read_write\" to write to Salesforce, or remove upsert_key",
            );
        }
        if let Some(field) = lookup(sink, describe, &key.clone()) {
            let candidates: Vec<&str> = describe
                .fields
                .iter()
                .filter(|f| f.external_id && f.unique)
                .map(|f| f.name.as_str())
                .collect();
            let others: Vec<&str> = candidates
                .iter()
                .copied()
                .filter(|c| *c != field.name)
                .collect();
            let use_instead = match candidates.as_slice() {
                [] => format!(
                    "mark a unique field of {} as External ID in Salesforce, then run \
                     `forcesync describe pull {}`",
                    describe.name, describe.name
                ),
                [one] => format!("use `{one}`, the external ID of {}", describe.name),
                many => format!(
                    "use one of the unique external IDs of {}: {}",
                    describe.name,
                    many.join(", ")
                ),
            };
            if !field.external_id {
                sink.error(
                    key.span.clone(),
                    format!(
                        "upsert_key `{}` is not an external ID field on {}",
                        field.name, describe.name
                    ),
                    use_instead,
                );
            } else if !field.unique {
                sink.error(
                    key.span.clone(),
                    format!(
                        "upsert_key `{}` is an external ID but not unique, so an upsert could \
                         match several records",
                        field.name
                    ),
                    match others.as_slice() {
                        [] => format!(
                            "tick Unique on `{}` in Salesforce, then run `forcesync describe pull {}`",
                            field.name, describe.name
                        ),
                        _ => format!(
                            "tick Unique on `{}` in Salesforce, or use `{}`",
                            field.name,
                            others.join("` or `")
                        ),
                    },
                );
            } else if set.get(&field.name).is_none() {
                set.add(sink, describe, key, field);
            }
        }
    }

    // write_fields: restricts which fields a read_write mapping writes back.
    let mut write_only: Option<HashSet<String>> = None;
    if let Some(entries) = &raw.write_fields {
        if access != Access::ReadWrite {
            sink.error(
                raw.write_fields_span.clone().unwrap_or(0..0),
                "`write_fields` only applies to read_write mappings",
                "set access = \"read_write\" to write to Salesforce, or remove write_fields",
            );
        }
        let mut allowed = HashSet::new();
        for entry in entries {
            let Some(field) = lookup(sink, describe, entry) else {
                continue;
            };
            for part in expand(describe, field) {
                if part.calculated {
                    let formula = part
                        .calculated_formula
                        .as_deref()
                        .map(|f| format!(" ({f})"))
                        .unwrap_or_default();
                    sink.error(
                        entry.span.clone(),
                        format!(
                            "`{}` is a formula field and cannot be written to Salesforce",
                            part.name
                        ),
                        format!(
                            "remove `{}` from write_fields: Salesforce computes it{formula}; it \
                             still syncs to Postgres when listed in fields",
                            entry.value
                        ),
                    );
                } else if !part.createable && !part.updateable {
                    sink.error(
                        entry.span.clone(),
                        format!(
                            "`{}` is read-only in Salesforce (neither createable nor updateable)",
                            part.name
                        ),
                        format!(
                            "remove `{}` from write_fields; it still syncs to Postgres when \
                             listed in fields",
                            entry.value
                        ),
                    );
                } else {
                    allowed.insert(part.name.to_ascii_lowercase());
                }
            }
            let unmapped = expand(describe, field)
                .iter()
                .any(|p| set.get(&p.name).is_none());
            if unmapped {
                set.add(sink, describe, entry, field);
            }
        }
        write_only = Some(allowed);
    }

    // Describe facts that need the whole object.
    for f in &mut set.fields {
        if let Some(c) = &f.compound {
            if !describe.field(c).is_some_and(FieldDescribe::is_compound) {
                f.compound = None;
            }
        }
        f.writable =
            crate::model::is_writable(access, f.system, f.createable, f.updateable, f.calculated);
        if let Some(allowed) = &write_only {
            // A relationship column is written when its lookup is.
            let name = f.relationship.as_ref().map_or(&f.sf_name, |r| &r.lookup);
            f.writable = f.writable && allowed.contains(&name.to_ascii_lowercase());
        }
    }
    // A lookup named through a relationship column is not required on create: either names
    // the parent.
    let named: Vec<String> = set
        .fields
        .iter()
        .filter_map(|f| f.relationship.as_ref().map(|r| r.lookup.clone()))
        .collect();
    for f in &mut set.fields {
        if named.iter().any(|l| l.eq_ignore_ascii_case(&f.sf_name)) {
            f.required_on_create = false;
        }
    }

    // filter: valid SOQL for this object.
    let filter = raw.filter.as_ref().map(|filter| {
        for e in soql::validate(&filter.text, describe, parent) {
            sink.error(filter.source_span(e.span), e.message, e.help);
        }
        filter.text.clone()
    });

    // drop_columns: explicit consent to drop columns of fields no longer mapped.
    let mut drop_columns = Vec::new();
    for entry in &raw.drop_columns {
        let column = entry.value.to_ascii_lowercase();
        if FORCESYNC_COLUMNS.contains(&column.as_str()) {
            sink.error(
                entry.span.clone(),
                format!("column `{column}` belongs to forcesync and cannot be dropped"),
                format!("remove `{}` from drop_columns", entry.value),
            );
        } else if let Some(field) = set.fields.iter().find(|f| f.column == column) {
            let help = if field.system {
                format!(
                    "`{}` is always synced; remove `{}` from drop_columns",
                    field.sf_name, entry.value
                )
            } else {
                format!(
                    "remove `{}` from fields to stop syncing it, or remove `{}` from drop_columns",
                    field.sf_name, entry.value
                )
            };
            sink.error(
                entry.span.clone(),
                format!(
                    "column `{column}` is still mapped (by field `{}`)",
                    field.sf_name
                ),
                help,
            );
        } else {
            drop_columns.push(column);
        }
    }

    let table = types::table_name(&describe.name);
    let module = types::module_name(&describe.name);
    let type_name = types::type_name(&describe.name);
    types::assign_names(&type_name, &mut set.fields);

    // Indexes: sfid (unique) and systemmodstamp always, the upsert key (unique), then declared.
    let index = |column: &str, unique: bool| Index {
        name: format!("{}_idx_{table}_{column}", if unique { "hcu" } else { "hc" }),
        columns: vec![column.to_owned()],
        unique,
    };
    let mut indexes = vec![index("sfid", true), index("systemmodstamp", false)];
    for raw_index in &raw.indexes {
        let entry = &raw_index.field;
        let unique = raw_index.unique.as_ref().is_some_and(|u| u.value);
        let Some(field) = set.get(&entry.value) else {
            match describe.field(&entry.value) {
                Some(d) if d.is_compound() => sink.error(
                    entry.span.clone(),
                    format!("`{}` is a compound field and has no single column", d.name),
                    format!(
                        "index one of its components instead, e.g. `{}`",
                        describe
                            .components(&d.name)
                            .first()
                            .map_or(d.name.as_str(), |c| c.name.as_str())
                    ),
                ),
                Some(d) => sink.error(
                    entry.span.clone(),
                    format!("cannot index `{}`: it is not in fields", d.name),
                    format!("add `{}` to fields, or remove this index", d.name),
                ),
                None => {
                    lookup(sink, describe, entry);
                }
            }
            continue;
        };
        if unique && !field.unique && field.sf_type != crate::catalog::SfType::Id {
            sink.error(
                raw_index
                    .unique
                    .as_ref()
                    .map_or(entry.span.clone(), |u| u.span.clone()),
                format!(
                    "unique index on `{}`, which Salesforce does not keep unique",
                    field.sf_name
                ),
                "remove `unique = true`: duplicate values from Salesforce would fail the sync",
            );
            continue;
        }
        if indexes.iter().any(|i| i.columns == [field.column.clone()]) {
            continue;
        }
        indexes.push(index(&field.column, unique));
    }
    if let Some(key) = raw.upsert_key.as_ref().and_then(|k| set.get(&k.value)) {
        if !indexes.iter().any(|i| i.columns == [key.column.clone()]) {
            indexes.push(index(&key.column, true));
        }
    }

    let sync = SyncOptions {
        streaming: raw.sync.streaming.as_ref().is_none_or(|s| s.value),
        poll_seconds: raw
            .sync
            .poll_seconds
            .as_ref()
            .map_or(settings.poll_seconds, |p| p.value),
        deletes: raw
            .sync
            .deletes
            .as_ref()
            .map_or(DeleteMode::Hard, |d| d.value),
        conflict: raw
            .sync
            .conflict
            .as_ref()
            .map_or(ConflictPolicy::Merge, |c| c.value),
        max_daily_api_calls: raw
            .sync
            .max_daily_api_calls
            .as_ref()
            .map_or(DEFAULT_MAX_DAILY_API_CALLS, |m| m.value),
    };

    if sink.diags.len() > errors_before {
        return None;
    }
    let describe_file = mapping_file
        .parent()
        .unwrap_or(Path::new("."))
        .join("describe")
        .join(format!("{}.json", describe.name));
    Some(Mapping {
        object: describe.name.clone(),
        label: describe.label.clone(),
        key_prefix: describe.key_prefix.clone(),
        custom: describe.custom,
        table,
        module,
        type_name,
        access,
        upsert_key: raw
            .upsert_key
            .as_ref()
            .and_then(|k| set.get(&k.value))
            .map(|f| f.sf_name.clone()),
        filter,
        sync,
        fields: set.fields,
        indexes,
        drop_columns,
        mapping_file: mapping_file.to_path_buf(),
        describe_file,
    })
}
