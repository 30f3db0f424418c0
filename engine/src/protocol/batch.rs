//! Lane batches on the wire: many lanes in canonical (hence causal) order,
//! each parent that is an earlier lane of the same batch written as a short
//! back-reference instead of its 32-byte id. A peer catching up receives
//! mostly such parents, so a batch is about a third of the lanes' canonical
//! bytes.
//!
//! Invariant: decoding rebuilds the exact canonical lanes (the receiver
//! recomputes every id from them; nothing is trusted), and a malformed batch
//! is a typed error, never a panic.

use crate::bugs::Bugs;
use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_varint};
use crate::hash::LaneId;
use crate::lane::{LANE_FORMAT_VERSION, Lane, MAX_OPS_PER_LANE, MAX_PARENTS, NodeId, Op};
use std::collections::BTreeMap;

/// Format version of a lane batch.
pub const BATCH_FORMAT_VERSION: u8 = 1;
/// Most lanes in one batch.
pub(crate) const MAX_BATCH_LANES: usize = 1 << 20;

const PARENT_ID: u64 = 0;

/// Writes lanes, in canonical order, into one batch.
#[derive(Debug)]
pub(crate) struct BatchWriter {
    out: Vec<u8>,
    /// Position of each lane written, by id. A B-tree, not a hash table:
    /// the writer has no replica's key (`dag::ids`), and the lanes it writes
    /// may be a peer's, whose ids a peer can grind to collide under any
    /// hash it can compute.
    position: BTreeMap<LaneId, u64>,
    count: u64,
}

impl BatchWriter {
    pub(crate) fn new() -> Self {
        Self { out: vec![BATCH_FORMAT_VERSION], position: BTreeMap::new(), count: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Lanes written so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Appends one lane; parents written earlier become back-references.
    pub(crate) fn push<O: Op>(&mut self, id: LaneId, lane: &Lane<O>) {
        let out = &mut self.out;
        put_varint(out, u64::from(lane.author.0));
        put_varint(out, lane.seq);
        put_varint(out, lane.lamport);
        put_varint(out, lane.parents.len() as u64);
        for parent in &lane.parents {
            match self.position.get(parent) {
                // Distance back to the parent, at least 1; 0 means a full id follows.
                Some(at) => put_varint(out, self.count - at),
                None => {
                    put_varint(out, PARENT_ID);
                    out.extend_from_slice(parent.as_bytes());
                }
            }
        }
        put_varint(out, lane.ops.len() as u64);
        for op in &lane.ops {
            op.encode(out);
        }
        self.position.insert(id, self.count);
        self.count += 1;
    }

    /// Appends one lane unless the batch would then be longer than `limit`
    /// bytes; the first lane always goes in (a lane fits any batch limit
    /// the protocol uses). Returns whether it was appended.
    pub(crate) fn push_within<O: Op>(&mut self, id: LaneId, lane: &Lane<O>, limit: usize) -> bool {
        let (before, position) = (self.out.len(), self.position.get(&id).copied());
        self.push(id, lane);
        if self.out.len() <= limit || self.count == 1 {
            return true;
        }
        self.out.truncate(before);
        match position {
            Some(at) => self.position.insert(id, at),
            None => self.position.remove(&id),
        };
        self.count -= 1;
        false
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Encodes lanes (in canonical order) as one batch.
pub fn encode_batch<O: Op>(lanes: &[(LaneId, &Lane<O>)]) -> Vec<u8> {
    let mut writer = BatchWriter::new();
    for (id, lane) in lanes {
        writer.push(*id, lane);
    }
    writer.finish()
}

/// Decodes a batch into canonical lane bytes, in the batch's order.
pub fn decode_batch<O: Op>(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    Ok(decode_batch_lanes::<O>(bytes, &Bugs::NONE)?.into_iter().map(|(_, lane, _)| lane.to_bytes()).collect())
}

/// Decodes a batch into lanes with their ids (computed from the rebuilt
/// canonical bytes) and canonical sizes.
pub(crate) fn decode_batch_lanes<O: Op>(
    bytes: &[u8],
    bugs: &Bugs,
) -> Result<Vec<(LaneId, Lane<O>, usize)>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let version = reader.byte("batch version")?;
    if version != BATCH_FORMAT_VERSION {
        return Err(reader.error(DecodeErrorKind::UnknownVersion { found: version, expected: BATCH_FORMAT_VERSION }));
    }
    let mut out: Vec<(LaneId, Lane<O>, usize)> = Vec::new();
    let mut canonical = Vec::with_capacity(128);
    while reader.remaining() > 0 {
        if out.len() >= MAX_BATCH_LANES {
            return Err(reader.error(DecodeErrorKind::TooLong {
                what: "batch lanes",
                found: out.len() as u64 + 1,
                limit: MAX_BATCH_LANES as u64,
            }));
        }
        let index = out.len() as u64;
        let author = NodeId(reader.varint_u32("lane author")?);
        let seq = reader.varint("lane seq")?;
        let lamport = reader.varint("lane lamport")?;
        let parent_count = reader.count("lane parents", MAX_PARENTS as u64, 1)?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            let back = reader.varint("parent reference")?;
            if back == PARENT_ID {
                parents.push(LaneId(reader.array32("parent id")?));
            } else {
                let at = index.checked_sub(back).ok_or_else(|| {
                    reader.error(DecodeErrorKind::Invalid { what: "parent reference", rule: "points before the batch" })
                })?;
                // Planted bug `backref_off_by_one`: the distance is counted
                // from the lane before this one, so it names one lane earlier.
                let at = at.saturating_sub(u64::from(bugs.backref_off_by_one()));
                parents.push(out[at as usize].0);
            }
        }
        let op_count = reader.count("lane ops", MAX_OPS_PER_LANE as u64, 1)?;
        let ops_start = reader.offset();
        let mut ops = Vec::with_capacity(op_count);
        for _ in 0..op_count {
            ops.push(O::decode(&mut reader)?);
        }
        // Parents keep the order they were written in (a canonical lane's),
        // so the rebuilt bytes are the sender's canonical bytes. Ops are
        // encoded alike in both formats: their bytes are copied, not re-encoded.
        canonical.clear();
        canonical.push(LANE_FORMAT_VERSION);
        put_varint(&mut canonical, u64::from(author.0));
        put_varint(&mut canonical, seq);
        put_varint(&mut canonical, lamport);
        put_varint(&mut canonical, parents.len() as u64);
        for parent in &parents {
            canonical.extend_from_slice(parent.as_bytes());
        }
        put_varint(&mut canonical, ops.len() as u64);
        canonical.extend_from_slice(&bytes[ops_start..reader.offset()]);
        let lane = Lane { parents, author, seq, lamport, ops };
        debug_assert_eq!(canonical, lane.to_bytes(), "the rebuilt bytes are the canonical encoding");
        out.push((crate::hash::lane_id(&canonical), lane, canonical.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::WorldOp;

    fn chain(count: u64) -> Vec<(LaneId, Lane<WorldOp>)> {
        let mut lanes: Vec<(LaneId, Lane<WorldOp>)> = Vec::new();
        for seq in 1..=count {
            let mut parents: Vec<LaneId> = lanes.last().map(|(id, _)| vec![*id]).unwrap_or_default();
            if seq % 3 == 0 {
                parents.push(LaneId([seq as u8; 32]));
            }
            let lane = Lane::new(
                NodeId((seq % 2) as u32),
                seq,
                seq + 1,
                parents,
                vec![WorldOp::Add { key: seq as u32, delta: -1 }],
            );
            lanes.push((lane.id(), lane));
        }
        lanes
    }

    #[test]
    fn batches_round_trip_to_the_canonical_bytes_and_are_smaller() {
        let lanes = chain(50);
        let refs: Vec<(LaneId, &Lane<WorldOp>)> = lanes.iter().map(|(id, lane)| (*id, lane)).collect();
        let batch = encode_batch(&refs);
        let decoded = decode_batch::<WorldOp>(&batch).unwrap();
        let canonical: Vec<Vec<u8>> = lanes.iter().map(|(_, lane)| lane.to_bytes()).collect();
        assert_eq!(decoded, canonical);
        let canonical_bytes: usize = canonical.iter().map(Vec::len).sum();
        assert!(batch.len() * 2 < canonical_bytes, "{} vs {canonical_bytes}", batch.len());
    }

    #[test]
    fn bad_batches_are_errors_not_panics() {
        let lanes = chain(10);
        let refs: Vec<(LaneId, &Lane<WorldOp>)> = lanes.iter().map(|(id, lane)| (*id, lane)).collect();
        let batch = encode_batch(&refs);
        // A batch cut between lanes is a shorter valid batch; cut inside a lane, an error.
        for len in 0..batch.len() {
            if let Ok(lanes) = decode_batch::<WorldOp>(&batch[..len]) {
                assert!(lanes.len() < 10);
            }
        }
        assert!(decode_batch::<WorldOp>(&batch[..batch.len() - 1]).is_err());
        for position in 0..batch.len() {
            let mut bad = batch.clone();
            bad[position] ^= 0x5a;
            let _ = decode_batch::<WorldOp>(&bad);
        }
        // A back-reference before the start of the batch.
        let forged = vec![BATCH_FORMAT_VERSION, 0, 1, 1, 1, 7, 0];
        assert!(decode_batch::<WorldOp>(&forged).is_err());
    }
}
