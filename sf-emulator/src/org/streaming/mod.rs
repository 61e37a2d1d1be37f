//! Streaming state of one org: its CometD clients (`clients`) and the timing of held connects
//! and client expiry; its Pub/Sub API subscriptions (`pubsub`: how many are open, the signal
//! ending them all, keepalive timing). The Bayeux transport is `routes::streaming`, the gRPC
//! one `routes::pubsub`.

pub mod clients;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clients::Clients;
use tokio::sync::watch;

/// Streaming state of one org: its CometD clients and timing.
#[derive(Debug)]
pub struct Hub {
    pub clients: Clients,
    pub pubsub: PubSubStreams,
    connect_timeout_ms: AtomicU64,
    client_expiry_ms: AtomicU64,
}

/// The Pub/Sub API's subscriptions (`Subscribe` calls) open on the org.
#[derive(Debug)]
pub struct PubSubStreams {
    open: Arc<AtomicUsize>,
    /// Bumped to end every open subscription with `UNAVAILABLE` (a server-side fault).
    drops: watch::Sender<u64>,
    keepalive_ms: AtomicU64,
    idle_close_ms: AtomicU64,
}

/// Salesforce sends an empty keepalive `FetchResponse` within 270 s while events are owed.
pub const PUBSUB_KEEPALIVE: Duration = Duration::from_secs(270);
/// A subscription owed nothing for 60 s is closed.
pub const PUBSUB_IDLE_CLOSE: Duration = Duration::from_secs(60);

impl Default for PubSubStreams {
    fn default() -> Self {
        PubSubStreams {
            open: Default::default(),
            drops: watch::channel(0).0,
            keepalive_ms: AtomicU64::new(PUBSUB_KEEPALIVE.as_millis() as u64),
            idle_close_ms: AtomicU64::new(PUBSUB_IDLE_CLOSE.as_millis() as u64),
        }
    }
}

/// One open subscription; dropping it frees its place under the concurrent-client cap.
#[derive(Debug)]
pub struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PubSubStreams {
    /// Subscriptions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Opens a subscription unless `max` clients (CometD clients included in `others`) are
    /// connected already.
    pub fn try_open(&self, others: usize, max: usize) -> Option<OpenStream> {
        let mut current = self.open.load(Ordering::Acquire);
        loop {
            if current.saturating_add(others) >= max {
                return None;
            }
            match self.open.compare_exchange(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(OpenStream(self.open.clone())),
                Err(now) => current = now,
            }
        }
    }

    /// Ends every open subscription with `UNAVAILABLE`; returns how many were open.
    pub fn drop_all(&self) -> usize {
        self.drops.send_modify(|g| *g += 1);
        self.open()
    }

    /// Changes when `drop_all` is called.
    pub fn drops(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    /// How long a subscription owed events waits before an empty keepalive response.
    pub fn keepalive(&self) -> Duration {
        Duration::from_millis(self.keepalive_ms.load(Ordering::Relaxed))
    }

    /// How long a subscription owed nothing stays open.
    pub fn idle_close(&self) -> Duration {
        Duration::from_millis(self.idle_close_ms.load(Ordering::Relaxed))
    }

    pub fn set_keepalive(&self, d: Duration) {
        self.keepalive_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }

    pub fn set_idle_close(&self, d: Duration) {
        self.idle_close_ms
            .store(d.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Hub {
    /// A hub holding connects up to `connect_timeout` and forgetting clients that do not
    /// reconnect within `client_expiry` of their last reply.
    pub fn new(connect_timeout: Duration, client_expiry: Duration) -> Hub {
        Hub {
            clients: Clients::default(),
            pubsub: PubSubStreams::default(),
            connect_timeout_ms: AtomicU64::new(connect_timeout.as_millis() as u64),
            client_expiry_ms: AtomicU64::new(client_expiry.as_millis() as u64),
        }
    }

    /// The same hub with another Pub/Sub keepalive interval.
    pub fn with_pubsub_keepalive(self, keepalive: Duration) -> Hub {
        self.pubsub.set_keepalive(keepalive);
        self
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
