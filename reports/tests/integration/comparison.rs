//! Comparing two campaigns: the parameter that differs, and each metric's
//! change with its bootstrap interval and verdict. The Markdown report of a
//! comparison with a known delta is held by an `insta` snapshot
//! (`INSTA_UPDATE=always cargo test -p scx-reports` rewrites it after an
//! intended change; review the diff).

use crate::support::{record, temp};
use scx_reports::model::{CampaignManifest, FaultRecord, ManifestInvariant, ManifestScenario, RunRecord};
use scx_reports::{CampaignAggregate, ReportOptions, write_campaign_report};

/// A campaign of `runs` seeds of the synthetic scenario under `hash`,
/// converging `base_ms` plus a spread of up to 400 ms after the last heal,
/// with its manifest naming `loss`.
fn campaign(name: &str, hash: &str, loss: &str, base_ms: u64, runs: u64) -> CampaignAggregate {
    let mut aggregate = CampaignAggregate::new(name);
    let params = [("cluster.nodes", "3"), ("network.loss", loss), ("name", "synthetic")]
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    aggregate.add_manifest(&CampaignManifest {
        format: CampaignManifest::FORMAT,
        scx_version: "0.1.0".into(),
        shard: "1/1".into(),
        scenarios: vec![ManifestScenario {
            path: "scenarios/synthetic.toml".into(),
            hash: hash.into(),
            seeds: format!("0..{runs}"),
            params,
        }],
        replayed_first: Vec::new(),
        invariants: vec![ManifestInvariant {
            name: "convergence".into(),
            kind: "eventually".into(),
            property: "every live node reaches the same hashes".into(),
        }],
    });
    for seed in 0..runs {
        let record = RunRecord { scenario_hash: hash.into(), ..record(seed, Some(base_ms + (seed * 37) % 400)) };
        aggregate.add(&record);
    }
    aggregate
}

#[test]
fn a_comparison_names_the_parameter_that_differs_and_a_significant_change() {
    let base = campaign("base", "00112233aabbccdd", "0.01", 1_000, 60);
    let variant = campaign("lossy", "ffeeddccbbaa9988", "0.2", 1_300, 60);
    let dir = temp("comparison");
    let files = write_campaign_report(&[base, variant], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(markdown.contains("## Changes: lossy against base"), "{markdown}");
    assert!(markdown.contains("Parameters that differ: `network.loss`: 0.01 → 0.2."), "{markdown}");
    let changes = markdown.split("## Changes").nth(1).unwrap();
    let heal = changes.lines().find(|line| line.starts_with("| converged after the last heal (ms) |")).unwrap();
    assert!(heal.ends_with("| regressed |") && heal.contains("+25."), "{heal}");
    let variant = markdown.split("\n## lossy\n").nth(1).unwrap();
    assert!(
        variant.contains("\n- scenario: name = synthetic\n- cluster: nodes = 3\n- network: loss = 0.2\n"),
        "each scenario's parameters: {markdown}"
    );
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(
        html.contains("Changes: lossy against base") && html.contains("verdict regressed"),
        "the page shows it too"
    );
    assert!(html.contains("Parameters that differ: <code>network.loss</code>: 0.01 → 0.2."), "no Markdown in the page");
    insta::assert_snapshot!("comparison_markdown", markdown);
}

#[test]
fn the_same_scenario_compared_with_itself_is_no_change() {
    let base = campaign("base", "00112233aabbccdd", "0.01", 1_000, 60);
    let again = campaign("again", "00112233aabbccdd", "0.01", 1_000, 60);
    let dir = temp("comparison-same");
    let files = write_campaign_report(&[base, again], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(markdown.contains("Parameters that differ: none: the same scenario content"), "{markdown}");
    let changes = markdown.split("## Changes").nth(1).unwrap();
    let rows: Vec<&str> = changes.lines().filter(|line| line.starts_with("| converged after")).collect();
    assert_eq!(rows.len(), 2, "{markdown}");
    assert!(rows.iter().all(|row| row.ends_with("| no change |")), "{rows:?}");
}

#[test]
fn a_campaign_is_titled_by_what_it_ran_not_by_its_file() {
    let campaign = campaign("out/results.jsonl", "00112233aabbccdd", "0.01", 1_000, 12);
    let dir = temp("title");
    let files = write_campaign_report(&[campaign], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(markdown.starts_with("# Campaign: synthetic, seeds 0..=11\n"), "{}", markdown.lines().next().unwrap());
    assert!(markdown.contains("\n## out/results.jsonl\n"), "the file still heads its section");
}

#[test]
fn campaigns_whose_names_slug_alike_keep_their_own_chart_files() {
    let a = campaign("a/x.jsonl", "00112233aabbccdd", "0.01", 1_000, 12);
    let b = campaign("a-x.jsonl", "ffeeddccbbaa9988", "0.2", 1_300, 12);
    let dir = temp("slugs");
    let files = write_campaign_report(&[a, b], &dir, &ReportOptions::default()).unwrap();
    let mut names: Vec<String> =
        files.csv.iter().map(|path| path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "no two charts share a CSV: {names:?}");
    assert!(names.iter().any(|name| name.starts_with("convergence-histogram-1-a-x-jsonl")), "{names:?}");
    assert!(names.iter().any(|name| name.starts_with("convergence-histogram-2-a-x-jsonl")), "{names:?}");
}

#[test]
fn a_swarm_scenario_shows_how_often_each_fault_kind_came_up() {
    let mut aggregate = CampaignAggregate::new("swarm");
    for seed in 0..10 {
        let mut run = record(seed, Some(500));
        run.faults = match seed % 3 {
            0 => vec![],
            1 => {
                vec![
                    FaultRecord { kind: "crash".into(), start_ms: 1, end_ms: None, nodes: vec![1], groups: Vec::new() };
                    2
                ]
            }
            _ => vec![FaultRecord {
                kind: "pause".into(),
                start_ms: 1,
                end_ms: None,
                nodes: vec![2],
                groups: Vec::new(),
            }],
        };
        aggregate.add(&run);
    }
    let dir = temp("swarm-kinds");
    let files = write_campaign_report(&[aggregate], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(
        markdown.contains("| crash | 3 | 30.0% |\n| pause | 3 | 30.0% |"),
        "two crashes in one run count once: {markdown}"
    );
}
