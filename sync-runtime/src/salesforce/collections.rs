//! sObject Collections writes: create, update, upsert by external Id and delete, at most
//! [`COLLECTION_CHUNK`] records per call, always `allOrNone=false`, so each record succeeds or fails
//! on its own. Larger inputs are split into several calls; results come back in input order, one
//! per record, each failure classified ([`SfError::class`]: `UNABLE_TO_LOCK_ROW` is indefinite,
//! a validation rule or a duplicate is definite).
//!
//! A call-level failure (the whole request refused, or a transport error) is returned as `Err`; an
//! [`super::ErrorClass::Ambiguous`] one means some records of that call may have been written.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::SfError;
use super::http::Request;
use super::{CallKind, Client};

/// Most records Salesforce accepts in one sObject Collections call.
pub const COLLECTION_CHUNK: usize = 200;

/// One record's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordResult {
    pub success: bool,
    /// The record's Id (absent when a create failed).
    pub id: Option<String>,
    /// For upserts: whether the record was created (`false` = updated).
    pub created: Option<bool>,
    /// Why it failed, classified.
    pub errors: Vec<SfError>,
}

impl RecordResult {
    /// The first error (a failed record always has one).
    pub fn error(&self) -> Option<&SfError> {
        self.errors.first()
    }
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(default)]
    id: Option<String>,
    success: bool,
    #[serde(default)]
    created: Option<bool>,
    #[serde(default)]
    errors: Vec<RawError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawError {
    status_code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    fields: Vec<String>,
}

/// Reads a Collections answer into classified per-record results (pure).
pub fn parse_results(body: &[u8]) -> Result<Vec<RecordResult>, SfError> {
    let raw: Vec<RawResult> = serde_json::from_slice(body)
        .map_err(|e| SfError::decode(format!("sObject Collections answer: {e}")))?;
    Ok(raw
        .into_iter()
        .map(|r| RecordResult {
            success: r.success,
            id: r.id,
            created: r.created,
            errors: r
                .errors
                .into_iter()
                .map(|e| SfError::api(None, &e.status_code, &e.message, e.fields))
                .collect(),
        })
        .collect())
}

/// Adds `attributes.type` to each record (Collections needs it).
fn typed(object: &str, records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(map) = r.as_object_mut() {
                map.insert("attributes".to_owned(), json!({ "type": object }));
            }
            r
        })
        .collect()
}

impl Client {
    /// Creates `records` (field maps without `Id`).
    pub async fn create_records(
        &self,
        object: &str,
        records: &[Value],
    ) -> Result<Vec<RecordResult>, SfError> {
        self.collection_write(
            Method::POST,
            self.data_path("composite/sobjects"),
            object,
            records,
        )
        .await
    }

    /// Updates `records` (each with its `Id` and only the fields to change).
    pub async fn update_records(
        &self,
        object: &str,
        records: &[Value],
    ) -> Result<Vec<RecordResult>, SfError> {
        self.collection_write(
            Method::PATCH,
            self.data_path("composite/sobjects"),
            object,
            records,
        )
        .await
    }

    /// Upserts `records` matched on the external Id field `external_id_field` (each record holds
    /// it). Results say `created` per record.
    pub async fn upsert_records(
        &self,
        object: &str,
        external_id_field: &str,
        records: &[Value],
    ) -> Result<Vec<RecordResult>, SfError> {
        let path = self.data_path(&format!("composite/sobjects/{object}/{external_id_field}"));
        self.collection_write(Method::PATCH, path, object, records)
            .await
    }

    /// Deletes records by Id (to the recycle bin).
    pub async fn delete_records(&self, ids: &[String]) -> Result<Vec<RecordResult>, SfError> {
        let mut results = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(COLLECTION_CHUNK) {
            let request = Request::new(
                Method::DELETE,
                CallKind::Collections,
                self.data_path("composite/sobjects"),
            )
            .query("ids", chunk.join(","))
            .query("allOrNone", "false");
            let response = self.send(request).await?;
            results.extend(parse_results(&response.body)?);
        }
        Ok(results)
    }

    async fn collection_write(
        &self,
        method: Method,
        path: String,
        object: &str,
        records: &[Value],
    ) -> Result<Vec<RecordResult>, SfError> {
        let mut results = Vec::with_capacity(records.len());
        for chunk in records.chunks(COLLECTION_CHUNK) {
            let body = json!({"allOrNone": false, "records": typed(object, chunk)});
            let request =
                Request::new(method.clone(), CallKind::Collections, path.clone()).json(&body);
            let response = self.send(request).await?;
            let chunk_results = parse_results(&response.body)?;
            if chunk_results.len() != chunk.len() {
                return Err(SfError::decode(format!(
                    "sObject Collections answered {} results for {} records",
                    chunk_results.len(),
                    chunk.len()
                )));
            }
            results.extend(chunk_results);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::ErrorClass;
    use super::*;

    #[test]
    fn per_record_failures_are_classified() {
        let results = parse_results(
            br#"[{"id":"001A","success":true,"errors":[]},
                {"success":false,"errors":[{"statusCode":"FIELD_CUSTOM_VALIDATION_EXCEPTION","message":"No test accounts","fields":["Name"]}]},
                {"id":"001C","success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record","fields":[]}]},
                {"id":"001D","success":true,"created":false,"errors":[]}]"#,
        )
        .expect("results");
        assert!(results[0].success && results[0].error().is_none());
        let validation = results[1].error().expect("error");
        assert_eq!(validation.class, ErrorClass::Definite);
        assert_eq!(validation.fields, vec!["Name"]);
        assert_eq!(
            results[2].error().expect("lock").class,
            ErrorClass::Indefinite
        );
        assert_eq!(results[3].created, Some(false));
    }

    #[test]
    fn records_get_their_type_attribute() {
        let typed = typed("Account", &[json!({"Name": "A"})]);
        assert_eq!(
            typed[0],
            json!({"Name": "A", "attributes": {"type": "Account"}})
        );
    }
}
