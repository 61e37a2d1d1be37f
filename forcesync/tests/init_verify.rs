//! `forcesync init` and `forcesync verify [--repair]` end to end: starter mappings the build
//! accepts (from committed snapshots, from `describe pull`, or fetched by `init` itself); verify
//! finding rows deleted, stale or extra behind the engine's back, through REST and Bulk, and
//! `--repair` restoring them (leaving rows with pending writes alone, recording a conflict that
//! `conflicts` and `status` then show).

use std::path::Path;
use std::process::{Command, Output};

use forcesync_tests::pg::TestDb;
use serde_json::{json, Value};

const CLIENT_SECRET: &str = "cs-Verify7Hq2";
const PASSWORD: &str = "pw-Verify9Zx4";
const SETTINGS: [&str; 8] = [
    "SF_LOGIN_URL",
    "SF_CLIENT_ID",
    "SF_CLIENT_SECRET",
    "SF_USERNAME",
    "SF_PASSWORD",
    "SF_JWT_KEY_FILE",
    "SF_REFRESH_TOKEN",
    "DATABASE_URL",
];

fn output(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forcesync"));
    command.args(args);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG");
    command.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn committed_snapshot(object: &str) -> String {
    let path = format!(
        "{}/../mappings/describe/{object}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).unwrap()
}

/// Uncomments every commented entry of `fields`.
fn uncomment_all_fields(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, text.replace("    # \"", "    \"")).unwrap();
}

fn build(dir: &Path) -> sync_schema::catalog::Catalog {
    sync_schema::load::load_dir(dir).unwrap_or_else(|d| panic!("the build refuses it:\n{d}"))
}

#[test]
fn init_output_builds_as_written_and_with_every_field_uncommented() {
    let dir = tempfile::tempdir().unwrap();
    let describe = dir.path().join("describe");
    std::fs::create_dir(&describe).unwrap();
    for object in ["Account", "Invoice__c"] {
        std::fs::write(
            describe.join(format!("{object}.json")),
            committed_snapshot(object),
        )
        .unwrap();
    }
    let dir_arg = dir.path().to_str().unwrap();
    let (code, out, err) = output(&["init", "Account", "Invoice__c", "--dir", dir_arg], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Account.toml"), "{out}");

    // As written: the record name and the fields required on create.
    let catalog = build(dir.path());
    let invoice = catalog
        .mappings
        .iter()
        .find(|m| m.object == "Invoice__c")
        .unwrap();
    let mapped: Vec<&str> = invoice.fields.iter().map(|f| f.sf_name.as_str()).collect();
    for field in ["Name", "Account__c", "Amount__c"] {
        assert!(mapped.contains(&field), "{field} in {mapped:?}");
    }
    assert!(!mapped.contains(&"Notes__c"), "{mapped:?}");

    // A second run does not overwrite what the user trimmed.
    let (code, _, err) = output(&["init", "Account", "--dir", dir_arg], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("exists; pass --force"), "{err}");

    // Read-write, every field uncommented: still builds, and maps every syncable field.
    let (code, _, err) = output(
        &[
            "init",
            "Account",
            "Invoice__c",
            "--dir",
            dir_arg,
            "--read-write",
            "--force",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    for object in ["Account", "Invoice__c"] {
        uncomment_all_fields(&dir.path().join(format!("{object}.toml")));
    }
    let catalog = build(dir.path());
    let invoice = catalog
        .mappings
        .iter()
        .find(|m| m.object == "Invoice__c")
        .unwrap();
    assert_eq!(invoice.upsert_key.as_deref(), Some("External_Id__c"));
    let columns: Vec<&str> = invoice.fields.iter().map(|f| f.column.as_str()).collect();
    for column in [
        "notes__c",
        "total__c",
        "location__latitude__s",
        "lastvieweddate",
    ] {
        assert!(columns.contains(&column), "{column} in {columns:?}");
    }
    let account = catalog
        .mappings
        .iter()
        .find(|m| m.object == "Account")
        .unwrap();
    let columns: Vec<&str> = account.fields.iter().map(|f| f.column.as_str()).collect();
    for column in ["phone", "billingstreet", "billinglatitude", "parentid"] {
        assert!(columns.contains(&column), "{column} in {columns:?}");
    }
}

/// Heroku Connect's mapping export of this repository's objects, as its dashboard writes it
/// (the always-mapped fields listed, the `Id`/`SystemModstamp` indexes, a typo'd field).
fn heroku_connect_export() -> Value {
    let fields = |names: &[&str]| -> Value {
        let mut all = vec!["Id", "IsDeleted", "SystemModstamp", "CreatedDate"];
        all.extend_from_slice(names);
        Value::Object(all.into_iter().map(|n| (n.to_owned(), json!({}))).collect())
    };
    let standard = json!({"Id": {"unique": true}, "SystemModstamp": {"unique": false}});
    let with = |extra: Value| {
        let mut ix = standard.clone();
        ix.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        ix
    };
    json!({
        "version": 1,
        "connection": {"app_name": "shop", "organization_id": "00D5g000004ABCDEAA",
            "exported_at": "2026-11-30T10:00:00Z", "api_version": "59.0",
            "name": "shop:DATABASE_URL:salesforce", "logplex_log_enabled": false,
            "features": {"disable_bulk_writes": false, "poll_db_no_merge": true,
                         "poll_external_ids": false, "rest_count_only": false,
                         "ucs_basic_collation_index": false}},
        "mappings": [
            {"object_name": "Account", "config": {
                "access": "read_write", "sf_notify_enabled": true, "sf_polling_seconds": 600,
                "sf_max_daily_api_calls": 30000,
                "fields": fields(&["Name", "AccountNumber", "Type", "Industry", "Phone",
                    "BillingStreet", "BillingCity", "BillingPostalCode", "ParentId", "OwnerId"]),
                "indexes": with(json!({"Industry": {"unique": false}, "ParentId": {"unique": false}})),
                "applied_at": "2023-02-14T01:40:34Z"}},
            {"object_name": "Contact", "config": {
                "access": "read_write", "sf_notify_enabled": false, "sf_polling_seconds": 600,
                "sf_max_daily_api_calls": 30000,
                "fields": fields(&["FirstName", "LastName", "Name", "Email", "AccountId", "Emial"]),
                "indexes": with(json!({"AccountId": {"unique": false}, "Email": {"unique": false}}))}},
            {"object_name": "Invoice__c", "config": {
                "access": "read_write", "sf_notify_enabled": true, "sf_polling_seconds": 120,
                "sf_max_daily_api_calls": 50000, "upsert_field": "External_Id__c",
                "fields": fields(&["Name", "Account__c", "External_Id__c", "Amount__c",
                    "Total__c", "Status__c", "Issued_On__c", "Due_Time__c", "Paid__c"]),
                "indexes": with(json!({"External_Id__c": {"unique": true}, "Status__c": {"unique": false}}))}},
            {"object_name": "Invoice_Line__c", "config": {
                "access": "read_write", "upsert_field": "External_Id__c",
                "fields": fields(&["Name", "Invoice__c", "Invoice__r.External_Id__c",
                    "External_Id__c", "Quantity__c", "Unit_Price__c"]),
                "indexes": with(json!({"External_Id__c": {"unique": true}, "Invoice__c": {"unique": false}}))}},
            {"object_name": "Opportunity", "config": {
                "access": "read_only", "sf_polling_seconds": 300,
                "fields": fields(&["Name", "AccountId", "StageName", "Amount", "CloseDate", "IsWon"]),
                "indexes": with(json!({"CloseDate": {"unique": false}}))}}
        ]
    })
}

#[test]
fn a_heroku_connect_export_of_this_repositorys_objects_becomes_mappings_that_build() {
    let dir = tempfile::tempdir().unwrap();
    let describe = dir.path().join("describe");
    std::fs::create_dir(&describe).unwrap();
    for object in [
        "Account",
        "Contact",
        "Invoice__c",
        "Invoice_Line__c",
        "Opportunity",
    ] {
        std::fs::write(
            describe.join(format!("{object}.json")),
            committed_snapshot(object),
        )
        .unwrap();
    }
    let export = dir.path().join("export.json");
    std::fs::write(&export, heroku_connect_export().to_string()).unwrap();
    let (dir_arg, export_arg) = (dir.path().to_str().unwrap(), export.to_str().unwrap());
    let args = [
        "init",
        "--from-heroku-connect",
        export_arg,
        "--dir",
        dir_arg,
    ];
    let (code, out, err) = output(&args, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for file in ["forcesync.toml", "Account.toml", "Invoice_Line__c.toml"] {
        assert!(out.contains(file), "{file}: {out}");
    }
    // The typo is reported with a did-you-mean; the rest of Contact is mapped.
    assert!(
        out.contains("note: Contact: `Emial` is not a field of Contact")
            && out.contains("did you mean `Email`?"),
        "{out}"
    );
    assert!(
        out.contains("note: connection feature poll_db_no_merge = true: Ordered Writes"),
        "{out}"
    );

    let catalog = build(dir.path());
    assert_eq!(catalog.settings.api_version, "59.0");
    assert_eq!(catalog.settings.schema, "salesforce");
    let mapping = |object: &str| {
        catalog
            .mappings
            .iter()
            .find(|m| m.object == object)
            .unwrap()
    };
    let columns = |object: &str| -> Vec<String> {
        mapping(object)
            .fields
            .iter()
            .map(|f| f.column.clone())
            .collect()
    };
    let indexes = |object: &str| -> Vec<(String, bool)> {
        mapping(object)
            .indexes
            .iter()
            .map(|i| (i.name.clone(), i.unique))
            .collect()
    };
    let contact = columns("Contact");
    for column in [
        "sfid",
        "systemmodstamp",
        "firstname",
        "lastname",
        "email",
        "accountid",
    ] {
        assert!(
            contact.contains(&column.to_owned()),
            "{column} in {contact:?}"
        );
    }
    assert!(
        !mapping("Contact").sync.streaming,
        "polling only, as in Heroku Connect"
    );
    assert!(mapping("Account").sync.streaming);
    assert!(mapping("Account").is_read_write());
    assert!(!mapping("Opportunity").is_read_write());
    assert_eq!(mapping("Opportunity").sync.poll_seconds, 300);
    assert_eq!(mapping("Invoice__c").sync.poll_seconds, 120);
    assert_eq!(mapping("Invoice__c").sync.max_daily_api_calls, 50000);
    assert_eq!(
        mapping("Invoice__c").upsert_key.as_deref(),
        Some("External_Id__c")
    );
    assert!(columns("Invoice_Line__c").contains(&"invoice__r__external_id__c".to_owned()));
    assert!(columns("Account").contains(&"billingpostalcode".to_owned()));
    let invoice = indexes("Invoice__c");
    assert!(
        invoice.contains(&("hcu_idx_invoice__c_external_id__c".to_owned(), true)),
        "{invoice:?}"
    );
    assert!(
        invoice.contains(&("hc_idx_invoice__c_status__c".to_owned(), false)),
        "{invoice:?}"
    );
    assert!(indexes("Account").contains(&("hc_idx_account_parentid".to_owned(), false)));
    assert!(indexes("Opportunity").contains(&("hc_idx_opportunity_closedate".to_owned(), false)));

    // Nothing is overwritten without --force; with it, the files are written again.
    let (code, _, err) = output(&args, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("forcesync.toml exists; pass --force"), "{err}");
    let mut forced = args.to_vec();
    forced.push("--force");
    let (code, _, err) = output(&forced, &[]);
    assert_eq!(code, 0, "{err}");
    // A file that is not an export is refused with its name.
    std::fs::write(&export, "{\"connection\": {}}").unwrap();
    let (code, _, err) = output(&forced, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no `mappings` array"), "{err}");
}

async fn control(base: &str, path: &str, body: Value) {
    sync_runtime::salesforce::http::install_crypto_provider();
    let response = reqwest::Client::new()
        .post(format!("{base}/__emulator/{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path}: {response:?}");
}

fn verify_json(args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["verify", "Account", "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = output(&all, env);
    let reports: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("verify --json is JSON ({e}): {out}\n{err}"));
    (code, reports[0].clone())
}

fn ids(report: &Value, kind: &str) -> Vec<String> {
    report[format!("{kind}_ids")]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_rows_missing_stale_or_extra_and_repair_restores_them() {
    let config = sf_emulator::server::Config {
        seed: Some("demo".to_owned()),
        client_secret: CLIENT_SECRET.to_owned(),
        password: PASSWORD.to_owned(),
        ..sf_emulator::server::Config::ephemeral()
    };
    let emulator = sf_emulator::server::start(config.clone()).await.unwrap();
    let base = emulator.base_url.clone();
    let db = TestDb::new();
    let env_owned = [
        ("DATABASE_URL", db.url.clone()),
        ("SF_LOGIN_URL", base.clone()),
        ("SF_CLIENT_ID", config.client_id.clone()),
        ("SF_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("SF_USERNAME", config.username.clone()),
        ("SF_PASSWORD", PASSWORD.to_owned()),
    ];
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut transcript = String::new();
    let run = |args: &[&str], transcript: &mut String| {
        let (code, out, err) = output(args, &env);
        *transcript += &out;
        *transcript += &err;
        (code, out, err)
    };

    let (code, _, err) = run(&["migrate"], &mut transcript);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &["recover", "--since", "2000-01-01", "Account"],
        &mut transcript,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(&["verify", "Account"], &mut transcript);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("in step"), "{out}");

    // Behind the engine's back: a row deleted in Postgres, records changed and deleted in
    // Salesforce without a change event, and the app changing one of those records too.
    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    let synced: Vec<String> = pg
        .query(
            "SELECT sfid FROM salesforce.account ORDER BY sfid COLLATE \"C\" LIMIT 5",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let [missing, stale, conflicted, extra, held] = [0, 1, 2, 3, 4].map(|i| synced[i].clone());
    pg.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on'; \
         DELETE FROM salesforce.account WHERE sfid = '{missing}'; COMMIT"
    ))
    .await
    .unwrap();
    for (id, phone) in [(&stale, "555-0101"), (&conflicted, "555-0102")] {
        control(
            &base,
            "data/update",
            json!({"id": id, "fields": {"Phone": phone}}),
        )
        .await;
    }
    control(&base, "data/delete", json!({"ids": [&extra, &held]})).await;
    for id in [&conflicted, &held] {
        pg.execute(
            "UPDATE salesforce.account SET phone = '555-0199' WHERE sfid = $1",
            &[id],
        )
        .await
        .unwrap();
    }

    // Found through REST and through Bulk alike; exit code 3.
    for bulk_above in ["50000", "0"] {
        let (code, report) = verify_json(&["--bulk-above", bulk_above], &env);
        assert_eq!(code, 3, "{report}");
        assert_eq!(
            ids(&report, "missing"),
            std::slice::from_ref(&missing),
            "{report}"
        );
        assert_eq!(
            ids(&report, "stale"),
            [stale.clone(), conflicted.clone()],
            "{report}"
        );
        assert_eq!(
            ids(&report, "extra"),
            [extra.clone(), held.clone()],
            "{report}"
        );
        let through = if bulk_above == "0" { "bulk" } else { "rest" };
        assert_eq!(report["read_through"], through, "{report}");
        let (sf, pg) = (&report["salesforce_records"], &report["postgres_rows"]);
        assert_eq!(pg.as_u64().unwrap(), sf.as_u64().unwrap() + 1, "{report}");
    }
    let (code, out, _) = run(&["verify", "Account", "--show", "1"], &mut transcript);
    assert_eq!(code, 3);
    assert!(out.contains("1 missing, 2 extra, 2 stale"), "{out}");
    assert!(
        out.contains(&format!("stale    {stale} (and 1 more)")),
        "{out}"
    );

    // --repair re-reads exactly those; the row with a pending write stays (exit code 3).
    let (code, out, err) = run(&["verify", "Account", "--repair"], &mut transcript);
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        out.contains("repaired: 3 rows re-read, 1 removed; 1 extra rows left alone"),
        "{out}"
    );
    assert!(err.contains("pending writes"), "{err}");
    let phone = |id: String| {
        let pg = &pg;
        async move {
            pg.query_opt(
                "SELECT phone FROM salesforce.account WHERE sfid = $1",
                &[&id],
            )
            .await
            .unwrap()
            .map(|r| r.get::<_, Option<String>>(0))
        }
    };
    assert!(phone(missing.clone()).await.is_some(), "restored");
    assert_eq!(phone(stale.clone()).await, Some(Some("555-0101".into())));
    assert_eq!(phone(extra.clone()).await, None, "removed");
    assert!(phone(held.clone()).await.is_some(), "left alone");
    assert_eq!(
        phone(conflicted.clone()).await,
        Some(Some("555-0199".into())),
        "merge keeps the app's unsent value"
    );

    // The app's unsent change against Salesforce's: a conflict, in `conflicts` and `status`.
    let (code, out, _) = run(&["conflicts", "Account", "--json"], &mut transcript);
    assert_eq!(code, 0);
    assert!(out.contains(&conflicted), "{out}");
    assert!(
        out.contains("555-0102") && out.contains("555-0199"),
        "{out}"
    );
    let (code, out, _) = run(&["status", "Account", "--json"], &mut transcript);
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status[0]["conflicts"], 1, "{status}");
    assert_eq!(status[0]["pending_writes"], 2, "{status}");

    // Once the pending write is gone, a repair finishes the job and verify is clean.
    pg.execute("DELETE FROM salesforce._trigger_log", &[])
        .await
        .unwrap();
    let (code, out, err) = run(&["verify", "Account", "--repair"], &mut transcript);
    assert_eq!(code, 0, "{out}{err}");
    let (code, report) = verify_json(&[], &env);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["matching"], report["salesforce_records"]);

    // init fetches a describe that is not there yet; describe pull writes one the build takes.
    let mappings = tempfile::tempdir().unwrap();
    let dir = mappings.path().to_str().unwrap();
    let (code, out, err) = run(&["init", "Contact", "--dir", dir], &mut transcript);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("fetched the describe of Contact"), "{out}");
    let describe_dir = mappings.path().join("describe");
    let (code, _, err) = run(
        &[
            "describe",
            "pull",
            "Opportunity",
            "--dir",
            describe_dir.to_str().unwrap(),
        ],
        &mut transcript,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&["init", "Opportunity", "--dir", dir], &mut transcript);
    assert_eq!(code, 0, "{err}");
    uncomment_all_fields(&mappings.path().join("Opportunity.toml"));
    let catalog = build(mappings.path());
    assert_eq!(catalog.mappings.len(), 2);

    for secret in [CLIENT_SECRET, PASSWORD] {
        assert!(
            !transcript.contains(secret),
            "a secret appeared in the output"
        );
    }
    emulator.stop().await;
}
