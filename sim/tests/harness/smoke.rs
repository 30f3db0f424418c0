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
            kind: FaultKind::Crash { nodes: vec![2], tear: true },
        },
    ];
    spec.network.loss = 0.05;
    spec.network.duplicate = 0.05;
    let outcome = run(&spec, RunOptions::default());
    assert!(outcome.passed(), "{:?}", outcome.violations);
    assert_eq!(outcome.coverage["crashes"], 1);
    assert!(outcome.coverage["messages-dropped"] > 0, "the partition and the loss must drop datagrams");
}
