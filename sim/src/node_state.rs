//! What a node is while it is up: the engine's node, its disk, its own
//! random stream and its socket. `node.rs` drives it; the world keeps a
//! handle on it for the simulator (never for the checkers).

use crate::rng::SimRng;
use crate::storage::SimDisk;
use madsim::net::Endpoint;
use scx_engine::Node;

/// A node's state while it is up.
pub struct NodeCore {
    /// The node.
    pub index: u32,
    /// The engine: replica, sessions, log writes and timers.
    pub node: Node<scx_engine::World>,
    /// Its disk (outside the node, in the world; this is a handle on it).
    pub(crate) disk: SimDisk,
    /// The node's own random stream (reads after syncs, the courier's peer).
    pub(crate) rng: SimRng,
    /// Its socket.
    pub(crate) endpoint: Endpoint,
    /// The soonest timer armed for it (simulated ns), if any.
    pub(crate) timer_armed_ns: Option<u64>,
}

impl std::fmt::Debug for NodeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCore").field("index", &self.index).field("node", &self.node).finish_non_exhaustive()
    }
}
