//! Request-fault settings and their deterministic decisions: added latency on every request
//! and a share of requests answered `503 SERVER_UNAVAILABLE` or `500 UNKNOWN_EXCEPTION`, or
//! failing in transport (connection reset, hang then reset, truncated body). Which requests
//! fail is deterministic: request number `n` (counted from the moment the faults were set)
//! fails when `hash(seed, n)` falls in the configured share, so a test replaying the same
//! sequential requests sees the same failures. The middleware answering them is
//! `routes::faults`; write faults (`UNABLE_TO_LOCK_ROW`) live in the write path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
/// Paths never affected by request faults: the control plane itself.
pub const CONTROL_PREFIX: &str = "/__emulator";

/// The request-fault settings (what `GET /__emulator/faults` reports besides counters).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestFaults {
    /// Added to every API request before it is handled, milliseconds.
    pub latency_ms: u64,
    /// Share (0..=1) of API requests answered 503 SERVER_UNAVAILABLE.
    pub share_503: f64,
    /// Share (0..=1) of API requests answered 500 UNKNOWN_EXCEPTION.
    pub share_500: f64,
    /// Seed of the deterministic choice of failing requests.
    pub seed: u64,
    /// Only requests whose path starts with one of these prefixes are affected (empty = all
    /// API paths).
    pub paths: Vec<String>,
    /// Share of API requests whose connection is reset without an answer.
    #[serde(default)]
    pub share_reset: f64,
    /// Share of API requests that hang for `hang_ms`, then have their connection reset.
    #[serde(default)]
    pub share_hang: f64,
    /// Share of API requests answered with a truncated body (the handler runs).
    #[serde(default)]
    pub share_truncate: f64,
    /// How long a hanging request hangs (0: 120 s).
    #[serde(default)]
    pub hang_ms: u64,
}

/// How long a hanging request hangs when `hang_ms` is 0.
pub const DEFAULT_HANG_MS: u64 = 120_000;

impl RequestFaults {
    /// Checks shares are within 0..=1 and add up to at most 1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in self.shares() {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
        }
        let total: f64 = self.shares().iter().map(|(_, v)| v).sum();
        if total > 1.0 {
            return Err(format!(
                "share_503 + share_500 + share_reset + share_hang + share_truncate must be at most 1, got {total}"
            ));
        }
        if let Some(p) = self.paths.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("paths must start with '/', got {p:?}"));
        }
        Ok(())
    }

    /// The outcome shares, in the order they are drawn.
    fn shares(&self) -> [(&'static str, f64); 5] {
        [
            ("share_503", self.share_503),
            ("share_500", self.share_500),
            ("share_reset", self.share_reset),
            ("share_hang", self.share_hang),
            ("share_truncate", self.share_truncate),
        ]
    }

    fn applies_to(&self, path: &str) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// What a faulted request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Unavailable,
    ServerError,
    Reset,
    Hang(Duration),
    Truncate,
}

/// The org's request-fault state.
#[derive(Debug, Default)]
pub struct Faults {
    config: RwLock<RequestFaults>,
    /// Requests seen (matching `paths`) since the faults were last set.
    seq: AtomicU64,
    injected_503: AtomicU64,
    injected_500: AtomicU64,
    injected_transport: [AtomicU64; 3],
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Faults {
    /// Replaces the request faults; the deterministic request sequence restarts at 0.
    pub fn set(&self, f: RequestFaults) {
        *self.config.write() = f;
        self.seq.store(0, Ordering::Relaxed);
    }

    /// Current request-fault settings.
    pub fn get(&self) -> RequestFaults {
        self.config.read().clone()
    }

    /// Removes every request fault and zeroes the injected counters.
    pub fn clear(&self) {
        self.set(RequestFaults::default());
        self.injected_503.store(0, Ordering::Relaxed);
        self.injected_500.store(0, Ordering::Relaxed);
        for n in &self.injected_transport {
            n.store(0, Ordering::Relaxed);
        }
    }

    /// `(resets, hangs, truncations)` so far.
    pub fn injected_transport(&self) -> (u64, u64, u64) {
        let [a, b, c] = &self.injected_transport;
        (
            a.load(Ordering::Relaxed),
            b.load(Ordering::Relaxed),
            c.load(Ordering::Relaxed),
        )
    }

    /// `(503s, 500s)` answered so far.
    pub fn injected(&self) -> (u64, u64) {
        (
            self.injected_503.load(Ordering::Relaxed),
            self.injected_500.load(Ordering::Relaxed),
        )
    }

    /// Latency and outcome for one request on `path`.
    pub fn decide(&self, path: &str) -> (Duration, Outcome) {
        let c = self.config.read();
        if !c.applies_to(path) {
            return (Duration::ZERO, Outcome::Pass);
        }
        let latency = Duration::from_millis(c.latency_ms);
        if c.shares().iter().all(|(_, v)| *v <= 0.0) {
            return (latency, Outcome::Pass);
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        // 53 random bits → uniform in [0, 1).
        let u = (mix(c.seed ^ mix(n)) >> 11) as f64 / (1u64 << 53) as f64;
        let hang = Duration::from_millis(match c.hang_ms {
            0 => DEFAULT_HANG_MS,
            ms => ms,
        });
        let mut edge = 0.0;
        let mut pick = None;
        for (i, (_, share)) in c.shares().iter().enumerate() {
            edge += share;
            if u < edge {
                pick = Some(i);
                break;
            }
        }
        let outcome = match pick {
            Some(0) => {
                self.injected_503.fetch_add(1, Ordering::Relaxed);
                Outcome::Unavailable
            }
            Some(1) => {
                self.injected_500.fetch_add(1, Ordering::Relaxed);
                Outcome::ServerError
            }
            Some(k @ 2..=4) => {
                self.injected_transport[k - 2].fetch_add(1, Ordering::Relaxed);
                match k {
                    2 => Outcome::Reset,
                    3 => Outcome::Hang(hang),
                    _ => Outcome::Truncate,
                }
            }
            _ => Outcome::Pass,
        };
        (latency, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_deterministic_and_close_to_the_setting() {
        let count = |seed: u64| {
            let f = Faults::default();
            f.set(RequestFaults {
                share_503: 0.2,
                share_500: 0.1,
                seed,
                ..RequestFaults::default()
            });
            let outcomes: Vec<Outcome> = (0..10_000).map(|_| f.decide("/x").1).collect();
            (outcomes, f.injected())
        };
        let (a, (n503, n500)) = count(7);
        let (b, _) = count(7);
        let (c, _) = count(8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!((1_800..2_200).contains(&n503), "{n503}");
        assert!((850..1_150).contains(&n500), "{n500}");
    }

    #[test]
    fn paths_limit_the_faults() {
        let f = Faults::default();
        f.set(RequestFaults {
            latency_ms: 5,
            share_503: 1.0,
            paths: vec!["/services/data".into()],
            ..RequestFaults::default()
        });
        assert_eq!(
            f.decide("/services/oauth2/token"),
            (Duration::ZERO, Outcome::Pass)
        );
        assert_eq!(
            f.decide("/services/data/v59.0/limits"),
            (Duration::from_millis(5), Outcome::Unavailable)
        );
    }

    #[test]
    fn validation_rejects_bad_shares() {
        let bad = RequestFaults {
            share_503: 0.7,
            share_500: 0.6,
            ..RequestFaults::default()
        };
        assert!(bad.validate().is_err());
        let neg = RequestFaults {
            share_500: -0.1,
            ..RequestFaults::default()
        };
        assert!(neg.validate().is_err());
    }
}
