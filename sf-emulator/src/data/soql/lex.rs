//! The SOQL lexer: identifiers, numbers, quoted strings, unquoted date/datetime literals, operators.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

use super::ast::Pos;
use super::error::{SoqlError, SoqlErrorCode};

/// One token of a SOQL statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Number(String),
    /// A quoted string: the text between the quotes, escapes not yet decoded.
    Str(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Comma,
    Dot,
    LParen,
    RParen,
    Colon,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Minus,
    Plus,
    Eof,
}

/// A token with its byte offset in the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// The token's source text (for "unexpected token" messages).
    pub text: String,
}

/// Splits `query` into tokens, ending with `Tok::Eof`.
pub fn lex(query: &str) -> Result<Vec<Token>, SoqlError> {
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                Tok::Ident(query[start..i].to_string())
            }
            b'0'..=b'9' => {
                if let Some((tok, end)) = lex_date(query, start)? {
                    i = end;
                    tok
                } else {
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                        i += 1;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                    Tok::Number(query[start..i].to_string())
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(SoqlError::at(
                                SoqlErrorCode::MalformedQuery,
                                query,
                                start,
                                format!(
                                    "line 1:{start} mismatched character '<EOF>' expecting '''"
                                ),
                            ))
                        }
                        Some(b'\\') => i += 2,
                        Some(b'\'') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                Tok::Str(query[start + 1..i - 1].to_string())
            }
            b',' => single(&mut i, Tok::Comma),
            b'.' => single(&mut i, Tok::Dot),
            b'(' => single(&mut i, Tok::LParen),
            b')' => single(&mut i, Tok::RParen),
            b':' => single(&mut i, Tok::Colon),
            b'=' => single(&mut i, Tok::Eq),
            b'-' => single(&mut i, Tok::Minus),
            b'+' => single(&mut i, Tok::Plus),
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Ne
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Le
                }
                Some(b'>') => {
                    i += 2;
                    Tok::Ne
                }
                _ => single(&mut i, Tok::Lt),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Ge
                }
                _ => single(&mut i, Tok::Gt),
            },
            _ => {
                let ch = query[start..].chars().next().unwrap_or('?');
                return Err(SoqlError::at(
                    SoqlErrorCode::MalformedQuery,
                    query,
                    start,
                    format!("unexpected token: '{ch}'"),
                ));
            }
        };
        out.push(Token {
            tok,
            pos: start,
            text: query[start..i].to_string(),
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: query.len(),
        text: "<EOF>".to_string(),
    });
    Ok(out)
}

fn single(i: &mut usize, tok: Tok) -> Tok {
    *i += 1;
    tok
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    if s.iter().all(u8::is_ascii_digit) {
        Some(s.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
    } else {
        None
    }
}

/// Lexes `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss[.f...](Z|±hh:mm|±hhmm)` at `start`, if present.
fn lex_date(query: &str, start: usize) -> Result<Option<(Tok, usize)>, SoqlError> {
    let b = query.as_bytes();
    let (Some(y), Some(m), Some(d)) = (
        digits(b, start, 4),
        digits(b, start + 5, 2),
        digits(b, start + 8, 2),
    ) else {
        return Ok(None);
    };
    if b.get(start + 4) != Some(&b'-') || b.get(start + 7) != Some(&b'-') {
        return Ok(None);
    }
    let bad = |what: &str| {
        SoqlError::at(
            SoqlErrorCode::MalformedQuery,
            query,
            start,
            format!("line 1:{start} no viable alternative at character '{what}'"),
        )
    };
    let end_date = start + 10;
    let date =
        NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(|| bad(&query[start..end_date]))?;
    if b.get(end_date) != Some(&b'T') {
        if b.get(end_date).is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(&query[end_date..end_date + 1]));
        }
        return Ok(Some((Tok::Date(date), end_date)));
    }
    let t = end_date + 1;
    let (Some(hh), Some(mi), Some(ss)) =
        (digits(b, t, 2), digits(b, t + 3, 2), digits(b, t + 6, 2))
    else {
        return Err(bad("T"));
    };
    if b.get(t + 2) != Some(&b':') || b.get(t + 5) != Some(&b':') {
        return Err(bad("T"));
    }
    let mut i = t + 8;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &query[frac_start..i];
        if frac.is_empty() || frac.len() > 9 {
            return Err(bad("."));
        }
        nanos = frac.parse::<u32>().map_err(|_| bad("."))? * 10u32.pow(9 - frac.len() as u32);
    }
    let offset_secs: i32 = match b.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            let oh = digits(b, i + 1, 2).ok_or_else(|| bad(&query[i..i + 1]))?;
            let (om, len) = if b.get(i + 3) == Some(&b':') {
                (digits(b, i + 4, 2).ok_or_else(|| bad(":"))?, 6)
            } else {
                (digits(b, i + 3, 2).ok_or_else(|| bad(&query[i..i + 1]))?, 5)
            };
            i += len;
            sign * (oh as i32 * 3600 + om as i32 * 60)
        }
        _ => {
            let what = query[i..]
                .chars()
                .next()
                .map_or("<EOF>".to_string(), |c| c.to_string());
            return Err(bad(&what));
        }
    };
    if b.get(i).is_some_and(|c| c.is_ascii_alphanumeric()) {
        return Err(bad(&query[i..i + 1]));
    }
    let time = NaiveTime::from_hms_nano_opt(hh, mi, ss, nanos).ok_or_else(|| bad("T"))?;
    let offset = FixedOffset::east_opt(offset_secs).ok_or_else(|| bad("+"))?;
    let local = NaiveDateTime::new(date, time);
    let dt = offset
        .from_local_datetime(&local)
        .single()
        .ok_or_else(|| bad("T"))?
        .with_timezone(&Utc);
    Ok(Some((Tok::DateTime(dt), i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(q: &str) -> DateTime<Utc> {
        match &lex(q).unwrap()[0].tok {
            Tok::DateTime(d) => *d,
            other => panic!("not a datetime: {other:?}"),
        }
    }

    #[test]
    fn datetime_literals_in_every_client_form() {
        let want = Utc.with_ymd_and_hms(2017, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(dt("2017-01-01T00:00:00Z"), want);
        assert_eq!(dt("2017-01-01T00:00:00.000Z"), want);
        assert_eq!(dt("2017-01-01T00:00:00.000000Z"), want);
        assert_eq!(dt("2017-01-01T00:00:00.000+00:00"), want);
        assert_eq!(dt("2017-01-01T00:00:00+0000"), want);
        assert_eq!(dt("2017-01-01T02:00:00+02:00"), want);
        assert_eq!(dt("2016-12-31T19:00:00-05:00"), want);
        assert_eq!(
            dt("2024-01-02T03:04:05.5Z"),
            Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap()
                + chrono::Duration::milliseconds(500)
        );
    }

    #[test]
    fn dates_and_numbers() {
        let toks = lex("2024-02-29 42 1.5").unwrap();
        assert_eq!(
            toks[0].tok,
            Tok::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap())
        );
        assert_eq!(toks[1].tok, Tok::Number("42".into()));
        assert_eq!(toks[2].tok, Tok::Number("1.5".into()));
        assert!(lex("2023-02-29").is_err());
        assert!(lex("2024-01-01T00:00:00").is_err());
    }

    #[test]
    fn operators() {
        let toks: Vec<Tok> = lex("= != <> < <= > >=")
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect();
        assert_eq!(
            toks,
            vec![
                Tok::Eq,
                Tok::Ne,
                Tok::Ne,
                Tok::Lt,
                Tok::Le,
                Tok::Gt,
                Tok::Ge,
                Tok::Eof
            ]
        );
    }
}
