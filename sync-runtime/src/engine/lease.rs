//! One engine per mapping across instances.
//!
//! Each mapping an engine runs is held through a session-level Postgres advisory lock on a
//! connection dedicated to that lease. The lock lives exactly as long as the session: when the
//! holder dies (crash, kill, lost network), Postgres ends the session and releases the lock, and
//! another engine polling [`Lease::try_acquire`] every few seconds takes the mapping over. This is
//! how forcesync scales past one machine: mappings spread over instances, Postgres arbitrates.

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
                "SELECT pg_try_advisory_lock($1)",
                &[&lock_key(schema, mapping)],
            )
            .await?
            .get(0);
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
}
