//! Trigger-log entries as plain data: what the capture triggers recorded for one application
//! write (`_trigger_log` row), and the state of the row it belongs to when the writer looks at it.
//! Everything the planner decides on is in these structs; reading them from Postgres is
//! `store`'s job.

use serde_json::{Map, Value};

/// `_trigger_log.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Insert,
    Update,
    Delete,
}

impl Action {
    /// Parses the trigger's `TG_OP` spelling (`INSERT`, `UPDATE`, `DELETE`).
    pub fn parse(action: &str) -> Option<Action> {
        match action {
            "INSERT" => Some(Action::Insert),
            "UPDATE" => Some(Action::Update),
            "DELETE" => Some(Action::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Insert => "INSERT",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
        }
    }
}

/// One pending `_trigger_log` row.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// `_trigger_log.id`: the capture order.
    pub id: i32,
    /// `_trigger_log.table_name` (the mapped table, without schema).
    pub table: String,
    /// `_trigger_log.record_id`: the row's `id`.
    pub record_id: i32,
    pub action: Action,
    /// The row's `sfid` when the change was captured (null for a row not yet in Salesforce).
    pub sfid: Option<String>,
    /// INSERT: every column; UPDATE: the changed columns only; DELETE: empty.
    pub values: Map<String, Value>,
}

/// The mapped row as it is now, read when the entries are claimed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowNow {
    pub sfid: Option<String>,
    /// Every column (`to_jsonb(row)` without `_hc_lastop` / `_hc_err`).
    pub values: Map<String, Value>,
}

/// The pending entries of one record, in capture order, with the row's current state
/// (`None` once the row is deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordChanges {
    pub table: String,
    pub record_id: i32,
    pub entries: Vec<LogEntry>,
    pub row: Option<RowNow>,
}

/// Groups entries by record, keeping capture order inside each record and ordering records by
/// their first entry.
pub fn group_by_record(
    mut entries: Vec<LogEntry>,
    mut row: impl FnMut(&str, i32) -> Option<RowNow>,
) -> Vec<RecordChanges> {
    entries.sort_by_key(|e| e.id);
    let mut groups: Vec<RecordChanges> = Vec::new();
    let mut index: std::collections::HashMap<(String, i32), usize> =
        std::collections::HashMap::new();
    for entry in entries {
        let key = (entry.table.clone(), entry.record_id);
        match index.get(&key) {
            Some(&i) => groups[i].entries.push(entry),
            None => {
                index.insert(key, groups.len());
                groups.push(RecordChanges {
                    row: row(&entry.table, entry.record_id),
                    table: entry.table.clone(),
                    record_id: entry.record_id,
                    entries: vec![entry],
                });
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i32, record_id: i32) -> LogEntry {
        LogEntry {
            id,
            table: "account".into(),
            record_id,
            action: Action::Update,
            sfid: None,
            values: Map::new(),
        }
    }

    #[test]
    fn entries_group_per_record_in_capture_order() {
        let groups = group_by_record(vec![entry(3, 1), entry(1, 1), entry(2, 2)], |_, id| {
            Some(RowNow {
                sfid: Some(format!("sf{id}")),
                values: Map::new(),
            })
        });
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].record_id, 1);
        assert_eq!(
            groups[0].entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            [1, 3]
        );
        assert_eq!(groups[0].row.as_ref().unwrap().sfid.as_deref(), Some("sf1"));
        assert_eq!(groups[1].record_id, 2);
    }

    #[test]
    fn actions_round_trip_the_trigger_spelling() {
        for a in [Action::Insert, Action::Update, Action::Delete] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("TRUNCATE"), None);
    }
}
