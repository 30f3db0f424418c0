//! The versioned wire format of sync messages.
//!
//! A datagram is one version byte, a CRC-32C of the body (so damage in
//! transit is refused, never decoded into a forged lane), and the
//! postcard-encoded [`Message`]. Lanes travel as their canonical bytes (the
//! receiver derives their ids; it never trusts an id from the wire) and a
//! snapshot as parts ([`WireSnapshot`]): its offer (canonical header, state
//! length and chunk manifest, `transfer.rs`) and one chunk of its state.
//!
//! Invariant: [`encode`] never produces, and [`decode`] never accepts, a
//! datagram over [`MAX_MESSAGE_BYTES`]; every part of a message has a named
//! limit where it is produced, and the limits add up to less than one
//! message (asserted below). [`decode`] rejects oversized, truncated,
//! trailing, damaged and wrong-version input with a typed error and never
//! panics; every lane and snapshot inside a decoded message is still
//! unverified until the replica checks it.

use super::delta::MAX_NEED;
use super::summary::MAX_SUMMARY_BYTES;
use super::transfer::{MAX_CHUNK_BYTES, MAX_OFFER_BYTES};
use crate::LaneId;
use crate::hash::{ChainHash, Fingerprint, SnapshotId, StateDigest, snapshot_tag, status_fingerprint};
use crate::lane::NodeId;
use crate::lane::{MAX_LANE_BYTES, MAX_PARENTS};
use crate::replica::Status;
use serde::{Deserialize, Serialize};

/// Version byte of the wire format (3: snapshots travel as an offer and
/// chunks, the boundary inside the header; handshakes state transfers.
/// 4: a Delta carries no status, and summary tips take eight bytes.
/// 5: a Hello states a [`HelloStatus`], a fingerprint of its position and
/// a tag of its snapshot, not the three 32-byte hashes; a snapshot id
/// travels, in a Lanes message, only when the responder asks for it;
/// summary tips are four-byte tags salted by the session; a Delta's exact
/// summary leaves out the authors it is ahead on).
pub const PROTOCOL_VERSION: u8 = 5;
/// Largest datagram accepted or produced.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Lane bytes one message carries at most; the rest follows in a new session.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Most bytes a lane takes in a batch: its canonical bytes, plus one tag
/// byte per parent written as a full id.
pub const MAX_BATCHED_LANE_BYTES: usize = MAX_LANE_BYTES + MAX_PARENTS;
/// Bytes of a Delta or Lanes message besides its summary, snapshot offer
/// and chunk, lane batch and need list: tags, session, status, the stated
/// transfer, the part's id and index, length prefixes, flags (with room).
const MESSAGE_OVERHEAD_BYTES: usize = 1024;

const _: () = assert!(MAX_BATCHED_LANE_BYTES < MAX_BATCH_BYTES, "one lane always fits a batch");
const _: () = assert!(
    ENVELOPE_BYTES
        + MESSAGE_OVERHEAD_BYTES
        + MAX_SUMMARY_BYTES
        + MAX_OFFER_BYTES
        + MAX_CHUNK_BYTES as usize
        + MAX_BATCH_BYTES
        + MAX_NEED * 32
        <= MAX_MESSAGE_BYTES,
    "a message with every part at its limit fits one datagram"
);

/// A node's full position. No message carries it since version 5 (a Hello
/// states a [`HelloStatus`]); it stays as a Delta's field that is not on
/// the wire, which the protocol fuzzer builds field by field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireStatus {
    /// Lanes in the canonical order.
    pub lane_index: u64,
    /// Chain hash at the tip.
    pub chain_hash: ChainHash,
    /// State digest at the tip.
    pub state_digest: StateDigest,
    /// Newest stable snapshot point.
    pub snapshot_index: u64,
    /// Its id.
    pub snapshot_id: SnapshotId,
}

impl From<&Status> for WireStatus {
    fn from(status: &Status) -> Self {
        Self {
            lane_index: status.lane_index,
            chain_hash: status.chain_hash,
            state_digest: status.state_digest,
            snapshot_index: status.snapshot_index,
            snapshot_id: status.snapshot_id,
        }
    }
}

impl WireStatus {
    /// Same lanes, same order, same state.
    pub fn in_sync_with(&self, other: &Self) -> bool {
        self.chain_hash == other.chain_hash && self.state_digest == other.state_digest
    }
}

/// A node's position as its Hello states it: what the responder needs to
/// tell "in sync" (the fingerprint of lane index, chain hash and state
/// digest) and to check the snapshot chains (the snapshot point and a tag
/// of its id), in 14 to 32 bytes instead of the 99 of a [`WireStatus`].
/// Fingerprint and tag are salted by the session id (`hash.rs`), so no
/// collision outlives a session.
///
/// A responder whose own fingerprint is equal answers in sync (one round
/// trip, as with the full hashes). Otherwise it compares the tag with its
/// own snapshot at `snapshot_index`; only when they differ (the chains
/// diverged) does it ask for the full id, which the initiator's Lanes
/// message carries, and it checks the chains on the full ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloStatus {
    /// Lanes in the canonical order.
    pub lane_index: u64,
    /// [`status_fingerprint`] of the lane index, chain hash and state digest.
    pub fingerprint: Fingerprint,
    /// Newest stable snapshot point.
    pub snapshot_index: u64,
    /// [`snapshot_tag`] of its id: four bytes on the wire.
    #[serde(with = "fixed_u32")]
    pub snapshot_tag: u32,
}

impl HelloStatus {
    /// What a node at `status` states in session `session`.
    pub fn new(status: &Status, session: u64) -> Self {
        Self {
            lane_index: status.lane_index,
            fingerprint: status_fingerprint(session, status.lane_index, &status.chain_hash, &status.state_digest),
            snapshot_index: status.snapshot_index,
            snapshot_tag: snapshot_tag(session, &status.snapshot_id),
        }
    }

    /// Same lanes, same order, same state (as far as a salted fingerprint
    /// tells, stated in the same session).
    pub fn in_sync_with(&self, other: &Self) -> bool {
        self.lane_index == other.lane_index && self.fingerprint == other.fingerprint
    }
}

/// One author's entry of the exact summary: the highest contiguous seq held
/// and a four-byte tag of that lane's id salted by the session (which
/// exposes forks: another lane at that seq has another tag, but for a
/// 2^-32 chance that the next session's salt undoes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryEntry {
    /// The author.
    pub author: NodeId,
    /// Highest seq held.
    pub seq: u64,
    /// `hash::tip_tag` of the lane at that seq in the session: four bytes
    /// on the wire, not a varint, since a hash is as good as random and a
    /// varint of a random u32 takes five.
    #[serde(with = "fixed_u32")]
    pub tip: u32,
}

/// A u32 as its four little-endian bytes.
mod fixed_u32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&value.to_le_bytes(), serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        <[u8; 4]>::deserialize(deserializer).map(u32::from_le_bytes)
    }
}

/// What a peer holds, as a handshake states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Summary {
    /// One entry per author: names the held set exactly (modest memberships).
    Exact(Vec<SummaryEntry>),
    /// Heads plus a Bloom filter of the lanes above the stable point (large
    /// memberships); it may claim lanes the peer lacks (false positives).
    Compact(CompactSummary),
}

/// The compact summary of a held set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactSummary {
    /// Order key of the last lane of the sender's stable prefix: every
    /// member holds every lane at or below it.
    pub stable_key: Option<(u64, NodeId, LaneId)>,
    /// The sender's heads: it holds them and all their ancestors. Only a
    /// Delta names them (for the initiator's need step); a Hello's list is
    /// empty.
    pub heads: Vec<LaneId>,
    /// The sender's lanes above the stable point.
    pub bloom: super::bloom::Bloom,
}

/// One part of a snapshot in transit: at most one chunk of its state, and
/// its offer when the receiver does not hold it yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSnapshot {
    /// The snapshot this part belongs to.
    pub id: SnapshotId,
    /// `SnapshotOffer::to_bytes`: the canonical header (which the id
    /// commits to), the state's length, the chunk size and the chunks'
    /// chaining values. Present when the receiver stated no transfer of `id`.
    pub offer: Option<Vec<u8>>,
    /// Which chunk of the state `chunk` is.
    pub chunk_index: u32,
    /// The chunk's bytes.
    pub chunk: Vec<u8>,
}

/// A snapshot transfer a node has under way from the peer it talks to: the
/// offer it assembles (the snapshot, and the state length and chunk size,
/// which the id does not cover), and the lowest chunk it still lacks. A
/// sender whose offer differs in any of them sends its offer again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotWant {
    /// The snapshot being assembled.
    pub id: SnapshotId,
    /// The offer's state length.
    pub state_len: u64,
    /// The offer's chunk size.
    pub chunk_bytes: u64,
    /// The lowest chunk index not yet received.
    pub chunk: u32,
}

/// A sync message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Initiator to responder: where I am and exactly what I hold.
    Hello {
        /// Session id.
        session: u64,
        /// Position, fingerprint and snapshot tag.
        status: HelloStatus,
        /// Summary of the held set.
        summary: Summary,
        /// The snapshot this node is assembling from the responder, if any.
        receiving: Option<SnapshotWant>,
    },
    /// Responder to initiator: same hashes, nothing to do.
    InSync {
        /// Session id.
        session: u64,
    },
    /// Responder to initiator: my summary, and the lanes you lack.
    Delta {
        /// Session id.
        session: u64,
        /// Not on the wire (since version 4), and `WireStatus::default()`
        /// in a decoded Delta: the initiator acts on the summary alone, and
        /// the 99 bytes of hashes were a fifth of what a session that moves
        /// a lane or two sends. The field stays while the protocol fuzzer
        /// builds Deltas field by field.
        #[serde(skip)]
        status: WireStatus,
        /// Summary of the held set (before the initiator's lanes). An exact
        /// one answering an exact Hello names only the entries that differ
        /// from the Hello's; a compact one names the heads.
        summary: Summary,
        /// The snapshot this node is assembling from the initiator, if any.
        receiving: Option<SnapshotWant>,
        /// Present when the initiator is behind the responder's prune point.
        snapshot: Option<WireSnapshot>,
        /// The lanes, as one batch (`batch.rs`) in canonical (hence causal) order.
        lanes: Vec<u8>,
        /// More lanes (or snapshot chunks) did not fit; sync again.
        more: bool,
        /// The Hello's snapshot tag differs from the responder's snapshot
        /// at that point: send the full id in the Lanes message.
        snapshot_asked: bool,
    },
    /// Initiator to responder: the lanes you lack; closes the session.
    Lanes {
        /// Session id.
        session: u64,
        /// Present when the responder is behind the initiator's prune point.
        snapshot: Option<WireSnapshot>,
        /// The lanes, as one batch (`batch.rs`) in canonical order.
        lanes: Vec<u8>,
        /// More lanes (or snapshot chunks) did not fit; sync again.
        more: bool,
        /// Lanes the initiator still lacks after the delta (compact summaries
        /// can hide them); the responder answers with `Supply`.
        need: Vec<LaneId>,
        /// The id of the snapshot the Hello stated, when the Delta asked
        /// for it (`snapshot_asked`).
        snapshot_id: Option<SnapshotId>,
    },
    /// Responder to initiator: the lanes asked for in `need`, with ancestors.
    Supply {
        /// Session id.
        session: u64,
        /// The lanes, as one batch (`batch.rs`) in canonical order.
        lanes: Vec<u8>,
    },
}

impl Message {
    /// The session this message belongs to.
    pub fn session(&self) -> u64 {
        match self {
            Self::Hello { session, .. }
            | Self::InSync { session }
            | Self::Delta { session, .. }
            | Self::Lanes { session, .. }
            | Self::Supply { session, .. } => *session,
        }
    }

    /// A short name for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello { .. } => "hello",
            Self::InSync { .. } => "in-sync",
            Self::Delta { .. } => "delta",
            Self::Lanes { .. } => "lanes",
            Self::Supply { .. } => "supply",
        }
    }
}

/// A datagram's bytes by what they carry (see
/// [`SessionMetrics`](super::SessionMetrics)); they add up to its length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Parts {
    /// Envelope, tags, session, status, stated transfer, flags, empty parts.
    pub(super) handshake: u64,
    /// The summary.
    pub(super) summary: u64,
    /// A lane batch that holds lanes, with its length prefix.
    pub(super) lanes: u64,
    /// A snapshot part and a need list.
    pub(super) other: u64,
}

impl Parts {
    /// Splits the `datagram_len` bytes `message` was encoded into. postcard
    /// writes a message's fields one after the other with nothing between
    /// them, so a field's serialized size is exactly what it takes in the
    /// datagram; the frame is the rest.
    pub(super) fn of(message: &Message, datagram_len: usize) -> Self {
        let snapshot_bytes = |part: &Option<WireSnapshot>| part.as_ref().map_or(0, |_| serialized_bytes(part));
        let (summary, lanes, other) = match message {
            Message::Hello { summary, .. } => (serialized_bytes(summary), 0, 0),
            Message::InSync { .. } => (0, 0, 0),
            Message::Delta { summary, snapshot, lanes, .. } => {
                (serialized_bytes(summary), lane_batch_bytes(lanes), snapshot_bytes(snapshot))
            }
            Message::Lanes { snapshot, lanes, need, .. } => {
                let need = if need.is_empty() { 0 } else { serialized_bytes(need) };
                (0, lane_batch_bytes(lanes), snapshot_bytes(snapshot) + need)
            }
            Message::Supply { lanes, .. } => (0, lane_batch_bytes(lanes), 0),
        };
        let carried = summary + lanes + other;
        let total = datagram_len as u64;
        assert!(carried <= total, "a {} message's parts take {carried} of its {total} bytes", message.kind());
        Self { handshake: total - carried, summary, lanes, other }
    }
}

/// The bytes a lane batch takes in a message (its length prefix and its
/// bytes), or 0 for a batch without lanes, which only frames the message.
pub(super) fn lane_batch_bytes(batch: &[u8]) -> u64 {
    if batch == super::batch::EMPTY_BATCH {
        return 0;
    }
    serialized_bytes(batch)
}

fn serialized_bytes<T: Serialize + ?Sized>(value: &T) -> u64 {
    // As in `encode`: plain serde data, and the size flavor cannot fill up.
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
        .expect("messages are plain serde data") as u64
}

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Empty datagram.
    #[error("empty message")]
    Empty,
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("message of {bytes} bytes exceeds the limit of {MAX_MESSAGE_BYTES}")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// A version this build does not speak.
    #[error("protocol version {found} is not supported (this build speaks {PROTOCOL_VERSION})")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
    },
    /// The body is not a valid message.
    #[error("malformed message body: {reason}")]
    Malformed {
        /// The decoder's reason.
        reason: String,
    },
    /// A bundle file larger than [`MAX_BUNDLE_BYTES`](super::MAX_BUNDLE_BYTES).
    #[error("bundle of {bytes} bytes exceeds the limit of {limit}")]
    BundleTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes after a complete message.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The envelope ends before its checksum.
    #[error("message of {bytes} bytes is shorter than its {ENVELOPE_BYTES}-byte envelope")]
    Truncated {
        /// Its size.
        bytes: usize,
    },
    /// The body's checksum does not match: the datagram was damaged in transit.
    #[error("checksum mismatch (carried {carried:08x}, computed {computed:08x}): damaged in transit")]
    Checksum {
        /// The checksum the envelope carries.
        carried: u32,
        /// The checksum of the body as received.
        computed: u32,
    },
}

/// Bytes before a message's body: the version, then a CRC-32C of the body.
/// Lanes are self-verifying (an id is the hash of its bytes), but a damaged
/// lane is still a well-formed lane with another id: without the checksum a
/// flipped bit in transit would forge a lane its author never wrote.
pub const ENVELOPE_BYTES: usize = 5;

/// Encodes a message as a datagram: version, checksum, body. Refuses to
/// produce one over [`MAX_MESSAGE_BYTES`], which no peer would accept: the
/// sender's parts have limits that add up to less, so for the syncer's own
/// messages this never fails.
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    // postcard only fails on writer errors or unsupported serde types; a Vec
    // writer and these plain types have neither.
    // Sized first, so the datagram is written into one allocation instead
    // of growing field by field.
    let mut envelope = Vec::with_capacity(ENVELOPE_BYTES + serialized_bytes(message) as usize);
    envelope.extend_from_slice(&[PROTOCOL_VERSION, 0, 0, 0, 0]);
    let mut datagram = postcard::to_extend(message, envelope).expect("messages are plain serde data");
    if datagram.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge { bytes: datagram.len() });
    }
    reseal(&mut datagram);
    Ok(datagram)
}

/// Writes the checksum of a datagram's body into its envelope. `encode`
/// does this; fuzzers and tests that damage a body on purpose call it to
/// get past the checksum to the decoder. Does nothing to a datagram
/// shorter than the envelope.
pub fn reseal(datagram: &mut [u8]) {
    if datagram.len() >= ENVELOPE_BYTES {
        let checksum = crc32c::crc32c(&datagram[ENVELOPE_BYTES..]);
        datagram[1..ENVELOPE_BYTES].copy_from_slice(&checksum.to_le_bytes());
    }
}

/// Decodes a datagram.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let (&version, _) = bytes.split_first().ok_or(WireError::Empty)?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge { bytes: bytes.len() });
    }
    if version != PROTOCOL_VERSION {
        return Err(WireError::UnknownVersion { found: version });
    }
    let (envelope, body) =
        bytes.split_first_chunk::<ENVELOPE_BYTES>().ok_or(WireError::Truncated { bytes: bytes.len() })?;
    let carried = u32::from_le_bytes([envelope[1], envelope[2], envelope[3], envelope[4]]);
    let computed = crc32c::crc32c(body);
    if carried != computed {
        return Err(WireError::Checksum { carried, computed });
    }
    let (message, rest) = postcard::take_from_bytes::<Message>(body)
        .map_err(|error| WireError::Malformed { reason: error.to_string() })?;
    if !rest.is_empty() {
        return Err(WireError::TrailingBytes { count: rest.len() });
    }
    Ok(message)
}
