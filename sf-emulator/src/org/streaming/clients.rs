//! The CometD client registry: one entry per handshake, with its browser id (the
//! `BAYEUX_BROWSER` cookie its requests must carry), its subscriptions (channel → replay
//! cursor), when it was last answered (clients that do not reconnect in time expire), and the
//! state of its held `/meta/connect` (a newer connect or a dropped connection wakes it). The
//! number of live clients is capped (the org's concurrent-client allocation).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngExt;
use tokio::sync::Notify;

use crate::org::cdc::ChannelFilter;

/// One subscription: which events it receives and where it continues from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: ChannelFilter,
    /// The replay id after which delivery continues; `-2` = from the oldest retained event
    /// (replay `-1` resolves to the newest replay id at subscribe time).
    pub cursor: i64,
}

/// One handshaken client.
#[derive(Debug)]
pub struct Client {
    /// The `BAYEUX_BROWSER` cookie value set at handshake.
    pub browser: String,
    pub subscriptions: BTreeMap<String, Subscription>,
    /// When the server last answered this client (or received from it).
    pub last_seen: Instant,
    /// Connects currently held for this client.
    pub connects_held: u32,
    /// Bumped by each new connect, so an older held connect knows it was superseded.
    pub connect_generation: u64,
    /// Whether a connect was already answered (the first connect is answered at once).
    pub connected_once: bool,
    /// Wakes this client's held connect (superseded, unsubscribed, disconnected).
    pub wake: Arc<Notify>,
}

/// All clients of one emulated org.
#[derive(Debug, Default)]
pub struct Clients {
    inner: Mutex<HashMap<String, Client>>,
}

impl Clients {
    /// Registers a new client of `browser` and returns its id, unless `max_clients` live
    /// clients exist already. Expired clients are forgotten on the way.
    pub fn handshake(
        &self,
        expiry: Duration,
        browser: &str,
        max_clients: usize,
    ) -> Result<String, TooManyClients> {
        let id = new_client_id();
        let mut clients = self.inner.lock();
        let now = Instant::now();
        clients.retain(|_, c| !c.is_expired(now, expiry));
        if clients.len() >= max_clients {
            return Err(TooManyClients);
        }
        clients.insert(
            id.clone(),
            Client {
                browser: browser.to_string(),
                subscriptions: BTreeMap::new(),
                last_seen: now,
                connects_held: 0,
                connect_generation: 0,
                connected_once: false,
                wake: Arc::new(Notify::new()),
            },
        );
        Ok(id)
    }

    /// Whether `client_id` is registered (expired or not).
    pub fn contains(&self, client_id: &str) -> bool {
        self.inner.lock().contains_key(client_id)
    }

    /// Runs `f` on a live client, refreshing its `last_seen`; `None` if unknown or expired
    /// (an expired client is removed).
    pub fn with<R>(
        &self,
        client_id: &str,
        expiry: Duration,
        f: impl FnOnce(&mut Client) -> R,
    ) -> Option<R> {
        let mut clients = self.inner.lock();
        let now = Instant::now();
        let expired = clients.get(client_id)?.is_expired(now, expiry);
        if expired {
            clients.remove(client_id);
            return None;
        }
        let client = clients.get_mut(client_id)?;
        client.last_seen = now;
        Some(f(client))
    }

    /// Runs `f` on a client without the expiry check (a held connect finishing up).
    pub fn with_held<R>(&self, client_id: &str, f: impl FnOnce(&mut Client) -> R) -> Option<R> {
        self.inner.lock().get_mut(client_id).map(f)
    }

    /// Forgets a client (disconnect), waking its held connect.
    pub fn remove(&self, client_id: &str) -> bool {
        match self.inner.lock().remove(client_id) {
            Some(client) => {
                client.wake.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Forgets every client, waking all held connects (they answer `403::Unknown client`).
    pub fn drop_all(&self) -> usize {
        let mut clients = self.inner.lock();
        let count = clients.len();
        for (_, client) in clients.drain() {
            client.wake.notify_waiters();
        }
        count
    }

    /// Number of clients alive now (what `DurableStreamingApiConcurrentClients` counts):
    /// expired clients are forgotten on the way.
    pub fn live(&self, expiry: Duration) -> usize {
        let mut clients = self.inner.lock();
        let now = Instant::now();
        clients.retain(|_, c| !c.is_expired(now, expiry));
        clients.len()
    }

    /// Number of registered clients (expired ones not yet forgotten included).
    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Whether no client is registered.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().is_empty()
    }
}

impl Client {
    fn is_expired(&self, now: Instant, expiry: Duration) -> bool {
        self.connects_held == 0 && now.duration_since(self.last_seen) > expiry
    }
}

/// The org's concurrent-client allocation is used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyClients;

/// A client id shaped like Salesforce's (26 lowercase base-36 characters).
fn new_client_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..26)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_past_the_concurrent_allocation_are_refused() {
        let clients = Clients::default();
        let expiry = Duration::from_secs(40);
        clients.handshake(expiry, "b", 2).unwrap();
        let second = clients.handshake(expiry, "b", 2).unwrap();
        assert_eq!(clients.handshake(expiry, "b", 2), Err(TooManyClients));
        clients.remove(&second);
        assert!(clients.handshake(expiry, "b", 2).is_ok());
    }

    #[test]
    fn clients_expire_when_idle_and_not_held() {
        let clients = Clients::default();
        let id = clients.handshake(Duration::from_secs(40), "b", 10).unwrap();
        assert_eq!(id.len(), 26);
        assert!(clients.with(&id, Duration::from_secs(40), |_| ()).is_some());
        std::thread::sleep(Duration::from_millis(20));
        assert!(clients
            .with(&id, Duration::from_millis(5), |_| ())
            .is_none());
        assert!(clients.is_empty());
    }

    #[test]
    fn a_held_connect_keeps_the_client_alive() {
        let clients = Clients::default();
        let id = clients.handshake(Duration::from_secs(40), "b", 10).unwrap();
        clients.with_held(&id, |c| c.connects_held = 1).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(clients
            .with(&id, Duration::from_millis(5), |_| ())
            .is_some());
    }
}
