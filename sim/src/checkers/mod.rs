//! Invariant checkers, one file per property, named by kind as stateright
//! names them. Each is fed every [`Observation`] as the run goes, so a
//! safety violation is reported at the step where it happens; none of them
//! reaches into a live replica. They judge against the reference model
//! (`scx-model`) kept in [`Knowledge`], never against the engine's own code.
//!
//! | checker | kind | property |
//! | --- | --- | --- |
//! | `convergence` | eventually | after the last heal every live node reaches the same hashes, equal to the model's replay |
//! | `reads` | always | every read equals the model's value over what the node held; read-your-writes, monotonic reads |
//! | `replay` | always | a node's hashes equal the model's replay of what it holds, after recovery and at the end |
//! | `snapshots` | always | snapshots are stable prefixes with the model's hashes, and nodes agree on every snapshot id |
//! | `snapshot-chain` | always | no two nodes' snapshot chains diverge |
//! | `durability` | always | a node's log holds every lane it acknowledged, after every crash |
//! | `forks` | always | no author signs two different lanes with one seq |
//! | `in-sync` | always | a node answers "in sync" only when the hashes really match |
//! | `warnings` | always | with honest nodes and network, the engine raises no warning |
//! | `recovery` | always | a node recovers its log |
//! | `write` | always | a healthy disk takes every write |
//! | `determinism` | always | one seed, one trace (compared across two runs) |
//! | `panic` | always | the engine never panics |
//! | `coverage` | sometimes | the faults actually bit (drops, crash losses, rollbacks...) |
//!
//! Every checker has a test that makes it fail through a real run
//! (`sim/tests/harness/checkers.rs`). [`INVARIANTS`] is this table as data
//! (a test keeps the two in step): campaign manifests carry it, so a report
//! says what a pass means.

/// (checker, kind, property) of every checker, as the table above lists them.
pub const INVARIANTS: [(&str, &str, &str); 14] = [
    (
        "convergence",
        "eventually",
        "after the last heal every live node reaches the same hashes, equal to the model's replay",
    ),
    (
        "reads",
        "always",
        "every read equals the model's value over what the node held; read-your-writes, monotonic reads",
    ),
    ("replay", "always", "a node's hashes equal the model's replay of what it holds, after recovery and at the end"),
    (
        "snapshots",
        "always",
        "snapshots are stable prefixes with the model's hashes, and nodes agree on every snapshot id",
    ),
    ("snapshot-chain", "always", "no two nodes' snapshot chains diverge"),
    ("durability", "always", "a node's log holds every lane it acknowledged, after every crash"),
    ("forks", "always", "no author signs two different lanes with one seq"),
    ("in-sync", "always", "a node answers \"in sync\" only when the hashes really match"),
    ("warnings", "always", "with honest nodes and network, the engine raises no warning"),
    ("recovery", "always", "a node recovers its log"),
    ("write", "always", "a healthy disk takes every write"),
    ("determinism", "always", "one seed, one trace (compared across two runs)"),
    ("panic", "always", "the engine never panics"),
    ("coverage", "sometimes", "the faults actually bit (drops, crash losses, rollbacks...)"),
];

pub mod convergence;
pub mod coverage;
pub mod determinism;
pub mod durability;
pub mod forks;
pub mod in_sync;
pub mod panic;
pub mod reads;
pub mod recovery;
pub mod replay;
pub mod snapshot_chain;
pub mod snapshots;
pub mod warnings;
pub mod write;

use crate::observation::Observation;
use crate::spec::RunSpec;
use scx_engine::{LaneId, NodeId};
use scx_model::{Frontier, Model};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of property a checker checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Safety: must hold at every step.
    Always,
    /// Liveness: must hold within a bound after the faults heal.
    Eventually,
    /// Coverage: must happen at least once.
    Sometimes,
}

impl Kind {
    /// The name used in records.
    pub fn name(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Eventually => "eventually",
            Self::Sometimes => "sometimes",
        }
    }
}

/// A safety or liveness violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name.
    pub checker: &'static str,
    /// "always", "eventually" or "sometimes".
    pub kind: &'static str,
    /// What went wrong, for a human.
    pub message: String,
    /// Simulated time.
    pub at_ns: u64,
    /// The node, if one.
    pub node: Option<u32>,
}

/// What every checker may consult: the model of every lane any node
/// authored, and which of them each node acknowledged. Updated from the
/// observations before the checkers see them.
#[derive(Debug)]
pub struct Knowledge {
    /// Every authored lane (acknowledged or not).
    pub model: Model,
    /// Per node, the lanes it acknowledged, by seq.
    pub acked: BTreeMap<u32, BTreeMap<u64, LaneId>>,
    /// The run has a corrupting network (datagrams or bundles), so the
    /// engine is expected to refuse some inputs.
    pub corrupting_network: bool,
    /// Lanes acknowledged by a replaced node that no other node held when
    /// its disk was lost: they died with the disk (and left `acked`).
    pub lost_with_disk: BTreeSet<LaneId>,
    /// Replaced nodes that have not rejoined yet.
    pub rejoining: BTreeSet<u32>,
    /// Nodes whose disk rotted and that have not rejoined since.
    pub rotted: BTreeSet<u32>,
    /// Nodes a hostile fault names: what they send is not evidence against
    /// the honest nodes, and they are not held to converging.
    pub hostile: BTreeSet<u32>,
}

impl Knowledge {
    fn new(spec: &RunSpec) -> Self {
        Self {
            model: Model::new((0..spec.nodes).map(NodeId)),
            acked: BTreeMap::new(),
            corrupting_network: spec.network.corrupt > 0.0,
            lost_with_disk: BTreeSet::new(),
            rejoining: BTreeSet::new(),
            rotted: BTreeSet::new(),
            hostile: spec.hostile_nodes(),
        }
    }

    fn learn(&mut self, observation: &Observation) {
        match observation {
            Observation::Wrote { node, id, lane } => {
                // An invalid own lane is reported by the checkers that meet it.
                let _ = self.model.add(lane.clone());
                self.acked.entry(*node).or_default().insert(lane.seq, *id);
            }
            Observation::Replaced { node, held_elsewhere } => {
                self.forget_unreplicated(*node, held_elsewhere);
                self.rejoining.insert(*node);
            }
            Observation::Rotted { node, held_elsewhere } => {
                self.forget_unreplicated(*node, held_elsewhere);
                self.rotted.insert(*node);
            }
            Observation::Rejoined { node } => {
                self.rejoining.remove(node);
                self.rotted.remove(node);
            }
            _ => {}
        }
    }

    /// `node`'s disk lost data: the lanes it acknowledged that no frontier
    /// of `held_elsewhere` covers may be gone for good. So may those of a
    /// node still rejoining (or rotted) from an earlier loss: it has not
    /// learnt its lanes back yet, and `node`'s disk may have held their last
    /// copy.
    fn forget_unreplicated(&mut self, node: u32, held_elsewhere: &[Frontier]) {
        let tips = held_elsewhere.iter().flat_map(Knowledge::tips);
        // A frontier the model refuses is reported when its node is checked.
        let held = self.model.closure(tips).unwrap_or_default();
        let mut losers: BTreeSet<u32> = self.rejoining.union(&self.rotted).copied().collect();
        losers.insert(node);
        for loser in losers {
            let Some(acked) = self.acked.get_mut(&loser) else { continue };
            let lost: Vec<(u64, LaneId)> =
                acked.iter().filter(|(_, id)| !held.contains(id)).map(|(seq, id)| (*seq, *id)).collect();
            for (seq, id) in lost {
                acked.remove(&seq);
                self.lost_with_disk.insert(id);
            }
        }
    }

    /// The highest seq `node` acknowledged, with its lane.
    pub fn last_acked(&self, node: u32) -> Option<(u64, LaneId)> {
        self.acked.get(&node)?.last_key_value().map(|(seq, id)| (*seq, *id))
    }

    /// The tips of a frontier.
    pub fn tips(frontier: &Frontier) -> impl Iterator<Item = LaneId> + '_ {
        frontier.values().map(|(_, id)| *id)
    }
}

/// Where a checker reports what it found during one observation.
#[derive(Debug, Default)]
pub struct Found {
    violations: Vec<(Option<u32>, String)>,
}

impl Found {
    /// Reports a violation at `node` (or the whole cluster).
    pub fn violation(&mut self, node: Option<u32>, message: String) {
        self.violations.push((node, message));
    }
}

/// One property, fed every observation.
pub trait Checker: Send + std::fmt::Debug {
    /// Its name in records.
    fn name(&self) -> &'static str;
    /// What kind of property it is.
    fn kind(&self) -> Kind;
    /// Looks at one observation (after `knowledge` learned from it).
    fn observe(&mut self, at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found);
}

/// Every checker of a run, with the knowledge they share.
#[derive(Debug)]
pub struct Checkers {
    knowledge: Knowledge,
    convergence: convergence::Convergence,
    list: Vec<Box<dyn Checker>>,
    violations: Vec<Violation>,
    last_write_at_ns: Option<u64>,
}

impl Checkers {
    /// The checkers for a run of `spec`.
    pub fn new(spec: &RunSpec) -> Self {
        Self {
            knowledge: Knowledge::new(spec),
            convergence: convergence::Convergence::default(),
            list: vec![
                Box::new(reads::Reads::default()),
                Box::new(replay::Replay::default()),
                Box::new(snapshots::Snapshots::default()),
                Box::new(snapshot_chain::SnapshotChain),
                Box::new(durability::Durability),
                Box::new(forks::Forks::default()),
                Box::new(in_sync::InSync::new(spec.nodes)),
                Box::new(warnings::Warnings),
                Box::new(recovery::Recovery),
                Box::new(write::Write),
            ],
            violations: Vec::new(),
            last_write_at_ns: None,
        }
    }

    /// Feeds one observation to every checker; returns the violations it
    /// newly revealed (at most one per checker and node).
    pub fn observe(&mut self, at_ns: u64, observation: &Observation) -> Vec<Violation> {
        self.knowledge.learn(observation);
        if matches!(observation, Observation::Wrote { .. }) {
            self.last_write_at_ns = Some(at_ns);
        }
        let mut new = Vec::new();
        let checkers = std::iter::once(&mut self.convergence as &mut dyn Checker)
            .chain(self.list.iter_mut().map(|checker| &mut **checker as &mut dyn Checker));
        for checker in checkers {
            let mut found = Found::default();
            checker.observe(at_ns, observation, &self.knowledge, &mut found);
            for (node, message) in found.violations {
                let name = checker.name();
                let seen = self.violations.iter().chain(&new).any(|v: &Violation| v.checker == name && v.node == node);
                if !seen {
                    new.push(Violation { checker: name, kind: checker.kind().name(), message, at_ns, node });
                }
            }
        }
        self.violations.extend(new.iter().cloned());
        new
    }

    /// Every violation found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// When the live nodes were first seen converged on the model's state.
    pub fn converged_at_ns(&self) -> Option<u64> {
        self.convergence.converged_at_ns()
    }

    /// When the last write was acknowledged (simulated ns), if any was.
    pub fn last_write_at_ns(&self) -> Option<u64> {
        self.last_write_at_ns
    }

    /// The shared knowledge (the model and the acknowledged lanes).
    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }
}

#[cfg(test)]
mod invariants_tests {
    #[test]
    fn the_invariants_list_is_the_module_table() {
        let table: Vec<(String, String, String)> = include_str!("mod.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("//! | `"))
            .map(|row| {
                let cells: Vec<&str> =
                    row.split(" | ").map(|cell| cell.trim_matches(|c| c == '`' || c == '|' || c == ' ')).collect();
                (cells[0].to_owned(), cells[1].to_owned(), cells[2].to_owned())
            })
            .collect();
        let listed: Vec<(String, String, String)> = (super::INVARIANTS.iter())
            .map(|(name, kind, property)| ((*name).to_owned(), (*kind).to_owned(), (*property).to_owned()))
            .collect();
        assert_eq!(listed, table);
    }
}

#[cfg(test)]
mod knowledge_tests {
    use super::Knowledge;
    use crate::observation::Observation;
    use scx_engine::{Lane, NodeId, WorldOp};
    use scx_model::Frontier;

    fn knowledge(nodes: u32) -> Knowledge {
        let text = format!(
            "name = \"k\"\nduration = \"1s\"\nsettle = \"1s\"\n[cluster]\nnodes = {nodes}\ntopology = \"mesh\"\n"
        );
        let scenario = crate::scenario::Scenario::from_toml(&text, "k.toml").unwrap();
        Knowledge::new(&crate::plan::resolve(&scenario, 0, None))
    }

    /// `author` writes its next lane (seq one past its last acknowledged).
    fn write(knowledge: &mut Knowledge, author: u32, seq: u64) -> (u64, scx_engine::LaneId) {
        let lane = Lane {
            parents: Vec::new(),
            author: NodeId(author),
            seq,
            lamport: 1,
            ops: vec![WorldOp::Add { key: seq as u32, delta: 1 }],
        };
        let id = lane.id();
        knowledge.learn(&Observation::Wrote { node: author, id, lane });
        (seq, id)
    }

    fn frontier(lanes: &[(u32, u64, scx_engine::LaneId)]) -> Frontier {
        lanes.iter().map(|(author, seq, id)| (NodeId(*author), (*seq, *id))).collect()
    }

    #[test]
    fn a_replaced_nodes_lanes_held_elsewhere_stay_acknowledged_the_rest_are_lost() {
        let mut knowledge = knowledge(3);
        let (_, first) = write(&mut knowledge, 0, 1);
        let (_, second) = write(&mut knowledge, 0, 2);
        knowledge.learn(&Observation::Replaced { node: 0, held_elsewhere: vec![frontier(&[(0, 1, first)])] });
        assert_eq!(knowledge.last_acked(0), Some((1, first)));
        assert!(knowledge.lost_with_disk.contains(&second) && !knowledge.lost_with_disk.contains(&first));
        assert!(knowledge.rejoining.contains(&0));
    }

    #[test]
    fn a_rejoining_nodes_lane_dies_with_the_last_other_disk_that_held_it() {
        let mut knowledge = knowledge(3);
        let (_, lane) = write(&mut knowledge, 0, 1);
        // n0 is replaced while n1 holds its lane: it must come back.
        knowledge.learn(&Observation::Replaced {
            node: 0,
            held_elsewhere: vec![frontier(&[(0, 1, lane)]), Frontier::new()],
        });
        assert_eq!(knowledge.last_acked(0), Some((1, lane)));
        // n1's disk rots before n0 synced with it; n0 (empty) and n2 hold nothing.
        knowledge.learn(&Observation::Rotted { node: 1, held_elsewhere: vec![Frontier::new(), Frontier::new()] });
        assert_eq!(knowledge.last_acked(0), None, "the lane's last copy died: n0 cannot learn it back");
        assert!(knowledge.lost_with_disk.contains(&lane));
    }

    #[test]
    fn a_node_that_rejoined_keeps_its_lanes_when_another_disk_is_lost() {
        let mut knowledge = knowledge(3);
        let (_, lane) = write(&mut knowledge, 0, 1);
        knowledge.learn(&Observation::Replaced { node: 0, held_elsewhere: vec![frontier(&[(0, 1, lane)])] });
        knowledge.learn(&Observation::Rejoined { node: 0 });
        // n0 holds its lane again; a later loss elsewhere does not excuse losing it.
        knowledge.learn(&Observation::Replaced { node: 1, held_elsewhere: vec![Frontier::new()] });
        assert_eq!(knowledge.last_acked(0), Some((1, lane)));
        assert!(!knowledge.lost_with_disk.contains(&lane));
    }
}
