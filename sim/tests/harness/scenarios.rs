//! Goal: the shipped scenario library is valid, documented and green.
//! Method: parse every file in `scenarios/`, round-trip it through
//! `to_toml_string`, run every default seed of it, and feed the parser
//! random and mutated text (it must never panic).

use proptest::prelude::*;
use scx_sim::fuzz::{self, Campaign, CampaignScenario};
use scx_sim::scenario::Scenario;
use scx_sim::shard::Shard;
use std::path::{Path, PathBuf};

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_library_covers_every_topology_and_fault_kind() {
    let scenarios: Vec<Scenario> = shipped().iter().map(|path| Scenario::from_path(path).unwrap()).collect();
    assert!(scenarios.len() >= 10);
    for topology in ["Mesh", "PeerToPeer", "ClientServer", "Edge", "AirGapped"] {
        assert!(scenarios.iter().any(|s| format!("{:?}", s.topology).starts_with(topology)), "no {topology} scenario");
    }
    for kind in ["partition", "partition-one-way", "crash", "pause", "clock-skew", "latency", "loss"] {
        assert!(scenarios.iter().any(|s| s.faults.iter().any(|f| f.kind.name() == kind)), "no {kind} fault");
    }
    assert!(scenarios.iter().any(|s| s.swarm), "no swarm scenario");
    assert!(scenarios.iter().any(|s| s.nodes >= 100), "no large scenario");
    assert!(scenarios.iter().any(|s| s.name == "quickstart"));
    for path in shipped() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# "), "{} opens with a comment saying what it tests", path.display());
    }
}

#[test]
fn every_shipped_scenario_round_trips() {
    for path in shipped() {
        let scenario = Scenario::from_path(&path).unwrap();
        let written = scenario.to_toml_string();
        let again = Scenario::from_toml(&written, "written.toml")
            .unwrap_or_else(|error| panic!("{}: {error}\n{written}", path.display()));
        assert_eq!(again, scenario, "{}", path.display());
    }
}

#[test]
fn every_shipped_scenario_passes_its_default_seeds() {
    let scenarios = shipped()
        .iter()
        .map(|path| CampaignScenario::new(path.display().to_string(), Scenario::from_path(path).unwrap()))
        .collect();
    let mut campaign = Campaign::new(scenarios, None, Shard::ALL, &[]);
    campaign.jobs = std::thread::available_parallelism().map_or(2, usize::from);
    let records = fuzz::run_to_vec(&campaign).expect("the campaign runs");
    let failures: Vec<String> = records
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{} {}: {:?} {:?}", r.status.name(), r.reproduce, r.violations, r.note))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(records.len() as u64, campaign.planned());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_parser_never_panics_on_random_text(text in "\\PC{0,400}") {
        let _ = Scenario::from_toml(&text, "random.toml");
    }

    #[test]
    fn the_parser_never_panics_on_mutated_scenarios(index in 0usize..12, position in any::<usize>(), byte in any::<u8>(), cut in any::<bool>()) {
        let files = shipped();
        let mut bytes = std::fs::read(&files[index % files.len()]).unwrap();
        let at = position % bytes.len();
        if cut { bytes.truncate(at) } else { bytes[at] = byte }
        let text = String::from_utf8_lossy(&bytes);
        if let Err(error) = Scenario::from_toml(&text, "mutated.toml") {
            prop_assert!(error.to_string().starts_with("mutated.toml"));
        }
    }
}
