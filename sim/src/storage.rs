//! The storage model: each node's disk lives outside the node, in the
//! world, so it survives the node's crash. A write is durable only after a
//! sync; a crash loses unsynced bytes and may tear the last write, leaving a
//! prefix of it that the log's checksums must catch on recovery.
//!
//! The disk is the engine's own `MemStore` (the same record format and
//! recovery code as the file-backed store), shared behind a mutex.

use scx_engine::store::{MemStore, RecordKind, Recovered, Store, StoreError};
use std::sync::{Arc, Mutex, MutexGuard};

/// A node's disk, shared between the world and the node's `Store` handle.
#[derive(Clone, Debug, Default)]
pub struct SimDisk(Arc<Mutex<MemStore>>);

impl SimDisk {
    /// A fresh, empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemStore> {
        // A poisoned lock means a panic already aborted the run.
        self.0.lock().expect("the simulation is single-threaded")
    }

    /// Crashes the disk: unsynced bytes are lost; with `tear`, the first
    /// `tear_bytes` of them survive as a torn write. Returns the bytes lost.
    pub fn crash(&self, tear_bytes: Option<usize>) -> u64 {
        let mut disk = self.lock();
        let unsynced = disk.unsynced_len() as u64;
        disk.crash(tear_bytes);
        unsynced
    }

    /// Bytes written but not yet synced.
    pub fn unsynced_bytes(&self) -> u64 {
        self.lock().unsynced_len() as u64
    }
}

impl Store for SimDisk {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        self.lock().append(kind, payload)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.lock().sync()
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        self.lock().load()
    }

    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError> {
        self.lock().replace(records)
    }
}
