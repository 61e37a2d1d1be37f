//! forcesync's code generation core: `mappings/*.toml` + describe snapshots → [`catalog::Catalog`]
//! → SQL migrations and Rust code. The proc-macro (`sync-macros`) and `generated/build.rs` are thin
//! front-ends over this crate.
//!
//! Without the default `codegen` feature only what the runtime needs is built: the shared
//! vocabulary ([`model`]), the describe format ([`describe`]) and mapping filters ([`soql`]).

pub mod catalog;
pub mod describe;
pub mod diagnostics;
pub mod ident;
#[cfg(feature = "codegen")]
pub mod load;
#[cfg(feature = "codegen")]
pub mod mapping;
#[cfg(feature = "codegen")]
pub mod migrations;
pub mod model;
#[cfg(feature = "codegen")]
mod relationship;
#[cfg(feature = "codegen")]
pub mod rust;
pub mod soql;
#[cfg(feature = "codegen")]
pub mod sql;
#[doc(hidden)]
#[cfg(feature = "codegen")]
pub mod testing;
#[cfg(feature = "codegen")]
pub mod types;

pub use diagnostics::{Diagnostic, Diagnostics};
#[cfg(feature = "codegen")]
pub use load::load_dir;
