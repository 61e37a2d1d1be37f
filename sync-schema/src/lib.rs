//! forcesync's code generation core: `mappings/*.toml` + describe snapshots → [`catalog::Catalog`]
//! → SQL migrations and Rust code. The proc-macro (`sync-macros`) and `generated/build.rs` are thin
//! front-ends over this crate.

pub mod catalog;
pub mod rust;
#[doc(hidden)]
pub mod testing;
