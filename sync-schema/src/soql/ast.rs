//! The parsed form of a filter ([`Condition`]) and the parser building it from tokens.

use std::fmt;
use std::ops::Range;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};

use super::lex::{is_kw, lex, Tok, Token};
use super::{err, FilterError};
use crate::diagnostics::did_you_mean;

/// A SOQL `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every operand holds (two or more).
    And(Vec<Condition>),
    /// At least one operand holds (two or more).
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Comparison(Comparison),
}

/// `path op value`, or `path op (values)` for the list operators.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: FieldPath,
    pub op: Operator,
    /// Byte span of the operator in the filter.
    pub op_span: Range<usize>,
    /// One value, or the list of `IN`, `NOT IN`, `INCLUDES`, `EXCLUDES`.
    pub values: Vec<Spanned<Literal>>,
}

/// A field, possibly through relationships: `Industry`, `Account__r.Industry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    /// As written (case preserved).
    pub parts: Vec<String>,
    pub span: Range<usize>,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.parts.join("."))
    }
}

/// A value with its byte span in the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    /// `!=` or `<>`.
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
    Includes,
    Excludes,
}

impl Operator {
    /// The SOQL spelling, e.g. `"!="`, `"NOT IN"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Like => "LIKE",
            Operator::NotLike => "NOT LIKE",
            Operator::In => "IN",
            Operator::NotIn => "NOT IN",
            Operator::Includes => "INCLUDES",
            Operator::Excludes => "EXCLUDES",
        }
    }

    /// Whether the operator takes a parenthesised list of values.
    pub fn takes_list(self) -> bool {
        matches!(
            self,
            Operator::In | Operator::NotIn | Operator::Includes | Operator::Excludes
        )
    }
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string, escapes resolved (`\_` and `\%` kept escaped for `LIKE`).
    String(String),
    Number {
        value: f64,
        /// Written without a decimal point.
        integral: bool,
    },
    Boolean(bool),
    Null,
    Date(NaiveDate),
    DateTime(DateTime<FixedOffset>),
    /// A time of day in UTC.
    Time(NaiveTime),
    /// A relative date literal, upper-cased: `TODAY`, `LAST_N_DAYS:30`.
    DateLiteral(String),
}

impl Literal {
    /// "a string", "a whole number", ... for messages.
    pub fn what(&self) -> &'static str {
        match self {
            Literal::String(_) => "a string",
            Literal::Number { integral: true, .. } => "a whole number",
            Literal::Number { .. } => "a decimal number",
            Literal::Boolean(_) => "a boolean",
            Literal::Null => "null",
            Literal::Date(_) => "a date",
            Literal::DateTime(_) => "a datetime",
            Literal::Time(_) => "a time",
            Literal::DateLiteral(_) => "a relative date literal",
        }
    }
}

/// Words SOQL reserves: never field names.
const RESERVED: &[&str] = &[
    "AND", "OR", "NOT", "LIKE", "IN", "INCLUDES", "EXCLUDES", "NULL", "TRUE", "FALSE", "SELECT",
];

/// SOQL date literals without a parameter.
pub(super) const DATE_LITERALS: &[&str] = &[
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_QUARTER",
    "LAST_QUARTER",
    "NEXT_QUARTER",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
    "THIS_FISCAL_QUARTER",
    "LAST_FISCAL_QUARTER",
    "NEXT_FISCAL_QUARTER",
    "THIS_FISCAL_YEAR",
    "LAST_FISCAL_YEAR",
    "NEXT_FISCAL_YEAR",
];

/// SOQL date literals that take `:n`.
pub(super) const DATE_LITERALS_N: &[&str] = &[
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
    "N_DAYS_AGO",
    "LAST_N_WEEKS",
    "NEXT_N_WEEKS",
    "N_WEEKS_AGO",
    "LAST_N_MONTHS",
    "NEXT_N_MONTHS",
    "N_MONTHS_AGO",
    "LAST_N_QUARTERS",
    "NEXT_N_QUARTERS",
    "N_QUARTERS_AGO",
    "LAST_N_YEARS",
    "NEXT_N_YEARS",
    "N_YEARS_AGO",
    "LAST_N_FISCAL_QUARTERS",
    "NEXT_N_FISCAL_QUARTERS",
    "N_FISCAL_QUARTERS_AGO",
    "LAST_N_FISCAL_YEARS",
    "NEXT_N_FISCAL_YEARS",
    "N_FISCAL_YEARS_AGO",
];

/// Parses a whole filter; the first syntax error is returned.
pub(super) fn parse(filter: &str) -> Result<Condition, FilterError> {
    let tokens = lex(filter)?;
    if tokens.is_empty() {
        return Err(err(
            0..filter.len(),
            "the filter is empty",
            "write a SOQL condition such as `IsDeleted = false`, or remove `filter`",
        ));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: filter.len(),
    };
    let condition = parser.condition()?;
    if let Some(t) = parser.tokens.get(parser.pos) {
        let help = match t.kind {
            Tok::Word(ref w) if is_kw(w, "ORDER") || is_kw(w, "LIMIT") => {
                "a filter is only the WHERE condition; remove ORDER BY / LIMIT"
            }
            Tok::RParen => "remove the unmatched `)`",
            _ => "join conditions with AND or OR",
        };
        return Err(err(
            t.span.clone(),
            format!("unexpected {} after the condition", t.kind.describe()),
            help,
        ));
    }
    Ok(condition)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Tok::Word(w), .. }) if is_kw(w, kw))
    }

    fn peek_is(&self, kind: &Tok) -> bool {
        self.peek().is_some_and(|t| t.kind == *kind)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn eof_span(&self) -> Range<usize> {
        self.end..self.end
    }

    fn expected(&self, what: &str, help: &str) -> FilterError {
        match self.peek() {
            Some(t) => err(
                t.span.clone(),
                format!("expected {what}, found {}", t.kind.describe()),
                help,
            ),
            None => err(
                self.eof_span(),
                format!("expected {what} at the end of the filter"),
                help,
            ),
        }
    }

    fn condition(&mut self) -> Result<Condition, FilterError> {
        let mut operands = vec![self.unary()?];
        let mut joiner: Option<String> = None;
        while let Some(Token {
            kind: Tok::Word(w),
            span,
        }) = self.peek().cloned()
        {
            let upper = w.to_ascii_uppercase();
            if upper != "AND" && upper != "OR" {
                break;
            }
            if let Some(j) = joiner.as_ref().filter(|j| **j != upper) {
                let help = format!(
                    "group the conditions, e.g. `(a {j} b) {upper} c` or `a {j} (b {upper} c)`"
                );
                return Err(err(
                    span,
                    "SOQL does not allow mixing AND and OR without parentheses",
                    help,
                ));
            }
            joiner = Some(upper);
            self.pos += 1;
            operands.push(self.unary()?);
        }
        Ok(match joiner.as_deref() {
            None => operands.pop().expect("one operand was parsed"),
            Some("AND") => Condition::And(operands),
            Some(_) => Condition::Or(operands),
        })
    }

    fn unary(&mut self) -> Result<Condition, FilterError> {
        if self.peek_word("NOT") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.unary()?)));
        }
        if self.peek_is(&Tok::LParen) {
            self.pos += 1;
            let inner = self.condition()?;
            return match self.next() {
                Some(Token {
                    kind: Tok::RParen, ..
                }) => Ok(inner),
                _ => {
                    self.pos -= 1;
                    Err(self.expected("`)`", "close the parenthesis"))
                }
            };
        }
        self.comparison().map(Condition::Comparison)
    }

    fn path(&mut self) -> Result<FieldPath, FilterError> {
        let help = "start each condition with a field name, e.g. `Industry = 'Energy'`";
        match self.next() {
            Some(Token {
                kind: Tok::Word(w),
                span,
            }) if !RESERVED.iter().any(|r| is_kw(&w, r)) => {
                let start = span.start;
                let mut end = span.end;
                let mut parts = vec![w];
                while self.peek_is(&Tok::Dot) {
                    self.pos += 1;
                    match self.next() {
                        Some(Token {
                            kind: Tok::Word(w),
                            span,
                        }) => {
                            end = span.end;
                            parts.push(w);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.expected("a field name after `.`", help));
                        }
                    }
                }
                Ok(FieldPath {
                    parts,
                    span: start..end,
                })
            }
            Some(Token {
                kind: Tok::Word(w),
                span,
            }) if is_kw(&w, "SELECT") => Err(err(
                span,
                "a filter is only a WHERE condition, not a query",
                "keep just the condition, e.g. `Industry = 'Energy'`",
            )),
            _ => {
                self.pos -= 1;
                Err(self.expected("a field name", help))
            }
        }
    }

    fn comparison(&mut self) -> Result<Comparison, FilterError> {
        let field = self.path()?;
        let negated = self.peek_word("NOT");
        if negated {
            self.pos += 1;
        }
        let Some(op_tok) = self.next() else {
            return Err(err(
                self.eof_span(),
                format!("expected an operator after `{field}`"),
                "compare with = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES",
            ));
        };
        let op = match (&op_tok.kind, negated) {
            (Tok::Op(o), false) => match *o {
                "=" => Some(Operator::Eq),
                "!=" | "<>" => Some(Operator::Ne),
                "<" => Some(Operator::Lt),
                "<=" => Some(Operator::Le),
                ">" => Some(Operator::Gt),
                ">=" => Some(Operator::Ge),
                _ => None,
            },
            (Tok::Word(w), _) if is_kw(w, "LIKE") => Some(if negated {
                Operator::NotLike
            } else {
                Operator::Like
            }),
            (Tok::Word(w), _) if is_kw(w, "IN") => Some(if negated {
                Operator::NotIn
            } else {
                Operator::In
            }),
            (Tok::Word(w), false) if is_kw(w, "INCLUDES") => Some(Operator::Includes),
            (Tok::Word(w), false) if is_kw(w, "EXCLUDES") => Some(Operator::Excludes),
            _ => None,
        };
        let Some(op) = op else {
            self.pos -= 1;
            return Err(self.expected(
                "a comparison operator",
                "compare with = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES",
            ));
        };
        let values = if op.takes_list() {
            self.value_list(op)?
        } else {
            vec![self.value()?]
        };
        Ok(Comparison {
            field,
            op,
            op_span: op_tok.span,
            values,
        })
    }

    fn value_list(&mut self, op: Operator) -> Result<Vec<Spanned<Literal>>, FilterError> {
        let op = op.as_str();
        if !self.peek_is(&Tok::LParen) {
            return Err(self.expected(
                &format!("`(` after {op}"),
                &format!("list the values in parentheses: `{op} ('a', 'b')`"),
            ));
        }
        self.pos += 1;
        if self.peek_word("SELECT") {
            let span = self
                .peek()
                .map(|t| t.span.clone())
                .unwrap_or(self.eof_span());
            return Err(err(
                span,
                "subqueries are not supported in mapping filters",
                "list the values explicitly",
            ));
        }
        let mut values = vec![self.value()?];
        loop {
            match self.next() {
                Some(Token {
                    kind: Tok::Comma, ..
                }) => values.push(self.value()?),
                Some(Token {
                    kind: Tok::RParen, ..
                }) => return Ok(values),
                _ => {
                    self.pos -= 1;
                    return Err(self.expected("`,` or `)`", "separate values with commas"));
                }
            }
        }
    }

    fn value(&mut self) -> Result<Spanned<Literal>, FilterError> {
        let help = "a value is 'text', a number, true, false, null, a date (2024-01-31), a \
                    datetime (2024-01-31T10:00:00Z) or a date literal (TODAY, LAST_N_DAYS:30)";
        let Some(t) = self.next() else {
            return Err(err(
                self.eof_span(),
                "expected a value at the end of the filter",
                help,
            ));
        };
        let invalid = |what: &str, text: &str| {
            err(
                t.span.clone(),
                format!("`{text}` is not a valid {what}"),
                "dates look like 2024-01-31, datetimes like 2024-01-31T10:00:00Z, times like \
                 10:00:00.000Z",
            )
        };
        let value = match &t.kind {
            Tok::Str(s) => Literal::String(s.clone()),
            Tok::Number(n) => Literal::Number {
                value: n.parse().map_err(|_| invalid("number", n))?,
                integral: !n.contains('.'),
            },
            Tok::Temporal(x) if x.contains('T') => Literal::DateTime(
                DateTime::parse_from_rfc3339(x).map_err(|_| invalid("datetime", x))?,
            ),
            Tok::Temporal(x) if x.contains(':') => {
                Literal::Time(parse_time_literal(x).ok_or_else(|| invalid("time", x))?)
            }
            Tok::Temporal(x) => Literal::Date(
                NaiveDate::parse_from_str(x, "%Y-%m-%d").map_err(|_| invalid("date", x))?,
            ),
            Tok::Word(w) if is_kw(w, "null") => Literal::Null,
            Tok::Word(w) if is_kw(w, "true") => Literal::Boolean(true),
            Tok::Word(w) if is_kw(w, "false") => Literal::Boolean(false),
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                let (name, n) = match upper.split_once(':') {
                    Some((name, n)) => (name, Some(n)),
                    None => (upper.as_str(), None),
                };
                if n.is_none() && DATE_LITERALS.contains(&name) {
                    Literal::DateLiteral(upper.clone())
                } else if DATE_LITERALS_N.contains(&name) {
                    if n.is_none() {
                        return Err(err(
                            t.span.clone(),
                            format!("date literal `{name}` needs a number"),
                            format!("write it as `{name}:30`"),
                        ));
                    }
                    Literal::DateLiteral(upper.clone())
                } else {
                    let suggestion =
                        did_you_mean(name, DATE_LITERALS.iter().chain(DATE_LITERALS_N).copied());
                    let help = match suggestion {
                        Some(s) => format!("did you mean the date literal `{s}`?"),
                        None => format!("quote text values: '{w}'"),
                    };
                    return Err(err(t.span.clone(), format!("`{w}` is not a value"), help));
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.expected("a value", help));
            }
        };
        Ok(Spanned {
            value,
            span: t.span,
        })
    }
}

/// `10:00:00.000Z` or `10:00:00+01:00` as a UTC time of day.
pub(super) fn parse_time_literal(text: &str) -> Option<NaiveTime> {
    let (clock, offset_minutes) = if let Some(clock) = text.strip_suffix('Z') {
        (clock, 0)
    } else {
        let pos = text.rfind(['+', '-'])?;
        let (clock, zone) = text.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?),
        )
    };
    let time = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").ok()?;
    Some(time - chrono::TimeDelta::minutes(offset_minutes))
}
