//! Goal: every checker can fail, through the real path; a checker that
//! cannot fail checks nothing.
//! Method: run a shipped scenario (or a fixture) as a real cluster with a
//! planted bug that breaks the checker's property, assert that checker
//! reports it, and assert the same seed passes without the bug. No checker
//! function is called directly.

use scx_sim::plan;
use scx_sim::runner::{RunOptions, RunOutcome, run};
use scx_sim::scenario::Scenario;
use scx_sim::spec::PlantedBug;
use std::path::Path;

fn scenario(path: &str) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace");
    Scenario::from_path(&root.join(path)).expect("a valid scenario")
}

fn outcome(path: &str, seed: u64, bug: Option<PlantedBug>) -> RunOutcome {
    run(&plan::resolve(&scenario(path), seed, bug), RunOptions::default())
}

/// Runs `path` at `seed` with `bug` and asserts `checker` reports the
/// violation; the same run without the bug passes.
fn fails_through(checker: &str, path: &str, seed: u64, bug: PlantedBug) -> String {
    let broken = outcome(path, seed, Some(bug));
    let found = broken.violations.iter().find(|violation| violation.checker == checker);
    let Some(found) = found else {
        panic!("{} with {} at seed {seed}: {checker} did not fire: {:?}", path, bug.name(), broken.violations)
    };
    let clean = outcome(path, seed, None);
    assert!(clean.passed(), "{path} seed {seed} fails without the bug too: {:?} {:?}", clean.violations, clean.note());
    found.message.clone()
}

#[test]
fn convergence_fails_when_a_partition_never_heals() {
    let never = outcome("sim/tests/fixtures/failing/never-heals.toml", 0, None);
    assert_eq!(never.violations.len(), 1, "{:?}", never.violations);
    assert_eq!((never.violations[0].checker, never.violations[0].kind), ("convergence", "eventually"));
}

#[test]
fn convergence_fails_when_deltas_leave_out_a_lane() {
    let message = fails_through("convergence", "scenarios/quickstart.toml", 0, PlantedBug::DeltaSkipsLast);
    assert!(message.contains("did not converge"), "{message}");
}

#[test]
fn reads_fail_when_the_add_wins_set_merges_as_remove_wins() {
    let message = fails_through("reads", "scenarios/quickstart.toml", 0, PlantedBug::RemoveWinsSet);
    assert!(message.contains("but the model gives") && message.contains("lanes on this key"), "{message}");
}

#[test]
fn reads_fail_when_equal_stamps_are_ordered_by_author_descending() {
    fails_through("reads", "scenarios/partition-heal-mesh.toml", 0, PlantedBug::AuthorDescendingTies);
}

#[test]
fn reads_fail_when_late_lanes_are_applied_where_they_arrive() {
    fails_through("reads", "scenarios/quickstart.toml", 0, PlantedBug::ArrivalOrderMerge);
}

#[test]
fn snapshots_fail_when_pruning_passes_the_stable_point() {
    let message = fails_through("snapshots", "scenarios/quickstart.toml", 0, PlantedBug::PrunePastStable);
    assert!(message.contains("not causally stable") || message.contains("model"), "{message}");
}

#[test]
fn snapshots_fail_when_the_chain_step_swaps_its_operands() {
    let message = fails_through("snapshots", "scenarios/quickstart.toml", 0, PlantedBug::SwappedChainStep);
    assert!(message.contains("the model's replay of that prefix"), "{message}");
}

#[test]
fn durability_fails_when_lanes_are_sent_before_they_are_durable() {
    fails_through("durability", "scenarios/crash-torn-writes.toml", 0, PlantedBug::SendBeforeDurable);
}

#[test]
fn replay_fails_when_late_lanes_are_applied_where_they_arrive() {
    let message = fails_through("replay", "scenarios/quickstart.toml", 0, PlantedBug::ArrivalOrderMerge);
    assert!(message.contains("the model's replay of its lanes"), "{message}");
}

#[test]
fn snapshot_chain_fails_when_pruning_passes_the_stable_point() {
    fails_through("snapshot-chain", "scenarios/partition-heal-mesh.toml", 0, PlantedBug::PrunePastStable);
}

#[test]
fn forks_fail_when_a_node_sends_lanes_before_they_are_durable_and_reuses_a_seq() {
    let message = fails_through("forks", "scenarios/client-server.toml", 0, PlantedBug::SendBeforeDurable);
    assert!(message.contains("signed two lanes with seq"), "{message}");
}

#[test]
fn forks_fail_when_an_equivocation_is_dropped_without_evidence() {
    let message = fails_through("forks", "scenarios/byzantine-peer.toml", 0, PlantedBug::ForkDedupedByDot);
    assert!(message.contains("without fork evidence"), "{message}");
}

#[test]
fn durability_fails_when_a_rotten_record_is_taken_for_a_torn_write() {
    let message = fails_through("durability", "scenarios/crash-torn-writes.toml", 0, PlantedBug::RotTakenForTear);
    assert!(message.contains("rotten log without rejoining"), "{message}");
}

#[test]
fn in_sync_fails_when_a_responder_compares_lane_indexes_only() {
    let message = fails_through("in-sync", "scenarios/bridge-partition.toml", 0, PlantedBug::InSyncByLaneIndex);
    assert!(message.contains("answered \"in sync\""), "{message}");
}

#[test]
fn warnings_fail_when_a_batch_back_reference_points_one_lane_early() {
    let message = fails_through("warnings", "scenarios/bridge-partition.toml", 0, PlantedBug::BackrefOffByOne);
    assert!(message.contains("with honest nodes and no corruption"), "{message}");
}

#[test]
fn recovery_fails_when_a_torn_tail_is_taken_for_corruption() {
    fails_through("recovery", "scenarios/client-server.toml", 0, PlantedBug::RecoveryRefusesTornTail);
}

#[test]
fn write_fails_when_commit_records_exceed_the_record_limit() {
    let message = fails_through("write", "scenarios/air-gapped.toml", 0, PlantedBug::OversizedCommitRecord);
    assert!(message.contains("refused a write on a healthy disk"), "{message}");
}

#[test]
fn panic_fails_the_run_when_an_engine_assertion_fires() {
    let message = fails_through("panic", "scenarios/bridge-partition.toml", 0, PlantedBug::PanicOnRedundantLane);
    assert!(message.contains("engine/src/"), "the panic is located in the engine: {message}");
}

#[test]
fn determinism_fails_when_session_ids_come_from_a_process_wide_counter() {
    let spec = plan::resolve(&scenario("scenarios/bridge-partition.toml"), 0, Some(PlantedBug::GlobalSessionIds));
    let (first, second) = (run(&spec, RunOptions::default()), run(&spec, RunOptions::default()));
    let violation = scx_sim::checkers::determinism::check(&first, &second);
    assert!(violation.is_some_and(|v| v.checker == "determinism"), "two runs of one seed gave one trace");
    let clean = plan::resolve(&scenario("scenarios/bridge-partition.toml"), 0, None);
    let (first, second) = (run(&clean, RunOptions::default()), run(&clean, RunOptions::default()));
    assert!(scx_sim::checkers::determinism::check(&first, &second).is_none());
}

#[test]
fn coverage_reports_what_the_faults_did() {
    let crashes = outcome("scenarios/crash-torn-writes.toml", 0, None);
    assert!(crashes.passed(), "{:?}", crashes.violations);
    assert!(crashes.coverage["crashes"] > 0);
    assert!(crashes.coverage["unsynced-bytes-lost"] > 0, "crashes land inside IO operations");
    assert!(crashes.coverage["rollbacks"] > 0, "concurrent writers force late lanes");
}
