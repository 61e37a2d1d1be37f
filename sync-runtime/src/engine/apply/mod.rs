//! Applying Salesforce data to a mapped table: full records (query results, fetched records,
//! `CREATE`/`UNDELETE` events), partial changes (`UPDATE` events), deletes and undeletes.
//!
//! Turning records into rows ([`row`]: [`row_from_record`], [`row_from_event`]) and building the
//! SQL ([`write`]: [`upsert_sql`], [`update_sql`]) are pure; the `async` functions only run the
//! statements, always inside a transaction the caller opened with [`begin_engine_tx`] (`SET LOCAL
//! forcesync.engine = 'on'`: not captured by the triggers, `_hc_lastop` becomes `SYNCED`).
//! Children naming their parent by external ID follow it ([`parents`]).
//!
//! Applying is idempotent: every row carries the time of the Salesforce state it holds
//! (`systemmodstamp`), and a change older than the stored row never overwrites it, so replaying
//! events after a restart or a load, or re-reading a window twice, changes nothing.

pub mod parents;
pub mod row;
pub mod write;

use tokio_postgres::Transaction;

use crate::adapter::MappingDescriptor;

pub use parents::{children_of, follow_parent_keys, parent_keys, ChildLink};
pub use row::{
    commit_time, dedupe_newest, names_a_parent, row_from_event, row_from_record, EventChange,
    RecordError, Row,
};
pub use write::{
    delete_rows, delete_stamped, latest_stamps, remove_unmatched, update_rows, update_sql,
    upsert_rows, upsert_sql,
};

/// The mapped table, schema-qualified and quoted.
pub fn qualified(mapping: &MappingDescriptor) -> String {
    sync_schema::ident::qualified(mapping.schema, mapping.table)
}

/// Starts an engine transaction: not captured by the triggers, `_hc_lastop` becomes `SYNCED`.
pub async fn begin_engine_tx(
    client: &mut tokio_postgres::Client,
) -> Result<Transaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL forcesync.engine = 'on'")
        .await?;
    Ok(tx)
}
