//! Scenario files: what researchers write. A scenario is TOML with a fixed
//! shape (the keys below are a contract other tools rely on), parsed with
//! `deny_unknown_fields` and validated value by value, so every error names
//! the file, line and column (or the key path) of the value at fault.
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
//! Invariant: a `Scenario` that parsed is valid: node indexes are in range,
//! probabilities in [0, 1], windows inside the run and not contradictory.
//! `to_toml_string` writes a file that parses back to the same `Scenario`.

#![allow(
    clippy::result_large_err,
    reason = "a scenario error carries its source text for the caret; it is built once per bad file, never on a hot path"
)]

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub use crate::spec::{FaultKind, Latency, Topology};

/// Topology names, as written in scenario files.
pub const TOPOLOGIES: [&str; 5] = ["mesh", "p2p", "client-server", "edge", "air-gapped"];
/// Fault kinds, as written in scenario files.
pub const FAULT_KINDS: [&str; 6] = ["partition", "crash", "pause", "clock-skew", "latency", "loss"];
/// Latency distributions.
pub const DISTRIBUTIONS: [&str; 3] = ["uniform", "normal", "long-tail"];
/// Most nodes a scenario may ask for.
pub const MAX_NODES: u32 = 100_000;

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

/// Where an error points: a byte range, or a key path.
enum At<'a> {
    Span(Range<usize>),
    Key(&'a str),
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
    tear: Option<bool>,
    skew: Option<Spanned<String>>,
    latency: Option<Spanned<RawLatency>>,
    probability: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle {
    at: Spanned<String>,
    from: Spanned<u32>,
    to: Spanned<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSwarm {
    #[serde(default)]
    enabled: bool,
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
}

impl Scenario {
    /// Reads and validates the scenario file at `path`; errors name it as
    /// [`normalise_path`] does.
    pub fn from_path(path: &Path) -> Result<Self, ScenarioError> {
        let name = normalise_path(path);
        let text = std::fs::read_to_string(path).map_err(|error| {
            Source { name: &name, text: "" }.error(
                At::Key("(file)"),
                format!("cannot read the scenario: {error}"),
                None,
            )
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
        blake3::hash(self.to_toml_string().as_bytes()).to_hex()[..16].to_owned()
    }

    /// The scenario as a TOML file that parses back to `self`.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "name = {}", quote(&self.name));
        if !self.description.is_empty() {
            let _ = writeln!(out, "description = {}", quote(&self.description));
        }
        let _ = writeln!(out, "duration = {}", duration(self.duration));
        let _ = writeln!(out, "settle = {}", duration(self.settle));
        let _ = writeln!(out, "seeds = \"{}..{}\"", self.seeds.start, self.seeds.end);
        out.push_str("\n[cluster]\n");
        let _ = writeln!(out, "nodes = {}", self.nodes);
        let topology = match &self.topology {
            Topology::Mesh => "mesh",
            Topology::PeerToPeer => "p2p",
            Topology::ClientServer { server } => {
                let _ = writeln!(out, "server = {server}");
                "client-server"
            }
            Topology::Edge { hubs } => {
                let _ = writeln!(out, "hubs = {hubs:?}");
                "edge"
            }
            Topology::AirGapped => "air-gapped",
        };
        let _ = writeln!(out, "topology = \"{topology}\"");
        let _ = writeln!(out, "sync_interval = {}", duration(self.sync_interval));
        let _ = writeln!(out, "session_timeout = {}", duration(self.session_timeout));
        let _ = writeln!(out, "snapshot_interval = {}", self.snapshot_interval);
        let _ = writeln!(out, "prune = {}", self.prune);
        let _ = writeln!(out, "sample_interval = {}", duration(self.sample_interval));
        out.push_str("\n[network]\n");
        let _ = writeln!(out, "latency = {}", latency(&self.latency));
        let _ = writeln!(out, "loss = {:?}", self.loss);
        let _ = writeln!(out, "duplicate = {:?}", self.duplicate);
        let _ = writeln!(out, "reorder = {:?}", self.reorder);
        let _ = writeln!(out, "corrupt = {:?}", self.corrupt);
        out.push_str("\n[workload]\n");
        let _ = writeln!(out, "ops_per_sec = {:?}", self.ops_per_sec);
        let _ = writeln!(out, "ops_per_lane = {}", self.ops_per_lane);
        let _ = writeln!(out, "keys = {}", self.keys);
        let _ = writeln!(out, "conflict_ratio = {:?}", self.conflict_ratio);
        for fault in &self.faults {
            write_fault(&mut out, fault);
        }
        for bundle in &self.bundles {
            let _ = writeln!(
                out,
                "\n[[bundles]]\nat = {}\nfrom = {}\nto = {}",
                duration(bundle.at),
                bundle.from,
                bundle.to
            );
        }
        if self.swarm {
            out.push_str("\n[swarm]\nenabled = true\n");
            let _ = writeln!(out, "kinds = {:?}", self.swarm_kinds);
            let _ = writeln!(out, "max_faults = {}", self.swarm_max_faults);
        }
        out
    }
}

fn write_fault(out: &mut String, fault: &Fault) {
    let _ = write!(out, "\n[[faults]]\nat = {}\n", duration(fault.at));
    let window_key = match &fault.kind {
        FaultKind::Partition { groups } => {
            let _ = write!(out, "kind = \"partition\"\ngroups = {groups:?}\n");
            "heal_after"
        }
        FaultKind::OneWay { from, to } => {
            let _ = write!(out, "kind = \"partition\"\nfrom = {from:?}\nto = {to:?}\n");
            "heal_after"
        }
        FaultKind::Crash { nodes, tear } => {
            let _ = write!(out, "kind = \"crash\"\nnodes = {nodes:?}\ntear = {tear}\n");
            "restart_after"
        }
        FaultKind::Pause { nodes } => {
            let _ = write!(out, "kind = \"pause\"\nnodes = {nodes:?}\n");
            "resume_after"
        }
        FaultKind::ClockSkew { nodes, offset_ms } => {
            let _ = write!(out, "kind = \"clock-skew\"\nnodes = {nodes:?}\nskew = \"{offset_ms:+}ms\"\n");
            "heal_after"
        }
        FaultKind::Latency { latency: spike } => {
            let _ = write!(out, "kind = \"latency\"\nlatency = {}\n", latency(spike));
            "heal_after"
        }
        FaultKind::Loss { probability } => {
            let _ = write!(out, "kind = \"loss\"\nprobability = {probability:?}\n");
            "heal_after"
        }
    };
    if let Some(lasts) = fault.lasts {
        let _ = writeln!(out, "{window_key} = {}", duration(lasts));
    }
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn duration(value: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(value)).replace(' ', "")
}

fn latency(value: &Latency) -> String {
    let distribution = match value {
        Latency::Uniform { .. } => "uniform",
        Latency::Normal { .. } => "normal",
        Latency::LongTail { .. } => "long-tail",
    };
    let (min, max) = value.bounds();
    format!("{{ min = {}, max = {}, distribution = \"{distribution}\" }}", duration(min), duration(max))
}

fn unknown_key_help(message: &str) -> Option<String> {
    message.contains("unknown field").then(|| {
        let expected = message.split("expected").nth(1).unwrap_or("").trim();
        format!("check the spelling; the keys allowed here are {expected}")
    })
}

// ---- validation ------------------------------------------------------------

fn parse_duration(source: &Source<'_>, value: &Spanned<String>, what: &str) -> Result<Duration, ScenarioError> {
    humantime::parse_duration(value.get_ref().trim()).map_err(|error| {
        source.at(
            value,
            format!("`{}` is not a duration for {what}: {error}", value.get_ref()),
            Some("write a duration such as \"150ms\", \"20s\" or \"2m\"".into()),
        )
    })
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

fn validate(source: &Source<'_>, raw: RawScenario) -> Result<Scenario, ScenarioError> {
    if raw.name.get_ref().trim().is_empty() {
        return Err(source.at(&raw.name, "the scenario needs a name", None));
    }
    let duration = parse_duration(source, &raw.duration, "duration")?;
    let settle = parse_duration(source, &raw.settle, "settle")?;
    if settle.is_zero() {
        return Err(source.at(&raw.settle, "settle must be longer than zero: it is the convergence bound", None));
    }
    let cluster = &raw.cluster;
    let nodes = *cluster.nodes.get_ref();
    if nodes == 0 || nodes > MAX_NODES {
        return Err(source.at(&cluster.nodes, format!("nodes must be between 1 and {MAX_NODES}, not {nodes}"), None));
    }
    let topology = topology(source, cluster, nodes)?;
    let opt_duration = |value: &Option<Spanned<String>>, what: &str, default: Duration| {
        value.as_ref().map_or(Ok(default), |value| parse_duration(source, value, what))
    };
    let sync_interval = opt_duration(&cluster.sync_interval, "sync_interval", Duration::from_millis(100))?;
    let session_timeout = opt_duration(&cluster.session_timeout, "session_timeout", sync_interval * 5)?;
    let sample_interval = opt_duration(&cluster.sample_interval, "sample_interval", Duration::from_millis(100))?;
    for (value, what) in [(&cluster.sync_interval, "sync_interval"), (&cluster.sample_interval, "sample_interval")] {
        if let Some(value) = value
            && parse_duration(source, value, what)? < Duration::from_millis(1)
        {
            return Err(source.at(value, format!("{what} must be at least 1ms"), None));
        }
    }
    let snapshot_interval = cluster.snapshot_interval.as_ref().map_or(Ok(64), |value| {
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
    })?;
    let network = &raw.network;
    let latency = match &network.latency {
        Some(value) => parse_latency(source, value)?,
        None => Latency::Uniform { min: Duration::from_millis(1), max: Duration::from_millis(10) },
    };
    let workload = &raw.workload;
    let ops_per_sec = workload.ops_per_sec.as_ref().map_or(Ok(20.0), |value| {
        let rate = *value.get_ref();
        if (0.0..=1e6).contains(&rate) {
            Ok(rate)
        } else {
            Err(source.at(value, format!("ops_per_sec must be between 0 and 1000000, not {rate}"), None))
        }
    })?;
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
    let seeds = match &raw.seeds {
        None => 0..10,
        Some(value) => {
            let range: crate::shard::SeedRange =
                value.get_ref().parse().map_err(|message: String| source.at(value, message, None))?;
            range.start..range.end
        }
    };
    let mut scenario = Scenario {
        name: raw.name.get_ref().clone(),
        description: raw.description.clone(),
        duration,
        settle,
        nodes,
        topology,
        sync_interval,
        session_timeout,
        snapshot_interval,
        prune: cluster.prune.unwrap_or(true),
        sample_interval,
        latency,
        loss: probability(source, network.loss.as_ref(), "loss")?,
        duplicate: probability(source, network.duplicate.as_ref(), "duplicate")?,
        reorder: probability(source, network.reorder.as_ref(), "reorder")?,
        corrupt: probability(source, network.corrupt.as_ref(), "corrupt")?,
        ops_per_sec,
        ops_per_lane: positive(&workload.ops_per_lane, "ops_per_lane", 4, 4096)?,
        keys: positive(&workload.keys, "keys", 100, 1 << 24)?,
        conflict_ratio: probability(source, workload.conflict_ratio.as_ref(), "conflict_ratio")?,
        faults: Vec::new(),
        bundles: Vec::new(),
        swarm: raw.swarm.enabled,
        swarm_kinds: Vec::new(),
        swarm_max_faults: 3,
        seeds,
    };
    if workload.conflict_ratio.is_none() {
        scenario.conflict_ratio = 0.3;
    }
    for fault in &raw.faults {
        scenario.faults.push(validate_fault(source, fault, &scenario)?);
    }
    check_overlaps(source, &raw.faults, &scenario.faults)?;
    for bundle in &raw.bundles {
        scenario.bundles.push(validate_bundle(source, bundle, &scenario)?);
    }
    validate_swarm(source, &raw.swarm, &mut scenario)?;
    Ok(scenario)
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
    match cluster.topology.get_ref().as_str() {
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

fn parse_latency(source: &Source<'_>, value: &Spanned<RawLatency>) -> Result<Latency, ScenarioError> {
    let raw = value.get_ref();
    let min = parse_duration(source, &raw.min, "latency.min")?;
    let max = parse_duration(source, &raw.max, "latency.max")?;
    if max < min {
        return Err(source.at(&raw.max, "latency.max is below latency.min", None));
    }
    match raw.distribution.as_ref().map(|name| name.get_ref().as_str()) {
        None | Some("uniform") => Ok(Latency::Uniform { min, max }),
        Some("normal") => Ok(Latency::Normal { min, max }),
        Some("long-tail") => Ok(Latency::LongTail { min, max }),
        Some(_) => {
            let name = raw.distribution.as_ref().expect("matched Some above");
            Err(source.at(
                name,
                format!("unknown latency distribution `{}`", name.get_ref()),
                Some(format!("distribution is one of {}", DISTRIBUTIONS.join(", "))),
            ))
        }
    }
}

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
            format!(
                "the fault starts at {} but the faulty phase ends at {}",
                humantime::format_duration(at),
                humantime::format_duration(scenario.duration)
            ),
            Some("faults start inside `duration`; heal them before it ends or let them last (no heal key)".into()),
        ));
    }
    let nodes = scenario.nodes;
    let window = |key: &Option<Spanned<String>>, name: &str| -> Result<Option<Duration>, ScenarioError> {
        key.as_ref().map(|value| parse_duration(source, value, name)).transpose()
    };
    let need_nodes = || -> Result<Vec<u32>, ScenarioError> {
        match &raw.nodes {
            Some(list) => check_nodes(source, list, nodes, "nodes"),
            None => Err(source.at(&raw.kind, format!("a {} fault needs `nodes = [...]`", raw.kind.get_ref()), None)),
        }
    };
    let (kind, lasts) = match raw.kind.get_ref().as_str() {
        "partition" => (partition_kind(source, spanned, nodes)?, window(&raw.heal_after, "heal_after")?),
        "crash" => (
            FaultKind::Crash { nodes: need_nodes()?, tear: raw.tear.unwrap_or(false) },
            window(&raw.restart_after, "restart_after")?,
        ),
        "pause" => (FaultKind::Pause { nodes: need_nodes()? }, window(&raw.resume_after, "resume_after")?),
        "clock-skew" => {
            let skew = raw
                .skew
                .as_ref()
                .ok_or_else(|| source.at(&raw.kind, "a clock-skew fault needs `skew = \"+50ms\"`", None))?;
            (
                FaultKind::ClockSkew { nodes: need_nodes()?, offset_ms: parse_skew(source, skew)? },
                window(&raw.heal_after, "heal_after")?,
            )
        }
        "latency" => {
            let value = raw.latency.as_ref().ok_or_else(|| {
                source.at(&raw.kind, "a latency fault needs `latency = { min = \"..\", max = \"..\" }`", None)
            })?;
            (FaultKind::Latency { latency: parse_latency(source, value)? }, window(&raw.heal_after, "heal_after")?)
        }
        "loss" => {
            let value = raw
                .probability
                .as_ref()
                .ok_or_else(|| source.at(&raw.kind, "a loss fault needs `probability = 0.3`", None))?;
            (
                FaultKind::Loss { probability: probability(source, Some(value), "probability")? },
                window(&raw.heal_after, "heal_after")?,
            )
        }
        other => {
            return Err(source.at(
                &raw.kind,
                format!("unknown fault kind `{other}`"),
                Some(format!("kind is one of {}", FAULT_KINDS.join(", "))),
            ));
        }
    };
    check_keys_fit(source, spanned, &kind)?;
    Ok(Fault { at, lasts, kind })
}

/// Refuses keys that belong to another fault kind (a `restart_after` on a
/// partition is a mistake, not something to ignore).
fn check_keys_fit(source: &Source<'_>, spanned: &Spanned<RawFault>, kind: &FaultKind) -> Result<(), ScenarioError> {
    let raw = spanned.get_ref();
    let allowed: &[&str] = match kind {
        FaultKind::Partition { .. } | FaultKind::OneWay { .. } => &["heal_after"],
        FaultKind::Crash { .. } => &["restart_after", "tear"],
        FaultKind::Pause { .. } => &["resume_after"],
        FaultKind::ClockSkew { .. } | FaultKind::Latency { .. } | FaultKind::Loss { .. } => &["heal_after"],
    };
    let present = [
        ("heal_after", raw.heal_after.is_some()),
        ("restart_after", raw.restart_after.is_some()),
        ("resume_after", raw.resume_after.is_some()),
        ("tear", raw.tear.is_some()),
    ];
    if let Some((key, _)) = present.iter().find(|(key, there)| *there && !allowed.contains(key)) {
        return Err(source.at(
            &raw.kind,
            format!("`{key}` does not apply to a {} fault", raw.kind.get_ref()),
            Some(format!("a {} fault takes {}", raw.kind.get_ref(), allowed.join(", "))),
        ));
    }
    Ok(())
}

fn partition_kind(source: &Source<'_>, spanned: &Spanned<RawFault>, nodes: u32) -> Result<FaultKind, ScenarioError> {
    let raw = spanned.get_ref();
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
    Ok(sign * parsed.as_millis() as i64)
}

fn end_of(fault: &Fault, run_end: Duration) -> Duration {
    fault.lasts.map_or(run_end, |lasts| fault.at + lasts)
}

/// Crash windows of one node may not overlap each other or a pause of it.
fn check_overlaps(source: &Source<'_>, raw: &[Spanned<RawFault>], faults: &[Fault]) -> Result<(), ScenarioError> {
    let run_end = Duration::MAX;
    for (i, a) in faults.iter().enumerate() {
        for (j, b) in faults.iter().enumerate().skip(i + 1) {
            let (na, nb) = match (&a.kind, &b.kind) {
                (
                    FaultKind::Crash { nodes: na, .. },
                    FaultKind::Crash { nodes: nb, .. } | FaultKind::Pause { nodes: nb },
                )
                | (FaultKind::Pause { nodes: na }, FaultKind::Crash { nodes: nb, .. }) => (na, nb),
                _ => continue,
            };
            let overlap = a.at < end_of(b, run_end) && b.at < end_of(a, run_end);
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
    scenario.swarm_kinds = match &raw.kinds {
        None => FAULT_KINDS.iter().map(|kind| (*kind).to_owned()).collect(),
        Some(kinds) => {
            if let Some(bad) = kinds.get_ref().iter().find(|kind| !FAULT_KINDS.contains(&kind.as_str())) {
                return Err(source.at(
                    kinds,
                    format!("unknown fault kind `{bad}` in swarm.kinds"),
                    Some(format!("kinds are {}", FAULT_KINDS.join(", "))),
                ));
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
    fn errors_point_at_line_and_column() {
        let text = format!("{MINIMAL}[[faults]]\nat = \"1s\"\nkind = \"crash\"\nnodes = [7]\n");
        let error = Scenario::from_toml(&text, "bad.toml").unwrap_err();
        assert_eq!(error.to_string(), "bad.toml:10:9: node index 7 out of range (cluster has 3 nodes)");
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
}
