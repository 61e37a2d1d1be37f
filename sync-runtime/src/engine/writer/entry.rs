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
    /// INSERT: every non-null column; UPDATE: the changed columns only (null: cleared); DELETE:
    /// empty. Read from the entry's Heroku Connect hstore text and typed by the mapping's columns
    /// (`adapter::hstore::typed`: numbers, booleans, timestamps as `to_jsonb` gives them).
    pub values: Map<String, Value>,
}

/// The mapped row as it is now, read when the entries are claimed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowNow {
    pub sfid: Option<String>,
    /// Every non-null column (`to_jsonb(row)` without `_hc_lastop` / `_hc_err`), when read.
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

/// The record ids of `table` among `entries` whose rows the claim reads (each once), and those
/// of them whose column values it needs (pure).
///
/// - A record with an INSERT among its entries and no DELETE is not read: its write is a create
///   of the entries' values, or an update when an entry knows the `sfid` (the app set it), and
///   only an engine write could have given the row an `sfid` since, which for a pending insert
///   happens only when the read path links the row to a record by its upsert key, whose create
///   is an upsert by that key anyway. Reading 10,000 rows for nothing cost a tenth of a claim.
/// - A record none of whose entries is an INSERT or knows its `sfid` needs the row's values (its
///   insert failed or never went out, so a write is built from the row as it is now; see
///   [`super::coalesce`]).
/// - The others (updates and deletes of a known record, an insert deleted again) need the row's
///   current `sfid`.
pub fn rows_to_read(entries: &[LogEntry], table: &str) -> (Vec<i32>, Vec<i32>) {
    #[derive(Default)]
    struct Seen {
        insert: bool,
        delete: bool,
        knows_row: bool,
    }
    let mut records: std::collections::BTreeMap<i32, Seen> = std::collections::BTreeMap::new();
    for e in entries.iter().filter(|e| e.table == table) {
        let seen = records.entry(e.record_id).or_default();
        seen.insert |= e.action == Action::Insert;
        seen.delete |= e.action == Action::Delete;
        seen.knows_row |= e.action == Action::Insert
            || e.sfid.as_deref().is_some_and(|s| !s.is_empty())
            || e.values
                .get("sfid")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty());
    }
    records.retain(|_, seen| !seen.insert || seen.delete);
    let with_values = records
        .iter()
        .filter(|(_, seen)| !seen.knows_row)
        .map(|(id, _)| *id)
        .collect();
    (records.into_keys().collect(), with_values)
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

    #[test]
    fn the_claim_reads_values_only_of_rows_a_write_is_built_from() {
        let mut insert = entry(1, 10);
        insert.action = Action::Insert;
        let later_update = entry(2, 10);
        let unsynced_update = entry(3, 11);
        let mut synced_update = entry(4, 12);
        synced_update.sfid = Some("001000000000001AAA".into());
        let mut other_table = entry(5, 13);
        other_table.table = "contact".into();
        let mut deleted_insert = entry(6, 14);
        deleted_insert.action = Action::Insert;
        let mut delete = entry(7, 14);
        delete.action = Action::Delete;
        let (ids, with_values) = rows_to_read(
            &[
                insert,
                later_update,
                unsynced_update,
                synced_update,
                other_table,
                deleted_insert,
                delete,
            ],
            "account",
        );
        assert_eq!(
            ids,
            [11, 12, 14],
            "an insert is not read, unless it is deleted again"
        );
        assert_eq!(with_values, [11]);
    }
}
