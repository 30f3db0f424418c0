//! Observations: what the nodes, the network, the disks and the nemesis
//! tell the checkers as a run goes. The simulator sees everything (it may
//! look inside a node to say what the node did); checkers see only these
//! values, never a live replica, so a checker cannot be fooled by the state
//! it judges and cannot change it.
//!
//! Invariant: an observation carries plain values (ids, hashes, frontiers,
//! lanes), never a reference into a node.

use scx_engine::{ChainHash, Dot, Lane, LaneId, SnapshotId, StateDigest, WorldOp};
use scx_model::{Frontier, ModelValue};

/// A node's hashes and position at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusView {
    /// Lanes in its canonical order.
    pub lane_index: u64,
    /// Chain hash at the tip.
    pub chain_hash: ChainHash,
    /// Digest of its state.
    pub state_digest: StateDigest,
}

/// One node at a sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeView {
    /// Crashed.
    Down,
    /// Frozen by the nemesis.
    Paused,
    /// Running, with its status.
    Up(StatusView),
}

/// A warning the engine raised: with honest nodes and an honest network,
/// none of these should ever happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineWarning {
    /// A datagram could not be decoded.
    BadMessage(String),
    /// A peer holds a different lane at an (author, seq) this node holds.
    ForkSuspected {
        /// Whose chain.
        author: u32,
        /// Where.
        seq: u64,
    },
    /// A received lane was refused.
    LaneRejected(String),
    /// A received snapshot was refused.
    SnapshotRejected(String),
}

/// Something that happened, as the checkers learn it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// A node authored a lane and acknowledged it (it was durable first).
    Wrote {
        /// The author.
        node: u32,
        /// The lane's id.
        id: LaneId,
        /// The lane.
        lane: Lane<WorldOp>,
    },
    /// A node read one key: the value its state gave and the frontier of
    /// the causally closed set of lanes it held at that moment.
    Read {
        /// The reader.
        node: u32,
        /// The key.
        key: u32,
        /// What the read returned.
        value: ModelValue,
        /// Per-author tips of what it held.
        frontier: Frontier,
    },
    /// A node booted from its disk (`boot` 1 is the first start).
    Booted {
        /// The node.
        node: u32,
        /// How many times it has booted.
        boot: u32,
        /// What it recovered.
        frontier: Frontier,
        /// Its status after recovery.
        status: StatusView,
        /// Bytes of a torn tail recovery truncated.
        torn_tail_bytes: u64,
        /// The engine found a rotten record (not a torn write) and opened
        /// the replica rejoining.
        corruption_detected: bool,
        /// The replica refuses to author until every peer synced with it.
        rejoining: bool,
    },
    /// A node could not recover its log.
    RecoveryFailed {
        /// The node.
        node: u32,
        /// Why.
        error: String,
    },
    /// A node refused a write of the workload's (a valid lane of ops it
    /// may author: it is not rejoining).
    WriteRefused {
        /// The node.
        node: u32,
        /// Why.
        error: String,
    },
    /// A node's log refused a write or a sync while its disk was healthy.
    StoreFailed {
        /// The node.
        node: u32,
        /// Why.
        error: String,
    },
    /// A node's disk died at its crash point.
    Crashed {
        /// The node.
        node: u32,
        /// Unsynced bytes lost.
        unsynced_bytes_lost: u64,
        /// Bytes of a torn write left on the disk.
        torn_bytes: u64,
    },
    /// A node's disk was replaced by an empty one; `held_elsewhere` are the
    /// frontiers of the other nodes that were up at that moment.
    Replaced {
        /// The node.
        node: u32,
        /// What the others held.
        held_elsewhere: Vec<Frontier>,
    },
    /// A crashed node's disk rotted (a bit of a durable record flipped)
    /// before its next boot; `held_elsewhere` are the frontiers of the other
    /// nodes that were up at that moment.
    Rotted {
        /// The node.
        node: u32,
        /// What the others held.
        held_elsewhere: Vec<Frontier>,
    },
    /// A replaced node finished rejoining (it may write again).
    Rejoined {
        /// The node.
        node: u32,
    },
    /// A node started a sync session.
    SessionStarted {
        /// The initiator.
        node: u32,
        /// The peer.
        peer: u32,
        /// The session id.
        session: u64,
        /// The initiator's status when it sent its hello.
        status: StatusView,
    },
    /// A sync session ended at one side.
    SessionEnded {
        /// The node.
        node: u32,
        /// The peer.
        peer: u32,
        /// The session id (the initiator's numbering).
        session: u64,
        /// This node started it.
        initiator: bool,
        /// It ended at the handshake because the hashes matched.
        in_sync: bool,
        /// This node's status when it ended "in sync" (the only case a
        /// checker compares; computing it otherwise would force a replay).
        status: Option<StatusView>,
        /// Lanes this node lacked that the session brought.
        lanes_received: u64,
    },
    /// A node raised a warning.
    Warning {
        /// The node.
        node: u32,
        /// The peer involved, if one.
        peer: Option<u32>,
        /// What.
        warning: EngineWarning,
    },
    /// A node recorded proof that an author signed two lanes with one seq.
    ForkEvidence {
        /// Where it was seen.
        node: u32,
        /// The place in the author's chain.
        dot: Dot,
        /// The lane held there.
        kept: LaneId,
        /// The other lane.
        other: LaneId,
    },
    /// A node applied a batch in which a hostile node had put a forged twin
    /// of one of its own lanes (the session step it answers was open, and
    /// the datagram arrived unchanged).
    ForgeryApplied {
        /// The receiver.
        node: u32,
        /// The hostile sender.
        from: u32,
        /// The forked place in the sender's chain.
        dot: Dot,
        /// The twin's id.
        forged: LaneId,
        /// The lane the receiver holds at `dot` after applying the batch.
        held: Option<LaneId>,
    },
    /// A peer's snapshot chain disagrees with a node's.
    SnapshotChainDiverged {
        /// The node.
        node: u32,
        /// The peer.
        peer: u32,
        /// The engine's account.
        error: String,
    },
    /// A node committed a stable snapshot.
    SnapshotCommitted {
        /// The node.
        node: u32,
        /// Its lane index.
        lane_index: u64,
        /// Its id.
        id: SnapshotId,
        /// Its chain hash.
        chain_hash: ChainHash,
        /// Its state digest.
        state_digest: StateDigest,
        /// What the node held when it committed.
        frontier: Frontier,
    },
    /// Every node at a sample time; `agreed` is the frontier of the live
    /// nodes when they all hold the same chain hash.
    Sampled {
        /// Per node.
        nodes: Vec<NodeView>,
        /// The shared frontier, when every live node agrees.
        agreed: Option<Frontier>,
        /// The last fault has healed and the faulty phase is over.
        quiescent: bool,
    },
    /// The settle bound passed.
    SettleEnded {
        /// The bound, for messages.
        settle_ms: u64,
        /// When the last heal was (simulated ms).
        quiescent_at_ms: u64,
    },
    /// A live node at the end of the run.
    Final {
        /// The node.
        node: u32,
        /// Its status.
        status: StatusView,
        /// What it holds.
        frontier: Frontier,
        /// Its snapshot lineage: (lane index, id) of every snapshot point.
        lineage: Vec<(u64, SnapshotId)>,
        /// Its newest snapshot's own verification, if it has one and it fails.
        latest_snapshot_error: Option<String>,
    },
}
