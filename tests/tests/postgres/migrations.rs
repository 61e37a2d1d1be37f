//! The committed migrations apply and revert on a real Postgres.

use diesel_migrations::MigrationHarness;
use forcesync_tests::pg::TestDb;

use crate::support::text;

fn tables(conn: &mut diesel::PgConnection) -> String {
    text(
        conn,
        "SELECT string_agg(table_name::text, ',' ORDER BY table_name) AS value \
         FROM information_schema.tables WHERE table_schema = 'salesforce'",
    )
    .unwrap_or_default()
}

#[test]
fn the_generated_migrations_create_every_mapped_and_system_table() {
    let db = TestDb::new();
    let mut conn = db.conn();
    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
    assert_eq!(
        tables(&mut conn),
        "_trigger_log,_trigger_log_archive,account,contact,invoice__c,invoice_line__c,opportunity"
    );
    // The engine creates its own `_forcesync_*` tables at run time, not the migrations.
}

#[test]
fn the_generated_migrations_revert_to_an_empty_schema() {
    let db = TestDb::new();
    let mut conn = db.conn();
    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
    conn.revert_all_migrations(generated::MIGRATIONS).unwrap();
    assert_eq!(tables(&mut conn), "");
    let functions = text(
        &mut conn,
        "SELECT count(*)::text AS value FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'salesforce'",
    );
    assert_eq!(functions.as_deref(), Some("0"));
    // And they apply again after a full revert.
    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
}

#[test]
fn mapped_tables_have_heroku_connect_indexes() {
    let db = TestDb::new();
    let mut conn = db.conn();
    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
    let indexes = text(
        &mut conn,
        "SELECT string_agg(indexname::text, ',' ORDER BY indexname) AS value FROM pg_indexes \
         WHERE schemaname = 'salesforce' AND tablename = 'invoice__c'",
    );
    assert_eq!(
        indexes.as_deref(),
        Some(
            "hc_idx_invoice__c_account__c,hc_idx_invoice__c_status__c,\
             hc_idx_invoice__c_systemmodstamp,hcu_idx_invoice__c_external_id__c,\
             hcu_idx_invoice__c_sfid,invoice__c_pkey"
        )
    );
}
