//! What the database to adopt holds besides its layout: when its trigger log was last processed,
//! rows and trigger-log entries per table, app and engine migrations not recorded yet, mappings
//! already loaded.

use chrono::{DateTime, NaiveDateTime, Utc};
use tokio_postgres::GenericClient;

use super::plan::{Layout, TablePlan};
use super::{AdoptError, AppMigration, LOG_TABLES};
use crate::engine::system::{self, quote_ident};

/// Whether `relation` exists (resolved through the connection's `search_path`).
async fn exists<C: GenericClient>(db: &C, relation: &str) -> Result<bool, AdoptError> {
    Ok(db
        .query_one("SELECT to_regclass($1) IS NOT NULL AS found", &[&relation])
        .await?
        .get("found"))
}

/// When Heroku Connect (or anything) last processed a trigger-log entry.
pub(super) async fn last_processed<C: GenericClient>(
    db: &C,
    schema: &str,
    have: &Layout,
) -> Result<Option<DateTime<Utc>>, AdoptError> {
    let s = quote_ident(schema);
    let mut latest = None;
    for table in LOG_TABLES {
        let columns = have.tables.get(table).map(|t| &t.columns);
        if !columns.is_some_and(|c| c.iter().any(|(n, _)| n == "processed_at")) {
            continue;
        }
        let at: Option<DateTime<Utc>> = db
            .query_one(
                &format!("SELECT max(processed_at)::timestamptz AS latest FROM {s}.{table}"),
                &[],
            )
            .await?
            .get("latest");
        latest = latest.max(at);
    }
    Ok(latest)
}

/// Fills the plan's figures: rows and newest `systemmodstamp`, trigger-log entries by state,
/// archived `FAILED` entries.
pub(super) async fn count<C: GenericClient>(
    db: &C,
    schema: &str,
    have: &Layout,
    tables: &mut [TablePlan],
) -> Result<(), AdoptError> {
    let s = quote_ident(schema);
    for t in tables.iter_mut().filter(|t| t.found && t.object.is_some()) {
        let has_stamp = have
            .tables
            .get(&t.table)
            .is_some_and(|l| l.columns.iter().any(|(c, _)| c == "systemmodstamp"));
        let stamp = if has_stamp {
            "max(systemmodstamp)::timestamp AS newest"
        } else {
            "NULL::timestamp AS newest"
        };
        let row = db
            .query_one(
                &format!(
                    "SELECT count(*) AS n, {stamp} FROM {s}.{}",
                    quote_ident(&t.table)
                ),
                &[],
            )
            .await?;
        t.rows = row.get("n");
        let newest: Option<NaiveDateTime> = row.get("newest");
        t.newest_systemmodstamp = newest.map(|n| n.and_utc().to_rfc3339());
    }
    if have.tables.contains_key("_trigger_log") {
        for row in db
            .query(
                &format!(
                    "SELECT table_name::text AS table_name, coalesce(state, 'NULL')::text AS state,
                            count(*) AS n
                     FROM {s}._trigger_log GROUP BY 1, 2"
                ),
                &[],
            )
            .await?
        {
            let table: Option<String> = row.get("table_name");
            if let Some(t) = tables.iter_mut().find(|t| Some(&t.table) == table.as_ref()) {
                t.log_by_state.insert(row.get("state"), row.get("n"));
            }
        }
    }
    if have.tables.contains_key("_trigger_log_archive") {
        for row in db
            .query(
                &format!(
                    "SELECT table_name::text AS table_name, count(*) AS n FROM {s}._trigger_log_archive
                     WHERE state = 'FAILED' GROUP BY 1"
                ),
                &[],
            )
            .await?
        {
            let table: Option<String> = row.get("table_name");
            if let Some(t) = tables.iter_mut().find(|t| Some(&t.table) == table.as_ref()) {
                t.archived_failed = row.get("n");
            }
        }
    }
    Ok(())
}

/// Versions of the app migrations not recorded in diesel's table (resolved through the
/// connection's `search_path`, as diesel does).
pub(super) async fn unrecorded<C: GenericClient>(
    db: &C,
    migrations: &[AppMigration],
) -> Result<Vec<String>, AdoptError> {
    let recorded = names(
        db,
        "__diesel_schema_migrations",
        "SELECT version::text AS name FROM __diesel_schema_migrations",
    )
    .await?;
    Ok(migrations
        .iter()
        .filter(|m| !recorded.contains(&m.version))
        .map(|m| m.version.clone())
        .collect())
}

/// Engine migrations not applied yet.
pub(super) async fn engine_pending<C: GenericClient>(
    db: &C,
    schema: &str,
) -> Result<Vec<String>, AdoptError> {
    let table = format!("{}._forcesync_system_migrations", quote_ident(schema));
    let done = names(
        db,
        &table,
        &format!("SELECT name::text AS name FROM {table}"),
    )
    .await?;
    Ok(system::pending(&done).map(|m| m.name.to_owned()).collect())
}

/// Mappings with a state row that says loaded.
pub(super) async fn loaded_mappings<C: GenericClient>(
    db: &C,
    schema: &str,
) -> Result<Vec<String>, AdoptError> {
    let table = format!("{}._forcesync_mapping_state", quote_ident(schema));
    let select = format!("SELECT mapping::text AS name FROM {table} WHERE loaded_at IS NOT NULL");
    names(db, &table, &select).await
}

/// The `name` column of the rows `select` returns from `table`; none when `table` does not
/// exist.
async fn names<C: GenericClient>(
    db: &C,
    table: &str,
    select: &str,
) -> Result<Vec<String>, AdoptError> {
    if !exists(db, table).await? {
        return Ok(Vec::new());
    }
    Ok(db
        .query(select, &[])
        .await?
        .iter()
        .map(|r| r.get("name"))
        .collect())
}
