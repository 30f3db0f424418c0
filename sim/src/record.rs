//! The result record of one run: one JSON line per seed in a fuzz results
//! file, and the `--format json` output of `scx run`. Reports read these.
//!
//! Invariant: a record holds only what the seed determines (no wall-clock
//! times, no host names), so results files are byte-identical across
//! machines, `--jobs` and shard splits.

use crate::runner::RunOutcome;
use crate::spec::FaultKind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The tool's version, printed beside every reproduce command.
pub const SCX_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Pass or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every invariant held.
    Pass,
    /// Some invariant was violated.
    Fail,
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationRecord {
    /// Checker name.
    pub checker: String,
    /// "always", "eventually" or "sometimes".
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Simulated milliseconds.
    pub at_ms: u64,
    /// The node, if one.
    pub node: Option<u32>,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Canonical bytes of lanes receivers lacked.
    pub bytes_missing: u64,
    /// Request/response exchanges.
    pub round_trips: u64,
    /// Sessions completed.
    pub sessions: u64,
    /// Sessions abandoned.
    pub sessions_abandoned: u64,
    /// Lanes acknowledged.
    pub lanes: u64,
    /// Datagrams sent.
    pub messages_sent: u64,
    /// Datagrams dropped.
    pub messages_dropped: u64,
    /// Forks between authored lanes.
    pub forks: u64,
    /// Conflicts resolved by the law.
    pub conflicts: u64,
    /// Snapshots committed.
    pub snapshots: u64,
    /// Rollbacks forced by late lanes.
    pub rollbacks: u64,
    /// Crashes.
    pub crashes: u64,
}

/// One fault as it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Its kind.
    pub kind: String,
    /// Start (simulated ms).
    pub start_ms: u64,
    /// Heal (simulated ms); null if it never healed.
    pub end_ms: Option<u64>,
    /// Nodes it named.
    pub nodes: Vec<u32>,
}

/// Everything a run reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Tool version.
    pub scx_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file, as given on the command line.
    pub scenario_path: String,
    /// Short content hash of the scenario.
    pub scenario_hash: String,
    /// The seed.
    pub seed: u64,
    /// Pass or fail.
    pub status: Verdict,
    /// Hash of the event trace.
    pub trace_hash: String,
    /// Milliseconds from the last heal to convergence; null if none.
    pub converged_at_ms: Option<u64>,
    /// Faulty phase (ms).
    pub duration_ms: u64,
    /// Settle bound (ms).
    pub settle_ms: u64,
    /// When the last fault healed (ms).
    pub quiescent_at_ms: u64,
    /// When the run stopped (ms).
    pub ended_at_ms: u64,
    /// Violations.
    pub violations: Vec<ViolationRecord>,
    /// Counters.
    pub metrics: Metrics,
    /// "Sometimes" properties reached, by name.
    pub coverage: BTreeMap<String, u64>,
    /// The fault schedule as it ran.
    pub faults: Vec<FaultRecord>,
    /// The command that reproduces this run.
    pub reproduce: String,
}

/// The command line that reproduces a seed, with version and scenario hash.
pub fn reproduce_command(scenario_path: &str, seed: u64, scenario_hash: &str) -> String {
    format!("scx run {scenario_path} --seed {seed}  # scx {SCX_VERSION}, scenario {scenario_hash}")
}

impl RunRecord {
    /// The record of `outcome`, run from the scenario at `scenario_path`.
    pub fn from_outcome(outcome: &RunOutcome, scenario_path: &str, scenario_hash: &str) -> Self {
        let spec = &outcome.spec;
        let ms = |ns: u64| ns / 1_000_000;
        let metrics = outcome.metrics;
        Self {
            scx_version: SCX_VERSION.to_owned(),
            scenario: spec.name.clone(),
            scenario_path: scenario_path.to_owned(),
            scenario_hash: scenario_hash.to_owned(),
            seed: spec.seed,
            status: if outcome.passed() { Verdict::Pass } else { Verdict::Fail },
            trace_hash: outcome.trace_hash.clone(),
            converged_at_ms: outcome.converged_after_ms(),
            duration_ms: spec.duration.as_millis() as u64,
            settle_ms: spec.settle.as_millis() as u64,
            quiescent_at_ms: ms(outcome.quiescent_at_ns),
            ended_at_ms: ms(outcome.ended_at_ns),
            violations: outcome
                .violations
                .iter()
                .map(|violation| ViolationRecord {
                    checker: violation.checker.to_owned(),
                    kind: violation.kind.to_owned(),
                    message: violation.message.clone(),
                    at_ms: ms(violation.at_ns),
                    node: violation.node,
                })
                .collect(),
            metrics: Metrics {
                bytes_sent: metrics.bytes_sent,
                bytes_missing: metrics.bytes_missing,
                round_trips: metrics.round_trips,
                sessions: metrics.sessions,
                sessions_abandoned: metrics.sessions_abandoned,
                lanes: metrics.lanes,
                messages_sent: metrics.messages_sent,
                messages_dropped: metrics.messages_dropped,
                forks: metrics.forks,
                conflicts: metrics.conflicts,
                snapshots: metrics.snapshots,
                rollbacks: metrics.rollbacks,
                crashes: metrics.crashes,
            },
            coverage: outcome.coverage.iter().map(|(name, count)| ((*name).to_owned(), *count)).collect(),
            faults: spec
                .faults
                .iter()
                .map(|fault| FaultRecord {
                    kind: fault.kind.name().to_owned(),
                    start_ms: fault.start.as_millis() as u64,
                    end_ms: fault.end.map(|end| end.as_millis() as u64),
                    nodes: match &fault.kind {
                        FaultKind::Latency { .. } | FaultKind::Loss { .. } => Vec::new(),
                        kind => kind.nodes(),
                    },
                })
                .collect(),
            reproduce: reproduce_command(scenario_path, spec.seed, scenario_hash),
        }
    }

    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.status == Verdict::Pass
    }
}
