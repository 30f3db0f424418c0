//! Goal: the harness finds each planted bug within a few hundred seeds.
//! Method: for each bug, run seeds of a fault-heavy plan that exercises the
//! code the bug lives in, stop at the first failing seed, and report
//! seeds-to-first-failure; the same plan without the bug must pass those seeds.

use scx_sim::runner::{RunOptions, run};
use scx_sim::spec::{FaultKind, FaultSpec, PlantedBug, RunSpec, Topology};
use std::time::Duration;

/// The plan each bug is hunted with.
pub(crate) fn hunting_plan(bug: PlantedBug, seed: u64) -> RunSpec {
    let mut spec = RunSpec::basic(bug.name(), seed, 4);
    spec.duration = Duration::from_secs(6);
    spec.settle = Duration::from_secs(10);
    spec.snapshot_interval = 16;
    spec.network.loss = 0.05;
    spec.network.duplicate = 0.05;
    spec.network.reorder = 0.1;
    spec.workload.ops_per_sec = 40.0;
    let secs = Duration::from_secs;
    spec.faults = vec![
        FaultSpec {
            start: secs(1),
            end: Some(secs(3)),
            kind: FaultKind::Partition { groups: vec![vec![0, 1], vec![2, 3]] },
        },
        FaultSpec {
            start: secs(2),
            end: Some(secs(4)),
            kind: FaultKind::Crash { nodes: vec![(seed % 4) as u32], tear: true },
        },
    ];
    if bug == PlantedBug::UnverifiedSnapshot {
        spec.topology = Topology::AirGapped;
        spec.network.corrupt = 0.2;
        spec.faults.truncate(0);
    }
    spec.bug = Some(bug);
    spec
}

fn seeds_to_first_failure(bug: PlantedBug, limit: u64) -> Option<(u64, String)> {
    (0..limit).find_map(|seed| {
        let outcome = run(&hunting_plan(bug, seed), RunOptions::default());
        outcome.violations.first().map(|violation| (seed, format!("{}: {}", violation.checker, violation.message)))
    })
}

#[test]
fn every_planted_bug_is_found_within_a_few_hundred_seeds() {
    let mut report = Vec::new();
    for bug in PlantedBug::ALL {
        let found = seeds_to_first_failure(bug, 300);
        report.push(format!(
            "{:<22} {}",
            bug.name(),
            match &found {
                Some((seed, violation)) => format!("found at seed {seed} ({} seeds): {violation}", seed + 1),
                None => "NOT FOUND in 300 seeds".to_owned(),
            }
        ));
        let Some((seed, _)) = found else { continue };
        let mut clean = hunting_plan(bug, seed);
        clean.bug = None;
        let outcome = run(&clean, RunOptions::default());
        assert!(outcome.passed(), "seed {seed} fails without the bug too: {:?}", outcome.violations);
    }
    eprintln!("planted-bug catalogue (seeds to first failure):\n{}", report.join("\n"));
    assert!(report.iter().all(|line| !line.contains("NOT FOUND")), "{}", report.join("\n"));
}
