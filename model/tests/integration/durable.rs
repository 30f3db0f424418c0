//! Goal: a node that crashes and recovers at random points still holds
//! exactly what the model says: the lanes whose persists its driver had
//! written before each crash, then everything delivered after.
//! Method: as `replica.rs`, over a `Node` whose driver holds its persists
//! back until a flush (a slow fsync) and then writes them to a `MemStore`;
//! a crash drops the node and what was not written and recovers from the
//! durable log (lanes, commits, and after pruning a compacted snapshot), and
//! the test tracks the durable set itself: the closed set of delivered
//! lanes at the last flush. Lanes are delivered one at a time as bundle
//! files, so lanes whose ancestry is missing wait, as from a peer.

use crate::support::{Action, Case, Coverage, History, build, compare, config, config_for, run, sweep};
use scx_engine::bugs::Bugs;
use scx_engine::node::{NodeConfig, NodeEvent, Output, Persist};
use scx_engine::protocol::{self, Message};
use scx_engine::{Event, LaneId, Node, NodeId, ReplicaConfig, World};
use scx_store::{MemStore, Store};
use std::collections::BTreeSet;

const CASES: u32 = 4000;

/// What the test knows about the node under test.
struct Subject {
    node: Node<World>,
    store: MemStore,
    /// Persists yielded and not yet written: lost in a crash.
    held: Vec<Persist>,
    config: ReplicaConfig,
    /// Delivered since the last recovery, or recovered.
    delivered: BTreeSet<LaneId>,
    /// What the store holds durably: the closed delivered set at the last flush.
    durable_set: BTreeSet<LaneId>,
}

impl Subject {
    /// Recovers a node from `store` and takes its first outputs.
    fn open(config: ReplicaConfig, mut store: MemStore) -> Result<Self, String> {
        let recovered = store.load().map_err(|error| format!("loading the log failed: {error}"))?;
        let config = NodeConfig { replica: config.clone(), ..NodeConfig::new(config.node, []) };
        let (node, _) =
            Node::recover(World, config.clone(), &recovered, 0).map_err(|error| format!("recovery failed: {error}"))?;
        let mut subject = Self {
            node,
            store,
            held: Vec::new(),
            config: config.replica,
            delivered: BTreeSet::new(),
            durable_set: BTreeSet::new(),
        };
        subject.drain()?;
        Ok(subject)
    }

    /// Takes the node's outputs; persists wait for the next flush.
    fn drain(&mut self) -> Result<(), String> {
        while let Some(output) = self.node.poll() {
            match output {
                Output::Persist(persist) => self.held.push(persist),
                Output::Event(NodeEvent::Replica(event @ (Event::Rejected { .. } | Event::Fork(_)))) => {
                    return Err(format!("the engine reports {event:?} in an honest history"));
                }
                Output::Event(_) | Output::Transmit(_) => {}
            }
        }
        Ok(())
    }

    fn flush(&mut self, history: &History) -> Result<(), String> {
        // Persists queued behind events come out once the ones before are
        // acknowledged: write until none is left.
        while !self.held.is_empty() {
            for persist in std::mem::take(&mut self.held) {
                scx_store::persist(&mut self.store, &persist.op).map_err(|error| format!("flush failed: {error}"))?;
                self.node.persisted(persist.token);
            }
            self.drain()?;
        }
        self.durable_set = history.model.closed_subset(&self.delivered);
        Ok(())
    }

    fn crash_and_recover(&mut self, coverage: &mut Coverage) -> Result<(), String> {
        let mut store = self.store.clone();
        store.crash(None);
        let durable_set = std::mem::take(&mut self.durable_set);
        *self = Self::open(self.config.clone(), store)?;
        self.delivered = durable_set.clone();
        self.durable_set = durable_set;
        coverage.crashes += 1;
        coverage.recoveries_from_snapshot += u64::from(self.node.replica().prune_index() > 0);
        Ok(())
    }

    fn check(&mut self, history: &History, coverage: &mut Coverage) -> Result<(), String> {
        let expected = history.model.closed_subset(&self.delivered);
        // The node keeps its replica to itself; a copy answers the same.
        let mut replica = self.node.replica().clone();
        compare(history, &expected, &mut replica, coverage)
    }

    fn deliver(&mut self, history: &History, index: usize) -> Result<(), String> {
        let lane = &history.lanes[index];
        let batch = protocol::encode_batch(&[(history.ids[index], lane)]);
        let message =
            Message::Lanes { session: 0, snapshot: None, lanes: batch, more: false, need: vec![], snapshot_id: None };
        let datagram = protocol::encode(&message).map_err(|error| format!("one lane fits a message: {error}"))?;
        let bundle = protocol::write_bundle(&[datagram]);
        let metrics = self
            .node
            .apply_bundle(0, NodeId(u32::MAX - 1), &bundle)
            .map_err(|error| format!("a bundle of lane {index} was refused: {error}"))?;
        if metrics.lanes_rejected > 0 {
            return Err(format!("the engine refused lane {index} of an honest history"));
        }
        self.delivered.insert(history.ids[index]);
        self.drain()
    }
}

/// The property: `Err` names the first disagreement between engine and model.
pub(crate) fn durable_matches_model(case: &Case, bugs: Bugs, coverage: &mut Coverage) -> Result<(), String> {
    let history = build(&case.script);
    let config = config(&case.script, &case.plan, bugs);
    let mut subject = Subject::open(config, MemStore::new())?;
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
    coverage.cases_with_snapshots += u64::from(subject.node.status().snapshot_index > 0);
    coverage.cases_pruned += u64::from(subject.node.replica().prune_index() > 0);
    Ok(())
}

#[test]
fn a_node_matches_the_model_across_crashes_flushes_and_compaction() {
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
