//! Reached-by-member bits: for each admitted lane, which members' latest
//! lanes descend from it, so causal stability is a bit count.
//!
//! Only a member that authored a lane can reach one, so bits are numbered
//! by authors in the order their first lanes arrived here, and a lane's
//! bit vector grows to the highest bit set on it: a node pays a bit per
//! (lane, author) pair, whatever the size of the membership.

use super::{LaneDag, SlotIdx};
use crate::lane::{NodeId, Op};

impl<O: Op> LaneDag<O> {
    /// The bit that stands for `author`, numbered on first use.
    pub(super) fn reach_bit(&mut self, author: NodeId) -> usize {
        let next = self.reach_index.len();
        *self.reach_index.entry(author).or_insert(next)
    }

    /// Marks `from` and its ancestors as reached by the author of bit
    /// `member`, stopping at lanes already marked: each (lane, member) pair
    /// is visited once.
    pub(super) fn mark_reached(&mut self, from: SlotIdx, member: usize) {
        let (word, bit) = (member / 64, 1u64 << (member % 64));
        let mut stack = std::mem::take(&mut self.mark_stack);
        stack.push(from);
        while let Some(idx) = stack.pop() {
            let Some(slot) = self.slots.get_mut(idx) else { continue };
            if slot.reached.get(word).is_some_and(|held| held & bit != 0) {
                continue;
            }
            if slot.reached.len() <= word {
                // A boxed slice, not a Vec: a word less per lane, and it
                // grows only when an author past its end reaches it.
                let mut words = std::mem::take(&mut slot.reached).into_vec();
                words.resize(word + 1, 0);
                slot.reached = words.into_boxed_slice();
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
}
