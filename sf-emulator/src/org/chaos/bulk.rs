//! Bulk job faults (Bulk API 2.0 jobs and Bulk API 1.0 batches): the next N jobs fail
//! (`Failed` with an error message, as when Salesforce gives up on a job: Bulk API 2.0 and
//! Bulk API Developer Guide, "Job States"), jobs stay `InProgress` for a while before they
//! are processed, and every job created so far expires (Salesforce deletes jobs and their
//! results some days after they finish: "Bulk API 2.0 Limits" — afterwards the job is
//! `404 NOT_FOUND` / `InvalidJob`).

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// The failure message of a faulted job.
pub const FAILED_MESSAGE: &str =
    "InternalServerError : Failed to process query: an unexpected error occurred";

#[derive(Debug, Default)]
pub struct BulkFaults {
    fail_next: AtomicU32,
    slow_ms: AtomicU64,
    /// Jobs created before this emulated time (ms) are gone.
    expired_before_ms: AtomicI64,
}

impl BulkFaults {
    pub fn set_fail_next(&self, n: u32) {
        self.fail_next.store(n, Ordering::Relaxed);
    }

    pub fn set_slow_ms(&self, ms: u64) {
        self.slow_ms.store(ms, Ordering::Relaxed);
    }

    /// Every job created at or before `now_ms` is gone.
    pub fn expire_until(&self, now_ms: i64) {
        self.expired_before_ms
            .fetch_max(now_ms + 1, Ordering::Relaxed);
    }

    /// `(bulk_fail_next, bulk_slow_ms)`.
    pub fn get(&self) -> (u32, u64) {
        (
            self.fail_next.load(Ordering::Relaxed),
            self.slow_ms.load(Ordering::Relaxed),
        )
    }

    /// Stops failing and slowing jobs (expired jobs stay gone).
    pub fn clear(&self) {
        self.set_fail_next(0);
        self.set_slow_ms(0);
    }

    /// Whether the job being processed now should fail.
    pub fn take_failure(&self) -> bool {
        self.fail_next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// How long a job waits `InProgress` before it is processed.
    pub fn delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.slow_ms.load(Ordering::Relaxed))
    }

    /// Whether a job created at `created_ms` has expired.
    pub fn expired(&self, created_ms: i64) -> bool {
        created_ms < self.expired_before_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_run_down_and_expiry_covers_older_jobs() {
        let b = BulkFaults::default();
        b.set_fail_next(1);
        assert!(b.take_failure());
        assert!(!b.take_failure());
        assert!(!b.expired(1000));
        b.expire_until(1000);
        assert!(b.expired(1000));
        assert!(!b.expired(1001));
    }
}
