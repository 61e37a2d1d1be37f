//! Repair: formula fields. Salesforce does not bump SystemModstamp when a formula's value
//! changes, so neither change events nor polls bring it: the formula fields (only they, with the
//! Id) are read again on `formula_refresh` and stored, through REST query pages, or a Bulk API
//! 2.0 query job from the engine's bulk threshold on.
//!
//! An operation: the driver ([`super::driver`]) decides when it runs.

use super::apply;
use super::convert::{self, pg_text_from_csv};
use super::soql;
use super::{EngineError, MappingCtx};
use crate::adapter::{FieldDescriptor, MappingDescriptor};
use crate::salesforce::bulk::{PollPolicy, QueryOperation};

/// Whether a formula refresh reads through a Bulk API 2.0 query job rather than REST query pages:
/// from the engine's bulk threshold on, like a load (one job instead of a call per 2,000 rows).
/// `rows`: the table's size, which stands for the object's (no `COUNT()` call is spent).
pub fn formula_refresh_by_bulk(rows: u64, bulk_threshold: u64) -> bool {
    rows >= bulk_threshold
}

/// Formula fields do not bump SystemModstamp: re-read only them (with Id) and store them, through
/// Bulk API 2.0 for a large table ([`formula_refresh_by_bulk`]). Returns the rows refreshed.
pub async fn refresh_formulas(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let Some(soql) = soql::formula_query(mapping) else {
        return Ok(0);
    };
    let formulas: Vec<&'static FieldDescriptor> =
        mapping.fields.iter().filter(|f| f.calculated).collect();
    let mut db = ctx.connect().await?;
    let rows = table_size(&db, mapping).await?;
    let mut updated = 0;
    if formula_refresh_by_bulk(rows, ctx.config.bulk_threshold) {
        let mut job = ctx
            .client
            .bulk_query(&soql, QueryOperation::Query, None, &PollPolicy::default())
            .await?;
        while let Some(page) = job.next_page().await? {
            let rows = formula_rows_from_csv(&formulas, &page.csv)?;
            updated += store_formulas(&mut db, mapping, rows).await?;
        }
        let _ = job.delete().await;
    } else {
        let mut page = ctx.client.query(&soql).await?;
        loop {
            let rows = formula_rows_from_records(&formulas, &page.records);
            updated += store_formulas(&mut db, mapping, rows).await?;
            match page.next_records_url.take() {
                Some(next) if !page.done => page = ctx.client.query_more(&next).await?,
                _ => break,
            }
        }
    }
    ctx.states
        .record_formula_refresh(&db, mapping.object)
        .await?;
    Ok(updated)
}

/// The table's size from the planner's statistics (a count when it was never analyzed).
async fn table_size(
    db: &tokio_postgres::Client,
    mapping: &MappingDescriptor,
) -> Result<u64, EngineError> {
    let table = apply::qualified(mapping);
    let estimate: i64 = db
        .query_one(
            "SELECT coalesce((SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)), -1) AS estimate",
            &[&table],
        )
        .await?
        .get("estimate");
    let rows = if estimate >= 0 {
        estimate
    } else {
        db.query_one(&format!("SELECT count(*) AS n FROM {table}"), &[])
            .await?
            .get("n")
    };
    Ok(rows.max(0) as u64)
}

/// Formula rows from REST records (`Id` and the formula fields); records with a value that does
/// not convert are left for the next refresh.
fn formula_rows_from_records(
    formulas: &[&'static FieldDescriptor],
    records: &[serde_json::Value],
) -> Vec<apply::Row> {
    records
        .iter()
        .filter_map(|record| {
            let sfid = record.get("Id").and_then(|v| v.as_str())?;
            let cells = formulas
                .iter()
                .map(|field| {
                    let value = record
                        .get(field.sf_name)
                        .unwrap_or(&serde_json::Value::Null);
                    convert::pg_text(field, value).map(|text| (*field, text))
                })
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            Some(apply::Row {
                sfid: sfid.to_owned(),
                cells,
                stamp: None,
            })
        })
        .collect()
}

/// Formula rows from a Bulk API CSV page (header first; names match case-insensitively).
pub fn formula_rows_from_csv(
    formulas: &[&'static FieldDescriptor],
    csv: &[u8],
) -> Result<Vec<apply::Row>, EngineError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv);
    let header = reader
        .headers()
        .map_err(|e| EngineError::Config(format!("Bulk API result header: {e}")))?
        .clone();
    let position = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let id = position("Id")
        .ok_or_else(|| EngineError::Config("Bulk API result without an Id column".into()))?;
    let positions: Vec<Option<usize>> = formulas.iter().map(|f| position(f.sf_name)).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| EngineError::Config(format!("Bulk API result row: {e}")))?;
        let Some(sfid) = record.get(id).filter(|s| !s.is_empty()) else {
            continue;
        };
        let cells = formulas
            .iter()
            .zip(&positions)
            .map(|(field, p)| {
                let cell = p.and_then(|p| record.get(p)).unwrap_or("");
                pg_text_from_csv(field, cell).map(|text| (*field, text))
            })
            .collect::<Result<Vec<_>, _>>();
        if let Ok(cells) = cells {
            rows.push(apply::Row {
                sfid: sfid.to_owned(),
                cells,
                stamp: None,
            });
        }
    }
    Ok(rows)
}

/// Stores one page of formula values in its own transaction; returns the rows it found.
async fn store_formulas(
    db: &mut tokio_postgres::Client,
    mapping: &'static MappingDescriptor,
    rows: Vec<apply::Row>,
) -> Result<u64, EngineError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let sent = rows.len() as u64;
    let tx = apply::begin_engine_tx(db).await?;
    let missing = apply::update_rows(&tx, mapping, rows).await?;
    tx.commit().await?;
    Ok(sent - missing.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::{PgType, SfType};

    static TOTAL: FieldDescriptor = FieldDescriptor {
        column: "total__c",
        sf_type: SfType::Currency,
        pg_type: PgType::DoublePrecision,
        calculated: true,
        ..crate::adapter::testing::field("Total__c")
    };

    #[test]
    fn formulas_are_refreshed_through_bulk_from_the_bulk_threshold_on() {
        assert!(!formula_refresh_by_bulk(49_999, 50_000));
        assert!(formula_refresh_by_bulk(50_000, 50_000));
        assert!(formula_refresh_by_bulk(0, 0));
        assert!(!formula_refresh_by_bulk(u64::MAX - 1, u64::MAX));
    }

    #[test]
    fn a_bulk_page_of_formula_values_becomes_rows_by_id() {
        let csv = b"Id,Total__c\na01000000000001AAA,1500.5\na01000000000002AAA,\n,7\n";
        let rows = formula_rows_from_csv(&[&TOTAL], csv).unwrap();
        assert_eq!(rows.len(), 2, "a line without an Id is skipped");
        assert_eq!(rows[0].sfid, "a01000000000001AAA");
        assert_eq!(rows[0].cells[0].1.as_deref(), Some("1500.5"));
        assert_eq!(rows[1].cells[0].1, None, "an empty cell is NULL");
        assert!(rows.iter().all(|r| r.stamp.is_none()));
        // Column names are matched without regard to case, in any order.
        let csv = b"total__c,ID\n3,a01000000000003AAA\n";
        let rows = formula_rows_from_csv(&[&TOTAL], csv).unwrap();
        assert_eq!(rows[0].sfid, "a01000000000003AAA");
        assert_eq!(rows[0].cells[0].1.as_deref(), Some("3"));
    }
}
