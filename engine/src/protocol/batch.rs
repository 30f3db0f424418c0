//! Lane batches on the wire: many lanes in canonical (hence causal) order,
//! each parent that is an earlier lane of the same batch written as a short
//! back-reference instead of its 32-byte id. A peer catching up receives
//! mostly such parents, so a batch is about a third of the lanes' canonical
//! bytes.
//!
//! Invariant: decoding rebuilds the exact canonical lanes (the receiver
//! recomputes every id from them; nothing is trusted), and a malformed batch
//! is a typed error, never a panic.

use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_varint};
use crate::hash::LaneId;
use crate::lane::{LANE_FORMAT_VERSION, Lane, MAX_OPS_PER_LANE, MAX_PARENTS, NodeId, Op};
use std::collections::BTreeMap;

/// Format version of a lane batch.
pub const BATCH_FORMAT_VERSION: u8 = 1;
/// Most lanes in one batch.
pub(crate) const MAX_BATCH_LANES: usize = 1 << 20;

const PARENT_ID: u64 = 0;

/// Encodes lanes (in canonical order) as one batch.
pub fn encode_batch<O: Op>(lanes: &[(LaneId, &Lane<O>)]) -> Vec<u8> {
    let mut out = vec![BATCH_FORMAT_VERSION];
    put_varint(&mut out, lanes.len() as u64);
    let mut position: BTreeMap<LaneId, u64> = BTreeMap::new();
    for (index, (id, lane)) in lanes.iter().enumerate() {
        put_varint(&mut out, u64::from(lane.author.0));
        put_varint(&mut out, lane.seq);
        put_varint(&mut out, lane.lamport);
        put_varint(&mut out, lane.parents.len() as u64);
        for parent in &lane.parents {
            match position.get(parent) {
                // Distance back to the parent, at least 1; 0 means a full id follows.
                Some(at) => put_varint(&mut out, index as u64 - at),
                None => {
                    put_varint(&mut out, PARENT_ID);
                    out.extend_from_slice(parent.as_bytes());
                }
            }
        }
        put_varint(&mut out, lane.ops.len() as u64);
        for op in &lane.ops {
            op.encode(&mut out);
        }
        position.insert(*id, index as u64);
    }
    out
}

/// Decodes a batch into canonical lane bytes, in the batch's order.
pub fn decode_batch<O: Op>(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DecodeError> {
    let mut reader = Reader::new(bytes);
    let version = reader.byte("batch version")?;
    if version != BATCH_FORMAT_VERSION {
        return Err(reader.error(DecodeErrorKind::UnknownVersion { found: version, expected: BATCH_FORMAT_VERSION }));
    }
    let count = reader.count("batch lanes", MAX_BATCH_LANES as u64, 5)?;
    let mut ids: Vec<LaneId> = Vec::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
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
                let at = (index as u64).checked_sub(back).ok_or_else(|| {
                    reader.error(DecodeErrorKind::Invalid { what: "parent reference", rule: "points before the batch" })
                })?;
                parents.push(ids[at as usize]);
            }
        }
        let op_count = reader.count("lane ops", MAX_OPS_PER_LANE as u64, 1)?;
        let mut ops = Vec::with_capacity(op_count);
        for _ in 0..op_count {
            ops.push(O::decode(&mut reader)?);
        }
        // Lane::new sorts parents; a batch written from canonical lanes holds
        // them sorted already, and the canonical bytes below carry that order.
        let lane = Lane { parents, author, seq, lamport, ops };
        let canonical = lane.to_bytes();
        debug_assert_eq!(canonical[0], LANE_FORMAT_VERSION);
        ids.push(crate::hash::lane_id(&canonical));
        out.push(canonical);
    }
    reader.finish()?;
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
        for len in 0..batch.len() {
            assert!(decode_batch::<WorldOp>(&batch[..len]).is_err(), "a {len}-byte prefix decoded");
        }
        for position in 0..batch.len() {
            let mut bad = batch.clone();
            bad[position] ^= 0x5a;
            let _ = decode_batch::<WorldOp>(&bad);
        }
        // A back-reference before the start of the batch.
        let mut forged = vec![BATCH_FORMAT_VERSION, 1, 0, 1, 1, 1, 7, 0];
        forged.push(0);
        assert!(decode_batch::<WorldOp>(&forged).is_err());
    }
}
