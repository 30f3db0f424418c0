//! Always: a node recovers its own log. A log the engine itself wrote and
//! the storage model only crashed (lost or tore unsynced bytes) must always
//! open; refusing it leaves the node down for good.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;

/// The recovery checker.
#[derive(Debug)]
pub struct Recovery;

impl Checker for Recovery {
    fn name(&self) -> &'static str {
        "recovery"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, _: &Knowledge, found: &mut Found) {
        if let Observation::RecoveryFailed { node, error } = observation {
            found.violation(Some(*node), format!("n{node} could not recover its log: {error}"));
        }
    }
}
