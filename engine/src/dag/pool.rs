//! Lanes shared between the replicas of one process.
//!
//! A lane is immutable and named by the hash of its canonical bytes, so
//! every replica that holds it holds the same value. A driver that runs
//! many nodes in one process (the simulator runs thousands) gives them one
//! [`LanePool`], and each lane is kept once however many replicas hold it:
//! without it, lane bodies were a fifth of a 1,000-node run's memory.
//!
//! Invariant: sharing never changes what a replica holds. The pool hands
//! out its copy only when it equals, field for field, the lane being
//! admitted under the same id. It holds lanes weakly (a lane every replica
//! pruned is freed), and it is only looked up, never iterated, so it changes
//! no output: a run with a pool and one without produce the same bytes.

use crate::hash::LaneId;
use crate::lane::Lane;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Entries a pool holds before it first drops those no replica holds.
const PURGE_MIN_ENTRIES: usize = 4096;

/// Lanes shared by the replicas that were given this pool (see
/// [`crate::Node::share_lanes`]); cloning it shares it.
#[derive(Clone, Debug)]
pub struct LanePool<O>(Arc<Mutex<Entries<O>>>);

#[derive(Debug)]
struct Entries<O> {
    by_id: BTreeMap<LaneId, Weak<Lane<O>>>,
    /// Dead entries are dropped when `by_id` reaches this many.
    purge_at: usize,
}

impl<O> Default for LanePool<O> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Entries { by_id: BTreeMap::new(), purge_at: PURGE_MIN_ENTRIES })))
    }
}

impl<O: PartialEq> LanePool<O> {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `lane` (whose id is `id`), made now if the pool has none.
    pub(crate) fn share(&self, id: LaneId, lane: Lane<O>) -> Arc<Lane<O>> {
        let mut entries = self.entries();
        if let Some(shared) = entries.by_id.get(&id).and_then(Weak::upgrade).filter(|shared| **shared == lane) {
            return shared;
        }
        let shared = Arc::new(lane);
        entries.remember(id, &shared);
        shared
    }

    /// The shared copy of a lane a replica already holds as `held`.
    pub(crate) fn share_held(&self, id: LaneId, held: &Arc<Lane<O>>) -> Arc<Lane<O>> {
        let mut entries = self.entries();
        if let Some(shared) = entries.by_id.get(&id).and_then(Weak::upgrade).filter(|shared| *shared == *held) {
            return shared;
        }
        entries.remember(id, held);
        held.clone()
    }

    /// Lanes some replica still holds through the pool.
    pub fn live_lanes(&self) -> usize {
        self.entries().by_id.values().filter(|lane| lane.strong_count() > 0).count()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<O>> {
        // Nothing panics while the lock is held, and the map is valid in
        // any case: a poisoned lock is still a usable pool.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<O> Entries<O> {
    fn remember(&mut self, id: LaneId, shared: &Arc<Lane<O>>) {
        // A dead entry or a different lane under one id (which only a hash
        // collision or a caller's wrong id could make) is replaced.
        self.by_id.insert(id, Arc::downgrade(shared));
        if self.by_id.len() >= self.purge_at {
            self.by_id.retain(|_, lane| lane.strong_count() > 0);
            self.purge_at = (2 * self.by_id.len()).max(PURGE_MIN_ENTRIES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::NodeId;
    use crate::world::WorldOp;

    fn lane(seq: u64) -> Lane<WorldOp> {
        Lane::new(NodeId(1), seq, seq, Vec::new(), vec![WorldOp::Add { key: 1, delta: 2 }])
    }

    #[test]
    fn equal_lanes_are_shared_and_freed_with_their_last_holder() {
        let pool = LanePool::new();
        let first = pool.share(lane(1).id(), lane(1));
        let second = pool.share(lane(1).id(), lane(1));
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(pool.live_lanes(), 1);
        drop((first, second));
        assert_eq!(pool.live_lanes(), 0);
        let again = pool.share(lane(1).id(), lane(1));
        assert_eq!(*again, lane(1), "a freed lane is made anew");
    }

    #[test]
    fn a_different_lane_under_a_held_id_is_never_handed_out() {
        let pool = LanePool::new();
        let held = pool.share(lane(1).id(), lane(1));
        // A caller's wrong id: the pool compares the lanes, not just the ids.
        let other = pool.share(lane(1).id(), lane(2));
        assert_eq!(*other, lane(2));
        assert_eq!(*held, lane(1));
        let mine = Arc::new(lane(1));
        let shared = pool.share_held(lane(1).id(), &mine);
        assert_eq!(*shared, lane(1));
    }

    #[test]
    fn lanes_held_before_a_replica_joins_the_pool_are_shared_too() {
        use crate::{Replica, ReplicaConfig, World};
        let members = [NodeId(0), NodeId(1)];
        let mut early = Replica::new(World, ReplicaConfig::new(NodeId(0), members));
        let (id, body) = early.create_lane(vec![WorldOp::Add { key: 1, delta: 2 }]).expect("a valid lane");
        let pool = LanePool::new();
        early.share_lanes(&pool);
        assert_eq!(pool.live_lanes(), 1, "the held lane joined the pool");
        let mut late = Replica::new(World, ReplicaConfig::new(NodeId(1), members));
        late.share_lanes(&pool);
        late.insert(body).expect("the same lane");
        let (a, b) = (early.lane(&id).expect("held"), late.lane(&id).expect("held"));
        assert!(std::ptr::eq(a, b), "both replicas hold one body");
        assert_eq!(pool.live_lanes(), 1);
    }
}
