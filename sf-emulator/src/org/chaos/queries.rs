//! Query faults: the next N queries fail with `QUERY_TIMEOUT` (REST API Developer Guide,
//! "Status Codes and Error Responses"; SOAP API Developer Guide, "ExceptionCode":
//! `QUERY_TIMEOUT` — the query took too long), the next N `nextRecordsUrl` fetches fail with
//! `INVALID_QUERY_LOCATOR` (the cursor is gone, as after its 15 idle minutes or when a user
//! has too many open), and short pages (Salesforce may return fewer rows per page than the
//! `batchSize` asked for: REST API Developer Guide, "Query Options Header" — "the batch size
//! is not guaranteed").

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use axum::http::StatusCode;

use crate::data::error::ApiError;

#[derive(Debug, Default)]
pub struct QueryFaults {
    timeouts: AtomicU32,
    lost_locators: AtomicU32,
    /// Rows per page at most (0: no limit).
    page_size: AtomicUsize,
}

fn take(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

impl QueryFaults {
    pub fn set_timeouts(&self, n: u32) {
        self.timeouts.store(n, Ordering::Relaxed);
    }

    pub fn set_lost_locators(&self, n: u32) {
        self.lost_locators.store(n, Ordering::Relaxed);
    }

    pub fn set_page_size(&self, n: usize) {
        self.page_size.store(n, Ordering::Relaxed);
    }

    /// `(query_timeout, invalid_query_locator, query_page_size)` still set.
    pub fn get(&self) -> (u32, u32, usize) {
        (
            self.timeouts.load(Ordering::Relaxed),
            self.lost_locators.load(Ordering::Relaxed),
            self.page_size.load(Ordering::Relaxed),
        )
    }

    pub fn clear(&self) {
        self.set_timeouts(0);
        self.set_lost_locators(0);
        self.set_page_size(0);
    }

    /// The error of a query that should time out now.
    pub fn timeout(&self) -> Result<(), ApiError> {
        if take(&self.timeouts) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "QUERY_TIMEOUT",
                "Your query request was running for too long.",
            ));
        }
        Ok(())
    }

    /// Whether this `nextRecordsUrl` fetch should find its cursor gone.
    pub fn lose_locator(&self) -> bool {
        take(&self.lost_locators)
    }

    /// The page size to use instead of `batch`.
    pub fn page(&self, batch: usize) -> usize {
        match self.page_size.load(Ordering::Relaxed) {
            0 => batch,
            n => batch.min(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_run_down_and_pages_shrink() {
        let q = QueryFaults::default();
        q.set_timeouts(1);
        assert_eq!(q.timeout().unwrap_err().code(), "QUERY_TIMEOUT");
        assert!(q.timeout().is_ok());
        assert!(!q.lose_locator());
        q.set_lost_locators(1);
        assert!(q.lose_locator());
        assert!(!q.lose_locator());
        assert_eq!(q.page(2000), 2000);
        q.set_page_size(7);
        assert_eq!(q.page(2000), 7);
    }
}
