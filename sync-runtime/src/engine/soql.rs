//! The SOQL the read side sends (pure): the select list of a mapping, the initial-load query, the
//! polling window query, and SOQL datetime literals.

use chrono::NaiveDateTime;

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
        format!("(SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND Id > '{id}'))")
    };
    format!(
        "SELECT {} FROM {} WHERE {condition} ORDER BY SystemModstamp, Id LIMIT {limit}",
        select_list(mapping, filter).join(", "),
        mapping.object
    )
}

/// Records by Id, every mapped field (relationship paths included, which sObject Collections
/// retrieve does not take): one query per call, `ids` at most a few hundred.
pub fn by_ids_query(mapping: &MappingDescriptor, filter: &Filter, ids: &[String]) -> String {
    let ids: Vec<String> = ids
        .iter()
        .map(|id| format!("'{}'", id.replace(['\\', '\''], "")))
        .collect();
    format!(
        "SELECT {} FROM {} WHERE Id IN ({})",
        select_list(mapping, filter).join(", "),
        mapping.object,
        ids.join(", ")
    )
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
        let line = &super::super::testing::INVOICE_LINE;
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
    fn datetime_literals_are_utc_with_milliseconds() {
        let at = chrono::DateTime::from_timestamp(1_704_164_645, 5_000_000)
            .unwrap()
            .naive_utc();
        assert_eq!(datetime_literal(&at), "2024-01-02T03:04:05.005Z");
    }
}
