//! A replica: lane history, canonical order, materialised state, hashes,
//! snapshots, stability and pruning, for one node.
//!
//! Lanes go in with [`Replica::insert`] (or are authored with
//! [`Replica::create_lane`]); ordering and replay are lazy and happen when a
//! getter needs the state ([`Replica::status`], [`Replica::state`]), so a
//! burst of lanes costs one merge and one replay.
//!
//! Invariants:
//! - State, chain hash and digest are always those of a replay of the held
//!   lanes in canonical order from the genesis (or from the installed
//!   snapshot); a late lane rolls back to the nearest checkpoint at or before
//!   its position and replays only the suffix.
//! - The stable prefix never changes: checkpoints, rollbacks and admissions
//!   never reach below it, and pruning never goes past it.

use crate::dag::{ForkProof, IdHashKey, LaneDag, LanePool, SlotIdx};
use crate::error::LaneError;
use crate::hash::{ChainHash, LaneId, SnapshotId, StateDigest};
use crate::lane::{Lane, NodeId};
use crate::law::Law;
use crate::members::Members;
use crate::snapshot::{Snapshot, SnapshotHeader, SnapshotRegistry, Tip};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod admit;
mod install;
mod order;
mod replay;
mod select;
mod stability;

pub use replay::decode_state;
use replay::digest_of;

/// A held lane with its id.
pub type LaneRef<'a, O> = (LaneId, &'a Lane<O>);

/// How a replica is set up.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This node.
    pub node: NodeId,
    /// The known member list; causal stability needs every member's lanes.
    /// Shared, not copied, between the nodes of one process.
    pub members: Members,
    /// Lanes between snapshot points; a power of two.
    pub snapshot_interval: u64,
    /// Lanes between rollback checkpoints near the tip; a power of two that
    /// divides `snapshot_interval`.
    pub checkpoint_interval: u64,
    /// Most lanes waiting for ancestry.
    pub max_pending: usize,
    /// Drop lane bodies below each new stable snapshot.
    pub prune: bool,
    /// Keep the canonical bytes of admitted lanes for [`Replica::take_journal`].
    pub journal: bool,
    /// Planted bugs for the harness's hunts: no effect unless the crate is
    /// built with feature `planted-bugs` (hidden from the documented API).
    #[doc(hidden)]
    pub bugs: crate::bugs::Bugs,
    /// This node replaces one whose disk was lost: it authors nothing until
    /// it has completed a sync with every other member, so it
    /// learns its own chain back instead of forking it (see
    /// [`Replica::is_rejoining`]).
    pub rejoining: bool,
    /// Seed of the key the replica's lane-id tables hash under. Lane ids
    /// are hashes of bytes a peer chooses, so a peer that knew the key could
    /// grind ids that collide in the tables and make lookups slow: a driver
    /// facing untrusted peers sets a seed they cannot guess (its own
    /// randomness; the simulator, one drawn from the run's seed). The
    /// default derives it from the node id. Outputs never depend on it.
    pub id_hash_seed: u64,
}

impl ReplicaConfig {
    /// Defaults for `node` in a cluster of `members`.
    pub fn new(node: NodeId, members: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            node,
            members: members.into_iter().collect(),
            snapshot_interval: 256,
            checkpoint_interval: 32,
            max_pending: 100_000,
            prune: false,
            journal: false,
            bugs: crate::bugs::Bugs::NONE,
            rejoining: false,
            id_hash_seed: 0x1d_ba5e_0000_0000 ^ u64::from(node.0),
        }
    }
}

/// What a replica tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The stable prefix advanced to a new snapshot.
    SnapshotCommitted {
        /// Its lane index.
        lane_index: u64,
        /// Its id.
        id: SnapshotId,
    },
    /// A peer's snapshot was installed: the held prefix was replaced by it
    /// (a durable driver rewrites its log on it, as after pruning).
    SnapshotInstalled {
        /// Its lane index.
        lane_index: u64,
        /// Its id.
        id: SnapshotId,
    },
    /// Lanes below the stable snapshot were pruned.
    Pruned {
        /// New prune point.
        lane_index: u64,
        /// Lane bodies dropped.
        lanes: u64,
    },
    /// An author signed two lanes with one seq.
    Fork(ForkProof),
    /// A pending lane was released but failed validation.
    Rejected {
        /// The lane.
        id: LaneId,
        /// Why.
        error: LaneError,
    },
}

/// The replica's hashes and positions: what a handshake compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Lanes in the canonical order (pruned ones included).
    pub lane_index: u64,
    /// Chain hash at the tip.
    pub chain_hash: ChainHash,
    /// Digest of the state at the tip.
    pub state_digest: StateDigest,
    /// Newest stable snapshot point.
    pub snapshot_index: u64,
    /// Its id.
    pub snapshot_id: SnapshotId,
}

/// Counters a driver reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaMetrics {
    /// Lanes applied by replays (a lane replayed twice counts twice).
    pub lanes_replayed: u64,
    /// Rollbacks forced by late lanes.
    pub rollbacks: u64,
    /// Copies of the state taken as rollback checkpoints.
    pub checkpoints_taken: u64,
    /// Conflicts resolved by the law in the current state's history.
    pub conflicts: u64,
    /// Lanes pruned so far.
    pub lanes_pruned: u64,
    /// Lanes that arrived before their ancestry and waited in the pending set.
    pub lanes_pended: u64,
    /// Pending lanes released when their ancestry arrived.
    pub lanes_released: u64,
}

#[derive(Clone, Debug)]
struct Checkpoint<S> {
    lane_index: u64,
    state: S,
    chain: ChainHash,
    conflicts: u64,
}

#[derive(Clone, Copy, Debug)]
struct Mark {
    lane_index: u64,
    chain: ChainHash,
    digest: StateDigest,
}

/// One node's replica of the lane history under law `L`. Cloning forks it:
/// both copies go on independently (a fuzz harness feeds each input to a
/// fresh copy of one receiver).
#[derive(Clone)]
pub struct Replica<L: Law> {
    law: L,
    config: ReplicaConfig,
    dag: LaneDag<L::Op>,
    /// Held lanes above the prune point, in canonical order.
    order: Vec<SlotIdx>,
    prune_index: u64,
    /// How many of `order` the state reflects.
    applied: usize,
    state: L::State,
    chain: ChainHash,
    conflicts: u64,
    digest: Option<StateDigest>,
    /// Sorted by lane index; the first is the stable base.
    checkpoints: Vec<Checkpoint<L::State>>,
    /// Snapshot points above the stable prefix, sorted.
    marks: Vec<Mark>,
    registry: SnapshotRegistry,
    /// The newest stable snapshot point and the frontier there.
    stable_index: u64,
    stable_tips: BTreeMap<NodeId, Tip>,
    stability_dirty: bool,
    /// Lane index up to which every lane is reached by every member (the
    /// scan for the stable end resumes here; a late lane rewinds it).
    reached_scan: u64,
    events: VecDeque<Event>,
    metrics: ReplicaMetrics,
    /// While rejoining: the peers a sync completed with.
    rejoin_peers: Option<BTreeSet<NodeId>>,
    /// Reused buffer for state encodings.
    scratch: Vec<u8>,
    /// What the law keeps between encodings of the state for its digest.
    encode_cache: L::EncodeCache,
}

impl<L: Law> std::fmt::Debug for Replica<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("node", &self.config.node)
            .field("lane_index", &self.lane_index())
            .field("held", &self.dag.held_len())
            .field("pending", &self.dag.pending_len())
            .field("prune_index", &self.prune_index)
            .field("stable_index", &self.stable_index)
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl<L: Law> Replica<L> {
    /// An empty replica at the genesis snapshot.
    pub fn new(law: L, config: ReplicaConfig) -> Self {
        // A node with no other member has no one to learn its chain from.
        let others = config.members.iter().any(|member| member != config.node);
        let rejoin_peers = (config.rejoining && others).then(BTreeSet::new);
        assert!(config.snapshot_interval.is_power_of_two(), "snapshot_interval must be a power of two");
        assert!(config.checkpoint_interval.is_power_of_two(), "checkpoint_interval must be a power of two");
        assert!(config.checkpoint_interval <= config.snapshot_interval, "checkpoints divide snapshot points");
        let state = law.genesis();
        let digest = digest_of(&law, &state);
        let genesis = SnapshotHeader {
            parent: SnapshotId::ZERO,
            lane_index: 0,
            chain_hash: ChainHash::ZERO,
            state_digest: digest,
            max_lamport: 0,
            tips: Vec::new(),
            boundary: Vec::new(),
        };
        let mut registry = SnapshotRegistry::default();
        registry.commit(Snapshot::new(&law, genesis, &state));
        let base = Checkpoint { lane_index: 0, state: state.clone(), chain: ChainHash::ZERO, conflicts: 0 };
        Self {
            dag: LaneDag::new(
                config.max_pending,
                config.journal,
                &config.members,
                IdHashKey::new(config.id_hash_seed),
                config.bugs,
            ),
            law,
            config,
            order: Vec::new(),
            prune_index: 0,
            applied: 0,
            state,
            chain: ChainHash::ZERO,
            conflicts: 0,
            digest: Some(digest),
            checkpoints: vec![base],
            marks: Vec::new(),
            registry,
            stable_index: 0,
            stable_tips: BTreeMap::new(),
            stability_dirty: false,
            reached_scan: 0,
            events: VecDeque::new(),
            metrics: ReplicaMetrics::default(),
            rejoin_peers,
            scratch: Vec::new(),
            encode_cache: L::EncodeCache::default(),
        }
    }

    // ---- getters -------------------------------------------------------

    /// The law.
    pub fn law(&self) -> &L {
        &self.law
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicaConfig {
        &self.config
    }

    /// This node.
    pub fn node(&self) -> NodeId {
        self.config.node
    }

    /// Hashes and positions at the tip (orders and replays first).
    pub fn status(&mut self) -> Status {
        self.materialize();
        let (snapshot_index, snapshot_id) = self.registry.newest_point().expect("the genesis point is always recorded");
        Status {
            lane_index: self.lane_index(),
            chain_hash: self.chain,
            state_digest: self.digest(),
            snapshot_index,
            snapshot_id,
        }
    }

    /// The state at the tip (orders and replays first).
    pub fn state(&mut self) -> &L::State {
        // Planted bug `stale_read`: the state of the last replay is served
        // as is, without the lanes admitted since.
        if !self.config.bugs.stale_read() {
            self.materialize();
        }
        &self.state
    }

    /// Counters.
    pub fn metrics(&self) -> ReplicaMetrics {
        ReplicaMetrics { conflicts: self.conflicts, ..self.metrics }
    }

    /// The frontier: held lanes with no held child.
    pub fn heads(&self) -> &BTreeSet<LaneId> {
        self.dag.heads()
    }

    /// A held lane (not pruned).
    pub fn lane(&self, id: &LaneId) -> Option<&Lane<L::Op>> {
        self.dag.get(id).map(|slot| &*slot.lane)
    }

    /// Whether the lane is held (admitted, or a tip of the pruned prefix).
    pub fn holds(&self, id: &LaneId) -> bool {
        self.dag.holds(id)
    }

    /// Lanes held in full (not pruned).
    pub fn held_lanes(&self) -> usize {
        self.dag.held_len()
    }

    /// Lanes waiting for ancestry.
    pub fn pending_lanes(&self) -> usize {
        self.dag.pending_len()
    }

    /// Highest contiguous seq held per author: the exact summary of the held set.
    pub fn version_vector(&self) -> BTreeMap<NodeId, u64> {
        self.dag.authors().map(|author| (author, self.dag.seq_held(author))).collect()
    }

    /// Each author's latest held lane: `(seq, id)`.
    pub fn author_tips(&self) -> BTreeMap<NodeId, (u64, LaneId)> {
        self.author_tips_ascending().collect()
    }

    /// [`Replica::author_tips`] as an iterator, ascending by author, for
    /// callers that need no map (a summary per sync session).
    pub fn author_tips_ascending(&self) -> impl Iterator<Item = (NodeId, (u64, LaneId))> + '_ {
        self.dag.authors().filter_map(|author| self.dag.author_tip(author).map(|(seq, id, _)| (author, (seq, id))))
    }

    /// Authors with held lanes: the entries of [`Replica::version_vector`],
    /// counted without building it.
    pub fn authors_held(&self) -> usize {
        self.dag.authors().count()
    }

    /// The author's lanes with seq above `after`, in chain order, or `None`
    /// if some of them were pruned (the peer needs the snapshot).
    pub fn lanes_after(&self, author: NodeId, after: u64) -> Option<Vec<LaneRef<'_, L::Op>>> {
        let slots = self.dag.chain_after(author, after)?;
        Some(slots.map(|idx| self.dag.slot(idx)).map(|slot| (slot.id, &*slot.lane)).collect())
    }

    /// Id of the author's lane at `seq`, if held in full or a pruned tip.
    pub fn lane_at(&self, author: NodeId, seq: u64) -> Option<LaneId> {
        if let Some((tip_seq, id, _)) = self.dag.author_tip(author)
            && tip_seq == seq
        {
            return Some(id);
        }
        let mut lanes = self.dag.chain_after(author, seq.checked_sub(1)?)?;
        lanes.next().map(|idx| self.dag.slot(idx).id)
    }

    /// Takes the canonical bytes of every lane admitted since the last call,
    /// in admission order (parents first), when `ReplicaConfig::journal` is
    /// on: the driver appends them to its durable store.
    pub fn take_journal(&mut self) -> Vec<Vec<u8>> {
        self.dag.take_journal()
    }

    /// Held lanes above the prune point in canonical order (orders first).
    pub fn canonical_lanes(&mut self) -> impl Iterator<Item = (LaneId, &Lane<L::Op>)> + '_ {
        self.materialize();
        self.order.iter().map(|idx| self.dag.slot(*idx)).map(|slot| (slot.id, &*slot.lane))
    }

    /// Lane index below which lane bodies were pruned.
    pub fn prune_index(&self) -> u64 {
        self.prune_index
    }

    /// The snapshots.
    pub fn snapshots(&self) -> &SnapshotRegistry {
        &self.registry
    }

    /// Order key of the last lane of the stable prefix (every member holds
    /// every lane at or below it).
    pub fn stable_key(&self) -> Option<crate::dag::OrderKey> {
        self.dag.stable_key()
    }

    /// Parents that pending lanes wait for, sorted.
    pub fn missing_parents(&self) -> Vec<LaneId> {
        self.dag.missing_parents()
    }

    /// Lamport stamp the stable prefix ends at.
    pub fn stable_max_lamport(&self) -> u64 {
        self.dag.stable_key().map_or(0, |key| key.0)
    }

    /// Fork proofs found (bounded) and the total number seen.
    pub fn forks(&self) -> (&[ForkProof], u64) {
        (self.dag.forks(), self.dag.forks_seen())
    }

    /// Keeps lanes, those held now and those admitted later, in `pool`, so
    /// replicas of one process that share it hold each lane once. Changes
    /// nothing a replica computes or outputs.
    pub fn share_lanes(&mut self, pool: &LanePool<L::Op>) {
        self.dag.share_lanes(pool);
    }

    /// The next event for the driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}
