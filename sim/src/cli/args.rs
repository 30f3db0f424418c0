//! The command line's first layer: parse and validate arguments, without IO.

use crate::shard::{SeedRange, ShardArg};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes and examples, shown by `scx --help` and every subcommand's help.
const AFTER_HELP: &str = "\
Exit codes:
  0    every run passed: every invariant held and every run tested something
  1    a run did not pass (a violation, a timeout, a harness error, nothing
       tested), or a campaign left a scenario without seeds
  2    bad input: a scenario file, an argument, a results file
  130  interrupted by SIGINT (results so far are valid; continue with --resume)
  143  stopped by SIGTERM (likewise)

Examples:
  scx run scenarios/quickstart.toml --seed 1
  scx fuzz scenarios/*.toml --seeds 0..2000 --out results.jsonl --report out/
  scx fuzz scenarios/*.toml --seeds 0..2000 --out results.jsonl --resume
  scx fuzz scenarios/swarm-mesh.toml --shard 2/8 --out part-2.jsonl
  scx merge part-*.jsonl --out results.jsonl
  scx replay scenarios/quickstart.toml --seed 7 --check-determinism
  scx shrink scenarios/x.toml --seed 7 --out minimal.toml
  scx report a.jsonl b.jsonl --out compare/
  scx cluster scenarios/quickstart.toml --seed 1 --out run/

Scenario files are described in docs/SCENARIOS.md.";

/// SCX: a deterministic simulation-cluster test harness for the SCX sync engine.
#[derive(Debug, Parser)]
#[command(name = "scx", version, about, long_about = None, propagate_version = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one scenario at one seed and judge it.
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Run many seeds of one or more scenarios in parallel, streaming results.
    #[command(after_help = AFTER_HELP)]
    Fuzz(FuzzArgs),
    /// Re-run a seed and print its event trace.
    Replay(ReplayArgs),
    /// Shrink a failing seed's scenario to a smaller one that still fails.
    Shrink(ShrinkArgs),
    /// Join shard result files into one, sorted by scenario and seed.
    Merge(MergeArgs),
    /// Write a convergence report (HTML, Markdown, JSON) from a trace or results files.
    Report(ReportArgs),
    /// Hunt planted bugs with scenarios and their default seeds (a build
    /// with `--features planted-bugs`); prints where each bug was found.
    Hunt(HuntArgs),
    /// Run a scenario's nodes as real processes on 127.0.0.1 behind a fault
    /// proxy (SIGKILL crashes, SIGSTOP pauses), then judge their logs with
    /// the simulator's checkers. Not deterministic: the seed drives the
    /// schedule and the workload.
    #[command(after_help = AFTER_HELP)]
    Cluster(ClusterArgs),
    /// Run one SCX node as a real process over TCP with a file store (what
    /// `scx cluster` starts; see docs/SCENARIOS.md, "Real mode").
    Node(NodeArgs),
}

/// `scx cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The seed (default: the first of the scenario's seeds).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The run's directory (created; must be empty): node data, logs,
    /// record.json, trace.json and report/. Default: a new directory under
    /// the system's temporary directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Leave out, with a warning, faults and keys only the simulator can
    /// honour (clock skew, torn writes, rot, hostile nodes, replacements,
    /// air-gapped bundles) instead of refusing the scenario.
    #[arg(long)]
    pub allow_sim_only: bool,
    /// Run with a planted bug (a build with `--features planted-bugs`).
    #[arg(long)]
    pub bug: Option<String>,
    /// Also write each chart of the report as a PNG.
    #[arg(long)]
    pub png: bool,
}

/// `scx node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The scenario file (the node takes its config, workload and timing from it).
    pub scenario: PathBuf,
    /// The seed.
    #[arg(long)]
    pub seed: u64,
    /// This node's index in the scenario's cluster.
    #[arg(long)]
    pub id: u32,
    /// Address to accept peers' connections on (loopback only).
    #[arg(long)]
    pub listen: SocketAddr,
    /// A peer and the address to dial it at, as `ID=HOST:PORT` (repeat).
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(u32, SocketAddr)>,
    /// The data directory: the durable log, the boot count and
    /// observations.jsonl (appended to across restarts).
    #[arg(long)]
    pub data: PathBuf,
    /// The run's epoch in Unix nanoseconds (default: now); timestamps and
    /// the workload's schedule count from it.
    #[arg(long)]
    pub epoch_unix_ns: Option<u64>,
    /// Die with this process (the supervisor's pid), which must be the parent.
    #[arg(long, hide = true)]
    pub supervisor_pid: Option<i32>,
    /// Run with a planted bug (a build with `--features planted-bugs`).
    #[arg(long)]
    pub bug: Option<String>,
}

fn parse_peer(text: &str) -> Result<(u32, SocketAddr), String> {
    let (id, address) = text.split_once('=').ok_or_else(|| format!("`{text}` is not ID=HOST:PORT"))?;
    let id = id.parse::<u32>().map_err(|_| format!("`{id}` is not a node index"))?;
    let address = address.parse::<SocketAddr>().map_err(|error| format!("`{address}`: {error}"))?;
    Ok((id, address))
}

/// `scx hunt`.
#[derive(Debug, Args)]
pub struct HuntArgs {
    /// Scenario files (the shipped library: scenarios/*.toml).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Hunt only these bugs (default: every planted bug).
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Parallel seeds (default: the machine's cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Wall-clock limit per seed run.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
}

/// `scx report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A trace (`scx run --trace`) or one or more results files (`scx fuzz --out`);
    /// two or more results files are compared.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Directory to write report.html, report.md, report.json and chart data into.
    #[arg(long)]
    pub out: PathBuf,
    /// Page title.
    #[arg(long)]
    pub title: Option<String>,
    /// Also write each chart as a PNG (for papers).
    #[arg(long)]
    pub png: bool,
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A short human summary.
    Text,
    /// One JSON object.
    Json,
}

/// `scx run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The seed (default: the first of the scenario's seeds).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the run's trace (samples and events) as JSON to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Write a convergence report of the run into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// With --report: also write each chart as a PNG.
    #[arg(long, requires = "report")]
    pub png: bool,
    /// Run with a planted bug (a build with `--features planted-bugs`), to
    /// reproduce what `scx hunt` found.
    #[arg(long)]
    pub bug: Option<String>,
}

/// `scx fuzz`.
#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Scenario files.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    /// Seed range, Rust style: `A..B` (B excluded) or `A..=B`.
    #[arg(long, conflicts_with = "count")]
    pub seeds: Option<SeedRange>,
    /// Run seeds 0..N.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop starting new seeds after this much wall time ("90s", "10m").
    /// Seeds are interleaved across scenarios, so each gets its share; a
    /// scenario left with no seed fails the campaign.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Parallel seeds (default: the machine's cores).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Run only shard K of N (1-based), as `cargo nextest --partition count:K/N`;
    /// `auto` reads it from SCX_SHARD (K/N), JOB_COMPLETION_INDEX + SCX_SHARD_COUNT
    /// (Kubernetes) or SLURM_ARRAY_TASK_ID/_MIN/_COUNT (Slurm). Without --shard
    /// these variables are not read.
    #[arg(long, value_name = "K/N|auto")]
    pub shard: Option<ShardArg>,
    /// Write JSON lines here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run each seed twice and fail it if the trace hashes differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write JUnit XML (one test case per seed) here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a convergence report of the campaign into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// With --report: also write each chart as a PNG.
    #[arg(long, requires = "report")]
    pub png: bool,
    /// A file of failing seeds (`<scenario> seed N # why`), as proptest keeps
    /// one: its seeds run first (in shard 1), and new failures are appended.
    #[arg(long)]
    pub failures: Option<PathBuf>,
    /// Continue the campaign whose results are in --out: keep its records
    /// (dropping a torn last line) and run only the seeds it lacks; a file not
    /// there yet starts the campaign, so a retried shard can always pass it.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Wall-clock limit per seed run ("5m"); a seed past it is recorded as a
    /// `timeout`, and the campaign goes on.
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub timeout: Duration,
}

/// `scx replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The seed.
    #[arg(long)]
    pub seed: u64,
    /// Run twice and compare trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Print at most this many events (0: all kept).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
}

/// `scx shrink`.
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The failing seed.
    #[arg(long)]
    pub seed: u64,
    /// Write the minimal scenario here (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Most runs to spend.
    #[arg(long, default_value_t = 400)]
    pub budget: usize,
}

/// `scx merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Result files (JSON lines) to join.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Merge even if some planned runs are in no input (a shard lost or
    /// stopped early); they are listed as a warning instead of an error.
    #[arg(long)]
    pub allow_missing: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|error| format!("`{text}` is not a duration ({error}); write e.g. 90s or 10m"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
