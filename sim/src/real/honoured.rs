//! Which scenario keys real mode honours. Processes on localhost behind a
//! userspace TCP proxy can have latency, loss, duplication, reordering and
//! corruption of frames, partitions (one-way too), SIGKILL crashes with a
//! restart on the same data directory, and SIGSTOP pauses. They cannot
//! have a skewed clock, a torn write, a rotten disk, a hostile node, a
//! replaced disk or an air-gapped courier: those are the simulator's.
//!
//! Invariant: a plan that passes [`check`] holds only faults real mode
//! carries out; a sim-only key is an error located at its value (exit 2),
//! or, with `--allow-sim-only`, a warning and the fault left out (a torn or
//! rotten crash becomes a plain crash).

use crate::scenario::ScenarioError;
use crate::spec::{FaultKind, RunSpec, Topology};
use miette::{NamedSource, SourceSpan};
use serde::Deserialize;
use serde_spanned::Spanned;
use std::ops::Range;

/// The keys real mode honours, for docs and help lines.
pub const HONOURED: &str = "cluster.* (but topology = \"air-gapped\"), network.*, workload.*, \
faults of kind partition (one-way too), crash (without tear or rot), pause, latency and loss, \
and swarm when its kinds are among those";

/// Fault kinds real mode carries out.
pub const REAL_FAULT_KINDS: [&str; 5] = ["partition", "crash", "pause", "latency", "loss"];

#[derive(Deserialize, Default)]
struct Located {
    #[serde(default)]
    cluster: Option<LocatedCluster>,
    #[serde(default)]
    faults: Vec<LocatedFault>,
    #[serde(default)]
    bundles: Option<Spanned<toml::Value>>,
    #[serde(default)]
    swarm: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
struct LocatedCluster {
    topology: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct LocatedFault {
    kind: Spanned<String>,
    tear: Option<Spanned<bool>>,
    rot: Option<Spanned<bool>>,
}

/// A key only the simulator honours, located in the scenario file.
#[derive(Debug)]
pub struct SimOnly {
    span: Option<Range<usize>>,
    message: String,
}

/// Checks `spec` (resolved from the scenario file `name` with `text`) for
/// keys real mode cannot honour. With `allow`, returns the plan without
/// them and one warning per key; without, the first one as a located error.
#[allow(clippy::result_large_err, reason = "a scenario error carries its source text for the caret, built once")]
pub fn check(spec: &RunSpec, name: &str, text: &str, allow: bool) -> Result<(RunSpec, Vec<String>), ScenarioError> {
    let located: Located = toml::from_str(text).unwrap_or_default();
    let found = sim_only(spec, &located);
    if let (false, Some(first)) = (allow, found.first()) {
        return Err(error(name, text, first));
    }
    let warnings =
        found.iter().map(|one| format!("warning: {}: {} (left out)", location(name, text, one), one.message));
    let warnings = warnings.collect();
    Ok((without_sim_only(spec), warnings))
}

fn sim_only(spec: &RunSpec, located: &Located) -> Vec<SimOnly> {
    let mut found = Vec::new();
    if spec.topology == Topology::AirGapped {
        let span = located.cluster.as_ref().and_then(|cluster| cluster.topology.as_ref()).map(Spanned::span);
        found.push(SimOnly { span, message: "topology \"air-gapped\" is simulator-only in real mode".into() });
    } else if let Some(bundles) = &located.bundles {
        found.push(SimOnly { span: Some(bundles.span()), message: "bundles are simulator-only".into() });
    }
    for (index, fault) in spec.faults.iter().enumerate() {
        // The file's faults come first in the plan, in file order; swarm's follow.
        let file = located.faults.get(index);
        let from_swarm = || located.swarm.as_ref().map(Spanned::span);
        let kind_span = file.map_or_else(from_swarm, |fault| Some(fault.kind.span()));
        let origin = if file.is_some() { "a fault" } else { "a swarm fault" };
        match &fault.kind {
            FaultKind::ClockSkew { .. } | FaultKind::Hostile { .. } | FaultKind::Replace { .. } => {
                let message = format!(
                    "{origin} of kind `{}` is simulator-only; real mode honours {}",
                    fault.kind.name(),
                    REAL_FAULT_KINDS.join(", ")
                );
                found.push(SimOnly { span: kind_span, message });
            }
            FaultKind::Crash { tear, rot, .. } => {
                for (on, key, value) in [
                    (*tear, "tear", file.and_then(|fault| fault.tear.as_ref())),
                    (*rot, "rot", file.and_then(|fault| fault.rot.as_ref())),
                ] {
                    if on {
                        let span = value.map(Spanned::span).or_else(|| kind_span.clone());
                        let message = format!("{origin}'s `{key} = true` is simulator-only (a crash is a SIGKILL)");
                        found.push(SimOnly { span, message });
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// `spec` with what real mode cannot do left out.
fn without_sim_only(spec: &RunSpec) -> RunSpec {
    let mut spec = spec.clone();
    spec.bundles.clear();
    spec.faults.retain(|fault| {
        !matches!(fault.kind, FaultKind::ClockSkew { .. } | FaultKind::Hostile { .. } | FaultKind::Replace { .. })
    });
    for fault in &mut spec.faults {
        if let FaultKind::Crash { tear, rot, .. } = &mut fault.kind {
            (*tear, *rot) = (false, false);
        }
    }
    spec
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
    (line, column)
}

fn location(name: &str, text: &str, found: &SimOnly) -> String {
    match &found.span {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("{name}:{line}:{column}")
        }
        None => name.to_owned(),
    }
}

fn error(name: &str, text: &str, found: &SimOnly) -> ScenarioError {
    ScenarioError {
        location: location(name, text, found),
        message: found.message.clone(),
        help: Some(format!(
            "real mode honours {HONOURED}; run it in the simulator (`scx run`), or pass --allow-sim-only to leave it out"
        )),
        source_code: NamedSource::new(name, text.to_owned()),
        span: found.span.clone().map(SourceSpan::from),
        label: String::new(),
    }
}
