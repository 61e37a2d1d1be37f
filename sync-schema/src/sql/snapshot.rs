//! The Postgres schema a catalog needs, as plain serializable data.
//!
//! A snapshot is written next to every migration (`schema.json`); the next build diffs the
//! catalog against the latest one. It records only what forcesync manages: mapped tables, their
//! mapped columns (the fixed `id`, `_hc_lastop`, `_hc_err` are implied), indexes, and whether
//! application writes are captured for the writer.

use serde::{Deserialize, Serialize};

use crate::catalog::{Access, Catalog, Mapping, PgType};

/// Bumped when the snapshot layout changes incompatibly.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    pub format: u32,
    /// The layout of the schema-wide objects ([`super::system::SYSTEM_VERSION`]); snapshots
    /// written before it was recorded have version 1.
    #[serde(default = "first_system_version")]
    pub system: u32,
    /// The Postgres schema, e.g. `salesforce`.
    pub schema: String,
    /// Sorted by table name.
    pub tables: Vec<TableSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSnapshot {
    pub name: String,
    /// The Salesforce object synced into the table.
    pub object: String,
    /// Application writes are recorded in `_trigger_log` (read-write mappings only).
    pub capture: bool,
    pub columns: Vec<ColumnSnapshot>,
    pub indexes: Vec<IndexSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSnapshot {
    pub name: String,
    /// SQL spelling, e.g. `varchar(255)`.
    #[serde(rename = "type")]
    pub sql_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSnapshot {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
}

fn first_system_version() -> u32 {
    1
}

impl SchemaSnapshot {
    /// The schema exactly as the catalog describes it (nothing retained from earlier versions).
    pub fn from_catalog(catalog: &Catalog) -> Self {
        let mut tables: Vec<TableSnapshot> = catalog
            .mappings
            .iter()
            .map(TableSnapshot::from_mapping)
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        SchemaSnapshot {
            format: FORMAT,
            system: super::system::SYSTEM_VERSION,
            schema: catalog.settings.schema.clone(),
            tables,
        }
    }

    pub fn table(&self, name: &str) -> Option<&TableSnapshot> {
        self.tables.iter().find(|t| t.name == name)
    }

    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).unwrap_or_default();
        json.push('\n');
        json
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl TableSnapshot {
    pub fn from_mapping(mapping: &Mapping) -> Self {
        TableSnapshot {
            name: mapping.table.clone(),
            object: mapping.object.clone(),
            capture: mapping.access == Access::ReadWrite,
            columns: mapping
                .fields
                .iter()
                .map(|f| ColumnSnapshot {
                    name: f.column.clone(),
                    sql_type: f.pg_type.sql(),
                })
                .collect(),
            indexes: mapping
                .indexes
                .iter()
                .map(|i| IndexSnapshot {
                    name: i.name.clone(),
                    columns: i.columns.clone(),
                    unique: i.unique,
                })
                .collect(),
        }
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSnapshot> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Parses the SQL spelling [`PgType::sql`] produces.
pub fn parse_pg_type(sql: &str) -> Option<PgType> {
    Some(match sql {
        "text" => PgType::Text,
        "double precision" => PgType::DoublePrecision,
        "integer" => PgType::Integer,
        "bigint" => PgType::BigInt,
        "boolean" => PgType::Boolean,
        "date" => PgType::Date,
        "timestamp" => PgType::Timestamp,
        "time" => PgType::Time,
        other => PgType::Varchar(
            other
                .strip_prefix("varchar(")?
                .strip_suffix(')')?
                .parse()
                .ok()?,
        ),
    })
}
