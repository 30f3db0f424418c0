//! The corpus: real replicas run real sessions in many states (in sync, one
//! behind, both diverged, lanes pending, behind the prune point so a
//! snapshot travels, whole or in many chunks, compact summaries above 64
//! members, air-gapped bundles), and every datagram is captured with clones
//! of its receiver and sender as they were just before delivery.

use super::{Choices, Rng};
use scx_engine::protocol::{self, Message, SummaryMode, Syncer, WireSnapshot};
use scx_engine::{LaneId, NodeId, Replica, ReplicaConfig, SnapshotId, Status, World, WorldOp};
use std::collections::{BTreeMap, BTreeSet};

/// How a case's bytes reach the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// `Syncer::handle`.
    Handle,
    /// `protocol::apply_bundle` (an air-gapped bundle file).
    Bundle,
}

/// Every honest lane and snapshot of one scenario: what a receiver may hold
/// without anyone having forged it.
#[derive(Debug, Default)]
pub(crate) struct Universe {
    /// Ids of every lane any honest node wrote.
    pub(crate) lanes: BTreeSet<LaneId>,
    /// The honest lane at each `(author, seq)`.
    pub(crate) dots: BTreeMap<(NodeId, u64), LaneId>,
    /// Every snapshot id an honest node committed or passed.
    pub(crate) snapshots: BTreeSet<SnapshotId>,
}

/// What the receiver held before the input: the oracle's reference.
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub(crate) status: Status,
    pub(crate) version_vector: BTreeMap<NodeId, u64>,
    /// Held lanes (above the prune point) as `(author, seq, id)`.
    pub(crate) held: Vec<(NodeId, u64, LaneId)>,
    pub(crate) held_count: usize,
    pub(crate) pending: usize,
    pub(crate) prune_index: u64,
}

impl Base {
    pub(crate) fn of(replica: &mut Replica<World>) -> Self {
        let held: Vec<(NodeId, u64, LaneId)> =
            replica.canonical_lanes().map(|(id, lane)| (lane.author, lane.seq, id)).collect();
        Self {
            status: replica.status(),
            version_vector: replica.version_vector(),
            held_count: held.len(),
            held,
            pending: replica.pending_lanes(),
            prune_index: replica.prune_index(),
        }
    }
}

/// One valid datagram and the world it was sent into.
#[derive(Clone, Debug)]
pub(crate) struct Case {
    /// Scenario, seed and step, for failure reports.
    pub(crate) name: String,
    /// The message kind (`hello`, `delta`, ... or `bundle`).
    pub(crate) kind: &'static str,
    pub(crate) delivery: Delivery,
    /// The sender.
    pub(crate) from: NodeId,
    /// The valid encoded datagram.
    pub(crate) bytes: Vec<u8>,
    /// The receiver and its syncer just before delivery.
    pub(crate) receiver: Replica<World>,
    pub(crate) receiver_syncer: Syncer,
    /// The honest sender at that moment: the peer a later honest session runs with.
    pub(crate) peer: Replica<World>,
    pub(crate) peer_syncer: Syncer,
    pub(crate) base: Base,
    /// Index of the scenario's universe in [`Corpus::universes`].
    pub(crate) universe: usize,
}

/// Every captured case, with the material mutators splice in.
#[derive(Debug, Default)]
pub(crate) struct Corpus {
    pub(crate) cases: Vec<Case>,
    pub(crate) universes: Vec<Universe>,
    /// Snapshots seen in transit, for mutators to move between messages.
    pub(crate) snapshots: Vec<WireSnapshot>,
    /// Lane batches seen in transit, for splicing.
    pub(crate) batches: Vec<Vec<u8>>,
}

impl Corpus {
    /// Builds the corpus from `seeds` seeded variations of every scenario.
    pub(crate) fn build(seeds: u64) -> Self {
        let mut corpus = Self::default();
        for seed in 0..seeds {
            pair(&mut corpus, seed);
            trio_with_pending(&mut corpus, seed);
            pruned(&mut corpus, seed);
            chunked(&mut corpus, seed);
            compact(&mut corpus, seed);
        }
        for case in &corpus.cases {
            for message in super::oracle::decode_input(case.delivery, &case.bytes) {
                match message {
                    Message::Delta { snapshot, lanes, .. } | Message::Lanes { snapshot, lanes, .. } => {
                        corpus.snapshots.extend(snapshot);
                        corpus.batches.push(lanes);
                    }
                    Message::Supply { lanes, .. } => corpus.batches.push(lanes),
                    _ => {}
                }
            }
        }
        corpus.batches.retain(|batch| batch.len() > 1);
        corpus
    }

    /// How many cases of each kind, for the run's summary line.
    pub(crate) fn kinds(&self) -> BTreeMap<&'static str, usize> {
        let mut kinds = BTreeMap::new();
        for case in &self.cases {
            *kinds.entry(case.kind).or_insert(0) += 1;
        }
        kinds
    }
}

/// A small cluster whose every datagram is captured as a case.
struct Scene<'c> {
    corpus: &'c mut Corpus,
    label: String,
    replicas: Vec<Replica<World>>,
    syncers: Vec<Syncer>,
    rng: Rng,
    universe: Universe,
    first_case: usize,
    /// Keys the writers' ops touch (more keys, larger states).
    keys: u64,
}

impl<'c> Scene<'c> {
    fn new(corpus: &'c mut Corpus, label: String, nodes: u32, members: u32, prune: bool, seed: u64) -> Self {
        let replicas = (0..nodes)
            .map(|node| {
                let mut config = ReplicaConfig::new(NodeId(node), (0..members).map(NodeId));
                config.snapshot_interval = 16;
                config.checkpoint_interval = 4;
                config.prune = prune;
                Replica::new(World, config)
            })
            .collect();
        let syncers = (0..nodes).map(|node| Syncer::new(NodeId(node))).collect();
        let first_case = corpus.cases.len();
        let universe = Universe::default();
        Self { corpus, label, replicas, syncers, rng: Rng::new(seed), universe, first_case, keys: 8 }
    }

    /// Node `node` writes `count` lanes of random ops.
    fn write(&mut self, node: usize, count: u64) {
        for _ in 0..count {
            let ops = random_ops(&mut self.rng, &mut self.replicas[node], self.keys);
            let (id, lane) = self.replicas[node].create_lane(ops).expect("an own lane is valid");
            self.universe.lanes.insert(id);
            self.universe.dots.insert((lane.author, lane.seq), id);
        }
    }

    /// Node `node` writes `least` lanes and up to `spread - 1` more.
    fn write_some(&mut self, node: usize, least: u64, spread: u64) {
        let count = least + self.rng.below(spread);
        self.write(node, count);
    }

    /// Gives `to` every lane `from` holds (above its prune point), without the protocol.
    fn copy(&mut self, from: usize, to: usize) {
        let lanes: Vec<_> = self.replicas[from].canonical_lanes().map(|(_, lane)| lane.clone()).collect();
        for lane in lanes {
            let _ = self.replicas[to].insert(lane);
        }
    }

    fn capture(&mut self, from: usize, to: usize, bytes: &[u8], delivery: Delivery) {
        let kind = match (delivery, protocol::decode(bytes)) {
            (Delivery::Bundle, _) => "bundle",
            (Delivery::Handle, Ok(message)) => message.kind(),
            (Delivery::Handle, Err(_)) => "undecodable",
        };
        let mut receiver = self.replicas[to].clone();
        let base = Base::of(&mut receiver);
        let step = self.corpus.cases.len() - self.first_case;
        self.corpus.cases.push(Case {
            name: format!("{} step {step} ({kind} n{from}->n{to})", self.label),
            kind,
            delivery,
            from: NodeId(from as u32),
            bytes: bytes.to_vec(),
            receiver,
            receiver_syncer: self.syncers[to].clone(),
            peer: self.replicas[from].clone(),
            peer_syncer: self.syncers[from].clone(),
            base,
            universe: self.corpus.universes.len(),
        });
    }

    /// Runs one session from `a` to `b` to quiescence, capturing every datagram.
    fn session(&mut self, a: usize, b: usize) {
        self.syncers[a].initiate(NodeId(b as u32), &mut self.replicas[a]);
        let mut in_flight = Vec::new();
        for _ in 0..16 {
            for node in [a, b] {
                while let Some((to, bytes)) = self.syncers[node].poll_transmit() {
                    in_flight.push((node, to.0 as usize, bytes));
                }
                while self.syncers[node].poll_event().is_some() {}
            }
            if in_flight.is_empty() {
                break;
            }
            let (from, to, bytes) = in_flight.remove(0);
            self.capture(from, to, &bytes, Delivery::Handle);
            self.syncers[to].handle(NodeId(from as u32), &bytes, &mut self.replicas[to]);
        }
        for node in [a, b] {
            let open: Vec<(NodeId, u64)> = self.syncers[node].open_sessions().map(|(p, id, _, _)| (p, id)).collect();
            for (peer, id) in open {
                self.syncers[node].abandon(peer, id, "scene: session over");
            }
            while self.syncers[node].poll_event().is_some() {}
        }
    }

    /// Carries a bundle of everything `from` holds to `to`, its snapshot
    /// in chunks of `chunk_bytes`.
    fn bundle(&mut self, from: usize, to: usize, chunk_bytes: u64) {
        let bytes = protocol::bundle_in_chunks(&mut self.replicas[from], chunk_bytes);
        self.capture(from, to, &bytes, Delivery::Bundle);
        protocol::apply_bundle(&bytes, NodeId(from as u32), &mut self.replicas[to]).expect("an honest bundle decodes");
    }

    fn finish(mut self) {
        for replica in &mut self.replicas {
            replica.materialize();
            self.universe.snapshots.extend(replica.snapshots().lineage().map(|(_, id)| id));
        }
        for case in &self.corpus.cases[self.first_case..] {
            let mut peer = case.peer.clone();
            let mut receiver = case.receiver.clone();
            self.universe.snapshots.extend(peer.snapshots().lineage().map(|(_, id)| id));
            self.universe.snapshots.extend(receiver.snapshots().lineage().map(|(_, id)| id));
            peer.materialize();
            receiver.materialize();
        }
        self.corpus.universes.push(self.universe);
    }
}

/// Random ops over `keys` keys, built from the author's state so puts and
/// removes carry what the author saw.
fn random_ops(rng: &mut Rng, replica: &mut Replica<World>, keys: u64) -> Vec<WorldOp> {
    let count = 1 + rng.below(3) as usize;
    let mut ops = Vec::with_capacity(count);
    for _ in 0..count {
        let key = rng.below(keys) as u32;
        let state = replica.state();
        let op = match rng.below(4) {
            0 => state.put(key, rng.below(1000)),
            1 => WorldOp::Add { key, delta: rng.below(21) as i64 - 10 },
            2 => WorldOp::Insert { key, element: rng.below(6) },
            _ => state.remove(key, rng.below(6)),
        };
        ops.push(op);
    }
    ops
}

/// Two members: in sync, one behind (both directions), both diverged, bundles.
fn pair(corpus: &mut Corpus, seed: u64) {
    let mut scene = Scene::new(corpus, format!("pair seed {seed}"), 2, 2, false, seed);
    let shared = 3 + scene.rng.below(20);
    scene.write(0, shared);
    scene.write_some(1, 0, 5);
    scene.copy(0, 1);
    scene.copy(1, 0);
    scene.session(0, 1); // in sync: hello, in-sync
    scene.write_some(0, 1, 8);
    scene.session(1, 0); // the initiator is behind
    scene.write_some(1, 1, 8);
    scene.session(1, 0); // the responder is behind
    scene.write_some(0, 1, 10);
    scene.write_some(1, 1, 10);
    scene.bundle(0, 1, protocol::MAX_CHUNK_BYTES);
    scene.write_some(0, 1, 4);
    scene.session(0, 1); // both diverged
    scene.finish();
}

/// Three members; the receiver holds lanes whose ancestry it lacks (pending).
fn trio_with_pending(corpus: &mut Corpus, seed: u64) {
    let mut scene = Scene::new(corpus, format!("trio seed {seed}"), 3, 3, false, seed);
    scene.write_some(0, 2, 6);
    scene.copy(0, 2);
    scene.write_some(2, 2, 6);
    // Node 1 receives node 2's lanes but not node 0's: they wait for ancestry.
    let lanes: Vec<_> = scene.replicas[2]
        .canonical_lanes()
        .filter(|(_, lane)| lane.author == NodeId(2))
        .map(|(_, l)| l.clone())
        .collect();
    for lane in lanes {
        let _ = scene.replicas[1].insert(lane);
    }
    scene.write_some(1, 1, 4);
    scene.session(1, 2);
    scene.session(0, 1);
    scene.write_some(2, 1, 4);
    scene.session(2, 0);
    scene.bundle(2, 1, protocol::MAX_CHUNK_BYTES);
    scene.finish();
}

/// Two members write until they prune; an observer behind the prune point
/// gets the snapshot by Delta, by Lanes and by bundle, then syncs as a
/// pruned receiver.
fn pruned(corpus: &mut Corpus, seed: u64) {
    let mut scene = Scene::new(corpus, format!("pruned seed {seed}"), 4, 2, true, seed);
    // Node 2 holds an early prefix; node 3 holds nothing.
    scene.write(0, 3);
    scene.copy(0, 2);
    for _ in 0..200 {
        scene.write_some(0, 2, 4);
        scene.write_some(1, 2, 4);
        let (a, b) = if scene.rng.one_in(2) { (0, 1) } else { (1, 0) };
        let first = scene.corpus.cases.len();
        scene.session(a, b);
        // Keep only a few of the many warm-up sessions as cases.
        if !scene.rng.one_in(8) {
            scene.corpus.cases.truncate(first);
        }
        if scene.replicas[0].prune_index() >= 32 && scene.replicas[1].prune_index() >= 32 {
            break;
        }
    }
    scene.write_some(0, 1, 4);
    scene.session(2, 0); // delta carries the snapshot
    scene.session(0, 3); // lanes carry the snapshot
    scene.write_some(1, 1, 4);
    scene.session(1, 2); // a receiver on an installed snapshot
    // A fresh node 3 gets everything, snapshot included, as a bundle file.
    let config = scene.replicas[3].config().clone();
    scene.replicas[3] = Replica::new(World, config);
    scene.syncers[3] = Syncer::new(NodeId(3));
    scene.bundle(0, 3, protocol::MAX_CHUNK_BYTES);
    scene.finish();
}

/// Two members write over many keys until they prune; observers behind the
/// prune point assemble the snapshot in 1 KiB chunks, one per session (by
/// Delta, then by Lanes), so offers of many chunks and chunk-only parts
/// are cases, and so is every step of an interrupted transfer.
fn chunked(corpus: &mut Corpus, seed: u64) {
    let mut scene = Scene::new(corpus, format!("chunked seed {seed}"), 4, 2, true, seed);
    scene.keys = 600;
    for syncer in &mut scene.syncers {
        syncer.set_snapshot_chunk_bytes(1024);
    }
    scene.write(0, 3);
    for _ in 0..200 {
        scene.write_some(0, 2, 4);
        scene.write_some(1, 2, 4);
        let first = scene.corpus.cases.len();
        scene.session(0, 1);
        scene.corpus.cases.truncate(first);
        let latest = scene.replicas[0].snapshots().latest().expect("the genesis snapshot is always there");
        let chunks = protocol::SnapshotOffer::of(latest, 1024).map_or(0, |offer| offer.chunk_count());
        if scene.replicas[0].prune_index() > 0 && scene.replicas[1].prune_index() > 0 && chunks >= 5 {
            break;
        }
    }
    for _ in 0..16 {
        scene.session(2, 0); // each delta carries one chunk
        if scene.replicas[2].prune_index() > 0 {
            break;
        }
    }
    for _ in 0..16 {
        scene.session(1, 3); // each Lanes message carries one chunk
        if scene.replicas[3].prune_index() > 0 {
            break;
        }
    }
    // A fresh node gets it all as a bundle of many chunks.
    let config = scene.replicas[3].config().clone();
    scene.replicas[3] = Replica::new(World, config);
    scene.syncers[3] = Syncer::new(NodeId(3));
    scene.bundle(0, 3, 1024);
    scene.finish();
}

/// Seventy members (compact summaries), three of them writing; one-bit
/// Bloom filters on some syncers make false positives, hence `need` and
/// `Supply`, common.
fn compact(corpus: &mut Corpus, seed: u64) {
    let mut scene = Scene::new(corpus, format!("compact seed {seed}"), 3, 70, false, seed);
    for (node, syncer) in scene.syncers.iter_mut().enumerate() {
        syncer.set_summary_mode(SummaryMode::default());
        if node != 2 {
            syncer.set_bloom_bits_per_lane(1);
        }
    }
    for node in 0..3 {
        scene.write_some(node, 4, 10);
    }
    scene.copy(2, 0);
    scene.session(0, 1);
    scene.write_some(1, 2, 6);
    scene.write_some(2, 2, 6);
    scene.session(2, 1);
    scene.session(1, 0);
    scene.write_some(0, 1, 4);
    scene.session(0, 2);
    scene.finish();
}
