//! The read side's recent activity, kept in memory for the status page: the last changes applied
//! per mapping (record Id, fields, latency), how many arrived in each of the last 60 minutes, and
//! the latencies of the last five minutes (for p50/p99).
//!
//! Bounded (a fixed number of entries per mapping), process-wide ([`global`]), and pure apart
//! from the lock: every method takes `now`. The write side keeps its counts and latencies here
//! too ([`sent`]: entries written per minute, capture → archived latency), so that the status
//! page never scans the trigger-log archive of a busy writer; its history of records is the
//! archive itself.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Utc};

/// The last changes kept per mapping.
pub const RECENT: usize = 200;
/// The latency samples kept per mapping (the most recent, within [`LAG_WINDOW_SECONDS`]).
pub const LAG_SAMPLES: usize = 5_000;
/// The window of the lag percentiles.
pub const LAG_WINDOW_SECONDS: i64 = 300;

/// One change applied from Salesforce to Postgres.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// When it was applied.
    pub at: DateTime<Utc>,
    /// `CREATE`, `UPDATE`, `DELETE`, … (or `POLL` for a record read by polling).
    pub kind: String,
    pub sfid: String,
    /// The fields the change named (empty when Salesforce does not say: creates, polls).
    pub fields: Vec<String>,
    /// Milliseconds between the Salesforce commit and the Postgres commit, when known.
    pub latency_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct MappingActivity {
    recent: VecDeque<Change>,
    /// (minute since the epoch, changes in it), oldest first, at most 60.
    minutes: VecDeque<(i64, u64)>,
    /// (when, latency ms), oldest first.
    lags: VecDeque<(DateTime<Utc>, i64)>,
}

impl MappingActivity {
    /// Counts `n` changes in the minute of `now`, keeping the last 60 minutes.
    fn count(&mut self, n: u64, now: DateTime<Utc>) {
        let minute = now.timestamp().div_euclid(60);
        match self.minutes.back_mut() {
            Some((m, count)) if *m == minute => *count += n,
            _ => self.minutes.push_back((minute, n)),
        }
        while self.minutes.front().is_some_and(|(m, _)| *m <= minute - 60) {
            self.minutes.pop_front();
        }
    }
}

/// Every mapping's recent activity.
#[derive(Debug, Default)]
pub struct Activity {
    mappings: BTreeMap<String, MappingActivity>,
}

/// p50 and p99 of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub samples: usize,
}

/// The nearest-rank percentile `p` (0–100) of `sorted` (ascending, not empty).
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50/p99 of `values` (any order); `None` when empty.
pub fn lag_of(mut values: Vec<i64>) -> Option<Lag> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(Lag {
        p50_ms: percentile(&values, 50.0),
        p99_ms: percentile(&values, 99.0),
        samples: values.len(),
    })
}

impl Activity {
    /// Records changes of `mapping` applied at `now`.
    pub fn record(&mut self, mapping: &str, changes: Vec<Change>, now: DateTime<Utc>) {
        if changes.is_empty() {
            return;
        }
        let entry = self.mappings.entry(mapping.to_owned()).or_default();
        entry.count(changes.len() as u64, now);
        for change in changes {
            if let Some(ms) = change.latency_ms {
                entry.lags.push_back((change.at, ms));
            }
            entry.recent.push_back(change);
        }
        while entry.recent.len() > RECENT {
            entry.recent.pop_front();
        }
        while entry.lags.len() > LAG_SAMPLES {
            entry.lags.pop_front();
        }
    }

    /// Records latencies (ms) of `mapping`'s entries written at `now`, one a change, without
    /// keeping the changes themselves (the write side's records are in the trigger-log archive).
    pub fn record_latencies(&mut self, mapping: &str, latencies: &[i64], now: DateTime<Utc>) {
        if latencies.is_empty() {
            return;
        }
        let entry = self.mappings.entry(mapping.to_owned()).or_default();
        entry.count(latencies.len() as u64, now);
        // The newest samples count: a batch larger than the window keeps its last ones.
        let skip = latencies.len().saturating_sub(LAG_SAMPLES);
        entry
            .lags
            .extend(latencies[skip..].iter().map(|ms| (now, *ms)));
        while entry.lags.len() > LAG_SAMPLES {
            entry.lags.pop_front();
        }
    }

    /// The last changes of `mapping`, newest first.
    pub fn recent(&self, mapping: &str) -> Vec<Change> {
        self.mappings
            .get(mapping)
            .map(|a| a.recent.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Changes of `mapping` applied in the 60 minutes before `now`.
    pub fn last_hour(&self, mapping: &str, now: DateTime<Utc>) -> u64 {
        let minute = now.timestamp().div_euclid(60);
        self.mappings.get(mapping).map_or(0, |a| {
            a.minutes
                .iter()
                .filter(|(m, _)| *m > minute - 60)
                .map(|(_, n)| n)
                .sum()
        })
    }

    /// p50/p99 latency of `mapping`'s changes applied in the five minutes before `now`.
    pub fn lag(&self, mapping: &str, now: DateTime<Utc>) -> Option<Lag> {
        let since = now - chrono::Duration::seconds(LAG_WINDOW_SECONDS);
        let a = self.mappings.get(mapping)?;
        lag_of(
            a.lags
                .iter()
                .filter(|(at, _)| *at > since)
                .map(|(_, ms)| *ms)
                .collect(),
        )
    }
}

static ACTIVITY: LazyLock<Mutex<Activity>> = LazyLock::new(Mutex::default);
static SENT: LazyLock<Mutex<Activity>> = LazyLock::new(Mutex::default);

/// This process's write side: entries written to Salesforce per minute and their latency from
/// capture to archive.
pub fn sent() -> &'static Mutex<Activity> {
    &SENT
}

/// Records the latencies (ms) of `mapping`'s entries just written to Salesforce.
pub fn record_sent(mapping: &str, latencies: &[i64]) {
    if let Ok(mut sent) = SENT.lock() {
        sent.record_latencies(mapping, latencies, Utc::now());
    }
}

/// This process's activity.
pub fn global() -> &'static Mutex<Activity> {
    &ACTIVITY
}

/// Records changes of `mapping` applied now, in this process's activity.
pub fn record(mapping: &str, changes: Vec<Change>) {
    if let Ok(mut activity) = ACTIVITY.lock() {
        activity.record(mapping, changes, Utc::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn change(seconds: i64, sfid: &str, latency_ms: Option<i64>) -> Change {
        Change {
            at: at(seconds),
            kind: "UPDATE".into(),
            sfid: sfid.into(),
            fields: vec!["Name".into()],
            latency_ms,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        let lag = lag_of(vec![30, 10, 20]).unwrap();
        assert_eq!((lag.p50_ms, lag.p99_ms, lag.samples), (20, 30, 3));
        assert_eq!(lag_of(Vec::new()), None);
    }

    #[test]
    fn the_write_side_counts_entries_and_keeps_their_latencies_without_records() {
        let mut a = Activity::default();
        a.record_latencies("Account", &[5, 7, 9], at(0));
        a.record_latencies("Account", &[], at(1));
        let many: Vec<i64> = (0..(LAG_SAMPLES as i64 + 100)).collect();
        a.record_latencies("Contact", &many, at(2));
        assert_eq!(a.last_hour("Account", at(10)), 3);
        let lag = a.lag("Account", at(10)).unwrap();
        assert_eq!((lag.p50_ms, lag.p99_ms, lag.samples), (7, 9, 3));
        assert!(a.recent("Account").is_empty());
        assert_eq!(a.last_hour("Contact", at(10)), LAG_SAMPLES as u64 + 100);
        let lag = a.lag("Contact", at(10)).unwrap();
        assert_eq!(lag.samples, LAG_SAMPLES);
        assert_eq!(lag.p50_ms, 100 + LAG_SAMPLES as i64 / 2 - 1);
        // Five minutes later the latencies are out of the window; the hour still counts.
        assert_eq!(a.lag("Account", at(400)), None);
        assert_eq!(a.last_hour("Account", at(400)), 3);
    }

    #[test]
    fn recent_changes_are_newest_first_and_bounded() {
        let mut a = Activity::default();
        for i in 0..(RECENT as i64 + 10) {
            a.record("Account", vec![change(i, &format!("001{i}"), None)], at(i));
        }
        let recent = a.recent("Account");
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].sfid, format!("001{}", RECENT + 9));
        assert!(a.recent("Contact").is_empty());
    }

    #[test]
    fn the_last_hour_forgets_older_minutes() {
        let mut a = Activity::default();
        a.record("Account", vec![change(0, "a", None); 3], at(0));
        a.record("Account", vec![change(600, "b", None); 2], at(600));
        assert_eq!(a.last_hour("Account", at(700)), 5);
        assert_eq!(a.last_hour("Account", at(3_650)), 2);
        assert_eq!(a.last_hour("Account", at(4_300)), 0);
    }

    #[test]
    fn the_lag_covers_the_last_five_minutes_only() {
        let mut a = Activity::default();
        a.record("Account", vec![change(0, "old", Some(5_000))], at(0));
        a.record(
            "Account",
            vec![change(400, "a", Some(40)), change(400, "b", Some(60))],
            at(400),
        );
        let lag = a.lag("Account", at(500)).unwrap();
        assert_eq!((lag.p50_ms, lag.p99_ms, lag.samples), (40, 60, 2));
        assert_eq!(a.lag("Account", at(1_000)), None);
    }
}
