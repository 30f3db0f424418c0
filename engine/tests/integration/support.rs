//! Shared test machinery: a seeded generator of realistic multi-author lane
//! histories (authors write, and pull each other's lanes at random), and
//! helpers to replay a lane set into fresh replicas.

use scx_engine::{Lane, NodeId, Replica, ReplicaConfig, Status, World, WorldOp};

/// SplitMix64: a tiny deterministic generator, so histories depend only on the seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

pub(crate) fn config(node: u32, members: u32) -> ReplicaConfig {
    let mut config = ReplicaConfig::new(NodeId(node), (0..members).map(NodeId));
    config.snapshot_interval = 16;
    config.checkpoint_interval = 4;
    config
}

pub(crate) fn replica(node: u32, members: u32) -> Replica<World> {
    Replica::new(World, config(node, members))
}

/// Random ops over a small key space, built from the author's current state
/// so puts and removes carry what the author saw.
pub(crate) fn random_ops(rng: &mut Rng, replica: &mut Replica<World>, keys: u32) -> Vec<WorldOp> {
    let count = 1 + rng.below(4) as usize;
    let mut ops = Vec::with_capacity(count);
    for _ in 0..count {
        let key = rng.below(u64::from(keys)) as u32;
        let state = replica.state();
        let op = match rng.below(4) {
            0 => state.put(key, rng.below(1000)),
            1 => WorldOp::Add { key, delta: rng.below(21) as i64 - 10 },
            2 => WorldOp::Insert { key, element: rng.below(8) },
            _ => state.remove(key, rng.below(8)),
        };
        ops.push(op);
    }
    ops
}

/// A history written by `authors` nodes over `steps` steps: at each step one
/// author either writes a lane or pulls every lane another author holds.
/// Returns every lane ever written, in creation order.
pub(crate) fn history(seed: u64, authors: u32, steps: usize) -> Vec<Lane<WorldOp>> {
    let mut rng = Rng::new(seed);
    let mut replicas: Vec<Replica<World>> = (0..authors).map(|node| replica(node, authors)).collect();
    let mut lanes = Vec::new();
    for _ in 0..steps {
        let author = rng.below(u64::from(authors)) as usize;
        if rng.below(3) == 0 && authors > 1 {
            let from = rng.below(u64::from(authors)) as usize;
            let theirs: Vec<Lane<WorldOp>> = replicas[from].canonical_lanes().map(|(_, lane)| lane.clone()).collect();
            for lane in theirs {
                replicas[author].insert(lane).expect("lanes from an honest peer are valid");
            }
        } else {
            let ops = random_ops(&mut rng, &mut replicas[author], 12);
            let (_, lane) = replicas[author].create_lane(ops).expect("an own lane is valid");
            lanes.push(lane);
        }
    }
    lanes
}

/// Inserts `lanes` in the given order into a fresh replica and returns its status.
pub(crate) fn replay(node: u32, members: u32, lanes: &[Lane<WorldOp>]) -> (Replica<World>, Status) {
    let mut replica = replica(node, members);
    for lane in lanes {
        replica.insert(lane.clone()).expect("generated lanes are valid");
    }
    let status = replica.status();
    (replica, status)
}
