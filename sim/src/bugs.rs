//! Maps a planted bug of the run plan to the engine's switches. The
//! engine ignores them unless built with its `planted-bugs` feature.

use crate::spec::PlantedBug;
use scx_engine::bugs::Bugs;

/// The engine switches for `bug`.
pub fn engine_bugs(bug: Option<PlantedBug>) -> Bugs {
    let mut bugs = Bugs::NONE;
    match bug {
        Some(PlantedBug::ArrivalOrderMerge) => bugs.arrival_order_merge = true,
        Some(PlantedBug::PrunePastStable) => bugs.prune_past_stable = true,
        Some(PlantedBug::DeltaSkipsLast) => bugs.delta_skips_last = true,
        Some(PlantedBug::UnverifiedSnapshot) => bugs.unverified_snapshot = true,
        Some(PlantedBug::RemoveWinsSet) => bugs.remove_wins_set = true,
        Some(PlantedBug::AuthorDescendingTies) => bugs.author_descending_ties = true,
        Some(PlantedBug::SwappedChainStep) => bugs.swapped_chain_step = true,
        Some(PlantedBug::SendBeforeDurable) => bugs.lazy_sync = true,
        Some(PlantedBug::RecoveryDropsLastRecord) => bugs.recovery_drops_last_record = true,
        Some(PlantedBug::RecoveryRefusesTornTail) => bugs.recovery_refuses_torn_tail = true,
        Some(PlantedBug::RotTakenForTear) => bugs.rot_taken_for_tear = true,
        Some(PlantedBug::OversizedCommitRecord) => bugs.oversized_commit_record = true,
        Some(PlantedBug::PendingReleasesOne) => bugs.pending_releases_one = true,
        Some(PlantedBug::ForkDedupedByDot) => bugs.fork_deduped_by_dot = true,
        Some(PlantedBug::StabilityOneMemberShort) => bugs.stability_one_member_short = true,
        Some(PlantedBug::StaleRead) => bugs.stale_read = true,
        Some(PlantedBug::RollbackOneLaneLate) => bugs.rollback_one_lane_late = true,
        Some(PlantedBug::ThinningDropsBase) => bugs.thinning_drops_base = true,
        Some(PlantedBug::SummaryClaimsExtraLane) => bugs.summary_claims_extra_lane = true,
        Some(PlantedBug::BloomSkipsSupply) => bugs.bloom_skips_supply = true,
        Some(PlantedBug::InSyncByLaneIndex) => bugs.in_sync_by_lane_index = true,
        Some(PlantedBug::SnapshotDropsBoundary) => bugs.snapshot_drops_boundary = true,
        Some(PlantedBug::BackrefOffByOne) => bugs.backref_off_by_one = true,
        Some(PlantedBug::AbandonKeepsSession) => bugs.abandon_keeps_session = true,
        Some(PlantedBug::GlobalSessionIds) => bugs.global_session_ids = true,
        Some(PlantedBug::PanicOnRedundantLane) => bugs.panic_on_redundant_lane = true,
        None => {}
    }
    bugs
}
