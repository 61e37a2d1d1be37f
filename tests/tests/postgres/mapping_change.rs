//! A changed mapping produces an additive migration that applies on top of the old schema with
//! the data intact, and reverts. Runs the migration planner on a temp copy of `mappings/`.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::PgConnection;
use forcesync_tests::pg::TestDb;
use sync_schema::migrations::write_next;

use crate::support::text;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn apply(conn: &mut PgConnection, migration: &Path, file: &str) {
    let sql = std::fs::read_to_string(migration.join(file)).unwrap();
    conn.batch_execute(&sql)
        .unwrap_or_else(|e| panic!("{} {file} failed: {e}", migration.display()));
}

fn external_id_width(conn: &mut PgConnection) -> Option<String> {
    text(
        conn,
        "SELECT character_maximum_length::text AS value FROM information_schema.columns \
         WHERE table_schema = 'salesforce' AND table_name = 'invoice__c' AND column_name = 'external_id__c'",
    )
}

fn has_column(conn: &mut PgConnection, column: &str) -> bool {
    text(
        conn,
        &format!(
            "SELECT count(*)::text AS value FROM information_schema.columns WHERE \
             table_schema = 'salesforce' AND table_name = 'invoice__c' AND column_name = '{column}'"
        ),
    )
    .as_deref()
        == Some("1")
}

#[test]
fn adding_a_field_widening_a_varchar_and_adding_an_index_migrates_with_data_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let mappings = tmp.path().join("mappings");
    let migrations = tmp.path().join("migrations");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings"),
        &mappings,
    );

    // The initial schema, with a row in it.
    let catalog = sync_schema::load_dir(&mappings).unwrap();
    let first = write_next(&migrations, &catalog, "2026-11-22").unwrap();
    let first = first.written.expect("an initial migration");
    assert!(first.ends_with("2026-11-22-000001_initial"));
    let db = TestDb::new();
    let mut conn = db.conn();
    apply(&mut conn, &first, "up.sql");
    conn.batch_execute(
        "INSERT INTO salesforce.invoice__c (name, account__c, amount__c, external_id__c, notes__c) \
         VALUES ('INV-1', '001000000000001AAA', 10.5, 'EXT-1', 'keep me')",
    )
    .unwrap();

    // Map LastActivityDate, index Paid__c, and widen External_Id__c in the describe (40 → 80).
    let toml_path = mappings.join("Invoice__c.toml");
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    let toml = toml
        .replacen(
            "    \"Name\",\n",
            "    \"Name\",\n    \"LastActivityDate\",\n",
            1,
        )
        .replacen("[indexes]\n", "[indexes]\nPaid__c = {}\n", 1);
    std::fs::write(&toml_path, toml).unwrap();
    let describe_path = mappings.join("describe/Invoice__c.json");
    let mut describe: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&describe_path).unwrap()).unwrap();
    for field in describe["fields"].as_array_mut().unwrap() {
        if field["name"] == "External_Id__c" {
            field["length"] = 80.into();
            field["byteLength"] = 240.into();
        }
    }
    std::fs::write(&describe_path, describe.to_string()).unwrap();

    let catalog = sync_schema::load_dir(&mappings).unwrap_or_else(|d| panic!("{d}"));
    let second = write_next(&migrations, &catalog, "2026-11-22").unwrap();
    assert!(second.warnings.is_empty(), "{:?}", second.warnings);
    let second = second.written.expect("a second migration");
    // Invoice_Line__c names its invoice by External_Id__c (`invoice__r__external_id__c`, typed
    // like the parent's field), so the child's column widens with it.
    assert!(second.ends_with("2026-11-22-000002_update_invoice__c_invoice_line__c"));
    let up = std::fs::read_to_string(second.join("up.sql")).unwrap();
    let statements: Vec<&str> = up
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect();
    assert_eq!(
        statements,
        [
            "ALTER TABLE salesforce.invoice__c ALTER COLUMN external_id__c TYPE varchar(80);",
            "ALTER TABLE salesforce.invoice__c ADD COLUMN lastactivitydate date;",
            "CREATE INDEX hc_idx_invoice__c_paid__c ON salesforce.invoice__c (paid__c);",
            "ALTER TABLE salesforce.invoice_line__c ALTER COLUMN invoice__r__external_id__c TYPE varchar(80);",
        ]
    );

    apply(&mut conn, &second, "up.sql");
    assert_eq!(external_id_width(&mut conn).as_deref(), Some("80"));
    assert!(has_column(&mut conn, "lastactivitydate"));
    assert_eq!(
        text(&mut conn, "SELECT name || '/' || external_id__c || '/' || notes__c AS value FROM salesforce.invoice__c"),
        Some("INV-1/EXT-1/keep me".to_owned())
    );
    assert_eq!(
        text(&mut conn, "SELECT indexname::text AS value FROM pg_indexes WHERE indexname = 'hc_idx_invoice__c_paid__c'"),
        Some("hc_idx_invoice__c_paid__c".to_owned())
    );
    conn.batch_execute(&format!(
        "UPDATE salesforce.invoice__c SET lastactivitydate = '2026-11-20', external_id__c = '{}'",
        "E".repeat(80)
    ))
    .unwrap();

    // Nothing changed since: no third migration.
    let again = write_next(&migrations, &catalog, "2026-11-22").unwrap();
    assert!(again.written.is_none());

    // The migration reverts (once the data fits the old width again).
    conn.batch_execute("UPDATE salesforce.invoice__c SET external_id__c = 'EXT-1'")
        .unwrap();
    apply(&mut conn, &second, "down.sql");
    assert_eq!(external_id_width(&mut conn).as_deref(), Some("40"));
    assert!(!has_column(&mut conn, "lastactivitydate"));
    assert_eq!(
        text(
            &mut conn,
            "SELECT notes__c AS value FROM salesforce.invoice__c"
        ),
        Some("keep me".to_owned())
    );
}

#[test]
fn a_removed_field_keeps_its_column_until_drop_columns_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mappings = tmp.path().join("mappings");
    let migrations = tmp.path().join("migrations");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mappings"),
        &mappings,
    );
    let catalog = sync_schema::load_dir(&mappings).unwrap();
    let first = write_next(&migrations, &catalog, "2026-11-22")
        .unwrap()
        .written
        .unwrap();
    let db = TestDb::new();
    let mut conn = db.conn();
    apply(&mut conn, &first, "up.sql");

    let toml_path = mappings.join("Invoice__c.toml");
    let original = std::fs::read_to_string(&toml_path).unwrap();
    let without = original.replacen("    \"Line_Count__c\",\n", "", 1);
    std::fs::write(&toml_path, &without).unwrap();
    let catalog = sync_schema::load_dir(&mappings).unwrap_or_else(|d| panic!("{d}"));
    let kept = write_next(&migrations, &catalog, "2026-11-22").unwrap();
    assert!(
        kept.written.is_none(),
        "no migration while the column is kept"
    );
    assert_eq!(kept.warnings.len(), 1);
    assert!(
        kept.warnings[0].contains("line_count__c"),
        "{}",
        kept.warnings[0]
    );

    let dropping = without.replacen(
        "upsert_key = ",
        "drop_columns = [\"line_count__c\"]\nupsert_key = ",
        1,
    );
    std::fs::write(&toml_path, dropping).unwrap();
    let catalog = sync_schema::load_dir(&mappings).unwrap_or_else(|d| panic!("{d}"));
    let dropped = write_next(&migrations, &catalog, "2026-11-22").unwrap();
    let second = dropped.written.expect("a migration dropping the column");
    apply(&mut conn, &second, "up.sql");
    assert!(!has_column(&mut conn, "line_count__c"));
    apply(&mut conn, &second, "down.sql");
    assert!(has_column(&mut conn, "line_count__c"));
}
