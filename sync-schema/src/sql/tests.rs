use insta::assert_snapshot;

use super::*;
use crate::catalog::{PgType, SfType};
use crate::testing::{field, sample_catalog, with_index};

#[test]
fn the_first_migration_creates_system_tables_and_every_mapped_table() {
    let plan = plan(None, &sample_catalog()).unwrap();
    assert_eq!(plan.slug(), "initial");
    assert_snapshot!("sample_initial_up", plan.up_sql());
    assert_snapshot!("sample_initial_down", plan.down_sql());
}

#[test]
fn an_unchanged_catalog_plans_nothing() {
    let catalog = sample_catalog();
    let first = plan(None, &catalog).unwrap();
    let second = plan(Some(&first.snapshot), &catalog).unwrap();
    assert!(second.is_empty());
    assert!(second.warnings.is_empty());
    assert_eq!(second.snapshot, first.snapshot);
}

#[test]
fn adding_a_field_widening_a_varchar_and_adding_an_index_is_one_additive_migration() {
    let before = sample_catalog();
    let first = plan(None, &before).unwrap();
    let mut after = before.clone();
    let widget = &mut after.mappings[1];
    assert_eq!(widget.object, "Widget__c");
    widget.fields.push(field("Color__c", SfType::String));
    let name = widget
        .fields
        .iter_mut()
        .find(|f| f.sf_name == "Name")
        .unwrap();
    name.pg_type = PgType::Varchar(255);
    after.mappings[1] = with_index(after.mappings[1].clone(), "quantity__c", false);
    let next = plan(Some(&first.snapshot), &after).unwrap();
    assert_eq!(next.slug(), "alter_widget__c");
    assert_snapshot!("widen_add_index_up", next.up_sql());
    assert_snapshot!("widen_add_index_down", next.down_sql());
}

#[test]
fn a_removed_field_keeps_its_column_with_a_warning_until_listed_in_drop_columns() {
    let before = sample_catalog();
    let first = plan(None, &before).unwrap();
    let mut after = before.clone();
    after.mappings[1]
        .fields
        .retain(|f| f.sf_name != "Pickup__c");
    let kept = plan(Some(&first.snapshot), &after).unwrap();
    assert!(kept.is_empty());
    assert_eq!(kept.warnings.len(), 1);
    assert!(kept.warnings[0].contains("\"pickup__c\" to `drop_columns`"));
    assert!(kept
        .snapshot
        .table("widget__c")
        .unwrap()
        .column("pickup__c")
        .is_some());

    after.mappings[1].drop_columns.push("pickup__c".to_owned());
    let dropped = plan(Some(&first.snapshot), &after).unwrap();
    assert_eq!(
        dropped.up_sql().lines().last(),
        Some("ALTER TABLE salesforce.widget__c DROP COLUMN pickup__c;")
    );
    assert_eq!(
        dropped.down_sql().lines().last(),
        Some("ALTER TABLE salesforce.widget__c ADD COLUMN pickup__c time;")
    );
    assert!(dropped
        .snapshot
        .table("widget__c")
        .unwrap()
        .column("pickup__c")
        .is_none());
}

#[test]
fn narrowing_a_column_is_an_error_that_says_how_to_proceed() {
    let before = sample_catalog();
    let first = plan(None, &before).unwrap();
    let mut after = before.clone();
    let name = after.mappings[1]
        .fields
        .iter_mut()
        .find(|f| f.sf_name == "Name")
        .unwrap();
    name.pg_type = PgType::Varchar(40);
    let quantity = after.mappings[1]
        .fields
        .iter_mut()
        .find(|f| f.sf_name == "Quantity__c")
        .unwrap();
    quantity.pg_type = PgType::Boolean;
    let errors = plan(Some(&first.snapshot), &after).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_snapshot!("narrowing_errors", messages.join("\n\n"));
}

#[test]
fn switching_a_mapping_to_read_write_starts_capturing_its_writes() {
    let before = sample_catalog();
    let first = plan(None, &before).unwrap();
    let mut after = before.clone();
    after.mappings[0].access = crate::catalog::Access::ReadWrite;
    let next = plan(Some(&first.snapshot), &after).unwrap();
    assert_eq!(
        next.steps,
        vec![Step::EnableCapture {
            table: "gadget__c".to_owned()
        }]
    );
    assert!(next
        .down_sql()
        .contains("DROP TRIGGER hc_gadget__c_logtrigger ON salesforce.gadget__c;"));
}

#[test]
fn identifiers_that_are_sql_keywords_are_quoted() {
    assert_eq!(quote_ident("case"), "\"case\"");
    assert_eq!(quote_ident("order"), "\"order\"");
    assert_eq!(quote_ident("billingcity"), "billingcity");
    assert_eq!(quote_ident("Weird"), "\"Weird\"");
    assert_eq!(quote_literal("O'Brien"), "'O''Brien'");
}

#[test]
fn a_project_whose_last_migration_predates_the_hstore_log_gets_a_converting_migration() {
    let catalog = sample_catalog();
    let first = plan(None, &catalog).unwrap();
    assert_eq!(first.snapshot.system, system::SYSTEM_VERSION);
    // A snapshot written before the layout was recorded (version 1: jsonb payloads).
    let mut json: serde_json::Value = serde_json::from_str(&first.snapshot.to_json()).unwrap();
    json.as_object_mut().unwrap().remove("system");
    let old = SchemaSnapshot::from_json(&json.to_string()).unwrap();
    assert_eq!(old.system, 1);

    let next = plan(Some(&old), &catalog).unwrap();
    assert_eq!(
        next.steps,
        [Step::UpgradeSystem {
            from: 1,
            tables: vec!["gadget__c".to_owned(), "widget__c".to_owned()],
            captured: vec!["widget__c".to_owned()]
        }]
    );
    assert_eq!(next.slug(), "upgrade_system");
    assert_eq!(next.snapshot.system, system::SYSTEM_VERSION);
    assert_snapshot!("upgrade_system_up", next.up_sql());
    assert_snapshot!("upgrade_system_down", next.down_sql());
    // Once applied, nothing more to do.
    assert!(plan(Some(&next.snapshot), &catalog).unwrap().is_empty());
}

#[test]
fn a_project_with_row_level_capture_triggers_gets_a_migration_to_statement_level_ones() {
    let catalog = sample_catalog();
    let first = plan(None, &catalog).unwrap();
    let mut old = first.snapshot.clone();
    old.system = 2;
    let next = plan(Some(&old), &catalog).unwrap();
    assert_eq!(
        next.steps,
        [Step::UpgradeSystem {
            from: 2,
            tables: vec!["gadget__c".to_owned(), "widget__c".to_owned()],
            captured: vec!["widget__c".to_owned()]
        }]
    );
    assert_eq!(next.snapshot.system, system::SYSTEM_VERSION);
    assert_snapshot!("upgrade_system_2_up", next.up_sql());
    assert_snapshot!("upgrade_system_2_down", next.down_sql());
    assert!(plan(Some(&next.snapshot), &catalog).unwrap().is_empty());
}

#[test]
fn a_project_whose_status_triggers_run_on_every_row_gets_a_migration_giving_them_their_when() {
    let catalog = sample_catalog();
    let first = plan(None, &catalog).unwrap();
    let mut old = first.snapshot.clone();
    old.system = 3;
    let next = plan(Some(&old), &catalog).unwrap();
    assert_eq!(
        next.steps,
        [Step::UpgradeSystem {
            from: 3,
            tables: vec!["gadget__c".to_owned(), "widget__c".to_owned()],
            captured: vec!["widget__c".to_owned()]
        }]
    );
    let up = next.up_sql();
    // Every table's, captured or not; nothing else of version 3 is touched.
    for table in ["gadget__c", "widget__c"] {
        assert!(up.contains(&format!(
            "ALTER TABLE salesforce.{table} ALTER COLUMN _hc_lastop SET DEFAULT 'PENDING';"
        )));
        assert!(up.contains(&format!(
            "DROP TRIGGER hc_{table}_status_trigger ON salesforce.{table};"
        )));
    }
    assert_eq!(
        up.matches("CREATE OR REPLACE FUNCTION salesforce.forcesync_logger()")
            .count(),
        1
    );
    assert_snapshot!("upgrade_system_3_up", up);
    assert_snapshot!("upgrade_system_3_down", next.down_sql());
    assert!(plan(Some(&next.snapshot), &catalog).unwrap().is_empty());
}

#[test]
fn a_project_whose_logger_sorts_every_rows_keys_gets_a_migration_replacing_it_alone() {
    let catalog = sample_catalog();
    let first = plan(None, &catalog).unwrap();
    let mut old = first.snapshot.clone();
    old.system = 4;
    let next = plan(Some(&old), &catalog).unwrap();
    assert_eq!(
        next.steps,
        [Step::UpgradeSystem {
            from: 4,
            tables: vec!["gadget__c".to_owned(), "widget__c".to_owned()],
            captured: vec!["widget__c".to_owned()]
        }]
    );
    let (up, down) = (next.up_sql(), next.down_sql());
    // The logger, then version 6's pending triggers: no other trigger, table or function of
    // version 4 is touched.
    assert_eq!(up.matches("CREATE TRIGGER").count(), 2);
    assert_eq!(up.matches("_pending_trigger BEFORE UPDATE").count(), 2);
    assert!(!up.contains("DROP TRIGGER"));
    assert!(!up.contains("ALTER TABLE") && !up.contains("FUNCTION salesforce.forcesync_status"));
    assert!(up.contains("OFFSET 499"));
    assert!(!down.contains("ALTER TABLE") && !down.contains("forcesync_status"));
    assert!(!down.contains("OFFSET 499") && down.contains("forcesync_logger"));
    assert_snapshot!("upgrade_system_4_up", up);
    assert_snapshot!("upgrade_system_4_down", down);
    assert!(plan(Some(&next.snapshot), &catalog).unwrap().is_empty());
}

#[test]
fn a_project_whose_updates_all_call_the_status_function_gets_a_migration_adding_the_pending_triggers(
) {
    let catalog = sample_catalog();
    let first = plan(None, &catalog).unwrap();
    // A new project's tables have the pending trigger from the start.
    let created = first.up_sql();
    for table in ["gadget__c", "widget__c"] {
        assert!(created.contains(&format!(
            "CREATE TRIGGER hc_{table}_pending_trigger BEFORE UPDATE ON salesforce.{table}"
        )));
    }
    let mut old = first.snapshot.clone();
    old.system = 5;
    let next = plan(Some(&old), &catalog).unwrap();
    assert_eq!(
        next.steps,
        [Step::UpgradeSystem {
            from: 5,
            tables: vec!["gadget__c".to_owned(), "widget__c".to_owned()],
            captured: vec!["widget__c".to_owned()]
        }]
    );
    let (up, down) = (next.up_sql(), next.down_sql());
    // Every table's (read-only ones too: their status triggers are the same), and nothing else.
    assert_eq!(up.matches("CREATE TRIGGER").count(), 2);
    assert!(!up.contains("DROP TRIGGER") && !up.contains("ALTER TABLE"));
    assert!(
        !up.contains("forcesync_logger") && !up.contains("FUNCTION salesforce.forcesync_status")
    );
    assert!(!down.contains("forcesync_logger") && !down.contains("CREATE"));
    assert_snapshot!("upgrade_system_5_up", up);
    assert_snapshot!("upgrade_system_5_down", down);
    assert!(plan(Some(&next.snapshot), &catalog).unwrap().is_empty());
}
