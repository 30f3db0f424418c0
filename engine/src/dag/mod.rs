//! The lane history: a DAG of admitted lanes, a bounded pending set for
//! lanes whose ancestry has not arrived, per-author chains and fork evidence.
//!
//! Invariants:
//! - The admitted set is causally closed: a lane is admitted only once every
//!   parent is admitted or is a tip of the pruned prefix, so each author's
//!   admitted lanes are exactly the seqs `pruned_seq + 1 ..= seq_held`.
//! - An admitted lane's Lamport stamp is one more than its largest parent's,
//!   so sorting by `(lamport, author, id)` is a topological order.
//! - An admitted lane sorts after the stable prefix (its order key is above
//!   the prefix's last key): the stable prefix never changes.
//! - Pruned lanes leave a [`Tip`] behind when a later lane may still name
//!   them: each author's latest pruned lane, and every pruned parent of a
//!   lane still held (the boundary). Lanes that arrive after a prefix became
//!   stable descend from every member's latest lane, so they can only name
//!   pruned lanes that are tips.
//! - Two different lanes with one `(author, seq)` are a fork: the first stays,
//!   the second is kept as evidence, never silently dropped or merged.

//!
//! Layout: this file holds the types and the getters; `arena` the slots,
//! stored inline in admission order; `admit` the checks a
//! lane passes on its way in, `pending` the lanes that wait for ancestry and
//! their release, `prune` pruning, snapshot cover and the boundary, and
//! `reach` the per-lane "reached by member" bits behind causal stability.

mod admit;
mod arena;
mod ids;
mod pending;
mod pool;
mod prune;
mod reach;

pub(crate) use ids::{IdHashKey, IdMap};
use pending::PendingLane;
pub use pool::LanePool;

use crate::bugs::Bugs;
use crate::error::LaneError;
use crate::hash::LaneId;
use crate::lane::{Dot, Lane, NodeId, Op};
use crate::members::Members;
use crate::snapshot::Tip;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Index of a lane in the arena; never reused, so stale indices cannot alias.
/// 64 bits, so no node lives long enough to run out of them (a 32-bit index
/// ran out after 2^32 lanes admitted, pruned ones included).
pub(crate) type SlotIdx = u64;

const _: () = assert!(usize::BITS <= SlotIdx::BITS, "every arena position has an index");

/// The index of the arena position `position` (lossless: see the assertion above).
fn slot_idx(position: usize) -> SlotIdx {
    position as SlotIdx
}

/// A lane's position key in the canonical order.
pub type OrderKey = (u64, NodeId, LaneId);

/// Lanes a walk in canonical order loads together (see [`LaneDag::load_ahead`]).
pub(crate) const LOAD_AHEAD: usize = 16;

/// Most fork proofs kept; later ones are counted but not stored.
pub const MAX_FORK_PROOFS: usize = 64;

/// An admitted lane with its resolved parents.
#[derive(Clone, Debug)]
pub(crate) struct Slot<O> {
    pub(crate) id: LaneId,
    /// The lane's author, seq and Lamport stamp, copied from it: order
    /// keys and tips are read from the arena without a visit to the lane
    /// (a cache miss each when the history is large).
    pub(crate) author: NodeId,
    pub(crate) seq: u64,
    pub(crate) lamport: u64,
    /// Immutable, so shared with other replicas through a [`LanePool`].
    pub(crate) lane: Arc<Lane<O>>,
    /// Admitted parents (tips of the pruned prefix are not listed).
    pub(crate) parent_slots: Box<[SlotIdx]>,
    /// Whether the lane named a parent already pruned when it was admitted
    /// (so `parent_slots` lists fewer than the lane's parents); kept here so
    /// a walk over slots need not visit the lane to know.
    pub(crate) named_pruned: bool,
    /// Bit m: this lane is an ancestor of (or is) the latest lane of the
    /// m-th member that authored here (see `LaneDag::reach_index`). Grown
    /// when a bit past its end is set, so a lane costs a bit per author
    /// that reached it, not a bit per member.
    reached: Box<[u64]>,
    /// How many bits of `reached` are set.
    pub(crate) reached_count: u32,
}

impl<O> Slot<O> {
    /// The lane as a tip: author, seq, Lamport stamp and id.
    pub(crate) fn tip(&self) -> Tip {
        Tip { author: self.author, seq: self.seq, lamport: self.lamport, id: self.id }
    }

    /// The lane's (author, seq).
    pub(crate) fn dot(&self) -> Dot {
        Dot { author: self.author, seq: self.seq }
    }
}

/// Evidence that an author signed two different lanes with one seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkProof {
    /// Where the chain forked.
    pub dot: Dot,
    /// The lane this node holds at that dot.
    pub kept: LaneId,
    /// The conflicting lane's id.
    pub other: LaneId,
    /// The conflicting lane's canonical bytes, so the proof can be shown.
    pub other_bytes: Vec<u8>,
}

/// How an insert went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The lane, and any pending lanes it released, were admitted, in this order.
    Admitted(Vec<LaneId>),
    /// Some parents are missing; the lane waits in the pending set.
    Pending,
    /// The lane was already held, pending or covered by the pruned prefix.
    Duplicate,
}

#[derive(Clone, Debug, Default)]
struct Chain {
    /// Seqs up to this one were pruned.
    pruned_seq: u64,
    slots: VecDeque<SlotIdx>,
}

impl Chain {
    fn seq_held(&self) -> u64 {
        self.pruned_seq + self.slots.len() as u64
    }
}

/// The lane DAG of one replica.
#[derive(Clone, Debug)]
pub struct LaneDag<O> {
    slots: arena::Arena<O>,
    by_id: IdMap<SlotIdx>,
    chains: BTreeMap<NodeId, Chain>,
    heads: BTreeSet<LaneId>,
    pending: IdMap<PendingLane<O>>,
    waiting: IdMap<Vec<LaneId>>,
    /// Each author's latest pruned lane.
    pruned_tips: BTreeMap<NodeId, Tip>,
    /// Pruned lanes a held or future lane may name: tips and the boundary.
    pruned_refs: BTreeMap<LaneId, Tip>,
    /// The same references by dot (the smallest id where several claim one),
    /// so a lane at a covered dot is checked without a scan.
    pruned_dots: BTreeMap<Dot, LaneId>,
    /// Order key of the last lane of the stable prefix.
    stable_key: Option<OrderKey>,
    max_pending: usize,
    fresh: Vec<SlotIdx>,
    forks: Vec<ForkProof>,
    forks_seen: u64,
    rejected: Vec<(LaneId, LaneError)>,
    /// Canonical bytes of admitted lanes, when journaling.
    journal: Option<Vec<Vec<u8>>>,
    /// The members: stability needs each one's latest lane (shared with
    /// the replica's configuration, never copied).
    members: Members,
    /// The `reached` bit of each member that has authored a lane here, in
    /// the order their first lanes arrived: bits for authors, not for the
    /// whole membership.
    reach_index: BTreeMap<NodeId, usize>,
    /// Reused stack of the reachability search.
    mark_stack: Vec<SlotIdx>,
    /// Where admitted lanes are shared with other replicas, if anywhere.
    pool: Option<LanePool<O>>,
    /// Planted bugs (effective only with the `planted-bugs` feature).
    bugs: Bugs,
}

impl<O: Op> LaneDag<O> {
    /// An empty history holding at most `max_pending` pending lanes.
    /// Its id tables hash under `id_hash_key` (see `dag::ids`).
    pub(crate) fn new(
        max_pending: usize,
        journal: bool,
        members: &Members,
        id_hash_key: IdHashKey,
        bugs: Bugs,
    ) -> Self {
        Self {
            slots: arena::Arena::new(),
            by_id: IdMap::with_hasher(id_hash_key),
            chains: BTreeMap::new(),
            heads: BTreeSet::new(),
            pending: IdMap::with_hasher(id_hash_key),
            waiting: IdMap::with_hasher(id_hash_key),
            pruned_tips: BTreeMap::new(),
            pruned_refs: BTreeMap::new(),
            pruned_dots: BTreeMap::new(),
            stable_key: None,
            max_pending,
            fresh: Vec::new(),
            forks: Vec::new(),
            forks_seen: 0,
            rejected: Vec::new(),
            journal: journal.then(Vec::new),
            members: members.clone(),
            reach_index: BTreeMap::new(),
            mark_stack: Vec::new(),
            pool: None,
            bugs,
        }
    }

    /// Shares admitted lanes, those held now and those to come, through `pool`.
    pub(crate) fn share_lanes(&mut self, pool: &LanePool<O>) {
        for slot in self.slots.iter_mut() {
            slot.lane = pool.share_held(slot.id, &slot.lane);
        }
        self.pool = Some(pool.clone());
    }

    /// Admitted lanes held (not counting the pruned prefix).
    pub(crate) fn held_len(&self) -> usize {
        self.by_id.len()
    }

    /// Lanes waiting for ancestry.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The frontier: admitted (or pruned-tip) lanes with no admitted child.
    pub(crate) fn heads(&self) -> &BTreeSet<LaneId> {
        &self.heads
    }

    /// The slot at `idx`. Panics if it was pruned: callers only pass indices
    /// taken from the order or the chains, which drop pruned lanes first.
    pub(crate) fn slot(&self, idx: SlotIdx) -> &Slot<O> {
        self.slots.get(idx).expect("order and chains only hold live slots")
    }

    /// Called by replay's walk over `order[start..]` (live slots) before it
    /// applies `order[at]`: every [`LOAD_AHEAD`] lanes of the walk, loads
    /// what applying the next [`LOAD_AHEAD`] will read (each lane, its ops,
    /// and what [`Op::load_hint`] names). Those loads do not depend on one
    /// another, so the cache misses of a burst overlap instead of stalling
    /// the walk once per lane: lanes live apart from the arena (shared
    /// through the pool), and with a large history each is a miss. A hint
    /// only: what the walk computes does not depend on it.
    pub(crate) fn load_ahead(&self, order: &[SlotIdx], start: usize, at: usize) {
        if !at.saturating_sub(start).is_multiple_of(LOAD_AHEAD) {
            return;
        }
        for &idx in order.iter().skip(at).take(LOAD_AHEAD) {
            let slot = self.slot(idx);
            for op in &slot.lane.ops {
                op.load_hint();
            }
        }
    }

    /// The slot at `idx`, if it was not pruned.
    pub(crate) fn try_slot(&self, idx: SlotIdx) -> Option<&Slot<O>> {
        self.slots.get(idx)
    }

    /// The admitted lane with this id.
    pub(crate) fn get(&self, id: &LaneId) -> Option<&Slot<O>> {
        self.by_id.get(id).map(|idx| self.slot(*idx))
    }

    /// The arena index of the admitted lane with this id.
    pub(crate) fn index_of(&self, id: &LaneId) -> Option<SlotIdx> {
        self.by_id.get(id).copied()
    }

    /// Whether the lane is admitted or is a tip of the pruned prefix.
    pub(crate) fn holds(&self, id: &LaneId) -> bool {
        self.by_id.contains_key(id) || self.pruned_refs.contains_key(id)
    }

    /// A pruned lane a held lane may still name.
    pub(crate) fn pruned_ref(&self, id: &LaneId) -> Option<&Tip> {
        self.pruned_refs.get(id)
    }

    /// Highest contiguous seq held per author (pruned prefix included).
    pub(crate) fn seq_held(&self, author: NodeId) -> u64 {
        self.chains.get(&author).map_or(0, Chain::seq_held)
    }

    /// Authors with at least one held or pruned lane.
    pub(crate) fn authors(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.chains.keys().copied()
    }

    /// Id of the author's latest held lane (admitted or pruned tip).
    pub(crate) fn author_tip(&self, author: NodeId) -> Option<(u64, LaneId, u64)> {
        let chain = self.chains.get(&author)?;
        if let Some(&idx) = chain.slots.back() {
            let slot = self.slot(idx);
            return Some((slot.seq, slot.id, slot.lamport));
        }
        self.pruned_tips.get(&author).map(|tip| (tip.seq, tip.id, tip.lamport))
    }

    /// The author's admitted lanes with seq greater than `after`, ascending.
    /// `None` when some of them were pruned (the caller needs a snapshot).
    pub(crate) fn chain_after(&self, author: NodeId, after: u64) -> Option<impl Iterator<Item = SlotIdx> + '_> {
        let chain = self.chains.get(&author)?;
        if after < chain.pruned_seq {
            return None;
        }
        let skip = (after - chain.pruned_seq) as usize;
        Some(chain.slots.iter().skip(skip).copied())
    }

    /// Fork proofs found so far (the first [`MAX_FORK_PROOFS`]).
    pub(crate) fn forks(&self) -> &[ForkProof] {
        &self.forks
    }

    /// All forks seen, stored or not.
    pub(crate) fn forks_seen(&self) -> u64 {
        self.forks_seen
    }

    /// Order key of the last lane of the stable prefix.
    pub(crate) fn stable_key(&self) -> Option<OrderKey> {
        self.stable_key
    }

    /// Takes the lanes admitted since the last call, in admission order.
    pub(crate) fn take_fresh(&mut self) -> Vec<SlotIdx> {
        std::mem::take(&mut self.fresh)
    }

    /// Takes the journal of admitted lanes' canonical bytes.
    pub(crate) fn take_journal(&mut self) -> Vec<Vec<u8>> {
        self.journal.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Takes the pending lanes that were released but failed validation.
    pub(crate) fn take_rejected(&mut self) -> Vec<(LaneId, LaneError)> {
        std::mem::take(&mut self.rejected)
    }

    /// Raises the stable point: later lanes must sort after `key`.
    pub(crate) fn set_stable_key(&mut self, key: OrderKey) {
        debug_assert!(Some(key) >= self.stable_key, "the stable point never moves back");
        self.stable_key = Some(key);
    }
}

enum Existing {
    /// The dot is inside the pruned prefix but is not a tip: it cannot be checked.
    Covered,
    /// The dot is held by this lane.
    Lane(LaneId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arena_position_past_2_to_the_32_lanes_has_its_own_index() {
        // A long-lived node admits (and prunes) more than 2^32 lanes in its
        // lifetime; the arena never reuses an index, so each must have one.
        for position in [0, u32::MAX as usize, 1 << 32, (1 << 40) + 7, usize::MAX] {
            assert_eq!(slot_idx(position) as u128, position as u128);
        }
    }
}
