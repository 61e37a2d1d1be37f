//! Streaming state of one org: its CometD clients (`clients`) and the timing of held connects
//! and client expiry. The Bayeux transport serving them is `routes::streaming`.

pub mod clients;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clients::Clients;

/// Streaming state of one org: its CometD clients and timing.
#[derive(Debug)]
pub struct Hub {
    pub clients: Clients,
    connect_timeout_ms: AtomicU64,
    client_expiry_ms: AtomicU64,
}

impl Hub {
    /// A hub holding connects up to `connect_timeout` and forgetting clients that do not
    /// reconnect within `client_expiry` of their last reply.
    pub fn new(connect_timeout: Duration, client_expiry: Duration) -> Hub {
        Hub {
            clients: Clients::default(),
            connect_timeout_ms: AtomicU64::new(connect_timeout.as_millis() as u64),
            client_expiry_ms: AtomicU64::new(client_expiry.as_millis() as u64),
        }
    }

    /// How long a `/meta/connect` is held when nothing is pending (Salesforce: 110 s).
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.load(Ordering::Relaxed))
    }

    /// How long a client may stay away between connects before it is forgotten (40 s).
    pub fn client_expiry(&self) -> Duration {
        Duration::from_millis(self.client_expiry_ms.load(Ordering::Relaxed))
    }

    pub fn set_connect_timeout(&self, timeout: Duration) {
        self.connect_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_client_expiry(&self, expiry: Duration) {
        self.client_expiry_ms
            .store(expiry.as_millis() as u64, Ordering::Relaxed);
    }
}
