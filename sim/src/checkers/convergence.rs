//! Eventually: after the last fault heals, every live node reaches the same
//! chain hash and state digest within the settle bound, and that state is
//! the model's replay of what they hold, which must include every lane a
//! live node acknowledged. Nodes that agree with each other but not with
//! the model fail at once: a mistake every node shares (a merge rule, the
//! tie-break, a chain step) is invisible to agreement alone.
//! A node still rejoining (replaced, or rotted) keeps the cluster apart:
//! it has not synced with every peer yet.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::{NodeView, Observation, StatusView};
use scx_engine::NodeId;
use scx_model::Frontier;

/// The convergence checker; the supervisor asks it when to stop.
#[derive(Debug, Default)]
pub struct Convergence {
    converged_at_ns: Option<u64>,
    wrong: bool,
}

impl Convergence {
    /// When the live nodes were first seen converged on the model's state.
    pub fn converged_at_ns(&self) -> Option<u64> {
        self.converged_at_ns
    }
}

impl Checker for Convergence {
    fn name(&self) -> &'static str {
        "convergence"
    }

    fn kind(&self) -> Kind {
        Kind::Eventually
    }

    fn observe(&mut self, at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        if self.converged_at_ns.is_some() || self.wrong {
            return;
        }
        match observation {
            Observation::Sampled { nodes, agreed, quiescent: true } => {
                match probe(nodes, agreed.as_ref(), knowledge) {
                    Probe::Apart => {}
                    Probe::Converged => self.converged_at_ns = Some(at_ns),
                    Probe::Wrong(message) => {
                        self.wrong = true;
                        found.violation(None, message);
                    }
                }
            }
            Observation::SettleEnded { settle_ms, quiescent_at_ms } => found.violation(
                None,
                format!(
                    "live nodes did not converge within the settle bound of {settle_ms} ms after the last heal at {quiescent_at_ms} ms"
                ),
            ),
            _ => {}
        }
    }
}

enum Probe {
    Apart,
    Converged,
    Wrong(String),
}

fn probe(nodes: &[NodeView], agreed: Option<&Frontier>, knowledge: &Knowledge) -> Probe {
    let mut status: Option<&StatusView> = None;
    let mut live = Vec::new();
    for (node, view) in nodes.iter().enumerate() {
        if knowledge.hostile.contains(&(node as u32)) {
            continue;
        }
        match view {
            NodeView::Down => {}
            NodeView::Paused => return Probe::Apart,
            // A node still rejoining has not synced with every peer: the
            // same state now is not yet the end of the run.
            NodeView::Up(_)
                if knowledge.rejoining.contains(&(node as u32)) || knowledge.rotted.contains(&(node as u32)) =>
            {
                return Probe::Apart;
            }
            NodeView::Up(view) => {
                if status.is_some_and(|seen| seen != view) {
                    return Probe::Apart;
                }
                status = Some(view);
                live.push(node as u32);
            }
        }
    }
    let (Some(status), Some(frontier)) = (status, agreed) else {
        // No live node: nothing to converge (the run reports that it tested nothing).
        return if live.is_empty() { Probe::Converged } else { Probe::Apart };
    };
    // Every lane a live node acknowledged must be there; until then, wait.
    for node in &live {
        if let Some((seq, _)) = knowledge.last_acked(*node)
            && frontier.get(&NodeId(*node)).is_none_or(|(held, _)| *held < seq)
        {
            return Probe::Apart;
        }
    }
    let replayed = knowledge.model.closure(Knowledge::tips(frontier)).and_then(|held| knowledge.model.replay(&held));
    match replayed {
        Ok(model) if model.chain_hash == status.chain_hash && model.state_digest == status.state_digest => {
            Probe::Converged
        }
        Ok(model) => Probe::Wrong(format!(
            "live nodes agree on chain {} digest {} at lane index {}, but the model's replay of the lanes they hold gives chain {} digest {} at {}",
            status.chain_hash.short(),
            status.state_digest.short(),
            status.lane_index,
            model.chain_hash.short(),
            model.state_digest.short(),
            model.lane_index
        )),
        Err(error) => Probe::Wrong(format!("live nodes agree on a set of lanes the model refuses: {error}")),
    }
}
