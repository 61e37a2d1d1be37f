//! Small helpers shared by the Postgres tests.

use diesel::pg::PgConnection;
use diesel::sql_types::{Integer, Jsonb, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use forcesync_tests::pg::TestDb;

/// A fresh database with every generated migration applied.
pub fn migrated() -> (TestDb, PgConnection) {
    let db = TestDb::new();
    let mut conn = db.conn();
    conn.run_pending_migrations(generated::MIGRATIONS)
        .expect("generated migrations apply");
    (db, conn)
}

/// One `_trigger_log` row.
#[derive(Debug, QueryableByName)]
pub struct LogRow {
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Text)]
    pub table_name: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub record_id: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub sfid: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub old: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub values: Option<serde_json::Value>,
}

/// Every `_trigger_log` row, oldest first, its `old` / `values` (Heroku Connect's hstore text)
/// read by Postgres' own `hstore` as JSON objects of text.
pub fn trigger_log(conn: &mut PgConnection) -> Vec<LogRow> {
    diesel::sql_query(
        "SELECT action, state, table_name, record_id, sfid, \
                hstore_to_jsonb(old::hstore) AS old, hstore_to_jsonb(\"values\"::hstore) AS \"values\" \
         FROM salesforce._trigger_log ORDER BY id",
    )
    .load(conn)
    .expect("read _trigger_log")
}

#[derive(Debug, QueryableByName)]
pub struct One {
    #[diesel(sql_type = Nullable<Text>)]
    pub value: Option<String>,
}

/// The single text value `sql` selects (as `value`).
pub fn text(conn: &mut PgConnection, sql: &str) -> Option<String> {
    let rows: Vec<One> = diesel::sql_query(sql).load(conn).expect(sql);
    rows.into_iter().next().and_then(|r| r.value)
}

/// The keys of a JSON object, sorted.
pub fn keys(value: &Option<serde_json::Value>) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_ref()
        .and_then(|v| v.as_object())
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}
