//! One engine per mapping across instances.
//!
//! Each mapping an engine runs is held through a session-level Postgres advisory lock on a
//! connection dedicated to that lease. The lock lives exactly as long as the session: when the
//! holder dies (crash, kill, lost network), Postgres ends the session and releases the lock, and
//! another engine polling [`Lease::try_acquire`] every few seconds takes the mapping over. This is
//! how forcesync scales past one machine: mappings spread over instances, Postgres arbitrates.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;
use tokio_postgres::Client;

/// The advisory-lock key of a mapping (stable across processes and versions).
pub fn lock_key(schema: &str, mapping: &str) -> i64 {
    // FNV-1a over the name: stable, and independent of Postgres' hashtext implementation.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("forcesync:{schema}:{mapping}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

/// A held mapping. Dropping it closes the session, which releases the lock.
pub struct Lease {
    mapping: String,
    client: Client,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("mapping", &self.mapping)
            .finish()
    }
}

impl Lease {
    /// Takes the mapping when no other engine holds it; `None` when one does.
    pub async fn try_acquire(
        database_url: &str,
        schema: &str,
        mapping: &str,
    ) -> Result<Option<Lease>, super::EngineError> {
        let client = super::db::connect(database_url).await?;
        let held: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1) AS held",
                &[&lock_key(schema, mapping)],
            )
            .await?
            .get("held");
        if held {
            Ok(Some(Lease {
                mapping: mapping.to_owned(),
                client,
            }))
        } else {
            Ok(None)
        }
    }

    pub fn mapping(&self) -> &str {
        &self.mapping
    }

    /// Whether the session holding the lock is still alive (a lost session means another engine
    /// may already hold the mapping: stop working on it).
    pub async fn is_alive(&self) -> bool {
        !self.client.is_closed() && self.client.simple_query("SELECT 1").await.is_ok()
    }
}

/// The mappings (object names) this engine holds right now: the read loops add a mapping when
/// they take its lease and remove it when they lose it; the writer sends only these
/// ([`super::writer::Writer::only_held`]), so two instances never both send one mapping. Clones
/// share the set.
#[derive(Debug, Clone)]
pub struct Held(Arc<watch::Sender<BTreeSet<String>>>);

impl Default for Held {
    fn default() -> Self {
        Held(Arc::new(watch::channel(BTreeSet::new()).0))
    }
}

impl Held {
    pub fn insert(&self, mapping: &str) {
        self.0.send_modify(|held| {
            held.insert(mapping.to_owned());
        });
    }

    pub fn remove(&self, mapping: &str) {
        self.0.send_modify(|held| {
            held.remove(mapping);
        });
    }

    pub fn contains(&self, mapping: &str) -> bool {
        self.0.borrow().contains(mapping)
    }

    /// A receiver that sees every change of the set.
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<String>> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(
            lock_key("salesforce", "Account"),
            lock_key("salesforce", "Account")
        );
        assert_ne!(
            lock_key("salesforce", "Account"),
            lock_key("salesforce", "Contact")
        );
        assert_ne!(lock_key("a", "Account"), lock_key("b", "Account"));
    }

    #[test]
    fn the_held_set_is_shared_by_clones_and_seen_by_subscribers() {
        let held = Held::default();
        let mut seen = held.subscribe();
        held.clone().insert("Account");
        assert!(held.contains("Account"));
        assert!(seen.has_changed().unwrap());
        assert!(seen.borrow_and_update().contains("Account"));
        held.remove("Account");
        assert!(!held.contains("Account"));
        assert!(seen.has_changed().unwrap());
    }
}
