//! Children that name their parent by an external ID (a relationship column such as
//! `invoice_line__c.invoice__r__external_id__c`): found from the registry (pure), and kept
//! following when the parent's external ID changes (Salesforce sends the child no event then).

use std::collections::HashMap;

use tokio_postgres::Transaction;

use super::qualified;
use crate::adapter::MappingDescriptor;
use crate::engine::system::quote_ident;

/// A child mapping's relationship column that names this mapping's records by external ID
/// (`invoice_line__c.invoice__r__external_id__c` names `invoice__c.external_id__c`), with the
/// lookup column that holds the parent's `sfid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildLink {
    /// The child table, qualified and quoted.
    pub table: String,
    /// The child's lookup column (the parent's `sfid`), quoted.
    pub lookup: String,
    /// The child's relationship column, quoted.
    pub relationship: String,
    /// The parent's external ID column, quoted.
    pub parent_column: String,
    /// The parent's external ID field (Salesforce name), to spot it in `changedFields`.
    pub parent_field: &'static str,
}

/// The relationship columns of `mappings` that name records of `parent` by an external ID
/// `parent` maps, and whose lookup the child maps too (pure).
pub fn children_of(mappings: &[&MappingDescriptor], parent: &MappingDescriptor) -> Vec<ChildLink> {
    let mut links = Vec::new();
    for child in mappings {
        for field in child.fields {
            let (Some(r), [object]) = (field.relationship, field.reference_to) else {
                continue;
            };
            if !object.eq_ignore_ascii_case(parent.object) {
                continue;
            }
            let (Some(key), Some(lookup)) = (parent.field(r.field), child.field(r.lookup)) else {
                continue;
            };
            links.push(ChildLink {
                table: qualified(child),
                lookup: quote_ident(lookup.column),
                relationship: quote_ident(field.column),
                parent_column: quote_ident(key.column),
                parent_field: key.sf_name,
            });
        }
    }
    links
}

/// The external ID values children name these parents by, per `sfid`, as one text each (to
/// spot a key that changed: read before and after applying).
pub async fn parent_keys(
    tx: &Transaction<'_>,
    parent: &MappingDescriptor,
    children: &[ChildLink],
    sfids: &[String],
) -> Result<HashMap<String, String>, tokio_postgres::Error> {
    let mut columns: Vec<&str> = children.iter().map(|c| c.parent_column.as_str()).collect();
    columns.sort_unstable();
    columns.dedup();
    if columns.is_empty() || sfids.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<String> = columns
        .iter()
        .map(|c| format!("coalesce({c}::text, E'\\x1e')"))
        .collect();
    Ok(tx
        .query(
            &format!(
                "SELECT sfid, concat_ws(E'\\x1f', {}) AS keys FROM {} WHERE sfid = ANY($1)",
                keys.join(", "),
                qualified(parent)
            ),
            &[&sfids],
        )
        .await?
        .iter()
        .map(|r| (r.get("sfid"), r.get("keys")))
        .collect())
}

/// After parents changed: children pointing at them (by lookup) take their current external ID
/// into the relationship column. Salesforce sends no change event for a child when its
/// parent's external ID changes, and the child's link in Salesforce is by Id, so this is an
/// engine write (not sent back). Returns the child rows changed.
pub async fn follow_parent_keys(
    tx: &Transaction<'_>,
    parent: &MappingDescriptor,
    children: &[ChildLink],
    sfids: &[String],
) -> Result<u64, tokio_postgres::Error> {
    let mut changed = 0;
    if sfids.is_empty() {
        return Ok(0);
    }
    for link in children {
        changed += tx
            .execute(
                &format!(
                    "UPDATE {child} c SET {rel} = p.{key}::text FROM {parent} p \
                     WHERE p.sfid = ANY($1) AND c.{lookup} = p.sfid \
                       AND c.{rel} IS DISTINCT FROM p.{key}::text",
                    child = link.table,
                    rel = link.relationship,
                    key = link.parent_column,
                    parent = qualified(parent),
                    lookup = link.lookup,
                ),
                &[&sfids],
            )
            .await?;
    }
    Ok(changed)
}
