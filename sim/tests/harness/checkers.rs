//! Goal: every checker can fail; a checker that cannot fail checks nothing.
//! Method: build the violating situation directly (inside a madsim runtime,
//! since checkers stamp simulated time) or as a run plan, and assert the
//! checker reports it by name.

use scx_engine::bugs::Bugs;
use scx_engine::{LaneId, NodeId, Replica, ReplicaConfig, World as Law, WorldOp};
use scx_sim::checkers;
use scx_sim::runner::{RunOptions, run};
use scx_sim::spec::{FaultKind, FaultSpec, RunSpec};
use scx_sim::world::World;
use std::time::Duration;

fn in_runtime<T>(body: impl FnOnce(std::sync::Arc<World>) -> T + Send + 'static) -> (T, Vec<&'static str>)
where
    T: Send + 'static,
{
    let runtime = madsim::runtime::Runtime::new();
    let world = World::new(RunSpec::basic("checker", 1, 3), false);
    let result = runtime.block_on({
        let world = world.clone();
        async move { body(world) }
    });
    let names = scx_sim::world::lock(&world.violations).iter().map(|violation| violation.checker).collect();
    (result, names)
}

fn replica(node: u32, bugs: Bugs) -> Replica<Law> {
    let mut config = ReplicaConfig::new(NodeId(node), (0..3).map(NodeId));
    config.snapshot_interval = 4;
    config.checkpoint_interval = 2;
    config.bugs = bugs;
    Replica::new(Law, config)
}

#[test]
fn convergence_fails_when_a_partition_never_heals() {
    let mut spec = RunSpec::basic("split-forever", 3, 4);
    spec.settle = Duration::from_secs(3);
    spec.faults = vec![FaultSpec {
        start: Duration::from_secs(1),
        end: None,
        kind: FaultKind::Partition { groups: vec![vec![0, 1], vec![2, 3]] },
    }];
    let outcome = run(&spec, RunOptions::default());
    assert_eq!(outcome.violations.len(), 1, "{:?}", outcome.violations);
    assert_eq!(outcome.violations[0].checker, "convergence");
    assert_eq!(outcome.violations[0].kind, "eventually");
}

#[test]
fn forks_fail_on_two_authored_lanes_with_one_seq() {
    let (_, names) = in_runtime(|world| {
        let (a, b) = (LaneId([1; 32]), LaneId([2; 32]));
        scx_sim::world::lock(&world.authored).extend([a, b]);
        checkers::forks::check(&world, 0, scx_engine::Dot { author: NodeId(1), seq: 4 }, a, b);
        // Corrupted bytes that collide with a real lane are not a fork.
        checkers::forks::check(&world, 2, scx_engine::Dot { author: NodeId(2), seq: 4 }, a, LaneId([9; 32]));
    });
    assert_eq!(names, ["forks"]);
}

#[test]
fn replay_fails_when_state_depends_on_arrival_order() {
    let (_, names) = in_runtime(|world| {
        let mut writer = replica(0, Bugs::NONE);
        let mut other = replica(1, Bugs::NONE);
        let mut lanes = Vec::new();
        for key in 0..6 {
            let put = writer.state().put(key % 2, u64::from(key));
            lanes.push(writer.create_lane(vec![put]).unwrap().1);
            let put = other.state().put(key % 2, 100 + u64::from(key));
            lanes.push(other.create_lane(vec![put]).unwrap().1);
        }
        let bugs = Bugs { arrival_order_merge: true, ..Bugs::NONE };
        let mut buggy = replica(2, bugs);
        for lane in lanes.iter().rev().chain(lanes.iter()) {
            let _ = buggy.insert(lane.clone());
            let _ = buggy.status();
        }
        checkers::replay::check_node(&world, 2, &mut buggy);
    });
    assert_eq!(names, ["replay"]);
}

#[test]
fn durability_fails_when_an_acknowledged_lane_is_missing() {
    let (_, names) = in_runtime(|world| {
        let mut writer = replica(0, Bugs::NONE);
        let (id, lane) = writer.create_lane(vec![WorldOp::Add { key: 1, delta: 1 }]).unwrap();
        scx_sim::world::lock(&world.oracle).ack(0, id, lane, 0);
        let amnesiac = replica(0, Bugs::NONE);
        checkers::durability::check_node(&world, 0, &writer);
        checkers::durability::check_node(&world, 0, &amnesiac);
    });
    assert_eq!(names, ["durability"]);
}

#[test]
fn snapshots_fail_when_nodes_disagree_on_a_snapshot_point() {
    let (_, names) = in_runtime(|world| {
        // One member only: everything it writes is stable at once.
        let solo = |node| {
            let mut config = ReplicaConfig::new(NodeId(node), [NodeId(node)]);
            config.snapshot_interval = 4;
            config.checkpoint_interval = 2;
            Replica::new(Law, config)
        };
        let (mut x, mut y) = (solo(0), solo(0));
        for key in 0..8 {
            x.create_lane(vec![WorldOp::Add { key, delta: 1 }]).unwrap();
            y.create_lane(vec![WorldOp::Add { key, delta: 2 }]).unwrap();
        }
        x.status();
        y.status();
        checkers::snapshots::check(&world, &mut [(0, &mut x), (1, &mut y)]);
    });
    assert_eq!(names, ["snapshots"]);
}

#[test]
fn recovery_fails_on_a_log_that_does_not_replay() {
    // A lane record whose parent is not in the log (its bytes were damaged
    // above the checksum layer) cannot be recovered; the node reports it.
    let runtime = madsim::runtime::Runtime::new();
    let world = World::new(RunSpec::basic("bad-disk", 4, 2), false);
    let names: Vec<&str> = runtime.block_on({
        let world = world.clone();
        async move {
            use scx_engine::store::{RecordKind, Store};
            let mut disk = world.disks[0].clone();
            let mut forged = writer_lane_bytes();
            forged[3] ^= 0x01;
            disk.append(RecordKind::Lane, &forged).unwrap();
            disk.sync().unwrap();
            let opened = scx_engine::durable::DurableReplica::open(
                Law,
                ReplicaConfig::new(NodeId(0), [NodeId(0), NodeId(1)]),
                disk,
            );
            if let Err(error) = opened {
                world.violate("recovery", "always", Some(0), error.to_string());
            }
            scx_sim::world::lock(&world.violations).iter().map(|violation| violation.checker).collect()
        }
    });
    assert_eq!(names, ["recovery"]);
}

fn writer_lane_bytes() -> Vec<u8> {
    let mut writer = replica(0, Bugs::NONE);
    writer.create_lane(vec![WorldOp::Add { key: 1, delta: 1 }]).unwrap();
    let (_, lane) = writer.create_lane(vec![WorldOp::Add { key: 2, delta: 1 }]).unwrap();
    lane.to_bytes()
}

#[test]
fn coverage_reports_what_the_faults_did() {
    let mut spec = RunSpec::basic("coverage", 5, 3);
    spec.network.loss = 0.2;
    spec.faults = vec![FaultSpec {
        start: Duration::from_secs(2),
        end: Some(Duration::from_secs(4)),
        kind: FaultKind::Crash { nodes: vec![1], tear: false },
    }];
    let outcome = run(&spec, RunOptions::default());
    assert!(outcome.passed(), "{:?}", outcome.violations);
    assert!(outcome.coverage["messages-dropped"] > 0);
    assert_eq!(outcome.coverage["crashes"], 1);
    assert!(outcome.coverage["rollbacks"] > 0, "concurrent writers force late lanes");
}
