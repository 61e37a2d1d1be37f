//! Slow transactions. Salesforce stamps `SystemModstamp` (and `LastModifiedDate`) when a
//! transaction starts, but its rows only become visible when it commits; a poller that
//! queried `SystemModstamp > T` in between never sees rows stamped before its next `T`. The
//! next N write requests under `/services/data` are stamped when they arrive and then wait
//! `delay_ms` before they run (the faults middleware sleeps, then runs the request with that
//! stamp in `STAMP`, which `Org::transaction` uses), while other writes go ahead. A Bulk API
//! 2.0 ingest job counts as one of them when it runs (its requests do not): all its writes
//! carry the stamp of the job's start and land after the delay (`bulk2::ingest::process`,
//! `STAMP.sync_scope` on its background thread). Bulk 1.0 batches are not slowed.
//!
//! While such a transaction runs, `/sobjects/X/updated` and `/deleted` hold
//! `latestDateCovered` back to its start (SOAP API Developer Guide, "getUpdated()" and
//! "getDeleted()", `latestDateCovered`: "If there is a long-running transaction … this value
//! is the start time of the transaction"; REST API Developer Guide, "Get Updated Records").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

tokio::task_local! {
    /// The start stamp of the slow transaction the current request runs as.
    pub static STAMP: i64;
}

/// The stamp the current request's transaction must use, if it runs as a slow one.
pub fn forced_stamp() -> Option<i64> {
    STAMP.try_with(|s| *s).ok()
}
#[derive(Debug, Default)]
pub struct SlowTransactions {
    /// Transactions still to be slowed, and by how much.
    pending: Mutex<(u32, u64)>,
    /// Start stamps (ms) of slow transactions not committed yet, by ticket.
    running: Mutex<BTreeMap<u64, i64>>,
    next_ticket: AtomicU64,
}

/// A running slow transaction; dropping it (after commit) ends it.
pub struct Running<'a> {
    owner: &'a SlowTransactions,
    ticket: u64,
    pub stamp: i64,
    pub delay: Duration,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.owner.running.lock().remove(&self.ticket);
    }
}

impl SlowTransactions {
    /// The next `count` transactions wait `delay_ms` between stamp and commit.
    pub fn set(&self, count: u32, delay_ms: u64) {
        *self.pending.lock() = (count, delay_ms);
    }

    /// `(count, delay_ms)` still pending.
    pub fn get(&self) -> (u32, u64) {
        *self.pending.lock()
    }

    pub fn clear(&self) {
        self.set(0, 0);
    }

    /// Whether a slow transaction is due.
    pub fn due(&self) -> bool {
        self.pending.lock().0 > 0
    }

    /// Starts a transaction stamped `stamp_ms`: slow (registered as running) when one is due.
    pub fn begin(&self, stamp_ms: i64) -> Option<Running<'_>> {
        let delay = {
            let mut p = self.pending.lock();
            if p.0 == 0 {
                return None;
            }
            p.0 -= 1;
            p.1
        };
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        self.running.lock().insert(ticket, stamp_ms);
        Some(Running {
            owner: self,
            ticket,
            stamp: stamp_ms,
            delay: Duration::from_millis(delay),
        })
    }

    /// The earliest start stamp of a running slow transaction.
    pub fn earliest_running(&self) -> Option<i64> {
        self.running.lock().values().copied().min()
    }
}

/// `latestDateCovered` for a window ending at `end_ms`: not past the start of a running
/// transaction, on a whole minute.
pub fn latest_covered(end_ms: i64, earliest_running: Option<i64>) -> i64 {
    let c = earliest_running.map_or(end_ms, |s| end_ms.min(s));
    c - c.rem_euclid(60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_transactions_hold_coverage_back() {
        let s = SlowTransactions::default();
        assert!(s.begin(1_000).is_none());
        s.set(1, 50);
        let t = s.begin(120_500).expect("slow");
        assert_eq!(t.delay, Duration::from_millis(50));
        assert!(s.begin(130_000).is_none());
        assert_eq!(s.earliest_running(), Some(120_500));
        assert_eq!(latest_covered(600_000, s.earliest_running()), 120_000);
        drop(t);
        assert_eq!(s.earliest_running(), None);
        assert_eq!(latest_covered(600_000, None), 600_000);
    }
}
