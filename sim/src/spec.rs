//! The resolved plan of one run: every parameter the harness needs, with
//! times as simulated durations and node indexes checked. A scenario file
//! plus a seed resolve to exactly one `RunSpec` (see `plan.rs`), and the
//! harness runs only `RunSpec`s, so what a run did is fully described here.

use std::time::Duration;

/// How nodes choose whom to sync with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Every node may sync with every other; each tick picks the next peer in a rotation.
    Mesh,
    /// Each tick syncs with one uniformly random peer (push-pull gossip).
    PeerToPeer,
    /// Clients sync only with the server.
    ClientServer {
        /// The server's index.
        server: u32,
    },
    /// Edge nodes sync with their hub; hubs sync with each other.
    Edge {
        /// Hub indexes.
        hubs: Vec<u32>,
    },
    /// No network: lanes travel only as bundle files.
    AirGapped,
}

impl Topology {
    /// Its name in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mesh => "mesh",
            Self::PeerToPeer => "p2p",
            Self::ClientServer { .. } => "client-server",
            Self::Edge { .. } => "edge",
            Self::AirGapped => "air-gapped",
        }
    }
}

/// A latency distribution for one message.
#[derive(Clone, Debug, PartialEq)]
pub enum Latency {
    /// Uniform in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Normal with a mean and deviation, clamped to `[min, max]`.
    Normal {
        /// Lower clamp.
        min: Duration,
        /// Upper clamp.
        max: Duration,
    },
    /// Mostly near `min`; one in ten messages takes up to `max` (heavy tail).
    LongTail {
        /// Typical latency.
        min: Duration,
        /// Tail bound.
        max: Duration,
    },
}

impl Latency {
    /// Bounds of the distribution.
    pub fn bounds(&self) -> (Duration, Duration) {
        match self {
            Self::Uniform { min, max } | Self::Normal { min, max } | Self::LongTail { min, max } => (*min, *max),
        }
    }
}

/// Network behaviour for every message.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    /// Per-message latency.
    pub latency: Latency,
    /// Probability a message is lost.
    pub loss: f64,
    /// Probability a message is delivered twice.
    pub duplicate: f64,
    /// Probability a message is held back by an extra latency draw (reordering).
    pub reorder: f64,
    /// Probability one byte of a message is flipped in flight.
    pub corrupt: f64,
}

/// The writes each node makes during the faulty phase.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    /// Ops per simulated second per node.
    pub ops_per_sec: f64,
    /// Ops grouped in one lane.
    pub ops_per_lane: u32,
    /// Size of the key space.
    pub keys: u32,
    /// Share of ops that target the few hot keys every node writes.
    pub conflict_ratio: f64,
}

/// What a fault does while active.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Messages between different groups are dropped (both ways). Nodes
    /// in no group are cut off from everyone. A node in two groups is a
    /// bridge between them.
    Partition {
        /// The groups.
        groups: Vec<Vec<u32>>,
    },
    /// Messages from `from` to `to` are dropped; the other way works.
    OneWay {
        /// Senders cut off.
        from: Vec<u32>,
        /// Receivers they cannot reach.
        to: Vec<u32>,
    },
    /// Nodes stop; unsynced writes are lost (the last one may be torn).
    Crash {
        /// The nodes.
        nodes: Vec<u32>,
        /// Tear the last unsynced write instead of dropping it cleanly.
        tear: bool,
        /// At the restart, one bit of one durable record has flipped (a
        /// latent fault the log's checksums must catch on recovery).
        rot: bool,
    },
    /// Nodes lose their disk: they crash (as a crash does, at an IO
    /// operation) and restart, at the heal, with an empty disk as
    /// replacements that rejoin the cluster before they write.
    Replace {
        /// The nodes.
        nodes: Vec<u32>,
    },
    /// Nodes turn hostile: their outgoing datagrams are rewritten with
    /// these behaviours (their own state stays honest).
    Hostile {
        /// The nodes.
        nodes: Vec<u32>,
        /// What they do to what they send.
        behaviours: Vec<Hostility>,
    },
    /// Nodes are frozen (timers and messages queue up) and resume later.
    Pause {
        /// The nodes.
        nodes: Vec<u32>,
    },
    /// The nodes' clocks run ahead (positive) or behind by an offset, which
    /// shifts every timer they set.
    ClockSkew {
        /// The nodes.
        nodes: Vec<u32>,
        /// Offset in milliseconds.
        offset_ms: i64,
    },
    /// Message latency switches to another distribution.
    Latency {
        /// The new distribution.
        latency: Latency,
    },
    /// Message loss switches to another probability.
    Loss {
        /// The new loss probability.
        probability: f64,
    },
}

impl FaultKind {
    /// The scenario name of the kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Partition { .. } => "partition",
            Self::OneWay { .. } => "partition-one-way",
            Self::Crash { .. } => "crash",
            Self::Replace { .. } => "replace",
            Self::Hostile { .. } => "hostile",
            Self::Pause { .. } => "pause",
            Self::ClockSkew { .. } => "clock-skew",
            Self::Latency { .. } => "latency",
            Self::Loss { .. } => "loss",
        }
    }

    /// The nodes this fault takes out of the cluster (crashed, replaced or
    /// paused), or `None` for a fault that leaves every node running.
    pub fn downed(&self) -> Option<&[u32]> {
        match self {
            Self::Crash { nodes, .. } | Self::Replace { nodes } | Self::Pause { nodes } => Some(nodes),
            _ => None,
        }
    }

    /// Nodes the fault names directly.
    pub fn nodes(&self) -> Vec<u32> {
        match self {
            Self::Partition { groups } => {
                let mut nodes: Vec<u32> = groups.iter().flatten().copied().collect();
                nodes.sort_unstable();
                nodes.dedup();
                nodes
            }
            Self::OneWay { from, to } => from.iter().chain(to).copied().collect(),
            Self::Crash { nodes, .. }
            | Self::Replace { nodes }
            | Self::Hostile { nodes, .. }
            | Self::Pause { nodes }
            | Self::ClockSkew { nodes, .. } => nodes.clone(),
            Self::Latency { .. } | Self::Loss { .. } => Vec::new(),
        }
    }
}

/// What a hostile node does to the datagrams it sends. It keeps its own
/// identity: lanes are not signed, so impersonating another author is out
/// of scope (any member could), and equivocation is left to a later wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hostility {
    /// Lanes in its batches are made invalid: a wrong Lamport stamp, a
    /// broken chain, an unknown parent, an author outside the membership.
    InvalidLanes,
    /// The snapshot it attaches has a byte of its state flipped (the header
    /// is not re-sealed): a snapshot with wrong state.
    BadSnapshots,
    /// The lanes of a batch are sent children first, so receivers hold them
    /// pending until their parents arrive later in the batch.
    ReorderLanes,
    /// Its hello claims one lane more of some author than it holds.
    LyingSummaries,
    /// It sends again a datagram it sent earlier (a stale session).
    Replays,
    /// It sends bytes that are no message (some with a valid checksum).
    Garbage,
    /// It sends a datagram over the protocol's size limit.
    Oversized,
    /// It equivocates: next to a lane of its own in a batch it puts a twin
    /// with the same author and seq but other operations, so its chain
    /// forks under the receiver's eyes.
    Equivocate,
}

impl Hostility {
    /// Every behaviour.
    pub const ALL: [Self; 8] = [
        Self::InvalidLanes,
        Self::BadSnapshots,
        Self::ReorderLanes,
        Self::LyingSummaries,
        Self::Replays,
        Self::Garbage,
        Self::Oversized,
        Self::Equivocate,
    ];

    /// Whether honest receivers refuse what it sends (with a warning):
    /// replays are ignored as stale, reordered lanes wait and are released,
    /// and an equivocation is surfaced as fork evidence instead.
    pub fn is_refused(self) -> bool {
        !matches!(self, Self::Replays | Self::ReorderLanes | Self::Equivocate)
    }

    /// Its name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidLanes => "invalid-lanes",
            Self::BadSnapshots => "bad-snapshots",
            Self::ReorderLanes => "reorder-lanes",
            Self::LyingSummaries => "lying-summaries",
            Self::Replays => "replays",
            Self::Garbage => "garbage",
            Self::Oversized => "oversized",
            Self::Equivocate => "equivocate",
        }
    }
}

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// When it starts.
    pub start: Duration,
    /// When it heals; `None` means it lasts to the end of the run.
    pub end: Option<Duration>,
    /// What it does.
    pub kind: FaultKind,
}

/// One bundle carried between air-gapped nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleSpec {
    /// When it is carried.
    pub at: Duration,
    /// Whose lanes.
    pub from: u32,
    /// To whom.
    pub to: u32,
}

/// A planted bug the harness must find (test builds only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PlantedBug {
    /// Late lanes are applied where they arrive instead of in canonical order.
    ArrivalOrderMerge,
    /// Lanes are transmitted before the store is synced.
    SendBeforeDurable,
    /// The stable point is taken to be the tip, so pruning passes it.
    PrunePastStable,
    /// Every delta omits the last lane the peer lacks.
    DeltaSkipsLast,
    /// Snapshots are installed without checking their state digest.
    UnverifiedSnapshot,
    /// The add-wins set merges as remove-wins (a law bug every node shares).
    RemoveWinsSet,
    /// Equal Lamport stamps are ordered by author descending (a wrong
    /// canonical tie-break every node shares).
    AuthorDescendingTies,
    /// The chain step hashes its operands swapped (a hash bug every node shares).
    SwappedChainStep,
    /// Store recovery drops the last intact record before a torn tail.
    RecoveryDropsLastRecord,
    /// Store recovery refuses a log with a torn tail as corrupt.
    RecoveryRefusesTornTail,
    /// Store recovery takes a rotten record for a torn write and does not rejoin.
    RotTakenForTear,
    /// Commit records are padded past the store's record limit.
    OversizedCommitRecord,
    /// An arriving lane releases only one of the pending lanes it completes.
    PendingReleasesOne,
    /// A second lane at a held (author, seq) is dropped as a duplicate, no proof kept.
    ForkDedupedByDot,
    /// A lane is taken as stable when all members but one reached it.
    StabilityOneMemberShort,
    /// Reads answer from the last replay, without lanes admitted since.
    StaleRead,
    /// A late lane rolls back to a checkpoint one lane too late.
    RollbackOneLaneLate,
    /// Checkpoint thinning drops the stable base checkpoint.
    ThinningDropsBase,
    /// The exact summary claims one more own lane than the node holds.
    SummaryClaimsExtraLane,
    /// The initiator never asks for lanes a compact summary hid.
    BloomSkipsSupply,
    /// "In sync" is answered on equal lane indexes, hashes unchecked.
    InSyncByLaneIndex,
    /// A snapshot is installed without its boundary tips.
    SnapshotDropsBoundary,
    /// A batch back-reference resolves to the lane before the one it names.
    BackrefOffByOne,
    /// Abandoning a session leaves it open.
    AbandonKeepsSession,
    /// Session ids come from a process-global counter.
    GlobalSessionIds,
    /// An assertion that no received lane is already held.
    PanicOnRedundantLane,
}

impl PlantedBug {
    /// Every planted bug.
    pub const ALL: [Self; 26] = [
        Self::ArrivalOrderMerge,
        Self::SendBeforeDurable,
        Self::PrunePastStable,
        Self::DeltaSkipsLast,
        Self::UnverifiedSnapshot,
        Self::RemoveWinsSet,
        Self::AuthorDescendingTies,
        Self::SwappedChainStep,
        Self::RecoveryDropsLastRecord,
        Self::RecoveryRefusesTornTail,
        Self::RotTakenForTear,
        Self::OversizedCommitRecord,
        Self::PendingReleasesOne,
        Self::ForkDedupedByDot,
        Self::StabilityOneMemberShort,
        Self::StaleRead,
        Self::RollbackOneLaneLate,
        Self::ThinningDropsBase,
        Self::SummaryClaimsExtraLane,
        Self::BloomSkipsSupply,
        Self::InSyncByLaneIndex,
        Self::SnapshotDropsBoundary,
        Self::BackrefOffByOne,
        Self::AbandonKeepsSession,
        Self::GlobalSessionIds,
        Self::PanicOnRedundantLane,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ArrivalOrderMerge => "arrival-order-merge",
            Self::SendBeforeDurable => "send-before-durable",
            Self::PrunePastStable => "prune-past-stable",
            Self::DeltaSkipsLast => "delta-skips-last",
            Self::UnverifiedSnapshot => "unverified-snapshot",
            Self::RemoveWinsSet => "remove-wins-set",
            Self::AuthorDescendingTies => "author-descending-ties",
            Self::SwappedChainStep => "swapped-chain-step",
            Self::RecoveryDropsLastRecord => "recovery-drops-last-record",
            Self::RecoveryRefusesTornTail => "recovery-refuses-torn-tail",
            Self::RotTakenForTear => "rot-taken-for-tear",
            Self::OversizedCommitRecord => "oversized-commit-record",
            Self::PendingReleasesOne => "pending-releases-one",
            Self::ForkDedupedByDot => "fork-deduped-by-dot",
            Self::StabilityOneMemberShort => "stability-one-member-short",
            Self::StaleRead => "stale-read",
            Self::RollbackOneLaneLate => "rollback-one-lane-late",
            Self::ThinningDropsBase => "thinning-drops-base",
            Self::SummaryClaimsExtraLane => "summary-claims-extra-lane",
            Self::BloomSkipsSupply => "bloom-skips-supply",
            Self::InSyncByLaneIndex => "in-sync-by-lane-index",
            Self::SnapshotDropsBoundary => "snapshot-drops-boundary",
            Self::BackrefOffByOne => "backref-off-by-one",
            Self::AbandonKeepsSession => "abandon-keeps-session",
            Self::GlobalSessionIds => "global-session-ids",
            Self::PanicOnRedundantLane => "panic-on-redundant-lane",
        }
    }
}

/// Everything one run does.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// Scenario name.
    pub name: String,
    /// The run's seed.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u32,
    /// Who syncs with whom.
    pub topology: Topology,
    /// Time between a node's sync attempts.
    pub sync_interval: Duration,
    /// A session with no answer for this long is abandoned.
    pub session_timeout: Duration,
    /// The faulty phase: the workload writes and faults fire.
    pub duration: Duration,
    /// All live nodes must converge within this after the last heal.
    pub settle: Duration,
    /// Network behaviour.
    pub network: NetworkSpec,
    /// Writes.
    pub workload: WorkloadSpec,
    /// The fault schedule.
    pub faults: Vec<FaultSpec>,
    /// Bundles for air-gapped runs.
    pub bundles: Vec<BundleSpec>,
    /// Lanes between snapshot points (a power of two).
    pub snapshot_interval: u64,
    /// Prune lane history below stable snapshots.
    pub prune: bool,
    /// How often node states are sampled for the trace and the checkers.
    pub sample_interval: Duration,
    /// A planted bug, for the bug-finding catalogue.
    pub bug: Option<PlantedBug>,
}

impl RunSpec {
    /// Total simulated time: `settle` after the last heal (the end of the
    /// faulty phase, or later when a fault heals inside the settle phase),
    /// so every run gets its whole convergence bound. Saturating: a plan from
    /// a scenario is far inside the limits, and a hand-built one must not
    /// panic here.
    pub fn run_time(&self) -> Duration {
        self.quiescent_at().saturating_add(self.settle)
    }

    /// When the last fault that heals heals (or the end of the faulty phase,
    /// whichever is later): convergence is measured from here.
    pub fn quiescent_at(&self) -> Duration {
        self.faults.iter().filter_map(|fault| fault.end).fold(self.duration, Duration::max)
    }

    /// Nodes some fault makes hostile: their outgoing datagrams are not to
    /// be trusted, and they are not held to converging.
    pub fn hostile_nodes(&self) -> std::collections::BTreeSet<u32> {
        self.faults
            .iter()
            .filter_map(|fault| match &fault.kind {
                FaultKind::Hostile { nodes, .. } => Some(nodes.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Nodes crashed at the end of the run (a crash that never restarts).
    pub fn down_at_end(&self) -> Vec<u32> {
        let mut down: Vec<u32> = self
            .faults
            .iter()
            .filter(|fault| fault.end.is_none())
            .filter_map(|fault| match &fault.kind {
                FaultKind::Crash { nodes, .. } | FaultKind::Replace { nodes } => Some(nodes.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        down.sort_unstable();
        down.dedup();
        down
    }

    /// A small, fault-free plan: the base most tests and benchmarks start from.
    pub fn basic(name: &str, seed: u64, nodes: u32) -> Self {
        Self {
            name: name.to_owned(),
            seed,
            nodes,
            topology: Topology::Mesh,
            sync_interval: Duration::from_millis(100),
            session_timeout: Duration::from_millis(500),
            duration: Duration::from_secs(10),
            settle: Duration::from_secs(10),
            network: NetworkSpec {
                latency: Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(20) },
                loss: 0.0,
                duplicate: 0.0,
                reorder: 0.0,
                corrupt: 0.0,
            },
            workload: WorkloadSpec { ops_per_sec: 20.0, ops_per_lane: 4, keys: 100, conflict_ratio: 0.3 },
            faults: Vec::new(),
            bundles: Vec::new(),
            snapshot_interval: 64,
            prune: true,
            sample_interval: Duration::from_millis(100),
            bug: None,
        }
    }
}
