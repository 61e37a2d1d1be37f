//! The records the read side could not apply: `<schema>._forcesync_read_errors` (created by
//! [`super::system`]), the engine's one module that reads or writes it.
//!
//! A record or change event that cannot be stored (a value too long for its column, a wrong
//! type, a malformed payload) gets a row here with the first field at fault and every reason;
//! the rest of its batch is applied. Rows stay open (`resolved_at IS NULL`) until the record is
//! read again and applies ([`super::reread`]). `forcesync errors` lists them.

use serde_json::Value;
use tokio_postgres::GenericClient;

use super::apply::RecordError;
use super::system::quote_ident;
use crate::adapter::MappingDescriptor;

/// Most open errors re-read in one retry.
pub const RETRY_BATCH: i64 = 2_000;

fn table(mapping: &MappingDescriptor) -> String {
    format!("{}._forcesync_read_errors", quote_ident(mapping.schema))
}

/// Records a record the read side could not apply (for `forcesync errors`); it is re-read once
/// the cause is fixed.
pub async fn record<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
    error: &RecordError,
    payload: Option<&Value>,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        &format!(
            "INSERT INTO {} (mapping, sfid, field, reason, payload) VALUES ($1, $2, $3, $4, $5)",
            table(mapping)
        ),
        &[
            &mapping.object,
            &error.sfid,
            &error.field(),
            &error.reason(),
            &payload,
        ],
    )
    .await
    .map(drop)
}

/// The mapping's open errors that name a record, oldest first (at most [`RETRY_BATCH`]): `(id,
/// sfid)`.
pub async fn open<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
) -> Result<Vec<(i64, String)>, tokio_postgres::Error> {
    Ok(db
        .query(
            &format!(
                "SELECT id, sfid FROM {} \
                 WHERE mapping = $1 AND resolved_at IS NULL AND sfid IS NOT NULL ORDER BY id LIMIT {RETRY_BATCH}",
                table(mapping)
            ),
            &[&mapping.object],
        )
        .await?
        .iter()
        .map(|r| (r.get("id"), r.get("sfid")))
        .collect())
}

/// Which of `sfids` have an open error (records the read side failed to store earlier).
pub async fn open_among<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
    sfids: &[String],
) -> Result<Vec<String>, tokio_postgres::Error> {
    sfids_where(
        db,
        mapping,
        "resolved_at IS NULL AND sfid = ANY($2)",
        &[&mapping.object, &sfids],
    )
    .await
}

/// The newest error's id, of any mapping (0 when there is none): errors recorded after it are
/// new.
pub async fn last_id<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
) -> Result<i64, tokio_postgres::Error> {
    Ok(db
        .query_one(
            &format!(
                "SELECT coalesce(max(id), 0) AS last FROM {}",
                table(mapping)
            ),
            &[],
        )
        .await?
        .get("last"))
}

/// Which of `sfids` got a new error row of the mapping after error `after`.
pub async fn failed_after<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
    after: i64,
    sfids: &[String],
) -> Result<Vec<String>, tokio_postgres::Error> {
    sfids_where(
        db,
        mapping,
        "id > $2 AND sfid = ANY($3)",
        &[&mapping.object, &after, &sfids],
    )
    .await
}

/// The distinct record Ids of the mapping's error rows (`mapping = $1`) that match `condition`.
async fn sfids_where<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
    condition: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(db
        .query(
            &format!(
                "SELECT DISTINCT sfid FROM {} WHERE mapping = $1 AND {condition}",
                table(mapping)
            ),
            params,
        )
        .await?
        .iter()
        .map(|r| r.get("sfid"))
        .collect())
}

/// Why error rows are closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Their records now apply.
    Resolved,
    /// Their records were retried and failed again: a new row (recorded by the retry)
    /// supersedes each.
    Superseded,
}

/// Closes the error rows `ids`, for the reason `why`.
pub async fn close<C: GenericClient>(
    db: &C,
    mapping: &MappingDescriptor,
    ids: &[i64],
    why: Closed,
) -> Result<u64, tokio_postgres::Error> {
    let set = match why {
        Closed::Resolved => "resolved_at = now()",
        Closed::Superseded => "retried_at = now(), resolved_at = now()",
    };
    db.execute(
        &format!("UPDATE {} SET {set} WHERE id = ANY($1)", table(mapping)),
        &[&ids],
    )
    .await
}
