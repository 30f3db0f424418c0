//! The oracle: an outside record of every lane a node acknowledged (its own
//! writes, after they were durable). It keeps its own copy of each lane, so
//! its replay is independent of anything the nodes stored or sent.

use scx_engine::{Lane, LaneId, NodeId, Replica, ReplicaConfig, Status, World, WorldOp};
use std::collections::{BTreeMap, BTreeSet};

/// One acknowledged write.
#[derive(Clone, Debug)]
pub struct Acked {
    /// The author.
    pub author: u32,
    /// The lane.
    pub lane: Lane<WorldOp>,
    /// When it was acknowledged (simulated ns).
    pub at_ns: u64,
}

/// Every acknowledged lane, by id.
#[derive(Debug, Default)]
pub struct Oracle {
    acked: BTreeMap<LaneId, Acked>,
    by_node: BTreeMap<u32, BTreeSet<LaneId>>,
}

impl Oracle {
    /// Records that `author` acknowledged `lane`.
    pub fn ack(&mut self, author: u32, id: LaneId, lane: Lane<WorldOp>, at_ns: u64) {
        self.by_node.entry(author).or_default().insert(id);
        self.acked.insert(id, Acked { author, lane, at_ns });
    }

    /// When the last write was acknowledged (simulated ns), if any was.
    pub fn last_ack_at_ns(&self) -> Option<u64> {
        self.acked.values().map(|acked| acked.at_ns).max()
    }

    /// Lanes `node` acknowledged.
    pub fn acked_by(&self, node: u32) -> impl Iterator<Item = &LaneId> + '_ {
        self.by_node.get(&node).into_iter().flatten()
    }

    /// The place of every lane `node` acknowledged.
    pub fn dots_acked_by(&self, node: u32) -> Vec<(LaneId, scx_engine::Dot)> {
        self.acked_by(node).filter_map(|id| self.acked.get(id).map(|acked| (*id, acked.lane.dot()))).collect()
    }

    /// Every acknowledged lane.
    pub fn all(&self) -> impl Iterator<Item = (&LaneId, &Acked)> + '_ {
        self.acked.iter()
    }

    /// Number of acknowledged lanes.
    pub fn len(&self) -> usize {
        self.acked.len()
    }

    /// Whether nothing was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.acked.is_empty()
    }

    /// The status a replica reaches from the acknowledged lanes `keep`
    /// selects, replayed from scratch with the oracle's own copies.
    pub fn replay(&self, members: u32, snapshot_interval: u64, keep: impl Fn(&LaneId, &Acked) -> bool) -> Status {
        let mut config = ReplicaConfig::new(NodeId(u32::MAX), (0..members).map(NodeId));
        config.snapshot_interval = snapshot_interval;
        config.checkpoint_interval = snapshot_interval.min(32);
        config.max_pending = usize::MAX;
        let mut replica = Replica::new(World, config);
        for (id, acked) in &self.acked {
            if keep(id, acked) {
                // Every acknowledged lane is valid; order does not matter.
                let _ = replica.insert(acked.lane.clone());
            }
        }
        replica.status()
    }
}
