//! Goal: the same lane set gives the same chain hash, digest and state on
//! every replica, whatever the arrival order, duplication or delay.
//! Method: generate multi-author histories, deliver them to fresh replicas
//! in shuffled, duplicated and interleaved orders (lanes whose parents have
//! not arrived wait in the pending set), and compare against in-order replay.

use crate::support::{Rng, history, replay};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_permutation_and_duplication_converges(seed: u64, authors in 1u32..5, steps in 1usize..120) {
        let lanes = history(seed, authors, steps);
        let (_, expected) = replay(0, authors, &lanes);
        prop_assert_eq!(expected.lane_index, lanes.len() as u64);

        let mut rng = Rng::new(seed.wrapping_add(1));
        let mut shuffled = lanes.clone();
        rng.shuffle(&mut shuffled);
        let duplicates: Vec<_> = (0..lanes.len() / 3).map(|_| lanes[rng.below(lanes.len() as u64) as usize].clone()).collect();
        shuffled.extend(duplicates);
        rng.shuffle(&mut shuffled);
        let (replica, actual) = replay(authors.saturating_sub(1), authors, &shuffled);
        prop_assert_eq!(&actual, &expected);
        prop_assert_eq!(replica.pending_lanes(), 0);
    }

    #[test]
    fn interleaved_materialisation_matches_batch(seed: u64, authors in 2u32..5, steps in 10usize..120, every in 1usize..9) {
        // Asking for the status between arrivals forces many rollbacks and
        // partial replays; the result must equal one batch replay.
        let lanes = history(seed, authors, steps);
        let (_, expected) = replay(0, authors, &lanes);
        let mut rng = Rng::new(seed ^ 7);
        let mut shuffled = lanes.clone();
        rng.shuffle(&mut shuffled);
        let mut replica = crate::support::replica(1, authors);
        for (i, lane) in shuffled.iter().enumerate() {
            replica.insert(lane.clone()).unwrap();
            if i % every == 0 {
                let _ = replica.status();
            }
        }
        prop_assert_eq!(replica.status(), expected);
    }
}

#[test]
fn held_lanes_are_causally_closed_while_history_is_partial() {
    // Delayed and partial history is normal: a lane without its parents waits.
    let lanes = history(11, 3, 60);
    let mut replica = crate::support::replica(0, 3);
    for lane in lanes.iter().rev() {
        replica.insert(lane.clone()).unwrap();
    }
    assert_eq!(replica.pending_lanes(), 0, "all ancestry arrived, so nothing waits");
    let (_, expected) = replay(0, 3, &lanes);
    assert_eq!(replica.status(), expected);
    let mut partial = crate::support::replica(0, 3);
    for lane in &lanes[1..] {
        partial.insert(lane.clone()).unwrap();
    }
    let status = partial.status();
    assert!(status.lane_index < lanes.len() as u64 - 1, "lanes descending from the first one must wait");
    assert!(partial.pending_lanes() > 0);
}

#[test]
fn concurrent_writers_produce_counted_conflicts() {
    let lanes = history(5, 4, 200);
    let (replica, _) = replay(0, 4, &lanes);
    assert!(replica.metrics().conflicts > 0, "concurrent puts and removes on 12 keys must conflict");
}

#[test]
fn replay_counters_count_each_lane_applied_and_each_rollback() {
    let lanes = history(9, 3, 90);
    let (replica, _) = replay(0, 3, &lanes);
    let metrics = replica.metrics();
    assert_eq!((metrics.lanes_replayed, metrics.rollbacks), (lanes.len() as u64, 0), "one batch replay");
    // Reading between late arrivals replays the displaced suffix again.
    let mut shuffled = lanes.clone();
    Rng::new(9).shuffle(&mut shuffled);
    let mut replica = crate::support::replica(1, 3);
    for lane in &shuffled {
        replica.insert(lane.clone()).unwrap();
        let _ = replica.status();
    }
    let metrics = replica.metrics();
    assert!(metrics.rollbacks > 0, "{metrics:?}");
    assert!(metrics.lanes_replayed > lanes.len() as u64, "{metrics:?}");
}
