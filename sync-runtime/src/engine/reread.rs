//! Repair: the records the read side could not apply earlier ([`super::read_errors`]) read again
//! (for example after the migration that widened a column); those that now apply are marked
//! resolved, those that fail again are superseded by their new error rows.
//!
//! An operation: the driver ([`super::driver`]) decides when it runs.

use super::apply;
use super::ingest;
use super::read_errors::{self, Closed};
use super::{EngineError, MappingCtx};

/// Which of the `open` errors (`(id, sfid)`) are resolved and which superseded, given the records
/// that failed again (pure).
pub fn settle(open: &[(i64, String)], failed_again: &[String]) -> (Vec<i64>, Vec<i64>) {
    open.iter()
        .map(|(id, sfid)| (*id, failed_again.contains(sfid)))
        .fold(
            (Vec::new(), Vec::new()),
            |(mut resolved, mut again), (id, failed)| {
                if failed {
                    again.push(id);
                } else {
                    resolved.push(id);
                }
                (resolved, again)
            },
        )
}

/// Re-reads the records of the mapping's open read errors; returns how many errors it resolved.
pub async fn retry_read_errors(ctx: &MappingCtx) -> Result<u64, EngineError> {
    let mapping = ctx.mapping;
    let mut db = ctx.connect().await?;
    let open = read_errors::open(&db, mapping).await?;
    if open.is_empty() {
        return Ok(0);
    }
    let mut sfids: Vec<String> = open.iter().map(|(_, s)| s.clone()).collect();
    sfids.sort();
    sfids.dedup();
    let tx = apply::begin_engine_tx(&mut db).await?;
    let before = read_errors::last_id(&tx, mapping).await?;
    ingest::refetch(ctx, &tx, &sfids, true).await?;
    // Records that failed again have a new error row.
    let failed_again = read_errors::failed_after(&tx, mapping, before, &sfids).await?;
    let (resolved, superseded) = settle(&open, &failed_again);
    read_errors::close(&tx, mapping, &resolved, Closed::Resolved).await?;
    read_errors::close(&tx, mapping, &superseded, Closed::Superseded).await?;
    tx.commit().await?;
    Ok(resolved.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_of_records_that_failed_again_are_superseded_the_rest_resolved() {
        let open = vec![
            (1, "001A".to_owned()),
            (2, "001B".to_owned()),
            (3, "001A".to_owned()),
        ];
        let (resolved, superseded) = settle(&open, &["001A".to_owned()]);
        assert_eq!(resolved, [2]);
        assert_eq!(superseded, [1, 3]);
        assert_eq!(settle(&open, &[]).0, [1, 2, 3]);
    }
}
