//! The result record of one run: one JSON line per seed in a fuzz results
//! file, and the `--format json` output of `scx run`. Reports read these.
//!
//! Invariant: a record holds only what the seed determines (no wall-clock
//! times, no host names), so results files are byte-identical across
//! machines, `--jobs` and shard splits.

use crate::runner::RunOutcome;
use crate::spec::{FaultKind, PlantedBug};
pub use scx_reports::model::{
    CampaignManifest, FaultRecord, ManifestInvariant, ManifestLine, ManifestScenario, ManifestSeed, Metrics, RunRecord,
    Verdict, ViolationRecord,
};

/// The tool's version, printed beside every reproduce command.
pub const SCX_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The command line that reproduces a seed, with version and scenario hash;
/// a run with a planted bug names it, so the line reproduces that run.
pub fn reproduce_command(scenario_path: &str, seed: u64, scenario_hash: &str, bug: Option<PlantedBug>) -> String {
    let bug = bug.map(|bug| format!(" --bug {}", bug.name())).unwrap_or_default();
    format!("scx run {scenario_path} --seed {seed}{bug}  # scx {SCX_VERSION}, scenario {scenario_hash}")
}

/// A violation as a record holds it.
pub fn violation_record(violation: &crate::checkers::Violation) -> ViolationRecord {
    ViolationRecord {
        checker: violation.checker.to_owned(),
        kind: violation.kind.to_owned(),
        message: violation.message.clone(),
        at_ms: violation.at_ns / 1_000_000,
        node: violation.node,
    }
}

/// The record of `outcome`, run from the scenario at `scenario_path`.
pub fn from_outcome(outcome: &RunOutcome, scenario_path: &str, scenario_hash: &str) -> RunRecord {
    let spec = &outcome.spec;
    let ms = |ns: u64| ns / 1_000_000;
    RunRecord {
        scx_version: SCX_VERSION.to_owned(),
        scenario: spec.name.clone(),
        scenario_path: scenario_path.to_owned(),
        scenario_hash: scenario_hash.to_owned(),
        seed: spec.seed,
        status: outcome.verdict(),
        trace_hash: outcome.trace_hash.clone(),
        converged_at_ms: outcome.converged_at_ns.map(ms),
        converged_after_last_heal_ms: outcome.converged_after_last_heal_ms(),
        converged_after_last_write_ms: outcome.converged_after_last_write_ms(),
        last_heal_at_ms: outcome.last_heal_at_ns().map(ms),
        last_write_at_ms: outcome.last_write_at_ns.map(ms),
        sample_interval_ms: spec.sample_interval.as_millis() as u64,
        duration_ms: spec.duration.as_millis() as u64,
        settle_ms: spec.settle.as_millis() as u64,
        quiescent_at_ms: ms(outcome.quiescent_at_ns),
        ended_at_ms: ms(outcome.ended_at_ns),
        violations: outcome.violations.iter().map(violation_record).collect(),
        note: outcome.note(),
        metrics: outcome.metrics,
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
                groups: match &fault.kind {
                    FaultKind::Partition { groups } => groups.clone(),
                    FaultKind::OneWay { from, to } => vec![from.clone(), to.clone()],
                    _ => Vec::new(),
                },
            })
            .collect(),
        reproduce: reproduce_command(scenario_path, spec.seed, scenario_hash, spec.bug),
    }
}
