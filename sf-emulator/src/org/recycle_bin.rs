//! The recycle bin's retention: deleted records stay undeletable (and visible to `queryAll`)
//! for 15 days, then Salesforce purges them (Salesforce Help, "Manage the Recycle Bin" /
//! "Recycle Bin": "Items remain in the Recycle Bin for 15 days"; SOAP API Developer Guide,
//! "undelete()"). A purged record is gone from `queryAll` and can no longer be undeleted, but
//! `/sobjects/X/deleted` (and `getDeleted()`) still lists it by its deletion time within its
//! own 15-day window. Purging is lazy: it runs when something could see the difference
//! (`queryAll`, `/deleted`, undelete, advancing the clock) and on demand from the control
//! plane.

use crate::data::ids::SfId;
use crate::org::Org;

/// How long a deleted record stays in the recycle bin.
pub const RETENTION_MS: i64 = 15 * 86_400_000;

/// Purges recycle-bin rows deleted before `before_ms` (all of them with `None`), or only
/// those among `only`; answers how many were purged.
pub fn purge(org: &Org, before_ms: Option<i64>, only: Option<&[SfId]>) -> usize {
    let due: Vec<Vec<(SfId, i64)>> = {
        let st = org.read();
        st.tables
            .iter()
            .map(|t| {
                let mut v: Vec<(SfId, i64)> = t.bin_before(before_ms).collect();
                if let Some(ids) = only {
                    v.retain(|(id, _)| ids.contains(id));
                }
                v
            })
            .collect()
    };
    if due.iter().all(Vec::is_empty) {
        return 0;
    }
    let mut st = org.store_mut();
    let mut n = 0;
    for (i, rows) in due.into_iter().enumerate() {
        let t = st.table_mut(i);
        for (id, at) in rows {
            // Still in the bin (not undeleted or purged since the read)?
            if t.get(&id).is_some_and(|r| t.is_deleted(r)) {
                t.remove(&id);
                t.log_purge(id, at);
                n += 1;
            }
        }
    }
    n
}

/// Purges what has been in the recycle bin for 15 days of emulated time.
pub fn purge_expired(org: &Org) -> usize {
    purge(org, Some(org.now_ms() - RETENTION_MS), None)
}
