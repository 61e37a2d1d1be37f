//! Operator actions on failed writes (the CLI's `retry` and `ignore`): requeue failed entries as
//! they were, or mark them handled.

use tokio_postgres::Client;

use crate::adapter::MappingDescriptor;

use super::store::Store;

/// Which failed entries an action applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every failed entry of the given mappings.
    All,
    /// These trigger-log ids (among the given mappings).
    Entries(Vec<i32>),
}

impl Selection {
    fn ids(&self) -> Option<&[i32]> {
        match self {
            Selection::All => None,
            Selection::Entries(ids) => Some(ids),
        }
    }
}

/// Requeues failed entries of `mappings` as they are (moved from the archive back to the
/// trigger log as `NEW`); the writer sends them again. Returns how many.
pub async fn retry(
    db: &mut Client,
    schema: &str,
    mappings: &[&MappingDescriptor],
    selection: &Selection,
) -> Result<u64, tokio_postgres::Error> {
    let store = Store::new(schema);
    let tables: Vec<&str> = mappings.iter().map(|m| m.table).collect();
    let tx = db.transaction().await?;
    let n = store.requeue_failed(&tx, &tables, selection.ids()).await?;
    tx.commit().await?;
    Ok(n)
}

/// Marks failed entries of `mappings` handled (`IGNORED`) and clears `_hc_err` on their rows.
/// Returns how many entries.
pub async fn ignore(
    db: &mut Client,
    schema: &str,
    mappings: &[&MappingDescriptor],
    selection: &Selection,
) -> Result<u64, tokio_postgres::Error> {
    let store = Store::new(schema);
    let tx = db.transaction().await?;
    let mut n = 0;
    for mapping in mappings {
        n += store.ignore_failed(&tx, mapping, selection.ids()).await?;
    }
    tx.commit().await?;
    Ok(n)
}
