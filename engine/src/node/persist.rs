//! What a node writes to its log, and in which records: every admitted lane
//! in admission order (parents first), a commit record per stable snapshot,
//! rejoin records, and after a prune or a snapshot install a compaction that
//! replaces the log with the snapshot (its header names its boundary) and
//! the lanes above it.
//!
//! Invariant: after the persists of one input are durable, replaying the
//! log recovers exactly what the replica holds (see `recover.rs`), so a lane
//! is never sent or acknowledged before it would survive a crash.

use super::{Node, NodeEvent};
use crate::bugs::Bugs;
use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_varint};
use crate::hash::SnapshotId;
use crate::law::Law;
use crate::log::{Record, RecordKind};
use crate::node::PersistOp;
use crate::replica::Event;
use crate::snapshot::{Snapshot, SnapshotError};

/// Payload of a rejoin record: the node started rejoining.
pub(super) const REJOIN_STARTED: [u8; 1] = [1];
/// Payload of a rejoin record: the node finished rejoining.
const REJOIN_ENDED: [u8; 1] = [0];

impl<L: Law> Node<L> {
    /// Turns what the replica admitted and announced since the last input
    /// into log writes, and its announcements into events; the flag says
    /// the node finished rejoining (the log now says so).
    pub(super) fn persist_ops(&mut self) -> (Vec<PersistOp>, Vec<NodeEvent<L::Op>>, bool) {
        let bugs = self.replica.config().bugs;
        let sync = !bugs.lazy_sync();
        let mut ops = Vec::new();
        let mut records: Vec<Record> =
            self.replica.take_journal().into_iter().map(|payload| Record { kind: RecordKind::Lane, payload }).collect();
        let mut events = Vec::new();
        loop {
            let mut compact = false;
            while let Some(event) = self.replica.poll_event() {
                match &event {
                    Event::SnapshotCommitted { lane_index, id } => records
                        .push(Record { kind: RecordKind::Commit, payload: encode_commit(*lane_index, id, &bugs) }),
                    // The log's lanes name the installed prefix only through
                    // the snapshot: rewrite it as after pruning, snapshot first.
                    Event::Pruned { .. } | Event::SnapshotInstalled { .. } => compact = true,
                    Event::Fork(_) | Event::Rejected { .. } => {}
                }
                events.push(NodeEvent::Replica(event));
            }
            if !compact {
                break;
            }
            // The compacted image holds every lane and the newest snapshot:
            // what was about to be appended is in it. (Planted bug
            // `oversized_commit_record` keeps the commit records, which the
            // image makes redundant, so it bites on a pruning node too.)
            records.retain(|record| bugs.compaction_keeps(record.kind));
            ops.push(PersistOp::Replace { records: self.compaction_image() });
            // Building the image materialised, which may have committed (and
            // pruned) again: go round until the replica has nothing new.
        }
        let rejoined = self.rejoin_recorded && !self.replica.is_rejoining();
        if rejoined {
            records.push(Record { kind: RecordKind::Rejoin, payload: REJOIN_ENDED.to_vec() });
            self.rejoin_recorded = false;
        }
        if !records.is_empty() {
            ops.push(PersistOp::Append { records, sync });
        }
        (ops, events, rejoined)
    }

    /// The log as it should be after compaction: the latest snapshot (its
    /// header names its boundary), then the held lanes in canonical order, then the rejoin
    /// record if the node is still rejoining.
    fn compaction_image(&mut self) -> Vec<Record> {
        // Materialise before taking the snapshot: listing the lanes would,
        // and lanes admitted since the last replay can advance the stable
        // point and prune past a snapshot taken first, leaving the lanes
        // between the two out of the log.
        self.replica.materialize();
        let snapshot = self.replica.snapshot_transfer();
        let base = snapshot.header.lane_index;
        let mut records = vec![Record { kind: RecordKind::Snapshot, payload: snapshot.to_bytes() }];
        // At the prune point, or above it when a stable snapshot followed an
        // installed one without pruning; lanes it covers are skipped on recovery.
        let pruned = self.replica.prune_index();
        assert!(base >= pruned, "compaction never reaches below the prune point");
        records.extend(
            self.replica.canonical_lanes().map(|(_, lane)| Record { kind: RecordKind::Lane, payload: lane.to_bytes() }),
        );
        assert_eq!(self.replica.prune_index(), pruned, "listing the lanes did not move the prune point");
        if self.rejoin_recorded {
            records.push(Record { kind: RecordKind::Rejoin, payload: REJOIN_STARTED.to_vec() });
        }
        records
    }
}

/// Decodes and verifies the id of a snapshot record (the digest is
/// verified on install). The header names the boundary, so a snapshot
/// record is just the snapshot's canonical bytes.
pub(super) fn decode_snapshot_record(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    Snapshot::from_bytes(bytes)
}

pub(super) fn encode_commit(lane_index: u64, id: &SnapshotId, bugs: &Bugs) -> Vec<u8> {
    let mut out = Vec::with_capacity(42);
    put_varint(&mut out, lane_index);
    out.extend_from_slice(id.as_bytes());
    bugs.commit_payload(out)
}

pub(super) fn decode_commit(bytes: &[u8]) -> Result<(u64, SnapshotId), DecodeError> {
    let mut reader = Reader::new(bytes);
    let lane_index = reader.varint("commit lane index")?;
    let id = SnapshotId(reader.array32("commit snapshot id")?);
    reader.finish()?;
    Ok((lane_index, id))
}

/// Whether a rejoin record says the node is rejoining.
pub(super) fn decode_rejoin(bytes: &[u8], bugs: &Bugs) -> Result<bool, DecodeError> {
    let mut reader = Reader::new(bytes);
    let flag = reader.byte("rejoin flag")?;
    reader.finish()?;
    match flag {
        0 => Ok(false),
        1 => Ok(true),
        // Rot found by an earlier recovery, before the node could record its rejoin.
        2 => Ok(!bugs.rot_taken_for_tear()),
        tag => Err(DecodeError { offset: 0, kind: DecodeErrorKind::UnknownTag { what: "rejoin flag", tag } }),
    }
}
