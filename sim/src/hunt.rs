//! The blind bug hunt: every planted bug is hunted with one plan, the
//! shipped scenarios and their default seeds, unchanged. No scenario, knob
//! or seed is chosen for a bug, so "found" means the library and its
//! checkers find that kind of bug, not that someone aimed at it.
//!
//! When no run fails, the coverage checker gives the campaign's verdict: an
//! effect a scenario expects that never happened with the bug, but does
//! without it, is a find (a bug that stops a mechanism without breaking a
//! property, as a Bloom fallback that never fires).
//!
//! Seeds run in the campaign's canonical order (seed-major across the
//! scenarios, as `scx fuzz` runs them), each twice with its trace hashes
//! compared (as `scx fuzz --check-determinism` in CI); the first engine
//! violation ends the hunt for that bug, and that seed is run again without
//! the bug, which must pass (otherwise the hunt found something else).
//!
//! Invariant: a hunt's result depends only on the scenarios and the bug.

use crate::checkers;
use crate::fuzz::{Campaign, Item};
use crate::plan;
use crate::record::Verdict;
use crate::runner::{self, RunOptions, RunOutcome};
use crate::spec::PlantedBug;
use std::collections::BTreeSet;
use std::time::Duration;

/// Where and how a bug was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catch {
    /// The checker that caught it.
    pub checker: String,
    /// The violation's message.
    pub message: String,
    /// The scenario.
    pub scenario_path: String,
    /// The seed.
    pub seed: u64,
    /// Runs in the hunt's order up to and including this one.
    pub runs_to_first_failure: u64,
    /// Whether the same seed passes without the bug.
    pub passes_without_the_bug: bool,
}

/// One bug's hunt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HuntResult {
    /// The bug.
    pub bug: PlantedBug,
    /// Where it was found, if it was.
    pub caught: Option<Catch>,
    /// Runs made.
    pub runs: u64,
    /// Runs that ended as neither pass nor engine failure (timeouts, harness
    /// errors, nothing tested), which a hunt must not count as finds.
    pub inconclusive: u64,
}

/// Hunts `bug` through `campaign`'s seeds (its scenarios' default seeds),
/// `campaign.jobs` at a time, stopping at the first engine violation.
pub fn hunt(campaign: &Campaign, bug: PlantedBug, seed_timeout: Duration) -> HuntResult {
    let order: Vec<Item> = campaign.output_order().collect();
    let mut result = HuntResult { bug, caught: None, runs: 0, inconclusive: 0 };
    // Per scenario: the effects reached so far (the coverage checker's view).
    let mut reached: Vec<BTreeSet<&'static str>> = vec![BTreeSet::new(); campaign.scenarios().len()];
    for chunk in order.chunks(campaign.jobs.max(1)) {
        let outcomes: Vec<RunOutcome> = std::thread::scope(|scope| {
            let handles: Vec<_> =
                chunk.iter().map(|item| scope.spawn(move || run(campaign, *item, Some(bug), seed_timeout))).collect();
            handles.into_iter().map(|handle| handle.join().expect("runs catch their own panics")).collect()
        });
        for (item, outcome) in chunk.iter().zip(outcomes) {
            result.runs += 1;
            reached[item.scenario]
                .extend(outcome.coverage.iter().filter(|(_, count)| **count > 0).map(|(name, _)| *name));
            match outcome.verdict() {
                Verdict::Fail => {
                    let entry = &campaign.scenarios()[item.scenario];
                    let violation = &outcome.violations[0];
                    let clean = run(campaign, *item, None, seed_timeout);
                    result.caught = Some(Catch {
                        checker: violation.checker.to_owned(),
                        message: violation.message.clone(),
                        scenario_path: entry.path.clone(),
                        seed: item.seed,
                        runs_to_first_failure: result.runs,
                        passes_without_the_bug: clean.passed(),
                    });
                    return result;
                }
                Verdict::Pass => {}
                Verdict::Timeout | Verdict::HarnessError | Verdict::NothingTested => result.inconclusive += 1,
            }
        }
    }
    result.caught = coverage_catch(campaign, &reached, seed_timeout, result.runs);
    result
}

/// No run failed: the coverage checker's campaign verdict. An effect a
/// scenario expects that never happened in any of its seeds is a find, if
/// it does happen without the bug.
fn coverage_catch(
    campaign: &Campaign,
    reached: &[BTreeSet<&'static str>],
    seed_timeout: Duration,
    runs: u64,
) -> Option<Catch> {
    for (index, entry) in campaign.scenarios().iter().enumerate() {
        let range = campaign.range(index);
        for effect in entry.scenario.expected_effects() {
            if reached[index].contains(effect.as_str()) {
                continue;
            }
            let happens_without = range.seeds(campaign.shard).any(|seed| {
                let clean = run(campaign, Item { seed, scenario: index }, None, seed_timeout);
                clean.coverage.get(effect.as_str()).is_some_and(|count| *count > 0)
            });
            return Some(Catch {
                checker: "coverage".to_owned(),
                message: format!(
                    "`{effect}` never happened in the {} seeds of {}",
                    range.count(campaign.shard),
                    entry.path
                ),
                scenario_path: entry.path.clone(),
                seed: range.start,
                runs_to_first_failure: runs,
                passes_without_the_bug: happens_without,
            });
        }
    }
    None
}

/// One seed, twice when the first run passed: a second run that does not
/// reproduce the first's trace is a determinism violation.
fn run(campaign: &Campaign, item: Item, bug: Option<PlantedBug>, seed_timeout: Duration) -> RunOutcome {
    let spec = plan::resolve(&campaign.scenarios()[item.scenario].scenario, item.seed, bug);
    let mut outcome = runner::run_watched(&spec, RunOptions::default(), seed_timeout);
    if outcome.verdict() == Verdict::Pass {
        let again = runner::run_watched(&spec, RunOptions::default(), seed_timeout);
        outcome.violations.extend(checkers::determinism::check(&outcome, &again));
    }
    outcome
}

/// The hunt's table in Markdown: bug, found or not, checker, scenario and
/// seed, runs to the first failure.
pub fn table(results: &[HuntResult], planned: u64) -> String {
    let mut out = String::from(
        "| planted bug | found | checker | scenario | seed | runs to first failure | passes without the bug |\n| --- | --- | --- | --- | ---: | ---: | --- |\n",
    );
    for result in results {
        let row = match &result.caught {
            Some(catch) => format!(
                "| {} | yes | {} | {} | {} | {} | {} |\n",
                result.bug.name(),
                catch.checker,
                catch.scenario_path,
                catch.seed,
                catch.runs_to_first_failure,
                if catch.passes_without_the_bug { "yes" } else { "**no**" }
            ),
            None => format!(
                "| {} | **no** | - | - | - | not in {planned} runs{} | - |\n",
                result.bug.name(),
                if result.inconclusive > 0 {
                    format!(" ({} inconclusive)", result.inconclusive)
                } else {
                    String::new()
                }
            ),
        };
        out.push_str(&row);
    }
    out
}
