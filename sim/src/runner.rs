//! Runs one seed: builds the madsim runtime and the world, starts the
//! nodes and the nemesis, samples the cluster while it runs, checks
//! convergence after the last heal and the safety checkers at the end.
//!
//! Invariant: a run depends only on its `RunSpec` (and so on its seed). It
//! runs on a fresh OS thread, because madsim seeds std's hash keys per
//! thread and a reused thread would carry state from the previous seed.

use crate::checkers;
use crate::nemesis;
use crate::node;
use crate::observation::{NodeView, Observation, StatusView};
use crate::panics;
use crate::rng::derive_seed;
use crate::spec::{FaultKind, RunSpec};
use crate::trace::Stamped;
use crate::world::{Life, RunMetrics, Violation, World, lock, now_ns};
use madsim::runtime::{Handle, Runtime};
use scx_reports::model::Verdict;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Stack of a seed's thread: madsim runs every task of the run on it. Large
/// enough for deep engine calls, small enough that mapping it per seed is cheap.
const SEED_THREAD_STACK_BYTES: usize = 16 << 20;

/// What to keep from a run, and when to give up on it.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep the event list (for `scx replay`, `--trace` and reports).
    pub keep_events: bool,
    /// Set by the campaign when it is interrupted: the run stops at its next
    /// sample and is discarded.
    pub stop: Option<Arc<AtomicBool>>,
    /// Set by the per-seed watchdog: the run stops at its next sample with a
    /// `timeout` verdict.
    pub timed_out: Option<Arc<AtomicBool>>,
}

impl RunOptions {
    fn flag(flag: Option<&Arc<AtomicBool>>) -> bool {
        flag.is_some_and(|flag| flag.load(Ordering::Relaxed))
    }
}

/// How a run ended, besides its violations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It ran to its end (converged, or a checker stopped it).
    Finished,
    /// The campaign was interrupted: the run is incomplete and must be discarded.
    Interrupted,
    /// The per-seed watchdog stopped it.
    TimedOut {
        /// How much wall time it was given.
        limit: Duration,
    },
    /// The harness itself panicked: not a verdict on the engine.
    HarnessPanic {
        /// Where and why.
        message: String,
    },
    /// The run finished but tested nothing.
    NothingTested {
        /// Why not.
        reason: String,
    },
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
    /// When the last write was acknowledged (simulated ns), if any was.
    pub last_write_at_ns: Option<u64>,
    /// How it ended.
    pub ending: Ending,
}

impl RunOutcome {
    /// Every invariant held and the run tested something.
    pub fn passed(&self) -> bool {
        self.verdict() == Verdict::Pass
    }

    /// The run's verdict: a violation fails it whatever else happened.
    pub fn verdict(&self) -> Verdict {
        if !self.violations.is_empty() {
            return Verdict::Fail;
        }
        match self.ending {
            Ending::Finished => Verdict::Pass,
            Ending::Interrupted | Ending::TimedOut { .. } => Verdict::Timeout,
            Ending::HarnessPanic { .. } => Verdict::HarnessError,
            Ending::NothingTested { .. } => Verdict::NothingTested,
        }
    }

    /// Why a run that is not a plain pass or fail ended as it did.
    pub fn note(&self) -> Option<String> {
        match &self.ending {
            Ending::Finished => None,
            Ending::Interrupted => Some("interrupted before it finished".to_owned()),
            Ending::TimedOut { limit } => Some(format!(
                "the seed ran longer than its wall-clock limit of {}; stopped at {} ms of simulated time",
                humantime::format_duration(*limit),
                self.ended_at_ns / 1_000_000
            )),
            Ending::HarnessPanic { message } => {
                Some(format!("the harness panicked (a bug of scx, not of the engine): {message}"))
            }
            Ending::NothingTested { reason } => Some(format!("nothing was tested: {reason}")),
        }
    }

    /// When the last fault healed (simulated ns), if one healed.
    pub fn last_heal_at_ns(&self) -> Option<u64> {
        self.spec.faults.iter().filter_map(|fault| fault.end).max().map(|end| end.as_nanos() as u64)
    }

    /// Milliseconds from the last heal to convergence.
    pub fn converged_after_last_heal_ms(&self) -> Option<u64> {
        Some(self.converged_at_ns?.saturating_sub(self.last_heal_at_ns()?) / 1_000_000)
    }

    /// Milliseconds from the last acknowledged write to convergence.
    pub fn converged_after_last_write_ms(&self) -> Option<u64> {
        Some(self.converged_at_ns?.saturating_sub(self.last_write_at_ns?) / 1_000_000)
    }
}

/// Runs `spec` on a fresh OS thread and returns what it found. A panic of
/// the engine is a `panic` violation; a panic of the harness is a harness
/// error, never blamed on the engine.
pub fn run(spec: &RunSpec, options: RunOptions) -> RunOutcome {
    std::thread::scope(|scope| {
        // Outside any simulation: the per-seed thread madsim needs (see module docs).
        let worker = std::thread::Builder::new()
            .name(format!("scx-seed-{}", spec.seed))
            .stack_size(SEED_THREAD_STACK_BYTES)
            .spawn_scoped(scope, || run_caught(spec, options));
        match worker.map(|handle| handle.join()) {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(panic)) => harness_failed(spec, panics::payload_message(panic.as_ref())),
            Err(error) => harness_failed(spec, format!("could not start the seed's thread: {error}")),
        }
    })
}

/// Runs `spec` like [`run`], under a wall-clock watchdog: after `limit` the
/// run is asked to stop (it does at its next sample) and is recorded as a
/// timeout. A run that does not even stop then (an engine call that never
/// returns) is left behind on its thread, and the campaign goes on.
pub fn run_watched(spec: &RunSpec, mut options: RunOptions, limit: Duration) -> RunOutcome {
    let timed_out = Arc::new(AtomicBool::new(false));
    options.timed_out = Some(timed_out.clone());
    let (sender, receiver) = std::sync::mpsc::channel();
    let owned = spec.clone();
    // Outside any simulation: a detached thread, so a seed that never returns cannot hold the campaign.
    let spawned = std::thread::Builder::new()
        .name(format!("scx-seed-{}", spec.seed))
        .stack_size(SEED_THREAD_STACK_BYTES)
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_caught(&owned, options)))
                .unwrap_or_else(|panic| harness_failed(&owned, panics::payload_message(panic.as_ref())));
            let _ = sender.send(outcome);
        });
    if let Err(error) = spawned {
        return harness_failed(spec, format!("could not start the seed's thread: {error}"));
    }
    let mut outcome = match receiver.recv_timeout(limit) {
        Ok(outcome) => outcome,
        Err(_) => {
            timed_out.store(true, Ordering::Relaxed);
            receiver.recv_timeout(WATCHDOG_GRACE).unwrap_or_else(|_| harness_failed(spec, String::new()))
        }
    };
    if timed_out.load(Ordering::Relaxed) && outcome.violations.is_empty() {
        outcome.ending = Ending::TimedOut { limit };
    }
    outcome
}

/// How long a timed-out run has to stop by itself before it is left behind.
const WATCHDOG_GRACE: Duration = Duration::from_secs(5);

/// Runs on the seed's thread, turning a panic into a violation (engine) or
/// a harness error (anything else).
fn run_caught(spec: &RunSpec, options: RunOptions) -> RunOutcome {
    panics::capture_on_this_thread();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_here(spec, options))) {
        Ok(outcome) => outcome,
        Err(payload) => {
            let caught = panics::take().unwrap_or(panics::CaughtPanic {
                culprit: panics::Culprit::Harness,
                location: String::new(),
                message: panics::payload_message(payload.as_ref()),
            });
            let message = format!("{} (at {})", caught.message, caught.location);
            match caught.culprit {
                panics::Culprit::Engine => engine_panicked(spec, message),
                panics::Culprit::Harness => harness_failed(spec, message),
            }
        }
    }
}

fn run_here(spec: &RunSpec, options: RunOptions) -> RunOutcome {
    let mut config = madsim::Config::default();
    // madsim moves bytes; the network model decides loss and latency.
    config.net.packet_loss_rate = 0.0;
    config.net.send_latency = Duration::from_nanos(1)..Duration::from_nanos(2);
    let runtime = Runtime::with_seed_and_config(derive_seed(spec.seed, "madsim", 0), config);
    let world = World::new(spec.clone(), options.keep_events);
    let supervised = runtime.block_on(supervise(world.clone(), options.clone()));
    drop(runtime);
    let metrics = *lock(&world.metrics);
    let last_write_at_ns = lock(&world.checkers).last_write_at_ns();
    let ending = if RunOptions::flag(options.stop.as_ref()) {
        Ending::Interrupted
    } else if RunOptions::flag(options.timed_out.as_ref()) {
        Ending::TimedOut { limit: Duration::ZERO }
    } else if metrics.lanes == 0 {
        Ending::NothingTested { reason: "no node acknowledged a write".to_owned() }
    } else if supervised.live_at_end == 0 {
        Ending::NothingTested { reason: "no node was up at the end of the run".to_owned() }
    } else {
        Ending::Finished
    };
    let mut trace = lock(&world.trace);
    RunOutcome {
        spec: spec.clone(),
        violations: lock(&world.checkers).violations().to_vec(),
        trace_hash: trace.hash(),
        events_total: trace.total(),
        converged_at_ns: supervised.converged_at_ns,
        quiescent_at_ns: spec.quiescent_at().as_nanos() as u64,
        ended_at_ns: supervised.ended_at_ns,
        coverage: checkers::coverage::reached(&metrics),
        metrics,
        samples: supervised.samples,
        events: trace.take_events(),
        last_write_at_ns,
        ending,
    }
}

/// What the supervisor saw.
struct Supervised {
    samples: Vec<Sample>,
    converged_at_ns: Option<u64>,
    ended_at_ns: u64,
    live_at_end: usize,
}

async fn supervise(world: Arc<World>, options: RunOptions) -> Supervised {
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
    *lock(&world.madsim_nodes) = nodes.clone();
    madsim::task::spawn(nemesis::run(world.clone()));
    let quiescent = world.spec.quiescent_at().as_nanos() as u64;
    let end = world.spec.run_time().as_nanos() as u64;
    let mut samples = Vec::new();
    loop {
        madsim::time::sleep(world.spec.sample_interval).await;
        let now = now_ns();
        let (taken, observation) = sample(&world, now, now >= quiescent);
        samples.push(taken);
        world.observe(observation);
        let stopped = RunOptions::flag(options.stop.as_ref()) || RunOptions::flag(options.timed_out.as_ref());
        let converged = lock(&world.checkers).converged_at_ns().is_some();
        if !world.violated() && !stopped && (converged || now >= end) {
            // Before the settle bound is judged: a node the harness left
            // down is the harness's failure, not the engine's.
            assert_down_nodes_are_scheduled(&world, now);
        }
        if world.violated() || stopped || converged {
            break;
        }
        if now >= end {
            world.observe(Observation::SettleEnded {
                settle_ms: world.spec.settle.as_millis() as u64,
                quiescent_at_ms: quiescent / 1_000_000,
            });
            break;
        }
    }
    let converged_at = lock(&world.checkers).converged_at_ns();
    finish(&world);
    let ended_at = now_ns();
    let live_at_end = world.live_nodes().len();
    // Kill every node and let the executor drop their tasks: a pending
    // task holds the world, and madsim's network holds the task's waker, so
    // without this the whole run would leak when the runtime is dropped.
    for node in &nodes {
        handle.kill(*node);
    }
    lock(&world.cores).iter_mut().for_each(|core| *core = None);
    madsim::time::sleep(Duration::from_nanos(1)).await;
    Supervised { samples, converged_at_ns: converged_at, ended_at_ns: ended_at, live_at_end }
}

/// The cluster now: the trace's sample (and its hash) and the checkers'
/// observation. When every live node holds the same status after the
/// faults healed, the observation carries their shared frontier.
fn sample(world: &World, at_ns: u64, quiescent: bool) -> (Sample, Observation) {
    let network = lock(&world.network);
    let partitioned: Vec<bool> = (0..world.spec.nodes).map(|node| network.is_partitioned(node)).collect();
    drop(network);
    let mut samples = Vec::with_capacity(world.spec.nodes as usize);
    let mut views = Vec::with_capacity(world.spec.nodes as usize);
    let mut first_up: Option<(u32, StatusView)> = None;
    let mut agree = true;
    let hostile = world.spec.hostile_nodes();
    let mut hashed = Vec::new();
    for node in 0..world.spec.nodes {
        let life = world.life(node);
        let status = match world.core(node) {
            Some(core) if life != Life::Down => Some(node::status_view(&mut lock(&core).node)),
            _ => None,
        };
        let view = match (life, status) {
            (Life::Up, Some(status)) => {
                // Hostile nodes are not held to converging.
                if !hostile.contains(&node) {
                    match first_up {
                        None => first_up = Some((node, status)),
                        Some((_, first)) => agree &= first == status,
                    }
                }
                NodeView::Up(status)
            }
            (Life::Paused, _) => NodeView::Paused,
            _ => NodeView::Down,
        };
        hash_view(&mut hashed, &view);
        views.push(view);
        samples.push(NodeSample {
            life,
            partitioned: partitioned[node as usize],
            lane_index: status.map_or(0, |status| status.lane_index),
            chain: status.map_or_else(String::new, |status| status.chain_hash.short()),
        });
    }
    lock(&world.trace).absorb(&hashed);
    let agreed = match first_up {
        Some((node, _)) if agree && quiescent => world.core(node).map(|core| lock(&core).node.replica().author_tips()),
        _ => None,
    };
    let metrics = lock(&world.metrics);
    let taken = Sample { at_ns, nodes: samples, bytes_sent: metrics.bytes_sent, bytes_missing: metrics.bytes_missing };
    (taken, Observation::Sampled { nodes: views, agreed, quiescent })
}

/// A node's view in the trace hash: its life and, when up, its hashes.
fn hash_view(out: &mut Vec<u8>, view: &NodeView) {
    match view {
        NodeView::Down => out.push(0),
        NodeView::Paused => out.push(1),
        NodeView::Up(status) => {
            out.push(2);
            out.extend_from_slice(&status.lane_index.to_le_bytes());
            out.extend_from_slice(status.chain_hash.as_bytes());
            out.extend_from_slice(status.state_digest.as_bytes());
        }
    }
}

/// A run that ended (converged or settled) with a node down that no fault
/// holds down at that time is a harness bug, not a pass: the node's lanes
/// and reads went unchecked, and the convergence probe skips it. Panics, so
/// the run's verdict is a harness error, never an engine violation.
fn assert_down_nodes_are_scheduled(world: &World, now_ns: u64) {
    let now = Duration::from_nanos(now_ns);
    for node in 0..world.spec.nodes {
        if world.life(node) != Life::Down {
            continue;
        }
        let held_down = world.spec.faults.iter().any(|fault| {
            matches!(fault.kind, FaultKind::Crash { .. } | FaultKind::Replace { .. })
                && fault.kind.nodes().contains(&node)
                && fault.start <= now
                // At the heal's own instant the nemesis may not have run yet.
                && fault.end.is_none_or(|end| end >= now)
        });
        assert!(
            held_down,
            "n{node} is down at {} ms, but no crash or replacement fault holds it down then",
            now_ns / 1_000_000
        );
    }
}

/// The end of the run: every live node's final state goes to the checkers,
/// and the replicas' own counters to the metrics.
fn finish(world: &World) {
    let mut rollbacks = 0;
    let mut lanes_pruned = 0;
    let (mut lanes_pended, mut lanes_released) = (0, 0);
    let mut most_above_snapshot = 0;
    let mut conflicts = None;
    for node in 0..world.spec.nodes {
        let Some(core) = world.core(node) else { continue };
        if world.life(node) == Life::Down {
            continue;
        }
        let mut core = lock(&core);
        // What the sessions still open sent (a Delta whose Lanes have not
        // come yet) was sent all the same, and its receiver may have
        // counted it already.
        world.count_bytes(&core.node.open_session_metrics());
        let status = node::status_view(&mut core.node);
        let snapshot_index = core.node.status().snapshot_index;
        let replica = core.node.replica();
        most_above_snapshot = most_above_snapshot.max(status.lane_index.saturating_sub(snapshot_index));
        let metrics = replica.metrics();
        rollbacks += metrics.rollbacks;
        lanes_pruned += metrics.lanes_pruned;
        lanes_pended += metrics.lanes_pended;
        lanes_released += metrics.lanes_released;
        conflicts.get_or_insert(metrics.conflicts);
        let latest_snapshot_error =
            replica.snapshots().latest().and_then(|latest| latest.verify(replica.law()).err()).map(|e| e.to_string());
        let observation = Observation::Final {
            node,
            status,
            frontier: replica.author_tips(),
            lineage: replica.snapshots().lineage().collect(),
            latest_snapshot_error,
        };
        drop(core);
        world.observe(observation);
    }
    let lane_bytes = *lock(&world.lane_bytes);
    let mut metrics = lock(&world.metrics);
    metrics.split_lane_bytes(lane_bytes.sent, lane_bytes.needed);
    let kinds = metrics.bytes_by_kind().map(|kinds| kinds.iter().map(|(_, bytes)| bytes).sum::<u64>());
    assert_eq!(kinds, Some(metrics.bytes_sent), "the kinds of bytes sent add up to the bytes sent");
    metrics.rollbacks = rollbacks;
    metrics.lanes_pruned = lanes_pruned;
    metrics.lanes_pended = lanes_pended;
    let member_down = (0..world.spec.nodes).any(|node| world.life(node) == Life::Down);
    metrics.pruning_stalled =
        u64::from(member_down && world.spec.prune && most_above_snapshot > 2 * world.spec.snapshot_interval);
    metrics.lanes_released = lanes_released;
    metrics.conflicts = conflicts.unwrap_or(0);
}

fn engine_panicked(spec: &RunSpec, message: String) -> RunOutcome {
    let mut outcome = harness_failed(spec, String::new());
    outcome.ending = Ending::Finished;
    outcome.violations.push(checkers::panic::violation(message));
    outcome
}

fn harness_failed(spec: &RunSpec, message: String) -> RunOutcome {
    RunOutcome {
        spec: spec.clone(),
        violations: Vec::new(),
        trace_hash: String::new(),
        events_total: 0,
        converged_at_ns: None,
        quiescent_at_ns: spec.quiescent_at().as_nanos() as u64,
        ended_at_ns: 0,
        metrics: RunMetrics::default(),
        coverage: BTreeMap::new(),
        samples: Vec::new(),
        events: Vec::new(),
        last_write_at_ns: None,
        ending: Ending::HarnessPanic { message },
    }
}
