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

use crate::codec::Reader;
use crate::dag::{ForkProof, Inserted, LaneDag, OrderKey, SlotIdx};
use crate::error::LaneError;
use crate::hash::{self, ChainHash, LaneId, SnapshotId, StateDigest};
use crate::lane::{Lane, MAX_PARENTS, NodeId};
use crate::law::{LaneContext, Law};
use crate::snapshot::{Snapshot, SnapshotError, SnapshotHeader, SnapshotRegistry, Tip};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A held lane with its id.
pub type LaneRef<'a, O> = (LaneId, &'a Lane<O>);

/// How a replica is set up.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// This node.
    pub node: NodeId,
    /// The known member list; causal stability needs every member's lanes.
    pub members: BTreeSet<NodeId>,
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
    /// Planted bugs (effective only with the `planted-bugs` feature).
    pub bugs: crate::bugs::Bugs,
    /// This node replaces one whose disk was lost: it authors nothing until
    /// it has completed a sync with a majority of the other members, so it
    /// learns its own chain back instead of forking it (see
    /// [`Replica::is_rejoining`]).
    pub rejoining: bool,
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
        let rejoin_peers = config.rejoining.then(BTreeSet::new);
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
        };
        let mut registry = SnapshotRegistry::default();
        registry.commit(Snapshot::new(&law, genesis, &state));
        let base = Checkpoint { lane_index: 0, state: state.clone(), chain: ChainHash::ZERO, conflicts: 0 };
        Self {
            dag: LaneDag::new(config.max_pending, config.journal, &config.members, config.bugs),
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

    /// Lane index and chain hash at the tip (orders and replays first, but
    /// does not compute the state digest, which costs an encoding of the
    /// whole state).
    pub fn tip(&mut self) -> (u64, ChainHash) {
        self.materialize();
        (self.lane_index(), self.chain)
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
        self.dag.get(id).map(|slot| &slot.lane)
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
        self.dag
            .authors()
            .filter_map(|author| self.dag.author_tip(author).map(|(seq, id, _)| (author, (seq, id))))
            .collect()
    }

    /// The author's lanes with seq above `after`, in chain order, or `None`
    /// if some of them were pruned (the peer needs the snapshot).
    pub fn lanes_after(&self, author: NodeId, after: u64) -> Option<Vec<LaneRef<'_, L::Op>>> {
        let slots = self.dag.chain_after(author, after)?;
        Some(slots.map(|idx| self.dag.slot(idx)).map(|slot| (slot.id, &slot.lane)).collect())
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

    /// Canonical bytes of the author's lane at `seq`, if held in full.
    pub fn lane_bytes_at(&self, author: NodeId, seq: u64) -> Option<Vec<u8>> {
        let mut lanes = self.dag.chain_after(author, seq.checked_sub(1)?)?;
        lanes.next().map(|idx| self.dag.slot(idx).lane.to_bytes())
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
        self.order.iter().map(|idx| self.dag.slot(*idx)).map(|slot| (slot.id, &slot.lane))
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

    /// The next event for the driver.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- inputs --------------------------------------------------------

    /// Inserts a lane from a peer or a log. Idempotent; missing ancestry
    /// parks it; a bad lane is refused and changes nothing.
    pub fn insert(&mut self, lane: Lane<L::Op>) -> Result<Inserted, LaneError> {
        self.scratch.clear();
        lane.encode(&mut self.scratch);
        let id = hash::lane_id(&self.scratch);
        self.insert_with_id(id, lane)
    }

    /// Decodes and inserts canonical lane bytes.
    pub fn insert_bytes(&mut self, bytes: &[u8]) -> Result<Inserted, LaneError> {
        let (id, lane) = Lane::decode(bytes)?;
        self.insert_with_id(id, lane)
    }

    /// Inserts canonical lane bytes that arrived with a claimed id.
    pub fn insert_claimed(&mut self, claimed: LaneId, bytes: &[u8]) -> Result<Inserted, LaneError> {
        let (actual, lane) = Lane::decode(bytes)?;
        if actual != claimed {
            return Err(LaneError::IdMismatch { claimed, actual });
        }
        self.insert_with_id(actual, lane)
    }

    /// Inserts a lane whose id the caller computed from its canonical bytes.
    pub(crate) fn insert_with_known_id(&mut self, id: LaneId, lane: Lane<L::Op>) -> Result<Inserted, LaneError> {
        self.insert_with_id(id, lane)
    }

    /// Builds this node's next lane over its current heads without admitting
    /// it: the caller makes it durable first, then inserts it.
    pub fn prepare_lane(&self, ops: Vec<L::Op>) -> Lane<L::Op> {
        let me = self.config.node;
        let own_tip = self.dag.author_tip(me);
        let seq = own_tip.map_or(1, |(seq, _, _)| seq + 1);
        let mut parents: Vec<LaneId> = Vec::with_capacity(self.dag.heads().len() + 1);
        if let Some((_, id, _)) = own_tip {
            parents.push(id);
        }
        // Newest heads first, so a capped parent list keeps the freshest ones;
        // the rest stay heads and are merged by a later lane.
        let mut others: Vec<(u64, LaneId)> = self
            .dag
            .heads()
            .iter()
            .filter(|id| Some(**id) != own_tip.map(|(_, id, _)| id))
            .map(|id| (self.lamport_of(id), *id))
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        parents.extend(others.into_iter().take(MAX_PARENTS - parents.len()).map(|(_, id)| id));
        let lamport = 1 + parents.iter().map(|id| self.lamport_of(id)).max().unwrap_or(0);
        let lamport = lamport.max(self.stable_max_lamport() + 1);
        Lane::new(me, seq, lamport, parents, ops)
    }

    /// Authors and admits this node's next lane (no durability: see
    /// `DurableReplica` for write-ahead).
    pub fn create_lane(&mut self, ops: Vec<L::Op>) -> Result<(LaneId, Lane<L::Op>), LaneError> {
        self.check_may_author()?;
        let lane = self.prepare_lane(ops);
        let id = lane.id();
        self.insert_with_id(id, lane.clone())?;
        Ok((id, lane))
    }

    /// Refuses to author while rejoining (see [`ReplicaConfig::rejoining`]).
    pub fn check_may_author(&self) -> Result<(), LaneError> {
        match &self.rejoin_peers {
            Some(peers) => Err(LaneError::Rejoining { synced: peers.len(), needed: self.rejoin_quorum() }),
            None => Ok(()),
        }
    }

    /// Whether this replaced node is still learning its history back: it
    /// may not author lanes (and should not serve reads) until it has synced
    /// with a majority of the other members. A lane it acknowledged before
    /// its disk was lost, and that no peer received, is gone; one a peer in
    /// that majority holds comes back, and its seqs are never reused.
    pub fn is_rejoining(&self) -> bool {
        self.rejoin_peers.is_some()
    }

    /// A sync session with `peer` completed (the syncer calls this).
    pub fn synced_with(&mut self, peer: NodeId) {
        let quorum = self.rejoin_quorum();
        if let Some(peers) = &mut self.rejoin_peers {
            peers.insert(peer);
            if peers.len() >= quorum {
                self.rejoin_peers = None;
            }
        }
    }

    /// A majority of the other members.
    fn rejoin_quorum(&self) -> usize {
        let others = self.config.members.iter().filter(|member| **member != self.config.node).count();
        others / 2 + 1
    }

    /// Orders, replays and checks stability now (getters do it on demand).
    pub fn materialize(&mut self) {
        let fresh = self.dag.take_fresh();
        if !fresh.is_empty() {
            self.merge_fresh(fresh);
        }
        if self.applied < self.order.len() {
            self.replay();
        }
        if self.stability_dirty {
            self.stability_dirty = false;
            self.advance_stability();
        }
    }

    /// The newest full snapshot and its boundary: the covered lanes that
    /// held lanes above it name as parents. A peer behind this node's prune
    /// point needs both to accept the lanes that follow.
    pub fn snapshot_transfer(&self) -> (&Snapshot, Vec<Tip>) {
        let snapshot = self.registry.latest().expect("the genesis snapshot is always committed");
        let last = last_key(&snapshot.header.tips);
        let boundary = self.dag.boundary(|tip| Some((tip.lamport, tip.author, tip.id)) <= last);
        (snapshot, boundary)
    }

    /// Replaces the held prefix with a verified snapshot from a peer (used
    /// when this node is behind the peer's prune point) and the covered lanes
    /// the peer's lanes name (`boundary`, from [`Replica::snapshot_transfer`]).
    /// Lanes this node holds above the snapshot are kept and replayed on top.
    /// Returns false when the snapshot is not newer than this node's.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot, boundary: &[Tip]) -> Result<bool, SnapshotError> {
        self.materialize();
        let header = &snapshot.header;
        if let Some(ours) = self.registry.id_at(header.lane_index)
            && ours != snapshot.id
        {
            return Err(SnapshotError::Diverged { lane_index: header.lane_index, ours, theirs: snapshot.id });
        }
        if header.lane_index <= self.stable_index {
            return Ok(false);
        }
        header.check_consistent()?;
        self.check_tips_against_held(&header.tips, boundary)?;
        let state = if self.config.bugs.unverified_snapshot() {
            decode_state(&self.law, &snapshot.state)?
        } else {
            snapshot.verify(&self.law)?
        };
        let covered: BTreeMap<NodeId, u64> = header.tips.iter().map(|tip| (tip.author, tip.seq)).collect();
        for &idx in &self.order {
            let slot = self.dag.slot(idx);
            let is_covered = covered.get(&slot.lane.author).is_some_and(|seq| slot.lane.seq <= *seq);
            if !is_covered && Some((slot.lane.lamport, slot.lane.author, slot.id)) <= last_key(&header.tips) {
                return Err(SnapshotError::ContradictsHistory { lane_index: header.lane_index, lane: slot.id });
            }
        }
        // Planted bug `snapshot_drops_boundary`: the boundary is taken for
        // redundant with the frontier, so held lanes that name a covered
        // lane other than a tip wait for it forever.
        let boundary = if self.config.bugs.snapshot_drops_boundary() { &[] } else { boundary };
        self.rebase_on(snapshot, boundary, state);
        Ok(true)
    }

    /// Refuses a snapshot whose frontier or boundary names a different lane
    /// (or another Lamport stamp) at an `(author, seq)` this node holds: a
    /// fork, which is evidence to surface, never a reason to drop held lanes.
    fn check_tips_against_held(&self, tips: &[Tip], boundary: &[Tip]) -> Result<(), SnapshotError> {
        check_boundary(tips, boundary)?;
        for tip in tips.iter().chain(boundary) {
            let Some(ours) = self.lane_at(tip.author, tip.seq) else { continue };
            if ours != tip.id || self.lamport_of(&ours) != tip.lamport {
                return Err(SnapshotError::ForkedTip { author: tip.author, seq: tip.seq, ours, theirs: tip.id });
            }
        }
        Ok(())
    }

    // ---- internals: ordering and replay ---------------------------------

    fn insert_with_id(&mut self, id: LaneId, lane: Lane<L::Op>) -> Result<Inserted, LaneError> {
        let outcome = self.dag.insert(id, lane);
        match &outcome {
            Ok(Inserted::Pending) => self.metrics.lanes_pended += 1,
            // The first admitted lane is the one inserted; the rest waited for it.
            Ok(Inserted::Admitted(ids)) => self.metrics.lanes_released += ids.len().saturating_sub(1) as u64,
            _ => {}
        }
        for (id, error) in self.dag.take_rejected() {
            // A released lane refused as a fork is fork evidence too.
            let proof = match &error {
                LaneError::Fork { .. } => self.dag.forks().iter().find(|proof| proof.other == id).cloned(),
                _ => None,
            };
            self.events.push_back(match proof {
                Some(proof) => Event::Fork(proof),
                None => Event::Rejected { id, error },
            });
        }
        if let Err(LaneError::Fork { .. }) = &outcome
            && let Some(proof) = self.dag.forks().last()
            && proof.other == id
        {
            self.events.push_back(Event::Fork(proof.clone()));
        }
        outcome
    }

    fn lamport_of(&self, id: &LaneId) -> u64 {
        match self.dag.get(id) {
            Some(slot) => slot.lane.lamport,
            None => self.dag.pruned_ref(id).map_or(0, |tip| tip.lamport),
        }
    }

    fn key(&self, idx: SlotIdx) -> (u64, NodeId, LaneId) {
        let slot = self.dag.slot(idx);
        if self.config.bugs.author_descending_ties() {
            // Planted bug: equal stamps sort by author descending.
            return (slot.lane.lamport, NodeId(u32::MAX - slot.lane.author.0), slot.id);
        }
        (slot.lane.lamport, slot.lane.author, slot.id)
    }

    /// Merges newly admitted lanes into the canonical order and rewinds the
    /// applied position to the first one.
    fn merge_fresh(&mut self, mut fresh: Vec<SlotIdx>) {
        let arrival = self.config.bugs.arrival_order_merge().then(|| fresh.clone());
        fresh.sort_unstable_by_key(|idx| self.key(*idx));
        let first = self.key(fresh[0]);
        let rank = self.order.partition_point(|idx| self.key(*idx) < first);
        let stable_rank = (self.stable_index - self.prune_index) as usize;
        assert!(rank >= stable_rank, "admission keeps new lanes above the stable prefix");
        if rank == self.order.len() {
            self.order.extend(fresh);
        } else {
            let tail = self.order.split_off(rank);
            let mut merged = Vec::with_capacity(tail.len() + fresh.len());
            let (mut a, mut b) = (tail.into_iter().peekable(), fresh.into_iter().peekable());
            while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
                if self.key(*x) < self.key(*y) {
                    merged.extend(a.next());
                } else {
                    merged.extend(b.next());
                }
            }
            merged.extend(a);
            merged.extend(b);
            self.order.extend(merged);
        }
        self.reached_scan = self.reached_scan.min(self.prune_index + rank as u64);
        if rank < self.applied {
            // The state to restore is the one after the `rank` lanes that
            // still precede the first fresh lane.
            let before_fresh = self.prune_index + rank as u64;
            // Planted bug `rollback_one_lane_late`: the target is the first
            // fresh lane's own (1-based) index, so a checkpoint sitting there
            // already holds the lane it displaced, and the fresh one is skipped.
            let target = before_fresh + u64::from(self.config.bugs.rollback_one_lane_late());
            match arrival {
                Some(arrival) => self.apply_in_arrival_order(&arrival),
                None => self.rollback_to(target),
            }
        }
        self.stability_dirty = true;
    }

    /// Planted bug: applies the late lanes on top of the current state in
    /// the order they arrived, instead of rolling back and replaying.
    fn apply_in_arrival_order(&mut self, arrival: &[SlotIdx]) {
        let Self { law, config, dag, state, chain, conflicts, .. } = self;
        for (offset, idx) in arrival.iter().enumerate() {
            let lane_index = self.prune_index + self.applied as u64 + offset as u64 + 1;
            apply_lane(law, &config.bugs, dag.slot(*idx), lane_index, state, chain, conflicts);
        }
        self.applied = self.order.len();
        self.digest = None;
    }

    /// Restores the newest checkpoint at or before `lane_index` and forgets
    /// everything derived after it.
    fn rollback_to(&mut self, lane_index: u64) {
        self.metrics.rollbacks += 1;
        let keep = self.checkpoints.partition_point(|checkpoint| checkpoint.lane_index <= lane_index);
        assert!(keep >= 1, "the stable base checkpoint is never above a rollback target");
        self.checkpoints.truncate(keep);
        let checkpoint = &self.checkpoints[keep - 1];
        self.marks.retain(|mark| mark.lane_index <= checkpoint.lane_index);
        self.state = checkpoint.state.clone();
        self.chain = checkpoint.chain;
        self.conflicts = checkpoint.conflicts;
        self.applied = (checkpoint.lane_index - self.prune_index) as usize;
        self.digest = None;
    }

    /// Applies `order[applied..]`, recording checkpoints and snapshot points.
    fn replay(&mut self) {
        let Self { law, config, dag, order, state, chain, conflicts, .. } = self;
        while self.applied < order.len() {
            let lane_index = self.prune_index + self.applied as u64 + 1;
            apply_lane(law, &config.bugs, dag.slot(order[self.applied]), lane_index, state, chain, conflicts);
            self.applied += 1;
            self.metrics.lanes_replayed += 1;
            if lane_index.is_multiple_of(config.checkpoint_interval) {
                self.checkpoints.push(Checkpoint {
                    lane_index,
                    state: state.clone(),
                    chain: *chain,
                    conflicts: *conflicts,
                });
                if self.checkpoints.len() > MAX_CHECKPOINTS_BEFORE_THINNING {
                    thin(&mut self.checkpoints, lane_index, config.checkpoint_interval, &config.bugs);
                }
            }
            if lane_index.is_multiple_of(config.snapshot_interval) {
                let digest = digest_into(law, state, &mut self.scratch);
                self.marks.push(Mark { lane_index, chain: *chain, digest });
            }
        }
        self.digest = None;
        self.thin_checkpoints();
    }

    fn thin_checkpoints(&mut self) {
        let tip = self.lane_index();
        thin(&mut self.checkpoints, tip, self.config.checkpoint_interval, &self.config.bugs);
    }

    fn lane_index(&self) -> u64 {
        self.prune_index + self.applied as u64
    }

    fn digest(&mut self) -> StateDigest {
        if let Some(digest) = self.digest {
            return digest;
        }
        let digest = digest_into(&self.law, &self.state, &mut self.scratch);
        self.digest = Some(digest);
        digest
    }

    // ---- internals: stability, snapshots, pruning ------------------------

    /// Moves the stable snapshot point as far as causal stability allows.
    fn advance_stability(&mut self) {
        if self.marks.is_empty() {
            return;
        }
        let stable_end =
            if self.config.bugs.prune_past_stable() { self.lane_index() } else { self.stable_prefix_end() };
        let ready = self.marks.partition_point(|mark| mark.lane_index <= stable_end);
        if ready == 0 {
            return;
        }
        let marks: Vec<Mark> = self.marks.drain(..ready).collect();
        let mut parent = self.registry.newest_point().expect("genesis is always recorded").1;
        let mut position = self.stable_index;
        let mut newest_base = None;
        for mark in marks {
            while position < mark.lane_index {
                let slot = self.dag.slot(self.order[(position - self.prune_index) as usize]);
                let tip = Tip { author: slot.lane.author, seq: slot.lane.seq, lamport: slot.lane.lamport, id: slot.id };
                self.stable_tips.insert(tip.author, tip);
                position += 1;
            }
            let header = SnapshotHeader {
                parent,
                lane_index: mark.lane_index,
                chain_hash: mark.chain,
                state_digest: mark.digest,
                max_lamport: self.stable_tips.values().map(|tip| tip.lamport).max().unwrap_or(0),
                tips: self.stable_tips.values().copied().collect(),
            };
            parent = header.id();
            self.registry.record(mark.lane_index, parent);
            if self.checkpoints.iter().any(|checkpoint| checkpoint.lane_index == mark.lane_index) {
                newest_base = Some(header);
            }
            self.stable_index = mark.lane_index;
            self.dag.set_stable_key(self.key(self.order[(mark.lane_index - self.prune_index - 1) as usize]));
        }
        if let Some(header) = newest_base {
            self.commit_base(header);
        }
    }

    /// 1-based lane index where the causally stable prefix ends: every lane up
    /// to it is an ancestor of (or is) every member's latest held lane. The
    /// DAG keeps those "reached" marks up to date as lanes arrive; this scans
    /// forward from where the last scan stopped.
    fn stable_prefix_end(&mut self) -> u64 {
        let mut scan = self.reached_scan.max(self.stable_index);
        while scan < self.lane_index() {
            let idx = self.order[(scan - self.prune_index) as usize];
            if !self.dag.reached_by_all(idx) {
                break;
            }
            scan += 1;
        }
        self.reached_scan = scan;
        scan
    }

    /// Makes the checkpoint at `header.lane_index` the stable base snapshot.
    fn commit_base(&mut self, header: SnapshotHeader) {
        let keep_from = self.checkpoints.partition_point(|checkpoint| checkpoint.lane_index < header.lane_index);
        self.checkpoints.drain(..keep_from);
        let base = &self.checkpoints[0];
        assert_eq!(base.lane_index, header.lane_index, "a base snapshot sits on a checkpoint");
        assert_eq!(base.chain, header.chain_hash, "the checkpoint and the mark describe one prefix");
        let snapshot = Snapshot::new(&self.law, header, &base.state);
        let (lane_index, id) = (snapshot.header.lane_index, snapshot.id);
        self.registry.commit(snapshot);
        self.events.push_back(Event::SnapshotCommitted { lane_index, id });
        if self.config.prune {
            self.prune_to_base();
        }
    }

    /// Drops lane bodies at or below the base snapshot (never past it).
    fn prune_to_base(&mut self) {
        let base = self.checkpoints[0].lane_index;
        let count = (base - self.prune_index) as usize;
        if count == 0 {
            return;
        }
        let snapshot = self.registry.latest().expect("a base snapshot was just committed");
        assert_eq!(snapshot.header.lane_index, base, "prune only to the committed stable snapshot");
        let pruned: Vec<SlotIdx> = self.order.drain(..count).collect();
        self.dag.prune(&pruned, &snapshot.header.tips);
        self.prune_index = base;
        self.applied -= count;
        self.metrics.lanes_pruned += count as u64;
        self.events.push_back(Event::Pruned { lane_index: base, lanes: count as u64 });
    }

    /// Rebuilds on a verified snapshot: covered lanes go, the rest replay on top.
    fn rebase_on(&mut self, snapshot: &Snapshot, boundary: &[Tip], state: L::State) {
        let header = &snapshot.header;
        let remaining = self.dag.cover(&header.tips, boundary);
        if let Some(last) = last_key(&header.tips) {
            self.dag.set_stable_key(last);
        }
        self.prune_index = header.lane_index;
        self.stable_index = header.lane_index;
        self.stable_tips = header.tips.iter().map(|tip| (tip.author, *tip)).collect();
        self.reached_scan = header.lane_index;
        self.order.clear();
        self.applied = 0;
        self.marks.clear();
        self.checkpoints = vec![Checkpoint {
            lane_index: header.lane_index,
            state: state.clone(),
            chain: header.chain_hash,
            conflicts: 0,
        }];
        self.state = state;
        self.chain = header.chain_hash;
        self.conflicts = 0;
        self.digest = Some(header.state_digest);
        self.registry.commit(snapshot.clone());
        self.events.push_back(Event::SnapshotInstalled { lane_index: header.lane_index, id: snapshot.id });
        let _ = self.dag.take_fresh();
        let mut order = remaining;
        order.sort_unstable_by_key(|idx| self.key(*idx));
        self.order = order;
        let _released = self.dag.release_waiting_on_refs();
        let fresh = self.dag.take_fresh();
        if !fresh.is_empty() {
            self.merge_fresh(fresh);
        }
        self.stability_dirty = true;
        self.materialize();
    }
}

/// Applies one lane at `lane_index`: its ops through the law, then one
/// step of the chain hash (`bugs` are the planted ones, if any).
fn apply_lane<L: Law>(
    law: &L,
    bugs: &crate::bugs::Bugs,
    slot: &crate::dag::Slot<L::Op>,
    lane_index: u64,
    state: &mut L::State,
    chain: &mut ChainHash,
    conflicts: &mut u64,
) {
    let context = LaneContext {
        id: &slot.id,
        author: slot.lane.author,
        seq: slot.lane.seq,
        lamport: slot.lane.lamport,
        lane_index,
    };
    for op in &slot.lane.ops {
        *conflicts += u64::from(law.apply_planted(state, &context, op, bugs).conflicts);
    }
    *chain = if bugs.swapped_chain_step() {
        // Planted bug: the operands of the chain step swapped.
        hash::chain_step(&ChainHash(slot.id.0), &LaneId(chain.0))
    } else {
        hash::chain_step(chain, &slot.id)
    };
}

/// Checkpoints kept before a replay in progress thins them.
const MAX_CHECKPOINTS_BEFORE_THINNING: usize = 64;

/// Keeps checkpoints dense near `tip` and exponentially sparser further back
/// (about eight per doubling of the distance), so a late lane replays a short
/// suffix and memory stays logarithmic. The first checkpoint, the stable
/// base, always stays.
fn thin<S>(checkpoints: &mut Vec<Checkpoint<S>>, tip: u64, interval: u64, bugs: &crate::bugs::Bugs) {
    // Planted bug `thinning_drops_base`: the stable base is thinned like any
    // other checkpoint, so a rollback can find nothing below its target.
    let mut first = !bugs.thinning_drops_base();
    checkpoints.retain(|checkpoint| {
        if std::mem::take(&mut first) {
            return true;
        }
        let distance_in_intervals = (tip - checkpoint.lane_index) / interval;
        let spacing = interval * (distance_in_intervals / 8).max(1).next_power_of_two();
        checkpoint.lane_index.is_multiple_of(spacing)
    });
}

/// Boundary tips travel beside a snapshot and no hash covers them, so each
/// must at least be a lane the snapshot covers: an author of the frontier, a
/// seq and a Lamport stamp no higher than that author's tip (equal to the
/// tip itself at its seq), and one entry per id, the frontier's included.
fn check_boundary(tips: &[Tip], boundary: &[Tip]) -> Result<(), SnapshotError> {
    let frontier: BTreeMap<NodeId, &Tip> = tips.iter().map(|tip| (tip.author, tip)).collect();
    let mut seen: BTreeMap<LaneId, &Tip> = tips.iter().map(|tip| (tip.id, tip)).collect();
    for tip in boundary {
        let covered = frontier.get(&tip.author).is_some_and(|front| {
            let same = front.id == tip.id || front.seq == tip.seq;
            if same { *front == tip } else { tip.seq < front.seq && tip.lamport < front.lamport && tip.seq > 0 }
        });
        let unique = seen.insert(tip.id, tip).is_none_or(|other| other == tip);
        if !covered || !unique {
            return Err(SnapshotError::BadBoundary { author: tip.author, seq: tip.seq, id: tip.id });
        }
    }
    Ok(())
}

/// Order key of the last lane of a prefix with these tips: the last lane of
/// a topological order has no child in the prefix, so it is a tip.
fn last_key(tips: &[Tip]) -> Option<OrderKey> {
    tips.iter().map(|tip| (tip.lamport, tip.author, tip.id)).max()
}

/// The digest of `state`, encoded into a reused buffer (a status per sync
/// session makes this a hot path).
fn digest_into<L: Law>(law: &L, state: &L::State, scratch: &mut Vec<u8>) -> StateDigest {
    scratch.clear();
    law.encode_state(state, scratch);
    hash::state_digest(scratch)
}

fn digest_of<L: Law>(law: &L, state: &L::State) -> StateDigest {
    let mut bytes = Vec::new();
    law.encode_state(state, &mut bytes);
    hash::state_digest(&bytes)
}

/// Decodes a state with `law`, requiring every byte be used.
pub fn decode_state<L: Law>(law: &L, bytes: &[u8]) -> Result<L::State, crate::codec::DecodeError> {
    let mut reader = Reader::new(bytes);
    let state = law.decode_state(&mut reader)?;
    reader.finish()?;
    Ok(state)
}
