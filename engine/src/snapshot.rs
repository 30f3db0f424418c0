//! Snapshots: checkpoints of the stable canonical prefix that nodes share,
//! verify and restore from.
//!
//! Snapshots are taken only at lane indexes that are multiples of the
//! snapshot interval, and a snapshot's parent is the snapshot one interval
//! earlier. Stable prefixes are final and equal on every honest node, so every
//! node computes the same id for the same prefix: the ids form a hash chain
//! that two nodes compare to find their common ancestor and to detect
//! divergence.
//!
//! The header also names the prefix's *boundary*: the lanes of the prefix
//! that are not per-author tips but that lanes outside it name as parents.
//! When a prefix becomes causally stable at a node, every lane that names a
//! non-tip lane of it is already held there (an honest author names only its
//! heads, and each member's latest lane descends from the whole prefix), so
//! every honest node computes the same boundary and the id covers it.
//!
//! Invariant: a snapshot is accepted only if its id is the hash of its header
//! and its state bytes decode to a state whose digest is the header's digest.
//! Numbers from a peer are combined with checked arithmetic only.

use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_varint};
use crate::hash::{self, ChainHash, LaneId, SnapshotId, StateDigest};
use crate::lane::NodeId;
use crate::law::Law;
use std::collections::{BTreeMap, BTreeSet};

/// Format version of the snapshot encoding (2: the header names the boundary).
pub const SNAPSHOT_FORMAT_VERSION: u8 = 2;
/// Most members a snapshot's frontier may name.
pub const MAX_SNAPSHOT_TIPS: u64 = 1 << 16;
/// Most boundary lanes a snapshot header may name.
pub const MAX_SNAPSHOT_BOUNDARY: u64 = 1 << 16;
/// Most bytes one encoded tip (frontier or boundary) takes: author, seq and
/// stamp as varints, and the id.
pub const MAX_TIP_BYTES: usize = 5 + 10 + 10 + 32;
/// Most bytes an encoded header takes: version, parent, lane index, chain
/// hash, digest, max stamp, and the counted tips and boundary (each count a
/// minimal varint of at most 2^16, so 3 bytes). Exact: the largest header
/// encodes to this many bytes.
pub const MAX_SNAPSHOT_HEADER_BYTES: usize =
    1 + 32 + 10 + 32 + 32 + 10 + 3 + 3 + (MAX_SNAPSHOT_TIPS + MAX_SNAPSHOT_BOUNDARY) as usize * MAX_TIP_BYTES;
/// Largest lane index a snapshot may claim: far beyond any real history,
/// and far enough below `u64::MAX` that counting on from it cannot overflow.
pub const MAX_SNAPSHOT_LANE_INDEX: u64 = 1 << 48;
/// Largest encoded state a snapshot may carry.
pub const MAX_SNAPSHOT_STATE_BYTES: u64 = 256 << 20;

/// An author's latest lane inside a prefix: the per-author frontier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tip {
    /// The author.
    pub author: NodeId,
    /// Its seq.
    pub seq: u64,
    /// Its Lamport stamp.
    pub lamport: u64,
    /// Its id.
    pub id: LaneId,
}

/// Everything a snapshot's id commits to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The snapshot one interval earlier (zero for the genesis snapshot).
    pub parent: SnapshotId,
    /// Lanes in the prefix.
    pub lane_index: u64,
    /// Chain hash after the prefix.
    pub chain_hash: ChainHash,
    /// Digest of the state after the prefix.
    pub state_digest: StateDigest,
    /// Largest Lamport stamp in the prefix (the last lane's, by the order).
    pub max_lamport: u64,
    /// Per-author latest lane in the prefix, ascending by author.
    pub tips: Vec<Tip>,
    /// Lanes of the prefix that are not tips but that lanes outside the
    /// prefix name as parents, ascending by `(author, seq)`.
    pub boundary: Vec<Tip>,
}

impl SnapshotHeader {
    /// Appends the canonical encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(SNAPSHOT_FORMAT_VERSION);
        out.extend_from_slice(self.parent.as_bytes());
        put_varint(out, self.lane_index);
        out.extend_from_slice(self.chain_hash.as_bytes());
        out.extend_from_slice(self.state_digest.as_bytes());
        put_varint(out, self.max_lamport);
        for list in [&self.tips, &self.boundary] {
            put_varint(out, list.len() as u64);
            for tip in list {
                put_varint(out, u64::from(tip.author.0));
                put_varint(out, tip.seq);
                put_varint(out, tip.lamport);
                out.extend_from_slice(tip.id.as_bytes());
            }
        }
    }

    /// Checks that the header describes a possible prefix: each author's
    /// lanes `1..=seq` appear once, so the lane index is the sum of the
    /// tips' seqs; the largest stamp is a tip's (the last lane of a
    /// topological order is a tip); a stamp counts a chain of lanes, so it
    /// is at most the lane index; tips name distinct lanes; and the boundary
    /// is well formed ([`SnapshotHeader::check_boundary`]).
    pub fn check_consistent(&self) -> Result<(), SnapshotError> {
        let fail = |rule| Err(SnapshotError::Inconsistent { lane_index: self.lane_index, rule });
        let seqs = self.tips.iter().try_fold(0u64, |sum, tip| sum.checked_add(tip.seq));
        let Some(seqs) = seqs else {
            return Err(SnapshotError::Overflow { lane_index: self.lane_index, what: "the sum of the tips' seqs" });
        };
        if self.lane_index > MAX_SNAPSHOT_LANE_INDEX {
            return fail("lane index above the limit");
        }
        if seqs != self.lane_index {
            return fail("lane index is not the sum of the tips' seqs");
        }
        if self.max_lamport != self.tips.iter().map(|tip| tip.lamport).max().unwrap_or(0) {
            return fail("max lamport is not the tips' largest stamp");
        }
        if self.max_lamport > self.lane_index {
            return fail("a stamp exceeds the lane count");
        }
        let ids: BTreeSet<LaneId> = self.tips.iter().map(|tip| tip.id).collect();
        if ids.len() != self.tips.len() {
            return fail("two tips name one lane");
        }
        self.check_boundary()
    }

    /// Checks that every boundary entry can be a covered lane that is not a
    /// tip: entries ascend by `(author, seq)`; each author is on the
    /// frontier; its seq is at least 1 and below the author's tip's; its
    /// stamp is at least its seq (a chain of `seq` lanes) and at least the
    /// seq gap below the tip's (each later lane of the chain adds one); and
    /// no id appears twice, the frontier's included.
    pub fn check_boundary(&self) -> Result<(), SnapshotError> {
        let frontier: BTreeMap<NodeId, &Tip> = self.tips.iter().map(|tip| (tip.author, tip)).collect();
        let mut ids: BTreeSet<LaneId> = self.tips.iter().map(|tip| tip.id).collect();
        let mut previous: Option<(NodeId, u64)> = None;
        for tip in &self.boundary {
            let bad = |rule| SnapshotError::BadBoundary { author: tip.author, seq: tip.seq, id: tip.id, rule };
            if previous.is_some_and(|dot| dot >= (tip.author, tip.seq)) {
                return Err(bad("entries must ascend by author and seq"));
            }
            previous = Some((tip.author, tip.seq));
            let Some(front) = frontier.get(&tip.author) else { return Err(bad("its author is not on the frontier")) };
            if tip.seq == 0 || tip.seq >= front.seq {
                return Err(bad("its seq is not below its author's tip"));
            }
            if tip.lamport < tip.seq {
                return Err(bad("its stamp is below its seq"));
            }
            // `front.seq > tip.seq` was just checked, so the gap is positive.
            let gap = front.seq - tip.seq;
            let Some(lowest_tip_stamp) = tip.lamport.checked_add(gap) else {
                return Err(SnapshotError::Overflow {
                    lane_index: self.lane_index,
                    what: "a boundary stamp plus its seq gap to the tip",
                });
            };
            if lowest_tip_stamp > front.lamport {
                return Err(bad("its stamp is not below its author's tip's by the seq gap"));
            }
            if !ids.insert(tip.id) {
                return Err(bad("its id appears twice"));
            }
        }
        Ok(())
    }

    /// The id: keyed blake3 of the canonical header.
    pub fn id(&self) -> SnapshotId {
        let mut bytes = Vec::with_capacity(128 + (self.tips.len() + self.boundary.len()) * 48);
        self.encode(&mut bytes);
        hash::snapshot_id(&bytes)
    }

    /// Reads a canonical header.
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = reader.byte("snapshot version")?;
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(
                reader.error(DecodeErrorKind::UnknownVersion { found: version, expected: SNAPSHOT_FORMAT_VERSION })
            );
        }
        let parent = SnapshotId(reader.array32("snapshot parent")?);
        let lane_index = reader.varint("snapshot lane index")?;
        let chain_hash = ChainHash(reader.array32("snapshot chain hash")?);
        let state_digest = StateDigest(reader.array32("snapshot state digest")?);
        let max_lamport = reader.varint("snapshot max lamport")?;
        let tips =
            decode_tips(reader, "snapshot tips", MAX_SNAPSHOT_TIPS, max_lamport, |last, tip| last.author < tip.author)?;
        let boundary = decode_tips(reader, "snapshot boundary", MAX_SNAPSHOT_BOUNDARY, max_lamport, |last, tip| {
            (last.author, last.seq) < (tip.author, tip.seq)
        })?;
        Ok(Self { parent, lane_index, chain_hash, state_digest, max_lamport, tips, boundary })
    }
}

/// Reads a counted list of tips that `ascends` pairwise, each with seq and
/// stamp in `1..=max_lamport`.
fn decode_tips(
    reader: &mut Reader<'_>,
    what: &'static str,
    limit: u64,
    max_lamport: u64,
    ascends: impl Fn(&Tip, &Tip) -> bool,
) -> Result<Vec<Tip>, DecodeError> {
    let count = reader.count(what, limit, 35)?;
    let mut tips: Vec<Tip> = Vec::with_capacity(count);
    for _ in 0..count {
        let author = NodeId(reader.varint_u32("tip author")?);
        let seq = reader.varint("tip seq")?;
        let lamport = reader.varint("tip lamport")?;
        let id = LaneId(reader.array32("tip id")?);
        let tip = Tip { author, seq, lamport, id };
        if tips.last().is_some_and(|last| !ascends(last, &tip)) {
            return Err(reader.error(DecodeErrorKind::Invalid { what, rule: "entries must be strictly ascending" }));
        }
        if seq == 0 || lamport == 0 || lamport > max_lamport {
            return Err(reader.error(DecodeErrorKind::Invalid { what, rule: "seq and lamport in 1..=max_lamport" }));
        }
        tips.push(tip);
    }
    Ok(tips)
}

/// A checkpoint of a stable canonical prefix: header, id and encoded state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The id, `header.id()`.
    pub id: SnapshotId,
    /// What the id commits to.
    pub header: SnapshotHeader,
    /// The law's canonical encoding of the state after the prefix.
    pub state: Vec<u8>,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a canonical snapshot.
    #[error("malformed snapshot: {0}")]
    Decode(#[from] DecodeError),
    /// The id is not the hash of the header.
    #[error("snapshot id {claimed} does not match its header (hash {actual})")]
    IdMismatch {
        /// Id carried with the snapshot.
        claimed: SnapshotId,
        /// Id recomputed from the header.
        actual: SnapshotId,
    },
    /// The state does not hash to the header's digest.
    #[error("snapshot {id}: state digest {actual} does not match the header's {claimed}")]
    DigestMismatch {
        /// The snapshot.
        id: SnapshotId,
        /// Digest in the header.
        claimed: StateDigest,
        /// Digest of the carried state.
        actual: StateDigest,
    },
    /// This node holds a different snapshot at the same lane index: the two
    /// histories diverged (corruption or a bug), which must be surfaced.
    #[error("snapshot at lane index {lane_index} is {theirs}, but this node's is {ours}: histories diverged")]
    Diverged {
        /// Where.
        lane_index: u64,
        /// This node's snapshot id there.
        ours: SnapshotId,
        /// The offered one.
        theirs: SnapshotId,
    },
    /// The snapshot (a tip of its frontier, or a boundary lane) names a
    /// different lane at an `(author, seq)` where this node holds a lane: the
    /// author forked, or the snapshot was forged. Never silently resolved.
    #[error("snapshot names lane {theirs} at {author}:{seq}, but this node holds {ours} there")]
    ForkedTip {
        /// The author.
        author: NodeId,
        /// The seq.
        seq: u64,
        /// The lane this node holds there.
        ours: LaneId,
        /// The lane the snapshot names.
        theirs: LaneId,
    },
    /// The header does not describe a possible prefix (its lane index is not
    /// the sum of its tips' seqs, its largest stamp is not its tips' largest,
    /// a stamp exceeds the lane count, two tips name one lane, or the lane
    /// index is above [`MAX_SNAPSHOT_LANE_INDEX`]).
    #[error("snapshot header at lane index {lane_index} is inconsistent: {rule}")]
    Inconsistent {
        /// The claimed lane index.
        lane_index: u64,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A boundary entry cannot be a covered lane that is not a tip (out of
    /// order, an author off the frontier, a seq or stamp not below that
    /// author's tip, or one id twice).
    #[error("boundary lane {id} at {author}:{seq} is not a covered non-tip lane: {rule}")]
    BadBoundary {
        /// Its author.
        author: NodeId,
        /// Its seq.
        seq: u64,
        /// Its id.
        id: LaneId,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Numbers a snapshot carries overflow when combined (the sum of its
    /// tips' seqs, a stamp plus a seq gap, a chunk's offset): no real prefix
    /// has them.
    #[error("snapshot at lane index {lane_index}: {what} overflows")]
    Overflow {
        /// The claimed lane index.
        lane_index: u64,
        /// The computation that overflowed.
        what: &'static str,
    },
    /// A snapshot offer (header, state length, chunk size and chunk
    /// manifest) is malformed or does not hash to its header's digest.
    #[error("snapshot offer {id}: {rule}")]
    BadOffer {
        /// The offered snapshot.
        id: SnapshotId,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A chunk of a snapshot in transit does not match its offer (index out
    /// of range, wrong length, or a chaining value other than the manifest's):
    /// it was damaged or forged, and is dropped.
    #[error("chunk {index} of snapshot {id}: {rule}")]
    BadChunk {
        /// The snapshot.
        id: SnapshotId,
        /// The chunk's index.
        index: u64,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A bundle's snapshot lacks chunks, so it cannot be installed.
    #[error("snapshot {id} is incomplete: {missing} of {chunks} chunks missing")]
    Incomplete {
        /// The snapshot.
        id: SnapshotId,
        /// Chunks missing.
        missing: u64,
        /// Chunks in all.
        chunks: u64,
    },
    /// This node's snapshot is too large to offer within one message (more
    /// tips, boundary lanes or chunks than the limits allow), so a peer
    /// behind this node's prune point cannot catch up from it.
    #[error("snapshot {id} cannot be offered: {what} of {found} exceeds the limit of {limit}")]
    TooLargeToOffer {
        /// The snapshot.
        id: SnapshotId,
        /// What is too large.
        what: &'static str,
        /// Its size.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// A lane this node holds would sort inside the snapshot's prefix without
    /// being covered by it.
    #[error("held lane {lane} sorts inside the offered snapshot at lane index {lane_index}")]
    ContradictsHistory {
        /// Where.
        lane_index: u64,
        /// The contradicting lane.
        lane: LaneId,
    },
}

impl Snapshot {
    /// Builds a snapshot of `state` after the prefix described by `header`.
    pub fn new<L: Law>(law: &L, header: SnapshotHeader, state: &L::State) -> Self {
        let mut bytes = Vec::new();
        law.encode_state(state, &mut bytes);
        Self { id: header.id(), header, state: bytes }
    }

    /// Appends the wire and storage encoding: id, header, state.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        self.header.encode(out);
        put_varint(out, self.state.len() as u64);
        out.extend_from_slice(&self.state);
    }

    /// The encoding as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let tips = self.header.tips.len() + self.header.boundary.len();
        let mut out = Vec::with_capacity(160 + self.state.len() + tips * 48);
        self.encode(&mut out);
        out
    }

    /// Decodes and checks the id; the state is checked by [`Snapshot::verify`].
    pub fn decode(reader: &mut Reader<'_>) -> Result<Self, SnapshotError> {
        let id = SnapshotId(reader.array32("snapshot id")?);
        let header = SnapshotHeader::decode(reader)?;
        let state_len = reader.count("snapshot state", MAX_SNAPSHOT_STATE_BYTES, 1)?;
        let state = reader.take(state_len, "snapshot state")?.to_vec();
        let actual = header.id();
        if actual != id {
            return Err(SnapshotError::IdMismatch { claimed: id, actual });
        }
        Ok(Self { id, header, state })
    }

    /// Decodes exactly one snapshot from `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut reader = Reader::new(bytes);
        let snapshot = Self::decode(&mut reader)?;
        reader.finish()?;
        Ok(snapshot)
    }

    /// Recomputes the id and the state digest and returns the decoded state.
    pub fn verify<L: Law>(&self, law: &L) -> Result<L::State, SnapshotError> {
        let actual = self.header.id();
        if actual != self.id {
            return Err(SnapshotError::IdMismatch { claimed: self.id, actual });
        }
        let mut reader = Reader::new(&self.state);
        let state = law.decode_state(&mut reader)?;
        reader.finish()?;
        let digest = hash::state_digest(&self.state);
        if digest != self.header.state_digest {
            return Err(SnapshotError::DigestMismatch {
                id: self.id,
                claimed: self.header.state_digest,
                actual: digest,
            });
        }
        Ok(state)
    }
}

/// A node's snapshots: the id of every stable snapshot point it passed (the
/// lineage, cheap) and the full snapshot of the latest one.
#[derive(Clone, Debug, Default)]
pub struct SnapshotRegistry {
    lineage: BTreeMap<u64, SnapshotId>,
    latest: Option<Snapshot>,
}

impl SnapshotRegistry {
    /// Records the id of the stable snapshot point at `lane_index`.
    pub(crate) fn record(&mut self, lane_index: u64, id: SnapshotId) {
        self.lineage.insert(lane_index, id);
    }

    /// Makes `snapshot` the latest full snapshot.
    pub(crate) fn commit(&mut self, snapshot: Snapshot) {
        self.lineage.insert(snapshot.header.lane_index, snapshot.id);
        self.latest = Some(snapshot);
    }

    /// The newest full snapshot.
    pub fn latest(&self) -> Option<&Snapshot> {
        self.latest.as_ref()
    }

    /// The newest snapshot point (lane index and id), full or not.
    pub fn newest_point(&self) -> Option<(u64, SnapshotId)> {
        self.lineage.iter().next_back().map(|(index, id)| (*index, *id))
    }

    /// The id of this node's snapshot at `lane_index`, if it has one.
    pub fn id_at(&self, lane_index: u64) -> Option<SnapshotId> {
        self.lineage.get(&lane_index).copied()
    }

    /// Every snapshot point, ascending.
    pub fn lineage(&self) -> impl Iterator<Item = (u64, SnapshotId)> + '_ {
        self.lineage.iter().map(|(index, id)| (*index, *id))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::codec::Reader;

    fn tip(author: u32, seq: u64) -> Tip {
        Tip { author: NodeId(author), seq, lamport: u64::MAX, id: LaneId([7; 32]) }
    }

    fn header(tips: Vec<Tip>, boundary: Vec<Tip>) -> SnapshotHeader {
        SnapshotHeader {
            parent: SnapshotId([1; 32]),
            lane_index: u64::MAX,
            chain_hash: ChainHash([2; 32]),
            state_digest: StateDigest([3; 32]),
            max_lamport: u64::MAX,
            tips,
            boundary,
        }
    }

    /// The header with the longest encoding a decoder accepts: authors at
    /// or above 2^28 take 5 varint bytes; seqs and stamps at u64::MAX take 10.
    pub(crate) fn largest_header() -> SnapshotHeader {
        let top = u32::MAX - MAX_SNAPSHOT_TIPS as u32 + 1;
        let tips = (0..MAX_SNAPSHOT_TIPS as u32).map(|n| tip(top + n, u64::MAX)).collect();
        let boundary =
            (0..MAX_SNAPSHOT_BOUNDARY).map(|n| tip(u32::MAX, u64::MAX - MAX_SNAPSHOT_BOUNDARY + n)).collect();
        header(tips, boundary)
    }

    #[test]
    fn the_largest_header_encodes_to_exactly_the_header_limit() {
        let mut out = Vec::new();
        largest_header().encode(&mut out);
        assert_eq!(out.len(), MAX_SNAPSHOT_HEADER_BYTES);
        let mut reader = Reader::new(&out);
        assert!(SnapshotHeader::decode(&mut reader).is_ok(), "the largest header is a valid one");
    }

    #[test]
    fn a_lane_index_above_the_limit_is_inconsistent_and_the_limit_itself_is_not() {
        let at = |lane_index: u64| SnapshotHeader {
            lane_index,
            max_lamport: 1,
            tips: vec![Tip { author: NodeId(1), seq: lane_index, lamport: 1, id: LaneId([7; 32]) }],
            ..header(Vec::new(), Vec::new())
        };
        assert_eq!(at(MAX_SNAPSHOT_LANE_INDEX).check_consistent(), Ok(()));
        assert_eq!(
            at(MAX_SNAPSHOT_LANE_INDEX + 1).check_consistent(),
            Err(SnapshotError::Inconsistent {
                lane_index: MAX_SNAPSHOT_LANE_INDEX + 1,
                rule: "lane index above the limit"
            })
        );
    }

    #[test]
    fn tips_and_boundary_must_strictly_ascend_on_decode() {
        let cases = [
            ("two tips of one author", header(vec![tip(4, 2), tip(4, 3)], vec![])),
            ("tips out of order", header(vec![tip(5, 2), tip(4, 3)], vec![])),
            ("one boundary lane twice", header(vec![tip(4, 9)], vec![tip(4, 3), tip(4, 3)])),
            ("boundary out of order", header(vec![tip(4, 9)], vec![tip(4, 3), tip(4, 2)])),
        ];
        for (what, bad) in cases {
            let mut out = Vec::new();
            bad.encode(&mut out);
            assert!(SnapshotHeader::decode(&mut Reader::new(&out)).is_err(), "{what} decoded");
        }
        let mut out = Vec::new();
        header(vec![tip(4, 9), tip(5, 1)], vec![tip(4, 3), tip(4, 4), tip(6, 1)]).encode(&mut out);
        assert!(SnapshotHeader::decode(&mut Reader::new(&out)).is_ok(), "ascending lists decode");
    }
}
