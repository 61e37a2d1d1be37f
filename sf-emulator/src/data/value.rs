//! `Value`: one field value (null, bool, int, double, string, date, datetime in UTC ms, time of
//! day in ms), parsed from JSON or CSV text by field type with Salesforce's error codes, and
//! rendered to REST JSON (`+0000` datetimes), CDC JSON (`Z` datetimes) and CSV text.

use std::cmp::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use serde_json::Value as Json;

use crate::data::error::FieldError;
use crate::data::ids::SfId;
use crate::data::schema::{FieldSchema, FieldType};

/// One stored field value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(Arc<str>),
    Date(NaiveDate),
    /// Milliseconds since the Unix epoch, UTC.
    DateTime(i64),
    /// Milliseconds since midnight.
    Time(u32),
}

/// A shared `Null` to hand out by reference.
pub static NULL: Value = Value::Null;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn str(s: &str) -> Value {
        Value::String(s.into())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// Orders two values of compatible kinds (numbers with numbers, text with text, …);
    /// text compares case-insensitively as SOQL does. None for incomparable kinds or null.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Int(_) | Double(_), Int(_) | Double(_)) => {
                self.as_f64()?.partial_cmp(&other.as_f64()?)
            }
            (String(a), String(b)) => Some(cmp_ci(a, b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (DateTime(a), DateTime(b)) => Some(a.cmp(b)),
            (Time(a), Time(b)) => Some(a.cmp(b)),
            (Date(a), DateTime(b)) => Some(date_ms(*a).cmp(b)),
            (DateTime(a), Date(b)) => Some(a.cmp(&date_ms(*b))),
            _ => None,
        }
    }

    /// REST JSON rendering (`2024-01-02T03:04:05.000+0000`).
    pub fn to_rest_json(&self) -> Json {
        match self {
            Value::DateTime(ms) => Json::String(format_datetime_rest(*ms)),
            _ => self.to_cdc_json(),
        }
    }

    /// CDC / Bulk XML JSON rendering (`2024-01-02T03:04:05.000Z`).
    pub fn to_cdc_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Value::String(s) => Json::String(s.to_string()),
            Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(ms) => Json::String(format_datetime_z(*ms)),
            Value::Time(t) => Json::String(format_time(*t)),
        }
    }

    /// CSV text (null = empty, booleans `true`/`false`, datetimes with `Z`).
    pub fn to_csv(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Double(d) => format_double(*d),
            Value::String(s) => s.to_string(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::DateTime(ms) => format_datetime_z(*ms),
            Value::Time(t) => format_time(*t),
        }
    }

    /// Parses a JSON value sent for `field` (REST, collections, composite).
    /// Type mismatches answer `JSON_PARSER_ERROR` as Salesforce's deserializer does.
    pub fn from_json(field: &FieldSchema, v: &Json) -> Result<Value, FieldError> {
        let ty = &field.ftype;
        let parser_err = |kind: &str, token: &str, shown: &str| {
            FieldError::with_fields(
                "JSON_PARSER_ERROR",
                format!(
                    "Cannot deserialize instance of {kind} from {token} value {shown} or request may be missing a required field"
                ),
                vec![field.name.clone()],
            )
        };
        match v {
            Json::Null => Ok(if *ty == FieldType::Boolean {
                Value::Bool(false)
            } else {
                Value::Null
            }),
            Json::String(s) => {
                if s.is_empty() {
                    return Ok(if *ty == FieldType::Boolean {
                        Value::Bool(false)
                    } else {
                        Value::Null
                    });
                }
                Value::from_text_typed(field, s).map_err(|e| {
                    if e.status_code == "INVALID_TYPE_ON_FIELD_IN_RECORD" {
                        parser_err(json_kind(ty), "VALUE_STRING", s)
                    } else {
                        e
                    }
                })
            }
            Json::Bool(b) => match ty {
                FieldType::Boolean => Ok(Value::Bool(*b)),
                t if t.is_text() => Ok(Value::String(b.to_string().into())),
                _ => Err(parser_err(
                    json_kind(ty),
                    if *b { "VALUE_TRUE" } else { "VALUE_FALSE" },
                    &b.to_string(),
                )),
            },
            Json::Number(n) => match ty {
                FieldType::Int | FieldType::Long => match n.as_i64() {
                    Some(i) => check_int(field, i),
                    None => match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                            check_int(field, f as i64)
                        }
                        _ => Err(parser_err(
                            json_kind(ty),
                            "VALUE_NUMBER_FLOAT",
                            &n.to_string(),
                        )),
                    },
                },
                FieldType::Double | FieldType::Currency | FieldType::Percent => match n.as_f64() {
                    Some(f) => check_double(field, f),
                    None => Err(parser_err(json_kind(ty), "VALUE_NUMBER", &n.to_string())),
                },
                t if t.is_text() => Ok(Value::String(n.to_string().into())),
                _ => Err(parser_err(
                    json_kind(ty),
                    "VALUE_NUMBER_INT",
                    &n.to_string(),
                )),
            },
            Json::Array(_) => Err(parser_err(json_kind(ty), "START_ARRAY", "[")),
            Json::Object(_) => Err(parser_err(json_kind(ty), "START_OBJECT", "{")),
        }
    }

    /// Parses CSV/Bulk text for `field`: empty and `#N/A` are null; type mismatches answer
    /// `INVALID_TYPE_ON_FIELD_IN_RECORD`.
    pub fn from_text(field: &FieldSchema, s: &str) -> Result<Value, FieldError> {
        if s.is_empty() || s == "#N/A" {
            return Ok(if field.ftype == FieldType::Boolean {
                Value::Bool(false)
            } else {
                Value::Null
            });
        }
        Value::from_text_typed(field, s).map_err(|mut e| {
            if e.status_code == "JSON_PARSER_ERROR" {
                e.status_code = "INVALID_TYPE_ON_FIELD_IN_RECORD".into();
            }
            e
        })
    }

    fn from_text_typed(field: &FieldSchema, s: &str) -> Result<Value, FieldError> {
        let bad = || {
            FieldError::with_fields(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                format!("{}: value not of required type: {s}", field.label),
                vec![field.name.clone()],
            )
        };
        match &field.ftype {
            FieldType::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(Value::Bool(true)),
                "false" | "0" | "no" => Ok(Value::Bool(false)),
                _ => Err(bad()),
            },
            FieldType::Int | FieldType::Long => {
                let t = s.trim();
                match t.parse::<i64>() {
                    Ok(i) => check_int(field, i),
                    Err(_) => match t.parse::<f64>() {
                        Ok(f) if f.fract() == 0.0 && f.is_finite() => check_int(field, f as i64),
                        _ => Err(bad()),
                    },
                }
            }
            FieldType::Double | FieldType::Currency | FieldType::Percent => {
                match s.trim().parse::<f64>() {
                    Ok(f) if f.is_finite() => check_double(field, f),
                    _ => Err(bad()),
                }
            }
            FieldType::Date => parse_date(s).map(Value::Date).ok_or_else(bad),
            FieldType::DateTime => parse_datetime(s).map(Value::DateTime).ok_or_else(bad),
            FieldType::Time => parse_time(s).map(Value::Time).ok_or_else(bad),
            FieldType::Id | FieldType::Reference => match SfId::parse(s.trim()) {
                Ok(id) => Ok(Value::String(id.as_str().into())),
                Err(_) => Err(FieldError::with_fields(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {s}", field.label),
                    vec![field.name.clone()],
                )),
            },
            FieldType::Address | FieldType::Location => Err(bad()),
            _ => Ok(Value::String(s.into())),
        }
    }
}

fn json_kind(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::Boolean => "boolean",
        FieldType::Int => "int",
        FieldType::Long => "long",
        FieldType::Double | FieldType::Currency | FieldType::Percent => "double",
        FieldType::Date => "date",
        FieldType::DateTime => "datetime",
        FieldType::Time => "time",
        FieldType::Id | FieldType::Reference => "id",
        _ => "String",
    }
}

fn out_of_range(field: &FieldSchema, shown: String) -> FieldError {
    FieldError::with_fields(
        "NUMBER_OUTSIDE_VALID_RANGE",
        format!(
            "{}: value outside of valid range on numeric field: {shown}",
            field.label
        ),
        vec![field.name.clone()],
    )
}

fn check_int(field: &FieldSchema, i: i64) -> Result<Value, FieldError> {
    if field.ftype == FieldType::Int && (i < i32::MIN as i64 || i > i32::MAX as i64) {
        return Err(out_of_range(field, i.to_string()));
    }
    if field.digits > 0 && field.digits < 19 && i.unsigned_abs() >= 10u64.pow(field.digits) {
        return Err(out_of_range(field, i.to_string()));
    }
    Ok(Value::Int(i))
}

fn check_double(field: &FieldSchema, f: f64) -> Result<Value, FieldError> {
    let mut v = f;
    if field.precision > 0 {
        let scale = field.scale.min(17) as i32;
        let factor = 10f64.powi(scale);
        v = (f * factor).round() / factor;
        let int_digits = field.precision.saturating_sub(field.scale).min(300) as i32;
        if v.abs() >= 10f64.powi(int_digits) {
            return Err(out_of_range(field, format_double(f)));
        }
    }
    // Salesforce stores numbers as decimals, which have no negative zero: -0.001 rounded to two
    // places is 0, in JSON and CSV alike.
    Ok(Value::Double(if v == 0.0 { 0.0 } else { v }))
}

fn cmp_ci(a: &str, b: &str) -> Ordering {
    let mut ai = a.chars().flat_map(char::to_lowercase);
    let mut bi = b.chars().flat_map(char::to_lowercase);
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => continue,
                o => return o,
            },
        }
    }
}

/// Midnight UTC of a date, in epoch ms.
pub fn date_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0)
}

/// A double as Salesforce CSV/text shows it (integral values without a fraction).
pub fn format_double(d: f64) -> String {
    if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// `2024-01-02T03:04:05.000+0000` (REST JSON).
pub fn format_datetime_rest(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// `2024-01-02T03:04:05.000Z` (CDC, Bulk, CSV).
pub fn format_datetime_z(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `03:04:05.000Z`.
pub fn format_time(ms: u32) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// `YYYY-MM-DD` (a datetime string is accepted and truncated to its date).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d);
    }
    parse_datetime(s).map(|ms| utc(ms).date_naive())
}

/// Datetimes as clients send them: `YYYY-MM-DDThh:mm[:ss[.f{0,9}]]` followed by `Z`, `±hh:mm`,
/// `±hhmm`, `±hh` or nothing (UTC); a space instead of `T`; a bare date (midnight UTC).
/// Returns epoch milliseconds.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.len() == 10 {
        return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(date_ms);
    }
    let (date_part, rest) = (s.get(..10)?, s.get(10..)?);
    let sep = rest.chars().next()?;
    if sep != 'T' && sep != 't' && sep != ' ' {
        return None;
    }
    let rest = &rest[1..];
    // Split time and zone.
    let zone_at = rest
        .find(['Z', 'z', '+'])
        .or_else(|| rest.rfind('-'))
        .unwrap_or(rest.len());
    let (time_part, zone) = rest.split_at(zone_at);
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").ok()?;
    let time = parse_clock(time_part)?;
    let offset_secs: i64 = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            if !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i64>().ok()?, 0),
                4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let ndt = NaiveDateTime::new(date, time);
    Some(ndt.and_utc().timestamp_millis() - offset_secs * 1000)
}

fn parse_clock(s: &str) -> Option<NaiveTime> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let h: u32 = parts[0].parse().ok()?;
    let m: u32 = parts[1].parse().ok()?;
    let sec: u32 = parts.get(2).map(|p| p.parse().ok()).unwrap_or(Some(0))?;
    let ms: u32 = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let padded = format!("{f:0<3}");
            padded[..3].parse().ok()?
        }
    };
    NaiveTime::from_hms_milli_opt(h, m, sec, ms)
}

/// `hh:mm[:ss[.fff]][Z]` → ms since midnight.
pub fn parse_time(s: &str) -> Option<u32> {
    let s = s.trim();
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix('z'))
        .unwrap_or(s);
    let t = parse_clock(s)?;
    Some(t.num_seconds_from_midnight() * 1000 + t.nanosecond() / 1_000_000)
}

/// Epoch ms of a date at midnight UTC, and back: helpers for date arithmetic.
pub fn date_of_ms(ms: i64) -> NaiveDate {
    utc(ms).date_naive()
}

/// Year of a datetime in ms (used by seeding and fiscal fields).
pub fn year_of_ms(ms: i64) -> i32 {
    utc(ms).year()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetime_formats() {
        let base = parse_datetime("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(format_datetime_rest(base), "2024-01-02T03:04:05.000+0000");
        assert_eq!(format_datetime_z(base), "2024-01-02T03:04:05.000Z");
        for s in [
            "2024-01-02T03:04:05.000+0000",
            "2024-01-02T03:04:05.000000Z",
            "2024-01-02T03:04:05+00:00",
            "2024-01-02T04:04:05.000+01:00",
            "2024-01-01T22:04:05-05:00",
            "2024-01-02 03:04:05",
        ] {
            assert_eq!(parse_datetime(s), Some(base), "{s}");
        }
        assert_eq!(parse_datetime("2024-01-02T03:04:05.123Z"), Some(base + 123));
        assert_eq!(parse_datetime("nope"), None);
        assert_eq!(parse_time("03:04:05.006Z"), Some(11_045_006));
        assert_eq!(format_time(11_045_006), "03:04:05.006Z");
    }
}
