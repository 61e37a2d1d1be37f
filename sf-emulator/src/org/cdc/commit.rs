//! How one committed transaction's record changes become change events, as Salesforce
//! publishes them (Change Data Capture Developer Guide):
//! - only objects selected for Change Data Capture publish events ("Select Objects for Change
//!   Notifications in the User Interface");
//! - "Overflow Events": the first 100,000 changes of a transaction generate change events; the
//!   changes beyond generate one header-only `GAP_OVERFLOW` event per entity (a create, delete
//!   or undelete counts one change, an update one per changed field);
//! - "Gap Events": a gap event replaces the change event it stands for (header only, record
//!   ids kept) — injected here by the `cdc_gap_next` fault;
//! - "Merged Change Events": the same change to several records of one object in one
//!   transaction is one event whose `recordIds` lists them all (updates with identical values,
//!   deletes, gap events).

use std::collections::HashMap;

use super::{Header, PendingEvent};

/// Changes one event counts toward the overflow threshold.
fn changes(ev: &PendingEvent) -> usize {
    if ev.header.change_type == "UPDATE" {
        let fields = ev
            .header
            .changed_fields
            .iter()
            .filter(|f| f.as_str() != "LastModifiedDate")
            .count();
        fields.max(1)
    } else {
        1
    }
}

/// Turns a change event into the header-only gap event standing for it.
fn into_gap(mut ev: PendingEvent) -> PendingEvent {
    if !ev.header.change_type.starts_with("GAP_") {
        ev.header.change_type = format!("GAP_{}", ev.header.change_type);
    }
    ev.header.changed_fields.clear();
    ev.fields.clear();
    ev
}

/// Whether events of this change type merge when their changes are identical.
fn merges(change_type: &str) -> bool {
    matches!(change_type, "UPDATE" | "DELETE") || change_type.starts_with("GAP_")
}

/// What makes two changes "the same change": object, type, changed fields and values.
fn merge_key(ev: &PendingEvent) -> String {
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{}",
        ev.header.entity_name,
        ev.header.change_type,
        ev.header.changed_fields.join(","),
        serde_json::Value::Object(ev.fields.clone())
    )
}

/// Merges identical changes into one event listing every record. A change joins an earlier
/// event only when none of its records appears in that event or a later one, so each
/// record's changes keep their order.
pub fn merge(events: Vec<PendingEvent>) -> Vec<PendingEvent> {
    if events.len() < 2 {
        return events;
    }
    let mut out: Vec<PendingEvent> = Vec::with_capacity(events.len());
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut last_event_of: HashMap<String, usize> = HashMap::new();
    for ev in events {
        let key = merges(&ev.header.change_type).then(|| merge_key(&ev));
        let target = key
            .as_ref()
            .and_then(|k| by_key.get(k).copied())
            .filter(|&t| {
                ev.header
                    .record_ids
                    .iter()
                    .all(|id| last_event_of.get(id).is_none_or(|&last| last < t))
            });
        let at = match target {
            Some(t) => {
                out[t]
                    .header
                    .record_ids
                    .extend(ev.header.record_ids.iter().cloned());
                t
            }
            None => {
                out.push(ev.clone());
                let at = out.len() - 1;
                if let Some(k) = key {
                    by_key.insert(k, at);
                }
                at
            }
        };
        for id in ev.header.record_ids {
            last_event_of.insert(id, at);
        }
    }
    out
}

/// The events one transaction publishes: selected objects only, the first `overflow_after`
/// changes as events and one `GAP_OVERFLOW` per entity for the rest, the next `gap_next`
/// record changes as gap events, identical changes merged.
pub fn shape(
    events: Vec<PendingEvent>,
    selected: impl Fn(&str) -> bool,
    gap_next: &mut u32,
    overflow_after: usize,
) -> Vec<PendingEvent> {
    let mut kept = Vec::with_capacity(events.len());
    let mut overflow: Vec<Header> = Vec::new();
    let mut counted = 0usize;
    for ev in events {
        if !selected(&ev.header.entity_name) {
            continue;
        }
        if counted >= overflow_after {
            if !overflow
                .iter()
                .any(|h| h.entity_name == ev.header.entity_name)
            {
                let prefix: String = ev
                    .header
                    .record_ids
                    .first()
                    .map(|id| id.chars().take(3).collect())
                    .unwrap_or_default();
                overflow.push(Header {
                    record_ids: vec![format!("{prefix}*")],
                    change_type: "GAP_OVERFLOW".into(),
                    changed_fields: Vec::new(),
                    ..ev.header.clone()
                });
            }
            continue;
        }
        counted += changes(&ev);
        if super::faults::take(gap_next) {
            kept.push(into_gap(ev));
        } else {
            kept.push(ev);
        }
    }
    let mut out = merge(kept);
    out.extend(overflow.into_iter().map(|header| PendingEvent {
        header,
        fields: Default::default(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(entity: &str, id: &str, change: &str, fields: serde_json::Value) -> PendingEvent {
        let fields = fields.as_object().cloned().unwrap_or_default();
        PendingEvent {
            header: Header {
                entity_name: entity.into(),
                record_ids: vec![id.into()],
                change_type: change.into(),
                changed_fields: if change == "UPDATE" {
                    fields.keys().cloned().collect()
                } else {
                    vec![]
                },
                change_origin: String::new(),
                transaction_key: String::new(),
                sequence_number: 0,
                commit_timestamp: 0,
                commit_number: 0,
                commit_user: String::new(),
            },
            fields,
        }
    }

    fn summary(events: &[PendingEvent]) -> Vec<(String, Vec<String>)> {
        events
            .iter()
            .map(|e| (e.header.change_type.clone(), e.header.record_ids.clone()))
            .collect()
    }

    #[test]
    fn identical_updates_and_deletes_merge_but_creates_and_different_values_do_not() {
        let same = json!({"Industry": "Apparel", "LastModifiedDate": "2024-01-01T00:00:00Z"});
        let other = json!({"Industry": "Energy", "LastModifiedDate": "2024-01-01T00:00:00Z"});
        let events = vec![
            ev("Account", "a1", "UPDATE", same.clone()),
            ev("Account", "a2", "UPDATE", other),
            ev("Account", "a3", "UPDATE", same.clone()),
            ev("Contact", "c1", "UPDATE", same),
            ev("Account", "a4", "DELETE", json!({})),
            ev("Account", "a5", "DELETE", json!({})),
            ev("Account", "a6", "CREATE", json!({"Name": "x"})),
            ev("Account", "a7", "CREATE", json!({"Name": "x"})),
        ];
        let out = merge(events);
        assert_eq!(
            summary(&out),
            vec![
                ("UPDATE".into(), vec!["a1".into(), "a3".into()]),
                ("UPDATE".into(), vec!["a2".into()]),
                ("UPDATE".into(), vec!["c1".into()]),
                ("DELETE".into(), vec!["a4".into(), "a5".into()]),
                ("CREATE".into(), vec!["a6".into()]),
                ("CREATE".into(), vec!["a7".into()]),
            ]
        );
    }

    #[test]
    fn a_record_changed_twice_keeps_its_order() {
        let x = json!({"Industry": "Apparel"});
        let y = json!({"Industry": "Energy"});
        // a1 → x, a1 → y, a2 → x: a2 may join a1's first event; a1's second change may not.
        let out = merge(vec![
            ev("Account", "a1", "UPDATE", x.clone()),
            ev("Account", "a1", "UPDATE", y),
            ev("Account", "a2", "UPDATE", x.clone()),
            ev("Account", "a1", "UPDATE", x),
        ]);
        assert_eq!(
            summary(&out),
            vec![
                ("UPDATE".into(), vec!["a1".into(), "a2".into()]),
                ("UPDATE".into(), vec!["a1".into()]),
                ("UPDATE".into(), vec!["a1".into()]),
            ]
        );
    }

    #[test]
    fn gaps_replace_the_next_changes_and_merge() {
        let mut gap_next = 2;
        let out = shape(
            vec![
                ev("Account", "a1", "UPDATE", json!({"Name": "p"})),
                ev("Account", "a2", "UPDATE", json!({"Name": "q"})),
                ev("Account", "a3", "UPDATE", json!({"Name": "r"})),
            ],
            |_| true,
            &mut gap_next,
            OVERFLOW,
        );
        assert_eq!(gap_next, 0);
        assert_eq!(
            summary(&out),
            vec![
                ("GAP_UPDATE".into(), vec!["a1".into(), "a2".into()]),
                ("UPDATE".into(), vec!["a3".into()]),
            ]
        );
        assert!(out[0].fields.is_empty() && out[0].header.changed_fields.is_empty());
    }

    const OVERFLOW: usize = crate::org::cdc::faults::OVERFLOW_AFTER;

    #[test]
    fn changes_past_the_threshold_become_one_overflow_event_per_entity() {
        let events = vec![
            ev("Account", "001a", "CREATE", json!({"Name": "1"})),
            // Two changed fields: counts two.
            ev(
                "Account",
                "001b",
                "UPDATE",
                json!({"Name": "2", "Industry": "x"}),
            ),
            ev("Contact", "003a", "DELETE", json!({})),
            ev("Account", "001c", "DELETE", json!({})),
            ev("Contact", "003b", "DELETE", json!({})),
        ];
        let out = shape(events, |_| true, &mut 0, 3);
        assert_eq!(
            summary(&out),
            vec![
                ("CREATE".into(), vec!["001a".into()]),
                ("UPDATE".into(), vec!["001b".into()]),
                ("GAP_OVERFLOW".into(), vec!["003*".into()]),
                ("GAP_OVERFLOW".into(), vec!["001*".into()]),
            ]
        );
        assert_eq!(out[2].header.entity_name, "Contact");
        assert!(out[3].fields.is_empty());
    }

    #[test]
    fn unselected_objects_publish_nothing() {
        let out = shape(
            vec![
                ev("Account", "a", "CREATE", json!({})),
                ev("Lead", "l", "CREATE", json!({})),
            ],
            |e| e == "Account",
            &mut 0,
            OVERFLOW,
        );
        assert_eq!(summary(&out), vec![("CREATE".into(), vec!["a".into()])]);
    }
}
