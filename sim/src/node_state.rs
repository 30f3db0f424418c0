//! What a node is while it is up: its replica and disk, its sync sessions,
//! its own random stream and its socket. `node.rs` drives it; the world
//! keeps a handle on it for the simulator (never for the checkers).

use crate::rng::SimRng;
use crate::storage::SimDisk;
use madsim::net::Endpoint;
use scx_engine::NodeId;
use scx_engine::durable::DurableReplica;
use scx_engine::protocol::Syncer;
use std::collections::BTreeMap;

/// A node's state while it is up.
pub struct NodeCore {
    /// The node.
    pub index: u32,
    /// Replica and disk.
    pub durable: DurableReplica<scx_engine::World, SimDisk>,
    /// Sync sessions.
    pub syncer: Syncer,
    /// The node's own random stream (peer choice, reads after syncs).
    pub(crate) rng: SimRng,
    /// When each open session started (simulated ns), for timeouts.
    pub(crate) open_since: BTreeMap<(NodeId, u64), u64>,
    /// Where the node is in its peer rotation.
    pub(crate) rotation: u32,
    /// Its socket.
    pub(crate) endpoint: Endpoint,
}

impl std::fmt::Debug for NodeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCore").field("index", &self.index).field("durable", &self.durable).finish_non_exhaustive()
    }
}
