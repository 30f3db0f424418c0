//! Goal: a limit holds on every way in, so a hostile peer cannot hurt a
//! node later: a lane over a limit is refused when it arrives (from a peer,
//! a batch or this node's own writes), never logged to fail the next
//! restart. Method: build each hostile input directly, feed it through the
//! public ways in, and check the typed refusal, that nothing changed, and
//! that the node still restarts from its log.

use crate::driver::{Driver, bundle_of, node_config};
use crate::support::config;
use scx_engine::lane::{LaneShapeError, MAX_LANE_BYTES, MAX_OPS_PER_LANE};
use scx_engine::protocol::{
    Bloom, CompactSummary, HelloStatus, MAX_BLOOM_BITS, Message, Summary, SyncEvent, WireError, apply_bundle, decode,
    encode,
};
use scx_engine::{Dot, Lane, LaneError, NodeId, Replica, World, WorldOp};

/// Removes naming many dots each: under the op-count limit, over the byte limit.
fn oversized_ops() -> Vec<WorldOp> {
    let seen: Vec<Dot> = (1000..1100).map(|seq| Dot { author: NodeId(1), seq }).collect();
    let ops: Vec<WorldOp> = (0..4000).map(|key| WorldOp::Remove { key, element: 1, seen: seen.clone() }).collect();
    assert!(ops.len() <= MAX_OPS_PER_LANE);
    ops
}

/// A peer's first lane over [`MAX_LANE_BYTES`] (and no other rule broken).
fn oversized_peer_lane() -> Lane<WorldOp> {
    let lane = Lane::new(NodeId(1), 1, 1, Vec::new(), oversized_ops());
    assert!(lane.to_bytes().len() > MAX_LANE_BYTES, "the lane must be over the limit");
    lane
}

fn restart(node: &Driver) -> Driver {
    Driver::open(node_config(config(0, 2)), node.crashed_store(None)).expect("the node restarts from its log").0
}

fn is_too_large(error: &LaneError) -> bool {
    matches!(error, LaneError::Shape { shape: LaneShapeError::TooLarge { bytes }, .. } if *bytes > MAX_LANE_BYTES)
}

#[test]
fn a_peer_lane_over_the_size_limit_is_refused_at_admission_and_changes_nothing() {
    let mut replica = Replica::new(World, config(0, 2));
    replica.create_lane(vec![WorldOp::Add { key: 1, delta: 1 }]).unwrap();
    let before = replica.status();
    let error = replica.insert(oversized_peer_lane()).expect_err("an oversized lane is refused");
    assert!(is_too_large(&error), "{error}");
    assert_eq!(replica.status(), before, "a refused lane changes nothing");
}

#[test]
fn a_peer_lane_over_the_size_limit_in_a_batch_is_refused_so_the_node_still_restarts() {
    let mut node = Driver::fresh(config(0, 2));
    node.write(vec![WorldOp::Add { key: 1, delta: 1 }]);
    let before = node.node.status();
    let lane = oversized_peer_lane();
    node.receive(NodeId(1), std::slice::from_ref(&lane));
    let refused = node.events.iter().any(|event| {
        matches!(event, scx_engine::NodeEvent::Sync(SyncEvent::LaneRejected { error, .. }) if is_too_large(error))
    });
    assert!(refused, "the lane is refused as too large: {:?}", node.events);
    assert!(!node.node.replica().holds(&lane.id()));
    let mut restarted = restart(&node);
    assert!(!restarted.node.replica().holds(&lane.id()));
    assert_eq!(restarted.node.status(), before);
    // The same lane straight from a bundle file, outside a node, is refused too.
    let mut replica = Replica::new(World, config(0, 2));
    let (_, events) = apply_bundle(&bundle_of(&[lane]), NodeId(1), &mut replica).expect("the bundle is well formed");
    assert!(events.iter().any(|event| matches!(event, SyncEvent::LaneRejected { error, .. } if is_too_large(error))));
}

#[test]
fn authoring_a_lane_over_the_size_or_op_count_limit_is_a_typed_error_and_changes_nothing() {
    let mut replica = Replica::new(World, config(0, 2));
    replica.create_lane(vec![WorldOp::Add { key: 1, delta: 1 }]).unwrap();
    let before = replica.status();
    let error = replica.try_prepare_lane(oversized_ops()).expect_err("no lane is built over the size limit");
    assert!(is_too_large(&error), "{error}");
    let error = replica.create_lane(oversized_ops()).expect_err("no lane is authored over the size limit");
    assert!(is_too_large(&error), "{error}");
    let too_many = vec![WorldOp::Add { key: 1, delta: 1 }; MAX_OPS_PER_LANE + 1];
    let error = replica.try_prepare_lane(too_many).expect_err("no lane is built over the op-count limit");
    let count_refused = matches!(error, LaneError::Shape { shape: LaneShapeError::TooManyOps { count }, .. } if count == MAX_OPS_PER_LANE + 1);
    assert!(count_refused, "{error}");
    assert_eq!(replica.status(), before);
    // The next lane still takes the next seq: nothing was consumed.
    let (_, lane) = replica.create_lane(vec![WorldOp::Add { key: 2, delta: 1 }]).unwrap();
    assert_eq!(lane.seq, 2);
}

/// A handshake carrying a compact summary with `bits` as its Bloom filter.
fn hello_with_filter(bits: Vec<u8>) -> Vec<u8> {
    let status = HelloStatus::new(&Replica::new(World, config(1, 2)).status(), 1);
    let bloom = Bloom { salt: 9, bits };
    let summary = Summary::Compact(CompactSummary { stable_key: None, heads: Vec::new(), bloom });
    encode(&Message::Hello { session: 1, status, summary, receiving: None })
        .expect("a filter within the bit limit fits a message")
}

#[test]
fn a_bloom_filter_over_its_bit_limit_or_with_no_bits_is_refused_on_decode() {
    let largest = MAX_BLOOM_BITS / 8;
    for bytes in [0, largest + 1, largest + 4096] {
        let error = decode(&hello_with_filter(vec![0; bytes])).expect_err("the filter breaks its limits");
        assert!(matches!(error, WireError::Malformed { .. }), "{bytes} bytes of filter: {error}");
    }
    for bytes in [1, 64, largest] {
        assert!(decode(&hello_with_filter(vec![0xff; bytes])).is_ok(), "{bytes} bytes of filter are within the limits");
    }
}

#[test]
fn a_node_refuses_to_author_a_lane_over_the_size_limit_and_still_restarts() {
    let mut node = Driver::fresh(config(0, 2));
    node.write(vec![WorldOp::Add { key: 1, delta: 1 }]);
    let before = node.node.status();
    let error = node.node.write(0, oversized_ops()).expect_err("no lane is authored over the size limit");
    assert!(is_too_large(&error), "{error}");
    node.drain();
    assert_eq!(node.node.status(), before, "a refused write changes nothing");
    let mut restarted = restart(&node);
    assert_eq!(restarted.node.status(), before);
    restarted.write(vec![WorldOp::Add { key: 2, delta: 1 }]);
}
