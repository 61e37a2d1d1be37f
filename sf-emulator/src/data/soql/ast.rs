//! The SOQL abstract syntax tree produced by the parser and consumed by the binder.

use chrono::{DateTime, NaiveDate, Utc};

/// A byte offset into the query text, used to point error messages at a token.
pub type Pos = usize;

/// A parsed `SELECT ... FROM ...` statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: Name,
    pub filter: Option<Cond>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// An identifier with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub pos: Pos,
}

/// A field reference: `Name`, or a parent path such as `Account.Owner.Name`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    pub parts: Vec<String>,
    pub pos: Pos,
}

impl FieldPath {
    /// The path as written, joined with dots.
    pub fn dotted(&self) -> String {
        self.parts.join(".")
    }
}

/// One item of the `SELECT` list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Field(FieldPath),
    /// `COUNT()`: only the row count, no records.
    CountAll {
        pos: Pos,
    },
    /// `COUNT(field) [alias]`.
    CountField {
        field: FieldPath,
        alias: Option<String>,
    },
}

/// A `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        field: FieldPath,
        op: CmpOp,
        value: Literal,
    },
    Like {
        field: FieldPath,
        pattern: LikePattern,
        pos: Pos,
    },
    In {
        field: FieldPath,
        negated: bool,
        values: Vec<Literal>,
    },
    /// `INCLUDES` (negated = false) / `EXCLUDES` (negated = true) on a multi-select picklist.
    Includes {
        field: FieldPath,
        negated: bool,
        values: Vec<Literal>,
    },
}

/// A comparison operator (`!=` and `<>` are both `Ne`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A literal with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub kind: LiteralKind,
    pub pos: Pos,
}

/// The literal forms of SOQL.
#[derive(Debug, Clone, PartialEq)]
pub enum LiteralKind {
    Null,
    Bool(bool),
    /// A number, kept with its text so integers stay exact.
    Number {
        text: String,
        value: f64,
    },
    String(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    DateLiteral(DateLiteral),
}

/// One piece of a `LIKE` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LikePart {
    Text(String),
    /// `_`: exactly one character.
    AnyChar,
    /// `%`: any run of characters.
    AnyRun,
}

/// A compiled `LIKE` pattern (case-insensitive match, as Salesforce does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LikePattern {
    pub parts: Vec<LikePart>,
}

/// A relative date literal such as `TODAY` or `LAST_N_DAYS:30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLiteral {
    /// A range of whole days relative to today: `[today + start, today + end)`.
    Days { start: i64, end: i64 },
    /// A range of whole weeks (Sunday first) relative to this week.
    Weeks { start: i64, end: i64 },
    /// A range of whole months relative to this month.
    Months { start: i64, end: i64 },
    /// A range of whole quarters relative to this quarter.
    Quarters { start: i64, end: i64 },
    /// A range of whole years relative to this year.
    Years { start: i64, end: i64 },
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: FieldPath,
    pub descending: bool,
    /// `NULLS FIRST` / `NULLS LAST`; the default is first for ASC and last for DESC.
    pub nulls_first: bool,
}
