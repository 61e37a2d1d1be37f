//! Adopting a database Heroku Connect made and filled, in place (issue 19): no reload, every
//! `id` kept, Heroku Connect's trigger log kept.
//!
//! Everything happens in one transaction, so a failure midway (or `--dry-run`) leaves the
//! database exactly as it was:
//!
//! 1. **Reference.** The app's migrations (the SQL `forcesync migrate` would run) are replayed
//!    into a scratch schema ([`REFERENCE_SCHEMA`]); its catalog is the layout forcesync needs.
//! 2. **Plan** ([`plan`]): the adopted schema's catalog against the reference, per table:
//!    missing tables, columns to add or widen, columns kept, incompatible types (refused),
//!    indexes to add, Heroku Connect's capture triggers and functions to replace; trigger-log
//!    entries by state; archived `FAILED` entries; engine tables to create; mappings to record
//!    as loaded.
//! 3. **Safety.** Refused while Heroku Connect looks active (an entry processed in the last
//!    [`Options::active_window`]) unless forced; nothing to do when already adopted.
//! 4. **Apply.** Missing tables move over from the reference (with their sequence and indexes);
//!    columns, indexes and missing column defaults (`_hc_lastop`'s) are added; Heroku Connect's
//!    `hc_<t>_logtrigger` / `hc_<t>_status_trigger` and their `hc_<t>_logger()` /
//!    `hc_<t>_status()` are replaced by forcesync's; shared functions are created or replaced (`CREATE OR REPLACE` keeps their
//!    signatures, grants and dependants); the engine's system tables are created; the app
//!    migrations are recorded as applied; each mapping is recorded as loaded, its polling cursor
//!    at the newest `systemmodstamp` less the look-back, so `forcesync run` catches up by
//!    polling. Trigger-log entries keep their ids, states and payloads, except `PENDING`
//!    ones, which Heroku Connect was sending when it stopped ([`pending`]). Rows, ids,
//!    sequences, grants, views, foreign keys, app columns, `_hcmeta` and `_sf_event_log` are
//!    not touched.

mod catalog;
pub mod pending;
pub mod plan;
mod survey;

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::adapter::Registry;
use catalog::read_layout;
use plan::{Plan, Wanted};
use survey::{count, engine_pending, last_processed, loaded_mappings, unrecorded};

use super::state::StateStore;
use super::system::{self, quote_ident};

/// The scratch schema the app migrations are replayed into (inside the adoption's transaction,
/// never committed).
pub const REFERENCE_SCHEMA: &str = "_forcesync_adopt_reference";
/// The trigger-log tables (Heroku Connect's and forcesync's).
pub const LOG_TABLES: [&str; 2] = ["_trigger_log", "_trigger_log_archive"];

/// How adoption runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plan only: roll everything back.
    pub dry_run: bool,
    /// Adopt even though Heroku Connect processed an entry recently.
    pub force: bool,
    /// The polling look-back (the cursor starts this far before the newest `systemmodstamp`).
    pub lookback: Duration,
    /// Heroku Connect counts as active when it processed an entry this recently.
    pub active_window: Duration,
    /// The org forcesync's Salesforce settings log in to, when they are set: adoption is refused
    /// when `_hcmeta.org_id` names another (unless `force`).
    pub org_id: Option<String>,
}

impl Options {
    pub fn new(lookback: Duration) -> Options {
        Options {
            dry_run: false,
            force: false,
            lookback,
            active_window: Duration::from_secs(600),
            org_id: None,
        }
    }
}

/// Why adoption did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    /// The database cannot be adopted as it is, or not now (the message says what to do).
    #[error("{0}")]
    Refused(String),
    #[error("Postgres: {}", super::db::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
}

/// What adoption found and did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    /// Committed (not a dry run, and there was something to do).
    pub applied: bool,
    /// Nothing to do: the database is already adopted.
    pub already_adopted: bool,
    /// When Heroku Connect last processed an entry.
    pub last_processed_at: Option<DateTime<Utc>>,
    /// `PENDING` entries handed to the writer's reconciliation.
    pub pending: pending::Handled,
    /// Why adoption refused (nothing was changed): incompatible column types, Heroku Connect
    /// still active.
    pub refusal: Option<String>,
}

/// One app migration: its version and SQL.
#[derive(Debug, Clone)]
pub struct AppMigration {
    pub version: String,
    pub sql: String,
}

/// The migration SQL with the schema `from` written as `to` (pure).
pub fn rewrite_schema(sql: &str, from: &str, to: &str) -> String {
    let from_ident = quote_ident(from);
    let to_ident = quote_ident(to);
    sql.replace(
        &format!("SCHEMA IF NOT EXISTS {from_ident};"),
        &format!("SCHEMA IF NOT EXISTS {to_ident};"),
    )
    .replace(&format!("{from_ident}."), &format!("{to_ident}."))
}

/// The polling cursor a table's newest `systemmodstamp` gives (pure).
pub fn cursor_from(newest: NaiveDateTime, lookback: Duration) -> NaiveDateTime {
    newest - chrono::Duration::from_std(lookback).unwrap_or_else(|_| chrono::Duration::zero())
}

/// The two org Ids when Heroku Connect's (`_hcmeta.org_id`) and the one the Salesforce settings
/// log in to are both known and name different orgs (pure). Ids compare on their first 15
/// characters: an 18-character Id is the 15-character one plus a case checksum.
pub fn other_org(hcmeta: Option<&str>, settings: Option<&str>) -> Option<(String, String)> {
    let (hc, ours) = (hcmeta?.trim(), settings?.trim());
    if hc.is_empty() || ours.is_empty() {
        return None;
    }
    let key = |id: &str| id.chars().take(15).collect::<String>();
    (key(hc) != key(ours)).then(|| (hc.to_owned(), ours.to_owned()))
}

/// Adopts the database `db` is connected to (see the module header).
pub async fn adopt(
    db: &mut tokio_postgres::Client,
    registry: &Registry,
    migrations: &[AppMigration],
    options: &Options,
) -> Result<Outcome, AdoptError> {
    let schema = registry.schema;
    let s = quote_ident(schema);
    let reference = quote_ident(REFERENCE_SCHEMA);
    let tx = db.transaction().await?;
    let found: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS found",
            &[&schema],
        )
        .await?
        .get("found");
    if !found {
        return Err(AdoptError::Refused(format!(
            "the database has no schema `{schema}` (forcesync.toml's schema): nothing to adopt; \
             for a new database run `forcesync migrate`"
        )));
    }
    // Adoption and a running engine or writer must not interleave.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('forcesync:adopt:' || $1::text))",
        &[&schema],
    )
    .await?;
    let have = read_layout(&tx, schema).await?;

    tx.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {reference} CASCADE; CREATE SCHEMA {reference};"
    ))
    .await?;
    for m in migrations {
        tx.batch_execute(&rewrite_schema(&m.sql, schema, REFERENCE_SCHEMA))
            .await
            .map_err(|e| {
                AdoptError::Refused(format!(
                    "replaying app migration {} failed: {}",
                    m.version,
                    super::db::describe(&e)
                ))
            })?;
    }
    let want = read_layout(&tx, REFERENCE_SCHEMA).await?;

    let mut wanted: Vec<Wanted> = registry
        .mappings
        .iter()
        .map(|m| Wanted {
            table: m.table.to_owned(),
            object: Some(m.object.to_owned()),
        })
        .collect();
    wanted.extend(LOG_TABLES.iter().map(|t| Wanted {
        table: (*t).to_owned(),
        object: None,
    }));
    let mut plan = Plan {
        schema: schema.to_owned(),
        tables: plan::plan_tables(&have, &want, &wanted),
        replace_functions: plan::plan_functions(&have, &want),
        engine_migrations: engine_pending(&tx, schema).await?,
        record_migrations: unrecorded(&tx, migrations).await?,
        ..Plan::default()
    };
    count(&tx, schema, &have, &mut plan.tables).await?;
    let loaded = loaded_mappings(&tx, schema).await?;
    for t in &plan.tables {
        let (Some(object), Some(newest)) = (&t.object, &t.newest_systemmodstamp) else {
            continue;
        };
        if loaded.contains(object) {
            continue;
        }
        let newest = DateTime::parse_from_rfc3339(newest)
            .map(|d| d.naive_utc())
            .unwrap_or_default();
        let cursor = cursor_from(newest, options.lookback);
        plan.mark_loaded
            .push((object.clone(), cursor.and_utc().to_rfc3339()));
    }
    for (name, why) in [
        ("_hcmeta", "Heroku Connect's metadata"),
        ("_sf_event_log", "Heroku Connect's streaming buffer"),
    ] {
        if have.tables.contains_key(name) {
            plan.left_alone.push(format!(
                "{schema}.{name} ({why}; forcesync does not use it)"
            ));
        }
    }
    for (table, layout) in &have.tables {
        let mapped = wanted.iter().any(|w| &w.table == table);
        let heroku_connect = layout.columns.iter().any(|(c, _)| c == "_hc_lastop");
        if !mapped && heroku_connect {
            plan.left_alone.push(format!(
                "{schema}.{table} (synced by Heroku Connect, not by these mappings: its \
                 triggers still capture into _trigger_log, where forcesync leaves the entries)"
            ));
        }
    }
    let last_processed_at = last_processed(&tx, schema, &have).await?;
    let mut outcome = Outcome {
        plan,
        applied: false,
        already_adopted: false,
        last_processed_at,
        pending: pending::Handled::default(),
        refusal: None,
    };

    let incompatible = outcome.plan.incompatible();
    if !incompatible.is_empty() {
        let list: Vec<String> = incompatible
            .iter()
            .map(|(t, c, have, want)| {
                format!("{schema}.{t}.{c} is {have}, forcesync's mapping needs {want}")
            })
            .collect();
        outcome.refusal = Some(format!(
            "incompatible column types: {}; change the column (or the mapping) first",
            list.join("; ")
        ));
        return Ok(outcome); // rolled back
    }
    let hcmeta_org: Option<String> = if have.tables.contains_key("_hcmeta") {
        tx.query_opt(
            &format!("SELECT org_id::text AS org_id FROM {s}._hcmeta ORDER BY id DESC LIMIT 1"),
            &[],
        )
        .await?
        .and_then(|row| row.get::<_, Option<String>>("org_id"))
    } else {
        None
    };
    if let Some((hc, ours)) = other_org(hcmeta_org.as_deref(), options.org_id.as_deref()) {
        if !options.force {
            outcome.refusal = Some(format!(
                "this database belongs to org {hc} (Heroku Connect's {schema}._hcmeta.org_id), \
                 but the Salesforce settings log in to org {ours}: adopting would send its \
                 trigger-log entries to the wrong org. Point SF_LOGIN_URL and the credentials at \
                 org {hc}; --force adopts anyway (e.g. a sandbox refreshed since)"
            ));
            return Ok(outcome); // rolled back
        }
    }
    if !outcome.plan.changes() {
        outcome.already_adopted = true;
        return Ok(outcome); // the transaction rolls back: the scratch schema goes
    }
    if options.dry_run {
        return Ok(outcome);
    }
    if let Some(at) = last_processed_at {
        let window = chrono::Duration::from_std(options.active_window)
            .unwrap_or_else(|_| chrono::Duration::zero());
        if at > Utc::now() - window && !options.force {
            outcome.refusal = Some(format!(
                "Heroku Connect looks active: it processed a trigger-log entry at {}. Pause the \
                 connection first (Heroku Connect dashboard, or `heroku connect:pause`), then run \
                 adopt again; --force adopts anyway",
                at.to_rfc3339()
            ));
            return Ok(outcome); // rolled back
        }
    }

    // Apply.
    tx.batch_execute("SET LOCAL lock_timeout = '30s'").await?;
    for t in &outcome.plan.tables {
        let table = quote_ident(&t.table);
        if !t.found {
            tx.batch_execute(&format!("ALTER TABLE {reference}.{table} SET SCHEMA {s}"))
                .await?;
            continue;
        }
        for (column, ty) in &t.add_columns {
            tx.batch_execute(&format!(
                "ALTER TABLE {s}.{table} ADD COLUMN {} {ty}",
                quote_ident(column)
            ))
            .await?;
        }
        for (column, _, ty) in &t.widen_columns {
            tx.batch_execute(&format!(
                "ALTER TABLE {s}.{table} ALTER COLUMN {} TYPE {ty}",
                quote_ident(column)
            ))
            .await?;
        }
        for (column, default) in &t.set_defaults {
            tx.batch_execute(&format!(
                "ALTER TABLE {s}.{table} ALTER COLUMN {} SET DEFAULT {default}",
                quote_ident(column)
            ))
            .await?;
        }
        let target = &want.tables[&t.table];
        let indexes = target.indexes.iter().map(|i| (&i.name, &i.definition));
        create_named(&tx, schema, &t.add_indexes, indexes).await?;
        each_quoted(&tx, &t.replace_triggers, |name| {
            format!("DROP TRIGGER IF EXISTS {name} ON {s}.{table}")
        })
        .await?;
    }
    // Functions before the triggers that call them.
    for f in &want.functions {
        let key = format!("{}({})", f.name, f.arguments);
        if !outcome.plan.replace_functions.contains(&key) {
            continue;
        }
        // Parameters named otherwise cannot be replaced in place: drop that one first.
        for other in have
            .functions
            .iter()
            .filter(|h| h.name == f.name && h.arguments != f.arguments)
        {
            tx.batch_execute(&format!(
                "DROP FUNCTION IF EXISTS {s}.{}({})",
                quote_ident(&other.name),
                other.arguments
            ))
            .await?;
        }
        tx.batch_execute(&rewrite_schema(&f.definition, REFERENCE_SCHEMA, schema))
            .await?;
    }
    for t in &outcome.plan.tables {
        let table = quote_ident(&t.table);
        let target = &want.tables[&t.table];
        if !t.found {
            // Moved with the reference's triggers, which call the reference's functions.
            let triggers = target.triggers.iter().map(|g| &g.name);
            each_quoted(&tx, triggers, |name| {
                format!("DROP TRIGGER {name} ON {s}.{table}")
            })
            .await?;
        }
        let triggers = target.triggers.iter().map(|g| (&g.name, &g.definition));
        create_named(&tx, schema, &t.create_triggers, triggers).await?;
        each_quoted(&tx, &t.drop_functions, |name| {
            format!("DROP FUNCTION IF EXISTS {s}.{name}()")
        })
        .await?;
    }
    tx.batch_execute(&format!("DROP SCHEMA {reference} CASCADE"))
        .await?;

    system::migrate_in(&tx, schema).await?;
    let states = StateStore::new(schema);
    for mapping in registry.mappings {
        states.ensure(&tx, mapping.object, mapping.table).await?;
    }
    for (object, cursor) in &outcome.plan.mark_loaded {
        let cursor = DateTime::parse_from_rfc3339(cursor)
            .map(|d| d.naive_utc())
            .unwrap_or_default();
        tx.execute(
            &format!(
                "UPDATE {s}._forcesync_mapping_state
                 SET loaded_at = now(), watermark_systemmodstamp = $2, watermark_sfid = NULL,
                     deleted_checked_until = $2, message = 'adopted from Heroku Connect',
                     updated_at = now()
                 WHERE mapping = $1"
            ),
            &[object, &cursor],
        )
        .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
             version VARCHAR(50) PRIMARY KEY NOT NULL,
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
         )",
    )
    .await?;
    for version in &outcome.plan.record_migrations {
        tx.execute(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING",
            &[version],
        )
        .await?;
    }
    outcome.pending = pending::hand_over(&tx, registry).await?;
    tx.commit().await?;
    outcome.applied = true;
    Ok(outcome)
}

/// Creates in `schema` the reference's objects (indexes, triggers) named in `names`, from the
/// reference's `definitions` (name, definition).
async fn create_named<'d>(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    names: &[String],
    definitions: impl IntoIterator<Item = (&'d String, &'d String)>,
) -> Result<(), tokio_postgres::Error> {
    let definitions: std::collections::HashMap<_, _> = definitions.into_iter().collect();
    for name in names {
        let definition = definitions.get(name).expect("planned from the reference");
        tx.batch_execute(&rewrite_schema(definition, REFERENCE_SCHEMA, schema))
            .await?;
    }
    Ok(())
}

/// Executes, for each of `names`, the statement `statement` makes of the name quoted.
async fn each_quoted<'n>(
    tx: &tokio_postgres::Transaction<'_>,
    names: impl IntoIterator<Item = &'n String>,
    statement: impl Fn(String) -> String,
) -> Result<(), tokio_postgres::Error> {
    for name in names {
        tx.batch_execute(&statement(quote_ident(name))).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_org_is_told_apart_by_the_first_15_characters_of_its_id() {
        let hc = "00D5e000000abcdEAA";
        assert_eq!(other_org(Some(hc), Some("00D5e000000abcd")), None);
        assert_eq!(other_org(Some(hc), Some(hc)), None);
        assert_eq!(
            other_org(Some(hc), Some("00D5e000000zzzzEAA")),
            Some((hc.to_owned(), "00D5e000000zzzzEAA".to_owned()))
        );
        // Either side unknown: nothing to compare.
        assert_eq!(other_org(None, Some(hc)), None);
        assert_eq!(other_org(Some(hc), None), None);
        assert_eq!(other_org(Some(" "), Some(hc)), None);
    }

    #[test]
    fn the_migrations_schema_is_rewritten_everywhere_it_is_named() {
        let sql = "CREATE SCHEMA IF NOT EXISTS salesforce;\nCREATE TABLE salesforce.account (id serial);\n\
                   PERFORM pg_notify('salesforce.hc_trigger_log', 'ping');";
        let out = rewrite_schema(sql, "salesforce", REFERENCE_SCHEMA);
        assert!(!out.contains("salesforce"), "{out}");
        assert_eq!(rewrite_schema(&out, REFERENCE_SCHEMA, "salesforce"), sql);
    }

    #[test]
    fn the_cursor_starts_a_look_back_before_the_newest_row() {
        let newest =
            NaiveDateTime::parse_from_str("2026-12-01 10:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            cursor_from(newest, Duration::from_secs(120)).to_string(),
            "2026-12-01 09:58:00"
        );
    }
}
