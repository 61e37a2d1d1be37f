//! REST API reads (and single-record writes): `COUNT()`, paged `query` / `queryAll`, sObject
//! Collections retrieve, the `updated` / `deleted` replication resources, describe, and
//! create / update / delete of one record (for write-through).
//!
//! Queries return one page at a time ([`QueryPage`]) with its `nextRecordsUrl`, so callers stream
//! any result in bounded memory: `let mut page = client.query(soql).await?;` then
//! `while let Some(next) = page.next_records_url { page = client.query_more(&next).await?; }`.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::SfError;
use super::http::Request;
use super::{CallKind, Client};

/// Most Ids Salesforce accepts in one sObject Collections retrieve.
pub const RETRIEVE_CHUNK: usize = 2_000;

/// One page of a query result.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct QueryPage {
    /// Rows of the whole query (not of this page).
    pub total_size: u64,
    pub done: bool,
    /// Where the next page is (absent on the last page).
    #[serde(default)]
    pub next_records_url: Option<String>,
    /// The records as Salesforce sent them (with `attributes`).
    #[serde(default)]
    pub records: Vec<Value>,
}

/// What `/sobjects/<Object>/updated` answers.
#[derive(Clone, Debug, PartialEq)]
pub struct UpdatedRecords {
    pub ids: Vec<String>,
    pub latest_date_covered: DateTime<Utc>,
}

/// One record in `/sobjects/<Object>/deleted`.
#[derive(Clone, Debug, PartialEq)]
pub struct DeletedRecord {
    pub id: String,
    pub deleted_date: DateTime<Utc>,
}

/// What `/sobjects/<Object>/deleted` answers.
#[derive(Clone, Debug, PartialEq)]
pub struct DeletedRecords {
    pub deleted: Vec<DeletedRecord>,
    /// The oldest delete Salesforce still knows about (about 15 days back).
    pub earliest_date_available: Option<DateTime<Utc>>,
    pub latest_date_covered: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUpdated {
    ids: Vec<String>,
    latest_date_covered: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeleted {
    deleted_records: Vec<RawDeletedRecord>,
    #[serde(default)]
    earliest_date_available: Option<String>,
    latest_date_covered: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDeletedRecord {
    id: String,
    deleted_date: String,
}

/// Parses Salesforce's REST datetimes (`2024-01-02T03:04:05.000+0000`, or RFC 3339 with `Z`).
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, SfError> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| SfError::decode(format!("bad datetime {text:?}: {e}")))
}

/// A datetime as Salesforce's replication resources take it (`2024-01-02T03:04:05Z`).
fn format_datetime(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Client {
    /// `SELECT COUNT() FROM …`: the number of matching rows (`totalSize`).
    pub async fn count(&self, soql: &str) -> Result<u64, SfError> {
        Ok(self.query(soql).await?.total_size)
    }

    /// The first page of a query (live records only).
    pub async fn query(&self, soql: &str) -> Result<QueryPage, SfError> {
        self.query_page("query", soql, None).await
    }

    /// The first page of a query that includes deleted and archived records.
    pub async fn query_all(&self, soql: &str) -> Result<QueryPage, SfError> {
        self.query_page("queryAll", soql, None).await
    }

    /// The first page with a preferred page size (`Sforce-Query-Options: batchSize`, 200–2,000;
    /// Salesforce may choose another).
    pub async fn query_with_batch_size(
        &self,
        soql: &str,
        all: bool,
        batch_size: u32,
    ) -> Result<QueryPage, SfError> {
        let resource = if all { "queryAll" } else { "query" };
        self.query_page(resource, soql, Some(batch_size)).await
    }

    async fn query_page(
        &self,
        resource: &str,
        soql: &str,
        batch_size: Option<u32>,
    ) -> Result<QueryPage, SfError> {
        let mut request = Request::get(CallKind::Query, self.data_path(resource)).query("q", soql);
        if let Some(size) = batch_size {
            request = request.header("Sforce-Query-Options", format!("batchSize={size}"));
        }
        self.send(request).await?.json()
    }

    /// The page at a `nextRecordsUrl`.
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryPage, SfError> {
        self.get_json(CallKind::Query, next_records_url).await
    }

    /// Records by Id through sObject Collections retrieve, `RETRIEVE_CHUNK` Ids per call.
    /// Ids Salesforce does not find (deleted, inaccessible) are left out of the result.
    pub async fn retrieve(
        &self,
        object: &str,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<Value>, SfError> {
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(RETRIEVE_CHUNK) {
            let request = Request::new(
                Method::POST,
                CallKind::Query,
                self.data_path(&format!("composite/sobjects/{object}")),
            )
            .json(&json!({"ids": chunk, "fields": fields}))
            .read_only();
            let page: Vec<Value> = self.send(request).await?.json()?;
            records.extend(page.into_iter().filter(|r| !r.is_null()));
        }
        Ok(records)
    }

    /// `GET /sobjects/<object>/<resource>/?start=…&end=…` (the `updated` and `deleted`
    /// resources).
    fn window_request(
        &self,
        object: &str,
        resource: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Request {
        Request::get(
            CallKind::Query,
            self.data_path(&format!("sobjects/{object}/{resource}/")),
        )
        .query("start", format_datetime(start))
        .query("end", format_datetime(end))
    }

    /// Ids of `object` records created or updated between `start` and `end`
    /// (`/sobjects/<Object>/updated`, up to 30 days back).
    pub async fn updated(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<UpdatedRecords, SfError> {
        let request = self.window_request(object, "updated", start, end);
        let raw: RawUpdated = self.send(request).await?.json()?;
        Ok(UpdatedRecords {
            ids: raw.ids,
            latest_date_covered: parse_datetime(&raw.latest_date_covered)?,
        })
    }

    /// `object` records deleted between `start` and `end` (`/sobjects/<Object>/deleted`, up to
    /// 15 days back, purged records included).
    pub async fn deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedRecords, SfError> {
        let request = self.window_request(object, "deleted", start, end);
        let raw: RawDeleted = self.send(request).await?.json()?;
        Ok(DeletedRecords {
            deleted: raw
                .deleted_records
                .into_iter()
                .map(|r| {
                    Ok(DeletedRecord {
                        deleted_date: parse_datetime(&r.deleted_date)?,
                        id: r.id,
                    })
                })
                .collect::<Result<_, SfError>>()?,
            earliest_date_available: raw
                .earliest_date_available
                .as_deref()
                .map(parse_datetime)
                .transpose()?,
            latest_date_covered: parse_datetime(&raw.latest_date_covered)?,
        })
    }

    /// `GET /sobjects/<Object>/describe` (fields, types, lengths, picklists …) as Salesforce sends it.
    pub async fn describe(&self, object: &str) -> Result<Value, SfError> {
        self.get_json(
            CallKind::Describe,
            self.data_path(&format!("sobjects/{object}/describe")),
        )
        .await
    }

    /// Creates one record; answers its Id. A 5xx answer is ambiguous (the record may exist).
    pub async fn create(&self, object: &str, fields: &Value) -> Result<String, SfError> {
        let request = Request::new(
            Method::POST,
            CallKind::Other,
            self.data_path(&format!("sobjects/{object}")),
        )
        .json(fields);
        let created: Value = self.send(request).await?.json()?;
        created
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SfError::decode("create answered without an id"))
    }

    /// Updates the given fields of one record.
    pub async fn update(&self, object: &str, id: &str, fields: &Value) -> Result<(), SfError> {
        let request = Request::new(
            Method::PATCH,
            CallKind::Other,
            self.data_path(&format!("sobjects/{object}/{id}")),
        )
        .json(fields);
        self.send(request).await.map(|_| ())
    }

    /// Deletes one record (to the recycle bin).
    pub async fn delete(&self, object: &str, id: &str) -> Result<(), SfError> {
        let request = Request::new(
            Method::DELETE,
            CallKind::Other,
            self.data_path(&format!("sobjects/{object}/{id}")),
        );
        self.send(request).await.map(|_| ())
    }

    /// One record by Id with the given fields (all fields when empty).
    pub async fn get_record(
        &self,
        object: &str,
        id: &str,
        fields: &[&str],
    ) -> Result<Value, SfError> {
        let mut request = Request::get(
            CallKind::Query,
            self.data_path(&format!("sobjects/{object}/{id}")),
        );
        if !fields.is_empty() {
            request = request.query("fields", fields.join(","));
        }
        self.send(request).await?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_and_rfc3339_datetimes_parse_to_utc() {
        let a = parse_datetime("2013-05-08T21:20:00.000+0000").expect("rest");
        let b = parse_datetime("2013-05-08T21:20:00Z").expect("rfc3339");
        assert_eq!(a, b);
        let c = parse_datetime("2013-05-08T23:20:00.000+0200").expect("offset");
        assert_eq!(a, c);
        assert!(parse_datetime("yesterday").is_err());
    }

    #[test]
    fn replication_windows_are_sent_as_utc_seconds() {
        let at = parse_datetime("2024-01-02T03:04:05.678Z").expect("dt");
        assert_eq!(format_datetime(at), "2024-01-02T03:04:05Z");
    }

    #[test]
    fn a_query_page_reads_with_or_without_a_next_page() {
        let page: QueryPage = serde_json::from_str(
            r#"{"totalSize":3,"done":false,"nextRecordsUrl":"/services/data/v59.0/query/01g-2","records":[{"Id":"1"},{"Id":"2"}]}"#,
        )
        .expect("page");
        assert_eq!(
            page.next_records_url.as_deref(),
            Some("/services/data/v59.0/query/01g-2")
        );
        assert_eq!(page.records.len(), 2);
        let last: QueryPage =
            serde_json::from_str(r#"{"totalSize":0,"done":true,"records":[]}"#).expect("last");
        assert!(last.done && last.next_records_url.is_none());
    }
}
