//! Errors for bad lanes. A lane error never leaves the replica changed.

use crate::codec::DecodeError;
use crate::hash::LaneId;
use crate::lane::{Dot, LaneShapeError};

/// Why a lane was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaneError {
    /// This replaced node has not synced with every other member yet, so it
    /// may not author (it would fork its own chain).
    #[error("rejoining: synced with {synced} of the {needed} peers needed before authoring")]
    Rejoining {
        /// Peers synced with so far.
        synced: usize,
        /// Every other member.
        needed: usize,
    },
    /// The bytes are not a canonical lane.
    #[error("malformed lane: {0}")]
    Decode(#[from] DecodeError),
    /// The lane breaks a structural rule.
    #[error("lane {id}: {shape}")]
    Shape {
        /// The lane.
        id: LaneId,
        /// The rule.
        shape: LaneShapeError,
    },
    /// The id carried with the lane is not the hash of its bytes (tampering).
    #[error("lane id {claimed} does not match its content (hash {actual})")]
    IdMismatch {
        /// Id carried with the lane.
        claimed: LaneId,
        /// Id of the bytes.
        actual: LaneId,
    },
    /// The Lamport stamp is not one more than the largest parent's.
    #[error("lane {id}: lamport {lamport}, expected {expected} (one more than its largest parent)")]
    BadLamport {
        /// The lane.
        id: LaneId,
        /// Stamp carried.
        lamport: u64,
        /// Stamp its parents imply.
        expected: u64,
    },
    /// The largest parent stamp leaves no stamp within
    /// [`crate::lane::MAX_LAMPORT`] for this lane (only a forged stamp
    /// gets there; the sum is checked, never wrapped).
    #[error("lane {id}: its largest parent stamp {parent_lamport} leaves no stamp within the limit")]
    StampOverflow {
        /// The lane.
        id: LaneId,
        /// The largest stamp among its parents.
        parent_lamport: u64,
    },
    /// The lane does not extend its author's chain (seq 1 has no own parent;
    /// seq n names exactly the author's lane n-1).
    #[error("lane {id} at {dot:?} names own-author parents with seqs {own_parents:?}")]
    BrokenChain {
        /// The lane.
        id: LaneId,
        /// Its place.
        dot: Dot,
        /// Seqs of parents by the same author.
        own_parents: Vec<u64>,
    },
    /// Another lane already holds this `(author, seq)`: the author forked.
    #[error("fork at {dot:?}: kept {kept}, refused {other}")]
    Fork {
        /// Where.
        dot: Dot,
        /// The lane held there.
        kept: LaneId,
        /// The conflicting lane.
        other: LaneId,
    },
    /// The lane would sort inside the stable prefix, which never changes.
    #[error("lane {id}: lamport {lamport} sorts inside the stable prefix (stable max lamport {stable_max_lamport})")]
    BeforeStablePoint {
        /// The lane.
        id: LaneId,
        /// Its stamp.
        lamport: u64,
        /// Largest stamp in the stable prefix.
        stable_max_lamport: u64,
    },
    /// The author is not a member: stability counts members only, so such a
    /// lane could sort inside a prefix other nodes already hold stable.
    #[error("lane {id}: author {author} is not a member")]
    NotAMember {
        /// The lane.
        id: LaneId,
        /// Its author.
        author: crate::lane::NodeId,
    },
    /// The pending set is full; the lane was not kept.
    #[error("pending set full ({limit} lanes); lane {id} dropped")]
    PendingFull {
        /// The lane.
        id: LaneId,
        /// The limit.
        limit: usize,
    },
}
