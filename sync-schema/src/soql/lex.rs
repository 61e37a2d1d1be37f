//! The SOQL condition lexer: words, quoted strings (escapes resolved), numbers, temporal
//! literals, operators and punctuation, each with its byte span.

use std::ops::Range;

use super::{err, FilterError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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
    pub(super) fn describe(&self) -> String {
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
pub(super) struct Token {
    pub(super) kind: Tok,
    pub(super) span: Range<usize>,
}

pub(super) fn lex(s: &str) -> Result<Vec<Token>, FilterError> {
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

pub(super) fn is_kw(word: &str, kw: &str) -> bool {
    word.eq_ignore_ascii_case(kw)
}
