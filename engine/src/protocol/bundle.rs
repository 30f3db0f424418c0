//! Bundle files: everything a replica holds (and its snapshot, if it
//! pruned) in one file, for a courier to carry to an air-gapped peer whose
//! state is unknown, and how a receiver applies one.

use super::events::{SessionMetrics, SyncEvent};
use super::session::Syncer;
use super::wire::{self, Message, WireError, WireSnapshot};
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;

/// A bundle file: everything `replica` holds (and its snapshot, if it
/// pruned), for carrying to an air-gapped peer whose state is unknown.
pub fn bundle<L: Law>(replica: &mut Replica<L>) -> Vec<u8> {
    let snapshot = (replica.prune_index() > 0).then(|| WireSnapshot { bytes: replica.snapshot_transfer().to_bytes() });
    let lanes: Vec<(LaneId, &crate::Lane<L::Op>)> = replica.canonical_lanes().collect();
    let lanes = super::batch::encode_batch(&lanes);
    wire::encode(&Message::Lanes { session: 0, snapshot, lanes, more: false, need: Vec::new() })
}

/// Applies a bundle file: verifies and installs its snapshot, then inserts
/// its lanes; returns what it brought, and what went wrong on the way
/// (a refused snapshot, refused lanes) as the events a session would raise,
/// for the driver to report like any other (they name `from`, the node the
/// bundle came from).
pub fn apply_bundle<L: Law>(
    bytes: &[u8],
    from: NodeId,
    replica: &mut Replica<L>,
) -> Result<(SessionMetrics, Vec<SyncEvent>), WireError> {
    let Message::Lanes { snapshot, lanes, .. } = wire::decode(bytes)? else {
        return Err(WireError::Malformed { reason: "a bundle holds one Lanes message".into() });
    };
    let mut metrics = SessionMetrics { bytes_received: bytes.len() as u64, ..SessionMetrics::default() };
    let mut syncer = Syncer::new(replica.node());
    syncer.apply(from, snapshot, &lanes, replica, &mut metrics);
    Ok((metrics, syncer.events.into_iter().collect()))
}
