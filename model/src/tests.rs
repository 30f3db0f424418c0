//! Unit tests of the model on its own: lane validation in any arrival order,
//! closure, replay by hand-checked examples, causal stability, and `read`
//! against full replays over many random causally closed sets.

use crate::{Frontier, Model, ModelError};
use scx_engine::{Dot, Lane, LaneId, NodeId, WorldOp};
use std::collections::BTreeSet;

fn lane(author: u32, seq: u64, parents: &[&Lane<WorldOp>], ops: Vec<WorldOp>) -> Lane<WorldOp> {
    let lamport = 1 + parents.iter().map(|parent| parent.lamport).max().unwrap_or(0);
    Lane::new(NodeId(author), seq, lamport, parents.iter().map(|parent| parent.id()).collect(), ops)
}

fn ids(lanes: &[&Lane<WorldOp>]) -> BTreeSet<LaneId> {
    lanes.iter().map(|lane| lane.id()).collect()
}

#[test]
fn lanes_in_any_order_become_valid_once_their_ancestry_arrives() {
    let a1 = lane(0, 1, &[], vec![WorldOp::Add { key: 1, delta: 2 }]);
    let b1 = lane(1, 1, &[], vec![]);
    let a2 = lane(0, 2, &[&a1, &b1], vec![]);
    let mut model = Model::new([NodeId(0), NodeId(1)]);
    assert_eq!(model.add(a2.clone()), Ok(a2.id()));
    model.add(b1.clone()).unwrap();
    assert!(!model.is_valid(&a2.id()));
    assert_eq!(model.closure([a2.id()]).unwrap_err(), ModelError::MissingLane { id: a1.id() });
    model.add(a1.clone()).unwrap();
    assert_eq!(model.add(a1.clone()), Ok(a1.id()), "adding twice changes nothing");
    assert!(model.is_valid(&a2.id()));
    assert_eq!(model.closure([a2.id()]).unwrap(), ids(&[&a1, &b1, &a2]));
    assert_eq!(model.len(), 3);
}

#[test]
fn a_wrong_stamp_a_broken_chain_and_their_descendants_are_refused() {
    let a1 = lane(0, 1, &[], vec![]);
    let mut bad_stamp = lane(0, 2, &[&a1], vec![]);
    bad_stamp.lamport = 5;
    let skips_a_seq = lane(0, 3, &[&a1], vec![]);
    let no_own_parent = lane(0, 2, &[], vec![]);
    let child_of_bad = lane(1, 1, &[&bad_stamp], vec![]);
    let mut model = Model::new([NodeId(0), NodeId(1)]);
    // The child arrives first: it is judged when its parent is.
    assert!(model.add(child_of_bad.clone()).is_ok());
    model.add(a1.clone()).unwrap();
    assert_eq!(
        model.add(bad_stamp.clone()),
        Err(ModelError::BadLamport { id: bad_stamp.id(), lamport: 5, expected: 2 })
    );
    assert_eq!(
        model.closure([child_of_bad.id()]),
        Err(ModelError::RefusedParent { id: child_of_bad.id(), parent: bad_stamp.id() })
    );
    assert_eq!(
        model.add(skips_a_seq.clone()),
        Err(ModelError::BrokenChain { id: skips_a_seq.id(), dot: skips_a_seq.dot(), own_parent_seqs: vec![1] })
    );
    assert!(matches!(model.add(no_own_parent), Err(ModelError::BrokenChain { .. })));
    let mut zero_seq = lane(1, 1, &[], vec![]);
    zero_seq.seq = 0;
    assert!(matches!(model.add(zero_seq), Err(ModelError::Shape { .. })));
    assert_eq!(model.closed_subset(&model_ids(&model)), ids(&[&a1]));
}

fn model_ids(model: &Model) -> BTreeSet<LaneId> {
    model.lanes.keys().copied().collect()
}

#[test]
fn replay_orders_by_lamport_then_author_then_id_and_chains_from_zero() {
    let a1 = lane(0, 1, &[], vec![WorldOp::Put { key: 1, value: 10, seen: None }]);
    let b1 = lane(1, 1, &[], vec![WorldOp::Put { key: 1, value: 20, seen: None }]);
    let b2 = lane(1, 2, &[&a1, &b1], vec![WorldOp::Insert { key: 2, element: 3 }]);
    let mut model = Model::new([NodeId(0), NodeId(1)]);
    for lane in [&b2, &b1, &a1] {
        model.add(lane.clone()).unwrap();
    }
    let empty = model.replay(&BTreeSet::new()).unwrap();
    assert_eq!((empty.lane_index, empty.chain_hash), (0, crate::hash::GENESIS_CHAIN));
    let replayed = model.replay(&ids(&[&a1, &b1, &b2])).unwrap();
    assert_eq!(replayed.order, [a1.id(), b1.id(), b2.id()], "equal stamps: author 0 before author 1");
    let chain = [a1.id(), b1.id(), b2.id()]
        .iter()
        .fold(crate::hash::GENESIS_CHAIN, |chain, id| crate::hash::chain_next(&chain, id));
    assert_eq!(replayed.chain_hash, chain);
    assert_eq!(replayed.state.value(1).register.map(|register| register.value), Some(20));
    assert_eq!(replayed.conflicts, 1, "b1's put overwrote a1's, which it did not see");
    assert_eq!(replayed.state_digest, replayed.state.digest());
    assert_eq!(model.replay(&ids(&[&b2, &b1])), Err(ModelError::NotClosed { lane: b2.id(), parent: a1.id() }));
}

#[test]
fn a_lane_is_stable_once_every_member_holds_a_descendant() {
    let a1 = lane(0, 1, &[], vec![]);
    let b1 = lane(1, 1, &[&a1], vec![]);
    let a2 = lane(0, 2, &[&a1], vec![]);
    let mut model = Model::new([NodeId(0), NodeId(1)]);
    for lane in [&a1, &b1, &a2] {
        model.add(lane.clone()).unwrap();
    }
    assert_eq!(model.stable(&ids(&[&a1])).unwrap(), BTreeSet::new(), "member 1 holds no lane yet");
    assert_eq!(model.stable(&ids(&[&a1, &b1, &a2])).unwrap(), ids(&[&a1]));
    let replayed = model.replay(&ids(&[&a1, &b1, &a2])).unwrap();
    assert_eq!(replayed.stable_prefix_len(&ids(&[&a1])), 1);
    let nobody = Model::new([]);
    assert_eq!(nobody.stable(&BTreeSet::new()).unwrap(), BTreeSet::new());
}

#[test]
fn read_refuses_unknown_mismatched_and_open_frontiers() {
    let a1 = lane(0, 1, &[], vec![]);
    let b1 = lane(1, 1, &[&a1], vec![]);
    let mut model = Model::new([NodeId(0), NodeId(1)]);
    model.add(a1.clone()).unwrap();
    model.add(b1.clone()).unwrap();
    let unknown = Frontier::from([(NodeId(0), (1, LaneId([7; 32])))]);
    assert_eq!(model.read(&unknown, 0), Err(ModelError::MissingLane { id: LaneId([7; 32]) }));
    let mismatched = Frontier::from([(NodeId(0), (2, a1.id()))]);
    assert!(matches!(model.read(&mismatched, 0), Err(ModelError::FrontierMismatch { .. })));
    let open = Frontier::from([(NodeId(1), (1, b1.id()))]);
    assert_eq!(
        model.read(&open, 0),
        Err(ModelError::FrontierNotClosed { tip: b1.id(), outside: Dot { author: NodeId(0), seq: 1 } })
    );
    assert!(model.read(&Frontier::new(), 0).unwrap().is_absent());
}

/// SplitMix64, so the random histories below depend only on the seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

/// A random valid history: each lane by a random author over its own chain
/// and a random subset of the others' latest lanes, with ops over `keys`
/// keys. `fork` makes one author fork its chain once.
fn random_history(rng: &mut Rng, authors: u32, lanes: usize, keys: u32, fork: bool) -> Vec<Lane<WorldOp>> {
    let mut history: Vec<Lane<WorldOp>> = Vec::new();
    let mut tips: Vec<Option<usize>> = vec![None; authors as usize];
    for step in 0..lanes {
        let author = rng.below(u64::from(authors)) as usize;
        let mut parents: Vec<&Lane<WorldOp>> = Vec::new();
        let own = tips[author];
        // A fork: the author writes a second lane over its previous parent.
        let forking = fork && step == lanes / 2 && own.is_some();
        let own = if forking { own.and_then(|index| own_previous(&history, index)) } else { own };
        parents.extend(own.map(|index| &history[index]));
        for (other, tip) in tips.iter().enumerate() {
            if other != author && rng.below(3) == 0 {
                parents.extend(tip.map(|index| &history[index]));
            }
        }
        let seq = own.map_or(1, |index| history[index].seq + 1);
        let ops = (0..rng.below(4)).map(|_| random_op(rng, keys)).collect();
        let new = lane(author as u32, seq, &parents, ops);
        history.push(new);
        if !forking {
            tips[author] = Some(history.len() - 1);
        }
    }
    history
}

fn own_previous(history: &[Lane<WorldOp>], index: usize) -> Option<usize> {
    let lane = &history[index];
    history.iter().position(|other| other.author == lane.author && other.seq + 1 == lane.seq)
}

fn random_op(rng: &mut Rng, keys: u32) -> WorldOp {
    let key = rng.below(u64::from(keys)) as u32;
    let dot = |rng: &mut Rng| Dot { author: NodeId(rng.below(3) as u32), seq: 1 + rng.below(4) };
    match rng.below(4) {
        0 => WorldOp::Put { key, value: rng.below(100), seen: (rng.below(2) == 0).then(|| dot(rng)) },
        1 => WorldOp::Add { key, delta: rng.below(11) as i64 - 5 },
        2 => WorldOp::Insert { key, element: rng.below(4) },
        _ => {
            let seen: BTreeSet<Dot> = (0..rng.below(3)).map(|_| dot(rng)).collect();
            WorldOp::Remove { key, element: rng.below(4), seen: seen.into_iter().collect() }
        }
    }
}

/// A random causally closed subset: the closure of a few random lanes.
fn random_closed_set(rng: &mut Rng, model: &Model, history: &[Lane<WorldOp>]) -> BTreeSet<LaneId> {
    let picks = 1 + rng.below(3);
    let tips: Vec<LaneId> = (0..picks).map(|_| history[rng.below(history.len() as u64) as usize].id()).collect();
    model.closure(tips).expect("a valid history")
}

#[test]
fn read_equals_a_full_replay_over_many_random_closed_sets() {
    let mut rng = Rng(7);
    let mut sets_checked = 0;
    let mut nonempty_values = 0;
    for round in 0..300 {
        let authors = 1 + rng.below(4) as u32;
        let keys = 1 + rng.below(3) as u32;
        let lanes = 1 + rng.below(30) as usize;
        let history = random_history(&mut rng, authors, lanes, keys, false);
        let mut model = Model::new((0..authors).map(NodeId));
        // Any arrival order.
        let mut arrival = history.clone();
        for i in (1..arrival.len()).rev() {
            arrival.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for lane in arrival {
            model.add(lane).unwrap_or_else(|error| panic!("round {round}: {error}"));
        }
        for _ in 0..5 {
            let set = random_closed_set(&mut rng, &model, &history);
            let replayed = model.replay(&set).unwrap();
            let frontier = model.frontier_of(&set);
            for key in 0..keys {
                let read = model.read(&frontier, key).unwrap();
                assert_eq!(read, replayed.state.value(key), "round {round}, key {key}");
                nonempty_values += usize::from(!read.is_absent());
            }
            sets_checked += 1;
        }
    }
    assert_eq!(sets_checked, 1500);
    assert!(nonempty_values > 1000, "the reads must see real values, saw {nonempty_values}");
}

#[test]
fn read_with_a_forked_author_walks_the_tip_chain() {
    let mut rng = Rng(11);
    let (mut forked_rounds, mut reads, mut refusals) = (0, 0, 0);
    for round in 0..200 {
        let lanes = 12 + rng.below(12) as usize;
        let history = random_history(&mut rng, 3, lanes, 2, true);
        let mut model = Model::new((0..3).map(NodeId));
        for lane in &history {
            model.add(lane.clone()).unwrap_or_else(|error| panic!("round {round}: {error}"));
        }
        forked_rounds += usize::from(!model.forked_authors.is_empty());
        for _ in 0..5 {
            let set = random_closed_set(&mut rng, &model, &history);
            let frontier = model.frontier_of(&set);
            let named = model.closure(frontier.values().map(|(_, tip)| *tip)).unwrap();
            let replayed = model.replay(&named).unwrap();
            let dots: BTreeSet<Dot> = named.iter().map(|id| model.lane(id).unwrap().dot()).collect();
            let holds_both_branches = dots.len() < named.len();
            for key in 0..2 {
                match model.read(&frontier, key) {
                    Ok(read) => {
                        assert!(!holds_both_branches, "round {round}: read over a set with a fork");
                        assert_eq!(read, replayed.state.value(key), "round {round}, key {key}");
                        reads += 1;
                    }
                    Err(ModelError::FrontierNotClosed { .. }) => {
                        assert!(holds_both_branches, "round {round}: a chain-shaped set refused");
                        refusals += 1;
                    }
                    Err(error) => panic!("round {round}: {error}"),
                }
            }
        }
    }
    assert!(reads > 500 && refusals > 20, "both outcomes must happen: {reads} reads, {refusals} refusals");
    assert!(forked_rounds > 100, "forks must really happen, saw {forked_rounds}");
}

#[test]
fn replay_prefix_equals_a_replay_of_the_prefix_set_over_random_closed_sets() {
    let mut rng = Rng(11);
    let mut prefixes_checked = 0;
    for round in 0..200 {
        let authors = 1 + rng.below(4) as u32;
        let lanes = 1 + rng.below(30) as usize;
        let history = random_history(&mut rng, authors, lanes, 3, false);
        let mut model = Model::new((0..authors).map(NodeId));
        for lane in history.iter().cloned() {
            model.add(lane).unwrap_or_else(|error| panic!("round {round}: {error}"));
        }
        let set = random_closed_set(&mut rng, &model, &history);
        let order = model.order(&set).unwrap();
        // Another closed set's replay: a base the prefixes may not extend.
        let other = model.replay(&random_closed_set(&mut rng, &model, &history)).unwrap();
        for len in 0..=order.len() {
            let prefix: BTreeSet<LaneId> = order[..len].iter().copied().collect();
            let expected = model.replay(&prefix).unwrap();
            assert_eq!(model.replay_prefix(&set, len).unwrap(), Some(expected.clone()), "round {round}, prefix {len}");
            // Continuing a shorter prefix's replay, or ignoring a base that
            // is not a prefix, gives the same replay.
            let shorter = model.replay_prefix(&set, rng.below(len as u64 + 1) as usize).unwrap();
            for earlier in [shorter.as_ref(), Some(&other)] {
                let continued = model.replay_prefix_from(&set, len, earlier).unwrap();
                assert_eq!(continued, Some(expected.clone()), "round {round}, prefix {len}, from {earlier:?}");
            }
            prefixes_checked += 1;
        }
        assert_eq!(model.replay_prefix(&set, order.len() + 1).unwrap(), None, "round {round}");
    }
    assert!(prefixes_checked > 1000, "checked {prefixes_checked} prefixes");
}
