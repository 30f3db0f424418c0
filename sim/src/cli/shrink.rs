//! `scx shrink`: delta debugging of a failing scenario. Starting from the
//! failing (scenario, seed), try smaller variants (fewer faults, shorter
//! windows, fewer nodes, a shorter run, less network noise, a lighter
//! workload) and keep each one that still fails with the same checker, until
//! no variant fails or the run budget is spent. Swarm scenarios are first
//! materialised: the faults the seed chose become explicit.

use super::args::ShrinkArgs;
use super::{BadInput, load};
use crate::plan;
use crate::runner::{self, RunOptions};
use crate::scenario::{Fault, FaultKind, Scenario, Topology};
use std::process::ExitCode;
use std::time::Duration;

/// The checker of the first violation, if the run fails.
fn failure(scenario: &Scenario, seed: u64) -> Option<&'static str> {
    let outcome = runner::run(&plan::resolve(scenario, seed, None), RunOptions::default());
    outcome.violations.first().map(|violation| violation.checker)
}

pub(super) fn shrink(args: &ShrinkArgs) -> anyhow::Result<ExitCode> {
    let original = load(&args.scenario)?;
    let seed = args.seed;
    let Some(checker) = failure(&original, seed) else {
        return Err(
            BadInput(format!("seed {seed} of {} passes: there is nothing to shrink", args.scenario.display())).into()
        );
    };
    let mut best = original.clone();
    let mut runs = 1;
    if best.swarm {
        let explicit = materialise(&best, seed);
        runs += 1;
        if failure(&explicit, seed) == Some(checker) {
            best = explicit;
        }
    }
    'search: loop {
        for candidate in candidates(&best, checker) {
            if runs >= args.budget {
                break 'search;
            }
            runs += 1;
            if failure(&candidate, seed) == Some(checker) {
                best = candidate;
                continue 'search;
            }
        }
        break;
    }
    best.seeds = seed..seed + 1;
    let header = format!(
        "# Shrunk by `scx shrink` from {} (seed {seed}): still fails the `{checker}` checker.\n# {runs} runs; faults {} -> {}, nodes {} -> {}, duration {:?} -> {:?}.\n",
        args.scenario.display(),
        original.faults.len(),
        best.faults.len(),
        original.nodes,
        best.nodes,
        original.duration,
        best.duration
    );
    let text = format!("{header}{}", best.to_toml_string());
    match &args.out {
        Some(path) => std::fs::write(path, &text)?,
        None => print!("{text}"),
    }
    eprint!("{header}");
    if let Some(path) = &args.out {
        eprintln!("reproduce: scx run {} --seed {seed}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The scenario with swarm's choices for `seed` written out as explicit faults.
fn materialise(scenario: &Scenario, seed: u64) -> Scenario {
    let spec = plan::resolve(scenario, seed, None);
    let mut explicit = scenario.clone();
    explicit.swarm = false;
    explicit.loss = spec.network.loss;
    explicit.duplicate = spec.network.duplicate;
    explicit.reorder = spec.network.reorder;
    explicit.faults = spec
        .faults
        .iter()
        .map(|fault| Fault { at: fault.start, lasts: fault.end.map(|end| end - fault.start), kind: fault.kind.clone() })
        .collect();
    explicit
}

/// Smaller variants of `scenario`, biggest cuts first.
fn candidates(scenario: &Scenario, checker: &str) -> Vec<Scenario> {
    let mut out = Vec::new();
    let faults = scenario.faults.len();
    if faults > 1 {
        let mut first_half = scenario.clone();
        first_half.faults.truncate(faults / 2);
        out.push(first_half);
        let mut second_half = scenario.clone();
        second_half.faults.drain(..faults / 2);
        out.push(second_half);
    }
    for index in 0..faults {
        let mut fewer = scenario.clone();
        fewer.faults.remove(index);
        out.push(fewer);
    }
    for index in 0..faults {
        if let Some(lasts) = scenario.faults[index].lasts.filter(|lasts| *lasts > Duration::from_millis(200)) {
            let mut shorter = scenario.clone();
            shorter.faults[index].lasts = Some(lasts / 2);
            out.push(shorter);
        }
    }
    if let Some(fewer) = drop_last_node(scenario) {
        out.push(fewer);
    }
    if scenario.duration > Duration::from_secs(1) {
        let mut shorter = scenario.clone();
        shorter.duration = scenario.duration / 2;
        shorter.faults.retain(|fault| fault.at < shorter.duration);
        out.push(shorter);
    }
    if checker != "convergence" && scenario.settle > Duration::from_secs(1) {
        let mut shorter = scenario.clone();
        shorter.settle = scenario.settle / 2;
        out.push(shorter);
    }
    let silencers: [fn(&mut Scenario) -> &mut f64; 4] =
        [|s| &mut s.loss, |s| &mut s.duplicate, |s| &mut s.reorder, |s| &mut s.corrupt];
    for silence in silencers {
        let mut quieter = scenario.clone();
        let field = silence(&mut quieter);
        if *field > 0.0 {
            *field = 0.0;
            out.push(quieter);
        }
    }
    if scenario.ops_per_sec > 1.0 {
        let mut lighter = scenario.clone();
        lighter.ops_per_sec = (scenario.ops_per_sec / 2.0).max(1.0);
        out.push(lighter);
    }
    out
}

/// The scenario without its highest-numbered node, if nothing needs it.
fn drop_last_node(scenario: &Scenario) -> Option<Scenario> {
    if scenario.nodes <= 2 {
        return None;
    }
    let last = scenario.nodes - 1;
    let needed = match &scenario.topology {
        Topology::ClientServer { server } => *server == last,
        Topology::Edge { hubs } => hubs.contains(&last) && hubs.len() == 1,
        _ => false,
    };
    if needed || scenario.bundles.iter().any(|bundle| bundle.from == last || bundle.to == last) {
        return None;
    }
    let mut fewer = scenario.clone();
    fewer.nodes = last;
    if let Topology::Edge { hubs } = &mut fewer.topology {
        hubs.retain(|hub| *hub != last);
    }
    let mut faults = Vec::new();
    for fault in &scenario.faults {
        let without = |nodes: &[u32]| -> Vec<u32> { nodes.iter().copied().filter(|node| *node != last).collect() };
        let kind = match &fault.kind {
            FaultKind::Partition { groups } => {
                let groups: Vec<Vec<u32>> =
                    groups.iter().map(|group| without(group)).filter(|group| !group.is_empty()).collect();
                if groups.len() < 2 {
                    continue;
                }
                FaultKind::Partition { groups }
            }
            FaultKind::OneWay { from, to } => {
                let (from, to) = (without(from), without(to));
                if from.is_empty() || to.is_empty() {
                    continue;
                }
                FaultKind::OneWay { from, to }
            }
            FaultKind::Crash { nodes, tear, rot } => match without(nodes) {
                nodes if nodes.is_empty() => continue,
                nodes => FaultKind::Crash { nodes, tear: *tear, rot: *rot },
            },
            FaultKind::Pause { nodes } => match without(nodes) {
                nodes if nodes.is_empty() => continue,
                nodes => FaultKind::Pause { nodes },
            },
            FaultKind::ClockSkew { nodes, offset_ms } => match without(nodes) {
                nodes if nodes.is_empty() => continue,
                nodes => FaultKind::ClockSkew { nodes, offset_ms: *offset_ms },
            },
            kind => kind.clone(),
        };
        faults.push(Fault { kind, ..fault.clone() });
    }
    fewer.faults = faults;
    Some(fewer)
}
