//! Validation of a mapping's `filter`: a SOQL `WHERE` condition, parsed with the grammar Salesforce
//! accepts and checked against the object's describe (fields exist and are filterable, literals
//! fit the field types). Errors carry byte spans inside the filter string.
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

use std::ops::Range;

use crate::catalog::SfType;
use crate::describe::{FieldDescribe, SObjectDescribe};
use crate::diagnostics::did_you_mean;
use crate::types::sf_type;

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

/// Checks `filter` against `object`. `parent` returns the describe of another object (for
/// `Account.Industry`-style paths) when its snapshot exists. Returns every problem found; a
/// syntax error stops parsing, so it is reported alone.
pub fn validate<'a>(
    filter: &str,
    object: &'a SObjectDescribe,
    parent: &dyn Fn(&str) -> Option<&'a SObjectDescribe>,
) -> Vec<FilterError> {
    let tokens = match lex(filter) {
        Ok(tokens) => tokens,
        Err(e) => return vec![e],
    };
    let mut parser = Parser {
        tokens,
        pos: 0,
        end: filter.len(),
        object,
        parent,
        errors: Vec::new(),
    };
    if parser.tokens.is_empty() {
        return vec![err(
            0..filter.len(),
            "the filter is empty",
            "write a SOQL condition such as `IsDeleted = false`, or remove `filter`",
        )];
    }
    match parser.condition() {
        Ok(()) => {
            if let Some(t) = parser.tokens.get(parser.pos) {
                let help = match t.kind {
                    Tok::Word(ref w) if is_kw(w, "ORDER") || is_kw(w, "LIMIT") => {
                        "a filter is only the WHERE condition; remove ORDER BY / LIMIT"
                    }
                    Tok::RParen => "remove the unmatched `)`",
                    _ => "join conditions with AND or OR",
                };
                parser.errors.push(err(
                    t.span.clone(),
                    format!("unexpected {} after the condition", t.kind.describe()),
                    help,
                ));
            }
        }
        Err(e) => parser.errors.push(e),
    }
    parser.errors
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Number(String),
    /// Date, datetime or time literal, as written.
    Temporal(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Dot,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Number(n) | Tok::Temporal(n) => format!("`{n}`"),
            Tok::Op(o) => format!("`{o}`"),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Dot => "`.`".into(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    span: Range<usize>,
}

fn lex(s: &str) -> Result<Vec<Token>, FilterError> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let push = |out: &mut Vec<Token>, kind, end| {
            out.push(Token {
                kind,
                span: start..end,
            })
        };
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                i += 1;
                push(&mut out, Tok::LParen, i);
            }
            b')' => {
                i += 1;
                push(&mut out, Tok::RParen, i);
            }
            b',' => {
                i += 1;
                push(&mut out, Tok::Comma, i);
            }
            b'.' => {
                i += 1;
                push(&mut out, Tok::Dot, i);
            }
            b'=' => {
                i += 1;
                push(&mut out, Tok::Op("="), i);
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                push(&mut out, Tok::Op("!="), i);
            }
            b'<' | b'>' => {
                let two = bytes.get(i + 1).copied();
                let (op, len) = match (c, two) {
                    (b'<', Some(b'=')) => ("<=", 2),
                    (b'<', Some(b'>')) => ("<>", 2),
                    (b'>', Some(b'=')) => (">=", 2),
                    (b'<', _) => ("<", 1),
                    _ => (">", 1),
                };
                i += len;
                push(&mut out, Tok::Op(op), i);
            }
            b'\'' => {
                let (value, end) = lex_string(s, i)?;
                i = end;
                push(&mut out, Tok::Str(value), i);
            }
            b'"' => {
                return Err(err(
                    i..i + 1,
                    "SOQL strings are quoted with single quotes",
                    "write 'text' instead of \"text\"",
                ))
            }
            b'0'..=b'9' | b'-' | b'+'
                if c.is_ascii_digit() || bytes.get(i + 1).is_some_and(u8::is_ascii_digit) =>
            {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || b":.+-".contains(&bytes[i]))
                {
                    i += 1;
                }
                let text = &s[start..i];
                let kind = classify_literal(text).ok_or_else(|| {
                    err(
                        start..i,
                        format!("`{text}` is not a valid SOQL literal"),
                        "numbers look like 42 or -3.5, dates like 2024-01-31, datetimes like \
                         2024-01-31T10:00:00Z, times like 10:00:00.000Z",
                    )
                })?;
                push(&mut out, kind, i);
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                // Date literals with a parameter: LAST_N_DAYS:30
                if bytes.get(i) == Some(&b':') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                push(&mut out, Tok::Word(s[start..i].to_owned()), i);
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                return Err(err(
                    i..i + ch.len_utf8(),
                    format!("unexpected character `{ch}` in the filter"),
                    "a filter is a SOQL WHERE condition, e.g. `Industry = 'Energy' AND AnnualRevenue > 1000000`",
                ));
            }
        }
    }
    Ok(out)
}

/// Reads a single-quoted SOQL string starting at `start`; returns its value and the end offset.
fn lex_string(s: &str, start: usize) -> Result<(String, usize), FilterError> {
    let mut value = String::new();
    let mut chars = s[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let at = start + 1 + off;
        match ch {
            '\'' => return Ok((value, at + 1)),
            '\\' => match chars.next() {
                Some((_, e)) => match e {
                    'n' | 'N' => value.push('\n'),
                    'r' | 'R' => value.push('\r'),
                    't' | 'T' => value.push('\t'),
                    'b' | 'B' => value.push('\u{8}'),
                    'f' | 'F' => value.push('\u{c}'),
                    '"' | '\'' | '\\' => value.push(e),
                    '_' | '%' => {
                        value.push('\\');
                        value.push(e);
                    }
                    other => {
                        return Err(err(
                            at..at + 1 + other.len_utf8(),
                            format!("invalid escape `\\{other}` in a SOQL string"),
                            "valid escapes are \\' \\\" \\\\ \\n \\r \\t \\b \\f, and \\_ \\% in LIKE patterns",
                        ))
                    }
                },
                None => break,
            },
            _ => value.push(ch),
        }
    }
    Err(err(
        start..s.len(),
        "unterminated string in the filter",
        "close the string with a single quote `'`",
    ))
}

fn classify_literal(t: &str) -> Option<Tok> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits(unsigned) {
        return Some(Tok::Number(t.to_owned()));
    }
    if let Some((a, b)) = unsigned.split_once('.') {
        if digits(a) && digits(b) {
            return Some(Tok::Number(t.to_owned()));
        }
    }
    if t.starts_with(['-', '+']) {
        return None;
    }
    let is_date = |d: &str| {
        let p: Vec<&str> = d.split('-').collect();
        p.len() == 3
            && p[0].len() == 4
            && p[1].len() == 2
            && p[2].len() == 2
            && p.iter().all(|x| digits(x))
            && (1..=12).contains(&p[1].parse::<u32>().unwrap_or(0))
            && (1..=31).contains(&p[2].parse::<u32>().unwrap_or(0))
    };
    // hh:mm:ss[.sss] followed by Z or ±hh:mm (`zone_required`) or nothing.
    let is_time = |tm: &str, zone_required: bool| {
        let (clock, zone) = if let Some(c) = tm.strip_suffix('Z') {
            (c, true)
        } else if let Some(pos) = tm.rfind(['+', '-']) {
            let z = &tm[pos + 1..];
            let ok = z.len() == 5 && z.as_bytes()[2] == b':' && digits(&z[..2]) && digits(&z[3..]);
            (&tm[..pos], ok)
        } else {
            (tm, !zone_required)
        };
        let (hms, frac_ok) = match clock.split_once('.') {
            Some((hms, frac)) => (hms, digits(frac)),
            None => (clock, true),
        };
        let p: Vec<&str> = hms.split(':').collect();
        zone && frac_ok
            && p.len() == 3
            && p.iter().all(|x| x.len() == 2 && digits(x))
            && p[0].parse::<u32>().unwrap_or(99) < 24
            && p[1].parse::<u32>().unwrap_or(99) < 60
            && p[2].parse::<u32>().unwrap_or(99) < 60
    };
    if is_date(t) {
        return Some(Tok::Temporal(t.to_owned()));
    }
    if let Some((d, tm)) = t.split_once('T') {
        if is_date(d) && is_time(tm, true) {
            return Some(Tok::Temporal(t.to_owned()));
        }
    }
    if t.ends_with('Z') && is_time(t, true) {
        return Some(Tok::Temporal(t.to_owned()));
    }
    None
}

fn is_kw(word: &str, kw: &str) -> bool {
    word.eq_ignore_ascii_case(kw)
}

const RESERVED: &[&str] = &[
    "AND", "OR", "NOT", "LIKE", "IN", "INCLUDES", "EXCLUDES", "NULL", "TRUE", "FALSE", "SELECT",
];

/// SOQL date literals without a parameter.
const DATE_LITERALS: &[&str] = &[
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
const DATE_LITERALS_N: &[&str] = &[
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

/// A literal value in a comparison.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int,
    Decimal,
    Bool,
    Null,
    Date,
    DateTime,
    Time,
    /// `TODAY`, `LAST_N_DAYS:30`, ...
    DateLiteral,
}

impl Value {
    fn what(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int => "a whole number",
            Value::Decimal => "a decimal number",
            Value::Bool => "a boolean",
            Value::Null => "null",
            Value::Date => "a date",
            Value::DateTime => "a datetime",
            Value::Time => "a time",
            Value::DateLiteral => "a relative date literal",
        }
    }
}

struct Parser<'a, 'p> {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
    object: &'a SObjectDescribe,
    parent: &'p dyn Fn(&str) -> Option<&'a SObjectDescribe>,
    errors: Vec<FilterError>,
}

/// What a comparison's left side resolved to.
struct Target<'a> {
    field: &'a FieldDescribe,
    object: &'a SObjectDescribe,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_word(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Tok::Word(w), .. }) if is_kw(w, kw))
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

    fn condition(&mut self) -> Result<(), FilterError> {
        self.unary()?;
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
            self.unary()?;
        }
        Ok(())
    }

    fn unary(&mut self) -> Result<(), FilterError> {
        if self.peek_word("NOT") {
            self.pos += 1;
            return self.unary();
        }
        if matches!(
            self.peek(),
            Some(Token {
                kind: Tok::LParen,
                ..
            })
        ) {
            self.pos += 1;
            self.condition()?;
            return match self.next() {
                Some(Token {
                    kind: Tok::RParen, ..
                }) => Ok(()),
                _ => {
                    self.pos -= 1;
                    Err(self.expected("`)`", "close the parenthesis"))
                }
            };
        }
        self.comparison()
    }

    fn path(&mut self) -> Result<(Vec<String>, Range<usize>), FilterError> {
        let help = "start each condition with a field name, e.g. `Industry = 'Energy'`";
        let mut parts = Vec::new();
        let start;
        match self.next() {
            Some(Token {
                kind: Tok::Word(w),
                span,
            }) if !RESERVED.iter().any(|r| is_kw(&w, r)) => {
                start = span.start;
                let mut end = span.end;
                parts.push(w);
                while matches!(self.peek(), Some(Token { kind: Tok::Dot, .. })) {
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
                Ok((parts, start..end))
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

    fn comparison(&mut self) -> Result<(), FilterError> {
        let (path, path_span) = self.path()?;
        let target = self.resolve(&path, path_span.clone());
        let negated_in = self.peek_word("NOT");
        if negated_in {
            self.pos += 1;
        }
        let Some(op_tok) = self.next() else {
            return Err(err(
                self.eof_span(),
                format!("expected an operator after `{}`", path.join(".")),
                "compare with = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES",
            ));
        };
        let op = match &op_tok.kind {
            Tok::Op(o) if !negated_in => (*o).to_owned(),
            Tok::Word(w)
                if ["LIKE", "IN"].iter().any(|k| is_kw(w, k))
                    || (!negated_in && ["INCLUDES", "EXCLUDES"].iter().any(|k| is_kw(w, k))) =>
            {
                w.to_ascii_uppercase()
            }
            _ => {
                self.pos -= 1;
                return Err(self.expected(
                    "a comparison operator",
                    "compare with = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES",
                ));
            }
        };
        let op_span = op_tok.span.clone();
        let values = if op == "IN" || op == "INCLUDES" || op == "EXCLUDES" {
            self.value_list(&op)?
        } else {
            vec![self.value()?]
        };
        if let Some(target) = target {
            self.check(&target, &path.join("."), path_span, &op, op_span, &values);
        }
        Ok(())
    }

    fn value_list(&mut self, op: &str) -> Result<Vec<(Value, Range<usize>)>, FilterError> {
        match self.next() {
            Some(Token {
                kind: Tok::LParen, ..
            }) => {}
            _ => {
                self.pos -= 1;
                return Err(self.expected(
                    &format!("`(` after {op}"),
                    &format!("list the values in parentheses: `{op} ('a', 'b')`"),
                ));
            }
        }
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

    fn value(&mut self) -> Result<(Value, Range<usize>), FilterError> {
        let help = "a value is 'text', a number, true, false, null, a date (2024-01-31), a \
                    datetime (2024-01-31T10:00:00Z) or a date literal (TODAY, LAST_N_DAYS:30)";
        let Some(t) = self.next() else {
            return Err(err(
                self.eof_span(),
                "expected a value at the end of the filter",
                help,
            ));
        };
        let value = match &t.kind {
            Tok::Str(s) => Value::Str(s.clone()),
            Tok::Number(n) if n.contains('.') => Value::Decimal,
            Tok::Number(_) => Value::Int,
            Tok::Temporal(x) if x.contains('T') => Value::DateTime,
            Tok::Temporal(x) if x.contains(':') => Value::Time,
            Tok::Temporal(_) => Value::Date,
            Tok::Word(w) if is_kw(w, "null") => Value::Null,
            Tok::Word(w) if is_kw(w, "true") || is_kw(w, "false") => Value::Bool,
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                let (name, n) = match upper.split_once(':') {
                    Some((name, n)) => (name.to_owned(), Some(n.to_owned())),
                    None => (upper.clone(), None),
                };
                if n.is_none() && DATE_LITERALS.contains(&name.as_str()) {
                    Value::DateLiteral
                } else if DATE_LITERALS_N.contains(&name.as_str()) {
                    if n.is_none() {
                        return Err(err(
                            t.span.clone(),
                            format!("date literal `{name}` needs a number"),
                            format!("write it as `{name}:30`"),
                        ));
                    }
                    Value::DateLiteral
                } else {
                    let suggestion =
                        did_you_mean(&name, DATE_LITERALS.iter().chain(DATE_LITERALS_N).copied());
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
        Ok((value, t.span))
    }

    fn resolve(&mut self, path: &[String], span: Range<usize>) -> Option<Target<'a>> {
        let mut object = self.object;
        let (last, relationships) = path.split_last()?;
        for rel in relationships {
            let reference = object.fields.iter().find(|f| {
                f.relationship_name
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(rel))
            });
            let Some(reference) = reference else {
                let names = object
                    .fields
                    .iter()
                    .filter_map(|f| f.relationship_name.as_deref());
                let help = match did_you_mean(rel, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "use the relationship name of a lookup field on {} (e.g. `Owner` for OwnerId)",
                        object.name
                    ),
                };
                self.errors.push(err(
                    span,
                    format!("unknown relationship `{rel}` on {}", object.name),
                    help,
                ));
                return None;
            };
            if reference.reference_to.len() != 1 {
                self.errors.push(err(
                    span,
                    format!(
                        "`{rel}` is polymorphic (it can point to {}); filters cannot follow it",
                        reference.reference_to.join(", ")
                    ),
                    format!("filter on `{}` itself instead", reference.name),
                ));
                return None;
            }
            let target = &reference.reference_to[0];
            let Some(parent) = (self.parent)(target) else {
                self.errors.push(err(
                    span,
                    format!("no describe snapshot for {target}, which `{rel}` points to"),
                    format!(
                        "run `forcesync describe pull {target}` to save mappings/describe/{target}.json"
                    ),
                ));
                return None;
            };
            object = parent;
        }
        match object.field(last) {
            Some(field) => Some(Target { field, object }),
            None => {
                let help = match did_you_mean(last, object.fields.iter().map(|f| f.name.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "see mappings/describe/{}.json for the fields of {}",
                        object.name, object.name
                    ),
                };
                self.errors.push(err(
                    span,
                    format!("unknown field `{last}` on {} in the filter", object.name),
                    help,
                ));
                None
            }
        }
    }

    fn check(
        &mut self,
        target: &Target<'_>,
        path: &str,
        path_span: Range<usize>,
        op: &str,
        op_span: Range<usize>,
        values: &[(Value, Range<usize>)],
    ) {
        let field = target.field;
        if field.is_compound() {
            self.errors.push(err(
                path_span,
                format!(
                    "`{path}` is a compound {} field and cannot be compared",
                    field.field_type
                ),
                format!(
                    "filter on its components instead, e.g. `{}`",
                    target
                        .object
                        .components(&field.name)
                        .first()
                        .map_or("BillingCity", |c| c.name.as_str())
                ),
            ));
            return;
        }
        let sf = match sf_type(&field.field_type) {
            Some(sf) if field.filterable => sf,
            _ => {
                self.errors.push(err(
                    path_span,
                    format!(
                        "`{path}` ({}) cannot be used in a filter: Salesforce does not allow filtering on it",
                        field.field_type
                    ),
                    "remove this condition or filter on another field",
                ));
                return;
            }
        };
        use SfType as T;
        let is_text = matches!(
            sf,
            T::Id
                | T::Reference
                | T::String
                | T::TextArea
                | T::Email
                | T::Phone
                | T::Url
                | T::Picklist
                | T::MultiPicklist
                | T::Combobox
                | T::EncryptedString
        );
        match op {
            "LIKE" if !is_text || matches!(sf, T::Id | T::Reference | T::MultiPicklist) => {
                self.errors.push(err(
                    op_span,
                    format!("LIKE cannot be used on `{path}` ({})", field.field_type),
                    "LIKE works on text fields; compare with = or != instead",
                ));
                return;
            }
            "INCLUDES" | "EXCLUDES" if sf != T::MultiPicklist => {
                self.errors.push(err(
                    op_span,
                    format!(
                        "{op} only works on multi-select picklists; `{path}` is {}",
                        field.field_type
                    ),
                    "use IN (...) for a single-valued field",
                ));
                return;
            }
            "<" | "<=" | ">" | ">=" if matches!(sf, T::Boolean | T::MultiPicklist) => {
                self.errors.push(err(
                    op_span,
                    format!("`{op}` cannot compare `{path}` ({})", field.field_type),
                    "use = or != instead",
                ));
                return;
            }
            _ => {}
        }
        for (value, span) in values {
            if *value == Value::Null {
                if !matches!(op, "=" | "!=" | "<>" | "IN") {
                    self.errors.push(err(
                        span.clone(),
                        format!("null cannot be used with {op}"),
                        format!("test for null with `{path} = null` or `{path} != null`"),
                    ));
                }
                continue;
            }
            let expected: &str = match sf {
                _ if is_text => "a quoted string",
                T::Int | T::Long => "a whole number",
                T::Double | T::Currency | T::Percent => "a number",
                T::Boolean => "true or false",
                T::Date => "a date such as 2024-01-31 or a date literal such as TODAY",
                T::DateTime => {
                    "a datetime such as 2024-01-31T10:00:00Z or a date literal such as LAST_N_DAYS:30"
                }
                _ => "a time such as 10:00:00.000Z",
            };
            let fits = match (sf, value) {
                (T::Id | T::Reference, Value::Str(s)) => {
                    if !(s.len() == 15 || s.len() == 18)
                        || !s.bytes().all(|b| b.is_ascii_alphanumeric())
                    {
                        self.errors.push(err(
                            span.clone(),
                            format!("'{s}' is not a valid Salesforce ID for `{path}`"),
                            "IDs are 15 or 18 letters and digits, e.g. '001000000000001AAA'",
                        ));
                    }
                    true
                }
                (T::Picklist | T::MultiPicklist, Value::Str(s))
                    if field.restricted_picklist && op != "LIKE" =>
                {
                    let known = field
                        .picklist_values
                        .iter()
                        .any(|v| v.value.eq_ignore_ascii_case(s));
                    if !known {
                        let values = field.picklist_values.iter().map(|v| v.value.as_str());
                        let help = match did_you_mean(s, values.clone()) {
                            Some(m) => format!("did you mean '{m}'?"),
                            None => {
                                format!("its values are: {}", values.collect::<Vec<_>>().join(", "))
                            }
                        };
                        self.errors.push(err(
                            span.clone(),
                            format!(
                                "'{s}' is not a value of the restricted picklist `{path}`, so \
                                 no record can match it"
                            ),
                            help,
                        ));
                    }
                    true
                }
                (_, Value::Str(_)) => is_text,
                (T::Int | T::Long, Value::Int) => true,
                (T::Double | T::Currency | T::Percent, Value::Int | Value::Decimal) => true,
                (T::Boolean, Value::Bool) => true,
                (T::Date, Value::Date | Value::DateLiteral) => true,
                (T::DateTime, Value::DateTime | Value::DateLiteral) => true,
                (T::Time, Value::Time) => true,
                _ => false,
            };
            if !fits {
                let quoted = matches!(value, Value::Str(_))
                    && !is_text
                    && !matches!(sf, T::Boolean | T::Date | T::DateTime | T::Time);
                let help = if quoted {
                    format!(
                        "`{path}` is {}; write the value without quotes",
                        field.field_type
                    )
                } else {
                    format!(
                        "`{path}` is {}; compare it with {expected}",
                        field.field_type
                    )
                };
                self.errors.push(err(
                    span.clone(),
                    format!(
                        "{} cannot be compared with `{path}` ({})",
                        capitalise(value.what()),
                        field.field_type
                    ),
                    help,
                ));
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(name: &str) -> SObjectDescribe {
        let path = format!(
            "{}/../mappings/describe/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        SObjectDescribe::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn check(object: &str, filter: &str) -> Vec<String> {
        let account = describe("Account");
        let contact = describe("Contact");
        let target = describe(object);
        let parent = |name: &str| match name {
            "Account" => Some(&account),
            "Contact" => Some(&contact),
            _ => None,
        };
        validate(filter, &target, &parent)
            .into_iter()
            .map(|e| {
                format!(
                    "{}..{} {} | {}",
                    e.span.start, e.span.end, e.message, e.help
                )
            })
            .collect()
    }

    #[test]
    fn accepts_valid_conditions() {
        let ok = [
            "IsDeleted = false AND Type != 'Competitor'",
            "Industry IN ('Energy', 'Banking') OR (AnnualRevenue > 1000000 AND Rating = null)",
            "NOT Name LIKE 'Acme%'",
            "Name NOT LIKE 'Test\\_%'",
            "Type NOT IN ('Other') AND NumberOfEmployees >= 10",
            "CreatedDate = LAST_N_DAYS:30 AND LastActivityDate < 2024-01-31",
            "CreatedDate > 2024-01-31T10:00:00Z AND SystemModstamp <= 2024-01-31T10:00:00.000+01:00",
            "ParentId = '001000000000001AAA' AND ParentId != null",
            "Name = 'O\\'Reilly' and (Phone <> '1' or Fax = '2')",
            "AnnualRevenue > -1.5 AND CreatedDate = TODAY",
        ];
        for f in ok {
            assert_eq!(check("Account", f), Vec::<String>::new(), "{f}");
        }
        let invoice_ok = [
            "Payment_Methods__c INCLUDES ('Card', 'Cash') AND Due_Time__c < 17:00:00.000Z",
            "Account__r.Industry = 'Energy' AND Status__c = 'Paid'",
            "Billing_Contact__r.Account.Name LIKE 'A%'",
        ];
        for f in invoice_ok {
            assert_eq!(check("Invoice__c", f), Vec::<String>::new(), "{f}");
        }
    }

    #[test]
    fn reports_precise_problems() {
        insta::assert_debug_snapshot!([
            check("Account", "Industy = 'Energy'"),
            check("Account", "Name = 'x' AND Type = 'y' OR Rating = 'z'"),
            check("Account", "AnnualRevenue > 'big'"),
            check("Account", "NumberOfEmployees = 1.5"),
            check("Account", "IsDeleted = 'false'"),
            check("Account", "CreatedDate > 2024-01-31"),
            check("Account", "Name = \"Acme\""),
            check("Account", "Name = 'Acme"),
            check("Account", "Name ="),
            check("Account", "Name LIKE 'A%' ORDER BY Name"),
            check("Account", "Industry INCLUDES ('Energy')"),
            check("Account", "BillingAddress = null"),
            check("Account", "CreatedDate = LAST_N_DAY:3"),
            check("Account", "ParentId = 'nope'"),
            check("Account", "Parent.Nme = 'x'"),
            check("Account", "Owner.Name = 'x'"),
            check("Account", "(Name = 'x'"),
            check("Account", "Name > null AND IsDeleted < true"),
            check("Invoice__c", "Notes__c LIKE '%late%'"),
            check("Invoice__c", "Due_Time__c = 10:00"),
            check(
                "Invoice__c",
                "Status__c IN ('Paid', 'Payed', 'Cancelled') AND Status__c LIKE 'P%'"
            ),
            check("Account", ""),
        ]);
    }

    #[test]
    fn every_prefix_and_mutation_of_a_filter_is_handled_without_panicking() {
        let filter = "Account__r.Industry IN ('Energy', 'It\\'s') AND (Amount__c >= -1.5 OR \
                      CreatedDate = LAST_N_DAYS:30) AND Due_Time__c < 10:00:00.000Z \
                      AND NOT Payment_Methods__c INCLUDES ('Card') AND Issued_On__c != 2024-02-29";
        assert_eq!(check("Invoice__c", filter), Vec::<String>::new());
        let account = describe("Account");
        let invoice = describe("Invoice__c");
        let parent = |name: &str| (name == "Account").then_some(&account);
        let check_spans = |filter: &str| -> Vec<Range<usize>> {
            validate(filter, &invoice, &parent)
                .into_iter()
                .map(|e| e.span)
                .collect()
        };
        for (i, _) in filter.char_indices() {
            for e in check_spans(&filter[..i]) {
                assert!(e.end <= i, "{e:?} outside {:?}", &filter[..i]);
            }
            for c in ['(', ')', '\'', '\\', ':', '.', '-', 'é', ' '] {
                let mut v = filter.to_owned();
                v.replace_range(i..i + 1, &c.to_string());
                for e in check_spans(&v) {
                    assert!(e.start <= e.end && e.end <= v.len(), "{e:?} in {v:?}");
                    assert!(
                        v.is_char_boundary(e.start) && v.is_char_boundary(e.end),
                        "{e:?} in {v:?}"
                    );
                }
            }
        }
    }
}
