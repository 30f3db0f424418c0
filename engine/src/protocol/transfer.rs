//! Snapshot transfer: how a snapshot larger than one message reaches a peer
//! behind the sender's prune point.
//!
//! A snapshot travels as an *offer* and *chunks*. The offer is the id, the
//! canonical header (which the id commits to, the state digest and the
//! boundary included), the state's length, the chunk size, and the blake3
//! chaining value of every chunk (the manifest). Chaining values merge into
//! the digest (`hash::state_digest_of_pieces`), so the receiver checks the
//! manifest against the header on arrival, and each chunk against the
//! manifest on arrival; a single-chunk state is checked whole against the
//! digest. Each session carries at most one part (the offer with chunk 0,
//! or the one chunk the receiver said it lacks) in each direction, and the
//! receiver states in its handshake which snapshot it assembles and the
//! lowest chunk it lacks, so lost, repeated and reordered parts only cost a
//! session.
//!
//! Invariant: an offer verifies only if its manifest merges into the
//! header's digest, and a chunk only if it matches the manifest (or, alone,
//! the digest at install); numbers from a peer are combined with checked
//! arithmetic. The receiver's side is `receive.rs`.

use super::wire::{SnapshotWant, WireSnapshot};
use crate::codec::{DecodeErrorKind, Reader, put_varint};
use crate::hash::{self, BLAKE3_CHUNK_BYTES, ChainingValue, SnapshotId};
use crate::snapshot::{
    MAX_SNAPSHOT_BOUNDARY, MAX_SNAPSHOT_HEADER_BYTES, MAX_SNAPSHOT_STATE_BYTES, MAX_SNAPSHOT_TIPS, Snapshot,
    SnapshotError, SnapshotHeader,
};
use std::ops::Range;

/// Smallest chunk size an offer may use.
pub const MIN_CHUNK_BYTES: u64 = 1 << 10;
/// Largest chunk size an offer may use, and the default.
pub const MAX_CHUNK_BYTES: u64 = 1 << 20;
/// Most chunks one snapshot is cut into (the manifest's length).
pub const MAX_CHUNKS: u64 = 1 << 10;
/// Most bytes an offer a decoder accepts takes: id, header, state length
/// (at most 2^28, so 5 varint bytes), chunk size (any u64 on decode, 10),
/// and the manifest counted in 2 bytes (at most 2^10 values). Exact: the
/// largest offer encodes to this many bytes.
pub const MAX_OFFER_BYTES: usize = 32 + MAX_SNAPSHOT_HEADER_BYTES + 5 + 10 + 2 + MAX_CHUNKS as usize * 32;
/// Most peers a node assembles a snapshot from at once (one transfer each);
/// a new transfer beyond it replaces the one that progressed least recently.
pub const MAX_SNAPSHOT_TRANSFERS: usize = 4;

const _: () = assert!(
    MIN_CHUNK_BYTES.is_power_of_two() && MAX_CHUNK_BYTES.is_power_of_two() && MIN_CHUNK_BYTES <= MAX_CHUNK_BYTES,
    "chunk sizes are powers of two, so every full chunk is a whole blake3 subtree"
);
const _: () = assert!(MIN_CHUNK_BYTES >= BLAKE3_CHUNK_BYTES, "a chunk starts on a blake3 chunk boundary");
const _: () = assert!(
    MAX_CHUNK_BYTES * MAX_CHUNKS >= MAX_SNAPSHOT_STATE_BYTES,
    "the largest state fits the manifest at the largest chunk size"
);
const _: () = assert!(MAX_CHUNKS <= u32::MAX as u64, "a chunk index fits the wire's u32");

/// A snapshot offered for transfer: everything but the state's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOffer {
    /// The snapshot's id, `header.id()`.
    pub id: SnapshotId,
    /// What the id commits to.
    pub header: SnapshotHeader,
    /// Bytes of the encoded state.
    pub state_len: u64,
    /// Bytes per chunk (the last one may be shorter): a power of two in
    /// `MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES`.
    pub chunk_bytes: u64,
    /// Each chunk's chaining value, when there are two chunks or more
    /// (a single chunk is checked against the digest).
    pub manifest: Vec<ChainingValue>,
}

impl SnapshotOffer {
    /// The offer of `snapshot` in chunks of `chunk_bytes` (clamped to the
    /// allowed sizes, and raised until at most [`MAX_CHUNKS`] chunks).
    /// Refuses a snapshot whose offer would not fit one message.
    pub fn of(snapshot: &Snapshot, chunk_bytes: u64) -> Result<Self, SnapshotError> {
        let header = &snapshot.header;
        let too_large = |what, found: usize, limit: u64| SnapshotError::TooLargeToOffer {
            id: snapshot.id,
            what,
            found: found as u64,
            limit,
        };
        if header.tips.len() as u64 > MAX_SNAPSHOT_TIPS {
            return Err(too_large("frontier tips", header.tips.len(), MAX_SNAPSHOT_TIPS));
        }
        if header.boundary.len() as u64 > MAX_SNAPSHOT_BOUNDARY {
            return Err(too_large("boundary lanes", header.boundary.len(), MAX_SNAPSHOT_BOUNDARY));
        }
        if snapshot.state.len() as u64 > MAX_SNAPSHOT_STATE_BYTES {
            return Err(too_large("state bytes", snapshot.state.len(), MAX_SNAPSHOT_STATE_BYTES));
        }
        let state_len = snapshot.state.len() as u64;
        let mut chunk_bytes = chunk_bytes.clamp(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES).next_power_of_two();
        while chunk_count(state_len, chunk_bytes) > MAX_CHUNKS {
            chunk_bytes *= 2;
        }
        let count = chunk_count(state_len, chunk_bytes);
        let manifest = if count < 2 {
            Vec::new()
        } else {
            // Chunk offsets are below the state's length, which is a `usize`.
            let chunk = chunk_bytes as usize;
            let values = snapshot.state.chunks(chunk).enumerate();
            values.map(|(index, bytes)| hash::state_piece_value((index * chunk) as u64, bytes)).collect()
        };
        Ok(Self { id: snapshot.id, header: header.clone(), state_len, chunk_bytes, manifest })
    }

    /// Whether `want` states a transfer of this very offer.
    pub fn is_stated_by(&self, want: &SnapshotWant) -> bool {
        (want.id, want.state_len, want.chunk_bytes) == (self.id, self.state_len, self.chunk_bytes)
    }

    /// How many chunks the state is cut into (at least one).
    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.state_len, self.chunk_bytes)
    }

    /// The byte range of chunk `index` in the state, computed with checked
    /// arithmetic (the numbers may come from a peer).
    pub fn chunk_range(&self, index: u64) -> Result<Range<u64>, SnapshotError> {
        if index >= self.chunk_count() {
            return Err(SnapshotError::BadChunk { id: self.id, index, rule: "its index is beyond the last chunk" });
        }
        let overflow = || SnapshotError::Overflow { lane_index: self.header.lane_index, what: "a chunk's byte range" };
        let start = index.checked_mul(self.chunk_bytes).ok_or_else(overflow)?;
        let end = start.checked_add(self.chunk_bytes).ok_or_else(overflow)?.min(self.state_len);
        Ok(start..end)
    }

    /// The canonical encoding: id, header, state length, chunk size,
    /// counted manifest.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        self.header.encode(out);
        put_varint(out, self.state_len);
        put_varint(out, self.chunk_bytes);
        put_varint(out, self.manifest.len() as u64);
        for value in &self.manifest {
            out.extend_from_slice(value);
        }
    }

    /// The encoding as a fresh vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(192 + (self.header.tips.len() + self.header.boundary.len()) * 48);
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one offer; [`SnapshotOffer::verify`] checks it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let mut reader = Reader::new(bytes);
        let id = SnapshotId(reader.array32("offer id")?);
        let header = SnapshotHeader::decode(&mut reader)?;
        let state_len = reader.varint("offer state length")?;
        let chunk_bytes = reader.varint("offer chunk size")?;
        let count = reader.count("offer manifest", MAX_CHUNKS, 32)?;
        let mut manifest = Vec::with_capacity(count);
        for _ in 0..count {
            manifest.push(reader.array32("offer chaining value")?);
        }
        reader.finish()?;
        if state_len > MAX_SNAPSHOT_STATE_BYTES {
            return Err(reader
                .error(DecodeErrorKind::TooLong {
                    what: "offer state length",
                    found: state_len,
                    limit: MAX_SNAPSHOT_STATE_BYTES,
                })
                .into());
        }
        Ok(Self { id, header, state_len, chunk_bytes, manifest })
    }

    /// Checks the offer against itself: the id is the header's hash, the
    /// chunk size is allowed, the manifest has one value per chunk (none for
    /// one chunk), and the values merge into the header's state digest.
    pub fn verify(&self) -> Result<(), SnapshotError> {
        let bad = |rule| Err(SnapshotError::BadOffer { id: self.id, rule });
        let actual = self.header.id();
        if actual != self.id {
            return Err(SnapshotError::IdMismatch { claimed: self.id, actual });
        }
        if !self.chunk_bytes.is_power_of_two() || !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&self.chunk_bytes) {
            return bad("the chunk size is not an allowed power of two");
        }
        if self.state_len > MAX_SNAPSHOT_STATE_BYTES {
            return bad("the state is larger than a snapshot may be");
        }
        let count = self.chunk_count();
        if count > MAX_CHUNKS {
            return bad("more chunks than the manifest may list");
        }
        let expected = if count < 2 { 0 } else { count };
        if self.manifest.len() as u64 != expected {
            return bad("the manifest does not list one chaining value per chunk");
        }
        if count >= 2 && hash::state_digest_of_pieces(&self.manifest) != Some(self.header.state_digest) {
            return bad("the manifest does not hash to the header's state digest");
        }
        Ok(())
    }

    /// Checks chunk `index` on arrival: in range, of the right length, and
    /// (with two chunks or more) with the manifest's chaining value.
    pub fn check_chunk(&self, index: u64, bytes: &[u8]) -> Result<(), SnapshotError> {
        let range = self.chunk_range(index)?;
        let bad = |rule| Err(SnapshotError::BadChunk { id: self.id, index, rule });
        if bytes.len() as u64 != range.end - range.start {
            return bad("its length is not the chunk's");
        }
        if self.manifest.is_empty() {
            return Ok(());
        }
        // `chunk_range` succeeded, so `index` is below the chunk count,
        // which the manifest's length equals (checked by `verify`).
        let Some(expected) = usize::try_from(index).ok().and_then(|index| self.manifest.get(index)) else {
            return bad("the manifest has no value for it");
        };
        if hash::state_piece_value(range.start, bytes) != *expected {
            return bad("its chaining value is not the manifest's");
        }
        Ok(())
    }
}

/// Chunks of `chunk_bytes` a state of `state_len` bytes is cut into (at
/// least one, so an empty state travels as one empty chunk).
fn chunk_count(state_len: u64, chunk_bytes: u64) -> u64 {
    state_len.div_ceil(chunk_bytes.max(1)).max(1)
}

// ---- the sender's side -------------------------------------------------

/// The part to send a peer behind this node's prune point: the chunk it
/// said it lacks when it assembles `offer`'s snapshot, else the offer with
/// chunk 0. Returns the part and whether it completes the peer's transfer
/// (as far as the sender knows: the peer holds every chunk below the one
/// it asked for).
pub(super) fn part_for(
    snapshot: &Snapshot,
    offer: &SnapshotOffer,
    offer_bytes: &[u8],
    want: Option<SnapshotWant>,
) -> (WireSnapshot, bool) {
    let count = offer.chunk_count();
    let asked = want.filter(|want| offer.is_stated_by(want) && u64::from(want.chunk) < count).map(|want| want.chunk);
    let index = asked.unwrap_or(0);
    // The index is below the chunk count, so its range is within the state.
    let range = offer.chunk_range(u64::from(index)).expect("the index is below the chunk count");
    let chunk = snapshot.state[range.start as usize..range.end as usize].to_vec();
    let part =
        WireSnapshot { id: offer.id, offer: asked.is_none().then(|| offer_bytes.to_vec()), chunk_index: index, chunk };
    (part, u64::from(index) + 1 == count)
}

/// This node's latest snapshot as an offer, computed once per snapshot.
#[derive(Clone, Debug, Default)]
pub(super) struct OfferCache {
    /// The chunk size asked for, the offer and its encoding.
    cached: Option<(u64, SnapshotOffer, Vec<u8>)>,
}

impl OfferCache {
    /// The offer of `snapshot` in chunks of `chunk_bytes`, and its encoding.
    pub(super) fn offer(
        &mut self,
        snapshot: &Snapshot,
        chunk_bytes: u64,
    ) -> Result<(&SnapshotOffer, &[u8]), SnapshotError> {
        // The state's length too: `part_for` cuts this state by the offer's ranges.
        let fresh = !self.cached.as_ref().is_some_and(|(bytes, offer, _)| {
            offer.id == snapshot.id && offer.state_len == snapshot.state.len() as u64 && *bytes == chunk_bytes
        });
        if fresh {
            let offer = SnapshotOffer::of(snapshot, chunk_bytes)?;
            let encoded = offer.to_bytes();
            self.cached = Some((chunk_bytes, offer, encoded));
        }
        // Just filled when it was empty or stale.
        let (_, offer, encoded) = self.cached.as_ref().expect("the cache was just filled");
        Ok((offer, encoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{ChainHash, StateDigest};

    #[test]
    fn the_largest_offer_encodes_to_exactly_the_offer_limit() {
        let largest = SnapshotOffer {
            id: SnapshotId([5; 32]),
            header: crate::snapshot::tests::largest_header(),
            state_len: MAX_SNAPSHOT_STATE_BYTES,
            chunk_bytes: u64::MAX,
            manifest: vec![[6; 32]; MAX_CHUNKS as usize],
        };
        let bytes = largest.to_bytes();
        assert_eq!(bytes.len(), MAX_OFFER_BYTES);
        assert_eq!(SnapshotOffer::from_bytes(&bytes).map(|offer| offer.manifest.len()), Ok(MAX_CHUNKS as usize));
    }

    /// A snapshot of `state` whose header digests it, with `tips` tips.
    fn snapshot_of(state: Vec<u8>, tips: usize) -> Snapshot {
        let tip = |author| crate::snapshot::Tip {
            author: crate::NodeId(author),
            seq: 1,
            lamport: 1,
            id: crate::LaneId([1; 32]),
        };
        let header = SnapshotHeader {
            parent: SnapshotId::ZERO,
            lane_index: tips as u64,
            chain_hash: ChainHash::ZERO,
            state_digest: crate::hash::state_digest(&state),
            max_lamport: 1,
            tips: (0..tips as u32).map(tip).collect(),
            boundary: Vec::new(),
        };
        Snapshot { id: header.id(), header, state }
    }

    #[test]
    fn an_offer_names_at_most_max_snapshot_tips() {
        assert!(SnapshotOffer::of(&snapshot_of(vec![1; 10], MAX_SNAPSHOT_TIPS as usize), MIN_CHUNK_BYTES).is_ok());
        let over = SnapshotOffer::of(&snapshot_of(vec![1; 10], MAX_SNAPSHOT_TIPS as usize + 1), MIN_CHUNK_BYTES);
        assert!(matches!(over, Err(SnapshotError::TooLargeToOffer { what: "frontier tips", .. })), "{over:?}");
    }

    #[test]
    fn an_offer_of_exactly_max_chunks_verifies_and_its_parts_cover_the_state() {
        let state: Vec<u8> = (0..MAX_CHUNKS * MIN_CHUNK_BYTES).map(|n| (n * 7 % 251) as u8).collect();
        let snapshot = snapshot_of(state, 1);
        let offer = SnapshotOffer::of(&snapshot, MIN_CHUNK_BYTES).unwrap();
        assert_eq!((offer.chunk_bytes, offer.chunk_count()), (MIN_CHUNK_BYTES, MAX_CHUNKS));
        assert_eq!(offer.verify(), Ok(()));
        // The last chunk asked for completes the transfer; none before it does.
        let bytes = offer.to_bytes();
        for chunk in [0, 1, MAX_CHUNKS as u32 - 2, MAX_CHUNKS as u32 - 1] {
            let want = SnapshotWant { id: offer.id, state_len: offer.state_len, chunk_bytes: offer.chunk_bytes, chunk };
            let (part, completes) = part_for(&snapshot, &offer, &bytes, Some(want));
            assert_eq!(part.chunk_index, chunk);
            assert_eq!(completes, chunk == MAX_CHUNKS as u32 - 1, "chunk {chunk}");
            assert_eq!(offer.check_chunk(u64::from(chunk), &part.chunk), Ok(()));
        }
        // A chunk past the last is no chunk: the peer gets the offer and chunk 0.
        let past = SnapshotWant {
            id: offer.id,
            state_len: offer.state_len,
            chunk_bytes: offer.chunk_bytes,
            chunk: MAX_CHUNKS as u32,
        };
        let (part, completes) = part_for(&snapshot, &offer, &bytes, Some(past));
        assert_eq!((part.chunk_index, part.offer.as_deref(), completes), (0, Some(&bytes[..]), false));
    }

    #[test]
    fn an_offer_refuses_state_one_byte_over_the_limit() {
        // The size check comes before any hashing, so the state is never
        // read; its digest is not checked by `of`.
        let state = vec![0; MAX_SNAPSHOT_STATE_BYTES as usize + 1];
        let header = snapshot_of(Vec::new(), 1).header;
        let over = SnapshotOffer::of(&Snapshot { id: header.id(), header, state }, MAX_CHUNK_BYTES);
        assert!(
            matches!(over, Err(SnapshotError::TooLargeToOffer { what: "state bytes", found, limit, .. })
                if found == MAX_SNAPSHOT_STATE_BYTES + 1 && limit == MAX_SNAPSHOT_STATE_BYTES),
            "{over:?}"
        );
    }

    #[test]
    fn a_manifest_lists_every_chunk_from_two_chunks_on() {
        let one = SnapshotOffer::of(&snapshot_of(vec![4; MIN_CHUNK_BYTES as usize], 1), MIN_CHUNK_BYTES).unwrap();
        assert_eq!((one.chunk_count(), one.manifest.len()), (1, 0), "one chunk is checked against the digest");
        let two = SnapshotOffer::of(&snapshot_of(vec![4; MIN_CHUNK_BYTES as usize + 1], 1), MIN_CHUNK_BYTES).unwrap();
        assert_eq!((two.chunk_count(), two.manifest.len()), (2, 2));
        assert_eq!(two.verify(), Ok(()));
    }

    #[test]
    fn the_offer_cache_follows_the_chunk_size_asked_for() {
        let snapshot = snapshot_of(vec![3; 64 << 10], 1);
        let mut cache = OfferCache::default();
        assert_eq!(cache.offer(&snapshot, 4 << 10).unwrap().0.chunk_bytes, 4 << 10);
        assert_eq!(cache.offer(&snapshot, 4 << 10).unwrap().0.chunk_bytes, 4 << 10);
        assert_eq!(cache.offer(&snapshot, 16 << 10).unwrap().0.chunk_bytes, 16 << 10);
        let (offer, encoded) = cache.offer(&snapshot, 16 << 10).unwrap();
        assert_eq!(encoded, offer.to_bytes());
    }

    fn offer(state_len: u64, chunk_bytes: u64) -> SnapshotOffer {
        let header = SnapshotHeader {
            parent: SnapshotId::ZERO,
            lane_index: 0,
            chain_hash: ChainHash::ZERO,
            state_digest: StateDigest::ZERO,
            max_lamport: 0,
            tips: Vec::new(),
            boundary: Vec::new(),
        };
        SnapshotOffer { id: header.id(), header, state_len, chunk_bytes, manifest: Vec::new() }
    }

    #[test]
    fn a_chunk_range_that_would_wrap_is_an_overflow_error() {
        // Sizes far beyond the limits (decoding refuses them; a caller may
        // still build such an offer) must not wrap: the end of the last of
        // four chunks of 2^62 bytes is 2^64.
        let huge = offer(u64::MAX, 1 << 62);
        assert_eq!(huge.chunk_count(), 4);
        assert_eq!(huge.chunk_range(2), Ok((2 << 62)..(3 << 62)));
        assert!(matches!(huge.chunk_range(3), Err(SnapshotError::Overflow { what: "a chunk's byte range", .. })));
        assert!(matches!(offer(10, 1024).chunk_range(1), Err(SnapshotError::BadChunk { index: 1, .. })));
        assert!(matches!(huge.verify(), Err(SnapshotError::BadOffer { .. })), "such an offer never verifies");
    }

    #[test]
    fn chunks_cover_the_state_once() {
        for (len, size) in [(0, 1024), (1, 1024), (1024, 1024), (1025, 1024), (5000, 2048)] {
            let offer = offer(len, size);
            let ranges: Vec<Range<u64>> = (0..offer.chunk_count()).map(|i| offer.chunk_range(i).unwrap()).collect();
            assert_eq!(ranges.first().map(|range| range.start), Some(0));
            assert_eq!(ranges.last().map(|range| range.end), Some(len));
            assert!(ranges.windows(2).all(|pair| pair[0].end == pair[1].start), "{ranges:?}");
        }
    }
}
