//! Goal: an engine replica holds exactly what the model says, whatever the
//! history, the delivery order, the repeats, the snapshot interval and
//! pruning: the same lane index, chain hash and state digest as the model's
//! replay of the lanes it should hold (those delivered with their whole
//! ancestry), the same frontier, canonical order, conflicts and per-key
//! reads, and a snapshot point exactly where causal stability allows.
//! Method: sled's `prop_tree_matches_btreemap`: proptest generates a history
//! of 2 to 5 authors writing over their own views and merging each other's
//! lanes, and a plan that delivers lanes at random (repeats included),
//! checks at random points and finally delivers every lane.

use crate::support::{Action, Case, Coverage, History, build, compare, config, config_for, run, sweep};
use scx_engine::bugs::Bugs;
use scx_engine::{Event, LaneId, Replica, World};
use std::collections::BTreeSet;

/// Cases per run: with several checks and some 40 lanes each, thousands of
/// engine states are compared with the model.
const CASES: u32 = 5000;

/// The property: `Err` names the first disagreement between engine and model.
pub(crate) fn replica_matches_model(case: &Case, bugs: Bugs, coverage: &mut Coverage) -> Result<(), String> {
    let history = build(&case.script);
    let mut replica = Replica::new(World, config(&case.script, &case.plan, bugs));
    let mut delivered = BTreeSet::new();
    check(&history, &delivered, &mut replica, coverage)?;
    for action in &case.plan.actions {
        match action {
            Action::Deliver(index) if !history.lanes.is_empty() => {
                deliver(&history, index.index(history.lanes.len()), &mut replica, &mut delivered)?;
            }
            Action::Check => check(&history, &delivered, &mut replica, coverage)?,
            Action::Deliver(_) | Action::Flush | Action::Crash { .. } => {}
        }
    }
    for index in sweep(&history, case.plan.sweep_newest_first) {
        deliver(&history, index, &mut replica, &mut delivered)?;
    }
    check(&history, &delivered, &mut replica, coverage)?;
    let status = replica.status();
    coverage.lanes += history.lanes.len() as u64;
    coverage.rollbacks += replica.metrics().rollbacks;
    coverage.cases_with_snapshots += u64::from(status.snapshot_index > 0);
    coverage.cases_pruned += u64::from(replica.prune_index() > 0);
    Ok(())
}

fn deliver(
    history: &History,
    index: usize,
    replica: &mut Replica<World>,
    delivered: &mut BTreeSet<LaneId>,
) -> Result<(), String> {
    replica
        .insert(history.lanes[index].clone())
        .map_err(|error| format!("the engine refused lane {index} of an honest history: {error}"))?;
    delivered.insert(history.ids[index]);
    drain(replica)
}

/// Drains the replica's events (its run-loop contract); none may be a rejection or a fork.
fn drain(replica: &mut Replica<World>) -> Result<(), String> {
    while let Some(event) = replica.poll_event() {
        if let Event::Rejected { .. } | Event::Fork(_) = event {
            return Err(format!("the engine reports {event:?} in an honest history"));
        }
    }
    Ok(())
}

fn check(
    history: &History,
    delivered: &BTreeSet<LaneId>,
    replica: &mut Replica<World>,
    coverage: &mut Coverage,
) -> Result<(), String> {
    let expected = history.model.closed_subset(delivered);
    compare(history, &expected, replica, coverage)?;
    // No snapshot was installed, so the conflict count covers the whole order.
    let conflicts = history.model.replay(&expected).map_err(|error| error.to_string())?.conflicts;
    if replica.metrics().conflicts != conflicts {
        return Err(format!("conflicts: engine {}, model {conflicts}", replica.metrics().conflicts));
    }
    drain(replica)
}

#[test]
fn replica_matches_model_over_any_delivery_order_with_repeats_snapshots_and_pruning() {
    let (result, coverage) =
        run(config_for(CASES, file!(), None), |case, coverage| replica_matches_model(case, Bugs::NONE, coverage));
    if let Err(error) = result {
        panic!("the engine disagrees with the model: {error}");
    }
    eprintln!("replica vs model: {coverage:?}");
    assert!(coverage.cases >= u64::from(CASES));
    // The faults must bite: late lanes, pending lanes, snapshots, pruning, real conflicts and values.
    assert!(coverage.rollbacks > coverage.cases, "rollbacks: {coverage:?}");
    assert!(coverage.checks_with_pending * 10 > coverage.checks, "pending lanes: {coverage:?}");
    assert!(coverage.cases_with_snapshots * 2 > coverage.cases, "snapshots: {coverage:?}");
    assert!(coverage.cases_pruned * 5 > coverage.cases, "pruning: {coverage:?}");
    assert!(coverage.conflicts > coverage.cases, "conflicts: {coverage:?}");
    assert!(coverage.present_values_read > coverage.checks, "reads: {coverage:?}");
}
