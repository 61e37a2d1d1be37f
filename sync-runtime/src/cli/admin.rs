//! The operator's commands over Postgres only (no Salesforce call): `status`, `errors`,
//! `retry` / `ignore`, `conflicts`, `pause` / `resume`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::adapter::{hstore, MappingDescriptor};
use crate::engine::state::StateStore;
use crate::engine::system::quote_ident;
use crate::engine::writer::admin::{self as writer_admin, Action, Selection};

use super::report::{self, render_table};
use super::{CliError, Context, SelectArgs, EXIT_ATTENTION};

async fn migrated_db(ctx: &Context) -> Result<tokio_postgres::Client, CliError> {
    let db = ctx.connect().await?;
    if !report::is_migrated(&db, ctx.app.registry.schema).await? {
        return Err(report::ReportError::NotMigrated(ctx.app.registry.schema.to_owned()).into());
    }
    Ok(db)
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::failure(format!("cannot render JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// `forcesync status [MAPPING] [--json]`.
pub async fn status(ctx: &Context, mapping: Option<&str>, json: bool) -> Result<(), CliError> {
    let only = match mapping {
        Some(name) => vec![ctx.mapping(name)?],
        None => Vec::new(),
    };
    let db = ctx.connect().await?;
    let reports = report::gather(&db, ctx.app.registry, &only).await?;
    if json {
        print_json(&reports)
    } else {
        let limits = report::gather_limits(&db, ctx.app.registry).await?;
        print!("{}", render_table(&reports, Utc::now()));
        print!("{}", report::render_limits(&limits, Utc::now()));
        Ok(())
    }
}

/// A failed write, as `errors` shows it.
#[derive(Debug, Serialize)]
pub struct FailedWrite {
    pub trigger_log_id: i32,
    pub mapping: String,
    pub action: Option<String>,
    pub record_id: Option<i32>,
    pub sfid: Option<String>,
    pub message: Option<String>,
    pub values: Option<Value>,
    pub at: Option<DateTime<Utc>>,
}

/// A Salesforce record the read side could not apply.
#[derive(Debug, Serialize)]
pub struct ReadError {
    pub id: i64,
    pub mapping: String,
    pub sfid: Option<String>,
    pub field: Option<String>,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl ReadError {
    /// The columns [`ReadError::from_row`] reads, for a `SELECT` of `_forcesync_read_errors`.
    pub const COLUMNS: &'static str = "id, mapping, sfid, field, reason, created_at";

    /// One read error from a row selecting [`ReadError::COLUMNS`], read by name.
    pub fn from_row(r: &tokio_postgres::Row) -> Self {
        ReadError {
            id: r.get("id"),
            mapping: r.get("mapping"),
            sfid: r.get("sfid"),
            field: r.get("field"),
            reason: r.get("reason"),
            at: r.get("created_at"),
        }
    }
}

/// A trigger-log payload (Heroku Connect's `hstore` text) as typed JSON, typed by `mapping`'s
/// fields when known; text that does not parse is shown as it is.
pub fn payload(mapping: Option<&MappingDescriptor>, text: Option<String>) -> Option<Value> {
    let text = text?;
    Some(match hstore::parse(&text) {
        Ok(pairs) => Value::Object(hstore::typed(mapping, pairs, false)),
        Err(_) => Value::String(text),
    })
}

#[derive(Debug, Serialize)]
struct Errors {
    failed_writes: Vec<FailedWrite>,
    read_errors: Vec<ReadError>,
}

/// `forcesync errors [MAPPING]`: exit code 3 when there is any.
pub async fn errors(ctx: &Context, mapping: Option<&str>, json: bool) -> Result<(), CliError> {
    let mappings = ctx.mappings(mapping)?;
    let db = migrated_db(ctx).await?;
    let schema = quote_ident(ctx.app.registry.schema);
    let tables: Vec<&str> = mappings.iter().map(|m| m.table).collect();
    let objects: Vec<&str> = mappings.iter().map(|m| m.object).collect();
    let rows = db
        .query(
            &format!(
                "SELECT id, table_name, action, record_id, sfid, sf_message, \"values\", processed_at
                 FROM {schema}._trigger_log_archive
                 WHERE state = 'FAILED' AND table_name = ANY($1) ORDER BY id"
            ),
            &[&tables],
        )
        .await?;
    let failed_writes: Vec<FailedWrite> = rows
        .iter()
        .map(|r| {
            let table: Option<String> = r.get("table_name");
            let descriptor = mappings
                .iter()
                .find(|m| Some(m.table) == table.as_deref())
                .copied();
            let mapping = descriptor.map_or_else(
                || table.clone().unwrap_or_default(),
                |m| m.object.to_owned(),
            );
            FailedWrite {
                trigger_log_id: r.get("id"),
                mapping,
                action: r.get("action"),
                record_id: r.get("record_id"),
                sfid: r.get("sfid"),
                message: r.get("sf_message"),
                values: payload(descriptor, r.get("values")),
                at: r.get("processed_at"),
            }
        })
        .collect();
    let rows = db
        .query(
            &format!(
                "SELECT {} FROM {schema}._forcesync_read_errors
                 WHERE resolved_at IS NULL AND mapping = ANY($1) ORDER BY id",
                ReadError::COLUMNS
            ),
            &[&objects],
        )
        .await?;
    let read_errors: Vec<ReadError> = rows.iter().map(ReadError::from_row).collect();
    let any = !failed_writes.is_empty() || !read_errors.is_empty();
    let errors = Errors {
        failed_writes,
        read_errors,
    };
    if json {
        print_json(&errors)?;
    } else {
        print!(
            "{}",
            render_errors(&errors.failed_writes, &errors.read_errors)
        );
    }
    if any {
        Err(CliError {
            code: EXIT_ATTENTION,
            message: format!(
                "{} failed writes, {} read errors; `forcesync retry --id N` sends a write again once fixed, `forcesync ignore --id N` drops it",
                errors.failed_writes.len(),
                errors.read_errors.len()
            ),
        })
    } else {
        Ok(())
    }
}

/// The `errors` listing (pure).
pub fn render_errors(failed: &[FailedWrite], read: &[ReadError]) -> String {
    let mut out = String::new();
    if failed.is_empty() && read.is_empty() {
        out.push_str("no failed writes, no read errors\n");
        return out;
    }
    if !failed.is_empty() {
        out.push_str("Failed writes (Postgres → Salesforce):\n");
        for f in failed {
            out.push_str(&format!(
                "  #{id} {mapping} {action} row {row} {sfid}: {message}\n",
                id = f.trigger_log_id,
                mapping = f.mapping,
                action = f.action.as_deref().unwrap_or("?"),
                row = f
                    .record_id
                    .map_or_else(|| "?".to_owned(), |r| r.to_string()),
                sfid = f.sfid.as_deref().unwrap_or("(new)"),
                message = f.message.as_deref().unwrap_or("no message"),
            ));
            if let Some(values) = &f.values {
                out.push_str(&format!("      values: {values}\n"));
            }
        }
    }
    if !read.is_empty() {
        out.push_str("Read errors (Salesforce → Postgres):\n");
        for r in read {
            out.push_str(&format!(
                "  {mapping} {sfid}{field}: {reason}\n",
                mapping = r.mapping,
                sfid = r.sfid.as_deref().unwrap_or("?"),
                field = r
                    .field
                    .as_ref()
                    .map_or_else(String::new, |f| format!(".{f}")),
                reason = r.reason,
            ));
        }
    }
    out
}

/// `forcesync retry` / `forcesync ignore`.
pub async fn retry_or_ignore(
    ctx: &Context,
    select: &SelectArgs,
    retry: bool,
) -> Result<(), CliError> {
    let verb = if retry { "retry" } else { "ignore" };
    let selection = match (select.all, select.ids.is_empty()) {
        (true, _) => Selection::All,
        (false, false) => Selection::Entries(select.ids.clone()),
        (false, true) if select.mapping.is_some() => Selection::All,
        (false, true) => {
            return Err(CliError::settings(format!(
                "say which failed writes to {verb}: a mapping, `--id TRIGGER_LOG_ID` (see `forcesync errors`), or `--all`"
            )))
        }
    };
    let mappings = ctx.mappings(select.mapping.as_deref())?;
    let mut db = migrated_db(ctx).await?;
    let schema = ctx.app.registry.schema;
    let action = if retry { Action::Retry } else { Action::Ignore };
    let n = writer_admin::act(&mut db, schema, &mappings, &selection, action).await?;
    if retry {
        println!("{n} failed writes requeued; the writer sends them again");
    } else {
        println!("{n} failed writes marked ignored");
    }
    if n == 0 {
        if let Selection::Entries(ids) = &selection {
            return Err(CliError::settings(format!(
                "no failed write with id {ids:?}; `forcesync errors` lists them"
            )));
        }
    }
    Ok(())
}

/// A recorded conflict.
#[derive(Debug, Serialize)]
pub struct Conflict {
    pub id: i64,
    pub mapping: String,
    pub sfid: Option<String>,
    pub record_id: Option<i32>,
    pub field: String,
    pub postgres_value: Option<Value>,
    pub salesforce_value: Option<Value>,
    pub policy: String,
    pub decision: String,
    pub at: DateTime<Utc>,
}

impl Conflict {
    /// The columns [`Conflict::from_row`] reads, for a `SELECT` of `_forcesync_conflicts`.
    pub const COLUMNS: &'static str = "id, mapping, sfid, record_id, field, postgres_value, \
         salesforce_value, policy, decision, created_at";

    /// One conflict from a row selecting [`Conflict::COLUMNS`], read by name.
    pub fn from_row(r: &tokio_postgres::Row) -> Self {
        Conflict {
            id: r.get("id"),
            mapping: r.get("mapping"),
            sfid: r.get("sfid"),
            record_id: r.get("record_id"),
            field: r.get("field"),
            postgres_value: r.get("postgres_value"),
            salesforce_value: r.get("salesforce_value"),
            policy: r.get("policy"),
            decision: r.get("decision"),
            at: r.get("created_at"),
        }
    }
}

#[cfg(test)]
impl Conflict {
    /// A recorded conflict on `Phone` (Postgres `"1"`, Salesforce `"2"`, Salesforce won).
    pub(crate) fn fixture(mapping: &str, sfid: &str, at: DateTime<Utc>) -> Conflict {
        Conflict {
            id: 1,
            mapping: mapping.into(),
            sfid: Some(sfid.into()),
            record_id: Some(1),
            field: "Phone".into(),
            postgres_value: Some(serde_json::json!("1")),
            salesforce_value: Some(serde_json::json!("2")),
            policy: "salesforce_wins".into(),
            decision: "salesforce".into(),
            at,
        }
    }
}

/// `forcesync conflicts [MAPPING]`.
pub async fn conflicts(
    ctx: &Context,
    mapping: Option<&str>,
    limit: i64,
    json: bool,
) -> Result<(), CliError> {
    let mappings = ctx.mappings(mapping)?;
    let objects: Vec<&str> = mappings.iter().map(|m| m.object).collect();
    let db = migrated_db(ctx).await?;
    let rows = db
        .query(
            &format!(
                "SELECT {} FROM {}._forcesync_conflicts WHERE mapping = ANY($1)
                 ORDER BY id DESC LIMIT $2",
                Conflict::COLUMNS,
                quote_ident(ctx.app.registry.schema)
            ),
            &[&objects, &limit],
        )
        .await?;
    let conflicts: Vec<Conflict> = rows.iter().rev().map(Conflict::from_row).collect();
    if json {
        return print_json(&conflicts);
    }
    print!("{}", render_conflicts(&conflicts));
    Ok(())
}

/// The `conflicts` listing (pure).
pub fn render_conflicts(conflicts: &[Conflict]) -> String {
    if conflicts.is_empty() {
        return "no conflicts recorded\n".to_owned();
    }
    let show = |v: &Option<Value>| {
        v.as_ref()
            .map_or_else(|| "null".to_owned(), Value::to_string)
    };
    conflicts
        .iter()
        .map(|c| {
            format!(
                "{at} {mapping} {sfid} {field}: Postgres {pg} / Salesforce {sf} → {decision} ({policy})\n",
                at = c.at.format("%Y-%m-%d %H:%M:%S"),
                mapping = c.mapping,
                sfid = c.sfid.as_deref().unwrap_or("?"),
                field = c.field,
                pg = show(&c.postgres_value),
                sf = show(&c.salesforce_value),
                decision = c.decision,
                policy = c.policy,
            )
        })
        .collect()
}

/// `forcesync pause` / `forcesync resume`.
pub async fn set_paused(
    ctx: &Context,
    mapping: Option<&str>,
    paused: bool,
) -> Result<(), CliError> {
    let mappings = ctx.mappings(mapping)?;
    let db = migrated_db(ctx).await?;
    let states = StateStore::new(ctx.app.registry.schema);
    for m in mappings {
        states.ensure(&db, m.object, m.table).await?;
        states.set_paused(&db, m.object, paused).await?;
        println!(
            "{} {}",
            m.object,
            if paused {
                "paused (a running engine stops it within seconds)"
            } else {
                "resumed"
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_shows_its_id_message_and_values() {
        let text = render_errors(
            &[FailedWrite {
                trigger_log_id: 12,
                mapping: "Account".into(),
                action: Some("UPDATE".into()),
                record_id: Some(3),
                sfid: Some("001000000000001AAA".into()),
                message: Some("REQUIRED_FIELD_MISSING: Name".into()),
                values: Some(serde_json::json!({"name": null})),
                at: None,
            }],
            &[],
        );
        assert!(text
            .contains("#12 Account UPDATE row 3 001000000000001AAA: REQUIRED_FIELD_MISSING: Name"));
        assert!(text.contains("values: {\"name\":null}"));
        assert_eq!(
            render_errors(&[], &[]),
            "no failed writes, no read errors\n"
        );
    }

    #[test]
    fn a_conflict_shows_both_values_and_the_decision() {
        let text = render_conflicts(&[Conflict::fixture("Account", "001x", Utc::now())]);
        assert!(text
            .contains("Phone: Postgres \"1\" / Salesforce \"2\" → salesforce (salesforce_wins)"));
    }
}
