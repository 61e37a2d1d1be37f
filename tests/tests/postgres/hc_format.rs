//! The trigger log in Heroku Connect's own format: `old` / `values` are `text` holding `hstore`
//! text (what Heroku Connect's client libraries parse), its capture functions exist with their
//! signatures and results, and a database of the earlier `jsonb` layout is converted in place.

use diesel::connection::Connection;
use diesel::RunQueryDsl;
use diesel_migrations::MigrationHarness;
use forcesync_tests::pg::TestDb;
use sync_runtime::adapter::hstore;

use crate::support::{keys, migrated, text, trigger_log};

fn exec(conn: &mut diesel::PgConnection, sql: &str) {
    diesel::sql_query(sql).execute(conn).expect(sql);
}

/// Values a Heroku Connect app stores every day, and the ones that break naive quoting.
const AWKWARD: &[&str] = &[
    "O\"Brien",
    "back\\slash\\",
    "a=>b",
    "one, two",
    "line one\nline two\r\n\tend",
    "Zoë · 東京 · 🚀",
    "NULL",
    "",
    "\\\"=>\"\\",
];

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[test]
fn old_and_values_are_text_columns_holding_hstore_text() {
    let (_db, mut conn) = migrated();
    let types = text(
        &mut conn,
        "SELECT string_agg(table_name || '.' || column_name || ' ' || data_type, ', ' \
                           ORDER BY table_name, column_name) AS value \
         FROM information_schema.columns WHERE table_schema = 'salesforce' \
           AND table_name IN ('_trigger_log', '_trigger_log_archive') AND column_name IN ('old', 'values')",
    );
    assert_eq!(
        types.as_deref(),
        Some(
            "_trigger_log.old text, _trigger_log.values text, \
             _trigger_log_archive.old text, _trigger_log_archive.values text"
        )
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce.account (name, industry, annualrevenue, numberofemployees) \
         VALUES ('Acme', 'Banking', 1.5, 12)",
    );
    // The whole row, nulls included, without _hc_lastop / _hc_err: exactly Heroku Connect's
    // `hstore(NEW.*) - excluded_cols`.
    let same = text(
        &mut conn,
        "SELECT (l.\"values\" = (hstore(a.*) - ARRAY['_hc_lastop', '_hc_err'])::text)::text AS value \
         FROM salesforce._trigger_log l JOIN salesforce.account a ON a.id = l.record_id",
    );
    assert_eq!(same.as_deref(), Some("true"));
    let values = text(
        &mut conn,
        "SELECT \"values\" AS value FROM salesforce._trigger_log",
    )
    .unwrap();
    let pairs = hstore::parse(&values).unwrap();
    let get = |k: &str| pairs.iter().find(|(c, _)| c == k).map(|(_, v)| v.clone());
    assert_eq!(get("name"), Some(Some("Acme".to_owned())));
    assert_eq!(get("annualrevenue"), Some(Some("1.5".to_owned())));
    assert_eq!(get("phone"), Some(None), "a null column is `NULL`");
    assert_eq!(get("_hc_lastop"), None);
    assert_eq!(get("_hc_err"), None);
}

#[test]
fn awkward_values_round_trip_through_capture_and_the_parser() {
    let (_db, mut conn) = migrated();
    for (i, value) in AWKWARD.iter().enumerate() {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO salesforce.account (sfid, name, description) \
                 VALUES ('001000000000{i:03}AAA', {v}, {v})",
                v = literal(value)
            ),
        );
        exec(
            &mut conn,
            &format!(
                "UPDATE salesforce.account SET description = {v} || '!', phone = NULL, website = {v} \
                 WHERE sfid = '001000000000{i:03}AAA'",
                v = literal(value)
            ),
        );
    }
    #[derive(diesel::QueryableByName)]
    struct Entry {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        old: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        values: Option<String>,
    }
    let entries: Vec<Entry> = diesel::sql_query(
        "SELECT action, old, \"values\" FROM salesforce._trigger_log ORDER BY id",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(entries.len(), AWKWARD.len() * 2);
    for (i, value) in AWKWARD.iter().enumerate() {
        let insert = &entries[2 * i];
        let update = &entries[2 * i + 1];
        assert_eq!(
            (insert.action.as_str(), update.action.as_str()),
            ("INSERT", "UPDATE")
        );
        let inserted = hstore::parse(insert.values.as_deref().unwrap()).unwrap();
        let of = |pairs: &[hstore::Pair], k: &str| {
            pairs
                .iter()
                .find(|(c, _)| c == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(of(&inserted, "name").as_deref(), Some(*value), "{value:?}");
        assert_eq!(of(&inserted, "description").as_deref(), Some(*value));
        let changed = hstore::parse(update.values.as_deref().unwrap()).unwrap();
        let mut columns: Vec<&str> = changed.iter().map(|(c, _)| c.as_str()).collect();
        columns.sort();
        // `phone` was already NULL: not a change.
        assert_eq!(columns, ["description", "website"], "{value:?}");
        assert_eq!(
            of(&changed, "description"),
            Some(format!("{value}!")),
            "{value:?}"
        );
        let old = hstore::parse(update.old.as_deref().unwrap()).unwrap();
        assert_eq!(of(&old, "description").as_deref(), Some(*value));
        assert!(old.iter().any(|(c, v)| c == "website" && v.is_none()));
        // And what the writer would render reads back in Postgres' hstore unchanged.
        let rendered = hstore::render(inserted.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
        let same = text(
            &mut conn,
            &format!(
                "SELECT ({r}::hstore = {t}::hstore)::text AS value",
                r = literal(&rendered),
                t = literal(insert.values.as_deref().unwrap())
            ),
        );
        assert_eq!(same.as_deref(), Some("true"), "{rendered}");
    }
}

#[test]
fn heroku_connects_capture_functions_enqueue_with_its_signatures_and_results() {
    let (_db, mut conn) = migrated();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        exec(conn, "SET LOCAL forcesync.engine = 'on'");
        exec(
            conn,
            "INSERT INTO salesforce.account (sfid, name, phone, website) \
             VALUES ('001000000000001AAA', 'Synced', '1', 'https://example.com'), (NULL, 'Local', NULL, NULL)",
        );
        exec(
            conn,
            "INSERT INTO salesforce.opportunity (name, stagename) VALUES ('Deal', 'Prospecting')",
        );
        Ok(())
    })
    .unwrap();
    assert!(
        trigger_log(&mut conn).is_empty(),
        "engine writes are not captured"
    );

    // Heroku Connect's signatures, as its libraries call them (defaults included).
    let signatures = text(
        &mut conn,
        "SELECT string_agg(p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' \
                           || pg_get_function_result(p.oid), '; ' ORDER BY p.proname) AS value \
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'salesforce' AND p.proname LIKE 'hc_capture_%'",
    );
    assert_eq!(
        signatures.as_deref(),
        Some(
            "hc_capture_insert_from_row(source_row hstore, table_name character varying, \
             excluded_cols text[] DEFAULT ARRAY[]::text[]) integer; \
             hc_capture_update_from_row(source_row hstore, table_name character varying, \
             columns_to_include text[] DEFAULT ARRAY[]::text[]) integer"
        )
    );

    let inserted = text(
        &mut conn,
        "SELECT salesforce.hc_capture_insert_from_row(hstore(a.*), 'account')::text AS value \
         FROM salesforce.account a WHERE name = 'Local'",
    );
    let updated = text(
        &mut conn,
        "SELECT salesforce.hc_capture_update_from_row(hstore(a.*), 'account', ARRAY['phone'])::text AS value \
         FROM salesforce.account a WHERE name = 'Synced'",
    );
    let whole = text(
        &mut conn,
        "SELECT salesforce.hc_capture_update_from_row(hstore(a.*), 'account')::text AS value \
         FROM salesforce.account a WHERE name = 'Synced'",
    );
    let excluding = text(
        &mut conn,
        "SELECT salesforce.hc_capture_insert_from_row(hstore(a.*), 'account', ARRAY['phone', 'id', 'sfid'])::text AS value \
         FROM salesforce.account a WHERE name = 'Local'",
    );
    let read_only = text(
        &mut conn,
        "SELECT salesforce.hc_capture_update_from_row(hstore(o.*), 'opportunity')::text AS value \
         FROM salesforce.opportunity o",
    );
    // A row without an id enqueues nothing.
    let no_id = text(
        &mut conn,
        "SELECT coalesce(salesforce.hc_capture_insert_from_row(hstore(ARRAY['name'], ARRAY['x']), 'account')::text, 'null') \
         || ',' || coalesce(salesforce.hc_capture_update_from_row(hstore(ARRAY['name'], ARRAY['x']), 'account')::text, 'null') AS value",
    );
    assert_eq!(no_id.as_deref(), Some("null,null"));

    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 5);
    let ids: Vec<String> = text(
        &mut conn,
        "SELECT string_agg(id::text, ',' ORDER BY id) AS value FROM salesforce._trigger_log",
    )
    .unwrap()
    .split(',')
    .map(str::to_owned)
    .collect();
    assert_eq!(
        ids,
        [&inserted, &updated, &whole, &excluding, &read_only]
            .iter()
            .map(|v| v.as_deref().unwrap().to_owned())
            .collect::<Vec<_>>(),
        "each call returns its entry's id"
    );

    let (insert, update, whole, excluding, read_only) =
        (&log[0], &log[1], &log[2], &log[3], &log[4]);
    assert_eq!(
        (insert.action.as_str(), insert.state.as_str()),
        ("INSERT", "NEW")
    );
    assert_eq!(insert.values.as_ref().unwrap()["name"], "Local");
    assert!(insert.values.as_ref().unwrap().get("id").is_some());
    assert!(insert.values.as_ref().unwrap().get("_hc_lastop").is_none());
    assert_eq!(
        (update.action.as_str(), update.state.as_str()),
        ("UPDATE", "NEW")
    );
    assert_eq!(update.sfid.as_deref(), Some("001000000000001AAA"));
    assert_eq!(keys(&update.values), ["phone"], "only the included columns");
    assert!(update.old.is_none());
    assert!(
        keys(&whole.values).contains(&"website".to_owned()),
        "no list: the whole row"
    );
    assert!(!keys(&whole.values).contains(&"_hc_err".to_owned()));
    // `id` and `sfid` are never excluded from an insert.
    let kept = keys(&excluding.values);
    assert!(kept.contains(&"id".to_owned()) && kept.contains(&"sfid".to_owned()));
    assert!(!kept.contains(&"phone".to_owned()));
    assert_eq!(
        (read_only.table_name.as_str(), read_only.state.as_str()),
        ("opportunity", "READONLY"),
        "a read-only mapping's entry is never sent"
    );

    // A table that is not there is an error, not an entry nobody sends.
    let err = diesel::sql_query(
        "SELECT salesforce.hc_capture_insert_from_row(hstore(ARRAY['id'], ARRAY['1']), 'acount')",
    )
    .execute(&mut conn)
    .unwrap_err()
    .to_string();
    assert!(err.contains("no table salesforce.acount"), "{err}");
}

#[test]
fn the_migrations_say_what_to_do_when_the_role_may_not_create_hstore() {
    let db = TestDb::new();
    let mut admin = db.conn();
    let role = format!("forcesync_app_{}", std::process::id());
    exec(&mut admin, &format!("DROP ROLE IF EXISTS {role}"));
    exec(
        &mut admin,
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'app'"),
    );
    let dbname = text(&mut admin, "SELECT current_database()::text AS value").unwrap();
    exec(
        &mut admin,
        &format!("GRANT CREATE ON DATABASE {dbname} TO {role}"),
    );
    // Its own schema (first on the default search path) for diesel's bookkeeping table.
    exec(
        &mut admin,
        &format!("CREATE SCHEMA {role} AUTHORIZATION {role}"),
    );
    let url = role_url(&db.url, &role, "app");
    let mut app = diesel::PgConnection::establish(&url).expect("connect as the app role");
    // The app's role created the tables with an earlier forcesync (its first migrations), and
    // may no longer create anything in the database: hstore (a trusted extension) needs that.
    app.run_next_migration(generated::MIGRATIONS).unwrap();
    app.run_next_migration(generated::MIGRATIONS).unwrap();
    exec(
        &mut admin,
        &format!("REVOKE CREATE ON DATABASE {dbname} FROM {role}"),
    );
    let err = app
        .run_pending_migrations(generated::MIGRATIONS)
        .expect_err("the role may not create hstore")
        .to_string();
    assert!(
        err.contains(&format!("role {role} may not create it"))
            && err.contains("CREATE EXTENSION hstore WITH SCHEMA public"),
        "{err}"
    );
    // Once the owner has created it, the same role migrates.
    exec(&mut admin, "CREATE EXTENSION hstore WITH SCHEMA public");
    app.run_pending_migrations(generated::MIGRATIONS)
        .expect("migrates once hstore exists");
    drop(app);
    exec(&mut admin, &format!("DROP OWNED BY {role} CASCADE"));
    exec(&mut admin, &format!("DROP ROLE {role}"));
}

/// `url` with another user and password.
fn role_url(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

#[test]
fn the_migration_of_an_existing_database_converts_its_entries_losing_none() {
    let db = TestDb::new();
    let mut conn = db.conn();
    // The database as the earlier forcesync left it: its first migrations, jsonb payloads.
    conn.run_next_migration(generated::MIGRATIONS).unwrap();
    conn.run_next_migration(generated::MIGRATIONS).unwrap();
    let layout = text(
        &mut conn,
        "SELECT data_type::text AS value FROM information_schema.columns \
         WHERE table_schema = 'salesforce' AND table_name = '_trigger_log' AND column_name = 'values'",
    );
    assert_eq!(layout.as_deref(), Some("jsonb"));
    for (i, value) in AWKWARD.iter().enumerate() {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO salesforce.account (sfid, name, description, annualrevenue, numberofemployees, \
                                                 systemmodstamp, isdeleted) \
                 VALUES ('001000000000{i:03}AAA', {v}, {v}, 1.25, 7, '2024-01-02 03:04:05.123', false)",
                v = literal(value)
            ),
        );
    }
    exec(
        &mut conn,
        "UPDATE salesforce.account SET phone = '555', isdeleted = true, annualrevenue = 2.5 \
         WHERE sfid = '001000000000000AAA'",
    );
    exec(
        &mut conn,
        "DELETE FROM salesforce.account WHERE sfid = '001000000000001AAA'",
    );
    // Processed entries in the archive, and one written by hand that is not a row at all.
    exec(
        &mut conn,
        "WITH moved AS (DELETE FROM salesforce._trigger_log WHERE id IN (1, 2) RETURNING *) \
         INSERT INTO salesforce._trigger_log_archive SELECT * FROM moved",
    );
    exec(
        &mut conn,
        "INSERT INTO salesforce._trigger_log (state, action, table_name, record_id, \"values\") \
         VALUES ('NEW', 'UPDATE', 'account', 3, '[1, 2]')",
    );
    let before = text(
        &mut conn,
        "SELECT (SELECT count(*) FROM salesforce._trigger_log) || '/' || \
                (SELECT count(*) FROM salesforce._trigger_log_archive) AS value",
    );

    conn.run_pending_migrations(generated::MIGRATIONS).unwrap();

    let after = text(
        &mut conn,
        "SELECT (SELECT count(*) FROM salesforce._trigger_log) || '/' || \
                (SELECT count(*) FROM salesforce._trigger_log_archive) AS value",
    );
    assert_eq!(after, before, "no entry lost");
    // Every captured insert reads exactly as Heroku Connect's trigger would have written it.
    let exact = text(
        &mut conn,
        "SELECT count(*)::text AS value FROM ( \
             SELECT record_id, \"values\" FROM salesforce._trigger_log WHERE action = 'INSERT' AND record_id > 1 \
             UNION ALL SELECT record_id, \"values\" FROM salesforce._trigger_log_archive WHERE action = 'INSERT' AND record_id > 1) l \
         JOIN salesforce.account a ON a.id = l.record_id \
         WHERE l.\"values\"::hstore = hstore(a.*) - ARRAY['_hc_lastop', '_hc_err']",
    );
    // Rows 2.. were not changed after their insert (row 2 was deleted: 3 .. n remain).
    assert_eq!(exact, Some((AWKWARD.len() - 2).to_string()));
    // The update: old row and changed columns, typed as Postgres prints them.
    let update = text(
        &mut conn,
        "SELECT (\"values\"::hstore -> 'phone') || '|' || (\"values\"::hstore -> 'isdeleted') || '|' || \
                (\"values\"::hstore -> 'annualrevenue') || '|' || (old::hstore -> 'isdeleted') || '|' || \
                (old::hstore -> 'systemmodstamp') || '|' || coalesce(old::hstore -> 'phone', 'NULL') AS value \
         FROM salesforce._trigger_log WHERE action = 'UPDATE' AND old IS NOT NULL",
    );
    assert_eq!(
        update.as_deref(),
        Some("555|t|2.5|f|2024-01-02 03:04:05.123|NULL")
    );
    let delete = text(
        &mut conn,
        "SELECT old::hstore -> 'name' AS value FROM salesforce._trigger_log WHERE action = 'DELETE'",
    );
    assert_eq!(delete.as_deref(), Some(AWKWARD[1]));
    let kept = text(
        &mut conn,
        "SELECT \"values\" AS value FROM salesforce._trigger_log WHERE record_id = 3 AND action = 'UPDATE' AND old IS NULL",
    );
    assert_eq!(
        kept.as_deref(),
        Some("[1, 2]"),
        "a payload that is not a row is kept as it was"
    );

    // New writes are captured in the new format, and the migration reverts.
    exec(
        &mut conn,
        "UPDATE salesforce.account SET phone = '556' WHERE sfid = '001000000000000AAA'",
    );
    let last = text(
        &mut conn,
        "SELECT \"values\" AS value FROM salesforce._trigger_log ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(last.as_deref(), Some("\"phone\"=>\"556\""));
    // The migrations revert: the pending triggers dropped, the logger back to sorting each row's
    // keys, the status triggers back to a call on every row, statement-level capture back to the
    // row-level trigger (each captures the same), then hstore text back to jsonb.
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    exec(
        &mut conn,
        "UPDATE salesforce.account SET phone = '557' WHERE sfid = '001000000000000AAA'",
    );
    let last = text(
        &mut conn,
        "SELECT \"values\" AS value FROM salesforce._trigger_log ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(last.as_deref(), Some("\"phone\"=>\"557\""));
    conn.revert_last_migration(generated::MIGRATIONS).unwrap();
    let reverted = text(
        &mut conn,
        "SELECT \"values\"::text AS value FROM salesforce._trigger_log ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(reverted.as_deref(), Some("{\"phone\": \"557\"}"));
}
