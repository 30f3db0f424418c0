//! The result model: what a run reports (one JSON line per seed in a fuzz
//! results file, the `--format json` output of `scx run`) and the trace of
//! one run. The simulator produces these types; reports read them.
//!
//! Invariant: a record holds only what the seed determines (no wall-clock
//! times, no host names), so results files are byte-identical across
//! machines, `--jobs` and shard splits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a run proved. Only `Pass` passes: a run that could not finish, that
/// hit a bug of the harness itself, or that tested nothing is never green.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every invariant held, and the run tested something.
    Pass,
    /// Some invariant of the engine was violated.
    Fail,
    /// The run did not finish within the campaign's wall-clock limit per seed.
    Timeout,
    /// The harness itself failed (a panic outside the engine): not a verdict
    /// on the engine.
    HarnessError,
    /// The run wrote nothing or ended with no live node: nothing was tested.
    NothingTested,
}

impl Verdict {
    /// The name as written in results files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Timeout => "timeout",
            Self::HarnessError => "harness-error",
            Self::NothingTested => "nothing-tested",
        }
    }
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationRecord {
    /// Checker name.
    pub checker: String,
    /// "always", "eventually" or "sometimes".
    pub kind: String,
    /// What went wrong.
    pub message: String,
    /// Simulated milliseconds.
    pub at_ms: u64,
    /// The node, if one.
    pub node: Option<u32>,
}

/// Counters of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Canonical bytes of lanes receivers lacked.
    pub bytes_missing: u64,
    /// Of `bytes_sent`: what framed the sessions (envelopes, session ids,
    /// statuses, flags: all of an in-sync handshake but its summary). The
    /// five `bytes_sent_*` add up to `bytes_sent` (see [`ByteKind`]); all
    /// five are 0 in records written before they existed.
    #[serde(default)]
    pub bytes_sent_handshake: u64,
    /// Of `bytes_sent`: summaries of what the sender holds.
    #[serde(default)]
    pub bytes_sent_summary: u64,
    /// Of `bytes_sent`: lane batches, the share of their bytes that carried
    /// lanes their receivers lacked.
    #[serde(default)]
    pub bytes_sent_lanes_needed: u64,
    /// Of `bytes_sent`: lane batches, the rest: lanes receivers held
    /// already or refused, and batches lost on the way.
    #[serde(default)]
    pub bytes_sent_lanes_redundant: u64,
    /// Of `bytes_sent`: snapshot offers and chunks, need lists.
    #[serde(default)]
    pub bytes_sent_other: u64,
    /// Request/response exchanges.
    pub round_trips: u64,
    /// Sessions completed.
    pub sessions: u64,
    /// Sessions abandoned.
    pub sessions_abandoned: u64,
    /// Lanes acknowledged.
    pub lanes: u64,
    /// Datagrams sent.
    pub messages_sent: u64,
    /// Datagrams dropped.
    pub messages_dropped: u64,
    /// Datagrams handed to a receiver in a simulated run (a duplicate
    /// counts twice): the denominator of the harness's cost per message.
    /// 0 in real-process runs and in records written before it was counted.
    #[serde(default)]
    pub messages_delivered: u64,
    /// Fork evidence recorded: lanes refused because their author already
    /// had another lane at that seq (counted once per refusal, per node).
    pub forks: u64,
    /// Conflicts resolved by the law.
    pub conflicts: u64,
    /// Snapshots committed.
    pub snapshots: u64,
    /// Rollbacks forced by late lanes.
    pub rollbacks: u64,
    /// Crashes.
    pub crashes: u64,
    /// Snapshots received but refused (digest or id mismatch).
    #[serde(default)]
    pub snapshots_rejected: u64,
    /// Snapshots installed from peers.
    #[serde(default)]
    pub snapshots_installed: u64,
    /// Bytes of unsynced writes lost to crashes.
    #[serde(default)]
    pub unsynced_bytes_lost: u64,
    /// Crashes that landed inside an IO operation (a write or an fsync).
    #[serde(default)]
    pub crashes_mid_operation: u64,
    /// Crashes that left a torn write (part of a record) on the disk.
    #[serde(default)]
    pub torn_writes: u64,
    /// Recoveries that found and truncated a torn tail.
    #[serde(default)]
    pub torn_tails_recovered: u64,
    /// Datagrams a partition dropped.
    #[serde(default)]
    pub partition_drops: u64,
    /// Lanes pruned below stable snapshots (all live nodes at the end).
    #[serde(default)]
    pub lanes_pruned: u64,
    /// Datagrams, bundles or snapshots the engine refused as corrupt.
    #[serde(default)]
    pub corrupt_inputs_rejected: u64,
    /// Reads checked against the model.
    #[serde(default)]
    pub reads: u64,
    /// Compact summaries (heads + Bloom filter) received in sessions.
    #[serde(default)]
    pub compact_summaries: u64,
    /// Need/supply steps that fetched lanes a Bloom false positive hid.
    #[serde(default)]
    pub bloom_supplies: u64,
    /// Lanes that arrived before their ancestry and waited (live nodes at the end).
    #[serde(default)]
    pub lanes_pended: u64,
    /// Pending lanes released when their ancestry arrived (live nodes at the end).
    #[serde(default)]
    pub lanes_released: u64,
    /// Replaced nodes that finished rejoining.
    #[serde(default)]
    pub rejoins: u64,
    /// Runs that ended with a member down and a live node holding more than
    /// two snapshot intervals of lanes above its newest stable snapshot:
    /// pruning stalled for the member that cannot acknowledge (0 or 1).
    #[serde(default)]
    pub pruning_stalled: u64,
    /// Datagrams a hostile node rewrote.
    #[serde(default)]
    pub hostile_datagrams: u64,
    /// Inputs from a hostile node that honest nodes refused (bad lanes,
    /// snapshots, datagrams, suspected forks).
    #[serde(default)]
    pub hostile_inputs_rejected: u64,
    /// Recoveries that found a rotten record (a latent disk fault) and
    /// opened the replica rejoining.
    #[serde(default)]
    pub rot_detected: u64,
}

/// What sent bytes carried: the breakdown of [`Metrics::bytes_sent`].
///
/// Senders split each datagram by its parts (frame, summary, lane batch,
/// snapshot part or need list), so those add up to its length. Whether a
/// lane batch was needed only its receiver knows: it counts, per batch, the
/// batch's bytes times the share of the batch's lanes (by canonical bytes)
/// it lacked. The run's needed lane bytes are the receivers' sum (capped at
/// the lane bytes sent: a sender that crashed with its session open never
/// reported its batch), and the rest of the lane bytes sent are redundant.
/// So the five kinds add up to `bytes_sent` exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByteKind {
    /// Session frames: envelopes, ids, statuses, flags.
    Handshake,
    /// Summaries.
    Summary,
    /// Lane batches' bytes that carried lanes the receiver lacked.
    LanesNeeded,
    /// Lane batches' other bytes.
    LanesRedundant,
    /// Snapshot parts and need lists.
    Other,
}

impl ByteKind {
    /// Every kind, in the order pages show them.
    pub const ALL: [Self; 5] = [Self::Handshake, Self::Summary, Self::LanesNeeded, Self::LanesRedundant, Self::Other];

    /// Its name on pages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Handshake => "handshakes",
            Self::Summary => "summaries",
            Self::LanesNeeded => "lanes needed",
            Self::LanesRedundant => "lanes not needed",
            Self::Other => "snapshots, need lists",
        }
    }

    /// What it counts, for a page's caption.
    pub fn description(self) -> &'static str {
        match self {
            Self::Handshake => "envelopes, session ids, statuses and flags of every message",
            Self::Summary => "what each side states it holds (per-author entries, or heads and a Bloom filter)",
            Self::LanesNeeded => "lane batches, the share of lanes their receiver lacked",
            Self::LanesRedundant => {
                "lane batches, the share of lanes their receiver held or refused, or lost on the way"
            }
            Self::Other => "snapshot offers and chunks, and lists of lanes asked for again",
        }
    }

    /// Its bytes in a run's (or a sum of runs') counters.
    pub fn of(self, metrics: &Metrics) -> u64 {
        match self {
            Self::Handshake => metrics.bytes_sent_handshake,
            Self::Summary => metrics.bytes_sent_summary,
            Self::LanesNeeded => metrics.bytes_sent_lanes_needed,
            Self::LanesRedundant => metrics.bytes_sent_lanes_redundant,
            Self::Other => metrics.bytes_sent_other,
        }
    }
}

impl Metrics {
    /// Sets the lane kinds of the breakdown from the lane-batch bytes the
    /// senders sent and the share the receivers counted as needed (see
    /// [`ByteKind`]).
    pub fn split_lane_bytes(&mut self, lanes_sent: u64, lanes_needed: u64) {
        self.bytes_sent_lanes_needed = lanes_needed.min(lanes_sent);
        self.bytes_sent_lanes_redundant = lanes_sent - self.bytes_sent_lanes_needed;
    }

    /// Where the sent bytes went, by kind; `None` for a record written
    /// before the breakdown existed (every kind 0, some bytes sent).
    pub fn bytes_by_kind(&self) -> Option<[(ByteKind, u64); 5]> {
        let kinds = ByteKind::ALL.map(|kind| (kind, kind.of(self)));
        let total = kinds.iter().fold(0_u64, |sum, (_, bytes)| sum.saturating_add(*bytes));
        (total > 0 || self.bytes_sent == 0).then_some(kinds)
    }
}

/// One fault as it ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Its kind.
    pub kind: String,
    /// Start (simulated ms).
    pub start_ms: u64,
    /// Heal (simulated ms); null if it never healed.
    pub end_ms: Option<u64>,
    /// Nodes it named.
    pub nodes: Vec<u32>,
    /// A partition's sides, or a one-way cut's senders then receivers;
    /// empty for other kinds (and in records written before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<u32>>,
}

impl FaultRecord {
    /// The nodes as a reader wants them: a partition's sides
    /// ("n0..=n29 | n30..=n99"), a one-way cut ("n0 -> n1"), "all" for a
    /// fault on the whole network, or the nodes as runs of ids.
    pub fn nodes_text(&self) -> String {
        match (self.kind.as_str(), self.groups.as_slice()) {
            ("partition-one-way", [from, to]) => format!("{} -> {}", node_set(from), node_set(to)),
            (_, []) if self.nodes.is_empty() => "all".to_owned(),
            (_, []) => node_set(&self.nodes),
            (_, groups) => groups.iter().map(|group| node_set(group)).collect::<Vec<_>>().join(" | "),
        }
    }
}

/// Nodes as runs of consecutive ids ("n0..=n29 n31 n40..=n99"), so a
/// thousand nodes print as a few words.
pub fn node_set(nodes: &[u32]) -> String {
    let mut sorted = nodes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for node in sorted {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == node => *last = node,
            _ => runs.push((node, node)),
        }
    }
    let words: Vec<String> = (runs.iter())
        .map(|(first, last)| match last - first {
            0 => format!("n{first}"),
            1 => format!("n{first} n{last}"),
            _ => format!("n{first}..=n{last}"),
        })
        .collect();
    if words.is_empty() { "none".to_owned() } else { words.join(" ") }
}

/// Everything a run reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Tool version.
    pub scx_version: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario file, as given on the command line.
    pub scenario_path: String,
    /// Short content hash of the scenario.
    pub scenario_hash: String,
    /// The seed.
    pub seed: u64,
    /// Pass or fail.
    pub status: Verdict,
    /// Hash of the event trace.
    pub trace_hash: String,
    /// Simulated time at which every live node was first seen converged
    /// (ms); null if they never were. Quantised to `sample_interval_ms`.
    pub converged_at_ms: Option<u64>,
    /// Milliseconds from the last heal to convergence; null when nothing
    /// healed or nothing converged.
    pub converged_after_last_heal_ms: Option<u64>,
    /// Milliseconds from the last acknowledged write to convergence; null
    /// when nothing was written or nothing converged.
    pub converged_after_last_write_ms: Option<u64>,
    /// When the last fault healed (simulated ms); null if none healed.
    pub last_heal_at_ms: Option<u64>,
    /// When the last write was acknowledged (simulated ms); null if none was.
    pub last_write_at_ms: Option<u64>,
    /// Convergence is sampled every this many simulated ms, so every
    /// convergence figure is rounded up to a multiple of it.
    pub sample_interval_ms: u64,
    /// Faulty phase (ms).
    pub duration_ms: u64,
    /// Settle bound (ms).
    pub settle_ms: u64,
    /// When the convergence checker started probing: the end of the faulty
    /// phase or the last heal, whichever is later (ms).
    pub quiescent_at_ms: u64,
    /// When the run stopped (ms).
    pub ended_at_ms: u64,
    /// Violations.
    pub violations: Vec<ViolationRecord>,
    /// Why a run that is neither a pass nor a fail (a timeout, a harness
    /// error, nothing tested) ended as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Counters.
    pub metrics: Metrics,
    /// "Sometimes" properties reached, by name.
    pub coverage: BTreeMap<String, u64>,
    /// The fault schedule as it ran.
    pub faults: Vec<FaultRecord>,
    /// The command that reproduces this run.
    pub reproduce: String,
}

impl RunRecord {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.status == Verdict::Pass
    }

    /// Bytes sent per byte of missing lanes, if any lanes were missing.
    pub fn bytes_ratio(&self) -> Option<f64> {
        (self.metrics.bytes_missing > 0).then(|| self.metrics.bytes_sent as f64 / self.metrics.bytes_missing as f64)
    }
}

/// The first line of every results file: which campaign its records
/// belong to. `scx fuzz --resume` continues only the campaign it names, and
/// `scx merge` joins only shards of one campaign and knows from it which
/// runs each shard owes. Written as `{"campaign":{...}}`; a record line
/// never has that shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLine {
    /// The manifest.
    pub campaign: CampaignManifest,
}

/// What a campaign (one shard of it) plans to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignManifest {
    /// The manifest's own format, [`CampaignManifest::FORMAT`].
    pub format: u32,
    /// The scx that ran it.
    pub scx_version: String,
    /// This file's shard, `K/N` (`1/1` for a whole campaign or a merge).
    pub shard: String,
    /// The scenarios, sorted by path.
    pub scenarios: Vec<ManifestScenario>,
    /// Seeds of a failures file run besides the plan (by shard 1 only),
    /// sorted by seed then path.
    pub replayed_first: Vec<ManifestSeed>,
    /// The invariants every run is checked against: what a pass means.
    #[serde(default)]
    pub invariants: Vec<ManifestInvariant>,
}

/// One invariant checker a campaign runs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestInvariant {
    /// The checker's name, as violations name it.
    pub name: String,
    /// "always", "eventually" or "sometimes".
    pub kind: String,
    /// What it holds the engine to.
    pub property: String,
}

impl CampaignManifest {
    /// The format this build writes and reads.
    pub const FORMAT: u32 = 1;
}

/// One scenario of a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestScenario {
    /// Its normalised path, as records name it.
    pub path: String,
    /// Its content hash, as records carry it.
    pub hash: String,
    /// The seeds it runs before sharding, `A..B` (B excluded).
    pub seeds: String,
    /// Every parameter the scenario sets, flattened to dotted keys
    /// (`network.loss`, `faults.1.kind`), as its TOML writes it: what a
    /// comparison of two campaigns shows as their difference.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// One seed of one scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSeed {
    /// The scenario's path.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
}

/// One node at one sample time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSample {
    /// Running (not crashed).
    pub up: bool,
    /// Frozen.
    pub paused: bool,
    /// Some link to or from it is cut.
    pub partitioned: bool,
    /// Its lane index.
    pub lane_index: u64,
    /// Short chain hash (empty when down).
    pub state_hash: String,
}

/// The cluster at one sample time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Simulated milliseconds.
    pub t_ms: u64,
    /// Per node.
    pub nodes: Vec<NodeSample>,
}

/// Cumulative traffic at one sample time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSample {
    /// Simulated milliseconds.
    pub t_ms: u64,
    /// Datagram bytes sent so far.
    pub bytes_sent: u64,
    /// Bytes of lanes receivers lacked, so far.
    pub bytes_missing: u64,
}

/// One event of the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Simulated milliseconds.
    pub t_ms: u64,
    /// The node, if one.
    pub node: Option<u32>,
    /// Event kind.
    pub kind: String,
    /// Human detail.
    pub detail: String,
}

/// The trace of one run (`scx run --trace FILE`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The run's record.
    pub record: RunRecord,
    /// Cluster size.
    pub nodes: u32,
    /// Cluster samples over time.
    pub samples: Vec<Sample>,
    /// Traffic over time.
    pub traffic: Vec<TrafficSample>,
    /// Kept events.
    pub events: Vec<TraceEvent>,
    /// Events recorded in all.
    pub events_total: u64,
}

#[cfg(test)]
mod tests {
    use super::{ByteKind, FaultRecord, Metrics, node_set};

    #[test]
    fn metrics_written_before_the_byte_breakdown_read_with_none() {
        let old: Metrics = serde_json::from_str(
            r#"{"bytes_sent":500,"bytes_missing":200,"round_trips":3,"sessions":3,"sessions_abandoned":0,
                "lanes":4,"messages_sent":9,"messages_dropped":0,"forks":0,"conflicts":0,"snapshots":0,
                "rollbacks":0,"crashes":0}"#,
        )
        .unwrap();
        assert_eq!((old.bytes_sent, old.bytes_sent_handshake, old.bytes_sent_lanes_needed), (500, 0, 0));
        assert_eq!(old.bytes_by_kind(), None);
        assert!(Metrics::default().bytes_by_kind().is_some(), "a run that sent nothing has an empty breakdown");
    }

    #[test]
    fn lane_bytes_split_into_needed_and_redundant_add_up_to_the_lane_bytes_sent() {
        let mut metrics = Metrics { bytes_sent: 1_000, bytes_sent_handshake: 200, ..Metrics::default() };
        metrics.split_lane_bytes(800, 300);
        assert_eq!((metrics.bytes_sent_lanes_needed, metrics.bytes_sent_lanes_redundant), (300, 500));
        let kinds = metrics.bytes_by_kind().expect("broken down");
        assert_eq!(kinds.iter().map(|(_, bytes)| bytes).sum::<u64>(), metrics.bytes_sent);
        assert_eq!(kinds[2], (ByteKind::LanesNeeded, 300));
        // Receivers that counted more than the senders reported (a sender
        // crashed with its session open) are capped: the sum still holds.
        metrics.split_lane_bytes(800, 900);
        assert_eq!((metrics.bytes_sent_lanes_needed, metrics.bytes_sent_lanes_redundant), (800, 0));
    }

    #[test]
    fn node_sets_print_as_runs_of_consecutive_ids() {
        let big: Vec<u32> = (0..1_000).filter(|node| *node != 500).collect();
        assert_eq!(node_set(&big), "n0..=n499 n501..=n999");
        assert_eq!(node_set(&[4, 1, 2, 9, 2]), "n1 n2 n4 n9");
        assert_eq!(node_set(&[3, 4, 5, 7]), "n3..=n5 n7");
        assert_eq!(node_set(&[]), "none");
    }

    #[test]
    fn a_fault_prints_its_partition_sides_its_cut_or_its_nodes() {
        let fault = |kind: &str, nodes: Vec<u32>, groups: Vec<Vec<u32>>| FaultRecord {
            kind: kind.into(),
            start_ms: 0,
            end_ms: None,
            nodes,
            groups,
        };
        let sides = vec![(0..30).collect(), (30..100).collect()];
        assert_eq!(fault("partition", (0..100).collect(), sides).nodes_text(), "n0..=n29 | n30..=n99");
        assert_eq!(fault("partition-one-way", vec![0, 1], vec![vec![0], vec![1]]).nodes_text(), "n0 -> n1");
        assert_eq!(fault("loss", Vec::new(), Vec::new()).nodes_text(), "all");
        assert_eq!(fault("crash", vec![1, 3, 4], Vec::new()).nodes_text(), "n1 n3 n4");
        // A record written before `groups` existed still prints its nodes.
        let old: FaultRecord =
            serde_json::from_str(r#"{"kind":"partition","start_ms":1,"end_ms":2,"nodes":[0,1,2]}"#).unwrap();
        assert_eq!(old.nodes_text(), "n0..=n2");
    }
}
