//! Heroku Connect's trigger-log payload: the text form of a Postgres `hstore` (`old` and `values`
//! of `_trigger_log` and `_trigger_log_archive` are `text` columns holding `hstore(row)::text`).
//!
//! * [`parse`]: hstore text to `(key, value)` pairs, exactly as Postgres' `hstore_in` reads it:
//!   `"name"=>"O\"Brien", "phone"=>NULL`; keys and values quoted or bare, a backslash escaping
//!   the next character (in or out of quotes), `NULL` (any case, unquoted) for a null value,
//!   whitespace around tokens ignored, the empty string for no pairs. A repeated key keeps its
//!   first value. Anything else is an [`HstoreError`] saying where and what was expected.
//! * [`render`]: pairs to the text Postgres' `hstore_out` prints (every key and value quoted,
//!   `"` and `\` escaped, `, ` between pairs), which [`parse`] and Postgres read back unchanged.
//! * [`typed`]: a parsed payload as the JSON a mapping's columns stand for (numbers, booleans and
//!   timestamps typed by the column's Postgres type), the form the writer builds bodies from.
//!
//! Pure functions over plain data; no IO.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Number, Value};

use super::descriptor::{MappingDescriptor, PgType};

/// hstore text that Postgres would not accept, with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HstoreError {
    pub offset: usize,
    pub expected: &'static str,
}

impl fmt::Display for HstoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not hstore text: expected {} at byte {}",
            self.expected, self.offset
        )
    }
}

impl std::error::Error for HstoreError {}

/// One `key => value` pair; `None` is SQL `NULL`.
pub type Pair = (String, Option<String>);

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        // Postgres' scanner_isspace: space, tab, newline, carriage return, form feed, vertical tab.
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
        {
            self.pos += 1;
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error(&self, expected: &'static str) -> HstoreError {
        HstoreError {
            offset: self.pos,
            expected,
        }
    }

    /// One key or value. Returns the text (borrowed unless it held an escape) and whether it
    /// was quoted or held an escape (then `NULL` is text, not null). A bare word ends at
    /// whitespace, at `=` (keys) or `,` (values), or at the end.
    fn word(&mut self, is_key: bool) -> Result<(Cow<'a, str>, bool), HstoreError> {
        let what = if is_key { "a key" } else { "a value" };
        let mut out = String::new();
        match self.peek() {
            None => Err(self.error(what)),
            Some(b'"') => {
                self.pos += 1;
                let first = self.pos;
                let mut start = self.pos;
                loop {
                    // Straight to the next quote or backslash.
                    self.pos += self.bytes[self.pos..]
                        .iter()
                        .position(|&b| b == b'"' || b == b'\\')
                        .unwrap_or(self.bytes.len() - self.pos);
                    match self.peek() {
                        None => return Err(self.error("a closing quote")),
                        Some(b'"') => {
                            let word = if start == first {
                                Cow::Borrowed(&self.text[start..self.pos])
                            } else {
                                out.push_str(&self.text[start..self.pos]);
                                Cow::Owned(out)
                            };
                            self.pos += 1;
                            return Ok((word, true));
                        }
                        Some(_) => {
                            out.push_str(&self.text[start..self.pos]);
                            self.pos += 1;
                            start = self.escaped(&mut out)?;
                        }
                    }
                }
            }
            Some(b) if (is_key && b == b'=') || b == b',' => Err(self.error(what)),
            Some(_) => {
                let first = self.pos;
                let mut start = self.pos;
                let mut escaped = false;
                loop {
                    match self.peek() {
                        None | Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) => break,
                        Some(b'=') if is_key => break,
                        Some(b',') if !is_key => break,
                        Some(b'\\') => {
                            out.push_str(&self.text[start..self.pos]);
                            self.pos += 1;
                            start = self.escaped(&mut out)?;
                            escaped = true;
                        }
                        Some(_) => self.pos += 1,
                    }
                }
                if !escaped {
                    return Ok((Cow::Borrowed(&self.text[first..self.pos]), false));
                }
                out.push_str(&self.text[start..self.pos]);
                Ok((Cow::Owned(out), true))
            }
        }
    }

    /// After a backslash: appends the escaped character (whole, however many bytes) and
    /// returns where the plain text goes on.
    fn escaped(&mut self, out: &mut String) -> Result<usize, HstoreError> {
        let c = self.text[self.pos..]
            .chars()
            .next()
            .ok_or_else(|| self.error("a character after the backslash"))?;
        out.push(c);
        self.pos += c.len_utf8();
        Ok(self.pos)
    }
}

/// The keys read so far, to skip a repeated one. Postgres prints a row's keys sorted (by length,
/// then bytes) and each once, so while every key sorts after the one before it is new, and no set
/// is built; text written otherwise (by hand) is checked against a set of every key read.
struct SeenKeys<'a> {
    keys: Vec<Cow<'a, str>>,
    unordered: Option<HashSet<Cow<'a, str>>>,
}

impl<'a> SeenKeys<'a> {
    /// Whether `key` was not read before (and from now on it was).
    fn first(&mut self, key: Cow<'a, str>) -> bool {
        if let Some(set) = &mut self.unordered {
            return set.insert(key);
        }
        let sorted_after =
            |last: &Cow<'a, str>| (key.len(), key.as_bytes()) > (last.len(), last.as_bytes());
        if self.keys.last().is_none_or(sorted_after) {
            self.keys.push(key);
            return true;
        }
        let mut set: HashSet<Cow<'a, str>> = std::mem::take(&mut self.keys).into_iter().collect();
        let first = set.insert(key);
        self.unordered = Some(set);
        first
    }
}

/// Reads hstore text (see the module header), handing each pair to `pair` in the order written,
/// borrowed from `text` where it holds no escape; a repeated key is skipped (its first value
/// counts).
fn read_pairs<'a>(
    text: &'a str,
    mut pair: impl FnMut(Cow<'a, str>, Option<Cow<'a, str>>),
) -> Result<(), HstoreError> {
    let mut r = Reader {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    let mut seen = SeenKeys {
        keys: Vec::with_capacity(32),
        unordered: None,
    };
    r.skip_space();
    while !r.at_end() {
        let (key, _) = r.word(true)?;
        r.skip_space();
        if r.peek() != Some(b'=') {
            return Err(r.error("`=>`"));
        }
        r.pos += 1;
        if r.peek() != Some(b'>') {
            return Err(r.error("`=>`"));
        }
        r.pos += 1;
        r.skip_space();
        let (value, literal) = r.word(false)?;
        let value = if !literal && value.eq_ignore_ascii_case("NULL") {
            None
        } else {
            Some(value)
        };
        if seen.first(key.clone()) {
            pair(key, value);
        }
        r.skip_space();
        match r.peek() {
            None => break,
            Some(b',') => {
                r.pos += 1;
                r.skip_space();
                if r.at_end() {
                    return Err(r.error("a key after `,`"));
                }
            }
            Some(_) => return Err(r.error("`,` or the end")),
        }
    }
    Ok(())
}

/// Parses hstore text (see the module header) into its pairs, in the order written.
pub fn parse(text: &str) -> Result<Vec<Pair>, HstoreError> {
    let mut pairs = Vec::new();
    read_pairs(text, |key, value| {
        pairs.push((key.into_owned(), value.map(Cow::into_owned)))
    })?;
    Ok(pairs)
}

fn quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Renders pairs as Postgres prints an hstore.
pub fn render<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quoted(&mut out, key);
        out.push_str("=>");
        match value {
            Some(v) => quoted(&mut out, v),
            None => out.push_str("NULL"),
        }
    }
    out
}

/// A column's Postgres text (as `hstore(row)` holds it) as the JSON `to_jsonb(row)` gives for it:
/// numbers and booleans typed, timestamps in ISO form with a `T`. A value that does not read as
/// its type (or a column of unknown type) stays a string; `None` is JSON null.
pub fn typed_value(pg_type: Option<PgType>, text: Option<&str>) -> Value {
    let Some(text) = text else {
        return Value::Null;
    };
    let number = |t: &str| {
        t.parse::<i64>()
            .map(Number::from)
            .ok()
            .or_else(|| t.parse::<f64>().ok().and_then(Number::from_f64))
    };
    let typed = match pg_type {
        Some(PgType::Integer | PgType::BigInt | PgType::DoublePrecision) => {
            number(text).map(Value::Number)
        }
        Some(PgType::Boolean) => match text {
            "t" | "true" => Some(Value::Bool(true)),
            "f" | "false" => Some(Value::Bool(false)),
            _ => None,
        },
        Some(PgType::Timestamp) => {
            let b = text.as_bytes();
            (b.len() > 10 && b[10] == b' ' && b[4] == b'-')
                .then(|| Value::String(format!("{}T{}", &text[..10], &text[11..])))
        }
        _ => None,
    };
    typed.unwrap_or_else(|| Value::String(text.to_owned()))
}

/// A trigger-log payload of `mapping`'s table as typed JSON (see [`typed_value`]); columns the
/// mapping does not know (`id`, columns of fields no longer mapped) stay strings. With
/// `skip_nulls`, null values are left out (an insert sends no nulls).
pub fn typed(
    mapping: Option<&MappingDescriptor>,
    pairs: Vec<Pair>,
    skip_nulls: bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (column, text) in pairs {
        if !(skip_nulls && text.is_none()) {
            put_typed(&mut out, mapping, column, text.as_deref());
        }
    }
    out
}

/// [`parse`] and [`typed`] in one pass, without the pairs in between: what the writer reads
/// every captured entry with (a null left out costs no copy of its text).
pub fn typed_text(
    mapping: Option<&MappingDescriptor>,
    text: &str,
    skip_nulls: bool,
) -> Result<Map<String, Value>, HstoreError> {
    let mut out = Map::new();
    read_pairs(text, |column, text| {
        if !(skip_nulls && text.is_none()) {
            put_typed(&mut out, mapping, column.into_owned(), text.as_deref());
        }
    })?;
    Ok(out)
}

fn put_typed(
    out: &mut Map<String, Value>,
    mapping: Option<&MappingDescriptor>,
    column: String,
    text: Option<&str>,
) {
    let pg_type = mapping
        .and_then(|m| m.field_by_column(&column))
        .map(|f| f.pg_type);
    out.insert(column, typed_value(pg_type, text));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pairs(text: &str) -> Vec<(String, Option<String>)> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn p(k: &str, v: Option<&str>) -> Pair {
        (k.to_owned(), v.map(str::to_owned))
    }

    #[test]
    fn postgres_output_reads_back_with_nulls_quotes_and_escapes() {
        assert_eq!(
            pairs(r#""name"=>"O\"Brien", "phone"=>NULL, "path"=>"C:\\temp""#),
            [
                p("name", Some("O\"Brien")),
                p("phone", None),
                p("path", Some("C:\\temp")),
            ]
        );
    }

    #[test]
    fn the_empty_string_and_blank_text_hold_no_pairs() {
        assert!(pairs("").is_empty());
        assert!(pairs("  \n ").is_empty());
    }

    #[test]
    fn a_quoted_null_is_the_text_null_and_a_bare_one_in_any_case_is_null() {
        assert_eq!(
            pairs(r#"a=>"NULL", b=>null, c=>NuLl, d=>NULLS"#),
            [
                p("a", Some("NULL")),
                p("b", None),
                p("c", None),
                p("d", Some("NULLS")),
            ]
        );
    }

    #[test]
    fn awkward_values_survive_quoting() {
        let awkward = [
            "",
            "a=>b",
            "x, \"y\"=>z",
            "line one\nline two\r\n\ttab",
            "back\\slash\\",
            "\\\"",
            "Zoë · 東京 · 🚀",
            "NULL",
            " leading and trailing ",
            "=>,",
        ];
        for value in awkward {
            let text = render([("k", Some(value)), ("k2", None)]);
            assert_eq!(pairs(&text), [p("k", Some(value)), p("k2", None)], "{text}");
        }
        // Awkward keys too.
        let text = render([("we\"ird key=>", Some("v"))]);
        assert_eq!(pairs(&text), [p("we\"ird key=>", Some("v"))]);
    }

    #[test]
    fn bare_words_whitespace_and_escapes_outside_quotes_read_as_postgres_reads_them() {
        assert_eq!(
            pairs(" a => b ,c=>d\\,e , f\\ g=>\"h\"\n"),
            [p("a", Some("b")), p("c", Some("d,e")), p("f g", Some("h"))]
        );
        // `=` may appear in a bare value, `,` in a bare key.
        assert_eq!(pairs("a=>b=c"), [p("a", Some("b=c"))]);
        assert_eq!(pairs("a,b=>c"), [p("a,b", Some("c"))]);
        // An escaped character outside quotes keeps NULL from being null.
        assert_eq!(pairs("a=>\\NULL"), [p("a", Some("NULL"))]);
    }

    #[test]
    fn typing_straight_from_text_gives_what_parse_then_typed_gives() {
        let texts = [
            r#""id"=>"7", "name"=>"O\"Brien", "phone"=>NULL, "isdeleted"=>"f""#,
            r#"name => Acme, id => 7, name => Other, phone => NULL"#,
            r#""b"=>"1", "a"=>"2", "b"=>"3", "a"=>"4", "c"=>NULL"#,
            "",
        ];
        for text in texts {
            for skip_nulls in [false, true] {
                assert_eq!(
                    typed_text(None, text, skip_nulls).unwrap(),
                    typed(None, parse(text).unwrap(), skip_nulls),
                    "{text:?}"
                );
            }
        }
        assert_eq!(
            typed_text(None, r#""a"=>"1" "b"=>"2""#, false).unwrap_err(),
            parse(r#""a"=>"1" "b"=>"2""#).unwrap_err()
        );
    }

    #[test]
    fn a_repeated_key_keeps_its_first_value() {
        assert_eq!(pairs(r#""a"=>"1", "a"=>"2""#), [p("a", Some("1"))]);
        // Keys out of Postgres' order (text written by hand), repeated, one written escaped.
        assert_eq!(
            pairs(r#""a"=>"1", "bb"=>"2", "a"=>"3", "c"=>"4", "bb"=>"5", "c"=>"6""#),
            [p("a", Some("1")), p("bb", Some("2")), p("c", Some("4"))]
        );
        assert_eq!(
            pairs(r#""b"=>"1", "a"=>"2", "b"=>"3", "a\x"=>"4", "ax"=>"5""#),
            [p("b", Some("1")), p("a", Some("2")), p("ax", Some("4"))]
        );
        // In Postgres' order (length, then bytes) up to a key of the same length sorting before.
        assert_eq!(
            pairs(r#""z"=>"1", "ab"=>"2", "ac"=>"3", "aa"=>"4", "ab"=>"5", "z"=>"6""#),
            [
                p("z", Some("1")),
                p("ab", Some("2")),
                p("ac", Some("3")),
                p("aa", Some("4"))
            ]
        );
    }

    #[test]
    fn malformed_text_says_where_and_what_was_expected() {
        let cases = [
            (r#""a"=>"b"#, 7, "a closing quote"),
            (r#""a"="b""#, 4, "`=>`"),
            (r#""a" "b""#, 4, "`=>`"),
            (r#""a"=>"b" "c"=>"d""#, 9, "`,` or the end"),
            (r#""a"=>"b","#, 9, "a key after `,`"),
            (r#""a"=>"#, 5, "a value"),
            (r#"=>"b""#, 0, "a key"),
            (r#""a"=>,"#, 5, "a value"),
            ("\"a\\", 3, "a character after the backslash"),
            (r#"{"a": 1}"#, 6, "`=>`"),
        ];
        for (text, offset, expected) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(
                (err.offset, err.expected),
                (offset, expected),
                "{text}: {err}"
            );
        }
        assert_eq!(
            parse(r#"{"name": "Acme"}"#).unwrap_err().to_string(),
            "not hstore text: expected `=>` at byte 9"
        );
    }

    #[test]
    fn rendering_matches_what_postgres_prints() {
        assert_eq!(
            render([("name", Some("O\"Brien")), ("phone", None)]),
            r#""name"=>"O\"Brien", "phone"=>NULL"#
        );
        assert_eq!(render([]), "");
    }

    #[test]
    fn column_text_becomes_the_json_to_jsonb_gives() {
        use PgType::*;
        assert_eq!(typed_value(Some(Integer), Some("42")), json!(42));
        assert_eq!(typed_value(Some(BigInt), Some("-7")), json!(-7));
        assert_eq!(typed_value(Some(DoublePrecision), Some("10")), json!(10));
        assert_eq!(typed_value(Some(DoublePrecision), Some("1.5")), json!(1.5));
        assert_eq!(
            typed_value(Some(DoublePrecision), Some("1e+20")),
            json!(1e20)
        );
        assert_eq!(
            typed_value(Some(DoublePrecision), Some("Infinity")),
            json!("Infinity")
        );
        assert_eq!(typed_value(Some(Boolean), Some("t")), json!(true));
        assert_eq!(typed_value(Some(Boolean), Some("f")), json!(false));
        assert_eq!(
            typed_value(Some(Timestamp), Some("2024-01-02 03:04:05.123456")),
            json!("2024-01-02T03:04:05.123456")
        );
        assert_eq!(
            typed_value(Some(Timestamp), Some("infinity")),
            json!("infinity")
        );
        assert_eq!(
            typed_value(Some(Date), Some("2024-01-02")),
            json!("2024-01-02")
        );
        assert_eq!(typed_value(Some(Varchar(40)), Some("42")), json!("42"));
        assert_eq!(typed_value(None, Some("42")), json!("42"));
        assert_eq!(typed_value(Some(Integer), None), Value::Null);
    }
}
