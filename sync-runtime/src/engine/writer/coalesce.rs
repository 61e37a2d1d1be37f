//! Coalescing: the pending changes of one record become at most one Salesforce operation,
//! keeping their order (pure).
//!
//! | pending (capture order)          | sent                                   |
//! |----------------------------------|----------------------------------------|
//! | INSERT, UPDATE…                  | one create with the merged values      |
//! | INSERT, …, DELETE (never sent)   | nothing                                |
//! | UPDATE, UPDATE… (sfid known)     | one update with the union of changes   |
//! | UPDATE…, DELETE (sfid known)     | one delete                             |
//! | UPDATE… (no sfid, no INSERT)     | a create of the row's current values (its insert failed earlier) |
//! | DELETE, then anything            | the delete now; the rest in a later round |
//!
//! A record whose earlier operation is still in flight is not coalesced at all: the caller holds
//! its entries back until that operation's outcome is known.

use serde_json::{Map, Value};

use super::entry::{Action, RecordChanges};

/// The single operation a record's pending changes come down to.
#[derive(Debug, Clone, PartialEq)]
pub enum NetOp {
    /// Create the record from these column values (every column of the row).
    Create {
        values: Map<String, Value>,
    },
    /// Update the record: only these changed columns.
    Update {
        sfid: String,
        values: Map<String, Value>,
    },
    Delete {
        sfid: String,
    },
    /// Nothing to send (an insert deleted before it was sent, or a row gone before its failed
    /// insert was retried).
    Nothing,
}

/// What one record's pending entries come down to.
#[derive(Debug, Clone, PartialEq)]
pub struct Coalesced {
    pub table: String,
    pub record_id: i32,
    pub op: NetOp,
    /// The entries settled by `op`, in capture order.
    pub entry_ids: Vec<i32>,
    /// Entries captured after a DELETE of the same record id: left for a later round.
    pub deferred: Vec<i32>,
}

/// Coalesces one record's pending entries (see the module table).
pub fn coalesce(changes: &RecordChanges) -> Coalesced {
    let cut = changes
        .entries
        .iter()
        .position(|e| e.action == Action::Delete)
        .map_or(changes.entries.len(), |i| i + 1);
    let (taken, rest) = changes.entries.split_at(cut);

    let row_sfid = changes.row.as_ref().and_then(|r| r.sfid.clone());
    let entry_sfid = taken.iter().rev().find_map(|e| {
        e.sfid.clone().or_else(|| {
            e.values
                .get("sfid")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    });
    let sfid = row_sfid.or(entry_sfid).filter(|s| !s.is_empty());
    let has_insert = taken.iter().any(|e| e.action == Action::Insert);
    let ends_in_delete = taken.last().is_some_and(|e| e.action == Action::Delete);

    let merged = || {
        let mut values = Map::new();
        for entry in taken {
            for (column, value) in &entry.values {
                values.insert(column.clone(), value.clone());
            }
        }
        values
    };

    let op = match (sfid, ends_in_delete) {
        (Some(sfid), true) => NetOp::Delete { sfid },
        (None, true) => NetOp::Nothing,
        (Some(sfid), false) => {
            let mut values = merged();
            values.remove("sfid");
            values.remove("id");
            NetOp::Update { sfid, values }
        }
        (None, false) if has_insert => NetOp::Create { values: merged() },
        (None, false) => match &changes.row {
            Some(row) => NetOp::Create {
                values: row.values.clone(),
            },
            None => NetOp::Nothing,
        },
    };

    Coalesced {
        table: changes.table.clone(),
        record_id: changes.record_id,
        op,
        entry_ids: taken.iter().map(|e| e.id).collect(),
        deferred: rest.iter().map(|e| e.id).collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::writer::entry::{LogEntry, RowNow};

    fn values(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn entry(id: i32, action: Action, sfid: Option<&str>, v: Value) -> LogEntry {
        LogEntry {
            id,
            table: "account".into(),
            record_id: 7,
            action,
            sfid: sfid.map(str::to_owned),
            values: values(v),
        }
    }

    fn changes(entries: Vec<LogEntry>, row: Option<RowNow>) -> RecordChanges {
        RecordChanges {
            table: "account".into(),
            record_id: 7,
            entries,
            row,
        }
    }

    fn row(sfid: Option<&str>, v: Value) -> Option<RowNow> {
        Some(RowNow {
            sfid: sfid.map(str::to_owned),
            values: values(v),
        })
    }

    fn create(v: Value) -> NetOp {
        NetOp::Create { values: values(v) }
    }

    fn update(sfid: &str, v: Value) -> NetOp {
        let sfid = sfid.into();
        NetOp::Update {
            sfid,
            values: values(v),
        }
    }

    fn delete(sfid: &str) -> NetOp {
        NetOp::Delete { sfid: sfid.into() }
    }

    #[test]
    fn an_insert_then_updates_become_one_create_with_the_latest_values() {
        let c = coalesce(&changes(
            vec![
                entry(
                    1,
                    Action::Insert,
                    None,
                    json!({"id": 7, "name": "a", "phone": "1"}),
                ),
                entry(2, Action::Update, None, json!({"name": "b"})),
                entry(3, Action::Update, None, json!({"name": "c"})),
            ],
            row(None, json!({"id": 7, "name": "c", "phone": "1"})),
        ));
        assert_eq!(c.op, create(json!({"id": 7, "name": "c", "phone": "1"})));
        assert_eq!(c.entry_ids, [1, 2, 3]);
        assert!(c.deferred.is_empty());
    }

    #[test]
    fn an_insert_deleted_before_it_was_sent_sends_nothing() {
        let c = coalesce(&changes(
            vec![
                entry(1, Action::Insert, None, json!({"name": "a"})),
                entry(2, Action::Delete, None, json!({})),
            ],
            None,
        ));
        assert_eq!(c.op, NetOp::Nothing);
        assert_eq!(c.entry_ids, [1, 2]);
    }

    #[test]
    fn updates_merge_to_the_union_of_changed_columns_with_the_last_value() {
        let c = coalesce(&changes(
            vec![
                entry(1, Action::Update, Some("001A"), json!({"name": "b"})),
                entry(2, Action::Update, Some("001A"), json!({"phone": "2"})),
                entry(3, Action::Update, Some("001A"), json!({"name": "c"})),
            ],
            row(
                Some("001A"),
                json!({"name": "c", "phone": "2", "website": "w"}),
            ),
        ));
        assert_eq!(c.op, update("001A", json!({"name": "c", "phone": "2"})));
    }

    #[test]
    fn an_update_then_a_delete_is_one_delete() {
        let c = coalesce(&changes(
            vec![
                entry(1, Action::Update, Some("001A"), json!({"name": "b"})),
                entry(2, Action::Delete, Some("001A"), json!({})),
            ],
            None,
        ));
        assert_eq!(c.op, delete("001A"));
    }

    #[test]
    fn an_update_captured_before_the_insert_came_back_uses_the_rows_sfid_now() {
        let c = coalesce(&changes(
            vec![entry(5, Action::Update, None, json!({"name": "b"}))],
            row(Some("001B"), json!({"name": "b"})),
        ));
        assert_eq!(c.op, update("001B", json!({"name": "b"})));
    }

    #[test]
    fn fixing_a_row_whose_insert_failed_sends_an_insert_of_its_current_values() {
        let c = coalesce(&changes(
            vec![entry(9, Action::Update, None, json!({"name": "fixed"}))],
            row(None, json!({"id": 7, "name": "fixed", "phone": "1"})),
        ));
        assert_eq!(
            c.op,
            create(json!({"id": 7, "name": "fixed", "phone": "1"}))
        );
    }

    #[test]
    fn changes_after_a_delete_wait_for_a_later_round() {
        let c = coalesce(&changes(
            vec![
                entry(1, Action::Delete, Some("001A"), json!({})),
                entry(2, Action::Insert, None, json!({"name": "again"})),
            ],
            row(None, json!({"name": "again"})),
        ));
        assert_eq!(c.op, delete("001A"));
        assert_eq!(c.entry_ids, [1]);
        assert_eq!(c.deferred, [2]);
    }

    #[test]
    fn an_insert_that_names_its_sfid_is_an_update_of_that_record() {
        let c = coalesce(&changes(
            vec![entry(
                1,
                Action::Insert,
                None,
                json!({"id": 7, "sfid": "001C", "name": "n"}),
            )],
            row(Some("001C"), json!({"name": "n"})),
        ));
        assert_eq!(c.op, update("001C", json!({"name": "n"})));
    }
}
