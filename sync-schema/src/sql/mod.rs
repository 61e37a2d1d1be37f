//! Rendering the catalog as Postgres DDL, Heroku Connect compatible.
//!
//! * [`snapshot`]: a serializable model of the Postgres schema a catalog needs, stored next to
//!   each migration so the next build can diff against it.
//! * [`system`]: the schema-wide objects: `_trigger_log`, `_trigger_log_archive` and the trigger
//!   functions (the engine creates its own `_forcesync_*` tables at run time).
//! * [`ddl`]: per-table statements (tables, columns, indexes, triggers).
//! * [`diff`]: the steps from one snapshot to the next, with their `up` and `down` SQL.

pub mod ddl;
pub mod diff;
pub mod snapshot;
pub mod system;

pub use diff::{plan, Plan, PlanError, Step};
pub use snapshot::{ColumnSnapshot, IndexSnapshot, SchemaSnapshot, TableSnapshot};

pub use crate::ident::{qualified, quote_ident, quote_literal};

#[cfg(test)]
mod tests;
