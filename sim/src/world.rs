//! The world of one run: everything that lives outside the nodes and
//! survives their crashes: disks, the network model, the oracle, the trace,
//! violations and metrics, and a handle on each live node for the checkers.
//!
//! Invariant: all of it is created from the run's seed and touched only from
//! madsim tasks of that run's single-threaded runtime, in the order madsim's
//! seeded scheduler picks, so a seed fixes everything in it.

use crate::network::Network;
use crate::node::NodeCore;
use crate::oracle::Oracle;
use crate::spec::RunSpec;
use crate::storage::SimDisk;
use crate::trace::{Event, Trace};
use scx_engine::LaneId;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// Locks a world mutex. Every task of a run shares one OS thread, so a lock
/// is never contended; poisoning means a panic already ended the run.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("a run's tasks share one thread")
}

/// Simulated nanoseconds since the run started.
pub fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
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

/// Whether a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    /// Running.
    Up,
    /// Crashed (until restarted).
    Down,
    /// Frozen.
    Paused,
}

/// Counters over the whole run: the report model's metrics, so a record
/// carries them as they are.
pub type RunMetrics = scx_reports::model::Metrics;

/// One run's shared state.
#[derive(Debug)]
pub struct World {
    /// The plan.
    pub spec: RunSpec,
    /// Each node's disk.
    pub disks: Vec<SimDisk>,
    /// Each node's id in madsim (set when the nodes are created).
    pub madsim_nodes: Mutex<Vec<madsim::task::NodeId>>,
    /// Each live node's core (None while down).
    pub cores: Mutex<Vec<Option<Arc<Mutex<NodeCore>>>>>,
    /// Each node's life.
    pub life: Mutex<Vec<Life>>,
    /// How many times each node booted.
    pub boots: Mutex<Vec<u32>>,
    /// Each node's clock offset in nanoseconds.
    pub skew_ns: Mutex<Vec<i64>>,
    /// The network model.
    pub network: Mutex<Network>,
    /// The trace.
    pub trace: Mutex<Trace>,
    /// Acknowledged writes.
    pub oracle: Mutex<Oracle>,
    /// Every lane any node authored, acknowledged or not (fork evidence is
    /// real only between authored lanes; corrupted bytes can look like forks).
    pub authored: Mutex<BTreeSet<LaneId>>,
    /// Violations found.
    pub violations: Mutex<Vec<Violation>>,
    /// Counters.
    pub metrics: Mutex<RunMetrics>,
}

impl World {
    /// A world for `spec`; `keep_trace` keeps events for printing.
    pub fn new(spec: RunSpec, keep_trace: bool) -> Arc<Self> {
        let nodes = spec.nodes as usize;
        Arc::new(Self {
            disks: (0..spec.nodes).map(SimDisk::new).collect(),
            madsim_nodes: Mutex::new(Vec::new()),
            cores: Mutex::new(vec![None; nodes]),
            life: Mutex::new(vec![Life::Up; nodes]),
            boots: Mutex::new(vec![0; nodes]),
            skew_ns: Mutex::new(vec![0; nodes]),
            network: Mutex::new(Network::new(&spec)),
            trace: Mutex::new(Trace::new(keep_trace)),
            oracle: Mutex::new(Oracle::default()),
            authored: Mutex::new(BTreeSet::new()),
            violations: Mutex::new(Vec::new()),
            metrics: Mutex::new(RunMetrics::default()),
            spec,
        })
    }

    /// Records an event now.
    pub fn record(&self, event: Event) {
        lock(&self.trace).record(now_ns(), event);
    }

    /// Reports a violation now (once per checker and node).
    pub fn violate(&self, checker: &'static str, kind: &'static str, node: Option<u32>, message: String) {
        let mut violations = lock(&self.violations);
        if violations.iter().any(|v| v.checker == checker && v.node == node) {
            return;
        }
        violations.push(Violation { checker, kind, message, at_ns: now_ns(), node });
        drop(violations);
        self.record(Event::Violation { checker, node });
    }

    /// The node's core, if it is up.
    pub fn core(&self, node: u32) -> Option<Arc<Mutex<NodeCore>>> {
        lock(&self.cores)[node as usize].clone()
    }

    /// The node's id in madsim.
    pub fn madsim_node(&self, node: u32) -> madsim::task::NodeId {
        lock(&self.madsim_nodes)[node as usize]
    }

    /// The node's life.
    pub fn life(&self, node: u32) -> Life {
        lock(&self.life)[node as usize]
    }

    /// Nodes that are not down.
    pub fn live_nodes(&self) -> Vec<u32> {
        lock(&self.life).iter().enumerate().filter(|(_, life)| **life != Life::Down).map(|(i, _)| i as u32).collect()
    }

    /// The node's clock offset.
    pub fn skew(&self, node: u32) -> i64 {
        lock(&self.skew_ns)[node as usize]
    }
}
