//! Goal: the shipped scenario library is valid, documented and green, and
//! the format reference (`docs/SCENARIOS.md`) is in step with the parser.
//! Method: parse every file in `scenarios/`, round-trip it through
//! `to_toml_string`, run every default seed of it (the minutes-long ones in
//! `scenarios/large/` are parsed and round-tripped, and run by the `scale`
//! bench instead), and feed the parser
//! random and mutated text (it must never panic); compare the keys and
//! limits the reference documents with `scenario::KEYS` (which a unit test
//! compares with the serde structs) and the limit constants, and parse its
//! complete examples.

use proptest::prelude::*;
use scx_sim::fuzz::{self, Campaign, CampaignScenario};
use scx_sim::scenario::{self, Scenario};
use scx_sim::shard::Shard;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn shipped() -> Vec<PathBuf> {
    scenario_files("../scenarios")
}

/// The scenarios that take minutes and GiBs per seed, kept out of the
/// library's `scenarios/*.toml` (CI smoke campaign, hunt, golden table).
fn large() -> Vec<PathBuf> {
    scenario_files("../scenarios/large")
}

fn scenario_files(under: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(under);
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
fn the_large_scenarios_parse_open_with_a_comment_and_reach_ten_thousand_nodes() {
    let large = large();
    assert!(!large.is_empty(), "scenarios/large/ holds the 10,000-node scenario");
    let scenarios: Vec<Scenario> = large.iter().map(|path| Scenario::from_path(path).unwrap()).collect();
    assert!(
        scenarios.iter().any(|s| s.nodes == scenario::MAX_NODES),
        "the largest cluster the limits allow is shipped"
    );
    for path in &large {
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.starts_with("# "), "{} opens with a comment saying what it tests", path.display());
    }
}

#[test]
fn every_shipped_scenario_round_trips() {
    for path in shipped().into_iter().chain(large()) {
        let scenario = Scenario::from_path(&path).unwrap();
        let written = scenario.to_toml_string();
        let again = Scenario::from_toml(&written, "written.toml")
            .unwrap_or_else(|error| panic!("{}: {error}\n{written}", path.display()));
        assert_eq!(again, scenario, "{}", path.display());
    }
}

/// The committed table of (scenario, seed, trace hash) for every default
/// seed of the shipped library.
const GOLDEN: &str = "tests/golden/trace-hashes.txt";

/// Every default seed of every shipped scenario passes, and reproduces the
/// trace hash committed in the golden table: a seed must run the same on
/// every machine. An intended change rewrites the table in the same commit
/// (`SCX_UPDATE_GOLDEN=1 cargo test --release -p scx-sim --test harness
/// every_shipped`) and says why.
#[test]
fn every_shipped_scenario_passes_its_default_seeds_with_its_golden_trace_hash() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenarios = shipped()
        .iter()
        .map(|path| {
            let name = scenario::normalise_path(path.strip_prefix(root.join("..")).unwrap_or(path));
            CampaignScenario::new(name, Scenario::from_path(path).unwrap())
        })
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
    // Where the bytes went adds up to the bytes sent, in every scenario
    // (crashes, hostile rewrites and bundles included).
    let unbalanced: Vec<String> = records
        .iter()
        .filter(|r| {
            let kinds = r.metrics.bytes_by_kind().map(|kinds| kinds.iter().map(|(_, bytes)| bytes).sum::<u64>());
            kinds != Some(r.metrics.bytes_sent)
        })
        .map(|r| format!("{}: {:?}", r.reproduce, r.metrics))
        .collect();
    assert!(unbalanced.is_empty(), "the byte breakdown does not add up:\n{}", unbalanced.join("\n"));
    let table: String = records.iter().map(|r| format!("{} {} {}\n", r.scenario_path, r.seed, r.trace_hash)).collect();
    let golden = root.join(GOLDEN);
    if std::env::var_os("SCX_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &table).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&golden).expect("the golden table is committed");
    let differ: Vec<String> = committed
        .lines()
        .zip(table.lines())
        .filter(|(want, got)| want != got)
        .take(10)
        .map(|(want, got)| format!("  committed {want}\n  this run  {got}"))
        .collect();
    assert!(
        differ.is_empty() && committed.lines().count() == table.lines().count(),
        "trace hashes differ from {GOLDEN} ({} vs {} lines); if the change is intended, rerun with SCX_UPDATE_GOLDEN=1:\n{}",
        committed.lines().count(),
        table.lines().count(),
        differ.join("\n")
    );
}

fn reference() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/SCENARIOS.md")).unwrap()
}

/// The text of `## {title}` up to the next `## ` heading.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("SCENARIOS.md has no `## {title}`"));
    let body = &doc[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |end| end + 3);
    &body[..end]
}

/// Code spans in the first cell of each row of the tables whose first
/// column is `column` (`key` in the reference, `limit` in the limits).
fn first_cell_code_spans(text: &str, column: &str) -> Vec<String> {
    let header = format!("| {column} |");
    let mut in_table = false;
    let mut spans = Vec::new();
    for line in text.lines() {
        if !line.starts_with('|') {
            in_table = false;
        } else if line.starts_with(&header) {
            in_table = true;
        } else if in_table && !line.starts_with("| ---") {
            let cell = line.trim_start_matches("| ").split(" |").next().unwrap_or_default();
            spans.extend(cell.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    spans
}

#[test]
fn the_reference_documents_every_key_the_parser_accepts_and_no_other() {
    let doc = reference();
    let keys = section(&doc, "Reference");
    let mut documented: BTreeSet<(String, String)> = first_cell_code_spans(keys, "key")
        .into_iter()
        .map(|path| match path.rsplit_once('.') {
            Some((table, key)) => (table.to_owned(), key.to_owned()),
            None => (String::new(), path),
        })
        .collect();
    // Tables are documented by their headings: `### `[cluster]``, `### `[[faults]]``.
    for heading in keys.lines().filter_map(|line| line.strip_prefix("### `")) {
        let table = heading.trim_end_matches('`').trim_matches(|c| c == '[' || c == ']');
        documented.insert((String::new(), table.to_owned()));
    }
    let known: BTreeSet<(String, String)> =
        scenario::KEYS.iter().map(|(table, key)| ((*table).to_owned(), (*key).to_owned())).collect();
    let undocumented: Vec<_> = known.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&known).collect();
    assert!(
        undocumented.is_empty(),
        "keys the parser accepts but docs/SCENARIOS.md does not document: {undocumented:?}"
    );
    assert!(unknown.is_empty(), "keys docs/SCENARIOS.md documents but the parser refuses: {unknown:?}");
}

#[test]
fn every_documented_key_is_accepted_in_a_minimal_file() {
    let doc = reference();
    for span in first_cell_code_spans(section(&doc, "Reference"), "key") {
        let Some((table, key)) = span.rsplit_once('.') else { continue };
        // Put `key = 0` where it belongs and check the parser does not call it unknown.
        let text = match table {
            "network.latency" | "faults.latency" => {
                let (top, inner) = table.split_once('.').unwrap();
                let header = if top == "faults" { "[[faults]]" } else { "[network]" };
                format!("{MINIMAL}{header}\n{inner} = {{ {key} = 0 }}\n")
            }
            "faults" | "bundles" => format!("{MINIMAL}[[{table}]]\n{key} = 0\n"),
            "cluster" => MINIMAL.replace("[cluster]\n", &format!("[cluster]\n{key} = 0\n")),
            _ => format!("{MINIMAL}[{table}]\n{key} = 0\n"),
        };
        if let Err(error) = Scenario::from_toml(&text, "key.toml") {
            assert!(!error.to_string().contains("unknown field"), "`{span}` is documented but refused: {error}");
        }
    }
}

const MINIMAL: &str = "name = \"t\"\nduration = \"10s\"\nsettle = \"5s\"\n[cluster]\nnodes = 3\ntopology = \"mesh\"\n";

#[test]
fn the_reference_gives_every_limit_its_value() {
    let doc = reference();
    let limits = section(&doc, "Limits");
    let hours = |value: std::time::Duration| value.as_secs() / 3600;
    let values = [
        ("MAX_NODES", format!("| {} |", scenario::MAX_NODES)),
        ("MAX_RUN_TIME", format!("| {} day |", hours(scenario::MAX_RUN_TIME) / 24)),
        ("MIN_INTERVAL", format!("| {} ms |", scenario::MIN_INTERVAL.as_millis())),
        ("MAX_LANES_PER_SEC_PER_NODE", format!("| {} |", scenario::MAX_LANES_PER_SEC_PER_NODE)),
        ("MAX_SYNC_TICKS", format!("| {} |", thousands(scenario::MAX_SYNC_TICKS))),
        ("MAX_HELD_LANES", format!("| {} |", thousands(scenario::MAX_HELD_LANES))),
        ("MAX_SYNC_WORK", format!("| {} |", thousands(scenario::MAX_SYNC_WORK))),
        ("MAX_SAMPLED_STATES", format!("| {} |", thousands(scenario::MAX_SAMPLED_STATES))),
        ("MAX_LATENCY", format!("| {} minute |", scenario::MAX_LATENCY.as_secs() / 60)),
        ("MAX_CLOCK_SKEW", format!("| {} hour |", hours(scenario::MAX_CLOCK_SKEW))),
    ];
    for (name, value) in &values {
        let row = limits
            .lines()
            .find(|line| line.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("docs/SCENARIOS.md, Limits, has no row for {name}"));
        assert!(row.contains(value.as_str()), "docs/SCENARIOS.md gives {name} another value than {value}: {row}");
    }
    assert_eq!(first_cell_code_spans(limits, "limit").len(), values.len(), "a limit documented but not checked here");
}

fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[test]
fn the_references_complete_examples_parse() {
    let doc = reference();
    let mut examples = 0;
    for block in doc.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let scenario =
            Scenario::from_toml(text, "SCENARIOS.md example").unwrap_or_else(|error| panic!("{error}\n{text}"));
        assert!(!scenario.name.is_empty());
        examples += 1;
    }
    assert!(examples >= 1, "docs/SCENARIOS.md has a complete example");
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
