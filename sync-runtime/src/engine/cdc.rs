//! Change Data Capture: the events a mapping's channel delivered, applied. A delivery is
//! applied together with the events already waiting behind it ([`take_waiting`]: the rest of its
//! Salesforce transaction, and more while the mapping is behind), in one Postgres transaction
//! that also stores the replay id of the last one ([`apply_batch`]), so a restart resumes exactly
//! after the last change applied.
//!
//! An operation: subscribing, resubscribing and what a channel's error means are the driver's
//! ([`super::driver`]); the channel itself is the instance's streaming hub's ([`super::hub`]),
//! whatever the transport.

use chrono::{DateTime, Utc};

use super::activity;
use super::apply;
use super::hub::{ChannelEvents, HubEvent};
use super::ingest::{self, Applied};
use super::{EngineError, MappingCtx};
use crate::adapter::ChangeEventHeader;
use crate::salesforce::streaming::StreamError;

/// Most events applied in one Postgres transaction.
pub const MAX_BATCH: usize = 500;

/// `first` and the events already waiting behind it, up to [`MAX_BATCH`]; a channel error met
/// on the way ends the batch and is returned with it.
pub fn take_waiting(
    events: &mut ChannelEvents,
    first: HubEvent,
) -> (Vec<HubEvent>, Option<StreamError>) {
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match events.try_recv() {
            Some(Ok(event)) => batch.push(event),
            Some(Err(error)) => return (batch, Some(error)),
            None => break,
        }
    }
    (batch, None)
}

/// Applies a batch of events in one transaction with the replay id of its last event (set-based
/// statements for the whole batch: [`ingest::apply_events`]).
pub async fn apply_batch(
    ctx: &MappingCtx,
    db: &mut tokio_postgres::Client,
    batch: &[HubEvent],
) -> Result<Applied, EngineError> {
    let mapping = ctx.mapping;
    let Some(last) = batch.last() else {
        return Ok(Applied::default());
    };
    let tx = apply::begin_engine_tx(db).await?;
    let delivered: Vec<ingest::Delivered<'_>> = batch
        .iter()
        .map(|event| ingest::Delivered::read(&event.payload))
        .collect();
    let seen: Vec<&ChangeEventHeader> = delivered
        .iter()
        .filter_map(|event| event.header.as_ref().ok())
        .collect();
    let committed: Option<DateTime<Utc>> = seen
        .iter()
        .filter_map(|header| DateTime::<Utc>::from_timestamp_millis(header.commit_timestamp))
        .next_back();
    let total = ingest::apply_delivered(ctx, &tx, &delivered).await?;
    ctx.states
        .set_replay_id(&tx, mapping.object, Some(&last.replay_id))
        .await?;
    ctx.states
        .record_applied(&tx, mapping.object, total.total() as i64, committed)
        .await?;
    tx.commit().await?;
    activity::record(mapping.object, streamed_changes(&seen, Utc::now()));
    Ok(total)
}

/// The changes a batch applied, for the status page's recent activity (pure).
pub fn streamed_changes(
    headers: &[&ChangeEventHeader],
    now: DateTime<Utc>,
) -> Vec<activity::Change> {
    headers
        .iter()
        .flat_map(|h| {
            let latency_ms = DateTime::<Utc>::from_timestamp_millis(h.commit_timestamp)
                .map(|c| (now - c).num_milliseconds().max(0));
            let kind = format!("{:?}", h.change_type).to_uppercase();
            h.record_ids.iter().map(move |id| activity::Change {
                at: now,
                kind: kind.clone(),
                sfid: id.clone(),
                fields: h.changed_fields.clone(),
                latency_ms,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_shows_each_record_with_its_fields_and_latency() {
        let header = ChangeEventHeader::from_payload(&serde_json::json!({
            "ChangeEventHeader": {
                "entityName": "Account", "changeType": "UPDATE",
                "changedFields": ["Name", "Phone"], "commitTimestamp": 1_712_694_600_000_i64,
                "recordIds": ["001A", "001B"], "commitNumber": 1, "commitUser": "005x",
                "sequenceNumber": 1, "transactionKey": "t", "changeOrigin": ""
            }
        }))
        .unwrap();
        let now = DateTime::<Utc>::from_timestamp_millis(1_712_694_600_042).unwrap();
        let changes = streamed_changes(&[&header], now);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].sfid, "001B");
        assert_eq!(changes[0].kind, "UPDATE");
        assert_eq!(changes[0].fields, ["Name", "Phone"]);
        assert_eq!(changes[0].latency_ms, Some(42));
    }
}
