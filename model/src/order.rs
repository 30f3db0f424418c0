//! Replay: the canonical order of a lane set, the world it materialises and
//! both hashes, computed from scratch on every call.
//!
//! The canonical order is found the naive way, with Kahn's algorithm: among
//! the lanes whose parents are all placed, the one with the smallest
//! `(lamport, author, id)` goes next.
//!
//! Invariant: a replay only accepts a causally closed set of valid lanes,
//! and its order places every lane after all of its parents.

use crate::error::ModelError;
use crate::hash::{GENESIS_CHAIN, chain_next};
use crate::history::{Model, OrderKey};
use crate::law::ModelState;
use scx_engine::{ChainHash, Lane, LaneId, NodeId, StateDigest, WorldOp};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// A replay's fold so far: state, chain hash, conflicts.
type Folded = (ModelState, ChainHash, u64);

/// The result of replaying a lane set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replayed {
    /// The canonical order.
    pub order: Vec<LaneId>,
    /// Lanes in the order (the tip's position).
    pub lane_index: u64,
    /// Chain hash at the tip.
    pub chain_hash: ChainHash,
    /// Digest of the state's canonical encoding.
    pub state_digest: StateDigest,
    /// The materialised world.
    pub state: ModelState,
    /// Conflicts the law resolved along the way.
    pub conflicts: u64,
}

impl Replayed {
    /// How many leading lanes of the order are in `stable`: where the stable
    /// prefix ends (DESIGN.md §2: the prefix that can never change).
    pub fn stable_prefix_len(&self, stable: &BTreeSet<LaneId>) -> u64 {
        self.order.iter().take_while(|id| stable.contains(id)).count() as u64
    }
}

impl Model {
    /// Replays `set`, which must be a causally closed set of valid lanes.
    pub fn replay(&self, set: &BTreeSet<LaneId>) -> Result<Replayed, ModelError> {
        self.check_closed(set)?;
        Ok(self.replay_in_order(self.canonical_order(set)))
    }

    /// Replays the first `len` lanes of the canonical order of `set`, which
    /// must be a causally closed set of valid lanes; `None` when `set` holds
    /// fewer lanes. The same as [`Model::replay`] of the set of those
    /// lanes, ordered once: the canonical order of a prefix is the prefix of
    /// the order, because Kahn's choice among the prefix's ready lanes is the
    /// choice it made among all the set's (the smallest ready key).
    pub fn replay_prefix(&self, set: &BTreeSet<LaneId>, len: usize) -> Result<Option<Replayed>, ModelError> {
        self.replay_prefix_from(set, len, None)
    }

    /// [`Model::replay_prefix`], continuing `earlier` (a replay this model
    /// made) instead of starting from the genesis when `earlier`'s order is
    /// the first lanes of the new prefix, compared lane by lane. A replay is
    /// a fold along the order, so the fold of those lanes is `earlier`'s
    /// state, chain hash and conflicts, and only the lanes after them are
    /// applied. Any other `earlier` is ignored. The result is the same
    /// either way (a unit test holds the two equal).
    pub fn replay_prefix_from(
        &self,
        set: &BTreeSet<LaneId>,
        len: usize,
        earlier: Option<&Replayed>,
    ) -> Result<Option<Replayed>, ModelError> {
        self.check_closed(set)?;
        let mut order = self.canonical_order(set);
        if len > order.len() {
            return Ok(None);
        }
        order.truncate(len);
        let replayed = match earlier.filter(|earlier| order.starts_with(&earlier.order)) {
            Some(earlier) => {
                let folded = (earlier.state.clone(), earlier.chain_hash, earlier.conflicts);
                self.replay_on(order, earlier.order.len(), folded)
            }
            None => self.replay_in_order(order),
        };
        Ok(Some(replayed))
    }

    /// Applies `order`, a canonical order of valid lanes, from the genesis.
    fn replay_in_order(&self, order: Vec<LaneId>) -> Replayed {
        self.replay_on(order, 0, (ModelState::default(), GENESIS_CHAIN, 0))
    }

    /// Applies `order[from..]` to the fold of its first `from` lanes.
    fn replay_on(&self, order: Vec<LaneId>, from: usize, folded: Folded) -> Replayed {
        let (mut state, mut chain_hash, mut conflicts) = folded;
        for id in &order[from..] {
            let lane = &self.lanes[id].lane;
            conflicts += state.apply_ops(lane.dot(), &lane.ops);
            chain_hash = chain_next(&chain_hash, id);
        }
        Replayed { lane_index: order.len() as u64, state_digest: state.digest(), order, chain_hash, state, conflicts }
    }

    /// The canonical order of `set` alone (no law, no hashes), which must be
    /// a causally closed set of valid lanes: `replay(set)?.order`, cheaper.
    pub fn order(&self, set: &BTreeSet<LaneId>) -> Result<Vec<LaneId>, ModelError> {
        self.check_closed(set)?;
        Ok(self.canonical_order(set))
    }

    /// Every lane of `set` is valid and has its parents in `set`.
    fn check_closed(&self, set: &BTreeSet<LaneId>) -> Result<(), ModelError> {
        for id in set {
            let Some((lane, _)) = self.valid(id) else {
                return Err(self.why_invalid(id));
            };
            if let Some(parent) = lane.parents.iter().find(|parent| !set.contains(parent)) {
                return Err(ModelError::NotClosed { lane: *id, parent: *parent });
            }
        }
        Ok(())
    }

    /// Kahn's topological sort, smallest order key first among ready lanes.
    /// The set's lanes are numbered by their place in `set` (ascending ids),
    /// so the counts and child lists are vectors, not maps.
    fn canonical_order(&self, set: &BTreeSet<LaneId>) -> Vec<LaneId> {
        let ids: Vec<LaneId> = set.iter().copied().collect();
        let lanes: Vec<&Lane<WorldOp>> = ids.iter().map(|id| &self.lanes[id].lane).collect();
        let mut unplaced_parents: Vec<usize> = lanes.iter().map(|lane| lane.parents.len()).collect();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); ids.len()];
        for (child, lane) in lanes.iter().enumerate() {
            for parent in &lane.parents {
                let parent = ids.binary_search(parent).expect("a closed set holds every parent");
                children[parent].push(child);
            }
        }
        let ready_key = |at: usize| Reverse(((lanes[at].lamport, lanes[at].author, ids[at]), at));
        let mut ready: BinaryHeap<Reverse<(OrderKey, usize)>> =
            (0..ids.len()).filter(|at| unplaced_parents[*at] == 0).map(ready_key).collect();
        let mut order = Vec::with_capacity(ids.len());
        while let Some(Reverse(((_, _, id), at))) = ready.pop() {
            order.push(id);
            for child in &children[at] {
                unplaced_parents[*child] -= 1;
                if unplaced_parents[*child] == 0 {
                    ready.push(ready_key(*child));
                }
            }
        }
        assert_eq!(order.len(), set.len(), "a closed set of valid lanes has no cycle: ids hash their parents");
        order
    }

    /// A lane of the closed set `prefix` that is not causally stable in
    /// `held` (some member has no lane in `held` whose ancestry includes
    /// it), with that member; `None` when all are. The judgement of
    /// [`Model::stable`], made cheaper for checking a snapshot's prefix: it
    /// is enough that every member reaches the prefix's heads (the prefix is
    /// closed), and a walk down from a member's lanes can stop below the
    /// heads' smallest Lamport stamp (stamps grow from parent to child).
    /// Both sets are the model's (a closure and a prefix of its order).
    pub fn first_unstable(&self, held: &BTreeSet<LaneId>, prefix: &BTreeSet<LaneId>) -> Option<(LaneId, NodeId)> {
        let mut heads = prefix.clone();
        for id in prefix {
            for parent in self.lane(id).map(|lane| lane.parents.as_slice()).unwrap_or_default() {
                heads.remove(parent);
            }
        }
        let floor = heads.iter().filter_map(|id| self.lane(id)).map(|lane| lane.lamport).min()?;
        // Each member's lanes in `held`, found in one pass over it.
        let mut by_author: BTreeMap<NodeId, Vec<LaneId>> = BTreeMap::new();
        for id in held {
            if let Some(lane) = self.lane(id) {
                by_author.entry(lane.author).or_default().push(*id);
            }
        }
        for member in &self.members {
            let mut reached = BTreeSet::new();
            let mut stack: Vec<LaneId> = by_author.remove(member).unwrap_or_default();
            while let Some(id) = stack.pop() {
                let Some(lane) = self.lane(&id) else { continue };
                if lane.lamport < floor || !reached.insert(id) {
                    continue;
                }
                stack.extend(lane.parents.iter().copied());
            }
            if let Some(missed) = heads.iter().find(|head| !reached.contains(*head)) {
                return Some((*missed, *member));
            }
        }
        None
    }

    /// The lanes of `held` that are causally stable (DESIGN.md §2): every
    /// member has a lane in `held` whose ancestry includes them. With no
    /// members that holds for every lane of `held`'s closure.
    pub fn stable(&self, held: &BTreeSet<LaneId>) -> Result<BTreeSet<LaneId>, ModelError> {
        let mut stable = self.closure(held.iter().copied())?;
        for member in &self.members {
            let tips = held.iter().filter(|id| self.lanes[*id].lane.author == *member).copied();
            let reached = self.closure(tips)?;
            stable.retain(|id| reached.contains(id));
        }
        Ok(stable)
    }
}
