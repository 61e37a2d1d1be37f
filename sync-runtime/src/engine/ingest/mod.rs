//! The read side's one path from Salesforce data to a mapped table, shared by the initial load's
//! catch-up, polling, streaming and repair: full records and change events go through the
//! mapping's filter, the conflict policy and [`super::apply`], in the caller's transaction.
//!
//! A record or event that cannot be applied is recorded in `_forcesync_read_errors` and skipped;
//! the rest of the batch is applied.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use tokio_postgres::Transaction;

use super::apply::{self, EventChange, Row};
use super::filter::Verdict;
use super::read_errors;
use super::{EngineError, MappingCtx};
use crate::adapter::{ChangeEventHeader, ChangeType};

/// What a batch did, for counters and the live feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub upserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub errors: u64,
    pub conflicts: u64,
    /// Records fetched whole from Salesforce (missing rows, diffs, gaps, filter changes).
    pub fetched: u64,
    /// `GAP_OVERFLOW` seen: the caller re-polls the window.
    pub overflow_since: Option<NaiveDateTime>,
}

impl Applied {
    pub fn total(&self) -> u64 {
        self.upserted + self.updated + self.deleted
    }

    /// Adds another batch's counts (the earliest overflow wins).
    pub fn add(&mut self, other: Applied) {
        self.upserted += other.upserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.errors += other.errors;
        self.conflicts += other.conflicts;
        self.fetched += other.fetched;
        self.overflow_since = match (self.overflow_since, other.overflow_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Who changed the record in Salesforce, for conflict handling.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// The change is the echo of forcesync's own write.
    pub own_write: bool,
    /// When Salesforce made the change.
    pub changed_at: DateTime<Utc>,
}

/// Applies full REST records (query results, retrieves). `IsDeleted = true` records are deleted;
/// records outside the filter leave the table.
pub async fn apply_records(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    records: &[Value],
) -> Result<Applied, EngineError> {
    let mapping = ctx.mapping;
    let mut applied = Applied::default();
    let mut rows = Vec::new();
    let mut deletes: Vec<String> = Vec::new();
    let mut leaving = Vec::new();
    for record in records {
        let deleted = record.get("IsDeleted").and_then(Value::as_bool) == Some(true);
        let verdict = ctx.filter.verdict_on_record(record);
        match apply::row_from_record(mapping, record) {
            Ok(row) if deleted => deletes.push(row.sfid),
            Ok(row) if verdict == Verdict::Matches => rows.push(row),
            Ok(row) => leaving.push(row.sfid),
            Err(error) => {
                applied.errors += 1;
                read_errors::record(tx, mapping, &error, Some(record)).await?;
            }
        }
    }
    if !rows.is_empty() {
        let sfids: Vec<String> = rows.iter().map(|r| r.sfid.clone()).collect();
        let keys_before = apply::parent_keys(tx, mapping, &ctx.children, &sfids).await?;
        let locked: Vec<&str> = sfids.iter().map(String::as_str).collect();
        lock_app_rows(ctx, tx, &locked).await?;
        let (rows, conflicts) = settle_conflicts(ctx, tx, rows, None).await?;
        applied.conflicts += conflicts;
        applied.upserted += apply::upsert_rows(tx, mapping, rows).await?;
        if !keys_before.is_empty() {
            let keys_after = apply::parent_keys(tx, mapping, &ctx.children, &sfids).await?;
            let changed: Vec<String> = keys_after
                .into_iter()
                .filter(|(sfid, key)| keys_before.get(sfid).is_some_and(|k| k != key))
                .map(|(sfid, _)| sfid)
                .collect();
            apply::follow_parent_keys(tx, mapping, &ctx.children, &changed).await?;
        }
    }
    if !deletes.is_empty() {
        applied.deleted += apply::delete_rows(tx, mapping, &deletes, None).await?;
    }
    if !leaving.is_empty() {
        applied.deleted += apply::remove_unmatched(tx, mapping, &leaving).await?;
    }
    Ok(applied)
}

/// Reads records from Salesforce by Id and applies them; Ids Salesforce no longer has are
/// deleted when `missing_are_deleted` (gap events, repair).
pub async fn refetch(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    sfids: &[String],
    missing_are_deleted: bool,
) -> Result<Applied, EngineError> {
    if sfids.is_empty() {
        return Ok(Applied::default());
    }
    let records = if super::soql::selects_parent_fields(ctx.mapping) {
        query_by_ids(ctx, sfids).await?
    } else {
        let fields = ctx.select_list();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        ctx.client
            .retrieve(ctx.mapping.object, sfids, &fields)
            .await?
    };
    let mut applied = apply_records(ctx, tx, &records).await?;
    applied.fetched += records.len() as u64;
    if missing_are_deleted {
        let found: Vec<&str> = records
            .iter()
            .filter_map(|r| r.get("Id").and_then(Value::as_str))
            .collect();
        let gone: Vec<String> = sfids
            .iter()
            .filter(|id| !found.contains(&id.as_str()))
            .cloned()
            .collect();
        if !gone.is_empty() {
            applied.deleted += apply::delete_rows(tx, ctx.mapping, &gone, None).await?;
        }
    }
    Ok(applied)
}

/// Records by Id through SOQL (relationship paths are not taken by sObject Collections
/// retrieve), 200 Ids per query.
async fn query_by_ids(ctx: &MappingCtx, sfids: &[String]) -> Result<Vec<Value>, EngineError> {
    let mut records = Vec::with_capacity(sfids.len());
    for chunk in sfids.chunks(200) {
        let soql = super::soql::by_ids_query(ctx.mapping, &ctx.filter, chunk);
        let mut page = ctx.client.query(&soql).await?;
        loop {
            records.append(&mut page.records);
            match page.next_records_url.take() {
                Some(next) if !page.done => page = ctx.client.query_more(&next).await?,
                _ => break,
            }
        }
    }
    Ok(records)
}

/// Applies one change event (every record it names).
pub async fn apply_event(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    payload: &Value,
) -> Result<Applied, EngineError> {
    apply_events(ctx, tx, &[payload]).await
}

/// The rows one change event asks to write, before conflicts are settled.
struct EventRows {
    origin: Origin,
    /// `CREATE` / `UNDELETE` rows.
    full: Vec<Row>,
    /// `UPDATE` rows (changed fields only).
    partial: Vec<Row>,
    /// The event changed a field children name this mapping's records by.
    key_changed: bool,
}

/// Applies change events in their order (a batch delivered together), with a few set-based
/// statements for the whole batch instead of several per event: every full row in one upsert,
/// every partial row in one update (per set of changed columns), every delete in one statement,
/// and one read from Salesforce for every record that must be fetched whole.
///
/// The result is the one applying the events one by one in commit order gives: rows carry their
/// event's commit time and a stored row that is newer is never overwritten, so full rows go
/// first, then the partial rows (merged per record by [`merge_in_order`]),
/// then the deletes, then the records read again (the current state). Conflicts with unsent
/// application changes are settled event by event, in order, for the records that have any
/// (one query for the batch finds them).
pub async fn apply_events(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    payloads: &[&Value],
) -> Result<Applied, EngineError> {
    let events: Vec<Delivered<'_>> = payloads.iter().map(|p| Delivered::read(p)).collect();
    apply_delivered(ctx, tx, &events).await
}

/// One change event as delivered, its header read once (the streaming loop also reads it for
/// the status page's activity).
pub struct Delivered<'a> {
    pub payload: &'a Value,
    pub header: Result<ChangeEventHeader, crate::adapter::ConversionError>,
}

impl<'a> Delivered<'a> {
    pub fn read(payload: &'a Value) -> Delivered<'a> {
        Delivered {
            payload,
            header: ChangeEventHeader::from_payload(payload),
        }
    }
}

/// [`apply_events`] over events whose headers are already read.
pub async fn apply_delivered(
    ctx: &MappingCtx,
    tx: &Transaction<'_>,
    delivered: &[Delivered<'_>],
) -> Result<Applied, EngineError> {
    let mapping = ctx.mapping;
    await_own_creates(ctx, tx, delivered).await?;
    let mut applied = Applied::default();
    let mut events: Vec<EventRows> = Vec::with_capacity(delivered.len());
    let mut to_fetch = Vec::new();
    let mut gap_fetch = Vec::new();
    let mut deletes: Vec<(String, Option<NaiveDateTime>)> = Vec::new();
    for event in delivered {
        let payload: &Value = event.payload;
        let header = match &event.header {
            Ok(header) => header,
            Err(e) => {
                applied.errors += 1;
                let error = apply::RecordError {
                    sfid: None,
                    errors: vec![super::convert::FieldError {
                        field: "ChangeEventHeader",
                        reason: format!("malformed change event: {e}"),
                        is_diff: false,
                    }],
                };
                read_errors::record(tx, mapping, &error, Some(payload)).await?;
                continue;
            }
        };
        if !header.entity_name.eq_ignore_ascii_case(mapping.object) {
            continue;
        }
        if header.change_type == ChangeType::GapOverflow {
            applied.add(Applied {
                overflow_since: Some(apply::commit_time(header)),
                ..Applied::default()
            });
            continue;
        }
        let origin = Origin {
            own_write: ctx.is_own_origin(&header.change_origin),
            changed_at: DateTime::<Utc>::from_timestamp_millis(header.commit_timestamp)
                .unwrap_or_else(Utc::now),
        };
        let changed_names: Vec<&str> = header.changed_fields.iter().map(String::as_str).collect();
        let filter_touched = !ctx.filter.is_empty() && ctx.filter.touched_by(changed_names);

        let mut full = Vec::new();
        let mut partial = Vec::new();
        for sfid in &header.record_ids {
            match apply::row_from_event(mapping, header, payload, sfid) {
                Ok(EventChange::Full(row)) => match ctx.filter.verdict(&|f| row.lookup(f)) {
                    Verdict::Matches => full.push(row),
                    // Left the filter at this event's time (a stored row that is newer holds a
                    // later state, already filtered).
                    Verdict::DoesNotMatch => deletes.push((row.sfid, row.stamp)),
                    Verdict::Unknown => to_fetch.push(row.sfid),
                },
                Ok(EventChange::Partial { row, refetch }) => {
                    if filter_touched || !refetch.is_empty() {
                        to_fetch.push(row.sfid);
                    } else {
                        partial.push(row);
                    }
                }
                Ok(EventChange::Delete { sfid, stamp }) => deletes.push((sfid, Some(stamp))),
                Ok(EventChange::Refetch { sfid }) => gap_fetch.push(sfid),
                Err(error) => {
                    applied.errors += 1;
                    read_errors::record(tx, mapping, &error, Some(payload)).await?;
                }
            }
        }
        if origin.own_write && header.change_type == ChangeType::Create && !full.is_empty() {
            full = claim_own_creates(ctx, tx, full).await?;
        }
        // Events carry the lookup's Id, not the parent's external ID: a new record naming a
        // parent is read again for its relationship columns (forcesync's own creates hold what
        // was sent).
        if !origin.own_write {
            to_fetch.extend(
                full.iter()
                    .filter(|row| apply::names_a_parent(mapping, row))
                    .map(|row| row.sfid.clone()),
            );
        }
        // A parent's external ID changed: its children's relationship columns follow.
        let key_changed = ctx.children.iter().any(|c| {
            header
                .changed_fields
                .iter()
                .any(|f| f.eq_ignore_ascii_case(c.parent_field))
        });
        events.push(EventRows {
            origin,
            full,
            partial,
            key_changed,
        });
    }

    // Conflicts: only records with unsent application changes need settling.
    let written: Vec<&str> = events
        .iter()
        .flat_map(|e| e.full.iter().chain(&e.partial))
        .map(|r| r.sfid.as_str())
        .collect();
    lock_app_rows(ctx, tx, &written).await?;
    let pending = with_pending_changes(ctx, tx, &written).await?;
    let mut full = Vec::new();
    let mut partial = Vec::new();
    let mut followed = Vec::new();
    for event in events {
        let first_partial = partial.len();
        for (rows, out) in [(event.full, &mut full), (event.partial, &mut partial)] {
            let (settle, clear): (Vec<Row>, Vec<Row>) =
                rows.into_iter().partition(|r| pending.contains(&r.sfid));
            out.extend(clear);
            if !settle.is_empty() {
                let (rows, conflicts) =
                    settle_conflicts(ctx, tx, settle, Some(event.origin)).await?;
                applied.conflicts += conflicts;
                out.extend(rows);
            }
        }
        if event.key_changed {
            followed.extend(partial[first_partial..].iter().map(|r| r.sfid.clone()));
        }
    }
    followed.sort_unstable();
    followed.dedup();

    if !full.is_empty() {
        applied.upserted += apply::upsert_rows(tx, mapping, merge_in_order(full)).await?;
    }
    if !partial.is_empty() {
        let rows = merge_in_order(partial);
        applied.updated += rows.len() as u64;
        let missing = apply::update_rows(tx, mapping, rows).await?;
        apply::follow_parent_keys(tx, mapping, &ctx.children, &followed).await?;
        applied.updated -= missing.len() as u64;
        // A record we do not have: fetch it whole, unless the filter keeps it out anyway (but a
        // record we failed to store earlier is always read again).
        if ctx.filter.is_empty() {
            to_fetch.extend(missing);
        } else if !missing.is_empty() {
            let failed = read_errors::open_among(tx, mapping, &missing).await?;
            to_fetch.extend(failed);
        }
    }
    if !deletes.is_empty() {
        applied.deleted += apply::delete_stamped(tx, mapping, &deletes).await?;
    }
    let to_fetch = distinct(to_fetch);
    if !to_fetch.is_empty() {
        applied.add(refetch(ctx, tx, &to_fetch, false).await?);
    }
    let gap_fetch = distinct(gap_fetch);
    if !gap_fetch.is_empty() {
        applied.add(refetch(ctx, tx, &gap_fetch, true).await?);
    }
    Ok(applied)
}

/// Rows of one record from several events as one row (pure), as applying them one by one in
/// commit order would leave it: the rows are taken in order of their commit time (events can
/// arrive out of order; equal times keep their delivery order), a later row's value of a column
/// replaces the earlier one, columns only an earlier row sets are kept, and the row carries the
/// latest commit time. Records keep the order of their first appearance.
pub fn merge_in_order(rows: Vec<Row>) -> Vec<Row> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    let mut groups: Vec<Vec<Row>> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.get(&row.sfid) {
            Some(&i) => groups[i].push(row),
            None => {
                index.insert(row.sfid.clone(), groups.len());
                groups.push(vec![row]);
            }
        }
    }
    groups
        .into_iter()
        .filter_map(|mut group| {
            group.sort_by_key(|row| row.stamp);
            let mut rows = group.into_iter();
            let mut merged = rows.next()?;
            for row in rows {
                for (field, value) in row.cells {
                    match merged
                        .cells
                        .iter_mut()
                        .find(|(f, _)| f.column == field.column)
                    {
                        Some(cell) => cell.1 = value,
                        None => merged.cells.push((field, value)),
                    }
                }
                merged.stamp = row.stamp.max(merged.stamp);
            }
            Some(merged)
        })
        .collect()
}

/// Ids without repeats, in the order of first appearance (pure).
fn distinct(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

mod own_creates;
mod settle;

pub use own_creates::unwritten_own_creates;
use own_creates::{await_own_creates, claim_own_creates};
use settle::{lock_app_rows, settle_conflicts, with_pending_changes};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_one_record_from_successive_events_merge_in_event_order() {
        let account = &super::super::testing::ACCOUNT;
        let name = account.field("Name").unwrap();
        let phone = account.field("Phone").unwrap();
        let at = |secs| DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc());
        let row = |sfid: &str, cells, secs| Row {
            sfid: sfid.into(),
            cells,
            stamp: at(secs),
        };
        let merged = merge_in_order(vec![
            row("001A", vec![(name, Some("first".into()))], 1),
            row("001B", vec![(phone, None)], 5),
            row("001A", vec![(phone, Some("555".into()))], 2),
            row("001A", vec![(name, Some("third".into()))], 3),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].sfid, "001A", "first appearance keeps its place");
        assert_eq!(
            merged[0].cells,
            vec![(name, Some("third".into())), (phone, Some("555".into()))],
            "a later value wins, a column only an earlier event set is kept"
        );
        assert_eq!(merged[0].stamp, at(3));
        assert_eq!(merged[1].stamp, at(5));
        // Delivered out of order: the older change never wins.
        let merged = merge_in_order(vec![
            row("001A", vec![(phone, Some("second".into()))], 2),
            row("001A", vec![(phone, Some("first".into()))], 1),
        ]);
        assert_eq!(merged[0].cells, vec![(phone, Some("second".into()))]);
        assert_eq!(merged[0].stamp, at(2));
        assert_eq!(
            distinct(vec!["b".into(), "a".into(), "b".into()]),
            vec!["b".to_owned(), "a".to_owned()]
        );
    }
}
