//! The rolling 24-hour window behind `DailyApiRequests` and `Sforce-Limit-Info`.
//!
//! Salesforce counts API requests over the last 24 hours, not per calendar day: "Salesforce
//! Developer Limits and Allocations Quick Reference", section "API Request Limits and
//! Allocations" ("the total number of API requests … in a rolling 24-hour period"), and the
//! REST API Developer Guide, "Limit Info Header" (`api-usage=<used>/<max>`, the requests made
//! in that window). Requests are kept as per-minute counts of emulated time, so a request
//! leaves the count 24 hours (to the minute) after it was made.

use std::collections::VecDeque;

/// Length of the window, ms.
pub const WINDOW_MS: i64 = 24 * 3_600_000;
const BUCKET_MS: i64 = 60_000;

/// Requests per emulated minute over the last 24 hours.
#[derive(Debug, Default)]
pub struct ApiWindow {
    buckets: VecDeque<(i64, u64)>,
    total: u64,
}

impl ApiWindow {
    /// Drops the minutes that left the window ending at `now_ms`.
    fn evict(&mut self, now_ms: i64) {
        let oldest = (now_ms - WINDOW_MS).div_euclid(BUCKET_MS);
        while let Some(&(m, n)) = self.buckets.front() {
            if m > oldest {
                break;
            }
            self.total -= n;
            self.buckets.pop_front();
        }
    }

    /// Requests made in the 24 hours before `now_ms`.
    pub fn used(&mut self, now_ms: i64) -> u64 {
        self.evict(now_ms);
        self.total
    }

    /// Counts one request at `now_ms`; answers the new total.
    pub fn add(&mut self, now_ms: i64) -> u64 {
        self.evict(now_ms);
        let m = now_ms.div_euclid(BUCKET_MS);
        match self.buckets.back_mut() {
            Some((last, n)) if *last >= m => *n += 1,
            _ => self.buckets.push_back((m, 1)),
        }
        self.total += 1;
        self.total
    }

    /// Forgets every request.
    pub fn clear(&mut self) {
        self.buckets.clear();
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_leave_the_count_24_hours_later() {
        let mut w = ApiWindow::default();
        let t0 = 1_700_000_000_000;
        w.add(t0);
        w.add(t0 + 1000);
        w.add(t0 + 12 * 3_600_000);
        assert_eq!(w.used(t0 + 23 * 3_600_000), 3);
        // The first two minutes' requests have left; the noon one stays.
        assert_eq!(w.used(t0 + WINDOW_MS + BUCKET_MS), 1);
        assert_eq!(w.used(t0 + 12 * 3_600_000 + WINDOW_MS + BUCKET_MS), 0);
        assert_eq!(w.add(t0 + 2 * WINDOW_MS), 1);
    }
}
