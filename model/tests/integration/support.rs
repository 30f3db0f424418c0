//! Shared machinery: scripts of multi-author histories turned into real
//! lanes with the model's help (authors write over their own view and pull
//! each other's lanes), delivery plans, and the comparison of an engine
//! replica with the model over the set it should hold.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use scx_engine::bugs::Bugs;
use scx_engine::{Lane, LaneId, NodeId, Replica, ReplicaConfig, World, WorldOp, WorldState};
use scx_model::{Model, ModelState, ModelValue, RegisterValue};
use std::cell::RefCell;
use std::collections::BTreeSet;

/// What one author does at one step of a history.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    /// The author writes a lane over its own view.
    Write { author: u32, ops: Vec<OpSpec> },
    /// The author pulls every lane `from` holds.
    Merge { author: u32, from: u32 },
}

/// An op before it meets the author's state: kind 0 put, 1 add, 2 insert, 3 remove.
#[derive(Clone, Debug)]
pub(crate) struct OpSpec {
    kind: u8,
    key: u32,
    number: u64,
}

impl OpSpec {
    /// The op, with `seen` taken from the author's state as a real author would.
    fn op(&self, state: &ModelState) -> WorldOp {
        let (key, number) = (self.key, self.number);
        let value = state.value(key);
        match self.kind {
            0 => WorldOp::Put { key, value: number, seen: value.register.map(|register| register.writer) },
            1 => WorldOp::Add { key, delta: number as i64 - 2 },
            2 => WorldOp::Insert { key, element: number },
            _ => {
                let seen = value.set.get(&number).map(|tags| tags.iter().copied().collect()).unwrap_or_default();
                WorldOp::Remove { key, element: number, seen }
            }
        }
    }
}

/// A history: authors, key space and what happens at each step.
#[derive(Clone, Debug)]
pub(crate) struct Script {
    pub(crate) authors: u32,
    pub(crate) keys: u32,
    pub(crate) steps: Vec<Step>,
    /// End with a round in which each author in turn pulls every lane and
    /// writes one, so everything before it becomes causally stable.
    pub(crate) settle: bool,
}

/// One thing the test does to the engine under test.
#[derive(Clone, Debug)]
pub(crate) enum Action {
    /// Deliver one lane of the history (any lane, so repeats happen).
    Deliver(Index),
    /// Compare the engine with the model now.
    Check,
    /// Make everything admitted durable (durable replica only).
    Flush,
    /// Crash and recover (durable replica only), flushing first or not.
    Crash { flush_first: bool },
}

/// How the engine is set up and what is done to it.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub(crate) snapshot_interval_log2: u32,
    pub(crate) checkpoint_interval_log2: u32,
    pub(crate) prune: bool,
    pub(crate) actions: Vec<Action>,
    /// Deliver the whole history at the end newest first (else oldest first).
    pub(crate) sweep_newest_first: bool,
}

/// One generated case.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    pub(crate) script: Script,
    pub(crate) plan: Plan,
}

fn op_spec(keys: u32) -> impl Strategy<Value = OpSpec> {
    (0u8..4, 0..keys, 0u64..4).prop_map(|(kind, key, number)| OpSpec { kind, key, number })
}

fn script() -> impl Strategy<Value = Script> {
    (2u32..=5, 1u32..=3).prop_flat_map(|(authors, keys)| {
        let step = prop_oneof![
            4 => (0..authors, prop::collection::vec(op_spec(keys), 1..=3))
                .prop_map(|(author, ops)| Step::Write { author, ops }),
            3 => (0..authors, 0..authors).prop_map(|(author, from)| Step::Merge { author, from }),
        ];
        (prop::collection::vec(step, 1..=64), any::<bool>()).prop_map(move |(steps, settle)| Script {
            authors,
            keys,
            steps,
            settle,
        })
    })
}

fn plan() -> impl Strategy<Value = Plan> {
    let action = prop_oneof![
        8 => any::<Index>().prop_map(Action::Deliver),
        3 => Just(Action::Check),
        1 => Just(Action::Flush),
        1 => any::<bool>().prop_map(|flush_first| Action::Crash { flush_first }),
    ];
    (0u32..=3, 0u32..=3, any::<bool>(), prop::collection::vec(action, 0..=128), any::<bool>()).prop_map(
        |(snapshot_interval_log2, checkpoint_interval_log2, prune, actions, sweep_newest_first)| Plan {
            snapshot_interval_log2,
            checkpoint_interval_log2: checkpoint_interval_log2.min(snapshot_interval_log2),
            prune,
            actions,
            sweep_newest_first,
        },
    )
}

pub(crate) fn case() -> impl Strategy<Value = Case> {
    (script(), plan()).prop_map(|(script, plan)| Case { script, plan })
}

/// The lanes a script writes, and the model that holds them all.
pub(crate) struct History {
    pub(crate) model: Model,
    pub(crate) lanes: Vec<Lane<WorldOp>>,
    pub(crate) ids: Vec<LaneId>,
    pub(crate) keys: u32,
}

/// Runs the script: each author's view is a causally closed set; a write
/// reads the author's state from the model, names the view's heads as
/// parents and takes the next seq and stamp, as an honest engine would.
pub(crate) fn build(script: &Script) -> History {
    let mut model = Model::new((0..script.authors).map(NodeId));
    let mut views: Vec<BTreeSet<LaneId>> = vec![BTreeSet::new(); script.authors as usize];
    let mut lanes = Vec::new();
    let settle = (0..script.authors).flat_map(|author| {
        let write = Step::Write { author, ops: vec![OpSpec { kind: 1, key: 0, number: 3 }] };
        (0..script.authors).map(move |from| Step::Merge { author, from }).chain([write])
    });
    let settle: Vec<Step> = if script.settle { settle.collect() } else { Vec::new() };
    for step in script.steps.iter().chain(&settle) {
        match step {
            Step::Merge { author, from } => {
                let theirs = views[*from as usize].clone();
                views[*author as usize].extend(theirs);
            }
            Step::Write { author, ops } => {
                let view = &views[*author as usize];
                let state = model.replay(view).expect("a view is a closed set of valid lanes").state;
                let own: Vec<LaneId> =
                    view.iter().copied().filter(|id| model.lane(id).is_some_and(|l| l.author.0 == *author)).collect();
                let own_tip = own.iter().copied().max_by_key(|id| model.lane(id).map(|l| l.seq));
                // The heads, and the author's previous lane even when a merged
                // lane already descends from it (the chain rule).
                let mut parents = heads(&model, view);
                parents.extend(own_tip);
                let lamport = 1 + parents.iter().filter_map(|id| model.lane(id)).map(|l| l.lamport).max().unwrap_or(0);
                let ops = ops.iter().map(|spec| spec.op(&state)).collect();
                let lane = Lane::new(NodeId(*author), own.len() as u64 + 1, lamport, parents, ops);
                let id = model.add(lane.clone()).expect("an honest author writes valid lanes");
                views[*author as usize].insert(id);
                lanes.push(lane);
            }
        }
    }
    let ids = lanes.iter().map(Lane::id).collect();
    History { model, lanes, ids, keys: script.keys }
}

/// Lanes of `view` that no lane of `view` names as a parent.
fn heads(model: &Model, view: &BTreeSet<LaneId>) -> Vec<LaneId> {
    let named: BTreeSet<LaneId> = view.iter().filter_map(|id| model.lane(id)).flat_map(|l| l.parents.clone()).collect();
    view.difference(&named).copied().collect()
}

/// The engine configuration a plan asks for.
pub(crate) fn config(script: &Script, plan: &Plan, bugs: Bugs) -> ReplicaConfig {
    // An observer, not a member: the subject only receives lanes.
    let mut config = ReplicaConfig::new(NodeId(u32::MAX), (0..script.authors).map(NodeId));
    config.snapshot_interval = 1 << plan.snapshot_interval_log2;
    config.checkpoint_interval = 1 << plan.checkpoint_interval_log2;
    config.prune = plan.prune;
    config.max_pending = 1 << 20;
    config.bugs = bugs;
    config
}

/// The delivery order of the final sweep.
pub(crate) fn sweep(history: &History, newest_first: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..history.lanes.len()).collect();
    if newest_first {
        order.reverse();
    }
    order
}

/// What the generated cases exercised, so a test can insist the faults bit.
#[derive(Debug, Default)]
pub(crate) struct Coverage {
    pub(crate) cases: u64,
    pub(crate) lanes: u64,
    pub(crate) checks: u64,
    pub(crate) checks_with_pending: u64,
    pub(crate) rollbacks: u64,
    pub(crate) cases_with_snapshots: u64,
    pub(crate) cases_pruned: u64,
    pub(crate) conflicts: u64,
    pub(crate) crashes: u64,
    pub(crate) recoveries_from_snapshot: u64,
    pub(crate) present_values_read: u64,
    /// The case number (from 1) of the first failure, before shrinking.
    pub(crate) first_failure: Option<u64>,
}

/// Compares `replica` with the model's replay of `expected` (the set it
/// should hold): hashes and lane index, the per-author frontier, the
/// canonical order above the prune point, every key's value against
/// [`Model::read`], and the snapshot point against causal stability.
pub(crate) fn compare(
    history: &History,
    expected: &BTreeSet<LaneId>,
    replica: &mut Replica<World>,
    coverage: &mut Coverage,
) -> Result<(), String> {
    let model = &history.model;
    let replayed = model.replay(expected).map_err(|error| format!("model: {error}"))?;
    if model.order(expected).as_ref() != Ok(&replayed.order) {
        return Err("model: order() and replay().order differ".to_owned());
    }
    // The cheap stability judgement agrees with the naive one on every prefix.
    let stable = model.stable(expected).map_err(|error| format!("model: {error}"))?;
    for length in [replayed.stable_prefix_len(&stable), replayed.stable_prefix_len(&stable) + 1] {
        let prefix: BTreeSet<LaneId> = replayed.order.iter().take(length as usize).copied().collect();
        let naive = prefix.iter().all(|id| stable.contains(id));
        if model.first_unstable(expected, &prefix).is_none() != naive {
            return Err(format!("model: first_unstable and stable disagree on a prefix of {length} lanes"));
        }
    }
    let status = replica.status();
    let ours = (replayed.lane_index, replayed.chain_hash, replayed.state_digest);
    let theirs = (status.lane_index, status.chain_hash, status.state_digest);
    if ours != theirs {
        return Err(format!("status: engine (index, chain, digest) {theirs:?}, model {ours:?}"));
    }
    let frontier = model.frontier_of(expected);
    if replica.author_tips() != frontier {
        return Err(format!("frontier: engine {:?}, model {frontier:?}", replica.author_tips()));
    }
    let prune_index = replica.prune_index();
    let engine_order: Vec<LaneId> = replica.canonical_lanes().map(|(id, _)| id).collect();
    if engine_order[..] != replayed.order[prune_index as usize..] {
        return Err(format!("canonical order above lane index {prune_index} differs"));
    }
    for key in 0..history.keys {
        let read = model.read(&frontier, key).map_err(|error| format!("model read: {error}"))?;
        let engine = engine_value(replica.state(), key);
        if engine != read {
            return Err(format!("key {key}: engine reads {engine}, model reads {read} ({engine:?} vs {read:?})"));
        }
        coverage.present_values_read += u64::from(!read.is_absent());
    }
    let stable = model.stable(expected).map_err(|error| format!("model stability: {error}"))?;
    let stable_end = replayed.stable_prefix_len(&stable);
    let interval = replica.config().snapshot_interval;
    let snapshot_index = status.snapshot_index;
    if snapshot_index != stable_end - stable_end % interval || prune_index > snapshot_index {
        return Err(format!(
            "stability: stable prefix ends at {stable_end}, interval {interval}, \
             but the engine's snapshot point is {snapshot_index} and its prune point {prune_index}"
        ));
    }
    coverage.checks += 1;
    coverage.checks_with_pending += u64::from(replica.pending_lanes() > 0);
    coverage.conflicts += replayed.conflicts;
    Ok(())
}

/// One key of the engine's state, in the model's terms.
fn engine_value(state: &WorldState, key: u32) -> ModelValue {
    ModelValue {
        register: state
            .registers
            .get(&key)
            .map(|register| RegisterValue { value: register.value, writer: register.writer }),
        counter: state.counters.get(&key).copied(),
        set: state.sets.get(&key).map(|set| set.by_element()).unwrap_or_default(),
    }
}

/// How many cases a property runs and where its failures are kept; a fixed
/// seed makes the run reproducible, none takes proptest's (random, or
/// `PROPTEST_RNG_SEED`).
pub(crate) fn config_for(cases: u32, source_file: &'static str, seed: Option<u64>) -> Config {
    let defaults = Config::default();
    let rng_seed = seed.map_or(defaults.rng_seed, RngSeed::Fixed);
    Config { cases, source_file: Some(source_file), rng_seed, max_shrink_iters: 2048, ..defaults }
}

/// Runs `property` over generated cases; returns the first failure (after
/// shrinking) and what the cases covered.
pub(crate) fn run(
    config: Config,
    property: impl Fn(&Case, &mut Coverage) -> Result<(), String>,
) -> (Result<(), TestError<Case>>, Coverage) {
    let coverage = RefCell::new(Coverage::default());
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |case| {
        let mut coverage = coverage.borrow_mut();
        coverage.cases += 1;
        let outcome = property(&case, &mut coverage);
        if outcome.is_err() && coverage.first_failure.is_none() {
            coverage.first_failure = Some(coverage.cases);
        }
        outcome.map_err(TestCaseError::fail)
    });
    (result, coverage.into_inner())
}
