//! Evaluating a parsed filter against a record's Salesforce JSON values, with SOQL semantics:
//!
//! * text compares case-insensitively (`=`, `<`, `LIKE`, `IN`, `INCLUDES`);
//! * `null` is a value: `X = null` holds for null, `X != 'a'` and `X NOT IN (…)` hold for null,
//!   ordering comparisons, `LIKE`, `IN` and `INCLUDES` never hold for null;
//! * on a boolean field null counts as `false` (Salesforce: `Flag = null` is `Flag = false`);
//! * numbers compare numerically, dates as dates, datetimes as instants (any offset), times as
//!   UTC times of day;
//! * a field the lookup cannot provide makes its comparison unknown (`None`); `AND`/`OR` still
//!   decide when the known operands are enough (`false AND unknown` is `false`).

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde_json::Value;

use super::ast::{parse_time_literal, Comparison, Condition, Literal, Operator};

impl Condition {
    /// Whether a record matches: `Some(true)`/`Some(false)`, or `None` when it depends on a
    /// field `lookup` cannot provide (or on a value of an unexpected type).
    ///
    /// `lookup` receives each field path as written in the filter (`Industry`,
    /// `Account__r.Industry`); SOQL names are case-insensitive, so it should match names
    /// case-insensitively (as [`json_lookup`] does). It returns `None` when the record does not
    /// carry the field and `Some(Value::Null)` for a null.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> Option<bool> {
        match self {
            Condition::And(operands) => {
                let mut unknown = false;
                for operand in operands {
                    match operand.eval(lookup) {
                        Some(false) => return Some(false),
                        None => unknown = true,
                        Some(true) => {}
                    }
                }
                (!unknown).then_some(true)
            }
            Condition::Or(operands) => {
                let mut unknown = false;
                for operand in operands {
                    match operand.eval(lookup) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
            Condition::Not(inner) => inner.eval(lookup).map(|b| !b),
            Condition::Comparison(comparison) => {
                let value = lookup(&comparison.field.to_string())?;
                comparison.eval(&value)
            }
        }
    }

    /// The field paths the condition reads, as written, each once, in filter order.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields(&self, out: &mut Vec<String>) {
        match self {
            Condition::And(operands) | Condition::Or(operands) => {
                operands.iter().for_each(|c| c.collect_fields(out));
            }
            Condition::Not(inner) => inner.collect_fields(out),
            Condition::Comparison(comparison) => {
                let path = comparison.field.to_string();
                if !out.iter().any(|p| p.eq_ignore_ascii_case(&path)) {
                    out.push(path);
                }
            }
        }
    }
}

/// A lookup over a Salesforce JSON record (REST shape): field names matched case-insensitively,
/// relationship paths followed into nested objects (`Account__r.Industry` reads
/// `{"Account__r": {"Industry": …}}`; a null relationship gives null).
pub fn json_lookup(record: &Value) -> impl Fn(&str) -> Option<Value> + '_ {
    move |path: &str| {
        let mut current = record;
        for part in path.split('.') {
            if current.is_null() {
                return Some(Value::Null);
            }
            current = current
                .as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(part))
                .map(|(_, v)| v)?;
        }
        Some(current.clone())
    }
}

impl Comparison {
    fn eval(&self, value: &Value) -> Option<bool> {
        let mut literals = self.values.iter().map(|v| &v.value);
        match self.op {
            Operator::Eq => equals(value, literals.next()?),
            Operator::Ne => equals(value, literals.next()?).map(|b| !b),
            Operator::Lt | Operator::Le | Operator::Gt | Operator::Ge => {
                let literal = literals.next()?;
                if value.is_null() || *literal == Literal::Null {
                    return Some(false);
                }
                let ordering = compare(value, literal)?;
                Some(match self.op {
                    Operator::Lt => ordering == Ordering::Less,
                    Operator::Le => ordering != Ordering::Greater,
                    Operator::Gt => ordering == Ordering::Greater,
                    _ => ordering != Ordering::Less,
                })
            }
            Operator::Like | Operator::NotLike => {
                let Literal::String(pattern) = literals.next()? else {
                    return None;
                };
                let matched = match value {
                    Value::Null => false,
                    Value::String(s) => like(s, pattern),
                    _ => return None,
                };
                Some(matched == (self.op == Operator::Like))
            }
            Operator::In | Operator::NotIn => {
                let mut unknown = false;
                let mut found = false;
                for literal in literals {
                    match equals(value, literal) {
                        Some(true) => found = true,
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                if !found && unknown {
                    return None;
                }
                Some(found == (self.op == Operator::In))
            }
            Operator::Includes | Operator::Excludes => {
                let selected: Vec<String> = match value {
                    Value::Null => Vec::new(),
                    Value::String(s) => split_multi(s),
                    _ => return None,
                };
                let mut any = false;
                for literal in literals {
                    let Literal::String(set) = literal else {
                        return None;
                    };
                    let wanted = split_multi(set);
                    if !wanted.is_empty() && wanted.iter().all(|w| selected.contains(w)) {
                        any = true;
                    }
                }
                Some(any == (self.op == Operator::Includes))
            }
        }
    }
}

/// `value = literal` with SOQL's null semantics.
fn equals(value: &Value, literal: &Literal) -> Option<bool> {
    match (value, literal) {
        (Value::Null, Literal::Null) => Some(true),
        (Value::Null, Literal::Boolean(b)) => Some(!b),
        (Value::Bool(b), Literal::Null) => Some(!b),
        (Value::Null, _) | (_, Literal::Null) => Some(false),
        _ => compare(value, literal).map(|o| o == Ordering::Equal),
    }
}

/// Orders a non-null value against a non-null literal; `None` when they are not comparable.
fn compare(value: &Value, literal: &Literal) -> Option<Ordering> {
    match (value, literal) {
        (Value::String(s), Literal::String(l)) => Some(fold(s).cmp(&fold(l))),
        (Value::Number(n), Literal::Number { value: l, .. }) => n.as_f64()?.partial_cmp(l),
        (Value::String(s), Literal::Number { value: l, .. }) => {
            s.trim().parse::<f64>().ok()?.partial_cmp(l)
        }
        (Value::Bool(b), Literal::Boolean(l)) => Some(b.cmp(l)),
        (Value::String(s), Literal::Date(l)) => Some(parse_date(s)?.cmp(l)),
        (Value::String(s), Literal::DateTime(l)) => Some(parse_datetime(s)?.cmp(l)),
        (Value::String(s), Literal::Time(l)) => Some(parse_time(s)?.cmp(l)),
        _ => None,
    }
}

fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

/// Salesforce REST (`2024-01-02T03:04:05.000+0000`) and CDC/ISO (`2024-01-02T03:04:05Z`).
fn parse_datetime(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    parse_time_literal(s).or_else(|| NaiveTime::parse_from_str(s, "%H:%M:%S%.f").ok())
}

/// The items of a multipicklist value (`A;B`), folded for comparison.
fn split_multi(s: &str) -> Vec<String> {
    s.split(';')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(fold)
        .collect()
}

/// SOQL `LIKE`: `%` any run, `_` one character, `\%` `\_` literal; case-insensitive.
fn like(text: &str, pattern: &str) -> bool {
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => match chars.next() {
                Some(e) => P::Char(e),
                None => P::Char('\\'),
            },
            c => P::Char(c),
        });
    }
    let text: Vec<char> = fold(text).chars().collect();
    let same = |a: char, b: char| a == b || a.to_lowercase().eq(b.to_lowercase());
    // Greedy matching with backtracking to the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match parts.get(p) {
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Char(c)) if same(*c, text[t]) => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    parts[p..].iter().all(|part| matches!(part, P::Any))
}
