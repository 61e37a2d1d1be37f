//! Write capture: application writes land in `_trigger_log` and mark rows PENDING; the sync
//! engine's own writes (under `SET LOCAL forcesync.engine = 'on'`) do not, and mark rows SYNCED.

use diesel::connection::Connection;
use diesel::RunQueryDsl;

use crate::support::{keys, migrated, text, trigger_log};

fn exec(conn: &mut diesel::PgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).expect(sql);
}

fn lastop(conn: &mut diesel::PgConnection, table: &str, name: &str) -> Option<String> {
    text(
        conn,
        &format!("SELECT _hc_lastop AS value FROM salesforce.{table} WHERE name = '{name}'"),
    )
}

#[test]
fn an_application_insert_is_captured_in_trigger_log_with_pending_status() {
    let (_db, mut conn) = migrated();
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name, industry) VALUES ('Acme', 'Banking')",
    );
    assert_eq!(
        lastop(&mut conn, "account", "Acme").as_deref(),
        Some("PENDING")
    );
    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 1);
    let row = &log[0];
    assert_eq!((row.action.as_str(), row.state.as_str()), ("INSERT", "NEW"));
    assert_eq!(row.table_name, "account");
    assert!(row.record_id.is_some());
    let values = row.values.as_ref().unwrap();
    assert_eq!(values["name"], "Acme");
    assert_eq!(values["industry"], "Banking");
    assert!(values.get("_hc_lastop").is_none() && values.get("_hc_err").is_none());
}

#[test]
fn an_application_update_records_only_the_changed_columns() {
    let (_db, mut conn) = migrated();
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name, industry, rating) \
         VALUES ('001000000000001AAA', 'Acme', 'Banking', 'Hot')",
    );
    exec(
        &mut conn,
        "UPDATE salesforce.account SET industry = 'Energy', rating = 'Hot', _hc_err = 'x' \
         WHERE name = 'Acme'",
    );
    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 2);
    let update = &log[1];
    assert_eq!(
        (update.action.as_str(), update.state.as_str()),
        ("UPDATE", "NEW")
    );
    assert_eq!(keys(&update.values), ["industry"]);
    assert_eq!(update.values.as_ref().unwrap()["industry"], "Energy");
    assert_eq!(update.old.as_ref().unwrap()["industry"], "Banking");
    assert_eq!(update.sfid.as_deref(), Some("001000000000001AAA"));
    // The BEFORE trigger cleared the error the application tried to write, and set PENDING.
    assert_eq!(
        text(
            &mut conn,
            "SELECT coalesce(_hc_err, 'null') AS value FROM salesforce.account"
        ),
        Some("null".to_owned())
    );
    assert_eq!(
        lastop(&mut conn, "account", "Acme").as_deref(),
        Some("PENDING")
    );
}

#[test]
fn a_no_op_update_is_not_logged_and_keeps_the_row_status() {
    let (_db, mut conn) = migrated();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(
            conn,
            "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000002AAA', 'Initech')",
        );
        Ok(())
    })
    .unwrap();
    exec(&mut conn, "UPDATE salesforce.account SET name = 'Initech'");
    assert!(trigger_log(&mut conn).is_empty());
    assert_eq!(
        lastop(&mut conn, "account", "Initech").as_deref(),
        Some("SYNCED")
    );
}

#[test]
fn an_application_delete_is_logged_with_the_old_row_and_ignored_without_sfid() {
    let (_db, mut conn) = migrated();
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000003AAA', 'Synced'), (NULL, 'Local')",
    );
    exec(&mut conn, "DELETE FROM salesforce.account");
    let log = trigger_log(&mut conn);
    let deletes: Vec<_> = log.iter().filter(|r| r.action == "DELETE").collect();
    assert_eq!(deletes.len(), 2);
    let synced = deletes.iter().find(|r| r.sfid.is_some()).unwrap();
    assert_eq!(synced.state, "NEW");
    assert_eq!(synced.old.as_ref().unwrap()["name"], "Synced");
    let local = deletes.iter().find(|r| r.sfid.is_none()).unwrap();
    assert_eq!(local.state, "IGNORE");
}

#[test]
fn engine_writes_are_not_logged_and_are_marked_synced() {
    let (_db, mut conn) = migrated();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(
            conn,
            "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000004AAA', 'Globex')",
        );
        exec(
            conn,
            "UPDATE salesforce.account SET industry = 'Energy' WHERE name = 'Globex'",
        );
        Ok(())
    })
    .unwrap();
    assert!(trigger_log(&mut conn).is_empty());
    assert_eq!(
        lastop(&mut conn, "account", "Globex").as_deref(),
        Some("SYNCED")
    );

    // The engine may set _hc_lastop explicitly; the trigger keeps it.
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(conn, "UPDATE salesforce.account SET _hc_lastop = 'FAILED', _hc_err = '{}' WHERE name = 'Globex'");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        lastop(&mut conn, "account", "Globex").as_deref(),
        Some("FAILED")
    );

    // The setting is transaction-local: the next application write is captured again.
    exec(
        &mut conn,
        "UPDATE salesforce.account SET industry = 'Banking' WHERE name = 'Globex'",
    );
    assert_eq!(trigger_log(&mut conn).len(), 1);
    assert_eq!(
        lastop(&mut conn, "account", "Globex").as_deref(),
        Some("PENDING")
    );
}

#[test]
fn a_read_only_mapping_records_nothing_for_the_writer() {
    let (_db, mut conn) = migrated();
    exec(
        &mut conn,
        "INSERT INTO salesforce.opportunity (name, stagename) VALUES ('Deal', 'Prospecting')",
    );
    exec(
        &mut conn,
        "UPDATE salesforce.opportunity SET stagename = 'Closed Won'",
    );
    exec(&mut conn, "DELETE FROM salesforce.opportunity");
    assert!(trigger_log(&mut conn).is_empty());
}

#[test]
fn captured_writes_wake_the_writer_with_notify() {
    use diesel::pg::PgConnection;
    let (db, mut conn) = migrated();
    let mut listener: PgConnection = db.conn();
    exec(&mut listener, "LISTEN \"salesforce.hc_trigger_log\"");
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name) VALUES ('Wake')",
    );
    // libpq reads pending notifications when the connection next talks to the server.
    exec(&mut listener, "SELECT 1");
    let notification = listener
        .notifications_iter()
        .next()
        .expect("a notification")
        .expect("a readable notification");
    assert_eq!(notification.channel, "salesforce.hc_trigger_log");
    assert_eq!(notification.payload, "ping");
}

#[test]
fn a_column_the_app_added_of_any_type_is_captured_and_no_op_updates_stay_unlogged() {
    let (_db, mut conn) = migrated();
    // json and point have no equality operator: the no-op check must not need one.
    exec(
        &mut conn,
        "ALTER TABLE salesforce.account ADD COLUMN app_notes json, ADD COLUMN app_spot point",
    );
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(
            conn,
            "INSERT INTO salesforce.account (sfid, name, app_notes, app_spot) \
             VALUES ('001000000000005AAA', 'Own Columns', '{\"a\": 1}', '(1,2)')",
        );
        Ok(())
    })
    .unwrap();
    exec(
        &mut conn,
        "UPDATE salesforce.account SET app_notes = app_notes, app_spot = app_spot, name = name",
    );
    assert!(
        trigger_log(&mut conn).is_empty(),
        "a no-op update is not logged"
    );
    assert_eq!(
        lastop(&mut conn, "account", "Own Columns").as_deref(),
        Some("SYNCED")
    );
    exec(
        &mut conn,
        "UPDATE salesforce.account SET app_notes = '{\"a\": 2}'",
    );
    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 1);
    assert_eq!(keys(&log[0].values), ["app_notes"]);
    assert_eq!(log[0].values.as_ref().unwrap()["app_notes"], "{\"a\": 2}");
    assert_eq!(
        lastop(&mut conn, "account", "Own Columns").as_deref(),
        Some("PENDING")
    );
}
