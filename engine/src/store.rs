//! The durable record log: where a node writes lanes, snapshots and commit
//! records ahead of acknowledging or sending them, and what it recovers from
//! after a crash. The log is append-only; [`Store::sync`] makes every record
//! appended so far durable, and [`Store::replace`] atomically compacts it.
//!
//! Invariant: [`Store::load`] returns only records whose checksum verified,
//! in the order they were appended, with no gap: the longest intact prefix of
//! the log. A torn or corrupt record and everything after it are the *torn
//! tail*, which is reported and truncated away, never returned. No input
//! bytes make recovery panic.
//!
//! # On-disk format
//!
//! ```text
//! header  : "SCXLOG01"                 8 bytes: magic "SCXLOG", format version "01"
//! record* : len      u32 LE            payload length, at most MAX_RECORD_BYTES
//!           kind     u8                RecordKind tag (1 lane, 2 snapshot, 3 commit, 4 rejoin)
//!           crc32c   u32 LE            CRC-32C over (len ‖ kind ‖ payload)
//!           payload  [u8; len]
//! ```
//!
//! # Recovery policy
//!
//! [`decode_log`] is a pure function over a log image, shared by the memory
//! store, the file store and any simulated disk, so all of them recover
//! identically. It stops at the first record that is truncated, has a length
//! above [`MAX_RECORD_BYTES`] or fails its checksum; that record and
//! everything after it, even intact records behind a corrupt one in the
//! middle, are the torn tail. When the defect is rot rather than a tear (a
//! complete record whose checksum fails), the store appends a rejoin record
//! where it cut, atomically with the cut, so a crash cannot erase why the
//! log is shorter. Two defects are refused with an error instead
//! of being truncated, because truncating would destroy data that is not
//! ours or not understood: a header that is not [`LOG_HEADER`] (a foreign
//! file, or a log of another format version), and a record whose checksum
//! verifies but whose kind tag is unknown (a record written by a newer
//! version). An image that ends inside the header (a torn creation) is an
//! empty log.
//!
//! The module does no IO of its own beyond the file store's, and has no
//! clock, threads or randomness.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of every log: magic `SCXLOG` and format version `01`.
pub const LOG_HEADER: &[u8; 8] = b"SCXLOG01";
/// Largest record payload, in bytes, accepted on append and on load.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Bytes of framing before each payload: length, kind and checksum.
pub const FRAME_BYTES: usize = 9;

/// The length field is a `u32`, so the limit must fit in one.
const _: () = assert!(MAX_RECORD_BYTES <= u32::MAX as usize);

/// Bytes of the header, as a file offset.
const HEADER_BYTES: u64 = LOG_HEADER.len() as u64;

/// The path a [`MemStore`] names in its errors.
const MEMORY_PATH: &str = "<memory>";

/// What a record holds; stored as its `u8` tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum RecordKind {
    /// A lane's canonical bytes.
    Lane = 1,
    /// A snapshot with its boundary.
    Snapshot = 2,
    /// A committed snapshot id at a lane index.
    Commit = 3,
    /// The node started (payload `[1]`) or finished (`[0]`) rejoining: it
    /// must not author until a majority of its peers synced with it, and a
    /// crash in between must not make it forget. Payload `[2]`: recovery
    /// found a rotten record and cut the log there (see [`Store::load`]).
    Rejoin = 4,
}

impl RecordKind {
    /// Every kind, in tag order.
    pub const ALL: [RecordKind; 4] = [RecordKind::Lane, RecordKind::Snapshot, RecordKind::Commit, RecordKind::Rejoin];

    /// The tag stored on disk.
    pub fn tag(self) -> u8 {
        self as u8
    }

    /// The kind with this tag, if any.
    pub fn from_tag(tag: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.tag() == tag)
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

/// Why decoding stopped before the end of a log image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailDefect {
    /// The image ends inside the header or inside a record (a torn write).
    Truncated,
    /// A record's length field is above [`MAX_RECORD_BYTES`].
    Oversized {
        /// The length the field claims.
        payload_bytes: u64,
    },
    /// A record's checksum does not match its bytes.
    BadChecksum,
    /// The image does not start with [`LOG_HEADER`]. Refused, not repaired.
    BadHeader,
    /// A record with a valid checksum has a kind tag this version does not
    /// know (a newer writer). Refused, not repaired.
    UnknownKind {
        /// The tag found.
        tag: u8,
    },
}

impl TailDefect {
    /// Whether truncating the tail is the right repair; `false` for defects
    /// that mean the log is not ours to cut ([`TailDefect::BadHeader`],
    /// [`TailDefect::UnknownKind`]).
    pub fn is_repairable(self) -> bool {
        !matches!(self, Self::BadHeader | Self::UnknownKind { .. })
    }

    /// Whether the defect is damage to bytes that had been durable rather
    /// than a write the crash cut short. A crash tears the unsynced suffix
    /// of the log, so what it leaves ends inside a record
    /// ([`TailDefect::Truncated`]); a record that is complete on disk but
    /// fails its checksum, or a length no writer writes, is rot. Records
    /// the node acknowledged may be in it or behind it.
    pub fn is_corruption(self) -> bool {
        matches!(self, Self::BadChecksum | Self::Oversized { .. })
    }
}

/// What decoding a log image found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Intact records, in append order.
    pub records: Vec<Record>,
    /// Length of the intact prefix, header included (0 if the header itself
    /// is torn or bad).
    pub valid_bytes: u64,
    /// Bytes after the intact prefix, dropped by recovery.
    pub torn_tail_bytes: u64,
    /// Why decoding stopped early; `None` when the whole image is intact.
    pub defect: Option<TailDefect>,
}

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
    /// A payload larger than [`MAX_RECORD_BYTES`] was appended.
    #[error("record of {payload_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    RecordTooLarge {
        /// The payload's size.
        payload_bytes: usize,
        /// The limit, [`MAX_RECORD_BYTES`].
        max_bytes: usize,
    },
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
    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError>;
}

/// Appends one framed record to `out`; on error `out` is unchanged.
pub fn encode_record(kind: RecordKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StoreError> {
    let payload_bytes = payload.len();
    if payload_bytes > MAX_RECORD_BYTES {
        return Err(StoreError::RecordTooLarge { payload_bytes, max_bytes: MAX_RECORD_BYTES });
    }
    // Cannot truncate: payload_bytes <= MAX_RECORD_BYTES <= u32::MAX (asserted above).
    let len = (payload_bytes as u32).to_le_bytes();
    let head = [len[0], len[1], len[2], len[3], kind.tag()];
    out.reserve(FRAME_BYTES + payload_bytes);
    out.extend_from_slice(&head);
    out.extend_from_slice(&frame_checksum(&head, payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// A whole log image holding exactly `records`, header included.
pub fn encode_log(records: &[(RecordKind, Vec<u8>)]) -> Result<Vec<u8>, StoreError> {
    let total_bytes = records.iter().map(|(_, payload)| FRAME_BYTES + payload.len()).sum::<usize>();
    let mut out = Vec::with_capacity(LOG_HEADER.len() + total_bytes);
    out.extend_from_slice(LOG_HEADER);
    for (kind, payload) in records {
        encode_record(*kind, payload, &mut out)?;
    }
    Ok(out)
}

/// The payload of the rejoin record recovery appends where it cut a rotten
/// log (see [`RecordKind::Rejoin`]).
pub const ROT_FOUND: [u8; 1] = [2];

/// What a store keeps of an image whose decoding found `recovered`: the
/// intact prefix, and after rot (not a tear) a rejoin record behind it, so
/// that cutting the log and remembering why are one atomic step: a crash
/// right after recovery must not leave a shorter log that looks healthy.
fn repaired_image(bytes: &[u8], recovered: &Recovered) -> Vec<u8> {
    // Cannot truncate: valid_bytes <= bytes.len(), a usize.
    let mut image = bytes[..recovered.valid_bytes as usize].to_vec();
    if recovered.defect.is_some_and(TailDefect::is_corruption) {
        encode_record(RecordKind::Rejoin, &ROT_FOUND, &mut image).expect("a one-byte record is under the limit");
    }
    image
}

/// Decodes a log image into its intact prefix of records and its torn tail.
/// Total: never panics, whatever `bytes` hold. An empty image is an empty
/// log with no defect.
pub fn decode_log(bytes: &[u8]) -> Recovered {
    if let Some(defect) = header_defect(bytes) {
        return Recovered { torn_tail_bytes: bytes.len() as u64, defect: Some(defect), ..Recovered::default() };
    }
    let mut records = Vec::new();
    let mut at = LOG_HEADER.len().min(bytes.len());
    let mut defect = None;
    while at < bytes.len() {
        match decode_record(&bytes[at..]) {
            Ok((record, record_bytes)) => {
                records.push(record);
                at += record_bytes;
            }
            Err(found) => {
                defect = Some(found);
                break;
            }
        }
    }
    Recovered { records, valid_bytes: at as u64, torn_tail_bytes: (bytes.len() - at) as u64, defect }
}

/// The header's defect, if any; `None` for an intact header or an empty image.
fn header_defect(bytes: &[u8]) -> Option<TailDefect> {
    let prefix = &bytes[..bytes.len().min(LOG_HEADER.len())];
    if !LOG_HEADER.starts_with(prefix) {
        Some(TailDefect::BadHeader)
    } else if prefix.len() < LOG_HEADER.len() && !prefix.is_empty() {
        Some(TailDefect::Truncated)
    } else {
        None
    }
}

/// Decodes the record at the start of `rest` (non-empty); returns it and
/// its framed length in bytes.
fn decode_record(rest: &[u8]) -> Result<(Record, usize), TailDefect> {
    let (frame, body) = rest.split_first_chunk::<FRAME_BYTES>().ok_or(TailDefect::Truncated)?;
    let [l0, l1, l2, l3, tag, c0, c1, c2, c3] = *frame;
    let payload_bytes = u32::from_le_bytes([l0, l1, l2, l3]);
    if payload_bytes as usize > MAX_RECORD_BYTES {
        return Err(TailDefect::Oversized { payload_bytes: u64::from(payload_bytes) });
    }
    let payload = body.get(..payload_bytes as usize).ok_or(TailDefect::Truncated)?;
    if frame_checksum(&frame[..5], payload) != u32::from_le_bytes([c0, c1, c2, c3]) {
        return Err(TailDefect::BadChecksum);
    }
    let kind = RecordKind::from_tag(tag).ok_or(TailDefect::UnknownKind { tag })?;
    Ok((Record { kind, payload: payload.to_vec() }, FRAME_BYTES + payload.len()))
}

/// CRC-32C over the length-and-kind head of a frame, then the payload.
fn frame_checksum(head: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(head), payload)
}

/// The error for a defect that must not be repaired by truncation, if any.
fn refusal(recovered: &Recovered, bytes: &[u8], path: &Path) -> Option<StoreError> {
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
        encode_record(kind, payload, &mut self.unsynced)
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

    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError> {
        self.durable = encode_log(records)?;
        self.unsynced.clear();
        Ok(())
    }
}

/// A file-backed store. Appends are buffered in memory and reach the file
/// only in [`Store::sync`], as one write followed by `fdatasync`; dropping
/// the store without syncing loses them, as a crash would. [`Store::replace`]
/// writes a temporary file beside the log, fsyncs it, renames it over the
/// log and fsyncs the directory.
///
/// After any failed write, fsync or compaction the file's state is unknown
/// (a partial write, or pages the kernel dropped), so the store is
/// *poisoned*: `append` and `sync` return [`StoreError::Poisoned`] until a
/// [`Store::load`] or [`Store::replace`] re-establishes the file's content.
/// One `FileStore` per path; there is no locking between processes.
pub struct FileStore {
    path: PathBuf,
    temp_path: PathBuf,
    file: File,
    unsynced: Vec<u8>,
    durable_len: u64,
    poisoned: bool,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field("durable_bytes", &self.durable_len)
            .field("unsynced_bytes", &self.unsynced.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

impl FileStore {
    /// Opens the log at `path`, creating it (atomically, with its header) if
    /// it does not exist or holds only a torn header. Refuses a file that is
    /// not an SCX log with [`StoreError::BadHeader`], leaving it untouched.
    /// Call [`Store::load`] next to recover the records.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let temp_path = temp_path_for(&path)?;
        remove_stale_temp(&temp_path)?;
        match read_header(&path)? {
            None => write_atomically(&path, &temp_path, LOG_HEADER)?,
            Some(found) if found.len() < LOG_HEADER.len() && LOG_HEADER.starts_with(&found) => {
                write_atomically(&path, &temp_path, LOG_HEADER)?;
            }
            Some(found) if found != LOG_HEADER => return Err(StoreError::BadHeader { path, found }),
            Some(_) => {}
        }
        let file = open_log(&path)?;
        let durable_len = file.metadata().map_err(io_error("stat", &path))?.len();
        Ok(Self { path, temp_path, file, unsynced: Vec::new(), durable_len, poisoned: false })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the log file as of the last sync, load or replace, header
    /// included.
    pub fn bytes_durable(&self) -> u64 {
        self.durable_len
    }

    /// Bytes appended but not yet synced.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    fn ensure_healthy(&self) -> Result<(), StoreError> {
        match self.poisoned {
            true => Err(StoreError::Poisoned { path: self.path.clone() }),
            false => Ok(()),
        }
    }

    fn write_unsynced(&mut self) -> Result<(), StoreError> {
        self.file.write_all(&self.unsynced).map_err(io_error("write", &self.path))?;
        self.file.sync_data().map_err(io_error("fsync", &self.path))?;
        self.durable_len += self.unsynced.len() as u64;
        self.unsynced.clear();
        Ok(())
    }

    fn reload(&mut self) -> Result<Recovered, StoreError> {
        // A fresh handle: a failed replace may have left the old one on an unlinked file.
        self.file = open_log(&self.path)?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes).map_err(io_error("read", &self.path))?;
        let recovered = decode_log(&bytes);
        if let Some(error) = refusal(&recovered, &bytes, &self.path) {
            return Err(error);
        }
        if recovered.valid_bytes < HEADER_BYTES {
            self.install(LOG_HEADER)?;
        } else if recovered.defect.is_some_and(TailDefect::is_corruption) {
            // Cut and mark in one rename (see `repaired_image`).
            self.install(&repaired_image(&bytes, &recovered))?;
        } else {
            if recovered.torn_tail_bytes > 0 {
                self.file.set_len(recovered.valid_bytes).map_err(io_error("truncate", &self.path))?;
            }
            // Always: what load returns must be durable even if an earlier
            // process wrote it without syncing before it died.
            self.file.sync_data().map_err(io_error("fsync", &self.path))?;
            self.durable_len = recovered.valid_bytes;
        }
        Ok(recovered)
    }

    fn install(&mut self, image: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.path, &self.temp_path, image)?;
        self.file = open_log(&self.path)?;
        self.durable_len = image.len() as u64;
        Ok(())
    }
}

impl Store for FileStore {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        self.ensure_healthy()?;
        encode_record(kind, payload, &mut self.unsynced)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.ensure_healthy()?;
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let result = self.write_unsynced();
        self.poisoned = result.is_err();
        result
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        self.unsynced.clear();
        let result = self.reload();
        self.poisoned = result.is_err();
        result
    }

    fn replace(&mut self, records: &[(RecordKind, Vec<u8>)]) -> Result<(), StoreError> {
        let image = encode_log(records)?;
        self.unsynced.clear();
        let result = self.install(&image);
        self.poisoned = result.is_err();
        result
    }
}

/// The compaction file beside `path`: its file name with `.compacting`.
fn temp_path_for(path: &Path) -> Result<PathBuf, StoreError> {
    let Some(name) = path.file_name() else {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "the log path has no file name");
        return Err(StoreError::Io { op: "open", path: path.to_path_buf(), source });
    };
    let mut temp_name = name.to_os_string();
    temp_name.push(".compacting");
    Ok(path.with_file_name(temp_name))
}

/// Removes a compaction file left by a crash during [`Store::replace`]; it
/// was never renamed over the log, so it holds nothing the log needs.
fn remove_stale_temp(temp_path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(temp_path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(StoreError::Io { op: "remove", path: temp_path.to_path_buf(), source: error })
        }
        _ => Ok(()),
    }
}

/// The file's first header-length bytes, or `None` if it does not exist.
fn read_header(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::Io { op: "open", path: path.to_path_buf(), source: error }),
    };
    let mut found = Vec::with_capacity(LOG_HEADER.len());
    file.take(HEADER_BYTES).read_to_end(&mut found).map_err(io_error("read", path))?;
    Ok(Some(found))
}

/// Opens an existing log for reading and appending.
fn open_log(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new().read(true).append(true).open(path).map_err(io_error("open", path))
}

/// Makes `image` the content of `path` atomically and durably: write and
/// fsync `temp_path`, rename it over `path`, fsync the directory.
fn write_atomically(path: &Path, temp_path: &Path, image: &[u8]) -> Result<(), StoreError> {
    let written = File::create(temp_path)
        .and_then(|mut file| file.write_all(image).and_then(|()| file.sync_data()))
        .map_err(io_error("write", temp_path));
    if let Err(error) = written {
        // Best effort: a leftover temp file is removed again on the next open.
        let _ = fs::remove_file(temp_path);
        return Err(error);
    }
    fs::rename(temp_path, path).map_err(io_error("rename", path))?;
    sync_directory(path)
}

/// Fsyncs the directory holding `path`, making a rename or creation in it
/// durable.
#[cfg(unix)]
fn sync_directory(path: &Path) -> Result<(), StoreError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory).and_then(|dir| dir.sync_all()).map_err(io_error("fsync", directory))
}

/// Directories cannot be opened as files here; the rename is as durable as
/// the platform makes it.
#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Written = Vec<(RecordKind, Vec<u8>)>;

    /// `count` records cycling through every kind, with varied payload sizes
    /// (including empty ones).
    fn records(count: usize) -> Written {
        (0..count).map(|i| (RecordKind::ALL[i % 4], (0..i * 7 % 50).map(|j| (i * 31 + j) as u8).collect())).collect()
    }

    fn load_all(store: &mut impl Store) -> Written {
        let recovered = store.load().expect("the log loads");
        recovered.records.into_iter().map(|record| (record.kind, record.payload)).collect()
    }

    fn append_all(store: &mut impl Store, written: &[(RecordKind, Vec<u8>)]) {
        for (kind, payload) in written {
            store.append(*kind, payload).expect("the record fits");
        }
    }

    /// A synced MemStore holding `written`.
    fn synced_mem(written: &[(RecordKind, Vec<u8>)]) -> MemStore {
        let mut store = MemStore::new();
        append_all(&mut store, written);
        store.sync().expect("memory syncs");
        store
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let unique = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir_name = format!("scx-store-{name}-{}-{unique}", std::process::id());
            let path = std::env::temp_dir().join(dir_name);
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).expect("the temp dir is writable");
            Self(path)
        }

        fn log(&self) -> PathBuf {
            self.0.join("node.log")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn an_empty_store_loads_no_records() {
        let recovered = MemStore::new().load().unwrap();
        assert_eq!(recovered, Recovered { valid_bytes: HEADER_BYTES, ..Recovered::default() });
        let dir = TempDir::new("empty");
        let recovered = FileStore::open(dir.log()).unwrap().load().unwrap();
        assert_eq!(recovered, Recovered { valid_bytes: HEADER_BYTES, ..Recovered::default() });
        assert_eq!(fs::read(dir.log()).unwrap(), LOG_HEADER, "open creates the header");
        assert!(load_all(&mut FileStore::open(dir.log()).unwrap()).is_empty(), "and reopens empty");
        assert_eq!(decode_log(&[]), Recovered::default(), "an empty image is an empty log");
    }

    #[test]
    fn records_of_every_kind_round_trip_through_memory() {
        let written = records(300);
        let mut store = synced_mem(&written);
        assert_eq!(load_all(&mut store), written);
        assert_eq!(load_all(&mut store), written, "load is repeatable");
        assert_eq!(store.bytes_durable(), encode_log(&written).unwrap().len() as u64);
    }

    #[test]
    fn records_of_every_kind_round_trip_through_a_file_and_reopen() {
        let dir = TempDir::new("round-trip");
        let written = records(300);
        let mut store = FileStore::open(dir.log()).unwrap();
        assert!(load_all(&mut store).is_empty());
        append_all(&mut store, &written[..100]);
        store.sync().unwrap();
        append_all(&mut store, &written[100..]);
        store.sync().unwrap();
        assert_eq!(store.unsynced_len(), 0);
        assert_eq!(store.bytes_durable(), fs::metadata(dir.log()).unwrap().len());
        assert_eq!(load_all(&mut store), written);
        drop(store);
        let mut reopened = FileStore::open(dir.log()).unwrap();
        assert_eq!(load_all(&mut reopened), written);
        assert_eq!(fs::read(dir.log()).unwrap(), encode_log(&written).unwrap(), "the file is the encoded log");
    }

    #[test]
    fn a_crash_drops_unsynced_records() {
        let written = records(20);
        let mut store = synced_mem(&written[..15]);
        append_all(&mut store, &written[15..]);
        assert!(store.unsynced_len() > 0);
        store.crash(None);
        assert_eq!(store.unsynced_len(), 0);
        assert_eq!(load_all(&mut store), written[..15]);
        let dir = TempDir::new("crash");
        let mut file = FileStore::open(dir.log()).unwrap();
        append_all(&mut file, &written[..15]);
        file.sync().unwrap();
        append_all(&mut file, &written[15..]);
        drop(file);
        assert_eq!(load_all(&mut FileStore::open(dir.log()).unwrap()), written[..15]);
    }

    #[test]
    fn load_discards_unsynced_appends() {
        let written = records(4);
        let mut store = synced_mem(&written[..2]);
        append_all(&mut store, &written[2..]);
        assert_eq!(load_all(&mut store), written[..2]);
        store.sync().unwrap();
        assert_eq!(load_all(&mut store), written[..2], "the discarded appends do not come back");
    }

    #[test]
    fn a_tear_at_every_offset_of_the_last_record_recovers_exactly_the_synced_records() {
        let written = records(6);
        let mut base = synced_mem(&written[..5]);
        let synced_bytes = base.bytes_durable();
        append_all(&mut base, &written[5..]);
        for tear in 0..=base.unsynced_len() {
            let mut store = base.clone();
            store.crash(Some(tear));
            let recovered = store.load().unwrap();
            let complete = tear == base.unsynced_len();
            let expected = if complete { &written[..] } else { &written[..5] };
            assert_eq!(recovered.records.len(), expected.len(), "tear of {tear} bytes");
            assert_eq!(recovered.torn_tail_bytes, if complete { 0 } else { tear as u64 });
            assert_eq!(recovered.defect, (tear > 0 && !complete).then_some(TailDefect::Truncated));
            assert_eq!(load_all(&mut store), expected, "tear of {tear} bytes: the truncation holds");
            if !complete {
                assert_eq!(store.bytes_durable(), synced_bytes);
            }
        }
    }

    #[test]
    fn a_file_torn_at_every_offset_of_the_last_record_recovers_and_is_truncated() {
        let dir = TempDir::new("tear");
        let written = records(4);
        let synced = encode_log(&written[..3]).unwrap();
        let mut last = Vec::new();
        encode_record(written[3].0, &written[3].1, &mut last).unwrap();
        for tear in 0..last.len() {
            fs::write(dir.log(), [&synced[..], &last[..tear]].concat()).unwrap();
            let mut store = FileStore::open(dir.log()).unwrap();
            let recovered = store.load().unwrap();
            assert_eq!(recovered.torn_tail_bytes, tear as u64);
            assert_eq!(fs::read(dir.log()).unwrap(), synced, "tear of {tear} bytes is truncated on disk");
            store.append(RecordKind::Commit, b"next").unwrap();
            store.sync().unwrap();
            let mut expected = written[..3].to_vec();
            expected.push((RecordKind::Commit, b"next".to_vec()));
            assert_eq!(load_all(&mut FileStore::open(dir.log()).unwrap()), expected);
        }
    }

    /// Every single-byte corruption of a small synced log: the header is
    /// refused, anything else recovers an intact prefix shorter than the log.
    #[test]
    fn any_flipped_byte_recovers_a_strict_prefix_and_never_panics() {
        let written = records(8);
        let base = synced_mem(&written);
        for position in 0..base.durable_bytes().len() {
            for mask in [0x01, 0x10, 0x80, 0xFF] {
                let mut store = base.clone();
                store.corrupt(position, mask);
                match store.load() {
                    Err(StoreError::BadHeader { .. }) => assert!(position < LOG_HEADER.len()),
                    Err(error) => panic!("byte {position} mask {mask:#x}: {error}"),
                    Ok(recovered) => {
                        let got: Written = recovered.records.into_iter().map(|r| (r.kind, r.payload)).collect();
                        assert!(got.len() < written.len(), "flipping byte {position} went unnoticed");
                        assert_eq!(got, written[..got.len()], "only an intact prefix comes back");
                        assert_eq!(recovered.valid_bytes + recovered.torn_tail_bytes, base.bytes_durable());
                    }
                }
            }
        }
    }

    #[test]
    fn any_flipped_byte_of_a_file_recovers_a_strict_prefix() {
        let dir = TempDir::new("flip");
        let written = records(5);
        let image = encode_log(&written).unwrap();
        for position in LOG_HEADER.len()..image.len() {
            let mut corrupted = image.clone();
            corrupted[position] ^= 0x04;
            fs::write(dir.log(), &corrupted).unwrap();
            let mut store = FileStore::open(dir.log()).unwrap();
            let recovered = store.load().unwrap();
            let got: Written = recovered.records.iter().map(|r| (r.kind, r.payload.clone())).collect();
            assert!(got.len() < written.len(), "flipping byte {position} went unnoticed");
            assert_eq!(got, written[..got.len()]);
            // The prefix, and after rot (not a tear) the rejoin record cut with it.
            let mut expected = encode_log(&got).unwrap();
            if recovered.defect.is_some_and(TailDefect::is_corruption) {
                encode_record(RecordKind::Rejoin, &ROT_FOUND, &mut expected).unwrap();
            }
            assert_eq!(fs::read(dir.log()).unwrap(), expected, "the file holds the prefix");
        }
    }

    #[test]
    fn corruption_in_the_middle_drops_everything_after_it() {
        let written = records(10);
        let mut store = synced_mem(&written);
        let offset = encode_log(&written[..4]).unwrap().len();
        store.corrupt(offset + FRAME_BYTES, 0x01);
        let recovered = store.load().unwrap();
        assert_eq!(recovered.records.len(), 4);
        assert_eq!(recovered.defect, Some(TailDefect::BadChecksum));
        assert_eq!(recovered.valid_bytes, offset as u64);
        assert_eq!(recovered.torn_tail_bytes, (encode_log(&written).unwrap().len() - offset) as u64);
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let mut image = encode_log(&records(3)).unwrap();
        let valid_bytes = image.len() as u64;
        image.extend_from_slice(&[0; 64]);
        let recovered = decode_log(&image);
        assert_eq!(recovered.records.len(), 3);
        assert_eq!((recovered.valid_bytes, recovered.torn_tail_bytes), (valid_bytes, 64));
        assert_eq!(recovered.defect, Some(TailDefect::BadChecksum));
    }

    #[test]
    fn oversized_records_are_refused_on_append_and_torn_on_load() {
        let mut store = MemStore::new();
        let error = store.append(RecordKind::Lane, &vec![0; MAX_RECORD_BYTES + 1]).unwrap_err();
        assert!(
            matches!(error, StoreError::RecordTooLarge { payload_bytes, .. } if payload_bytes == MAX_RECORD_BYTES + 1)
        );
        assert_eq!(store.unsynced_len(), 0, "a refused append leaves nothing behind");
        let mut image = LOG_HEADER.to_vec();
        image.extend_from_slice(&u32::MAX.to_le_bytes());
        image.extend_from_slice(&[1, 0, 0, 0, 0]);
        let recovered = decode_log(&image);
        assert_eq!(recovered.defect, Some(TailDefect::Oversized { payload_bytes: u64::from(u32::MAX) }));
        assert_eq!(recovered.torn_tail_bytes, FRAME_BYTES as u64);
    }

    #[test]
    fn an_unknown_kind_with_a_valid_checksum_is_refused_not_truncated() {
        let mut image = encode_log(&records(2)).unwrap();
        let offset = image.len();
        let head = [1, 0, 0, 0, 9];
        image.extend_from_slice(&head);
        image.extend_from_slice(&frame_checksum(&head, b"x").to_le_bytes());
        image.push(b'x');
        let dir = TempDir::new("unknown-kind");
        fs::write(dir.log(), &image).unwrap();
        let error = FileStore::open(dir.log()).unwrap().load().unwrap_err();
        assert!(matches!(error, StoreError::UnknownKind { tag: 9, offset: o, .. } if o == offset as u64), "{error}");
        assert_eq!(fs::read(dir.log()).unwrap(), image, "the log is left untouched");
    }

    #[test]
    fn a_foreign_file_is_refused_and_left_untouched() {
        let dir = TempDir::new("foreign");
        fs::write(dir.log(), b"not a log at all").unwrap();
        let error = FileStore::open(dir.log()).unwrap_err();
        assert!(matches!(&error, StoreError::BadHeader { found, .. } if found == b"not a lo"), "{error}");
        fs::write(dir.log(), b"abc").unwrap();
        assert!(matches!(FileStore::open(dir.log()), Err(StoreError::BadHeader { .. })));
        assert_eq!(fs::read(dir.log()).unwrap(), b"abc");
    }

    #[test]
    fn a_torn_header_is_an_empty_log() {
        let dir = TempDir::new("torn-header");
        fs::write(dir.log(), &LOG_HEADER[..3]).unwrap();
        let mut store = FileStore::open(dir.log()).unwrap();
        assert!(load_all(&mut store).is_empty());
        assert_eq!(fs::read(dir.log()).unwrap(), LOG_HEADER);
        let recovered = decode_log(&LOG_HEADER[..5]);
        assert_eq!((recovered.valid_bytes, recovered.torn_tail_bytes), (0, 5));
        assert_eq!(recovered.defect, Some(TailDefect::Truncated));
    }

    #[test]
    fn replace_then_load_returns_exactly_the_new_records() {
        let old = records(10);
        let new: Written = records(30).into_iter().skip(20).collect();
        let mut store = synced_mem(&old);
        store.append(RecordKind::Lane, b"unsynced").unwrap();
        store.replace(&new).unwrap();
        assert_eq!(store.unsynced_len(), 0, "replace discards unsynced appends");
        store.crash(None);
        assert_eq!(load_all(&mut store), new, "the replacement is durable");
        store.replace(&[]).unwrap();
        assert!(load_all(&mut store).is_empty());
    }

    #[test]
    fn a_replaced_file_log_survives_reopen_and_appends_continue() {
        let dir = TempDir::new("replace");
        let old = records(10);
        let mut store = FileStore::open(dir.log()).unwrap();
        append_all(&mut store, &old);
        store.sync().unwrap();
        store.append(RecordKind::Lane, b"unsynced").unwrap();
        store.replace(&old[..3]).unwrap();
        store.append(RecordKind::Commit, b"after").unwrap();
        store.sync().unwrap();
        let mut expected = old[..3].to_vec();
        expected.push((RecordKind::Commit, b"after".to_vec()));
        assert_eq!(load_all(&mut store), expected);
        drop(store);
        assert_eq!(load_all(&mut FileStore::open(dir.log()).unwrap()), expected);
        let leftovers: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["node.log"], "no temporary file remains");
    }

    #[test]
    fn a_stale_compaction_file_is_removed_on_open() {
        let dir = TempDir::new("stale");
        let temp_path = temp_path_for(&dir.log()).unwrap();
        fs::write(&temp_path, b"half a compaction").unwrap();
        FileStore::open(dir.log()).unwrap();
        assert!(!temp_path.exists());
    }

    #[test]
    fn a_failed_replace_poisons_the_store_until_reload() {
        let dir = TempDir::new("poison");
        let written = records(3);
        let mut store = FileStore::open(dir.log()).unwrap();
        append_all(&mut store, &written);
        store.sync().unwrap();
        // Make the temp file impossible to create: a directory in its place.
        let temp_path = temp_path_for(&dir.log()).unwrap();
        fs::create_dir(&temp_path).unwrap();
        assert!(matches!(store.replace(&[]), Err(StoreError::Io { op: "write", .. })));
        assert!(matches!(store.append(RecordKind::Lane, b"x"), Err(StoreError::Poisoned { .. })));
        assert!(matches!(store.sync(), Err(StoreError::Poisoned { .. })));
        fs::remove_dir(&temp_path).unwrap();
        assert_eq!(load_all(&mut store), written, "the failed replace left the log intact");
        store.append(RecordKind::Lane, b"x").unwrap();
        store.sync().unwrap();
    }
}
