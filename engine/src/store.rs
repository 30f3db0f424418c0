//! The durable record log: where a node writes lanes, snapshots and commit
//! records ahead of acknowledging or sending them, and what it recovers from.
//!
//! Format: an 8-byte header `SCXLOG01`, then records, each
//! `len: u32 LE ‖ kind: u8 ‖ crc32c(len ‖ kind ‖ payload): u32 LE ‖ payload`.
//! The log is append-only; [`Store::sync`] makes every record appended so far
//! durable. Recovery ([`decode_log`]) keeps the longest prefix of intact
//! records: a torn or corrupt record and everything after it are the torn
//! tail, which is reported and truncated, never returned.
//!
//! Invariant: `load` returns only records whose checksum verified, in the
//! order they were appended, and never panics on any bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every log.
pub const LOG_HEADER: &[u8; 8] = b"SCXLOG01";
/// Largest record payload accepted.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
const FRAME_BYTES: usize = 9;

/// What a record holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKind {
    /// A lane's canonical bytes.
    Lane = 1,
    /// A snapshot with its boundary.
    Snapshot = 2,
    /// A committed snapshot id at a lane index.
    Commit = 3,
}

impl RecordKind {
    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::Lane),
            2 => Some(Self::Snapshot),
            3 => Some(Self::Commit),
            _ => None,
        }
    }
}

/// One recovered record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its kind.
    pub kind: RecordKind,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// What `load` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Intact records, in append order.
    pub records: Vec<Record>,
    /// Bytes after the last intact record that were dropped.
    pub torn_tail_bytes: u64,
    /// Length of the intact prefix (header included).
    pub valid_bytes: u64,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The operating system refused an operation.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A record larger than [`MAX_RECORD_BYTES`].
    #[error("record of {len} bytes exceeds the limit of {MAX_RECORD_BYTES}")]
    RecordTooLarge {
        /// Its size.
        len: usize,
    },
    /// The file does not start with [`LOG_HEADER`].
    #[error("{path} is not an SCX log (bad header)")]
    BadHeader {
        /// The file.
        path: PathBuf,
    },
}

/// A durable append-only log of records.
pub trait Store {
    /// Appends a record; not durable until [`Store::sync`].
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError>;
    /// Makes every appended record durable.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Reads every durable intact record; truncates a torn tail.
    fn load(&mut self) -> Result<Recovered, StoreError>;
    /// Atomically replaces the whole log with `records`, durably.
    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError>;
}

/// Appends one framed record to `out`.
pub fn encode_record(kind: RecordKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
    if payload.len() > MAX_RECORD_BYTES {
        return Err(StoreError::RecordTooLarge { len: payload.len() });
    }
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32c::crc32c(&len);
    crc = crc32c::crc32c_append(crc, &[kind as u8]);
    crc = crc32c::crc32c_append(crc, payload);
    out.extend_from_slice(&len);
    out.push(kind as u8);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Decodes a whole log image: the intact prefix of records and the size of
/// the torn tail. Bytes without the header decode as an empty log whose
/// every byte is torn (a log torn inside its header).
pub fn decode_log(bytes: &[u8]) -> Recovered {
    if bytes.len() < LOG_HEADER.len() || &bytes[..LOG_HEADER.len()] != LOG_HEADER {
        return Recovered { records: Vec::new(), torn_tail_bytes: bytes.len() as u64, valid_bytes: 0 };
    }
    let mut records = Vec::new();
    let mut at = LOG_HEADER.len();
    while let Some((record, next)) = decode_record(bytes, at) {
        records.push(record);
        at = next;
    }
    Recovered { records, torn_tail_bytes: (bytes.len() - at) as u64, valid_bytes: at as u64 }
}

fn decode_record(bytes: &[u8], at: usize) -> Option<(Record, usize)> {
    let frame = bytes.get(at..at.checked_add(FRAME_BYTES)?)?;
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    let kind = RecordKind::from_tag(frame[4])?;
    let crc = u32::from_le_bytes([frame[5], frame[6], frame[7], frame[8]]);
    if len > MAX_RECORD_BYTES {
        return None;
    }
    let start = at + FRAME_BYTES;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    let mut actual = crc32c::crc32c(&frame[..4]);
    actual = crc32c::crc32c_append(actual, &frame[4..5]);
    actual = crc32c::crc32c_append(actual, payload);
    (actual == crc).then(|| (Record { kind, payload: payload.to_vec() }, start + len))
}

fn encode_log(records: &[(RecordKind, Vec<u8>)]) -> Result<Vec<u8>, StoreError> {
    let mut out = LOG_HEADER.to_vec();
    for (kind, payload) in records {
        encode_record(*kind, payload, &mut out)?;
    }
    Ok(out)
}

/// An in-memory store with an explicit durable/unsynced split, for tests
/// and the simulator's disks.
#[derive(Clone, Default)]
pub struct MemStore {
    durable: Vec<u8>,
    unsynced: Vec<u8>,
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStore")
            .field("durable_bytes", &self.durable.len())
            .field("unsynced_bytes", &self.unsynced.len())
            .finish()
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The durable bytes.
    pub fn durable_bytes(&self) -> &[u8] {
        &self.durable
    }

    /// Bytes appended but not synced.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    /// A crash: unsynced bytes are lost, except the first `tear` of them,
    /// which reach the disk as a torn write.
    pub fn crash(&mut self, tear: Option<usize>) {
        self.ensure_header();
        let kept = tear.unwrap_or(0).min(self.unsynced.len());
        self.durable.extend_from_slice(&self.unsynced[..kept]);
        self.unsynced.clear();
    }

    /// Flips bits of a durable byte (tests of corruption handling).
    pub fn corrupt(&mut self, position: usize, mask: u8) {
        if let Some(byte) = self.durable.get_mut(position) {
            *byte ^= mask;
        }
    }

    fn ensure_header(&mut self) {
        if self.durable.is_empty() {
            self.durable.extend_from_slice(LOG_HEADER);
        }
    }
}

impl Store for MemStore {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        encode_record(kind, payload, &mut self.unsynced)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.ensure_header();
        self.durable.append(&mut self.unsynced);
        Ok(())
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        self.unsynced.clear();
        if self.durable.is_empty() {
            return Ok(Recovered { valid_bytes: LOG_HEADER.len() as u64, ..Recovered::default() });
        }
        let recovered = decode_log(&self.durable);
        self.durable.truncate(recovered.valid_bytes as usize);
        self.ensure_header();
        Ok(recovered)
    }

    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError> {
        self.durable = encode_log(records)?;
        self.unsynced.clear();
        Ok(())
    }
}

/// A file-backed store: appends are buffered, `sync` writes and fsyncs,
/// `replace` writes a temporary file, fsyncs it and renames it over.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    file: File,
    buffer: Vec<u8>,
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

impl FileStore {
    /// Opens (creating if needed) the log at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io_error("open", &path))?;
        let length = file.metadata().map_err(io_error("stat", &path))?.len();
        if length == 0 {
            file.write_all(LOG_HEADER).map_err(io_error("write", &path))?;
            file.sync_data().map_err(io_error("fsync", &path))?;
        }
        Ok(Self { path, file, buffer: Vec::new() })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store for FileStore {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        encode_record(kind, payload, &mut self.buffer)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        if !self.buffer.is_empty() {
            self.file.write_all(&self.buffer).map_err(io_error("write", &self.path))?;
            self.buffer.clear();
        }
        self.file.sync_data().map_err(io_error("fsync", &self.path))
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        self.buffer.clear();
        let mut bytes = Vec::new();
        File::open(&self.path)
            .and_then(|mut file| file.read_to_end(&mut bytes))
            .map_err(io_error("read", &self.path))?;
        if bytes.len() >= LOG_HEADER.len() && &bytes[..LOG_HEADER.len()] != LOG_HEADER {
            return Err(StoreError::BadHeader { path: self.path.clone() });
        }
        let recovered = decode_log(&bytes);
        if recovered.torn_tail_bytes > 0 {
            let keep = recovered.valid_bytes.max(LOG_HEADER.len() as u64);
            if recovered.valid_bytes == 0 {
                self.replace(&[])?;
            } else {
                self.file.set_len(keep).map_err(io_error("truncate", &self.path))?;
                self.file.sync_data().map_err(io_error("fsync", &self.path))?;
            }
        }
        Ok(recovered)
    }

    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError> {
        let bytes = encode_log(records)?;
        let temporary = self.path.with_extension("compacting");
        let mut file = File::create(&temporary).map_err(io_error("create", &temporary))?;
        file.write_all(&bytes).map_err(io_error("write", &temporary))?;
        file.sync_data().map_err(io_error("fsync", &temporary))?;
        fs::rename(&temporary, &self.path).map_err(io_error("rename", &self.path))?;
        if let Some(directory) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            File::open(directory).and_then(|dir| dir.sync_all()).map_err(io_error("fsync", directory))?;
        }
        self.file =
            OpenOptions::new().read(true).append(true).open(&self.path).map_err(io_error("open", &self.path))?;
        self.buffer.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(count: usize) -> Vec<(RecordKind, Vec<u8>)> {
        let kinds = [RecordKind::Lane, RecordKind::Snapshot, RecordKind::Commit];
        (0..count).map(|i| (kinds[i % 3], vec![i as u8; i * 7 % 50])).collect()
    }

    fn load_all(store: &mut impl Store) -> Vec<(RecordKind, Vec<u8>)> {
        store.load().unwrap().records.into_iter().map(|record| (record.kind, record.payload)).collect()
    }

    #[test]
    fn records_round_trip_and_only_synced_ones_survive_a_crash() {
        let mut store = MemStore::new();
        let written = records(20);
        for (kind, payload) in &written[..15] {
            store.append(*kind, payload).unwrap();
        }
        store.sync().unwrap();
        for (kind, payload) in &written[15..] {
            store.append(*kind, payload).unwrap();
        }
        store.crash(None);
        assert_eq!(load_all(&mut store), written[..15]);
    }

    #[test]
    fn a_tear_at_every_offset_recovers_exactly_the_synced_records() {
        let written = records(6);
        let mut base = MemStore::new();
        for (kind, payload) in &written[..5] {
            base.append(*kind, payload).unwrap();
        }
        base.sync().unwrap();
        base.append(written[5].0, &written[5].1).unwrap();
        let unsynced = base.unsynced_len();
        for tear in 0..unsynced {
            let mut store = base.clone();
            store.crash(Some(tear));
            let recovered = store.load().unwrap();
            assert_eq!(recovered.records.len(), 5, "tear of {tear} bytes");
            assert_eq!(recovered.torn_tail_bytes, tear as u64);
            assert_eq!(load_all(&mut store), written[..5], "the truncation is durable");
        }
    }

    #[test]
    fn any_flipped_byte_recovers_a_prefix_and_never_panics() {
        let written = records(8);
        let mut base = MemStore::new();
        for (kind, payload) in &written {
            base.append(*kind, payload).unwrap();
        }
        base.sync().unwrap();
        for position in 0..base.durable_bytes().len() {
            let mut store = base.clone();
            store.corrupt(position, 0x10);
            let got = load_all(&mut store);
            assert!(got.len() < written.len(), "flipping byte {position} went unnoticed");
            assert_eq!(got, written[..got.len()], "only an intact prefix comes back");
        }
    }

    #[test]
    fn oversized_records_are_refused() {
        let mut store = MemStore::new();
        let error = store.append(RecordKind::Lane, &vec![0; MAX_RECORD_BYTES + 1]).unwrap_err();
        assert!(matches!(error, StoreError::RecordTooLarge { .. }));
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("scx-store-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_file_store_survives_reopen_replace_and_a_torn_tail() {
        let dir = TempDir::new("file");
        let path = dir.0.join("node.log");
        let written = records(10);
        {
            let mut store = FileStore::open(&path).unwrap();
            assert!(store.load().unwrap().records.is_empty());
            for (kind, payload) in &written {
                store.append(*kind, payload).unwrap();
            }
            store.sync().unwrap();
        }
        let mut store = FileStore::open(&path).unwrap();
        assert_eq!(load_all(&mut store), written);
        // A torn write: half a record at the end of the file.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[5, 0, 0, 0, 1, 9]).unwrap();
        drop(file);
        let recovered = store.load().unwrap();
        assert_eq!(recovered.torn_tail_bytes, 6);
        assert_eq!(fs::metadata(&path).unwrap().len(), recovered.valid_bytes, "the tail was truncated");
        store.replace(&written[..3]).unwrap();
        store.append(RecordKind::Commit, b"after").unwrap();
        store.sync().unwrap();
        let mut expected = written[..3].to_vec();
        expected.push((RecordKind::Commit, b"after".to_vec()));
        assert_eq!(load_all(&mut FileStore::open(&path).unwrap()), expected);
    }

    #[test]
    fn a_foreign_file_is_a_typed_error() {
        let dir = TempDir::new("foreign");
        let path = dir.0.join("other.log");
        fs::write(&path, b"not a log at all").unwrap();
        let mut store = FileStore::open(&path).unwrap();
        assert!(matches!(store.load(), Err(StoreError::BadHeader { .. })));
    }
}
