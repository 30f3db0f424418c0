//! Always: no two nodes' snapshot chains diverge. A node that receives a
//! snapshot contradicting its own chain (another id at a lane index they
//! both passed, or lanes it holds that the snapshot's prefix does not
//! explain) has met a different history: corruption or a bug.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;

/// The snapshot-chain checker.
#[derive(Debug)]
pub struct SnapshotChain;

impl Checker for SnapshotChain {
    fn name(&self) -> &'static str {
        "snapshot-chain"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        if let Observation::SnapshotChainDiverged { node, peer, error } = observation
            && !knowledge.hostile.contains(peer)
            && !knowledge.hostile.contains(node)
        {
            found.violation(Some(*node), format!("n{node} and n{peer}: {error}"));
        }
    }
}
