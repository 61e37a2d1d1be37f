//! `GET /limits`: the org's allocations and what is left of them (REST API Developer Guide,
//! "Limits"). The engine watches the streaming ones ([`CONCURRENT_CLIENTS`],
//! [`DAILY_DELIVERIES`]) so that it knows about an exhausted allocation before streaming fails.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{CallKind, Client, SfError};

/// Concurrent durable streaming (CometD) clients of the org.
pub const CONCURRENT_CLIENTS: &str = "DurableStreamingApiConcurrentClients";
/// Change Data Capture and platform events delivered to clients in the last 24 hours.
pub const DAILY_DELIVERIES: &str = "DailyDeliveredPlatformEvents";

/// One allocation: its maximum and what is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub remaining: u64,
}

impl Limit {
    /// How much of it is used.
    pub fn used(&self) -> u64 {
        self.max.saturating_sub(self.remaining)
    }
}

/// The org's allocations by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgLimits(pub BTreeMap<String, Limit>);

impl OrgLimits {
    /// Reads a `/limits` body (pure): every entry with a numeric `Max` and `Remaining`.
    pub fn from_json(body: &Value) -> OrgLimits {
        let mut limits = BTreeMap::new();
        if let Some(entries) = body.as_object() {
            for (name, entry) in entries {
                let max = entry.get("Max").and_then(Value::as_u64);
                let remaining = entry.get("Remaining").and_then(Value::as_u64);
                if let (Some(max), Some(remaining)) = (max, remaining) {
                    limits.insert(name.clone(), Limit { max, remaining });
                }
            }
        }
        OrgLimits(limits)
    }

    pub fn get(&self, name: &str) -> Option<Limit> {
        self.0.get(name).copied()
    }
}

impl Client {
    /// `GET /limits` (one API call).
    pub async fn limits(&self) -> Result<OrgLimits, SfError> {
        let body: Value = self
            .get_json(CallKind::Other, self.data_path("limits"))
            .await?;
        Ok(OrgLimits::from_json(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_are_read_by_name_with_max_and_remaining() {
        let limits = OrgLimits::from_json(&json!({
            "DurableStreamingApiConcurrentClients": {"Max": 20, "Remaining": 19},
            "DailyDeliveredPlatformEvents": {"Max": 10000, "Remaining": 0},
            "Odd": {"Max": "x"}
        }));
        let clients = limits.get(CONCURRENT_CLIENTS).unwrap();
        assert_eq!((clients.max, clients.used()), (20, 1));
        assert_eq!(limits.get(DAILY_DELIVERIES).unwrap().remaining, 0);
        assert!(limits.get("Odd").is_none());
    }
}
