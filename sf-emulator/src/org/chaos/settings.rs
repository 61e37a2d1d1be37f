//! The chaos-test keys of `POST /__emulator/faults` (documented in the crate's README): they
//! are taken out of the body before the request-fault keys are read, applied, and reported
//! by `GET /__emulator/faults`.

use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::locks::LockTarget;
use super::writes::AmbiguousSettings;
use crate::org::Org;

/// The keys this module owns.
const KEYS: &[&str] = &[
    "share_reset",
    "share_hang",
    "share_truncate",
    "hang_ms",
    "ambiguous_writes",
    "query_timeout",
    "invalid_query_locator",
    "query_page_size",
    "bulk_fail_next",
    "bulk_slow_ms",
    "bulk_expire_jobs",
    "lock_rows",
    "slow_transactions",
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ChaosReq {
    share_reset: Option<f64>,
    share_hang: Option<f64>,
    share_truncate: Option<f64>,
    hang_ms: Option<u64>,
    ambiguous_writes: Option<AmbiguousSettings>,
    query_timeout: Option<u32>,
    invalid_query_locator: Option<u32>,
    query_page_size: Option<usize>,
    bulk_fail_next: Option<u32>,
    bulk_slow_ms: Option<u64>,
    #[serde(default)]
    bulk_expire_jobs: bool,
    lock_rows: Option<Vec<LockTarget>>,
    slow_transactions: Option<SlowReq>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowReq {
    #[serde(default = "one")]
    count: u32,
    delay_ms: u64,
}

fn one() -> u32 {
    1
}

/// Longest hang or delay accepted (10 minutes).
const MAX_MS: u64 = 600_000;

/// Splits a faults body into (the other keys, as JSON bytes; this module's request). Bodies
/// that are not JSON objects are passed on untouched for the caller to reject.
pub fn split(bytes: &[u8]) -> Result<(Option<Vec<u8>>, ChaosReq), String> {
    let Ok(Json::Object(mut m)) = serde_json::from_slice::<Json>(bytes) else {
        return Ok((None, ChaosReq::default()));
    };
    let mut mine = Map::new();
    for k in KEYS {
        if let Some(v) = m.remove(*k) {
            mine.insert(k.to_string(), v);
        }
    }
    if mine.is_empty() {
        return Ok((None, ChaosReq::default()));
    }
    let req: ChaosReq = serde_json::from_value(Json::Object(mine)).map_err(|e| e.to_string())?;
    Ok((Some(Json::Object(m).to_string().into_bytes()), req))
}

impl ChaosReq {
    /// Checks and applies the settings given.
    pub fn apply(self, org: &Org) -> Result<(), String> {
        if self.hang_ms.is_some_and(|h| h > MAX_MS)
            || self.bulk_slow_ms.is_some_and(|h| h > MAX_MS)
            || self
                .slow_transactions
                .as_ref()
                .is_some_and(|s| s.delay_ms > MAX_MS)
        {
            return Err(format!("hang_ms, bulk_slow_ms and slow_transactions.delay_ms must be at most {MAX_MS} (10 minutes)"));
        }
        if self.share_reset.is_some()
            || self.share_hang.is_some()
            || self.share_truncate.is_some()
            || self.hang_ms.is_some()
        {
            let mut f = org.faults().get();
            f.share_reset = self.share_reset.unwrap_or(f.share_reset);
            f.share_hang = self.share_hang.unwrap_or(f.share_hang);
            f.share_truncate = self.share_truncate.unwrap_or(f.share_truncate);
            f.hang_ms = self.hang_ms.unwrap_or(f.hang_ms);
            f.validate()?;
            org.faults().set(f);
        }
        if let Some(targets) = &self.lock_rows {
            if let Some(t) = targets
                .iter()
                .find(|t| (t.object.is_some()) == (t.id.is_some()))
            {
                return Err(format!(
                    "a lock_rows target names exactly one of \"object\" and \"id\", got {}",
                    json!(t)
                ));
            }
        }
        let c = org.chaos();
        if let Some(a) = self.ambiguous_writes {
            if let Some(p) = a.paths.iter().find(|p| !p.starts_with('/')) {
                return Err(format!(
                    "ambiguous_writes.paths must start with '/', got {p:?}"
                ));
            }
            c.writes.set(a);
        }
        if let Some(n) = self.query_timeout {
            c.queries.set_timeouts(n);
        }
        if let Some(n) = self.invalid_query_locator {
            c.queries.set_lost_locators(n);
        }
        if let Some(n) = self.query_page_size {
            c.queries.set_page_size(n);
        }
        if let Some(n) = self.bulk_fail_next {
            c.bulk.set_fail_next(n);
        }
        if let Some(ms) = self.bulk_slow_ms {
            c.bulk.set_slow_ms(ms);
        }
        if self.bulk_expire_jobs {
            c.bulk.expire_until(org.now_ms());
        }
        for t in self.lock_rows.into_iter().flatten() {
            c.locks.add(t)?;
        }
        if let Some(s) = self.slow_transactions {
            c.slow.set(s.count, s.delay_ms);
        }
        Ok(())
    }
}

/// What `GET /__emulator/faults` reports of these settings.
pub fn report(org: &Org) -> Map<String, Json> {
    let f = org.faults().get();
    let c = org.chaos();
    let (timeouts, locators, page) = c.queries.get();
    let (fail, slow) = c.bulk.get();
    let (slow_n, slow_ms) = c.slow.get();
    let (resets, hangs, truncs) = org.faults().injected_transport();
    let v = json!({
        "share_reset": f.share_reset,
        "share_hang": f.share_hang,
        "share_truncate": f.share_truncate,
        "hang_ms": f.hang_ms,
        "ambiguous_writes": c.writes.get(),
        "query_timeout": timeouts,
        "invalid_query_locator": locators,
        "query_page_size": page,
        "bulk_fail_next": fail,
        "bulk_slow_ms": slow,
        "lock_rows": c.locks.list(),
        "slow_transactions": {"count": slow_n, "delay_ms": slow_ms},
        "injected_transport": {"reset": resets, "hang": hangs, "truncate": truncs},
    });
    match v {
        Json::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_takes_only_its_keys() {
        let (rest, req) =
            split(br#"{"latency_ms":5,"query_timeout":2,"bulk_expire_jobs":true}"#).expect("valid");
        let rest: Json = serde_json::from_slice(&rest.expect("rest")).unwrap();
        assert_eq!(rest, json!({"latency_ms": 5}));
        assert_eq!(req.query_timeout, Some(2));
        assert!(req.bulk_expire_jobs);
        assert!(split(br#"{"latency_ms":5}"#).unwrap().0.is_none());
        assert!(split(br#"{"query_timeout":"x"}"#).is_err());
    }
}
