//! # The SCX reference model
//!
//! An independent, obviously correct model of what the SCX engine must
//! compute, written from DESIGN.md (§2 the engine model, §7 checking without
//! trusting the engine) and the documented rules of the world law, never
//! from the engine's replica, DAG or law code. The harness and the engine's
//! property tests judge the engine by it, so a deterministic mistake every
//! node shares (a merge rule, the canonical tie-break, a chain-hash step)
//! shows up as a disagreement with the model.
//!
//! What it shares with the engine, and nothing else: the lane type
//! ([`scx_engine::Lane`] with [`scx_engine::WorldOp`], [`scx_engine::NodeId`],
//! [`scx_engine::Dot`]), the lane's canonical encoding and id
//! (`Lane::id`), and the 32-byte hash newtypes, so results compare directly
//! with the engine's `Status`. Everything else is recomputed here: validity
//! of lanes, closure, the canonical order (a naive Kahn sort), the world law
//! as plain `BTreeMap` code, its canonical state encoding, and both hashes
//! with blake3 under the documented domain keys.
//!
//! Obviously correct beats fast: a replay starts from nothing every time.
//! Two exceptions: [`Model::read`], which the simulator calls for every
//! read, so it folds only the lanes of one key (see [`read`]), and
//! [`Model::replay_prefix_from`], which continues one of its own earlier
//! replays when that replay's order is, lane for lane, the first part of
//! the new order (a replay is a fold along the order).
//!
//! Invariant: the model accepts only lanes that keep the rules of
//! DESIGN.md §2 (stamps one more than the largest parent's, author chains
//! with seq 1, 2, 3 …), and answers only about causally closed sets of them.
//!
//! ## Map
//! - [`history`]: lanes by id, validity, closure, closed subsets, frontiers.
//! - [`order`]: canonical order, replay, hashes, causal stability.
//! - [`read`]: one key's value over the set a frontier names.
//! - [`law`]: the world law and its canonical state encoding.
//! - [`hash`]: the chain step and the state digest.
//! - [`error`]: why a lane or a question is refused.

pub mod error;
pub mod hash;
pub mod history;
pub mod law;
pub mod order;
pub mod read;

pub use error::ModelError;
pub use history::{Frontier, Model, OrderKey};
pub use law::{ModelState, ModelValue, RegisterValue};
pub use order::Replayed;

#[cfg(test)]
mod tests;
