//! Always: a node's hashes are the model's replay of the lanes it holds.
//! Checked after every recovery (a replay from the log must reach the
//! hashes of the lanes it recovered) and for every live node at the end,
//! against the model, never against the engine's own replay. This catches
//! state that depends on arrival order, a skipped rollback, a wrong merge
//! rule, tie-break or chain step.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::{Observation, StatusView};
use scx_engine::ChainHash;
use scx_model::Frontier;
use std::collections::BTreeMap;

/// The replay checker. Remembers the states it verified, so nodes that
/// reach one state cost one model replay.
#[derive(Debug, Default)]
pub struct Replay {
    verified: BTreeMap<ChainHash, StatusView>,
}

impl Checker for Replay {
    fn name(&self) -> &'static str {
        "replay"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        let (node, status, frontier, when) = match observation {
            Observation::Booted { node, status, frontier, .. } => (*node, status, frontier, "after recovery"),
            Observation::Final { node, status, frontier, .. } => (*node, status, frontier, "at the end of the run"),
            _ => return,
        };
        if let Some(message) = self.check(status, frontier, knowledge) {
            found.violation(Some(node), format!("n{node} {when}: {message}"));
        }
    }
}

impl Replay {
    /// Why `status` is not the model's replay of `frontier`, if it is not.
    fn check(&mut self, status: &StatusView, frontier: &Frontier, knowledge: &Knowledge) -> Option<String> {
        if self.verified.get(&status.chain_hash) == Some(status) {
            return None;
        }
        let held = match knowledge.model.closure(Knowledge::tips(frontier)) {
            Ok(held) => held,
            Err(error) => return Some(format!("holds lanes the model refuses: {error}")),
        };
        let model = match knowledge.model.replay(&held) {
            Ok(model) => model,
            Err(error) => return Some(format!("holds a set the model cannot replay: {error}")),
        };
        let expected =
            StatusView { lane_index: model.lane_index, chain_hash: model.chain_hash, state_digest: model.state_digest };
        if expected == *status {
            self.verified.insert(status.chain_hash, *status);
            return None;
        }
        Some(format!(
            "holds chain {} digest {} at lane index {}, but the model's replay of its lanes gives chain {} digest {} at {}",
            status.chain_hash.short(),
            status.state_digest.short(),
            status.lane_index,
            expected.chain_hash.short(),
            expected.state_digest.short(),
            expected.lane_index
        ))
    }
}
