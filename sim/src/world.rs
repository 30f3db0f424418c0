//! The world of one run: everything that lives outside the nodes and
//! survives their crashes: disks, the network model, the trace, the
//! checkers and metrics, and a handle on each live node for the simulator
//! (never for the checkers, which see only observations).
//!
//! Invariant: all of it is created from the run's seed and touched only from
//! madsim tasks of that run's single-threaded runtime, in the order madsim's
//! seeded scheduler picks, so a seed fixes everything in it.

use crate::checkers::Checkers;
use crate::network::Network;
use crate::node_state::NodeCore;
use crate::observation::Observation;
use crate::spec::RunSpec;
use crate::storage::{CrashEffect, RecordPool, SimDisk};
use crate::trace::{Event, Trace};
use scx_engine::protocol::SessionMetrics;
use std::sync::{Arc, Mutex, MutexGuard};

pub use crate::checkers::Violation;

/// Locks a world mutex. Every task of a run shares one OS thread, so a lock
/// is never contended; poisoning means a panic already ended the run.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("a run's tasks share one thread")
}

/// Simulated nanoseconds since the run started.
pub fn now_ns() -> u64 {
    madsim::time::TimeHandle::current().elapsed().as_nanos() as u64
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
    /// Nodes whose outgoing datagrams are being rewritten (a hostile fault).
    pub hostile: Mutex<Vec<Option<crate::hostile::Hostile>>>,
    /// Nodes replaced by an empty disk that have not rejoined yet.
    pub rejoining: Mutex<Vec<bool>>,
    /// Nodes whose replica opened rejoining (a replacement, or rot its
    /// recovery found) and has not finished.
    pub awaiting_rejoin: Mutex<Vec<bool>>,
    /// Each node's clock offset in nanoseconds.
    pub skew_ns: Mutex<Vec<i64>>,
    /// The network model.
    pub network: Mutex<Network>,
    /// The trace.
    pub trace: Mutex<Trace>,
    /// The checkers, fed every observation.
    pub checkers: Mutex<Checkers>,
    /// Counters.
    pub metrics: Mutex<RunMetrics>,
    /// Lane-batch bytes: sent, and found needed by their receivers. The
    /// run's end splits the metrics' lane kinds of bytes from them.
    pub lane_bytes: Mutex<LaneBytes>,
    /// Lane bodies shared by every node's replica (lanes are immutable and
    /// content-addressed, so a run holds each once, not once per node).
    pub lanes: scx_engine::LanePool<scx_engine::WorldOp>,
}

/// Lane-batch bytes over a run, as sessions report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LaneBytes {
    /// Sent (`SessionMetrics::bytes_sent_lanes`).
    pub sent: u64,
    /// The share receivers lacked (`SessionMetrics::bytes_received_lanes_needed`).
    pub needed: u64,
}

impl World {
    /// A world for `spec`; `keep_trace` keeps events for printing.
    pub fn new(spec: RunSpec, keep_trace: bool) -> Arc<Self> {
        let nodes = spec.nodes as usize;
        // One pool for the run: every disk holding a lane holds the same bytes.
        let records = RecordPool::default();
        Arc::new(Self {
            disks: (0..spec.nodes).map(|node| SimDisk::sharing(node, &records)).collect(),
            madsim_nodes: Mutex::new(Vec::new()),
            cores: Mutex::new(vec![None; nodes]),
            life: Mutex::new(vec![Life::Up; nodes]),
            boots: Mutex::new(vec![0; nodes]),
            skew_ns: Mutex::new(vec![0; nodes]),
            rejoining: Mutex::new(vec![false; nodes]),
            awaiting_rejoin: Mutex::new(vec![false; nodes]),
            hostile: Mutex::new((0..nodes).map(|_| None).collect()),
            network: Mutex::new(Network::new(&spec)),
            trace: Mutex::new(Trace::new(keep_trace)),
            checkers: Mutex::new(Checkers::new(&spec)),
            metrics: Mutex::new(RunMetrics::default()),
            lane_bytes: Mutex::new(LaneBytes::default()),
            lanes: scx_engine::LanePool::new(),
            spec,
        })
    }

    /// Adds a session's bytes (sent, missing, and what the sent ones
    /// carried) to the run's counters; `finish` splits the lane bytes.
    pub fn count_bytes(&self, session: &SessionMetrics) {
        let mut metrics = lock(&self.metrics);
        metrics.bytes_sent += session.bytes_sent;
        metrics.bytes_missing += session.bytes_missing;
        metrics.bytes_sent_handshake += session.bytes_sent_handshake;
        metrics.bytes_sent_summary += session.bytes_sent_summary;
        metrics.bytes_sent_other += session.bytes_sent_other;
        drop(metrics);
        let mut lane_bytes = lock(&self.lane_bytes);
        lane_bytes.sent += session.bytes_sent_lanes;
        lane_bytes.needed += session.bytes_received_lanes_needed;
    }

    /// Records an event now.
    pub fn record(&self, event: Event) {
        lock(&self.trace).record(now_ns(), event);
    }

    /// Feeds an observation to the checkers now; a violation it reveals is
    /// recorded in the trace.
    pub fn observe(&self, observation: Observation) {
        if let Observation::Warning { warning, peer, .. } = &observation {
            let mut metrics = lock(&self.metrics);
            if peer.is_some_and(|peer| lock(&self.hostile)[peer as usize].is_some()) {
                metrics.hostile_inputs_rejected += 1;
            } else if !matches!(warning, crate::observation::EngineWarning::ForkSuspected { .. }) {
                metrics.corrupt_inputs_rejected += 1;
            }
        }
        if let Observation::ForkEvidence { .. } = &observation {
            lock(&self.metrics).forks += 1;
        }
        let found = lock(&self.checkers).observe(now_ns(), &observation);
        for violation in found {
            tracing::info!(t_ms = now_ns() / 1_000_000, checker = violation.checker, node = ?violation.node, "{}", violation.message);
            self.record(Event::Violation { checker: violation.checker, node: violation.node });
        }
    }

    /// Takes `node` down after its disk crashed: its tasks die and its
    /// sockets close. Called by the node itself when its disk dies
    /// mid-operation, or by the nemesis when the crash lands between steps.
    pub fn take_down(&self, node: u32, effect: CrashEffect) {
        if self.life(node) == Life::Down {
            return;
        }
        let handle = madsim::runtime::Handle::current();
        let id = self.madsim_node(node);
        if self.life(node) == Life::Paused {
            handle.resume(id);
        }
        // Kill before restart, always: a restart without a kill keeps the old sockets.
        handle.kill(id);
        lock(&self.life)[node as usize] = Life::Down;
        lock(&self.cores)[node as usize] = None;
        let mut metrics = lock(&self.metrics);
        metrics.crashes += 1;
        metrics.unsynced_bytes_lost += effect.unsynced_bytes_lost;
        metrics.crashes_mid_operation += u64::from(effect.mid_operation);
        metrics.torn_writes += u64::from(effect.torn_bytes > 0);
        drop(metrics);
        tracing::info!(
            t_ms = now_ns() / 1_000_000,
            node,
            unsynced_bytes_lost = effect.unsynced_bytes_lost,
            torn_bytes = effect.torn_bytes,
            mid_operation = effect.mid_operation,
            "crashed"
        );
        self.record(Event::Crash { node, unsynced_bytes: effect.unsynced_bytes_lost, torn: effect.torn_bytes > 0 });
        self.observe(Observation::Crashed {
            node,
            unsynced_bytes_lost: effect.unsynced_bytes_lost,
            torn_bytes: effect.torn_bytes,
        });
    }

    /// `node`'s disk was replaced by an empty one: it will rejoin. The
    /// checkers learn which of its acknowledged lanes some other node still
    /// holds (those must come back; the rest died with the disk).
    pub fn replaced(&self, node: u32) {
        lock(&self.rejoining)[node as usize] = true;
        self.observe(Observation::Replaced { node, held_elsewhere: self.held_elsewhere(node) });
    }

    /// `node`'s disk rotted before its next boot: lanes it acknowledged that
    /// no other node holds may be gone for good.
    pub fn rotted(&self, node: u32) {
        self.observe(Observation::Rotted { node, held_elsewhere: self.held_elsewhere(node) });
    }

    /// What every other node that is up holds, as frontiers.
    fn held_elsewhere(&self, node: u32) -> Vec<scx_model::Frontier> {
        (0..self.spec.nodes)
            .filter(|other| *other != node)
            .filter_map(|other| self.core(other))
            .map(|core| lock(&core).node.replica().author_tips())
            .collect()
    }

    /// `node` booted with a replica that refuses to author until it rejoined.
    pub fn awaits_rejoin(&self, node: u32) {
        lock(&self.awaiting_rejoin)[node as usize] = true;
    }

    /// `node` finished rejoining after its replacement or its rotten disk.
    pub fn rejoined(&self, node: u32) {
        if std::mem::replace(&mut lock(&self.awaiting_rejoin)[node as usize], false) {
            lock(&self.rejoining)[node as usize] = false;
            lock(&self.metrics).rejoins += 1;
            self.observe(Observation::Rejoined { node });
        }
    }

    /// Whether a checker found a violation.
    pub fn violated(&self) -> bool {
        !lock(&self.checkers).violations().is_empty()
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
