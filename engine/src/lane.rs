//! Lanes: the hash-identified units of change that nodes exchange.
//!
//! A lane names its parents (the heads its author held), its author and the
//! author's sequence number, a Lamport stamp and a list of law operations. Its
//! id is the keyed blake3 of its canonical encoding, so the id commits to the
//! whole ancestry: nobody can change a lane, or anything before it, without
//! changing its id.
//!
//! Invariant: `Lane::decode` accepts exactly the byte strings `Lane::encode`
//! produces (version, minimal varints, strictly ascending parents, limits), so
//! a lane has one encoding and one id.

use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_varint, varint_len};
use crate::hash::{self, LaneId};
use std::fmt;

/// Format version of the canonical lane encoding.
pub const LANE_FORMAT_VERSION: u8 = 1;
/// Most parents a lane may name.
pub const MAX_PARENTS: usize = 256;
/// Most operations one lane may carry.
pub const MAX_OPS_PER_LANE: usize = 4096;
/// Largest canonical lane encoding accepted.
pub const MAX_LANE_BYTES: usize = 1 << 20;

const _: () = assert!(MAX_PARENTS * 32 + 64 < MAX_LANE_BYTES, "a lane with every parent must fit");

/// Largest Lamport stamp a lane may carry. A stamp is one more than the
/// largest parent's, so an honest stamp is at most the number of lanes in
/// the lane's ancestry; the limit is far below `u64::MAX`, so `1 + stamp`
/// never wraps, and far above anything a node reaches.
pub const MAX_LAMPORT: u64 = 1 << 56;
/// Largest seq a lane may carry (an author's n-th lane has a stamp of at least n).
pub const MAX_SEQ: u64 = MAX_LAMPORT;

const _: () = assert!(MAX_SEQ <= MAX_LAMPORT, "the n-th lane of a chain has a stamp of at least n");
const _: () = assert!(MAX_LAMPORT < u64::MAX / 2, "a stamp or seq plus one never wraps");
const _: () = assert!(
    crate::snapshot::MAX_SNAPSHOT_LANE_INDEX <= MAX_LAMPORT / 256,
    "a node restored from a snapshot at its lane-index limit (whose stamps and seqs are at most that index) \
     still authors for a long time under the lane limits"
);

/// The one lane size check, applied to canonical bytes on decode (logs and
/// peers' bytes) and to every lane the DAG admits (peers' lanes, batches,
/// this node's own), so no lane is admitted, and logged, that its node
/// could not read back on restart.
pub fn check_lane_bytes(bytes: usize) -> Result<(), LaneShapeError> {
    if bytes > MAX_LANE_BYTES {
        return Err(LaneShapeError::TooLarge { bytes });
    }
    Ok(())
}

/// A member of the cluster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A lane's place in its author's chain: `(author, seq)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize)]
pub struct Dot {
    /// The author.
    pub author: NodeId,
    /// The author's sequence number, from 1.
    pub seq: u64,
}

impl Dot {
    /// Appends the canonical encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.author.0));
        put_varint(out, self.seq);
    }

    /// Reads a canonical encoding.
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let author = NodeId(reader.varint_u32("dot author")?);
        let seq = reader.varint("dot seq")?;
        Ok(Self { author, seq })
    }
}

/// An operation type a law applies; it knows its own canonical encoding.
pub trait Op: Clone + fmt::Debug + PartialEq + Eq {
    /// Appends the canonical encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one operation; must accept only what `encode` writes.
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Length of the canonical encoding, which admission checks for every
    /// lane. Override it with arithmetic: this default encodes the op.
    fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.len()
    }

    /// Appends the op's form inside a lane batch (`protocol::batch`): its
    /// fields spread over up to [`OP_COLUMNS`] columns of like values, which
    /// compress better than ops one after another, and may be written
    /// relative to `lane`, the dot of the lane holding the op. The default
    /// writes the canonical encoding into the first column.
    fn encode_batched(&self, lane: Dot, columns: &mut [Vec<u8>; OP_COLUMNS]) {
        let _ = lane;
        self.encode(&mut columns[0]);
    }

    /// Reads one op that [`Op::encode_batched`] wrote for a lane with dot
    /// `lane`; must accept only what it writes.
    fn decode_batched(lane: Dot, columns: &mut [Reader<'_>; OP_COLUMNS]) -> Result<Self, DecodeError> {
        let _ = lane;
        Self::decode(&mut columns[0])
    }

    /// Reads what applying the op will read outside the op itself (a list
    /// held behind a pointer, say), so that replay, calling it for the lanes
    /// ahead, overlaps their cache misses. A hint only: it must change
    /// nothing. The default reads nothing.
    fn load_hint(&self) {}
}

/// How many columns an op's batched form may use (see [`Op::encode_batched`]).
pub const OP_COLUMNS: usize = 4;

/// One unit of change. Construct with [`Lane::new`] or decode from bytes;
/// the id is derived, never trusted from the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Lane<O> {
    /// Parent lane ids, strictly ascending.
    pub parents: Vec<LaneId>,
    /// The author.
    pub author: NodeId,
    /// The author's sequence number, from 1.
    pub seq: u64,
    /// Lamport stamp: one more than the largest parent stamp (1 with no parents).
    pub lamport: u64,
    /// The operations, applied in order.
    pub ops: Vec<O>,
}

impl<O: fmt::Debug> fmt::Debug for Lane<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lane")
            .field("author", &self.author)
            .field("seq", &self.seq)
            .field("lamport", &self.lamport)
            .field("parents", &self.parents)
            .field("ops", &self.ops.len())
            .finish()
    }
}

/// Structural problems a lane can have before its ancestry is even known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneShapeError {
    /// Sequence numbers start at 1.
    #[error("seq must be at least 1")]
    SeqZero,
    /// Lamport stamps start at 1.
    #[error("lamport must be at least 1")]
    LamportZero,
    /// The seq is above [`MAX_SEQ`].
    #[error("seq {seq} exceeds the limit of {MAX_SEQ}")]
    SeqTooLarge {
        /// The seq carried.
        seq: u64,
    },
    /// The Lamport stamp is above [`MAX_LAMPORT`].
    #[error("lamport {lamport} exceeds the limit of {MAX_LAMPORT}")]
    LamportTooLarge {
        /// The stamp carried.
        lamport: u64,
    },
    /// Parents must be strictly ascending (sorted, no duplicates).
    #[error("parents are not strictly ascending")]
    ParentsNotCanonical,
    /// More parents than [`MAX_PARENTS`].
    #[error("{count} parents exceed the limit of {MAX_PARENTS}")]
    TooManyParents {
        /// How many parents the lane names.
        count: usize,
    },
    /// More ops than [`MAX_OPS_PER_LANE`].
    #[error("{count} ops exceed the limit of {MAX_OPS_PER_LANE}")]
    TooManyOps {
        /// How many ops the lane carries.
        count: usize,
    },
    /// The canonical encoding is larger than [`MAX_LANE_BYTES`].
    #[error("{bytes} bytes exceed the lane size limit of {MAX_LANE_BYTES}")]
    TooLarge {
        /// Encoded size.
        bytes: usize,
    },
}

impl<O: Op> Lane<O> {
    /// A lane with `parents` sorted and deduplicated.
    pub fn new(author: NodeId, seq: u64, lamport: u64, mut parents: Vec<LaneId>, ops: Vec<O>) -> Self {
        parents.sort_unstable();
        parents.dedup();
        Self { parents, author, seq, lamport, ops }
    }

    /// The lane's place in its author's chain.
    pub fn dot(&self) -> Dot {
        Dot { author: self.author, seq: self.seq }
    }

    /// Checks the rules that need nothing but the lane itself.
    pub fn check_shape(&self) -> Result<(), LaneShapeError> {
        if self.seq == 0 {
            return Err(LaneShapeError::SeqZero);
        }
        if self.lamport == 0 {
            return Err(LaneShapeError::LamportZero);
        }
        if self.seq > MAX_SEQ {
            return Err(LaneShapeError::SeqTooLarge { seq: self.seq });
        }
        if self.lamport > MAX_LAMPORT {
            return Err(LaneShapeError::LamportTooLarge { lamport: self.lamport });
        }
        if self.parents.len() > MAX_PARENTS {
            return Err(LaneShapeError::TooManyParents { count: self.parents.len() });
        }
        if self.parents.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(LaneShapeError::ParentsNotCanonical);
        }
        if self.ops.len() > MAX_OPS_PER_LANE {
            return Err(LaneShapeError::TooManyOps { count: self.ops.len() });
        }
        check_lane_bytes(self.encoded_len())
    }

    /// Appends the canonical encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(LANE_FORMAT_VERSION);
        put_varint(out, u64::from(self.author.0));
        put_varint(out, self.seq);
        put_varint(out, self.lamport);
        put_varint(out, self.parents.len() as u64);
        for parent in &self.parents {
            out.extend_from_slice(parent.as_bytes());
        }
        put_varint(out, self.ops.len() as u64);
        for op in &self.ops {
            op.encode(out);
        }
    }

    /// The canonical encoding as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.parents.len() * 32 + self.ops.len() * 8);
        self.encode(&mut out);
        debug_assert_eq!(out.len(), self.encoded_len(), "encoded_len counts what encode writes");
        out
    }

    /// The lane id: keyed blake3 of the canonical encoding.
    pub fn id(&self) -> LaneId {
        hash::lane_id(&self.to_bytes())
    }

    /// Size of the canonical encoding in bytes, counted without encoding.
    pub fn encoded_len(&self) -> usize {
        let header = 1
            + varint_len(u64::from(self.author.0))
            + varint_len(self.seq)
            + varint_len(self.lamport)
            + varint_len(self.parents.len() as u64)
            + self.parents.len() * 32
            + varint_len(self.ops.len() as u64);
        header + self.ops.iter().map(Op::encoded_len).sum::<usize>()
    }

    /// Decodes exactly one canonical lane from `bytes` and returns it with its id.
    pub fn decode(bytes: &[u8]) -> Result<(LaneId, Self), DecodeError> {
        if check_lane_bytes(bytes.len()).is_err() {
            return Err(DecodeError {
                offset: 0,
                kind: DecodeErrorKind::TooLong {
                    what: "lane",
                    found: bytes.len() as u64,
                    limit: MAX_LANE_BYTES as u64,
                },
            });
        }
        let mut reader = Reader::new(bytes);
        let lane = Self::decode_from(&mut reader)?;
        reader.finish()?;
        Ok((hash::lane_id(bytes), lane))
    }

    /// Decodes one canonical lane from the reader's position.
    pub fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.byte("lane version")?;
        if version != LANE_FORMAT_VERSION {
            return Err(reader.error(DecodeErrorKind::UnknownVersion { found: version, expected: LANE_FORMAT_VERSION }));
        }
        let author = NodeId(reader.varint_u32("lane author")?);
        let seq = reader.varint("lane seq")?;
        let lamport = reader.varint("lane lamport")?;
        if seq == 0 || lamport == 0 {
            return Err(reader.error(DecodeErrorKind::Invalid { what: "lane", rule: "seq and lamport start at 1" }));
        }
        let parent_count = reader.count("lane parents", MAX_PARENTS as u64, 32)?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            let parent = LaneId(reader.array32("lane parent")?);
            if parents.last().is_some_and(|last: &LaneId| *last >= parent) {
                return Err(reader.error(DecodeErrorKind::Invalid {
                    what: "lane parents",
                    rule: "parents must be strictly ascending",
                }));
            }
            parents.push(parent);
        }
        let op_count = reader.count("lane ops", MAX_OPS_PER_LANE as u64, 1)?;
        let mut ops = Vec::with_capacity(op_count);
        for _ in 0..op_count {
            ops.push(O::decode(reader)?);
        }
        Ok(Self { parents, author, seq, lamport, ops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::WorldOp;

    fn sample() -> Lane<WorldOp> {
        Lane::new(
            NodeId(3),
            2,
            5,
            vec![LaneId([9; 32]), LaneId([1; 32])],
            vec![WorldOp::Add { key: 1, delta: -4 }, WorldOp::Insert { key: 2, element: 7 }],
        )
    }

    #[test]
    fn a_lane_may_name_max_parents_and_no_more() {
        let parents = |count: usize| (0..count).map(|n| LaneId(*blake3::hash(&n.to_le_bytes()).as_bytes())).collect();
        let at_limit = Lane::new(NodeId(1), 1, 2, parents(MAX_PARENTS), vec![WorldOp::Add { key: 0, delta: 1 }]);
        assert_eq!(at_limit.check_shape(), Ok(()));
        let over = Lane::new(NodeId(1), 1, 2, parents(MAX_PARENTS + 1), vec![WorldOp::Add { key: 0, delta: 1 }]);
        assert_eq!(over.check_shape(), Err(LaneShapeError::TooManyParents { count: MAX_PARENTS + 1 }));
    }

    #[test]
    fn new_sorts_parents_and_round_trips() {
        let lane = sample();
        assert!(lane.parents[0] < lane.parents[1]);
        let bytes = lane.to_bytes();
        let (id, decoded) = Lane::<WorldOp>::decode(&bytes).unwrap();
        assert_eq!(decoded, lane);
        assert_eq!(id, lane.id());
    }

    #[test]
    fn encoded_len_counts_exactly_what_encode_writes() {
        let far = Dot { author: NodeId(u32::MAX), seq: u64::MAX };
        let ops = vec![
            WorldOp::Put { key: 0, value: 0, seen: None },
            WorldOp::Put { key: u32::MAX, value: u64::MAX, seen: Some(far) },
            WorldOp::Add { key: 300, delta: i64::MIN },
            WorldOp::Add { key: 1, delta: i64::MAX },
            WorldOp::Add { key: 1, delta: -64 },
            WorldOp::Insert { key: 1 << 20, element: 1 << 35 },
            WorldOp::Remove { key: 2, element: 128, seen: vec![Dot { author: NodeId(1), seq: 1 }, far] },
            WorldOp::Remove { key: 2, element: 0, seen: Vec::new() },
        ];
        for op in &ops {
            let mut out = Vec::new();
            op.encode(&mut out);
            assert_eq!(op.encoded_len(), out.len(), "{op:?}");
        }
        let parents = (0..=255u8).map(|i| LaneId([i; 32])).collect();
        let lane = Lane::new(NodeId(u32::MAX), u64::MAX, 1 << 40, parents, ops);
        assert_eq!(lane.encoded_len(), lane.to_bytes().len());
        assert_eq!(sample().encoded_len(), sample().to_bytes().len());
    }

    #[test]
    fn the_size_limit_is_one_check_for_decode_and_admission() {
        assert_eq!(check_lane_bytes(MAX_LANE_BYTES), Ok(()));
        assert_eq!(check_lane_bytes(MAX_LANE_BYTES + 1), Err(LaneShapeError::TooLarge { bytes: MAX_LANE_BYTES + 1 }));
        let seen: Vec<Dot> = (1000..1100).map(|seq| Dot { author: NodeId(1), seq }).collect();
        let ops = (0..4000).map(|key| WorldOp::Remove { key, element: 1, seen: seen.clone() }).collect();
        let lane = Lane::new(NodeId(1), 1, 1, Vec::new(), ops);
        let bytes = lane.to_bytes();
        assert!(bytes.len() > MAX_LANE_BYTES);
        assert_eq!(lane.check_shape(), Err(LaneShapeError::TooLarge { bytes: bytes.len() }));
        let error = Lane::<WorldOp>::decode(&bytes).unwrap_err();
        assert!(matches!(error.kind, DecodeErrorKind::TooLong { what: "lane", .. }), "{error}");
    }

    #[test]
    fn seqs_and_stamps_over_their_limits_are_refused_by_shape() {
        let with = |seq, lamport| Lane::<WorldOp>::new(NodeId(1), seq, lamport, Vec::new(), Vec::new());
        assert_eq!(with(MAX_SEQ, MAX_LAMPORT).check_shape(), Ok(()));
        assert_eq!(with(MAX_SEQ + 1, MAX_LAMPORT).check_shape(), Err(LaneShapeError::SeqTooLarge { seq: MAX_SEQ + 1 }));
        assert_eq!(
            with(1, MAX_LAMPORT + 1).check_shape(),
            Err(LaneShapeError::LamportTooLarge { lamport: MAX_LAMPORT + 1 })
        );
        assert_eq!(with(u64::MAX, 1).check_shape(), Err(LaneShapeError::SeqTooLarge { seq: u64::MAX }));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().to_bytes();
        for len in 0..bytes.len() {
            assert!(Lane::<WorldOp>::decode(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
        }
    }

    #[test]
    fn unsorted_parents_are_rejected_on_decode() {
        let mut lane = sample();
        lane.parents.reverse();
        let error = Lane::<WorldOp>::decode(&lane.to_bytes()).unwrap_err();
        assert!(matches!(error.kind, DecodeErrorKind::Invalid { what: "lane parents", .. }), "{error}");
        assert_eq!(lane.check_shape(), Err(LaneShapeError::ParentsNotCanonical));
    }

    #[test]
    fn wrong_version_and_trailing_bytes_are_rejected() {
        let mut bytes = sample().to_bytes();
        bytes[0] = 2;
        let error = Lane::<WorldOp>::decode(&bytes).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::UnknownVersion { found: 2, expected: 1 });
        let mut bytes = sample().to_bytes();
        bytes.push(0);
        let error = Lane::<WorldOp>::decode(&bytes).unwrap_err();
        assert_eq!(error.kind, DecodeErrorKind::TrailingBytes { count: 1 });
    }

    #[test]
    fn any_changed_byte_changes_the_id_or_fails() {
        let lane = sample();
        let bytes = lane.to_bytes();
        for position in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[position] ^= 0x01;
            if let Ok((id, _)) = Lane::<WorldOp>::decode(&tampered) {
                assert_ne!(id, lane.id(), "tampering byte {position} kept the id");
            }
        }
    }
}
