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

use crate::bugs::Bugs;
use crate::error::LaneError;
use crate::hash::LaneId;
use crate::lane::{Dot, Lane, NodeId, Op};
use crate::snapshot::Tip;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Index of a lane in the arena; never reused, so stale indices cannot alias.
pub(crate) type SlotIdx = u32;

/// A map keyed by lane id, for lookups only (never iterated where order
/// could leak). Lane ids are uniform blake3 outputs, so the first eight
/// bytes are already a good hash: no random state, so it is deterministic,
/// and one word compare instead of a B-tree walk of 32-byte keys.
pub(crate) type IdMap<V> = hashbrown::HashMap<LaneId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Hashes a lane id by its first eight bytes.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut head = [0u8; 8];
        let take = bytes.len().min(8);
        head[..take].copy_from_slice(&bytes[..take]);
        self.0 ^= u64::from_le_bytes(head);
    }

    fn write_usize(&mut self, _length_prefix: usize) {}

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A lane's position key in the canonical order.
pub type OrderKey = (u64, NodeId, LaneId);

/// Most fork proofs kept; later ones are counted but not stored.
pub const MAX_FORK_PROOFS: usize = 64;

/// An admitted lane with its resolved parents.
#[derive(Clone, Debug)]
pub(crate) struct Slot<O> {
    pub(crate) id: LaneId,
    pub(crate) lane: Lane<O>,
    /// Admitted parents (tips of the pruned prefix are not listed).
    pub(crate) parent_slots: Box<[SlotIdx]>,
    /// Bit m: this lane is an ancestor of (or is) member m's latest lane.
    reached: Box<[u64]>,
    /// How many bits of `reached` are set.
    pub(crate) reached_count: u32,
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

#[derive(Clone, Debug)]
struct PendingLane<O> {
    lane: Lane<O>,
    missing: usize,
}

/// The lane DAG of one replica.
#[derive(Clone, Debug)]
pub struct LaneDag<O> {
    slots: Vec<Option<Box<Slot<O>>>>,
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
    /// Member index by node, for the `reached` bits.
    members: BTreeMap<NodeId, usize>,
    /// Reused stack of the reachability search.
    mark_stack: Vec<SlotIdx>,
    /// Planted bugs (effective only with the `planted-bugs` feature).
    bugs: Bugs,
}

impl<O: Op> LaneDag<O> {
    /// An empty history holding at most `max_pending` pending lanes.
    pub(crate) fn new(max_pending: usize, journal: bool, members: &BTreeSet<NodeId>, bugs: Bugs) -> Self {
        Self {
            slots: Vec::new(),
            by_id: IdMap::default(),
            chains: BTreeMap::new(),
            heads: BTreeSet::new(),
            pending: IdMap::default(),
            waiting: IdMap::default(),
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
            members: members.iter().enumerate().map(|(index, node)| (*node, index)).collect(),
            mark_stack: Vec::new(),
            bugs,
        }
    }

    // ---- getters -------------------------------------------------------

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
        self.slots[idx as usize].as_deref().expect("order and chains only hold live slots")
    }

    /// The slot at `idx`, if it was not pruned.
    pub(crate) fn try_slot(&self, idx: SlotIdx) -> Option<&Slot<O>> {
        self.slots.get(idx as usize).and_then(|slot| slot.as_deref())
    }

    /// The admitted lane with this id.
    pub(crate) fn get(&self, id: &LaneId) -> Option<&Slot<O>> {
        self.by_id.get(id).map(|idx| self.slot(*idx))
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
            return Some((slot.lane.seq, slot.id, slot.lane.lamport));
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

    // ---- inputs --------------------------------------------------------

    /// Inserts a lane whose id the caller computed from its canonical bytes.
    pub(crate) fn insert(&mut self, id: LaneId, lane: Lane<O>) -> Result<Inserted, LaneError> {
        lane.check_shape().map_err(|shape| LaneError::Shape { id, shape })?;
        // Stability counts members only: a non-member's lane could always
        // arrive inside a prefix some node already holds stable.
        if !self.members.is_empty() && !self.members.contains_key(&lane.author) {
            return Err(LaneError::NotAMember { id, author: lane.author });
        }
        if self.by_id.contains_key(&id) || self.pending.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        if let Some(tip) = self.pruned_refs.get(&id) {
            let frontier = self.pruned_tips.get(&tip.author) == Some(tip);
            if frontier || (tip.author, tip.seq, tip.lamport) == (lane.author, lane.seq, lane.lamport) {
                return Ok(Inserted::Duplicate);
            }
            // A boundary reference (which no snapshot id covers) misnames this
            // lane, so it was forged: the lane, which its id hashes, wins.
            // Its dot no longer names a known lane (no rescan: a hostile
            // sender could make every lane of a batch pay one).
            let dot = Dot { author: tip.author, seq: tip.seq };
            self.pruned_refs.remove(&id);
            if self.pruned_dots.get(&dot) == Some(&id) {
                self.pruned_dots.remove(&dot);
            }
        }
        if let Some(existing) = self.existing_at(lane.dot()) {
            return match existing {
                Existing::Covered => Ok(Inserted::Duplicate),
                Existing::Lane(kept) => Err(self.record_fork(lane.dot(), kept, id, &lane)),
            };
        }
        let missing: Vec<LaneId> = lane.parents.iter().filter(|parent| !self.holds(parent)).copied().collect();
        if !missing.is_empty() {
            return self.park(id, lane, missing);
        }
        let mut admitted = Vec::new();
        self.admit(id, lane)?;
        admitted.push(id);
        self.release(id, &mut admitted);
        Ok(Inserted::Admitted(admitted))
    }

    /// Parents that pending lanes wait for, sorted.
    pub(crate) fn missing_parents(&self) -> Vec<LaneId> {
        let mut missing: Vec<LaneId> = self.waiting.keys().copied().collect();
        missing.sort_unstable();
        missing
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

    /// Drops the bodies of `pruned` (a causally closed prefix, in canonical
    /// order) and keeps a [`Tip`] for every pruned lane a remaining or future
    /// lane may name.
    pub(crate) fn prune(&mut self, pruned: &[SlotIdx], tips: &[Tip]) {
        let mut removed = BTreeMap::new();
        for &idx in pruned {
            let slot = self.slots[idx as usize].take().expect("only live slots are pruned");
            self.by_id.remove(&slot.id);
            let chain = self.chains.get_mut(&slot.lane.author).expect("an admitted lane has a chain");
            let front = chain.slots.pop_front();
            assert_eq!(front, Some(idx), "a pruned prefix is causally closed, so it takes chain fronts");
            chain.pruned_seq = slot.lane.seq;
            removed.insert(slot.id, tip_of(&slot));
        }
        self.rebuild_refs(tips, &[], &removed);
    }

    /// Drops everything at or below `tips` (an installed snapshot's
    /// frontier), keeps `boundary` (covered lanes the sender's held lanes
    /// name) and returns the admitted lanes that remain.
    pub(crate) fn cover(&mut self, tips: &[Tip], boundary: &[Tip]) -> Vec<SlotIdx> {
        let mut removed = BTreeMap::new();
        let covered_seq: BTreeMap<NodeId, u64> = tips.iter().map(|tip| (tip.author, tip.seq)).collect();
        for (author, chain) in &mut self.chains {
            let cover = covered_seq.get(author).copied().unwrap_or(0);
            while let Some(&idx) = chain.slots.front() {
                let slot = self.slots[idx as usize].as_deref().expect("chains hold live slots");
                if slot.lane.seq > cover {
                    break;
                }
                let id = slot.id;
                removed.insert(id, tip_of(slot));
                chain.slots.pop_front();
                self.by_id.remove(&id);
                self.heads.remove(&id);
                self.slots[idx as usize] = None;
            }
            chain.pruned_seq = chain.pruned_seq.max(cover);
        }
        for tip in tips {
            let chain = self.chains.entry(tip.author).or_default();
            if chain.slots.is_empty() {
                chain.pruned_seq = chain.pruned_seq.max(tip.seq);
            }
        }
        self.rebuild_refs(tips, boundary, &removed);
        self.recompute_heads(tips);
        let mut remaining: Vec<SlotIdx> = self.chains.values().flat_map(|chain| chain.slots.iter().copied()).collect();
        remaining.sort_unstable();
        remaining
    }

    /// Releases pending lanes that waited on any pruned lane now known.
    pub(crate) fn release_waiting_on_refs(&mut self) -> Vec<LaneId> {
        let tip_ids: Vec<LaneId> = self.pruned_refs.keys().copied().collect();
        let mut admitted = Vec::new();
        for id in tip_ids {
            self.release(id, &mut admitted);
        }
        admitted
    }

    // ---- internals -----------------------------------------------------

    fn rebuild_refs(&mut self, tips: &[Tip], boundary: &[Tip], removed: &BTreeMap<LaneId, Tip>) {
        let mut refs: BTreeMap<LaneId, Tip> = tips.iter().chain(boundary).map(|tip| (tip.id, *tip)).collect();
        // Pending lanes were parked counting their held parents as present,
        // so those parents stay named too (the map is sorted: no order leaks).
        let admitted = self.slots.iter().flatten().map(|slot| &slot.lane.parents);
        let pending = self.pending.values().map(|pending| &pending.lane.parents);
        for parent in admitted.chain(pending).flatten() {
            if let Some(tip) = removed.get(parent).or_else(|| self.pruned_refs.get(parent)) {
                refs.insert(*parent, *tip);
            }
        }
        self.pruned_dots.clear();
        for tip in refs.values() {
            self.pruned_dots.entry(Dot { author: tip.author, seq: tip.seq }).or_insert(tip.id);
        }
        self.pruned_refs = refs;
        for tip in tips {
            self.pruned_tips.insert(tip.author, *tip);
        }
    }

    fn recompute_heads(&mut self, tips: &[Tip]) {
        let mut heads: BTreeSet<LaneId> = self.by_id.keys().copied().collect();
        heads.extend(tips.iter().map(|tip| tip.id));
        for slot in self.slots.iter().flatten() {
            for parent in &slot.lane.parents {
                heads.remove(parent);
            }
        }
        self.heads = heads;
    }

    fn existing_at(&self, dot: Dot) -> Option<Existing> {
        let chain = self.chains.get(&dot.author)?;
        if dot.seq > chain.seq_held() {
            return None;
        }
        if dot.seq <= chain.pruned_seq {
            let tip = self.pruned_tips.get(&dot.author).filter(|tip| tip.seq == dot.seq);
            let known = tip.or_else(|| self.pruned_dots.get(&dot).and_then(|id| self.pruned_refs.get(id)));
            return Some(known.map_or(Existing::Covered, |tip| Existing::Lane(tip.id)));
        }
        if self.bugs.fork_deduped_by_dot() {
            // Planted bug: a held dot is taken for the lane arriving (lanes
            // deduplicated by dot, not by id), so a fork is never seen.
            return Some(Existing::Covered);
        }
        let idx = chain.slots[(dot.seq - chain.pruned_seq - 1) as usize];
        Some(Existing::Lane(self.slot(idx).id))
    }

    fn record_fork(&mut self, dot: Dot, kept: LaneId, other: LaneId, lane: &Lane<O>) -> LaneError {
        let known = self.forks.iter().any(|proof| proof.other == other);
        if !known {
            self.forks_seen += 1;
            if self.forks.len() < MAX_FORK_PROOFS {
                self.forks.push(ForkProof { dot, kept, other, other_bytes: lane.to_bytes() });
            }
        }
        LaneError::Fork { dot, kept, other }
    }

    fn park(&mut self, id: LaneId, lane: Lane<O>, missing: Vec<LaneId>) -> Result<Inserted, LaneError> {
        if self.pending.len() >= self.max_pending {
            return Err(LaneError::PendingFull { id, limit: self.max_pending });
        }
        for parent in &missing {
            self.waiting.entry(*parent).or_default().push(id);
        }
        self.pending.insert(id, PendingLane { lane, missing: missing.len() });
        Ok(Inserted::Pending)
    }

    /// Admits every pending lane whose last missing parent was `arrived`,
    /// transitively; failures are recorded, not returned.
    fn release(&mut self, arrived: LaneId, admitted: &mut Vec<LaneId>) {
        let mut queue = vec![arrived];
        while let Some(parent) = queue.pop() {
            let Some(waiters) = self.waiting.remove(&parent) else { continue };
            for waiter in waiters {
                let Some(entry) = self.pending.get_mut(&waiter) else { continue };
                entry.missing -= 1;
                if entry.missing > 0 {
                    continue;
                }
                let lane = self.pending.remove(&waiter).expect("just looked up").lane;
                let outcome = match self.existing_at(lane.dot()) {
                    Some(Existing::Covered) => continue,
                    Some(Existing::Lane(kept)) => Err(self.record_fork(lane.dot(), kept, waiter, &lane)),
                    None => self.admit(waiter, lane),
                };
                match outcome {
                    Ok(()) => {
                        admitted.push(waiter);
                        queue.push(waiter);
                        if self.bugs.pending_releases_one() {
                            // Planted bug: the arrival is taken to complete one
                            // waiting lane; the other waiters, already taken
                            // off the waiting list, stay pending for good.
                            break;
                        }
                    }
                    Err(error) => self.rejected.push((waiter, error)),
                }
            }
        }
    }

    /// Validates a lane whose parents are all held and adds it to the DAG.
    fn admit(&mut self, id: LaneId, lane: Lane<O>) -> Result<(), LaneError> {
        let parents = self.check_ancestry(id, &lane)?;
        if let Some(stable) = self.stable_key
            && (lane.lamport, lane.author, id) <= stable
        {
            return Err(LaneError::BeforeStablePoint { id, lamport: lane.lamport, stable_max_lamport: stable.0 });
        }
        let idx = SlotIdx::try_from(self.slots.len()).expect("fewer than 2^32 lanes per replica lifetime");
        for parent in &lane.parents {
            self.heads.remove(parent);
        }
        self.heads.insert(id);
        if let Some(journal) = &mut self.journal {
            journal.push(lane.to_bytes());
        }
        self.chains.entry(lane.author).or_default().slots.push_back(idx);
        self.by_id.insert(id, idx);
        let author = lane.author;
        let words = self.members.len().div_ceil(64);
        let reached = vec![0; words].into_boxed_slice();
        self.slots.push(Some(Box::new(Slot {
            id,
            lane,
            parent_slots: parents.into_boxed_slice(),
            reached,
            reached_count: 0,
        })));
        self.fresh.push(idx);
        if let Some(&member) = self.members.get(&author) {
            self.mark_reached(idx, member);
        }
        Ok(())
    }

    /// Marks `from` and its ancestors as reached by `member`, stopping at
    /// lanes already marked: each (lane, member) pair is visited once.
    fn mark_reached(&mut self, from: SlotIdx, member: usize) {
        let (word, bit) = (member / 64, 1u64 << (member % 64));
        let mut stack = std::mem::take(&mut self.mark_stack);
        stack.push(from);
        while let Some(idx) = stack.pop() {
            let Some(slot) = self.slots.get_mut(idx as usize).and_then(|slot| slot.as_deref_mut()) else { continue };
            if slot.reached[word] & bit != 0 {
                continue;
            }
            slot.reached[word] |= bit;
            slot.reached_count += 1;
            stack.extend(slot.parent_slots.iter().copied());
        }
        self.mark_stack = stack;
    }

    /// Whether every member's latest lane descends from (or is) this lane.
    pub(crate) fn reached_by_all(&self, idx: SlotIdx) -> bool {
        // Planted bug `stability_one_member_short`: this node holds the lane,
        // so it is taken to have reached it, and one member fewer is needed.
        let needed = self.members.len().saturating_sub(usize::from(self.bugs.stability_one_member_short()));
        self.try_slot(idx).is_some_and(|slot| slot.reached_count as usize >= needed)
    }

    /// Checks the Lamport rule and the author-chain rule against held parents
    /// and returns the admitted parents' slots.
    fn check_ancestry(&self, id: LaneId, lane: &Lane<O>) -> Result<Vec<SlotIdx>, LaneError> {
        let mut parent_slots = Vec::with_capacity(lane.parents.len());
        let mut max_lamport = 0;
        let mut own_previous = Vec::new();
        for parent in &lane.parents {
            let (dot, lamport) = if let Some(&idx) = self.by_id.get(parent) {
                parent_slots.push(idx);
                let slot = self.slot(idx);
                (slot.lane.dot(), slot.lane.lamport)
            } else {
                let tip = self.pruned_refs.get(parent).expect("admit is called only when every parent is held");
                (Dot { author: tip.author, seq: tip.seq }, tip.lamport)
            };
            max_lamport = max_lamport.max(lamport);
            if dot.author == lane.author {
                own_previous.push(dot.seq);
            }
        }
        let expected = max_lamport + 1;
        if lane.lamport != expected {
            return Err(LaneError::BadLamport { id, lamport: lane.lamport, expected });
        }
        let chain_ok = match lane.seq {
            1 => own_previous.is_empty(),
            seq => own_previous == [seq - 1],
        };
        if !chain_ok {
            return Err(LaneError::BrokenChain { id, dot: lane.dot(), own_parents: own_previous });
        }
        Ok(parent_slots)
    }
}

fn tip_of<O>(slot: &Slot<O>) -> Tip {
    Tip { author: slot.lane.author, seq: slot.lane.seq, lamport: slot.lane.lamport, id: slot.id }
}

enum Existing {
    /// The dot is inside the pruned prefix but is not a tip: it cannot be checked.
    Covered,
    /// The dot is held by this lane.
    Lane(LaneId),
}
