//! An in-memory log, for tests and examples: an explicit split between
//! durable and unsynced bytes, and crashes (with a torn tail) and bit flips
//! injected on demand.

use crate::{Store, StoreError, refusal};
use scx_engine::log::{
    HEADER_BYTES, LOG_HEADER, Record, RecordKind, Recovered, decode_log, encode_log, encode_record, repaired_image,
};
use std::fmt;
use std::path::Path;

/// The path a [`MemStore`] names in its errors.
const MEMORY_PATH: &str = "<memory>";

/// An in-memory store with an explicit durable/unsynced split, for tests
/// and simulated disks. It starts as a created, empty log (just the header).
#[derive(Clone)]
pub struct MemStore {
    durable: Vec<u8>,
    unsynced: Vec<u8>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self { durable: LOG_HEADER.to_vec(), unsynced: Vec::new() }
    }
}

impl fmt::Debug for MemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStore")
            .field("durable_bytes", &self.durable.len())
            .field("unsynced_bytes", &self.unsynced.len())
            .finish()
    }
}

impl MemStore {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The durable log image, header included.
    pub fn durable_bytes(&self) -> &[u8] {
        &self.durable
    }

    /// Length of the durable log image, header included.
    pub fn bytes_durable(&self) -> u64 {
        self.durable.len() as u64
    }

    /// Bytes appended but not yet synced.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    /// A crash: unsynced bytes are lost, except the first `tear` of them
    /// (clamped to what is unsynced), which reach the disk as a torn write.
    pub fn crash(&mut self, tear: Option<usize>) {
        let kept_bytes = tear.unwrap_or(0).min(self.unsynced.len());
        self.durable.extend_from_slice(&self.unsynced[..kept_bytes]);
        self.unsynced.clear();
    }

    /// Flips the bits of `mask` in the durable byte at `position` (tests of
    /// corruption handling); does nothing past the end.
    pub fn corrupt(&mut self, position: usize, mask: u8) {
        if let Some(byte) = self.durable.get_mut(position) {
            *byte ^= mask;
        }
    }
}

impl Store for MemStore {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        Ok(encode_record(kind, payload, &mut self.unsynced)?)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.durable.append(&mut self.unsynced);
        Ok(())
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        self.unsynced.clear();
        let recovered = decode_log(&self.durable);
        if let Some(error) = refusal(&recovered, &self.durable, Path::new(MEMORY_PATH)) {
            return Err(error);
        }
        if recovered.valid_bytes < HEADER_BYTES {
            self.durable = LOG_HEADER.to_vec();
        } else {
            self.durable = repaired_image(&self.durable, &recovered);
        }
        Ok(recovered)
    }

    fn replace(&mut self, records: &[Record]) -> Result<(), StoreError> {
        self.durable = encode_log(records)?;
        self.unsynced.clear();
        Ok(())
    }
}
