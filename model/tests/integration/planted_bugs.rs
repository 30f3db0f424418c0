//! Goal: the model-based properties find the shared, deterministic bugs
//! an engine-judges-engine harness cannot: an add-wins set merged as
//! remove-wins, a canonical order with the wrong tie-break, a chain step
//! with its operands swapped.
//! Method: run the replica property with one planted bug switched on
//! (seeded, so the run is reproducible) and require a failing case within
//! the budget; the shrunk failing case must pass with the bug off, so the
//! mismatch is the bug's doing.

use crate::replica::replica_matches_model;
use crate::support::{config_for, run};
use proptest::test_runner::{Config, TestError};
use scx_engine::bugs::Bugs;

/// Cases a bug may take to show. Each is found within a handful.
const BUDGET: u32 = 256;

fn find(bugs: Bugs, seed: u64) -> String {
    // Failures are the expected outcome here: keep them out of the regression files.
    let config = Config { failure_persistence: None, ..config_for(BUDGET, file!(), Some(seed)) };
    let (result, coverage) = run(config, |case, coverage| replica_matches_model(case, bugs, coverage));
    let (reason, minimal) = match result {
        Err(TestError::Fail(reason, minimal)) => (reason, minimal),
        Err(TestError::Abort(reason)) => panic!("the run aborted: {reason}"),
        Ok(()) => panic!("{bugs:?} was not found in {BUDGET} cases"),
    };
    let mut clean = crate::support::Coverage::default();
    let without_bug = replica_matches_model(&minimal, Bugs::NONE, &mut clean);
    assert_eq!(without_bug, Ok(()), "the shrunk case must pass without the bug: {minimal:?}");
    let first = coverage.first_failure.expect("a failing run records its first failure");
    eprintln!("{bugs:?}: found at case {first} of {BUDGET}; shrunk: {reason}");
    reason.to_string()
}

#[test]
fn an_add_wins_set_merged_as_remove_wins_is_found() {
    let reason = find(Bugs { remove_wins_set: true, ..Bugs::NONE }, 1);
    assert!(reason.contains("digest") || reason.contains("reads"), "{reason}");
}

#[test]
fn a_canonical_tie_break_by_author_descending_is_found() {
    let reason = find(Bugs { author_descending_ties: true, ..Bugs::NONE }, 2);
    assert!(reason.contains("status") || reason.contains("order"), "{reason}");
}

#[test]
fn a_chain_step_with_swapped_operands_is_found() {
    let reason = find(Bugs { swapped_chain_step: true, ..Bugs::NONE }, 3);
    assert!(reason.contains("status"), "{reason}");
}
