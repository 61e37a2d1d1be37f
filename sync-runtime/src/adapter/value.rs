//! Typed field values <-> Salesforce JSON values.
//!
//! Reads accept every spelling Salesforce uses: REST datetimes `2024-01-02T03:04:05.000+0000`,
//! CDC/Bulk `…Z`, `±hh:mm` offsets, any number of fraction digits, and epoch milliseconds (Pub/Sub).
//! Writes use the canonical `2024-01-02T03:04:05.000Z`, `03:04:05.000Z` and `2024-01-02` forms.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::Value;

use super::descriptor::FieldDescriptor;
use super::error::{ConversionError, ConversionErrorKind};
use super::picklist::{MultiPicklist, Picklist};

/// A Rust type a Salesforce field value converts to and from.
pub trait SfValue: Sized {
    /// Converts a non-null JSON value of `field`.
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError>;

    /// The JSON value Salesforce accepts in a create or update body.
    fn to_sf(&self) -> Value;
}

fn expect_str<'v>(
    value: &'v Value,
    field: &FieldDescriptor,
    expected: &'static str,
) -> Result<&'v str, ConversionError> {
    match value {
        Value::String(s) => Ok(s),
        Value::Object(o) if o.contains_key("diff") => Err(ConversionError::new(
            field.sf_name,
            ConversionErrorKind::Diff,
        )),
        other => Err(ConversionError::wrong_type(field.sf_name, expected, other)),
    }
}

/// What `value` read as (`read`), or the error saying it is not `expected`.
pub(super) fn or_wrong_type<T>(
    read: Option<T>,
    value: &Value,
    field: &FieldDescriptor,
    expected: &'static str,
) -> Result<T, ConversionError> {
    read.ok_or_else(|| ConversionError::wrong_type(field.sf_name, expected, value))
}

impl SfValue for String {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        expect_str(value, field, "a string").map(str::to_owned)
    }

    fn to_sf(&self) -> Value {
        Value::String(self.clone())
    }
}

impl SfValue for f64 {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        or_wrong_type(value.as_f64(), value, field, "a number")
    }

    fn to_sf(&self) -> Value {
        serde_json::Number::from_f64(*self).map_or(Value::Null, Value::Number)
    }
}

fn integral(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        (f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64).then_some(f as i64)
    })
}

impl SfValue for i64 {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        or_wrong_type(integral(value), value, field, "an integer")
    }

    fn to_sf(&self) -> Value {
        Value::from(*self)
    }
}

impl SfValue for i32 {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        let read = integral(value).and_then(|i| i32::try_from(i).ok());
        or_wrong_type(read, value, field, "a 32-bit integer")
    }

    fn to_sf(&self) -> Value {
        Value::from(*self)
    }
}

impl SfValue for bool {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        or_wrong_type(value.as_bool(), value, field, "true or false")
    }

    fn to_sf(&self) -> Value {
        Value::Bool(*self)
    }
}

impl SfValue for NaiveDate {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        const EXPECTED: &str = "a date (YYYY-MM-DD)";
        let s = expect_str(value, field, EXPECTED)?;
        or_wrong_type(
            NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
            value,
            field,
            EXPECTED,
        )
    }

    fn to_sf(&self) -> Value {
        Value::String(self.format("%Y-%m-%d").to_string())
    }
}

/// Parses a Salesforce datetime into UTC: `2024-01-02T03:04:05.000+0000`, `…Z`, `…+01:00`.
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|dt| dt.with_timezone(&Utc).naive_utc())
        .ok()
}

/// Formats a UTC datetime the way Salesforce accepts it in writes.
pub fn format_datetime(dt: &NaiveDateTime) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl SfValue for NaiveDateTime {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        const EXPECTED: &str = "a datetime (2024-01-02T03:04:05.000+0000)";
        if let Some(ms) = value.as_i64() {
            let read = DateTime::<Utc>::from_timestamp_millis(ms).map(|dt| dt.naive_utc());
            return or_wrong_type(read, value, field, EXPECTED);
        }
        let s = expect_str(value, field, EXPECTED)?;
        or_wrong_type(parse_datetime(s), value, field, EXPECTED)
    }

    fn to_sf(&self) -> Value {
        Value::String(format_datetime(self))
    }
}

/// Parses a Salesforce time of day: `03:04:05.000Z`, `03:04:05Z`, `03:04:05`.
pub fn parse_time(s: &str) -> Option<NaiveTime> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()
}

impl SfValue for NaiveTime {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        const EXPECTED: &str = "a time (03:04:05.000Z)";
        if let Some(ms) = value.as_i64() {
            // Pub/Sub sends times as milliseconds since midnight.
            let secs = u32::try_from(ms / 1000).ok();
            let nanos = u32::try_from((ms % 1000) * 1_000_000).ok();
            let read = secs
                .zip(nanos)
                .and_then(|(s, n)| NaiveTime::from_num_seconds_from_midnight_opt(s, n));
            return or_wrong_type(read, value, field, EXPECTED);
        }
        let s = expect_str(value, field, EXPECTED)?;
        or_wrong_type(parse_time(s), value, field, EXPECTED)
    }

    fn to_sf(&self) -> Value {
        Value::String(self.format("%H:%M:%S%.3fZ").to_string())
    }
}

impl<T: Picklist> SfValue for T {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        expect_str(value, field, "a picklist value").map(T::from_value)
    }

    fn to_sf(&self) -> Value {
        Value::String(self.as_str().to_owned())
    }
}

impl<T: Picklist> SfValue for MultiPicklist<T> {
    fn from_sf(value: &Value, field: &FieldDescriptor) -> Result<Self, ConversionError> {
        expect_str(value, field, "picklist values separated by `;`").map(MultiPicklist::parse)
    }

    fn to_sf(&self) -> Value {
        Value::String(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn rest_and_cdc_datetimes_parse_to_the_same_utc_instant() {
        let rest = parse_datetime("2024-01-02T03:04:05.000+0000").unwrap();
        let cdc = parse_datetime("2024-01-02T03:04:05.000Z").unwrap();
        let offset = parse_datetime("2024-01-02T04:04:05+01:00").unwrap();
        assert_eq!(rest, cdc);
        assert_eq!(rest, offset);
        assert_eq!(format_datetime(&rest), "2024-01-02T03:04:05.000Z");
    }

    #[test]
    fn salesforce_times_parse_with_and_without_fraction() {
        let t = parse_time("13:45:00.000Z").unwrap();
        assert_eq!((t.hour(), t.minute()), (13, 45));
        assert_eq!(parse_time("13:45:00"), Some(t));
        assert_eq!(parse_time("25:00:00Z"), None);
    }
}
