//! Every lane the model has seen, checked against the rules of DESIGN.md §2,
//! and the causal questions about lane sets: closure and closed subsets.
//!
//! Lanes arrive in any order. A lane is *valid* once every parent is valid,
//! its Lamport stamp is one more than its largest parent's, and it extends
//! its author's chain; a lane that breaks a rule, or descends from one that
//! did, is *refused*; a lane with an unknown ancestor waits. Nothing here
//! depends on arrival order.
//!
//! Invariant: the valid lanes are causally closed, each carries its stamp
//! rule, so `(lamport, author, id)` order is a topological order of any set
//! of valid lanes.

use crate::error::ModelError;
use crate::law::op_key;
use scx_engine::{Dot, Lane, LaneId, NodeId, WorldOp};
use std::collections::{BTreeMap, BTreeSet};

/// A lane's key in the canonical order: `(lamport, author, id)`.
pub type OrderKey = (u64, NodeId, LaneId);

/// Per author, the seq and id of the latest lane of a causally closed set.
pub type Frontier = BTreeMap<NodeId, (u64, LaneId)>;

/// What the model concluded about a lane whose ancestry is known.
#[derive(Debug)]
enum Verdict {
    /// Valid; `horizon` is, per author, the highest seq in its ancestry
    /// (itself included).
    Valid { horizon: BTreeMap<NodeId, u64> },
    /// Refused, and why.
    Refused(ModelError),
}

/// A lane the model has seen, with its verdict once its ancestry is known
/// (one map for both: the questions about a lane ask for both).
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) lane: Lane<WorldOp>,
    verdict: Option<Verdict>,
}

/// The reference model: every lane ever added, by id, and the members.
#[derive(Debug, Default)]
pub struct Model {
    pub(crate) members: BTreeSet<NodeId>,
    /// Every lane seen, with its verdict.
    pub(crate) lanes: BTreeMap<LaneId, Seen>,
    /// Unknown or unsettled parent → lanes waiting for it.
    waiting: BTreeMap<LaneId, BTreeSet<LaneId>>,
    /// Every lane seen at each `(author, seq)`; two or more are a fork.
    pub(crate) by_dot: BTreeMap<Dot, BTreeSet<LaneId>>,
    /// Authors with a fork somewhere in their chain.
    pub(crate) forked_authors: BTreeSet<NodeId>,
    /// Valid lanes with an op on each key, in canonical order, each with its
    /// dot and its ops on that key (so a read folds them without looking
    /// the lane up).
    pub(crate) by_key: BTreeMap<u32, BTreeMap<OrderKey, KeyedOps>>,
}

/// A valid lane's ops on one key, in the lane's order.
#[derive(Debug)]
pub(crate) struct KeyedOps {
    /// The lane's dot.
    pub(crate) dot: Dot,
    /// Its ops on the key.
    pub(crate) ops: Vec<WorldOp>,
}

impl Model {
    /// An empty model of a cluster with these members.
    pub fn new(members: impl IntoIterator<Item = NodeId>) -> Self {
        Self { members: members.into_iter().collect(), ..Self::default() }
    }

    /// The members.
    pub fn members(&self) -> &BTreeSet<NodeId> {
        &self.members
    }

    /// Adds a lane (any order, idempotent). Returns its id, or why the lane
    /// is refused when that is already known. A lane whose ancestry is still
    /// missing is kept and judged when the ancestry arrives; a refusal found
    /// then surfaces in [`Model::closure`], [`Model::replay`] and
    /// [`Model::read`].
    pub fn add(&mut self, lane: Lane<WorldOp>) -> Result<LaneId, ModelError> {
        let id = lane.id();
        if !self.lanes.contains_key(&id) {
            let dot = lane.dot();
            let at_dot = self.by_dot.entry(dot).or_default();
            at_dot.insert(id);
            if at_dot.len() > 1 {
                self.forked_authors.insert(dot.author);
            }
            self.lanes.insert(id, Seen { lane, verdict: None });
            self.settle(id);
        }
        match self.verdict(&id) {
            Some(Verdict::Refused(error)) => Err(error.clone()),
            _ => Ok(id),
        }
    }

    /// A lane the model has seen (valid, waiting or refused).
    pub fn lane(&self, id: &LaneId) -> Option<&Lane<WorldOp>> {
        self.lanes.get(id).map(|seen| &seen.lane)
    }

    /// Whether the lane is valid: known, with a known and valid ancestry.
    pub fn is_valid(&self, id: &LaneId) -> bool {
        matches!(self.verdict(id), Some(Verdict::Valid { .. }))
    }

    /// Number of lanes seen.
    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    /// Whether no lane was seen.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// The tips and all their ancestors. Fails on the first lane in that
    /// ancestry that is unknown or refused.
    pub fn closure(&self, tips: impl IntoIterator<Item = LaneId>) -> Result<BTreeSet<LaneId>, ModelError> {
        let mut closure = BTreeSet::new();
        let mut stack: Vec<LaneId> = tips.into_iter().collect();
        // Lanes of the closure with no verdict yet (waiting), counted as
        // the walk meets them rather than looked up again at the end.
        let mut waiting = 0;
        while let Some(id) = stack.pop() {
            if !closure.insert(id) {
                continue;
            }
            let Some(Seen { lane, verdict }) = self.lanes.get(&id) else {
                return Err(ModelError::MissingLane { id });
            };
            match verdict {
                Some(Verdict::Refused(error)) => return Err(error.clone()),
                Some(Verdict::Valid { .. }) => {}
                None => waiting += 1,
            }
            // A waiting lane's parents are walked too: its missing ancestor
            // is an unknown lane further up, reported above.
            stack.extend(lane.parents.iter().copied());
        }
        assert_eq!(waiting, 0, "a known, unrefused, complete ancestry is valid");
        Ok(closure)
    }

    /// The lanes of `delivered` whose ancestors were all delivered and are
    /// valid: what a replica holds after these deliveries (the rest wait
    /// in its pending set or were refused).
    pub fn closed_subset(&self, delivered: &BTreeSet<LaneId>) -> BTreeSet<LaneId> {
        let mut candidates: Vec<OrderKey> =
            delivered.iter().filter(|id| self.is_valid(id)).map(|id| self.order_key(id)).collect();
        // Parents of a valid lane have smaller stamps, so they are decided first.
        candidates.sort_unstable();
        let mut closed = BTreeSet::new();
        for (_, _, id) in candidates {
            if self.lanes[&id].lane.parents.iter().all(|parent| closed.contains(parent)) {
                closed.insert(id);
            }
        }
        closed
    }

    /// Each author's latest lane in `set` (by seq, then id if `set` holds a fork).
    pub fn frontier_of(&self, set: &BTreeSet<LaneId>) -> Frontier {
        let mut frontier = Frontier::new();
        for id in set {
            let Some(lane) = self.lane(id) else { continue };
            let entry = frontier.entry(lane.author).or_insert((lane.seq, *id));
            *entry = (*entry).max((lane.seq, *id));
        }
        frontier
    }

    /// Order key of a known lane.
    pub(crate) fn order_key(&self, id: &LaneId) -> OrderKey {
        let lane = &self.lanes[id].lane;
        (lane.lamport, lane.author, *id)
    }

    /// A valid lane and its horizon (per author, the highest seq in its
    /// ancestry), in one lookup.
    pub(crate) fn valid(&self, id: &LaneId) -> Option<(&Lane<WorldOp>, &BTreeMap<NodeId, u64>)> {
        match self.lanes.get(id)? {
            Seen { lane, verdict: Some(Verdict::Valid { horizon }) } => Some((lane, horizon)),
            _ => None,
        }
    }

    /// The verdict on a lane, if it was seen and its ancestry is known.
    fn verdict(&self, id: &LaneId) -> Option<&Verdict> {
        self.lanes.get(id).and_then(|seen| seen.verdict.as_ref())
    }

    /// The error that keeps `id` out of every valid set: unknown, refused,
    /// or waiting for an unknown ancestor.
    pub(crate) fn why_invalid(&self, id: &LaneId) -> ModelError {
        match self.closure([*id]) {
            Err(error) => error,
            Ok(_) => unreachable!("why_invalid is only asked about lanes that are not valid"),
        }
    }

    /// Judges `first` and then every lane that waited for a lane just judged.
    fn settle(&mut self, first: LaneId) {
        let mut queue = vec![first];
        while let Some(id) = queue.pop() {
            if self.verdict(&id).is_some() {
                continue;
            }
            let verdict = match self.judge(id) {
                Ok(verdict) => verdict,
                Err(unsettled_parents) => {
                    for parent in unsettled_parents {
                        self.waiting.entry(parent).or_default().insert(id);
                    }
                    continue;
                }
            };
            if let Verdict::Valid { .. } = verdict {
                let key = self.order_key(&id);
                let lane = &self.lanes[&id].lane;
                for op in &lane.ops {
                    let keyed = self.by_key.entry(op_key(op)).or_default().entry(key);
                    keyed.or_insert_with(|| KeyedOps { dot: lane.dot(), ops: Vec::new() }).ops.push(op.clone());
                }
            }
            self.lanes.get_mut(&id).expect("a lane is seen before it is judged").verdict = Some(verdict);
            queue.extend(self.waiting.remove(&id).into_iter().flatten());
        }
    }

    /// The verdict on a known lane, or the parents that have none yet.
    fn judge(&self, id: LaneId) -> Result<Verdict, Vec<LaneId>> {
        let lane = &self.lanes[&id].lane;
        if let Err(rule) = check_shape(lane) {
            return Ok(Verdict::Refused(ModelError::Shape { id, rule }));
        }
        let mut unsettled = Vec::new();
        let mut parent_horizons = Vec::new();
        for parent in &lane.parents {
            match self.verdict(parent) {
                None => unsettled.push(*parent),
                Some(Verdict::Refused(_)) => {
                    return Ok(Verdict::Refused(ModelError::RefusedParent { id, parent: *parent }));
                }
                Some(Verdict::Valid { horizon }) => parent_horizons.push(horizon),
            }
        }
        if !unsettled.is_empty() {
            return Err(unsettled);
        }
        if let Err(error) = self.check_ancestry(id, lane) {
            return Ok(Verdict::Refused(error));
        }
        let mut horizon = BTreeMap::new();
        for parent_horizon in parent_horizons {
            for (author, seq) in parent_horizon {
                let entry = horizon.entry(*author).or_insert(0);
                *entry = (*entry).max(*seq);
            }
        }
        horizon.insert(lane.author, lane.seq);
        Ok(Verdict::Valid { horizon })
    }

    /// The Lamport rule and the author-chain rule, given valid parents.
    fn check_ancestry(&self, id: LaneId, lane: &Lane<WorldOp>) -> Result<(), ModelError> {
        let parents: Vec<&Lane<WorldOp>> = lane.parents.iter().map(|parent| &self.lanes[parent].lane).collect();
        let largest = parents.iter().map(|parent| parent.lamport).max().unwrap_or(0);
        let Some(expected) = largest.checked_add(1) else {
            return Err(ModelError::Shape { id, rule: "a parent's lamport is u64::MAX, so no lane can follow it" });
        };
        if lane.lamport != expected {
            return Err(ModelError::BadLamport { id, lamport: lane.lamport, expected });
        }
        let own_parent_seqs: Vec<u64> =
            parents.iter().filter(|parent| parent.author == lane.author).map(|parent| parent.seq).collect();
        let extends_chain = if lane.seq == 1 { own_parent_seqs.is_empty() } else { own_parent_seqs == [lane.seq - 1] };
        if !extends_chain {
            return Err(ModelError::BrokenChain { id, dot: lane.dot(), own_parent_seqs });
        }
        Ok(())
    }
}

/// The rules a lane must keep on its own (DESIGN.md §2 and the canonical
/// encoding: seqs and stamps start at 1, parents strictly ascending).
fn check_shape(lane: &Lane<WorldOp>) -> Result<(), &'static str> {
    if lane.seq == 0 {
        return Err("seq must be at least 1");
    }
    if lane.lamport == 0 {
        return Err("lamport must be at least 1");
    }
    if lane.parents.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err("parents must be strictly ascending");
    }
    Ok(())
}
