//! The SOQL the engine sends (pure): the select list of a mapping, the initial-load query, the
//! polling window query, the writer's reconciliation queries, `verify`'s Id scan, and SOQL
//! literals (strings: [`string_literal`], the one escaper; datetimes).

use chrono::{DateTime, NaiveDateTime, Utc};

use super::filter::Filter;
use crate::adapter::MappingDescriptor;

/// The fields selected for a mapping: every mapped field, then the filter's unmapped fields.
pub fn select_list(mapping: &MappingDescriptor, filter: &Filter) -> Vec<String> {
    let mut fields: Vec<String> = mapping.soql_fields().map(str::to_owned).collect();
    for extra in filter.unmapped_fields(mapping) {
        if !fields.iter().any(|f| f.eq_ignore_ascii_case(&extra)) {
            fields.push(extra);
        }
    }
    fields
}

/// A SOQL string literal: quoted, backslashes and quotes escaped.
pub fn string_literal(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A SOQL datetime literal (UTC, milliseconds).
pub fn datetime_literal(at: &NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The initial load: every record the filter selects.
pub fn load_query(mapping: &MappingDescriptor, filter: &Filter) -> String {
    let mut soql = format!(
        "SELECT {} FROM {}",
        select_list(mapping, filter).join(", "),
        mapping.object
    );
    if let Some(f) = mapping.filter {
        soql.push_str(&format!(" WHERE {f}"));
    }
    soql
}

/// `SELECT COUNT()` of the initial load.
pub fn count_query(mapping: &MappingDescriptor) -> String {
    match mapping.filter {
        Some(f) => format!("SELECT COUNT() FROM {} WHERE {f}", mapping.object),
        None => format!("SELECT COUNT() FROM {}", mapping.object),
    }
}

/// One page of a polling window, through `queryAll` (deleted records included): records whose
/// `(SystemModstamp, Id)` is after `after`, in that order. The filter is not applied here:
/// records that stopped matching must be seen to leave the table.
pub fn poll_query(
    mapping: &MappingDescriptor,
    filter: &Filter,
    after: &(NaiveDateTime, String),
    limit: u32,
) -> String {
    let (stamp, id) = after;
    let stamp = datetime_literal(stamp);
    let condition = if id.is_empty() {
        format!("SystemModstamp >= {stamp}")
    } else {
        format!(
            "(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > {}))",
            string_literal(id)
        )
    };
    // A mapping the writer creates records in also reads who created each record, so that a
    // poll can tell the records this engine created and has not written back yet (see
    // `poll::own_creates_to_defer`).
    let mut fields = select_list(mapping, filter);
    if mapping.is_read_write() && !fields.iter().any(|f| f.eq_ignore_ascii_case("CreatedById")) {
        fields.push("CreatedById".to_owned());
    }
    format!(
        "SELECT {} FROM {} WHERE {condition} ORDER BY SystemModstamp, Id LIMIT {limit}",
        fields.join(", "),
        mapping.object
    )
}

/// Records by Id, every mapped field (relationship paths included, which sObject Collections
/// retrieve does not take): one query per call, `ids` at most a few hundred.
pub fn by_ids_query(mapping: &MappingDescriptor, filter: &Filter, ids: &[String]) -> String {
    let ids: Vec<String> = ids
        .iter()
        .map(|id| string_literal(&id.replace(['\\', '\''], "")))
        .collect();
    format!(
        "SELECT {} FROM {} WHERE Id IN ({})",
        select_list(mapping, filter).join(", "),
        mapping.object,
        ids.join(", ")
    )
}

/// The writer's reconciliation of upserts: the records of `object` whose external ID `key` is one
/// of `values`.
pub fn by_external_ids_query(object: &str, key: &str, values: &[&str]) -> String {
    let values: Vec<String> = values.iter().map(|v| string_literal(v)).collect();
    format!(
        "SELECT Id, {key} FROM {object} WHERE {key} IN ({})",
        values.join(", ")
    )
}

/// The writer's reconciliation of creates: the records of `object` created since `since` (by
/// `created_by` when the integration user is known), with `Id` and `fields`, in creation order.
pub fn created_since_query(
    object: &str,
    fields: &[String],
    since: DateTime<Utc>,
    created_by: Option<&str>,
) -> String {
    let by_user = created_by
        .map(|u| format!(" AND CreatedById = {}", string_literal(u)))
        .unwrap_or_default();
    let mut select = vec!["Id"];
    select.extend(fields.iter().map(String::as_str));
    format!(
        "SELECT {} FROM {object} WHERE CreatedDate >= {}{by_user} ORDER BY CreatedDate, Id",
        select.join(", "),
        since.format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// `verify`'s scan of Salesforce: `Id` and `SystemModstamp` of every record the mapping selects,
/// in Id order when `ordered` (a Bulk API query runs unordered, keeping PK chunking).
pub fn id_stamp_query(mapping: &MappingDescriptor, ordered: bool) -> String {
    let mut soql = format!("SELECT Id, SystemModstamp FROM {}", mapping.object);
    if let Some(f) = mapping.filter {
        soql.push_str(&format!(" WHERE {f}"));
    }
    if ordered {
        soql.push_str(" ORDER BY Id");
    }
    soql
}

/// Whether a mapping selects fields of a parent (relationship columns): such records are read
/// by SOQL, never by sObject Collections retrieve.
pub fn selects_parent_fields(mapping: &MappingDescriptor) -> bool {
    mapping.fields.iter().any(|f| f.relationship.is_some())
}

/// Only the formula columns of a mapping (with Id), for the formula refresh.
pub fn formula_query(mapping: &MappingDescriptor) -> Option<String> {
    let formulas: Vec<&str> = mapping
        .fields
        .iter()
        .filter(|f| f.calculated)
        .map(|f| f.sf_name)
        .collect();
    if formulas.is_empty() {
        return None;
    }
    let mut soql = format!("SELECT Id, {} FROM {}", formulas.join(", "), mapping.object);
    if let Some(f) = mapping.filter {
        soql.push_str(&format!(" WHERE {f}"));
    }
    Some(soql)
}

/// The CometD channel of a mapping's change events: `/data/AccountChangeEvent`,
/// `/data/Invoice__ChangeEvent` for `Invoice__c`.
pub fn change_channel(object: &str) -> String {
    match object.strip_suffix("__c") {
        Some(stem) => format!("/data/{stem}__ChangeEvent"),
        None => format!("/data/{object}ChangeEvent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_channels_follow_salesforce_naming() {
        assert_eq!(change_channel("Account"), "/data/AccountChangeEvent");
        assert_eq!(change_channel("Invoice__c"), "/data/Invoice__ChangeEvent");
    }

    #[test]
    fn records_with_relationship_columns_are_read_by_id_through_soql() {
        let line = &crate::adapter::testing::INVOICE_LINE;
        assert!(selects_parent_fields(line));
        assert!(!selects_parent_fields(&super::super::testing::ACCOUNT));
        let filter = Filter::of(line).unwrap();
        assert_eq!(
            by_ids_query(line, &filter, &["a02A".into(), "a02B'".into()]),
            "SELECT Id, SystemModstamp, Invoice__c, Invoice__r.External_Id__c, Description__c \
             FROM Invoice_Line__c WHERE Id IN ('a02A', 'a02B')"
        );
    }

    #[test]
    fn string_literals_escape_backslashes_and_quotes() {
        assert_eq!(string_literal("O'Brien"), r"'O\'Brien'");
        assert_eq!(string_literal(r"a\b"), r"'a\\b'");
        assert_eq!(
            by_external_ids_query("Account", "Ext__c", &["A-1", "it's"]),
            r"SELECT Id, Ext__c FROM Account WHERE Ext__c IN ('A-1', 'it\'s')"
        );
    }

    #[test]
    fn reconciliation_asks_for_records_created_since_the_send_by_the_integration_user() {
        let since = chrono::DateTime::from_timestamp(1_704_164_645, 0).unwrap();
        let fields = ["Name".to_owned(), "Phone".to_owned()];
        assert_eq!(
            created_since_query("Account", &fields, since, Some("005U'")),
            r"SELECT Id, Name, Phone FROM Account WHERE CreatedDate >= 2024-01-02T03:04:05Z AND CreatedById = '005U\'' ORDER BY CreatedDate, Id"
        );
        assert_eq!(
            created_since_query("Account", &[], since, None),
            "SELECT Id FROM Account WHERE CreatedDate >= 2024-01-02T03:04:05Z ORDER BY CreatedDate, Id"
        );
    }

    #[test]
    fn datetime_literals_are_utc_with_milliseconds() {
        let at = chrono::DateTime::from_timestamp(1_704_164_645, 5_000_000)
            .unwrap()
            .naive_utc();
        assert_eq!(datetime_literal(&at), "2024-01-02T03:04:05.005Z");
    }
}
