//! Always: honest authors never fork, and every fork an honest engine is
//! shown is surfaced. Fork evidence against an honest author counts only
//! when both lanes were really authored by a node: a corrupted datagram can
//! decode to a lane that collides with a real one, which is refused, not a
//! fork. An honest node forks its own chain when it loses an acknowledged
//! lane, or sends one before it is durable, and reuses its seq after a
//! crash. A hostile node forks its chain on purpose (it puts a forged twin
//! next to one of its lanes); a receiver that applied that batch while
//! holding another lane at the twin's seq owes fork evidence for the twin
//! before the run ends: dropping it silently hides the equivocation.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;
use scx_engine::{Dot, LaneId};
use std::collections::BTreeMap;

/// The forks checker.
#[derive(Debug, Default)]
pub struct Forks {
    /// Forged twins each node applied while holding another lane at their
    /// seq and has not surfaced yet, with when they were applied.
    owed: BTreeMap<(u32, LaneId), (Dot, LaneId, u32, u64)>,
}

impl Checker for Forks {
    fn name(&self) -> &'static str {
        "forks"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        match observation {
            Observation::ForkEvidence { node, dot, kept, other } => {
                self.owed.remove(&(*node, *other));
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
            Observation::ForgeryApplied { node, from, dot, forged, held: Some(held) } if held != forged => {
                self.owed.insert((*node, *forged), (*dot, *held, *from, at_ns));
            }
            // A node that crashed before reporting what it applied owes nothing.
            Observation::Crashed { node, .. } | Observation::Replaced { node, .. } => {
                self.owed.retain(|(owner, _), _| owner != node);
            }
            Observation::Final { node, .. } => {
                let unsurfaced: Vec<_> = self
                    .owed
                    .range((*node, LaneId([0; 32]))..)
                    .take_while(|(key, _)| key.0 == *node)
                    .map(|(key, value)| (*key, *value))
                    .collect();
                for ((_, forged), (dot, held, from, applied_at)) in unsurfaced {
                    self.owed.remove(&(*node, forged));
                    let message = format!(
                        "n{node} applied a batch from n{from} holding two lanes at ({}, seq {}) at {} ms: it kept {} and dropped {} without fork evidence",
                        dot.author.0,
                        dot.seq,
                        applied_at / 1_000_000,
                        held.short(),
                        forged.short()
                    );
                    found.violation(Some(*node), message);
                }
            }
            _ => {}
        }
    }
}
