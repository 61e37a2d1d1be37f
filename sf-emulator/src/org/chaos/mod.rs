//! Chaos-test faults beyond request latency and 503/500 shares (those are `crate::org::faults`):
//! ambiguous writes, query faults, Bulk job faults, targeted `UNABLE_TO_LOCK_ROW`, and slow
//! transactions whose commit becomes visible late. Each part owns its settings and the pure
//! decisions over them; `settings` reads and reports them through `POST|GET
//! /__emulator/faults` (the control plane's `routes::control::data_fix` serves the changes
//! made outside the API).

pub mod bulk;
pub mod locks;
pub mod queries;
pub mod settings;
pub mod slow;
pub mod writes;

/// The org's chaos-test state (`Org::chaos`).
#[derive(Debug, Default)]
pub struct Chaos {
    pub writes: writes::AmbiguousWrites,
    pub queries: queries::QueryFaults,
    pub bulk: bulk::BulkFaults,
    pub locks: locks::LockTargets,
    pub slow: slow::SlowTransactions,
}

impl Chaos {
    /// Removes every fault (slow transactions already running finish as planned).
    pub fn clear(&self) {
        self.writes.clear();
        self.queries.clear();
        self.bulk.clear();
        self.locks.clear();
        self.slow.clear();
    }
}
