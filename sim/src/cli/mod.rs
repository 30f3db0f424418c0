//! The `scx` command line: `args` parses and validates without IO; this
//! module resolves arguments into work, runs it and writes results.
//! Results go to stdout (or `--out`), progress and logs to stderr.
//! Exit codes: 0 every invariant held, 1 a violation was found, 2 bad input.

#![allow(
    clippy::result_large_err,
    reason = "a scenario error carries its source text for the caret; it is built once per bad file, never on a hot path"
)]

pub mod args;
mod campaign;
mod merge;
mod output;
mod real;
mod shrink;

use crate::plan;
use crate::runner::{self, RunOptions};
use crate::scenario::{Scenario, ScenarioError};
use anyhow::Context as _;
use args::{Cli, Command, Format, HuntArgs, ReplayArgs, ReportArgs, RunArgs};
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Input the user must fix (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run_one(&args),
        Command::Fuzz(args) => campaign::run(&args),
        Command::Replay(args) => replay(&args),
        Command::Shrink(args) => shrink::shrink(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Report(args) => report(&args),
        Command::Hunt(args) => hunt(&args),
        Command::Cluster(args) => real::cluster(&args),
        Command::Node(args) => real::node(&args),
    }
}

/// Exit code 0 or 1 for a verdict.
fn verdict(passed: bool) -> ExitCode {
    if passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

pub(crate) fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    Scenario::from_path(path)
}

fn run_one(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let scenario = load(&args.scenario)?;
    let seed = args.seed.unwrap_or(scenario.seeds.start);
    let bug = args.bug.as_deref().map(planted_bug).transpose()?;
    let spec = plan::resolve(&scenario, seed, bug);
    let keep_events = args.trace.is_some() || args.report.is_some();
    let outcome = runner::run(&spec, RunOptions { keep_events, ..RunOptions::default() });
    let path = args.scenario.display().to_string();
    let record = crate::record::from_outcome(&outcome, &path, &scenario.content_hash());
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => writeln!(stdout, "{}", serde_json::to_string_pretty(&record)?)?,
        Format::Text => write!(stdout, "{}", output::summary(&record, &outcome))?,
    }
    let trace = output::trace_of(&record, &outcome);
    if let Some(path) = &args.trace {
        output::write_trace(path, &trace).with_context(|| format!("writing the trace to {}", path.display()))?;
    }
    if let Some(dir) = &args.report {
        let files = scx_reports::write_run_report(
            &trace,
            dir,
            &scx_reports::ReportOptions { title: None, png: args.png, speed: None },
        )?;
        eprintln!("report: {}", files.html.display());
    }
    Ok(verdict(record.passed()))
}

fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let scenario = load(&args.scenario)?;
    let spec = plan::resolve(&scenario, args.seed, None);
    let outcome = runner::run(&spec, RunOptions { keep_events: true, ..RunOptions::default() });
    let path = args.scenario.display().to_string();
    let record = crate::record::from_outcome(&outcome, &path, &scenario.content_hash());
    let mut stdout = std::io::stdout().lock();
    let limit = if args.limit == 0 { usize::MAX } else { args.limit };
    for stamped in outcome.events.iter().take(limit) {
        let node = stamped.event.node().map_or_else(|| "  -".to_owned(), |node| format!("n{node:<2}"));
        writeln!(
            stdout,
            "{:>10.3}s {node} {:<15} {}",
            stamped.at_ns as f64 / 1e9,
            stamped.event.kind(),
            stamped.event
        )?;
    }
    write!(stdout, "{}", output::summary(&record, &outcome))?;
    if args.check_determinism {
        let again = runner::run(&spec, RunOptions::default());
        if again.trace_hash != outcome.trace_hash {
            writeln!(stdout, "determinism: FAILED: trace hashes {} and {}", outcome.trace_hash, again.trace_hash)?;
            return Ok(ExitCode::from(1));
        }
        writeln!(stdout, "determinism: ok, both runs hashed {}", outcome.trace_hash)?;
    }
    Ok(verdict(record.passed()))
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let options = scx_reports::ReportOptions { title: args.title.clone(), png: args.png, speed: None };
    for (index, path) in args.inputs.iter().enumerate() {
        if let Some(earlier) = args.inputs[..index].iter().find(|earlier| campaign::same_file(earlier, path)) {
            return Err(BadInput(format!(
                "{} and {} are one file: a comparison needs two campaigns (run the variant into its own results file)",
                earlier.display(),
                path.display()
            ))
            .into());
        }
    }
    let mut campaigns = Vec::new();
    for path in &args.inputs {
        match scx_reports::read_input(path).map_err(|error| BadInput(error.to_string()))? {
            scx_reports::Input::Trace(trace) if args.inputs.len() == 1 => {
                let files = scx_reports::write_run_report(&trace, &args.out, &options)?;
                eprintln!("report: {}", files.html.display());
                return Ok(ExitCode::SUCCESS);
            }
            scx_reports::Input::Trace(_) => {
                return Err(BadInput(format!(
                    "{}: a trace reports alone; compare results files instead",
                    path.display()
                ))
                .into());
            }
            scx_reports::Input::Results(aggregate) => campaigns.push(*aggregate),
        }
    }
    let files = scx_reports::write_campaign_report(&campaigns, &args.out, &options)?;
    eprintln!("report: {}", files.html.display());
    Ok(ExitCode::SUCCESS)
}

/// The planted bug named `name`, in a build that carries planted bugs.
pub(crate) fn planted_bug(name: &str) -> Result<crate::spec::PlantedBug, BadInput> {
    use crate::spec::PlantedBug;
    if !scx_engine::bugs::COMPILED {
        return Err(BadInput(
            "this scx was built without planted bugs; build it with `cargo build --release --features planted-bugs`"
                .into(),
        ));
    }
    PlantedBug::ALL.into_iter().find(|bug| bug.name() == name).ok_or_else(|| {
        let known: Vec<&str> = PlantedBug::ALL.iter().map(|bug| bug.name()).collect();
        BadInput(format!("--bug {name}: no such planted bug; known: {}", known.join(", ")))
    })
}

fn hunt(args: &HuntArgs) -> anyhow::Result<ExitCode> {
    use crate::spec::PlantedBug;
    if !scx_engine::bugs::COMPILED {
        return Err(BadInput(
            "this scx was built without planted bugs; run `cargo run --release --features planted-bugs -- hunt ...`"
                .into(),
        )
        .into());
    }
    let bugs: Vec<PlantedBug> = if args.bugs.is_empty() {
        PlantedBug::ALL.to_vec()
    } else {
        args.bugs.iter().map(|name| planted_bug(name)).collect::<Result<_, _>>()?
    };
    let mut scenarios = Vec::new();
    for path in &args.scenarios {
        scenarios.push(crate::fuzz::CampaignScenario::new(crate::scenario::normalise_path(path), load(path)?));
    }
    let mut campaign = crate::fuzz::Campaign::new(scenarios, None, crate::shard::Shard::ALL, &[]);
    campaign.jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let mut results = Vec::new();
    for bug in bugs {
        let result = crate::hunt::hunt(&campaign, bug, args.timeout);
        match &result.caught {
            Some(catch) => eprintln!(
                "{}: found by {} at {} seed {} after {} runs",
                bug.name(),
                catch.checker,
                catch.scenario_path,
                catch.seed,
                catch.runs_to_first_failure
            ),
            None => eprintln!("{}: NOT FOUND in {} runs", bug.name(), result.runs),
        }
        results.push(result);
    }
    print!("{}", crate::hunt::table(&results, campaign.planned()));
    let all_found =
        results.iter().all(|result| result.caught.as_ref().is_some_and(|catch| catch.passes_without_the_bug));
    Ok(verdict(all_found))
}
