//! The Change Data Capture event log: committed changes appended with increasing, gapped,
//! opaque replay ids; retention by emulated age (72 h, no count cap — Salesforce keeps every
//! event of the window); reads after a replay id with a channel filter (`/data/ChangeEvents` or
//! `/data/<Entity>ChangeEvent`); a `watch` channel to wake waiters; the entity selection;
//! and the delivery faults. How one transaction's changes become events (merging, gap and
//! overflow events) is `commit`; long text diffs are `diff`; `changeOrigin` is `origin`; the
//! Avro form the Pub/Sub API delivers is `avro`.

pub mod avro;
pub mod commit;
pub mod diff;
pub mod faults;
pub mod origin;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{json, Map, Value as Json};
use tokio::sync::watch;

use crate::data::schema::ObjectSchema;
use avro::{EventSchema, SchemaRegistry};
/// The `ChangeEventHeader` of one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub entity_name: String,
    pub record_ids: Vec<String>,
    /// `CREATE UPDATE DELETE UNDELETE GAP_CREATE GAP_UPDATE GAP_DELETE GAP_UNDELETE GAP_OVERFLOW`.
    pub change_type: String,
    pub changed_fields: Vec<String>,
    pub change_origin: String,
    pub transaction_key: String,
    pub sequence_number: u32,
    pub commit_timestamp: i64,
    pub commit_number: i64,
    pub commit_user: String,
}

impl Header {
    pub fn to_json(&self) -> Json {
        json!({
            "commitNumber": self.commit_number,
            "commitUser": self.commit_user,
            "sequenceNumber": self.sequence_number,
            "entityName": self.entity_name,
            "changeType": self.change_type,
            "changedFields": self.changed_fields,
            "changeOrigin": self.change_origin,
            "transactionKey": self.transaction_key,
            "commitTimestamp": self.commit_timestamp,
            "recordIds": self.record_ids,
        })
    }
}

/// An event waiting to be committed (no replay id yet).
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub header: Header,
    /// Record fields of the payload (CDC JSON values, compound fields nested).
    pub fields: Map<String, Json>,
}

/// A committed change event.
#[derive(Debug)]
pub struct ChangeEvent {
    pub replay_id: i64,
    /// Object API name (`Account`).
    pub entity: String,
    /// `/data/AccountChangeEvent`.
    pub channel: String,
    pub commit_timestamp: i64,
    pub header: Header,
    /// The full `payload` object (fields + `ChangeEventHeader`).
    pub payload: Json,
    /// The change-event schema of the object's metadata when the event was published (None
    /// for an object the log was not told about): an event keeps it after the object's
    /// fields change (Pub/Sub API Developer Guide, "GetSchema RPC Method": decode a received
    /// event with the schema named by its own `schema_id`).
    pub schema: Option<Arc<EventSchema>>,
}

impl ChangeEvent {
    /// The CometD message (`{"data":{"schema","payload","event":{"replayId"}},"channel"}`),
    /// delivered on `channel` (the subscription's channel, e.g. `/data/ChangeEvents`).
    pub fn message(&self, channel: &str) -> Json {
        json!({
            "data": {
                "schema": self.schema.as_ref().map_or_else(|| schema_id(&self.entity), |s| s.id.clone()),
                "payload": self.payload,
                "event": {"replayId": self.replay_id},
            },
            "channel": channel,
        })
    }
}

/// A stable 22-character schema id per entity.
pub fn schema_id(entity: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut h: u64 = 0xcbf29ce484222325;
    let mut out = String::with_capacity(22);
    for i in 0..22u64 {
        for b in entity.bytes().chain(i.to_le_bytes()) {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        out.push(A[(h % 64) as usize] as char);
    }
    out
}

/// The CDC channel name of an entity's change events: `Account` → `/data/AccountChangeEvent`,
/// `Invoice__c` → `/data/Invoice__ChangeEvent`.
pub fn channel_of(entity: &str) -> String {
    match entity.strip_suffix("__c") {
        Some(base) => format!("/data/{base}__ChangeEvent"),
        None => format!("/data/{entity}ChangeEvent"),
    }
}

/// Which events a subscription receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelFilter {
    /// `/data/ChangeEvents`.
    All,
    /// `/data/<Entity>ChangeEvent`: events of this object API name.
    Entity(String),
}

impl ChannelFilter {
    /// Parses a CDC channel against the known object names (case-sensitive channel, as
    /// Salesforce's). None when the channel is not a CDC channel of a known object.
    pub fn parse<'a>(channel: &str, objects: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        if channel == "/data/ChangeEvents" {
            return Some(ChannelFilter::All);
        }
        objects
            .into_iter()
            .find(|o| channel_of(o) == channel)
            .map(|o| ChannelFilter::Entity(o.to_string()))
    }

    pub fn matches(&self, ev: &ChangeEvent) -> bool {
        match self {
            ChannelFilter::All => true,
            ChannelFilter::Entity(e) => *e == ev.entity,
        }
    }
}

/// Why a replay read failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// Events after this replay id are no longer retained.
    #[error("The replayId {requested} you provided was invalid. Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.")]
    TooOld { requested: i64, oldest: i64 },
    /// A replay id the log never issued.
    #[error("The replayId {0} you provided was invalid. Please provide a valid ID, -2 to replay all events, or -1 to replay only new events.")]
    Invalid(i64),
}

/// What one read found: matching events (oldest first, at most the asked number) and the
/// replay id the read covered — a cursor may move there even when no event matched.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<Arc<ChangeEvent>>,
    pub scanned_to: i64,
}

struct Inner {
    events: VecDeque<Arc<ChangeEvent>>,
    last_replay: i64,
    /// Highest replay id dropped by retention; reads after an id below it fail.
    dropped_up_to: i64,
    max_events: usize,
    retention_ms: i64,
    commit_number: i64,
    /// State of the replay-id gap generator.
    gap_state: u64,
    /// Objects selected for Change Data Capture; `None` = every object.
    selection: Option<BTreeSet<String>>,
    faults: faults::DeliveryFaults,
    /// Each object's metadata as of now, by API name: what an event published now is
    /// encoded with.
    objects: HashMap<String, Arc<ObjectSchema>>,
}

struct Shared {
    inner: Mutex<Inner>,
    schemas: SchemaRegistry,
    tx: watch::Sender<i64>,
}

/// The org's change-event log.
pub struct CdcLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CdcLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdcLog")
            .field("latest", &self.latest_replay_id())
            .finish()
    }
}

/// 72 hours, Salesforce's CDC retention (Change Data Capture Developer Guide, "Change Event
/// Storage and Delivery": events are stored for three days).
pub const DEFAULT_RETENTION_MS: i64 = 72 * 3600 * 1000;
/// No count cap: every event of the retention window is kept.
pub const DEFAULT_MAX_EVENTS: usize = usize::MAX;
const FIRST_REPLAY_ID: i64 = 10_000;
/// Commit numbers start above 2^53, as real ones run: a client reading them as doubles (a
/// JavaScript JSON or Avro decoder) loses their low bits.
const FIRST_COMMIT_NUMBER: i64 = 11_258_999_068_426_240;
/// Largest step between two consecutive replay ids.
const MAX_REPLAY_STEP: u64 = 7;

impl Default for CdcLog {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENTS, DEFAULT_RETENTION_MS)
    }
}

/// xorshift64: the next state of the replay-id gap generator.
fn next_gap(state: &mut u64) -> i64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    1 + (x % MAX_REPLAY_STEP) as i64
}

impl Inner {
    fn trim(&mut self, now_ms: i64) {
        while let Some(front) = self.events.front() {
            if self.events.len() > self.max_events
                || front.commit_timestamp < now_ms - self.retention_ms
            {
                self.dropped_up_to = self.dropped_up_to.max(front.replay_id);
                self.events.pop_front();
            } else {
                break;
            }
        }
    }

    /// Stores events with new replay ids: increasing, with gaps of 1 to 7, so a missing
    /// number never means a lost event (Pub/Sub API Developer Guide, "Event Message
    /// Durability": replay ids are opaque and not contiguous).
    fn append(&mut self, events: Vec<PendingEvent>, schemas: &SchemaRegistry) -> Vec<i64> {
        let mut ids = Vec::with_capacity(events.len());
        for ev in events {
            self.last_replay += next_gap(&mut self.gap_state);
            let replay_id = self.last_replay;
            let mut payload = ev.fields;
            payload.insert("ChangeEventHeader".into(), ev.header.to_json());
            let schema = self.objects.get(&ev.header.entity_name).and_then(|o| {
                match schemas.for_object(o) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::error!("{e}");
                        None
                    }
                }
            });
            self.events.push_back(Arc::new(ChangeEvent {
                schema,
                replay_id,
                channel: channel_of(&ev.header.entity_name),
                entity: ev.header.entity_name.clone(),
                commit_timestamp: ev.header.commit_timestamp,
                header: ev.header,
                payload: Json::Object(payload),
            }));
            ids.push(replay_id);
        }
        ids
    }

    fn is_selected(&self, entity: &str) -> bool {
        self.selection.as_ref().is_none_or(|s| s.contains(entity))
    }
}

impl Shared {
    /// Applies the delivery faults and stores what is due now; delayed events are stored
    /// later by a timer task. Returns the replay ids stored now.
    fn publish(self: &Arc<Self>, events: Vec<PendingEvent>, now_ms: i64) -> Vec<i64> {
        if events.is_empty() {
            return Vec::new();
        }
        let (ids, latest, delayed) = {
            let mut g = self.inner.lock();
            let routed = g.faults.route(events);
            let ids = g.append(routed.now, &self.schemas);
            g.trim(now_ms);
            (ids, g.last_replay, routed.delayed)
        };
        self.tx.send_replace(latest);
        if let Some((delay, events)) = delayed {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    let shared = self.clone();
                    rt.spawn(async move {
                        tokio::time::sleep(delay).await;
                        shared.append_now(events);
                    });
                }
                Err(_) => self.append_now(events),
            }
        }
        ids
    }

    fn append_now(&self, events: Vec<PendingEvent>) {
        let latest = {
            let mut g = self.inner.lock();
            g.append(events, &self.schemas);
            g.last_replay
        };
        self.tx.send_replace(latest);
    }
}

impl CdcLog {
    pub fn new(max_events: usize, retention_ms: i64) -> CdcLog {
        let (tx, _) = watch::channel(FIRST_REPLAY_ID);
        CdcLog {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    events: VecDeque::new(),
                    last_replay: FIRST_REPLAY_ID,
                    dropped_up_to: FIRST_REPLAY_ID,
                    max_events,
                    retention_ms,
                    commit_number: FIRST_COMMIT_NUMBER,
                    gap_state: 0x9e37_79b9_7f4a_7c15,
                    selection: None,
                    faults: faults::DeliveryFaults::default(),
                    objects: HashMap::new(),
                }),
                schemas: SchemaRegistry::default(),
                tx,
            }),
        }
    }

    /// Takes an object's metadata as of now (at start, and after an administrator added a
    /// field): events published from now on carry its change-event schema.
    pub fn set_object(&self, object: Arc<ObjectSchema>) {
        self.shared
            .inner
            .lock()
            .objects
            .insert(object.name.clone(), object);
    }

    /// The change-event schemas of this org's events, every revision kept.
    pub fn schemas(&self) -> &SchemaRegistry {
        &self.shared.schemas
    }

    /// Changes retention; applied at the next publish or read.
    pub fn set_retention(&self, max_events: usize, retention_ms: i64) {
        let mut g = self.shared.inner.lock();
        g.max_events = max_events;
        g.retention_ms = retention_ms;
    }

    /// Drops every retained event but the newest `keep`, now (as if retention had passed
    /// over them); returns how many were dropped. Readers behind them get the
    /// invalid-replay-id error.
    pub fn shrink_retention(&self, keep: usize) -> usize {
        let mut g = self.shared.inner.lock();
        let mut dropped = 0;
        while g.events.len() > keep {
            if let Some(front) = g.events.pop_front() {
                g.dropped_up_to = g.dropped_up_to.max(front.replay_id);
                dropped += 1;
            }
        }
        dropped
    }

    /// A new commit number (one per transaction).
    pub fn next_commit_number(&self) -> i64 {
        let mut g = self.shared.inner.lock();
        g.commit_number += 1;
        g.commit_number
    }

    /// The replay id of the newest event (the cursor for "-1: new events only").
    pub fn latest_replay_id(&self) -> i64 {
        self.shared.inner.lock().last_replay
    }

    /// The replay id reading every retained event starts after (what `-2` means, as an id).
    pub fn earliest_position(&self, now_ms: i64) -> i64 {
        let mut g = self.shared.inner.lock();
        g.trim(now_ms);
        g.dropped_up_to
    }

    /// `(newest replay id, last commit number)`, for persistence.
    pub fn position(&self) -> (i64, i64) {
        let g = self.shared.inner.lock();
        (g.last_replay, g.commit_number)
    }

    /// Continues numbering after a restart: new replay ids and commit numbers follow the saved
    /// ones; the saved events themselves are gone, so a read after an older replay id fails
    /// as too old (a client that had read everything resumes cleanly).
    pub fn restore_position(&self, last_replay: i64, commit_number: i64) {
        let latest = {
            let mut g = self.shared.inner.lock();
            g.last_replay = g.last_replay.max(last_replay);
            g.dropped_up_to = g.dropped_up_to.max(g.last_replay);
            g.commit_number = g.commit_number.max(commit_number);
            g.last_replay
        };
        self.shared.tx.send_replace(latest);
    }

    /// Wakes when events are published; the value is the newest replay id.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.shared.tx.subscribe()
    }

    /// Commits events in order (delivery faults apply); returns the replay ids stored now.
    pub fn publish(&self, events: Vec<PendingEvent>, now_ms: i64) -> Vec<i64> {
        self.shared.publish(events, now_ms)
    }

    /// Publishes the changes of one committed transaction, as Salesforce does: only objects
    /// selected for CDC, gap events in place of the normal events while the `gap_next` fault
    /// lasts, `GAP_OVERFLOW` after the overflow threshold, merged events for identical
    /// changes (see `commit::shape`); then one `transactionKey`, increasing
    /// `sequenceNumber`s and one `commitNumber`/`commitTimestamp` for them all.
    pub fn commit_transaction(&self, events: Vec<PendingEvent>, now_ms: i64) {
        if events.is_empty() {
            return;
        }
        let mut events = {
            let mut g = self.shared.inner.lock();
            let selection = g.selection.clone();
            let overflow_after = g.faults.overflow_after;
            commit::shape(
                events,
                |entity| selection.as_ref().is_none_or(|s| s.contains(entity)),
                &mut g.faults.gap_next,
                overflow_after,
            )
        };
        if events.is_empty() {
            return;
        }
        let key = uuid::Uuid::new_v4().to_string();
        let commit_number = self.next_commit_number();
        for (n, e) in events.iter_mut().enumerate() {
            e.header.transaction_key = key.clone();
            e.header.sequence_number = n as u32 + 1;
            e.header.commit_number = commit_number;
            e.header.commit_timestamp = now_ms;
        }
        self.publish(events, now_ms);
    }

    /// Events after `replay_id` matching `filter`, oldest first. `-1` = none (new events only),
    /// `-2` = everything retained. Fails when events after `replay_id` were dropped.
    pub fn read_after(
        &self,
        replay_id: i64,
        filter: &ChannelFilter,
        now_ms: i64,
    ) -> Result<Vec<Arc<ChangeEvent>>, ReplayError> {
        self.read(replay_id, filter, now_ms, usize::MAX)
            .map(|b| b.events)
    }

    /// Like `read_after`, returning at most `limit` events and how far the read got.
    pub fn read(
        &self,
        replay_id: i64,
        filter: &ChannelFilter,
        now_ms: i64,
        limit: usize,
    ) -> Result<Batch, ReplayError> {
        let mut g = self.shared.inner.lock();
        g.trim(now_ms);
        let after = match replay_id {
            -1 => {
                return Ok(Batch {
                    events: Vec::new(),
                    scanned_to: g.last_replay,
                })
            }
            -2 => i64::MIN,
            r if r < g.dropped_up_to => {
                return Err(ReplayError::TooOld {
                    requested: r,
                    oldest: g
                        .events
                        .front()
                        .map(|e| e.replay_id)
                        .unwrap_or(g.last_replay),
                })
            }
            r if r > g.last_replay || r < 0 => return Err(ReplayError::Invalid(r)),
            r => r,
        };
        let start = g.events.partition_point(|e| e.replay_id <= after);
        let mut batch = Batch {
            events: Vec::new(),
            scanned_to: g.last_replay,
        };
        for e in g.events.range(start..) {
            if !filter.matches(e) {
                continue;
            }
            if batch.events.len() == limit {
                // Everything before this event was scanned.
                batch.scanned_to = batch.events.last().map_or(after, |l| l.replay_id);
                break;
            }
            batch.events.push(e.clone());
        }
        Ok(batch)
    }

    /// Number of retained events.
    pub fn len(&self) -> usize {
        self.shared.inner.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `entity` is selected for Change Data Capture.
    pub fn is_selected(&self, entity: &str) -> bool {
        self.shared.inner.lock().is_selected(entity)
    }

    /// The selected objects (`None` = every object).
    pub fn selection(&self) -> Option<BTreeSet<String>> {
        self.shared.inner.lock().selection.clone()
    }

    /// Selects the objects whose changes are published (`None` = every object).
    pub fn set_selection(&self, selection: Option<BTreeSet<String>>) {
        self.shared.inner.lock().selection = selection;
    }

    /// Reads or changes the delivery faults.
    pub fn with_faults<R>(&self, f: impl FnOnce(&mut faults::DeliveryFaults) -> R) -> R {
        f(&mut self.shared.inner.lock().faults)
    }

    /// Appends a header-only gap event (`GAP_CREATE`, `GAP_UPDATE`, …) for `record_ids`: a
    /// change made outside a transaction of the application servers (Change Data Capture
    /// Developer Guide, "Gap Events"). `None` when a delivery fault suppressed or delayed it.
    pub fn inject_gap(
        &self,
        entity: &str,
        change_type: &str,
        record_ids: Vec<String>,
        commit_user: &str,
        now_ms: i64,
    ) -> Option<i64> {
        let change_type = if change_type.starts_with("GAP_") {
            change_type.to_string()
        } else {
            format!("GAP_{change_type}")
        };
        let header = Header {
            entity_name: entity.to_string(),
            record_ids,
            change_type,
            changed_fields: Vec::new(),
            change_origin: String::new(),
            transaction_key: uuid::Uuid::new_v4().to_string(),
            sequence_number: 1,
            commit_timestamp: now_ms,
            commit_number: self.next_commit_number(),
            commit_user: commit_user.to_string(),
        };
        self.publish(
            vec![PendingEvent {
                header,
                fields: Map::new(),
            }],
            now_ms,
        )
        .first()
        .copied()
    }

    /// Clears the delivery faults; events held by an unfinished reorder are published.
    pub fn clear_faults(&self, now_ms: i64) {
        let held = self.with_faults(|f| {
            let held = f.release_held();
            *f = faults::DeliveryFaults::default();
            held
        });
        self.publish(held, now_ms);
    }

    /// Drops every retained event and every fault, and selects every object again (reset).
    /// Replay ids keep increasing; older ids become too old.
    pub fn clear(&self) {
        let mut g = self.shared.inner.lock();
        g.events.clear();
        g.dropped_up_to = g.last_replay;
        g.faults = faults::DeliveryFaults::default();
        g.selection = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(entity: &str, t: i64) -> PendingEvent {
        PendingEvent {
            header: Header {
                entity_name: entity.into(),
                record_ids: vec!["001EM0000000001AAA".into()],
                change_type: "CREATE".into(),
                changed_fields: vec![],
                change_origin: String::new(),
                transaction_key: "k".into(),
                sequence_number: 1,
                commit_timestamp: t,
                commit_number: 1,
                commit_user: "005".into(),
            },
            fields: Map::new(),
        }
    }

    #[test]
    fn replay_filter_and_retention() {
        let log = CdcLog::new(3, 1000);
        let ids = log.publish(vec![ev("Account", 0), ev("Contact", 0)], 0);
        assert!(ids[0] < ids[1]);
        let all = log.read_after(-2, &ChannelFilter::All, 0).unwrap();
        assert_eq!(all.len(), 2);
        let acc = ChannelFilter::parse("/data/AccountChangeEvent", ["Account", "Contact"]).unwrap();
        assert_eq!(log.read_after(-2, &acc, 0).unwrap().len(), 1);
        assert_eq!(
            log.read_after(ids[0], &ChannelFilter::All, 0)
                .unwrap()
                .len(),
            1
        );
        assert!(log
            .read_after(-1, &ChannelFilter::All, 0)
            .unwrap()
            .is_empty());
        // count retention
        log.publish(vec![ev("Account", 0), ev("Account", 0)], 0);
        assert_eq!(log.len(), 3);
        assert!(matches!(
            log.read_after(ids[0] - 1, &ChannelFilter::All, 0),
            Err(ReplayError::TooOld { .. })
        ));
        // age retention
        assert!(log
            .read_after(-2, &ChannelFilter::All, 5000)
            .unwrap()
            .is_empty());
        assert_eq!(channel_of("Invoice__c"), "/data/Invoice__ChangeEvent");
    }

    #[test]
    fn replay_ids_have_gaps_and_limited_reads_report_how_far_they_got() {
        let log = CdcLog::default();
        let ids = log.publish((0..50).map(|_| ev("Account", 0)).collect(), 0);
        assert!(ids.windows(2).all(|w| w[1] > w[0]));
        assert!(ids.windows(2).any(|w| w[1] - w[0] > 1));
        let batch = log.read(-2, &ChannelFilter::All, 0, 10).unwrap();
        assert_eq!(batch.events.len(), 10);
        assert_eq!(batch.scanned_to, ids[9]);
        let contacts = ChannelFilter::Entity("Contact".into());
        let none = log.read(ids[0], &contacts, 0, 10).unwrap();
        assert!(none.events.is_empty());
        assert_eq!(none.scanned_to, ids[49]);
        assert_eq!(log.shrink_retention(5), 45);
        assert!(matches!(
            log.read(ids[10], &ChannelFilter::All, 0, 10),
            Err(ReplayError::TooOld { .. })
        ));
    }
}
