//! Goal: a durable replica that crashes and recovers at random points still
//! holds exactly what the model says: the lanes it had made durable (with
//! `flush`) before each crash, then everything delivered after.
//! Method: as `replica.rs`, over a `DurableReplica` on a `MemStore`; a crash
//! drops what was not synced and reopens from the durable log (lanes,
//! commits, and after pruning a compacted snapshot), and the test tracks
//! the durable set itself: the closed set of delivered lanes at the last
//! flush.

use crate::support::{Action, Case, Coverage, History, build, compare, config, config_for, run, sweep};
use scx_engine::bugs::Bugs;
use scx_engine::durable::DurableReplica;
use scx_engine::store::MemStore;
use scx_engine::{Event, LaneId, ReplicaConfig, World};
use std::collections::BTreeSet;

const CASES: u32 = 4000;

type Durable = DurableReplica<World, MemStore>;

/// What the test knows about the durable replica under test.
struct Subject {
    durable: Durable,
    config: ReplicaConfig,
    /// Delivered since the last recovery, or recovered.
    delivered: BTreeSet<LaneId>,
    /// What the store holds durably: the closed delivered set at the last flush.
    durable_set: BTreeSet<LaneId>,
}

impl Subject {
    fn flush(&mut self, history: &History) -> Result<(), String> {
        let events = self.durable.flush().map_err(|error| format!("flush failed: {error}"))?;
        if let Some(event) = events.iter().find(|event| matches!(event, Event::Rejected { .. } | Event::Fork(_))) {
            return Err(format!("the engine reports {event:?} in an honest history"));
        }
        self.durable_set = history.model.closed_subset(&self.delivered);
        Ok(())
    }

    fn crash_and_recover(&mut self, coverage: &mut Coverage) -> Result<(), String> {
        let mut store = self.durable.store().clone();
        store.crash(None);
        let (durable, _) = DurableReplica::open(World, self.config.clone(), store)
            .map_err(|error| format!("recovery failed: {error}"))?;
        self.durable = durable;
        self.delivered = self.durable_set.clone();
        coverage.crashes += 1;
        coverage.recoveries_from_snapshot += u64::from(self.durable.replica().prune_index() > 0);
        Ok(())
    }

    fn check(&mut self, history: &History, coverage: &mut Coverage) -> Result<(), String> {
        let expected = history.model.closed_subset(&self.delivered);
        compare(history, &expected, self.durable.replica(), coverage)
    }

    fn deliver(&mut self, history: &History, index: usize) -> Result<(), String> {
        self.durable
            .replica()
            .insert(history.lanes[index].clone())
            .map_err(|error| format!("the engine refused lane {index} of an honest history: {error}"))?;
        self.delivered.insert(history.ids[index]);
        Ok(())
    }
}

/// The property: `Err` names the first disagreement between engine and model.
pub(crate) fn durable_matches_model(case: &Case, bugs: Bugs, coverage: &mut Coverage) -> Result<(), String> {
    let history = build(&case.script);
    let config = config(&case.script, &case.plan, bugs);
    let (durable, _) = DurableReplica::open(World, config.clone(), MemStore::new())
        .map_err(|error| format!("opening an empty store failed: {error}"))?;
    let mut subject = Subject { durable, config, delivered: BTreeSet::new(), durable_set: BTreeSet::new() };
    subject.check(&history, coverage)?;
    for action in &case.plan.actions {
        match action {
            Action::Deliver(index) if !history.lanes.is_empty() => {
                subject.deliver(&history, index.index(history.lanes.len()))?;
            }
            Action::Deliver(_) => {}
            Action::Check => subject.check(&history, coverage)?,
            Action::Flush => subject.flush(&history)?,
            Action::Crash { flush_first } => {
                if *flush_first {
                    subject.flush(&history)?;
                }
                subject.crash_and_recover(coverage)?;
                subject.check(&history, coverage)?;
            }
        }
    }
    for index in sweep(&history, case.plan.sweep_newest_first) {
        subject.deliver(&history, index)?;
    }
    subject.check(&history, coverage)?;
    subject.flush(&history)?;
    subject.crash_and_recover(coverage)?;
    subject.check(&history, coverage)?;
    coverage.lanes += history.lanes.len() as u64;
    coverage.cases_with_snapshots += u64::from(subject.durable.replica().status().snapshot_index > 0);
    coverage.cases_pruned += u64::from(subject.durable.replica().prune_index() > 0);
    Ok(())
}

#[test]
fn durable_replica_matches_model_across_crashes_flushes_and_compaction() {
    let (result, coverage) =
        run(config_for(CASES, file!(), None), |case, coverage| durable_matches_model(case, Bugs::NONE, coverage));
    if let Err(error) = result {
        panic!("the durable engine disagrees with the model: {error}");
    }
    eprintln!("durable replica vs model: {coverage:?}");
    assert!(coverage.cases >= u64::from(CASES));
    assert!(coverage.crashes > 2 * coverage.cases, "crashes: {coverage:?}");
    assert!(coverage.recoveries_from_snapshot * 10 > coverage.cases, "compacted recoveries: {coverage:?}");
    assert!(coverage.checks_with_pending * 10 > coverage.checks, "pending lanes: {coverage:?}");
    assert!(coverage.present_values_read > coverage.checks, "reads: {coverage:?}");
}
