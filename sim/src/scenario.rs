//! Scenario files: what researchers write. A scenario is TOML with a fixed
//! shape (the keys below are a contract other tools rely on; every one is
//! described in `docs/SCENARIOS.md`), parsed with `deny_unknown_fields` and
//! validated value by value, so every error names the file, line and column
//! of the value at fault.
//!
//! ```toml
//! name = "partition-heal-mesh"
//! duration = "60s"            # faulty phase: the workload writes, faults fire
//! settle = "30s"              # convergence bound after the last heal
//! [cluster]
//! nodes = 5
//! topology = "mesh"           # mesh | p2p | client-server | edge | air-gapped
//! sync_interval = "100ms"
//! [network]
//! latency = { min = "1ms", max = "20ms" }
//! loss = 0.01
//! [workload]
//! ops_per_sec = 50
//! [[faults]]
//! at = "10s"
//! kind = "partition"          # partition | crash | pause | clock-skew | latency | loss
//! groups = [[0, 1], [2, 3, 4]]
//! heal_after = "20s"
//! ```
//!
//! Invariant: a `Scenario` that parsed is valid and runnable. Node indexes
//! are in range, probabilities in [0, 1], windows inside the run and not
//! contradictory; every key applies to the topology or fault kind it sits in;
//! every sum of times was computed with checked arithmetic and stays under
//! [`MAX_RUN_TIME`]; the run can test something (some node writes, some node
//! is up at the end); and the run's size is inside the limits below, so a
//! scenario file can neither panic the harness nor outgrow the machine.
//! `to_toml_string` writes a file that parses back to the same `Scenario`.

#![allow(
    clippy::result_large_err,
    reason = "a scenario error carries its source text for the caret; it is built once per bad file, never on a hot path"
)]

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use toml::{Table, Value};

pub use crate::spec::{FaultKind, Hostility, Latency, Topology};

/// Topology names, as written in scenario files.
pub const TOPOLOGIES: [&str; 5] = ["mesh", "p2p", "client-server", "edge", "air-gapped"];
/// Fault kinds, as written in scenario files.
pub const FAULT_KINDS: [&str; 8] =
    ["partition", "crash", "replace", "hostile", "pause", "clock-skew", "latency", "loss"];
/// Fault kinds swarm may pick (a replacement is scheduled by hand).
pub const SWARM_FAULT_KINDS: [&str; 7] = ["partition", "crash", "hostile", "pause", "clock-skew", "latency", "loss"];
/// Fault kinds that act on an air-gapped cluster. Partitions, latency and
/// loss act on datagrams, and air-gapped nodes send none: a courier carries
/// bundle files at every sync tick.
pub const AIR_GAPPED_FAULT_KINDS: [&str; 4] = ["crash", "replace", "pause", "clock-skew"];
/// Fault kinds swarm may pick on an air-gapped cluster.
pub const AIR_GAPPED_SWARM_KINDS: [&str; 3] = ["crash", "pause", "clock-skew"];
/// Latency distributions.
pub const DISTRIBUTIONS: [&str; 3] = ["uniform", "normal", "long-tail"];

/// Every key a scenario file may hold, as `(table, key)`. The table is `""`
/// at the top level, `network.latency` and `faults.latency` for the inline
/// latency tables. A unit test checks this list against the fields serde
/// accepts, and a harness test checks it against `docs/SCENARIOS.md`, so a
/// key cannot be added without being documented.
pub const KEYS: &[(&str, &str)] = &[
    ("", "name"),
    ("", "description"),
    ("", "duration"),
    ("", "settle"),
    ("", "seeds"),
    ("", "cluster"),
    ("", "network"),
    ("", "workload"),
    ("", "faults"),
    ("", "bundles"),
    ("", "swarm"),
    ("", "coverage"),
    ("cluster", "nodes"),
    ("cluster", "topology"),
    ("cluster", "server"),
    ("cluster", "hubs"),
    ("cluster", "sync_interval"),
    ("cluster", "session_timeout"),
    ("cluster", "snapshot_interval"),
    ("cluster", "prune"),
    ("cluster", "sample_interval"),
    ("network", "latency"),
    ("network", "loss"),
    ("network", "duplicate"),
    ("network", "reorder"),
    ("network", "corrupt"),
    ("network.latency", "min"),
    ("network.latency", "max"),
    ("network.latency", "distribution"),
    ("workload", "ops_per_sec"),
    ("workload", "ops_per_lane"),
    ("workload", "keys"),
    ("workload", "conflict_ratio"),
    ("faults", "at"),
    ("faults", "kind"),
    ("faults", "groups"),
    ("faults", "from"),
    ("faults", "to"),
    ("faults", "nodes"),
    ("faults", "heal_after"),
    ("faults", "restart_after"),
    ("faults", "resume_after"),
    ("faults", "tear"),
    ("faults", "rot"),
    ("faults", "skew"),
    ("faults", "latency"),
    ("faults", "probability"),
    ("faults", "behaviours"),
    ("faults.latency", "min"),
    ("faults.latency", "max"),
    ("faults.latency", "distribution"),
    ("bundles", "at"),
    ("bundles", "from"),
    ("bundles", "to"),
    ("swarm", "enabled"),
    ("swarm", "kinds"),
    ("swarm", "max_faults"),
    ("coverage", "expect"),
];

// ---- limits ----------------------------------------------------------------
//
// What one seed may ask of the machine this harness is measured on (2 cores
// shared with other work, 24 GiB; release build, `scx run FILE`). A scenario
// over a limit is refused before it runs, pointing at the key to change,
// instead of running for hours or exhausting memory. A seed costs about
// 6.5 µs per sync tick, 0.3 to 0.7 µs per unit of sync work (sync ticks ×
// lanes written) and 60 to 90 µs per held lane, so a seed at the caps takes
// a few minutes at most. `docs/SCENARIOS.md`, "Limits", explains each to
// users.

/// Most nodes in a cluster: the largest cluster measured to pass
/// (`scenarios/large/large-p2p-10k.toml`: 10,000 p2p nodes writing 246
/// lanes: 4.2 GiB, 2 to 4 minutes). A node costs memory for its lanes
/// and the peers it talks to, not for the membership (the member list is
/// shared, summaries are bounded), so memory grows linearly with nodes.
pub const MAX_NODES: u32 = 10_000;
/// Longest simulated run: `duration + settle`, or the last heal plus
/// `settle` if a fault heals inside the settle phase. A day at a 1 s sync
/// interval (3 nodes, 664 lanes) runs in 10 s; the tick, work and sample
/// caps bound what happens inside the run, and this one keeps every sum of
/// times in a plan far inside the simulator's nanosecond counters.
pub const MAX_RUN_TIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Shortest `sync_interval`, `sample_interval` and `session_timeout`:
/// madsim sleeps at least 1 ms, so a shorter interval would silently be 1 ms.
pub const MIN_INTERVAL: Duration = crate::workload::MIN_SLEEP;
/// Most lanes one node writes per simulated second (`ops_per_sec /
/// ops_per_lane`). A node writes one lane per wake-up and wakes at most once
/// a millisecond, so it writes [`crate::workload::written_share`] of the rate
/// asked: 99.5% at 100 lanes/s, 93% at 300, and 73% at 1,000 (the silent cap
/// users hit before). Measured: 1 node at 100 lanes/s for 500 s wrote 49,779
/// of 50,000 lanes (99.56%).
pub const MAX_LANES_PER_SEC_PER_NODE: f64 = 100.0;
/// Most sync ticks in a run: `nodes × run time / sync_interval`, the run
/// taken to its end (a run that does not converge goes that far). A tick
/// costs about 6.5 µs and 70 bytes even when nothing changes: 5 million
/// ticks of a 5-node mesh at 1 ms took 33 s and 0.33 GiB, so this is about a
/// minute and 0.7 GiB.
pub const MAX_SYNC_TICKS: u64 = 10_000_000;
/// Most lanes held over the cluster: `nodes × lanes written`, where the
/// cluster writes `nodes × ops_per_sec / ops_per_lane × duration` lanes
/// (every node ends up holding every lane), so it bounds the total writes
/// too. A held lane took 0.7 KiB at 10 mesh nodes (540,000 held: 0.36 GiB)
/// and 1.7 to 1.8 KiB in p2p clusters of 1,000 to 10,000 nodes (2.46
/// million held: 4.2 GiB), with 60 to 90 µs of work each (receiving,
/// ordering, replaying, checking), so this is at most about 5 GiB and 4 to 5
/// minutes.
pub const MAX_HELD_LANES: u64 = 3_000_000;
/// Most sync work: sync ticks (as in [`MAX_SYNC_TICKS`]) × lanes written. A
/// session costs in proportion to the lanes a node holds above its stable
/// point (its summary and the delta it selects), not to the members, so a
/// run's sync work grows as nodes² × rate × duration². Measured to the end
/// of runs that never converge (one node paused): a 10-node mesh writing
/// 53,842 lanes, 3.8e8 units, 160 s; 1,000 p2p nodes writing 254 lanes,
/// 3.3e7 units, 24 s; so this is 2 to 6 minutes.
pub const MAX_SYNC_WORK: u64 = 500_000_000;
/// Most node states sampled in a run: `nodes × run time / sample_interval`.
/// The trace keeps every sample: 2.1 million node states (100 nodes sampled
/// every 1 ms for 21 s) took 13 s and 0.23 GiB, about 110 bytes each.
pub const MAX_SAMPLED_STATES: u64 = 2_000_000;
/// Largest latency bound, of the network or of a latency fault. A minute is
/// beyond any network worth simulating, and it keeps a reordered message
/// (two draws) sent at the end of the run far inside the time counters.
pub const MAX_LATENCY: Duration = Duration::from_secs(60);
/// Largest clock skew, ahead or behind. A node's ticks fall on its own
/// clock, so a skew shifts them by at most one sync interval; an hour covers
/// any skew worth testing and keeps the nanosecond offset far inside `i64`.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(60 * 60);

/// Nanoseconds the simulator's signed clock arithmetic holds.
const I64_NANOS: u128 = i64::MAX as u128;
// The runner counts simulated time in u64 nanoseconds and a node's sync loop
// adds its skew and a phase below one interval (at most the run) in i64.
const _: () = assert!(MAX_RUN_TIME.as_nanos() + MAX_CLOCK_SKEW.as_nanos() + MAX_RUN_TIME.as_nanos() < I64_NANOS);
// The default session timeout is 5 sync intervals, and an interval is at most the run.
const _: () = assert!(5 * MAX_RUN_TIME.as_nanos() < u64::MAX as u128);
// A reordered message waits two latency draws, and may be sent at the end of the run.
const _: () = assert!(MAX_RUN_TIME.as_nanos() + 2 * MAX_LATENCY.as_nanos() < u64::MAX as u128);
// The lane rate limit keeps madsim's 1 ms floor from stretching gaps: λ·1ms ≤ 0.1.
const _: () = assert!(MAX_LANES_PER_SEC_PER_NODE * MIN_INTERVAL.as_secs_f64() <= 0.1);
// Node addresses are 10.a.b.c: 24 bits of node index.
const _: () = assert!(MAX_NODES < 1 << 24);
// One sample of the largest cluster fits; and a run at the tick cap can hold
// one lane per node (the work cap is at least ticks × nodes).
const _: () = assert!(MAX_SAMPLED_STATES >= MAX_NODES as u64);
const _: () = assert!(MAX_SYNC_WORK >= MAX_SYNC_TICKS * 10);
// The largest cluster at the held-lanes cap may still sync 100 ticks per node.
const _: () = assert!(MAX_SYNC_WORK / (MAX_HELD_LANES / MAX_NODES as u64) >= 100 * MAX_NODES as u64);

/// Where the limits are explained, for help lines.
const LIMITS_HELP: &str = "see \"Limits\" in docs/SCENARIOS.md";

// ---- errors ----------------------------------------------------------------

/// A bad scenario, located.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ScenarioError {
    /// `file:line:column`, or `file` and a key path when there is no span.
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The file's text.
    pub source_code: NamedSource<String>,
    /// Where in it.
    pub span: Option<SourceSpan>,
    /// Text beside the caret; empty for none (the message above says it).
    pub label: String,
}

impl Diagnostic for ScenarioError {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|help| Box::new(help) as Box<dyn std::fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source_code)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let label = (!self.label.is_empty()).then(|| self.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(label, span))))
    }
}

/// Where an error points: a byte range, a key path, or the file as a whole.
enum At<'a> {
    Span(Range<usize>),
    Key(&'a str),
    File,
}

struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(&self, at: At<'_>, message: impl Into<String>, help: Option<String>) -> ScenarioError {
        let message = message.into();
        let (location, span) = match at {
            At::Span(range) => {
                let (line, column) = line_column(self.text, range.start);
                (format!("{}:{line}:{column}", self.name), Some(SourceSpan::from(range)))
            }
            At::Key(path) => (format!("{} (at `{path}`)", self.name), None),
            At::File => (self.name.to_owned(), None),
        };
        ScenarioError {
            location,
            label: String::new(),
            message,
            help,
            source_code: NamedSource::new(self.name, self.text.to_owned()),
            span,
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>, help: Option<String>) -> ScenarioError {
        self.error(At::Span(value.span()), message, help)
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
    (line, column)
}

/// `path` as one name for one file, lexically: `./x.toml`, `x.toml` and
/// `a/../x.toml` all give `x.toml`. It drops `.` components, folds `a/..`
/// unless `a` is a symbolic link (where `..` leaves the link's target, not
/// `a`'s parent), keeps a leading `..` and keeps relative paths relative.
/// It reads no file; it only asks whether a prefix is a symbolic link.
pub fn normalise_path(path: &Path) -> String {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) if !is_symlink(&parts) => {
                    parts.pop();
                }
                // The parent of the root is the root.
                Some(Component::RootDir) => {}
                _ => parts.push(component),
            },
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        return ".".to_owned();
    }
    parts.iter().collect::<PathBuf>().display().to_string()
}

fn is_symlink(parts: &[Component<'_>]) -> bool {
    let prefix: PathBuf = parts.iter().collect();
    std::fs::symlink_metadata(prefix).is_ok_and(|metadata| metadata.file_type().is_symlink())
}

// ---- the file's shape ------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    duration: Spanned<String>,
    settle: Spanned<String>,
    cluster: RawCluster,
    #[serde(default)]
    network: RawNetwork,
    #[serde(default)]
    workload: RawWorkload,
    #[serde(default)]
    faults: Vec<Spanned<RawFault>>,
    #[serde(default)]
    bundles: Vec<Spanned<RawBundle>>,
    #[serde(default)]
    swarm: RawSwarm,
    seeds: Option<Spanned<String>>,
    coverage: Option<RawCoverage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    nodes: Spanned<u32>,
    topology: Spanned<String>,
    sync_interval: Option<Spanned<String>>,
    session_timeout: Option<Spanned<String>>,
    server: Option<Spanned<u32>>,
    hubs: Option<Spanned<Vec<u32>>>,
    snapshot_interval: Option<Spanned<u64>>,
    prune: Option<bool>,
    sample_interval: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    latency: Option<Spanned<RawLatency>>,
    loss: Option<Spanned<f64>>,
    duplicate: Option<Spanned<f64>>,
    reorder: Option<Spanned<f64>>,
    corrupt: Option<Spanned<f64>>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawLatency {
    min: Spanned<String>,
    max: Spanned<String>,
    distribution: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    ops_per_sec: Option<Spanned<f64>>,
    ops_per_lane: Option<Spanned<u32>>,
    keys: Option<Spanned<u32>>,
    conflict_ratio: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    at: Spanned<String>,
    kind: Spanned<String>,
    groups: Option<Spanned<Vec<Vec<u32>>>>,
    from: Option<Spanned<Vec<u32>>>,
    to: Option<Spanned<Vec<u32>>>,
    nodes: Option<Spanned<Vec<u32>>>,
    heal_after: Option<Spanned<String>>,
    restart_after: Option<Spanned<String>>,
    resume_after: Option<Spanned<String>>,
    tear: Option<Spanned<bool>>,
    rot: Option<Spanned<bool>>,
    skew: Option<Spanned<String>>,
    latency: Option<Spanned<RawLatency>>,
    probability: Option<Spanned<f64>>,
    behaviours: Option<Spanned<Vec<String>>>,
}

impl RawFault {
    /// Each optional key and the span of its value, if present.
    fn present_keys(&self) -> [(&'static str, Option<Range<usize>>); 13] {
        fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
            value.as_ref().map(Spanned::span)
        }
        [
            ("groups", span(&self.groups)),
            ("from", span(&self.from)),
            ("to", span(&self.to)),
            ("nodes", span(&self.nodes)),
            ("heal_after", span(&self.heal_after)),
            ("restart_after", span(&self.restart_after)),
            ("resume_after", span(&self.resume_after)),
            ("tear", span(&self.tear)),
            ("rot", span(&self.rot)),
            ("skew", span(&self.skew)),
            ("latency", span(&self.latency)),
            ("probability", span(&self.probability)),
            ("behaviours", span(&self.behaviours)),
        ]
    }

    /// The key that ends the fault's window, and its value, if present.
    fn window(&self) -> Option<(&'static str, &Spanned<String>)> {
        [("heal_after", &self.heal_after), ("restart_after", &self.restart_after), ("resume_after", &self.resume_after)]
            .into_iter()
            .find_map(|(key, value)| value.as_ref().map(|value| (key, value)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    at: Spanned<String>,
    from: Spanned<u32>,
    to: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoverage {
    expect: Spanned<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSwarm {
    enabled: Option<Spanned<bool>>,
    kinds: Option<Spanned<Vec<String>>>,
    max_faults: Option<Spanned<u32>>,
}

// ---- the validated model ---------------------------------------------------

/// One scheduled fault.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// Start.
    pub at: Duration,
    /// How long it lasts; `None`: to the end of the run.
    pub lasts: Option<Duration>,
    /// What it does.
    pub kind: FaultKind,
}

impl Fault {
    /// When it heals; `None`: never (it lasts to the end of the run).
    pub fn end(&self) -> Option<Duration> {
        self.lasts.map(|lasts| self.at.saturating_add(lasts))
    }
}

/// A bundle carried between air-gapped nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// When.
    pub at: Duration,
    /// From.
    pub from: u32,
    /// To.
    pub to: u32,
}

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// What it tests.
    pub description: String,
    /// Faulty phase.
    pub duration: Duration,
    /// Convergence bound after the last heal.
    pub settle: Duration,
    /// Cluster size.
    pub nodes: u32,
    /// Topology.
    pub topology: Topology,
    /// Sync cadence.
    pub sync_interval: Duration,
    /// Session timeout.
    pub session_timeout: Duration,
    /// Lanes between snapshot points (a power of two).
    pub snapshot_interval: u64,
    /// Prune below stable snapshots.
    pub prune: bool,
    /// Sampling cadence of the trace.
    pub sample_interval: Duration,
    /// Per-message latency.
    pub latency: Latency,
    /// Loss probability.
    pub loss: f64,
    /// Duplication probability.
    pub duplicate: f64,
    /// Reordering probability.
    pub reorder: f64,
    /// Snapshot corruption probability.
    pub corrupt: f64,
    /// Ops per second per node.
    pub ops_per_sec: f64,
    /// Ops per lane.
    pub ops_per_lane: u32,
    /// Key space.
    pub keys: u32,
    /// Share of ops on hot keys.
    pub conflict_ratio: f64,
    /// Faults.
    pub faults: Vec<Fault>,
    /// Bundles.
    pub bundles: Vec<Bundle>,
    /// Swarm mode: the seed randomises the fault mix.
    pub swarm: bool,
    /// Fault kinds swarm may pick.
    pub swarm_kinds: Vec<String>,
    /// Most faults swarm adds.
    pub swarm_max_faults: u32,
    /// Seeds `scx fuzz` and the scenario tests run by default.
    pub seeds: Range<u64>,
    /// Effects its faults must have in some seed of a campaign (`None`: the
    /// defaults of [`Scenario::expected_effects`]).
    pub coverage: Option<Vec<String>>,
}

/// How big one run of a scenario is, in the units the limits use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunSize {
    /// Simulated time from start to end, settle included.
    pub run_time: Duration,
    /// `nodes × run_time / sync_interval`.
    pub sync_ticks: u64,
    /// Lanes the cluster writes, expected: `nodes × ops_per_sec / ops_per_lane × duration`.
    pub lanes_written: f64,
    /// `nodes × lanes_written`: every node ends up holding every lane.
    pub lanes_held: f64,
    /// `sync_ticks × lanes_written`.
    pub sync_work: f64,
    /// `nodes × run_time / sample_interval`.
    pub sampled_states: u64,
}

impl Scenario {
    /// Reads and validates the scenario file at `path`; errors name it as
    /// [`normalise_path`] does.
    pub fn from_path(path: &Path) -> Result<Self, ScenarioError> {
        let name = normalise_path(path);
        let text = std::fs::read_to_string(path).map_err(|error| {
            Source { name: &name, text: "" }.error(At::File, format!("cannot read the scenario: {error}"), None)
        })?;
        Self::from_toml(&text, &name)
    }

    /// Parses and validates scenario text; `file_name` is used in errors.
    pub fn from_toml(text: &str, file_name: &str) -> Result<Self, ScenarioError> {
        let source = Source { name: file_name, text };
        let raw: RawScenario = toml::from_str(text).map_err(|error| {
            let at = error.span().map_or(At::Key("(document)"), At::Span);
            let help = unknown_key_help(error.message());
            source.error(at, error.message().trim().to_owned(), help)
        })?;
        validate(&source, raw)
    }

    /// A short, stable id of the scenario's content.
    pub fn content_hash(&self) -> String {
        // Over a canonical encoding of the document, not its TOML text, so a
        // new version of the TOML writer does not rename every scenario.
        let canonical = serde_json::to_vec(&self.to_table()).expect("a TOML table always serialises to JSON");
        blake3::hash(&canonical).to_hex()[..16].to_owned()
    }

    /// When the last fault heals, or the end of the faulty phase if later:
    /// convergence is measured from here.
    pub fn quiescent_at(&self) -> Duration {
        self.faults.iter().filter_map(Fault::end).fold(self.duration, Duration::max)
    }

    /// The run's size, as the limits measure it.
    pub fn size(&self) -> RunSize {
        let run_time = self.quiescent_at().saturating_add(self.settle);
        let nodes = u128::from(self.nodes);
        let per_node = |interval: Duration| run_time.as_nanos() / interval.as_nanos().max(1);
        let sync_ticks = u64::try_from(nodes * per_node(self.sync_interval)).unwrap_or(u64::MAX);
        let sampled_states = u64::try_from(nodes * per_node(self.sample_interval)).unwrap_or(u64::MAX);
        let lanes_per_sec = self.ops_per_sec / f64::from(self.ops_per_lane.max(1));
        let lanes_written = f64::from(self.nodes) * lanes_per_sec * self.duration.as_secs_f64();
        let lanes_held = f64::from(self.nodes) * lanes_written;
        RunSize {
            run_time,
            sync_ticks,
            lanes_written,
            lanes_held,
            sync_work: sync_ticks as f64 * lanes_written,
            sampled_states,
        }
    }

    /// The scenario as a TOML file that parses back to `self`, written by
    /// the `toml` crate (quoting and escaping are its business).
    pub fn to_toml_string(&self) -> String {
        self.to_table().to_string()
    }

    /// Every parameter as a dotted key (`cluster.nodes`, `faults.1.kind`,
    /// counting from 1) and its TOML value (strings unquoted): what a
    /// comparison of two campaigns lists as their difference.
    pub fn parameters(&self) -> BTreeMap<String, String> {
        fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
            let key = |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
            match value {
                Value::Table(table) => table.iter().for_each(|(name, value)| flatten(&key(name), value, out)),
                Value::Array(items) if items.iter().all(Value::is_table) && !items.is_empty() => {
                    for (index, item) in items.iter().enumerate() {
                        flatten(&key(&(index + 1).to_string()), item, out);
                    }
                }
                Value::String(text) => {
                    out.insert(prefix.to_owned(), text.clone());
                }
                other => {
                    out.insert(prefix.to_owned(), other.to_string());
                }
            }
        }
        let mut out = BTreeMap::new();
        flatten("", &Value::Table(self.to_table()), &mut out);
        out
    }

    /// The scenario as a TOML document, keys in the order a person writes
    /// them and only those that apply (the parser refuses the others).
    fn to_table(&self) -> Table {
        let mut top = Table::new();
        top.insert("name".into(), self.name.clone().into());
        if !self.description.is_empty() {
            top.insert("description".into(), self.description.clone().into());
        }
        top.insert("duration".into(), duration(self.duration));
        top.insert("settle".into(), duration(self.settle));
        top.insert("seeds".into(), format!("{}..{}", self.seeds.start, self.seeds.end).into());
        let mut cluster = Table::new();
        cluster.insert("nodes".into(), integer(self.nodes));
        match &self.topology {
            Topology::ClientServer { server } => {
                cluster.insert("server".into(), integer(*server));
            }
            Topology::Edge { hubs } => {
                cluster.insert("hubs".into(), integers(hubs));
            }
            Topology::Mesh | Topology::PeerToPeer | Topology::AirGapped => {}
        }
        cluster.insert("topology".into(), self.topology.name().into());
        cluster.insert("sync_interval".into(), duration(self.sync_interval));
        let air_gapped = self.topology == Topology::AirGapped;
        if !air_gapped {
            cluster.insert("session_timeout".into(), duration(self.session_timeout));
        }
        cluster.insert("snapshot_interval".into(), integer(self.snapshot_interval));
        cluster.insert("prune".into(), self.prune.into());
        cluster.insert("sample_interval".into(), duration(self.sample_interval));
        top.insert("cluster".into(), cluster.into());
        // Air-gapped nodes send no datagrams: only bundle-file corruption applies.
        let mut network = Table::new();
        if !air_gapped {
            network.insert("latency".into(), latency(&self.latency));
            network.insert("loss".into(), self.loss.into());
            network.insert("duplicate".into(), self.duplicate.into());
            network.insert("reorder".into(), self.reorder.into());
        }
        network.insert("corrupt".into(), self.corrupt.into());
        top.insert("network".into(), network.into());
        let mut workload = Table::new();
        workload.insert("ops_per_sec".into(), self.ops_per_sec.into());
        workload.insert("ops_per_lane".into(), integer(self.ops_per_lane));
        workload.insert("keys".into(), integer(self.keys));
        workload.insert("conflict_ratio".into(), self.conflict_ratio.into());
        top.insert("workload".into(), workload.into());
        if !self.faults.is_empty() {
            top.insert("faults".into(), Value::Array(self.faults.iter().map(fault_table).collect()));
        }
        if !self.bundles.is_empty() {
            let bundles = self.bundles.iter().map(|bundle| {
                let mut table = Table::new();
                table.insert("at".into(), duration(bundle.at));
                table.insert("from".into(), integer(bundle.from));
                table.insert("to".into(), integer(bundle.to));
                Value::Table(table)
            });
            top.insert("bundles".into(), Value::Array(bundles.collect()));
        }
        if self.swarm {
            let mut swarm = Table::new();
            swarm.insert("enabled".into(), true.into());
            swarm.insert("kinds".into(), strings(&self.swarm_kinds));
            swarm.insert("max_faults".into(), integer(self.swarm_max_faults));
            top.insert("swarm".into(), swarm.into());
        }
        if let Some(expect) = &self.coverage {
            let mut coverage = Table::new();
            coverage.insert("expect".into(), strings(expect));
            top.insert("coverage".into(), coverage.into());
        }
        top
    }

    /// The effects a campaign over this scenario must see in at least one
    /// seed: those `[coverage] expect` lists, or defaults that follow from
    /// its faults (a crash must lose unsynced bytes, a partition must drop
    /// datagrams, a torn crash must leave a torn tail that recovery truncates...).
    pub fn expected_effects(&self) -> Vec<String> {
        if let Some(expect) = &self.coverage {
            return expect.clone();
        }
        let mut kinds: Vec<&str> = self.faults.iter().map(|fault| fault.kind.name()).collect();
        if self.swarm {
            kinds.extend(self.swarm_kinds.iter().map(String::as_str));
        }
        let mut effects = Vec::new();
        if kinds.contains(&"crash") {
            effects.extend(["crashes", "crashes-mid-operation", "unsynced-bytes-lost"]);
        }
        if kinds.contains(&"replace") {
            effects.extend(["crashes", "rejoins"]);
        }
        // Whether a scheduled hostile fault has a behaviour that passes `test`.
        let hostile_does = |test: fn(Hostility) -> bool| {
            self.faults.iter().any(|fault| {
                matches!(&fault.kind, FaultKind::Hostile { behaviours, .. } if behaviours.iter().any(|b| test(*b)))
            })
        };
        // Only some behaviours are refused with a warning (see `Hostility::is_refused`).
        if hostile_does(Hostility::is_refused) || (self.swarm && self.swarm_kinds.iter().any(|kind| kind == "hostile"))
        {
            effects.push("hostile-inputs-rejected");
        }
        if hostile_does(|behaviour| behaviour == Hostility::Equivocate) {
            effects.push("forks-surfaced");
        }
        if self.faults.iter().any(|fault| matches!(fault.kind, FaultKind::Crash { tear: true, .. })) {
            effects.push("torn-tails-recovered");
        }
        if self.faults.iter().any(|fault| matches!(fault.kind, FaultKind::Crash { rot: true, .. })) {
            effects.push("rot-detected");
        }
        if kinds.iter().any(|kind| kind.starts_with("partition")) {
            effects.push("partition-drops");
        }
        if self.loss > 0.0 || kinds.contains(&"loss") {
            effects.push("messages-dropped");
        }
        if self.corrupt > 0.0 {
            effects.push("corrupt-inputs-rejected");
        }
        if self.prune {
            effects.push("snapshots-committed");
        }
        effects.sort_unstable();
        effects.dedup();
        effects.into_iter().map(str::to_owned).collect()
    }
}

fn fault_table(fault: &Fault) -> Value {
    let mut table = Table::new();
    table.insert("at".into(), duration(fault.at));
    let mut kind = |name: &str, keys: Vec<(&str, Value)>| {
        table.insert("kind".into(), name.into());
        for (key, value) in keys {
            table.insert(key.into(), value);
        }
    };
    let window_key = match &fault.kind {
        FaultKind::Partition { groups } => {
            kind("partition", vec![("groups", Value::Array(groups.iter().map(|group| integers(group)).collect()))]);
            "heal_after"
        }
        FaultKind::OneWay { from, to } => {
            kind("partition", vec![("from", integers(from)), ("to", integers(to))]);
            "heal_after"
        }
        FaultKind::Crash { nodes, tear, rot } => {
            let mut keys = vec![("nodes", integers(nodes)), ("tear", Value::Boolean(*tear))];
            if *rot {
                keys.push(("rot", Value::Boolean(true)));
            }
            kind("crash", keys);
            "restart_after"
        }
        FaultKind::Replace { nodes } => {
            kind("replace", vec![("nodes", integers(nodes))]);
            "restart_after"
        }
        FaultKind::Hostile { nodes, behaviours } => {
            let names: Vec<String> = behaviours.iter().map(|behaviour| behaviour.name().to_owned()).collect();
            kind("hostile", vec![("nodes", integers(nodes)), ("behaviours", strings(&names))]);
            "heal_after"
        }
        FaultKind::Pause { nodes } => {
            kind("pause", vec![("nodes", integers(nodes))]);
            "resume_after"
        }
        FaultKind::ClockSkew { nodes, offset_ms } => {
            kind("clock-skew", vec![("nodes", integers(nodes)), ("skew", format!("{offset_ms:+}ms").into())]);
            "heal_after"
        }
        FaultKind::Latency { latency: spike } => {
            kind("latency", vec![("latency", latency(spike))]);
            "heal_after"
        }
        FaultKind::Loss { probability } => {
            kind("loss", vec![("probability", Value::Float(*probability))]);
            "heal_after"
        }
    };
    if let Some(lasts) = fault.lasts {
        table.insert(window_key.into(), duration(lasts));
    }
    Value::Table(table)
}

/// A count as a TOML integer (every count a scenario holds fits: the parser
/// read it from one).
fn integer(value: impl Into<u64>) -> Value {
    Value::Integer(i64::try_from(value.into()).unwrap_or(i64::MAX))
}

fn integers(values: &[u32]) -> Value {
    Value::Array(values.iter().map(|value| integer(*value)).collect())
}

fn strings(values: &[String]) -> Value {
    Value::Array(values.iter().map(|value| Value::String(value.clone())).collect())
}

fn duration(value: Duration) -> Value {
    Value::String(humantime::format_duration(value).to_string().replace(' ', ""))
}

fn latency(value: &Latency) -> Value {
    let distribution = match value {
        Latency::Uniform { .. } => "uniform",
        Latency::Normal { .. } => "normal",
        Latency::LongTail { .. } => "long-tail",
    };
    let (min, max) = value.bounds();
    let mut table = Table::new();
    table.insert("min".into(), duration(min));
    table.insert("max".into(), duration(max));
    table.insert("distribution".into(), distribution.into());
    Value::Table(table)
}

fn unknown_key_help(message: &str) -> Option<String> {
    message.contains("unknown field").then(|| {
        let expected = message.split("expected").nth(1).unwrap_or("").trim();
        format!("check the spelling; the keys allowed here are {expected} (docs/SCENARIOS.md lists them all)")
    })
}

fn human(value: Duration) -> String {
    humantime::format_duration(value).to_string()
}

// ---- values ----------------------------------------------------------------

fn parse_duration(source: &Source<'_>, value: &Spanned<String>, what: &str) -> Result<Duration, ScenarioError> {
    humantime::parse_duration(value.get_ref().trim()).map_err(|error| {
        source.at(
            value,
            format!("`{}` is not a duration for {what}: {error}", value.get_ref()),
            Some("write a duration such as \"150ms\", \"20s\" or \"2m\"".into()),
        )
    })
}

/// A duration no longer than `max`.
fn duration_at_most(
    source: &Source<'_>,
    value: &Spanned<String>,
    what: &str,
    max: Duration,
) -> Result<Duration, ScenarioError> {
    let parsed = parse_duration(source, value, what)?;
    if parsed > max {
        return Err(source.at(
            value,
            format!("{what} is `{}`, above the limit of {}", value.get_ref().trim(), human(max)),
            Some(format!("the limit keeps one seed's run within this machine; {LIMITS_HELP}")),
        ));
    }
    Ok(parsed)
}

/// A window length (`heal_after`, `restart_after`, ...): above zero, at most the longest run.
fn window_length(source: &Source<'_>, value: &Spanned<String>, what: &str) -> Result<Duration, ScenarioError> {
    let lasts = duration_at_most(source, value, what, MAX_RUN_TIME)?;
    if lasts.is_zero() {
        return Err(source.at(
            value,
            format!("{what} is zero: the fault would heal as it starts"),
            Some(format!("give the fault a length, or drop {what} to let it last to the end of the run")),
        ));
    }
    Ok(lasts)
}

fn probability(source: &Source<'_>, value: Option<&Spanned<f64>>, what: &str) -> Result<f64, ScenarioError> {
    let Some(value) = value else { return Ok(0.0) };
    let p = *value.get_ref();
    if !(0.0..=1.0).contains(&p) || p.is_nan() {
        return Err(source.at(value, format!("{what} must be a probability in [0, 1], not {p}"), None));
    }
    Ok(p)
}

fn check_nodes(
    source: &Source<'_>,
    value: &Spanned<Vec<u32>>,
    nodes: u32,
    what: &str,
) -> Result<Vec<u32>, ScenarioError> {
    if value.get_ref().is_empty() {
        return Err(source.at(value, format!("{what} names no node"), None));
    }
    if let Some(bad) = value.get_ref().iter().find(|node| **node >= nodes) {
        return Err(source.at(
            value,
            format!("node index {bad} out of range (cluster has {nodes} nodes)"),
            Some(format!("node indexes run from 0 to {}", nodes - 1)),
        ));
    }
    let mut sorted = value.get_ref().clone();
    sorted.sort_unstable();
    sorted.dedup();
    Ok(sorted)
}

/// An error at a key that has no meaning where it is.
fn does_not_apply(source: &Source<'_>, span: Range<usize>, key: &str, place: &str, help: String) -> ScenarioError {
    source.error(At::Span(span), format!("`{key}` does not apply to {place}"), Some(help))
}

// ---- the scenario ----------------------------------------------------------

fn validate(source: &Source<'_>, raw: RawScenario) -> Result<Scenario, ScenarioError> {
    if raw.name.get_ref().trim().is_empty() {
        return Err(source.at(&raw.name, "the scenario needs a name", None));
    }
    let (duration, settle) = phases(source, &raw)?;
    let cluster = &raw.cluster;
    let nodes = *cluster.nodes.get_ref();
    if nodes == 0 || nodes > MAX_NODES {
        return Err(source.at(
            &cluster.nodes,
            format!("nodes must be between 1 and {MAX_NODES}, not {nodes}"),
            (nodes > MAX_NODES).then(|| format!("memory per node grows with the cluster; {LIMITS_HELP}")),
        ));
    }
    let topology = topology(source, cluster, nodes)?;
    let timing = timing(source, cluster, (settle, &raw.settle), &topology)?;
    let network = network(source, &raw.network, &topology)?;
    let workload = workload(source, &raw.workload)?;
    let mut scenario = Scenario {
        name: raw.name.get_ref().clone(),
        description: raw.description.clone(),
        duration,
        settle,
        nodes,
        topology,
        sync_interval: timing.sync_interval,
        session_timeout: timing.session_timeout,
        snapshot_interval: snapshot_interval(source, cluster)?,
        prune: cluster.prune.unwrap_or(true),
        sample_interval: timing.sample_interval,
        latency: network.latency,
        loss: network.loss,
        duplicate: network.duplicate,
        reorder: network.reorder,
        corrupt: network.corrupt,
        ops_per_sec: workload.ops_per_sec,
        ops_per_lane: workload.ops_per_lane,
        keys: workload.keys,
        conflict_ratio: workload.conflict_ratio,
        faults: Vec::new(),
        bundles: Vec::new(),
        swarm: false,
        swarm_kinds: Vec::new(),
        swarm_max_faults: 3,
        seeds: seeds(source, raw.seeds.as_ref())?,
        coverage: None,
    };
    for fault in &raw.faults {
        scenario.faults.push(validate_fault(source, fault, &scenario)?);
    }
    check_overlaps(source, &raw.faults, &scenario.faults)?;
    check_rejoins_can_finish(source, &raw.faults, &scenario.faults, &scenario.topology)?;
    check_run_time(source, &raw, &scenario)?;
    for bundle in &raw.bundles {
        scenario.bundles.push(validate_bundle(source, bundle, &scenario)?);
    }
    validate_swarm(source, &raw.swarm, &mut scenario)?;
    scenario.coverage = raw.coverage.as_ref().map(|coverage| validate_coverage(source, coverage)).transpose()?;
    check_something_is_tested(source, &raw, &scenario)?;
    check_size(source, &raw, &scenario)?;
    Ok(scenario)
}

/// The faulty phase and the settle bound.
fn phases(source: &Source<'_>, raw: &RawScenario) -> Result<(Duration, Duration), ScenarioError> {
    let duration = duration_at_most(source, &raw.duration, "duration", MAX_RUN_TIME)?;
    if duration.is_zero() {
        return Err(source.at(
            &raw.duration,
            "duration is zero: nodes write only during the faulty phase, so nothing would be tested",
            Some("give the faulty phase a length, such as duration = \"10s\"".into()),
        ));
    }
    let settle = duration_at_most(source, &raw.settle, "settle", MAX_RUN_TIME)?;
    if settle.is_zero() {
        return Err(source.at(&raw.settle, "settle must be longer than zero: it is the convergence bound", None));
    }
    match duration.checked_add(settle).filter(|run| *run <= MAX_RUN_TIME) {
        Some(_) => Ok((duration, settle)),
        None => Err(source.at(
            &raw.settle,
            format!(
                "duration + settle is {}, above the limit of {} for one run",
                duration.checked_add(settle).map_or_else(|| "beyond any clock".to_owned(), human),
                human(MAX_RUN_TIME)
            ),
            Some(format!("shorten duration or settle; {LIMITS_HELP}")),
        )),
    }
}

fn topology(source: &Source<'_>, cluster: &RawCluster, nodes: u32) -> Result<Topology, ScenarioError> {
    let in_range = |value: &Spanned<u32>| {
        let node = *value.get_ref();
        if node < nodes {
            Ok(node)
        } else {
            Err(source.at(value, format!("node index {node} out of range (cluster has {nodes} nodes)"), None))
        }
    };
    let name = cluster.topology.get_ref().as_str();
    if let Some(server) = cluster.server.as_ref().filter(|_| name != "client-server") {
        let help = "`server` names the server of topology = \"client-server\"; remove it".to_owned();
        return Err(does_not_apply(source, server.span(), "server", &format!("the {name} topology"), help));
    }
    if let Some(hubs) = cluster.hubs.as_ref().filter(|_| name != "edge") {
        let help = "`hubs` names the hubs of topology = \"edge\"; remove it".to_owned();
        return Err(does_not_apply(source, hubs.span(), "hubs", &format!("the {name} topology"), help));
    }
    match name {
        "mesh" => Ok(Topology::Mesh),
        "p2p" => Ok(Topology::PeerToPeer),
        "air-gapped" => Ok(Topology::AirGapped),
        "client-server" => Ok(Topology::ClientServer { server: cluster.server.as_ref().map_or(Ok(0), in_range)? }),
        "edge" => {
            let hubs = match &cluster.hubs {
                Some(hubs) => check_nodes(source, hubs, nodes, "hubs")?,
                None => vec![0],
            };
            Ok(Topology::Edge { hubs })
        }
        other => Err(source.at(
            &cluster.topology,
            format!("unknown topology `{other}`"),
            Some(format!("topology is one of {}", TOPOLOGIES.join(", "))),
        )),
    }
}

struct Timing {
    sync_interval: Duration,
    session_timeout: Duration,
    sample_interval: Duration,
}

/// The cluster's cadences. Both intervals fit inside `settle`: a node that
/// does not tick between the last write and the end of the run cannot
/// converge, and convergence is only seen at a sample.
fn timing(
    source: &Source<'_>,
    cluster: &RawCluster,
    (settle, settle_value): (Duration, &Spanned<String>),
    topology: &Topology,
) -> Result<Timing, ScenarioError> {
    let interval = |value: &Option<Spanned<String>>, what: &str, why: &str| {
        let Some(value) = value else {
            let default = Duration::from_millis(100);
            return if default <= settle {
                Ok(default)
            } else {
                Err(source.at(
                    settle_value,
                    format!("settle ({}) is shorter than the default {what} of 100ms", human(settle)),
                    Some(format!("lengthen settle, or set {what} to at most settle: {why}")),
                ))
            };
        };
        let parsed = parse_duration(source, value, what)?;
        if parsed < MIN_INTERVAL {
            return Err(source.at(
                value,
                format!("{what} must be at least 1ms"),
                Some("madsim sleeps at least 1 ms, so a shorter interval would silently be 1 ms".into()),
            ));
        }
        if parsed > settle {
            return Err(source.at(
                value,
                format!("{what} ({}) is longer than settle ({})", human(parsed), human(settle)),
                Some(format!("shorten {what} or lengthen settle: {why}")),
            ));
        }
        Ok(parsed)
    };
    let sync_interval =
        interval(&cluster.sync_interval, "sync_interval", "every node must sync at least once after the last heal")?;
    let sample_interval =
        interval(&cluster.sample_interval, "sample_interval", "convergence is checked at each sample")?;
    let session_timeout = match &cluster.session_timeout {
        None => sync_interval.saturating_mul(5),
        Some(value) if *topology == Topology::AirGapped => {
            let help = "air-gapped nodes open no sessions: a courier carries bundle files; remove it".to_owned();
            return Err(does_not_apply(source, value.span(), "session_timeout", "the air-gapped topology", help));
        }
        Some(value) => {
            let timeout = duration_at_most(source, value, "session_timeout", MAX_RUN_TIME)?;
            if timeout < MIN_INTERVAL {
                return Err(source.at(value, "session_timeout must be at least 1ms", None));
            }
            timeout
        }
    };
    Ok(Timing { sync_interval, session_timeout, sample_interval })
}

fn snapshot_interval(source: &Source<'_>, cluster: &RawCluster) -> Result<u64, ScenarioError> {
    cluster.snapshot_interval.as_ref().map_or(Ok(64), |value| {
        let interval = *value.get_ref();
        if interval.is_power_of_two() && interval >= 2 {
            Ok(interval)
        } else {
            Err(source.at(
                value,
                format!("snapshot_interval must be a power of two of at least 2, not {interval}"),
                None,
            ))
        }
    })
}

fn seeds(source: &Source<'_>, value: Option<&Spanned<String>>) -> Result<Range<u64>, ScenarioError> {
    match value {
        None => Ok(0..10),
        Some(value) => {
            let range: crate::shard::SeedRange =
                value.get_ref().parse().map_err(|message: String| source.at(value, message, None))?;
            Ok(range.start..range.end)
        }
    }
}

struct Network {
    latency: Latency,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    corrupt: f64,
}

fn network(source: &Source<'_>, network: &RawNetwork, topology: &Topology) -> Result<Network, ScenarioError> {
    if *topology == Topology::AirGapped {
        let datagram_keys = [
            ("latency", network.latency.as_ref().map(Spanned::span)),
            ("loss", network.loss.as_ref().map(Spanned::span)),
            ("duplicate", network.duplicate.as_ref().map(Spanned::span)),
            ("reorder", network.reorder.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(span))) = datagram_keys.into_iter().find(|(_, span)| span.is_some()) {
            let help =
                "air-gapped nodes send no datagrams; of [network], only `corrupt` (bundle files) applies".to_owned();
            return Err(does_not_apply(source, span, key, "the air-gapped topology", help));
        }
    }
    let latency = match &network.latency {
        Some(value) => parse_latency(source, value, "latency")?,
        None => Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(10) },
    };
    Ok(Network {
        latency,
        loss: probability(source, network.loss.as_ref(), "loss")?,
        duplicate: probability(source, network.duplicate.as_ref(), "duplicate")?,
        reorder: probability(source, network.reorder.as_ref(), "reorder")?,
        corrupt: probability(source, network.corrupt.as_ref(), "corrupt")?,
    })
}

fn parse_latency(source: &Source<'_>, value: &Spanned<RawLatency>, what: &str) -> Result<Latency, ScenarioError> {
    let raw = value.get_ref();
    let min = duration_at_most(source, &raw.min, &format!("{what}.min"), MAX_LATENCY)?;
    let max = duration_at_most(source, &raw.max, &format!("{what}.max"), MAX_LATENCY)?;
    if max < min {
        return Err(source.at(&raw.max, format!("{what}.max is below {what}.min"), None));
    }
    match raw.distribution.as_ref().map(|name| name.get_ref().as_str()) {
        None | Some("uniform") => Ok(Latency::Uniform { min, max }),
        Some("normal") => Ok(Latency::Normal { min, max }),
        Some("long-tail") => Ok(Latency::LongTail { min, max }),
        Some(other) => {
            let name = raw.distribution.as_ref().expect("matched Some above");
            Err(source.at(
                name,
                format!("unknown latency distribution `{other}`"),
                Some(format!("distribution is one of {}", DISTRIBUTIONS.join(", "))),
            ))
        }
    }
}

struct Workload {
    ops_per_sec: f64,
    ops_per_lane: u32,
    keys: u32,
    conflict_ratio: f64,
}

fn workload(source: &Source<'_>, workload: &RawWorkload) -> Result<Workload, ScenarioError> {
    let positive = |value: &Option<Spanned<u32>>, what: &str, default: u32, max: u32| {
        value.as_ref().map_or(Ok(default), |value| {
            let count = *value.get_ref();
            if (1..=max).contains(&count) {
                Ok(count)
            } else {
                Err(source.at(value, format!("{what} must be between 1 and {max}, not {count}"), None))
            }
        })
    };
    let ops_per_lane = positive(&workload.ops_per_lane, "ops_per_lane", 4, 4096)?;
    let ops_per_sec = match &workload.ops_per_sec {
        None => 20.0,
        Some(value) => ops_per_sec(source, value, ops_per_lane)?,
    };
    Ok(Workload {
        ops_per_sec,
        ops_per_lane,
        keys: positive(&workload.keys, "keys", 100, 1 << 24)?,
        conflict_ratio: match &workload.conflict_ratio {
            None => 0.3,
            Some(value) => probability(source, Some(value), "conflict_ratio")?,
        },
    })
}

/// A write rate the simulator honours (see [`MAX_LANES_PER_SEC_PER_NODE`]).
fn ops_per_sec(source: &Source<'_>, value: &Spanned<f64>, ops_per_lane: u32) -> Result<f64, ScenarioError> {
    let rate = *value.get_ref();
    if !rate.is_finite() || rate < 0.0 {
        return Err(source.at(value, format!("ops_per_sec must be a number of at least 0, not {rate}"), None));
    }
    if rate == 0.0 {
        return Err(source.at(
            value,
            "ops_per_sec is 0: no node writes, so nothing would be tested",
            Some("give the workload a rate, such as ops_per_sec = 20".into()),
        ));
    }
    let lanes_per_sec = rate / f64::from(ops_per_lane);
    if lanes_per_sec > MAX_LANES_PER_SEC_PER_NODE {
        let share = 100.0 * crate::workload::written_share(lanes_per_sec);
        return Err(source.at(
            value,
            format!(
                "ops_per_sec = {rate} in lanes of {ops_per_lane} ops is {lanes_per_sec} lanes per second per node, \
                 above the limit of {MAX_LANES_PER_SEC_PER_NODE}: a node would write only {share:.0}% of it"
            ),
            Some(format!(
                "raise ops_per_lane or lower ops_per_sec: a node writes one lane per wake-up and wakes at most once \
                 a millisecond; {LIMITS_HELP}"
            )),
        ));
    }
    Ok(rate)
}

// ---- faults ----------------------------------------------------------------

fn validate_fault(
    source: &Source<'_>,
    spanned: &Spanned<RawFault>,
    scenario: &Scenario,
) -> Result<Fault, ScenarioError> {
    let raw = spanned.get_ref();
    let at = parse_duration(source, &raw.at, "at")?;
    if at >= scenario.duration {
        return Err(source.at(
            &raw.at,
            format!("the fault starts at {} but the faulty phase ends at {}", human(at), human(scenario.duration)),
            Some("faults start inside `duration`; heal them before it ends or let them last (no heal key)".into()),
        ));
    }
    let kind = raw.kind.get_ref().as_str();
    if !FAULT_KINDS.contains(&kind) {
        return Err(source.at(
            &raw.kind,
            format!("unknown fault kind `{kind}`"),
            Some(format!("kind is one of {}", FAULT_KINDS.join(", "))),
        ));
    }
    if scenario.topology == Topology::AirGapped && !AIR_GAPPED_FAULT_KINDS.contains(&kind) {
        return Err(source.at(
            &raw.kind,
            format!(
                "a {kind} fault does not apply to the air-gapped topology: it acts on datagrams, and none are sent"
            ),
            Some(format!("air-gapped scenarios take {} faults", AIR_GAPPED_FAULT_KINDS.join(", "))),
        ));
    }
    check_keys_fit(source, raw, kind)?;
    if let Some(rot) = raw.rot.as_ref().filter(|rot| *rot.get_ref())
        && !matches!(scenario.topology, Topology::Mesh | Topology::PeerToPeer)
    {
        return Err(source.at(
            rot,
            format!(
                "`rot` needs a mesh or p2p topology: a rotten node rejoins after every other node synced with it, which the {} topology does not guarantee",
                scenario.topology.name()
            ),
            Some("use mesh or p2p, or drop `rot`".into()),
        ));
    }
    let lasts = raw.window().map(|(key, value)| window_length(source, value, key)).transpose()?;
    Ok(Fault { at, lasts, kind: fault_kind(source, raw, scenario.nodes)? })
}

/// The keys each fault kind takes, besides `at` and `kind`.
fn fault_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "partition" => &["groups", "from", "to", "heal_after"],
        "crash" => &["nodes", "restart_after", "tear", "rot"],
        "replace" => &["nodes", "restart_after"],
        "hostile" => &["nodes", "behaviours", "heal_after"],
        "pause" => &["nodes", "resume_after"],
        "clock-skew" => &["nodes", "skew", "heal_after"],
        "latency" => &["latency", "heal_after"],
        "loss" => &["probability", "heal_after"],
        _ => &[],
    }
}

/// Refuses keys that belong to another fault kind (a `restart_after` on a
/// partition is a mistake, not something to ignore), pointing at the key.
fn check_keys_fit(source: &Source<'_>, raw: &RawFault, kind: &str) -> Result<(), ScenarioError> {
    let allowed = fault_keys(kind);
    for (key, span) in raw.present_keys() {
        if let Some(span) = span.filter(|_| !allowed.contains(&key)) {
            let help = format!("a {kind} fault takes {}", allowed.join(", "));
            return Err(does_not_apply(source, span, key, &format!("a {kind} fault"), help));
        }
    }
    Ok(())
}

fn fault_kind(source: &Source<'_>, raw: &RawFault, nodes: u32) -> Result<FaultKind, ScenarioError> {
    let kind = raw.kind.get_ref().as_str();
    let need_nodes = || -> Result<Vec<u32>, ScenarioError> {
        match &raw.nodes {
            Some(list) => check_nodes(source, list, nodes, "nodes"),
            None => Err(source.at(&raw.kind, format!("a {kind} fault needs `nodes = [...]`"), None)),
        }
    };
    Ok(match kind {
        "partition" => partition_kind(source, raw, nodes)?,
        "crash" => {
            let rot = raw.rot.as_ref().is_some_and(|rot| *rot.get_ref());
            if let Some(flag) = raw.rot.as_ref().filter(|_| rot && raw.restart_after.is_none()) {
                return Err(source.at(
                    flag,
                    "`rot` flips a bit of the disk the node restarts from, and this crash never restarts".to_owned(),
                    Some("add `restart_after`, or drop `rot`".to_owned()),
                ));
            }
            FaultKind::Crash { nodes: need_nodes()?, tear: raw.tear.as_ref().is_some_and(|tear| *tear.get_ref()), rot }
        }
        "replace" => {
            if raw.restart_after.is_none() {
                return Err(source.at(
                    &raw.kind,
                    "a replace fault needs `restart_after`: the replacement starts then",
                    Some("for a node that never comes back, use kind = \"crash\" without restart_after".into()),
                ));
            }
            FaultKind::Replace { nodes: need_nodes()? }
        }
        "hostile" => FaultKind::Hostile { nodes: need_nodes()?, behaviours: hostilities(source, raw)? },
        "pause" => FaultKind::Pause { nodes: need_nodes()? },
        "clock-skew" => {
            let skew = raw
                .skew
                .as_ref()
                .ok_or_else(|| source.at(&raw.kind, "a clock-skew fault needs `skew = \"+50ms\"`", None))?;
            FaultKind::ClockSkew { nodes: need_nodes()?, offset_ms: parse_skew(source, skew)? }
        }
        "latency" => {
            let value = raw.latency.as_ref().ok_or_else(|| {
                source.at(&raw.kind, "a latency fault needs `latency = { min = \"..\", max = \"..\" }`", None)
            })?;
            FaultKind::Latency { latency: parse_latency(source, value, "latency")? }
        }
        _ => {
            let value = raw
                .probability
                .as_ref()
                .ok_or_else(|| source.at(&raw.kind, "a loss fault needs `probability = 0.3`", None))?;
            FaultKind::Loss { probability: probability(source, Some(value), "probability")? }
        }
    })
}

/// The behaviours of a hostile fault: those listed, or all of them.
fn hostilities(source: &Source<'_>, raw: &RawFault) -> Result<Vec<Hostility>, ScenarioError> {
    let Some(listed) = &raw.behaviours else { return Ok(Hostility::ALL.to_vec()) };
    let names: Vec<&str> = Hostility::ALL.iter().map(|behaviour| behaviour.name()).collect();
    if listed.get_ref().is_empty() {
        return Err(source.at(
            listed,
            "a hostile fault needs at least one behaviour",
            Some(format!("behaviours are {}", names.join(", "))),
        ));
    }
    let mut behaviours = Vec::new();
    for name in listed.get_ref() {
        let behaviour = Hostility::ALL.into_iter().find(|behaviour| behaviour.name() == name).ok_or_else(|| {
            source.at(
                listed,
                format!("unknown hostile behaviour `{name}`"),
                Some(format!("behaviours are {}", names.join(", "))),
            )
        })?;
        behaviours.push(behaviour);
    }
    behaviours.sort_unstable();
    behaviours.dedup();
    Ok(behaviours)
}

fn partition_kind(source: &Source<'_>, raw: &RawFault, nodes: u32) -> Result<FaultKind, ScenarioError> {
    match (&raw.groups, &raw.from, &raw.to) {
        (Some(groups), None, None) => {
            if groups.get_ref().len() < 2 || groups.get_ref().iter().any(Vec::is_empty) {
                return Err(source.at(
                    groups,
                    "a partition needs at least two non-empty groups",
                    Some("e.g. groups = [[0, 1], [2, 3, 4]]".into()),
                ));
            }
            let mut checked = Vec::new();
            for group in groups.get_ref() {
                if let Some(bad) = group.iter().find(|node| **node >= nodes) {
                    return Err(source.at(
                        groups,
                        format!("node index {bad} out of range (cluster has {nodes} nodes)"),
                        None,
                    ));
                }
                let mut group = group.clone();
                group.sort_unstable();
                group.dedup();
                checked.push(group);
            }
            check_bridges(source, groups, &checked)?;
            Ok(FaultKind::Partition { groups: checked })
        }
        (None, Some(from), Some(to)) => {
            let from_nodes = check_nodes(source, from, nodes, "from")?;
            let to_nodes = check_nodes(source, to, nodes, "to")?;
            if from_nodes.iter().any(|node| to_nodes.contains(node)) {
                return Err(source.at(to, "a one-way partition's `from` and `to` overlap", None));
            }
            Ok(FaultKind::OneWay { from: from_nodes, to: to_nodes })
        }
        (None, None, None) => Err(source.at(
            &raw.kind,
            "a partition needs `groups = [[..], [..]]` or one-way `from = [..]` and `to = [..]`",
            None,
        )),
        _ => Err(source.at(&raw.kind, "a partition takes either `groups` or both `from` and `to`, not a mix", None)),
    }
}

/// Groups may share nodes only as bridges: two groups share at most one node.
fn check_bridges(source: &Source<'_>, span: &Spanned<Vec<Vec<u32>>>, groups: &[Vec<u32>]) -> Result<(), ScenarioError> {
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            let shared = a.iter().filter(|node| b.contains(node)).count();
            if shared > 1 {
                return Err(source.at(
                    span,
                    format!("partition groups {a:?} and {b:?} share {shared} nodes"),
                    Some("groups are disjoint, except a bridge: one node in two groups".into()),
                ));
            }
        }
    }
    Ok(())
}

/// A signed skew in whole milliseconds, at most [`MAX_CLOCK_SKEW`] either way.
fn parse_skew(source: &Source<'_>, value: &Spanned<String>) -> Result<i64, ScenarioError> {
    let text = value.get_ref().trim();
    let (sign, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let parsed = humantime::parse_duration(magnitude).map_err(|error| {
        source.at(
            value,
            format!("`{text}` is not a clock skew: {error}"),
            Some("write a signed duration such as \"+50ms\" or \"-2s\"".into()),
        )
    })?;
    if parsed > MAX_CLOCK_SKEW {
        return Err(source.at(
            value,
            format!("a clock skew of `{text}` is above the limit of {}", human(MAX_CLOCK_SKEW)),
            Some(format!("a skew shifts a node's sync ticks by at most one interval; {LIMITS_HELP}")),
        ));
    }
    if parsed < Duration::from_millis(1) {
        return Err(source.at(
            value,
            format!("a clock skew of `{text}` shifts nothing: skews are whole milliseconds"),
            Some("write a skew of at least 1ms, such as \"+50ms\"".into()),
        ));
    }
    // At most an hour of milliseconds: the cast cannot truncate.
    Ok(sign * parsed.as_millis() as i64)
}

/// Crash and pause windows of one node may not overlap each other: a node
/// is down or frozen for one reason at a time, and the first heal would end both.
fn check_overlaps(source: &Source<'_>, raw: &[Spanned<RawFault>], faults: &[Fault]) -> Result<(), ScenarioError> {
    for (i, a) in faults.iter().enumerate() {
        let Some(na) = a.kind.downed() else { continue };
        for (j, b) in faults.iter().enumerate().skip(i + 1) {
            let Some(nb) = b.kind.downed() else { continue };
            let overlap = a.at < b.end().unwrap_or(Duration::MAX) && b.at < a.end().unwrap_or(Duration::MAX);
            if let Some(node) = na.iter().find(|node| nb.contains(node)).filter(|_| overlap) {
                return Err(source.at(
                    &raw[j].get_ref().at,
                    format!("node {node} is already crashed or paused by fault {} during this window", i + 1),
                    Some("a node can be down for one reason at a time; move or shorten one of the windows".into()),
                ));
            }
        }
    }
    Ok(())
}

/// A replaced node, or one whose disk rots, authors nothing until every
/// other node has synced with it; a node that another fault keeps crashed,
/// replaced or paused for good never does, so the rejoin could never end
/// and the run would fail for the scenario's sake, not the engine's.
fn check_rejoins_can_finish(
    source: &Source<'_>,
    raw: &[Spanned<RawFault>],
    faults: &[Fault],
    topology: &Topology,
) -> Result<(), ScenarioError> {
    let rejoiners = |fault: &Fault| match &fault.kind {
        FaultKind::Replace { nodes } | FaultKind::Crash { nodes, rot: true, .. } => Some(nodes.clone()),
        _ => None,
    };
    for (i, rejoining) in faults.iter().enumerate() {
        let Some(rejoin) = rejoiners(rejoining) else { continue };
        // (`rot` has its own check at its key.)
        if matches!(rejoining.kind, FaultKind::Replace { .. })
            && !matches!(topology, Topology::Mesh | Topology::PeerToPeer)
        {
            return Err(source.at(
                &raw[i].get_ref().kind,
                format!(
                    "`replace` needs a mesh or p2p topology: a replaced node rejoins after every other node synced with it, which the {} topology does not guarantee",
                    topology.name()
                ),
                Some("use mesh or p2p, or drop the replace fault".into()),
            ));
        }
        for (j, other) in faults.iter().enumerate() {
            let Some(down) = other.kind.downed().filter(|_| other.end().is_none()) else { continue };
            if let Some(node) = down.iter().find(|node| rejoin.iter().any(|r| r != *node)) {
                return Err(source.at(
                    &raw[i].get_ref().kind,
                    format!(
                        "the {} nodes of this fault rejoin only after every other node synced with them, but fault {} keeps node {node} down for good",
                        rejoining.kind.name(),
                        j + 1
                    ),
                    Some(format!("give fault {} a restart_after or resume_after, or drop this fault", j + 1)),
                ));
            }
        }
    }
    Ok(())
}

/// The run ends `settle` after the last heal; that end must be inside [`MAX_RUN_TIME`].
fn check_run_time(source: &Source<'_>, raw: &RawScenario, scenario: &Scenario) -> Result<(), ScenarioError> {
    let last = scenario
        .faults
        .iter()
        .enumerate()
        .filter_map(|(index, fault)| Some((index, fault.end()?)))
        .max_by_key(|(_, end)| *end);
    let Some((index, heal)) = last else { return Ok(()) };
    let run_time = heal.checked_add(scenario.settle);
    if run_time.is_some_and(|run| run <= MAX_RUN_TIME) {
        return Ok(());
    }
    let (key, value) = raw.faults[index].get_ref().window().expect("a fault that heals has a window key");
    Err(source.at(
        value,
        format!(
            "the fault heals at {}, so the run would last {} (the last heal plus settle), above the limit of {}",
            human(heal),
            run_time.map_or_else(|| "beyond any clock".to_owned(), human),
            human(MAX_RUN_TIME)
        ),
        Some(format!("shorten {key} or settle, or drop {key} to let the fault last to the end; {LIMITS_HELP}")),
    ))
}

// ---- bundles and swarm -----------------------------------------------------

fn validate_bundle(
    source: &Source<'_>,
    spanned: &Spanned<RawBundle>,
    scenario: &Scenario,
) -> Result<Bundle, ScenarioError> {
    let raw = spanned.get_ref();
    if scenario.topology != Topology::AirGapped {
        return Err(source.at(
            spanned,
            "bundles are for the air-gapped topology",
            Some("set topology = \"air-gapped\" or remove [[bundles]]".into()),
        ));
    }
    let at = parse_duration(source, &raw.at, "at")?;
    let run_end = scenario.size().run_time;
    if at >= run_end {
        return Err(source.at(
            &raw.at,
            format!("the bundle is carried at {}, after the run ends at {}", human(at), human(run_end)),
            Some("carry it before the end of the run (the last heal plus settle)".into()),
        ));
    }
    for end in [&raw.from, &raw.to] {
        if *end.get_ref() >= scenario.nodes {
            return Err(source.at(
                end,
                format!("node index {} out of range (cluster has {} nodes)", end.get_ref(), scenario.nodes),
                None,
            ));
        }
    }
    if raw.from.get_ref() == raw.to.get_ref() {
        return Err(source.at(&raw.to, "a bundle goes from one node to another", None));
    }
    Ok(Bundle { at, from: *raw.from.get_ref(), to: *raw.to.get_ref() })
}

fn validate_swarm(source: &Source<'_>, raw: &RawSwarm, scenario: &mut Scenario) -> Result<(), ScenarioError> {
    scenario.swarm = raw.enabled.as_ref().is_some_and(|enabled| *enabled.get_ref());
    if !scenario.swarm {
        let keys = [
            ("kinds", raw.kinds.as_ref().map(Spanned::span)),
            ("max_faults", raw.max_faults.as_ref().map(Spanned::span)),
        ];
        if let Some((key, Some(span))) = keys.into_iter().find(|(_, span)| span.is_some()) {
            let help = "set enabled = true in [swarm], or remove the key".to_owned();
            return Err(does_not_apply(source, span, key, "a swarm that is not enabled", help));
        }
    }
    let applicable: &[&str] =
        if scenario.topology == Topology::AirGapped { &AIR_GAPPED_SWARM_KINDS } else { &SWARM_FAULT_KINDS };
    scenario.swarm_kinds = match &raw.kinds {
        None => applicable.iter().map(|kind| (*kind).to_owned()).collect(),
        Some(kinds) => {
            if kinds.get_ref().is_empty() {
                return Err(source.at(
                    kinds,
                    "swarm.kinds names no fault kind",
                    Some(format!("kinds are {}", applicable.join(", "))),
                ));
            }
            if let Some(bad) = kinds.get_ref().iter().find(|kind| !applicable.contains(&kind.as_str())) {
                let message = if FAULT_KINDS.contains(&bad.as_str()) {
                    format!("swarm.kinds names `{bad}`, which does not apply to the air-gapped topology")
                } else {
                    format!("unknown fault kind `{bad}` in swarm.kinds")
                };
                return Err(source.at(kinds, message, Some(format!("kinds are {}", applicable.join(", ")))));
            }
            kinds.get_ref().clone()
        }
    };
    if let Some(max) = &raw.max_faults {
        if *max.get_ref() == 0 || *max.get_ref() > 64 {
            return Err(source.at(max, "swarm.max_faults must be between 1 and 64", None));
        }
        scenario.swarm_max_faults = *max.get_ref();
    }
    Ok(())
}

fn validate_coverage(source: &Source<'_>, raw: &RawCoverage) -> Result<Vec<String>, ScenarioError> {
    let known: Vec<&str> = crate::checkers::coverage::EFFECTS.iter().map(|effect| effect.name).collect();
    let mut expect = raw.expect.get_ref().clone();
    if let Some(bad) = expect.iter().find(|name| !known.contains(&name.as_str())) {
        return Err(source.at(
            &raw.expect,
            format!("unknown effect `{bad}` in coverage.expect"),
            Some(format!("effects are {}", known.join(", "))),
        ));
    }
    expect.sort();
    expect.dedup();
    Ok(expect)
}

// ---- whole-run checks ------------------------------------------------------

/// Refuses a scenario that cannot test anything whatever the seed: no node
/// can write (each one crashed or paused for the whole faulty phase), or no
/// node is up at the end (every node crashed with no restart).
fn check_something_is_tested(source: &Source<'_>, raw: &RawScenario, scenario: &Scenario) -> Result<(), ScenarioError> {
    // Which fault's window closes the last gap: the error points there.
    let mut blocker = None;
    let writes = (0..scenario.nodes).any(|node| {
        let mut windows: Vec<(Duration, Duration, usize)> = scenario
            .faults
            .iter()
            .enumerate()
            .filter(|(_, fault)| fault.kind.downed().is_some_and(|nodes| nodes.contains(&node)))
            .map(|(index, fault)| (fault.at, fault.end().unwrap_or(Duration::MAX), index))
            .collect();
        windows.sort_unstable();
        let mut covered_until = Duration::ZERO;
        for (start, end, index) in windows {
            if start > covered_until {
                return true;
            }
            covered_until = covered_until.max(end);
            blocker = Some(blocker.map_or(index, |other: usize| other.max(index)));
        }
        covered_until < scenario.duration
    });
    if !writes {
        let index = blocker.expect("every node is blocked by some fault");
        return Err(source.at(
            &raw.faults[index].get_ref().at,
            format!(
                "no node can write: each one is crashed or paused for the whole faulty phase (0s to {})",
                human(scenario.duration)
            ),
            Some("nodes write only during `duration`; leave at least one node up for part of it".into()),
        ));
    }
    let down_at_end: std::collections::BTreeSet<u32> = scenario
        .faults
        .iter()
        .filter(|fault| fault.lasts.is_none())
        .filter_map(|fault| match &fault.kind {
            FaultKind::Crash { nodes, .. } => Some(nodes.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect();
    if down_at_end.len() == scenario.nodes as usize {
        let index = scenario
            .faults
            .iter()
            .rposition(|fault| fault.lasts.is_none() && matches!(fault.kind, FaultKind::Crash { .. }))
            .expect("some crash never restarts");
        return Err(source.at(
            &raw.faults[index].get_ref().kind,
            "every node is crashed at the end of the run (no restart_after): nothing is left to converge or to check",
            Some("add restart_after to a crash, so at least one node is up at the end".into()),
        ));
    }
    Ok(())
}

/// The run's size against the limits.
fn check_size(source: &Source<'_>, raw: &RawScenario, scenario: &Scenario) -> Result<(), ScenarioError> {
    let size = scenario.size();
    let cluster = &raw.cluster;
    let problems: [(bool, At<'_>, String, &str); 4] = [
        (
            size.sync_ticks > MAX_SYNC_TICKS,
            match &cluster.sync_interval {
                Some(value) => At::Span(value.span()),
                None => At::Span(cluster.nodes.span()),
            },
            format!(
                "the run has {} sync ticks (nodes × run time / sync_interval), above the limit of {MAX_SYNC_TICKS}",
                size.sync_ticks
            ),
            "raise sync_interval, or lower nodes, duration or settle",
        ),
        (
            size.lanes_held > MAX_HELD_LANES as f64,
            At::Span(cluster.nodes.span()),
            format!(
                "the cluster would hold {:.0} lanes (nodes × {:.0} lanes written), above the limit of {MAX_HELD_LANES}",
                size.lanes_held, size.lanes_written
            ),
            "lower nodes, ops_per_sec or duration, or raise ops_per_lane",
        ),
        (
            size.sync_work > MAX_SYNC_WORK as f64,
            At::Span(cluster.nodes.span()),
            format!(
                "the run's sync work is {:.2e} (sync ticks × lanes written: {} × {:.0}), above the limit of {:.0e}",
                size.sync_work, size.sync_ticks, size.lanes_written, MAX_SYNC_WORK as f64
            ),
            "lower nodes, ops_per_sec or duration, or raise sync_interval",
        ),
        (
            size.sampled_states > MAX_SAMPLED_STATES,
            match &cluster.sample_interval {
                Some(value) => At::Span(value.span()),
                None => At::Span(cluster.nodes.span()),
            },
            format!(
                "the run samples {} node states (nodes × run time / sample_interval), above the limit of {MAX_SAMPLED_STATES}",
                size.sampled_states
            ),
            "raise sample_interval, or lower nodes, duration or settle",
        ),
    ];
    for (exceeded, at, message, help) in problems {
        if exceeded {
            return Err(source.error(at, message, Some(format!("{help}; {LIMITS_HELP}"))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "name = \"t\"\nduration = \"10s\"\nsettle = \"5s\"\n[cluster]\nnodes = 3\ntopology = \"mesh\"\n";

    #[test]
    fn a_minimal_scenario_takes_defaults_and_round_trips() {
        let scenario = Scenario::from_toml(MINIMAL, "t.toml").unwrap();
        assert_eq!(scenario.sync_interval, Duration::from_millis(100));
        assert_eq!(scenario.seeds, 0..10);
        let again = Scenario::from_toml(&scenario.to_toml_string(), "again.toml").unwrap();
        assert_eq!(again, scenario);
        assert_eq!(again.content_hash(), scenario.content_hash());
    }

    #[test]
    fn the_writer_quotes_what_a_researcher_types_and_keeps_a_readable_order() {
        let awkward = "a \"quoted\" word, a back\\slash,\nanother line, ''' and ünïcode";
        let line = format!("name = \"t\"\ndescription = {}\n", toml::Value::from(awkward));
        let text = MINIMAL.replacen("name = \"t\"\n", &line, 1);
        let scenario = Scenario::from_toml(&text, "t.toml").unwrap();
        assert_eq!(scenario.description, awkward);
        let written = scenario.to_toml_string();
        let again = Scenario::from_toml(&written, "again.toml").unwrap_or_else(|error| panic!("{error}\n{written}"));
        assert_eq!(again, scenario, "{written}");
        let document: Table = written.parse().unwrap();
        let keys: Vec<&str> = document.keys().map(String::as_str).take(5).collect();
        assert_eq!(keys, ["name", "description", "duration", "settle", "seeds"], "{written}");
        assert!(written.contains("\n[cluster]\nnodes = 3\n"), "{written}");
        let mut other = scenario.clone();
        other.description.push('!');
        assert_ne!(other.content_hash(), scenario.content_hash(), "the hash covers every key");
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let text = format!("{MINIMAL}[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnodes = [7]\n");
        let error = Scenario::from_toml(&text, "bad.toml").unwrap_err();
        assert_eq!(error.to_string(), "bad.toml:10:9: node index 7 out of range (cluster has 3 nodes)");
    }

    /// A file with `line` added to `table` (by its path in [`KEYS`]) of a
    /// scenario that has every table.
    fn with_line(table: &str, line: &str) -> String {
        let mut text = String::from("name = \"t\"\nduration = \"10s\"\nsettle = \"5s\"\n");
        let mut section = |header: &str, body: &str, this: &str| {
            text.push_str(header);
            text.push_str(body);
            if table == this {
                text.push_str(line);
                text.push('\n');
            }
        };
        section("", "", "");
        section("[cluster]\n", "nodes = 3\ntopology = \"mesh\"\n", "cluster");
        let latency = if table == "network.latency" { format!(", {line}") } else { String::new() };
        section(&format!("[network]\nlatency = {{ min = \"1ms\", max = \"2ms\"{latency} }}\n"), "", "network");
        section("[workload]\n", "", "workload");
        let latency = if table == "faults.latency" { format!(", {line}") } else { String::new() };
        let fault = format!("at = \"1s\"\nkind = \"latency\"\nlatency = {{ min = \"1ms\", max = \"2ms\"{latency} }}\n");
        section("[[faults]]\n", &fault, "faults");
        section("[[bundles]]\n", "at = \"1s\"\nfrom = 0\nto = 1\n", "bundles");
        section("[swarm]\n", "", "swarm");
        section("[coverage]\n", "expect = []\n", "coverage");
        text
    }

    /// The keys serde names when it refuses an unknown one in `table`.
    fn serde_keys(table: &str) -> Vec<String> {
        let text = with_line(table, "zz_unknown = 1");
        let Err(error) = toml::from_str::<RawScenario>(&text) else {
            panic!("`zz_unknown` was accepted in [{table}]:\n{text}");
        };
        let message = error.message();
        assert!(message.contains("unknown field `zz_unknown`"), "[{table}]: {message}");
        let expected = message.split("expected").nth(1).unwrap_or_default();
        let mut keys: Vec<String> = expected.split('`').skip(1).step_by(2).map(str::to_owned).collect();
        keys.sort();
        keys
    }

    #[test]
    fn keys_lists_every_field_serde_accepts_and_no_other() {
        let mut tables: Vec<&str> = KEYS.iter().map(|(table, _)| *table).collect();
        tables.dedup();
        assert_eq!(
            tables,
            [
                "",
                "cluster",
                "network",
                "network.latency",
                "workload",
                "faults",
                "faults.latency",
                "bundles",
                "swarm",
                "coverage"
            ]
        );
        for table in tables {
            let mut listed: Vec<String> =
                KEYS.iter().filter(|(t, _)| *t == table).map(|(_, key)| (*key).to_owned()).collect();
            listed.sort();
            assert_eq!(listed, serde_keys(table), "KEYS and the serde structs disagree on [{table}]");
        }
    }

    #[test]
    fn keys_has_no_duplicates() {
        let mut keys = KEYS.to_vec();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), KEYS.len());
    }

    #[test]
    fn normalise_path_names_one_file_one_way() {
        let cases = [
            ("./x.toml", "x.toml"),
            ("x.toml", "x.toml"),
            ("././x.toml", "x.toml"),
            ("a/./b.toml", "a/b.toml"),
            ("a/../b.toml", "b.toml"),
            ("a/b/../../c.toml", "c.toml"),
            ("../x.toml", "../x.toml"),
            ("./../x.toml", "../x.toml"),
            ("../../a/../x.toml", "../../x.toml"),
            ("a/..", "."),
            (".", "."),
            ("/x/../y.toml", "/y.toml"),
            ("/../y.toml", "/y.toml"),
            ("a//b.toml", "a/b.toml"),
            ("scenarios/", "scenarios"),
        ];
        for (path, expected) in cases {
            assert_eq!(normalise_path(Path::new(path)), expected, "{path}");
        }
    }

    #[test]
    #[cfg(unix)]
    fn normalise_path_keeps_dot_dot_after_a_symbolic_link() {
        let dir = std::env::temp_dir().join(format!("scx-normalise-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real/inner")).unwrap();
        std::os::unix::fs::symlink(dir.join("real/inner"), dir.join("link")).unwrap();
        let through_link = dir.join("link/../x.toml");
        let expected = format!("{}/link/../x.toml", dir.display());
        assert_eq!(normalise_path(&through_link), expected, "`link/..` is `real`, not `dir`");
        let plain = dir.join("real/../x.toml");
        assert_eq!(normalise_path(&plain), format!("{}/x.toml", dir.display()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_size_of_a_run_counts_ticks_lanes_and_samples() {
        let scenario = Scenario::from_toml(MINIMAL, "t.toml").unwrap();
        let size = scenario.size();
        assert_eq!(size.run_time, Duration::from_secs(15));
        assert_eq!(size.sync_ticks, 3 * 150);
        assert_eq!(size.sampled_states, 3 * 150);
        // 20 ops/s in lanes of 4 ops: 5 lanes/s per node for 10 s.
        assert!((size.lanes_written - 150.0).abs() < 1e-9);
        assert!((size.lanes_held - 450.0).abs() < 1e-9);
        assert!((size.sync_work - 450.0 * 150.0).abs() < 1e-6, "sync ticks × lanes written");
    }

    #[test]
    fn a_heal_inside_settle_extends_the_run_by_settle() {
        let text = format!("{MINIMAL}[[faults]]\nat = \"8s\"\nkind = \"crash\"\nnodes = [1]\nrestart_after = \"4s\"\n");
        let scenario = Scenario::from_toml(&text, "t.toml").unwrap();
        assert_eq!(scenario.quiescent_at(), Duration::from_secs(12));
        assert_eq!(scenario.size().run_time, Duration::from_secs(17));
    }
}
