//! Write capture: application writes land in `_trigger_log` and mark rows PENDING; the sync
//! engine's own writes (under `SET LOCAL forcesync.engine = 'on'`) do not, and mark rows SYNCED.
//! Capture is per statement: multi-row statements, `INSERT … ON CONFLICT`, `COPY` and statements
//! touching no row log exactly what one entry per row would.

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
        "ALTER TABLE salesforce.account ADD COLUMN app_notes json, ADD COLUMN app_spot point, \
         ADD COLUMN n integer, ADD COLUMN o integer, ADD COLUMN r integer",
    );
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(
            conn,
            "INSERT INTO salesforce.account (sfid, name, app_notes, app_spot, n, o, r) \
             VALUES ('001000000000005AAA', 'Own Columns', '{\"a\": 1}', '(1,2)', 1, 2, 3)",
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
    assert_eq!(log[0].old.as_ref().unwrap()["n"], "1");
    assert_eq!(log[0].old.as_ref().unwrap()["r"], "3");
    assert_eq!(
        lastop(&mut conn, "account", "Own Columns").as_deref(),
        Some("PENDING")
    );
    // Columns named like the trigger's own aliases are captured as any other.
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name, n, o) VALUES ('Letters', 5, 6)",
    );
    exec(
        &mut conn,
        "DELETE FROM salesforce.account WHERE name = 'Letters'",
    );
    let log = trigger_log(&mut conn);
    assert_eq!(log[1].values.as_ref().unwrap()["o"], "6");
    assert_eq!(log[2].old.as_ref().unwrap()["n"], "5");
}

fn engine_insert(conn: &mut diesel::PgConnection, sql: &str) {
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(conn, sql);
        Ok(())
    })
    .unwrap();
}

/// Every logged entry as the writer leaves it once sent (`SUCCESS`), so that the next statement's
/// entries are the only `NEW` ones.
fn entries_sent(conn: &mut diesel::PgConnection) {
    exec(conn, "UPDATE salesforce._trigger_log SET state = 'SUCCESS'");
}

/// [`entries_sent`], and every Account row marked `SYNCED` by an engine write, as after a sync.
fn entries_sent_rows_synced(conn: &mut diesel::PgConnection) {
    entries_sent(conn);
    engine_insert(conn, "UPDATE salesforce.account SET _hc_lastop = 'SYNCED'");
}

fn record_ids(conn: &mut diesel::PgConnection, names: &[&str]) -> Vec<Option<i32>> {
    names
        .iter()
        .map(|name| {
            text(
                conn,
                &format!("SELECT id::text AS value FROM salesforce.account WHERE name = '{name}'"),
            )
            .map(|id| id.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_multi_row_statement_logs_every_row_it_changed_in_row_order() {
    let (_db, mut conn) = migrated();
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name, industry) VALUES \
         ('001000000000011AAA', 'One', 'Banking'), (NULL, 'Two', 'Energy'), \
         ('001000000000013AAA', 'Three', 'Banking')",
    );
    let ids = record_ids(&mut conn, &["One", "Two", "Three"]);
    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 3);
    assert!(log
        .iter()
        .all(|r| (r.action.as_str(), r.state.as_str()) == ("INSERT", "NEW")));
    assert_eq!(log.iter().map(|r| r.record_id).collect::<Vec<_>>(), ids);
    assert_eq!(log[1].values.as_ref().unwrap()["name"], "Two");
    assert_eq!(log[2].sfid.as_deref(), Some("001000000000013AAA"));

    // Two rows change, one already had the value: it is not logged and keeps its status.
    entries_sent_rows_synced(&mut conn);
    exec(
        &mut conn,
        "UPDATE salesforce.account SET industry = 'Energy' WHERE name IN ('One', 'Two', 'Three')",
    );
    let updates: Vec<_> = trigger_log(&mut conn)
        .into_iter()
        .filter(|r| r.state == "NEW")
        .collect();
    assert_eq!(
        updates.iter().map(|r| r.record_id).collect::<Vec<_>>(),
        [ids[0], ids[2]]
    );
    for update in &updates {
        assert_eq!(update.action, "UPDATE");
        assert_eq!(keys(&update.values), ["industry"]);
        assert_eq!(update.old.as_ref().unwrap()["industry"], "Banking");
    }
    assert_eq!(updates[1].sfid.as_deref(), Some("001000000000013AAA"));
    assert_eq!(
        lastop(&mut conn, "account", "One").as_deref(),
        Some("PENDING")
    );
    assert_eq!(
        lastop(&mut conn, "account", "Two").as_deref(),
        Some("SYNCED")
    );

    entries_sent(&mut conn);
    exec(&mut conn, "DELETE FROM salesforce.account");
    let deletes: Vec<_> = trigger_log(&mut conn)
        .into_iter()
        .filter(|r| r.action == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 3);
    let by_name = |name: &str| {
        deletes
            .iter()
            .find(|r| r.old.as_ref().unwrap()["name"] == name)
            .unwrap()
    };
    assert_eq!(by_name("One").state, "NEW");
    assert_eq!(by_name("One").sfid.as_deref(), Some("001000000000011AAA"));
    assert_eq!(by_name("Two").state, "IGNORE");
    assert_eq!(by_name("Three").record_id, ids[2]);
}

#[test]
fn insert_on_conflict_logs_its_insert_and_update_arms_and_nothing_for_rows_left_alone() {
    let (_db, mut conn) = migrated();
    engine_insert(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name, industry) VALUES \
         ('001000000000021AAA', 'Existing', 'Banking'), ('001000000000022AAA', 'Kept', 'Banking')",
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name, industry) VALUES \
         ('001000000000021AAA', 'Existing', 'Energy'), ('001000000000023AAA', 'Arrived', 'Energy') \
         ON CONFLICT (sfid) DO UPDATE SET industry = EXCLUDED.industry",
    );
    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 2, "{log:?}");
    let insert = log.iter().find(|r| r.action == "INSERT").unwrap();
    assert_eq!(insert.values.as_ref().unwrap()["name"], "Arrived");
    assert_eq!(insert.record_id, record_ids(&mut conn, &["Arrived"])[0]);
    let update = log.iter().find(|r| r.action == "UPDATE").unwrap();
    assert_eq!(keys(&update.values), ["industry"]);
    assert_eq!(update.sfid.as_deref(), Some("001000000000021AAA"));
    assert_eq!(
        lastop(&mut conn, "account", "Existing").as_deref(),
        Some("PENDING")
    );
    assert_eq!(
        lastop(&mut conn, "account", "Arrived").as_deref(),
        Some("PENDING")
    );

    // DO NOTHING, and DO UPDATE to the same values: nothing to sync.
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000022AAA', 'Kept') \
         ON CONFLICT (sfid) DO NOTHING",
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000022AAA', 'Kept') \
         ON CONFLICT (sfid) DO UPDATE SET name = EXCLUDED.name",
    );
    assert_eq!(trigger_log(&mut conn).len(), 2);
    assert_eq!(
        lastop(&mut conn, "account", "Kept").as_deref(),
        Some("SYNCED")
    );
}

#[test]
fn copy_into_the_table_is_captured_row_by_row() {
    use diesel::prelude::ExecuteCopyFromDsl;
    use generated::salesforce::account::account;
    let (_db, mut conn) = migrated();
    let copied = diesel::copy_from(account::table)
        .from_raw_data((account::sfid, account::name), |out| {
            out.write_all(b"001000000000031AAA\tCopied One\n\\N\tCopied Two\n")
                .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
        })
        .execute(&mut conn)
        .expect("COPY into salesforce.account");
    assert_eq!(copied, 2);
    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 2);
    assert_eq!(
        log.iter().map(|r| r.record_id).collect::<Vec<_>>(),
        record_ids(&mut conn, &["Copied One", "Copied Two"])
    );
    assert_eq!(log[0].sfid.as_deref(), Some("001000000000031AAA"));
    assert_eq!(log[1].values.as_ref().unwrap()["name"], "Copied Two");
    assert!(log[1].values.as_ref().unwrap()["sfid"].is_null());
    assert_eq!(
        lastop(&mut conn, "account", "Copied Two").as_deref(),
        Some("PENDING")
    );
}

#[test]
fn statements_touching_no_row_log_nothing_and_a_disabled_logtrigger_stops_capture() {
    let (_db, mut conn) = migrated();
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name) SELECT 'never' WHERE false",
    );
    exec(
        &mut conn,
        "UPDATE salesforce.account SET industry = 'Energy' WHERE false",
    );
    exec(&mut conn, "DELETE FROM salesforce.account WHERE false");
    assert!(trigger_log(&mut conn).is_empty());

    // As under Heroku Connect: with hc_<t>_logtrigger disabled, nothing is captured.
    exec(
        &mut conn,
        "ALTER TABLE salesforce.account DISABLE TRIGGER hc_account_logtrigger",
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name) VALUES ('Quiet')",
    );
    exec(
        &mut conn,
        "UPDATE salesforce.account SET industry = 'Energy'",
    );
    exec(&mut conn, "DELETE FROM salesforce.account");
    assert!(trigger_log(&mut conn).is_empty());
}

/// Calls of the trigger function `function` (`forcesync_status`, `forcesync_pending`) in the
/// current transaction (needs `track_functions`, set by the caller).
fn calls(conn: &mut diesel::PgConnection, function: &str) -> String {
    text(
        conn,
        &format!(
            "SELECT coalesce(sum(calls), 0)::text AS value FROM pg_stat_xact_user_functions \
             WHERE schemaname = 'salesforce' AND funcname = '{function}'"
        ),
    )
    .unwrap()
}

#[test]
fn a_plain_application_insert_is_pending_without_a_status_trigger_call_and_every_other_write_still_gets_one(
) {
    let (_db, mut conn) = migrated();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL track_functions = 'all'");
        // The column's default makes the row PENDING: no plpgsql call per row.
        exec(
            conn,
            "INSERT INTO salesforce.account (name) SELECT 'Bulk ' || g FROM generate_series(1, 50) g",
        );
        assert_eq!(calls(conn, "forcesync_status"), "0");
        // An application write the trigger changes is still corrected: an explicit status and
        // error are overwritten, as Heroku Connect's trigger does.
        exec(
            conn,
            "INSERT INTO salesforce.account (name, _hc_lastop, _hc_err) VALUES ('Explicit', 'SYNCED', 'x'), ('Null', NULL, NULL)",
        );
        assert_eq!(calls(conn, "forcesync_status"), "2");
        // Updating a row already PENDING without an error changes nothing the trigger owns.
        exec(
            conn,
            "UPDATE salesforce.account SET industry = 'Energy' WHERE name = 'Bulk 1'",
        );
        assert_eq!(calls(conn, "forcesync_status"), "2");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT string_agg(DISTINCT _hc_lastop || '/' || coalesce(_hc_err, 'null'), ',') AS value \
             FROM salesforce.account"
        )
        .as_deref(),
        Some("PENDING/null")
    );
    assert_eq!(trigger_log(&mut conn).len(), 53);

    // A row the engine synced, or that failed, becomes PENDING (its error cleared) when the
    // application changes it.
    engine_insert(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000031AAA', 'Synced')",
    );
    engine_insert(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name, _hc_lastop, _hc_err) \
         VALUES ('001000000000032AAA', 'Failed', 'FAILED', '{\"message\":\"no\"}')",
    );
    assert_eq!(
        lastop(&mut conn, "account", "Synced").as_deref(),
        Some("SYNCED"),
        "an engine insert leaving _hc_lastop to its default is SYNCED"
    );
    assert_eq!(
        lastop(&mut conn, "account", "Failed").as_deref(),
        Some("FAILED")
    );
    exec(
        &mut conn,
        "UPDATE salesforce.account SET rating = 'Hot' WHERE name IN ('Synced', 'Failed')",
    );
    assert_eq!(
        text(
            &mut conn,
            "SELECT string_agg(name || ':' || _hc_lastop || '/' || coalesce(_hc_err, 'null'), ',' ORDER BY name) AS value \
             FROM salesforce.account WHERE name IN ('Synced', 'Failed')"
        )
        .as_deref(),
        Some("Failed:PENDING/null,Synced:PENDING/null")
    );
    // Through `INSERT … ON CONFLICT`, the update arm of a synced row is PENDING too.
    engine_insert(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000033AAA', 'Upserted')",
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000033AAA', 'Upserted') \
         ON CONFLICT (sfid) DO UPDATE SET rating = 'Warm'",
    );
    assert_eq!(
        lastop(&mut conn, "account", "Upserted").as_deref(),
        Some("PENDING")
    );
}

/// A database as an earlier layout left it: every generated migration but the last `n`.
fn migrated_but_the_last(n: usize) -> (forcesync_tests::pg::TestDb, diesel::PgConnection) {
    use diesel_migrations::MigrationHarness;
    let db = forcesync_tests::pg::TestDb::new();
    let mut conn = db.conn();
    let all = conn
        .pending_migrations(generated::MIGRATIONS)
        .unwrap()
        .len();
    for _ in n..all {
        conn.run_next_migration(generated::MIGRATIONS).unwrap();
    }
    (db, conn)
}

#[test]
fn a_database_of_status_triggers_called_on_every_row_is_migrated_and_reverts() {
    use diesel_migrations::MigrationHarness;
    // The database as layout 3 left it: every migration but the last three (layout 4's, 5's
    // logger, then 6's pending triggers).
    let (_db, mut conn) = migrated_but_the_last(3);
    let layout = |conn: &mut diesel::PgConnection| {
        text(
            conn,
            "SELECT coalesce(pg_get_expr(d.adbin, d.adrelid), 'none') || ' | ' || \
                    (SELECT pg_get_triggerdef(g.oid) FROM pg_trigger g \
                     WHERE g.tgrelid = 'salesforce.account'::regclass AND g.tgname = 'hc_account_status_trigger') AS value \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = 'salesforce.account'::regclass AND a.attname = '_hc_lastop'",
        )
        .unwrap()
    };
    let before = layout(&mut conn);
    assert!(
        before.starts_with("none | ") && !before.contains(" WHEN "),
        "{before}"
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name) VALUES ('Before')",
    );

    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
    let after = layout(&mut conn);
    assert!(
        after.starts_with("'PENDING'::character varying | ") && after.contains(" WHEN "),
        "{after}"
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name) VALUES ('After')",
    );
    engine_insert(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000034AAA', 'Engine')",
    );
    for (name, status) in [
        ("Before", "PENDING"),
        ("After", "PENDING"),
        ("Engine", "SYNCED"),
    ] {
        assert_eq!(
            lastop(&mut conn, "account", name).as_deref(),
            Some(status),
            "{name}"
        );
    }

    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    assert_eq!(layout(&mut conn), before);
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name) VALUES ('Reverted')",
    );
    engine_insert(
        &mut conn,
        "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000035AAA', 'Engine again')",
    );
    assert_eq!(
        lastop(&mut conn, "account", "Reverted").as_deref(),
        Some("PENDING")
    );
    assert_eq!(
        lastop(&mut conn, "account", "Engine again").as_deref(),
        Some("SYNCED")
    );
    assert_eq!(trigger_log(&mut conn).len(), 3);
}

/// Each update of the scenario below and the rows' status after it.
fn updates_of_synced_and_failed_rows(conn: &mut diesel::PgConnection) -> Vec<String> {
    engine_insert(conn, "DELETE FROM salesforce.account");
    exec(conn, "DELETE FROM salesforce._trigger_log");
    engine_insert(
        conn,
        "INSERT INTO salesforce.account (sfid, name, rating) VALUES \
         ('001000000000041AAA', 'Synced', 'Cold'), ('001000000000042AAA', 'Other', 'Cold')",
    );
    engine_insert(
        conn,
        "INSERT INTO salesforce.account (sfid, name, rating, _hc_lastop, _hc_err) VALUES \
         ('001000000000043AAA', 'Failed', 'Cold', 'FAILED', 'rejected')",
    );
    let mut seen = Vec::new();
    for (what, update) in [
        (
            "a change of a synced row",
            "SET rating = 'Hot' WHERE name = 'Synced'",
        ),
        (
            "a change of a failed row",
            "SET rating = 'Hot' WHERE name = 'Failed'",
        ),
        ("a no-op", "SET rating = rating WHERE name = 'Other'"),
        (
            "a change with an explicit status",
            "SET rating = 'Warm', _hc_lastop = 'SYNCED', _hc_err = 'x' WHERE name = 'Other'",
        ),
        (
            "a change of a pending row",
            "SET rating = 'Cold' WHERE name = 'Synced'",
        ),
    ] {
        exec(conn, &format!("UPDATE salesforce.account {update}"));
        let rows = text(
            conn,
            "SELECT string_agg(name || ':' || rating || ':' || _hc_lastop || '/' || coalesce(_hc_err, 'null'), ' ' ORDER BY name) AS value \
             FROM salesforce.account",
        )
        .unwrap();
        seen.push(format!("{what}: {rows}"));
    }
    // An error set alone by the application: the status function keeps it (nothing else
    // changed); an engine update makes a row SYNCED.
    engine_insert(
        conn,
        "UPDATE salesforce.account SET _hc_lastop = 'SYNCED' WHERE name = 'Other'",
    );
    exec(
        conn,
        "UPDATE salesforce.account SET _hc_err = 'noted' WHERE name = 'Other'",
    );
    engine_insert(
        conn,
        "UPDATE salesforce.account SET rating = 'Engine' WHERE name = 'Failed'",
    );
    seen.push(
        text(
            conn,
            "SELECT string_agg(name || ':' || rating || ':' || _hc_lastop || '/' || coalesce(_hc_err, 'null'), ' ' ORDER BY name) AS value \
             FROM salesforce.account",
        )
        .unwrap(),
    );
    seen.push(format!("{} logged", trigger_log(conn).len()));
    seen
}

#[test]
fn an_application_update_of_a_synced_row_is_marked_pending_without_the_status_function_and_the_migration_to_it_changes_nothing_else(
) {
    use diesel_migrations::MigrationHarness;
    // The database as layout 5 left it: every migration but the last (layout 6's).
    let (_db, mut conn) = migrated_but_the_last(1);
    let pending_triggers = |conn: &mut diesel::PgConnection| {
        text(
            conn,
            "SELECT count(*)::text AS value FROM pg_trigger WHERE tgname LIKE 'hc\\_%\\_pending\\_trigger'",
        )
        .unwrap()
    };
    assert_eq!(pending_triggers(&mut conn), "0");
    let before = updates_of_synced_and_failed_rows(&mut conn);
    assert_eq!(
        before,
        [
            "a change of a synced row: Failed:Cold:FAILED/rejected Other:Cold:SYNCED/null Synced:Hot:PENDING/null",
            "a change of a failed row: Failed:Hot:PENDING/null Other:Cold:SYNCED/null Synced:Hot:PENDING/null",
            "a no-op: Failed:Hot:PENDING/null Other:Cold:SYNCED/null Synced:Hot:PENDING/null",
            "a change with an explicit status: Failed:Hot:PENDING/null Other:Warm:PENDING/null Synced:Hot:PENDING/null",
            "a change of a pending row: Failed:Hot:PENDING/null Other:Warm:PENDING/null Synced:Cold:PENDING/null",
            "Failed:Engine:SYNCED/null Other:Warm:SYNCED/noted Synced:Cold:PENDING/null",
            "4 logged",
        ]
    );

    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
    // Every mapped table has one, read-only ones too.
    let tables = text(
        &mut conn,
        "SELECT count(*)::text AS value FROM pg_trigger WHERE tgname LIKE 'hc\\_%\\_status\\_trigger'",
    )
    .unwrap();
    assert_eq!(pending_triggers(&mut conn), tables);
    // The same statuses, the same entries.
    assert_eq!(updates_of_synced_and_failed_rows(&mut conn), before);
    // The common update (a synced or failed row changed) calls the three-line function alone;
    // an update setting the status itself still goes to the status function.
    // (An engine write first, outside: its SET LOCAL would last to the end of the transaction.)
    engine_insert(
        &mut conn,
        "UPDATE salesforce.account SET _hc_lastop = 'SYNCED'",
    );
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL track_functions = 'all'");
        exec(conn, "UPDATE salesforce.account SET rating = 'Changed'");
        assert_eq!(calls(conn, "forcesync_status"), "0");
        assert_eq!(calls(conn, "forcesync_pending"), "3");
        exec(
            conn,
            "UPDATE salesforce.account SET rating = 'Again', _hc_lastop = 'SYNCED'",
        );
        assert_eq!(calls(conn, "forcesync_status"), "3");
        assert_eq!(calls(conn, "forcesync_pending"), "3");
        Ok(())
    })
    .unwrap();
    assert_eq!(
        text(
            &mut conn,
            "SELECT string_agg(DISTINCT rating || ':' || _hc_lastop, ' ') AS value FROM salesforce.account"
        )
        .as_deref(),
        Some("Again:PENDING")
    );

    // It reverts: no pending trigger or function left, the same statuses again.
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    assert_eq!(pending_triggers(&mut conn), "0");
    assert_eq!(
        text(
            &mut conn,
            "SELECT count(*)::text AS value FROM pg_proc WHERE proname = 'forcesync_pending'"
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(updates_of_synced_and_failed_rows(&mut conn), before);
}

/// Rows of a statement large enough to be logged with its columns listed in hstore's key order.
const LARGE: u32 = sync_schema::sql::system::SORTED_KEYS_MIN_ROWS + 100;

fn batch(conn: &mut diesel::PgConnection, sql: &str) {
    diesel::connection::SimpleConnection::batch_execute(conn, sql).expect(sql);
}

fn count(conn: &mut diesel::PgConnection, sql: &str) -> i64 {
    text(conn, sql).expect(sql).parse().expect(sql)
}

#[test]
fn a_large_statement_logs_the_same_hstore_text_as_a_single_row_for_columns_of_every_kind() {
    let (_db, mut conn) = migrated();
    // Columns an app added, of types whose text a plain cast would get wrong (boolean `t`,
    // padded char, inet without /32, a domain, an enum, arrays), odd names (quoted, non-ASCII,
    // of equal lengths), a generated column and a dropped one.
    batch(
        &mut conn,
        "CREATE TYPE public.app_mood AS ENUM ('calm', 'busy');
         CREATE DOMAIN public.app_code AS varchar(12);
         ALTER TABLE salesforce.account
             ADD COLUMN app_flag boolean, ADD COLUMN app_pad char(5), ADD COLUMN app_addr inet,
             ADD COLUMN app_tags text[], ADD COLUMN app_doc jsonb, ADD COLUMN app_at timestamptz,
             ADD COLUMN app_day date, ADD COLUMN app_amount numeric(12, 2),
             ADD COLUMN app_span interval, ADD COLUMN app_bytes bytea,
             ADD COLUMN app_mood public.app_mood, ADD COLUMN app_code public.app_code,
             ADD COLUMN \"App Mixed\" text, ADD COLUMN \"Ω\" text, ADD COLUMN app_gone integer,
             ADD COLUMN n integer, ADD COLUMN o integer, ADD COLUMN r integer,
             ADD COLUMN app_twice integer GENERATED ALWAYS AS (n * 2) STORED;
         ALTER TABLE salesforce.account DROP COLUMN app_gone;",
    );
    let insert = |rows: u32, from: u32| {
        format!(
            "INSERT INTO salesforce.account (sfid, name, annualrevenue, isdeleted, createddate,
                 app_flag, app_pad, app_addr, app_tags, app_doc, app_at, app_day, app_amount,
                 app_span, app_bytes, app_mood, app_code, \"App Mixed\", \"Ω\", n, o, r)
             SELECT CASE WHEN g % 3 = 0 THEN NULL ELSE '001' || lpad(g::text, 15, '0') END,
                    'Row \"' || g || E'\" back\\\\slash, =>', g * 1.5, g % 2 = 0,
                    '2026-01-01'::timestamp + g * interval '1 minute', g % 4 = 0,
                    left('p' || g, 3), ('10.0.' || g % 256 || '.1')::inet,
                    ARRAY['a' || g, NULL, 'b\"c'], jsonb_build_object('k', g, 'q', 'x\"y'),
                    '2026-01-01 12:00:00+02'::timestamptz + g * interval '1 second',
                    '2026-01-01'::date + g, g / 7.0, g * interval '1 hour', '\\x00ff'::bytea,
                    (ARRAY['calm', 'busy'])[g % 2 + 1]::public.app_mood, 'code' || g,
                    CASE WHEN g % 5 = 0 THEN NULL ELSE 'mixed ' || g END, 'omega ' || g,
                    g, g + 1, NULL
             FROM generate_series({from}, {}) g",
            from + rows - 1
        )
    };
    let hstore =
        |alias: &str| format!("(public.hstore({alias}.*) - ARRAY['_hc_lastop', '_hc_err'])::text");
    let differing_inserts = format!(
        "SELECT count(*)::text AS value FROM salesforce._trigger_log l
         JOIN salesforce.account a ON a.id = l.record_id
         WHERE l.action = 'INSERT' AND l.\"values\" IS DISTINCT FROM {}",
        hstore("a")
    );

    // One row (the plain query) and a large statement: the same text as hstore(row).
    exec(&mut conn, &insert(1, 1));
    exec(&mut conn, &insert(LARGE, 2));
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*)::text AS value FROM salesforce._trigger_log"
        ),
        i64::from(LARGE) + 1
    );
    assert_eq!(count(&mut conn, &differing_inserts), 0);
    // The values as Postgres prints each column, whatever its type.
    let first = &trigger_log(&mut conn)[1];
    let values = first.values.as_ref().unwrap();
    assert_eq!(values["app_flag"], "f");
    assert_eq!(values["app_pad"], "p2   ");
    assert_eq!(values["app_addr"], "10.0.2.1");
    assert_eq!(values["Ω"], "omega 2");
    assert_eq!(values["app_twice"], "4");
    assert!(values.get("app_gone").is_none() && values.get("_hc_lastop").is_none());

    // An update of every row (a tenth of them to the same values: not logged), then a delete:
    // old rows and changed columns as hstore(OLD) and hstore(NEW) - hstore(OLD) give them.
    entries_sent_rows_synced(&mut conn);
    exec(
        &mut conn,
        "CREATE TEMP TABLE before AS
         SELECT id, public.hstore(a.*) - ARRAY['_hc_lastop', '_hc_err'] AS row
         FROM salesforce.account a",
    );
    exec(
        &mut conn,
        "UPDATE salesforce.account SET
             app_flag = CASE WHEN id % 10 = 0 THEN app_flag ELSE NOT app_flag END,
             app_tags = CASE WHEN id % 10 = 0 THEN app_tags WHEN id % 3 = 0 THEN NULL ELSE app_tags || 'more'::text END,
             \"Ω\" = CASE WHEN id % 10 = 0 THEN \"Ω\" ELSE 'Ω ' || id END",
    );
    let updated = count(
        &mut conn,
        "SELECT count(*)::text AS value FROM salesforce._trigger_log WHERE state = 'NEW'",
    );
    let no_ops = count(
        &mut conn,
        "SELECT count(*)::text AS value FROM salesforce.account WHERE id % 10 = 0",
    );
    assert_eq!(updated, i64::from(LARGE) + 1 - no_ops);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*)::text AS value FROM salesforce._trigger_log l
             JOIN salesforce.account a ON a.id = l.record_id JOIN before b ON b.id = a.id
             WHERE l.state = 'NEW' AND (l.action <> 'UPDATE'
                OR l.old IS DISTINCT FROM b.row::text
                OR l.\"values\" IS DISTINCT FROM ((public.hstore(a.*) - ARRAY['_hc_lastop', '_hc_err']) - b.row)::text)"
        ),
        0
    );
    let changed = trigger_log(&mut conn)
        .into_iter()
        .find(|r| r.state == "NEW")
        .unwrap();
    assert_eq!(keys(&changed.values), ["app_flag", "app_tags", "Ω"]);

    entries_sent(&mut conn);
    batch(&mut conn, "TRUNCATE before; INSERT INTO before SELECT id, public.hstore(a.*) - ARRAY['_hc_lastop', '_hc_err'] FROM salesforce.account a");
    exec(&mut conn, "DELETE FROM salesforce.account");
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*)::text AS value FROM salesforce._trigger_log l JOIN before b ON b.id = l.record_id
             WHERE l.action = 'DELETE' AND l.old = b.row::text
               AND l.state = CASE WHEN b.row -> 'sfid' IS NULL THEN 'IGNORE' ELSE 'NEW' END"
        ),
        i64::from(LARGE) + 1
    );

    // A column named like the update's pairing column: large updates fall back to the plain
    // query, with the same result.
    entries_sent(&mut conn);
    exec(
        &mut conn,
        "ALTER TABLE salesforce.account ADD COLUMN forcesync_ord integer",
    );
    exec(&mut conn, &insert(LARGE, 1));
    exec(
        &mut conn,
        "UPDATE salesforce.account SET forcesync_ord = 7, name = name || '!'",
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*)::text AS value FROM salesforce._trigger_log l
             JOIN salesforce.account a ON a.id = l.record_id
             WHERE l.state = 'NEW' AND l.action = 'UPDATE'
               AND l.\"values\" = public.hstore(ARRAY['name', 'forcesync_ord'], ARRAY[a.name, '7'])::text"
        ),
        i64::from(LARGE)
    );
}

#[test]
fn a_large_statement_by_a_role_that_may_not_call_a_columns_output_function_is_still_logged() {
    let (_db, mut conn) = migrated();
    // hstore(row) prints every column without a grant; a query naming hstore_out needs one.
    batch(
        &mut conn,
        "ALTER TABLE salesforce.account ADD COLUMN app_attrs public.hstore;
         REVOKE EXECUTE ON FUNCTION public.hstore_out(public.hstore) FROM PUBLIC;
         DO $$ BEGIN
             EXECUTE format('CREATE ROLE %I', current_database() || '_app');
             EXECUTE format('GRANT USAGE ON SCHEMA salesforce TO %I', current_database() || '_app');
             EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA salesforce TO %I', current_database() || '_app');
             EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA salesforce TO %I', current_database() || '_app');
             EXECUTE format('SET ROLE %I', current_database() || '_app');
         END $$;",
    );
    exec(
        &mut conn,
        &format!(
            "INSERT INTO salesforce.account (name, app_attrs)
             SELECT 'Attrs ' || g, public.hstore('k', g::text) FROM generate_series(1, {LARGE}) g"
        ),
    );
    batch(
        &mut conn,
        "RESET ROLE;
         DO $$ BEGIN
             EXECUTE format('DROP OWNED BY %I', current_database() || '_app');
             EXECUTE format('DROP ROLE %I', current_database() || '_app');
         END $$;",
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*)::text AS value FROM salesforce._trigger_log l
             JOIN salesforce.account a ON a.id = l.record_id
             WHERE l.\"values\" = (public.hstore(a.*) - ARRAY['_hc_lastop', '_hc_err'])::text
               AND l.\"values\" LIKE '%\"app_attrs\"=>\"\\\\\"k\\\\\"=>%'"
        ),
        i64::from(LARGE)
    );
}
