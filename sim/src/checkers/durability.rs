//! Always: no acknowledged lane is lost. Checked when a node boots after a
//! crash and at the end of the run: every lane the node acknowledged must
//! be in what it holds (on its own chain, up to its tip), with the same id.
//! When a node's disk is replaced, the lanes no other node held died with
//! it; the rest must come back by the end of the run. When a node's disk
//! rotted, the same holds, and until it rejoined its boots may lack
//! acknowledged lanes only if the engine noticed and is rejoining (else it
//! would author again at seqs it already used). A replaced or rotten node
//! that is up at the end must have rejoined.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;
use scx_engine::NodeId;
use scx_model::Frontier;

/// The durability checker.
#[derive(Debug)]
pub struct Durability;

impl Checker for Durability {
    fn name(&self) -> &'static str {
        "durability"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        let (node, frontier, when) = match observation {
            // A replacement boots empty by design; what it must get back is checked at the end.
            Observation::Booted { node, .. } if knowledge.rejoining.contains(node) => return,
            Observation::Booted { node, rejoining: true, .. } if knowledge.rotted.contains(node) => return,
            Observation::Booted { node, frontier, .. } if knowledge.rotted.contains(node) => {
                (*node, frontier, "after recovering from a rotten log without rejoining")
            }
            Observation::Final { node, .. }
                if knowledge.rotted.contains(node) || knowledge.rejoining.contains(node) =>
            {
                found.violation(
                    Some(*node),
                    format!("n{node} never finished rejoining: it did not sync with every peer"),
                );
                return;
            }
            Observation::Booted { node, frontier, boot, .. } if *boot > 1 => (*node, frontier, "after recovery"),
            Observation::Final { node, frontier, .. } => (*node, frontier, "at the end of the run"),
            _ => return,
        };
        if let Some(message) = missing_acked(knowledge, node, frontier) {
            found.violation(Some(node), format!("n{node} {message} {when}"));
        }
    }
}

/// Why `frontier` does not hold every lane `node` acknowledged, if it does not.
fn missing_acked(knowledge: &Knowledge, node: u32, frontier: &Frontier) -> Option<String> {
    let (last_seq, last_id) = knowledge.last_acked(node)?;
    let Some((tip_seq, tip)) = frontier.get(&NodeId(node)) else {
        return Some(format!("acknowledged {last_seq} lanes but holds none of its own"));
    };
    if *tip_seq < last_seq {
        return Some(format!(
            "acknowledged lane {} (seq {last_seq}) but holds its own chain only up to seq {tip_seq}",
            last_id.short()
        ));
    }
    let chain = match knowledge.model.closure([*tip]) {
        Ok(chain) => chain,
        Err(error) => return Some(format!("holds a chain the model cannot follow: {error}")),
    };
    let acked = knowledge.acked.get(&node).into_iter().flatten();
    acked
        .filter(|(_, id)| !chain.contains(id))
        .map(|(seq, id)| format!("acknowledged lane {} (seq {seq}) but holds a different lane at that seq", id.short()))
        .next()
}
