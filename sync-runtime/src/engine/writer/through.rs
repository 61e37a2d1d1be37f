//! Synchronous write-through, for apps that must know the outcome now: the record is created or
//! updated in Salesforce first, then stored in Postgres as synced (an engine write: not captured,
//! so the writer never sends it again). Salesforce's refusal comes back as the error and Postgres
//! is left untouched.
//!
//! A create uses the mapping's upsert key when the values hold one (idempotent, safe to repeat
//! after an ambiguous failure); otherwise a plain create, whose ambiguous failure
//! ([`crate::salesforce::ErrorClass::Ambiguous`]) the caller must treat as "may exist".

use serde_json::{Map, Value};
use tokio_postgres::Client as PgClient;

use crate::adapter::{pg_values_to_sf_body, MappingDescriptor, WriteKind};
use crate::engine::system::quote_ident;
use crate::salesforce::{Client, SfError};

use super::outcome::{decide_record, Decision};
use super::plan::CallKind;
use super::send::record_result;

/// Why a write-through did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ThroughError {
    /// Salesforce refused or failed the write (nothing stored in Postgres).
    #[error("Salesforce: {0}")]
    Salesforce(SfError),
    /// The values cannot be sent (a value of the wrong type).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The row to update does not exist or has no `sfid` yet.
    #[error("{0}")]
    NoRecord(String),
    /// Salesforce has the write but storing it in Postgres failed; the next read brings it in.
    #[error("Postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// A row stored by write-through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The Postgres row's `id`.
    pub id: i32,
    pub sfid: String,
}

fn columns_of(mapping: &MappingDescriptor, values: &Map<String, Value>) -> Vec<String> {
    values
        .keys()
        .filter(|c| mapping.field_by_column(c).is_some() && c.as_str() != "sfid")
        .cloned()
        .collect()
}

fn table(mapping: &MappingDescriptor) -> String {
    format!(
        "{}.{}",
        quote_ident(mapping.schema),
        quote_ident(mapping.table)
    )
}

/// Creates the record in Salesforce from column values (as the app would insert them), then
/// inserts the row with its `sfid`, `_hc_lastop = 'INSERTED'`.
pub async fn create(
    client: &Client,
    db: &mut PgClient,
    mapping: &MappingDescriptor,
    values: &Map<String, Value>,
) -> Result<Stored, ThroughError> {
    let body = pg_values_to_sf_body(mapping, values, WriteKind::Create)
        .map_err(|e| ThroughError::Invalid(e.to_string()))?;
    let record = body.into_json();
    let upsert = mapping
        .upsert_key
        .filter(|k| record.get(*k).is_some_and(|v| !v.is_null()));
    let result = match upsert {
        Some(key) => {
            client
                .upsert_records(mapping.object, key, std::slice::from_ref(&record))
                .await
        }
        None => {
            client
                .create_records(mapping.object, std::slice::from_ref(&record))
                .await
        }
    }
    .map_err(ThroughError::Salesforce)?;
    let kind = if upsert.is_some() {
        CallKind::Upsert
    } else {
        CallKind::Create
    };
    let sfid = settled_id(kind, &result)?;

    let columns = columns_of(mapping, values);
    let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("r.{}", quote_ident(c)))
        .collect();
    let tx = db.transaction().await?;
    tx.batch_execute("SET LOCAL forcesync.engine = 'on'")
        .await?;
    let mut with_sfid = values.clone();
    with_sfid.insert("sfid".to_owned(), Value::String(sfid.clone()));
    let sql = format!(
        "INSERT INTO {t} ({cols}sfid, _hc_lastop)
         SELECT {sel}r.sfid, 'INSERTED' FROM jsonb_populate_record(NULL::{t}, $1) r
         ON CONFLICT (sfid) DO UPDATE SET _hc_lastop = 'INSERTED'
         RETURNING id",
        t = table(mapping),
        cols = list.iter().map(|c| format!("{c}, ")).collect::<String>(),
        sel = select.iter().map(|c| format!("{c}, ")).collect::<String>(),
    );
    let row = tx.query_one(&sql, &[&Value::Object(with_sfid)]).await?;
    tx.commit().await?;
    Ok(Stored {
        id: row.get(0),
        sfid,
    })
}

/// Updates the record of row `id` in Salesforce with these changed column values, then stores
/// them in the row with `_hc_lastop = 'UPDATED'`.
pub async fn update(
    client: &Client,
    db: &mut PgClient,
    mapping: &MappingDescriptor,
    id: i32,
    changes: &Map<String, Value>,
) -> Result<Stored, ThroughError> {
    let sfid: Option<String> = db
        .query_opt(
            &format!("SELECT sfid FROM {} WHERE id = $1", table(mapping)),
            &[&id],
        )
        .await?
        .and_then(|r| r.get(0));
    let Some(sfid) = sfid else {
        return Err(ThroughError::NoRecord(format!(
            "{} row {id} does not exist or is not in Salesforce yet",
            mapping.table
        )));
    };
    let body = pg_values_to_sf_body(mapping, changes, WriteKind::Update)
        .map_err(|e| ThroughError::Invalid(e.to_string()))?;
    let mut record = body.into_json();
    record["Id"] = Value::String(sfid.clone());
    let result = client
        .update_records(mapping.object, std::slice::from_ref(&record))
        .await
        .map_err(ThroughError::Salesforce)?;
    settled_id(CallKind::Update, &result)?;

    let columns = columns_of(mapping, changes);
    let tx = db.transaction().await?;
    tx.batch_execute("SET LOCAL forcesync.engine = 'on'")
        .await?;
    if columns.is_empty() {
        tx.execute(
            &format!(
                "UPDATE {} SET _hc_lastop = 'UPDATED' WHERE id = $1",
                table(mapping)
            ),
            &[&id],
        )
        .await?;
    } else {
        let list: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        let select: Vec<String> = columns
            .iter()
            .map(|c| format!("r.{}", quote_ident(c)))
            .collect();
        tx.execute(
            &format!(
                "UPDATE {t} SET ({cols}) = (SELECT {sel} FROM jsonb_populate_record(NULL::{t}, $1) r),
                     _hc_lastop = 'UPDATED', _hc_err = NULL
                 WHERE id = $2",
                t = table(mapping),
                cols = list.join(", "),
                sel = select.join(", "),
            ),
            &[&Value::Object(changes.clone()), &id],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Stored { id, sfid })
}

/// The record Id of a one-record Collections answer, or Salesforce's error.
fn settled_id(
    kind: CallKind,
    results: &[crate::salesforce::collections::RecordResult],
) -> Result<String, ThroughError> {
    let Some(result) = results.first() else {
        return Err(ThroughError::Salesforce(SfError::api(
            None,
            "UNEXPECTED_RESULTS",
            "Salesforce answered no result",
            vec![],
        )));
    };
    match decide_record(kind, &record_result(result)) {
        Decision::Success { sfid: Some(id), .. } => Ok(id),
        _ => Err(ThroughError::Salesforce(
            result.errors.first().cloned().unwrap_or_else(|| {
                SfError::api(
                    None,
                    "UNKNOWN_ERROR",
                    "Salesforce reported a failure",
                    vec![],
                )
            }),
        )),
    }
}
