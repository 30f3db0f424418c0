#![allow(dead_code, reason = "each bench target uses a different part of this module")]
//! Shared lane generation for the engine benchmarks: four authors writing
//! in turn, each lane over the current heads, four small ops over 100 keys.

use scx_engine::{Lane, NodeId, Replica, ReplicaConfig, World, WorldOp};

/// SplitMix64, so the lanes depend only on the seed.
#[allow(dead_code, reason = "each bench uses a different part of the support module")]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

pub(crate) fn config(node: u32) -> ReplicaConfig {
    let mut config = ReplicaConfig::new(NodeId(node), (0..4).map(NodeId));
    config.snapshot_interval = 1024;
    config.checkpoint_interval = 64;
    config
}

/// Small ops over 100 keys: puts and adds, and inserts balanced by removes
/// of what the author saw, so the state stays the size of a small world.
fn op(rng: &mut Rng, state: &scx_engine::WorldState) -> WorldOp {
    let key = (rng.next() % 100) as u32;
    match rng.next() % 4 {
        0 => state.put(key, rng.next() % 1000),
        1 => WorldOp::Add { key, delta: (rng.next() % 7) as i64 - 3 },
        2 => WorldOp::Insert { key, element: rng.next() % 8 },
        _ => state.remove(key, rng.next() % 8),
    }
}

/// `count` lanes of 4 ops by 4 authors writing in turn, in creation order.
/// `sink` receives each lane as it is made (so a caller can avoid holding them).
pub(crate) fn lanes(count: usize, mut sink: impl FnMut(Lane<WorldOp>)) {
    let mut rng = Rng(7);
    let mut writer = Replica::new(World, config(0));
    for i in 0..count {
        let author = NodeId((i % 4) as u32);
        let state = writer.state();
        let ops: Vec<WorldOp> = (0..4).map(|_| op(&mut rng, state)).collect();
        // One replica holds everything; lanes are authored in turn by four
        // members, each over the current heads (a realistic chain per author).
        let mut lane = writer.prepare_lane(ops);
        lane.author = author;
        lane.seq = writer.version_vector().get(&author).copied().unwrap_or(0) + 1;
        let own = writer.author_tips().get(&author).map(|(_, id)| *id);
        lane.parents = writer.heads().iter().copied().filter(|id| Some(*id) != own).chain(own).collect();
        lane.parents.sort_unstable();
        lane.lamport = 1 + lane.parents.iter().filter_map(|id| writer.lane(id).map(|l| l.lamport)).max().unwrap_or(0);
        writer.insert(lane.clone()).expect("generated lanes are valid");
        sink(lane);
        let _ = i;
    }
}
