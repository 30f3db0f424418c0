//! Goal: the shipped scenario library finds every planted bug, blind.
//! Method: hunt each bug with one plan for all of them: every shipped
//! scenario with its default seeds, unchanged, in the campaign's order
//! (`scx hunt scenarios/*.toml` prints the same table). A bug counts as
//! found only when a checker reports an engine violation and the same seed
//! passes without the bug.

use scx_sim::fuzz::{Campaign, CampaignScenario};
use scx_sim::hunt::{HuntResult, hunt, table};
use scx_sim::scenario::Scenario;
use scx_sim::shard::Shard;
use scx_sim::spec::PlantedBug;
use std::path::Path;
use std::time::Duration;

fn shipped_library() -> Campaign {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("sim sits in the workspace");
    let mut scenarios = Vec::new();
    for entry in std::fs::read_dir(root.join("scenarios")).expect("the scenario library exists") {
        let path = entry.expect("a readable directory").path();
        if path.extension().is_some_and(|extension| extension == "toml") {
            let name = format!("scenarios/{}", path.file_name().unwrap().to_string_lossy());
            scenarios.push(CampaignScenario::new(name, Scenario::from_path(&path).expect("shipped scenarios parse")));
        }
    }
    let mut campaign = Campaign::new(scenarios, None, Shard::ALL, &[]);
    campaign.jobs = std::thread::available_parallelism().map_or(2, usize::from);
    campaign
}

/// Bugs the library does not find yet, with the reason. The test fails when
/// one of them is found (take it off this list) or another bug is missed.
const NOT_YET_FOUND: &[(PlantedBug, &str)] = &[];

#[test]
fn the_shipped_library_finds_every_planted_bug_blind() {
    let campaign = shipped_library();
    let results: Vec<HuntResult> =
        PlantedBug::ALL.into_iter().map(|bug| hunt(&campaign, bug, Duration::from_secs(300))).collect();
    let report = table(&results, campaign.planned());
    eprintln!("planted-bug hunt over the shipped library (scx hunt scenarios/*.toml):\n{report}");
    for result in &results {
        let known_miss = NOT_YET_FOUND.iter().find(|(bug, _)| *bug == result.bug);
        match (&result.caught, known_miss) {
            (Some(catch), None) => assert!(
                catch.passes_without_the_bug,
                "{} seed {} fails without the bug:\n{report}",
                catch.scenario_path, catch.seed
            ),
            (None, Some((_, why))) => eprintln!("not found yet: {}: {why}", result.bug.name()),
            (Some(_), Some(_)) => panic!("{} is found now: take it off NOT_YET_FOUND\n{report}", result.bug.name()),
            (None, None) => panic!("{} was not found:\n{report}", result.bug.name()),
        }
    }
}
