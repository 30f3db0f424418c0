//! What a real node's engine tells its driver, as log entries: the same
//! mapping `sim/src/node.rs` makes into observations (and the same read
//! after a share of the sessions that brought lanes), written down instead
//! of handed to the checkers, plus each session's counters for the record.

use super::RealError;
use super::log::{Entry, Metrics, tips, warning_entry};
use super::process::RealNode;
use crate::observation::EngineWarning;
use crate::workload;
use scx_engine::node::NodeEvent;
use scx_engine::protocol::{Outcome, Role, SyncEvent};
use scx_engine::{LaneError, SnapshotError};

/// The simulator's share of sessions that brought lanes after which a node reads.
const READ_AFTER_SYNC_SHARE: f64 = 0.25;

impl RealNode {
    /// Logs one event of the engine's.
    pub(super) fn report(&mut self, event: NodeEvent<scx_engine::WorldOp>) -> Result<(), RealError> {
        match event {
            NodeEvent::Written { lane, .. } => self.log(Entry::Wrote { lane: super::log::lane_hex(&lane) }),
            NodeEvent::Replica(event) => self.replica_event(event),
            NodeEvent::Sync(event) => self.sync_event(event),
            NodeEvent::SessionStarted { peer, session } => {
                let status = self.status();
                self.log(Entry::SessionStarted { peer: peer.0, session, status })
            }
            NodeEvent::Rejoined => self.log(Entry::Rejoined),
        }
    }

    fn replica_event(&mut self, event: scx_engine::Event) -> Result<(), RealError> {
        match event {
            scx_engine::Event::SnapshotCommitted { lane_index, id } => {
                let replica = self.engine.replica();
                let header = replica
                    .snapshots()
                    .latest()
                    .filter(|latest| latest.header.id() == id)
                    .map(|latest| (latest.header.chain_hash, latest.header.state_digest));
                let Some((chain_hash, state_digest)) = header else { return Ok(()) };
                let frontier = tips(&replica.author_tips());
                self.log(Entry::SnapshotCommitted { lane_index, id, chain_hash, state_digest, frontier })
            }
            scx_engine::Event::Fork(proof) => {
                self.log(Entry::ForkEvidence { dot: proof.dot, kept: proof.kept, other: proof.other })
            }
            scx_engine::Event::Rejected { id, error } => self.log(warning_entry(
                None,
                &EngineWarning::LaneRejected(format!("pending lane {} released but invalid: {error}", id.short())),
            )),
            scx_engine::Event::Pruned { .. } | scx_engine::Event::SnapshotInstalled { .. } => Ok(()),
        }
    }

    fn sync_event(&mut self, event: SyncEvent) -> Result<(), RealError> {
        match event {
            SyncEvent::Completed { peer, session, role, outcome, metrics } => {
                let in_sync = outcome == Outcome::InSync;
                let status = in_sync.then(|| self.status());
                self.log(Entry::SessionEnded {
                    peer: peer.0,
                    session,
                    initiator: role == Role::Initiator,
                    in_sync,
                    status,
                    metrics: Metrics::from(&metrics),
                })?;
                if metrics.lanes_missing > 0 && !self.engine.is_rejoining() && self.rng.chance(READ_AFTER_SYNC_SHARE) {
                    // Read what the session brought, as an application would.
                    let key = workload::read_key(&mut self.rng, &self.spec.workload);
                    self.read(key)?;
                }
                Ok(())
            }
            SyncEvent::Failed { peer, metrics, .. } => {
                self.log(Entry::SessionFailed { peer: peer.0, metrics: Metrics::from(&metrics) })
            }
            SyncEvent::LaneRejected { error: LaneError::Fork { dot, kept, other }, .. } => {
                self.log(Entry::ForkEvidence { dot, kept, other })
            }
            SyncEvent::LaneRejected { peer, error } => {
                self.log(warning_entry(Some(peer.0), &EngineWarning::LaneRejected(error.to_string())))
            }
            SyncEvent::ForkSuspected { peer, author, seq } => {
                self.log(warning_entry(Some(peer.0), &EngineWarning::ForkSuspected { author: author.0, seq }))
            }
            SyncEvent::BadMessage { peer, error } => {
                self.log(warning_entry(Some(peer.0), &EngineWarning::BadMessage(error.to_string())))
            }
            SyncEvent::Diverged { peer, error } => match error {
                SnapshotError::Diverged { .. } | SnapshotError::ContradictsHistory { .. } => {
                    self.log(Entry::SnapshotChainDiverged { peer: peer.0, error: error.to_string() })
                }
                _ => self.log(warning_entry(Some(peer.0), &EngineWarning::SnapshotRejected(error.to_string()))),
            },
        }
    }
}
