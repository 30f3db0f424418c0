//! Runs one seed: builds the madsim runtime and the world, starts the
//! nodes and the nemesis, samples the cluster while it runs, checks
//! convergence after the last heal and the safety checkers at the end.
//!
//! Invariant: a run depends only on its `RunSpec` (and so on its seed). It
//! runs on a fresh OS thread, because madsim seeds std's hash keys per
//! thread and a reused thread would carry state from the previous seed.

use crate::checkers::{self, convergence::Probe};
use crate::nemesis;
use crate::node::{self, NodeCore};
use crate::rng::derive_seed;
use crate::spec::RunSpec;
use crate::trace::Stamped;
use crate::world::{Life, RunMetrics, Violation, World, lock, now_ns};
use madsim::runtime::{Handle, Runtime};
use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

/// Stack of a seed's thread: madsim runs every task of the run on it. Large
/// enough for deep engine calls, small enough that mapping it per seed is cheap.
const SEED_THREAD_STACK_BYTES: usize = 16 << 20;

/// What to keep from a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Keep the event list (for `scx replay`, `--trace` and reports).
    pub keep_events: bool,
}

/// One node at one sample time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSample {
    /// Up, down or paused.
    pub life: Life,
    /// Some link to or from it is cut.
    pub partitioned: bool,
    /// Its lane index (0 when down).
    pub lane_index: u64,
    /// Short chain hash (empty when down).
    pub chain: String,
}

/// The cluster at one sample time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Simulated ns.
    pub at_ns: u64,
    /// Per node.
    pub nodes: Vec<NodeSample>,
    /// Cumulative datagram bytes.
    pub bytes_sent: u64,
    /// Cumulative bytes of lanes receivers lacked.
    pub bytes_missing: u64,
}

/// Everything a run found.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The plan that ran.
    pub spec: RunSpec,
    /// Violations (empty: every invariant held).
    pub violations: Vec<Violation>,
    /// Hash of the event trace.
    pub trace_hash: String,
    /// Events recorded.
    pub events_total: u64,
    /// When all live nodes converged (simulated ns), if they did.
    pub converged_at_ns: Option<u64>,
    /// The last heal (simulated ns): convergence is measured from here.
    pub quiescent_at_ns: u64,
    /// When the run stopped (simulated ns).
    pub ended_at_ns: u64,
    /// Counters.
    pub metrics: RunMetrics,
    /// The "sometimes" properties reached.
    pub coverage: BTreeMap<&'static str, u64>,
    /// Cluster samples over time.
    pub samples: Vec<Sample>,
    /// Kept events.
    pub events: Vec<Stamped>,
    /// Final short chain hash per live node.
    pub final_chains: Vec<(u32, String)>,
}

impl RunOutcome {
    /// Every invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// Milliseconds from the last heal to convergence.
    pub fn converged_after_ms(&self) -> Option<u64> {
        self.converged_at_ns.map(|at| at.saturating_sub(self.quiescent_at_ns) / 1_000_000)
    }
}

/// Runs `spec` on a fresh OS thread and returns what it found. A panic
/// inside the simulation (an engine assertion) is reported as a violation.
pub fn run(spec: &RunSpec, options: RunOptions) -> RunOutcome {
    std::thread::scope(|scope| {
        // Outside any simulation: the per-seed thread madsim needs (see module docs).
        let worker = std::thread::Builder::new()
            .name(format!("scx-seed-{}", spec.seed))
            .stack_size(SEED_THREAD_STACK_BYTES)
            .spawn_scoped(scope, || run_here(spec, options));
        match worker.map(|handle| handle.join()) {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => panicked(spec, &panic_message(panic.as_ref())),
            Err(error) => panicked(spec, &format!("could not start the seed's thread: {error}")),
        }
    })
}

fn run_here(spec: &RunSpec, options: RunOptions) -> RunOutcome {
    let mut config = madsim::Config::default();
    // madsim moves bytes; the network model decides loss and latency.
    config.net.packet_loss_rate = 0.0;
    config.net.send_latency = Duration::from_nanos(1)..Duration::from_nanos(2);
    let runtime = Runtime::with_seed_and_config(derive_seed(spec.seed, "madsim", 0), config);
    let world = World::new(spec.clone(), options.keep_events);
    let (samples, converged_at_ns, ended_at_ns) = runtime.block_on(supervise(world.clone()));
    drop(runtime);
    let metrics = *lock(&world.metrics);
    let mut trace = lock(&world.trace);
    RunOutcome {
        spec: spec.clone(),
        violations: lock(&world.violations).clone(),
        trace_hash: trace.hash(),
        events_total: trace.total(),
        converged_at_ns,
        quiescent_at_ns: spec.quiescent_at().as_nanos() as u64,
        ended_at_ns,
        coverage: checkers::coverage::reached(&metrics),
        metrics,
        samples,
        events: trace.take_events(),
        final_chains: Vec::new(),
    }
}

async fn supervise(world: Arc<World>) -> (Vec<Sample>, Option<u64>, u64) {
    let handle = Handle::current();
    let mut nodes = Vec::new();
    for index in 0..world.spec.nodes {
        let node_world = world.clone();
        let node = handle
            .create_node()
            .name(format!("n{index}"))
            .ip(node::address(index).ip())
            .init(move || node::main(node_world.clone(), index))
            .build();
        nodes.push(node.id());
    }
    madsim::task::spawn(nemesis::run(world.clone(), nodes.clone()));
    let quiescent = world.spec.quiescent_at().as_nanos() as u64;
    let end = world.spec.run_time().as_nanos() as u64;
    let mut samples = Vec::new();
    let mut converged_at = None;
    loop {
        madsim::time::sleep(world.spec.sample_interval).await;
        let now = now_ns();
        samples.push(sample(&world, now));
        if !lock(&world.violations).is_empty() {
            break;
        }
        if now >= quiescent {
            match checkers::convergence::probe(&world) {
                Probe::Converged => {
                    converged_at = Some(now);
                    break;
                }
                Probe::WrongState(message) => {
                    world.violate("convergence", "eventually", None, message);
                    break;
                }
                Probe::Apart => {}
            }
        }
        if now >= end {
            let message = format!(
                "live nodes did not converge within the settle bound of {:?} after the last heal at {:?}",
                world.spec.settle,
                Duration::from_nanos(quiescent)
            );
            world.violate("convergence", "eventually", None, message);
            break;
        }
    }
    final_checks(&world);
    let ended_at = now_ns();
    // Kill every node and let the executor drop their tasks: a pending
    // task holds the world, and madsim's network holds the task's waker, so
    // without this the whole run would leak when the runtime is dropped.
    for node in &nodes {
        handle.kill(*node);
    }
    lock(&world.cores).iter_mut().for_each(|core| *core = None);
    madsim::time::sleep(Duration::from_nanos(1)).await;
    (samples, converged_at, ended_at)
}

fn sample(world: &World, at_ns: u64) -> Sample {
    let network = lock(&world.network);
    let partitioned: Vec<bool> = (0..world.spec.nodes).map(|node| network.is_partitioned(node)).collect();
    drop(network);
    let nodes = (0..world.spec.nodes)
        .map(|node| {
            let life = world.life(node);
            let (lane_index, chain) = match world.core(node) {
                Some(core) if life != Life::Down => {
                    let (lane_index, chain) = lock(&core).durable.replica().tip();
                    (lane_index, chain.short())
                }
                _ => (0, String::new()),
            };
            NodeSample { life, partitioned: partitioned[node as usize], lane_index, chain }
        })
        .collect();
    let metrics = lock(&world.metrics);
    Sample { at_ns, nodes, bytes_sent: metrics.bytes_sent, bytes_missing: metrics.bytes_missing }
}

/// The safety checkers over every live node at the end of the run.
fn final_checks(world: &World) {
    let cores: Vec<(u32, Arc<std::sync::Mutex<NodeCore>>)> =
        (0..world.spec.nodes).filter_map(|node| world.core(node).map(|core| (node, core))).collect();
    let mut guards: Vec<(u32, MutexGuard<'_, NodeCore>)> =
        cores.iter().map(|(node, core)| (*node, lock(core))).collect();
    let mut rollbacks = 0;
    let mut conflicts = None;
    for (node, core) in &mut guards {
        let replica = core.durable.replica();
        checkers::durability::check_node(world, *node, replica);
        checkers::replay::check_node(world, *node, replica);
        let metrics = replica.metrics();
        rollbacks += metrics.rollbacks;
        conflicts.get_or_insert(metrics.conflicts);
    }
    let mut replicas: Vec<(u32, &mut scx_engine::Replica<scx_engine::World>)> =
        guards.iter_mut().map(|(node, core)| (*node, core.durable.replica())).collect();
    checkers::snapshots::check(world, &mut replicas);
    let mut metrics = lock(&world.metrics);
    metrics.rollbacks = rollbacks;
    metrics.conflicts = conflicts.unwrap_or(0);
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|message| (*message).to_owned()))
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

fn panicked(spec: &RunSpec, message: &str) -> RunOutcome {
    RunOutcome {
        spec: spec.clone(),
        violations: vec![Violation {
            checker: "panic",
            kind: "always",
            message: message.to_owned(),
            at_ns: 0,
            node: None,
        }],
        trace_hash: String::new(),
        events_total: 0,
        converged_at_ns: None,
        quiescent_at_ns: spec.quiescent_at().as_nanos() as u64,
        ended_at_ns: 0,
        metrics: RunMetrics::default(),
        coverage: BTreeMap::new(),
        samples: Vec::new(),
        events: Vec::new(),
        final_chains: Vec::new(),
    }
}
