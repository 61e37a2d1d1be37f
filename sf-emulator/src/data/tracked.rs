//! `Tracked`: a read-write lock (the org's record store) that counts its write acquisitions,
//! so persistence saves only when the data may have changed.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A lock that counts write acquisitions (the org's store).
#[derive(Debug, Default)]
pub struct Tracked<T> {
    lock: RwLock<T>,
    generation: AtomicU64,
}

impl<T> Tracked<T> {
    pub fn new(v: T) -> Self {
        Tracked {
            lock: RwLock::new(v),
            generation: AtomicU64::new(0),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.lock.read()
    }

    /// Write access; counts as a change.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.lock.write()
    }

    /// Number of write acquisitions so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }
}
