//! `UNABLE_TO_LOCK_ROW` aimed at one object or one record: writes touching it fail as when
//! another transaction holds the row (SOAP API Developer Guide, "ExceptionCode":
//! `UNABLE_TO_LOCK_ROW` — "A deadlock or timeout condition has been detected"; Salesforce
//! waits about 10 seconds for a record lock). The untargeted "next N writes" form lives in
//! `Org::fail_next_writes`.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// One target: every write of `object`, or of the record `id`, `count` times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub count: u32,
}

#[derive(Debug, Default)]
pub struct LockTargets {
    /// Key: `object:<lowercase name>` or `id:<18-char id>`.
    targets: Mutex<BTreeMap<String, LockTarget>>,
}

fn key(t: &LockTarget) -> Option<String> {
    match (&t.object, &t.id) {
        (Some(o), None) => Some(format!("object:{}", o.to_ascii_lowercase())),
        (None, Some(i)) => Some(format!("id:{i}")),
        _ => None,
    }
}

impl LockTargets {
    /// Adds (or replaces) a target; exactly one of `object` and `id` must be given.
    pub fn add(&self, t: LockTarget) -> Result<(), String> {
        let k = key(&t).ok_or("a lock target names exactly one of \"object\" and \"id\"")?;
        self.targets.lock().insert(k, t);
        Ok(())
    }

    pub fn list(&self) -> Vec<LockTarget> {
        self.targets.lock().values().cloned().collect()
    }

    pub fn clear(&self) {
        self.targets.lock().clear();
    }

    /// Whether a write of record `id` (18 characters, None for a create) of `object` is
    /// locked out now; uses one of the target's count.
    pub fn take(&self, object: &str, id: Option<&str>) -> bool {
        let mut g = self.targets.lock();
        if g.is_empty() {
            return false;
        }
        let keys = [
            id.map(|i| format!("id:{i}")),
            Some(format!("object:{}", object.to_ascii_lowercase())),
        ];
        for k in keys.into_iter().flatten() {
            if let Some(t) = g.get_mut(&k) {
                t.count -= 1;
                if t.count == 0 {
                    g.remove(&k);
                }
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_hit_their_object_or_record_only() {
        let l = LockTargets::default();
        l.add(LockTarget {
            object: Some("Account".into()),
            id: None,
            count: 1,
        })
        .unwrap();
        l.add(LockTarget {
            object: None,
            id: Some("003000000000001AAA".into()),
            count: 2,
        })
        .unwrap();
        assert!(!l.take("Contact", Some("003000000000002AAA")));
        assert!(l.take("Contact", Some("003000000000001AAA")));
        assert!(l.take("account", None));
        assert!(!l.take("Account", None));
        assert!(l.take("Contact", Some("003000000000001AAA")));
        assert!(!l.take("Contact", Some("003000000000001AAA")));
        assert!(l
            .add(LockTarget {
                object: None,
                id: None,
                count: 1
            })
            .is_err());
    }
}
