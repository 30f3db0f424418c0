//! An in-memory cluster of replicas and syncers over a deterministic network
//! that can lose, duplicate and reorder datagrams: the protocol's test bench
//! (quinn-proto's `Pair`, for N nodes).

use crate::support::{Rng, config, random_ops};
use scx_engine::protocol::{Outcome, SessionMetrics, SummaryMode, SyncEvent, Syncer};
use scx_engine::{NodeId, Replica, Status, World};

pub(crate) struct Faults {
    pub(crate) loss: u64,
    pub(crate) duplicate: u64,
    pub(crate) reorder: bool,
}

impl Faults {
    pub(crate) const NONE: Self = Self { loss: 0, duplicate: 0, reorder: false };
}

pub(crate) struct Cluster {
    pub(crate) replicas: Vec<Replica<World>>,
    pub(crate) syncers: Vec<Syncer>,
    pub(crate) events: Vec<(usize, SyncEvent)>,
    /// Kinds of the datagrams delivered, in order.
    pub(crate) delivered: Vec<&'static str>,
    in_flight: Vec<(usize, usize, Vec<u8>)>,
    rng: Rng,
}

impl Cluster {
    pub(crate) fn new(nodes: u32, seed: u64, prune: bool) -> Self {
        let replicas = (0..nodes)
            .map(|node| {
                let mut config = config(node, nodes);
                config.prune = prune;
                Replica::new(World, config)
            })
            .collect();
        let syncers = (0..nodes).map(|node| Syncer::new(NodeId(node))).collect();
        Self {
            replicas,
            syncers,
            events: Vec::new(),
            delivered: Vec::new(),
            in_flight: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// A cluster whose nodes all state compact summaries with `bits_per_lane`
    /// Bloom bits (small values make false positives common).
    pub(crate) fn compact(nodes: u32, seed: u64, prune: bool, bits_per_lane: usize) -> Self {
        let mut cluster = Self::new(nodes, seed, prune);
        for syncer in &mut cluster.syncers {
            syncer.set_summary_mode(SummaryMode::Compact);
            syncer.set_bloom_bits_per_lane(bits_per_lane);
        }
        cluster
    }

    /// Node `node` writes `lanes` lanes of random ops.
    pub(crate) fn write(&mut self, node: usize, lanes: usize) {
        for _ in 0..lanes {
            let ops = random_ops(&mut self.rng, &mut self.replicas[node], 12);
            self.replicas[node].create_lane(ops).unwrap();
        }
    }

    /// Gives `to` every lane `from` holds, without the protocol.
    pub(crate) fn copy_all(&mut self, from: usize, to: usize) {
        let lanes: Vec<_> = self.replicas[from].canonical_lanes().map(|(_, lane)| lane.clone()).collect();
        for lane in lanes {
            let _ = self.replicas[to].insert(lane);
        }
    }

    pub(crate) fn status(&mut self, node: usize) -> Status {
        self.replicas[node].status()
    }

    /// Runs one session from `a` to `b` over the faulty network until no
    /// datagram is in flight; returns the initiator's completion, if any.
    pub(crate) fn sync(&mut self, a: usize, b: usize, faults: &Faults) -> Option<(Outcome, SessionMetrics)> {
        let session = self.syncers[a].initiate(NodeId(b as u32), &mut self.replicas[a]);
        self.drive(faults);
        let completion = self.events.iter().find_map(|(node, event)| match event {
            SyncEvent::Completed { session: id, outcome, metrics, .. } if *node == a && *id == session => {
                Some((*outcome, *metrics))
            }
            _ => None,
        });
        if completion.is_none() {
            self.syncers[a].abandon(NodeId(b as u32), session, "test timeout");
        }
        self.syncers[b].abandon(NodeId(a as u32), session, "test timeout");
        completion
    }

    /// Both sides' metrics of the completed session `session`, summed.
    pub(crate) fn session_totals(&self, session_events_from: usize) -> SessionMetrics {
        let mut total = SessionMetrics::default();
        for (_, event) in &self.events[session_events_from..] {
            if let SyncEvent::Completed { metrics, .. } = event {
                total.add(metrics);
            }
        }
        total
    }

    fn collect(&mut self) {
        for node in 0..self.syncers.len() {
            while let Some((to, bytes)) = self.syncers[node].poll_transmit() {
                self.in_flight.push((node, to.0 as usize, bytes));
            }
            while let Some(event) = self.syncers[node].poll_event() {
                self.events.push((node, event));
            }
        }
    }

    pub(crate) fn drive(&mut self, faults: &Faults) {
        self.collect();
        let mut steps = 0;
        while !self.in_flight.is_empty() {
            steps += 1;
            assert!(steps < 10_000, "the protocol must not loop");
            let pick = if faults.reorder { self.rng.below(self.in_flight.len() as u64) as usize } else { 0 };
            let (from, to, bytes) = self.in_flight.remove(pick);
            if faults.loss > 0 && self.rng.below(100) < faults.loss {
                continue;
            }
            let copies = if faults.duplicate > 0 && self.rng.below(100) < faults.duplicate { 2 } else { 1 };
            if let Ok(message) = scx_engine::protocol::decode(&bytes) {
                self.delivered.push(message.kind());
            }
            for _ in 0..copies {
                self.syncers[to].handle(NodeId(from as u32), &bytes, &mut self.replicas[to]);
            }
            self.collect();
        }
    }
}
