//! Salesforce values → Postgres text, one field at a time (pure).
//!
//! Every path that writes Salesforce data into a mapped table (COPY during a load, upserts of
//! query results and change events) goes through [`pg_text`]: it checks the value against the
//! column the field lands in (type, varchar width, integer range) and returns the canonical text
//! Postgres accepts for that column, or a [`FieldError`] naming the field and the reason. A bad
//! value never reaches Postgres, so one record cannot fail a whole batch.
//!
//! Input forms accepted: REST/CDC JSON (`"2024-01-02T03:04:05.000+0000"`, `…Z`, epoch
//! milliseconds from Pub/Sub) and Bulk API CSV text (empty = null). Output: `timestamp` as UTC
//! `2024-01-02 03:04:05.000`, `time` as `03:04:05.000`, numbers as Salesforce sent them. A Bulk
//! load's cells are checked once ([`checked_from_csv`]) and written either as that text or in
//! COPY's binary format ([`push_binary_cell`]): the same values either way.

use std::fmt::Write as _;

use bytes::BufMut;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde_json::Value;
use tokio_postgres::types::Type;

use crate::adapter::{parse_datetime, parse_time, FieldDescriptor, PgType};

/// Why one field of one record cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Salesforce API name of the field.
    pub field: &'static str,
    pub reason: String,
    /// The value is a long-text diff (`{"diff": …}`): fetch the field instead.
    pub is_diff: bool,
}

impl FieldError {
    fn new(field: &FieldDescriptor, reason: impl Into<String>) -> FieldError {
        FieldError {
            field: field.sf_name,
            reason: reason.into(),
            is_diff: false,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// The Postgres text of a JSON value for `field`'s column; `None` for SQL NULL.
pub fn pg_text(field: &FieldDescriptor, value: &Value) -> Result<Option<String>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => text_value(field, s).map(Some),
        Value::Bool(b) => match field.pg_type {
            PgType::Boolean => Ok(Some(b.to_string())),
            PgType::Varchar(_) | PgType::Text => text_value(field, &b.to_string()).map(Some),
            _ => Err(wrong(field, value)),
        },
        Value::Number(n) => match field.pg_type {
            PgType::DoublePrecision => n
                .as_f64()
                .map(|_| Some(n.to_string()))
                .ok_or_else(|| wrong(field, value)),
            PgType::Integer => integral(value)
                .filter(|i| i32::try_from(*i).is_ok())
                .map(|i| Some(i.to_string()))
                .ok_or_else(|| {
                    FieldError::new(field, format!("{n} does not fit a 32-bit integer column"))
                }),
            PgType::BigInt => integral(value)
                .map(|i| Some(i.to_string()))
                .ok_or_else(|| FieldError::new(field, format!("{n} is not an integer"))),
            PgType::Timestamp => n
                .as_i64()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|dt| Some(format_timestamp(&dt.naive_utc())))
                .ok_or_else(|| wrong(field, value)),
            PgType::Time => n
                .as_i64()
                .filter(|ms| (0..86_400_000).contains(ms))
                .map(|ms| {
                    let (secs, millis) = (ms / 1000, ms % 1000);
                    Some(format!(
                        "{:02}:{:02}:{:02}.{millis:03}",
                        secs / 3600,
                        secs / 60 % 60,
                        secs % 60
                    ))
                })
                .ok_or_else(|| wrong(field, value)),
            // Pub/Sub sends a date as the epoch milliseconds of its midnight (UTC).
            PgType::Date => n
                .as_i64()
                .and_then(DateTime::<Utc>::from_timestamp_millis)
                .map(|dt| Some(dt.date_naive().format("%Y-%m-%d").to_string()))
                .ok_or_else(|| wrong(field, value)),
            PgType::Varchar(_) | PgType::Text => text_value(field, &n.to_string()).map(Some),
            PgType::Boolean => Err(wrong(field, value)),
        },
        Value::Object(o) if o.contains_key("diff") => Err(FieldError {
            field: field.sf_name,
            reason: "Salesforce sent a diff of this long text field, not its value".into(),
            is_diff: true,
        }),
        Value::Array(_) | Value::Object(_) => Err(wrong(field, value)),
    }
}

/// The Postgres text of a Bulk API CSV cell for `field`'s column (empty = NULL).
pub fn pg_text_from_csv(field: &FieldDescriptor, cell: &str) -> Result<Option<String>, FieldError> {
    if cell.is_empty() {
        return Ok(None);
    }
    text_value(field, cell).map(Some)
}

/// A value that arrived as text (JSON string or CSV cell), checked against the column.
fn text_value(field: &FieldDescriptor, s: &str) -> Result<String, FieldError> {
    Ok(match checked(field, s)? {
        // Strings and numbers as Salesforce sent them.
        Checked::Str(_) | Checked::Float(_) => s.to_owned(),
        Checked::Int(i) => i.to_string(),
        Checked::BigInt(i) => i.to_string(),
        Checked::Bool(b) => b.to_string(),
        Checked::Date(d) => d.format("%Y-%m-%d").to_string(),
        Checked::Timestamp(dt) => format_timestamp(&dt),
        Checked::Time(t) => t.format("%H:%M:%S%.3f").to_string(),
    })
}

/// A text value checked against its column, in the column's own type: what [`text_value`]
/// writes as text and [`push_binary_cell`] in COPY's binary format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Checked<'a> {
    Str(&'a str),
    Float(f64),
    Int(i32),
    BigInt(i64),
    Bool(bool),
    Date(NaiveDate),
    /// UTC, to the millisecond.
    Timestamp(NaiveDateTime),
    /// To the millisecond.
    Time(NaiveTime),
}

/// A Bulk API CSV cell checked against `field`'s column (empty = NULL): the same checks and
/// values as [`pg_text_from_csv`], not written out as text.
pub fn checked_from_csv<'a>(
    field: &FieldDescriptor,
    cell: &'a str,
) -> Result<Option<Checked<'a>>, FieldError> {
    if cell.is_empty() {
        return Ok(None);
    }
    checked(field, cell).map(Some)
}

fn checked<'a>(field: &FieldDescriptor, s: &'a str) -> Result<Checked<'a>, FieldError> {
    match field.pg_type {
        PgType::Varchar(width) => {
            // A string has at most as many characters as bytes: only a long one is counted.
            let chars = match s.len() > width as usize {
                true => s.chars().count(),
                false => s.len().min(width as usize),
            };
            if chars > width as usize {
                Err(FieldError::new(
                    field,
                    format!(
                        "value of {chars} characters is longer than the column (varchar({width})); \
                         the field probably grew in Salesforce: run `forcesync describe pull`, \
                         rebuild and migrate"
                    ),
                ))
            } else if s.contains('\0') {
                Err(FieldError::new(field, "value contains a NUL character"))
            } else {
                Ok(Checked::Str(s))
            }
        }
        PgType::Text => {
            if s.contains('\0') {
                Err(FieldError::new(field, "value contains a NUL character"))
            } else {
                Ok(Checked::Str(s))
            }
        }
        PgType::DoublePrecision => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Checked::Float)
            .ok_or_else(|| FieldError::new(field, format!("`{s}` is not a number"))),
        PgType::Integer => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && *f >= i32::MIN as f64 && *f <= i32::MAX as f64)
            .map(|f| Checked::Int(f as i32))
            .ok_or_else(|| FieldError::new(field, format!("`{s}` is not a 32-bit integer"))),
        PgType::BigInt => s
            .parse::<i64>()
            .or_else(|_| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
                    .ok_or(())
            })
            .map(Checked::BigInt)
            .map_err(|()| FieldError::new(field, format!("`{s}` is not an integer"))),
        PgType::Boolean => match s {
            "true" | "TRUE" | "True" => Ok(Checked::Bool(true)),
            "false" | "FALSE" | "False" => Ok(Checked::Bool(false)),
            _ => Err(FieldError::new(
                field,
                format!("`{s}` is not true or false"),
            )),
        },
        PgType::Date => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|d| POSTGRES_YEARS.contains(&d.year()))
            .map(Checked::Date)
            .ok_or_else(|| FieldError::new(field, format!("`{s}` is not a date (YYYY-MM-DD)"))),
        PgType::Timestamp => parse_datetime(s)
            .filter(|dt| POSTGRES_YEARS.contains(&dt.year()))
            .map(|dt| Checked::Timestamp(to_millis(dt)))
            .ok_or_else(|| FieldError::new(field, format!("`{s}` is not a datetime"))),
        PgType::Time => parse_time(s)
            .map(|t| Checked::Time(to_millis(t)))
            .ok_or_else(|| FieldError::new(field, format!("`{s}` is not a time of day"))),
    }
}

/// The years Postgres' `date` and `timestamp` hold (4713 BC is year -4712).
const POSTGRES_YEARS: std::ops::RangeInclusive<i32> = -4712..=294_275;

/// A time or timestamp to the millisecond (Salesforce's precision, and what the text form shows).
fn to_millis<T: Timelike>(t: T) -> T {
    let millis = t.nanosecond() / 1_000_000 * 1_000_000;
    t.with_nanosecond(millis).unwrap_or(t)
}

/// The Postgres type a [`Checked`] value of `field`'s column is written as in COPY's binary
/// format: its column must have exactly this type (`varchar` and `text` take each other's).
pub fn binary_type(pg_type: PgType) -> Type {
    match pg_type {
        PgType::Varchar(_) => Type::VARCHAR,
        PgType::Text => Type::TEXT,
        PgType::DoublePrecision => Type::FLOAT8,
        PgType::Integer => Type::INT4,
        PgType::BigInt => Type::INT8,
        PgType::Boolean => Type::BOOL,
        PgType::Date => Type::DATE,
        PgType::Timestamp => Type::TIMESTAMP,
        PgType::Time => Type::TIME,
    }
}

/// Whether a column of type `column` takes values written as `expected` ([`binary_type`]).
pub fn binary_compatible(expected: &Type, column: &Type) -> bool {
    let string = |t: &Type| *t == Type::VARCHAR || *t == Type::TEXT;
    expected == column || (string(expected) && string(column))
}

/// COPY's binary format: the header before the first row.
pub const BINARY_COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// COPY's binary format: the trailer after the last row.
pub const BINARY_COPY_TRAILER: &[u8] = &[0xff, 0xff];

/// Starts a row of `fields` fields in COPY's binary format.
pub fn push_binary_row(buf: &mut Vec<u8>, fields: usize) {
    buf.put_i16(fields as i16);
}

/// Appends one field of a row in COPY's binary format: its length (-1 for NULL), then the value
/// as its type's `send` function writes it (big-endian; dates in days, times and timestamps in
/// microseconds, since 2000-01-01 for both).
pub fn push_binary_cell(buf: &mut Vec<u8>, value: Option<Checked<'_>>) {
    let Some(value) = value else {
        buf.put_i32(-1);
        return;
    };
    let at = buf.len();
    buf.put_i32(0);
    match value {
        Checked::Str(s) => buf.put_slice(s.as_bytes()),
        Checked::Float(f) => buf.put_f64(f),
        Checked::Int(i) => buf.put_i32(i),
        Checked::BigInt(i) => buf.put_i64(i),
        Checked::Bool(b) => buf.put_u8(u8::from(b)),
        // In range: [`Checked`] holds only years Postgres has.
        Checked::Date(d) => buf.put_i32((d - POSTGRES_EPOCH.date()).num_days() as i32),
        Checked::Timestamp(dt) => {
            buf.put_i64((dt - POSTGRES_EPOCH).num_microseconds().unwrap_or(i64::MAX))
        }
        Checked::Time(t) => buf.put_i64(
            i64::from(t.num_seconds_from_midnight()) * 1_000_000
                + i64::from(t.nanosecond() / 1_000),
        ),
    }
    let len = (buf.len() - at - 4) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Where Postgres counts dates and timestamps from.
const POSTGRES_EPOCH: NaiveDateTime = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(date) => date.and_time(NaiveTime::MIN),
    None => panic!("2000-01-01 is a date"),
};

fn format_timestamp(dt: &chrono::NaiveDateTime) -> String {
    let (year, nanos) = (dt.year(), dt.nanosecond());
    // Written out directly (a load formats one a cell): `format`'s pattern is parsed each call.
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string();
    }
    let mut out = String::with_capacity(23);
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        nanos / 1_000_000
    );
    out
}

fn integral(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
    })
}

fn wrong(field: &FieldDescriptor, value: &Value) -> FieldError {
    let shown = match value {
        Value::String(s) if s.chars().count() > 40 => {
            format!("\"{}…\"", s.chars().take(40).collect::<String>())
        }
        other => {
            let text = other.to_string();
            if text.chars().count() > 40 {
                format!("{}…", text.chars().take(40).collect::<String>())
            } else {
                text
            }
        }
    };
    FieldError::new(
        field,
        format!("{shown} does not fit a {} column", field.pg_type.sql()),
    )
}

/// Appends one COPY text-format cell (`\N` for NULL, backslash escapes) to `line`.
pub fn push_copy_cell(line: &mut String, value: Option<&str>) {
    match value {
        None => line.push_str("\\N"),
        Some(s) => {
            // The runs between escaped characters whole (they are ASCII, so every split falls
            // on a character boundary): most cells have none and are one `push_str`.
            let mut run = 0;
            for (i, b) in s.bytes().enumerate() {
                let escaped = match b {
                    b'\\' => "\\\\",
                    b'\t' => "\\t",
                    b'\n' => "\\n",
                    b'\r' => "\\r",
                    _ => continue,
                };
                line.push_str(&s[run..i]);
                line.push_str(escaped);
                run = i + 1;
            }
            line.push_str(&s[run..]);
        }
    }
}

/// One COPY text-format line from cells (tab-separated, newline-terminated).
pub fn copy_line<'a>(cells: impl IntoIterator<Item = Option<&'a str>>, line: &mut String) {
    let mut first = true;
    for cell in cells {
        if !first {
            line.push('\t');
        }
        first = false;
        push_copy_cell(line, cell);
    }
    line.push('\n');
}

/// A Postgres value read back as JSON (`to_jsonb(row)`) in the form Salesforce sends it, so that
/// the mapping filter can be evaluated on stored rows.
pub fn sf_json_from_pg(field: &FieldDescriptor, value: &Value) -> Value {
    match (field.pg_type, value) {
        (PgType::Timestamp, Value::String(s)) => {
            let mut out = s.clone();
            if !out.ends_with('Z') && !out.contains('+') {
                if !out.contains('.') {
                    out.push_str(".000");
                }
                let _ = write!(out, "Z");
            }
            Value::String(out)
        }
        (_, other) => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::SfType;
    use serde_json::json;

    fn field(sf_type: SfType, pg_type: PgType) -> FieldDescriptor {
        FieldDescriptor {
            sf_type,
            pg_type,
            ..crate::adapter::testing::field("F")
        }
    }

    #[test]
    fn rest_and_cdc_datetimes_become_the_same_utc_timestamp() {
        let f = field(SfType::DateTime, PgType::Timestamp);
        let rest = pg_text(&f, &json!("2024-01-02T03:04:05.000+0000")).unwrap();
        let cdc = pg_text(&f, &json!("2024-01-02T03:04:05.000Z")).unwrap();
        let offset = pg_text(&f, &json!("2024-01-02T05:04:05+02:00")).unwrap();
        let millis = pg_text(&f, &json!(1_704_164_645_000_i64)).unwrap();
        assert_eq!(rest.as_deref(), Some("2024-01-02 03:04:05.000"));
        assert_eq!(rest, cdc);
        assert_eq!(rest, offset);
        assert_eq!(rest, millis);
    }

    #[test]
    fn a_value_longer_than_its_column_is_an_error_naming_the_fix() {
        let f = FieldDescriptor {
            sf_name: "Phone",
            ..field(SfType::Phone, PgType::Varchar(5))
        };
        assert_eq!(
            pg_text(&f, &json!("12345")).unwrap().as_deref(),
            Some("12345")
        );
        let err = pg_text(&f, &json!("123456")).unwrap_err();
        assert_eq!(err.field, "Phone");
        assert!(err.reason.contains("varchar(5)"), "{}", err.reason);
        assert!(err.reason.contains("forcesync describe pull"));
        // Width counts characters, not bytes.
        assert!(pg_text(&f, &json!("ééééé")).is_ok());
    }

    #[test]
    fn wrong_types_and_ranges_are_errors() {
        let int = field(SfType::Int, PgType::Integer);
        assert_eq!(pg_text(&int, &json!(42)).unwrap().as_deref(), Some("42"));
        assert_eq!(pg_text(&int, &json!(42.0)).unwrap().as_deref(), Some("42"));
        assert!(pg_text(&int, &json!(4_000_000_000_i64)).is_err());
        assert!(pg_text(&int, &json!("abc")).is_err());
        assert!(pg_text(&int, &json!(true)).is_err());
        let boolean = field(SfType::Boolean, PgType::Boolean);
        assert_eq!(
            pg_text(&boolean, &json!(false)).unwrap().as_deref(),
            Some("false")
        );
        assert!(pg_text(&boolean, &json!(1)).is_err());
        let date = field(SfType::Date, PgType::Date);
        assert!(pg_text(&date, &json!("2024-02-30")).is_err());
        assert!(pg_text(&date, &json!({"a": 1})).is_err());
        // Pub/Sub: the epoch milliseconds of the date's midnight (UTC).
        assert_eq!(
            pg_text(&date, &json!(1_704_153_600_000_i64))
                .unwrap()
                .as_deref(),
            Some("2024-01-02")
        );
    }

    #[test]
    fn diffs_are_recognised_so_the_field_is_fetched() {
        let f = field(SfType::TextArea, PgType::Text);
        let err = pg_text(&f, &json!({"diff": "--- \n+++ abc\n"})).unwrap_err();
        assert!(err.is_diff);
    }

    #[test]
    fn csv_cells_follow_bulk_conventions() {
        let f = field(SfType::Double, PgType::DoublePrecision);
        assert_eq!(pg_text_from_csv(&f, "").unwrap(), None);
        assert_eq!(
            pg_text_from_csv(&f, "12.5").unwrap().as_deref(),
            Some("12.5")
        );
        assert!(pg_text_from_csv(&f, "NaN").is_err());
        let t = field(SfType::Time, PgType::Time);
        assert_eq!(
            pg_text_from_csv(&t, "13:45:00.000Z").unwrap().as_deref(),
            Some("13:45:00.000")
        );
    }

    #[test]
    fn csv_cells_are_written_in_copys_binary_format_as_postgres_sends_them() {
        let cell = |pg_type: PgType, text: &str| {
            let f = field(SfType::String, pg_type);
            let mut buf = Vec::new();
            push_binary_cell(&mut buf, checked_from_csv(&f, text).unwrap());
            buf
        };
        // A length, then the value; -1 and nothing for NULL.
        assert_eq!(cell(PgType::Text, ""), (-1i32).to_be_bytes());
        assert_eq!(
            cell(PgType::Varchar(5), "a\tb"),
            [0, 0, 0, 3, b'a', b'\t', b'b']
        );
        assert_eq!(cell(PgType::Integer, "42.0"), [0, 0, 0, 4, 0, 0, 0, 42]);
        assert_eq!(
            cell(PgType::BigInt, "-1"),
            [0, 0, 0, 8, 255, 255, 255, 255, 255, 255, 255, 255]
        );
        assert_eq!(cell(PgType::Boolean, "TRUE"), [0, 0, 0, 1, 1]);
        let mut double = vec![0, 0, 0, 8];
        double.extend(12.5f64.to_be_bytes());
        assert_eq!(cell(PgType::DoublePrecision, "12.5"), double);
        // Dates in days, times and timestamps in microseconds since 2000-01-01 (UTC), to the
        // millisecond as their text.
        assert_eq!(cell(PgType::Date, "2000-01-02"), [0, 0, 0, 4, 0, 0, 0, 1]);
        let micros = |n: i64| {
            let mut v = vec![0, 0, 0, 8];
            v.extend(n.to_be_bytes());
            v
        };
        assert_eq!(cell(PgType::Time, "00:00:01.5009Z"), micros(1_500_000));
        assert_eq!(
            cell(PgType::Timestamp, "2000-01-01T01:00:00.0019+01:00"),
            micros(1_000)
        );
        // The same checks as the text form.
        let f = field(SfType::String, PgType::Varchar(2));
        assert!(checked_from_csv(&f, "abc").is_err());
        assert!(checked_from_csv(&field(SfType::Date, PgType::Date), "2024-02-30").is_err());
    }

    #[test]
    fn copy_lines_escape_what_copy_text_format_requires() {
        let mut line = String::new();
        copy_line([Some("a\tb"), None, Some("c\\d\ne")], &mut line);
        assert_eq!(line, "a\\tb\t\\N\tc\\\\d\\ne\n");
    }

    #[test]
    fn copy_cells_keep_other_characters_whole_around_escapes() {
        let mut line = String::new();
        copy_line(
            [Some("é\r€\\ñ"), Some("plain"), Some(""), Some("\t\t")],
            &mut line,
        );
        assert_eq!(line, "é\\r€\\\\ñ\tplain\t\t\\t\\t\n");
    }

    #[test]
    fn timestamps_are_written_as_the_strftime_pattern_writes_them() {
        use chrono::NaiveDateTime;
        for (y, mo, d, h, mi, s, ms) in [
            (2024, 1, 2, 3, 4, 5, 0),
            (1700, 1, 1, 0, 0, 0, 999),
            (4000, 12, 31, 23, 59, 59, 1),
            (1, 6, 15, 12, 30, 45, 500),
            (10000, 1, 1, 0, 0, 0, 0),
            (-5, 3, 1, 0, 0, 0, 0),
        ] {
            let dt = NaiveDate::from_ymd_opt(y, mo, d)
                .and_then(|date| date.and_hms_milli_opt(h, mi, s, ms))
                .unwrap();
            assert_eq!(
                format_timestamp(&dt),
                dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                "{dt:?}"
            );
        }
        assert_eq!(
            format_timestamp(&parse_datetime("2024-01-02T03:04:05.678Z").unwrap()),
            "2024-01-02 03:04:05.678"
        );
        let leap =
            NaiveDateTime::parse_from_str("2016-12-31 23:59:60.5", "%Y-%m-%d %H:%M:%S%.f").unwrap();
        assert_eq!(
            format_timestamp(&leap),
            leap.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
        );
    }

    #[test]
    fn a_varchar_is_measured_in_characters_whatever_its_bytes() {
        let f = field(SfType::String, PgType::Varchar(3));
        assert!(pg_text_from_csv(&f, "ééé").is_ok());
        assert!(pg_text_from_csv(&f, "abc").is_ok());
        assert!(pg_text_from_csv(&f, "éééé").is_err());
        assert!(pg_text_from_csv(&f, "abcd").is_err());
    }

    #[test]
    fn stored_timestamps_read_back_in_salesforce_form() {
        let f = field(SfType::DateTime, PgType::Timestamp);
        assert_eq!(
            sf_json_from_pg(&f, &json!("2024-01-02T03:04:05")),
            json!("2024-01-02T03:04:05.000Z")
        );
    }
}
