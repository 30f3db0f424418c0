//! Why the model refuses a lane or a question about a lane set.
//!
//! The model never guesses: a lane that breaks a rule of DESIGN.md §2, a set
//! that is not causally closed or a frontier that names lanes it does not
//! hold is an error that says which lane and which rule.

use scx_engine::{Dot, LaneId, NodeId};

/// What the model refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// A lane named as a tip, a parent or a member of a set was never added.
    #[error("lane {id} is not known to the model")]
    MissingLane {
        /// The lane.
        id: LaneId,
    },
    /// The lane breaks a rule that needs nothing but the lane itself.
    #[error("lane {id}: {rule}")]
    Shape {
        /// The lane.
        id: LaneId,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The Lamport stamp is not one more than the largest parent's.
    #[error("lane {id}: lamport {lamport}, expected {expected} (one more than its largest parent)")]
    BadLamport {
        /// The lane.
        id: LaneId,
        /// The stamp it carries.
        lamport: u64,
        /// The stamp its parents imply.
        expected: u64,
    },
    /// The lane does not extend its author's chain: seq 1 names no lane of
    /// its author, seq n names exactly the author's lane n - 1.
    #[error("lane {id} at {dot:?} names own-author parents with seqs {own_parent_seqs:?}")]
    BrokenChain {
        /// The lane.
        id: LaneId,
        /// Its place.
        dot: Dot,
        /// Seqs of the parents by the same author.
        own_parent_seqs: Vec<u64>,
    },
    /// An ancestor of the lane was refused, so no valid history holds it.
    #[error("lane {id}: its parent {parent} was refused")]
    RefusedParent {
        /// The lane.
        id: LaneId,
        /// The refused parent (itself refused for a rule or for its own parent).
        parent: LaneId,
    },
    /// A lane set to replay is not causally closed.
    #[error("lane {lane} is in the set but its parent {parent} is not")]
    NotClosed {
        /// The lane.
        lane: LaneId,
        /// Its parent outside the set.
        parent: LaneId,
    },
    /// A frontier entry names a lane that is not the author's lane at that seq.
    #[error("the frontier's entry for {author} says seq {seq}, but lane {tip} is at {actual:?}")]
    FrontierMismatch {
        /// The author of the entry.
        author: NodeId,
        /// The seq the entry claims.
        seq: u64,
        /// The tip the entry names.
        tip: LaneId,
        /// Where that lane really is.
        actual: Dot,
    },
    /// A frontier does not name a causally closed set: a tip descends from
    /// a lane that is not on the frontier's chain for its author.
    #[error(
        "the frontier is not causally closed: tip {tip} descends from {outside:?}, which the frontier does not hold"
    )]
    FrontierNotClosed {
        /// The tip whose ancestry leaves the set.
        tip: LaneId,
        /// The ancestor outside the set.
        outside: Dot,
    },
}
