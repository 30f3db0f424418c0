//! Goal: a fault-free and a faulty cluster both converge, and a seed
//! reproduces its trace hash. Method: run small `RunSpec`s end to end.

use scx_sim::runner::{RunOptions, run};
use scx_sim::spec::{FaultKind, FaultSpec, RunSpec};
use std::time::Duration;

#[test]
fn a_quiet_mesh_converges_and_reproduces() {
    let spec = RunSpec::basic("quiet", 1, 5);
    let outcome = run(&spec, RunOptions::default());
    assert!(outcome.converged_after_last_write_ms().is_some());
    assert!(outcome.passed(), "{:?}", outcome.violations);
    let again = run(&spec, RunOptions::default());
    assert_eq!(outcome.trace_hash, again.trace_hash);
}

#[test]
fn a_partition_and_a_crash_heal_and_converge() {
    let mut spec = RunSpec::basic("faulty", 2, 5);
    spec.faults = vec![
        FaultSpec {
            start: Duration::from_secs(2),
            end: Some(Duration::from_secs(5)),
            kind: FaultKind::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] },
        },
        FaultSpec {
            start: Duration::from_secs(3),
            end: Some(Duration::from_secs(6)),
            kind: FaultKind::Crash { nodes: vec![2], tear: true, rot: false },
        },
    ];
    spec.network.loss = 0.05;
    spec.network.duplicate = 0.05;
    let outcome = run(&spec, RunOptions::default());
    assert!(outcome.passed(), "{:?}", outcome.violations);
    assert_eq!(outcome.coverage["crashes"], 1);
    assert!(outcome.coverage["messages-dropped"] > 0, "the partition and the loss must drop datagrams");
}

#[test]
fn a_run_that_writes_nothing_tested_nothing_and_does_not_pass() {
    let mut spec = RunSpec::basic("silent", 3, 3);
    spec.workload.ops_per_sec = 0.0;
    let outcome = run(&spec, RunOptions::default());
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    assert_eq!(outcome.verdict(), scx_sim::record::Verdict::NothingTested);
    assert!(!outcome.passed());
    assert_eq!(outcome.note().as_deref(), Some("nothing was tested: no node acknowledged a write"));
}

#[test]
fn a_run_whose_nodes_all_end_down_tested_nothing() {
    let mut spec = RunSpec::basic("all-down", 4, 3);
    spec.faults.push(FaultSpec {
        start: Duration::from_secs(5),
        end: None,
        kind: FaultKind::Crash { nodes: vec![0, 1, 2], tear: false, rot: false },
    });
    let outcome = run(&spec, RunOptions::default());
    assert_eq!(outcome.verdict(), scx_sim::record::Verdict::NothingTested, "{:?}", outcome.violations);
    assert!(outcome.note().unwrap().contains("no node was up at the end"));
}

#[test]
fn a_panic_of_the_harness_is_a_harness_error_never_an_engine_violation() {
    // A plan no scenario file can produce (validation refuses it): the nemesis
    // indexes a node that does not exist, a bug of the harness's input.
    let mut spec = RunSpec::basic("broken-plan", 5, 3);
    spec.faults.push(FaultSpec {
        start: Duration::from_secs(1),
        end: None,
        kind: FaultKind::Crash { nodes: vec![7], tear: false, rot: false },
    });
    let outcome = run(&spec, RunOptions::default());
    assert!(outcome.violations.is_empty(), "not blamed on the engine: {:?}", outcome.violations);
    assert_eq!(outcome.verdict(), scx_sim::record::Verdict::HarnessError);
    let note = outcome.note().unwrap();
    assert!(note.contains("the harness panicked") && note.contains("sim/src/"), "{note}");
}
