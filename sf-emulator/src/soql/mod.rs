//! SOQL: lexer, parser, binder against the org schema, index-aware planner and executor.

pub mod ast;
pub mod dates;
pub mod error;
pub mod lex;
pub mod parse;

pub use error::{SoqlError, SoqlErrorCode};
pub use parse::parse;
