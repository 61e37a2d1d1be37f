//! A database as Heroku Connect makes and fills it, written from the documented layout and
//! trigger behaviour (`../shared/docs/heroku-connect.md` §1, §1b), for the adoption tests and
//! the adoption benchmark. Nothing here comes from forcesync's own migrations:
//!
//! - the `hstore` extension and `public.get_xmlbinary()`;
//! - per mapped table: columns in Heroku Connect's order (fields, then `sfid`, `id serial`,
//!   `_hc_lastop`, `_hc_err`), `hcu_idx_<t>_sfid`, `hc_idx_<t>_systemmodstamp` and the other
//!   indexes; `hc_<t>_logger()` ("VERSION 4": `hstore` text payloads, `NEW` or `READONLY`,
//!   `IGNORE` for empty updates and deletes without `sfid`) fired by `hc_<t>_logtrigger` for
//!   user sessions only (`get_xmlbinary() = 'base64'`), `hc_<t>_status()` by
//!   `hc_<t>_status_trigger`;
//! - `_trigger_log` (with `tlog_insert_trigger` → `tlog_notify_trigger()`), `_trigger_log_archive`,
//!   `_hcmeta`, `_sf_event_log`, `hc_capture_insert_from_row` / `hc_capture_update_from_row`.
//!
//! Heroku Connect's own writes run with a non-default `xmlbinary` ([`HC_SESSION`]): the logger
//! does not fire and the status trigger marks rows `SYNCED`.

use serde_json::Value;

/// What a Heroku Connect session sets so that its writes are not captured.
pub const HC_SESSION: &str = "SET LOCAL xmlbinary = 'hex'";

/// One table Heroku Connect syncs.
#[derive(Debug, Clone)]
pub struct HcTable {
    pub table: String,
    pub read_write: bool,
    /// Mapped columns and their types (`sfid`, `id`, `_hc_lastop`, `_hc_err` are added).
    pub columns: Vec<(String, String)>,
    /// Indexed columns beyond `sfid` and `systemmodstamp`, and whether unique.
    pub indexes: Vec<(String, bool)>,
}

impl HcTable {
    /// The table Heroku Connect would hold for a forcesync mapping's fields (the same names
    /// and types: forcesync's layout is Heroku Connect's).
    pub fn like(mapping: &sync_runtime::adapter::MappingDescriptor) -> HcTable {
        let columns = mapping
            .fields
            .iter()
            .filter(|f| f.column != "sfid")
            .map(|f| (f.column.to_owned(), f.pg_type.sql()))
            .collect();
        let indexes = mapping
            .upsert_key
            .and_then(|k| mapping.field(k))
            .map(|f| vec![(f.column.to_owned(), true)])
            .unwrap_or_default();
        HcTable {
            table: mapping.table.to_owned(),
            read_write: mapping.is_read_write(),
            columns,
            indexes,
        }
    }
}

/// The shared part: extension, `get_xmlbinary()`, the log tables and functions, `_hcmeta`,
/// `_sf_event_log` (pure).
pub fn shared_sql(schema: &str, org_id: &str) -> String {
    format!(
        r#"
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE OR REPLACE FUNCTION public.get_xmlbinary() RETURNS character varying
    LANGUAGE plpgsql AS $$
    DECLARE
        xmlbin varchar;
    BEGIN
        select into xmlbin setting from pg_settings where name='xmlbinary';
        RETURN xmlbin;
    END;
$$;
CREATE SCHEMA {schema};

CREATE TABLE {schema}._hcmeta (
    id serial PRIMARY KEY,
    hcver integer,
    org_id character varying(50),
    details text
);
INSERT INTO {schema}._hcmeta (hcver, org_id, details) VALUES (3, '{org_id}', NULL);

CREATE TABLE {schema}._sf_event_log (
    id serial PRIMARY KEY,
    table_name character varying(128),
    action character varying(7),
    synced_at timestamp with time zone DEFAULT now(),
    sf_timestamp timestamp with time zone,
    sfid character varying(20),
    record text,
    processed boolean
);
CREATE INDEX idx__sf_event_log_comp_key ON {schema}._sf_event_log (table_name, synced_at);
CREATE INDEX idx__sf_event_log_sfid ON {schema}._sf_event_log (sfid);

CREATE TABLE {schema}._trigger_log (
    id serial PRIMARY KEY,
    txid bigint,
    created_at timestamp with time zone DEFAULT now(),
    updated_at timestamp with time zone DEFAULT now(),
    processed_at timestamp with time zone,
    processed_tx bigint,
    state character varying(8),
    action character varying(7),
    table_name character varying(128),
    record_id integer,
    sfid character varying(18),
    old text,
    "values" text,
    sf_result integer,
    sf_message text
);
CREATE INDEX _trigger_log_idx_created_at ON {schema}._trigger_log (created_at);
CREATE INDEX _trigger_log_idx_state_id ON {schema}._trigger_log (state, id);
CREATE INDEX _trigger_log_idx_state_table_name ON {schema}._trigger_log (state, table_name)
    WHERE ((state)::text = ANY ((ARRAY['NEW'::character varying, 'PENDING'::character varying])::text[]));

CREATE TABLE {schema}._trigger_log_archive (
    id integer PRIMARY KEY,
    txid bigint,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    processed_at timestamp with time zone,
    processed_tx bigint,
    state character varying(8),
    action character varying(7),
    table_name character varying(128),
    record_id integer,
    sfid character varying(18),
    old text,
    "values" text,
    sf_result integer,
    sf_message text
);
CREATE INDEX _trigger_log_archive_idx_created_at ON {schema}._trigger_log_archive (created_at);
CREATE INDEX _trigger_log_archive_idx_record_id ON {schema}._trigger_log_archive (record_id);
CREATE INDEX _trigger_log_archive_idx_state_table_name ON {schema}._trigger_log_archive (state, table_name)
    WHERE ((state)::text = 'FAILED'::text);

CREATE FUNCTION {schema}.tlog_notify_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
    BEGIN
        -- VERSION 1 --
        PERFORM pg_notify('{schema}.hc_trigger_log', 'ping');
        RETURN new;
    END;
$$;
CREATE TRIGGER tlog_insert_trigger AFTER INSERT ON {schema}._trigger_log
    FOR EACH ROW EXECUTE PROCEDURE {schema}.tlog_notify_trigger();

CREATE FUNCTION {schema}.hc_capture_insert_from_row(source_row hstore, table_name character varying,
        excluded_cols text[] DEFAULT '{{}}'::text[]) RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        base_excluded_cols text[] := '{{_hc_lastop,_hc_err}}'::text[];
        trigger_row {schema}._trigger_log;
    BEGIN
        -- VERSION 1 --
        IF (source_row -> 'id') IS NULL THEN
            RETURN NULL;
        END IF;
        trigger_row = ROW();
        trigger_row.id = nextval('{schema}._trigger_log_id_seq');
        trigger_row.action = 'INSERT';
        trigger_row.table_name = table_name;
        trigger_row.txid = txid_current();
        trigger_row.created_at = clock_timestamp();
        trigger_row.updated_at = clock_timestamp();
        trigger_row.state = 'NEW';
        trigger_row.record_id = source_row -> 'id';
        trigger_row.values = (source_row - base_excluded_cols) - excluded_cols;
        INSERT INTO {schema}._trigger_log VALUES (trigger_row.*);
        RETURN trigger_row.id;
    END;
$$;

CREATE FUNCTION {schema}.hc_capture_update_from_row(source_row hstore, table_name character varying,
        columns_to_include text[] DEFAULT '{{}}'::text[]) RETURNS integer
    LANGUAGE plpgsql AS $$
    DECLARE
        trigger_row {schema}._trigger_log;
    BEGIN
        -- VERSION 1 --
        IF (source_row -> 'id') IS NULL THEN
            RETURN NULL;
        END IF;
        trigger_row = ROW();
        trigger_row.id = nextval('{schema}._trigger_log_id_seq');
        trigger_row.action = 'UPDATE';
        trigger_row.table_name = table_name;
        trigger_row.txid = txid_current();
        trigger_row.created_at = clock_timestamp();
        trigger_row.updated_at = clock_timestamp();
        trigger_row.state = 'NEW';
        trigger_row.record_id = source_row -> 'id';
        trigger_row.sfid = source_row -> 'sfid';
        trigger_row.values = slice(source_row, columns_to_include);
        INSERT INTO {schema}._trigger_log VALUES (trigger_row.*);
        RETURN trigger_row.id;
    END;
$$;
"#
    )
}

/// One mapped table, its indexes, functions and triggers (pure).
pub fn table_sql(schema: &str, t: &HcTable) -> String {
    let name = &t.table;
    let mut columns: Vec<String> = Vec::new();
    // Heroku Connect adds columns as fields are added: its system columns sit among them.
    let half = t.columns.len() / 2;
    for (i, (column, ty)) in t.columns.iter().enumerate() {
        if i == half {
            columns.push("sfid character varying(18)".into());
            columns.push(format!(
                "id integer NOT NULL DEFAULT nextval('{schema}.{name}_id_seq'::regclass)"
            ));
            columns.push("_hc_lastop character varying(32)".into());
            columns.push("_hc_err text".into());
        }
        columns.push(format!("{column} {ty}"));
    }
    let state = if t.read_write { "NEW" } else { "READONLY" };
    let mut sql = format!(
        r#"
CREATE SEQUENCE {schema}.{name}_id_seq AS integer START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;
CREATE TABLE {schema}.{name} (
    {columns}
);
ALTER SEQUENCE {schema}.{name}_id_seq OWNED BY {schema}.{name}.id;
ALTER TABLE ONLY {schema}.{name} ADD CONSTRAINT {name}_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX hcu_idx_{name}_sfid ON {schema}.{name} USING btree (sfid);
CREATE INDEX hc_idx_{name}_systemmodstamp ON {schema}.{name} USING btree (systemmodstamp);
"#,
        columns = columns.join(",\n    ")
    );
    for (column, unique) in &t.indexes {
        let (kind, prefix) = if *unique {
            ("UNIQUE INDEX", "hcu")
        } else {
            ("INDEX", "hc")
        };
        sql.push_str(&format!(
            "CREATE {kind} {prefix}_idx_{name}_{column} ON {schema}.{name} USING btree ({column});\n"
        ));
    }
    sql.push_str(&format!(
        r#"
CREATE FUNCTION {schema}.hc_{name}_logger() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        trigger_row "{schema}"."_trigger_log";
        excluded_cols text[] = ARRAY['_hc_lastop', '_hc_err']::text[];
    BEGIN
        -- VERSION 4 --
        trigger_row = ROW();
        trigger_row.id = nextval('"{schema}"."_trigger_log_id_seq"');
        trigger_row.action = TG_OP::text;
        trigger_row.table_name = TG_TABLE_NAME::text;
        trigger_row.txid = txid_current();
        trigger_row.created_at = clock_timestamp();
        trigger_row.updated_at = clock_timestamp();
        trigger_row.state = '{state}';
        IF (TG_OP = 'DELETE') THEN
            trigger_row.record_id = OLD.id;
            trigger_row.old = hstore(OLD.*) - excluded_cols;
            IF (OLD.sfid IS NOT NULL) THEN
                trigger_row.sfid = OLD.sfid;
            ELSE
                trigger_row.state = 'IGNORE';
            END IF;
        ELSEIF (TG_OP = 'INSERT') THEN
            trigger_row.record_id = NEW.id;
            trigger_row.values = hstore(NEW.*) - excluded_cols;
        ELSEIF (TG_OP = 'UPDATE') THEN
            trigger_row.record_id = NEW.id;
            trigger_row.old = hstore(OLD.*) - excluded_cols;
            trigger_row.values = (hstore(NEW.*) - hstore(trigger_row.old::hstore)) - excluded_cols;
            IF (OLD.sfid IS NOT NULL) THEN
                trigger_row.sfid = OLD.sfid;
            END IF;
            IF (trigger_row.values::hstore = ''::hstore) THEN
                trigger_row.state = 'IGNORE';
            END IF;
        END IF;
        INSERT INTO "{schema}"."_trigger_log" VALUES (trigger_row.*);
        RETURN NULL;
    END;
$$;

CREATE FUNCTION {schema}.hc_{name}_status() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF (get_xmlbinary() = 'base64') THEN  -- user op
            NEW._hc_lastop = 'PENDING';
            NEW._hc_err = NULL;
            RETURN NEW;
        ELSE  -- connect op
            IF (TG_OP = 'UPDATE' AND NEW._hc_lastop IS NOT NULL AND NEW._hc_lastop != OLD._hc_lastop) THEN
                RETURN NEW;
            END IF;
            NEW._hc_lastop = 'SYNCED';
            NEW._hc_err = NULL;
            RETURN NEW;
        END IF;
    END;
$$;

CREATE TRIGGER hc_{name}_logtrigger AFTER INSERT OR DELETE OR UPDATE ON {schema}.{name}
    FOR EACH ROW WHEN ((public.get_xmlbinary())::text = 'base64'::text)
    EXECUTE PROCEDURE {schema}.hc_{name}_logger();
CREATE TRIGGER hc_{name}_status_trigger BEFORE INSERT OR UPDATE ON {schema}.{name}
    FOR EACH ROW EXECUTE PROCEDURE {schema}.hc_{name}_status();
"#
    ));
    sql
}

/// Creates the layout in the database `db` is connected to.
pub async fn create(
    db: &tokio_postgres::Client,
    schema: &str,
    org_id: &str,
    tables: &[HcTable],
) -> Result<(), tokio_postgres::Error> {
    let mut sql = shared_sql(schema, org_id);
    for t in tables {
        sql.push_str(&table_sql(schema, t));
    }
    db.batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;")).await
}

/// The columns of a Salesforce record (REST JSON) as Heroku Connect stores them: lower-cased
/// names, `Id` → `sfid`, a relationship's nested parent as `<rel>__<field>` (pure).
pub fn record_columns(record: &Value) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let Some(fields) = record.as_object() else {
        return out;
    };
    for (name, value) in fields {
        if name == "attributes" {
            continue;
        }
        match value {
            Value::Object(parent) => {
                for (field, v) in parent.iter().filter(|(k, _)| *k != "attributes") {
                    out.insert(format!("{name}__{field}").to_ascii_lowercase(), v.clone());
                }
            }
            v if name == "Id" => {
                out.insert("sfid".into(), v.clone());
            }
            v => {
                out.insert(name.to_ascii_lowercase(), v.clone());
            }
        }
    }
    out
}

/// Stores Salesforce records as Heroku Connect's load does (its session: `SYNCED`, not
/// captured). Columns the table lacks are ignored.
pub async fn store_synced(
    db: &mut tokio_postgres::Client,
    schema: &str,
    table: &str,
    records: &[Value],
) -> Result<u64, tokio_postgres::Error> {
    let rows: Vec<Value> = records
        .iter()
        .map(|r| Value::Object(record_columns(r)))
        .collect();
    let columns: Vec<String> = db
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0
             AND NOT attisdropped AND attname NOT IN ('id', '_hc_lastop', '_hc_err')",
            &[&format!("{schema}.{table}")],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let list = columns.join(", ");
    let tx = db.transaction().await?;
    tx.batch_execute(HC_SESSION).await?;
    let n = tx
        .execute(
            &format!(
                "INSERT INTO {schema}.{table} ({list})
                 SELECT {list} FROM json_populate_recordset(NULL::{schema}.{table}, $1::json)"
            ),
            &[&Value::Array(rows)],
        )
        .await?;
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_heroku_connect_columns() {
        let record = serde_json::json!({
            "attributes": {"type": "Invoice_Line__c"}, "Id": "a01000000000001AAA",
            "Name": "L-1", "Invoice__r": {"attributes": {}, "External_Id__c": "INV-1"}
        });
        let columns = record_columns(&record);
        assert_eq!(columns["sfid"], "a01000000000001AAA");
        assert_eq!(columns["name"], "L-1");
        assert_eq!(columns["invoice__r__external_id__c"], "INV-1");
        assert!(!columns.contains_key("attributes"));
    }
}
