//! Every validation error a user can hit, rendered exactly as the build prints it (insta
//! snapshots of `Diagnostics`' Display). Each case writes a mappings directory (with describes
//! from the fixed test corpus) and loads it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sync_schema::load::load_dir_as;

const DESCRIBES: [&str; 4] = ["Account", "Contact", "Opportunity", "Invoice__c"];

/// A describe from the fixed test corpus: real payloads from `fixtures/salesforce`, the
/// synthetic custom object from `tests/fixtures/write_fields/describe`.
fn repo_describe(object: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = if object.ends_with("__c") {
        format!("{root}/tests/fixtures/write_fields/describe/{object}.json")
    } else {
        let file = object.to_lowercase();
        format!("{root}/../fixtures/salesforce/{file}.describe.json")
    };
    std::fs::read_to_string(path).unwrap()
}

/// Writes `files` (plus the repo's describes) into a fresh directory and returns its path.
fn write_dir(files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "errors-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("describe")).unwrap();
    for object in DESCRIBES {
        std::fs::write(
            dir.join("describe").join(format!("{object}.json")),
            repo_describe(object),
        )
        .unwrap();
    }
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// The rendered errors of loading `files` (panics if they load).
fn errors(files: &[(&str, &str)]) -> String {
    let dir = write_dir(files);
    let result = load_dir_as(&dir, Path::new("mappings"));
    std::fs::remove_dir_all(&dir).unwrap();
    match result {
        Ok(_) => panic!("expected errors for {files:?}"),
        Err(diags) => {
            for d in &diags {
                assert!(!d.help.is_empty(), "no help for {}", d.message);
            }
            diags.to_string()
        }
    }
}

/// A describe with fields forcesync cannot sync (shape of the real Attachment describe).
fn attachment_describe() -> String {
    let mut account: serde_json::Value = serde_json::from_str(&repo_describe("Account")).unwrap();
    let fields = account["fields"].as_array().unwrap().clone();
    let keep = ["Id", "IsDeleted", "Name", "CreatedDate", "SystemModstamp"];
    let mut new_fields: Vec<serde_json::Value> = fields
        .into_iter()
        .filter(|f| keep.contains(&f["name"].as_str().unwrap()))
        .collect();
    let mut body = new_fields[2].clone();
    body["name"] = "Body".into();
    body["label"] = "Body".into();
    body["type"] = "base64".into();
    body["soapType"] = "xsd:base64Binary".into();
    body["length"] = 5242880.into();
    body["filterable"] = false.into();
    new_fields.push(body);
    let mut any = new_fields[2].clone();
    any["name"] = "Value__c".into();
    any["type"] = "anyType".into();
    new_fields.push(any);
    account["fields"] = serde_json::Value::Array(new_fields);
    account["name"] = "Attachment".into();
    account.to_string()
}

#[test]
fn unknown_object_suggests_a_close_snapshot() {
    insta::assert_snapshot!(errors(&[(
        "Acount.toml",
        "object = \"Acount\"\nfields = [\"Name\"]\n"
    )]));
}

#[test]
fn unknown_object_says_which_command_fetches_the_describe() {
    insta::assert_snapshot!(errors(&[(
        "Lead.toml",
        "object = \"Lead\"\nfields = [\"Company\"]\n"
    )]));
}

#[test]
fn unknown_field_suggests_the_closest_name() {
    insta::assert_snapshot!(errors(&[(
        "Account.toml",
        "object = \"Account\"\nfields = [\"Name\", \"Nme\", \"Industy\", \"Zzzzz\"]\n"
    )]));
}

#[test]
fn unsyncable_field_types_are_named() {
    insta::assert_snapshot!(errors(&[
        ("describe/Attachment.json", &attachment_describe()),
        (
            "Attachment.toml",
            "object = \"Attachment\"\nfields = [\"Name\", \"Body\", \"Value__c\"]\n"
        ),
    ]));
}

#[test]
fn upsert_key_must_be_an_external_id() {
    insta::assert_snapshot!(errors(&[(
        "Account.toml",
        "object = \"Account\"\naccess = \"read_write\"\nfields = [\"Name\"]\nupsert_key = \"AccountNumber\"\n"
    )]));
    insta::assert_snapshot!(
        "upsert_key_suggests_the_external_id",
        errors(&[(
            "Invoice__c.toml",
            "object = \"Invoice__c\"\naccess = \"read_write\"\nfields = [\"Amount__c\"]\nupsert_key = \"Name\"\n"
        )])
    );
}

#[test]
fn upsert_key_must_be_unique() {
    let mut invoice: serde_json::Value =
        serde_json::from_str(&repo_describe("Invoice__c")).unwrap();
    for f in invoice["fields"].as_array_mut().unwrap() {
        if f["name"] == "External_Id__c" {
            f["unique"] = false.into();
        }
    }
    insta::assert_snapshot!(errors(&[
        ("describe/Invoice__c.json", &invoice.to_string()),
        (
            "Invoice__c.toml",
            "object = \"Invoice__c\"\naccess = \"read_write\"\nfields = [\"Amount__c\"]\nupsert_key = \"External_Id__c\"\n"
        ),
    ]));
}

#[test]
fn upsert_key_and_write_fields_need_read_write() {
    insta::assert_snapshot!(errors(&[(
        "Invoice__c.toml",
        "object = \"Invoice__c\"\nfields = [\"Amount__c\"]\nupsert_key = \"External_Id__c\"\nwrite_fields = [\"Amount__c\"]\n"
    )]));
}

#[test]
fn formula_fields_cannot_be_written() {
    insta::assert_snapshot!(errors(&[(
        "Invoice__c.toml",
        "object = \"Invoice__c\"\naccess = \"read_write\"\nfields = [\"Amount__c\", \"Total__c\", \"Name\"]\nwrite_fields = [\"Amount__c\", \"Total__c\", \"Name\"]\n"
    )]));
}

#[test]
fn filters_are_checked_as_soql_for_the_object() {
    insta::assert_snapshot!(errors(&[
        (
            "Account.toml",
            "object = \"Account\"\nfields = [\"Name\"]\nfilter = \"Industy = 'Energy' AND AnnualRevenue > 'big'\"\n"
        ),
        (
            "Contact.toml",
            "object = \"Contact\"\nfields = [\"Name\"]\nfilter = \"\"\"\nLastName = 'x' AND\n    (Email LIKE 'a%' OR Birthdate > 2024-13-01)\"\"\"\n"
        ),
        (
            "Opportunity.toml",
            "object = \"Opportunity\"\nfields = [\"Name\"]\nfilter = \"StageName = 'Won' AND Amount > 1 OR IsWon = true\"\n"
        ),
    ]));
}

#[test]
fn duplicate_columns_after_lower_casing() {
    insta::assert_snapshot!(errors(&[(
        "Account.toml",
        "object = \"Account\"\nfields = [\"Name\", \"NAME\", \"BillingAddress\", \"BillingCity\"]\n"
    )]));
}

#[test]
fn invalid_toml_is_reported_with_its_position() {
    insta::assert_snapshot!(errors(&[(
        "Account.toml",
        "object = \"Account\"\nfields = [\"Name\", \"Industry\"\n[sync]\n"
    )]));
}

#[test]
fn unknown_keys_suggest_the_right_one() {
    insta::assert_snapshot!(errors(&[
        (
            "Account.toml",
            "object = \"Account\"\nfeilds = [\"Name\"]\nfields = [\"Name\", \"Industry\"]\n\n[sync]\npol_seconds = 60\n\n[indexes]\nIndustry = { uniq = true }\n"
        ),
        ("forcesync.toml", "api_verison = \"59.0\"\n"),
    ]));
}

#[test]
fn values_of_the_wrong_shape() {
    insta::assert_snapshot!(errors(&[
        (
            "Account.toml",
            "object = \"Account\"\naccess = \"readwrite\"\nfields = \"Name\"\n\n[sync]\nstreaming = \"yes\"\npoll_seconds = 0\ndeletes = \"soft_delete\"\nconflict = \"sf_wins\"\n"
        ),
        ("forcesync.toml", "api_version = \"v59.0\"\nschema = \"Sales Force\"\npoll_seconds = -5\n"),
    ]));
}

#[test]
fn drop_columns_must_not_be_mapped() {
    insta::assert_snapshot!(errors(&[(
        "Account.toml",
        "object = \"Account\"\nfields = [\"Name\"]\ndrop_columns = [\"oldfield__c\", \"name\", \"systemmodstamp\", \"_hc_err\"]\n"
    )]));
}

#[test]
fn indexes_must_name_mapped_fields() {
    insta::assert_snapshot!(errors(&[(
        "Account.toml",
        "object = \"Account\"\nfields = [\"Name\", \"Industry\", \"BillingAddress\"]\n\n[indexes]\nIndustry = { unique = true }\nRating = {}\nBillingAddress = {}\nIndustri = {}\nName = true\n"
    )]));
}

#[test]
fn mapping_files_need_an_object_named_once() {
    insta::assert_snapshot!(errors(&[
        ("Account.toml", "fields = [\"Name\"]\n"),
        (
            "Accounts.toml",
            "object = \"Contact\"\nfields = [\"Name\"]\n"
        ),
        (
            "Contacts.toml",
            "object = \"Contact\"\nfields = [\"Email\"]\n"
        ),
    ]));
}

#[test]
fn broken_describe_snapshots_point_into_the_json() {
    insta::assert_snapshot!(errors(&[
        (
            "describe/Account.json",
            "{\n  \"name\": \"Account\",\n  \"fields\": [\n    {\"name\": 3}\n  ]\n}\n"
        ),
        (
            "Account.toml",
            "object = \"Account\"\nfields = [\"Name\"]\n"
        ),
    ]));
}

#[test]
fn a_missing_directory_is_one_clear_error() {
    let result = load_dir_as(Path::new("/nonexistent/mappings"), Path::new("mappings"));
    insta::assert_snapshot!(result.unwrap_err().to_string());
}

#[test]
fn all_errors_of_all_files_are_reported_at_once() {
    let out = errors(&[
        ("Account.toml", "object = \"Account\"\nfields = [\"Nme\"]\n"),
        ("Contact.toml", "object = \"Contact\"\nfields = [\"Emial\"]\nfilter = \"Nmae = 'x'\"\n"),
        ("Invoice__c.toml", "object = \"Invoice__c\"\naccess = \"read_write\"\nfields = [\"Total__c\"]\nwrite_fields = [\"Total__c\"]\n"),
    ]);
    assert_eq!(out.matches("error: ").count(), 5, "{out}");
    assert!(out.ends_with("error: 4 problems in the mappings"), "{out}");
}

/// Truncated and corrupted mappings never panic the loader: every prefix of a real mapping file,
/// and the file with each byte replaced by a troublesome character, loads or reports errors.
#[test]
fn damaged_mapping_files_never_panic() {
    let original = std::fs::read_to_string(format!(
        "{}/tests/fixtures/write_fields/Invoice__c.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let dir = write_dir(&[]);
    for unused in ["Contact", "Opportunity"] {
        std::fs::remove_file(dir.join("describe").join(format!("{unused}.json"))).unwrap();
    }
    let mut variants: Vec<String> = Vec::new();
    for (i, _) in original.char_indices().step_by(9) {
        variants.push(original[..i].to_owned());
        for c in ['"', '\\', '[', '\n', 'é'] {
            let mut v = original.clone();
            let end = i + original[i..].chars().next().map_or(0, char::len_utf8);
            v.replace_range(i..end, &c.to_string());
            variants.push(v);
        }
    }
    for v in &variants {
        std::fs::write(dir.join("Invoice__c.toml"), v).unwrap();
        if let Err(diags) = load_dir_as(&dir, Path::new("mappings")) {
            for d in &diags {
                assert!(d.line >= 1 && d.column >= 1, "{d:?}");
                let _ = d.render();
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn describe_dir_must_name_a_directory() {
    let rendered = errors(&[
        ("forcesync.toml", "describe_dir = \"nowhere\"\n"),
        (
            "Account.toml",
            "object = \"Account\"\nfields = [\"Name\"]\n",
        ),
    ]);
    assert!(
        rendered.contains("describe_dir `nowhere` is not a directory"),
        "{rendered}"
    );
}

#[test]
fn streaming_transport_names_pubsub_or_cometd() {
    let rendered = errors(&[
        (
            "forcesync.toml",
            "api_version = \"59.0\"\nstreaming_transport = \"pub_sub\"\n",
        ),
        (
            "Account.toml",
            "object = \"Account\"\nfields = [\"Name\"]\n",
        ),
    ]);
    assert!(
        rendered.contains("error: `streaming_transport` must be one of pubsub, cometd, not \"pub_sub\"\n --> mappings/forcesync.toml:2:23"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: did you mean \"pubsub\"?"),
        "{rendered}"
    );
    let rendered = errors(&[("forcesync.toml", "streaming_transport = true\n")]);
    assert!(
        rendered.contains("mappings/forcesync.toml:1:23"),
        "{rendered}"
    );
}

#[test]
fn streaming_transport_defaults_to_pubsub_and_cometd_overrides_it() {
    use sync_schema::model::StreamingTransport;
    let account = (
        "Account.toml",
        "object = \"Account\"\nfields = [\"Name\"]\n",
    );
    for (settings, expected) in [
        ("api_version = \"59.0\"\n", StreamingTransport::PubSub),
        (
            "streaming_transport = \"pubsub\"\n",
            StreamingTransport::PubSub,
        ),
        (
            "streaming_transport = \"cometd\"\n",
            StreamingTransport::Cometd,
        ),
    ] {
        let dir = write_dir(&[("forcesync.toml", settings), account]);
        let catalog = load_dir_as(&dir, Path::new("mappings"));
        std::fs::remove_dir_all(&dir).unwrap();
        let catalog = catalog.unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(catalog.settings.streaming_transport, expected, "{settings}");
    }
}

#[test]
fn describes_load_from_describe_dir_under_either_file_name() {
    let dir = write_dir(&[
        ("forcesync.toml", "describe_dir = \"elsewhere\"\n"),
        (
            "Account.toml",
            "object = \"Account\"\nfields = [\"Name\"]\n",
        ),
        (
            "Contact.toml",
            "object = \"Contact\"\nfields = [\"Email\"]\n",
        ),
    ]);
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    std::fs::write(
        dir.join("elsewhere/account.describe.json"),
        repo_describe("Account"),
    )
    .unwrap();
    std::fs::write(dir.join("elsewhere/Contact.json"), repo_describe("Contact")).unwrap();
    let catalog = load_dir_as(&dir, Path::new("mappings"));
    std::fs::remove_dir_all(&dir).unwrap();
    let catalog = catalog.unwrap_or_else(|d| panic!("{d}"));
    let objects: Vec<&str> = catalog.mappings.iter().map(|m| m.object.as_str()).collect();
    assert_eq!(objects, ["Account", "Contact"]);
}

#[test]
fn relationship_columns_must_name_an_external_id_of_a_described_parent() {
    let invoice = concat!(
        "object = \"Invoice__c\"\n",
        "fields = [\n",
        "    \"Account__r.Name\",\n",
        "    \"Account__c.Name\",\n",
        "    \"Acount__r.Name\",\n",
        "    \"Account__r.Owner.Name\",\n",
        "]\n",
    );
    let opportunity = concat!(
        "object = \"Opportunity\"\n",
        "fields = [\"Account.Nmae\", \"Campaign.Name\"]\n",
    );
    insta::assert_snapshot!(errors(&[
        ("Invoice__c.toml", invoice),
        ("Opportunity.toml", opportunity),
    ]));
}
