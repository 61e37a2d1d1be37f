//! Schema-wide objects, created by the first migration (and brought up to date by later ones).
//!
//! * The `hstore` extension (in `public`, as Heroku Connect has it), created when missing; a
//!   clear error says what to do when the role may not create it or the server lacks it.
//! * `_trigger_log` / `_trigger_log_archive`: Heroku Connect's columns, defaults and indexes;
//!   `old` and `values` are `text` holding `hstore` text of the row without `_hc_lastop` /
//!   `_hc_err`, exactly as Heroku Connect writes them (the writer reads them with
//!   `sync_runtime::adapter::hstore`).
//! * `tlog_notify_trigger()` + `tlog_insert_trigger`: `pg_notify('<schema>.hc_trigger_log', 'ping')`
//!   on every insert into `_trigger_log`, the writer's wake-up.
//! * `forcesync_status()`: the BEFORE trigger function. Application writes get
//!   `_hc_lastop = 'PENDING'` and `_hc_err = NULL`. Writes by the sync engine (a transaction that
//!   ran `SET LOCAL forcesync.engine = 'on'`) get `_hc_lastop = 'SYNCED'` unless the engine set
//!   `_hc_lastop` itself. An application update that changes nothing leaves both columns alone.
//!   Each table's `hc_<t>_status_trigger` calls it only where it could change the row
//!   ([`status_condition`]): an application write of a row already `PENDING` without an error
//!   (with `_hc_lastop DEFAULT 'PENDING'`, every plain application `INSERT`) skips the call.
//! * `forcesync_pending()`: the BEFORE UPDATE trigger function of each table's
//!   `hc_<t>_pending_trigger`, which gives an application's update of a row not yet `PENDING`
//!   (synced, failed) `_hc_lastop = 'PENDING'` and `_hc_err = NULL`, and nothing else. Its `WHEN`
//!   ([`pending_condition`]) holds exactly where `forcesync_status()` would do that: an
//!   application update that changes a column but leaves `_hc_lastop` / `_hc_err` as they were.
//!   It fires before `hc_<t>_status_trigger` (triggers fire in name order), whose `WHEN` is then
//!   false: the common update costs a three-line call instead of the status function's no-op
//!   check, which the `WHEN` does in C. Every other update still goes to `forcesync_status()`.
//! * `forcesync_logger()`: the AFTER statement-level trigger function, attached only to
//!   read-write tables and only for application writes, reading the statement's rows from its
//!   transition tables (`forcesync_old` / `forcesync_new`) and logging them with one
//!   `INSERT … SELECT` per statement, in the statement's row order. INSERT records the new row in
//!   `values`; UPDATE records the old row in `old` and only the changed columns in `values`
//!   (`hstore(NEW) - hstore(OLD)`), and a no-op update records nothing at all (rather than an
//!   `IGNORE` row as Heroku Connect does); DELETE records the old row in `old` and its `sfid`, as
//!   `IGNORE` when the row never reached Salesforce (`sfid` is null). A statement touching no
//!   row logs nothing. A statement of [`SORTED_KEYS_MIN_ROWS`] rows or more builds the same text
//!   from the table's columns listed in hstore's key order, sparing a sort of every row's keys. Postgres allows transition tables only on single-event triggers, so a
//!   table has three: `hc_<t>_logtrigger` (INSERT, Heroku Connect's name), and
//!   `hc_<t>_logtrigger_update` / `hc_<t>_logtrigger_delete`, which log nothing while
//!   `hc_<t>_logtrigger` is disabled (`ALTER TABLE … DISABLE TRIGGER hc_<t>_logtrigger` stops
//!   capture on that table, as it does under Heroku Connect).
//! * `hc_capture_insert_from_row(hstore, varchar, text[])` and
//!   `hc_capture_update_from_row(hstore, varchar, text[])`: Heroku Connect's functions that
//!   enqueue a row again (its signatures, defaults and results: the new entry's id, NULL for a
//!   row without `id`).
//!
//! [`SYSTEM_VERSION`] numbers these objects' layout; it is stored in each migration's snapshot,
//! and a project whose last migration has an older one gets an [`upgrade_up`] step (version 1:
//! `jsonb` payloads, converted entry by entry; version 2: one row-level capture trigger per
//! table, replaced by the statement-level ones; version 3: status triggers called on every row,
//! given their `WHEN` and `_hc_lastop` its default; version 4: each row's hstore keys sorted
//! row by row, replaced by the logger listing a large statement's columns in their order;
//! version 5: every application update through the status function, now joined by the pending
//! trigger).
//!
//! The engine's own tables (`_forcesync_*`: sync state, conflicts, ...) are not here: the engine
//! creates and versions them at run time, so they can evolve independently of the mappings.

use super::{qualified, quote_literal};

/// The layout of the schema-wide objects: 1 stored `jsonb` payloads, 2 Heroku Connect's
/// `hstore` text and its capture functions, 3 statement-level capture triggers, 4 status
/// triggers called only where they change the row (`_hc_lastop DEFAULT 'PENDING'`), 5 large
/// statements logged without a sort of each row's keys, 6 an application's update of a synced row
/// marked `PENDING` by the pending trigger.
pub const SYSTEM_VERSION: u32 = 6;

/// The transition table holding a statement's new rows (INSERT, UPDATE).
pub const NEW_ROWS: &str = "forcesync_new";
/// The transition table holding a statement's old rows (UPDATE, DELETE).
pub const OLD_ROWS: &str = "forcesync_old";

/// The setting that marks the sync engine's own writes.
pub const ENGINE_SETTING: &str = "forcesync.engine";

pub use crate::model::notify_channel;

/// The `WHEN` condition true for application (non-engine) writes.
pub fn application_write_condition() -> String {
    format!("coalesce(current_setting('{ENGINE_SETTING}', true), '') <> 'on'")
}

/// `_hc_lastop`'s default: what the status trigger gives an application's new row, so that a
/// plain application `INSERT` needs no call of it.
pub const LASTOP_DEFAULT: &str = "'PENDING'";

/// The status trigger's `WHEN` condition: false exactly where `forcesync_status()` would leave
/// the row as it is, an application write of a row `PENDING` without an error (an engine write
/// always calls it). A plpgsql call per row was a third of a plain `INSERT`'s capture cost.
pub fn status_condition() -> String {
    format!(
        "{} OR current_setting('{ENGINE_SETTING}', true) = 'on'",
        not_pending()
    )
}

/// True for a row that is not `PENDING` without an error: one the status function (or the
/// pending trigger) would change on an application write.
fn not_pending() -> String {
    format!("NEW._hc_lastop IS DISTINCT FROM {LASTOP_DEFAULT} OR NEW._hc_err IS NOT NULL")
}

/// The pending trigger's `WHEN` condition: an application update that changes a column of a row
/// not `PENDING` (or with an error) and leaves `_hc_lastop` and `_hc_err` as they were, the one
/// case where `forcesync_status()` sets both and nothing else. The rows are compared by their
/// stored bytes (`*=`, as the status function does), last, where the cheaper tests passed.
pub fn pending_condition() -> String {
    format!(
        "NEW._hc_lastop IS NOT DISTINCT FROM OLD._hc_lastop AND NEW._hc_err IS NOT DISTINCT FROM OLD._hc_err \
         AND ({not_pending}) AND {application} AND NOT (NEW OPERATOR(pg_catalog.*=) OLD)",
        not_pending = not_pending(),
        application = application_write_condition()
    )
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
    old text,
    \"values\" text,
    sf_result integer,
    sf_message text";

/// Creates `hstore` in `public` when it is missing, or says plainly what to do.
const HSTORE_EXTENSION: &str = r#"-- Heroku Connect's trigger log holds hstore text, and its capture functions take hstore.
DO $ext$
DECLARE
    installed_in name;
BEGIN
    SELECT n.nspname INTO installed_in
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'hstore';
    IF installed_in IS NULL THEN
        BEGIN
            CREATE EXTENSION hstore WITH SCHEMA public;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'forcesync needs the Postgres extension hstore (Heroku Connect''s trigger-log format), and role % may not create it: have the database owner or a superuser run `CREATE EXTENSION hstore WITH SCHEMA public;` in database %, then run the migrations again', current_user, current_database();
            WHEN undefined_file OR feature_not_supported THEN
                RAISE EXCEPTION 'forcesync needs the Postgres extension hstore, and this Postgres server does not have it installed: install the server''s contrib modules (Debian/Ubuntu: apt-get install postgresql-contrib; RHEL: postgresqlNN-contrib; every hosted Postgres has them), then run the migrations again';
            WHEN invalid_schema_name THEN
                RAISE EXCEPTION 'forcesync installs the Postgres extension hstore in schema public, and database % has no schema public: have its owner run `CREATE SCHEMA public;` (or `CREATE EXTENSION hstore WITH SCHEMA public;`), then run the migrations again', current_database();
        END;
    ELSIF installed_in <> 'public' THEN
        RAISE EXCEPTION 'forcesync expects the Postgres extension hstore in schema public (as Heroku Connect has it), and it is installed in schema %: run `ALTER EXTENSION hstore SET SCHEMA public;`, then run the migrations again', installed_in;
    END IF;
END
$ext$;
"#;

fn log_columns() -> (String, String) {
    // Archived rows keep the id they had in `_trigger_log`.
    let log_columns = LOG_COLUMNS
        .replace("{id}", "serial")
        .replace("{default}", " DEFAULT now()");
    let archive_columns = LOG_COLUMNS
        .replace("{id}", "integer")
        .replace("{default}", "");
    (log_columns, archive_columns)
}

/// `CREATE SCHEMA`, the `hstore` extension, system tables, trigger and capture functions.
pub fn up(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let archive = qualified(schema, "_trigger_log_archive");
    let notify = qualified(schema, "tlog_notify_trigger");
    let channel = quote_literal(&notify_channel(schema));
    let (log_columns, archive_columns) = log_columns();
    let status_function = status_function(schema);
    let pending_function = pending_function(schema);
    let schema_ident = super::quote_ident(schema);
    let logger = logger_function(schema);
    let capture = capture_functions(schema);
    format!(
        r#"CREATE SCHEMA IF NOT EXISTS {schema_ident};

{HSTORE_EXTENSION}
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

{status_function}
{pending_function}
{logger}
{capture}"#
    )
}

/// `CREATE OR REPLACE` of the BEFORE trigger function maintaining `_hc_lastop` / `_hc_err`. An
/// engine insert that leaves `_hc_lastop` to its default (`PENDING`) gets `SYNCED`.
fn status_function(schema: &str) -> String {
    status_function_of(schema, true)
}

/// Version 3's status function (an engine insert keeps an explicit `PENDING`), restored when
/// version 4 is rolled back.
fn status_function_v3(schema: &str) -> String {
    status_function_of(schema, false)
}

fn status_function_of(schema: &str, pending_is_default: bool) -> String {
    let engine_insert = if pending_is_default {
        format!(
            "CASE WHEN NEW._hc_lastop IS NULL OR NEW._hc_lastop = {LASTOP_DEFAULT} THEN 'SYNCED' ELSE NEW._hc_lastop END"
        )
    } else {
        "coalesce(NEW._hc_lastop, 'SYNCED')".to_owned()
    };
    let status = qualified(schema, "forcesync_status");
    format!(
        r#"-- BEFORE INSERT OR UPDATE on every mapped table: maintains _hc_lastop and _hc_err.
CREATE OR REPLACE FUNCTION {status}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lastop varchar;
    err text;
BEGIN
    IF coalesce(current_setting('{ENGINE_SETTING}', true), '') = 'on' THEN
        IF TG_OP = 'INSERT' THEN
            NEW._hc_lastop := {engine_insert};
        ELSIF NEW._hc_lastop IS NOT DISTINCT FROM OLD._hc_lastop THEN
            NEW._hc_lastop := 'SYNCED';
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- A no-op update (nothing but _hc_lastop / _hc_err changed) has nothing to sync: both
        -- stay as the statement set them. The rows are compared by their stored bytes (`*=`:
        -- any column type, NULLs equal), a fraction of the cost of building documents of them.
        lastop := NEW._hc_lastop;
        err := NEW._hc_err;
        NEW._hc_lastop := OLD._hc_lastop;
        NEW._hc_err := OLD._hc_err;
        IF NEW OPERATOR(pg_catalog.*=) OLD THEN
            NEW._hc_lastop := lastop;
            NEW._hc_err := err;
            RETURN NEW;
        END IF;
    END IF;
    NEW._hc_lastop := 'PENDING';
    NEW._hc_err := NULL;
    RETURN NEW;
END;
$$;
"#
    )
}

/// `CREATE OR REPLACE` of the BEFORE UPDATE trigger function of the pending triggers: what
/// `forcesync_status()` does to an application's update, for the rows [`pending_condition`]
/// passes, without its checks.
fn pending_function(schema: &str) -> String {
    let pending = qualified(schema, "forcesync_pending");
    format!(
        r#"-- BEFORE UPDATE on every mapped table, where its WHEN found an application's change to a row not
-- yet PENDING: marks it PENDING, its error cleared (forcesync_status() handles every other write).
CREATE OR REPLACE FUNCTION {pending}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW._hc_lastop := 'PENDING';
    NEW._hc_err := NULL;
    RETURN NEW;
END;
$$;
"#
    )
}

/// The comment heading every version of the statement-level logger.
const LOGGER_HEADER: &str = "-- AFTER INSERT / UPDATE / DELETE FOR EACH STATEMENT on read-write tables, for application writes
-- only: the statement's rows (its transition tables) as Heroku Connect's hstore text, without
-- _hc_lastop and _hc_err, one log insert per statement, in the statement's row order. (No JIT:
-- Postgres cannot estimate the pairing of an update's rows and would compile for seconds.)
";

/// The statement-level logger refuses to run as a row trigger (a database migrated halfway).
const LEVEL_GUARD: &str = "    IF TG_LEVEL <> 'STATEMENT' THEN
        RAISE EXCEPTION 'forcesync_logger() is a statement-level trigger function (trigger % on %)', TG_NAME, TG_TABLE_NAME
            USING HINT = 'run forcesync''s migrations: they replace the row-level capture triggers';
    END IF;
";

/// The handler of a large statement's listed-columns query: the plain query runs after it.
const FALLBACK: &str = "            EXCEPTION WHEN OTHERS THEN
                -- (e.g. a column type whose output function this role may not call)
                RAISE WARNING 'forcesync_logger on %: % (logged through hstore(row) instead)', TG_TABLE_NAME, SQLERRM;
";

/// The plain log statements (INSERT, UPDATE, DELETE) over the transition tables, each row's
/// hstore built by `hstore(row)`: all of versions 3 and 4, and version 5's for small statements.
fn plain_log_statements(log: &str) -> (String, String, String) {
    let insert = format!(
        r#"        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, "values")
        SELECT tx, captured_at, captured_at, 'NEW', 'INSERT', TG_TABLE_NAME, {NEW_ROWS}.id,
               {NEW_ROWS}.sfid, (public.hstore({NEW_ROWS}.*) OPERATOR(public.-) excluded_cols)::text
        FROM {NEW_ROWS};
"#
    );
    let update = format!(
        r#"        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, "values")
        SELECT tx, captured_at, captured_at, 'NEW', 'UPDATE', TG_TABLE_NAME, c.id, c.sfid,
               c.old_row::text, c.changed::text
        FROM (SELECT h.ord, h.id, h.sfid, h.old_row, h.new_row OPERATOR(public.-) h.old_row AS changed
              FROM (SELECT n.ord, (n.r).id, (n.r).sfid,
                           public.hstore(n.r) OPERATOR(public.-) excluded_cols AS new_row,
                           public.hstore(o.r) OPERATOR(public.-) excluded_cols AS old_row
                    FROM (SELECT row_number() OVER () AS ord, {NEW_ROWS} AS r FROM {NEW_ROWS}) n
                    JOIN (SELECT row_number() OVER () AS ord, {OLD_ROWS} AS r FROM {OLD_ROWS}) o USING (ord)
                    ORDER BY n.ord OFFSET 0) h
              ORDER BY h.ord OFFSET 0) c
        WHERE c.changed OPERATOR(public.<>) ''::public.hstore -- a no-op update is not recorded
        ORDER BY c.ord;
"#
    );
    let delete = format!(
        r#"        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old)
        SELECT tx, captured_at, captured_at, CASE WHEN {OLD_ROWS}.sfid IS NULL THEN 'IGNORE' ELSE 'NEW' END,
               'DELETE', TG_TABLE_NAME, {OLD_ROWS}.id, {OLD_ROWS}.sfid,
               (public.hstore({OLD_ROWS}.*) OPERATOR(public.-) excluded_cols)::text
        FROM {OLD_ROWS};
"#
    );
    (insert, update, delete)
}

/// The aggregate (over the catalog query's `a`, `p`, `pn`) listing a row's values in hstore's key
/// order, each column named through `rows` (an SQL expression giving the row's alias): a text
/// column as it is, any other through its type's output function.
fn value_list(rows: &str) -> String {
    format!(
        r#"               string_agg(CASE WHEN p.oid IN ('pg_catalog.textout'::regproc, 'pg_catalog.varcharout'::regproc)
                               THEN format('%s.%I::text', {rows}, a.attname)
                               ELSE format('pg_catalog.textin(%I.%I(%s.%I))', pn.nspname, p.proname, {rows}, a.attname) END,
                          ', ' ORDER BY octet_length(a.attname), a.attname COLLATE "C")"#
    )
}

/// Statements of at least this many rows are logged with the rows' keys in hstore's own order.
/// Below it, building the query (a catalog read and a plan, about a millisecond) would cost more
/// than the sorts it saves (a few microseconds a row).
pub const SORTED_KEYS_MIN_ROWS: u32 = 500;

/// `CREATE OR REPLACE` of the AFTER statement-level trigger function writing Heroku Connect's
/// hstore text: one `INSERT … SELECT` into `_trigger_log` per statement, reading the transition
/// tables. UPDATE pairs each old row with its new one by position (Postgres appends both
/// transition rows of an updated row together, so the n-th old row is the n-th new row's
/// before-image, whatever the statement did to `id`).
///
/// `hstore(row)` sorts each row's keys (by length, then bytes), and that sort was a tenth of a
/// large captured `INSERT`'s time. A statement of [`SORTED_KEYS_MIN_ROWS`] rows or more builds
/// each row's hstore from its columns listed once, from the catalog, in that order
/// (`hstore(keys, ARRAY[…])`, which then finds them sorted), with each value as the column's
/// type prints it (its output function, as `hstore(row)` does). The text is byte for byte the
/// same; smaller statements keep the plain, cached query, and so does a large one whose query
/// fails (say, a column type whose output function the app's role may not call: `hstore(row)`
/// needs no such grant), with a warning saying why.
fn logger_function(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let logger = qualified(schema, "forcesync_logger");
    let skip = SORTED_KEYS_MIN_ROWS - 1;
    let (plain_insert, plain_update, plain_delete) = plain_log_statements(&log);
    let (new_values, old_values) = (value_list("s.new_rows"), value_list("s.old_rows"));
    format!(
        r#"{LOGGER_HEADER}-- A statement of {SORTED_KEYS_MIN_ROWS} rows or more lists the row's columns in hstore's key order (length,
-- then bytes) instead of having each row's keys sorted: the same text, at a fraction of the cost.
CREATE OR REPLACE FUNCTION {logger}() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    excluded_cols text[] := ARRAY['_hc_lastop', '_hc_err'];
    tx bigint := txid_current();
    captured_at timestamptz := clock_timestamp();
    large boolean;
    keys text[];
    new_values text;
    old_values text;
BEGIN
{LEVEL_GUARD}    -- hc_<t>_logtrigger (the INSERT trigger) disabled: capture is off for the table.
    IF TG_OP <> 'INSERT' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                   WHERE tgrelid = TG_RELID AND tgname = 'hc_' || TG_TABLE_NAME || '_logtrigger'
                     AND tgenabled <> 'D') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        large := EXISTS (SELECT 1 FROM {OLD_ROWS} OFFSET {skip});
    ELSE
        large := EXISTS (SELECT 1 FROM {NEW_ROWS} OFFSET {skip});
    END IF;
    IF large THEN
        -- The keys in hstore's order, and each row's values in the same order: a text column as
        -- it is, any other through its type's output function (a boolean is t or f).
        SELECT array_agg(a.attname::text ORDER BY octet_length(a.attname), a.attname COLLATE "C"),
{new_values},
{old_values}
          INTO keys, new_values, old_values
          FROM (SELECT CASE WHEN TG_OP = 'UPDATE' THEN 'n' ELSE '{NEW_ROWS}' END AS new_rows,
                       CASE WHEN TG_OP = 'UPDATE' THEN 'o' ELSE '{OLD_ROWS}' END AS old_rows) s,
               pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
          JOIN pg_catalog.pg_proc p ON p.oid = t.typoutput
          JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
         WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname <> ALL (excluded_cols);
        IF 'forcesync_ord' = ANY (keys) THEN
            keys := NULL; -- the name the update's pairing uses: the plain query instead
        END IF;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF keys IS NOT NULL THEN
            BEGIN
                EXECUTE format($q$INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, "values")
                    SELECT $1, $2, $2, 'NEW', 'INSERT', $3, {NEW_ROWS}.id, {NEW_ROWS}.sfid,
                           public.hstore($4, ARRAY[%s])::text
                    FROM {NEW_ROWS}$q$, new_values)
                    USING tx, captured_at, TG_TABLE_NAME, keys;
                RETURN NULL;
{FALLBACK}            END;
        END IF;
{plain_insert}    ELSIF TG_OP = 'UPDATE' THEN
        -- Each row's documents built once (OFFSET 0 keeps the planner from repeating them), the
        -- rows paired by position, already in order: no sort of the documents. Whole rows are
        -- named by their transition table (an app column may be called n, o or r).
        IF keys IS NOT NULL THEN
            BEGIN
                EXECUTE format($q$INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, "values")
                    SELECT $1, $2, $2, 'NEW', 'UPDATE', $3, c.id, c.sfid, c.old_row::text, c.changed::text
                    FROM (SELECT h.ord, h.id, h.sfid, h.old_row, h.new_row OPERATOR(public.-) h.old_row AS changed
                          FROM (SELECT n.forcesync_ord AS ord, n.id, n.sfid,
                                       public.hstore($4, ARRAY[%s]) AS new_row,
                                       public.hstore($4, ARRAY[%s]) AS old_row
                                FROM (SELECT row_number() OVER () AS forcesync_ord, * FROM {NEW_ROWS}) n
                                JOIN (SELECT row_number() OVER () AS forcesync_ord, * FROM {OLD_ROWS}) o
                                  ON o.forcesync_ord = n.forcesync_ord
                                ORDER BY n.forcesync_ord OFFSET 0) h
                          ORDER BY h.ord OFFSET 0) c
                    WHERE c.changed OPERATOR(public.<>) ''::public.hstore
                    ORDER BY c.ord$q$, new_values, old_values)
                    USING tx, captured_at, TG_TABLE_NAME, keys;
                RETURN NULL;
{FALLBACK}            END;
        END IF;
{plain_update}    ELSE
        IF keys IS NOT NULL THEN
            BEGIN
                EXECUTE format($q$INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old)
                    SELECT $1, $2, $2, CASE WHEN {OLD_ROWS}.sfid IS NULL THEN 'IGNORE' ELSE 'NEW' END,
                           'DELETE', $3, {OLD_ROWS}.id, {OLD_ROWS}.sfid, public.hstore($4, ARRAY[%s])::text
                    FROM {OLD_ROWS}$q$, old_values)
                    USING tx, captured_at, TG_TABLE_NAME, keys;
                RETURN NULL;
{FALLBACK}            END;
        END IF;
{plain_delete}    END IF;
    RETURN NULL;
END;
$$;
"#
    )
}

/// Versions 3 and 4's statement-level trigger function (every row's hstore built from the whole
/// row, its keys sorted row by row), restored when version 5 is rolled back.
fn logger_function_v3(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let logger = qualified(schema, "forcesync_logger");
    let (plain_insert, plain_update, plain_delete) = plain_log_statements(&log);
    format!(
        r#"{LOGGER_HEADER}CREATE OR REPLACE FUNCTION {logger}() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $$
DECLARE
    excluded_cols text[] := ARRAY['_hc_lastop', '_hc_err'];
    tx bigint := txid_current();
    captured_at timestamptz := clock_timestamp();
BEGIN
{LEVEL_GUARD}    IF TG_OP = 'INSERT' THEN
{plain_insert}        RETURN NULL;
    END IF;
    -- hc_<t>_logtrigger (the INSERT trigger) disabled: capture is off for the table.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                   WHERE tgrelid = TG_RELID AND tgname = 'hc_' || TG_TABLE_NAME || '_logtrigger'
                     AND tgenabled <> 'D') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        -- Each row's documents built once (OFFSET 0 keeps the planner from repeating them), the
        -- rows paired by position, already in order: no sort of the documents. Whole rows are
        -- named by their transition table (an app column may be called n, o or r).
{plain_update}    ELSE
{plain_delete}    END IF;
    RETURN NULL;
END;
$$;
"#
    )
}

/// Version 2's AFTER row-level trigger function (one log insert per row), restored when the
/// statement-level capture is rolled back.
fn logger_function_v2(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let logger = qualified(schema, "forcesync_logger");
    format!(
        r#"-- AFTER INSERT OR UPDATE OR DELETE on read-write tables, for application writes only: the row
-- as Heroku Connect's hstore text, without _hc_lastop and _hc_err.
CREATE OR REPLACE FUNCTION {logger}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    excluded_cols text[] := ARRAY['_hc_lastop', '_hc_err'];
    old_row public.hstore;
    changed text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, "values")
        VALUES (txid_current(), clock_timestamp(), clock_timestamp(), 'NEW', 'INSERT', TG_TABLE_NAME,
                NEW.id, NEW.sfid, (public.hstore(NEW) OPERATOR(public.-) excluded_cols)::text);
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        old_row := public.hstore(OLD) OPERATOR(public.-) excluded_cols;
        changed := ((public.hstore(NEW) OPERATOR(public.-) excluded_cols) OPERATOR(public.-) old_row)::text;
        IF changed = '' THEN
            RETURN NEW; -- a no-op update is not recorded
        END IF;
        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, "values")
        VALUES (txid_current(), clock_timestamp(), clock_timestamp(), 'NEW', 'UPDATE', TG_TABLE_NAME,
                NEW.id, NEW.sfid, old_row::text, changed);
        RETURN NEW;
    ELSE
        INSERT INTO {log} (txid, created_at, updated_at, state, action, table_name, record_id, sfid, old)
        VALUES (txid_current(), clock_timestamp(), clock_timestamp(),
                CASE WHEN OLD.sfid IS NULL THEN 'IGNORE' ELSE 'NEW' END, 'DELETE', TG_TABLE_NAME,
                OLD.id, OLD.sfid, (public.hstore(OLD) OPERATOR(public.-) excluded_cols)::text);
        RETURN OLD;
    END IF;
END;
$$;
"#
    )
}

/// Heroku Connect's `hc_capture_insert_from_row` / `hc_capture_update_from_row` (same
/// signatures, defaults and results). The entry is `NEW` for a table whose writes are captured
/// (a read-write mapping), `READONLY` otherwise; a table that is not in the schema is an error.
fn capture_functions(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let insert = qualified(schema, "hc_capture_insert_from_row");
    let update = qualified(schema, "hc_capture_update_from_row");
    let schema_literal = quote_literal(schema);
    let state = format!(
        r#"    target := to_regclass(quote_ident({schema_literal}) || '.' || quote_ident(table_name));
    IF target IS NULL THEN
        RAISE EXCEPTION 'no table %.% to capture a row of', {schema_literal}, table_name
            USING HINT = 'table_name is a mapped table''s name without its schema, e.g. ''account''';
    END IF;
    entry_state := CASE WHEN EXISTS (SELECT 1 FROM pg_trigger
                                     WHERE tgrelid = target AND tgname = 'hc_' || table_name || '_logtrigger')
                        THEN 'NEW' ELSE 'READONLY' END;"#
    );
    format!(
        r#"-- Heroku Connect's capture functions: enqueue a row (hstore(t.*)) again, e.g. to retry a failed
-- write. Return the new entry's id, or NULL when the row has no id.
CREATE OR REPLACE FUNCTION {insert}(source_row public.hstore, table_name varchar,
        excluded_cols text[] DEFAULT ARRAY[]::text[])
    RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    excluded_cols_standard text[] := ARRAY['_hc_lastop', '_hc_err']::text[];
    target regclass;
    entry_state varchar;
    retval integer;
BEGIN
    -- VERSION 1 --
    IF (source_row OPERATOR(public.->) 'id') IS NULL THEN
        RETURN NULL;
    END IF;
{state}
    excluded_cols_standard := array_remove(array_remove(excluded_cols, 'id'), 'sfid') || excluded_cols_standard;
    INSERT INTO {log} (action, table_name, txid, created_at, updated_at, state, record_id, "values")
    VALUES ('INSERT', table_name, txid_current(), clock_timestamp(), clock_timestamp(), entry_state,
            (source_row OPERATOR(public.->) 'id')::integer,
            (source_row OPERATOR(public.-) excluded_cols_standard)::text)
    RETURNING id INTO retval;
    RETURN retval;
END;
$$;

CREATE OR REPLACE FUNCTION {update}(source_row public.hstore, table_name varchar,
        columns_to_include text[] DEFAULT ARRAY[]::text[])
    RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    excluded_cols_standard text[] := ARRAY['_hc_lastop', '_hc_err']::text[];
    excluded_cols text[];
    target regclass;
    entry_state varchar;
    retval integer;
BEGIN
    -- VERSION 1 --
    IF (source_row OPERATOR(public.->) 'id') IS NULL THEN
        RETURN NULL;
    END IF;
{state}
    IF array_length(columns_to_include, 1) <> 0 THEN
        excluded_cols := ARRAY(SELECT public.skeys(source_row) EXCEPT SELECT unnest(columns_to_include));
    END IF;
    excluded_cols_standard := excluded_cols || excluded_cols_standard;
    INSERT INTO {log} (action, table_name, txid, created_at, updated_at, state, record_id, sfid, "values", old)
    VALUES ('UPDATE', table_name, txid_current(), clock_timestamp(), clock_timestamp(), entry_state,
            (source_row OPERATOR(public.->) 'id')::integer, source_row OPERATOR(public.->) 'sfid',
            (source_row OPERATOR(public.-) excluded_cols_standard)::text, NULL)
    RETURNING id INTO retval;
    RETURN retval;
END;
$$;
"#
    )
}

/// Reverses [`up`] (the schema itself is left in place: it may hold other objects; so is the
/// `hstore` extension, which other code may use).
pub fn down(schema: &str) -> String {
    let q = |name: &str| qualified(schema, name);
    format!(
        "DROP FUNCTION {update}(public.hstore, varchar, text[]);
DROP FUNCTION {insert}(public.hstore, varchar, text[]);
DROP FUNCTION {logger}();
DROP FUNCTION {pending}();
DROP FUNCTION {status}();
DROP TRIGGER tlog_insert_trigger ON {log};
DROP FUNCTION {notify}();
DROP TABLE {archive};
DROP TABLE {log};
",
        update = q("hc_capture_update_from_row"),
        insert = q("hc_capture_insert_from_row"),
        logger = q("forcesync_logger"),
        pending = q("forcesync_pending"),
        status = q("forcesync_status"),
        log = q("_trigger_log"),
        notify = q("tlog_notify_trigger"),
        archive = q("_trigger_log_archive"),
    )
}

/// Brings the schema-wide objects of layout `from` to [`SYSTEM_VERSION`] in an existing
/// database, keeping every entry: version 1's `jsonb` payloads become hstore text, each value
/// spelled as Postgres prints the column (`t`/`f` for booleans, a space in timestamps); the
/// row-level capture trigger of each table in `captured` (version ≤ 2) becomes the
/// statement-level ones; the status trigger of each of `tables` (version ≤ 3) gets its `WHEN`
/// and `_hc_lastop` its default; the logger of version 3 or 4 is replaced by version 5's (the
/// upgrade from 2 or earlier installs that one directly); each of `tables` (version ≤ 5) gets its
/// pending trigger.
pub fn upgrade_up(schema: &str, from: u32, tables: &[String], captured: &[String]) -> String {
    let mut sql = String::new();
    if from < 2 {
        sql.push_str(&upgrade_from_1(schema));
    }
    if from < 3 {
        sql.push_str(
            "\n-- Capture by statement: each table's row-level hc_<t>_logtrigger becomes three statement-level\n\
             -- triggers (INSERT, UPDATE, DELETE) logging a statement's rows with one insert.\n",
        );
        for table in captured {
            sql.push_str(&format!(
                "DROP TRIGGER {} ON {};\n",
                super::quote_ident(&format!("hc_{table}_logtrigger")),
                qualified(schema, table)
            ));
        }
        sql.push('\n');
        sql.push_str(&logger_function(schema));
        sql.push('\n');
        for table in captured {
            sql.push_str(&super::ddl::enable_capture(schema, table));
        }
    }
    if from < 4 {
        sql.push_str(
            "\n-- Status triggers called only where they change the row: a plain application INSERT\n\
             -- (_hc_lastop defaults to PENDING) needs no call.\n",
        );
        if from >= 2 {
            // (Version 1's upgrade above created it.)
            sql.push_str(&status_function(schema));
        }
        for table in tables {
            sql.push_str(&format!(
                "ALTER TABLE {name} ALTER COLUMN _hc_lastop SET DEFAULT {LASTOP_DEFAULT};\n\
                 DROP TRIGGER {trigger} ON {name};\n{create}",
                name = qualified(schema, table),
                trigger = super::quote_ident(&super::ddl::status_trigger_name(table)),
                create = super::ddl::status_trigger(schema, table),
            ));
        }
    }
    if (3..5).contains(&from) {
        sql.push_str(
            "\n-- Large statements logged without a sort of each row's keys (the same text).\n",
        );
        sql.push_str(&logger_function(schema));
    }
    if from < 6 {
        sql.push_str(
            "\n-- An application's update of a synced row marked PENDING without the status function's\n\
             -- no-op check (done by the pending trigger's WHEN).\n",
        );
        sql.push_str(&pending_function(schema));
        for table in tables {
            sql.push_str(&super::ddl::pending_trigger(schema, table));
        }
    }
    sql
}

/// Reverses [`upgrade_up`].
pub fn upgrade_down(schema: &str, from: u32, tables: &[String], captured: &[String]) -> String {
    let mut sql = String::new();
    if from < 6 {
        for table in tables {
            sql.push_str(&super::ddl::drop_pending_trigger(schema, table));
        }
        sql.push_str(&format!(
            "DROP FUNCTION {}();\n",
            qualified(schema, "forcesync_pending")
        ));
    }
    if (3..5).contains(&from) {
        sql.push_str(&logger_function_v3(schema));
    }
    if from < 4 {
        for table in tables {
            sql.push_str(&format!(
                "DROP TRIGGER {trigger} ON {name};\n{create}\
                 ALTER TABLE {name} ALTER COLUMN _hc_lastop DROP DEFAULT;\n",
                name = qualified(schema, table),
                trigger = super::quote_ident(&super::ddl::status_trigger_name(table)),
                create = super::ddl::status_trigger_v3(schema, table),
            ));
        }
        sql.push_str(&status_function_v3(schema));
    }
    if from < 3 {
        for table in captured {
            sql.push_str(&super::ddl::disable_capture(schema, table));
        }
        sql.push_str(&logger_function_v2(schema));
        for table in captured {
            sql.push_str(&format!(
                "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {name}\n    FOR EACH ROW WHEN ({condition})\n    EXECUTE FUNCTION {function}();\n",
                trigger = super::quote_ident(&format!("hc_{table}_logtrigger")),
                name = qualified(schema, table),
                condition = application_write_condition(),
                function = qualified(schema, "forcesync_logger"),
            ));
        }
    }
    if from < 2 {
        sql.push('\n');
        sql.push_str(&downgrade_to_1(schema));
    }
    sql
}

/// Version 1 to 2: `jsonb` payloads become hstore text; the status and capture functions. (The
/// logger is replaced by version 3's right after.)
fn upgrade_from_1(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let archive = qualified(schema, "_trigger_log_archive");
    let schema_literal = quote_literal(schema);
    let status_function = status_function(schema);
    let capture = capture_functions(schema);
    format!(
        r#"-- The trigger log in Heroku Connect's format: old and values become hstore text.
{HSTORE_EXTENSION}
CREATE FUNCTION pg_temp.forcesync_payload_to_hstore(payload jsonb, tbl text) RETURNS text
    LANGUAGE plpgsql AS $$
BEGIN
    IF payload IS NULL THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(payload) <> 'object' THEN
        RETURN payload::text; -- not a row: kept as it was (the writer reports it unusable)
    END IF;
    RETURN (SELECT coalesce(public.hstore(array_agg(e.key), array_agg(
                CASE
                    WHEN jsonb_typeof(e.value) = 'boolean' THEN CASE WHEN e.value = 'true'::jsonb THEN 't' ELSE 'f' END
                    WHEN jsonb_typeof(e.value) = 'string' AND a.atttypid = 'timestamp'::regtype
                        THEN regexp_replace(e.value #>> '{{}}', '^(\d+-\d\d-\d\d)T', '\1 ')
                    ELSE e.value #>> '{{}}'
                END))::text, '')
            FROM jsonb_each(payload) e
            LEFT JOIN pg_attribute a
              ON a.attrelid = to_regclass(quote_ident({schema_literal}) || '.' || quote_ident(tbl))
             AND a.attname = e.key AND NOT a.attisdropped);
END;
$$;
ALTER TABLE {log}
    ALTER COLUMN old TYPE text USING pg_temp.forcesync_payload_to_hstore(old, table_name),
    ALTER COLUMN "values" TYPE text USING pg_temp.forcesync_payload_to_hstore("values", table_name);
ALTER TABLE {archive}
    ALTER COLUMN old TYPE text USING pg_temp.forcesync_payload_to_hstore(old, table_name),
    ALTER COLUMN "values" TYPE text USING pg_temp.forcesync_payload_to_hstore("values", table_name);
DROP FUNCTION pg_temp.forcesync_payload_to_hstore(jsonb, text);

{status_function}
{capture}"#
    )
}

/// Version 2 back to 1: payloads back to `jsonb` (typed by the columns' types), version 1's
/// trigger functions, no capture functions.
fn downgrade_to_1(schema: &str) -> String {
    let log = qualified(schema, "_trigger_log");
    let archive = qualified(schema, "_trigger_log_archive");
    let logger = qualified(schema, "forcesync_logger");
    let status = qualified(schema, "forcesync_status");
    let schema_literal = quote_literal(schema);
    format!(
        r#"DROP FUNCTION {update}(public.hstore, varchar, text[]);
DROP FUNCTION {insert}(public.hstore, varchar, text[]);
CREATE FUNCTION pg_temp.forcesync_payload_to_jsonb(payload text, tbl text) RETURNS jsonb
    LANGUAGE plpgsql AS $$
BEGIN
    IF payload IS NULL THEN
        RETURN NULL;
    END IF;
    BEGIN
        PERFORM payload::public.hstore;
    EXCEPTION WHEN others THEN
        -- not a row (written by hand): back as the JSON it was, or as a JSON string
        BEGIN
            RETURN payload::jsonb;
        EXCEPTION WHEN others THEN
            RETURN to_jsonb(payload);
        END;
    END;
    RETURN (SELECT coalesce(jsonb_object_agg(e.key,
                CASE
                    WHEN e.value IS NULL THEN 'null'::jsonb
                    WHEN a.atttypid IN ('integer'::regtype, 'bigint'::regtype, 'double precision'::regtype)
                         AND e.value ~ '^-?[0-9.]+(e[-+]?[0-9]+)?$' THEN e.value::numeric::text::jsonb
                    WHEN a.atttypid = 'boolean'::regtype THEN to_jsonb(e.value::boolean)
                    WHEN a.atttypid = 'timestamp'::regtype THEN to_jsonb(replace(e.value, ' ', 'T'))
                    ELSE to_jsonb(e.value)
                END), '{{}}'::jsonb)
            FROM public.each(payload::public.hstore) e
            LEFT JOIN pg_attribute a
              ON a.attrelid = to_regclass(quote_ident({schema_literal}) || '.' || quote_ident(tbl))
             AND a.attname = e.key AND NOT a.attisdropped);
END;
$$;
ALTER TABLE {log}
    ALTER COLUMN old TYPE jsonb USING pg_temp.forcesync_payload_to_jsonb(old, table_name),
    ALTER COLUMN "values" TYPE jsonb USING pg_temp.forcesync_payload_to_jsonb("values", table_name);
ALTER TABLE {archive}
    ALTER COLUMN old TYPE jsonb USING pg_temp.forcesync_payload_to_jsonb(old, table_name),
    ALTER COLUMN "values" TYPE jsonb USING pg_temp.forcesync_payload_to_jsonb("values", table_name);
DROP FUNCTION pg_temp.forcesync_payload_to_jsonb(text, text);

CREATE OR REPLACE FUNCTION {status}() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION {logger}() RETURNS trigger LANGUAGE plpgsql AS $$
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
"#,
        update = qualified(schema, "hc_capture_update_from_row"),
        insert = qualified(schema, "hc_capture_insert_from_row"),
    )
}
