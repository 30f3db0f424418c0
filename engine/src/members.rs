//! The member list of a cluster, and the peers a node syncs with, in a form
//! that costs a node nothing per member.
//!
//! Every node of a cluster knows the same member list. A process that runs
//! thousands of nodes (the simulator) would hold thousands of copies if each
//! node kept its own set, which made memory grow with the square of the
//! cluster. [`Members`] is immutable: the usual cluster `n0..n(N-1)` is a
//! count, any other list a sorted slice behind a reference count, so a clone
//! is shared. [`Peers`] is a node's view of it: every member but itself,
//! starting after itself, without a copy.
//!
//! Invariant: a `Members` is sorted and free of duplicates, however it was
//! built, so its index of a member is the member's rank.

use crate::lane::NodeId;
use std::sync::Arc;

/// The sorted, deduplicated member list of a cluster; cloning it shares it.
#[derive(Clone, PartialEq, Eq)]
pub struct Members(Repr);

#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// `n0 ..= n(count - 1)`.
    Range { count: u32 },
    /// Any other list, sorted and deduplicated.
    List(Arc<[NodeId]>),
}

impl Default for Members {
    fn default() -> Self {
        Self::range(0)
    }
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Range { count } => write!(f, "Members(n0..n{count})"),
            Repr::List(list) => f.debug_tuple("Members").field(list).finish(),
        }
    }
}

impl Members {
    /// The members `n0 ..= n(count - 1)`, in constant space.
    pub fn range(count: u32) -> Self {
        Self(Repr::Range { count })
    }

    /// How many members.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Range { count } => *count as usize,
            Repr::List(list) => list.len(),
        }
    }

    /// Whether there is no member at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The member of rank `index`.
    pub fn get(&self, index: usize) -> Option<NodeId> {
        match &self.0 {
            Repr::Range { count } => u32::try_from(index).ok().filter(|index| index < count).map(NodeId),
            Repr::List(list) => list.get(index).copied(),
        }
    }

    /// The rank of `node` in the list, if it is a member.
    pub fn index_of(&self, node: NodeId) -> Option<usize> {
        match &self.0 {
            Repr::Range { count } => (node.0 < *count).then_some(node.0 as usize),
            Repr::List(list) => list.binary_search(&node).ok(),
        }
    }

    /// Whether `node` is a member.
    pub fn contains(&self, node: NodeId) -> bool {
        self.index_of(node).is_some()
    }

    /// How many members sort at or before `node` (whether or not it is one).
    fn rank_after(&self, node: NodeId) -> usize {
        match &self.0 {
            Repr::Range { count } => node.0.saturating_add(1).min(*count) as usize,
            Repr::List(list) => list.partition_point(|member| *member <= node),
        }
    }

    /// The members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }
}

impl FromIterator<NodeId> for Members {
    fn from_iter<I: IntoIterator<Item = NodeId>>(nodes: I) -> Self {
        let mut list: Vec<NodeId> = nodes.into_iter().collect();
        list.sort_unstable();
        list.dedup();
        let count = u32::try_from(list.len()).ok();
        match count {
            // Sorted and distinct, so the last one is `count - 1` exactly when
            // the list is `0..count`.
            Some(count) if list.last().is_none_or(|last| u64::from(last.0) + 1 == u64::from(count)) => {
                Self::range(count)
            }
            _ => Self(Repr::List(list.into())),
        }
    }
}

impl<const N: usize> From<[NodeId; N]> for Members {
    fn from(nodes: [NodeId; N]) -> Self {
        nodes.into_iter().collect()
    }
}

impl From<Vec<NodeId>> for Members {
    fn from(nodes: Vec<NodeId>) -> Self {
        nodes.into_iter().collect()
    }
}

/// Whom a node may pick to sync with: a list of its own, or every member
/// but `me`, from the first one after `me` round to the last one before it
/// (sharing the member list, so it costs nothing per member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers(PeersRepr);

#[derive(Clone, Debug, PartialEq, Eq)]
enum PeersRepr {
    List(Vec<NodeId>),
    OthersOf { members: Members, me: NodeId },
}

impl Peers {
    /// Every member but `me`, in turn from the one after it.
    pub fn others_of(members: Members, me: NodeId) -> Self {
        Self(PeersRepr::OthersOf { members, me })
    }

    /// How many peers.
    pub fn len(&self) -> usize {
        match &self.0 {
            PeersRepr::List(list) => list.len(),
            PeersRepr::OthersOf { members, me } => members.len() - usize::from(members.contains(*me)),
        }
    }

    /// Whether there is no peer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`-th peer.
    pub fn get(&self, index: usize) -> Option<NodeId> {
        match &self.0 {
            PeersRepr::List(list) => list.get(index).copied(),
            PeersRepr::OthersOf { members, me } => {
                if index >= self.len() {
                    return None;
                }
                // Starting right after `me` and taking fewer than all
                // members never comes round to `me` itself.
                members.get((members.rank_after(*me) + index) % members.len())
            }
        }
    }

    /// The peers in turn.
    pub fn iter(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }
}

impl From<Vec<NodeId>> for Peers {
    fn from(list: Vec<NodeId>) -> Self {
        Self(PeersRepr::List(list))
    }
}

impl FromIterator<NodeId> for Peers {
    fn from_iter<I: IntoIterator<Item = NodeId>>(peers: I) -> Self {
        Self(PeersRepr::List(peers.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_contiguous_list_from_zero_is_stored_as_a_count() {
        let members: Members = [NodeId(2), NodeId(0), NodeId(1), NodeId(1)].into();
        assert_eq!(members, Members::range(3));
        assert!(matches!(Members::from(vec![NodeId(1), NodeId(2)]).0, Repr::List(_)));
        assert_eq!(Members::from(Vec::new()), Members::range(0));
    }

    proptest! {
        #[test]
        fn members_behave_as_a_sorted_set(nodes in proptest::collection::vec(0u32..40, 0..30), probe in 0u32..45) {
            let set: BTreeSet<NodeId> = nodes.iter().copied().map(NodeId).collect();
            let members: Members = nodes.iter().copied().map(NodeId).collect();
            prop_assert_eq!(members.len(), set.len());
            prop_assert_eq!(members.iter().collect::<Vec<_>>(), set.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(members.contains(NodeId(probe)), set.contains(&NodeId(probe)));
            prop_assert_eq!(members.index_of(NodeId(probe)), set.iter().position(|node| *node == NodeId(probe)));
            prop_assert_eq!(members.get(set.len()), None);
        }

        #[test]
        fn others_of_rotates_from_the_node_after_me(nodes in proptest::collection::vec(0u32..40, 0..30), me in 0u32..45) {
            let set: BTreeSet<NodeId> = nodes.iter().copied().map(NodeId).collect();
            let me = NodeId(me);
            // The definition: the members after `me`, then those before it.
            let expected: Vec<NodeId> =
                set.range(me..).filter(|node| **node != me).chain(set.range(..me)).copied().collect();
            let peers = Peers::others_of(set.iter().copied().collect(), me);
            prop_assert_eq!(peers.len(), expected.len());
            prop_assert_eq!(peers.iter().collect::<Vec<_>>(), expected);
            prop_assert_eq!(peers.get(peers.len()), None);
        }
    }

    #[test]
    fn others_of_a_range_is_the_old_rotated_list() {
        for count in 1..6u32 {
            for me in 0..count {
                let old: Vec<NodeId> = (1..count).map(|step| NodeId((me + step) % count)).collect();
                let peers = Peers::others_of(Members::range(count), NodeId(me));
                assert_eq!(peers.iter().collect::<Vec<_>>(), old, "n{me} of {count}");
            }
        }
    }
}
