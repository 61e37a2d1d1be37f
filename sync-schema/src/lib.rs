//! forcesync's code generation core: `mappings/*.toml` + describe snapshots → [`catalog::Catalog`]
//! → SQL migrations and Rust code. The proc-macro (`sync-macros`) and `generated/build.rs` are thin
//! front-ends over this crate.

pub mod catalog;
pub mod describe;
pub mod diagnostics;
pub mod load;
pub mod mapping;
pub mod soql;
pub mod types;

pub use diagnostics::{Diagnostic, Diagnostics};
pub use load::load_dir;
