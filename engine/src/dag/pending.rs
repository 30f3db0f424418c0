//! The bounded pending set: lanes whose parents have not arrived wait here,
//! and are released (and admitted, transitively) when the last one does.

use super::{Existing, Inserted, LaneDag};
use crate::error::LaneError;
use crate::hash::LaneId;
use crate::lane::{Lane, Op};

#[derive(Clone, Debug)]
pub(super) struct PendingLane<O> {
    pub(super) lane: Lane<O>,
    pub(super) missing: usize,
}

impl<O: Op> LaneDag<O> {
    /// Parents that pending lanes wait for, sorted.
    pub(crate) fn missing_parents(&self) -> Vec<LaneId> {
        let mut missing: Vec<LaneId> = self.waiting.keys().copied().collect();
        missing.sort_unstable();
        missing
    }

    /// Whether a lane `author` wrote is waiting for ancestry (its seq is
    /// held, but not contiguously).
    pub(crate) fn pending_by(&self, author: crate::NodeId) -> bool {
        self.pending.values().any(|pending| pending.lane.author == author)
    }

    pub(super) fn park(&mut self, id: LaneId, lane: Lane<O>, missing: Vec<LaneId>) -> Result<Inserted, LaneError> {
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
    pub(super) fn release(&mut self, arrived: LaneId, admitted: &mut Vec<LaneId>) {
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

    /// Releases pending lanes that waited on any pruned lane now known.
    pub(crate) fn release_waiting_on_refs(&mut self) -> Vec<LaneId> {
        let tip_ids: Vec<LaneId> = self.pruned_refs.keys().copied().collect();
        let mut admitted = Vec::new();
        for id in tip_ids {
            self.release(id, &mut admitted);
        }
        admitted
    }
}
