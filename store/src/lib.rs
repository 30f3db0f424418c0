//! Stores for the SCX durable log: where a driver keeps what a node asks it
//! to persist. The engine is sans-IO: a node says what to write
//! ([`scx_engine::node::Persist`]), and its driver writes it to one of
//! these, makes it durable, and acknowledges it. Recovery reads the log back
//! into [`Recovered`] records for [`scx_engine::Node::recover`].
//!
//! - [`MemStore`]: an in-memory log with an explicit durable/unsynced split,
//!   and crash and corruption injection for tests.
//! - [`FileStore`]: a file on disk, with `fdatasync`, atomic compaction by
//!   rename, and poisoning after a failed write.
//!
//! Every store recovers through the engine's pure [`scx_engine::log::decode_log`]
//! and [`scx_engine::log::repaired_image`], so all of them recover identically.
//!
//! Invariant: [`Store::load`] returns only records whose checksum verified,
//! in the order they were appended, with no gap; a torn tail is truncated
//! durably, and a defect that is not ours to repair (a foreign header, an
//! unknown record kind) is refused and left untouched.

use scx_engine::log::{LOG_HEADER, Record, RecordKind, RecordTooLarge, Recovered, TailDefect};
use scx_engine::node::PersistOp;
use std::io;
use std::path::{Path, PathBuf};

mod file;
mod mem;
#[cfg(test)]
mod tests;

pub use file::FileStore;
pub use mem::MemStore;
pub use scx_engine::log::ROT_FOUND;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The operating system refused an operation.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        op: &'static str,
        /// On which file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A payload larger than the log format's record limit was appended.
    #[error(transparent)]
    RecordTooLarge(#[from] RecordTooLarge),
    /// The log does not start with [`LOG_HEADER`]: a foreign file, a log of
    /// another format version, or a corrupt header. Left untouched.
    #[error("{path} is not an SCX log of this version (header \"{}\", expected \"SCXLOG01\")", .found.escape_ascii())]
    BadHeader {
        /// The log (`<memory>` for a [`MemStore`]).
        path: PathBuf,
        /// Its first bytes (at most the header's length).
        found: Vec<u8>,
    },
    /// A record with a valid checksum has an unknown kind tag: the log was
    /// written by a newer version. Left untouched.
    #[error("{path}: record at byte {offset} has unknown kind tag {tag}")]
    UnknownKind {
        /// The log (`<memory>` for a [`MemStore`]).
        path: PathBuf,
        /// Byte offset of the record in the log.
        offset: u64,
        /// The tag found.
        tag: u8,
    },
    /// An earlier write, fsync or compaction failed, so the log's state on
    /// disk is unknown; [`Store::load`] or [`Store::replace`] clears this.
    #[error("{path}: an earlier IO failure left the log in an unknown state; reload it")]
    Poisoned {
        /// The log.
        path: PathBuf,
    },
}
/// A durable append-only log of records.
pub trait Store {
    /// Appends a record; it is not durable until [`Store::sync`].
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError>;
    /// Makes every appended record durable (and, the log being append-only,
    /// every earlier one).
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Discards unsynced appends, reads every durable intact record in order
    /// and durably truncates a torn tail (see the module's recovery policy);
    /// after rot it appends a [`RecordKind::Rejoin`] record with
    /// [`ROT_FOUND`] in the same atomic step. The returned records are the
    /// intact prefix, without that record.
    fn load(&mut self) -> Result<Recovered, StoreError>;
    /// Atomically and durably replaces the whole log with `records`,
    /// discarding unsynced appends.
    fn replace(&mut self, records: &[Record]) -> Result<(), StoreError>;
}

/// Carries out one of a node's persist operations on `store`: after `Ok`,
/// the driver may acknowledge it with [`scx_engine::Node::persisted`].
pub fn persist(store: &mut impl Store, op: &PersistOp) -> Result<(), StoreError> {
    match op {
        PersistOp::Append { records, sync } => {
            for record in records {
                store.append(record.kind, &record.payload)?;
            }
            if *sync {
                store.sync()?;
            }
            Ok(())
        }
        PersistOp::Replace { records } => store.replace(records),
    }
}

/// The error for a defect that must not be repaired by truncation, if any.
pub(crate) fn refusal(recovered: &Recovered, bytes: &[u8], path: &Path) -> Option<StoreError> {
    match recovered.defect? {
        TailDefect::BadHeader => {
            let found = bytes[..bytes.len().min(LOG_HEADER.len())].to_vec();
            Some(StoreError::BadHeader { path: path.to_path_buf(), found })
        }
        TailDefect::UnknownKind { tag } => {
            Some(StoreError::UnknownKind { path: path.to_path_buf(), offset: recovered.valid_bytes, tag })
        }
        TailDefect::Truncated | TailDefect::Oversized { .. } | TailDefect::BadChecksum => None,
    }
}
