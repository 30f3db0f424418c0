//! Replay: the canonical order applied through the law, with rollback
//! checkpoints (dense near the tip, logarithmically thinned behind it) and
//! snapshot points.
//!
//! Invariant: state, chain hash and digest are those of a replay of the
//! applied prefix of the order from the stable base.

use super::{Checkpoint, Mark, Replica};
use crate::codec::Reader;
use crate::hash::{self, ChainHash, LaneId, StateDigest};
use crate::law::{LaneContext, Law};

impl<L: Law> Replica<L> {
    /// Restores the newest checkpoint at or before `lane_index` and forgets
    /// everything derived after it.
    pub(super) fn rollback_to(&mut self, lane_index: u64) {
        self.metrics.rollbacks += 1;
        let keep = self.checkpoints.partition_point(|checkpoint| checkpoint.lane_index <= lane_index);
        assert!(keep >= 1, "the stable base checkpoint is never above a rollback target");
        self.checkpoints.truncate(keep);
        let checkpoint = &self.checkpoints[keep - 1];
        self.marks.retain(|mark| mark.lane_index <= checkpoint.lane_index);
        self.state = checkpoint.state.clone();
        self.chain = checkpoint.chain;
        self.conflicts = checkpoint.conflicts;
        self.applied = (checkpoint.lane_index - self.prune_index) as usize;
        self.digest = None;
    }

    /// Applies `order[applied..]`, recording checkpoints and snapshot points.
    ///
    /// A checkpoint costs a clone of the state, and thinning at the tip this
    /// replay ends on keeps only a logarithmic few of them; since thinning is
    /// monotone in the tip (see [`kept_at`]), a replay clones the state only
    /// at the points that the final thinning keeps: the same checkpoints as
    /// cloning at every interval and thinning afterwards.
    pub(super) fn replay(&mut self) {
        let start = self.prune_index + self.applied as u64;
        let tip = self.prune_index + self.order.len() as u64;
        // Checkpoints below the base this materialize will commit would be
        // dropped with the commit: no rollback reaches below a stable base.
        let base = self.base_ahead(tip);
        let Self { law, config, dag, order, state, chain, conflicts, .. } = self;
        let first = self.applied;
        let mut pushed = 0;
        while self.applied < order.len() {
            dag.load_ahead(order, first, self.applied);
            let lane_index = self.prune_index + self.applied as u64 + 1;
            apply_lane(law, &config.bugs, dag.slot(order[self.applied]), lane_index, state, chain, conflicts);
            self.applied += 1;
            self.metrics.lanes_replayed += 1;
            if lane_index.is_multiple_of(config.checkpoint_interval)
                && lane_index >= base
                && kept_at(lane_index, tip, config.checkpoint_interval)
            {
                pushed += 1;
                self.metrics.checkpoints_taken += 1;
                self.checkpoints.push(Checkpoint {
                    lane_index,
                    state: state.clone(),
                    chain: *chain,
                    conflicts: *conflicts,
                });
                if self.checkpoints.len() > MAX_CHECKPOINTS_BEFORE_THINNING {
                    thin(&mut self.checkpoints, lane_index, config.checkpoint_interval, &config.bugs);
                }
            }
            if lane_index.is_multiple_of(config.snapshot_interval) {
                // A rollback resumes from the nearest checkpoint at or below
                // its target, and thinning may have left that checkpoint
                // below committed points: the replay then crosses them
                // again, and must reach the same chain (the stable prefix
                // never changes).
                if let Some(committed) =
                    self.registry.latest().filter(|snapshot| snapshot.header.lane_index == lane_index)
                {
                    assert_eq!(
                        *chain, committed.header.chain_hash,
                        "a replay reached another chain at the snapshot at {lane_index}"
                    );
                }
                let digest = digest_into(law, state, &mut self.encode_cache, &mut self.scratch);
                self.marks.push(Mark { lane_index, chain: *chain, digest });
            }
        }
        self.digest = None;
        self.thin_checkpoints();
        let kept = self.checkpoints.iter().filter(|checkpoint| checkpoint.lane_index > start).count();
        assert_eq!(kept, pushed, "thinning at the tip keeps every checkpoint this replay made");
    }

    /// The snapshot point that the stability step after this replay (up to
    /// lane index `tip`) will commit as the stable base, or a point at or
    /// below where the replay starts, or 0: no checkpoint below it is
    /// needed. That step commits the newest snapshot point at or below the
    /// stable end that holds a checkpoint, and a replay keeps a checkpoint
    /// at exactly the points [`kept_at`] the tip (snapshot points are
    /// multiples of the checkpoint interval). Causal stability is a property
    /// of the DAG, not of the replay, so the stable end is known before
    /// replaying.
    fn base_ahead(&mut self, tip: u64) -> u64 {
        if !self.stability_dirty {
            return 0;
        }
        let (checkpoints, snapshots) = (self.config.checkpoint_interval, self.config.snapshot_interval);
        let stable_end = if self.config.bugs.prune_past_stable() { tip } else { self.stable_prefix_end() };
        (1..=stable_end / snapshots)
            .rev()
            .map(|point| point * snapshots)
            .find(|point| kept_at(*point, tip, checkpoints))
            .unwrap_or(0)
    }

    pub(super) fn thin_checkpoints(&mut self) {
        let tip = self.lane_index();
        thin(&mut self.checkpoints, tip, self.config.checkpoint_interval, &self.config.bugs);
    }

    pub(super) fn lane_index(&self) -> u64 {
        self.prune_index + self.applied as u64
    }

    pub(super) fn digest(&mut self) -> StateDigest {
        if let Some(digest) = self.digest {
            return digest;
        }
        let digest = digest_into(&self.law, &self.state, &mut self.encode_cache, &mut self.scratch);
        self.digest = Some(digest);
        digest
    }
}

/// Applies one lane at `lane_index`: its ops through the law, then one
/// step of the chain hash (`bugs` are the planted ones, if any).
pub(super) fn apply_lane<L: Law>(
    law: &L,
    bugs: &crate::bugs::Bugs,
    slot: &crate::dag::Slot<L::Op>,
    lane_index: u64,
    state: &mut L::State,
    chain: &mut ChainHash,
    conflicts: &mut u64,
) {
    // The chain step does not depend on the state, so it goes first: the
    // slot was just loaded (after a burst of lanes, a cache miss), and its id
    // is read while it is at hand rather than after the ops.
    *chain = if bugs.swapped_chain_step() {
        // Planted bug: the operands of the chain step swapped.
        hash::chain_step(&ChainHash(slot.id.0), &LaneId(chain.0))
    } else {
        hash::chain_step(chain, &slot.id)
    };
    let context = LaneContext { id: &slot.id, author: slot.author, seq: slot.seq, lamport: slot.lamport, lane_index };
    for op in &slot.lane.ops {
        *conflicts += u64::from(law.apply_planted(state, &context, op, bugs).conflicts);
    }
}

/// Checkpoints kept before a replay in progress thins them.
pub(super) const MAX_CHECKPOINTS_BEFORE_THINNING: usize = 64;

/// Keeps checkpoints dense near `tip` and exponentially sparser further back
/// (about eight per doubling of the distance), so a late lane replays a short
/// suffix and memory stays logarithmic. The first checkpoint, the stable
/// base, always stays.
pub(super) fn thin<S>(checkpoints: &mut Vec<Checkpoint<S>>, tip: u64, interval: u64, bugs: &crate::bugs::Bugs) {
    // Planted bug `thinning_drops_base`: the stable base is thinned like any
    // other checkpoint, so a rollback can find nothing below its target.
    let mut first = !bugs.thinning_drops_base();
    checkpoints.retain(|checkpoint| std::mem::take(&mut first) || kept_at(checkpoint.lane_index, tip, interval));
}

/// Whether thinning at `tip` keeps a checkpoint at `lane_index` (a multiple
/// of `interval`, at or below `tip`): the spacing kept at a distance is a
/// power of two that only grows with the distance, so a checkpoint kept at
/// one tip is kept at every earlier tip too.
pub(super) fn kept_at(lane_index: u64, tip: u64, interval: u64) -> bool {
    let distance_in_intervals = (tip - lane_index) / interval;
    let spacing = interval * (distance_in_intervals / 8).max(1).next_power_of_two();
    lane_index.is_multiple_of(spacing)
}

/// The digest of `state`, encoded into a reused buffer with the law's
/// cache (a status per sync session makes this a hot path).
pub(super) fn digest_into<L: Law>(
    law: &L,
    state: &L::State,
    cache: &mut L::EncodeCache,
    scratch: &mut Vec<u8>,
) -> StateDigest {
    scratch.clear();
    law.encode_state_cached(state, cache, scratch);
    hash::state_digest(scratch)
}

pub(super) fn digest_of<L: Law>(law: &L, state: &L::State) -> StateDigest {
    let mut bytes = Vec::new();
    law.encode_state(state, &mut bytes);
    hash::state_digest(&bytes)
}

/// Decodes a state with `law`, requiring every byte be used.
pub fn decode_state<L: Law>(law: &L, bytes: &[u8]) -> Result<L::State, crate::codec::DecodeError> {
    let mut reader = Reader::new(bytes);
    let state = law.decode_state(&mut reader)?;
    reader.finish()?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use crate::hash;
    use crate::lane::NodeId;
    use crate::law::Law;
    use crate::replica::{Replica, ReplicaConfig};
    use crate::world::{World, WorldOp};

    #[test]
    fn a_fresh_replica_states_the_digest_of_the_genesis_state() {
        let mut replica = Replica::new(World, ReplicaConfig::new(NodeId(0), [NodeId(0), NodeId(1)]));
        let mut genesis = Vec::new();
        World.encode_state(&World.genesis(), &mut genesis);
        assert_eq!(replica.status().state_digest, hash::state_digest(&genesis));
        let snapshot = replica.snapshots().latest().expect("the genesis snapshot");
        assert_eq!(snapshot.header.state_digest, hash::state_digest(&genesis));
        assert!(snapshot.verify(&World).is_ok());
    }

    fn config() -> ReplicaConfig {
        let mut config = ReplicaConfig::new(NodeId(0), (0..4).map(NodeId));
        config.snapshot_interval = 1024;
        config.checkpoint_interval = 64;
        config
    }

    /// A lane by each of `authors` (members 0 to 3) in turn, each over
    /// every head: a chain, stable up to the last lane of the member that
    /// wrote last longest ago.
    fn lanes_by(authors: impl Iterator<Item = u32>) -> Vec<crate::Lane<WorldOp>> {
        let mut writer = Replica::new(World, config());
        let mut lanes = Vec::new();
        let mut seqs = [0u64; 4];
        for (n, author) in authors.enumerate() {
            let mut lane = writer.prepare_lane(vec![WorldOp::Add { key: n as u32 % 7, delta: 1 }]);
            seqs[author as usize] += 1;
            lane.author = NodeId(author);
            lane.seq = seqs[author as usize];
            let own = writer.author_tips().get(&lane.author).map(|(_, id)| *id);
            lane.parents = writer.heads().iter().copied().filter(|id| Some(*id) != own).chain(own).collect();
            lane.parents.sort_unstable();
            lane.lamport = n as u64 + 1;
            writer.insert(lane.clone()).expect("a valid lane");
            lanes.push(lane);
        }
        lanes
    }

    /// A replica that receives `lanes` and then materializes once, and the
    /// lane index of the base it commits.
    fn catch_up(lanes: &[crate::Lane<WorldOp>]) -> (Replica<World>, u64) {
        let mut replica = Replica::new(World, config());
        for lane in lanes {
            replica.insert(lane.clone()).expect("a valid lane");
        }
        replica.materialize();
        let base = replica.snapshots().latest().expect("a committed base").header.lane_index;
        assert_eq!(replica.checkpoints.first().map(|checkpoint| checkpoint.lane_index), Some(base));
        assert_eq!(
            replica.metrics().checkpoints_taken,
            replica.checkpoints.len() as u64,
            "every state copied for a checkpoint is still held: none below the base"
        );
        (replica, base)
    }

    #[test]
    fn a_catch_up_replay_takes_no_checkpoint_that_the_stable_commit_drops() {
        let lanes = lanes_by((0..4096).map(|n| n % 4));
        let (mut bulk, base) = catch_up(&lanes);
        // Stable up to 4093: the newest snapshot point below it that keeps a
        // checkpoint at tip 4096 is 3072.
        assert_eq!(base, 3072);
        let mut one_by_one = Replica::new(World, config());
        for lane in lanes {
            one_by_one.insert(lane).expect("a valid lane");
            one_by_one.materialize();
        }
        assert_eq!(bulk.status(), one_by_one.status());
        assert_eq!(bulk.snapshots().latest(), one_by_one.snapshots().latest());
    }

    #[test]
    fn a_catch_up_replay_commits_the_newest_snapshot_point_its_tip_keeps() {
        // Member 3 falls quiet after lane 3100: the stable end stays there
        // while the tip runs on to 12288, where thinning keeps 2048 but not
        // 3072.
        let lanes = lanes_by((0..3100).map(|n| n % 4).chain((0..12288 - 3100).map(|n| n % 3)));
        let (_, base) = catch_up(&lanes);
        assert_eq!(base, 2048);
    }

    #[test]
    fn checkpoints_stay_logarithmic_in_the_unstable_suffix_and_keep_the_base() {
        // Member 1 never writes, so nothing is stable and every lane stays
        // in the suffix that rollbacks may reach.
        let mut replica = Replica::new(World, ReplicaConfig::new(NodeId(0), [NodeId(0), NodeId(1)]));
        for n in 0..4000u32 {
            replica.create_lane(vec![WorldOp::Add { key: n % 7, delta: 1 }]).unwrap();
            if n % 97 == 0 {
                replica.materialize();
            }
        }
        replica.materialize();
        let intervals = 4000 / replica.config.checkpoint_interval;
        let bound = 8 * (64 - intervals.leading_zeros() as usize) + 8;
        assert!(
            replica.checkpoints.len() <= bound,
            "{} checkpoints for {intervals} intervals",
            replica.checkpoints.len()
        );
        assert_eq!(replica.checkpoints.first().map(|checkpoint| checkpoint.lane_index), Some(0), "the base stays");
        assert!(replica.checkpoints.windows(2).all(|pair| pair[0].lane_index < pair[1].lane_index));
    }
}
