//! The durable record log's format: where a node's lanes, snapshots and
//! commit records go ahead of acknowledging or sending them (the node says
//! what to write as [`crate::node::Persist`] outputs), and what it recovers
//! from after a crash. The log is append-only, and compaction replaces it
//! whole. This module is pure: encoding and decoding of log images. The
//! stores that hold them (memory, file, a simulated disk) live with their
//! drivers (crate `scx-store`, the simulator), and all of them recover
//! through [`decode_log`] and [`repaired_image`].
//!
//! Invariant: a store's `load` returns only records whose checksum verified,
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
//! store, the file store and the simulated disk, so all of them recover
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
//! The module does no IO, and has no clock, threads or randomness.

/// First bytes of every log: magic `SCXLOG` and format version `01`.
pub const LOG_HEADER: &[u8; 8] = b"SCXLOG01";
/// Largest record payload, in bytes, accepted on append and on load.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// Bytes of framing before each payload: length, kind and checksum.
pub const FRAME_BYTES: usize = 9;

/// The length field is a `u32`, so the limit must fit in one.
const _: () = assert!(MAX_RECORD_BYTES <= u32::MAX as usize);

/// Bytes of the header, as a file offset.
pub const HEADER_BYTES: u64 = LOG_HEADER.len() as u64;

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
    /// must not author until every other member synced with it, and a
    /// crash in between must not make it forget. Payload `[2]`: recovery
    /// found a rotten record and cut the log there (see a store's `load`).
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
/// A record payload larger than [`MAX_RECORD_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("record of {payload_bytes} bytes exceeds the limit of {max_bytes} bytes")]
pub struct RecordTooLarge {
    /// The payload's size.
    pub payload_bytes: usize,
    /// The limit, [`MAX_RECORD_BYTES`].
    pub max_bytes: usize,
}

/// Appends one framed record to `out`; on error `out` is unchanged.
pub fn encode_record(kind: RecordKind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), RecordTooLarge> {
    let payload_bytes = payload.len();
    if payload_bytes > MAX_RECORD_BYTES {
        return Err(RecordTooLarge { payload_bytes, max_bytes: MAX_RECORD_BYTES });
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
pub fn encode_log(records: &[Record]) -> Result<Vec<u8>, RecordTooLarge> {
    // Each record reserves its own frame.
    let mut out = LOG_HEADER.to_vec();
    for record in records {
        encode_record(record.kind, &record.payload, &mut out)?;
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
pub fn repaired_image(bytes: &[u8], recovered: &Recovered) -> Vec<u8> {
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
pub fn frame_checksum(head: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(head), payload)
}
