//! Goal: a node keeps at most one session open per peer, says which it has
//! open, and ignores any message of a session it already closed (a
//! duplicated Hello is not answered twice).
//! Method: two `Driver`s whose datagrams the test carries by hand, so each
//! duplicate is delivered exactly where it would hurt.

use crate::driver::{Driver, node_config, syncing_config};
use crate::support::config;
use scx_engine::node::{NodeEvent, Output};
use scx_engine::protocol::{Expect, Role};
use scx_engine::{Node, NodeId, World, WorldOp};
use scx_store::MemStore;

fn started(events: &[NodeEvent<WorldOp>]) -> usize {
    events.iter().filter(|event| matches!(event, NodeEvent::SessionStarted { .. })).count()
}

#[test]
fn ticks_while_a_session_is_open_start_no_second_one_with_that_peer() {
    // Node 0 syncs with node 1 only; node 1 never answers. Ticks come every
    // 100 ms and the session expires after a second, so three ticks find it
    // still open.
    let (mut initiator, _) = Driver::open(syncing_config(config(0, 2), &[1]), MemStore::new()).unwrap();
    let mut ticks = Vec::new();
    for _ in 0..3 {
        let tick = initiator.node.poll_timeout().expect("a node with a peer plan has a tick");
        initiator.node.handle_timeout(tick);
        initiator.drain();
        ticks.push(tick);
    }
    assert_eq!(ticks, [100_000_000, 200_000_000, 300_000_000], "three ticks, well inside the session timeout");
    assert_eq!(started(&initiator.events), 1, "{:?}", initiator.events);
    assert_eq!(initiator.sent.len(), 1, "one Hello, not one per tick");
    let open: Vec<_> = initiator.node.open_sessions().collect();
    assert_eq!(open.len(), 1, "{open:?}");
    let (peer, _, role, expect) = open[0];
    assert_eq!((peer, role, expect), (NodeId(1), Role::Initiator, Expect::Reply));
}

#[test]
fn messages_of_a_closed_session_are_ignored_on_both_sides() {
    let mut initiator = Driver::open(syncing_config(config(0, 2), &[1]), MemStore::new()).unwrap().0;
    let mut responder = Driver::open(node_config(config(1, 2)), MemStore::new()).unwrap().0;
    initiator.write(vec![WorldOp::Add { key: 1, delta: 1 }]);
    responder.write(vec![WorldOp::Add { key: 2, delta: 1 }]);
    let tick = initiator.node.poll_timeout().unwrap();
    initiator.node.handle_timeout(tick);
    initiator.drain();
    // Hello, Delta, Lanes: the divergent pair's whole session.
    let (_, hello) = initiator.sent.pop().expect("a hello");
    responder.node.handle_datagram(tick, NodeId(0), &hello);
    responder.drain();
    let (_, delta) = responder.sent.pop().expect("a delta");
    initiator.node.handle_datagram(tick, NodeId(1), &delta);
    initiator.drain();
    let (_, lanes) = initiator.sent.pop().expect("the initiator's lanes");
    responder.node.handle_datagram(tick, NodeId(0), &lanes);
    responder.drain();
    assert_eq!(initiator.node.status(), responder.node.status());
    assert_eq!(initiator.node.open_sessions().count() + responder.node.open_sessions().count(), 0);
    // Every message again, as a duplicating network delivers it late.
    let (events_before, status) = ((initiator.events.len(), responder.events.len()), initiator.node.status());
    responder.node.handle_datagram(tick, NodeId(0), &hello);
    responder.node.handle_datagram(tick, NodeId(0), &lanes);
    responder.drain();
    initiator.node.handle_datagram(tick, NodeId(1), &delta);
    initiator.drain();
    assert!(responder.sent.is_empty(), "a closed session's Hello was answered again");
    assert!(initiator.sent.is_empty(), "a closed session's Delta was answered again");
    assert_eq!((initiator.events.len(), responder.events.len()), events_before, "duplicates are silent");
    assert_eq!(responder.node.open_sessions().count(), 0, "no session reopened");
    assert_eq!((initiator.node.status(), responder.node.status()), (status.clone(), status));
}

#[test]
fn a_fresh_node_has_no_session_until_its_tick() {
    let mut node = Node::new(World, syncing_config(config(0, 2), &[1]), 0);
    while let Some(output) = node.poll() {
        assert!(matches!(output, Output::Persist(_)) || matches!(output, Output::Event(_)), "{output:?}");
    }
    assert_eq!(node.open_sessions().count(), 0);
}
