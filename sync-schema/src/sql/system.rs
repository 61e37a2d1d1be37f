//! Schema-wide objects, created by the first migration.
//!
//! * `_trigger_log` / `_trigger_log_archive`: Heroku Connect's columns, defaults and indexes
//!   (`old`/`values` are `jsonb` instead of hstore text).
//! * `tlog_notify_trigger()` + `tlog_insert_trigger`: `pg_notify('<schema>.hc_trigger_log', 'ping')`
//!   on every insert into `_trigger_log`, the writer's wake-up.
//! * `forcesync_status()`: the BEFORE trigger function. Application writes get
//!   `_hc_lastop = 'PENDING'` and `_hc_err = NULL`. Writes by the sync engine (a transaction that
//!   ran `SET LOCAL forcesync.engine = 'on'`) get `_hc_lastop = 'SYNCED'` unless the engine set
//!   `_hc_lastop` itself. An application update that changes nothing leaves both columns alone.
//! * `forcesync_logger()`: the AFTER trigger function, attached only to read-write tables and
//!   only for application writes. INSERT records the new row (minus `_hc_*`); UPDATE records the
//!   old row and only the changed columns, and a no-op update records nothing at all (rather than
//!   an `IGNORE` row as Heroku Connect does); DELETE records the old row and `sfid`, as `IGNORE`
//!   when the row never reached Salesforce (`sfid` is null).
//!
//! The engine's own tables (`_forcesync_*`: sync state, conflicts, ...) are not here: the engine
//! creates and versions them at run time, so they can evolve independently of the mappings.

use super::{qualified, quote_literal};

/// The setting that marks the sync engine's own writes.
pub const ENGINE_SETTING: &str = "forcesync.engine";

/// The NOTIFY channel the writer listens on: `<schema>.hc_trigger_log`.
pub fn notify_channel(schema: &str) -> String {
    format!("{schema}.hc_trigger_log")
}

/// The `WHEN` condition true for application (non-engine) writes.
pub fn application_write_condition() -> String {
    format!("coalesce(current_setting('{ENGINE_SETTING}', true), '') <> 'on'")
}

const LOG_COLUMNS: &str = "    id {id} PRIMARY KEY,
    txid bigint,
    created_at timestamptz{default},
    updated_at timestamptz{default},
    processed_at timestamptz,
    processed_tx bigint,
    state varchar(8),
    action varchar(7),
    table_name varchar(128),
    record_id integer,
    sfid varchar(18),
    old jsonb,
    \"values\" jsonb,
    sf_result integer,
    sf_message text";

/// `CREATE SCHEMA`, system tables, trigger functions.
pub fn up(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let archive = qualified(schema, "_trigger_log_archive");
    let notify = qualified(schema, "tlog_notify_trigger");
    let status = qualified(schema, "forcesync_status");
    let logger = qualified(schema, "forcesync_logger");
    let channel = quote_literal(&notify_channel(schema));
    // Archived rows keep the id they had in `_trigger_log`.
    let log_columns = LOG_COLUMNS
        .replace("{id}", "serial")
        .replace("{default}", " DEFAULT now()");
    let archive_columns = LOG_COLUMNS
        .replace("{id}", "integer")
        .replace("{default}", "");
    let schema_ident = super::quote_ident(schema);
    format!(
        r#"CREATE SCHEMA IF NOT EXISTS {schema_ident};

-- Application writes waiting for (or done by) the writer; Heroku Connect's layout.
CREATE TABLE {log} (
{log_columns}
);
CREATE INDEX _trigger_log_idx_created_at ON {log} (created_at);
CREATE INDEX _trigger_log_idx_state_id ON {log} (state, id);
CREATE INDEX _trigger_log_idx_state_table_name ON {log} (state, table_name)
    WHERE state IN ('NEW', 'PENDING');

-- Processed trigger log rows.
CREATE TABLE {archive} (
{archive_columns}
);
CREATE INDEX _trigger_log_archive_idx_created_at ON {archive} (created_at);
CREATE INDEX _trigger_log_archive_idx_record_id ON {archive} (record_id);
CREATE INDEX _trigger_log_archive_idx_state_table_name ON {archive} (state, table_name)
    WHERE state = 'FAILED';

-- Wakes the writer when application writes are captured.
CREATE FUNCTION {notify}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify({channel}, 'ping');
    RETURN NULL;
END;
$$;
CREATE TRIGGER tlog_insert_trigger AFTER INSERT ON {log}
    FOR EACH STATEMENT EXECUTE FUNCTION {notify}();

-- BEFORE INSERT OR UPDATE on every mapped table: maintains _hc_lastop and _hc_err.
CREATE FUNCTION {status}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('{ENGINE_SETTING}', true), '') = 'on' THEN
        IF TG_OP = 'INSERT' THEN
            NEW._hc_lastop := coalesce(NEW._hc_lastop, 'SYNCED');
        ELSIF NEW._hc_lastop IS NOT DISTINCT FROM OLD._hc_lastop THEN
            NEW._hc_lastop := 'SYNCED';
        END IF;
    ELSIF TG_OP = 'UPDATE'
        AND to_jsonb(NEW) - '_hc_lastop' - '_hc_err' = to_jsonb(OLD) - '_hc_lastop' - '_hc_err' THEN
        NULL; -- a no-op update: nothing to sync
    ELSE
        NEW._hc_lastop := 'PENDING';
        NEW._hc_err := NULL;
    END IF;
    RETURN NEW;
END;
$$;

-- AFTER INSERT OR UPDATE OR DELETE on read-write tables, for application writes only.
CREATE FUNCTION {logger}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    changed jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, "values")
        VALUES (txid_current(), clock_timestamp(), clock_timestamp(), 'NEW', 'INSERT', TG_TABLE_NAME,
                NEW.id, NEW.sfid, to_jsonb(NEW) - '_hc_lastop' - '_hc_err');
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        old_row := to_jsonb(OLD) - '_hc_lastop' - '_hc_err';
        SELECT jsonb_object_agg(n.key, n.value) INTO changed
        FROM jsonb_each(to_jsonb(NEW) - '_hc_lastop' - '_hc_err') AS n
        WHERE old_row -> n.key IS DISTINCT FROM n.value;
        IF changed IS NULL THEN
            RETURN NEW; -- a no-op update is not recorded
        END IF;
        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, "values")
        VALUES (txid_current(), clock_timestamp(), clock_timestamp(), 'NEW', 'UPDATE', TG_TABLE_NAME,
                NEW.id, NEW.sfid, old_row, changed);
        RETURN NEW;
    ELSE
        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old)
        VALUES (txid_current(), clock_timestamp(), clock_timestamp(),
                CASE WHEN OLD.sfid IS NULL THEN 'IGNORE' ELSE 'NEW' END, 'DELETE', TG_TABLE_NAME,
                OLD.id, OLD.sfid, to_jsonb(OLD) - '_hc_lastop' - '_hc_err');
        RETURN OLD;
    END IF;
END;
$$;
"#
    )
}

/// Reverses [`up`] (the schema itself is left in place: it may hold other objects).
pub fn down(schema: &str) -> String {
    let q = |name: &str| qualified(schema, name);
    format!(
        "DROP FUNCTION {logger}();
DROP FUNCTION {status}();
DROP TRIGGER tlog_insert_trigger ON {log};
DROP FUNCTION {notify}();
DROP TABLE {archive};
DROP TABLE {log};
",
        logger = q("forcesync_logger"),
        status = q("forcesync_status"),
        log = q("_trigger_log"),
        notify = q("tlog_notify_trigger"),
        archive = q("_trigger_log_archive"),
    )
}
