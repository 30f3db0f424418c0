//! `scx cluster` and `scx node`: real mode's command line. Arguments and
//! the scenario are checked first (a sim-only key is a located error, exit
//! 2); then the supervisor runs, the logs are judged, and the run's
//! directory gets `record.json`, `trace.json` and `report/`, as a
//! simulated run's `--format json`, `--trace` and `--report` would.

use super::args::{ClusterArgs, Format, NodeArgs};
use super::{BadInput, load, output, planted_bug, verdict};
use crate::plan;
use crate::real::clock::Epoch;
use crate::real::cluster::{ClusterSetup, Stop};
use crate::real::process::NodeSetup;
use crate::record::{RunRecord, SCX_VERSION};
use anyhow::Context as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn node(args: &NodeArgs) -> anyhow::Result<ExitCode> {
    let scenario = load(&args.scenario)?;
    let bug = args.bug.as_deref().map(planted_bug).transpose()?;
    let spec = plan::resolve(&scenario, args.seed, bug);
    if args.id >= spec.nodes {
        return Err(BadInput(format!("--id {}: the scenario has {} nodes", args.id, spec.nodes)).into());
    }
    for (peer, address) in &args.peers {
        if *peer >= spec.nodes || *peer == args.id {
            return Err(BadInput(format!("--peer {peer}={address}: not another node of the scenario")).into());
        }
    }
    for address in std::iter::once(&args.listen).chain(args.peers.iter().map(|(_, address)| address)) {
        loopback(address)?;
    }
    let setup = NodeSetup {
        spec,
        id: args.id,
        listen: args.listen,
        peers: args.peers.iter().copied().collect(),
        data: args.data.clone(),
        epoch: args.epoch_unix_ns.map_or_else(Epoch::now, Epoch::from_unix_ns),
        supervisor: args.supervisor_pid,
    };
    crate::real::process::run(setup).with_context(|| format!("node {}", args.id))?;
    Ok(ExitCode::SUCCESS)
}

/// Real mode stays on this machine: only loopback addresses.
fn loopback(address: &SocketAddr) -> Result<(), BadInput> {
    match address.ip().is_loopback() {
        true => Ok(()),
        false => Err(BadInput(format!("{address}: real mode uses loopback addresses only (127.0.0.1)"))),
    }
}

pub(super) fn cluster(args: &ClusterArgs) -> anyhow::Result<ExitCode> {
    let scenario = load(&args.scenario)?;
    let seed = args.seed.unwrap_or(scenario.seeds.start);
    let bug = args.bug.as_deref().map(planted_bug).transpose()?;
    let planned = plan::resolve(&scenario, seed, bug);
    let name = crate::scenario::normalise_path(&args.scenario);
    let text = std::fs::read_to_string(&args.scenario).with_context(|| format!("reading {name}"))?;
    let (spec, warnings) = crate::real::honoured::check(&planned, &name, &text, args.allow_sim_only)?;
    for warning in warnings {
        eprintln!("{warning}");
    }
    let out = prepare_out(args.out.as_deref(), &spec.name, seed)?;
    eprintln!(
        "cluster: {} seed {seed}: real processes on 127.0.0.1, not deterministic; logs in {}",
        spec.name,
        out.display()
    );
    let program = std::env::current_exe().context("finding the scx binary to start nodes with")?;
    let setup = ClusterSetup { spec: spec.clone(), scenario: args.scenario.clone(), out: out.clone(), program };
    let run = crate::real::cluster::run(&setup).context("running the cluster")?;
    if let Stop::Interrupted(signal) = run.stop {
        eprintln!("cluster: interrupted by signal {signal}; every node was killed; nothing judged");
        return Ok(ExitCode::from(128 + signal as u8));
    }
    let outcome = crate::real::collect::collect(&spec, &run).context("reading the nodes' logs")?;
    let path = args.scenario.display().to_string();
    let record = real_record(&outcome, &path, &scenario.content_hash(), args.bug.as_deref());
    let trace = output::trace_of(&record, &outcome);
    std::fs::write(out.join("record.json"), serde_json::to_string_pretty(&record)? + "\n")
        .with_context(|| format!("writing {}", out.join("record.json").display()))?;
    output::write_trace(&out.join("trace.json"), &trace).context("writing trace.json")?;
    let title = Some(format!("{} seed {seed}: real processes on 127.0.0.1 (not deterministic)", spec.name));
    let files = scx_reports::write_run_report(
        &trace,
        &out.join("report"),
        &scx_reports::ReportOptions { title, png: args.png, speed: None },
    )?;
    eprintln!("report: {}", files.html.display());
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&record)?)?,
        Format::Text => write!(stdout, "{}", output::summary(&record, &outcome))?,
    }
    Ok(verdict(record.passed()))
}

/// The record of a real run: the simulator's, marked as real, with no
/// trace hash and a reproduce line that runs the cluster again.
fn real_record(outcome: &crate::runner::RunOutcome, path: &str, hash: &str, bug: Option<&str>) -> RunRecord {
    let mut record = crate::record::from_outcome(outcome, path, hash);
    let note = match record.note.take() {
        Some(note) => format!("{}; {note}", crate::real::REAL_NOTE),
        None => crate::real::REAL_NOTE.to_owned(),
    };
    record.note = Some(note);
    record.trace_hash = "none (real mode is not deterministic)".to_owned();
    let bug = bug.map(|bug| format!(" --bug {bug}")).unwrap_or_default();
    record.reproduce = format!(
        "scx cluster {path} --seed {}{bug}  # scx {SCX_VERSION}, scenario {hash}; real mode, not deterministic",
        outcome.spec.seed
    );
    record
}

/// The run's directory: `out` (created, or refused when not empty), or a
/// fresh one under the system's temporary directory.
fn prepare_out(out: Option<&Path>, name: &str, seed: u64) -> anyhow::Result<PathBuf> {
    let dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("scx-cluster-{name}-seed{seed}-{}", std::process::id())),
    };
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(BadInput(format!(
            "--out {}: the directory is not empty (a real run starts from empty disks)",
            dir.display()
        ))
        .into());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Absolute, so the nodes' data directories do not depend on their cwd.
    Ok(std::fs::canonicalize(&dir).unwrap_or(dir))
}
