//! Always: a healthy disk takes every write, and a node that may author
//! takes every write of the workload. A write or sync that fails while the
//! disk has not crashed is the engine misusing its store (a record over the
//! size limit, a poisoned log it did not reload); a workload write refused
//! is the engine refusing what it must take.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;

/// The write checker.
#[derive(Debug)]
pub struct Write;

impl Checker for Write {
    fn name(&self) -> &'static str {
        "write"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, _: &Knowledge, found: &mut Found) {
        match observation {
            Observation::StoreFailed { node, error } => {
                found.violation(Some(*node), format!("n{node}'s log refused a write on a healthy disk: {error}"));
            }
            Observation::WriteRefused { node, error } => {
                found.violation(Some(*node), format!("n{node} refused a write of the workload: {error}"));
            }
            _ => {}
        }
    }
}
