//! The law: the replicated state machine that turns a canonical lane order
//! into state.
//!
//! Invariant: `apply` is a pure function of the state, the lane's identity
//! and the op. It must not read anything else (no clock, no arrival order, no
//! local node identity), because every replica replays the same order and
//! must reach the same state; the engine checks this by comparing digests.

use crate::bugs::Bugs;
use crate::codec::{DecodeError, Reader};
use crate::hash::LaneId;
use crate::lane::{Dot, NodeId, Op};
use std::fmt;

/// What a law may know about the lane whose op it applies.
#[derive(Debug, Clone, Copy)]
pub struct LaneContext<'a> {
    /// The lane's id.
    pub id: &'a LaneId,
    /// The lane's author.
    pub author: NodeId,
    /// The author's sequence number.
    pub seq: u64,
    /// The lane's Lamport stamp.
    pub lamport: u64,
    /// The lane's 1-based position in the canonical order (its lane index).
    pub lane_index: u64,
}

impl LaneContext<'_> {
    /// The lane's place in its author's chain.
    pub fn dot(&self) -> Dot {
        Dot { author: self.author, seq: self.seq }
    }
}

/// What applying one op did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Concurrent writes this op had to resolve by the merge rule.
    pub conflicts: u32,
}

/// A replicated state machine. The engine replays lanes through it in the
/// canonical order; users plug in their own.
pub trait Law: Clone + fmt::Debug {
    /// The operation type lanes carry.
    type Op: Op;
    /// The materialised state.
    type State: Clone + fmt::Debug + PartialEq;

    /// The state before any lane.
    fn genesis(&self) -> Self::State;

    /// Applies one op of `lane` to `state`.
    fn apply(&self, state: &mut Self::State, lane: &LaneContext<'_>, op: &Self::Op) -> Applied;

    /// [`Law::apply`] as the replica calls it, with its planted bugs
    /// (`ReplicaConfig::bugs`, effective only with feature `planted-bugs`).
    /// A law has no planted bug unless it overrides this; the built-in world
    /// has one.
    #[doc(hidden)]
    fn apply_planted(&self, state: &mut Self::State, lane: &LaneContext<'_>, op: &Self::Op, bugs: &Bugs) -> Applied {
        let _ = bugs;
        self.apply(state, lane, op)
    }

    /// Appends the canonical encoding of `state` (hashed into the digest).
    fn encode_state(&self, state: &Self::State, out: &mut Vec<u8>);

    /// What [`Law::encode_state_cached`] keeps from one encoding to the
    /// next (`()` for a law without a cache).
    type EncodeCache: Clone + fmt::Debug + Default;

    /// Appends exactly what [`Law::encode_state`] appends, reusing what
    /// `cache` kept from earlier encodings. A replica encodes its state for
    /// a digest after every change, and a change touches little of it: the
    /// built-in world copies the bytes of the sets that did not change.
    fn encode_state_cached(&self, state: &Self::State, cache: &mut Self::EncodeCache, out: &mut Vec<u8>) {
        let _ = cache;
        self.encode_state(state, out);
    }

    /// Reads a state; must accept only what `encode_state` writes.
    fn decode_state(&self, reader: &mut Reader<'_>) -> Result<Self::State, DecodeError>;
}
