//! Ambiguous writes: the next N write requests (POST, PATCH, PUT, DELETE on API paths) are
//! applied, then answered as if they failed: `500 UNKNOWN_EXCEPTION`, a dropped connection,
//! or a hang past the client's timeout followed by a dropped connection. A client cannot tell
//! whether such a write happened; it must find out (query by external ID) or retry
//! idempotently (upsert), as with a real Salesforce request cut off after commit.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// How an applied write is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmbiguousMode {
    /// `500 [{"errorCode":"UNKNOWN_EXCEPTION",…}]`.
    #[default]
    #[serde(rename = "500")]
    ServerError,
    /// The connection is closed without an answer.
    Drop,
    /// Nothing is answered for `hang_ms` (request faults), then the connection is closed.
    Hang,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AmbiguousSettings {
    /// Write requests still to be answered ambiguously.
    pub count: u32,
    pub mode: AmbiguousMode,
    /// Only writes whose path starts with one of these (empty: every API write).
    #[serde(default)]
    pub paths: Vec<String>,
}

#[derive(Debug, Default)]
pub struct AmbiguousWrites {
    state: Mutex<AmbiguousSettings>,
}

/// Whether a request is a write: a body-carrying or deleting method.
pub fn is_write(method: &str) -> bool {
    matches!(method, "POST" | "PATCH" | "PUT" | "DELETE")
}

impl AmbiguousWrites {
    pub fn set(&self, s: AmbiguousSettings) {
        *self.state.lock() = s;
    }

    pub fn get(&self) -> AmbiguousSettings {
        self.state.lock().clone()
    }

    pub fn clear(&self) {
        self.set(AmbiguousSettings::default());
    }

    /// Takes one ambiguous answer for a `method` request on `path`, if one is due.
    pub fn take(&self, method: &str, path: &str) -> Option<AmbiguousMode> {
        let mut s = self.state.lock();
        let applies = s.count > 0
            && is_write(method)
            && (s.paths.is_empty() || s.paths.iter().any(|p| path.starts_with(p.as_str())));
        if !applies {
            return None;
        }
        s.count -= 1;
        Some(s.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_next_n_matching_writes_are_taken() {
        let w = AmbiguousWrites::default();
        w.set(AmbiguousSettings {
            count: 2,
            mode: AmbiguousMode::Drop,
            paths: vec!["/services/data".into()],
        });
        assert_eq!(w.take("GET", "/services/data/v59.0/query"), None);
        assert_eq!(w.take("POST", "/services/async/59.0/job"), None);
        assert_eq!(
            w.take("POST", "/services/data/v59.0/sobjects/Account"),
            Some(AmbiguousMode::Drop)
        );
        assert_eq!(
            w.take("PATCH", "/services/data/v59.0/sobjects/Account/x"),
            Some(AmbiguousMode::Drop)
        );
        assert_eq!(
            w.take("POST", "/services/data/v59.0/sobjects/Account"),
            None
        );
    }
}
