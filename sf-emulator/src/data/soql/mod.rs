//! SOQL: lexer, parser, binder against the org schema, index-aware planner and executor.

pub mod ast;
pub mod bind;
pub mod dates;
pub mod error;
pub mod eval;
pub mod exec;
pub mod lex;
pub mod parse;
pub mod render;
pub mod user;

pub use error::{SoqlError, SoqlErrorCode};
pub use parse::parse;
