//! What the status page shows, as plain data: gathered by [`super::data`], rendered by
//! [`super::render`]. Nothing here holds a credential.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::cli::admin::{Conflict, ReadError};
use crate::cli::report::MappingReport;
use crate::engine::activity::{Change, Lag};

/// The rows a list shows per page.
pub const PAGE_SIZE: usize = 50;

/// The overview: every mapping and the org's API usage.
#[derive(Debug, Clone)]
pub struct Overview {
    pub now: DateTime<Utc>,
    /// This process, as `host pid N`.
    pub instance: String,
    pub mappings: Vec<MappingRow>,
    /// The org's API usage today (`Sforce-Limit-Info`): used, daily limit; `None` before a call.
    pub org_usage: Option<(u64, u64)>,
}

/// One mapping's line on the overview.
#[derive(Debug, Clone)]
pub struct MappingRow {
    pub report: MappingReport,
    /// Who holds the mapping's lease: `this instance`, another one, or nobody.
    pub holder: String,
    /// `streaming (Change Data Capture)` or `polling every 60 s`.
    pub transport: String,
    /// The mapping's daily API budget (`max_daily_api_calls`; 0: none).
    pub budget: u64,
    /// Changes in the last hour, Salesforce → Postgres and Postgres → Salesforce.
    pub changes_in: u64,
    pub changes_out: u64,
    /// Latency over the last five minutes, each direction.
    pub lag_in: Option<Lag>,
    pub lag_out: Option<Lag>,
    /// Rows loaded and expected while the mapping loads or reloads.
    pub progress: Option<(i64, Option<i64>)>,
}

/// A change sent from Postgres to Salesforce (the writer's archive).
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub at: Option<DateTime<Utc>>,
    pub action: Option<String>,
    pub record_id: Option<i32>,
    pub sfid: Option<String>,
    pub fields: Vec<String>,
    pub latency_ms: Option<i64>,
}

/// A failed write with the row as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct Failed {
    pub id: i32,
    pub action: Option<String>,
    pub record_id: Option<i32>,
    pub sfid: Option<String>,
    pub message: Option<String>,
    /// The row's `_hc_err` (Heroku Connect's JSON: op, src, msg, …).
    pub hc_err: Option<String>,
    /// The values the write carried.
    pub values: Option<Value>,
    /// The row's current values (`None`: the row is gone).
    pub row: Option<Value>,
    pub at: Option<DateTime<Utc>>,
}

/// A page of a list: its rows, the page number (from 1), how many rows match in all (when
/// counted: a list over the whole archive is not) and whether a next page exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub rows: Vec<T>,
    pub page: usize,
    pub total: Option<i64>,
    pub more: bool,
}

impl<T> Paged<T> {
    /// A page of a counted list.
    pub fn counted(rows: Vec<T>, page: usize, total: i64) -> Paged<T> {
        let mut paged = Paged {
            rows,
            page,
            total: Some(total),
            more: false,
        };
        paged.more = page < paged.pages();
        paged
    }

    /// A page read with one row more than it shows (that row says whether a next page exists).
    pub fn probed(mut rows: Vec<T>, page: usize) -> Paged<T> {
        let more = rows.len() > PAGE_SIZE;
        rows.truncate(PAGE_SIZE);
        Paged {
            rows,
            page,
            total: None,
            more,
        }
    }

    /// A page of a list held in memory.
    pub fn slice(all: Vec<T>, page: usize) -> Paged<T> {
        let total = all.len() as i64;
        let rows = all
            .into_iter()
            .skip((page.max(1) - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .collect();
        Paged::counted(rows, page, total)
    }

    /// Pages in all (at least one); for an uncounted list, the pages seen so far.
    pub fn pages(&self) -> usize {
        match self.total {
            Some(total) => (total.max(0) as usize).div_ceil(PAGE_SIZE).max(1),
            None => self.page + usize::from(self.more),
        }
    }
}

/// The query of a mapping's page: the record filter and each list's page.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct DetailQuery {
    /// A Salesforce record Id (or its start), or a Postgres row id.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub failed_page: Option<usize>,
    #[serde(default)]
    pub errors_page: Option<usize>,
    #[serde(default)]
    pub conflicts_page: Option<usize>,
    #[serde(default)]
    pub received_page: Option<usize>,
    #[serde(default)]
    pub sent_page: Option<usize>,
    /// `live`: only the part that updates itself.
    #[serde(default)]
    pub part: Option<String>,
    /// What the last action did (a fixed code, see [`super::render::done_message`]).
    #[serde(default)]
    pub done: Option<String>,
    #[serde(default)]
    pub n: Option<u64>,
}

impl DetailQuery {
    /// The record filter, trimmed; `None` when empty.
    pub fn filter(&self) -> Option<&str> {
        self.id.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }
}

/// A mapping's page.
#[derive(Debug)]
pub struct Detail {
    pub now: DateTime<Utc>,
    pub row: MappingRow,
    pub query: DetailQuery,
    /// Changes Salesforce → Postgres this instance applied, newest first.
    pub received: Paged<Change>,
    /// Changes Postgres → Salesforce (the writer's archive), newest first.
    pub sent: Paged<Sent>,
    pub failed: Paged<Failed>,
    pub read_errors: Paged<ReadError>,
    pub conflicts: Paged<Conflict>,
}

/// Whether a change concerns the record `filter` (a Salesforce Id or its start, or a row id).
pub fn matches(filter: Option<&str>, sfid: Option<&str>, record_id: Option<i32>) -> bool {
    let Some(f) = filter else {
        return true;
    };
    sfid.is_some_and(|s| s.starts_with(f)) || record_id.is_some_and(|r| r.to_string() == f)
}

/// The fields a write carried (its values' keys), system columns left out; an insert's empty
/// (null) columns too, since it sends only the others.
pub fn fields_of(values: Option<&Value>, action: Option<&str>) -> Vec<String> {
    let insert = action == Some("INSERT");
    values
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(k, v)| {
                    !k.starts_with('_') && *k != "id" && *k != "sfid" && !(insert && v.is_null())
                })
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// `_hc_err` as Heroku Connect writes it (`{"errorCode", "message", "fields"}`): its error
/// code, message and fields; `None` when it is not that JSON.
pub fn hc_err_parts(text: &str) -> Option<(String, String, Vec<String>)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let o = v.as_object()?;
    let code = o.get("errorCode")?.as_str()?.to_owned();
    let message = o
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let fields = o
        .get("fields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Some((code, message, fields))
}

/// `38 ms`, `1.2 s`, `3 min`.
pub fn duration(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min", ms / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_matches_an_id_its_start_or_a_row_id() {
        assert!(matches(None, None, None));
        assert!(matches(Some("001"), Some("001000000000001AAA"), None));
        assert!(!matches(Some("003"), Some("001000000000001AAA"), Some(3)));
        assert!(matches(Some("3"), None, Some(3)));
        assert!(!matches(Some("3"), None, None));
    }

    #[test]
    fn pages_round_up_and_never_fall_to_zero() {
        let p = |total| Paged::<()>::counted(vec![], 1, total);
        assert_eq!(p(0).pages(), 1);
        assert_eq!(p(50).pages(), 1);
        assert!(!p(50).more);
        assert_eq!(p(51).pages(), 2);
        assert!(p(51).more);
        assert_eq!(p(10_000).pages(), 200);
    }

    #[test]
    fn a_probed_page_shows_its_rows_and_knows_a_next_one() {
        let page = Paged::probed((0..=PAGE_SIZE).collect(), 2);
        assert_eq!(page.rows.len(), PAGE_SIZE);
        assert!(page.more);
        assert_eq!((page.total, page.pages()), (None, 3));
        assert!(!Paged::probed(vec![1, 2], 1).more);
    }

    #[test]
    fn a_slice_is_the_requested_page_of_a_list() {
        let page = Paged::slice((0..120).collect::<Vec<_>>(), 3);
        assert_eq!(page.rows, (100..120).collect::<Vec<_>>());
        assert_eq!((page.total, page.more), (Some(120), false));
    }

    #[test]
    fn durations_and_fields_read_naturally() {
        assert_eq!(duration(38), "38 ms");
        assert_eq!(duration(1_250), "1.2 s");
        assert_eq!(duration(600_000), "10 min");
        let v = serde_json::json!({"name": "x", "id": 1, "_hc_lastop": "x", "phone": null});
        assert_eq!(fields_of(Some(&v), Some("UPDATE")), ["name", "phone"]);
        assert_eq!(fields_of(Some(&v), Some("INSERT")), ["name"]);
    }

    #[test]
    fn hc_err_reads_as_code_message_and_fields() {
        let parts = hc_err_parts(
            r#"{"errorCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","fields":["Name"],"message":"No"}"#,
        );
        assert_eq!(
            parts,
            Some((
                "FIELD_CUSTOM_VALIDATION_EXCEPTION".to_owned(),
                "No".to_owned(),
                vec!["Name".to_owned()]
            ))
        );
        assert_eq!(hc_err_parts("plain text"), None);
    }
}
