//! Change events of records forcesync's own writer created: they are published when Salesforce
//! commits, before the writer has the answer, and must not become second rows. The read path
//! waits (briefly) for the writer to write the new `sfid` back ([`await_own_creates`]), then
//! lets a row with the same upsert key claim the record, or leaves the event to the writer while
//! it has creates in flight ([`claim_own_creates`]).

use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use super::Delivered;
use crate::adapter::ChangeType;
use crate::engine::apply::{self, Row};
use crate::engine::system::quote_ident;
use crate::engine::{EngineError, MappingCtx};

/// How long the read path waits for the writer to write back the `sfid` of a record it has just
/// created, when the create's change event arrives first.
const OWN_CREATE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The change event of a record forcesync's writer created is published when Salesforce commits,
/// before the writer has the answer; it often arrives before the writer has stored the new
/// `sfid` on the app's row. Dropping it would leave the row without what only Salesforce sets
/// (`systemmodstamp`, `createddate`, defaults, formulas) until the record next changes, so while
/// such records are unknown and the writer has creates being sent, this waits (polling, before
/// the transaction has written or locked anything) for the write-back, at most
/// [`OWN_CREATE_WAIT`]; then [`claim_own_creates`] decides as before.
pub(super) async fn await_own_creates(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    delivered: &[Delivered<'_>],
) -> Result<(), EngineError> {
    let mapping = ctx.mapping;
    if !mapping.is_read_write() {
        return Ok(());
    }
    let created: Vec<&str> = delivered
        .iter()
        .filter_map(|event| event.header.as_ref().ok())
        .filter(|header| {
            header.change_type == ChangeType::Create
                && header.entity_name.eq_ignore_ascii_case(mapping.object)
                && ctx.is_own_origin(&header.change_origin)
        })
        .flat_map(|header| header.record_ids.iter().map(String::as_str))
        .collect();
    if created.is_empty() {
        return Ok(());
    }
    let check = format!(
        "SELECT EXISTS (SELECT 1 FROM unnest($1::text[]) AS c(sfid) \
                        WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.sfid = c.sfid)) \
                AND (EXISTS (SELECT 1 FROM {schema}._forcesync_write_journal \
                             WHERE mapping = $2 AND kind IN ('create', 'upsert') AND state = '{sending}') \
                     OR EXISTS (SELECT 1 FROM {schema}._forcesync_write_batch \
                                WHERE mapping = $2 AND creates)) \
         AS waiting",
        table = apply::qualified(mapping),
        schema = quote_ident(mapping.schema),
        sending = crate::engine::writer::store::SENDING,
    );
    let deadline = tokio::time::Instant::now() + OWN_CREATE_WAIT;
    loop {
        let waiting: bool = tx
            .query_typed(
                &check,
                &[(&created, Type::TEXT_ARRAY), (&mapping.object, Type::TEXT)],
            )
            .await?[0]
            .get("waiting");
        if !waiting {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                mapping = mapping.object,
                "the writer has not written back the sfid of a record it created {}s after \
                 Salesforce published its creation; its change event is left to the writer",
                OWN_CREATE_WAIT.as_secs()
            );
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The change event of a record forcesync's writer created can arrive before the writer has
/// stored the new `sfid` on the app's row. Such a record must not become a second row: with an
/// upsert key, the app's row (same external id, no `sfid` yet) takes the `sfid` now; otherwise,
/// while the writer has creates in flight for this mapping, the event is left to the writer (it
/// writes the `sfid` back when Salesforce answers, or reconciles). Rows already known by `sfid`
/// pass through unchanged.
pub(super) async fn claim_own_creates(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    rows: Vec<Row>,
) -> Result<Vec<Row>, EngineError> {
    let mapping = ctx.mapping;
    let table = apply::qualified(mapping);
    let sfids: Vec<&str> = rows.iter().map(|r| r.sfid.as_str()).collect();
    let known: Vec<String> = tx
        .query(
            &format!("SELECT sfid FROM {table} WHERE sfid = ANY($1)"),
            &[&sfids],
        )
        .await?
        .iter()
        .map(|r| r.get("sfid"))
        .collect();
    let key = mapping.upsert_key.and_then(|k| mapping.field(k));
    let in_flight: bool = tx
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {s}._forcesync_write_journal \
                                WHERE mapping = $1 AND kind IN ('create', 'upsert')) \
                        OR EXISTS (SELECT 1 FROM {s}._forcesync_write_batch \
                                   WHERE mapping = $1 AND creates) AS in_flight",
                s = quote_ident(mapping.schema)
            ),
            &[&mapping.object],
        )
        .await?
        .get("in_flight");
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        if known.contains(&row.sfid) {
            kept.push(row);
            continue;
        }
        if let Some(key) = key {
            let value = row
                .cells
                .iter()
                .find(|(f, _)| f.column == key.column)
                .and_then(|(_, v)| v.clone());
            if let Some(value) = value {
                let claimed = tx
                    .execute(
                        &format!(
                            "UPDATE {table} SET sfid = $1 WHERE {}::text = $2 AND sfid IS NULL",
                            quote_ident(key.column)
                        ),
                        &[&row.sfid, &value],
                    )
                    .await?;
                if claimed > 0 {
                    kept.push(row);
                    continue;
                }
            }
        }
        if in_flight {
            tracing::debug!(
                mapping = mapping.object,
                sfid = row.sfid,
                "the change event of a record this engine created is left to the writer"
            );
        } else {
            kept.push(row);
        }
    }
    Ok(kept)
}

/// The records among `sfids` (a poll's records the engine's user created lately, see
/// [`crate::engine::poll::own_creates_to_defer`]) that Postgres does not know yet while the
/// writer has creates of the mapping whose answer is not stored (`SENDING`, or `RECONCILE` after
/// a lost answer): most likely its own, about to be written back or adopted. The poll reads them
/// again later instead of storing them as rows of their own.
pub async fn unwritten_own_creates(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    sfids: &[&str],
) -> Result<Vec<String>, EngineError> {
    let mapping = ctx.mapping;
    if sfids.is_empty() || !mapping.is_read_write() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query_typed(
            &format!(
                "SELECT c.sfid FROM unnest($1::text[]) AS c(sfid)
                 WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.sfid = c.sfid)
                   AND (EXISTS (SELECT 1 FROM {schema}._forcesync_write_journal
                                WHERE mapping = $2 AND kind IN ('create', 'upsert')
                                  AND state IN ('{sending}', '{reconcile}'))
                        OR EXISTS (SELECT 1 FROM {schema}._forcesync_write_batch
                                   WHERE mapping = $2 AND creates))",
                table = apply::qualified(mapping),
                schema = quote_ident(mapping.schema),
                sending = crate::engine::writer::store::SENDING,
                reconcile = crate::engine::writer::store::RECONCILE,
            ),
            &[(&sfids, Type::TEXT_ARRAY), (&mapping.object, Type::TEXT)],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get("sfid")).collect())
}
