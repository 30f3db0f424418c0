//! Always: every read is the model's value over exactly what the node held
//! when it read (DESIGN.md §7, "reads are evidence"). At any moment a
//! node's state is the replay of a causally closed set of lanes; the read's
//! frontier names that set, and the model folds the key's lanes in it. Also:
//! - read-your-writes: a node sees every write it acknowledged, across
//!   crashes and restarts too;
//! - monotonic reads: what a node holds never shrinks (its writes are
//!   durable before they are visible, and so is what it receives);
//! - causal visibility: the frontier names a closed set of valid lanes, or
//!   the model refuses it.
//!
//! A violation names the node, the read, the expected and observed values,
//! and the lanes on that key that explain the difference.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;
use scx_engine::NodeId;
use scx_model::{Frontier, ModelValue};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Lanes listed to explain a wrong read.
const EXPLAINING_LANES: usize = 8;

/// The reads checker: the last frontier each node read at.
#[derive(Debug, Default)]
pub struct Reads {
    last: BTreeMap<u32, Frontier>,
}

impl Checker for Reads {
    fn name(&self) -> &'static str {
        "reads"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        if let Observation::Replaced { node, .. } | Observation::Rotted { node, .. } = observation {
            // A replacement starts from nothing, and a rotten disk may have
            // taken lanes no other node held: its reads start over (what it
            // acknowledged and others held is still checked, as read-your-writes).
            self.last.remove(node);
            return;
        }
        let Observation::Read { node, key, value, frontier } = observation else { return };
        let problem = check_value(knowledge, *key, value, frontier)
            .or_else(|| read_your_writes(knowledge, *node, frontier))
            .or_else(|| self.monotonic(*node, frontier));
        if let Some(problem) = problem {
            found.violation(Some(*node), format!("n{node} read key {key}: {problem}"));
        }
        self.last.insert(*node, frontier.clone());
    }
}

impl Reads {
    /// Why `frontier` holds less than the node's previous read, if it does.
    fn monotonic(&self, node: u32, frontier: &Frontier) -> Option<String> {
        let before = self.last.get(&node)?;
        before.iter().find_map(|(author, (seq, _))| {
            let now = frontier.get(author).map_or(0, |(seq, _)| *seq);
            (now < *seq).then(|| {
                format!("monotonic reads broken: it held n{}'s lanes up to seq {seq}, now only up to {now}", author.0)
            })
        })
    }
}

fn check_value(knowledge: &Knowledge, key: u32, observed: &ModelValue, frontier: &Frontier) -> Option<String> {
    let expected = match knowledge.model.read(frontier, key) {
        Ok(expected) => expected,
        Err(error) => return Some(format!("it held a set of lanes the model refuses (causal visibility): {error}")),
    };
    (expected != *observed).then(|| {
        format!(
            "observed {observed} but the model gives {expected} over the lanes it held; {}",
            explain(knowledge, key, frontier)
        )
    })
}

fn read_your_writes(knowledge: &Knowledge, node: u32, frontier: &Frontier) -> Option<String> {
    let (seq, id) = knowledge.last_acked(node)?;
    let held = frontier.get(&NodeId(node)).map_or(0, |(held, _)| *held);
    (held < seq).then(|| {
        format!(
            "read-your-writes broken: it acknowledged lane {} (seq {seq}) but reads only up to seq {held}",
            id.short()
        )
    })
}

/// The lanes of the held set with ops on `key`, in canonical order.
fn explain(knowledge: &Knowledge, key: u32, frontier: &Frontier) -> String {
    let model = &knowledge.model;
    let Ok(held) = model.closure(Knowledge::tips(frontier)) else { return String::new() };
    let Ok(replayed) = model.replay(&held) else { return String::new() };
    let mut lanes = Vec::new();
    for id in &replayed.order {
        let Some(lane) = model.lane(id) else { continue };
        let ops: Vec<String> =
            lane.ops.iter().filter(|op| scx_model::law::op_key(op) == key).map(|op| format!("{op:?}")).collect();
        if !ops.is_empty() {
            lanes.push(format!("{} n{}#{} {}", id.short(), lane.author.0, lane.seq, ops.join(", ")));
        }
    }
    let total = lanes.len();
    let mut out = format!("the {total} lanes on this key, in canonical order: ");
    let _ = write!(out, "{}", lanes.into_iter().take(EXPLAINING_LANES).collect::<Vec<_>>().join("; "));
    if total > EXPLAINING_LANES {
        let _ = write!(out, "; and {} more", total - EXPLAINING_LANES);
    }
    out
}
