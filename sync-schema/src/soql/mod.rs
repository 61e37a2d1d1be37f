//! A mapping's `filter`: a SOQL `WHERE` condition, parsed into a [`Condition`] with the grammar
//! Salesforce accepts, checked against the object's describe ([`validate`]: fields exist and are
//! filterable, literals fit the field types), and evaluated against records
//! ([`Condition::eval`]: the engine applies it to change events, which Salesforce does not
//! filter). Errors carry byte spans inside the filter string.
//!
//! Grammar (keywords case-insensitive):
//! ```text
//! condition  := unary ((AND unary)* | (OR unary)*)      -- mixing AND/OR needs parentheses
//! unary      := NOT unary | '(' condition ')' | comparison
//! comparison := path op value | path [NOT] LIKE string | path [NOT] IN '(' values ')'
//!             | path INCLUDES|EXCLUDES '(' strings ')'
//! op         := = | != | <> | < | <= | > | >=
//! value      := 'string' | number | true | false | null | 2024-01-31 | 2024-01-31T10:00:00Z
//!             | 10:00:00.000Z | TODAY | LAST_N_DAYS:30 | ...
//! path       := Field | Relationship.Field (parent describe must be in mappings/describe/)
//! ```
//! Relative date literals (`TODAY`, `LAST_N_DAYS:30`) parse but do not validate: a record would
//! leave such a filter as time passes, with no change event to say so.

mod ast;
mod check;
mod eval;
mod lex;

use std::ops::Range;

pub use ast::{Comparison, Condition, FieldPath, Literal, Operator, Spanned};
pub use eval::json_lookup;

use crate::describe::SObjectDescribe;

/// One problem in a filter; `span` is a byte range of the filter text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub span: Range<usize>,
    pub message: String,
    pub help: String,
}

fn err(span: Range<usize>, message: impl Into<String>, help: impl Into<String>) -> FilterError {
    FilterError {
        span,
        message: message.into(),
        help: help.into(),
    }
}

impl Condition {
    /// Parses a filter (syntax only; see [`validate`] for the check against a describe).
    pub fn parse(filter: &str) -> Result<Condition, FilterError> {
        ast::parse(filter)
    }
}

/// Checks `filter` against `object`. `parent` returns the describe of another object (for
/// `Account.Industry`-style paths) when its snapshot exists. Returns every problem found; a
/// syntax error stops parsing, so it is reported alone.
pub fn validate<'a>(
    filter: &str,
    object: &'a SObjectDescribe,
    parent: &dyn Fn(&str) -> Option<&'a SObjectDescribe>,
) -> Vec<FilterError> {
    match Condition::parse(filter) {
        Ok(condition) => check::check(&condition, object, parent),
        Err(e) => vec![e],
    }
}

#[cfg(test)]
mod tests;
