//! Always: with honest nodes and an honest network, the engine raises no
//! warning. A suspected fork, a refused lane or snapshot, or an undecodable
//! datagram can only come from corruption or a bug; where the network
//! corrupts nothing, each one is a bug the engine covered up (a summary
//! that lies heals itself through fork evidence; nothing else notices).

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::{EngineWarning, Observation};

/// The warnings checker.
#[derive(Debug)]
pub struct Warnings;

impl Checker for Warnings {
    fn name(&self) -> &'static str {
        "warnings"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        let Observation::Warning { node, peer, warning } = observation else { return };
        if knowledge.corrupting_network || knowledge.hostile.contains(node) {
            return;
        }
        // What a hostile peer sends is refused by design; a warning with no
        // peer (a pending lane released but invalid) may be its lane too.
        match peer {
            Some(peer) if knowledge.hostile.contains(peer) => return,
            None if !knowledge.hostile.is_empty() => return,
            _ => {}
        }
        let from = peer.map_or_else(String::new, |peer| format!(" from n{peer}"));
        let what = match warning {
            EngineWarning::BadMessage(error) => format!("could not decode a datagram{from}: {error}"),
            EngineWarning::ForkSuspected { author, seq } => {
                format!("suspected a fork of n{author} at seq {seq}{from}")
            }
            EngineWarning::LaneRejected(error) => format!("refused a lane{from}: {error}"),
            EngineWarning::SnapshotRejected(error) => format!("refused a snapshot{from}: {error}"),
        };
        found.violation(Some(*node), format!("n{node} {what}, with honest nodes and no corruption"));
    }
}
