//! Synchronous write-through, for apps that must know the outcome now: the record is created or
//! updated in Salesforce first, then stored in Postgres as synced (an engine write: not captured,
//! so the writer never sends it again). Salesforce's refusal comes back as the error and Postgres
//! is left untouched.
//!
//! A create uses the mapping's upsert key when the values hold one (idempotent, safe to repeat
//! after an ambiguous failure); otherwise a plain create, whose ambiguous failure
//! ([`crate::salesforce::ErrorClass::Ambiguous`]) the caller must treat as "may exist".
//!
//! Two entry points: [`create`] / [`update`] over column values, and [`WriteThrough`], the same
//! on every generated row type of a read-write mapping (`account.write_through(&sf, &mut pg)`).

use serde_json::{Map, Value};
use tokio_postgres::Client as PgClient;

use crate::adapter::{pg_values_to_sf_body, MappingDescriptor, WriteBack, WriteKind};
use crate::engine::convert::pg_text;
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
    /// The row is already in Postgres without an `sfid`: the writer sends it.
    #[error("{0}")]
    Pending(String),
    /// Salesforce has the write but storing it in Postgres failed; the next read brings it in.
    #[error("Postgres: {}", crate::engine::db::describe(.0))]
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
    let sfid = send_create(client, mapping, body.into_json()).await?;
    let id = store_created(db, mapping, values, &sfid).await?;
    Ok(Stored { id, sfid })
}

/// Step 1 of a create: the Salesforce call (an upsert by the mapping's key when the record holds
/// one); the new record's Id.
async fn send_create(
    client: &Client,
    mapping: &MappingDescriptor,
    record: Value,
) -> Result<String, ThroughError> {
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
    settled_id(kind, &result)
}

/// Step 2 of a create: the row, inserted as an engine write (not captured); its `id`.
async fn store_created(
    db: &mut PgClient,
    mapping: &MappingDescriptor,
    values: &Map<String, Value>,
    sfid: &str,
) -> Result<i32, ThroughError> {
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
    with_sfid.insert("sfid".to_owned(), Value::String(sfid.to_owned()));
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
    let id: i32 = row.get("id");
    // The write's history, as the writer leaves for a row it sent. It also tells the row apart
    // from one the read path stored (see `Store::held_sfids`), which a reconciliation may
    // replace.
    super::store::Store::new(mapping.schema)
        .archive_written_through(&tx, mapping, id, sfid)
        .await?;
    tx.commit().await?;
    Ok(id)
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
        .and_then(|r| r.get("sfid"));
    let Some(sfid) = sfid else {
        return Err(ThroughError::NoRecord(format!(
            "{} row {id} does not exist or is not in Salesforce yet",
            mapping.table
        )));
    };
    let body = pg_values_to_sf_body(mapping, changes, WriteKind::Update)
        .map_err(|e| ThroughError::Invalid(e.to_string()))?;
    send_update(client, mapping, &sfid, body.into_json()).await?;
    store_updated(db, mapping, id, changes).await?;
    Ok(Stored { id, sfid })
}

/// Step 1 of an update: the Salesforce call.
async fn send_update(
    client: &Client,
    mapping: &MappingDescriptor,
    sfid: &str,
    mut record: Value,
) -> Result<(), ThroughError> {
    record["Id"] = Value::String(sfid.to_owned());
    let result = client
        .update_records(mapping.object, std::slice::from_ref(&record))
        .await
        .map_err(ThroughError::Salesforce)?;
    settled_id(CallKind::Update, &result).map(drop)
}

/// Step 2 of an update: the values stored in row `id` as an engine write (not captured).
async fn store_updated(
    db: &mut PgClient,
    mapping: &MappingDescriptor,
    id: i32,
    changes: &Map<String, Value>,
) -> Result<(), ThroughError> {
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
    Ok(())
}

/// Column values (Postgres text, as the read side stores them) of a Salesforce body (pure).
pub fn body_columns(
    mapping: &MappingDescriptor,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, ThroughError> {
    let mut columns = Map::new();
    // A parent named by external ID comes back as its relationship column.
    for (sf_name, value) in &crate::adapter::flat_body(body) {
        let Some(field) = mapping.field(sf_name) else {
            continue;
        };
        let text = pg_text(field, value)
            .map_err(|e| ThroughError::Invalid(format!("{}: {}", e.field, e.reason)))?;
        columns.insert(
            field.column.to_owned(),
            text.map_or(Value::Null, Value::String),
        );
    }
    Ok(columns)
}

/// Write-through on the generated models: every row type of a read-write mapping (it implements
/// [`WriteBack`]) gets `write_through`, e.g.
///
/// ```ignore
/// use sync_runtime::engine::writer::through::WriteThrough;
/// let sfid = account.write_through(&client, &mut pg).await?;
/// ```
///
/// A row without an `sfid` is created in Salesforce (its writable fields, as
/// [`WriteBack::create_body`] says) and then inserted in Postgres as a new, synced row (the
/// model's `id` is not used); a row with one updates that record with the writable fields whose
/// values differ from the Postgres row of that `id` (`None` clears a field), then that row.
/// Either way the Postgres write is an engine write, so the writer never sends it again; on
/// `Err(ThroughError::Salesforce(..))` (a validation rule, a required field…) Postgres is left
/// untouched. A row already in Postgres without an `sfid` belongs to the writer: it is refused
/// (`ThroughError::Pending`) rather than created twice.
pub trait WriteThrough {
    /// Writes this row to Salesforce, then to Postgres; the record's Id.
    fn write_through<'a>(
        &'a self,
        client: &'a Client,
        db: &'a mut PgClient,
    ) -> impl std::future::Future<Output = Result<String, ThroughError>> + Send + 'a;
}

impl<T> WriteThrough for T
where
    T: WriteBack + serde::Serialize + Sync,
{
    async fn write_through(
        &self,
        client: &Client,
        db: &mut PgClient,
    ) -> Result<String, ThroughError> {
        let mapping = T::descriptor();
        let (id, sfid) = identity(self)?;
        match sfid {
            Some(sfid) => {
                let body = self.update_body();
                let columns = body_columns(mapping, body.fields())?;
                let changed = changed_columns(db, mapping, id, &columns).await?;
                // Only the fields that differ from the stored row: a field someone changed
                // in Salesforce meanwhile, and the app did not, keeps its value.
                let record: Map<String, Value> = body
                    .fields()
                    .iter()
                    .filter(|(sf_name, _)| {
                        mapping
                            .field(sf_name)
                            .is_some_and(|f| changed.contains_key(f.column))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !record.is_empty() {
                    send_update(client, mapping, &sfid, Value::Object(record)).await?;
                }
                store_updated(db, mapping, id, &changed).await?;
                Ok(sfid)
            }
            None => {
                let pending = db
                    .query_opt(
                        &format!("SELECT 1 FROM {} WHERE id = $1", table(mapping)),
                        &[&id],
                    )
                    .await?;
                if pending.is_some() {
                    return Err(ThroughError::Pending(format!(
                        "{} row {id} is already in Postgres without an sfid: the writer sends it",
                        mapping.table
                    )));
                }
                let body = self.create_body();
                let columns = body_columns(mapping, body.fields())?;
                let sfid = send_create(client, mapping, body.into_json()).await?;
                store_created(db, mapping, &columns, &sfid).await?;
                Ok(sfid)
            }
        }
    }
}

/// The columns among `columns` whose value differs from row `id`'s (compared by Postgres, after
/// the same conversion as the write); an error when the row does not exist.
async fn changed_columns(
    db: &PgClient,
    mapping: &MappingDescriptor,
    id: i32,
    columns: &Map<String, Value>,
) -> Result<Map<String, Value>, ThroughError> {
    let names: Vec<&String> = columns.keys().collect();
    let tests: Vec<String> = names
        .iter()
        .map(|c| {
            let c = quote_ident(c);
            format!("t.{c} IS DISTINCT FROM r.{c}")
        })
        .collect();
    let row = db
        .query_opt(
            &format!(
                "SELECT ARRAY[{}]::bool[] AS differs FROM {t} t, jsonb_populate_record(NULL::{t}, $1) r
                 WHERE t.id = $2",
                if tests.is_empty() {
                    "NULL::bool".to_owned()
                } else {
                    tests.join(", ")
                },
                t = table(mapping),
            ),
            &[&Value::Object(columns.clone()), &id],
        )
        .await?
        .ok_or_else(|| {
            ThroughError::NoRecord(format!("{} row {id} does not exist", mapping.table))
        })?;
    let differs: Vec<Option<bool>> = row.get("differs");
    Ok(names
        .into_iter()
        .zip(differs)
        .filter(|(_, d)| d.unwrap_or(false))
        .map(|(c, _)| (c.clone(), columns[c].clone()))
        .collect())
}

/// A model's `id` and `sfid` (every generated row type has both and derives `Serialize`).
fn identity<T: serde::Serialize>(row: &T) -> Result<(i32, Option<String>), ThroughError> {
    let value = serde_json::to_value(row).map_err(|e| ThroughError::Invalid(e.to_string()))?;
    let id = value
        .get("id")
        .and_then(Value::as_i64)
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| ThroughError::Invalid("the row has no integer `id`".to_owned()))?;
    let sfid = value
        .get("sfid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok((id, sfid))
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
