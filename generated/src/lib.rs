//! The crate apps depend on: typed Diesel models and sync adapters for every mapping in
//! `../mappings` (module [`salesforce`]), and the migrations creating their tables.
//!
//! `build.rs` writes a new directory under `migrations/` whenever the mappings change; the
//! migrations are committed and applied with [`MIGRATIONS`]:
//!
//! ```no_run
//! use diesel::Connection;
//! use diesel_migrations::MigrationHarness;
//!
//! let mut conn = diesel::PgConnection::establish("postgres://localhost/app").unwrap();
//! conn.run_pending_migrations(generated::MIGRATIONS).unwrap();
//! ```

use diesel_migrations::{embed_migrations, EmbeddedMigrations};

/// Every migration in `migrations/`, embedded at compile time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
sync_macros::mappings!("../mappings");
