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

/// What an operator does with failed entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Requeue them as they are (moved from the archive back to the trigger log as `NEW`); the
    /// writer sends them again.
    Retry,
    /// Mark them handled (`IGNORED`) and clear `_hc_err` on their rows.
    Ignore,
}

/// Does `action` to the failed entries of `mappings` that `selection` names, in one
/// transaction. Returns how many entries.
pub async fn act(
    db: &mut Client,
    schema: &str,
    mappings: &[&MappingDescriptor],
    selection: &Selection,
    action: Action,
) -> Result<u64, tokio_postgres::Error> {
    let store = Store::new(schema);
    let tx = db.transaction().await?;
    let n = match action {
        Action::Retry => {
            let tables: Vec<&str> = mappings.iter().map(|m| m.table).collect();
            store.requeue_failed(&tx, &tables, selection.ids()).await?
        }
        Action::Ignore => {
            let mut n = 0;
            for mapping in mappings {
                n += store.ignore_failed(&tx, mapping, selection.ids()).await?;
            }
            n
        }
    };
    tx.commit().await?;
    Ok(n)
}
