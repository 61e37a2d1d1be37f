//! The engine's own tables (`_forcesync_*` in the mapping schema) and their versioned migrations.
//!
//! The generated app migrations own the mapped tables, `_trigger_log` and `_trigger_log_archive`;
//! the engine owns everything it needs to remember (mapping state, read errors, conflicts, the
//! write journal). Those tables evolve with the engine, not with the mappings, so they have
//! migrations of their own: an ordered list of named SQL scripts, each applied once, recorded in
//! `<schema>._forcesync_system_migrations`, under a transaction-scoped advisory lock so that
//! several engines starting together apply each script exactly once.
//!
//! A new migration is appended to [`MIGRATIONS`]; released entries are never edited. Scripts use
//! `{schema}` for the mapping schema.

use tokio_postgres::GenericClient;

/// One named, append-only migration of the engine's system tables.
#[derive(Debug, Clone, Copy)]
pub struct SystemMigration {
    /// Unique, ordered name, e.g. `0001_mapping_state`.
    pub name: &'static str,
    /// SQL with `{schema}` standing for the mapping schema.
    pub sql: &'static str,
}

impl SystemMigration {
    /// The script for a mapping schema, its name quoted by the engine's one rule
    /// ([`quote_ident`]: upper case, reserved words).
    pub fn sql_for(&self, schema: &str) -> String {
        self.sql.replace("{schema}", &quote_ident(schema))
    }
}

/// Every system migration, in the order they are applied.
pub const MIGRATIONS: &[SystemMigration] = &[
    SystemMigration {
        name: "0001_mapping_state",
        sql: r#"
CREATE TABLE IF NOT EXISTS {schema}._forcesync_mapping_state (
    mapping varchar(128) PRIMARY KEY,
    table_name varchar(128) NOT NULL,
    state varchar(32) NOT NULL DEFAULT 'INITIAL',
    message text,
    -- Polling cursor: (SystemModstamp, Id) of the last record read in order.
    watermark_systemmodstamp timestamp,
    watermark_sfid varchar(18),
    -- Change Data Capture: the replay id of the last event applied (stored with its change).
    cdc_replay_id bigint,
    -- Where deletes were last reconciled through /deleted (and the full Id reconciliation).
    deleted_checked_until timestamp,
    full_reconcile_at timestamptz,
    formulas_refreshed_at timestamptz,
    -- When the initial load (or the last reload) committed; NULL: never loaded.
    loaded_at timestamptz,
    load_total bigint,
    load_done bigint NOT NULL DEFAULT 0,
    last_poll_at timestamptz,
    last_change_at timestamptz,
    -- Salesforce commit time of the last change applied, for lag.
    last_change_committed_at timestamptz,
    last_write_at timestamptz,
    last_error_at timestamptz,
    last_error text,
    records_read bigint NOT NULL DEFAULT 0,
    records_written bigint NOT NULL DEFAULT 0,
    write_errors bigint NOT NULL DEFAULT 0,
    api_calls_day date,
    api_calls jsonb NOT NULL DEFAULT '{}'::jsonb,
    paused boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"#,
    },
    SystemMigration {
        name: "0002_read_errors",
        sql: r#"
-- Salesforce records or change events the read side could not apply (value too long, wrong type,
-- malformed payload). The rest of the batch is applied; these are re-read once the cause is fixed.
CREATE TABLE IF NOT EXISTS {schema}._forcesync_read_errors (
    id bigserial PRIMARY KEY,
    mapping varchar(128) NOT NULL,
    sfid varchar(18),
    field varchar(255),
    reason text NOT NULL,
    payload jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    retried_at timestamptz,
    resolved_at timestamptz
);
CREATE INDEX IF NOT EXISTS _forcesync_read_errors_open
    ON {schema}._forcesync_read_errors (mapping, id) WHERE resolved_at IS NULL;
"#,
    },
    SystemMigration {
        name: "0003_conflicts",
        sql: r#"
-- Every field changed on both sides before the app's change reached Salesforce: both values and
-- what was decided. Nothing is overwritten silently.
CREATE TABLE IF NOT EXISTS {schema}._forcesync_conflicts (
    id bigserial PRIMARY KEY,
    mapping varchar(128) NOT NULL,
    sfid varchar(18),
    record_id integer,
    trigger_log_id integer,
    field varchar(255) NOT NULL,
    postgres_value jsonb,
    salesforce_value jsonb,
    policy varchar(32) NOT NULL,
    decision varchar(32) NOT NULL,
    postgres_changed_at timestamptz,
    salesforce_changed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS _forcesync_conflicts_mapping ON {schema}._forcesync_conflicts (mapping, id);
"#,
    },
    SystemMigration {
        name: "0004_write_journal",
        sql: r#"
-- The writer's in-flight writes (see engine::writer): persisted, in the transaction that claims the
-- trigger-log entries, before the Salesforce call, so that a crash or an ambiguous failure is
-- reconciled instead of resent blindly. One row per record: a record's next change waits.
CREATE TABLE IF NOT EXISTS {schema}._forcesync_write_journal (
    id bigserial PRIMARY KEY,
    mapping varchar(128) NOT NULL,
    table_name varchar(128) NOT NULL,
    record_id integer NOT NULL,
    kind varchar(8) NOT NULL,
    entry_ids integer[] NOT NULL,
    sfid varchar(18),
    external_id text,
    body jsonb NOT NULL,
    state varchar(16) NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    not_before timestamptz,
    sent_at timestamptz NOT NULL DEFAULT now(),
    last_error text
);
CREATE UNIQUE INDEX IF NOT EXISTS _forcesync_write_journal_record
    ON {schema}._forcesync_write_journal (table_name, record_id);
"#,
    },
    SystemMigration {
        name: "0005_org_limits",
        sql: r#"
-- The org's allocations the engine watches (`/limits`: DurableStreamingApiConcurrentClients,
-- DailyDeliveredPlatformEvents), as last read; `forcesync status` and `/metrics` show them.
CREATE TABLE IF NOT EXISTS {schema}._forcesync_org_limits (
    name varchar(128) PRIMARY KEY,
    max bigint NOT NULL,
    remaining bigint NOT NULL,
    read_at timestamptz NOT NULL DEFAULT now()
);
"#,
    },
    SystemMigration {
        name: "0006_pubsub_replay",
        sql: r#"
-- The Pub/Sub API's replay id of the last event applied: opaque bytes (CometD's stays in
-- cdc_replay_id; at most one of the two is set, by the transport that applied the event).
ALTER TABLE {schema}._forcesync_mapping_state ADD COLUMN IF NOT EXISTS cdc_replay_bytes bytea;
"#,
    },
    SystemMigration {
        name: "0007_streaming_transport",
        sql: r#"
-- The transport a streaming mapping's channel rides on (`pubsub`, `cometd`), as the engine last
-- subscribed it: `forcesync status` shows it.
ALTER TABLE {schema}._forcesync_mapping_state ADD COLUMN IF NOT EXISTS streaming_transport text;
"#,
    },
    SystemMigration {
        name: "0008_journal_waiting",
        sql: r#"
-- The journal's rows waiting for a retry or a reconciliation, found without reading the rest: the
-- writer looks for them every round, and after a burst of writes the journal's heap holds the
-- dead rows of every write sent (a scan took 40-85 ms a round until vacuum). Rows being sent
-- (`SENDING`, all but a few) are not in the index, so journaling a write costs nothing more.
CREATE INDEX IF NOT EXISTS _forcesync_write_journal_waiting
    ON {schema}._forcesync_write_journal (table_name, id) WHERE state <> 'SENDING';
"#,
    },
    SystemMigration {
        name: "0009_journal_body_json",
        sql: r#"
-- A journaled write's body is kept as the JSON text it is sent as (`json`, not `jsonb`): it is
-- written once for every write and read back only for a retry or a reconciliation, and building
-- a jsonb document of each body was 60-100 ms of every 10,000-write claim (`bench write`).
ALTER TABLE {schema}._forcesync_write_journal ALTER COLUMN body TYPE json USING body::json;
"#,
    },
    SystemMigration {
        name: "0010_write_batches",
        sql: r#"
-- The writer's writes in flight, one row per call's worth (a Bulk API job's share, an sObject
-- Collections chunk) instead of one journal row per record: journaling 10,000 writes as 10,000
-- rows (with two index entries each, and their deletion after the answer) was a quarter of the
-- writer's Postgres work beyond its floor (`bench write`). A row holds its writes as the journal
-- would (`writes`: a JSON array of {record_id, kind, entry_ids, sfid, external_id, body});
-- `record_ids` marks those records taken. A write that needs a retry or a reconciliation, or
-- every write of a row a previous process left behind, becomes a journal row of its own.
CREATE TABLE IF NOT EXISTS {schema}._forcesync_write_batch (
    id bigserial PRIMARY KEY,
    mapping varchar(128) NOT NULL,
    table_name varchar(128) NOT NULL,
    record_ids integer[] NOT NULL,
    creates boolean NOT NULL,
    writes json NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now()
);
-- Stored without compression, as a journal row's body is (rows under 2 kB are not compressed):
-- a row is written once and read back only after a crash.
ALTER TABLE {schema}._forcesync_write_batch ALTER COLUMN writes SET STORAGE EXTERNAL;
"#,
    },
];

/// Applies every system migration not yet applied; returns the names applied now.
///
/// Safe to call concurrently from several engines: a transaction-scoped advisory lock serialises
/// them and each script runs in the transaction that records it.
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let applied = migrate_in(&tx, schema).await?;
    tx.commit().await?;
    Ok(applied)
}

/// [`migrate`] inside the caller's transaction (adoption applies them with everything else).
pub async fn migrate_in(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
) -> Result<Vec<&'static str>, tokio_postgres::Error> {
    let schema_ident = quote_ident(schema);
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('forcesync:system-migrations'))",
        &[],
    )
    .await?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema_ident};
         CREATE TABLE IF NOT EXISTS {schema_ident}._forcesync_system_migrations (
             name varchar(128) PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await?;
    let done: Vec<String> = tx
        .query(
            &format!("SELECT name FROM {schema_ident}._forcesync_system_migrations"),
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get("name"))
        .collect();
    let mut applied = Vec::new();
    for migration in pending(&done) {
        tx.batch_execute(&migration.sql_for(schema)).await?;
        tx.execute(
            &format!("INSERT INTO {schema_ident}._forcesync_system_migrations (name) VALUES ($1)"),
            &[&migration.name],
        )
        .await?;
        applied.push(migration.name);
    }
    Ok(applied)
}

/// The migrations not in `done`, in order.
pub fn pending(done: &[String]) -> impl Iterator<Item = &'static SystemMigration> + '_ {
    MIGRATIONS
        .iter()
        .filter(move |m| !done.iter().any(|d| d == m.name))
}

/// Reverts the engine's system tables (used by `forcesync migrate --revert` after the app
/// migrations are reverted): drops every `_forcesync_*` table of the schema.
pub async fn revert<C: GenericClient>(
    client: &C,
    schema: &str,
) -> Result<(), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename LIKE '\\_forcesync\\_%'",
            &[&schema],
        )
        .await?;
    let schema_ident = quote_ident(schema);
    for row in rows {
        let table: String = row.get("tablename");
        client
            .batch_execute(&format!(
                "DROP TABLE IF EXISTS {schema_ident}.{} CASCADE",
                quote_ident(&table)
            ))
            .await?;
    }
    Ok(())
}

/// The one identifier-quoting rule (reserved words included), shared with the generated
/// migrations.
pub use sync_schema::ident::quote_ident;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_have_unique_ordered_names() {
        let names: Vec<_> = MIGRATIONS.iter().map(|m| m.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted, "names must be unique and in order");
    }

    #[test]
    fn only_missing_migrations_are_pending() {
        let done = vec!["0001_mapping_state".to_owned()];
        let pending: Vec<_> = pending(&done).map(|m| m.name).collect();
        assert!(!pending.contains(&"0001_mapping_state"));
        assert_eq!(pending.len(), MIGRATIONS.len() - 1);
    }

    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(quote_ident("salesforce"), "salesforce");
        assert_eq!(quote_ident("Sales Force"), "\"Sales Force\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1abc"), "\"1abc\"");
        assert_eq!(quote_ident("order"), "\"order\"", "a reserved word");
        assert_eq!(quote_ident("User"), "\"User\"");
    }

    #[test]
    fn a_schema_named_by_a_reserved_word_is_quoted_in_every_script() {
        for migration in MIGRATIONS {
            let sql = migration.sql_for("order");
            assert!(!sql.contains("{schema}"), "{}", migration.name);
            assert!(
                sql.contains("\"order\"._forcesync_"),
                "{}: {sql}",
                migration.name
            );
            assert!(!sql.contains(" order._forcesync_"), "{}", migration.name);
        }
    }
}
