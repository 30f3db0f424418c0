//! A driver for one [`Node`] in tests: its persists go to a [`MemStore`]
//! (whose crashes tear what was not synced), its datagrams to an outbox, its
//! events to a list; and [`Cluster`], several drivers whose datagrams are
//! delivered at once, in order, with virtual time, so sessions run to the
//! end in a few calls (quinn-proto's `Pair`, for SCX).

use scx_engine::log::Record;
use scx_engine::node::{NodeConfig, NodeEvent, Output, PeerPlan, Persist, RecoveryError, RecoveryReport, SyncConfig};
use scx_engine::protocol::{self, Message};
use scx_engine::{Lane, LaneId, Node, NodeId, ReplicaConfig, World, WorldOp};
use scx_store::{MemStore, Store};

/// One node, its store, and what came out of it.
pub(crate) struct Driver {
    pub(crate) node: Node<World>,
    pub(crate) store: MemStore,
    /// Datagrams sent, in order.
    pub(crate) sent: Vec<(NodeId, Vec<u8>)>,
    /// Events reported, in order.
    pub(crate) events: Vec<NodeEvent<WorldOp>>,
    /// Persists yielded but held back (not written): see [`Driver::hold_persists`].
    pub(crate) held: Vec<Persist>,
    holding: bool,
}

/// A node config around a replica config (the node only answers).
pub(crate) fn node_config(replica: ReplicaConfig) -> NodeConfig {
    NodeConfig { replica, ..NodeConfig::new(NodeId(0), []) }
}

/// A node config that syncs with `peers` in turn, every 100 ms.
pub(crate) fn syncing_config(replica: ReplicaConfig, peers: &[u32]) -> NodeConfig {
    let sync = SyncConfig {
        peers: PeerPlan::RoundRobin(peers.iter().copied().map(NodeId).collect()),
        ..SyncConfig::default()
    };
    NodeConfig { sync, ..node_config(replica) }
}

impl Driver {
    /// Loads `store` and recovers a node from it, then drains its outputs.
    pub(crate) fn open(config: NodeConfig, mut store: MemStore) -> Result<(Self, RecoveryReport), RecoveryError> {
        let recovered = store.load().expect("a memory log loads");
        let (node, report) = Node::recover(World, config, &recovered, 0)?;
        let mut driver = Self { node, store, sent: Vec::new(), events: Vec::new(), held: Vec::new(), holding: false };
        driver.drain();
        Ok((driver, report))
    }

    /// A node on an empty store.
    pub(crate) fn fresh(replica: ReplicaConfig) -> Self {
        Self::open(node_config(replica), MemStore::new()).expect("an empty log recovers").0
    }

    /// From now on persists are kept in [`Driver::held`] instead of written,
    /// as a driver whose fsync has not returned yet.
    pub(crate) fn hold_persists(&mut self) {
        self.holding = true;
    }

    /// Writes every held persist (appends synced) and acknowledges it, then
    /// drains; persists are written as they come again.
    pub(crate) fn release_persists(&mut self) {
        self.holding = false;
        for persist in std::mem::take(&mut self.held) {
            scx_store::persist(&mut self.store, &persist.op).expect("a memory store takes every record");
            self.node.persisted(persist.token);
        }
        // Persists queued behind held-back events come out now, and are written.
        self.drain();
    }

    /// Drains the node's outputs.
    pub(crate) fn drain(&mut self) {
        while let Some(output) = self.node.poll() {
            match output {
                Output::Persist(persist) if self.holding => self.held.push(persist),
                Output::Persist(persist) => {
                    scx_store::persist(&mut self.store, &persist.op).expect("a memory store takes every record");
                    self.node.persisted(persist.token);
                }
                Output::Transmit(transmit) => self.sent.push((transmit.to, transmit.bytes)),
                Output::Event(event) => self.events.push(event),
            }
        }
    }

    /// Authors a lane of `ops` and drains; returns its id.
    pub(crate) fn write(&mut self, ops: Vec<WorldOp>) -> LaneId {
        let id = self.node.write(0, ops).expect("the node may author");
        self.drain();
        id
    }

    /// Hands the node `lanes` as a bundle file from `from` (lanes whose
    /// ancestry is missing wait, as from a peer), and drains.
    pub(crate) fn receive(&mut self, from: NodeId, lanes: &[Lane<WorldOp>]) {
        let bundle = bundle_of(lanes);
        self.node.apply_bundle(0, from, &bundle).expect("a bundle of canonical lanes decodes");
        self.drain();
    }

    /// The store as a crash leaves it: unsynced bytes lost, or the first
    /// `tear` of them torn onto the disk.
    pub(crate) fn crashed_store(&self, tear: Option<usize>) -> MemStore {
        let mut store = self.store.clone();
        store.crash(tear);
        store
    }

    /// The node's log, decoded.
    pub(crate) fn log(&self) -> Vec<Record> {
        scx_engine::log::decode_log(self.store.durable_bytes()).records
    }
}

/// A bundle file holding exactly `lanes` (in the order given, no snapshot).
pub(crate) fn bundle_of(lanes: &[Lane<WorldOp>]) -> Vec<u8> {
    let lanes: Vec<(LaneId, &Lane<WorldOp>)> = lanes.iter().map(|lane| (lane.id(), lane)).collect();
    let batch = protocol::encode_batch(&lanes);
    let message =
        Message::Lanes { session: 0, snapshot: None, lanes: batch, more: false, need: Vec::new(), snapshot_id: None };
    protocol::write_bundle(&[protocol::encode(&message).expect("the test's lanes fit one message")])
}

/// Several drivers whose datagrams are delivered instantly, in send order.
pub(crate) struct Cluster {
    pub(crate) drivers: Vec<Driver>,
}

impl Cluster {
    /// Fires `from`'s next sync tick (its plan picks the peer) and delivers
    /// datagrams until the session, and any it causes, ran to the end.
    pub(crate) fn sync(&mut self, from: usize) {
        let node = &mut self.drivers[from].node;
        let tick = node.poll_timeout().expect("a node with a peer plan has a tick");
        node.handle_timeout(tick);
        self.drivers[from].drain();
        self.deliver_all(tick);
    }

    /// Delivers every datagram sent (and every one sent in answer) until
    /// none is left.
    pub(crate) fn deliver_all(&mut self, now_ns: u64) {
        for _round in 0..10_000 {
            let mut any = false;
            for index in 0..self.drivers.len() {
                let sent = std::mem::take(&mut self.drivers[index].sent);
                for (to, bytes) in sent {
                    any = true;
                    let from = self.drivers[index].node.id();
                    let target = &mut self.drivers[to.0 as usize];
                    target.node.handle_datagram(now_ns, from, &bytes);
                    target.drain();
                }
            }
            if !any {
                return;
            }
        }
        panic!("datagrams still flowed after 10,000 rounds: the protocol must not loop");
    }
}
