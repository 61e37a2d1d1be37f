//! From the schema of the last migration to the schema the catalog needs: the steps of the next
//! migration, each with its `up` and `down` SQL.
//!
//! Only additive, data-preserving changes happen on their own: new tables, new columns, widened
//! columns, new (or changed) indexes, write capture switched on or off. A column whose field left
//! the mapping is kept (with a warning) until the mapping lists it in `drop_columns`; a table whose
//! mapping was removed is kept (with a warning). Narrowing a column or changing its type is an
//! error that says how to proceed.

use std::fmt;
use std::path::PathBuf;

use super::snapshot::{
    parse_pg_type, ColumnSnapshot, IndexSnapshot, SchemaSnapshot, TableSnapshot,
};
use super::{ddl, system};
use crate::catalog::{Catalog, Mapping, PgType};

/// One change to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The schema, system tables and trigger functions (first migration only).
    CreateSystem,
    /// The schema-wide objects of an older layout brought up to date, entries converted
    /// (`system::upgrade_up`).
    UpgradeSystem {
        from: u32,
        /// Every table of the previous migration (their status triggers are replaced).
        tables: Vec<String>,
        /// The tables whose writes were captured before (their capture triggers are replaced).
        captured: Vec<String>,
    },
    CreateTable(TableSnapshot),
    AddColumn {
        table: String,
        column: ColumnSnapshot,
    },
    WidenColumn {
        table: String,
        column: String,
        from: String,
        to: String,
    },
    DropColumn {
        table: String,
        column: ColumnSnapshot,
    },
    CreateIndex {
        table: String,
        index: IndexSnapshot,
    },
    DropIndex {
        table: String,
        index: IndexSnapshot,
    },
    EnableCapture {
        table: String,
    },
    DisableCapture {
        table: String,
    },
}

impl Step {
    pub fn up(&self, schema: &str) -> String {
        match self {
            Step::CreateSystem => system::up(schema),
            Step::UpgradeSystem {
                from,
                tables,
                captured,
            } => system::upgrade_up(schema, *from, tables, captured),
            Step::CreateTable(table) => ddl::create_table(schema, table),
            Step::AddColumn { table, column } => ddl::add_column(schema, table, column),
            Step::WidenColumn {
                table, column, to, ..
            } => ddl::alter_column_type(schema, table, column, to),
            Step::DropColumn { table, column } => ddl::drop_column(schema, table, &column.name),
            Step::CreateIndex { table, index } => ddl::create_index(schema, table, index),
            Step::DropIndex { index, .. } => ddl::drop_index(schema, index),
            Step::EnableCapture { table } => ddl::enable_capture(schema, table),
            Step::DisableCapture { table } => ddl::disable_capture(schema, table),
        }
    }

    pub fn down(&self, schema: &str) -> String {
        match self {
            Step::CreateSystem => system::down(schema),
            Step::UpgradeSystem {
                from,
                tables,
                captured,
            } => system::upgrade_down(schema, *from, tables, captured),
            Step::CreateTable(table) => ddl::drop_table(schema, table),
            Step::AddColumn { table, column } => ddl::drop_column(schema, table, &column.name),
            Step::WidenColumn {
                table,
                column,
                from,
                ..
            } => ddl::alter_column_type(schema, table, column, from),
            Step::DropColumn { table, column } => ddl::add_column(schema, table, column),
            Step::CreateIndex { index, .. } => ddl::drop_index(schema, index),
            Step::DropIndex { table, index } => ddl::create_index(schema, table, index),
            Step::EnableCapture { table } => ddl::disable_capture(schema, table),
            Step::DisableCapture { table } => ddl::enable_capture(schema, table),
        }
    }

    /// A few words for the migration name: `create_account`, `alter_contact`.
    fn slug(&self) -> String {
        match self {
            Step::CreateSystem => "initial".to_owned(),
            Step::UpgradeSystem { .. } => "upgrade_system".to_owned(),
            Step::CreateTable(t) => format!("create_{}", t.name),
            Step::AddColumn { table, .. }
            | Step::WidenColumn { table, .. }
            | Step::DropColumn { table, .. }
            | Step::CreateIndex { table, .. }
            | Step::DropIndex { table, .. }
            | Step::EnableCapture { table }
            | Step::DisableCapture { table } => format!("alter_{table}"),
        }
    }
}

/// The next migration: steps, the schema after them, and warnings for the build to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// The schema after the steps, to store next to the migration.
    pub snapshot: SchemaSnapshot,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn up_sql(&self) -> String {
        self.sql(self.steps.iter(), Step::up)
    }

    /// The steps reversed, each undone.
    pub fn down_sql(&self) -> String {
        self.sql(self.steps.iter().rev(), Step::down)
    }

    fn sql<'a>(
        &self,
        steps: impl Iterator<Item = &'a Step>,
        render: fn(&Step, &str) -> String,
    ) -> String {
        let mut out = String::from("-- @generated by forcesync from mappings/ — do not edit\n");
        for step in steps {
            out.push('\n');
            out.push_str(&render(step, &self.snapshot.schema));
        }
        out
    }

    /// A short name for the migration: `initial`, `create_invoice__c`, `alter_account`, or
    /// `alter_account_contact`.
    pub fn slug(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for step in &self.steps {
            let slug = step.slug();
            if slug == "initial" {
                return slug;
            }
            if !parts.contains(&slug) {
                parts.push(slug);
            }
        }
        match parts.len() {
            0 => "empty".to_owned(),
            1 => parts.remove(0),
            _ => {
                let tables: Vec<&str> = parts
                    .iter()
                    .map(|p| p.split_once('_').map_or(p.as_str(), |(_, t)| t))
                    .collect();
                let mut slug = format!("update_{}", tables[..tables.len().min(3)].join("_"));
                if tables.len() > 3 {
                    slug.push_str("_and_more");
                }
                slug
            }
        }
    }
}

/// A change the planner refuses to make on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    SchemaRenamed {
        from: String,
        to: String,
    },
    /// A column would become narrower or change type.
    IncompatibleType {
        mapping_file: PathBuf,
        field: String,
        table: String,
        column: String,
        from: String,
        to: String,
    },
    /// `drop_columns` names a column the mapping still maps.
    DropMappedColumn {
        mapping_file: PathBuf,
        column: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::SchemaRenamed { from, to } => write!(
                f,
                "the Postgres schema changed from `{from}` to `{to}`; forcesync does not move \
                 tables between schemas. Set `schema = \"{from}\"` in mappings/forcesync.toml, or \
                 move the tables yourself and start a fresh migrations directory"
            ),
            PlanError::IncompatibleType {
                mapping_file,
                field,
                table,
                column,
                from,
                to,
            } => {
                let kind = match (parse_pg_type(from), parse_pg_type(to)) {
                    (Some(PgType::Varchar(a)), Some(PgType::Varchar(b))) if b < a => "narrowing",
                    (Some(PgType::Text), Some(PgType::Varchar(_))) => "narrowing",
                    _ => "changing the type of",
                };
                write!(
                    f,
                    "{}: field `{field}` needs column {table}.{column} to change from {from} to \
                     {to}, and {kind} a column can lose data. To keep the data, restore the \
                     field's previous describe snapshot; to replace the column, remove `{field}` \
                     from `fields`, add \"{column}\" to `drop_columns`, build once, then map the \
                     field again",
                    mapping_file.display()
                )
            }
            PlanError::DropMappedColumn {
                mapping_file,
                column,
            } => write!(
                f,
                "{}: `drop_columns` lists \"{column}\", but a mapped field still uses that \
                 column. Remove it from `drop_columns`, or remove the field from `fields`",
                mapping_file.display()
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Whether a column of type `from` can become `to` without losing data.
fn widens(from: PgType, to: PgType) -> bool {
    matches!(
        (from, to),
        (PgType::Varchar(a), PgType::Varchar(b)) if b >= a
    ) || matches!(
        (from, to),
        (PgType::Varchar(_), PgType::Text) | (PgType::Integer, PgType::BigInt)
    )
}

/// Plans the migration from `previous` (the snapshot stored with the latest migration; `None`
/// when there is none yet) to what `catalog` needs.
pub fn plan(previous: Option<&SchemaSnapshot>, catalog: &Catalog) -> Result<Plan, Vec<PlanError>> {
    let target = SchemaSnapshot::from_catalog(catalog);
    let mut errors = Vec::new();
    for mapping in &catalog.mappings {
        for column in &mapping.drop_columns {
            if mapping.fields.iter().any(|f| &f.column == column) {
                errors.push(PlanError::DropMappedColumn {
                    mapping_file: mapping.mapping_file.clone(),
                    column: column.clone(),
                });
            }
        }
    }
    let Some(previous) = previous else {
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut steps = vec![Step::CreateSystem];
        steps.extend(target.tables.iter().cloned().map(Step::CreateTable));
        return Ok(Plan {
            steps,
            snapshot: target,
            warnings: Vec::new(),
        });
    };
    if previous.schema != target.schema {
        errors.push(PlanError::SchemaRenamed {
            from: previous.schema.clone(),
            to: target.schema.clone(),
        });
        return Err(errors);
    }

    let mut steps = Vec::new();
    if previous.system < target.system {
        steps.push(Step::UpgradeSystem {
            from: previous.system,
            tables: previous.tables.iter().map(|t| t.name.clone()).collect(),
            captured: previous
                .tables
                .iter()
                .filter(|t| t.capture)
                .map(|t| t.name.clone())
                .collect(),
        });
    }
    let mut warnings = Vec::new();
    let mut tables = Vec::new();
    for new in &target.tables {
        match previous.table(&new.name) {
            None => {
                steps.push(Step::CreateTable(new.clone()));
                tables.push(new.clone());
            }
            Some(old) => {
                let mapping = catalog.mappings.iter().find(|m| m.table == new.name);
                let merged = diff_table(old, new, mapping, &mut steps, &mut warnings, &mut errors);
                tables.push(merged);
            }
        }
    }
    for old in &previous.tables {
        if target.table(&old.name).is_none() {
            warnings.push(format!(
                "table {}.{} is no longer mapped (no mapping for `{}`); it is kept with its data. \
                 Drop it yourself with a hand-written migration if it is no longer needed",
                previous.schema, old.name, old.object
            ));
            tables.push(old.clone());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Plan {
        steps,
        snapshot: SchemaSnapshot {
            format: target.format,
            system: target.system,
            schema: target.schema,
            tables,
        },
        warnings,
    })
}

/// Steps for one table present in both snapshots; returns the table after them.
fn diff_table(
    old: &TableSnapshot,
    new: &TableSnapshot,
    mapping: Option<&Mapping>,
    steps: &mut Vec<Step>,
    warnings: &mut Vec<String>,
    errors: &mut Vec<PlanError>,
) -> TableSnapshot {
    let table = new.name.clone();
    let drop_columns: &[String] = mapping.map_or(&[], |m| &m.drop_columns);
    let mapping_file = mapping.map(|m| m.mapping_file.clone()).unwrap_or_default();

    // Columns: keep the old order, widen in place, append new ones.
    let mut columns = Vec::new();
    let mut drops = Vec::new();
    for old_col in &old.columns {
        match new.column(&old_col.name) {
            Some(new_col) if new_col.sql_type == old_col.sql_type => columns.push(new_col.clone()),
            Some(new_col) => {
                let from = parse_pg_type(&old_col.sql_type);
                let to = parse_pg_type(&new_col.sql_type);
                if from.zip(to).is_some_and(|(a, b)| widens(a, b)) {
                    steps.push(Step::WidenColumn {
                        table: table.clone(),
                        column: old_col.name.clone(),
                        from: old_col.sql_type.clone(),
                        to: new_col.sql_type.clone(),
                    });
                    columns.push(new_col.clone());
                } else {
                    let field = mapping
                        .and_then(|m| m.fields.iter().find(|f| f.column == old_col.name))
                        .map_or_else(|| old_col.name.clone(), |f| f.sf_name.clone());
                    errors.push(PlanError::IncompatibleType {
                        mapping_file: mapping_file.clone(),
                        field,
                        table: table.clone(),
                        column: old_col.name.clone(),
                        from: old_col.sql_type.clone(),
                        to: new_col.sql_type.clone(),
                    });
                    columns.push(old_col.clone());
                }
            }
            None if drop_columns.contains(&old_col.name) => drops.push(old_col.clone()),
            None => {
                warnings.push(format!(
                    "column {table}.{} is no longer mapped; it is kept with its data. To drop it, \
                     add \"{}\" to `drop_columns` in {}",
                    old_col.name,
                    old_col.name,
                    mapping_file.display()
                ));
                columns.push(old_col.clone());
            }
        }
    }
    for new_col in &new.columns {
        if old.column(&new_col.name).is_none() {
            steps.push(Step::AddColumn {
                table: table.clone(),
                column: new_col.clone(),
            });
            columns.push(new_col.clone());
        }
    }

    // Indexes: drop removed or changed ones first (before dropping their columns), then create.
    for old_idx in &old.indexes {
        if !new.indexes.contains(old_idx) {
            steps.push(Step::DropIndex {
                table: table.clone(),
                index: old_idx.clone(),
            });
        }
    }
    for column in drops {
        steps.push(Step::DropColumn {
            table: table.clone(),
            column,
        });
    }
    for new_idx in &new.indexes {
        if !old.indexes.contains(new_idx) {
            steps.push(Step::CreateIndex {
                table: table.clone(),
                index: new_idx.clone(),
            });
        }
    }

    match (old.capture, new.capture) {
        (false, true) => steps.push(Step::EnableCapture {
            table: table.clone(),
        }),
        (true, false) => steps.push(Step::DisableCapture {
            table: table.clone(),
        }),
        _ => {}
    }

    TableSnapshot {
        name: table,
        object: new.object.clone(),
        capture: new.capture,
        columns,
        indexes: new.indexes.clone(),
    }
}
