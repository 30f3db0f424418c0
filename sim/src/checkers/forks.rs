//! Always: honest authors never fork. Fork evidence counts only when both
//! lanes were really authored by a node: a corrupted datagram can decode to
//! a lane that collides with a real one, which is refused, not a fork. An
//! honest node forks its own chain when it loses an acknowledged lane, or
//! sends one before it is durable, and reuses its seq after a crash.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;

/// The forks checker.
#[derive(Debug)]
pub struct Forks;

impl Checker for Forks {
    fn name(&self) -> &'static str {
        "forks"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        let Observation::ForkEvidence { node, dot, kept, other } = observation else { return };
        let authored = |id| knowledge.model.lane(id).is_some();
        if !(authored(kept) && authored(other)) || knowledge.hostile.contains(&dot.author.0) {
            return;
        }
        let message = format!(
            "n{} signed two lanes with seq {}: {} and {} (seen at n{node})",
            dot.author.0,
            dot.seq,
            kept.short(),
            other.short()
        );
        found.violation(Some(dot.author.0), message);
    }
}
