//! Change-event faults a sync engine's chaos tests need, set through `/__emulator/faults`:
//! the next N published events suppressed, delayed, duplicated or reordered; the next N record
//! changes published as `GAP_*` events instead of their normal events; the overflow threshold;
//! the next N subscribes refused with the invalid-replay-id error; the next N CometD requests
//! answered 503. `route` is the pure decision applied to each published batch.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{CdcLog, PendingEvent};

/// Salesforce's overflow threshold: the first 100,000 changes of one transaction generate
/// change events (Change Data Capture Developer Guide, "Overflow Events").
pub const OVERFLOW_AFTER: usize = 100_000;

/// The change-event fault state (what `GET /__emulator/faults` reports under `cdc_*`).
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryFaults {
    /// The next N events are never published (lost).
    pub cdc_suppress_next: u32,
    /// The next N events are published `cdc_delay_ms` late (after later commits).
    pub cdc_delay_next: u32,
    pub cdc_delay_ms: u64,
    /// The next N events are published twice (a redelivery with its own replay id).
    pub cdc_duplicate_next: u32,
    /// The next N events are held until N have been committed, then published in reverse.
    pub cdc_reorder_next: u32,
    /// The next N record changes are published as header-only `GAP_*` events.
    #[serde(rename = "cdc_gap_next")]
    pub gap_next: u32,
    /// Changes of one transaction after which `GAP_OVERFLOW` events replace the rest.
    #[serde(rename = "cdc_overflow_after")]
    pub overflow_after: usize,
    /// The next N `/meta/subscribe` get the invalid-replay-id error.
    pub cdc_fail_next_subscribe: u32,
    /// The next N CometD requests are answered 503.
    pub streaming_503_next: u32,
    /// Events held by the reorder fault.
    #[serde(skip)]
    held: Vec<PendingEvent>,
}

impl Default for DeliveryFaults {
    fn default() -> Self {
        DeliveryFaults {
            cdc_suppress_next: 0,
            cdc_delay_next: 0,
            cdc_delay_ms: 0,
            cdc_duplicate_next: 0,
            cdc_reorder_next: 0,
            gap_next: 0,
            overflow_after: OVERFLOW_AFTER,
            cdc_fail_next_subscribe: 0,
            streaming_503_next: 0,
            held: Vec::new(),
        }
    }
}

/// Where a published batch goes: stored now, or later (after the delay).
#[derive(Debug, Default)]
pub struct Routed {
    pub now: Vec<PendingEvent>,
    pub delayed: Option<(Duration, Vec<PendingEvent>)>,
}

/// Takes one from a fault counter; true when the fault applies.
pub fn take(counter: &mut u32) -> bool {
    if *counter > 0 {
        *counter -= 1;
        true
    } else {
        false
    }
}

impl DeliveryFaults {
    /// Whether any delivery fault is pending (the fast path skips `route`'s work).
    fn idle(&self) -> bool {
        self.cdc_suppress_next == 0
            && self.cdc_delay_next == 0
            && self.cdc_duplicate_next == 0
            && self.cdc_reorder_next == 0
            && self.held.is_empty()
    }

    /// Decides the fate of each event of a batch, in order: suppressed, delayed, held for
    /// reordering, duplicated, or stored as is.
    pub fn route(&mut self, events: Vec<PendingEvent>) -> Routed {
        if self.idle() {
            return Routed {
                now: events,
                delayed: None,
            };
        }
        let mut routed = Routed::default();
        let mut delayed = Vec::new();
        for ev in events {
            if take(&mut self.cdc_suppress_next) {
                continue;
            }
            if take(&mut self.cdc_delay_next) {
                delayed.push(ev);
                continue;
            }
            if take(&mut self.cdc_reorder_next) {
                self.held.push(ev);
                if self.cdc_reorder_next == 0 {
                    routed.now.extend(self.held.drain(..).rev());
                }
                continue;
            }
            if take(&mut self.cdc_duplicate_next) {
                routed.now.push(ev.clone());
            }
            routed.now.push(ev);
        }
        if !delayed.is_empty() {
            routed.delayed = Some((Duration::from_millis(self.cdc_delay_ms), delayed));
        }
        routed
    }

    /// Releases events held by an unfinished reorder (when the fault is cleared).
    pub fn release_held(&mut self) -> Vec<PendingEvent> {
        self.cdc_reorder_next = 0;
        self.held.drain(..).rev().collect()
    }
}

/// The change-event keys of a `POST /__emulator/faults` body (each optional; others keep
/// their value).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    cdc_suppress_next: Option<u32>,
    cdc_delay_next: Option<u32>,
    cdc_delay_ms: Option<u64>,
    cdc_duplicate_next: Option<u32>,
    cdc_reorder_next: Option<u32>,
    cdc_gap_next: Option<u32>,
    cdc_overflow_after: Option<usize>,
    cdc_fail_next_subscribe: Option<u32>,
    streaming_503_next: Option<u32>,
    /// Keep only the newest N retained events, now.
    cdc_shrink_retention: Option<usize>,
}

fn is_cdc_key(key: &str) -> bool {
    key.starts_with("cdc_") || key.starts_with("streaming_503")
}

/// Splits a faults body into its change-event settings and the rest (re-serialised). A body
/// that is not a JSON object is returned as is.
pub fn split_settings(body: &[u8]) -> Result<(Vec<u8>, Settings), String> {
    let Ok(Json::Object(mut all)) = serde_json::from_slice::<Json>(body) else {
        return Ok((body.to_vec(), Settings::default()));
    };
    let keys: Vec<String> = all.keys().filter(|k| is_cdc_key(k)).cloned().collect();
    let mut cdc = Map::new();
    for k in keys {
        if let Some(v) = all.remove(&k) {
            cdc.insert(k, v);
        }
    }
    let settings: Settings =
        serde_json::from_value(Json::Object(cdc)).map_err(|e| e.to_string())?;
    let rest = serde_json::to_vec(&Json::Object(all)).map_err(|e| e.to_string())?;
    Ok((rest, settings))
}

impl Settings {
    /// Whether the body set any change-event key.
    pub fn is_empty(&self) -> bool {
        self.cdc_suppress_next.is_none()
            && self.cdc_delay_next.is_none()
            && self.cdc_delay_ms.is_none()
            && self.cdc_duplicate_next.is_none()
            && self.cdc_reorder_next.is_none()
            && self.cdc_gap_next.is_none()
            && self.cdc_overflow_after.is_none()
            && self.cdc_fail_next_subscribe.is_none()
            && self.streaming_503_next.is_none()
            && self.cdc_shrink_retention.is_none()
    }

    /// Applies the settings to the log; returns how many events a shrink dropped.
    pub fn apply(self, log: &CdcLog) -> Result<Option<usize>, String> {
        if self.cdc_delay_ms.is_some_and(|ms| ms > 600_000) {
            return Err("cdc_delay_ms must be at most 600000 (10 minutes)".into());
        }
        if self.cdc_overflow_after == Some(0) {
            return Err("cdc_overflow_after must be at least 1".into());
        }
        log.with_faults(|f| {
            let set = |target: &mut u32, v: Option<u32>| {
                if let Some(v) = v {
                    *target = v;
                }
            };
            set(&mut f.cdc_suppress_next, self.cdc_suppress_next);
            set(&mut f.cdc_delay_next, self.cdc_delay_next);
            set(&mut f.cdc_duplicate_next, self.cdc_duplicate_next);
            set(&mut f.cdc_reorder_next, self.cdc_reorder_next);
            set(&mut f.gap_next, self.cdc_gap_next);
            set(&mut f.cdc_fail_next_subscribe, self.cdc_fail_next_subscribe);
            set(&mut f.streaming_503_next, self.streaming_503_next);
            if let Some(ms) = self.cdc_delay_ms {
                f.cdc_delay_ms = ms;
            }
            if let Some(n) = self.cdc_overflow_after {
                f.overflow_after = n;
            }
        });
        Ok(self
            .cdc_shrink_retention
            .map(|keep| log.shrink_retention(keep)))
    }
}

/// The change-event fault state as `GET /__emulator/faults` keys.
pub fn report(log: &CdcLog) -> Map<String, Json> {
    match serde_json::to_value(log.with_faults(|f| f.clone())) {
        Ok(Json::Object(m)) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::cdc::Header;

    fn ev(id: &str) -> PendingEvent {
        PendingEvent {
            header: Header {
                entity_name: "Account".into(),
                record_ids: vec![id.into()],
                change_type: "CREATE".into(),
                changed_fields: vec![],
                change_origin: String::new(),
                transaction_key: String::new(),
                sequence_number: 0,
                commit_timestamp: 0,
                commit_number: 0,
                commit_user: String::new(),
            },
            fields: Default::default(),
        }
    }

    fn ids(events: &[PendingEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| e.header.record_ids[0].clone())
            .collect()
    }

    #[test]
    fn change_event_keys_are_split_from_the_other_faults() {
        let (rest, settings) =
            split_settings(br#"{"latency_ms":5,"cdc_gap_next":2,"streaming_503_next":1}"#).unwrap();
        assert_eq!(rest, br#"{"latency_ms":5}"#);
        assert_eq!(settings.cdc_gap_next, Some(2));
        assert!(split_settings(br#"{"cdc_nonsense":1}"#).is_err());
        let log = CdcLog::default();
        settings.apply(&log).unwrap();
        assert_eq!(report(&log)["cdc_gap_next"], 2);
    }

    #[test]
    fn suppress_duplicate_and_delay_take_the_next_events() {
        let mut f = DeliveryFaults {
            cdc_suppress_next: 1,
            cdc_duplicate_next: 1,
            ..DeliveryFaults::default()
        };
        let r = f.route(vec![ev("a"), ev("b"), ev("c")]);
        assert_eq!(ids(&r.now), ["b", "b", "c"]);
        f.cdc_delay_next = 2;
        f.cdc_delay_ms = 50;
        let r = f.route(vec![ev("d"), ev("e"), ev("f")]);
        assert_eq!(ids(&r.now), ["f"]);
        let (delay, late) = r.delayed.unwrap();
        assert_eq!(
            (delay, ids(&late)),
            (Duration::from_millis(50), vec!["d".into(), "e".into()])
        );
    }

    #[test]
    fn reorder_holds_events_until_n_arrived_then_reverses_them() {
        let mut f = DeliveryFaults {
            cdc_reorder_next: 3,
            ..DeliveryFaults::default()
        };
        assert!(f.route(vec![ev("a"), ev("b")]).now.is_empty());
        let r = f.route(vec![ev("c"), ev("d")]);
        assert_eq!(ids(&r.now), ["c", "b", "a", "d"]);
        assert!(f.idle());
    }
}
