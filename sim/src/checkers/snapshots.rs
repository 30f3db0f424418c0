//! Always: a snapshot is a stable prefix with the model's hashes, and the
//! stable prefix is shared. For every snapshot a node commits, the model
//! replays the first `lane_index` lanes of the canonical order of what the
//! node held and must reach the snapshot's chain hash and digest; every
//! lane of that prefix must be causally stable (DESIGN.md §2) at the node;
//! and any two nodes that committed a snapshot at one lane index name it
//! with the same id. At the end, each node's newest snapshot verifies.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::Observation;
use scx_engine::{ChainHash, LaneId, SnapshotId, StateDigest};
use scx_model::{Frontier, Replayed};
use std::collections::{BTreeMap, BTreeSet};

/// The snapshots checker.
#[derive(Debug, Default)]
pub struct Snapshots {
    /// The first id seen at each lane index, and who committed it.
    ids: BTreeMap<u64, (u32, SnapshotId)>,
    /// Snapshots the model already confirmed.
    verified: BTreeSet<(u64, SnapshotId)>,
    /// The model's replay of the longest prefix confirmed so far: the next
    /// snapshot's replay continues it when its prefix starts with it (the
    /// model compares the two orders lane by lane).
    longest: Option<Replayed>,
}

impl Checker for Snapshots {
    fn name(&self) -> &'static str {
        "snapshots"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        match observation {
            Observation::SnapshotCommitted { node, lane_index, id, chain_hash, state_digest, frontier } => {
                if let Some(message) = self.agree(*node, *lane_index, *id) {
                    found.violation(Some(*node), message);
                }
                if self.verified.contains(&(*lane_index, *id)) {
                    return;
                }
                match check_prefix(knowledge, frontier, *lane_index, (chain_hash, state_digest), self.longest.as_ref())
                {
                    Ok(replayed) => {
                        self.verified.insert((*lane_index, *id));
                        if self.longest.as_ref().is_none_or(|longest| longest.lane_index < replayed.lane_index) {
                            self.longest = Some(replayed);
                        }
                    }
                    Err(message) => {
                        found.violation(Some(*node), format!("n{node}'s snapshot {}: {message}", id.short()))
                    }
                }
            }
            Observation::Final { node, lineage, latest_snapshot_error, .. } => {
                if let Some(error) = latest_snapshot_error {
                    found.violation(Some(*node), format!("n{node}'s newest snapshot does not verify: {error}"));
                }
                for (lane_index, id) in lineage {
                    if let Some(message) = self.agree(*node, *lane_index, *id) {
                        found.violation(Some(*node), message);
                    }
                }
            }
            _ => {}
        }
    }
}

impl Snapshots {
    /// Why `id` at `lane_index` disagrees with another node's, if it does.
    fn agree(&mut self, node: u32, lane_index: u64, id: SnapshotId) -> Option<String> {
        let (other, theirs) = *self.ids.entry(lane_index).or_insert((node, id));
        (theirs != id).then(|| {
            format!(
                "n{node} and n{other} disagree on the snapshot at lane index {lane_index}: {} vs {}",
                id.short(),
                theirs.short()
            )
        })
    }
}

/// The model's view of the first `lane_index` lanes of what `frontier`
/// holds, continuing `earlier` (a replay of a prefix confirmed before) when
/// it is a prefix of them; returns the model's replay of the prefix.
fn check_prefix(
    knowledge: &Knowledge,
    frontier: &Frontier,
    lane_index: u64,
    (chain_hash, state_digest): (&ChainHash, &StateDigest),
    earlier: Option<&Replayed>,
) -> Result<Replayed, String> {
    let model = &knowledge.model;
    let held = model
        .closure(Knowledge::tips(frontier))
        .map_err(|error| format!("the model refuses the lanes held: {error}"))?;
    // The model orders the held set once and replays its first
    // `lane_index` lanes: the canonical order of that prefix.
    let replayed = model
        .replay_prefix_from(&held, lane_index as usize, earlier)
        .map_err(|error| format!("the model cannot order the lanes held: {error}"))?
        .ok_or_else(|| format!("lane index {lane_index} is past the {} lanes the node held", held.len()))?;
    let prefix: BTreeSet<LaneId> = replayed.order.iter().copied().collect();
    if replayed.chain_hash != *chain_hash || replayed.state_digest != *state_digest {
        return Err(format!(
            "at lane index {lane_index} it has chain {} digest {}, but the model's replay of that prefix gives chain {} digest {}",
            chain_hash.short(),
            state_digest.short(),
            replayed.chain_hash.short(),
            replayed.state_digest.short()
        ));
    }
    if let Some((unstable, member)) = model.first_unstable(&held, &prefix) {
        return Err(format!(
            "its prefix of {lane_index} lanes includes lane {}, which is not causally stable at the node (no lane of n{} it holds has it in its ancestry)",
            unstable.short(),
            member.0
        ));
    }
    Ok(replayed)
}
